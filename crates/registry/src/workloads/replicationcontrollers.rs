//! core/v1 ReplicationControllers: the selector and the object's labels default to the
//! template's labels, one replica by default, an equality-based selector that must match the
//! template (and, unlike apps/v1, may change), and the status subresource.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{
    ReplicationController, ReplicationControllerSpec, ReplicationControllerStatus,
};

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{non_negative, replica_counts};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::template;
use api::selector::LabelSelector as Selector;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ReplicationControllerStrategy))
}

/// The ReplicationController strategy.
pub struct ReplicationControllerStrategy;

/// `ValidateReplicationControllerSpec`.
fn validate_spec(spec: &ReplicationControllerSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
        &mut errs,
    );
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(path.child("selector"), ""));
    }
    non_negative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
        &mut errs,
    );
    let tp = path.child("template");
    match &spec.template {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            if !selector.is_empty() && !Selector::from_set(&selector).matches(&template::labels(t))
            {
                errs.push(template::mismatch(t, &tp));
            }
            errs.extend(pod_spec::validate_template(t, &tp));
            errs.extend(template::always_restart(t, "ReplicationController", &tp));
        }
    }
    errs
}

fn spec_of(rc: &ReplicationController) -> std::borrow::Cow<'_, ReplicationControllerSpec> {
    match &rc.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(ReplicationControllerSpec::default()),
    }
}

impl Strategy for ReplicationControllerStrategy {
    type Object = ReplicationController;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, rc: &mut ReplicationController) {
        let spec = rc
            .spec
            .get_or_insert_with(ReplicationControllerSpec::default);
        if let Some(labels) = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
        {
            if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
                spec.selector = Some(labels.clone());
            }
            if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
                rc.metadata.labels = Some(labels);
            }
        }
        spec.replicas.get_or_insert(1);
        if let Some(t) = &mut spec.template {
            defaults::template(t);
        }
    }

    fn prepare_for_create(&self, rc: &mut ReplicationController) {
        rc.status = Some(ReplicationControllerStatus::default());
    }

    fn validate(&self, rc: &ReplicationController) -> Vec<FieldError> {
        validate_spec(&spec_of(rc), &Path::new("spec"))
    }

    fn validate_update(
        &self,
        new: &ReplicationController,
        _old: &ReplicationController,
    ) -> Vec<FieldError> {
        validate_spec(&spec_of(new), &Path::new("spec"))
    }

    fn validate_status_update(
        &self,
        new: &ReplicationController,
        _old: &ReplicationController,
    ) -> Vec<FieldError> {
        let s = new.status.clone().unwrap_or_default();
        replica_counts(
            s.replicas,
            s.fully_labeled_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            s.observed_generation.unwrap_or(0),
            &Path::new("status"),
        )
    }

    fn before_write(
        &self,
        new: &mut ReplicationController,
        _old: Option<&ReplicationController>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("ReplicationController", spec_of(new).template.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("", "v1", "replicationcontrollers").unwrap())
    }

    fn rc() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}
            }}
        })
    }

    #[test]
    fn selector_and_labels_default_from_the_template() {
        let out = strategy().admit_create(rc(), false).unwrap().object;
        assert_eq!(out["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["status"], json!({"replicas": 0}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn validation() {
        let mut bad = rc();
        bad["spec"]["selector"] = json!({"app": "other"});
        bad["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        let err = strategy().admit_create(bad, false).unwrap_err();
        let causes: Vec<String> = err
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            causes,
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported",
            ]
        );
        let mut no_template = rc();
        no_template["spec"] = json!({"selector": {"app": "web"}});
        let err = strategy().admit_create(no_template, false).unwrap_err();
        assert_eq!(err.causes[0].field, "spec.template");
        assert_eq!(err.causes[0].message, "Required value");
    }
}
