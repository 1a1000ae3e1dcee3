//! `ValidateVolumes`: one source per volume, unique DNS-label names, and the checks of the
//! sources a pod on keelson can actually use (the cloud-provider sources only get their
//! required fields checked). Also the path rules (`validateLocalDescendingPath` and friends)
//! that mounts and projections share.

use std::collections::{BTreeMap, BTreeSet};

use api::quantity::Quantity;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, PersistentVolumeClaimSpec, ProjectedVolumeSource, Volume,
};

use super::downward;
use crate::workloads::selector;

pub const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `validatePathNoBacksteps`.
pub fn no_backsteps(target: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if target.split(['/', '\\']).any(|part| part == "..") {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
}

/// `validateLocalDescendingPath`.
pub fn local_descending(target: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    no_backsteps(target, path, errs);
}

/// `ValidateLocalNonReservedPath`.
pub fn local_non_reserved(target: &str, path: &Path, errs: &mut Vec<FieldError>) {
    local_descending(target, path, errs);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
}

fn mode(m: Option<i32>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(m) = m
        && !(0..=0o777).contains(&m)
    {
        errs.push(FieldError::invalid(path, m, FILE_MODE_MSG));
    }
}

fn key_to_path(kp: &KeyToPath, path: &Path, errs: &mut Vec<FieldError>) {
    if kp.key.is_empty() {
        errs.push(FieldError::required(path.child("key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    }
    local_non_reserved(&kp.path, &path.child("path"), errs);
    mode(kp.mode, path.child("mode"), errs);
}

fn downward_file(f: &DownwardAPIVolumeFile, path: &Path, errs: &mut Vec<FieldError>) {
    if f.path.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    }
    local_non_reserved(&f.path, &path.child("path"), errs);
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(fr), rr) => {
            errs.extend(downward::validate_field_ref(
                fr,
                downward::VOLUME_FIELDS,
                &path.child("fieldRef"),
            ));
            if rr.is_some() {
                errs.push(FieldError::invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(rr)) => errs.extend(downward::validate_resource_ref(
            rr,
            true,
            &path.child("resourceFieldRef"),
        )),
        (None, None) => errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    mode(f.mode, path.child("mode"), errs);
}

fn projected(p: &ProjectedVolumeSource, path: &Path, errs: &mut Vec<FieldError>) {
    mode(p.default_mode, path.child("defaultMode"), errs);
    let mut paths = BTreeSet::new();
    for (i, s) in p.sources.iter().flatten().enumerate() {
        let src = path.child("sources").index(i);
        let mut n = 0;
        if let Some(sec) = &s.secret {
            n += 1;
            let sp = src.child("secret");
            if sec.name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            }
            for (j, kp) in sec.items.iter().flatten().enumerate() {
                key_to_path(kp, &sp.child("items").index(j), errs);
                if !kp.path.is_empty() && !paths.insert(kp.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        sec.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(cm) = &s.config_map {
            n += 1;
            let cp = src.child("configMap");
            if cm.name.is_empty() {
                errs.push(FieldError::required(cp.child("name"), ""));
            }
            for (j, kp) in cm.items.iter().flatten().enumerate() {
                key_to_path(kp, &cp.child("items").index(j), errs);
                if !kp.path.is_empty() && !paths.insert(kp.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        cm.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(d) = &s.downward_api {
            n += 1;
            let dp = src.child("downwardAPI");
            for f in d.items.iter().flatten() {
                downward_file(f, &dp, errs);
                if !f.path.is_empty() && !paths.insert(f.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        f.path.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(t) = &s.service_account_token {
            n += 1;
            let tp = src.child("serviceAccountToken");
            let exp = t.expiration_seconds.unwrap_or(0);
            if exp < 600 {
                errs.push(FieldError::invalid(
                    tp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    tp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // Upstream reports the path on the projection, not the source.
            if t.path.is_empty() {
                errs.push(FieldError::required(path.child("path"), ""));
            } else {
                local_non_reserved(&t.path, &path.child("path"), errs);
            }
        }
        if let Some(b) = &s.cluster_trust_bundle {
            n += 1;
            let bp = src.child("clusterTrustBundle");
            match (&b.name, &b.signer_name) {
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    &bp,
                    serde_json::to_value(b).unwrap_or_default(),
                    "only one of name and signerName may be used",
                )),
                (None, None) => errs.push(FieldError::required(
                    &bp,
                    "either name or signerName must be specified",
                )),
                _ => {}
            }
            if b.path.is_empty() {
                errs.push(FieldError::required(bp.child("path"), ""));
            }
            local_non_reserved(&b.path, &bp.child("path"), errs);
            if !paths.insert(b.path.clone()) {
                errs.push(FieldError::invalid(
                    path,
                    b.path.as_str(),
                    "conflicting duplicate paths",
                ));
            }
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                &src,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
}

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
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The parts of `ValidatePersistentVolumeClaimSpec` a claim template needs.
pub fn pvc_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(
            path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(s) = &spec.selector {
        errs.extend(selector::validate(s, &path.child("selector")));
    }
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(
                path.child("accessModes"),
                m.as_str(),
                ACCESS_MODES,
            ));
        }
    }
    let rwop = modes.iter().any(|m| m == "ReadWriteOncePod");
    let other = modes
        .iter()
        .any(|m| m != "ReadWriteOncePod" && ACCESS_MODES.contains(&m.as_str()));
    if rwop && other {
        errs.push(FieldError::forbidden(
            path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let storage_path = path.child("resources").key("storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => {
            if let Ok(q) = Quantity::parse(&q.0)
                && q.signum() <= 0
            {
                errs.push(FieldError::invalid(
                    &storage_path,
                    q.to_string(),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(validation::errors_for(
            &path.child("storageClassName"),
            class,
            validation::dns1123_subdomain(class),
        ));
    }
    if let Some(m) = &spec.volume_mode
        && m != "Block"
        && m != "Filesystem"
    {
        errs.push(FieldError::not_supported(
            path.child("volumeMode"),
            m.as_str(),
            &["Block", "Filesystem"],
        ));
    }
    errs
}

/// Validates one source (the first one present) and reports any further ones.
fn source(v: &Volume, path: &Path, pod_name: Option<&str>, errs: &mut Vec<FieldError>) {
    let mut seen = 0;
    let mut one = |name: &str, errs: &mut Vec<FieldError>| -> bool {
        seen += 1;
        if seen > 1 {
            errs.push(FieldError::forbidden(
                path.child(name),
                "may not specify more than 1 volume type",
            ));
            return false;
        }
        true
    };
    if let Some(e) = &v.empty_dir
        && one("emptyDir", errs)
        && let Some(q) = e
            .size_limit
            .as_ref()
            .and_then(|q| Quantity::parse(&q.0).ok())
        && q.signum() < 0
    {
        errs.push(FieldError::forbidden(
            path.child("emptyDir").child("sizeLimit"),
            "SizeLimit field must be a valid resource quantity",
        ));
    }
    if let Some(h) = &v.host_path
        && one("hostPath", errs)
    {
        let hp = path.child("hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(hp.child("path"), ""));
        } else {
            no_backsteps(&h.path, &hp.child("path"), errs);
            if let Some(t) = &h.type_
                && !HOST_PATH_TYPES.contains(&t.as_str())
            {
                errs.push(FieldError::not_supported(
                    hp.child("type"),
                    t.as_str(),
                    HOST_PATH_TYPES,
                ));
            }
        }
    }
    if let Some(g) = &v.git_repo
        && one("gitRepo", errs)
    {
        let gp = path.child("gitRepo");
        if g.repository.is_empty() {
            errs.push(FieldError::required(gp.child("repository"), ""));
        }
        local_descending(
            g.directory.as_deref().unwrap_or(""),
            &gp.child("directory"),
            errs,
        );
    }
    if let Some(d) = &v.gce_persistent_disk
        && one("gcePersistentDisk", errs)
        && d.pd_name.is_empty()
    {
        errs.push(FieldError::required(
            path.child("persistentDisk").child("pdName"),
            "",
        ));
    }
    if let Some(d) = &v.aws_elastic_block_store
        && one("awsElasticBlockStore", errs)
        && d.volume_id.is_empty()
    {
        errs.push(FieldError::required(
            path.child("awsElasticBlockStore").child("volumeID"),
            "",
        ));
    }
    if let Some(s) = &v.secret
        && one("secret", errs)
    {
        let sp = path.child("secret");
        if s.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(sp.child("secretName"), ""));
        }
        mode(s.default_mode, sp.child("defaultMode"), errs);
        for (i, kp) in s.items.iter().flatten().enumerate() {
            key_to_path(kp, &sp.child("items").index(i), errs);
        }
    }
    if let Some(n) = &v.nfs
        && one("nfs", errs)
    {
        let np = path.child("nfs");
        if n.server.is_empty() {
            errs.push(FieldError::required(np.child("server"), ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required(np.child("path"), ""));
        }
        if !n.path.starts_with('/') {
            errs.push(FieldError::invalid(
                np.child("path"),
                n.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(i) = &v.iscsi
        && one("iscsi", errs)
    {
        let ip = path.child("iscsi");
        if i.target_portal.is_empty() {
            errs.push(FieldError::required(ip.child("targetPortal"), ""));
        }
        if i.iqn.is_empty() {
            errs.push(FieldError::required(ip.child("iqn"), ""));
        }
        if !(0..=255).contains(&i.lun) {
            errs.push(FieldError::invalid(
                ip.child("lun"),
                i.lun,
                "must be between 0 and 255, inclusive",
            ));
        }
    }
    if let Some(g) = &v.glusterfs
        && one("glusterfs", errs)
    {
        if g.endpoints.is_empty() {
            errs.push(FieldError::required(
                path.child("glusterfs").child("endpoints"),
                "",
            ));
        }
        if g.path.is_empty() {
            errs.push(FieldError::required(
                path.child("glusterfs").child("path"),
                "",
            ));
        }
    }
    if v.flocker.is_some() {
        one("flocker", errs);
    }
    if let Some(c) = &v.persistent_volume_claim
        && one("persistentVolumeClaim", errs)
        && c.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            path.child("persistentVolumeClaim").child("claimName"),
            "",
        ));
    }
    if let Some(r) = &v.rbd
        && one("rbd", errs)
    {
        if r.monitors.is_empty() {
            errs.push(FieldError::required(
                path.child("rbd").child("monitors"),
                "",
            ));
        }
        if r.image.is_empty() {
            errs.push(FieldError::required(path.child("rbd").child("image"), ""));
        }
    }
    if let Some(c) = &v.cinder
        && one("cinder", errs)
        && c.volume_id.is_empty()
    {
        errs.push(FieldError::required(
            path.child("cinder").child("volumeID"),
            "",
        ));
    }
    if let Some(c) = &v.cephfs
        && one("cephFS", errs)
        && c.monitors.is_empty()
    {
        errs.push(FieldError::required(
            path.child("cephfs").child("monitors"),
            "",
        ));
    }
    if v.quobyte.is_some() {
        one("quobyte", errs);
    }
    if let Some(d) = &v.downward_api
        // Upstream's typo, kept because clients see it.
        && one("downwarAPI", errs)
    {
        let dp = path.child("downwardAPI");
        mode(d.default_mode, dp.child("defaultMode"), errs);
        for f in d.items.iter().flatten() {
            downward_file(f, &dp, errs);
        }
    }
    if v.fc.is_some() {
        one("fc", errs);
    }
    if let Some(f) = &v.flex_volume
        && one("flexVolume", errs)
        && f.driver.is_empty()
    {
        errs.push(FieldError::required(
            path.child("flexVolume").child("driver"),
            "",
        ));
    }
    if let Some(c) = &v.config_map
        && one("configMap", errs)
    {
        let cp = path.child("configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(cp.child("name"), ""));
        }
        mode(c.default_mode, cp.child("defaultMode"), errs);
        for (i, kp) in c.items.iter().flatten().enumerate() {
            key_to_path(kp, &cp.child("items").index(i), errs);
        }
    }
    for (present, name) in [
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.storageos.is_some(), "storageos"),
    ] {
        if present {
            one(name, errs);
        }
    }
    if let Some(p) = &v.projected
        && one("projected", errs)
    {
        projected(p, &path.child("projected"), errs);
    }
    if v.scale_io.is_some() {
        one("scaleIO", errs);
    }
    if let Some(c) = &v.csi
        && one("csi", errs)
    {
        let dp = path.child("csi").child("driver");
        if c.driver.is_empty() {
            errs.push(FieldError::required(&dp, ""));
        }
        if c.driver.len() > 63 {
            errs.push(FieldError::too_long(&dp, 63));
        }
        errs.extend(validation::errors_for(
            &dp,
            &c.driver,
            validation::dns1123_subdomain(&c.driver.to_lowercase()),
        ));
    }
    if let Some(e) = &v.ephemeral
        && one("ephemeral", errs)
    {
        let ep = path.child("ephemeral");
        match &e.volume_claim_template {
            None => errs.push(FieldError::required(ep.child("volumeClaimTemplate"), "")),
            Some(t) => {
                let tp = ep.child("volumeClaimTemplate");
                if let Some(m) = &t.metadata {
                    if let Some(l) = &m.labels {
                        errs.extend(validation::validate_labels(
                            l,
                            &tp.child("metadata").child("labels"),
                        ));
                    }
                    if let Some(a) = &m.annotations {
                        errs.extend(validation::validate_annotations(
                            a,
                            &tp.child("metadata").child("annotations"),
                        ));
                    }
                }
                errs.extend(pvc_spec(&t.spec, &tp.child("spec")));
            }
        }
        if let Some(pod) = pod_name.filter(|p| !p.is_empty())
            && !v.name.is_empty()
        {
            let pvc = format!("{pod}-{}", v.name);
            for msg in validation::dns1123_subdomain(&pvc) {
                errs.push(FieldError::invalid(
                    path.child("name"),
                    v.name.as_str(),
                    format!("PVC name {pvc:?}: {msg}"),
                ));
            }
        }
    }
    if v.image.is_some() {
        one("image", errs);
    }
    if seen == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

/// `ValidateVolumes`: the errors, and the valid volumes by name (mounts may only name those).
pub fn validate<'a>(
    volumes: &'a [Volume],
    pod_name: Option<&str>,
    path: &Path,
) -> (BTreeMap<&'a str, &'a Volume>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut valid = BTreeMap::new();
    let created: BTreeSet<String> = match pod_name.filter(|n| !n.is_empty()) {
        Some(pod) => volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod}-{}", v.name))
            .collect(),
        None => BTreeSet::new(),
    };
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        let mut el = Vec::new();
        source(v, &p, pod_name, &mut el);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validation::errors_for(
                &name_path,
                &v.name,
                validation::dns1123_label(&v.name),
            ));
        }
        if valid.contains_key(v.name.as_str()) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        if el.is_empty() {
            valid.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
        if let Some(c) = &v.persistent_volume_claim
            && created.contains(&c.claim_name)
        {
            errs.push(FieldError::invalid(
                p.child("persistentVolumeClaim").child("claimName"),
                c.claim_name.as_str(),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (valid, errs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, SecretVolumeSource,
    };

    fn msgs(v: Vec<Volume>) -> Vec<String> {
        validate(&v, Some("web"), &Path::new("spec").child("volumes"))
            .1
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn volume_rules() {
        let empty = |n: &str| Volume {
            name: n.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        };
        assert!(msgs(vec![empty("a"), empty("b")]).is_empty());
        assert_eq!(
            msgs(vec![empty("a"), empty("a")]),
            ["spec.volumes[1].name: Duplicate value: \"a\""]
        );
        let two = Volume {
            host_path: Some(HostPathVolumeSource {
                path: "/data".into(),
                type_: Some("Dir".into()),
            }),
            ..empty("x")
        };
        let m = msgs(vec![two]);
        assert_eq!(
            m,
            ["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",]
        );
        let bad = Volume {
            name: "Bad".into(),
            secret: Some(SecretVolumeSource {
                default_mode: Some(0o1000),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = msgs(vec![bad]);
        assert_eq!(m[0], "spec.volumes[0].secret.secretName: Required value");
        assert_eq!(
            m[1],
            "spec.volumes[0].secret.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive"
        );
        assert!(m[2].starts_with(
            "spec.volumes[0].name: Invalid value: \"Bad\": a lowercase RFC 1123 label"
        ));
        let cm = Volume {
            name: "cm".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: String::new(),
                items: Some(vec![KeyToPath {
                    key: "k".into(),
                    path: "../x".into(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            msgs(vec![cm]),
            [
                "spec.volumes[0].configMap.name: Required value",
                "spec.volumes[0].configMap.items[0].path: Invalid value: \"../x\": must not contain '..'",
            ]
        );
    }
}
