//! DefaultBinder: binds every pod through the `pods/binding` subresource, as upstream's
//! `pkg/scheduler/framework/plugins/defaultbinder`. The scheduler carries out the returned
//! [`BindAction`], so the plugin itself needs no client.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{BindAction, BindPlugin, CycleState, Plugin};
use crate::plugins::node_name::expect_no_args;

pub const NAME: &str = "DefaultBinder";

/// The plugin; it has no args.
pub struct DefaultBinder;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(DefaultBinder))
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(&self, _state: &CycleState, _pod: &Pod, node: &str) -> BindAction {
        BindAction::Binding {
            node: node.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binds_to_the_chosen_node() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        let plugin = new(None).unwrap();
        assert_eq!(plugin.name(), NAME);
        let binder = plugin.bind().unwrap();
        for node in ["n1", "node-with-a-long-name"] {
            assert_eq!(
                binder.bind(&CycleState::new(), &pod, node),
                BindAction::Binding {
                    node: node.to_string()
                }
            );
        }
        assert!(new(Some(&json!({"bindTimeoutSeconds": 3}))).is_err());
    }
}
