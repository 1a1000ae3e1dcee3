//! Admission that needs other objects than the one written (upstream's admission plugins that
//! read through informers): for now `Priority`, which resolves a pod's `priorityClassName`
//! into `spec.priority` and `spec.preemptionPolicy`.

use std::sync::Arc;

use api::ApiError;
use serde_json::{Value, json};

use crate::watchcache::CachedObject;

/// Resolves the pod's priority from its PriorityClass (or the global default class, or 0),
/// as upstream's Priority admission plugin does on create. `classes` are the stored
/// PriorityClasses.
pub fn pod_priority(pod: &mut Value, classes: &[Arc<CachedObject>]) -> Result<(), ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let requested = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let classes: Vec<Value> = classes.iter().map(|c| c.value()).collect();
    let class = match &requested {
        Some(wanted) => Some(
            classes
                .iter()
                .find(|c| c.pointer("/metadata/name").and_then(Value::as_str) == Some(wanted))
                .ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "pods \"{name}\" is forbidden: no PriorityClass with name {wanted} was found"
                    ))
                })?,
        ),
        // The oldest class marked globalDefault, if any.
        None => classes
            .iter()
            .filter(|c| c["globalDefault"].as_bool() == Some(true))
            .min_by_key(|c| {
                c.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }),
    };
    let (value, policy) = match class {
        Some(c) => (
            c["value"].as_i64().unwrap_or(0),
            c["preemptionPolicy"]
                .as_str()
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string()),
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(ApiError::forbidden(format!(
            "pods \"{name}\" is forbidden: the integer value of priority ({given}) must not be \
             provided in pod spec; priority admission controller computed {value} from the given \
             PriorityClass name"
        )));
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && given != policy
    {
        return Err(ApiError::forbidden(format!(
            "pods \"{name}\" is forbidden: the string value of PreemptionPolicy ({given}) must \
             not be provided in pod spec; priority admission controller computed {policy} from \
             the given PriorityClass name"
        )));
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    if requested.is_none()
        && let Some(c) = class
        && let Some(n) = c.pointer("/metadata/name")
    {
        spec.insert("priorityClassName".into(), n.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::resources::lookup;

    fn class(name: &str, value: i64, default: bool, policy: Option<&str>) -> Arc<CachedObject> {
        let info = lookup("scheduling.k8s.io", "v1", "priorityclasses").unwrap();
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
                           "value": value, "globalDefault": default});
        if let Some(p) = policy {
            v["preemptionPolicy"] = json!(p);
        }
        Arc::new(CachedObject::from_value(
            info,
            &format!("/registry/scheduling.k8s.io/priorityclasses/{name}"),
            &v,
            1,
        ))
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn resolves_named_default_and_missing_classes() {
        let classes = [
            class("high", 1000, false, Some("Never")),
            class("dflt", 5, true, None),
        ];
        let mut p = pod(json!({"priorityClassName": "high"}));
        pod_priority(&mut p, &classes).unwrap();
        assert_eq!(p["spec"]["priority"], 1000);
        assert_eq!(p["spec"]["preemptionPolicy"], "Never");

        let mut p = pod(json!({}));
        pod_priority(&mut p, &classes).unwrap();
        assert_eq!(p["spec"]["priority"], 5);
        assert_eq!(p["spec"]["priorityClassName"], "dflt");

        let mut p = pod(json!({}));
        pod_priority(&mut p, &classes[..1]).unwrap();
        assert_eq!(p["spec"]["priority"], 0);
        assert!(p["spec"].get("priorityClassName").is_none());

        let mut p = pod(json!({"priorityClassName": "nope"}));
        let e = pod_priority(&mut p, &classes).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(
            e.message
                .contains("no PriorityClass with name nope was found")
        );

        let mut p = pod(json!({"priorityClassName": "high", "priority": 7}));
        let e = pod_priority(&mut p, &classes).unwrap_err();
        assert!(e.message.contains("computed 1000"), "{}", e.message);
        // The same value given explicitly is fine.
        let mut p = pod(json!({"priorityClassName": "high", "priority": 1000}));
        pod_priority(&mut p, &classes).unwrap();
    }
}
