//! apps/v1: Deployments, ReplicaSets, StatefulSets, DaemonSets and ControllerRevisions.
//!
//! Replica counts missing from `spec` print as the defaulted value (1), as a real apiserver
//! would have stored it; counts missing from `status` print as 0.

use std::sync::LazyLock;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSetSpec, DaemonSetStatus, DeploymentSpec, DeploymentStatus,
    ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::format;
use crate::table::{Ctx, Printer, Row, TableError, decode, int, name, s};
use crate::view::{Meta, TemplateView};

/// Containers and images of a pod template, as the wide cells show them.
pub(crate) fn template_containers(t: Option<&TemplateView<'_>>) -> (Value, Value) {
    let (names, images) = format::containers(t.map_or(&[], |t| t.containers()));
    (s(names), s(images))
}

/// What the workload printers read: one view for all four controllers.
#[derive(Default, Deserialize)]
#[serde(default)]
struct WorkloadView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: WorkloadSpec<'a>,
    status: WorkloadStatus,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct WorkloadSpec<'a> {
    replicas: Option<i32>,
    selector: Option<LabelSelector>,
    #[serde(borrow)]
    template: Option<TemplateView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WorkloadStatus {
    replicas: i32,
    ready_replicas: i32,
    updated_replicas: i32,
    available_replicas: i32,
    desired_number_scheduled: i32,
    current_number_scheduled: i32,
    number_ready: i32,
    updated_number_scheduled: i32,
    number_available: i32,
}

static DEPLOYMENT_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::string("Ready", "Number of the pod with ready state"),
        Column::string("Up-to-date", doc::<DeploymentStatus>("updatedReplicas")),
        Column::string("Available", doc::<DeploymentStatus>("availableReplicas")),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<DeploymentSpec>("selector")).wide(),
    ])
});

pub(crate) static DEPLOYMENT: Printer = Printer {
    columns: &DEPLOYMENT_COLUMNS,
    row: deployment_row,
};

fn deployment_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let d: WorkloadView<'_> = decode(obj, "Deployment")?;
    let desired = d.spec.replicas.unwrap_or(1);
    let ready = d.status.ready_replicas;
    // The deployment printer shows the selector's string form directly: "" when it is empty,
    // `<invalid>` (not `<error>`) when it does not parse.
    let selector =
        format::selector_string(d.spec.selector.as_ref()).unwrap_or_else(|_| "<invalid>".into());
    let (names, images) = template_containers(d.spec.template.as_ref());
    Ok(vec![
        name(&d.metadata),
        s(format!("{ready}/{desired}")),
        int(d.status.updated_replicas),
        int(d.status.available_replicas),
        ctx.age(&d.metadata),
        names,
        images,
        s(selector),
    ]
    .into())
}

static REPLICA_SET_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::new("Desired", "integer", doc::<ReplicaSetSpec>("replicas")),
        Column::new("Current", "integer", doc::<ReplicaSetStatus>("replicas")),
        Column::new("Ready", "integer", doc::<ReplicaSetStatus>("readyReplicas")),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<ReplicaSetSpec>("selector")).wide(),
    ])
});

pub(crate) static REPLICA_SET: Printer = Printer {
    columns: &REPLICA_SET_COLUMNS,
    row: replica_set_row,
};

fn replica_set_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let rs: WorkloadView<'_> = decode(obj, "ReplicaSet")?;
    let (names, images) = template_containers(rs.spec.template.as_ref());
    Ok(vec![
        name(&rs.metadata),
        int(rs.spec.replicas.unwrap_or(1)),
        int(rs.status.replicas),
        int(rs.status.ready_replicas),
        ctx.age(&rs.metadata),
        names,
        images,
        s(format::label_selector(rs.spec.selector.as_ref())),
    ]
    .into())
}

static STATEFUL_SET_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::string("Ready", "Number of the pod with ready state"),
        columns::age(),
        c,
        i,
    ])
});

pub(crate) static STATEFUL_SET: Printer = Printer {
    columns: &STATEFUL_SET_COLUMNS,
    row: stateful_set_row,
};

fn stateful_set_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let sts: WorkloadView<'_> = decode(obj, "StatefulSet")?;
    let ready = sts.status.ready_replicas;
    let desired = sts.spec.replicas.unwrap_or(1);
    let (names, images) = template_containers(sts.spec.template.as_ref());
    Ok(vec![
        name(&sts.metadata),
        s(format!("{ready}/{desired}")),
        ctx.age(&sts.metadata),
        names,
        images,
    ]
    .into())
}

static DAEMON_SET_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    let count = |name, field| Column::new(name, "integer", doc::<DaemonSetStatus>(field));
    columns::to_json([
        columns::name(),
        count("Desired", "desiredNumberScheduled"),
        count("Current", "currentNumberScheduled"),
        count("Ready", "numberReady"),
        count("Up-to-date", "updatedNumberScheduled"),
        count("Available", "numberAvailable"),
        Column::string("Node Selector", doc::<PodSpec>("nodeSelector")),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<DaemonSetSpec>("selector")).wide(),
    ])
});

pub(crate) static DAEMON_SET: Printer = Printer {
    columns: &DAEMON_SET_COLUMNS,
    row: daemon_set_row,
};

fn daemon_set_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let ds: WorkloadView<'_> = decode(obj, "DaemonSet")?;
    let status = &ds.status;
    let node_selector = ds
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.node_selector.as_ref());
    let (names, images) = template_containers(ds.spec.template.as_ref());
    Ok(vec![
        name(&ds.metadata),
        int(status.desired_number_scheduled),
        int(status.current_number_scheduled),
        int(status.number_ready),
        int(status.updated_number_scheduled),
        int(status.number_available),
        s(format::labels(node_selector)),
        ctx.age(&ds.metadata),
        names,
        images,
        s(format::label_selector(ds.spec.selector.as_ref())),
    ]
    .into())
}

static CONTROLLER_REVISION_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Controller", "Controller of the object"),
        Column::string("Revision", doc::<ControllerRevision>("revision")),
        columns::age(),
    ])
});

pub(crate) static CONTROLLER_REVISION: Printer = Printer {
    columns: &CONTROLLER_REVISION_COLUMNS,
    row: controller_revision_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct RevisionView<'a> {
    #[serde(borrow)]
    metadata: RevisionMeta<'a>,
    revision: i64,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RevisionMeta<'a> {
    name: Option<&'a str>,
    creation_timestamp: Option<Time>,
    #[serde(borrow)]
    owner_references: Vec<OwnerView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OwnerView<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    controller: Option<bool>,
}

fn controller_revision_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let cr: RevisionView<'_> = decode(obj, "ControllerRevision")?;
    let meta = Meta {
        name: cr.metadata.name,
        creation_timestamp: cr.metadata.creation_timestamp.clone(),
        deletion_timestamp: None,
    };
    let controller = cr
        .metadata
        .owner_references
        .iter()
        .find(|r| r.controller == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                // `kind.group/name`, lowercased, e.g. `daemonset.apps/fluentd`.
                let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let kind = if group.is_empty() {
                    r.kind.to_string()
                } else {
                    format!("{}.{group}", r.kind)
                };
                if kind.is_empty() {
                    r.name.to_string()
                } else {
                    format!("{}/{}", kind.to_lowercase(), r.name)
                }
            },
        );
    Ok(vec![name(&meta), s(controller), int(cr.revision), ctx.age(&meta)].into())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::kinds::testutil::{ago, cells, header_line};

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                       {"name": "sidecar", "image": "busybox"}]}})
    }

    #[test]
    fn deployment() {
        assert_eq!(
            header_line("apps", "v1", "Deployment"),
            "NAME READY UP-TO-DATE AVAILABLE AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3 * 86400 + 4 * 3600)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            cells("apps", "v1", "Deployment", d),
            json!([
                "web",
                "2/3",
                3,
                2,
                "3d4h",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "app=web"
            ])
        );
        let fresh = json!({
            "metadata": {"name": "new", "creationTimestamp": ago(10)},
            "spec": {"selector": {}, "template": template()},
        });
        assert_eq!(
            cells("apps", "v1", "Deployment", fresh),
            json!([
                "new",
                "0/1",
                0,
                0,
                "10s",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                ""
            ])
        );
    }

    #[test]
    fn replica_set() {
        assert_eq!(
            header_line("apps", "v1", "ReplicaSet"),
            "NAME DESIRED CURRENT READY AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
        let rs = json!({
            "metadata": {"name": "web-5d8f", "creationTimestamp": ago(600)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}},
                     "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1},
        });
        assert_eq!(
            cells("apps", "v1", "ReplicaSet", rs),
            json!([
                "web-5d8f",
                2,
                2,
                1,
                "10m",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "app=web,pod-template-hash=5d8f"
            ])
        );
    }

    #[test]
    fn stateful_set() {
        assert_eq!(
            header_line("apps", "v1", "StatefulSet"),
            "NAME READY AGE [CONTAINERS] [IMAGES]"
        );
        let sts = json!({
            "metadata": {"name": "db", "creationTimestamp": ago(7200)},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": template()},
            "status": {"replicas": 3, "readyReplicas": 3},
        });
        assert_eq!(
            cells("apps", "v1", "StatefulSet", sts),
            json!(["db", "3/3", "120m", "nginx,sidecar", "nginx:1.27,busybox"])
        );
    }

    #[test]
    fn daemon_set() {
        assert_eq!(
            header_line("apps", "v1", "DaemonSet"),
            "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
        let mut t = template();
        t["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let ds = json!({
            "metadata": {"name": "fluentd", "creationTimestamp": ago(86400 * 40)},
            "spec": {"selector": {"matchLabels": {"app": "fluentd"}}, "template": t},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2, "numberMisscheduled": 0},
        });
        assert_eq!(
            cells("apps", "v1", "DaemonSet", ds),
            json!([
                "fluentd",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "40d",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "app=fluentd"
            ])
        );
    }

    #[test]
    fn controller_revision() {
        assert_eq!(
            header_line("apps", "v1", "ControllerRevision"),
            "NAME CONTROLLER REVISION AGE"
        );
        let cr = json!({
            "metadata": {"name": "fluentd-6d7b", "creationTimestamp": ago(60),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd",
                                              "uid": "u1", "controller": true}]},
            "revision": 2,
        });
        assert_eq!(
            cells("apps", "v1", "ControllerRevision", cr),
            json!(["fluentd-6d7b", "daemonset.apps/fluentd", 2, "60s"])
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(
            cells("apps", "v1", "ControllerRevision", orphan),
            json!(["x", "<none>", 1, "<unknown>"])
        );
    }
}
