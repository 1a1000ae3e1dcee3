//! autoscaling/v2 HorizontalPodAutoscalers (the stored version; autoscaling/v1 objects are
//! converted by [`crate::convert`]): defaults (`minReplicas` 1, a CPU utilisation metric at
//! 80% when none is given, fully populated scaling behaviour when any is given) and upstream's
//! `ValidateHorizontalPodAutoscaler(Update|StatusUpdate)`.

use std::sync::Arc;

use api::quantity::Quantity as Q;
use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerStatus, MetricIdentifier, MetricSpec, MetricTarget,
    ResourceMetricSource,
};

use crate::DynStrategy;
use crate::core::common::{self, selectors};
use crate::strategy::{Adapter, Strategy};

/// Upstream's `DefaultCPUUtilization`.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;
const MAX_PERIOD_SECONDS: i32 = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
const METRIC_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Autoscalers))
}

struct Autoscalers;

fn policy(type_: &str, value: i32, period: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.to_string(),
        value,
        period_seconds: period,
    }
}

/// Upstream's `copyHPAScalingRules` over the given defaults.
fn fill_rules(given: Option<HPAScalingRules>, mut defaults: HPAScalingRules) -> HPAScalingRules {
    if let Some(g) = given {
        if g.select_policy.is_some() {
            defaults.select_policy = g.select_policy;
        }
        if g.stabilization_window_seconds.is_some() {
            defaults.stabilization_window_seconds = g.stabilization_window_seconds;
        }
        if g.policies.is_some() {
            defaults.policies = g.policies;
        }
        if g.tolerance.is_some() {
            defaults.tolerance = g.tolerance;
        }
    }
    defaults
}

/// The v2 defaults, also applied to objects converted from autoscaling/v1.
pub fn set_defaults(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".to_string(),
            resource: Some(ResourceMetricSource {
                name: "cpu".to_string(),
                target: MetricTarget {
                    type_: "Utilization".to_string(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(b) = &mut spec.behavior {
        b.scale_up = Some(fill_rules(
            b.scale_up.take(),
            HPAScalingRules {
                stabilization_window_seconds: Some(0),
                select_policy: Some("Max".to_string()),
                policies: Some(vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]),
                tolerance: None,
            },
        ));
        b.scale_down = Some(fill_rules(
            b.scale_down.take(),
            HPAScalingRules {
                stabilization_window_seconds: None,
                select_policy: Some("Max".to_string()),
                policies: Some(vec![policy("Percent", 100, 15)]),
                tolerance: None,
            },
        ));
    }
}

fn path_segment(path: &Path, value: &str) -> Vec<FieldError> {
    validation::errors_for(path, value, validation::path_segment_name(value))
}

fn validate_reference(r: &CrossVersionObjectReference, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if r.kind.is_empty() {
        errs.push(FieldError::required(path.child("kind"), ""));
    } else {
        errs.extend(path_segment(&path.child("kind"), &r.kind));
    }
    if r.name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        errs.extend(path_segment(&path.child("name"), &r.name));
    }
    errs
}

fn positive(
    q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    path: &Path,
) -> Vec<FieldError> {
    match q {
        None => Vec::new(),
        Some(q) => match Q::parse(&q.0) {
            Err(e) => vec![FieldError::invalid(path, q.0.as_str(), e.to_string())],
            Ok(v) if v.signum() != 1 => vec![FieldError::invalid(
                path,
                v.to_canonical_string(),
                "must be positive",
            )],
            Ok(_) => Vec::new(),
        },
    }
}

fn validate_target(t: &MetricTarget, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(t.type_.as_str(), "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            path.child("type"),
            t.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    errs.extend(positive(&t.value, &path.child("value")));
    errs.extend(positive(&t.average_value, &path.child("averageValue")));
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

fn validate_identifier(id: &MetricIdentifier, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if id.name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "must specify a metric name",
        ));
    } else {
        errs.extend(path_segment(&path.child("name"), &id.name));
    }
    if let Some(sel) = &id.selector {
        errs.extend(selectors::label_selector(sel, &path.child("selector")));
    }
    errs
}

/// The utilisation-or-value rule of resource and container-resource metrics.
fn utilization_or_value(t: &MetricTarget, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let tp = path.child("target");
    match (t.average_utilization.is_some(), t.average_value.is_some()) {
        (false, false) => errs.push(FieldError::required(
            tp.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        )),
        (true, true) => errs.push(FieldError::forbidden(
            tp.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        )),
        _ => {}
    }
    errs
}

fn validate_source(spec: &MetricSpec, kind: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match kind {
        "object" => {
            if let Some(o) = &spec.object {
                errs.extend(validate_reference(
                    &o.described_object,
                    &path.child("describedObject"),
                ));
                errs.extend(validate_identifier(&o.metric, &path.child("metric")));
                errs.extend(validate_target(&o.target, &path.child("target")));
                if o.target.value.is_none() && o.target.average_value.is_none() {
                    errs.push(FieldError::required(
                        path.child("target").child("averageValue"),
                        "must set either a target value or averageValue",
                    ));
                }
            }
        }
        "external" => {
            if let Some(e) = &spec.external {
                errs.extend(validate_identifier(&e.metric, &path.child("metric")));
                errs.extend(validate_target(&e.target, &path.child("target")));
                match (e.target.value.is_some(), e.target.average_value.is_some()) {
                    (false, false) => errs.push(FieldError::required(
                        path.child("target").child("averageValue"),
                        "must set either a target value for metric or a per-pod target",
                    )),
                    (true, true) => errs.push(FieldError::forbidden(
                        path.child("target").child("value"),
                        "may not set both a target value for metric and a per-pod target",
                    )),
                    _ => {}
                }
            }
        }
        "pods" => {
            if let Some(p) = &spec.pods {
                errs.extend(validate_identifier(&p.metric, &path.child("metric")));
                errs.extend(validate_target(&p.target, &path.child("target")));
                if p.target.average_value.is_none() {
                    errs.push(FieldError::required(
                        path.child("target").child("averageValue"),
                        "must specify a positive target averageValue",
                    ));
                }
            }
        }
        "resource" => {
            if let Some(r) = &spec.resource {
                if r.name.is_empty() {
                    errs.push(FieldError::required(
                        path.child("name"),
                        "must specify a resource name",
                    ));
                }
                errs.extend(validate_target(&r.target, &path.child("target")));
                errs.extend(utilization_or_value(&r.target, path));
            }
        }
        "containerResource" => {
            if let Some(r) = &spec.container_resource {
                if r.name.is_empty() {
                    errs.push(FieldError::required(
                        path.child("name"),
                        "must specify a resource name",
                    ));
                }
                if r.container.is_empty() {
                    errs.push(FieldError::required(
                        path.child("container"),
                        "must specify a container",
                    ));
                } else {
                    errs.extend(common::dns_label(&path.child("container"), &r.container));
                }
                errs.extend(validate_target(&r.target, &path.child("target")));
                errs.extend(utilization_or_value(&r.target, path));
            }
        }
        _ => {}
    }
    errs
}

fn validate_metric(spec: &MetricSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.type_.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_TYPES.contains(&spec.type_.as_str()) {
        errs.push(FieldError::not_supported(
            path.child("type"),
            spec.type_.as_str(),
            METRIC_TYPES,
        ));
    }
    let present: Vec<&str> = [
        ("object", spec.object.is_some()),
        ("external", spec.external.is_some()),
        ("pods", spec.pods.is_some()),
        ("resource", spec.resource.is_some()),
        ("containerResource", spec.container_resource.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect();
    // Only the first source present is validated, as upstream does.
    if let Some(first) = present.first() {
        errs.extend(validate_source(spec, first, &path.child(first)));
    }
    let expected = match spec.type_.as_str() {
        "Object" => Some("object"),
        "Pods" => Some("pods"),
        "Resource" => Some("resource"),
        "External" => Some("external"),
        "ContainerResource" => Some("containerResource"),
        _ => None,
    };
    match expected {
        Some(field) if !present.contains(&field) => errs.push(FieldError::required(
            path.child(field),
            "must populate information for the given metric source",
        )),
        Some(_) => {}
        None => errs.push(FieldError::not_supported(
            path.child("type"),
            spec.type_.as_str(),
            METRIC_TYPES,
        )),
    }
    if present.len() > 1 {
        let mut extra: Vec<&str> = present
            .iter()
            .copied()
            .filter(|p| Some(*p) != expected)
            .collect();
        extra.sort();
        for field in extra {
            errs.push(FieldError::forbidden(
                path.child(field),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

fn validate_rules(rules: Option<&HPAScalingRules>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(r) = rules else {
        return errs;
    };
    if let Some(w) = r.stabilization_window_seconds {
        let p = path.child("stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid(
                &p,
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &p,
                w,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(sp) = &r.select_policy
        && !matches!(sp.as_str(), "Disabled" | "Max" | "Min")
    {
        errs.push(FieldError::not_supported(
            path.child("selectPolicy"),
            sp.as_str(),
            &["Disabled", "Max", "Min"],
        ));
    }
    let pp = path.child("policies");
    let policies = r.policies.as_deref().unwrap_or(&[]);
    if policies.is_empty() {
        errs.push(FieldError::required(
            &pp,
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let ip = pp.index(i);
        if !matches!(p.type_.as_str(), "Pods" | "Percent") {
            errs.push(FieldError::not_supported(
                ip.child("type"),
                p.type_.as_str(),
                &["Percent", "Pods"],
            ));
        }
        if p.value <= 0 {
            errs.push(FieldError::invalid(
                ip.child("value"),
                p.value,
                "must be greater than zero",
            ));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                ip.child("periodSeconds"),
                p.period_seconds,
                "must be greater than zero",
            ));
        }
        if p.period_seconds > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                ip.child("periodSeconds"),
                p.period_seconds,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    errs
}

fn validate_spec(hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = Path::new("spec");
    let spec = hpa.spec.clone().unwrap_or_default();
    if let Some(min) = spec.min_replicas.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            p.child("minReplicas"),
            min,
            "must be greater than or equal to 1",
        ));
    }
    if spec.max_replicas < 1 {
        errs.push(FieldError::invalid(
            p.child("maxReplicas"),
            spec.max_replicas,
            "must be greater than 0",
        ));
    }
    if spec.min_replicas.is_some_and(|m| spec.max_replicas < m) {
        errs.push(FieldError::invalid(
            p.child("maxReplicas"),
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_reference(
        &spec.scale_target_ref,
        &p.child("scaleTargetRef"),
    ));
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        errs.extend(validate_metric(m, &p.child("metrics").index(i)));
    }
    if let Some(b) = &spec.behavior {
        errs.extend(validate_rules(
            b.scale_up.as_ref(),
            &p.child("behavior").child("scaleUp"),
        ));
        errs.extend(validate_rules(
            b.scale_down.as_ref(),
            &p.child("behavior").child("scaleDown"),
        ));
    }
    errs
}

impl Strategy for Autoscalers {
    type Object = HorizontalPodAutoscaler;

    fn set_defaults(&self, hpa: &mut HorizontalPodAutoscaler) {
        set_defaults(hpa);
    }

    fn prepare_for_create(&self, hpa: &mut HorizontalPodAutoscaler) {
        hpa.status = Some(HorizontalPodAutoscalerStatus::default());
    }

    fn validate(&self, hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
        validate_spec(hpa)
    }

    fn validate_status_update(
        &self,
        new: &HorizontalPodAutoscaler,
        _old: &HorizontalPodAutoscaler,
    ) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(st) = &new.status {
            let p = Path::new("status");
            errs.extend(common::nonnegative(
                &p.child("currentReplicas"),
                i64::from(st.current_replicas.unwrap_or(0)),
            ));
            errs.extend(common::nonnegative(
                &p.child("desiredReplicas"),
                i64::from(st.desired_replicas),
            ));
        }
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("autoscaling", "v2", "horizontalpodautoscalers").unwrap())
    }

    fn hpa(spec: Value) -> Value {
        json!({"metadata": {"name": "h", "namespace": "a"}, "spec": spec})
    }

    #[test]
    fn defaults() {
        let out = create(
            &*s(),
            hpa(json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}})),
        )
        .unwrap();
        assert_eq!(out["spec"]["minReplicas"], 1);
        assert_eq!(
            out["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert_eq!(
            out["spec"]["behavior"],
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            })
        );
        assert_eq!(out["status"], json!({"desiredReplicas": 0}));
    }

    #[test]
    fn validation() {
        assert_eq!(
            create_err(
                &*s(),
                hpa(
                    json!({"scaleTargetRef": {"kind": "", "name": "a/b"}, "minReplicas": 3, "maxReplicas": 2,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
                        {"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    ]})
                )
            ),
            [
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
                "spec.metrics[1].pods: Required value: must populate information for the given metric source",
            ]
        );
    }
}
