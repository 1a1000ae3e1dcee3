//! Nodes: `NAME STATUS ROLES AGE VERSION` and, wide, addresses and system info.
//!
//! STATUS comes from the Ready condition alone (`Ready`, `NotReady`, `Unknown` without one),
//! followed by `SchedulingDisabled` for a cordoned node. ROLES are the suffixes of
//! `node-role.kubernetes.io/<role>` labels plus the value of `kubernetes.io/role`, sorted.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{NodeStatus, NodeSystemInfo};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::table::{Ctx, Printer, Row, TableError, decode, name, s};
use crate::view::{ConditionView, LabeledMeta};

static COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Status", "The status of the node"),
        Column::string("Roles", "The roles of the node"),
        columns::age(),
        Column::string("Version", doc::<NodeSystemInfo>("kubeletVersion")),
        Column::string("Internal-IP", doc::<NodeStatus>("addresses")).wide(),
        Column::string("External-IP", doc::<NodeStatus>("addresses")).wide(),
        Column::string("OS-Image", doc::<NodeSystemInfo>("osImage")).wide(),
        Column::string("Kernel-Version", doc::<NodeSystemInfo>("kernelVersion")).wide(),
        Column::string(
            "Container-Runtime",
            doc::<NodeSystemInfo>("containerRuntimeVersion"),
        )
        .wide(),
    ])
});

pub(crate) static NODE: Printer = Printer {
    columns: &COLUMNS,
    row,
};

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

#[derive(Default, Deserialize)]
#[serde(default)]
struct NodeView<'a> {
    #[serde(borrow)]
    metadata: LabeledMeta<'a>,
    spec: NodeSpecView,
    #[serde(borrow)]
    status: NodeStatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NodeSpecView {
    unschedulable: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NodeStatusView<'a> {
    #[serde(borrow)]
    conditions: Vec<ConditionView<'a>>,
    #[serde(borrow)]
    addresses: Vec<AddressView<'a>>,
    #[serde(borrow)]
    node_info: NodeInfoView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AddressView<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    address: &'a str,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NodeInfoView<'a> {
    kubelet_version: &'a str,
    os_image: &'a str,
    kernel_version: &'a str,
    container_runtime_version: &'a str,
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "<unknown>" } else { s }
}

fn row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let node: NodeView<'_> = decode(obj, "Node")?;
    let status = &node.status;

    // Upstream indexes conditions by type, so the last Ready condition wins.
    let ready = status.conditions.iter().rfind(|c| c.type_ == Some("Ready"));
    let mut state: Vec<&str> = vec![match ready {
        Some(c) if c.status == Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node.spec.unschedulable == Some(true) {
        state.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    for (k, v) in node.metadata.labels.iter().flatten() {
        if let Some(role) = k.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role);
            }
        } else if *k == ROLE_LABEL && !v.is_empty() {
            roles.insert(*v);
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };

    let address = |ty: &str| {
        status
            .addresses
            .iter()
            .find(|a| a.type_ == ty)
            .map_or("<none>", |a| a.address)
    };
    let info = &status.node_info;
    let meta = node.metadata.meta();
    Ok(vec![
        name(&meta),
        s(state.join(",")),
        s(roles),
        ctx.age(&meta),
        s(info.kubelet_version),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(or_unknown(info.os_image)),
        s(or_unknown(info.kernel_version)),
        s(or_unknown(info.container_runtime_version)),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn node_columns() {
        assert_eq!(
            header_line("", "v1", "Node"),
            "NAME STATUS ROLES AGE VERSION [INTERNAL-IP] [EXTERNAL-IP] [OS-IMAGE] [KERNEL-VERSION] [CONTAINER-RUNTIME]"
        );
    }

    #[test]
    fn ready_control_plane_node() {
        let n = json!({
            "metadata": {"name": "node-1", "creationTimestamp": ago(86400 * 3),
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/master": "true",
                                    "kubernetes.io/role": "etcd",
                                    "kubernetes.io/hostname": "node-1"}},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                               {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "runc://1.1.12",
                             "architecture": "amd64", "bootID": "", "kubeProxyVersion": "", "machineID": "",
                             "operatingSystem": "linux", "systemUUID": ""},
            },
        });
        assert_eq!(
            cells("", "v1", "Node", n),
            json!([
                "node-1",
                "Ready",
                "control-plane,etcd,master",
                "3d",
                "v1.33.1",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "runc://1.1.12"
            ])
        );
    }

    #[test]
    fn cordoned_and_not_ready() {
        let n = json!({
            "metadata": {"name": "node-2"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                       "addresses": [{"type": "ExternalIP", "address": "203.0.113.5"}]},
        });
        assert_eq!(
            cells("", "v1", "Node", n),
            json!([
                "node-2",
                "NotReady,SchedulingDisabled",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "203.0.113.5",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
        let fresh = json!({"metadata": {"name": "node-3"}});
        assert_eq!(cells("", "v1", "Node", fresh)[1], "Unknown");
    }
}
