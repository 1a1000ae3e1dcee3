//! Upstream's defaulting of `PodSpec` and everything inside it (`SetDefaults_PodSpec`,
//! `SetDefaults_Container`, `SetDefaults_Probe`, the volume source defaults, the declarative
//! `+default` tags), the pod-only extras of `SetDefaults_Pod`, and the v1 conversion rule that
//! keeps the deprecated `serviceAccount` alias equal to `serviceAccountName`.
//!
//! What a client sees after a create (`kubectl get -o yaml`) is exactly these defaults, so the
//! set is complete for every field upstream defaults on a 1.33 server with default feature gates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, EnvVar, EphemeralContainer, HTTPGetAction, Lifecycle,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::resources::{canonicalize, canonicalize_list};
use crate::workloads::image;

/// Octal 0644, the default file mode of projected and secret/configMap/downwardAPI volumes.
const DEFAULT_MODE: i32 = 0o644;

fn set_if_none<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn set_str_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or("").is_empty() {
        *field = Some(value.to_string());
    }
}

/// Defaults for any pod template (deployments, jobs, ...): the spec's defaults, plus an empty
/// `metadata`/`spec` where the client sent none, as upstream's non-pointer structs show.
pub fn template(t: &mut PodTemplateSpec) {
    set_if_none(&mut t.metadata, ObjectMeta::default());
    pod_spec(t.spec.get_or_insert_with(PodSpec::default));
}

/// `SetDefaults_PodSpec` and every nested default.
pub fn pod_spec(spec: &mut PodSpec) {
    set_str_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_str_if_empty(&mut spec.restart_policy, "Always");
    set_if_none(&mut spec.security_context, Default::default());
    set_if_none(&mut spec.termination_grace_period_seconds, 30);
    set_str_if_empty(&mut spec.scheduler_name, "default-scheduler");
    // Pod-level resources need the PodLevelResources gate, which is off in 1.33; upstream drops
    // the field on write.
    spec.resources = None;

    for c in spec.containers.iter_mut() {
        container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        ephemeral_container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
    if let Some(overhead) = &mut spec.overhead {
        canonicalize_list(overhead, true);
    }
    service_account_alias(spec);
}

/// The v1 conversion of `serviceAccountName` and its deprecated alias `serviceAccount`: an
/// empty name takes the alias, and the alias always mirrors the name on the way out.
pub fn service_account_alias(spec: &mut PodSpec) {
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        spec.service_account_name = spec.service_account.clone().filter(|s| !s.is_empty());
    }
    spec.service_account.clone_from(&spec.service_account_name);
}

/// `SetDefaults_Pod`: what only a Pod (not a template) gets.
pub fn pod_only(spec: &mut PodSpec) {
    for c in spec.containers.iter_mut() {
        requests_from_limits(c.resources.get_or_insert_with(Default::default));
    }
    for c in spec.init_containers.iter_mut().flatten() {
        requests_from_limits(c.resources.get_or_insert_with(Default::default));
    }
    set_if_none(&mut spec.enable_service_links, true);
    if spec.host_network == Some(true) {
        let containers = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for c in containers {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
}

/// A limit without a request asks for exactly the limit.
fn requests_from_limits(res: &mut ResourceRequirements) {
    let Some(limits) = &res.limits else {
        return;
    };
    let requests = res.requests.get_or_insert_with(BTreeMap::new);
    for (name, q) in limits {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
}

/// The fields `SetDefaults_Container` fills, shared by regular and ephemeral containers.
fn container_basics(
    image_ref: Option<&str>,
    pull: &mut Option<String>,
    message_path: &mut Option<String>,
    message_policy: &mut Option<String>,
) {
    if pull.as_deref().unwrap_or("").is_empty() {
        *pull = Some(image::default_pull_policy(image_ref.unwrap_or("")).to_string());
    }
    set_str_if_empty(message_path, "/dev/termination-log");
    set_str_if_empty(message_policy, "File");
}

fn container(c: &mut Container) {
    container_basics(
        c.image.as_deref(),
        &mut c.image_pull_policy,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
    );
    // Go's non-pointer `resources` always serializes, as `{}` when empty.
    resources(c.resources.get_or_insert_with(Default::default));
    for p in c.ports.iter_mut().flatten() {
        set_str_if_empty(&mut p.protocol, "TCP");
    }
    env(c.env.as_mut());
    for p in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
    if let Some(l) = &mut c.lifecycle {
        lifecycle(l);
    }
}

fn ephemeral_container(c: &mut EphemeralContainer) {
    container_basics(
        c.image.as_deref(),
        &mut c.image_pull_policy,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
    );
    resources(c.resources.get_or_insert_with(Default::default));
    for p in c.ports.iter_mut().flatten() {
        set_str_if_empty(&mut p.protocol, "TCP");
    }
    env(c.env.as_mut());
    for p in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
    if let Some(l) = &mut c.lifecycle {
        lifecycle(l);
    }
}

/// `SetDefaults_ResourceList`: canonical quantities, rounded up to milli precision.
fn resources(r: &mut ResourceRequirements) {
    if let Some(l) = &mut r.limits {
        canonicalize_list(l, true);
    }
    if let Some(l) = &mut r.requests {
        canonicalize_list(l, true);
    }
}

fn env(vars: Option<&mut Vec<EnvVar>>) {
    for v in vars.into_iter().flatten() {
        let Some(from) = &mut v.value_from else {
            continue;
        };
        if let Some(f) = &mut from.field_ref {
            set_str_if_empty(&mut f.api_version, "v1");
        }
        if let Some(divisor) = from
            .resource_field_ref
            .as_mut()
            .and_then(|r| r.divisor.as_mut())
        {
            canonicalize(divisor);
        }
    }
}

fn http_get(h: &mut HTTPGetAction) {
    set_str_if_empty(&mut h.path, "/");
    set_str_if_empty(&mut h.scheme, "HTTP");
}

/// `SetDefaults_Probe` plus the defaults of its handler.
fn probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(h) = &mut p.http_get {
        http_get(h);
    }
    if let Some(g) = &mut p.grpc {
        // `service` carries `+default=""`.
        set_if_none(&mut g.service, String::new());
    }
}

fn lifecycle(l: &mut Lifecycle) {
    // `stopSignal` needs the ContainerStopSignals gate, off in 1.33.
    l.stop_signal = None;
    for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
        if let Some(g) = &mut h.http_get {
            http_get(g);
        }
    }
}

fn downward_files(items: Option<&mut Vec<DownwardAPIVolumeFile>>) {
    for f in items.into_iter().flatten() {
        if let Some(r) = &mut f.field_ref {
            set_str_if_empty(&mut r.api_version, "v1");
        }
        if let Some(d) = f
            .resource_field_ref
            .as_mut()
            .and_then(|r| r.divisor.as_mut())
        {
            canonicalize(d);
        }
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` (used by ephemeral volumes and StatefulSet claim
/// templates).
pub fn pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    set_if_none(&mut spec.volume_mode, "Filesystem".to_string());
    if let Some(r) = &mut spec.resources {
        for list in [&mut r.limits, &mut r.requests].into_iter().flatten() {
            canonicalize_list(list, true);
        }
    }
}

/// The number of volume sources a volume names.
pub fn source_count(v: &Volume) -> usize {
    [
        v.aws_elastic_block_store.is_some(),
        v.azure_disk.is_some(),
        v.azure_file.is_some(),
        v.cephfs.is_some(),
        v.cinder.is_some(),
        v.config_map.is_some(),
        v.csi.is_some(),
        v.downward_api.is_some(),
        v.empty_dir.is_some(),
        v.ephemeral.is_some(),
        v.fc.is_some(),
        v.flex_volume.is_some(),
        v.flocker.is_some(),
        v.gce_persistent_disk.is_some(),
        v.git_repo.is_some(),
        v.glusterfs.is_some(),
        v.host_path.is_some(),
        v.image.is_some(),
        v.iscsi.is_some(),
        v.nfs.is_some(),
        v.persistent_volume_claim.is_some(),
        v.photon_persistent_disk.is_some(),
        v.portworx_volume.is_some(),
        v.projected.is_some(),
        v.quobyte.is_some(),
        v.rbd.is_some(),
        v.scale_io.is_some(),
        v.secret.is_some(),
        v.storageos.is_some(),
        v.vsphere_volume.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

fn volume(v: &mut Volume) {
    if source_count(v) == 0 {
        v.empty_dir = Some(Default::default());
    }
    if let Some(e) = &mut v.empty_dir
        && let Some(q) = &mut e.size_limit
    {
        canonicalize(q);
    }
    if let Some(h) = &mut v.host_path {
        set_if_none(&mut h.type_, String::new());
    }
    if let Some(s) = &mut v.secret {
        set_if_none(&mut s.default_mode, DEFAULT_MODE);
    }
    if let Some(c) = &mut v.config_map {
        set_if_none(&mut c.default_mode, DEFAULT_MODE);
    }
    if let Some(d) = &mut v.downward_api {
        set_if_none(&mut d.default_mode, DEFAULT_MODE);
        downward_files(d.items.as_mut());
    }
    if let Some(p) = &mut v.projected {
        set_if_none(&mut p.default_mode, DEFAULT_MODE);
        for s in p.sources.iter_mut().flatten() {
            if let Some(t) = &mut s.service_account_token {
                set_if_none(&mut t.expiration_seconds, 3600);
            }
            if let Some(d) = &mut s.downward_api {
                downward_files(d.items.as_mut());
            }
        }
    }
    if let Some(i) = &mut v.iscsi {
        set_str_if_empty(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = &mut v.rbd {
        set_str_if_empty(&mut r.pool, "rbd");
        set_str_if_empty(&mut r.user, "admin");
        set_str_if_empty(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(a) = &mut v.azure_disk {
        set_if_none(&mut a.caching_mode, "ReadWrite".to_string());
        set_if_none(&mut a.fs_type, "ext4".to_string());
        set_if_none(&mut a.read_only, false);
        set_if_none(&mut a.kind, "Shared".to_string());
    }
    if let Some(s) = &mut v.scale_io {
        set_str_if_empty(&mut s.storage_mode, "ThinProvisioned");
        set_str_if_empty(&mut s.fs_type, "xfs");
    }
    if let Some(t) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        pvc_spec(&mut t.spec);
    }
}

/// Canonical form for a lone quantity field (no milli rounding: upstream only rounds
/// `ResourceList`s).
pub fn quantity(q: &mut Quantity) {
    canonicalize(q);
}
