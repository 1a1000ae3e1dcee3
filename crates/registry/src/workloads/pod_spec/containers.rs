//! Container validation: the rules every container kind shares (`validateContainerCommon`),
//! the per-kind rules for regular, init and ephemeral containers, probes, lifecycle handlers,
//! ports, env and mounts.

use std::collections::{BTreeMap, BTreeSet};

use api::validation::{self, FieldError, Path};
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, SecurityContext, Volume};

use super::env::{env, env_from};
use super::mounts::{devices, mounts};
use super::probes::{PORT_RANGE, hooks_and_probes, port_name_errors};
use super::{resources, security};
use crate::workloads::common::not_found;

/// What the container checks need from the enclosing pod spec.
pub struct Ctx<'a> {
    pub volumes: &'a BTreeMap<&'a str, &'a Volume>,
    pub claim_names: &'a BTreeSet<&'a str>,
    pub grace_period: Option<i64>,
    pub restart_policy: &'a str,
    pub host_users: bool,
}

fn ports(c: &Container, path: &Path, errs: &mut Vec<FieldError>) {
    let mut names = BTreeSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let ip = path.index(i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                errs.extend(validation::errors_for(&ip.child("name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(ip.child("name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(ip.child("containerPort"), ""));
        } else if !(1..=65535).contains(&p.container_port) {
            errs.push(FieldError::invalid(
                ip.child("containerPort"),
                p.container_port,
                PORT_RANGE,
            ));
        }
        if let Some(hp) = p.host_port.filter(|hp| *hp != 0)
            && !(1..=65535).contains(&hp)
        {
            errs.push(FieldError::invalid(ip.child("hostPort"), hp, PORT_RANGE));
        }
        match p.protocol.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required(ip.child("protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                ip.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
}

fn resize_policy(c: &Container, restart_policy: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (i, p) in c.resize_policy.iter().flatten().enumerate() {
        if !seen.insert(p.resource_name.as_str()) {
            errs.push(FieldError::duplicate(
                path.index(i),
                p.resource_name.as_str(),
            ));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_policy == "Never" && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                p.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
}

/// `validateContainerCommon`.
fn common(c: &Container, ctx: &Ctx<'_>, path: &Path, errs: &mut Vec<FieldError>) {
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validation::errors_for(
            &name_path,
            &c.name,
            validation::dns1123_label(&c.name),
        ));
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    ports(c, &path.child("ports"), errs);
    env(c.env.as_deref().unwrap_or(&[]), &path.child("env"), errs);
    env_from(
        c.env_from.as_deref().unwrap_or(&[]),
        &path.child("envFrom"),
        errs,
    );
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    let mount_list = c.volume_mounts.as_deref().unwrap_or(&[]);
    let device_list = c.volume_devices.as_deref().unwrap_or(&[]);
    mounts(
        mount_list,
        device_list,
        ctx,
        privileged,
        &path.child("volumeMounts"),
        errs,
    );
    devices(
        device_list,
        mount_list,
        ctx,
        &path.child("volumeDevices"),
        errs,
    );
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(path.child("imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(resources::validate_requirements(
            r,
            ctx.claim_names,
            &path.child("resources"),
        ));
    }
    resize_policy(c, ctx.restart_policy, &path.child("resizePolicy"), errs);
    if let Some(sc) = &c.security_context {
        container_security(sc, ctx.host_users, &path.child("securityContext"), errs);
    }
}

fn container_security(
    sc: &SecurityContext,
    host_users: bool,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    security::id_range(sc.run_as_user, &path.child("runAsUser"), errs);
    security::id_range(sc.run_as_group, &path.child("runAsGroup"), errs);
    if let Some(pm) = &sc.proc_mount {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(FieldError::not_supported(
                path.child("procMount"),
                pm.as_str(),
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                path.child("procMount"),
                pm.as_str(),
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    if let Some(p) = &sc.seccomp_profile {
        security::seccomp(p, &path.child("seccompProfile"), errs);
    }
    if sc.allow_privilege_escalation == Some(false) {
        let shown = serde_json::to_value(sc).unwrap_or_default();
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                shown.clone(),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|add| add.iter().any(|c| c == "CAP_SYS_ADMIN"))
        {
            errs.push(FieldError::invalid(
                path,
                shown,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    if let Some(p) = &sc.app_armor_profile {
        security::app_armor(p, &path.child("appArmorProfile"), errs);
    }
}

/// `AccumulateUniqueHostPorts` over `containers` (paths relative to `path`).
fn host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let hp = p.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                p.protocol.as_deref().unwrap_or(""),
                p.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
}

/// `validateContainers`.
pub fn regular(list: &[Container], ctx: &Ctx<'_>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if list.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        common(c, ctx, &p, &mut errs);
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(p.child("name"), c.name.as_str()));
        }
        hooks_and_probes(c, ctx.grace_period, &p, &mut errs);
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    host_port_conflicts(list.iter().enumerate(), path, &mut errs);
    errs
}

/// `validateInitContainers`.
pub fn init(
    list: &[Container],
    regular: &[Container],
    ctx: &Ctx<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        common(c, ctx, &p, &mut errs);
        let restart_always = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    p.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(p.child("name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        // Init containers run one at a time, so only their own ports may conflict.
        host_port_conflicts(std::iter::once((i, c)), path, &mut errs);
        if restart_always {
            hooks_and_probes(c, ctx.grace_period, &p, &mut errs);
        } else {
            for (present, name) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if present {
                    errs.push(FieldError::forbidden(
                        p.child(name),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// The container view of an ephemeral container.
pub fn ephemeral_as_container(e: &EphemeralContainer) -> Container {
    Container {
        args: e.args.clone(),
        command: e.command.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        lifecycle: e.lifecycle.clone(),
        liveness_probe: e.liveness_probe.clone(),
        name: e.name.clone(),
        ports: e.ports.clone(),
        readiness_probe: e.readiness_probe.clone(),
        resize_policy: e.resize_policy.clone(),
        resources: e.resources.clone(),
        restart_policy: e.restart_policy.clone(),
        security_context: e.security_context.clone(),
        startup_probe: e.startup_probe.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        tty: e.tty,
        volume_devices: e.volume_devices.clone(),
        volume_mounts: e.volume_mounts.clone(),
        working_dir: e.working_dir.clone(),
    }
}

/// `validateEphemeralContainers`.
pub fn ephemeral(
    list: &[EphemeralContainer],
    regular: &[Container],
    init: &[Container],
    ctx: &Ctx<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let others: BTreeSet<&str> = regular
        .iter()
        .chain(init)
        .map(|c| c.name.as_str())
        .collect();
    let mut all = others.clone();
    for (i, e) in list.iter().enumerate() {
        let p = path.index(i);
        let c = ephemeral_as_container(e);
        common(&c, ctx, &p, &mut errs);
        super::spec::image_whitespace(&c, &p, &mut errs);
        if !all.insert(e.name.as_str()) {
            errs.push(FieldError::duplicate(p.child("name"), e.name.as_str()));
        }
        if let Some(t) = e.target_container_name.as_deref().filter(|t| !t.is_empty())
            && !others.contains(t)
        {
            errs.push(not_found(p.child("targetContainerName"), t));
        }
        let resources_set = e
            .resources
            .as_ref()
            .is_some_and(|r| r.limits.is_some() || r.requests.is_some() || r.claims.is_some());
        for (present, name) in [
            (e.ports.is_some(), "ports"),
            (resources_set, "resources"),
            (e.resize_policy.is_some(), "resizePolicy"),
            (e.lifecycle.is_some(), "lifecycle"),
            (e.liveness_probe.is_some(), "livenessProbe"),
            (e.readiness_probe.is_some(), "readinessProbe"),
            (e.startup_probe.is_some(), "startupProbe"),
            (e.restart_policy.is_some(), "restartPolicy"),
        ] {
            if present {
                errs.push(FieldError::forbidden(
                    p.child(name),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, m) in e.volume_mounts.iter().flatten().enumerate() {
            let mp = p.child("volumeMounts").index(j);
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    mp.child("subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    mp.child("subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}
