//! autoscaling/v1 ↔ autoscaling/v2 HorizontalPodAutoscalers, as upstream's
//! `pkg/apis/autoscaling/v1/conversion.go`.
//!
//! v1 holds one CPU utilisation target and the current CPU utilisation. Everything else a v2
//! object carries rides along in four annotations on the v1 view: the other metric specs and all
//! current metrics (in the old v1 "alpha" shape: `metricName`, `targetAverageValue`...), the
//! conditions, and the scaling behaviour. Converting back reads them and drops them again.
//! As upstream, the CPU utilisation metric comes back last among the metrics.

use api::ApiError;
use serde_json::{Map, Value, json};

use super::object;

pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const ROUND_TRIP: &[&str] = &[
    METRICS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];

/// The v2 source field of each metric type, as JSON names it.
const SOURCES: &[&str] = &[
    "object",
    "pods",
    "resource",
    "containerResource",
    "external",
];

/// (v2 path, v1 path) pairs of a metric spec source.
fn spec_fields(source: &str) -> &'static [(&'static str, &'static str)] {
    match source {
        "object" => &[
            ("describedObject", "target"),
            ("metric.name", "metricName"),
            ("metric.selector", "selector"),
            ("target.value", "targetValue"),
            ("target.averageValue", "averageValue"),
        ],
        "pods" => &[
            ("metric.name", "metricName"),
            ("metric.selector", "selector"),
            ("target.averageValue", "targetAverageValue"),
        ],
        "resource" => &[
            ("name", "name"),
            ("target.averageUtilization", "targetAverageUtilization"),
            ("target.averageValue", "targetAverageValue"),
        ],
        "containerResource" => &[
            ("name", "name"),
            ("container", "container"),
            ("target.averageUtilization", "targetAverageUtilization"),
            ("target.averageValue", "targetAverageValue"),
        ],
        "external" => &[
            ("metric.name", "metricName"),
            ("metric.selector", "metricSelector"),
            ("target.value", "targetValue"),
            ("target.averageValue", "targetAverageValue"),
        ],
        _ => &[],
    }
}

/// (v2 path, v1 path) pairs of a metric status source.
fn status_fields(source: &str) -> &'static [(&'static str, &'static str)] {
    match source {
        "object" => &[
            ("describedObject", "target"),
            ("metric.name", "metricName"),
            ("metric.selector", "selector"),
            ("current.value", "currentValue"),
            ("current.averageValue", "averageValue"),
        ],
        "pods" => &[
            ("metric.name", "metricName"),
            ("metric.selector", "selector"),
            ("current.averageValue", "currentAverageValue"),
        ],
        "resource" => &[
            ("name", "name"),
            ("current.averageUtilization", "currentAverageUtilization"),
            ("current.averageValue", "currentAverageValue"),
        ],
        "containerResource" => &[
            ("name", "name"),
            ("container", "container"),
            ("current.averageUtilization", "currentAverageUtilization"),
            ("current.averageValue", "currentAverageValue"),
        ],
        "external" => &[
            ("metric.name", "metricName"),
            ("metric.selector", "metricSelector"),
            ("current.value", "currentValue"),
            ("current.averageValue", "currentAverageValue"),
        ],
        _ => &[],
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |cur, key| cur.get(key))
        .filter(|v| !v.is_null())
}

fn set(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            return;
        };
        if keys.peek().is_none() {
            m.insert(key.to_string(), value);
            return;
        }
        cur = m
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Copies the mapped fields of one metric (spec or status) between the two shapes.
fn map_metric(
    metric: &Value,
    fields: fn(&str) -> &'static [(&'static str, &'static str)],
    to_v1: bool,
) -> Value {
    let mut out = json!({});
    if let Some(t) = metric.get("type") {
        out["type"] = t.clone();
    }
    for source in SOURCES {
        let Some(src) = metric.get(*source).filter(|s| !s.is_null()) else {
            continue;
        };
        let mut dst = json!({});
        for (v2, v1) in fields(source) {
            let (from, to) = if to_v1 { (*v2, *v1) } else { (*v1, *v2) };
            if let Some(val) = get(src, from) {
                set(&mut dst, to, val.clone());
            }
        }
        out[*source] = dst;
    }
    out
}

/// Upstream infers a v2 target's type from which v1 fields are set.
fn infer_target_type(metric: &mut Value) {
    for source in SOURCES {
        let Some(src) = metric.get_mut(*source) else {
            continue;
        };
        let has = |p: &str| get(src, p).is_some();
        let ty = match *source {
            "object" if has("target.averageValue") => "AverageValue",
            "object" => "Value",
            "pods" => "AverageValue",
            "resource" | "containerResource" if has("target.averageUtilization") => "Utilization",
            "resource" | "containerResource" => "AverageValue",
            "external" if has("target.value") => "Value",
            _ => "AverageValue",
        };
        set(src, "target.type", Value::from(ty));
    }
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && get(metric, "resource.name").and_then(Value::as_str) == Some("cpu")
        && get(metric, "resource.target.averageUtilization").is_some()
}

fn cpu_metric(utilization: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

fn copy(src: &Value, dst: &mut Map<String, Value>, fields: &[&str]) {
    for f in fields {
        if let Some(v) = src.get(*f).filter(|v| !v.is_null()) {
            dst.insert((*f).to_string(), v.clone());
        }
    }
}

fn annotations_mut(meta: &mut Value) -> &mut Map<String, Value> {
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(m) = meta else {
        unreachable!("just made an object")
    };
    let entry = m
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(a) => a,
        _ => unreachable!("just made an object"),
    }
}

/// Removes the round-trip annotations (and an annotation map left empty).
fn drop_round_trip(meta: &mut Value) -> Map<String, Value> {
    let mut taken = Map::new();
    let Some(Value::Object(a)) = meta.get_mut("annotations") else {
        return taken;
    };
    for key in ROUND_TRIP {
        if let Some(v) = a.remove(*key) {
            taken.insert((*key).to_string(), v);
        }
    }
    if a.is_empty()
        && let Value::Object(m) = meta
    {
        m.remove("annotations");
    }
    taken
}

fn encoded(v: &Value) -> Value {
    Value::from(serde_json::to_string(v).unwrap_or_default())
}

fn decoded(annotations: &Map<String, Value>, key: &str) -> Option<Value> {
    annotations
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Stored autoscaling/v2 → served autoscaling/v1.
pub fn v2_to_v1(obj: Value) -> Result<Value, ApiError> {
    let src = Value::Object(object(obj, "HorizontalPodAutoscaler")?);
    let mut meta = src.get("metadata").cloned().unwrap_or_else(|| json!({}));
    drop_round_trip(&mut meta);

    let spec = src.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut out_spec = Map::new();
    copy(
        &spec,
        &mut out_spec,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let metrics: Vec<Value> = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization(m))
        && let Some(u) = get(cpu, "resource.target.averageUtilization")
    {
        out_spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
    }
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(|m| map_metric(m, spec_fields, true))
        .collect();

    let status = src.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut out_status = Map::new();
    copy(
        &status,
        &mut out_status,
        &["observedGeneration", "lastScaleTime"],
    );
    out_status.insert(
        "currentReplicas".into(),
        status.get("currentReplicas").cloned().unwrap_or(json!(0)),
    );
    out_status.insert(
        "desiredReplicas".into(),
        status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    let current: Vec<Value> = status
        .get("currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in &current {
        if m.get("type").and_then(Value::as_str) == Some("Resource")
            && get(m, "resource.name").and_then(Value::as_str) == Some("cpu")
            && let Some(u) = get(m, "resource.current.averageUtilization")
        {
            out_status.insert("currentCPUUtilizationPercentage".into(), u.clone());
        }
    }
    let conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut added = Map::new();
    if !others.is_empty() {
        added.insert(METRICS_ANNOTATION.into(), encoded(&Value::Array(others)));
    }
    if !current.is_empty() {
        let v1: Vec<Value> = current
            .iter()
            .map(|m| map_metric(m, status_fields, true))
            .collect();
        added.insert(
            CURRENT_METRICS_ANNOTATION.into(),
            encoded(&Value::Array(v1)),
        );
    }
    if let Some(b) = spec.get("behavior").filter(|b| !b.is_null()) {
        added.insert(BEHAVIOR_ANNOTATION.into(), encoded(b));
    }
    if !conditions.is_empty() {
        added.insert(
            CONDITIONS_ANNOTATION.into(),
            encoded(&Value::Array(conditions)),
        );
    }
    if !added.is_empty() {
        annotations_mut(&mut meta).extend(added);
    }

    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": out_spec,
        "status": out_status,
    }))
}

/// Served autoscaling/v1 → stored autoscaling/v2.
pub fn v1_to_v2(obj: Value) -> Result<Value, ApiError> {
    let src = Value::Object(object(obj, "HorizontalPodAutoscaler")?);
    let mut meta = src.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let annotations = drop_round_trip(&mut meta);

    let spec = src.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut out_spec = Map::new();
    copy(
        &spec,
        &mut out_spec,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let mut metrics: Vec<Value> = match decoded(&annotations, METRICS_ANNOTATION) {
        Some(Value::Array(others)) => others
            .iter()
            .map(|m| {
                let mut v2 = map_metric(m, spec_fields, false);
                infer_target_type(&mut v2);
                v2
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some(cpu) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        metrics.push(cpu_metric(cpu.clone()));
    }
    if metrics.is_empty() {
        // v1 always implied a CPU target; v2 states it.
        metrics.push(cpu_metric(json!(
            crate::other::horizontalpodautoscalers::DEFAULT_CPU_UTILIZATION
        )));
    }
    out_spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(b) = decoded(&annotations, BEHAVIOR_ANNOTATION)
        .filter(|b| b.as_object().is_some_and(|m| !m.is_empty()))
    {
        out_spec.insert("behavior".into(), b);
    }

    let status = src.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut out_status = Map::new();
    copy(
        &status,
        &mut out_status,
        &["observedGeneration", "lastScaleTime"],
    );
    if let Some(n) = status
        .get("currentReplicas")
        .filter(|n| n.as_i64().unwrap_or(0) != 0)
    {
        out_status.insert("currentReplicas".into(), n.clone());
    }
    out_status.insert(
        "desiredReplicas".into(),
        status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    let current = match decoded(&annotations, CURRENT_METRICS_ANNOTATION) {
        Some(Value::Array(ms)) => Some(
            ms.iter()
                .map(|m| map_metric(m, status_fields, false))
                .collect(),
        ),
        _ => status
            .get("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
            .map(|u| {
                vec![json!({"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": u}}})]
            }),
    };
    if let Some(current) = current {
        out_status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(Value::Array(c)) = decoded(&annotations, CONDITIONS_ANNOTATION) {
        out_status.insert("conditions".into(), Value::Array(c));
    }

    Ok(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": out_spec,
        "status": out_status,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;

    fn full_v2() -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                        "metric": {"name": "rps", "selector": {"matchLabels": {"a": "b"}}}, "target": {"type": "Value", "value": "2k"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                    {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}},
            },
            "status": {
                "observedGeneration": 3, "currentReplicas": 3, "desiredReplicas": 4,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40, "averageValue": "100m"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "7"}}},
                ],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                    "lastTransitionTime": "2024-05-01T00:00:00Z"}],
            },
        })
    }

    #[test]
    fn v2_to_v1_view() {
        let v1 = v2_to_v1(full_v2()).unwrap();
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["spec"]["minReplicas"], 2);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 40);
        assert_eq!(v1["status"]["currentReplicas"], 3);
        let ann = &v1["metadata"]["annotations"];
        assert_eq!(ann["team"], "a");
        let metrics: Value =
            serde_json::from_str(ann[METRICS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(metrics.as_array().unwrap().len(), 5);
        assert_eq!(
            metrics[0],
            json!({"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "500Mi"}})
        );
        assert_eq!(
            metrics[2]["object"],
            json!({"target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                "metricName": "rps", "selector": {"matchLabels": {"a": "b"}}, "targetValue": "2k"})
        );
        assert!(ann[BEHAVIOR_ANNOTATION].is_string());
        assert!(ann[CONDITIONS_ANNOTATION].is_string());
        assert!(ann[CURRENT_METRICS_ANNOTATION].is_string());
        // The v1 view decodes as the v1 type.
        let typed: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler =
            serde_json::from_value(v1).unwrap();
        assert_eq!(
            typed.spec.unwrap().target_cpu_utilization_percentage,
            Some(50)
        );
    }

    #[test]
    fn v2_v1_v2_round_trip() {
        let v2 = full_v2();
        assert_eq!(v1_to_v2(v2_to_v1(v2.clone()).unwrap()).unwrap(), v2);
        // Without annotations to carry, a plain CPU autoscaler round-trips too.
        let plain = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"desiredReplicas": 0},
        });
        let v1 = v2_to_v1(plain.clone()).unwrap();
        assert!(v1["metadata"].get("annotations").is_none());
        assert_eq!(v1_to_v2(v1).unwrap(), plain);
    }

    #[test]
    fn v1_v2_v1_round_trip_and_defaults() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 12},
        });
        let v2 = v1_to_v2(v1.clone()).unwrap();
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}])
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            12
        );
        // As upstream, the v1 view always carries the current metrics in full, so the only
        // difference after a round trip is that annotation.
        let mut back = v2_to_v1(v2).unwrap();
        assert_eq!(
            back["metadata"]["annotations"][CURRENT_METRICS_ANNOTATION],
            r#"[{"resource":{"currentAverageUtilization":12,"name":"cpu"},"type":"Resource"}]"#
        );
        back["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        assert_eq!(back, v1);

        // No CPU target in v1 means the implicit 80%.
        let bare = json!({"metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 2}});
        let v2 = v1_to_v2(bare).unwrap();
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        // Round-trip annotations a client sends are consumed, not stored.
        let sneaky = json!({"metadata": {"name": "x", "annotations": {METRICS_ANNOTATION: "not json"}},
            "spec": {"maxReplicas": 2}});
        let v2 = v1_to_v2(sneaky).unwrap();
        assert!(v2["metadata"].get("annotations").is_none());
    }
}
