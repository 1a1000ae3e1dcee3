//! The smaller core/v1 kinds: Namespaces, ConfigMaps, Secrets, ServiceAccounts, PodTemplates,
//! ReplicationControllers and ResourceQuotas.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    ConfigMap, ReplicationControllerSpec, ReplicationControllerStatus, Secret, ServiceAccount,
};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::format;
use crate::kinds::apps::template_containers;
use crate::quantity;
use crate::table::{Ctx, Printer, Row, TableError, count, decode, int, name, s};
use crate::view::{Count, Meta, TemplateView};

static NAMESPACE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Status", "The status of the namespace"),
        columns::age(),
    ])
});

pub(crate) static NAMESPACE: Printer = Printer {
    columns: &NAMESPACE_COLUMNS,
    row: namespace_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct NamespaceView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    status: PhaseView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PhaseView<'a> {
    phase: Option<&'a str>,
}

fn namespace_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let ns: NamespaceView<'_> = decode(obj, "Namespace")?;
    // The namespace strategy always sets a phase; one stored without prints as new, Active.
    let phase = ns
        .status
        .phase
        .filter(|p| !p.is_empty())
        .unwrap_or("Active");
    Ok(vec![name(&ns.metadata), s(phase), ctx.age(&ns.metadata)].into())
}

static CONFIG_MAP_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Data", doc::<ConfigMap>("data")),
        columns::age(),
    ])
});

pub(crate) static CONFIG_MAP: Printer = Printer {
    columns: &CONFIG_MAP_COLUMNS,
    row: config_map_row,
};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ConfigMapView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    data: Count,
    binary_data: Count,
}

fn config_map_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let cm: ConfigMapView<'_> = decode(obj, "ConfigMap")?;
    Ok(vec![
        name(&cm.metadata),
        count(cm.data.0 + cm.binary_data.0),
        ctx.age(&cm.metadata),
    ]
    .into())
}

static SECRET_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Type", doc::<Secret>("type")),
        Column::string("Data", doc::<Secret>("data")),
        columns::age(),
    ])
});

pub(crate) static SECRET: Printer = Printer {
    columns: &SECRET_COLUMNS,
    row: secret_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct SecretView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    data: Count,
}

fn secret_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let secret: SecretView<'_> = decode(obj, "Secret")?;
    // `type` defaults to Opaque on the server.
    let ty = secret.type_.filter(|t| !t.is_empty()).unwrap_or("Opaque");
    // Only `data` counts: `stringData` is write-only and folded into `data` on write.
    Ok(vec![
        name(&secret.metadata),
        s(ty),
        count(secret.data.0),
        ctx.age(&secret.metadata),
    ]
    .into())
}

static SERVICE_ACCOUNT_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Secrets", doc::<ServiceAccount>("secrets")),
        columns::age(),
    ])
});

pub(crate) static SERVICE_ACCOUNT: Printer = Printer {
    columns: &SERVICE_ACCOUNT_COLUMNS,
    row: service_account_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct ServiceAccountView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    secrets: Count,
}

fn service_account_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let sa: ServiceAccountView<'_> = decode(obj, "ServiceAccount")?;
    Ok(vec![
        name(&sa.metadata),
        count(sa.secrets.0),
        ctx.age(&sa.metadata),
    ]
    .into())
}

static POD_TEMPLATE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Containers", "Names of each container in the template."),
        Column::string(
            "Images",
            "Images referenced by each container in the template.",
        ),
        Column::string("Pod Labels", "The labels for the pod template."),
    ])
});

pub(crate) static POD_TEMPLATE: Printer = Printer {
    columns: &POD_TEMPLATE_COLUMNS,
    row: pod_template_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct PodTemplateView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    template: Option<TemplateView<'a>>,
}

fn pod_template_row(obj: &Value, _ctx: &Ctx) -> Result<Row, TableError> {
    let pt: PodTemplateView<'_> = decode(obj, "PodTemplate")?;
    let template = pt.template.as_ref();
    let (names, images) = template_containers(template);
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    Ok(vec![name(&pt.metadata), names, images, s(format::labels(labels))].into())
}

static REPLICATION_CONTROLLER_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::new(
            "Desired",
            "integer",
            doc::<ReplicationControllerSpec>("replicas"),
        ),
        Column::new(
            "Current",
            "integer",
            doc::<ReplicationControllerStatus>("replicas"),
        ),
        Column::new(
            "Ready",
            "integer",
            doc::<ReplicationControllerStatus>("readyReplicas"),
        ),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<ReplicationControllerSpec>("selector")).wide(),
    ])
});

pub(crate) static REPLICATION_CONTROLLER: Printer = Printer {
    columns: &REPLICATION_CONTROLLER_COLUMNS,
    row: replication_controller_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct ReplicationControllerView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: RcSpecView<'a>,
    status: RcStatusView,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RcSpecView<'a> {
    replicas: Option<i32>,
    #[serde(borrow)]
    selector: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(borrow)]
    template: Option<TemplateView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RcStatusView {
    replicas: i32,
    ready_replicas: i32,
}

fn replication_controller_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let rc: ReplicationControllerView<'_> = decode(obj, "ReplicationController")?;
    let (names, images) = template_containers(rc.spec.template.as_ref());
    Ok(vec![
        name(&rc.metadata),
        int(rc.spec.replicas.unwrap_or(1)),
        int(rc.status.replicas),
        int(rc.status.ready_replicas),
        ctx.age(&rc.metadata),
        names,
        images,
        s(format::labels(rc.spec.selector.as_ref())),
    ]
    .into())
}

static RESOURCE_QUOTA_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Request",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Column::string(
            "Limit",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        columns::age(),
    ])
});

pub(crate) static RESOURCE_QUOTA: Printer = Printer {
    columns: &RESOURCE_QUOTA_COLUMNS,
    row: resource_quota_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct ResourceQuotaView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    status: QuotaStatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct QuotaStatusView<'a> {
    #[serde(borrow)]
    hard: BTreeMap<&'a str, &'a str>,
    #[serde(borrow)]
    used: BTreeMap<&'a str, &'a str>,
}

/// `resource: used/hard` for every hard limit in the status, sorted by resource name; resources
/// named `limits.*` go to the LIMIT column, everything else to REQUEST.
fn resource_quota_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let rq: ResourceQuotaView<'_> = decode(obj, "ResourceQuota")?;
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    // BTreeMap iteration is already sorted by resource name, like upstream's explicit sort.
    for (resource, hard) in &rq.status.hard {
        let used = rq
            .status
            .used
            .get(resource)
            .map_or_else(|| "0".to_string(), |q| quantity::canonical(q));
        let entry = format!("{resource}: {used}/{}", quantity::canonical(hard));
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    Ok(vec![
        name(&rq.metadata),
        s(requests.join(", ")),
        s(limits.join(", ")),
        ctx.age(&rq.metadata),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn namespaces() {
        assert_eq!(header_line("", "v1", "Namespace"), "NAME STATUS AGE");
        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(86400 * 400)},
                        "status": {"phase": "Active"}});
        assert_eq!(
            cells("", "v1", "Namespace", ns),
            json!(["kube-system", "Active", "400d"])
        );
        let gone = json!({"metadata": {"name": "old", "creationTimestamp": ago(86400 * 800),
                                       "deletionTimestamp": ago(3)},
                          "status": {"phase": "Terminating"}});
        assert_eq!(
            cells("", "v1", "Namespace", gone),
            json!(["old", "Terminating", "2y70d"])
        );
    }

    #[test]
    fn config_maps_secrets_service_accounts() {
        assert_eq!(header_line("", "v1", "ConfigMap"), "NAME DATA AGE");
        let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(5)},
                        "data": {"ca.crt": "x", "b": "y"}, "binaryData": {"c": "AAAA"}});
        assert_eq!(
            cells("", "v1", "ConfigMap", cm),
            json!(["kube-root-ca.crt", 3, "5s"])
        );

        assert_eq!(header_line("", "v1", "Secret"), "NAME TYPE DATA AGE");
        let tls = json!({"metadata": {"name": "tls", "creationTimestamp": ago(5)},
                         "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}});
        assert_eq!(
            cells("", "v1", "Secret", tls),
            json!(["tls", "kubernetes.io/tls", 2, "5s"])
        );
        let opaque = json!({"metadata": {"name": "creds"}});
        assert_eq!(
            cells("", "v1", "Secret", opaque),
            json!(["creds", "Opaque", 0, "<unknown>"])
        );

        assert_eq!(header_line("", "v1", "ServiceAccount"), "NAME SECRETS AGE");
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(5)}});
        assert_eq!(
            cells("", "v1", "ServiceAccount", sa),
            json!(["default", 0, "5s"])
        );
        let sa = json!({"metadata": {"name": "builder"}, "secrets": [{"name": "builder-token"}]});
        assert_eq!(cells("", "v1", "ServiceAccount", sa)[1], 1);
    }

    #[test]
    fn pod_templates() {
        assert_eq!(
            header_line("", "v1", "PodTemplate"),
            "NAME CONTAINERS IMAGES POD LABELS"
        );
        let pt = json!({"metadata": {"name": "tpl"},
                        "template": {"metadata": {"labels": {"run": "tpl", "app": "x"}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}});
        assert_eq!(
            cells("", "v1", "PodTemplate", pt),
            json!(["tpl", "c", "nginx", "app=x,run=tpl"])
        );
    }

    #[test]
    fn replication_controllers() {
        assert_eq!(
            header_line("", "v1", "ReplicationController"),
            "NAME DESIRED CURRENT READY AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
        let rc = json!({"metadata": {"name": "nginx", "creationTimestamp": ago(120)},
                        "spec": {"replicas": 3, "selector": {"app": "nginx"},
                                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
                        "status": {"replicas": 3, "readyReplicas": 3}});
        assert_eq!(
            cells("", "v1", "ReplicationController", rc),
            json!(["nginx", 3, 3, 3, "2m", "nginx", "nginx", "app=nginx"])
        );
    }

    #[test]
    fn resource_quotas() {
        assert_eq!(
            header_line("", "v1", "ResourceQuota"),
            "NAME REQUEST LIMIT AGE"
        );
        let rq = json!({"metadata": {"name": "compute", "creationTimestamp": ago(60)},
                        "status": {
                            "hard": {"requests.cpu": "1", "requests.memory": "1024Mi", "limits.cpu": "2000m",
                                     "limits.memory": "2Gi", "pods": "10", "count/deployments.apps": "5"},
                            "used": {"requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1",
                                     "pods": "3"}}});
        assert_eq!(
            cells("", "v1", "ResourceQuota", rq),
            json!([
                "compute",
                "count/deployments.apps: 0/5, pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi",
                "limits.cpu: 1/2, limits.memory: 0/2Gi",
                "60s"
            ])
        );
        let empty = json!({"metadata": {"name": "none"}});
        assert_eq!(
            cells("", "v1", "ResourceQuota", empty),
            json!(["none", "", "", "<unknown>"])
        );
    }
}
