//! `ValidatePodSpec` and its spec-level parts (scheduling, DNS, tolerations, topology
//! spread), `ValidatePodTemplateSpec`, and the pod-specific annotation rules.
//!
//! The order of the checks (and so of the causes in a 422) follows upstream.

use std::collections::{BTreeMap, BTreeSet};

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

use super::containers::{self, Ctx};
use super::network::{dns_config, ip};
use super::scheduling::{affinity, label_name, tolerations, topology_spread};
use super::{resources, security, volumes};

/// What differs between validating a Pod and a PodSpec embedded in another resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct Opts {
    /// The top-level object is a Pod (host ports must equal container ports with host
    /// networking; templates may leave them 0 for defaulting at pod creation).
    pub resource_is_pod: bool,
}

/// `validatePodHostNetworkDeps`.
fn host_network_deps(spec: &PodSpec, opts: Opts, path: &Path, errs: &mut Vec<FieldError>) {
    if spec.host_network != Some(true) {
        return;
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let hp = p.host_port.unwrap_or(0);
            if (opts.resource_is_pod || hp != 0) && hp != p.container_port {
                errs.push(FieldError::invalid(
                    path.child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
}

fn os_rules(spec: &PodSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(os) = &spec.os else {
        return;
    };
    match os.name.as_str() {
        "" => errs.push(FieldError::required(
            path.child("os").child("name"),
            "cannot be empty",
        )),
        "linux" => {
            let windows = "windows options cannot be set for a linux pod";
            if spec
                .security_context
                .as_ref()
                .is_some_and(|s| s.windows_options.is_some())
            {
                errs.push(FieldError::forbidden(
                    path.child("securityContext").child("windowsOptions"),
                    windows,
                ));
            }
            for (kind, list) in [
                ("containers", &spec.containers),
                (
                    "initContainers",
                    spec.init_containers.as_ref().unwrap_or(&Vec::new()),
                ),
            ] {
                for (i, c) in list.iter().enumerate() {
                    if c.security_context
                        .as_ref()
                        .is_some_and(|s| s.windows_options.is_some())
                    {
                        errs.push(FieldError::forbidden(
                            path.child(kind)
                                .index(i)
                                .child("securityContext")
                                .child("windowsOptions"),
                            windows,
                        ));
                    }
                }
            }
        }
        "windows" => {
            let msg = "cannot be set for a windows pod";
            if let Some(sc) = &spec.security_context {
                let scp = path.child("securityContext");
                for (set, field) in [
                    (sc.app_armor_profile.is_some(), scp.child("appArmorProfile")),
                    (sc.se_linux_options.is_some(), scp.child("seLinuxOptions")),
                    (sc.seccomp_profile.is_some(), scp.child("seccompProfile")),
                    (sc.fs_group.is_some(), scp.child("fsGroup")),
                    (
                        sc.fs_group_change_policy.is_some(),
                        scp.child("fsGroupChangePolicy"),
                    ),
                    (
                        sc.sysctls.as_ref().is_some_and(|s| !s.is_empty()),
                        scp.child("sysctls"),
                    ),
                    (sc.run_as_user.is_some(), scp.child("runAsUser")),
                    (sc.run_as_group.is_some(), scp.child("runAsGroup")),
                    (
                        sc.supplemental_groups.is_some(),
                        scp.child("supplementalGroups"),
                    ),
                ] {
                    if set {
                        errs.push(FieldError::forbidden(field, msg));
                    }
                }
            }
            for (set, field) in [
                (spec.host_users.is_some(), "hostUsers"),
                (spec.host_pid == Some(true), "hostPID"),
                (spec.host_ipc == Some(true), "hostIPC"),
                (
                    spec.share_process_namespace.is_some(),
                    "shareProcessNamespace",
                ),
            ] {
                if set {
                    errs.push(FieldError::forbidden(path.child(field), msg));
                }
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("os"),
            other,
            &["linux", "windows"],
        )),
    }
}

/// `ValidatePodSpec`. `pod_name` is set for real pods (ephemeral volume claim names).
pub fn validate_pod_spec(
    spec: &PodSpec,
    pod_name: Option<&str>,
    path: &Path,
    opts: Opts,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let empty = Vec::new();
    let vols = spec.volumes.as_ref().unwrap_or(&empty);
    let (valid_volumes, vol_errs) = volumes::validate(vols, pod_name, &path.child("volumes"));
    errs.extend(vol_errs);
    let claims = spec.resource_claims.as_deref().unwrap_or(&[]);
    let claim_names: BTreeSet<&str> = claims
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    let mut seen_claims = BTreeSet::new();
    for (i, c) in claims.iter().enumerate() {
        let np = path.child("resourceClaims").index(i).child("name");
        if c.name.is_empty() {
            errs.push(FieldError::required(np, ""));
        } else if !seen_claims.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(np, c.name.as_str()));
        } else {
            errs.extend(validation::errors_for(
                &np,
                &c.name,
                validation::dns1123_label(&c.name),
            ));
        }
    }
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("");
    let ctx = Ctx {
        volumes: &valid_volumes,
        claim_names: &claim_names,
        grace_period: spec.termination_grace_period_seconds,
        restart_policy,
        host_users: spec.host_users.unwrap_or(true),
    };
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    errs.extend(containers::regular(
        &spec.containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(containers::init(
        init,
        &spec.containers,
        &ctx,
        &path.child("initContainers"),
    ));
    if let Some(eph) = spec
        .ephemeral_containers
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        errs.extend(containers::ephemeral(
            eph,
            &spec.containers,
            init,
            &ctx,
            &path.child("ephemeralContainers"),
        ));
    }
    host_network_deps(spec, opts, path, &mut errs);
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(path.child("restartPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = spec.dns_policy.as_deref().unwrap_or("");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(path.child("dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if let Some(ns) = &spec.node_selector {
        errs.extend(validation::validate_labels(ns, &path.child("nodeSelector")));
    }
    if let Some(sc) = &spec.security_context {
        security::pod_security_context(
            sc,
            spec.host_network == Some(true),
            spec.host_pid == Some(true),
            spec.host_ipc == Some(true),
            spec.share_process_namespace,
            path,
            &mut errs,
        );
    }
    if let Some(a) = &spec.affinity {
        affinity(a, &path.child("affinity"), &mut errs);
    }
    dns_config(
        spec.dns_config.as_ref(),
        dns_policy,
        &path.child("dnsConfig"),
        &mut errs,
    );
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        label_name(
            &g.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
            &mut errs,
        );
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let gp = path.child("schedulingGates").index(i);
        label_name(&g.name, &gp, &mut errs);
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(&gp, g.name.as_str()));
        }
    }
    topology_spread(
        spec.topology_spread_constraints.as_deref().unwrap_or(&[]),
        &path.child("topologySpreadConstraints"),
        &mut errs,
    );
    if spec.host_users == Some(false) {
        for (set, field) in [
            (spec.host_network == Some(true), "hostNetwork"),
            (spec.host_pid == Some(true), "HostPID"),
            (spec.host_ipc == Some(true), "HostIPC"),
        ] {
            if set {
                errs.push(FieldError::forbidden(
                    path.child(field),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    for (value, field) in [
        (&spec.service_account_name, "serviceAccountName"),
        (&spec.node_name, "nodeName"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(validation::errors_for(
                &path.child(field),
                v,
                validation::dns1123_subdomain(v),
            ));
        }
    }
    if let Some(d) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&d)
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (value, field) in [(&spec.hostname, "hostname"), (&spec.subdomain, "subdomain")] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(validation::errors_for(
                &path.child(field),
                v,
                validation::dns1123_label(v),
            ));
        }
    }
    if let Some(t) = spec.tolerations.as_deref().filter(|t| !t.is_empty()) {
        errs.extend(tolerations(t, &path.child("tolerations")));
    }
    for (i, a) in spec.host_aliases.iter().flatten().enumerate() {
        let ap = path.child("hostAliases").index(i);
        ip(&a.ip, &ap.child("ip"), &mut errs);
        for (j, h) in a.hostnames.iter().flatten().enumerate() {
            errs.extend(validation::errors_for(
                &ap.child("hostnames").index(j),
                h,
                validation::dns1123_subdomain(h),
            ));
        }
    }
    for (value, field) in [
        (&spec.priority_class_name, "priorityClassName"),
        (&spec.runtime_class_name, "runtimeClassName"),
    ] {
        if let Some(v) = value
            .as_deref()
            .filter(|v| !v.is_empty() || field == "runtimeClassName")
        {
            errs.extend(validation::errors_for(
                &path.child(field),
                v,
                validation::dns1123_subdomain(v),
            ));
        }
    }
    if let Some(p) = spec.preemption_policy.as_deref() {
        match p {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(path.child("preemptionPolicy"), "")),
            other => errs.push(FieldError::not_supported(
                path.child("preemptionPolicy"),
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(o) = &spec.overhead {
        let req = k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some(o.clone()),
            ..Default::default()
        };
        errs.extend(resources::validate_requirements(
            &req,
            &BTreeSet::new(),
            &path.child("overhead"),
        ));
    }
    os_rules(spec, path, &mut errs);
    errs
}

/// `validateContainerOnlyForPod`: a pod's image may not carry surrounding whitespace (templates
/// tolerate it for compatibility).
pub fn image_whitespace(c: &Container, path: &Path, errs: &mut Vec<FieldError>) {
    let image = c.image.as_deref().unwrap_or("");
    if image.trim() != image {
        errs.push(FieldError::invalid(
            path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
}

const MIRROR_POD: &str = "kubernetes.io/config.mirror";
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn seccomp_annotation(p: &str) -> bool {
    matches!(p, "runtime/default" | "docker/default" | "unconfined")
        || p.strip_prefix("localhost/").is_some_and(|rest| {
            !rest.starts_with('/') && !rest.split(['/', '\\']).any(|s| s == "..")
        })
}

/// `ValidatePodSpecificAnnotations` (`path` is the annotations path).
pub fn pod_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(a) = annotations else {
        return errs;
    };
    if let Some(v) = a.get(MIRROR_POD)
        && spec.node_name.as_deref().unwrap_or("").is_empty()
    {
        errs.push(FieldError::invalid(
            path.key(MIRROR_POD),
            v.as_str(),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = a.get(DELETION_COST)
        && v.parse::<i32>().is_err()
    {
        errs.push(FieldError::invalid(
            path.key(DELETION_COST),
            v.as_str(),
            "must be a 32bit integer",
        ));
    }
    for (k, v) in a {
        if (k == "seccomp.security.alpha.kubernetes.io/pod"
            || k.starts_with("container.seccomp.security.alpha.kubernetes.io/"))
            && !seccomp_annotation(v)
        {
            errs.push(FieldError::invalid(
                path.child(k),
                v.as_str(),
                "must be a valid seccomp profile",
            ));
        }
    }
    errs
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
pub fn validate_template(t: &PodTemplateSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = t.metadata.as_ref();
    if let Some(l) = meta.and_then(|m| m.labels.as_ref()) {
        errs.extend(validation::validate_labels(l, &path.child("labels")));
    }
    if let Some(a) = meta.and_then(|m| m.annotations.as_ref()) {
        errs.extend(validation::validate_annotations(
            a,
            &path.child("annotations"),
        ));
    }
    let default_spec = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&default_spec);
    errs.extend(pod_annotations(
        meta.and_then(|m| m.annotations.as_ref()),
        spec,
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_spec(
        spec,
        None,
        &path.child("spec"),
        Opts::default(),
    ));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}
