//! apps/v1 ReplicaSets: one replica by default, pod template defaults, the selector/template
//! rules shared with Deployments, an immutable selector, and the status subresource.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{
    IMMUTABLE, go_label_selector, invalid_rendered, non_negative, replica_counts,
};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::template::{self, SelectorRules};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, ReplicaSetStrategy))
}

/// The ReplicaSet strategy.
pub struct ReplicaSetStrategy;

fn spec_of(rs: &ReplicaSet) -> std::borrow::Cow<'_, ReplicaSetSpec> {
    match &rs.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(ReplicaSetSpec::default()),
    }
}

/// `ValidateReplicaSetSpec`.
fn validate_spec(spec: &ReplicaSetSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
        &mut errs,
    );
    non_negative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
        &mut errs,
    );
    // Upstream's message says "deployment" for ReplicaSets too.
    let rules = SelectorRules {
        kind: "deployment",
        unusable_detail: "invalid label selector",
    };
    let matcher =
        template::required_selector(&spec.selector, &rules, &path.child("selector"), &mut errs);
    if let Some(m) = &matcher {
        let default = PodTemplateSpec::default();
        let t = spec.template.as_ref().unwrap_or(&default);
        errs.extend(template::for_always_restart(
            t,
            Some(m),
            "ReplicaSet",
            &path.child("template"),
        ));
    }
    errs
}

impl Strategy for ReplicaSetStrategy {
    type Object = ReplicaSet;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, rs: &mut ReplicaSet) {
        let spec = rs.spec.get_or_insert_with(ReplicaSetSpec::default);
        spec.replicas.get_or_insert(1);
        defaults::template(spec.template.get_or_insert_with(PodTemplateSpec::default));
    }

    fn prepare_for_create(&self, rs: &mut ReplicaSet) {
        rs.status = Some(ReplicaSetStatus::default());
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        validate_spec(&spec_of(rs), &Path::new("spec"))
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
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

    fn validate_status_update(&self, new: &ReplicaSet, _old: &ReplicaSet) -> Vec<FieldError> {
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
        new: &mut ReplicaSet,
        _old: Option<&ReplicaSet>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("ReplicaSet", spec_of(new).template.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}
                }
            }
        })
    }

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("apps", "v1", "replicasets").unwrap())
    }

    #[test]
    fn defaults_and_status() {
        let out = strategy().admit_create(rs(), false).unwrap().object;
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["status"], json!({"replicas": 0}));
        assert_eq!(out["metadata"]["generation"], 1);
        assert_eq!(out["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn validation() {
        let mut bad = rs();
        bad["spec"]["replicas"] = json!(-1);
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let err = strategy().admit_create(bad, false).unwrap_err();
        let causes: Vec<String> = err
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            causes,
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let s = strategy();
        let old = s.admit_create(rs(), false).unwrap().object;
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "x": "y"}});
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        let err = s.admit_update(new, &old, false).unwrap_err();
        assert_eq!(
            err.causes[0].message,
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        );
        let mut status = old.clone();
        status["status"] = json!({"replicas": 1, "readyReplicas": 2});
        let err = s.admit_status_update(status, &old).unwrap_err();
        assert_eq!(err.causes[0].field, "status.readyReplicas");
        assert_eq!(
            err.causes[0].message,
            "Invalid value: 2: cannot be greater than status.replicas"
        );
    }
}
