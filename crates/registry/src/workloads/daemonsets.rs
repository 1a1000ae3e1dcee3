//! apps/v1 DaemonSets: defaults (RollingUpdate with maxUnavailable 1 / maxSurge 0, 10
//! revisions), the `deprecated.daemonset.template.generation` annotation upstream keeps (1 at
//! creation, +1 whenever the template changes), validation, an immutable selector and the
//! status subresource.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetStatus, RollingUpdateDaemonSet,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{
    self, IMMUTABLE, collision_count_decremented, go_int_or_string, go_label_selector,
    int_or_percent_value, invalid_rendered, non_negative, non_negative_opt,
};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::selector;
use crate::workloads::template;
use api::selector::LabelSelector as Selector;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, DaemonSetStrategy))
}

/// The annotation apps/v1 uses for the internal `templateGeneration`.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The DaemonSet strategy.
pub struct DaemonSetStrategy;

fn spec_of(ds: &DaemonSet) -> std::borrow::Cow<'_, DaemonSetSpec> {
    match &ds.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(DaemonSetSpec::default()),
    }
}

fn template_generation(ds: &DaemonSet) -> i64 {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(ds: &mut DaemonSet, generation: i64) {
    ds.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(TEMPLATE_GENERATION.to_string(), generation.to_string());
}

/// `ValidateRollingUpdateDaemonSet`.
fn rolling_update(r: &RollingUpdateDaemonSet, path: &Path, errs: &mut Vec<FieldError>) {
    let zero = IntOrString::Int(0);
    let unavailable = r.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = r.max_surge.as_ref().unwrap_or(&zero);
    common::validate_int_or_percent(unavailable, &path.child("maxUnavailable"), errs);
    common::validate_int_or_percent(surge, &path.child("maxSurge"), errs);
    common::not_more_than_100_percent(unavailable, &path.child("maxUnavailable"), errs);
    common::not_more_than_100_percent(surge, &path.child("maxSurge"), errs);
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    if has_unavailable && has_surge {
        errs.push(invalid_rendered(
            path.child("maxSurge"),
            go_int_or_string(surge),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            path.child("maxUnavailable"),
            "cannot be 0 when maxSurge is 0",
        ));
    }
}

/// `ValidateDaemonSetSpec`.
fn validate_spec(spec: &DaemonSetSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = path.child("selector");
    // A missing selector is nil upstream: nothing to validate, and it matches no labels.
    let unset = selector::is_unset(&spec.selector);
    if !unset {
        errs.extend(selector::validate(&spec.selector, &sp));
    }
    let matcher = if unset {
        Some(Selector::nothing())
    } else {
        Selector::from_k8s(&spec.selector).ok()
    };
    if let Some(m) = matcher
        && !m.matches(&template::labels(&spec.template))
    {
        errs.push(template::mismatch(&spec.template, &path.child("template")));
    }
    if !unset && selector::is_empty(&spec.selector) {
        errs.push(invalid_rendered(
            &sp,
            go_label_selector(&spec.selector),
            "empty selector is invalid for daemonset",
        ));
    }
    let tp = path.child("template");
    errs.extend(pod_spec::validate_template(&spec.template, &tp));
    errs.extend(template::always_restart(&spec.template, "DaemonSet", &tp));
    non_negative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
        &mut errs,
    );
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let up = path.child("updateStrategy");
    match strategy.type_.as_deref().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(up.child("rollingUpdate"), "")),
            Some(r) => rolling_update(r, &up.child("rollingUpdate"), &mut errs),
        },
        _ => errs.push(FieldError::not_supported(
            &up,
            serde_json::to_value(&strategy).unwrap_or_default(),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    non_negative_opt(
        spec.revision_history_limit,
        &path.child("revisionHistoryLimit"),
        &mut errs,
    );
    errs
}

fn validate_status(s: &DaemonSetStatus, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (v, name) in [
        (s.current_number_scheduled, "currentNumberScheduled"),
        (s.number_misscheduled, "numberMisscheduled"),
        (s.desired_number_scheduled, "desiredNumberScheduled"),
        (s.number_ready, "numberReady"),
    ] {
        non_negative(i64::from(v), &path.child(name), &mut errs);
    }
    non_negative(
        s.observed_generation.unwrap_or(0),
        &path.child("observedGeneration"),
        &mut errs,
    );
    for (v, name) in [
        (s.updated_number_scheduled, "updatedNumberScheduled"),
        (s.number_available, "numberAvailable"),
        (s.number_unavailable, "numberUnavailable"),
        (s.collision_count, "collisionCount"),
    ] {
        non_negative_opt(v, &path.child(name), &mut errs);
    }
    errs
}

impl Strategy for DaemonSetStrategy {
    type Object = DaemonSet;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, ds: &mut DaemonSet) {
        let spec = ds.spec.get_or_insert_with(DaemonSetSpec::default);
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        if strategy.type_.as_deref().unwrap_or("").is_empty() {
            strategy.type_ = Some("RollingUpdate".to_string());
        }
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let r = strategy.rolling_update.get_or_insert_with(Default::default);
            r.max_unavailable.get_or_insert(IntOrString::Int(1));
            r.max_surge.get_or_insert(IntOrString::Int(0));
        }
        spec.revision_history_limit.get_or_insert(10);
        defaults::template(&mut spec.template);
    }

    fn prepare_for_create(&self, ds: &mut DaemonSet) {
        ds.status = Some(DaemonSetStatus::default());
        set_template_generation(ds, 1);
    }

    fn prepare_for_update(&self, new: &mut DaemonSet, old: &DaemonSet) {
        // Clients may not set the template generation; it moves only with the template.
        let changed = spec_of(new).template != spec_of(old).template;
        let generation = template_generation(old) + i64::from(changed);
        set_template_generation(new, generation);
    }

    fn validate(&self, ds: &DaemonSet) -> Vec<FieldError> {
        validate_spec(&spec_of(ds), &Path::new("spec"))
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        let (spec, old_spec) = (spec_of(new), spec_of(old));
        let mut errs = validate_spec(&spec, &Path::new("spec"));
        if spec.selector != old_spec.selector {
            errs.push(invalid_rendered(
                Path::new("spec").child("selector"),
                go_label_selector(&spec.selector),
                IMMUTABLE,
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        let status = new.status.clone().unwrap_or_default();
        let mut errs = validate_status(&status, &Path::new("status"));
        collision_count_decremented(
            status.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
            &mut errs,
        );
        errs
    }

    fn before_write(
        &self,
        new: &mut DaemonSet,
        _old: Option<&DaemonSet>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("DaemonSet", Some(&spec_of(new).template))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("apps", "v1", "daemonsets").unwrap())
    }

    fn ds() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "agent:1"}]}
                }
            }
        })
    }

    #[test]
    fn defaults_and_template_generation() {
        let s = strategy();
        let out = s.admit_create(ds(), false).unwrap().object;
        assert_eq!(
            out["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(out["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert_eq!(
            out["status"],
            json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
        );
        // Same template: generation stays; new image: it moves.
        let same = s.admit_update(out.clone(), &out, false).unwrap().object;
        assert_eq!(same["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        let mut changed = out.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        changed["metadata"]["annotations"][TEMPLATE_GENERATION] = json!("7");
        let next = s.admit_update(changed, &out, false).unwrap().object;
        assert_eq!(next["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
        assert_eq!(next["metadata"]["generation"], 2);
    }

    #[test]
    fn validation() {
        let mut bad = ds();
        bad["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        let err = strategy().admit_create(bad, false).unwrap_err();
        let causes: Vec<String> = err
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            causes,
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
            ]
        );
        let mut no_selector = ds();
        no_selector["spec"]
            .as_object_mut()
            .unwrap()
            .remove("selector");
        let err = strategy().admit_create(no_selector, false).unwrap_err();
        assert_eq!(err.causes.len(), 1);
        assert_eq!(err.causes[0].field, "spec.template.metadata.labels");
    }
}
