//! Volume mounts and block devices of a container (`ValidateVolumeMounts`,
//! `ValidateVolumeDevices`).

use std::collections::BTreeSet;

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{VolumeDevice, VolumeMount};

use super::containers::Ctx;
use super::volumes::local_descending;
use crate::workloads::common::not_found;

pub fn mounts(
    list: &[VolumeMount],
    devices: &[VolumeDevice],
    ctx: &Ctx<'_>,
    privileged: bool,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let mut paths = BTreeSet::new();
    for (i, m) in list.iter().enumerate() {
        let ip = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(ip.child("name"), ""));
        }
        if !ctx.volumes.contains_key(m.name.as_str()) {
            errs.push(not_found(ip.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(ip.child("mountPath"), ""));
        }
        if !paths.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                ip.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if devices.iter().any(|d| d.name == m.name) {
            errs.push(FieldError::invalid(
                ip.child("name"),
                m.name.as_str(),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|d| d.device_path == m.mount_path) {
            errs.push(FieldError::invalid(
                ip.child("mountPath"),
                m.mount_path.as_str(),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or("");
        let sub_expr = m.sub_path_expr.as_deref().unwrap_or("");
        if ctx
            .volumes
            .get(m.name.as_str())
            .is_some_and(|v| v.image.is_some())
        {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    ip.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_expr.is_empty() {
                errs.push(FieldError::invalid(
                    ip.child("subPathExpr"),
                    sub_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports these on the list's path, not the entry's.
        if !sub_path.is_empty() {
            local_descending(sub_path, &path.child("subPath"), errs);
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    ip.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_descending(sub_expr, &path.child("subPathExpr"), errs);
        }
        if let Some(mp) = &m.mount_propagation {
            let pp = path.child("mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&mp.as_str()) {
                errs.push(FieldError::not_supported(
                    &pp,
                    mp.as_str(),
                    &["Bidirectional", "HostToContainer", "None"],
                ));
            }
            if mp == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = path.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
}

pub fn devices(
    list: &[VolumeDevice],
    mounts: &[VolumeMount],
    ctx: &Ctx<'_>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let (mut names, mut paths) = (BTreeSet::new(), BTreeSet::new());
    for (i, d) in list.iter().enumerate() {
        let ip = path.index(i);
        let vol = ctx.volumes.get(d.name.as_str());
        if d.name.is_empty() {
            errs.push(FieldError::required(ip.child("name"), ""));
        }
        if names.contains(d.name.as_str()) {
            errs.push(FieldError::invalid(
                ip.child("name"),
                d.name.as_str(),
                "must be unique",
            ));
        }
        match vol {
            Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => {
                errs.push(FieldError::invalid(
                    ip.child("name"),
                    d.name.as_str(),
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ));
            }
            Some(_) => {}
            None => errs.push(not_found(ip.child("name"), &d.name)),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(ip.child("devicePath"), ""));
        }
        if paths.contains(d.device_path.as_str()) {
            errs.push(FieldError::invalid(
                ip.child("devicePath"),
                d.device_path.as_str(),
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && d.device_path.split(['/', '\\']).any(|p| p == "..") {
            errs.push(FieldError::invalid(
                ip.child("devicePath"),
                d.device_path.as_str(),
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(d.device_path.as_str());
        }
        if mounts.iter().any(|m| m.name == d.name) {
            errs.push(FieldError::invalid(
                ip.child("name"),
                d.name.as_str(),
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.iter().any(|m| m.mount_path == d.device_path) {
            errs.push(FieldError::invalid(
                ip.child("devicePath"),
                d.device_path.as_str(),
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            names.insert(d.name.as_str());
        }
    }
}
