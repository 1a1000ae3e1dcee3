//! The slices of Pods and Nodes the hollow kubelets read. The pod watch sees every pod in the
//! cluster, most of them on other nodes, so decoding only these fields (serde skips the rest)
//! keeps each event cheap.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A container's name and image, all a hollow kubelet needs to report it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ContainerView {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecView {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerView>,
    #[serde(default)]
    pub init_containers: Option<Vec<ContainerView>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConditionView {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatusView {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default)]
    pub conditions: Option<Vec<ConditionView>>,
}

/// A Pod as the hollow kubelets read it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodView {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<PodSpecView>,
    #[serde(default)]
    pub status: Option<PodStatusView>,
}

impl PodView {
    pub fn node_name(&self) -> Option<&str> {
        self.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// The pod IP, if the pod is already reported Running and Ready (by an earlier run of the
    /// simulator), so a restart adopts it instead of reporting it again.
    pub fn running_ip(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (status.phase.as_deref() == Some("Running") && ready)
            .then_some(status.pod_ip.as_deref())
            .flatten()
            .filter(|ip| !ip.is_empty())
    }
}

impl PodView {
    /// Whether the pod has finished (Succeeded or Failed).
    pub fn terminal(&self) -> bool {
        matches!(
            self.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeStatusView {
    #[serde(default)]
    pub conditions: Option<Vec<ConditionView>>,
}

/// A Node as the hollow kubelets read it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeView {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<NodeStatusView>,
}

impl NodeView {
    /// Whether the node's Ready condition is True.
    pub fn ready(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
}

macro_rules! core_v1_resource {
    ($ty:ty, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("")
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("v1")
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

core_v1_resource!(PodView, "Pod", "pods", k8s_openapi::NamespaceResourceScope);
core_v1_resource!(NodeView, "Node", "nodes", k8s_openapi::ClusterResourceScope);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_only_what_it_needs() {
        let pod: PodView = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeName": "hollow-3", "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                     "initContainers": [{"name": "i"}], "volumes": [{"name": "v"}]},
            "status": {"phase": "Running", "podIP": "10.0.3.2",
                       "conditions": [{"type": "Ready", "status": "True"}], "qosClass": "BestEffort"},
        }))
        .unwrap();
        assert_eq!(pod.node_name(), Some("hollow-3"));
        assert_eq!(pod.running_ip(), Some("10.0.3.2"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("nginx"));
        assert_eq!(spec.init_containers.unwrap()[0].name, "i");
    }

    #[test]
    fn running_ip_needs_running_ready_and_an_ip() {
        let cases = [
            (
                json!({"phase": "Running", "podIP": "10.0.0.2", "conditions": [{"type": "Ready", "status": "True"}]}),
                true,
            ),
            (
                json!({"phase": "Running", "podIP": "10.0.0.2", "conditions": [{"type": "Ready", "status": "False"}]}),
                false,
            ),
            (
                json!({"phase": "Pending", "podIP": "10.0.0.2", "conditions": [{"type": "Ready", "status": "True"}]}),
                false,
            ),
            (
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
                false,
            ),
            (
                json!({"phase": "Running", "podIP": "", "conditions": [{"type": "Ready", "status": "True"}]}),
                false,
            ),
            (json!(null), false),
        ];
        for (status, want) in cases {
            let pod: PodView = serde_json::from_value(json!({"status": status})).unwrap();
            assert_eq!(pod.running_ip().is_some(), want, "{status}");
        }
        let unbound: PodView = serde_json::from_value(json!({"spec": {"nodeName": ""}})).unwrap();
        assert_eq!(unbound.node_name(), None);
    }

    #[test]
    fn node_readiness() {
        let cases = [
            (
                json!({"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]}),
                true,
            ),
            (
                json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
                false,
            ),
            (json!({}), false),
        ];
        for (status, want) in cases {
            let node: NodeView = serde_json::from_value(json!({"status": status})).unwrap();
            assert_eq!(node.ready(), want, "{status}");
        }
    }
}
