//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes no new pods, except those
//! tolerating the `node.kubernetes.io/unschedulable:NoSchedule` taint (upstream's
//! `pkg/scheduler/framework/plugins/nodeunschedulable`). The node lifecycle controller adds
//! that taint to cordoned nodes; this plugin does not depend on it being there yet.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Taint};

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, Status};
use crate::plugins::node_name::expect_no_args;
use crate::plugins::taint_toleration::{EFFECT_NO_SCHEDULE, pod_tolerations, tolerations_tolerate};

pub const NAME: &str = "NodeUnschedulable";

/// The Filter reason (UnschedulableAndUnresolvable).
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

/// The taint a pod must tolerate to land on a cordoned node.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The plugin; it has no args.
pub struct NodeUnschedulable;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(NodeUnschedulable))
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        // The node being uncordoned (or a new node), or the pod gaining the toleration.
        vec![
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::PodUpdate,
        ]
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.to_string(),
            effect: EFFECT_NO_SCHEDULE.to_string(),
            ..Taint::default()
        };
        if tolerations_tolerate(pod_tolerations(pod), &taint) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{Value, json};

    fn node(unschedulable: Option<bool>) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "n"},
                "spec": {"unschedulable": unschedulable}
            }))
            .unwrap(),
        ))
    }

    fn pod(tolerations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}
        }))
        .unwrap()
    }

    #[test]
    fn filter() {
        let cases = [
            ("schedulable node", None, json!([]), Code::Success),
            (
                "explicitly schedulable",
                Some(false),
                json!([]),
                Code::Success,
            ),
            (
                "cordoned",
                Some(true),
                json!([]),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "cordoned, tolerated",
                Some(true),
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
                Code::Success,
            ),
            (
                "cordoned, tolerate everything",
                Some(true),
                json!([{"operator": "Exists"}]),
                Code::Success,
            ),
            (
                "cordoned, wrong effect",
                Some(true),
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}]),
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (name, unschedulable, tolerations, code) in cases {
            let s = FilterPlugin::filter(
                &NodeUnschedulable,
                &CycleState::new(),
                &pod(tolerations),
                &node(unschedulable),
            );
            assert_eq!(s.code, code, "{name}");
            if code != Code::Success {
                assert_eq!(s.message(), ERR_REASON_UNSCHEDULABLE, "{name}");
            }
        }
        assert_eq!(new(None).unwrap().name(), NAME);
    }
}
