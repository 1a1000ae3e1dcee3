//! Security settings shared by pods and containers: user/group ID ranges, seccomp and AppArmor
//! profiles, and the pod-level security context (`validatePodSpecSecurityContext`).

use std::collections::BTreeSet;

use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{AppArmorProfile, PodSecurityContext, SeccompProfile};

use super::volumes::local_descending;

/// `IsValidUserID` / `IsValidGroupID`.
pub fn id_range(id: Option<i64>, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(id) = id
        && !(0..=0xffff_ffff).contains(&id)
    {
        errs.push(FieldError::invalid(
            path,
            id,
            "must be between 0 and 4294967295, inclusive",
        ));
    }
}

/// `validateSeccompProfileField`.
pub fn seccomp(p: &SeccompProfile, path: &Path, errs: &mut Vec<FieldError>) {
    match p.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if p.type_ == "Localhost" {
        match &p.localhost_profile {
            None => errs.push(FieldError::required(
                path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => local_descending(lp, &path.child("localhostProfile"), errs),
        }
    } else if p.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            path.child("localhostProfile"),
            serde_json::to_value(p).unwrap_or_default(),
            "can only be set when seccomp type is Localhost",
        ));
    }
}

/// `ValidateAppArmorProfileField`.
pub fn app_armor(p: &AppArmorProfile, path: &Path, errs: &mut Vec<FieldError>) {
    let lp_path = path.child("localhostProfile");
    match p.type_.as_str() {
        "Localhost" => match &p.localhost_profile {
            None => errs.push(FieldError::required(
                &lp_path,
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                if lp.trim() != lp {
                    errs.push(FieldError::invalid(
                        &lp_path,
                        lp.as_str(),
                        "must not be padded with whitespace",
                    ));
                } else if lp.is_empty() {
                    errs.push(FieldError::required(
                        &lp_path,
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(FieldError::too_long(&lp_path, 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = &p.localhost_profile {
                errs.push(FieldError::invalid(
                    &lp_path,
                    lp.as_str(),
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
}

/// A sysctl name: dot- or slash-separated segments of `[a-z0-9]([-_a-z0-9]*[a-z0-9])?`.
fn valid_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|seg| {
            let b = seg.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_'
                })
        })
}

/// The namespace a sysctl belongs to, as the kubelet's `GetNamespace` classifies it.
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let name = name.replace('/', ".");
    if name.starts_with("net.") {
        return Some("net");
    }
    let ipc = [
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
    ];
    if ipc.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
        return Some("ipc");
    }
    None
}

/// `validatePodSpecSecurityContext` (host namespaces are passed in because v1 keeps them on the
/// spec).
pub fn pod_security_context(
    sc: &PodSecurityContext,
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    share_process_namespace: Option<bool>,
    spec_path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let path = spec_path.child("securityContext");
    id_range(sc.fs_group, &path.child("fsGroup"), errs);
    id_range(sc.run_as_user, &path.child("runAsUser"), errs);
    id_range(sc.run_as_group, &path.child("runAsGroup"), errs);
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        id_range(Some(*g), &path.child("supplementalGroups").index(i), errs);
    }
    if share_process_namespace == Some(true) && host_pid {
        errs.push(FieldError::invalid(
            path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let np = path.child("sysctls").index(i).child("name");
        if s.name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else if !valid_sysctl_name(&s.name) {
            errs.push(FieldError::invalid(
                &np,
                s.name.as_str(),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if names.contains(s.name.as_str()) {
            errs.push(FieldError::duplicate(&np, s.name.as_str()));
        }
        match sysctl_namespace(&s.name) {
            Some("net") if host_network => errs.push(FieldError::invalid(
                &np,
                s.name.as_str(),
                "may not be specified when 'hostNetwork' is true",
            )),
            Some("ipc") if host_ipc => errs.push(FieldError::invalid(
                &np,
                s.name.as_str(),
                "may not be specified when 'hostIPC' is true",
            )),
            _ => {}
        }
        names.insert(s.name.as_str());
    }
    if let Some(p) = &sc.fs_group_change_policy
        && p != "Always"
        && p != "OnRootMismatch"
    {
        errs.push(FieldError::not_supported(
            path.child("fsGroupChangePolicy"),
            p.as_str(),
            &["Always", "OnRootMismatch"],
        ));
    }
    if let Some(p) = &sc.seccomp_profile {
        seccomp(p, &path.child("seccompProfile"), errs);
    }
    if let Some(p) = &sc.app_armor_profile {
        app_armor(p, &path.child("appArmorProfile"), errs);
    }
    if let Some(p) = &sc.supplemental_groups_policy
        && p != "Merge"
        && p != "Strict"
    {
        errs.push(FieldError::not_supported(
            path.child("supplementalGroupsPolicy"),
            p.as_str(),
            &["Merge", "Strict"],
        ));
    }
    if let Some(p) = &sc.se_linux_change_policy
        && p != "MountOption"
        && p != "Recursive"
    {
        errs.push(FieldError::not_supported(
            path.child("seLinuxChangePolicy"),
            p.as_str(),
            &["MountOption", "Recursive"],
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Sysctl;

    #[test]
    fn pod_context_rules() {
        let sc = PodSecurityContext {
            run_as_user: Some(-1),
            sysctls: Some(vec![
                Sysctl {
                    name: "net.core.somaxconn".into(),
                    value: "1".into(),
                },
                Sysctl {
                    name: "Bad".into(),
                    value: "1".into(),
                },
            ]),
            seccomp_profile: Some(SeccompProfile {
                type_: "Localhost".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        };
        let mut errs = Vec::new();
        pod_security_context(&sc, true, false, false, None, &Path::new("spec"), &mut errs);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs[0],
            "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 4294967295, inclusive"
        );
        assert_eq!(
            msgs[1],
            "spec.securityContext.sysctls[0].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true"
        );
        assert!(msgs[2].starts_with("spec.securityContext.sysctls[1].name: Invalid value: \"Bad\": must have at most 253 characters"));
        assert_eq!(
            msgs[3],
            "spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"
        );
    }
}
