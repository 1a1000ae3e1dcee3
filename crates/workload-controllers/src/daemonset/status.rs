//! A DaemonSet's status from its nodes and pods (upstream's `updateDaemonSetStatus`).
//!
//! For every node that should run the pod: `desiredNumberScheduled`; if it has a daemon pod
//! (bound or pinned to it), `currentNumberScheduled`, and the oldest such pod decides
//! `numberReady`, `numberAvailable` and `updatedNumberScheduled` (so a surging node counts as
//! updated only once its old pod is gone). A node with daemon pods that should not run one
//! is `numberMisscheduled`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use serde_json::{Value, json};

use super::plan::NodePods;

/// The status `ds` should have; `collision_count` is the one after this sync's history work.
pub fn compute(
    ds: &DaemonSet,
    nodes: &BTreeMap<String, NodePods>,
    collision_count: i32,
) -> DaemonSetStatus {
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for n in nodes.values() {
        let Some(v) = n.verdict else { continue };
        let oldest = n.pods.first();
        if v.should_run {
            desired += 1;
            if let Some(p) = oldest {
                current += 1;
                ready += i32::from(p.ready);
                available += i32::from(p.ready && p.available);
                updated += i32::from(p.updated);
            }
        } else if oldest.is_some() {
            misscheduled += 1;
        }
    }
    DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: Some(available),
        number_unavailable: Some((desired - available).max(0)),
        updated_number_scheduled: Some(updated),
        collision_count: Some(collision_count),
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
    }
}

/// A merge patch writing every field `compute` sets.
pub fn patch(s: &DaemonSetStatus) -> Value {
    json!({"status": {
        "observedGeneration": s.observed_generation,
        "desiredNumberScheduled": s.desired_number_scheduled,
        "currentNumberScheduled": s.current_number_scheduled,
        "numberMisscheduled": s.number_misscheduled,
        "numberReady": s.number_ready,
        "numberAvailable": s.number_available,
        "numberUnavailable": s.number_unavailable,
        "updatedNumberScheduled": s.updated_number_scheduled,
        "collisionCount": s.collision_count,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::placement::Verdict;
    use crate::daemonset::plan::DaemonPod;

    fn pod(updated: bool, ready: bool, available: bool) -> DaemonPod {
        DaemonPod {
            name: "p".into(),
            updated,
            terminating: false,
            failed: false,
            ready,
            available,
            scheduled: true,
        }
    }

    #[test]
    fn counts_per_node() {
        let run = Some(Verdict {
            should_run: true,
            should_continue_running: true,
        });
        let off = Some(Verdict {
            should_run: false,
            should_continue_running: false,
        });
        let nodes: BTreeMap<String, NodePods> = [
            ("a", run, vec![pod(true, true, true)]),
            (
                "b",
                run,
                vec![pod(false, true, true), pod(true, false, false)],
            ),
            ("c", run, vec![pod(true, true, false)]),
            ("d", run, vec![]),
            ("e", off, vec![pod(true, true, true)]),
            ("f", None, vec![pod(true, true, true)]),
        ]
        .into_iter()
        .map(|(n, verdict, pods)| (n.to_string(), NodePods { verdict, pods }))
        .collect();
        let mut ds = DaemonSet::default();
        ds.metadata.generation = Some(2);
        let s = compute(&ds, &nodes, 0);
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.desired_number_scheduled, 4);
        assert_eq!(s.current_number_scheduled, 3);
        assert_eq!(s.number_misscheduled, 1);
        assert_eq!(s.number_ready, 3);
        assert_eq!(s.number_available, Some(2));
        assert_eq!(s.number_unavailable, Some(2));
        assert_eq!(s.updated_number_scheduled, Some(2));
        assert_eq!(patch(&s)["status"]["numberUnavailable"], 2);
    }
}
