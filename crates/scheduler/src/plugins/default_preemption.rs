//! DefaultPreemption: the PostFilter plugin that, when no node fits a pod, looks for a node where
//! evicting lower-priority pods would make room, with upstream kube-scheduler's semantics
//! (`plugins/defaultpreemption` + `framework/preemption`, v1.33).
//!
//! The plugin only decides. For the chosen node it returns the victims and the lower-priority
//! pods whose nomination to that node must be cleared; the scheduler runtime deletes the victims
//! gracefully and sets the preemptor's `status.nominatedNodeName`.
//!
//! How a decision is reached:
//! 1. The preemptor must be eligible: not `preemptionPolicy: Never`, and not still waiting for
//!    victims of an earlier preemption to terminate on its nominated node.
//! 2. Only nodes rejected with `Unschedulable` are candidates (`UnschedulableAndUnresolvable`
//!    means evicting pods cannot help; nodes absent from the rejection map count as
//!    unresolvable, as upstream's default absent-node status).
//! 3. Starting at a random offset, nodes are dry-run one by one until enough candidates are
//!    found (`minCandidateNodesPercentage` / `minCandidateNodesAbsolute`, and at least one that
//!    violates no PodDisruptionBudget). A dry run removes every lower-priority pod from a copy
//!    of the node (and of the cycle state), checks the pod fits, then reprieves as many pods as
//!    possible: PDB-violating ones first, each group from the most important down.
//! 4. Among the candidates the node with the fewest PDB violations wins, then the lowest
//!    highest-victim priority, the smallest priority sum, the fewest victims, the latest start
//!    of the highest-priority victims, and finally the first candidate found.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Deserialize;

use crate::framework::{
    ClusterEvent, Code, CycleState, FrameworkHandle, NodeInfo, NodeToStatus, Plugin, PodInfo,
    PostFilterPlugin, PostFilterResult, Snapshot, Status, pod_priority,
};

pub const NAME: &str = "DefaultPreemption";

/// The reason a node without lower-priority pods gets (upstream's exact text).
pub const NO_VICTIMS_REASON: &str = "No preemption victims found for incoming pod";
/// The reason every node that was not dry-run gets in the failure message.
pub const NOT_HELPFUL_REASON: &str = "Preemption is not helpful for scheduling";

/// `DefaultPreemptionArgs` (`kubescheduler.config.k8s.io/v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultPreemptionArgs {
    /// Dry-run at least this percentage of the candidate nodes.
    pub min_candidate_nodes_percentage: i32,
    /// ... and at least this many.
    pub min_candidate_nodes_absolute: i32,
}

impl Default for DefaultPreemptionArgs {
    fn default() -> Self {
        DefaultPreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

/// The wire shape: absent fields take the v1 defaults; unknown fields are refused, as upstream's
/// strict decoding does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArgsJson {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    min_candidate_nodes_percentage: Option<i32>,
    min_candidate_nodes_absolute: Option<i32>,
}

impl DefaultPreemptionArgs {
    /// Decodes and validates the plugin's args; `None` (or `null`) means the defaults.
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let mut out = DefaultPreemptionArgs::default();
        if let Some(v) = args.filter(|v| !v.is_null()) {
            let raw: ArgsJson = serde_json::from_value(v.clone())
                .map_err(|e| format!("decoding DefaultPreemptionArgs: {e}"))?;
            if let Some(p) = raw.min_candidate_nodes_percentage {
                out.min_candidate_nodes_percentage = p;
            }
            if let Some(a) = raw.min_candidate_nodes_absolute {
                out.min_candidate_nodes_absolute = a;
            }
        }
        out.validate()?;
        Ok(out)
    }

    /// Upstream's `ValidateDefaultPreemptionArgs`, with its field-error wording.
    pub fn validate(&self) -> Result<(), String> {
        const PCT: &str = "minCandidateNodesPercentage";
        const ABS: &str = "minCandidateNodesAbsolute";
        let (pct, abs) = (
            self.min_candidate_nodes_percentage,
            self.min_candidate_nodes_absolute,
        );
        let mut errs = Vec::new();
        if !(0..=100).contains(&pct) {
            errs.push(format!(
                "{PCT}: Invalid value: {pct}: not in valid range [0, 100]"
            ));
        }
        if abs < 0 {
            errs.push(format!(
                "{ABS}: Invalid value: {abs}: not in valid range [0, inf)"
            ));
        }
        if pct == 0 && abs == 0 {
            errs.push(format!(
                "{PCT}: Invalid value: 0: cannot be zero at the same time as {ABS}"
            ));
            errs.push(format!(
                "{ABS}: Invalid value: 0: cannot be zero at the same time as {PCT}"
            ));
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// How many candidates to collect out of `num_nodes` potential nodes: the percentage, at
    /// least the absolute number, at most all of them. Unlike upstream this is never 0 when there
    /// are nodes: a percentage rounding down to 0 with `minCandidateNodesAbsolute: 0` would make
    /// upstream store no candidate at all and never preempt, which no configuration means.
    pub fn num_candidates(&self, num_nodes: usize) -> usize {
        let n = num_nodes as i64;
        let by_pct = n * i64::from(self.min_candidate_nodes_percentage.max(0)) / 100;
        let wanted = by_pct
            .max(i64::from(self.min_candidate_nodes_absolute))
            .min(n);
        usize::try_from(wanted).unwrap_or(0).max(num_nodes.min(1))
    }
}

/// Picks the index of the first node to dry-run, given how many there are (> 0).
pub type OffsetSource = Arc<dyn Fn(usize) -> usize + Send + Sync>;

/// The plugin.
pub struct DefaultPreemption {
    args: DefaultPreemptionArgs,
    offset: OffsetSource,
}

impl fmt::Debug for DefaultPreemption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultPreemption")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultPreemption::new(
        DefaultPreemptionArgs::from_json(args)?,
    )))
}

impl DefaultPreemption {
    /// A plugin starting its dry runs at a uniformly random node, as upstream.
    pub fn new(args: DefaultPreemptionArgs) -> DefaultPreemption {
        DefaultPreemption {
            args,
            offset: Arc::new(|n| if n == 0 { 0 } else { rand::random_range(0..n) }),
        }
    }

    /// Replaces the random start (tests make it deterministic).
    pub fn with_offset_source(
        mut self,
        offset: impl Fn(usize) -> usize + Send + Sync + 'static,
    ) -> DefaultPreemption {
        self.offset = Arc::new(offset);
        self
    }

    /// Upstream's `Evaluator.Preempt`, without the "preemption: " prefix.
    fn preempt(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        rejected: &NodeToStatus,
        framework: &dyn FrameworkHandle,
    ) -> (Option<PostFilterResult>, Status) {
        if let Err(why) = pod_eligible_to_preempt_others(pod, snapshot, rejected) {
            tracing::debug!(pod = %pod_key(pod), reason = %why, "not eligible for preemption");
            return (None, Status::unschedulable(why));
        }
        if snapshot.is_empty() {
            return (None, Status::error("no nodes available"));
        }
        let potential: Vec<&Arc<NodeInfo>> = snapshot
            .nodes
            .iter()
            .filter(|n| rejected.get(n.name()).map(|s| s.code) == Some(Code::Unschedulable))
            .collect();
        let (candidates, statuses, errors) = if potential.is_empty() {
            tracing::debug!(pod = %pod_key(pod), "preemption cannot help on any node");
            (Vec::new(), NodeToStatus::new(), Vec::new())
        } else {
            let pdbs: Vec<PdbBudget> = snapshot.pdbs.iter().map(|p| PdbBudget::new(p)).collect();
            let offset = (self.offset)(potential.len()) % potential.len();
            let wanted = self.args.num_candidates(potential.len());
            dry_run_preemption(state, pod, &potential, &pdbs, offset, wanted, framework)
        };
        if candidates.is_empty() {
            if !errors.is_empty() {
                return (None, Status::error(aggregate(&errors)));
            }
            tracing::debug!(pod = %pod_key(pod), "no preemption candidate found");
            let message = fit_error_message(snapshot.len(), &statuses, NOT_HELPFUL_REASON);
            // An empty nominated node asks the scheduler to clear the pod's stale nomination,
            // as upstream's `NewPostFilterResultWithNominatedNode("")` does.
            let clear = PostFilterResult {
                nominated_node: String::new(),
                victims: Vec::new(),
                clear_nominations: Vec::new(),
            };
            return (Some(clear), Status::unschedulable(message));
        }
        let Some(best) = pick_one_node_for_preemption(&candidates) else {
            return (
                None,
                Status::unschedulable("no candidate node for preemption"),
            );
        };
        let chosen = &candidates[best];
        tracing::debug!(
            pod = %pod_key(pod),
            node = %chosen.node,
            victims = chosen.victims.len(),
            pdb_violations = chosen.num_pdb_violations,
            "target node for preemption determined"
        );
        let victim_uids: BTreeSet<&str> = chosen.victims.iter().map(|v| v.uid()).collect();
        let result = PostFilterResult {
            nominated_node: chosen.node.clone(),
            victims: chosen.victims.iter().map(|v| v.pod.clone()).collect(),
            clear_nominations: lower_priority_nominated_pods(
                snapshot,
                pod,
                &chosen.node,
                &victim_uids,
            ),
        };
        (Some(result), Status::success())
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }

    fn post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }

    /// Upstream (with async preemption on) waits for assigned pods to be deleted.
    fn events(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::PodDelete]
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        rejected: &NodeToStatus,
        framework: &dyn FrameworkHandle,
    ) -> (Option<PostFilterResult>, Status) {
        let (result, status) = self.preempt(state, pod, snapshot, rejected, framework);
        let message = status.message();
        if message.is_empty() {
            return (result, status);
        }
        (
            result,
            Status::new(status.code, vec![format!("preemption: {message}")]),
        )
    }
}

/// Whether `pod` may preempt others now; the error is upstream's reason text.
///
/// A pod that already preempted waits while a lower-priority pod on its nominated node is still
/// terminating because of the scheduler's preemption — unless that node itself is now
/// unresolvable for it (then it may look elsewhere).
pub fn pod_eligible_to_preempt_others(
    pod: &Pod,
    snapshot: &Snapshot,
    rejected: &NodeToStatus,
) -> Result<(), String> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".to_string());
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    let Some(nominated) = nominated else {
        return Ok(());
    };
    // Nodes missing from the map count as UnschedulableAndUnresolvable (upstream's default).
    let unresolvable = rejected
        .get(nominated)
        .is_none_or(|s| s.code == Code::UnschedulableAndUnresolvable);
    if unresolvable {
        return Ok(());
    }
    let priority = pod_priority(pod);
    if let Some(node) = snapshot.get(nominated) {
        let waiting = node
            .pods
            .iter()
            .any(|p| p.priority() < priority && pod_terminating_by_preemption(&p.pod));
        if waiting {
            return Err("not eligible due to a terminating pod on the nominated node.".to_string());
        }
    }
    Ok(())
}

/// Whether `pod` is being deleted because the scheduler preempted it: a deletion timestamp and a
/// `DisruptionTarget=True` condition with reason `PreemptionByScheduler` (the first
/// DisruptionTarget condition decides).
pub fn pod_terminating_by_preemption(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_none() {
        return false;
    }
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")
        .is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler"))
}

/// A node where preemption makes the pod fit, and what it costs.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub num_pdb_violations: usize,
}

/// Dry-runs preemption on `potential` nodes, starting at `offset` and wrapping around, until
/// `wanted` candidates are found with at least one that violates no PDB (upstream runs the nodes
/// in parallel and cancels at the same point). Returns the candidates (PDB-respecting first, at
/// most `wanted` of each kind), the statuses of the nodes that are no candidates, and the
/// messages of internal errors.
fn dry_run_preemption(
    state: &CycleState,
    pod: &Pod,
    potential: &[&Arc<NodeInfo>],
    pdbs: &[PdbBudget],
    offset: usize,
    wanted: usize,
    framework: &dyn FrameworkHandle,
) -> (Vec<Candidate>, NodeToStatus, Vec<String>) {
    let mut non_violating: Vec<Candidate> = Vec::new();
    let mut violating: Vec<Candidate> = Vec::new();
    let mut statuses = NodeToStatus::new();
    let mut errors = Vec::new();
    for i in 0..potential.len() {
        let node = potential[(offset + i) % potential.len()];
        let mut node_copy = NodeInfo::clone(node);
        let mut state_copy = state.clone();
        let name = node.name().to_string();
        let outcome = select_victims_on_node(&mut state_copy, pod, &mut node_copy, pdbs, framework);
        let status = match outcome {
            Ok((victims, num_pdb_violations)) if !victims.is_empty() => {
                let list = if num_pdb_violations == 0 {
                    &mut non_violating
                } else {
                    &mut violating
                };
                if list.len() < wanted {
                    list.push(Candidate {
                        node: name,
                        victims,
                        num_pdb_violations,
                    });
                }
                if !non_violating.is_empty() && non_violating.len() + violating.len() >= wanted {
                    break;
                }
                continue;
            }
            Ok(_) => Status::error(format!("expected at least one victim pod on node {name:?}")),
            Err(status) => status,
        };
        tracing::trace!(node = %name, %status, "node is no preemption candidate");
        if status.code == Code::Error {
            errors.push(status.message());
        }
        statuses.insert(name, status);
    }
    non_violating.extend(violating);
    (non_violating, statuses, errors)
}

/// Finds the fewest pods to evict from `node` so that `pod` fits: removes every lower-priority
/// pod, checks the fit, then adds back (reprieves) each one that still lets the pod fit —
/// PDB-violating pods first, each group most important first. `state` and `node` must be
/// copies: they are left in the simulated state. Returns the victims (most important first)
/// and how many of them violate a PDB; the error is the node's status.
pub fn select_victims_on_node(
    state: &mut CycleState,
    pod: &Pod,
    node: &mut NodeInfo,
    pdbs: &[PdbBudget],
    framework: &dyn FrameworkHandle,
) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
    let priority = pod_priority(pod);
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority() < priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS_REASON));
    }
    for victim in &potential {
        remove_pod(state, pod, node, victim, framework)?;
    }
    // If the pod does not fit even without every lower-priority pod, this node cannot help.
    // (Affinity of the pod to one of the victims is deliberately not considered, as upstream.)
    let status = framework.run_filter_plugins(state, pod, node);
    if !status.is_success() {
        return Err(status);
    }
    potential.sort_by(|a, b| importance_order(&a.pod, &b.pod));
    let (violating, non_violating) = split_by_pdb_violation(&potential, pdbs);
    let mut victims = Vec::new();
    let mut num_violating = 0;
    for (group, counts) in [(&violating, true), (&non_violating, false)] {
        for p in group {
            node.add_pod(p.clone());
            let added = framework.run_pre_filter_add_pod(state, pod, p, node);
            if !added.is_success() {
                return Err(Status::error(added.message()));
            }
            if !framework.run_filter_plugins(state, pod, node).is_success() {
                remove_pod(state, pod, node, p, framework)?;
                victims.push(p.clone());
                if counts {
                    num_violating += 1;
                }
            }
        }
    }
    if !violating.is_empty() && !non_violating.is_empty() {
        victims.sort_by(|a, b| importance_order(&a.pod, &b.pod));
    }
    Ok((victims, num_violating))
}

fn remove_pod(
    state: &mut CycleState,
    pod: &Pod,
    node: &mut NodeInfo,
    victim: &Arc<PodInfo>,
    framework: &dyn FrameworkHandle,
) -> Result<(), Status> {
    if !node.remove_pod(victim.uid()) {
        return Err(Status::error(format!(
            "no corresponding pod {}/{} in pods of node {}",
            victim.namespace(),
            victim.name(),
            node.name()
        )));
    }
    let status = framework.run_pre_filter_remove_pod(state, pod, victim, node);
    if !status.is_success() {
        return Err(Status::error(status.message()));
    }
    Ok(())
}

/// Upstream's `MoreImportantPod` as an ordering: higher priority first, then the pod that
/// started earlier (a pod without a start time counts as starting now, i.e. last).
fn importance_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    pod_priority(b)
        .cmp(&pod_priority(a))
        .then_with(|| start_time(a).cmp(&start_time(b)))
}

/// `status.startTime` in nanoseconds; unset means "now", later than any recorded start.
fn start_time(pod: &Pod) -> i128 {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(i128::MAX, |t| t.0.as_nanosecond())
}

/// A PodDisruptionBudget as preemption reads it.
#[derive(Clone, Debug)]
pub struct PdbBudget {
    namespace: String,
    /// `None`: matches no pod (a missing, empty or invalid selector).
    selector: Option<LabelSelector>,
    disruptions_allowed: i32,
    /// Pods the API server already counted as disrupted.
    disrupted_pods: BTreeSet<String>,
}

impl PdbBudget {
    pub fn new(pdb: &PodDisruptionBudget) -> PdbBudget {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| LabelSelector::from_k8s(s).ok())
            .filter(|s| !s.is_everything() && !s.is_nothing());
        let status = pdb.status.as_ref();
        PdbBudget {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            disruptions_allowed: status.map_or(0, |s| s.disruptions_allowed),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Splits `pods` (order kept) into those whose eviction would exceed a matching PDB's
/// `disruptionsAllowed` and the rest. Each budget is spent by the pods in order, so with one
/// disruption allowed the first matching pod is fine and the second violates.
fn split_by_pdb_violation(
    pods: &[Arc<PodInfo>],
    pdbs: &[PdbBudget],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut non_violating) = (Vec::new(), Vec::new());
    for p in pods {
        let labels = p.pod.metadata.labels.as_ref().filter(|l| !l.is_empty());
        let mut violated = false;
        if let Some(labels) = labels {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.namespace != p.namespace() {
                    continue;
                }
                let Some(selector) = pdb.selector.as_ref() else {
                    continue;
                };
                if !selector.matches(labels) || pdb.disrupted_pods.contains(p.name()) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p.clone());
        } else {
            non_violating.push(p.clone());
        }
    }
    (violating, non_violating)
}

/// The index of the best candidate (upstream's `pickOneNodeForPreemption`): each criterion keeps
/// the candidates with the highest score, the next one breaks ties, the first of what remains
/// wins.
pub fn pick_one_node_for_preemption(candidates: &[Candidate]) -> Option<usize> {
    type Score = fn(&Candidate) -> i128;
    let criteria: [Score; 5] = [
        // Fewest PDB violations.
        |c| -(c.num_pdb_violations as i128),
        // Lowest highest-priority victim (victims are sorted, most important first).
        |c| -c.victims.first().map_or(0, |v| i128::from(v.priority())),
        // Smallest sum of priorities, each shifted to be non-negative so that more pods with
        // negative priority never look cheaper than fewer.
        |c| {
            -c.victims
                .iter()
                .map(|v| i128::from(v.priority()) + (1i128 << 31))
                .sum::<i128>()
        },
        // Fewest victims.
        |c| -(c.victims.len() as i128),
        // Latest start among the highest-priority victims (the earliest of them counts).
        |c| {
            let top = c.victims.first().map_or(0, |v| v.priority());
            c.victims
                .iter()
                .filter(|v| v.priority() == top)
                .map(|v| start_time(&v.pod))
                .min()
                .unwrap_or(i128::MIN)
        },
    ];
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    for score in criteria {
        if remaining.len() <= 1 {
            break;
        }
        let best = remaining.iter().map(|&i| score(&candidates[i])).max()?;
        remaining.retain(|&i| score(&candidates[i]) == best);
    }
    remaining.first().copied()
}

/// Pods with lower priority than `pod` nominated to `node`, whose nomination the scheduler must
/// clear (they may no longer fit there). The snapshot only holds pods placed on nodes; pending
/// nominated pods live in the scheduling queue, which this plugin cannot see, so this finds the
/// placed pods still carrying such a nomination and is usually empty.
fn lower_priority_nominated_pods(
    snapshot: &Snapshot,
    pod: &Pod,
    node: &str,
    victims: &BTreeSet<&str>,
) -> Vec<Arc<Pod>> {
    let priority = pod_priority(pod);
    let own_uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    snapshot
        .nodes
        .iter()
        .flat_map(|n| n.pods.iter())
        .filter(|p| {
            let nominated = p
                .pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.as_deref());
            nominated == Some(node)
                && p.priority() < priority
                && p.uid() != own_uid
                && !victims.contains(p.uid())
                && seen.insert(p.uid().to_string())
        })
        .map(|p| p.pod.clone())
        .collect()
}

/// Upstream's `FitError.Error()` for preemption: `0/N nodes are available: <count> <reason>,
/// ....` with the reasons counted over the nodes' statuses, the nodes without one counted under
/// `absent_reason`, and the "count reason" strings sorted as strings.
pub fn fit_error_message(num_nodes: usize, statuses: &NodeToStatus, absent_reason: &str) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for status in statuses.values() {
        for reason in &status.reasons {
            *counts.entry(reason.as_str()).or_insert(0) += 1;
        }
    }
    if statuses.len() < num_nodes {
        *counts.entry(absent_reason).or_insert(0) += num_nodes - statuses.len();
    }
    let mut reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    reasons.sort();
    let mut message = format!("0/{num_nodes} nodes are available:");
    if !reasons.is_empty() {
        message.push_str(&format!(" {}.", reasons.join(", ")));
    }
    message
}

/// Several errors as upstream's `utilerrors.Aggregate` prints them.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{NamespaceLabels, pod_requests};
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    /// Counts the PreFilter extension calls in the cycle state, so tests see which state copy
    /// they went to.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Calls {
        added: usize,
        removed: usize,
    }
    const CALLS: &str = "PreFilterFake";

    /// A framework whose only Filter checks cpu, memory and pod count against allocatable.
    #[derive(Default)]
    struct FakeFramework {
        fail_remove: bool,
    }

    impl FrameworkHandle for FakeFramework {
        fn run_filter_plugins(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
            let req = pod_requests(pod, false);
            let (have, cap) = (&node.requested, &node.allocatable);
            let mut reasons = Vec::new();
            if node.pods.len() as i64 + 1 > cap.allowed_pods {
                reasons.push("Too many pods".to_string());
            }
            if have.milli_cpu + req.milli_cpu > cap.milli_cpu {
                reasons.push("Insufficient cpu".to_string());
            }
            if have.memory + req.memory > cap.memory {
                reasons.push("Insufficient memory".to_string());
            }
            if reasons.is_empty() {
                Status::success()
            } else {
                Status::new(Code::Unschedulable, reasons).with_plugin("NodeResourcesFit")
            }
        }

        fn run_pre_filter_add_pod(
            &self,
            state: &mut CycleState,
            _: &Pod,
            _: &Arc<PodInfo>,
            _: &NodeInfo,
        ) -> Status {
            if let Some(c) = state.read_mut::<Calls>(CALLS) {
                c.added += 1;
            }
            Status::success()
        }

        fn run_pre_filter_remove_pod(
            &self,
            state: &mut CycleState,
            _: &Pod,
            _: &Arc<PodInfo>,
            _: &NodeInfo,
        ) -> Status {
            if self.fail_remove {
                return Status::unschedulable("remove refused");
            }
            if let Some(c) = state.read_mut::<Calls>(CALLS) {
                c.removed += 1;
            }
            Status::success()
        }
    }

    fn node(name: &str, milli_cpu: i64) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"allocatable":
                {"cpu": format!("{milli_cpu}m"), "memory": "10Gi", "pods": "10"}}
        }))
        .unwrap()
    }

    /// A pod spec: name, priority, cpu in millicores.
    #[derive(Clone)]
    struct P {
        name: &'static str,
        priority: i32,
        cpu: i64,
        node: &'static str,
        start: Option<i64>,
        labels: Value,
        extra: Value,
    }

    fn p(name: &'static str, priority: i32, cpu: i64) -> P {
        P {
            name,
            priority,
            cpu,
            node: "",
            start: None,
            labels: json!({}),
            extra: json!({}),
        }
    }

    impl P {
        fn on(mut self, node: &'static str) -> P {
            self.node = node;
            self
        }
        fn started(mut self, secs: i64) -> P {
            self.start = Some(secs);
            self
        }
        fn labels(mut self, labels: Value) -> P {
            self.labels = labels;
            self
        }
        /// Merged into the pod JSON at the top level of each section.
        fn with(mut self, extra: Value) -> P {
            self.extra = extra;
            self
        }
        fn build(&self) -> Pod {
            let mut v = json!({
                "metadata": {"name": self.name, "namespace": "default",
                             "uid": format!("uid-{}", self.name), "labels": self.labels},
                "spec": {"priority": self.priority, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": format!("{}m", self.cpu)}}}]},
                "status": {}
            });
            if !self.node.is_empty() {
                v["spec"]["nodeName"] = json!(self.node);
            }
            if let Some(s) = self.start {
                let t = k8s_openapi::jiff::Timestamp::from_second(s).unwrap();
                v["status"]["startTime"] = json!(t.to_string());
            }
            for section in ["metadata", "spec", "status"] {
                if let Some(obj) = self.extra.get(section).and_then(Value::as_object) {
                    for (k, val) in obj {
                        v[section][k] = val.clone();
                    }
                }
            }
            serde_json::from_value(v).unwrap()
        }
    }

    fn pdb(
        namespace: &str,
        selector: Value,
        allowed: i32,
        disrupted: &[&str],
    ) -> PodDisruptionBudget {
        let disrupted: serde_json::Map<String, Value> = disrupted
            .iter()
            .map(|n| (n.to_string(), json!("2024-01-01T00:00:00Z")))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "pdb", "namespace": namespace},
            "spec": {"selector": selector},
            "status": {"disruptionsAllowed": allowed, "disruptedPods": disrupted,
                       "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
        }))
        .unwrap()
    }

    fn snapshot(nodes: &[(&str, i64)], pods: &[P], pdbs: Vec<PodDisruptionBudget>) -> Snapshot {
        let s = Snapshot::from_objects(
            nodes.iter().map(|(n, cpu)| node(n, *cpu)).collect(),
            pods.iter().map(P::build).collect(),
        );
        Snapshot::new(
            s.nodes,
            NamespaceLabels::new(),
            pdbs.into_iter().map(Arc::new).collect(),
        )
    }

    fn names(pods: &[Arc<PodInfo>]) -> Vec<&str> {
        pods.iter().map(|p| p.name()).collect()
    }

    #[test]
    fn select_victims_on_node_table() {
        let db = || json!({"app": "db"});
        let sel_db = || json!({"matchLabels": {"app": "db"}});
        struct Case {
            name: &'static str,
            cpu: i64,
            pods: Vec<P>,
            pdbs: Vec<PodDisruptionBudget>,
            preemptor: P,
            fail_remove: bool,
            want: Result<(Vec<&'static str>, usize), (Code, &'static str)>,
        }
        let cases = vec![
            Case {
                name: "no lower-priority pod: unresolvable",
                cpu: 1000,
                pods: vec![p("same", 100, 1000), p("higher", 200, 0)],
                pdbs: vec![],
                preemptor: p("pre", 100, 500),
                fail_remove: false,
                want: Err((Code::UnschedulableAndUnresolvable, NO_VICTIMS_REASON)),
            },
            Case {
                name: "does not fit even without every victim",
                cpu: 2000,
                pods: vec![p("high", 200, 1500), p("low", 10, 500)],
                pdbs: vec![],
                preemptor: p("pre", 100, 1000),
                fail_remove: false,
                want: Err((Code::Unschedulable, "Insufficient cpu")),
            },
            Case {
                name: "highest priority reprieved first",
                cpu: 3000,
                pods: vec![p("p1", 10, 1000), p("p2", 20, 1000), p("p3", 5, 1000)],
                pdbs: vec![],
                preemptor: p("pre", 100, 2000),
                fail_remove: false,
                want: Ok((vec!["p1", "p3"], 0)),
            },
            Case {
                name: "equal priority: the older pod is reprieved",
                cpu: 2000,
                pods: vec![
                    p("young", 10, 1000).started(100),
                    p("old", 10, 1000).started(50),
                    p("unstarted", 10, 1000),
                ],
                pdbs: vec![],
                preemptor: p("pre", 100, 1000),
                fail_remove: false,
                want: Ok((vec!["young", "unstarted"], 0)),
            },
            Case {
                name: "PDB-protected pod reprieved before a more important one",
                cpu: 3000,
                pods: vec![p("guarded", 10, 1000).labels(db()), p("web", 20, 1000)],
                pdbs: vec![pdb("default", sel_db(), 0, &[])],
                preemptor: p("pre", 100, 2000),
                fail_remove: false,
                want: Ok((vec!["web"], 0)),
            },
            Case {
                name: "unavoidable PDB violation is counted; victims sorted by importance",
                cpu: 2000,
                pods: vec![
                    p("db-b", 10, 1000).labels(db()).started(20),
                    p("db-a", 10, 1000).labels(db()).started(10),
                    p("other", 5, 0),
                ],
                pdbs: vec![pdb("default", sel_db(), 1, &[])],
                preemptor: p("pre", 100, 2000),
                fail_remove: false,
                // db-a spends the one allowed disruption, db-b violates.
                want: Ok((vec!["db-a", "db-b"], 1)),
            },
            Case {
                name: "pods already in disruptedPods do not spend the budget",
                cpu: 2000,
                pods: vec![
                    p("db-b", 10, 1000).labels(db()).started(20),
                    p("db-a", 10, 1000).labels(db()).started(10),
                ],
                pdbs: vec![pdb("default", sel_db(), 1, &["db-a"])],
                preemptor: p("pre", 100, 2000),
                fail_remove: false,
                want: Ok((vec!["db-a", "db-b"], 0)),
            },
            Case {
                name: "PDB of another namespace does not count",
                cpu: 1000,
                pods: vec![p("db", 10, 1000).labels(db())],
                pdbs: vec![pdb("other", sel_db(), 0, &[])],
                preemptor: p("pre", 100, 1000),
                fail_remove: false,
                want: Ok((vec!["db"], 0)),
            },
            Case {
                name: "empty PDB selector matches nothing",
                cpu: 1000,
                pods: vec![p("db", 10, 1000).labels(db())],
                pdbs: vec![pdb("default", json!({}), 0, &[])],
                preemptor: p("pre", 100, 1000),
                fail_remove: false,
                want: Ok((vec!["db"], 0)),
            },
            Case {
                name: "matching PDB with budget 0 is a violation",
                cpu: 1000,
                pods: vec![p("db", 10, 1000).labels(db())],
                pdbs: vec![pdb("default", sel_db(), 0, &[])],
                preemptor: p("pre", 100, 1000),
                fail_remove: false,
                want: Ok((vec!["db"], 1)),
            },
            Case {
                name: "a failing PreFilter extension is an error",
                cpu: 1000,
                pods: vec![p("low", 10, 1000)],
                pdbs: vec![],
                preemptor: p("pre", 100, 1000),
                fail_remove: true,
                want: Err((Code::Error, "remove refused")),
            },
        ];
        for c in cases {
            let pods: Vec<P> = c.pods.iter().map(|x| x.clone().on("n1")).collect();
            let snap = snapshot(&[("n1", c.cpu)], &pods, c.pdbs);
            let budgets: Vec<PdbBudget> = snap.pdbs.iter().map(|b| PdbBudget::new(b)).collect();
            let mut info = NodeInfo::clone(&snap.nodes[0]);
            let mut state = CycleState::new();
            let fw = FakeFramework {
                fail_remove: c.fail_remove,
            };
            let got =
                select_victims_on_node(&mut state, &c.preemptor.build(), &mut info, &budgets, &fw);
            match (got, c.want) {
                (Ok((victims, n)), Ok((want, want_n))) => {
                    assert_eq!((names(&victims), n), (want, want_n), "{}", c.name);
                }
                (Err(s), Err((code, msg))) => {
                    assert_eq!((s.code, s.message().as_str()), (code, msg), "{}", c.name);
                }
                (got, _) => panic!("{}: unexpected {got:?}", c.name),
            }
        }
    }

    fn candidate(node: &str, pdb: usize, victims: &[P]) -> Candidate {
        Candidate {
            node: node.to_string(),
            num_pdb_violations: pdb,
            victims: victims
                .iter()
                .map(|v| Arc::new(PodInfo::new(Arc::new(v.build()))))
                .collect(),
        }
    }

    #[test]
    fn pick_one_node_table() {
        let cases: Vec<(&str, Vec<Candidate>, Option<&str>)> = vec![
            ("no candidates", vec![], None),
            (
                "fewest PDB violations first",
                vec![
                    candidate("a", 1, &[p("x", 1, 0)]),
                    candidate("b", 0, &[p("x", 100, 0), p("y", 100, 0)]),
                ],
                Some("b"),
            ),
            (
                "lowest highest-priority victim",
                vec![
                    candidate("a", 0, &[p("x", 50, 0)]),
                    candidate("b", 0, &[p("x", 40, 0), p("y", 40, 0), p("z", 40, 0)]),
                ],
                Some("b"),
            ),
            (
                "smallest priority sum",
                vec![
                    candidate("a", 0, &[p("x", 50, 0), p("y", 40, 0)]),
                    candidate("b", 0, &[p("x", 50, 0), p("y", 10, 0)]),
                ],
                Some("b"),
            ),
            (
                "negative priorities: fewer pods is a smaller sum",
                vec![
                    candidate("a", 0, &[p("x", -10, 0), p("y", -10, 0)]),
                    candidate("b", 0, &[p("x", -10, 0)]),
                ],
                Some("b"),
            ),
            (
                "fewest victims when sums tie",
                vec![
                    candidate("a", 0, &[p("x", 2, 0), p("y", 0, 0)]),
                    candidate("b", 0, &[p("x", 2, 0)]),
                ],
                // Sums (shifted by 2^31 each) differ: b is smaller anyway.
                Some("b"),
            ),
            (
                "latest start of the highest-priority victims",
                vec![
                    candidate(
                        "a",
                        0,
                        &[p("x", 10, 0).started(100), p("y", 5, 0).started(900)],
                    ),
                    candidate(
                        "b",
                        0,
                        &[p("x", 10, 0).started(200), p("y", 5, 0).started(1)],
                    ),
                    candidate(
                        "c",
                        0,
                        &[p("x", 10, 0).started(150), p("y", 5, 0).started(999)],
                    ),
                ],
                Some("b"),
            ),
            (
                "full tie: the first candidate",
                vec![
                    candidate("a", 0, &[p("x", 10, 0).started(5)]),
                    candidate("b", 0, &[p("x", 10, 0).started(5)]),
                ],
                Some("a"),
            ),
        ];
        for (name, candidates, want) in cases {
            let got =
                pick_one_node_for_preemption(&candidates).map(|i| candidates[i].node.as_str());
            assert_eq!(got, want, "{name}");
        }
    }

    fn status(code: Code, reason: &str) -> Status {
        Status::new(code, vec![reason.to_string()])
    }

    struct PostFilterCase {
        name: &'static str,
        nodes: Vec<(&'static str, i64)>,
        pods: Vec<P>,
        pdbs: Vec<PodDisruptionBudget>,
        rejected: Vec<(&'static str, Code)>,
        preemptor: P,
        args: DefaultPreemptionArgs,
        offset: usize,
        /// The nominated node (`None`: no result), victims, nominations to clear.
        want_result: Option<(&'static str, Vec<&'static str>, Vec<&'static str>)>,
        want_status: (Code, &'static str),
    }

    fn base_case(name: &'static str) -> PostFilterCase {
        PostFilterCase {
            name,
            nodes: vec![("n1", 1000), ("n2", 1000)],
            pods: vec![],
            pdbs: vec![],
            rejected: vec![("n1", Code::Unschedulable), ("n2", Code::Unschedulable)],
            preemptor: p("pre", 100, 1000),
            args: DefaultPreemptionArgs::default(),
            offset: 0,
            want_result: None,
            want_status: (Code::Success, ""),
        }
    }

    #[test]
    fn post_filter_table() {
        let terminating = json!({
            "metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                       "reason": "PreemptionByScheduler"}]}
        });
        let cases = vec![
            PostFilterCase {
                pods: vec![p("low", 10, 1000).on("n1")],
                preemptor: p("pre", 100, 1000).with(json!({"spec": {"preemptionPolicy": "Never"}})),
                want_status: (
                    Code::Unschedulable,
                    "preemption: not eligible due to preemptionPolicy=Never.",
                ),
                ..base_case("preemptionPolicy Never")
            },
            PostFilterCase {
                pods: vec![
                    p("dying", 10, 1000).on("n1").with(terminating.clone()),
                    p("low", 10, 1000).on("n2"),
                ],
                preemptor: p("pre", 100, 1000).with(json!({"status": {"nominatedNodeName": "n1"}})),
                want_status: (
                    Code::Unschedulable,
                    "preemption: not eligible due to a terminating pod on the nominated node.",
                ),
                ..base_case("waits for its victim on the nominated node")
            },
            PostFilterCase {
                pods: vec![
                    // Terminating, but for another reason (no DisruptionTarget condition).
                    p("dying", 10, 1000)
                        .on("n1")
                        .with(json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})),
                ],
                rejected: vec![("n1", Code::Unschedulable)],
                nodes: vec![("n1", 1000)],
                preemptor: p("pre", 100, 1000).with(json!({"status": {"nominatedNodeName": "n1"}})),
                want_result: Some(("n1", vec!["dying"], vec![])),
                ..base_case("a pod terminating for another reason does not block")
            },
            PostFilterCase {
                pods: vec![
                    p("dying", 10, 1000).on("n1").with(terminating.clone()),
                    p("low", 10, 1000).on("n2"),
                ],
                rejected: vec![
                    ("n1", Code::UnschedulableAndUnresolvable),
                    ("n2", Code::Unschedulable),
                ],
                preemptor: p("pre", 100, 1000).with(json!({"status": {"nominatedNodeName": "n1"}})),
                want_result: Some(("n2", vec!["low"], vec![])),
                ..base_case("nominated node now unresolvable: preempts elsewhere")
            },
            PostFilterCase {
                nodes: vec![("n1", 1000), ("n2", 1000), ("n3", 500), ("n4", 1000)],
                pods: vec![
                    p("low1", 10, 1000).on("n1"),
                    p("same", 100, 1000).on("n2"),
                    p("low3", 10, 500).on("n3"),
                ],
                rejected: vec![
                    ("n1", Code::UnschedulableAndUnresolvable),
                    ("n2", Code::Unschedulable),
                    ("n3", Code::Unschedulable),
                ],
                want_result: Some(("", vec![], vec![])),
                want_status: (
                    Code::Unschedulable,
                    "preemption: 0/4 nodes are available: 1 Insufficient cpu, \
                     1 No preemption victims found for incoming pod, \
                     2 Preemption is not helpful for scheduling.",
                ),
                ..base_case("no candidate: upstream's histogram message")
            },
            PostFilterCase {
                rejected: vec![],
                pods: vec![p("low", 10, 1000).on("n1")],
                want_result: Some(("", vec![], vec![])),
                want_status: (
                    Code::Unschedulable,
                    "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
                ),
                ..base_case("nodes absent from the rejections are unresolvable")
            },
            PostFilterCase {
                nodes: vec![],
                rejected: vec![],
                want_status: (Code::Error, "preemption: no nodes available"),
                ..base_case("no nodes at all")
            },
            PostFilterCase {
                pods: vec![p("mid", 50, 1000).on("n1"), p("low", 10, 1000).on("n2")],
                want_result: Some(("n2", vec!["low"], vec![])),
                ..base_case("picks the node with the lower-priority victim")
            },
            PostFilterCase {
                pods: vec![p("mid", 50, 1000).on("n1"), p("low", 10, 1000).on("n2")],
                args: DefaultPreemptionArgs {
                    min_candidate_nodes_percentage: 0,
                    min_candidate_nodes_absolute: 1,
                },
                want_result: Some(("n1", vec!["mid"], vec![])),
                ..base_case("one candidate wanted: the first node from the offset wins")
            },
            PostFilterCase {
                pods: vec![p("mid", 50, 1000).on("n1"), p("low", 10, 1000).on("n2")],
                args: DefaultPreemptionArgs {
                    min_candidate_nodes_percentage: 0,
                    min_candidate_nodes_absolute: 1,
                },
                offset: 1,
                want_result: Some(("n2", vec!["low"], vec![])),
                ..base_case("the offset decides where the dry run starts")
            },
            PostFilterCase {
                pods: vec![
                    p("guarded", 10, 1000).on("n1").labels(json!({"app": "db"})),
                    p("mid", 50, 1000).on("n2"),
                ],
                pdbs: vec![pdb(
                    "default",
                    json!({"matchLabels": {"app": "db"}}),
                    0,
                    &[],
                )],
                args: DefaultPreemptionArgs {
                    min_candidate_nodes_percentage: 0,
                    min_candidate_nodes_absolute: 1,
                },
                want_result: Some(("n2", vec!["mid"], vec![])),
                ..base_case("a PDB-violating candidate does not end the search")
            },
            PostFilterCase {
                nodes: vec![("n1", 2000), ("n2", 1000)],
                pods: vec![
                    p("low", 10, 1000).on("n1"),
                    p("placed-low", 5, 0)
                        .on("n2")
                        .with(json!({"status": {"nominatedNodeName": "n1"}})),
                    p("placed-high", 500, 0)
                        .on("n2")
                        .with(json!({"status": {"nominatedNodeName": "n1"}})),
                ],
                preemptor: p("pre", 100, 2000),
                rejected: vec![("n1", Code::Unschedulable)],
                want_result: Some(("n1", vec!["low"], vec!["placed-low"])),
                ..base_case("lower-priority pods nominated to the node lose their nomination")
            },
        ];
        for c in cases {
            let snap = snapshot(&c.nodes, &c.pods, c.pdbs);
            let rejected: NodeToStatus = c
                .rejected
                .iter()
                .map(|(n, code)| (n.to_string(), status(*code, "rejected")))
                .collect();
            let offset = c.offset;
            let plugin = DefaultPreemption::new(c.args).with_offset_source(move |_| offset);
            let (result, got) = PostFilterPlugin::post_filter(
                &plugin,
                &CycleState::new(),
                &c.preemptor.build(),
                &snap,
                &rejected,
                &FakeFramework::default(),
            );
            assert_eq!(
                (got.code, got.message().as_str()),
                c.want_status,
                "{}",
                c.name
            );
            let result = result.map(|r| {
                let pods = |v: &[Arc<Pod>]| -> Vec<String> {
                    v.iter()
                        .map(|p| p.metadata.name.clone().unwrap_or_default())
                        .collect()
                };
                (
                    r.nominated_node.clone(),
                    pods(&r.victims),
                    pods(&r.clear_nominations),
                )
            });
            let want = c.want_result.map(|(n, v, cl)| {
                let own = |x: Vec<&str>| x.into_iter().map(String::from).collect::<Vec<_>>();
                (n.to_string(), own(v), own(cl))
            });
            assert_eq!(result, want, "{}", c.name);
        }
    }

    #[test]
    fn dry_runs_work_on_copies_of_the_cycle_state() {
        let snap = snapshot(
            &[("n1", 1000), ("n2", 1000)],
            &[p("a", 10, 1000).on("n1"), p("b", 10, 1000).on("n2")],
            vec![],
        );
        let mut state = CycleState::new();
        state.write(CALLS, Calls::default());
        let rejected: NodeToStatus = [("n1", Code::Unschedulable), ("n2", Code::Unschedulable)]
            .into_iter()
            .map(|(n, c)| (n.to_string(), status(c, "Insufficient cpu")))
            .collect();
        let plugin = DefaultPreemption::new(DefaultPreemptionArgs::default());
        let (result, got) = PostFilterPlugin::post_filter(
            &plugin,
            &state,
            &p("pre", 100, 1000).build(),
            &snap,
            &rejected,
            &FakeFramework::default(),
        );
        assert!(got.is_success(), "{got}");
        assert_eq!(result.unwrap().victims.len(), 1);
        assert_eq!(state.read::<Calls>(CALLS), Some(&Calls::default()));
        assert_eq!(snap.nodes[0].pods.len(), 1, "the snapshot is untouched");

        // Within one dry run the extensions see every removal and reprieve attempt.
        let mut copy = state.clone();
        let mut info = NodeInfo::clone(&snap.nodes[0]);
        select_victims_on_node(
            &mut copy,
            &p("pre", 100, 500).build(),
            &mut info,
            &[],
            &FakeFramework::default(),
        )
        .unwrap();
        // "a" was removed, re-added (pod fit: 1500 > 1000 fails) and removed again.
        assert_eq!(
            copy.read::<Calls>(CALLS),
            Some(&Calls {
                added: 1,
                removed: 2
            })
        );
        assert_eq!(info.requested.milli_cpu, 0);
    }

    #[test]
    fn args_table() {
        // (args, (percentage, absolute) or the error)
        type Case = (Option<Value>, Result<(i32, i32), &'static str>);
        let cases: Vec<Case> = vec![
            (None, Ok((10, 100))),
            (Some(Value::Null), Ok((10, 100))),
            (
                Some(json!({"apiVersion": "kubescheduler.config.k8s.io/v1",
                            "kind": "DefaultPreemptionArgs", "minCandidateNodesPercentage": 50})),
                Ok((50, 100)),
            ),
            (
                Some(json!({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 3})),
                Ok((0, 3)),
            ),
            (
                Some(json!({"minCandidateNodesPercentage": 110})),
                Err("minCandidateNodesPercentage: Invalid value: 110: not in valid range [0, 100]"),
            ),
            (
                Some(json!({"minCandidateNodesAbsolute": -1})),
                Err("minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)"),
            ),
            (
                Some(json!({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0})),
                Err(
                    "[minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same \
                     time as minCandidateNodesAbsolute, minCandidateNodesAbsolute: Invalid value: \
                     0: cannot be zero at the same time as minCandidateNodesPercentage]",
                ),
            ),
        ];
        for (input, want) in cases {
            let got = DefaultPreemptionArgs::from_json(input.as_ref()).map(|a| {
                (
                    a.min_candidate_nodes_percentage,
                    a.min_candidate_nodes_absolute,
                )
            });
            assert_eq!(got, want.map_err(String::from), "{input:?}");
        }
        let unknown = DefaultPreemptionArgs::from_json(Some(&json!({"minCandidates": 1})));
        assert!(unknown.unwrap_err().contains("unknown field"));
        assert!(new(Some(&json!({"minCandidateNodesPercentage": "x"}))).is_err());
        assert_eq!(new(None).unwrap().name(), NAME);
    }

    #[test]
    fn num_candidates_table() {
        // (percentage, absolute, nodes, want)
        let cases = [
            (10, 100, 50, 50),
            (10, 100, 5000, 500),
            (10, 100, 0, 0),
            (0, 1, 10, 1),
            (40, 1, 10, 4),
            (100, 0, 7, 7),
            (1, 0, 50, 1),
        ];
        for (pct, abs, nodes, want) in cases {
            let args = DefaultPreemptionArgs {
                min_candidate_nodes_percentage: pct,
                min_candidate_nodes_absolute: abs,
            };
            assert_eq!(
                args.num_candidates(nodes),
                want,
                "{pct}% / {abs} of {nodes}"
            );
        }
    }

    #[test]
    fn fit_error_message_counts_and_sorts_like_upstream() {
        let mut statuses = NodeToStatus::new();
        for i in 0..10 {
            statuses.insert(
                format!("a{i}"),
                status(Code::Unschedulable, "Insufficient cpu"),
            );
        }
        statuses.insert(
            "b".into(),
            Status::new(
                Code::Unschedulable,
                vec!["Insufficient cpu".into(), "Insufficient memory".into()],
            ),
        );
        // 11 nodes with statuses, 3 absent; "11 ..." sorts before "3 ..." as strings, as upstream.
        assert_eq!(
            fit_error_message(14, &statuses, NOT_HELPFUL_REASON),
            "0/14 nodes are available: 1 Insufficient memory, 11 Insufficient cpu, \
             3 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fit_error_message(0, &NodeToStatus::new(), NOT_HELPFUL_REASON),
            "0/0 nodes are available:"
        );
    }

    #[test]
    fn terminating_by_preemption_table() {
        let deleting = json!("2024-01-01T00:00:00Z");
        let cases = [
            (json!({}), false),
            (
                json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                                  "reason": "PreemptionByScheduler"}]}}),
                false,
            ),
            (json!({"metadata": {"deletionTimestamp": deleting}}), false),
            (
                json!({"metadata": {"deletionTimestamp": deleting},
                       "status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                                  "reason": "EvictionByEvictionAPI"}]}}),
                false,
            ),
            (
                json!({"metadata": {"deletionTimestamp": deleting},
                       "status": {"conditions": [{"type": "Ready", "status": "False"},
                                                 {"type": "DisruptionTarget", "status": "True",
                                                  "reason": "PreemptionByScheduler"}]}}),
                true,
            ),
        ];
        for (extra, want) in cases {
            let pod = p("x", 0, 0).with(extra.clone()).build();
            assert_eq!(pod_terminating_by_preemption(&pod), want, "{extra}");
        }
    }
}
