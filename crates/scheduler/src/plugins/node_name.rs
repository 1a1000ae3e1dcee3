//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node, as upstream's
//! `pkg/scheduler/framework/plugins/nodename`.
//!
//! Like upstream it is a Filter only: a pod naming a node that does not exist is rejected by
//! every node with the same reason, which is what `kubectl describe` users expect to read.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, Status};

pub const NAME: &str = "NodeName";

/// The Filter reason (UnschedulableAndUnresolvable).
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The plugin; it has no args.
pub struct NodeName;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(NodeName))
}

/// Checks the args of a plugin that takes none: nothing, `null`, or an object holding at most
/// `apiVersion` and `kind` is accepted; anything else is a configuration mistake worth
/// reporting rather than ignoring (upstream fails to decode args for such plugins too).
pub(crate) fn expect_no_args(plugin: &str, args: Option<&serde_json::Value>) -> Result<(), String> {
    let Some(value) = args.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(object) = value.as_object() else {
        return Err(format!("plugin {plugin} takes no args, got {value}"));
    };
    match object
        .keys()
        .find(|k| k.as_str() != "apiVersion" && k.as_str() != "kind")
    {
        Some(key) => Err(format!("plugin {plugin} takes no args, got field {key:?}")),
        None => Ok(()),
    }
}

/// Whether `pod` may run on `node` as far as `spec.nodeName` goes.
pub fn fits(pod: &Pod, node: &NodeInfo) -> bool {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        None | Some("") => true,
        Some(name) => name == node.name(),
    }
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        // Only a node with the requested name appearing can help.
        vec![ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        if fits(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::json;

    fn node(name: &str) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        ))
    }

    fn pod(node_name: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}], "nodeName": node_name}
        }))
        .unwrap()
    }

    #[test]
    fn filter() {
        let cases = [
            ("no node name fits any node", None, "n1", Code::Success),
            (
                "empty node name fits any node",
                Some(""),
                "n1",
                Code::Success,
            ),
            ("matching name", Some("n1"), "n1", Code::Success),
            (
                "other name",
                Some("n2"),
                "n1",
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (name, want_node, on, code) in cases {
            let s = FilterPlugin::filter(&NodeName, &CycleState::new(), &pod(want_node), &node(on));
            assert_eq!(s.code, code, "{name}");
            if code != Code::Success {
                assert_eq!(s.reasons, vec![ERR_REASON.to_string()], "{name}");
            }
        }
    }

    #[test]
    fn args() {
        let cases = [
            (None, true),
            (Some(json!(null)), true),
            (Some(json!({})), true),
            (
                Some(json!({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "X"})),
                true,
            ),
            (Some(json!({"foo": 1})), false),
            (Some(json!(3)), false),
        ];
        for (args, ok) in cases {
            assert_eq!(new(args.as_ref()).is_ok(), ok, "{args:?}");
        }
        assert_eq!(new(None).unwrap().name(), NAME);
    }
}
