//! NodePorts: a pod asking for host ports fits only nodes where none of them is taken, as
//! upstream's `pkg/scheduler/framework/plugins/nodeports`.
//!
//! PreFilter collects the pod's host ports (Skip when it has none, so Filter does not run);
//! Filter compares them with the ports of the pods on the node. A port conflicts with a used
//! one of the same protocol and number when either binds `0.0.0.0` or both bind the same IP.
//! Preemption can free ports, so the rejection is plain Unschedulable.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, HostPort, NodeInfo, Plugin, PreFilterPlugin,
    PreFilterResult, Snapshot, Status, host_ports,
};
use crate::plugins::node_name::expect_no_args;

pub const NAME: &str = "NodePorts";

const PRE_FILTER_KEY: &str = "PreFilterNodePorts";

/// The Filter reason (Unschedulable).
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

const BIND_ALL: &str = "0.0.0.0";

/// The plugin; it has no args.
pub struct NodePorts;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(NodePorts))
}

/// The pod's host ports, computed once per cycle.
#[derive(Clone, Debug)]
struct PreFilterState {
    ports: Vec<HostPort>,
}

/// Whether `wanted` collides with any of `used` (upstream's `HostPortInfo.CheckConflict`).
fn conflicts(wanted: &HostPort, used: &[HostPort]) -> bool {
    wanted.port > 0
        && used.iter().any(|u| {
            u.port == wanted.port
                && u.protocol == wanted.protocol
                && (wanted.ip == BIND_ALL || u.ip == BIND_ALL || u.ip == wanted.ip)
        })
}

/// Whether every port in `wanted` is free on `node`.
pub fn fits_ports(wanted: &[HostPort], node: &NodeInfo) -> bool {
    !wanted.iter().any(|w| conflicts(w, &node.used_ports))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        // A pod holding the port goes away, or a node appears or changes.
        vec![
            ClusterEvent::PodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ]
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let ports = host_ports(pod);
        if ports.is_empty() {
            return (PreFilterResult::all(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, PreFilterState { ports });
        (PreFilterResult::all(), Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let fits = match state.read::<PreFilterState>(PRE_FILTER_KEY) {
            Some(s) => fits_ports(&s.ports, node),
            // PreFilter did not run (e.g. Filter called alone by preemption's what-ifs).
            None => fits_ports(&host_ports(pod), node),
        };
        if fits {
            Status::success()
        } else {
            Status::unschedulable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, PodInfo};
    use serde_json::{Value, json};

    /// Ports as `(protocol, hostIP, hostPort)`.
    fn pod(name: &str, ports: &[(&str, &str, i32)]) -> Pod {
        let ports: Vec<Value> = ports
            .iter()
            .map(|(proto, ip, port)| {
                json!({"containerPort": 80, "protocol": proto, "hostIP": ip, "hostPort": port})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "uid": name},
            "spec": {"containers": [{"name": "c", "ports": ports}]}
        }))
        .unwrap()
    }

    fn node_with(existing: &[(&str, &str, i32)]) -> NodeInfo {
        let mut n = NodeInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap(),
        ));
        n.add_pod(Arc::new(PodInfo::new(Arc::new(pod("existing", existing)))));
        n
    }

    #[test]
    fn filter() {
        type Ports<'a> = &'a [(&'a str, &'a str, i32)];
        let cases: [(&str, Ports, Ports, bool); 9] = [
            ("no ports", &[], &[("TCP", "", 8080)], true),
            (
                "other port",
                &[("TCP", "", 8081)],
                &[("TCP", "", 8080)],
                true,
            ),
            (
                "other protocol",
                &[("UDP", "", 8080)],
                &[("TCP", "", 8080)],
                true,
            ),
            (
                "same port",
                &[("TCP", "", 8080)],
                &[("TCP", "", 8080)],
                false,
            ),
            (
                "different IPs",
                &[("TCP", "10.0.0.1", 8080)],
                &[("TCP", "10.0.0.2", 8080)],
                true,
            ),
            (
                "same IP",
                &[("TCP", "10.0.0.1", 8080)],
                &[("TCP", "10.0.0.1", 8080)],
                false,
            ),
            (
                "wanted 0.0.0.0 conflicts with any IP",
                &[("TCP", "0.0.0.0", 8080)],
                &[("TCP", "10.0.0.1", 8080)],
                false,
            ),
            (
                "used 0.0.0.0 conflicts with any IP",
                &[("TCP", "10.0.0.1", 8080)],
                &[("TCP", "", 8080)],
                false,
            ),
            (
                "one of several conflicts",
                &[("UDP", "", 53), ("TCP", "", 8080)],
                &[("TCP", "127.0.0.1", 8080)],
                false,
            ),
        ];
        for (name, wanted, used, fits) in cases {
            let p = pod("new", wanted);
            let node = node_with(used);
            let mut state = CycleState::new();
            let (result, pre) =
                PreFilterPlugin::pre_filter(&NodePorts, &mut state, &p, &Snapshot::default());
            assert_eq!(result, PreFilterResult::all(), "{name}");
            assert_eq!(pre.is_skip(), wanted.is_empty(), "{name}");
            for state in [state, CycleState::new()] {
                let s = FilterPlugin::filter(&NodePorts, &state, &p, &node);
                if fits {
                    assert!(s.is_success(), "{name}: {s}");
                } else {
                    assert_eq!(s.code, Code::Unschedulable, "{name}");
                    assert_eq!(s.message(), ERR_REASON, "{name}");
                }
            }
        }
    }
}
