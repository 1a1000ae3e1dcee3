//! PersistentVolumeClaims: phase `Pending` on create, `dataSource`/`dataSourceRef` kept in
//! step, spec validation (access modes and a positive storage request required), and the update
//! rules: the spec is frozen except for `volumeName` (set once), a storage class set from
//! nothing, and the storage request of a bound claim, which may grow but not shrink to or below
//! the capacity already provided (upstream's `ValidatePersistentVolumeClaim(Update)` with
//! RecoverVolumeExpansionFailure on, as in 1.33).

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    TypedLocalObjectReference, TypedObjectReference,
};

use crate::DynStrategy;
use crate::core::common::{self, resources, selectors};
use crate::core::persistentvolumes::validate_access_modes;
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Claims))
}

struct Claims;

const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn spec(pvc: &PersistentVolumeClaim) -> PersistentVolumeClaimSpec {
    pvc.spec.clone().unwrap_or_default()
}

fn storage_request(
    spec: &PersistentVolumeClaimSpec,
) -> Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
}

/// Upstream's `NormalizeDataSources`: whichever of the two fields is set fills the other.
fn normalize_data_sources(spec: &mut PersistentVolumeClaimSpec) {
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(ds), None) => {
            spec.data_source_ref = Some(TypedObjectReference {
                api_group: ds.api_group.clone(),
                kind: ds.kind.clone(),
                name: ds.name.clone(),
                namespace: None,
            });
        }
        (None, Some(r)) if r.namespace.as_deref().unwrap_or("").is_empty() => {
            spec.data_source = Some(TypedLocalObjectReference {
                api_group: r.api_group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
            });
        }
        _ => {}
    }
}

fn validate_ref(api_group: Option<&str>, kind: &str, name: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(path.child("kind"), ""));
    }
    let group = api_group.unwrap_or("");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        errs.extend(common::dns_subdomain(&path.child("apiGroup"), group));
    }
    errs
}

/// Upstream's `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(
            path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = &spec.selector {
        errs.extend(selectors::label_selector(sel, &path.child("selector")));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));
    let req_path = path.child("resources").key("storage");
    match storage_request(spec) {
        None => errs.push(FieldError::required(&req_path, "")),
        Some(q) => {
            let positive = resources::validate_positive(&req_path, q);
            if positive.is_empty() {
                errs.extend(resources::validate_quantity(&req_path, "storage", q));
            } else {
                errs.extend(positive);
            }
        }
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(common::dns_subdomain(
            &path.child("storageClassName"),
            class,
        ));
    }
    if let Some(mode) = spec.volume_mode.as_deref()
        && !matches!(mode, "Block" | "Filesystem")
    {
        errs.push(FieldError::not_supported(
            path.child("volumeMode"),
            mode,
            &["Block", "Filesystem"],
        ));
    }
    if let Some(ds) = &spec.data_source {
        errs.extend(validate_ref(
            ds.api_group.as_deref(),
            &ds.kind,
            &ds.name,
            &path.child("dataSource"),
        ));
    }
    if let Some(r) = &spec.data_source_ref {
        let p = path.child("dataSourceRef");
        errs.extend(validate_ref(r.api_group.as_deref(), &r.kind, &r.name, &p));
        if let Some(ns) = r.namespace.as_deref().filter(|n| !n.is_empty()) {
            errs.extend(common::dns_label(&p.child("namespace"), ns));
        }
    }
    let data_source_p = path.child("dataSource").to_string();
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(_), Some(r)) if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) => {
            errs.push(FieldError::invalid(
                path,
                data_source_p,
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
        (Some(ds), Some(r))
            if ds.api_group != r.api_group || ds.kind != r.kind || ds.name != r.name =>
        {
            errs.push(FieldError::invalid(
                path,
                data_source_p,
                "must match dataSourceRef",
            ));
        }
        _ => {}
    }
    errs
}

impl Strategy for Claims {
    type Object = PersistentVolumeClaim;

    fn set_defaults(&self, pvc: &mut PersistentVolumeClaim) {
        let spec = pvc.spec.get_or_insert_with(Default::default);
        if spec.volume_mode.is_none() {
            spec.volume_mode = Some("Filesystem".to_string());
        }
        if let Some(r) = &mut spec.resources {
            resources::canonicalize_opt(&mut r.requests);
            resources::canonicalize_opt(&mut r.limits);
        }
        let status = pvc.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Pending".to_string());
        }
    }

    fn prepare_for_create(&self, pvc: &mut PersistentVolumeClaim) {
        pvc.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Pending".to_string()),
            ..Default::default()
        });
        if let Some(spec) = &mut pvc.spec {
            normalize_data_sources(spec);
        }
    }

    fn prepare_for_update(&self, new: &mut PersistentVolumeClaim, _old: &PersistentVolumeClaim) {
        if let Some(spec) = &mut new.spec {
            normalize_data_sources(spec);
        }
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        validate_spec(&spec(pvc), &Path::new("spec"))
    }

    fn validate_update(
        &self,
        new: &PersistentVolumeClaim,
        old: &PersistentVolumeClaim,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (spec(new), spec(old));
        let (mut n, mut o) = (ns.clone(), os.clone());
        if os.volume_name.as_deref().unwrap_or("").is_empty() {
            o.volume_name = n.volume_name.clone();
        }
        let ann = |p: &PersistentVolumeClaim| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
                .cloned()
        };
        let (old_ann, new_ann) = (ann(old), ann(new));
        let upgrade_from_annotation = old_ann.is_some()
            && os.storage_class_name.is_none()
            && ns.storage_class_name.is_some()
            && ns.storage_class_name == old_ann
            && (new_ann.is_none() || new_ann == old_ann);
        if upgrade_from_annotation {
            n.storage_class_name = None;
        } else {
            if new_ann != old_ann {
                errs.push(common::immutable(
                    Path::new("metadata")
                        .child("annotations")
                        .child(BETA_CLASS_ANNOTATION),
                    common::go::quote(new_ann.as_deref().unwrap_or("")),
                ));
            }
            let from_nil = ns.storage_class_name.is_some()
                && os.storage_class_name.is_none()
                && (old_ann.is_none() || ns.storage_class_name == old_ann);
            if from_nil {
                n.storage_class_name = o.storage_class_name.clone();
            }
        }
        let bound = new.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound && let Some(reqs) = n.resources.as_mut().and_then(|r| r.requests.as_mut()) {
            match storage_request(&os) {
                Some(q) => {
                    reqs.insert("storage".to_string(), q.clone());
                }
                None => {
                    reqs.remove("storage");
                }
            }
        }
        n.volume_attributes_class_name = o.volume_attributes_class_name.clone();
        if n != o {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let parse = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            q.and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
                .unwrap_or_else(api::quantity::Quantity::zero)
        };
        let (old_size, new_size) = (parse(storage_request(&os)), parse(storage_request(&ns)));
        let status_size = parse(
            old.status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage")),
        );
        if new_size < old_size && new_size <= status_size {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
        if ns.volume_mode != os.volume_mode {
            errs.push(common::immutable(
                "volumeMode",
                common::go::opt_str(ns.volume_mode.as_deref()),
            ));
        }
        if ns.volume_attributes_class_name != os.volume_attributes_class_name {
            errs.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update is forbidden when the VolumeAttributesClass feature gate is disabled",
            ));
        }
        errs
    }

    fn validate_status_update(
        &self,
        new: &PersistentVolumeClaim,
        _old: &PersistentVolumeClaim,
    ) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if spec(new).access_modes.as_deref().unwrap_or(&[]).is_empty() {
            // Upstream's path really is capitalised this way.
            errs.push(FieldError::required("Spec.accessModes", ""));
        }
        let Some(status) = &new.status else {
            return errs;
        };
        for (k, q) in status.capacity.iter().flatten() {
            let p = Path::new("status").child("capacity").key(k);
            match resources::parse(&p, q) {
                Err(e) => errs.push(e),
                Ok(v) if v.as_value() < 0 => errs.push(FieldError::invalid(
                    p,
                    v.as_value() as i64,
                    "must be a valid resource quantity",
                )),
                Ok(_) => {}
            }
        }
        const RESIZE: &[&str] = &[
            "ControllerResizeFailed",
            "ControllerResizeInProgress",
            "NodeResizeFailed",
            "NodeResizeInProgress",
            "NodeResizePending",
        ];
        let rs_path = Path::new("status").child("allocatedResourceStatus");
        for (k, v) in status.allocated_resource_statuses.iter().flatten() {
            errs.extend(claim_resource_key(k, &rs_path));
            if !RESIZE.contains(&v.as_str()) {
                errs.push(FieldError::not_supported(&rs_path, k.as_str(), RESIZE));
            }
        }
        let alloc_path = Path::new("status").child("allocatedResources");
        for (k, q) in status.allocated_resources.iter().flatten() {
            let key_errs = claim_resource_key(k, &alloc_path);
            if !key_errs.is_empty() {
                errs.extend(key_errs);
                continue;
            }
            errs.extend(resources::validate_quantity(
                &alloc_path.key(k),
                "storage",
                q,
            ));
        }
        errs
    }
}

/// Upstream's `validatePersistentVolumeClaimResourceKey`.
fn claim_resource_key(k: &str, path: &Path) -> Vec<FieldError> {
    let errs = common::qualified_name(path, k);
    if !errs.is_empty() {
        return errs;
    }
    if resources::is_native(k) && k != "storage" {
        return vec![FieldError::not_supported(path, k, &["storage"])];
    }
    Vec::new()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::{Value, json};

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "persistentvolumeclaims").unwrap())
    }

    fn pvc(spec: Value) -> Value {
        json!({"metadata": {"name": "data", "namespace": "default"}, "spec": spec})
    }

    fn basic() -> Value {
        pvc(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
        )
    }

    #[test]
    fn defaults() {
        let out = create(
            &*s(),
            pvc(json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}},
                "dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}})),
        )
        .unwrap();
        assert_eq!(out["status"], json!({"phase": "Pending"}));
        assert_eq!(out["spec"]["volumeMode"], "Filesystem");
        assert_eq!(out["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(
            out["spec"]["dataSourceRef"],
            json!({"kind": "PersistentVolumeClaim", "name": "src"})
        );
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            create_err(&*s(), pvc(json!({}))),
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                pvc(
                    json!({"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "0"}},
                    "dataSource": {"kind": "Snapshot", "name": "s"}})
                )
            ),
            [
                "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
                "spec.dataSource: Invalid value: \"Snapshot\": must be 'PersistentVolumeClaim' when referencing the default apiGroup",
                "spec.dataSourceRef: Invalid value: \"Snapshot\": must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ]
        );
    }

    #[test]
    fn spec_is_frozen_except_growth_of_bound_claims() {
        let s = s();
        let old = create(&*s, basic()).unwrap();
        assert_eq!(
            update_err(
                &*s,
                merged(
                    &old,
                    json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
                ),
                &old
            ),
            [
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );
        // The binder sets volumeName once, and the status moves to Bound.
        let named = update(
            &*s,
            merged(&old, json!({"spec": {"volumeName": "pv1"}})),
            &old,
        )
        .unwrap();
        let bound = s
            .admit_status_update(
                merged(
                    &named,
                    json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
                ),
                &named,
            )
            .unwrap()
            .object;
        let grown = update(
            &*s,
            merged(
                &bound,
                json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
            ),
            &bound,
        )
        .unwrap();
        assert_eq!(grown["spec"]["resources"]["requests"]["storage"], "2Gi");
        assert_eq!(
            update_err(
                &*s,
                merged(
                    &bound,
                    json!({"spec": {"resources": {"requests": {"storage": "512Mi"}}}})
                ),
                &bound
            ),
            [
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
        assert_eq!(
            update_err(
                &*s,
                merged(&bound, json!({"spec": {"volumeName": "pv2"}})),
                &bound
            ),
            [
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );
        // A storage class may be set where there was none.
        assert!(
            update(
                &*s,
                merged(&old, json!({"spec": {"storageClassName": "fast"}})),
                &old
            )
            .is_ok()
        );
    }
}
