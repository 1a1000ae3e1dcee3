//! HorizontalPodAutoscalers, autoscaling/v1 and v2: `NAME REFERENCE TARGETS MINPODS MAXPODS
//! REPLICAS AGE`.
//!
//! Upstream prints from the v2-shaped internal object, so a v1 HPA's CPU target becomes a
//! `Resource` metric first. An HPA without metrics prints the 80% CPU target the server defaults
//! it to on every read, and a missing `minReplicas` its default of 1. TARGETS lists at most two
//! metrics, `current/target` each, then ` + N more...`.

use std::sync::LazyLock;

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus, ResourceMetricSource, ResourceMetricStatus,
};
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::quantity;
use crate::table::{Ctx, Printer, Row, TableError, decode, int, name, s};
use crate::view::Meta;

static COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Reference",
            doc::<HorizontalPodAutoscalerSpec>("scaleTargetRef"),
        ),
        Column::string("Targets", doc::<HorizontalPodAutoscalerSpec>("metrics")),
        Column::string("MinPods", doc::<HorizontalPodAutoscalerSpec>("minReplicas")),
        Column::string("MaxPods", doc::<HorizontalPodAutoscalerSpec>("maxReplicas")),
        Column::string(
            "Replicas",
            doc::<HorizontalPodAutoscalerStatus>("currentReplicas"),
        ),
        columns::age(),
    ])
});

pub(crate) static HPA_V2: Printer = Printer {
    columns: &COLUMNS,
    row: v2_row,
};

pub(crate) static HPA_V1: Printer = Printer {
    columns: &COLUMNS,
    row: v1_row,
};

/// The server's default target when an HPA names no metric.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

fn cpu_utilization_spec(percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: "cpu".to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// An HPA of either version: slim metadata, typed spec and status.
#[derive(Default, Deserialize)]
#[serde(default)]
struct HpaView<'a, Spec, Status> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: Spec,
    status: Status,
}

/// The fields the printer reads.
struct View<'a> {
    metadata: Meta<'a>,
    reference: String,
    metrics: Vec<MetricSpec>,
    current: Vec<MetricStatus>,
    min_replicas: Option<i32>,
    max_replicas: i32,
    current_replicas: i32,
}

fn v2_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let hpa: HpaView<'_, v2::HorizontalPodAutoscalerSpec, v2::HorizontalPodAutoscalerStatus> =
        decode(obj, "HorizontalPodAutoscaler")?;
    let spec = hpa.spec;
    let status = hpa.status;
    print(
        View {
            metadata: hpa.metadata,
            reference: format!(
                "{}/{}",
                spec.scale_target_ref.kind, spec.scale_target_ref.name
            ),
            metrics: spec.metrics.unwrap_or_default(),
            current: status.current_metrics.unwrap_or_default(),
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            current_replicas: status.current_replicas.unwrap_or(0),
        },
        ctx,
    )
}

fn v1_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let hpa: HpaView<'_, v1::HorizontalPodAutoscalerSpec, v1::HorizontalPodAutoscalerStatus> =
        decode(obj, "HorizontalPodAutoscaler")?;
    let spec = hpa.spec;
    let status = hpa.status;
    let metrics = spec
        .target_cpu_utilization_percentage
        .map(cpu_utilization_spec)
        .into_iter()
        .collect();
    let current = status
        .current_cpu_utilization_percentage
        .map(|percent| MetricStatus {
            type_: "Resource".to_string(),
            resource: Some(ResourceMetricStatus {
                name: "cpu".to_string(),
                current: MetricValueStatus {
                    average_utilization: Some(percent),
                    ..Default::default()
                },
            }),
            ..Default::default()
        })
        .into_iter()
        .collect();
    print(
        View {
            metadata: hpa.metadata,
            reference: format!(
                "{}/{}",
                spec.scale_target_ref.kind, spec.scale_target_ref.name
            ),
            metrics,
            current,
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            current_replicas: status.current_replicas,
        },
        ctx,
    )
}

/// `Quantity.String()` of an optional quantity; Go prints a nil one as `<nil>`.
fn q(v: Option<&Quantity>) -> String {
    v.map_or_else(|| "<nil>".to_string(), |v| quantity::canonical(&v.0))
}

/// `current/target`, with `(avg)` when the target is an average value.
fn value_pair(target: Option<&MetricTarget>, current: Option<&MetricValueStatus>) -> String {
    let avg = target.and_then(|t| t.average_value.as_ref());
    if let Some(avg) = avg {
        let current = current
            .and_then(|c| c.average_value.as_ref())
            .map_or_else(|| "<unknown>".to_string(), |c| quantity::canonical(&c.0));
        format!("{current}/{} (avg)", quantity::canonical(&avg.0))
    } else {
        let current = current.map_or_else(|| "<unknown>".to_string(), |c| q(c.value.as_ref()));
        format!("{current}/{}", q(target.and_then(|t| t.value.as_ref())))
    }
}

/// `name: current/target` for (container) resource metrics.
fn resource_pair(name: &str, target: &MetricTarget, current: Option<&MetricValueStatus>) -> String {
    if let Some(avg) = &target.average_value {
        let current =
            current.map_or_else(|| "<unknown>".to_string(), |c| q(c.average_value.as_ref()));
        return format!("{name}: {current}/{}", quantity::canonical(&avg.0));
    }
    let current = current
        .and_then(|c| c.average_utilization)
        .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
    let target = target
        .average_utilization
        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
    format!("{name}: {current}/{target}")
}

fn format_metrics(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let item = match spec.type_.as_str() {
            "External" => value_pair(
                spec.external.as_ref().map(|e| &e.target),
                status.and_then(|s| s.external.as_ref()).map(|e| &e.current),
            ),
            "Object" => value_pair(
                spec.object.as_ref().map(|o| &o.target),
                status.and_then(|s| s.object.as_ref()).map(|o| &o.current),
            ),
            "Pods" => {
                let current = status.and_then(|s| s.pods.as_ref()).map_or_else(
                    || "<unknown>".to_string(),
                    |p| q(p.current.average_value.as_ref()),
                );
                let target = spec
                    .pods
                    .as_ref()
                    .and_then(|p| p.target.average_value.as_ref());
                format!("{current}/{}", q(target))
            }
            "Resource" => match &spec.resource {
                Some(r) => resource_pair(
                    &r.name,
                    &r.target,
                    status.and_then(|s| s.resource.as_ref()).map(|r| &r.current),
                ),
                None => "<unknown type>".to_string(),
            },
            "ContainerResource" => match &spec.container_resource {
                Some(r) => resource_pair(
                    &r.name,
                    &r.target,
                    status
                        .and_then(|s| s.container_resource.as_ref())
                        .map(|r| &r.current),
                ),
                None => "<unknown type>".to_string(),
            },
            _ => "<unknown type>".to_string(),
        };
        list.push(item);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

fn print(hpa: View<'_>, ctx: &Ctx) -> Result<Row, TableError> {
    let metrics = if hpa.metrics.is_empty() {
        vec![cpu_utilization_spec(DEFAULT_CPU_UTILIZATION)]
    } else {
        hpa.metrics
    };
    Ok(vec![
        name(&hpa.metadata),
        s(hpa.reference),
        s(format_metrics(&metrics, &hpa.current)),
        s(hpa.min_replicas.unwrap_or(1).to_string()),
        int(hpa.max_replicas),
        int(hpa.current_replicas),
        ctx.age(&hpa.metadata),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::kinds::testutil::{ago, cells, header_line};

    fn v2(metrics: Value, current: Value) -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "creationTimestamp": ago(3600)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 10, "metrics": metrics},
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": current},
        })
    }

    #[test]
    fn columns() {
        let expected = "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE";
        assert_eq!(
            header_line("autoscaling", "v2", "HorizontalPodAutoscaler"),
            expected
        );
        assert_eq!(
            header_line("autoscaling", "v1", "HorizontalPodAutoscaler"),
            expected
        );
    }

    #[test]
    fn cpu_utilization() {
        let h = v2(
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "115m"}}}]),
        );
        assert_eq!(
            cells("autoscaling", "v2", "HorizontalPodAutoscaler", h),
            json!(["web", "Deployment/web", "cpu: 23%/50%", "2", 10, 3, "60m"])
        );
        let unknown = v2(
            json!([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}}]),
            json!([]),
        );
        assert_eq!(
            cells("autoscaling", "v2", "HorizontalPodAutoscaler", unknown)[2],
            "memory: <unknown>/1Gi"
        );
    }

    #[test]
    fn many_metrics() {
        let h = v2(
            json!([
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "Object", "object": {"metric": {"name": "hits"}, "describedObject": {"kind": "Ingress", "name": "main"},
                                              "target": {"type": "Value", "value": "10k"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                                              "target": {"type": "Utilization", "averageUtilization": 60}}},
            ]),
            json!([
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "1500m"}}},
                {"type": "Object", "object": {"metric": {"name": "hits"}, "describedObject": {"kind": "Ingress", "name": "main"},
                                              "current": {"value": "12000"}}},
            ]),
        );
        assert_eq!(
            cells("autoscaling", "v2", "HorizontalPodAutoscaler", h)[2],
            "1500m/1k, 12k/10k + 2 more..."
        );
        let two = v2(
            json!([
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                                              "target": {"type": "Utilization"}}},
            ]),
            json!([]),
        );
        assert_eq!(
            cells("autoscaling", "v2", "HorizontalPodAutoscaler", two)[2],
            "<unknown>/30 (avg), cpu: <unknown>/<auto>"
        );
    }

    #[test]
    fn defaults_and_v1() {
        let bare = json!({
            "metadata": {"name": "bare"},
            "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "db"}, "maxReplicas": 4},
        });
        assert_eq!(
            cells("autoscaling", "v2", "HorizontalPodAutoscaler", bare.clone()),
            json!([
                "bare",
                "StatefulSet/db",
                "cpu: <unknown>/80%",
                "1",
                4,
                0,
                "<unknown>"
            ])
        );
        assert_eq!(
            cells("autoscaling", "v1", "HorizontalPodAutoscaler", bare),
            json!([
                "bare",
                "StatefulSet/db",
                "cpu: <unknown>/80%",
                "1",
                4,
                0,
                "<unknown>"
            ])
        );
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "php", "creationTimestamp": ago(90)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
                     "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 0},
        });
        assert_eq!(
            cells("autoscaling", "v1", "HorizontalPodAutoscaler", v1),
            json!([
                "php",
                "Deployment/php-apache",
                "cpu: 0%/50%",
                "1",
                10,
                1,
                "90s"
            ])
        );
    }
}
