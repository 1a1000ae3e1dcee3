//! apps/v1 StatefulSets: defaults (OrderedReady, RollingUpdate with partition 0, Retain/Retain
//! claim retention, one replica, 10 revisions, claim template defaults), validation, the fields
//! an update may change, and the status subresource.
//!
//! As upstream, the pod template is only checked for its labels and annotations (not as a full
//! pod spec), and names must be DNS labels because they become pod hostnames.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
use k8s_openapi::api::core::v1::PersistentVolumeClaimStatus;

use crate::DynStrategy;
use crate::strategy::{Adapter, NameValidation, Strategy};
use crate::workloads::common::{collision_count_decremented, non_negative, non_negative_opt};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::template::{self, SelectorRules};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, StatefulSetStrategy))
}

/// The StatefulSet strategy.
pub struct StatefulSetStrategy;

fn spec_of(s: &StatefulSet) -> std::borrow::Cow<'_, StatefulSetSpec> {
    match &s.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(StatefulSetSpec::default()),
    }
}

/// `ValidateStatefulSetSpec`.
fn validate_spec(spec: &StatefulSetSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            path.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let up = path.child("updateStrategy");
    match strategy.type_.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&up, "")),
        "OnDelete" => {
            if let Some(r) = &strategy.rolling_update {
                errs.push(FieldError::invalid(
                    up.child("rollingUpdate"),
                    serde_json::to_value(r).unwrap_or_default(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(r) = &strategy.rolling_update {
                non_negative(
                    i64::from(r.partition.unwrap_or(0)),
                    &up.child("rollingUpdate").child("partition"),
                    &mut errs,
                );
            }
        }
        _ => errs.push(FieldError::invalid(
            &up,
            serde_json::to_value(&strategy).unwrap_or_default(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = &spec.persistent_volume_claim_retention_policy {
        let pp = path.child("persistentVolumeClaimRetentionPolicy");
        for (v, name) in [
            (&p.when_deleted, "whenDeleted"),
            (&p.when_scaled, "whenScaled"),
        ] {
            let v = v.as_deref().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    pp.child(name),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
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
    if let Some(o) = &spec.ordinals {
        non_negative(
            i64::from(o.start.unwrap_or(0)),
            &path.child("ordinals.start"),
            &mut errs,
        );
    }
    let rules = SelectorRules {
        kind: "statefulset",
        unusable_detail: "",
    };
    let tp = path.child("template");
    if let Some(m) =
        template::required_selector(&spec.selector, &rules, &path.child("selector"), &mut errs)
    {
        if !m.is_everything() && !m.matches(&template::labels(&spec.template)) {
            errs.push(template::mismatch(&spec.template, &tp));
        }
        let meta = spec.template.metadata.as_ref();
        if let Some(l) = meta.and_then(|m| m.labels.as_ref()) {
            errs.extend(validation::validate_labels(l, &tp.child("labels")));
        }
        if let Some(a) = meta.and_then(|m| m.annotations.as_ref()) {
            errs.extend(validation::validate_annotations(
                a,
                &tp.child("annotations"),
            ));
        }
        let default = Default::default();
        errs.extend(pod_spec::pod_annotations(
            meta.and_then(|m| m.annotations.as_ref()),
            spec.template.spec.as_ref().unwrap_or(&default),
            &tp.child("annotations"),
        ));
    }
    let pod = spec.template.spec.as_ref();
    let policy = pod.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if pod.and_then(|s| s.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

fn validate_status(s: &StatefulSetStatus, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let replicas = s.replicas;
    let ready = s.ready_replicas.unwrap_or(0);
    let current = s.current_replicas.unwrap_or(0);
    let updated = s.updated_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    for (v, name) in [
        (replicas, "replicas"),
        (ready, "readyReplicas"),
        (current, "currentReplicas"),
        (updated, "updatedReplicas"),
        (available, "availableReplicas"),
    ] {
        non_negative(i64::from(v), &path.child(name), &mut errs);
    }
    non_negative_opt(
        s.observed_generation,
        &path.child("observedGeneration"),
        &mut errs,
    );
    non_negative_opt(s.collision_count, &path.child("collisionCount"), &mut errs);
    let msg = "cannot be greater than status.replicas";
    for (v, name) in [
        (ready, "readyReplicas"),
        (current, "currentReplicas"),
        (updated, "updatedReplicas"),
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
            "cannot be greater than status.readyReplicas",
        ));
    }
    errs
}

impl Strategy for StatefulSetStrategy {
    type Object = StatefulSet;

    fn name_validation(&self) -> NameValidation {
        NameValidation::Label
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, s: &mut StatefulSet) {
        let spec = s.spec.get_or_insert_with(StatefulSetSpec::default);
        if spec
            .pod_management_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            spec.pod_management_policy = Some("OrderedReady".to_string());
        }
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        if strategy.type_.as_deref().unwrap_or("").is_empty() {
            strategy.type_ = Some("RollingUpdate".to_string());
            strategy.rolling_update.get_or_insert_with(Default::default);
        }
        if strategy.type_.as_deref() == Some("RollingUpdate")
            && let Some(r) = &mut strategy.rolling_update
        {
            r.partition.get_or_insert(0);
            // maxUnavailable needs the MaxUnavailableStatefulSet gate, off in 1.33.
            r.max_unavailable = None;
        }
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        for v in [&mut retention.when_deleted, &mut retention.when_scaled] {
            if v.as_deref().unwrap_or("").is_empty() {
                *v = Some("Retain".to_string());
            }
        }
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        defaults::template(&mut spec.template);
        for pvc in spec.volume_claim_templates.iter_mut().flatten() {
            defaults::pvc_spec(pvc.spec.get_or_insert_with(Default::default));
            let status = pvc
                .status
                .get_or_insert_with(PersistentVolumeClaimStatus::default);
            if status.phase.as_deref().unwrap_or("").is_empty() {
                status.phase = Some("Pending".to_string());
            }
        }
    }

    fn prepare_for_create(&self, s: &mut StatefulSet) {
        // `availableReplicas` has no omitempty upstream, so a fresh status shows it as 0.
        s.status = Some(StatefulSetStatus {
            available_replicas: Some(0),
            ..Default::default()
        });
    }

    fn validate(&self, s: &StatefulSet) -> Vec<FieldError> {
        validate_spec(&spec_of(s), &Path::new("spec"))
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        let (spec, old_spec) = (spec_of(new), spec_of(old));
        let mut errs = validate_spec(&spec, &Path::new("spec"));
        let mut clone = spec.clone().into_owned();
        clone.replicas = old_spec.replicas;
        clone.template = old_spec.template.clone();
        clone.update_strategy.clone_from(&old_spec.update_strategy);
        clone.min_ready_seconds = old_spec.min_ready_seconds;
        clone.ordinals.clone_from(&old_spec.ordinals);
        clone
            .persistent_volume_claim_retention_policy
            .clone_from(&old_spec.persistent_volume_claim_retention_policy);
        if clone != *old_spec {
            errs.push(FieldError::forbidden(
                Path::new("spec"),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
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
        new: &mut StatefulSet,
        _old: Option<&StatefulSet>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("StatefulSet", Some(&spec_of(new).template))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("apps", "v1", "statefulsets").unwrap())
    }

    fn sts() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}
                }]
            }
        })
    }

    #[test]
    fn defaults() {
        let out = strategy().admit_create(sts(), false).unwrap().object;
        let spec = &out["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["volumeClaimTemplates"][0],
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"
                },
                "status": {"phase": "Pending"}
            })
        );
        assert_eq!(
            out["status"],
            json!({"availableReplicas": 0, "replicas": 0})
        );
    }

    #[test]
    fn updates_only_touch_mutable_fields() {
        let s = strategy();
        let old = s.admit_create(sts(), false).unwrap().object;
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(s.admit_update(scaled, &old, false).is_ok());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("other");
        let err = s.admit_update(renamed, &old, false).unwrap_err();
        assert_eq!(
            err.causes[0].message,
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        );
    }

    #[test]
    fn validation() {
        let mut bad = sts();
        bad["spec"]["podManagementPolicy"] = json!("Whenever");
        bad["spec"]["selector"] = json!({"matchLabels": {"app": "db"}});
        let err = strategy().admit_create(bad, false).unwrap_err();
        let causes: Vec<String> = err
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            causes,
            [
                "spec.podManagementPolicy: Invalid value: \"Whenever\": must be 'OrderedReady' or 'Parallel'",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut dotted = sts();
        dotted["metadata"]["name"] = json!("web.v1");
        let err = strategy().admit_create(dotted, false).unwrap_err();
        assert_eq!(err.causes[0].field, "metadata.name");
    }
}
