//! One printer per built-in kind, looked up by (group, kind).
//!
//! Each submodule holds the printers of one API area; a printer is a column set plus a row
//! function that reads the object through its k8s-openapi type. Versions of a kind share the
//! printer when they share the shape; where they do not (autoscaling/v1 against v2, events.k8s.io
//! against core events) the printer converts to the shape upstream prints from.

mod apps;
mod autoscaling;
mod batch;
mod core;
mod events;
mod networking;
mod node;
mod pod;
mod policy;
mod rbac;
mod service;
mod storage;

use crate::table::Printer;

/// The printer for a kind, or `None` for the generic Name / Created At table.
pub(crate) fn printer(group: &str, version: &str, kind: &str) -> Option<&'static Printer> {
    Some(match (group, kind) {
        ("", "Pod") => &pod::POD,
        ("", "PodTemplate") => &core::POD_TEMPLATE,
        ("", "Service") => &service::SERVICE,
        ("", "Endpoints") => &service::ENDPOINTS,
        ("", "Node") => &node::NODE,
        ("", "Namespace") => &core::NAMESPACE,
        ("", "ConfigMap") => &core::CONFIG_MAP,
        ("", "Secret") => &core::SECRET,
        ("", "ServiceAccount") => &core::SERVICE_ACCOUNT,
        ("", "PersistentVolume") => &storage::PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => &storage::PERSISTENT_VOLUME_CLAIM,
        ("", "ReplicationController") => &core::REPLICATION_CONTROLLER,
        ("", "ResourceQuota") => &core::RESOURCE_QUOTA,
        ("", "Event") => &events::CORE_EVENT,
        ("events.k8s.io", "Event") => &events::EVENTS_V1_EVENT,
        ("apps", "Deployment") => &apps::DEPLOYMENT,
        ("apps", "ReplicaSet") => &apps::REPLICA_SET,
        ("apps", "StatefulSet") => &apps::STATEFUL_SET,
        ("apps", "DaemonSet") => &apps::DAEMON_SET,
        ("apps", "ControllerRevision") => &apps::CONTROLLER_REVISION,
        ("batch", "Job") => &batch::JOB,
        ("batch", "CronJob") => &batch::CRON_JOB,
        ("autoscaling", "HorizontalPodAutoscaler") if version == "v1" => &autoscaling::HPA_V1,
        ("autoscaling", "HorizontalPodAutoscaler") => &autoscaling::HPA_V2,
        ("policy", "PodDisruptionBudget") => &policy::POD_DISRUPTION_BUDGET,
        ("networking.k8s.io", "Ingress") => &networking::INGRESS,
        ("networking.k8s.io", "IngressClass") => &networking::INGRESS_CLASS,
        ("networking.k8s.io", "NetworkPolicy") => &networking::NETWORK_POLICY,
        ("discovery.k8s.io", "EndpointSlice") => &networking::ENDPOINT_SLICE,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::CLUSTER_ROLE_BINDING,
        ("storage.k8s.io", "StorageClass") => &storage::STORAGE_CLASS,
        ("storage.k8s.io", "CSIDriver") => &storage::CSI_DRIVER,
        ("storage.k8s.io", "CSINode") => &storage::CSI_NODE,
        ("storage.k8s.io", "VolumeAttachment") => &storage::VOLUME_ATTACHMENT,
        ("coordination.k8s.io", "Lease") => &policy::LEASE,
        ("scheduling.k8s.io", "PriorityClass") => &policy::PRIORITY_CLASS,
        // Roles, ClusterRoles and LimitRanges have no printer upstream either: they get the
        // generic table.
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the per-kind tests: a fixed clock and the cells of one object's row.

    use jiff::Timestamp;
    use serde_json::Value;

    use crate::table::{IncludeObject, try_table};

    /// The clock every test prints against.
    pub(crate) const NOW: &str = "2025-06-01T12:00:00Z";

    pub(crate) fn now() -> Timestamp {
        NOW.parse().expect("valid test clock")
    }

    /// `NOW` minus `secs` seconds, as an RFC 3339 string for test objects.
    pub(crate) fn ago(secs: i64) -> String {
        let t = now() - jiff::SignedDuration::from_secs(secs);
        t.to_string()
    }

    /// The full Table for one object.
    pub(crate) fn table_of(group: &str, version: &str, kind: &str, obj: Value) -> Value {
        try_table(
            group,
            version,
            kind,
            &[obj],
            IncludeObject::None,
            now(),
            Value::Null,
        )
        .expect("object prints")
    }

    /// The cells of the row printed for `obj`.
    pub(crate) fn cells(group: &str, version: &str, kind: &str, obj: Value) -> Value {
        table_of(group, version, kind, obj)["rows"][0]["cells"].clone()
    }

    /// The column names, and for each whether it is wide-only.
    pub(crate) fn headers(group: &str, version: &str, kind: &str) -> Vec<(String, bool)> {
        let t = try_table(
            group,
            version,
            kind,
            &[],
            IncludeObject::None,
            now(),
            Value::Null,
        )
        .expect("empty table");
        t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["priority"] == 1,
                )
            })
            .collect()
    }

    /// Column names as `kubectl get -o wide` shows them: `NAME READY ...`.
    pub(crate) fn header_line(group: &str, version: &str, kind: &str) -> String {
        headers(group, version, kind)
            .into_iter()
            .map(|(n, wide)| {
                let upper = n.to_uppercase();
                if wide { format!("[{upper}]") } else { upper }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}
