//! Why a pod is (or is not) where it is: the scheduler's plugins re-run for one pod against a
//! snapshot of the cluster, with every Filter plugin asked about every node (not only until the
//! first rejection, as a scheduling cycle does) and every feasible node scored.
//!
//! This is a re-evaluation against the state the snapshot holds, not a record of the
//! scheduler's past decision: the scheduler writes nothing per pod beyond the binding and the
//! `PodScheduled` condition, so `keelson why` rebuilds the same [`Snapshot`] from the API with
//! [`crate::cache`] and runs the same [`Framework`] here. A pod that was bound should be left
//! out of the snapshot so that it does not compete with itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::algorithm::{self, FitError};
use crate::framework::{CycleState, NodeInfo, Snapshot, Status};
use crate::profile::{Framework, PluginScore};

/// One node's rejection by one Filter plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub node: String,
    pub reason: String,
}

/// A scored node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoredNode {
    pub node: String,
    pub total: i64,
    /// Weighted score per Score plugin, in the profile's order.
    pub plugins: Vec<PluginScore>,
}

/// What the plugins say about one pod.
#[derive(Clone, Debug, Default)]
pub struct Explanation {
    pub nodes: usize,
    /// PreFilter rejected the pod on every node (or failed).
    pub pre_filter: Option<Status>,
    /// Nodes PreFilter left out, when it narrowed them, and by which plugins.
    pub narrowed_out: Vec<String>,
    /// Filter plugin → the nodes it rejects, in the profile's Filter order (plugins that
    /// reject nothing are listed with no nodes).
    pub filters: Vec<(&'static str, Vec<Rejection>)>,
    /// Filter plugins PreFilter said have nothing to check for this pod.
    pub skipped: Vec<&'static str>,
    /// Nodes that pass every filter.
    pub feasible: Vec<String>,
    /// Every feasible node's score, best first (empty with fewer than two feasible nodes
    /// when no Score plugins ran).
    pub scores: Vec<ScoredNode>,
    /// Upstream's message for a pod that fits nowhere (`0/N nodes are available: ...`),
    /// including what preemption would say.
    pub summary: Option<String>,
}

/// Re-runs `fw` for `pod` over `snapshot`.
pub fn explain(fw: &Framework, pod: &Pod, snapshot: &Snapshot) -> Explanation {
    let mut out = Explanation {
        nodes: snapshot.len(),
        ..Explanation::default()
    };
    if snapshot.is_empty() {
        out.summary = Some(algorithm::ScheduleError::NoNodesAvailable.to_string());
        return out;
    }
    let mut state = CycleState::new();
    let pre = fw.run_pre_filter(&mut state, pod, snapshot);
    if !pre.status.is_success() {
        out.pre_filter = Some(pre.status);
    } else {
        let candidates: Vec<&Arc<NodeInfo>> = match &pre.result.node_names {
            None => snapshot.nodes.iter().collect(),
            Some(names) => {
                out.narrowed_out = snapshot
                    .nodes
                    .iter()
                    .filter(|n| !names.contains(n.name()))
                    .map(|n| n.name().to_string())
                    .collect();
                snapshot
                    .nodes
                    .iter()
                    .filter(|n| names.contains(n.name()))
                    .collect()
            }
        };
        let mut feasible: Vec<Arc<NodeInfo>> = Vec::new();
        let mut by_plugin: BTreeMap<&'static str, Vec<Rejection>> = BTreeMap::new();
        let filters = fw.plugin_names(crate::config::ExtensionPoint::Filter);
        for node in candidates {
            let mut ok = true;
            for name in &filters {
                if state.skip_filter_plugins.contains(name) {
                    continue;
                }
                let Some(f) = fw.plugin(name).and_then(|p| p.filter()) else {
                    continue;
                };
                let s = f.filter(&state, pod, node);
                if !s.is_success() {
                    ok = false;
                    by_plugin.entry(name).or_default().push(Rejection {
                        node: node.name().to_string(),
                        reason: s.message(),
                    });
                }
            }
            if ok {
                feasible.push(node.clone());
            }
        }
        out.skipped = filters
            .iter()
            .filter(|n| state.skip_filter_plugins.contains(*n))
            .copied()
            .collect();
        out.filters = filters
            .iter()
            .filter(|n| !state.skip_filter_plugins.contains(*n))
            .map(|n| (*n, by_plugin.remove(n).unwrap_or_default()))
            .collect();
        out.feasible = feasible.iter().map(|n| n.name().to_string()).collect();
        if !feasible.is_empty() {
            let mut score_state = state.clone();
            match algorithm::prioritize_nodes(fw, &mut score_state, pod, &feasible, snapshot) {
                Ok(scores) => {
                    let mut rows: Vec<ScoredNode> = (0..scores.len())
                        .map(|i| ScoredNode {
                            node: scores.node_name(i).to_string(),
                            total: scores.total(i),
                            plugins: scores.breakdown(i),
                        })
                        .collect();
                    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.node.cmp(&b.node)));
                    out.scores = rows;
                }
                Err(s) => tracing::warn!(error = %s, "scoring failed"),
            }
            return out;
        }
    }
    // Upstream's summary comes from a normal (first-rejection-per-node) filter pass and
    // PostFilter.
    let mut state = CycleState::new();
    let mut start = 0;
    if let Ok((fits, diagnosis)) =
        algorithm::find_nodes_that_fit_pod(fw, &mut state, pod, snapshot, &mut start)
        && fits.is_empty()
    {
        let mut fit = FitError {
            num_all_nodes: snapshot.len(),
            diagnosis,
        };
        if fw.has_post_filter_plugins() {
            algorithm::run_post_filter(fw, &state, pod, snapshot, &mut fit);
        }
        out.summary = Some(fit.to_string());
    }
    out
}

impl Explanation {
    /// The score row of `node`, if it was scored.
    pub fn score_of(&self, node: &str) -> Option<&ScoredNode> {
        self.scores.iter().find(|s| s.node == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_SCHEDULER_NAME, SchedulerConfiguration};
    use crate::profile::Frameworks;
    use crate::registry::Registry;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn node(name: &str, cpu: &str, taint: bool) -> Node {
        let mut n = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        if taint {
            n["spec"] =
                json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]});
        }
        serde_json::from_value(n).unwrap()
    }

    fn pod(cpu: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    }

    fn framework() -> Arc<Framework> {
        let f = Frameworks::new(
            &SchedulerConfiguration::default(),
            &Registry::default_plugins(),
        )
        .unwrap();
        f.get(DEFAULT_SCHEDULER_NAME).unwrap().clone()
    }

    #[test]
    fn every_filter_plugin_reports_every_node_it_rejects() {
        let snapshot = Snapshot::from_objects(
            vec![
                node("small", "1", false),
                node("tainted", "1", true),
                node("big", "8", true),
            ],
            vec![],
        );
        let e = explain(&framework(), &pod("2"), &snapshot);
        assert!(e.feasible.is_empty());
        let rejected = |plugin: &str| -> Vec<String> {
            e.filters
                .iter()
                .find(|(p, _)| *p == plugin)
                .map(|(_, r)| r.iter().map(|r| r.node.clone()).collect())
                .unwrap_or_default()
        };
        let mut fit = rejected("NodeResourcesFit");
        fit.sort();
        assert_eq!(fit, ["small", "tainted"]);
        let mut taint = rejected("TaintToleration");
        taint.sort();
        assert_eq!(taint, ["big", "tainted"]);
        let summary = e.summary.unwrap();
        assert!(
            summary.starts_with("0/3 nodes are available: "),
            "{summary}"
        );
        assert!(summary.contains("Insufficient cpu"), "{summary}");
    }

    #[test]
    fn feasible_nodes_are_ranked_with_a_breakdown() {
        let snapshot =
            Snapshot::from_objects(vec![node("a", "4", false), node("b", "8", false)], vec![]);
        let e = explain(&framework(), &pod("1"), &snapshot);
        assert_eq!(e.feasible.len(), 2);
        assert_eq!(e.summary, None);
        assert_eq!(e.scores.len(), 2);
        assert!(e.scores[0].total >= e.scores[1].total);
        let row = e.score_of("b").unwrap();
        assert!(row.plugins.iter().any(|p| p.plugin == "NodeResourcesFit"));
        assert_eq!(row.total, row.plugins.iter().map(|p| p.score).sum::<i64>());
    }

    #[test]
    fn no_nodes_says_so() {
        let e = explain(&framework(), &pod("1"), &Snapshot::default());
        assert_eq!(
            e.summary.as_deref(),
            Some("no nodes available to schedule pods")
        );
    }
}
