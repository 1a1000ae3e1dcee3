//! apps/v1 Deployments: defaults (1 replica, RollingUpdate 25%/25%, 10 revisions, 600s
//! progress deadline, pod template defaults), spec validation, the immutable selector, and the
//! status subresource.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{
    self, IMMUTABLE, collision_count_decremented, go_int_or_string, go_label_selector,
    int_or_percent_value, invalid_rendered, non_negative, non_negative_opt,
};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::template::{self, SelectorRules};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, DeploymentStrategy))
}

/// The Deployment strategy.
pub struct DeploymentStrategy;

fn spec_of(d: &Deployment) -> std::borrow::Cow<'_, DeploymentSpec> {
    match &d.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(DeploymentSpec::default()),
    }
}

fn rolling_update(r: &RollingUpdateDeployment, path: &Path, errs: &mut Vec<FieldError>) {
    let zero = IntOrString::Int(0);
    let unavailable = r.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = r.max_surge.as_ref().unwrap_or(&zero);
    common::validate_int_or_percent(unavailable, &path.child("maxUnavailable"), errs);
    common::validate_int_or_percent(surge, &path.child("maxSurge"), errs);
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errs.push(invalid_rendered(
            path.child("maxUnavailable"),
            go_int_or_string(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    common::not_more_than_100_percent(unavailable, &path.child("maxUnavailable"), errs);
}

/// `ValidateDeploymentSpec`.
fn validate_spec(spec: &DeploymentSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
        &mut errs,
    );
    let rules = SelectorRules {
        kind: "deployment",
        unusable_detail: "invalid label selector",
    };
    let matcher =
        template::required_selector(&spec.selector, &rules, &path.child("selector"), &mut errs);
    if let Some(m) = &matcher {
        // Upstream names the ReplicaSet here even for Deployments.
        errs.extend(template::for_always_restart(
            &spec.template,
            Some(m),
            "ReplicaSet",
            &path.child("template"),
        ));
    }
    let strategy = spec.strategy.clone().unwrap_or_default();
    let sp = path.child("strategy");
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    sp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                sp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(r) => rolling_update(r, &sp.child("rollingUpdate"), &mut errs),
        },
        _ => errs.push(FieldError::not_supported(
            &sp,
            serde_json::to_value(&strategy).unwrap_or_default(),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    non_negative(
        i64::from(min_ready),
        &path.child("minReadySeconds"),
        &mut errs,
    );
    non_negative_opt(
        spec.revision_history_limit,
        &path.child("revisionHistoryLimit"),
        &mut errs,
    );
    if let Some(p) = spec.progress_deadline_seconds {
        non_negative(
            i64::from(p),
            &path.child("progressDeadlineSeconds"),
            &mut errs,
        );
        if p <= min_ready {
            errs.push(FieldError::invalid(
                path.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// `ValidateDeploymentStatus`.
fn validate_status(s: &DeploymentStatus, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let replicas = s.replicas.unwrap_or(0);
    let ready = s.ready_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    let updated = s.updated_replicas.unwrap_or(0);
    non_negative(
        s.observed_generation.unwrap_or(0),
        &path.child("observedGeneration"),
        &mut errs,
    );
    for (v, name) in [
        (replicas, "replicas"),
        (updated, "updatedReplicas"),
        (ready, "readyReplicas"),
        (available, "availableReplicas"),
        (s.unavailable_replicas.unwrap_or(0), "unavailableReplicas"),
    ] {
        non_negative(i64::from(v), &path.child(name), &mut errs);
    }
    non_negative_opt(s.collision_count, &path.child("collisionCount"), &mut errs);
    let msg = "cannot be greater than status.replicas";
    for (v, name) in [
        (updated, "updatedReplicas"),
        (ready, "readyReplicas"),
        (available, "availableReplicas"),
    ] {
        if v > replicas {
            errs.push(FieldError::invalid(path.child(name), v, msg));
        }
    }
    if available > ready {
        errs.push(FieldError::invalid(
            path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

impl Strategy for DeploymentStrategy {
    type Object = Deployment;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Annotation changes start a new generation too: the controller copies them to the
    /// ReplicaSets, so it must notice them (upstream's deployment strategy).
    fn generation_changed(&self, new: &Deployment, old: &Deployment) -> bool {
        new.metadata.annotations != old.metadata.annotations
    }

    /// The controller records the revision annotation through `status` (no new generation).
    fn status_update_sets_annotations(&self) -> bool {
        true
    }

    fn set_defaults(&self, d: &mut Deployment) {
        let spec = d.spec.get_or_insert_with(DeploymentSpec::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        if strategy.type_.as_deref().unwrap_or("").is_empty() {
            strategy.type_ = Some("RollingUpdate".to_string());
        }
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let r = strategy.rolling_update.get_or_insert_with(Default::default);
            r.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            r.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        defaults::template(&mut spec.template);
    }

    fn prepare_for_create(&self, d: &mut Deployment) {
        d.status = Some(DeploymentStatus::default());
    }

    fn validate(&self, d: &Deployment) -> Vec<FieldError> {
        validate_spec(&spec_of(d), &Path::new("spec"))
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
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

    fn validate_status_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
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
        new: &mut Deployment,
        _old: Option<&Deployment>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("Deployment", Some(&spec_of(new).template))
    }
}

#[cfg(test)]
#[path = "deployments_tests.rs"]
mod tests;
