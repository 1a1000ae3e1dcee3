//! What a Pod update through the main resource may change (`ValidatePodUpdate`): container and
//! init container images, `activeDeadlineSeconds` (set, or lowered), tolerations (additions, and
//! `tolerationSeconds`), removal of scheduling gates, and a negative grace period raised to 1.
//! Everything else in the spec is immutable.

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use serde_json::Value;

use super::scheduling::tolerations;

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidateContainerUpdates`; `true` means stop (containers were added or removed).
fn container_updates(
    new: &[Container],
    old: &[Container],
    path: &Path,
    errs: &mut Vec<FieldError>,
) -> bool {
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(path.index(i).child("image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

fn same_except_seconds(old: &Toleration, new: &Toleration) -> bool {
    old.key == new.key
        && old.operator == new.operator
        && old.value == new.value
        && old.effect == new.effect
}

/// Leaf-level differences between two JSON values, one line per changed path.
fn diff(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(x, y, &p, out),
                    (Some(x), None) => out.push(format!("- {p}: {x}")),
                    (None, Some(y)) => out.push(format!("+ {p}: {y}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ if old != new => {
            out.push(format!("- {path}: {old}"));
            out.push(format!("+ {path}: {new}"));
        }
        _ => {}
    }
}

/// The update rules for a pod's spec (the new spec has already been validated in full).
pub fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("spec");
    let empty = Vec::new();
    if container_updates(
        &new.containers,
        &old.containers,
        &path.child("containers"),
        &mut errs,
    ) {
        return errs;
    }
    let new_init = new.init_containers.as_ref().unwrap_or(&empty);
    let old_init = old.init_containers.as_ref().unwrap_or(&empty);
    if container_updates(new_init, old_init, &path.child("initContainers"), &mut errs) {
        return errs;
    }
    let adp = path.child("activeDeadlineSeconds");
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), old_value) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(
                    &adp,
                    n,
                    "must be between 0 and 2147483647, inclusive",
                ));
                return errs;
            }
            if old_value.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &adp,
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &adp,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    let new_tol = new.tolerations.as_deref().unwrap_or(&[]);
    let old_tol = old.tolerations.as_deref().unwrap_or(&[]);
    if old_tol
        .iter()
        .any(|o| !new_tol.iter().any(|n| same_except_seconds(o, n)))
    {
        errs.push(FieldError::forbidden(
            path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    } else {
        errs.extend(tolerations(new_tol, &path.child("tolerations")));
    }
    let old_gates: Vec<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for (i, g) in new.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(&g.name.as_str()) {
            errs.push(FieldError::forbidden(
                path.child("schedulingGates").index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }

    // What remains must be identical once the mutable fields are taken from the old spec.
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    // A gated pod may gain node selector entries (never lose or change one).
    if !old_gates.is_empty() {
        let old_sel = old.node_selector.clone().unwrap_or_default();
        let superset = munged
            .node_selector
            .as_ref()
            .is_some_and(|n| old_sel.iter().all(|(k, v)| n.get(k) == Some(v)));
        if superset {
            munged.node_selector.clone_from(&old.node_selector);
        }
    }
    let (old_v, new_v) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(&munged).unwrap_or_default(),
    );
    if old_v != new_v {
        let mut lines = Vec::new();
        diff(&old_v, &new_v, "spec", &mut lines);
        errs.push(FieldError::forbidden(
            &path,
            format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                lines.join("\n")
            ),
        ));
    }
    errs
}
