//! Pods: defaulting, the admission effects every pod shows (ServiceAccount,
//! DefaultTolerationSeconds, Priority), create/update/status validation and graceful deletion,
//! as upstream's `pkg/registry/core/pod` strategy and plugins behave on a 1.33 server.
//!
//! Admission that needs other objects is deliberately partial: the ServiceAccount default is
//! set without requiring the account to exist and no token volume is injected, and a named
//! PriorityClass other than the two built-in `system-*` classes leaves `spec.priority` unset
//! (resolving it needs a PriorityClass lookup the strategy cannot do).

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::{
    Affinity, ContainerStatus, HostIP, Pod, PodAffinityTerm, PodCondition, PodIP, PodSpec,
    PodStatus, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use std::collections::BTreeMap;

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::IMMUTABLE;
use crate::workloads::pod_spec::{self, Opts, defaults};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, PodStrategy))
}

const MIRROR_POD: &str = "kubernetes.io/config.mirror";
/// `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;
const DEFAULT_PREEMPTION: &str = "PreemptLowerPriority";

/// The pod strategy.
pub struct PodStrategy;

/// DefaultTolerationSeconds admission: tolerate `not-ready` and `unreachable` for five minutes
/// unless the pod already tolerates them.
fn default_tolerations(spec: &mut PodSpec) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or("");
            let e = t.effect.as_deref().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        });
        if !tolerated {
            list.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                value: None,
            });
        }
    }
}

/// The value of a built-in PriorityClass.
fn system_priority(class: &str) -> Option<i32> {
    match class {
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    }
}

/// `applyMatchLabelKeysAndMismatchLabelKeys` (MatchLabelKeysInPodAffinity is on in 1.33): the
/// keys become `In`/`NotIn` requirements on the pod's own label values.
fn apply_label_keys(term: &mut PodAffinityTerm, labels: &BTreeMap<String, String>) {
    let Some(sel) = term.label_selector.as_mut() else {
        return;
    };
    for (keys, op) in [
        (&term.match_label_keys, "In"),
        (&term.mismatch_label_keys, "NotIn"),
    ] {
        for key in keys.iter().flatten() {
            if let Some(v) = labels.get(key) {
                sel.match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: key.clone(),
                        operator: op.to_string(),
                        values: Some(vec![v.clone()]),
                    });
            }
        }
    }
}

fn mutate_pod_affinity(affinity: Option<&mut Affinity>, labels: &BTreeMap<String, String>) {
    let Some(a) = affinity else {
        return;
    };
    if let Some(p) = &mut a.pod_affinity {
        for t in p
            .required_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            apply_label_keys(t, labels);
        }
        for t in p
            .preferred_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            apply_label_keys(&mut t.pod_affinity_term, labels);
        }
    }
    if let Some(p) = &mut a.pod_anti_affinity {
        for t in p
            .required_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            apply_label_keys(t, labels);
        }
        for t in p
            .preferred_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            apply_label_keys(&mut t.pod_affinity_term, labels);
        }
    }
}

/// The v1 conversion of the singular and plural IP fields: a non-empty `podIP` is
/// authoritative (older kubelets only set it), and on the way out `podIP` mirrors `podIPs[0]`.
/// The same holds for `hostIP`/`hostIPs`.
fn sync_ips(status: &mut PodStatus) {
    if let Some(ip) = status.pod_ip.clone().filter(|ip| !ip.is_empty())
        && status
            .pod_ips
            .as_ref()
            .and_then(|l| l.first())
            .map(|p| p.ip.as_str())
            != Some(ip.as_str())
    {
        status.pod_ips = Some(vec![PodIP { ip }]);
    }
    status.pod_ip = status
        .pod_ips
        .as_ref()
        .and_then(|l| l.first())
        .map(|p| p.ip.clone());
    if let Some(ip) = status.host_ip.clone().filter(|ip| !ip.is_empty())
        && status
            .host_ips
            .as_ref()
            .and_then(|l| l.first())
            .map(|h| h.ip.as_str())
            != Some(ip.as_str())
    {
        status.host_ips = Some(vec![HostIP { ip }]);
    }
    status.host_ip = status
        .host_ips
        .as_ref()
        .and_then(|l| l.first())
        .map(|h| h.ip.clone());
}

fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD))
}

fn spec_of(pod: &Pod) -> std::borrow::Cow<'_, PodSpec> {
    match &pod.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(PodSpec::default()),
    }
}

/// `validatePodMetadataAndSpec` (metadata itself is validated by the generic store).
fn metadata_and_spec(pod: &Pod) -> Vec<FieldError> {
    let spec = spec_of(pod);
    let spec_path = Path::new("spec");
    let mut errs = pod_spec::pod_annotations(
        pod.metadata.annotations.as_ref(),
        &spec,
        &Path::new("metadata").child("annotations"),
    );
    errs.extend(pod_spec::validate_pod_spec(
        &spec,
        pod.metadata.name.as_deref(),
        &spec_path,
        Opts {
            resource_is_pod: true,
        },
    ));
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, s) in v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .enumerate()
            {
                if s.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        spec_path
                            .child("volumes")
                            .index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        pod_spec::image_whitespace(c, &spec_path.child("containers").index(i), &mut errs);
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        pod_spec::image_whitespace(c, &spec_path.child("initContainers").index(i), &mut errs);
    }
    errs
}

fn mirror_annotation_updates(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let path = Path::new("metadata").child("annotations").key(MIRROR_POD);
    let get = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR_POD))
            .cloned()
    };
    match (get(old), get(new)) {
        (Some(o), n) if n.as_ref() != Some(&o) => vec![FieldError::forbidden(
            path,
            "may not remove or update mirror pod annotation",
        )],
        (None, Some(_)) => vec![FieldError::forbidden(
            path,
            "may not add mirror pod annotation",
        )],
        _ => Vec::new(),
    }
}

/// `ValidateContainerStateTransition`: a container that finished for good may not come back.
fn state_transitions(
    new: &[ContainerStatus],
    old: &[ContainerStatus],
    restart_policy: &str,
    restartable: &dyn Fn(&str) -> bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if restart_policy == "Always" {
        return errs;
    }
    for (i, o) in old.iter().enumerate() {
        let Some(term) = o.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
            continue;
        };
        if term.exit_code != 0 && restart_policy == "OnFailure" || restartable(&o.name) {
            continue;
        }
        let revived = new
            .iter()
            .any(|n| n.name == o.name && n.state.as_ref().is_none_or(|s| s.terminated.is_none()));
        if revived {
            errs.push(FieldError::forbidden(
                path.index(i).child("state"),
                "may not be transitioned to non-terminated state",
            ));
        }
    }
    errs
}

fn ip_list(ips: &[String], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, ip) in ips.iter().enumerate() {
        errs.extend(pod_spec::validate_ip(ip, &path.index(i).child("ip")));
    }
    if ips.len() > 1 {
        let v4 = ips
            .iter()
            .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
            .count();
        if ips.len() > 2 || v4 != 1 {
            errs.push(FieldError::invalid(
                path,
                serde_json::to_value(
                    ips.iter()
                        .map(|ip| serde_json::json!({"ip": ip}))
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_default(),
                "may specify no more than one IP for each IP family",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, ip) in ips.iter().enumerate() {
            if !seen.insert(ip.as_str()) {
                errs.push(FieldError::duplicate(
                    path.index(i),
                    serde_json::json!({"ip": ip}),
                ));
            }
        }
    }
}

impl Strategy for PodStrategy {
    type Object = Pod;

    /// Since 1.33 pods carry `metadata.generation`, bumped when the spec changes.
    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, pod: &mut Pod) {
        let spec = pod.spec.get_or_insert_with(PodSpec::default);
        defaults::pod_spec(spec);
        defaults::pod_only(spec);
        default_tolerations(spec);
    }

    fn prepare_for_create(&self, pod: &mut Pod) {
        let mirror = is_mirror(pod);
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let spec = pod.spec.get_or_insert_with(PodSpec::default);
        // ServiceAccount admission (without requiring the account or mounting its token).
        if !mirror
            && spec
                .service_account_name
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            spec.service_account_name = Some("default".to_string());
            defaults::service_account_alias(spec);
        }
        // Priority admission.
        let class = spec.priority_class_name.clone().unwrap_or_default();
        let computed = if class.is_empty() {
            Some(0)
        } else {
            system_priority(&class)
        };
        if let Some(p) = computed {
            spec.priority.get_or_insert(p);
            spec.preemption_policy
                .get_or_insert_with(|| DEFAULT_PREEMPTION.to_string());
        }
        mutate_pod_affinity(spec.affinity.as_mut(), &labels);
        let mut status = PodStatus {
            phase: Some("Pending".to_string()),
            qos_class: Some(pod_spec::qos_class(spec).to_string()),
            ..Default::default()
        };
        if spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            status.conditions = Some(vec![PodCondition {
                type_: "PodScheduled".to_string(),
                status: "False".to_string(),
                reason: Some("SchedulingGated".to_string()),
                message: Some(
                    "Scheduling is blocked due to non-empty scheduling gates".to_string(),
                ),
                ..Default::default()
            }]);
        }
        pod.status = Some(status);
    }

    fn prepare_for_update(&self, new: &mut Pod, old: &Pod) {
        // Priority admission on update: keep what it set at creation.
        if let (Some(spec), Some(old_spec)) = (new.spec.as_mut(), old.spec.as_ref()) {
            if spec.priority.is_none() {
                spec.priority = old_spec.priority;
            }
            if spec.preemption_policy.is_none() {
                spec.preemption_policy
                    .clone_from(&old_spec.preemption_policy);
            }
        }
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        let mut errs = metadata_and_spec(pod);
        let spec = spec_of(pod);
        let path = Path::new("spec");
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                path.child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        if !spec.node_name.as_deref().unwrap_or("").is_empty()
            && spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty())
        {
            errs.push(FieldError::forbidden(
                path.child("nodeName"),
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        let mut errs = metadata_and_spec(new);
        errs.extend(mirror_annotation_updates(new, old));
        errs.extend(pod_spec::validate_pod_spec_update(
            &spec_of(new),
            &spec_of(old),
        ));
        errs
    }

    fn prepare_for_status_update(&self, new: &mut Pod, old: &Pod) {
        let old_status = old.status.clone().unwrap_or_default();
        let status = new.status.get_or_insert_with(PodStatus::default);
        if status.qos_class.as_deref().unwrap_or("").is_empty() {
            status.qos_class = old_status.qos_class;
        }
        // PodObservedGenerationTracking is off in 1.33: the fields are dropped unless in use.
        if old_status.observed_generation.is_none() {
            status.observed_generation = None;
        }
        let conditions_in_use = old_status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.observed_generation.is_some());
        if !conditions_in_use {
            for c in status.conditions.iter_mut().flatten() {
                c.observed_generation = None;
            }
        }
        sync_ips(status);
    }

    fn validate_status_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let default = PodStatus::default();
        let status = new.status.as_ref().unwrap_or(&default);
        let old_status = old.status.as_ref().unwrap_or(&default);
        // Upstream reports condition types under `metadata` (sic).
        let cond_path = Path::new("metadata").child("conditions");
        for (i, c) in status.conditions.iter().flatten().enumerate() {
            if !["PodScheduled", "Ready", "Initialized"].contains(&c.type_.as_str()) {
                errs.extend(api::validation::errors_for(
                    &cond_path.index(i).child("Type"),
                    &c.type_,
                    api::validation::qualified_name(&c.type_),
                ));
            }
        }
        let sp = Path::new("status");
        if let Some(n) = status
            .nominated_node_name
            .as_deref()
            .filter(|n| !n.is_empty())
            && old_status.nominated_node_name.as_deref() != Some(n)
        {
            errs.extend(api::validation::errors_for(
                &sp.child("nominatedNodeName"),
                n,
                api::validation::dns1123_subdomain(n),
            ));
        }
        if status.qos_class != old_status.qos_class {
            errs.push(FieldError::invalid(
                sp.child("qosClass"),
                status.qos_class.clone().unwrap_or_default(),
                IMMUTABLE,
            ));
        }
        let spec = spec_of(old);
        let restart = spec.restart_policy.as_deref().unwrap_or("Always");
        let never = |_: &str| false;
        let sidecar = |name: &str| {
            spec.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
        };
        let empty = Vec::new();
        errs.extend(state_transitions(
            status.container_statuses.as_ref().unwrap_or(&empty),
            old_status.container_statuses.as_ref().unwrap_or(&empty),
            restart,
            &never,
            &sp.child("containerStatuses"),
        ));
        errs.extend(state_transitions(
            status.init_container_statuses.as_ref().unwrap_or(&empty),
            old_status
                .init_container_statuses
                .as_ref()
                .unwrap_or(&empty),
            restart,
            &sidecar,
            &sp.child("initContainerStatuses"),
        ));
        errs.extend(state_transitions(
            status
                .ephemeral_container_statuses
                .as_ref()
                .unwrap_or(&empty),
            old_status
                .ephemeral_container_statuses
                .as_ref()
                .unwrap_or(&empty),
            "Never",
            &never,
            &sp.child("ephemeralContainerStatuses"),
        ));
        let pod_ips: Vec<String> = status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .collect();
        ip_list(&pod_ips, &sp.child("podIPs"), &mut errs);
        let host_ips: Vec<String> = status
            .host_ips
            .iter()
            .flatten()
            .map(|h| h.ip.clone())
            .collect();
        if let Some(first) = host_ips.first()
            && status.host_ip.as_deref() != Some(first.as_str())
        {
            errs.push(FieldError::invalid(
                sp.child("hostIPs").index(0).child("ip"),
                first.as_str(),
                "must be equal to `hostIP`",
            ));
        }
        ip_list(&host_ips, &sp.child("hostIPs"), &mut errs);
        errs
    }

    fn before_write(
        &self,
        new: &mut Pod,
        old: Option<&Pod>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        let spec = spec_of(new);
        if let Some(e) = pod_spec::first_bad_quantity(&spec) {
            return Err(pod_spec::decode_error("Pod", &e));
        }
        if old.is_some() {
            return Ok(());
        }
        // Priority admission's conflicts (upstream answers 403 before validation).
        let class = spec.priority_class_name.as_deref().unwrap_or("");
        let computed = if class.is_empty() {
            Some(0)
        } else {
            system_priority(class)
        };
        let name = new.metadata.name.as_deref().unwrap_or("");
        if let (Some(want), Some(got)) = (computed, spec.priority)
            && want != got
        {
            return Err(ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: the integer value of priority ({got}) must not be provided in pod spec; priority admission controller computed {want} from the given PriorityClass name"
            )));
        }
        if computed.is_some()
            && let Some(p) = spec.preemption_policy.as_deref()
            && p != DEFAULT_PREEMPTION
        {
            return Err(ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: the string value of PreemptionPolicy ({p}) must not be provided in pod spec; priority admission controller computed {DEFAULT_PREEMPTION} from the given PriorityClass name"
            )));
        }
        Ok(())
    }

    /// Upstream's `CheckGracefulDelete`: the requested period or the pod's own; at once when
    /// the pod never reached a node or has already finished.
    fn graceful_delete(&self, pod: &Pod, requested: Option<i64>) -> Option<i64> {
        let spec = spec_of(pod);
        let mut period = requested
            .or(spec.termination_grace_period_seconds)
            .unwrap_or(0);
        if spec.node_name.as_deref().unwrap_or("").is_empty() {
            period = 0;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Failed" | "Succeeded")) {
            period = 0;
        }
        if period < 0 {
            period = 1;
        }
        (period > 0).then_some(period)
    }
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
