//! storage.k8s.io/v1: StorageClasses (defaults `Delete` / `Immediate`; provisioner,
//! parameters and reclaim policy frozen), CSIDrivers (every behaviour flag defaulted;
//! `attachRequired` and `volumeLifecycleModes` frozen), CSINodes, and VolumeAttachments (spec
//! frozen, status through its subresource), following upstream's
//! `pkg/apis/storage/{v1/defaults.go,validation}`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::storage::v1::{
    CSIDriver, CSINode, StorageClass, VolumeAttachment, VolumeAttachmentStatus, VolumeError,
};

use crate::DynStrategy;
use crate::core::common::{self, go, selectors};
use crate::core::persistentvolumes::{validate_csi_driver_name, validate_spec as validate_pv_spec};
use crate::strategy::{Adapter, Strategy};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    match info.plural {
        "storageclasses" => Arc::new(Adapter::new(info, StorageClasses)),
        "csidrivers" => Arc::new(Adapter::new(info, CsiDrivers)),
        "csinodes" => Arc::new(Adapter::new(info, CsiNodes)),
        "volumeattachments" => Arc::new(Adapter::new(info, VolumeAttachments)),
        _ => crate::plain(info),
    }
}

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;
const MAX_ATTACH_METADATA_SIZE: usize = 256 * 1024;
const MAX_VOLUME_ERROR_MESSAGE: usize = 1024;

struct StorageClasses;

impl Strategy for StorageClasses {
    type Object = StorageClass;

    fn set_defaults(&self, sc: &mut StorageClass) {
        if sc.reclaim_policy.is_none() {
            sc.reclaim_policy = Some("Delete".to_string());
        }
        if sc.volume_binding_mode.is_none() {
            sc.volume_binding_mode = Some("Immediate".to_string());
        }
    }

    fn validate(&self, sc: &StorageClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let prov = Path::new("provisioner");
        if sc.provisioner.is_empty() {
            errs.push(FieldError::required(&prov, ""));
        } else {
            errs.extend(common::qualified_name(
                &prov,
                &sc.provisioner.to_lowercase(),
            ));
        }
        let params = Path::new("parameters");
        let p = sc.parameters.as_ref();
        if p.is_some_and(|p| p.len() > MAX_PARAMETERS) {
            errs.push(FieldError::too_long(&params, MAX_PARAMETERS));
        } else {
            for k in p.into_iter().flat_map(|p| p.keys()) {
                if k.is_empty() {
                    errs.push(FieldError::invalid(
                        &params,
                        k.as_str(),
                        "field can not be empty.",
                    ));
                }
            }
            if p.is_some_and(|p| common::map_size(p) > MAX_PARAMETERS_SIZE) {
                errs.push(FieldError::too_long(&params, MAX_PARAMETERS_SIZE));
            }
        }
        if let Some(policy) = sc.reclaim_policy.as_deref().filter(|p| !p.is_empty())
            && !matches!(policy, "Delete" | "Retain")
        {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                policy,
                &["Delete", "Retain"],
            ));
        }
        match sc.volume_binding_mode.as_deref() {
            None => errs.push(FieldError::required("volumeBindingMode", "")),
            Some("Immediate" | "WaitForFirstConsumer") => {}
            Some(m) => errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                &["Immediate", "WaitForFirstConsumer"],
            )),
        }
        let topo = Path::new("allowedTopologies");
        let mut seen = Vec::new();
        for (i, term) in sc.allowed_topologies.iter().flatten().enumerate() {
            let (map, term_errs) = selectors::topology_selector_term(term, &topo.index(i));
            errs.extend(term_errs);
            if seen.contains(&map) {
                errs.push(FieldError::duplicate(
                    topo.index(i).child("matchLabelExpressions"),
                    "",
                ));
            }
            seen.push(map);
        }
        errs
    }

    fn validate_update(&self, new: &StorageClass, old: &StorageClass) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if new.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if new.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if new.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        if new.volume_binding_mode != old.volume_binding_mode {
            errs.push(common::immutable(
                "volumeBindingMode",
                go::opt_str(new.volume_binding_mode.as_deref()),
            ));
        }
        errs
    }
}

struct CsiDrivers;

impl Strategy for CsiDrivers {
    type Object = CSIDriver;

    fn set_defaults(&self, d: &mut CSIDriver) {
        let s = &mut d.spec;
        s.attach_required.get_or_insert(true);
        s.pod_info_on_mount.get_or_insert(false);
        s.storage_capacity.get_or_insert(false);
        s.fs_group_policy
            .get_or_insert_with(|| "ReadWriteOnceWithFSType".to_string());
        if s.volume_lifecycle_modes
            .as_ref()
            .is_none_or(|m| m.is_empty())
        {
            s.volume_lifecycle_modes = Some(vec!["Persistent".to_string()]);
        }
        s.requires_republish.get_or_insert(false);
        // SELinuxMountReadWriteOncePod is on by default in 1.33.
        s.se_linux_mount.get_or_insert(false);
    }

    fn validate(&self, d: &CSIDriver) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = Path::new("spec");
        let s = &d.spec;
        for (field, v) in [
            ("attachedRequired", s.attach_required),
            ("podInfoOnMount", s.pod_info_on_mount),
            ("storageCapacity", s.storage_capacity),
        ] {
            if v.is_none() {
                errs.push(FieldError::required(p.child(field), ""));
            }
        }
        if let Some(policy) = &s.fs_group_policy {
            const POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];
            if !POLICIES.contains(&policy.as_str()) {
                errs.push(FieldError::not_supported(
                    p.child("fsGroupPolicy"),
                    policy.as_str(),
                    POLICIES,
                ));
            }
        }
        let mut audiences = Vec::new();
        for (i, t) in s.token_requests.iter().flatten().enumerate() {
            let tp = p.child("tokenRequests").index(i);
            if audiences.contains(&t.audience) {
                errs.push(FieldError::duplicate(
                    tp.child("audience"),
                    t.audience.as_str(),
                ));
                continue;
            }
            audiences.push(t.audience.clone());
            if let Some(secs) = t.expiration_seconds {
                if secs < 600 {
                    errs.push(FieldError::invalid(
                        tp.child("expirationSeconds"),
                        secs,
                        "may not specify a duration less than 10 minutes",
                    ));
                }
                if secs > 1 << 32 {
                    errs.push(FieldError::invalid(
                        tp.child("expirationSeconds"),
                        secs,
                        "may not specify a duration larger than 2^32 seconds",
                    ));
                }
            }
        }
        for mode in s.volume_lifecycle_modes.iter().flatten() {
            if !matches!(mode.as_str(), "Persistent" | "Ephemeral") {
                errs.push(FieldError::not_supported(
                    p.child("volumeLifecycleModes"),
                    mode.as_str(),
                    &["Persistent", "Ephemeral"],
                ));
            }
        }
        if s.se_linux_mount.is_none() {
            errs.push(FieldError::required(p.child("seLinuxMount"), ""));
        }
        if let Some(period) = s.node_allocatable_update_period_seconds
            && period < 10
        {
            errs.push(FieldError::invalid(
                p.child("nodeAllocatableUpdatePeriodSeconds"),
                period,
                "must be greater than or equal to 10 seconds",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &CSIDriver, old: &CSIDriver) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.spec.attach_required != old.spec.attach_required {
            errs.push(common::immutable(
                "spec.attachedRequired",
                new.spec
                    .attach_required
                    .map_or("null".to_string(), |b| b.to_string()),
            ));
        }
        if new.spec.volume_lifecycle_modes != old.spec.volume_lifecycle_modes {
            errs.push(common::immutable(
                "spec.volumeLifecycleModes",
                go::str_slice(
                    "storage.VolumeLifecycleMode",
                    new.spec.volume_lifecycle_modes.as_deref(),
                ),
            ));
        }
        errs
    }
}

struct CsiNodes;

impl Strategy for CsiNodes {
    type Object = CSINode;

    fn validate(&self, n: &CSINode) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let root = Path::new("spec").child("drivers");
        let mut names: Vec<&str> = Vec::new();
        for (i, d) in n.spec.drivers.iter().enumerate() {
            let p = root.index(i);
            errs.extend(validate_csi_driver_name(&d.name, &p.child("name")));
            if d.node_id.is_empty() {
                errs.push(FieldError::required(p.child("nodeID"), ""));
            }
            if d.node_id.len() > 192 {
                errs.push(FieldError::invalid(
                    p.child("nodeID"),
                    d.node_id.as_str(),
                    "must be 192 characters or less",
                ));
            }
            if let Some(count) = d.allocatable.as_ref().and_then(|a| a.count) {
                errs.extend(common::nonnegative(
                    &p.child("allocatable").child("count"),
                    i64::from(count),
                ));
            }
            if names.contains(&d.name.as_str()) {
                errs.push(FieldError::duplicate(p.child("name"), d.name.as_str()));
            }
            names.push(&d.name);
            let mut keys: Vec<&str> = Vec::new();
            for key in d.topology_keys.iter().flatten() {
                if key.is_empty() {
                    errs.push(FieldError::required(&p, ""));
                }
                if keys.contains(&key.as_str()) {
                    errs.push(FieldError::duplicate(&p, key.as_str()));
                }
                keys.push(key);
                errs.extend(common::qualified_name(&p, key));
            }
        }
        errs
    }

    fn validate_update(&self, new: &CSINode, old: &CSINode) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        for o in &old.spec.drivers {
            for n in new.spec.drivers.iter().filter(|n| n.name == o.name) {
                if n != o {
                    let rendered = serde_json::to_string(n).unwrap_or_default();
                    errs.push(common::immutable("spec.drivers", rendered));
                }
            }
        }
        errs
    }
}

struct VolumeAttachments;

fn volume_error(e: Option<&VolumeError>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(e) = e else {
        return errs;
    };
    if e.message.as_deref().unwrap_or("").len() > MAX_VOLUME_ERROR_MESSAGE {
        // Upstream reports the metadata limit here; clients see that number.
        errs.push(FieldError::too_long(
            path.child("message"),
            MAX_ATTACH_METADATA_SIZE,
        ));
    }
    if let Some(code) = e.error_code.filter(|c| *c < 0) {
        errs.push(FieldError::invalid(
            path.child("errorCode"),
            code,
            common::inclusive_range(0, i64::from(i32::MAX)),
        ));
    }
    errs
}

fn attachment_status(status: Option<&VolumeAttachmentStatus>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(st) = status else {
        return errs;
    };
    let p = Path::new("status");
    if st
        .attachment_metadata
        .as_ref()
        .is_some_and(|m| common::map_size(m) > MAX_ATTACH_METADATA_SIZE)
    {
        errs.push(FieldError::too_long(
            p.child("attachmentMetadata"),
            MAX_ATTACH_METADATA_SIZE,
        ));
    }
    errs.extend(volume_error(
        st.attach_error.as_ref(),
        &p.child("attachError"),
    ));
    errs.extend(volume_error(
        st.detach_error.as_ref(),
        &p.child("detachError"),
    ));
    errs
}

impl Strategy for VolumeAttachments {
    type Object = VolumeAttachment;

    fn prepare_for_create(&self, va: &mut VolumeAttachment) {
        va.status = Some(VolumeAttachmentStatus::default());
    }

    fn validate(&self, va: &VolumeAttachment) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let p = Path::new("spec");
        let s = &va.spec;
        if s.attacher.is_empty() {
            errs.push(FieldError::required(p.child("attacher"), ""));
        }
        let src = p.child("source");
        match (
            &s.source.inline_volume_spec,
            &s.source.persistent_volume_name,
        ) {
            (None, None) => errs.push(FieldError::required(
                &src,
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                &src,
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            )),
            (None, Some(name)) if name.is_empty() => errs.push(FieldError::required(
                src.child("persistentVolumeName"),
                "must specify non empty persistentVolumeName",
            )),
            (None, Some(_)) => {}
            (Some(inline), None) => errs.extend(validate_pv_spec(
                inline,
                true,
                &src.child("inlineVolumeSpec"),
            )),
        }
        errs.extend(common::dns_subdomain(&p.child("nodeName"), &s.node_name));
        errs.extend(attachment_status(va.status.as_ref()));
        // The v1-only checks.
        errs.extend(validate_csi_driver_name(&s.attacher, &p.child("attacher")));
        if let Some(name) = &s.source.persistent_volume_name {
            errs.extend(common::dns_subdomain(
                &src.child("persistentVolumeName"),
                name,
            ));
        }
        errs
    }

    fn validate_update(&self, new: &VolumeAttachment, old: &VolumeAttachment) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.spec != old.spec {
            let rendered = serde_json::to_string(&new.spec).unwrap_or_default();
            errs.push(common::immutable("spec", rendered));
        }
        errs
    }

    fn validate_status_update(
        &self,
        new: &VolumeAttachment,
        _old: &VolumeAttachment,
    ) -> Vec<FieldError> {
        attachment_status(new.status.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s(plural: &str) -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("storage.k8s.io", "v1", plural).unwrap())
    }

    #[test]
    fn storage_classes() {
        let sc = s("storageclasses");
        let out = create(
            &*sc,
            json!({"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path",
            "parameters": {"a": "b"}}),
        )
        .unwrap();
        assert_eq!(out["reclaimPolicy"], "Delete");
        assert_eq!(out["volumeBindingMode"], "Immediate");
        assert_eq!(
            create_err(
                &*sc,
                json!({"metadata": {"name": "x"}, "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"})
            ),
            [
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ]
        );
        assert_eq!(
            update_err(
                &*sc,
                merged(
                    &out,
                    json!({"provisioner": "other.io/x", "parameters": {"a": "c"}, "reclaimPolicy": "Retain",
                    "volumeBindingMode": "WaitForFirstConsumer"})
                ),
                &out
            ),
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
        assert!(
            update(
                &*sc,
                merged(&out, json!({"allowVolumeExpansion": true})),
                &out
            )
            .is_ok()
        );
    }

    #[test]
    fn csi_drivers() {
        let d = s("csidrivers");
        let out = create(
            &*d,
            json!({"metadata": {"name": "csi.example.com"}, "spec": {}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({"attachRequired": true, "fsGroupPolicy": "ReadWriteOnceWithFSType", "podInfoOnMount": false,
                "requiresRepublish": false, "seLinuxMount": false, "storageCapacity": false,
                "volumeLifecycleModes": ["Persistent"]})
        );
        assert_eq!(
            update_err(
                &*d,
                merged(
                    &out,
                    json!({"spec": {"attachRequired": false, "volumeLifecycleModes": ["Ephemeral"], "podInfoOnMount": true}})
                ),
                &out
            ),
            [
                "spec.attachedRequired: Invalid value: false: field is immutable",
                "spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Ephemeral\"}: field is immutable",
            ]
        );
    }

    #[test]
    fn csi_nodes_and_attachments() {
        let n = s("csinodes");
        assert_eq!(
            create_err(
                &*n,
                json!({"metadata": {"name": "n1"}, "spec": {"drivers": [
                {"name": "a.io", "nodeID": "x"}, {"name": "a.io", "nodeID": ""}]}})
            ),
            [
                "spec.drivers[1].nodeID: Required value",
                "spec.drivers[1].name: Duplicate value: \"a.io\""
            ]
        );
        let va = s("volumeattachments");
        let out = create(&*va, json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com",
            "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}}))
        .unwrap();
        assert_eq!(out["status"], json!({"attached": false}));
        assert_eq!(
            update_err(
                &*va,
                merged(&out, json!({"spec": {"nodeName": "n2"}})),
                &out
            )
            .len(),
            1
        );
        assert_eq!(
            create_err(
                &*va,
                json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {}}})
            ),
            [
                "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"
            ]
        );
        let attached = va
            .admit_status_update(merged(&out, json!({"status": {"attached": true}})), &out)
            .unwrap()
            .object;
        assert_eq!(attached["status"]["attached"], true);
    }
}
