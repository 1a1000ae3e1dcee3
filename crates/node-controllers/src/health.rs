//! Judging whether a node's kubelet is still alive (upstream's `tryUpdateNodeHealth`).
//!
//! A kubelet proves it is alive two ways: renewing its Lease in `kube-node-lease` and posting
//! a new `lastHeartbeatTime` on its Ready condition. [`HealthMap`] remembers, per node, the
//! last renewTime and heartbeat it saw and *when this controller saw them change* (the probe
//! time). Staleness is measured on this controller's own monotonic clock from that moment,
//! never by comparing the kubelet's timestamps with our wall clock, so clock skew between
//! machines cannot make a healthy node look dead (or a dead one alive).
//!
//! Guarantees:
//! * A node first seen (or seen again after a controller restart) gets a full grace period
//!   from that moment: no node is judged on evidence gathered before we were watching.
//! * A node that never posted a Ready condition gets the startup grace instead.
//! * [`unknown_conditions`] is what upstream writes for a stale node: Ready, MemoryPressure,
//!   DiskPressure and PIDPressure become `Unknown` (NetworkUnavailable is the network
//!   plugin's, not the kubelet's, and is left alone).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;

use crate::taints::condition;

/// The kubelet-owned conditions a stale node has set to Unknown.
pub const KUBELET_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The evidence last seen for one node.
#[derive(Clone, Debug)]
struct Probe {
    heartbeat: Option<Timestamp>,
    renew: Option<Timestamp>,
    at: Instant,
}

/// Grace periods.
#[derive(Clone, Copy, Debug)]
pub struct Grace {
    /// For nodes with a Ready condition.
    pub monitor: Duration,
    /// For nodes that never posted one.
    pub startup: Duration,
}

/// Per-node probe times.
#[derive(Debug, Default)]
pub struct HealthMap {
    probes: HashMap<String, Probe>,
}

impl HealthMap {
    /// Records what `node` and its `lease` show at `now`; true when the node has shown no
    /// sign of life for longer than its grace period.
    pub fn observe(
        &mut self,
        node: &Node,
        lease: Option<&Lease>,
        grace: Grace,
        now: Instant,
    ) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = condition(node, "Ready");
        let heartbeat = ready
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0);
        let renew = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let probe = self.probes.entry(name).or_insert(Probe {
            heartbeat,
            renew,
            at: now,
        });
        // Any *change* is a sign of life, whichever way the kubelet's clock moved.
        if probe.heartbeat != heartbeat {
            probe.heartbeat = heartbeat;
            probe.at = now;
        }
        if renew.is_some() && probe.renew != renew {
            probe.renew = renew;
            probe.at = now;
        }
        let grace = if ready.is_some() {
            grace.monitor
        } else {
            grace.startup
        };
        now.duration_since(probe.at) > grace
    }

    /// Forgets a deleted node.
    pub fn forget(&mut self, name: &str) {
        self.probes.remove(name);
    }

    /// Names of the nodes remembered.
    pub fn names(&self) -> Vec<String> {
        self.probes.keys().cloned().collect()
    }
}

/// The conditions of a stale `node` after marking its kubelet's conditions Unknown at `now`,
/// in the node's order with never-posted ones appended; `None` when nothing changes.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".to_owned();
                c.reason = Some("NodeStatusUnknown".to_owned());
                c.message = Some("Kubelet stopped posting node status.".to_owned());
                // lastHeartbeatTime stays: it is when the kubelet last spoke.
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            Some(_) => {}
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_owned(),
                    status: "Unknown".to_owned(),
                    reason: Some("NodeStatusNeverUpdated".to_owned()),
                    message: Some("Kubelet never posted node status.".to_owned()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::NodeStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const GRACE: Grace = Grace {
        monitor: Duration::from_secs(40),
        startup: Duration::from_secs(60),
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn node(ready: Option<(&str, &str)>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n".into()),
                creation_timestamp: Some(Time(ts("2025-01-01T00:00:00Z"))),
                ..Default::default()
            },
            status: Some(NodeStatus {
                conditions: ready.map(|(status, hb)| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: status.into(),
                        reason: Some("KubeletReady".into()),
                        last_heartbeat_time: Some(Time(ts(hb))),
                        last_transition_time: Some(Time(ts(hb))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn lease(renew: &str) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    ts(renew),
                )),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn staleness_is_measured_from_when_we_saw_the_last_change() {
        let mut h = HealthMap::default();
        // The kubelet's clock is a year behind ours: irrelevant.
        let n = node(Some(("True", "2024-01-01T00:00:00Z")));
        let t0 = Instant::now();
        assert!(!h.observe(&n, Some(&lease("2024-01-01T00:00:00Z")), GRACE, t0));
        // Lease renewals keep it alive although the heartbeat never moves.
        let t1 = t0 + Duration::from_secs(30);
        assert!(!h.observe(&n, Some(&lease("2024-01-01T00:00:10Z")), GRACE, t1));
        let t2 = t1 + Duration::from_secs(40);
        assert!(!h.observe(&n, Some(&lease("2024-01-01T00:00:10Z")), GRACE, t2));
        let t3 = t1 + Duration::from_secs(41);
        assert!(h.observe(&n, Some(&lease("2024-01-01T00:00:10Z")), GRACE, t3));
        // A new heartbeat (even an earlier one: the kubelet's clock was reset) revives it.
        let back = node(Some(("True", "2023-06-01T00:00:00Z")));
        assert!(!h.observe(&back, Some(&lease("2024-01-01T00:00:10Z")), GRACE, t3));
        // A lease that disappears is no sign of life, nor of death.
        let t4 = t3 + Duration::from_secs(41);
        assert!(h.observe(&back, None, GRACE, t4));
        h.forget("n");
        assert!(h.names().is_empty());
        // First sight (a restarted controller): a full grace period from now.
        assert!(!h.observe(&back, None, GRACE, t4));
    }

    #[tokio::test(start_paused = true)]
    async fn nodes_that_never_posted_status_get_the_startup_grace() {
        let mut h = HealthMap::default();
        let n = node(None);
        let t0 = Instant::now();
        assert!(!h.observe(&n, None, GRACE, t0));
        assert!(!h.observe(&n, None, GRACE, t0 + Duration::from_secs(50)));
        assert!(h.observe(&n, None, GRACE, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn stale_nodes_get_upstreams_unknown_conditions() {
        let now = ts("2025-02-01T00:00:00Z");
        let mut n = node(Some(("True", "2025-01-31T00:00:00Z")));
        let conds = unknown_conditions(&n, now).unwrap();
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, KUBELET_CONDITIONS);
        let ready = &conds[0];
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(
            ready.last_heartbeat_time,
            Some(Time(ts("2025-01-31T00:00:00Z")))
        );
        assert_eq!(ready.last_transition_time, Some(Time(now)));
        let never = &conds[1];
        assert_eq!(never.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(
            never.message.as_deref(),
            Some("Kubelet never posted node status.")
        );
        assert_eq!(
            never.last_heartbeat_time,
            Some(Time(ts("2025-01-01T00:00:00Z")))
        );
        // Already all Unknown: nothing to write.
        n.status.as_mut().unwrap().conditions = Some(conds);
        assert_eq!(unknown_conditions(&n, now), None);
    }
}
