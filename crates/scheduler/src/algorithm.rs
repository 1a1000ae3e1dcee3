//! Choosing a node for one pod (upstream's `schedulePod` in `schedule_one.go`): PreFilter,
//! Filter over a rotating window of nodes until enough feasible ones are found, PreScore and
//! Score on those, then the highest total wins (ties broken uniformly at random).
//!
//! Everything here is synchronous and pure over a [`Snapshot`]; the runtime owns the queue,
//! the cache, assuming, binding and preemption's side effects.
//!
//! * PreFilter may reject the pod outright (every node gets its status) or narrow the nodes.
//! * A pod with `status.nominatedNodeName` (a preemptor) tries that node first and takes it if
//!   it passes the filters.
//! * Filtering starts at `next_start_index` and stops after
//!   [`num_feasible_nodes_to_find`] feasible nodes; the index then advances past the nodes
//!   looked at, so consecutive pods spread their search over the whole cluster.
//! * When no node fits, [`FitError`] carries the per-node reasons; its `Display` is upstream's
//!   event message (`0/5 nodes are available: 3 Insufficient cpu, 2 ...`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use crate::framework::{
    Code, CycleState, NodeInfo, NodeToStatus, PostFilterResult, Snapshot, Status,
};
use crate::profile::{Framework, NodeScores};

/// Below this many nodes every node is evaluated; above, at least this many feasible nodes are
/// looked for (upstream's `minFeasibleNodesToFind`).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this (upstream's
/// `minFeasibleNodesPercentageToFind`).
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: u32 = 5;

/// How many feasible nodes to look for before scoring, out of `num_all_nodes`:
/// `percentage` of them (0: adaptive, `50 - nodes/125` but at least 5%), at least 100, and all
/// of them in clusters under 100 nodes (upstream's `numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(percentage: u32, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut pct = percentage.min(100) as usize;
    if pct == 0 {
        pct = 50usize
            .saturating_sub(num_all_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND as usize);
    }
    (num_all_nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why a pod fits nowhere (upstream's `framework.Diagnosis`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// Nodes rejected one by one, with why.
    pub node_to_status: NodeToStatus,
    /// The status of every node not in `node_to_status` (all of them when PreFilter rejected
    /// the pod; those PreFilter's result left out otherwise).
    pub absent_nodes_status: Status,
    /// Plugins that rejected the pod somewhere: the queue retries it when a cluster event one
    /// of them cares about happens.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pre_filter_msg: String,
    /// What PostFilter (preemption) said, set by [`run_post_filter`].
    pub post_filter_msg: String,
}

impl Default for Diagnosis {
    fn default() -> Self {
        Diagnosis {
            node_to_status: NodeToStatus::new(),
            absent_nodes_status: Status::new(Code::UnschedulableAndUnresolvable, Vec::new()),
            unschedulable_plugins: BTreeSet::new(),
            pre_filter_msg: String::new(),
            post_filter_msg: String::new(),
        }
    }
}

impl Diagnosis {
    fn add_plugin_status(&mut self, s: &Status) {
        if let Some(p) = s.plugin.filter(|_| s.is_rejected()) {
            self.unschedulable_plugins.insert(p);
        }
    }

    /// The status of `node` (explicit, or the absent-nodes status).
    pub fn status_of(&self, node: &str) -> &Status {
        self.node_to_status
            .get(node)
            .unwrap_or(&self.absent_nodes_status)
    }
}

/// No node fits the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    /// Upstream's `FitError.Error()`: `0/N nodes are available:`, then PreFilter's message or
    /// the per-reason node counts (sorted as strings, like upstream), then PostFilter's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for status in d.node_to_status.values() {
                for r in &status.reasons {
                    *counts.entry(r).or_default() += 1;
                }
            }
            let explicit = d.node_to_status.len();
            if explicit < self.num_all_nodes {
                for r in &d.absent_nodes_status.reasons {
                    *counts.entry(r).or_default() += self.num_all_nodes - explicit;
                }
            }
            let mut reasons: Vec<String> = counts
                .into_iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            reasons.sort();
            if !reasons.is_empty() {
                write!(f, " {}.", reasons.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}", d.post_filter_msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Why scheduling one pod failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The snapshot has no nodes at all.
    #[error("no nodes available to schedule pods")]
    NoNodesAvailable,
    /// No node fits; the pod waits for a cluster change (or preemption).
    #[error("{0}")]
    Unschedulable(Box<FitError>),
    /// A plugin failed; the pod is retried with backoff.
    #[error("{}", .0.message())]
    Internal(Status),
}

/// Where the pod should go, and how the decision was made.
#[derive(Clone, Debug)]
pub struct ScheduleResult {
    pub node: String,
    /// Nodes filtered (feasible or not).
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
    /// The scores of the feasible nodes (empty when only one node was feasible: upstream does
    /// not score then).
    pub scores: NodeScores,
}

/// Chooses a node for `pod`, with a thread-local RNG for tie-breaks. `next_start_index` is
/// the scheduler's rotating filter start, kept across pods.
pub fn schedule_pod(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Pod,
    snapshot: &Snapshot,
    next_start_index: &mut usize,
) -> Result<ScheduleResult, ScheduleError> {
    schedule_pod_with_rng(fw, state, pod, snapshot, next_start_index, &mut rand::rng())
}

/// [`schedule_pod`] with the RNG used to break ties (tests inject a seeded one).
pub fn schedule_pod_with_rng<R: Rng + ?Sized>(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Pod,
    snapshot: &Snapshot,
    next_start_index: &mut usize,
    rng: &mut R,
) -> Result<ScheduleResult, ScheduleError> {
    if snapshot.is_empty() {
        return Err(ScheduleError::NoNodesAvailable);
    }
    let (feasible, diagnosis) = find_nodes_that_fit_pod(fw, state, pod, snapshot, next_start_index)
        .map_err(ScheduleError::Internal)?;
    let evaluated = feasible.len() + diagnosis.node_to_status.len();
    match feasible.len() {
        0 => Err(ScheduleError::Unschedulable(Box::new(FitError {
            num_all_nodes: snapshot.len(),
            diagnosis,
        }))),
        1 => Ok(ScheduleResult {
            node: feasible[0].name().to_string(),
            evaluated_nodes: evaluated,
            feasible_nodes: 1,
            scores: NodeScores::default(),
        }),
        n => {
            let scores = prioritize_nodes(fw, state, pod, &feasible, snapshot)
                .map_err(ScheduleError::Internal)?;
            let best = select_host(&scores, rng)
                .ok_or_else(|| ScheduleError::Internal(Status::error("empty priorityList")))?;
            Ok(ScheduleResult {
                node: scores.node_name(best).to_string(),
                evaluated_nodes: evaluated,
                feasible_nodes: n,
                scores,
            })
        }
    }
}

/// PreFilter, the nominated-node fast path and Filter (upstream's `findNodesThatFitPod`).
/// Returns the feasible nodes and why the others were rejected; `Err` for plugin errors.
pub fn find_nodes_that_fit_pod(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Pod,
    snapshot: &Snapshot,
    next_start_index: &mut usize,
) -> Result<(Vec<Arc<NodeInfo>>, Diagnosis), Status> {
    let mut diagnosis = Diagnosis::default();
    let pre = fw.run_pre_filter(state, pod, snapshot);
    diagnosis.unschedulable_plugins = pre.plugins_with_nodes.clone();
    if !pre.status.is_success() {
        if !pre.status.is_rejected() {
            return Err(pre.status);
        }
        diagnosis.pre_filter_msg = pre.status.message();
        diagnosis.add_plugin_status(&pre.status);
        diagnosis.absent_nodes_status = pre.status;
        return Ok((Vec::new(), diagnosis));
    }

    if let Some(nominated) = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
        && let Some(node) = snapshot.get(nominated)
    {
        let s = fw.run_filter_with_nominated_pods(state, pod, node);
        match s.code {
            Code::Success => return Ok((vec![node.clone()], diagnosis)),
            Code::Error => {
                tracing::warn!(node = nominated, error = %s, "evaluating the nominated node failed");
            }
            _ => {
                diagnosis.add_plugin_status(&s);
                diagnosis.node_to_status.insert(nominated.to_string(), s);
            }
        }
    }

    let narrowed: Vec<Arc<NodeInfo>>;
    let nodes: &[Arc<NodeInfo>] = match &pre.result.node_names {
        None => &snapshot.nodes,
        Some(names) => {
            narrowed = names
                .iter()
                .filter_map(|n| snapshot.get(n).cloned())
                .collect();
            diagnosis.absent_nodes_status = Status::unresolvable(format!(
                "node(s) didn't satisfy plugin(s) [{}]",
                pre.plugins_with_nodes
                    .iter()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            &narrowed
        }
    };
    let (feasible, processed) =
        find_nodes_that_pass_filters(fw, state, pod, &mut diagnosis, nodes, *next_start_index)?;
    *next_start_index = (*next_start_index + processed) % snapshot.len();
    Ok((feasible, diagnosis))
}

/// Filters `nodes` from `start` (wrapping) until enough feasible nodes are found. Returns them
/// and how many nodes were looked at.
fn find_nodes_that_pass_filters(
    fw: &Framework,
    state: &CycleState,
    pod: &Pod,
    diagnosis: &mut Diagnosis,
    nodes: &[Arc<NodeInfo>],
    start: usize,
) -> Result<(Vec<Arc<NodeInfo>>, usize), Status> {
    let n = nodes.len();
    if n == 0 {
        return Ok((Vec::new(), 0));
    }
    let to_find = if fw.has_score_plugins() {
        num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score(), n)
    } else {
        1
    };
    let mut feasible = Vec::with_capacity(to_find.min(n));
    if !fw.has_filter_plugins() {
        feasible.extend((0..to_find.min(n)).map(|i| nodes[(start + i) % n].clone()));
        let found = feasible.len();
        return Ok((feasible, found));
    }
    let mut processed = 0;
    for i in 0..n {
        let node = &nodes[(start + i) % n];
        processed += 1;
        let s = fw.run_filter_with_nominated_pods(state, pod, node);
        match s.code {
            Code::Success => {
                feasible.push(node.clone());
                if feasible.len() >= to_find {
                    break;
                }
            }
            Code::Error => return Err(s),
            _ => {
                diagnosis.add_plugin_status(&s);
                diagnosis.node_to_status.insert(node.name().to_string(), s);
            }
        }
    }
    Ok((feasible, processed))
}

/// PreScore and Score over the feasible nodes (upstream's `prioritizeNodes`); with no Score
/// plugins every node scores 1.
pub fn prioritize_nodes(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Pod,
    nodes: &[Arc<NodeInfo>],
    snapshot: &Snapshot,
) -> Result<NodeScores, Status> {
    if !fw.has_score_plugins() {
        return Ok(NodeScores::uniform(nodes, 1));
    }
    let s = fw.run_pre_score(state, pod, nodes, snapshot);
    if !s.is_success() {
        return Err(s);
    }
    fw.run_score(state, pod, nodes)
}

/// The index of the node with the highest total; among equals each is picked with equal
/// probability (reservoir sampling, as upstream's `selectHost`). `None` if nothing was scored.
pub fn select_host<R: Rng + ?Sized>(scores: &NodeScores, rng: &mut R) -> Option<usize> {
    let totals = &scores.totals;
    let mut best = 0;
    let first = *totals.first()?;
    let mut best_score = first;
    let mut ties = 1u32;
    for (i, &t) in totals.iter().enumerate().skip(1) {
        if t > best_score {
            best = i;
            best_score = t;
            ties = 1;
        } else if t == best_score {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    Some(best)
}

/// Runs PostFilter (preemption) for a pod that fits nowhere and records its message in the
/// error, as upstream's scheduling cycle does. The plugins see every node PreFilter rejected
/// as a group with that status, so they can tell resolvable nodes from the rest.
pub fn run_post_filter(
    fw: &Framework,
    state: &CycleState,
    pod: &Pod,
    snapshot: &Snapshot,
    fit_error: &mut FitError,
) -> (Option<PostFilterResult>, Status) {
    let d = &fit_error.diagnosis;
    // Nodes absent from the map count as unresolvable for the plugins; only when the group
    // status is merely Unschedulable do they need to be spelled out.
    let filled;
    let statuses = if d.absent_nodes_status.code == Code::Unschedulable {
        let mut all = d.node_to_status.clone();
        for n in &snapshot.nodes {
            all.entry(n.name().to_string())
                .or_insert_with(|| d.absent_nodes_status.clone());
        }
        filled = all;
        &filled
    } else {
        &d.node_to_status
    };
    let (result, status) = fw.run_post_filter(state, pod, snapshot, statuses);
    fit_error.diagnosis.post_filter_msg = status.message();
    if status.code == Code::Error {
        tracing::error!(status = %status, "running PostFilter plugins");
    } else {
        tracing::debug!(status = %status, "PostFilter plugins ran");
    }
    (result, status)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::framework::PreFilterResult;
    use crate::profile::fakes::*;

    fn pod(nominated: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": []},
            "status": {"nominatedNodeName": nominated}
        }))
        .unwrap()
    }

    fn snapshot(n: usize) -> Snapshot {
        let nodes = (0..n)
            .map(|i| {
                serde_json::from_value(serde_json::json!({"metadata": {"name": format!("n{i}")}}))
                    .unwrap()
            })
            .collect();
        Snapshot::from_objects(nodes, Vec::new())
    }

    fn index(name: &str) -> usize {
        name.trim_start_matches('n').parse().unwrap()
    }

    #[test]
    fn feasible_node_counts_follow_upstream() {
        for (pct, nodes, want) in [
            (0, 10, 10),
            (0, 99, 99),
            (0, 100, 100),
            (0, 1000, 420), // 50 - 8 = 42%
            (0, 5000, 500), // 50 - 40 = 10%
            (0, 6000, 300), // 50 - 48 = 2% -> 5%
            (0, 1500, 570), // 38%
            (30, 1000, 300),
            (1, 1000, 100), // never under 100
            (100, 5000, 5000),
            (50, 50, 50),
        ] {
            assert_eq!(
                num_feasible_nodes_to_find(pct, nodes),
                want,
                "{pct}% of {nodes}"
            );
        }
    }

    fn fit_error(statuses: &[(&str, Status)], absent: Option<Status>, all: usize) -> FitError {
        let mut d = Diagnosis::default();
        for (n, s) in statuses {
            d.node_to_status.insert(n.to_string(), s.clone());
        }
        if let Some(a) = absent {
            d.absent_nodes_status = a;
        }
        FitError {
            num_all_nodes: all,
            diagnosis: d,
        }
    }

    #[test]
    fn fit_error_messages_match_upstream() {
        let cpu = Status::unschedulable("Insufficient cpu");
        let taint = Status::unschedulable("node(s) had untolerated taint {k: v}");
        let e = fit_error(
            &[
                ("a", cpu.clone()),
                ("b", taint.clone()),
                ("c", cpu.clone()),
                ("d", taint),
                ("e", cpu),
            ],
            None,
            5,
        );
        assert_eq!(
            e.to_string(),
            "0/5 nodes are available: 2 node(s) had untolerated taint {k: v}, 3 Insufficient cpu."
        );

        // Several reasons on one node count separately; absent nodes get the group status;
        // counts sort as strings (10 before 2), like upstream.
        let both = Status::new(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        );
        let mut statuses: Vec<(String, Status)> =
            (0..10).map(|i| (format!("x{i}"), both.clone())).collect();
        statuses.push(("y".into(), Status::unschedulable("Insufficient cpu")));
        let refs: Vec<(&str, Status)> = statuses
            .iter()
            .map(|(n, s)| (n.as_str(), s.clone()))
            .collect();
        let mut e = fit_error(
            &refs,
            Some(Status::unresolvable(
                "node(s) didn't satisfy plugin(s) [NodeAffinity]",
            )),
            13,
        );
        assert_eq!(
            e.to_string(),
            "0/13 nodes are available: 10 Insufficient memory, 11 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        );
        e.diagnosis.post_filter_msg = "preemption: 0/13 nodes are available: 13 No preemption victims found for incoming pod.".into();
        assert!(e.to_string().ends_with(
            "[NodeAffinity]. preemption: 0/13 nodes are available: 13 No preemption victims found for incoming pod."
        ));

        // PreFilter's message replaces the per-node counts.
        let mut e = fit_error(&[], Some(Status::unschedulable("pod has unbound PVCs")), 3);
        e.diagnosis.pre_filter_msg = "pod has unbound PVCs".into();
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: pod has unbound PVCs."
        );
        assert_eq!(
            ScheduleError::NoNodesAvailable.to_string(),
            "no nodes available to schedule pods"
        );
    }

    /// Passes nodes whose index is even; scores = index.
    fn even_fw(with_score: bool) -> Framework {
        framework(vec![(
            Fake {
                filter: Some(Box::new(|_, n| {
                    if index(n.name()).is_multiple_of(2) {
                        Status::success()
                    } else {
                        Status::unschedulable("odd node")
                    }
                })),
                score: with_score.then(|| Box::new(|n: &NodeInfo| index(n.name()) as i64) as _),
                ..Fake::new("Even")
            },
            1,
        )])
    }

    #[test]
    fn schedules_the_best_feasible_node() {
        let fw = even_fw(true);
        let snap = snapshot(10);
        let mut next = 0;
        let r = schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut next).unwrap();
        assert_eq!(r.node, "n8");
        assert_eq!((r.evaluated_nodes, r.feasible_nodes), (10, 5));
        assert_eq!(r.scores.len(), 5);
        assert_eq!(r.scores.total(r.scores.index_of("n8").unwrap()), 8);
        assert_eq!(next, 0, "all 10 nodes looked at: the start wraps around");
    }

    #[test]
    fn unschedulable_pods_get_a_fit_error() {
        let fw = even_fw(true);
        let snap = Snapshot::from_objects(
            vec![
                serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}})).unwrap(),
                serde_json::from_value(serde_json::json!({"metadata": {"name": "n3"}})).unwrap(),
            ],
            Vec::new(),
        );
        let err = schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut 0).unwrap_err();
        let ScheduleError::Unschedulable(fe) = err else {
            panic!("{err:?}")
        };
        assert_eq!(fe.to_string(), "0/2 nodes are available: 2 odd node.");
        assert_eq!(fe.diagnosis.unschedulable_plugins, BTreeSet::from(["Even"]));
        assert!(matches!(
            schedule_pod(
                &fw,
                &mut CycleState::new(),
                &pod(None),
                &Snapshot::default(),
                &mut 0
            ),
            Err(ScheduleError::NoNodesAvailable)
        ));
    }

    #[test]
    fn search_stops_early_and_rotates() {
        // 1000 nodes, all feasible, adaptive: 420 to find.
        let fw = framework(vec![(
            Fake {
                filter: Some(Box::new(|_, _| Status::success())),
                score: Some(Box::new(|_| 0)),
                ..Fake::new("All")
            },
            1,
        )]);
        let snap = snapshot(1000);
        let mut next = 900;
        let r = schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut next).unwrap();
        assert_eq!((r.evaluated_nodes, r.feasible_nodes), (420, 420));
        assert_eq!(next, (900 + 420) % 1000);
        // The window wrapped: n900..n999 then n0..n319.
        assert!(r.scores.index_of("n319").is_some());
        assert!(r.scores.index_of("n320").is_none());
        assert!(r.scores.index_of("n899").is_none());

        // Without score plugins one feasible node is enough.
        let fw = even_fw(false);
        let mut next = 3;
        let r = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(None),
            &snapshot(10),
            &mut next,
        )
        .unwrap();
        assert_eq!(r.node, "n4");
        assert_eq!((r.evaluated_nodes, r.feasible_nodes), (2, 1));
        assert_eq!(next, 5);
    }

    #[test]
    fn nominated_node_is_tried_first() {
        let fw = even_fw(true);
        let snap = snapshot(10);
        let mut next = 0;
        let r = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(Some("n2")),
            &snap,
            &mut next,
        )
        .unwrap();
        assert_eq!((r.node.as_str(), r.evaluated_nodes), ("n2", 1));
        // A nominated node that no longer fits falls back to the full search.
        let r = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(Some("n3")),
            &snap,
            &mut next,
        )
        .unwrap();
        assert_eq!(r.node, "n8");
    }

    #[test]
    fn pre_filter_narrowing_and_rejection() {
        let fw = framework(vec![(
            Fake {
                pre_filter: Some(Box::new(|_| {
                    (
                        PreFilterResult::only(["n1".into(), "n3".into(), "gone".into()]),
                        Status::success(),
                    )
                })),
                filter: Some(Box::new(|_, n| {
                    if n.name() == "n1" {
                        Status::unschedulable("n1 is full")
                    } else {
                        Status::success()
                    }
                })),
                ..Fake::new("Narrow")
            },
            0,
        )]);
        let r = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(None),
            &snapshot(5),
            &mut 0,
        )
        .unwrap();
        assert_eq!((r.node.as_str(), r.evaluated_nodes), ("n3", 2));

        let fw = framework(vec![(
            Fake {
                pre_filter: Some(Box::new(|_| {
                    (PreFilterResult::only(["n1".into()]), Status::success())
                })),
                filter: Some(Box::new(|_, _| Status::unschedulable("full"))),
                ..Fake::new("Narrow")
            },
            0,
        )]);
        let err = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(None),
            &snapshot(4),
            &mut 0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/4 nodes are available: 1 full, 3 node(s) didn't satisfy plugin(s) [Narrow]."
        );

        let fw = framework(vec![(
            Fake {
                pre_filter: Some(Box::new(|_| {
                    (
                        PreFilterResult::all(),
                        Status::unschedulable("pod has unbound PVCs"),
                    )
                })),
                post_filter: Some((None, Status::unschedulable("preemption: not helpful."))),
                ..Fake::new("Pvc")
            },
            0,
        )]);
        let snap = snapshot(3);
        let err = schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut 0).unwrap_err();
        let ScheduleError::Unschedulable(mut fe) = err else {
            panic!()
        };
        assert_eq!(
            fe.to_string(),
            "0/3 nodes are available: pod has unbound PVCs."
        );
        let (res, s) = run_post_filter(&fw, &CycleState::new(), &pod(None), &snap, &mut fe);
        assert!(res.is_none());
        assert_eq!(s.plugin, Some("Pvc"));
        assert_eq!(
            fe.to_string(),
            "0/3 nodes are available: pod has unbound PVCs. preemption: not helpful."
        );
        assert_eq!(
            fe.diagnosis.status_of("n2").message(),
            "pod has unbound PVCs"
        );
    }

    #[test]
    fn post_filter_sees_every_node_rejected_as_a_group() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let fw = framework(vec![(
            Fake {
                pre_filter: Some(Box::new(|_| {
                    (PreFilterResult::all(), Status::unschedulable("x"))
                })),
                post_filter: Some((None, Status::unschedulable("no"))),
                log: log.clone(),
                ..Fake::new("P")
            },
            0,
        )]);
        let snap = snapshot(4);
        let Err(ScheduleError::Unschedulable(mut fe)) =
            schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut 0)
        else {
            panic!()
        };
        run_post_filter(&fw, &CycleState::new(), &pod(None), &snap, &mut fe);
        assert!(log.lock().unwrap().contains(&"postfilter(4):P".to_string()));
    }

    #[test]
    fn ties_are_broken_uniformly() {
        let fw = framework(vec![(
            Fake {
                filter: Some(Box::new(|_, _| Status::success())),
                score: Some(Box::new(|n| if index(n.name()) < 3 { 50 } else { 10 })),
                ..Fake::new("Tie")
            },
            1,
        )]);
        let snap = snapshot(6);
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = BTreeMap::new();
        for _ in 0..300 {
            let r = schedule_pod_with_rng(
                &fw,
                &mut CycleState::new(),
                &pod(None),
                &snap,
                &mut 0,
                &mut rng,
            )
            .unwrap();
            *seen.entry(r.node).or_insert(0) += 1;
        }
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["n0", "n1", "n2"]);
        assert!(seen.values().all(|&c| c > 60), "{seen:?}");
    }

    #[test]
    fn select_host_takes_the_highest() {
        let snap = snapshot(3);
        let mut s = NodeScores::uniform(&snap.nodes, 0);
        s.totals = vec![5, 9, 7];
        assert_eq!(select_host(&s, &mut StdRng::seed_from_u64(1)), Some(1));
        assert_eq!(
            select_host(&NodeScores::default(), &mut StdRng::seed_from_u64(1)),
            None
        );
    }

    #[test]
    fn filter_errors_abort() {
        let fw = framework(vec![(
            Fake {
                filter: Some(Box::new(|_, _| Status::error("disk on fire"))),
                ..Fake::new("Broken")
            },
            0,
        )]);
        let err = schedule_pod(
            &fw,
            &mut CycleState::new(),
            &pod(None),
            &snapshot(3),
            &mut 0,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ScheduleError::Internal(
                Status::error("running \"Broken\" filter plugin: disk on fire")
                    .with_plugin("Broken")
            )
        );
    }

    /// Rough cost of one pod with the default plugins on 5,000 nodes (run with
    /// `--ignored --nocapture` in release mode); the bench target is ~100 µs.
    #[test]
    #[ignore]
    fn default_plugins_on_5000_nodes() {
        use crate::config::SchedulerConfiguration;
        use crate::profile::Frameworks;
        use crate::registry::Registry;
        let fws = Frameworks::new(
            &SchedulerConfiguration::default(),
            &Registry::default_plugins(),
        )
        .unwrap();
        let fw = fws.get("default-scheduler").unwrap();
        let nodes = (0..5000)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("n{i}"), "labels": {
                        "kubernetes.io/hostname": format!("n{i}"),
                        "topology.kubernetes.io/zone": format!("z{}", i % 3)}},
                    "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}}
                }))
                .unwrap()
            })
            .collect();
        let snap = Snapshot::from_objects(nodes, Vec::new());
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
        }))
        .unwrap();
        let mut next = 0;
        let n = 500;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let mut state = CycleState::new();
            schedule_pod(fw, &mut state, &p, &snap, &mut next).unwrap();
        }
        let per = start.elapsed() / n;
        println!("schedule_pod: {per:?} per pod on 5000 nodes");
    }

    /// The framework's own cost (no-op plugins: 9 filters, 7 scorers, 4 normalizing) per pod
    /// on 5,000 nodes; run with `--release --ignored --nocapture`.
    #[test]
    #[ignore]
    fn framework_overhead_on_5000_nodes() {
        const NAMES: [&str; 9] = ["F0", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8"];
        let plugins = NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    Fake {
                        filter: Some(Box::new(|_, _| Status::success())),
                        score: (i < 7).then(|| Box::new(|_: &NodeInfo| 7i64) as _),
                        normalize: i < 4,
                        ..Fake::new(name)
                    },
                    1,
                )
            })
            .collect();
        let fw = framework(plugins);
        let snap = snapshot(5000);
        let mut next = 0;
        let n = 500;
        let start = std::time::Instant::now();
        for _ in 0..n {
            schedule_pod(&fw, &mut CycleState::new(), &pod(None), &snap, &mut next).unwrap();
        }
        println!("framework overhead: {:?} per pod", start.elapsed() / n);
    }
}
