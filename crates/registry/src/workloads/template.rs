//! The rules a controller's selector and pod template obey (`ValidatePodTemplateSpecForReplicaSet`
//! and its siblings): the selector is present, valid and non-empty, matches the template's
//! labels, and the template is a valid pod template whose restart policy suits the controller.

use std::collections::BTreeMap;

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::workloads::common::{go_label_selector, go_string_map, invalid_rendered};
use crate::workloads::pod_spec;
use crate::workloads::selector;
use api::selector::LabelSelector as Selector;

/// The template's labels.
pub fn labels(t: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    t.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// `spec.template.metadata.labels: Invalid value: map[...]: `selector` does not match template
/// `labels``.
pub fn mismatch(t: &PodTemplateSpec, path: &Path) -> FieldError {
    invalid_rendered(
        path.child("metadata").child("labels"),
        go_string_map(labels(t)),
        "`selector` does not match template `labels`",
    )
}

/// How a controller checks its `spec.selector`.
pub struct SelectorRules {
    /// Name used in "empty selector is invalid for <kind>".
    pub kind: &'static str,
    /// Detail of the error when the selector cannot be turned into a matcher.
    pub unusable_detail: &'static str,
}

/// Validates a required `spec.selector` at `path`. Returns the errors and, unless the selector
/// cannot be used, its matcher (a missing selector matches nothing, as a nil selector upstream).
pub fn required_selector(
    sel: &LabelSelector,
    rules: &SelectorRules,
    path: &Path,
    errs: &mut Vec<FieldError>,
) -> Option<Selector> {
    if selector::is_unset(sel) {
        errs.push(FieldError::required(path, ""));
        // LabelSelectorAsSelector(nil) is "nothing": it matches no labels.
        return Some(Selector::nothing());
    }
    errs.extend(selector::validate(sel, path));
    if selector::is_empty(sel) {
        errs.push(invalid_rendered(
            path,
            go_label_selector(sel),
            format!("empty selector is invalid for {}", rules.kind),
        ));
    }
    let m = Selector::from_k8s(sel).ok();
    if m.is_none() {
        errs.push(invalid_rendered(
            path,
            go_label_selector(sel),
            rules.unusable_detail,
        ));
    }
    m
}

/// `ValidatePodTemplateSpecForReplicaSet` (also used by Deployments, DaemonSets and
/// ReplicationControllers): selector match, full template validation, `restartPolicy: Always`
/// and no `activeDeadlineSeconds`.
pub fn for_always_restart(
    t: &PodTemplateSpec,
    matcher: Option<&Selector>,
    owner: &str,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = matcher
        && !m.is_everything()
        && !m.matches(&labels(t))
    {
        errs.push(mismatch(t, path));
    }
    errs.extend(pod_spec::validate_template(t, path));
    errs.extend(always_restart(t, owner, path));
    errs
}

/// The restart-policy and deadline rules of long-running controllers.
pub fn always_restart(t: &PodTemplateSpec, owner: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = t.spec.as_ref();
    let policy = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            path.child("spec").child("restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if spec.and_then(|s| s.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn missing_selector_matches_nothing() {
        let rules = SelectorRules {
            kind: "deployment",
            unusable_detail: "invalid label selector",
        };
        let mut errs = Vec::new();
        let m = required_selector(
            &LabelSelector::default(),
            &rules,
            &Path::new("spec").child("selector"),
            &mut errs,
        );
        assert_eq!(errs[0].to_string(), "spec.selector: Required value");
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "web".to_string());
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: None,
        };
        let m = m.unwrap();
        assert!(!m.is_everything());
        assert!(!m.matches(&super::labels(&t)));
        assert_eq!(
            mismatch(&t, &Path::new("spec").child("template")).to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        );
    }
}
