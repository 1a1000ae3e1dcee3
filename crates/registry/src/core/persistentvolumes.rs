//! PersistentVolumes: defaults (reclaim policy `Retain`, volume mode `Filesystem`), phase
//! `Pending` with a transition time on create, spec validation (access modes, capacity,
//! exactly one volume source, node affinity) and the immutability of the volume source, as
//! upstream's `ValidatePersistentVolume(Update)`.
//!
//! Volume sources are checked for the fields upstream requires of the sources a keelson node
//! can mount (hostPath, local, nfs, csi, iscsi); other in-tree sources are only counted.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeSpec, SecretReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use crate::DynStrategy;
use crate::core::common::{self, resources, selectors};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, PersistentVolumes))
}

struct PersistentVolumes;

pub(crate) const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Spec fields that are not part of the volume source.
const NON_SOURCE_FIELDS: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

/// The current time at the precision `metav1.Time` keeps (seconds).
pub(crate) fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Upstream's access-mode checks, shared with claims.
pub(crate) fn validate_access_modes(modes: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn no_backsteps(path: &Path, value: &str) -> Option<FieldError> {
    value
        .split('/')
        .any(|p| p == "..")
        .then(|| FieldError::invalid(path, value, "must not contain '..'"))
}

fn validate_secret_ref(r: &SecretReference, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match r.name.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("name"), "")),
        n => errs.extend(common::dns_subdomain(&path.child("name"), n)),
    }
    match r.namespace.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("namespace"), "")),
        n => errs.extend(common::dns_label(&path.child("namespace"), n)),
    }
    errs
}

/// Upstream's `ValidateCSIDriverName`.
pub(crate) fn validate_csi_driver_name(name: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    errs.extend(api::validation::errors_for(
        path,
        name,
        api::validation::dns1123_subdomain(&name.to_lowercase()),
    ));
    errs
}

/// The volume source of `spec` as JSON (everything but [`NON_SOURCE_FIELDS`]).
fn source_json(spec: &PersistentVolumeSpec) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for f in NON_SOURCE_FIELDS {
            m.remove(*f);
        }
    }
    v
}

/// Upstream's `ValidatePersistentVolumeSpec`; `inline` for a VolumeAttachment's inline spec.
pub(crate) fn validate_spec(
    spec: &PersistentVolumeSpec,
    inline: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    const INLINE: &str = "may not be specified in the context of inline volumes";
    if inline {
        if spec.claim_ref.is_some() {
            errs.push(FieldError::forbidden(path.child("claimRef"), INLINE));
        }
        if spec.capacity.as_ref().is_some_and(|c| !c.is_empty()) {
            errs.push(FieldError::forbidden(path.child("capacity"), INLINE));
        }
        if spec.csi.is_none() {
            errs.push(FieldError::required(
                path.child("csi"),
                "has to be specified in the context of inline volumes",
            ));
        }
    }
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(path.child("accessModes"), ""));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));

    if !inline {
        let empty = Default::default();
        let capacity = spec.capacity.as_ref().unwrap_or(&empty);
        let cap_path = path.child("capacity");
        if capacity.is_empty() {
            errs.push(FieldError::required(&cap_path, ""));
        }
        if !capacity.contains_key("storage") || capacity.len() > 1 {
            let rendered = format!(
                "core.ResourceList{{{}}}",
                capacity
                    .iter()
                    .map(|(k, v)| format!("{:?}:{:?}", k, v.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            errs.push(api::validation::FieldError {
                field: cap_path.to_string(),
                kind: api::validation::ErrorKind::NotSupported(
                    rendered,
                    vec!["\"storage\"".into()],
                ),
                detail: String::new(),
            });
        }
        for (k, q) in capacity {
            let p = cap_path.key(k);
            errs.extend(resources::validate_quantity(&p, k, q));
            if resources::parse(&p, q).is_ok() {
                errs.extend(resources::validate_positive(&p, q));
            }
        }
    }

    if let Some(policy) = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let p = path.child("persistentVolumeReclaimPolicy");
        if inline {
            if policy != "Retain" {
                errs.push(FieldError::forbidden(
                    p,
                    "may only be Retain in the context of inline volumes",
                ));
            }
        } else if !matches!(policy, "Delete" | "Recycle" | "Retain") {
            errs.push(FieldError::not_supported(
                p,
                policy,
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }

    let mut node_affinity = false;
    if let Some(na) = &spec.node_affinity {
        if inline {
            errs.push(FieldError::forbidden(path.child("nodeAffinity"), INLINE));
        } else {
            node_affinity = true;
            match &na.required {
                Some(sel) => errs.extend(selectors::node_selector(
                    sel,
                    &path.child("nodeAffinity").child("required"),
                )),
                None => errs.push(FieldError::required(
                    path.child("nodeAffinity").child("required"),
                    "must specify required node constraints",
                )),
            }
        }
    }

    errs.extend(validate_sources(spec, node_affinity, path));

    if let Some(hp) = &spec.host_path {
        let cleaned = hp.path.trim_end_matches('/');
        if (cleaned.is_empty() && hp.path.starts_with('/'))
            && spec.persistent_volume_reclaim_policy.as_deref() == Some("Recycle")
        {
            errs.push(FieldError::forbidden(
                path.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        if inline {
            errs.push(FieldError::forbidden(
                path.child("storageClassName"),
                INLINE,
            ));
        } else {
            errs.extend(common::dns_subdomain(
                &path.child("storageClassName"),
                class,
            ));
        }
    }
    if let Some(mode) = spec.volume_mode.as_deref() {
        if inline {
            if mode != "Filesystem" {
                errs.push(FieldError::forbidden(
                    path.child("volumeMode"),
                    "may not specify volumeMode other than Filesystem in the context of inline volumes",
                ));
            }
        } else if !matches!(mode, "Block" | "Filesystem") {
            errs.push(FieldError::not_supported(
                path.child("volumeMode"),
                mode,
                &["Block", "Filesystem"],
            ));
        }
    }
    errs
}

/// Exactly one volume source, each with the fields upstream requires.
fn validate_sources(
    spec: &PersistentVolumeSpec,
    node_affinity: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let present: Vec<(&str, bool)> = vec![
        ("hostPath", spec.host_path.is_some()),
        ("gcePersistentDisk", spec.gce_persistent_disk.is_some()),
        (
            "awsElasticBlockStore",
            spec.aws_elastic_block_store.is_some(),
        ),
        ("glusterfs", spec.glusterfs.is_some()),
        ("flocker", spec.flocker.is_some()),
        ("nfs", spec.nfs.is_some()),
        ("rbd", spec.rbd.is_some()),
        ("quobyte", spec.quobyte.is_some()),
        ("cephFS", spec.cephfs.is_some()),
        ("iscsi", spec.iscsi.is_some()),
        ("cinder", spec.cinder.is_some()),
        ("fc", spec.fc.is_some()),
        ("flexVolume", spec.flex_volume.is_some()),
        ("azureFile", spec.azure_file.is_some()),
        ("vsphereVolume", spec.vsphere_volume.is_some()),
        (
            "photonPersistentDisk",
            spec.photon_persistent_disk.is_some(),
        ),
        ("portworxVolume", spec.portworx_volume.is_some()),
        ("azureDisk", spec.azure_disk.is_some()),
        ("scaleIO", spec.scale_io.is_some()),
        ("local", spec.local.is_some()),
        ("storageos", spec.storageos.is_some()),
        ("csi", spec.csi.is_some()),
    ];
    let mut count = 0;
    for (name, set) in present {
        if !set {
            continue;
        }
        // Upstream counts flexVolume without the "more than one" check.
        if count > 0 && name != "flexVolume" {
            errs.push(FieldError::forbidden(
                path.child(name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        match name {
            "hostPath" => {
                if let Some(hp) = &spec.host_path {
                    let p = path.child("hostPath");
                    if hp.path.is_empty() {
                        errs.push(FieldError::required(p.child("path"), ""));
                    } else {
                        errs.extend(no_backsteps(&p.child("path"), &hp.path));
                        if let Some(t) = &hp.type_
                            && !HOST_PATH_TYPES.contains(&t.as_str())
                        {
                            errs.push(FieldError::not_supported(
                                p.child("type"),
                                t.as_str(),
                                HOST_PATH_TYPES,
                            ));
                        }
                    }
                }
            }
            "local" => {
                if let Some(l) = &spec.local {
                    let p = path.child("local");
                    if l.path.is_empty() {
                        errs.push(FieldError::required(p.child("path"), ""));
                    } else {
                        errs.extend(no_backsteps(&p.child("path"), &l.path));
                    }
                    if !node_affinity {
                        errs.push(FieldError::required(
                            path.child("nodeAffinity"),
                            "Local volume requires node affinity",
                        ));
                    }
                }
            }
            "nfs" => {
                if let Some(n) = &spec.nfs {
                    let p = path.child("nfs");
                    if n.server.is_empty() {
                        errs.push(FieldError::required(p.child("server"), ""));
                    }
                    if n.path.is_empty() {
                        errs.push(FieldError::required(p.child("path"), ""));
                    }
                    if !n.path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            p.child("path"),
                            n.path.as_str(),
                            "must be an absolute path",
                        ));
                    }
                }
            }
            "csi" => {
                if let Some(c) = &spec.csi {
                    let p = path.child("csi");
                    errs.extend(validate_csi_driver_name(&c.driver, &p.child("driver")));
                    if c.volume_handle.is_empty() {
                        errs.push(FieldError::required(p.child("volumeHandle"), ""));
                    }
                    for (field, r) in [
                        (
                            "controllerPublishSecretRef",
                            &c.controller_publish_secret_ref,
                        ),
                        ("controllerExpandSecretRef", &c.controller_expand_secret_ref),
                        ("nodePublishSecretRef", &c.node_publish_secret_ref),
                        ("nodeExpandSecretRef", &c.node_expand_secret_ref),
                    ] {
                        if let Some(r) = r {
                            errs.extend(validate_secret_ref(r, &p.child(field)));
                        }
                    }
                }
            }
            "iscsi" => {
                if let Some(i) = &spec.iscsi {
                    let p = path.child("iscsi");
                    if i.target_portal.is_empty() {
                        errs.push(FieldError::required(p.child("targetPortal"), ""));
                    }
                    if i.iqn.is_empty() {
                        errs.push(FieldError::required(p.child("iqn"), ""));
                    } else if !["iqn", "eui", "naa"].iter().any(|x| i.iqn.starts_with(x)) {
                        errs.push(FieldError::invalid(
                            p.child("iqn"),
                            i.iqn.as_str(),
                            "must be valid format starting with iqn, eui, or naa",
                        ));
                    }
                    if !(0..=255).contains(&i.lun) {
                        errs.push(FieldError::invalid(
                            p.child("lun"),
                            i.lun,
                            common::inclusive_range(0, 255),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

impl Strategy for PersistentVolumes {
    type Object = PersistentVolume;

    fn set_defaults(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        if spec
            .persistent_volume_reclaim_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            spec.persistent_volume_reclaim_policy = Some("Retain".to_string());
        }
        if spec.volume_mode.is_none() {
            spec.volume_mode = Some("Filesystem".to_string());
        }
        if let Some(hp) = &mut spec.host_path {
            hp.type_.get_or_insert_with(String::new);
        }
        if let Some(i) = &mut spec.iscsi
            && i.iscsi_interface.as_deref().unwrap_or("").is_empty()
        {
            i.iscsi_interface = Some("default".to_string());
        }
        if let Some(r) = &mut spec.rbd {
            for (field, default) in [
                (&mut r.pool, "rbd"),
                (&mut r.user, "admin"),
                (&mut r.keyring, "/etc/ceph/keyring"),
            ] {
                if field.as_deref().unwrap_or("").is_empty() {
                    *field = Some(default.to_string());
                }
            }
        }
        resources::canonicalize_opt(&mut spec.capacity);
        let status = pv.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().unwrap_or("").is_empty() {
            status.phase = Some("Pending".to_string());
        }
    }

    fn prepare_for_create(&self, pv: &mut PersistentVolume) {
        pv.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some("Pending".to_string()),
            last_phase_transition_time: Some(now()),
            ..Default::default()
        });
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        validate_spec(
            &pv.spec.clone().unwrap_or_default(),
            false,
            &Path::new("spec"),
        )
    }

    fn validate_update(&self, new: &PersistentVolume, old: &PersistentVolume) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (
            new.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        let mut ns_cmp = ns.clone();
        // An expansion secret may be added to a CSI volume that had none.
        if let (Some(o), Some(n)) = (&os.csi, &mut ns_cmp.csi)
            && o.controller_expand_secret_ref.is_none()
        {
            n.controller_expand_secret_ref = None;
        }
        if source_json(&ns_cmp) != source_json(&os) {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("persistentvolumesource"),
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        if ns.volume_mode != os.volume_mode {
            errs.push(common::immutable(
                "volumeMode",
                common::go::opt_str(ns.volume_mode.as_deref()),
            ));
        }
        if os.node_affinity.is_some() && ns.node_affinity != os.node_affinity {
            let rendered = serde_json::to_string(&ns.node_affinity).unwrap_or_default();
            errs.push(common::invalid_raw(
                "nodeAffinity",
                rendered,
                "field is immutable, except for updating from beta label to GA",
            ));
        }
        if os.volume_attributes_class_name != ns.volume_attributes_class_name {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("volumeAttributesClassName"),
                "update is forbidden when the VolumeAttributesClass feature gate is disabled",
            ));
        }
        errs
    }

    fn prepare_for_status_update(&self, new: &mut PersistentVolume, old: &PersistentVolume) {
        let old_status = old.status.clone().unwrap_or_default();
        let status = new.status.get_or_insert_with(Default::default);
        if status.phase == old_status.phase {
            if status.last_phase_transition_time.is_none() {
                status.last_phase_transition_time = old_status.last_phase_transition_time;
            }
        } else if status.last_phase_transition_time.is_none()
            || status.last_phase_transition_time == old_status.last_phase_transition_time
        {
            status.last_phase_transition_time = Some(now());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "persistentvolumes").unwrap())
    }

    fn pv(spec: Value) -> Value {
        json!({"metadata": {"name": "pv1"}, "spec": spec})
    }

    #[test]
    fn defaults_and_phase() {
        let out = create(
            &*s(),
            pv(
                json!({"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/data"}}),
            ),
        )
        .unwrap();
        assert_eq!(out["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(out["spec"]["volumeMode"], "Filesystem");
        assert_eq!(
            out["spec"]["hostPath"],
            json!({"path": "/data", "type": ""})
        );
        assert_eq!(out["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(out["status"]["phase"], "Pending");
        assert!(out["status"]["lastPhaseTransitionTime"].is_string());
    }

    #[test]
    fn spec_rules() {
        assert_eq!(
            create_err(&*s(), pv(json!({}))),
            [
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: core.ResourceList{}: supported values: \"storage\"",
                "spec: Required value: must specify a volume type",
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                pv(
                    json!({"capacity": {"storage": "0"}, "accessModes": ["ReadWriteOncePod", "ReadWriteMany"],
                    "nfs": {"server": "nfs", "path": "exports"}, "local": {"path": "/mnt/../x"}})
                )
            ),
            [
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero",
                "spec.nfs.path: Invalid value: \"exports\": must be an absolute path",
                "spec.local: Forbidden: may not specify more than 1 volume type",
            ]
        );
        assert_eq!(
            create_err(
                &*s(),
                pv(
                    json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/mnt"}})
                )
            ),
            ["spec.nodeAffinity: Required value: Local volume requires node affinity"]
        );
    }

    #[test]
    fn source_is_immutable_and_phase_time_moves() {
        let old = create(
            &*s(),
            pv(
                json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/data"}}),
            ),
        )
        .unwrap();
        assert_eq!(
            update_err(
                &*s(),
                merged(
                    &old,
                    json!({"spec": {"hostPath": {"path": "/other"}, "volumeMode": "Block"}})
                ),
                &old
            ),
            [
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
                "volumeMode: Invalid value: \"Block\": field is immutable",
            ]
        );
        // Capacity and reclaim policy may change.
        assert!(update(
            &*s(),
            merged(&old, json!({"spec": {"capacity": {"storage": "2Gi"}, "persistentVolumeReclaimPolicy": "Delete"}})),
            &old
        )
        .is_ok());
        let mut stale = old.clone();
        stale["status"]["lastPhaseTransitionTime"] = json!("2000-01-01T00:00:00Z");
        let bound = s()
            .admit_status_update(
                merged(&stale, json!({"status": {"phase": "Bound"}})),
                &stale,
            )
            .unwrap()
            .object;
        assert_ne!(
            bound["status"]["lastPhaseTransitionTime"],
            "2000-01-01T00:00:00Z"
        );
    }
}
