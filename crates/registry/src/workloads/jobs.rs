//! batch/v1 Jobs: defaults (1 completion at parallelism 1, backoff limit 6, NonIndexed,
//! not suspended, `TerminatingOrFailed` replacement, `manualSelector: false`), the selector and
//! template labels generated from `metadata.uid` (`batch.kubernetes.io/controller-uid`,
//! `controller-uid`, `batch.kubernetes.io/job-name`, `job-name`), spec validation, what an
//! update may change, and the status subresource.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{self, FieldError, Path};
use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{
    IMMUTABLE, go_label_selector, go_string_map, invalid_rendered, non_negative, non_negative_opt,
};
use crate::workloads::job_policies;
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::selector;
use crate::workloads::template;
use api::selector::LabelSelector as Selector;

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, JobStrategy))
}

pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub const LEGACY_JOB_NAME: &str = "job-name";

/// The Job strategy.
pub struct JobStrategy;

fn spec_of(j: &Job) -> std::borrow::Cow<'_, JobSpec> {
    match &j.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(JobSpec::default()),
    }
}

/// A Job without labels of its own shows its template's (upstream defaults them on every
/// decode, so they appear once the generated ones exist).
fn labels_from_template(job: &mut Job) {
    let Some(spec) = &job.spec else {
        return;
    };
    if let Some(labels) = template::labels(&spec.template)
        && job.metadata.labels.as_ref().is_none_or(|l| l.is_empty())
    {
        job.metadata.labels = Some(labels.clone());
    }
}

/// `SetDefaults_Job` on a spec (also the defaults a CronJob's template does *not* get).
fn default_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".to_string());
    spec.suspend.get_or_insert(false);
    if spec.pod_replacement_policy.is_none() {
        let p = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(p.to_string());
    }
    spec.manual_selector.get_or_insert(false);
    for r in spec
        .pod_failure_policy
        .iter_mut()
        .flat_map(|p| p.rules.iter_mut())
    {
        for c in r.on_pod_conditions.iter_mut().flatten() {
            if c.status.is_empty() {
                c.status = "True".to_string();
            }
        }
    }
}

/// `generateSelector`: labels on the template naming this job, and a selector on its UID.
fn generate_selector(job: &mut Job) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(JobSpec::default);
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(ObjectMeta::default)
        .labels
        .get_or_insert_with(Default::default);
    // Labels the user already set win; validation rejects any that conflict.
    for key in [LEGACY_JOB_NAME, JOB_NAME] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        labels.entry(key.to_string()).or_insert_with(|| uid.clone());
    }
    spec.selector
        .get_or_insert_with(LabelSelector::default)
        .match_labels
        .get_or_insert_with(Default::default)
        .entry(CONTROLLER_UID.to_string())
        .or_insert(uid);
}

/// `validateJobSpec`: everything but the selector (shared with CronJob templates).
pub fn validate_job_spec(spec: &JobSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative_opt(spec.parallelism, &path.child("parallelism"), &mut errs);
    non_negative_opt(spec.completions, &path.child("completions"), &mut errs);
    non_negative_opt(
        spec.active_deadline_seconds,
        &path.child("activeDeadlineSeconds"),
        &mut errs,
    );
    non_negative_opt(spec.backoff_limit, &path.child("backoffLimit"), &mut errs);
    non_negative_opt(
        spec.ttl_seconds_after_finished,
        &path.child("ttlSecondsAfterFinished"),
        &mut errs,
    );
    non_negative_opt(
        spec.backoff_limit_per_index,
        &path.child("backoffLimitPerIndex"),
        &mut errs,
    );
    if let Some(m) = spec.max_failed_indexes {
        non_negative(i64::from(m), &path.child("maxFailedIndexes"), &mut errs);
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(m) = &spec.managed_by {
        let mp = path.child("managedBy");
        match m.split_once('/') {
            Some((host, rest)) if !host.is_empty() && !rest.is_empty() => {
                errs.extend(validation::errors_for(
                    &mp,
                    host,
                    validation::dns1123_subdomain(host),
                ));
                let ok = rest
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
                if !ok {
                    errs.push(FieldError::invalid(
                        &mp,
                        rest,
                        "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
                    ));
                }
            }
            _ if m.is_empty() => errs.push(FieldError::required(&mp, "")),
            _ => errs.push(FieldError::invalid(
                &mp,
                m.as_str(),
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
        if m.len() > 63 {
            errs.push(FieldError::too_long(&mp, 63));
        }
    }
    let mode = spec.completion_mode.as_deref();
    match mode {
        Some("Indexed") => {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.parallelism.filter(|p| *p > 100_000) {
                errs.push(FieldError::invalid(
                    path.child("parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
            if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
                && m > c
            {
                errs.push(FieldError::invalid(
                    path.child("maxFailedIndexes"),
                    m,
                    "must be less than or equal to completions",
                ));
            }
        }
        Some("NonIndexed") | None => {}
        Some(other) => errs.push(FieldError::not_supported(
            path.child("completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if mode != Some("Indexed") {
        if let Some(b) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                path.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                path.child("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(p) = &spec.pod_failure_policy {
        errs.extend(job_policies::pod_failure_policy(
            spec,
            p,
            &path.child("podFailurePolicy"),
        ));
    }
    if let Some(p) = &spec.success_policy {
        if mode != Some("Indexed") {
            errs.push(FieldError::invalid(
                path.child("successPolicy"),
                serde_json::to_value(p).unwrap_or_default(),
                "requires indexed completion mode",
            ));
        } else {
            errs.extend(job_policies::success_policy(
                spec,
                p,
                &path.child("successPolicy"),
            ));
        }
    }
    if let Some(r) = &spec.pod_replacement_policy {
        let rp = path.child("podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if r != "Failed" {
                errs.push(FieldError::not_supported(&rp, r.as_str(), &["Failed"]));
            }
        } else if r != "Failed" && r != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &rp,
                r.as_str(),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = path.child("template");
    errs.extend(pod_spec::validate_template(&spec.template, &tp));
    let rp = tp.child("spec").child("restartPolicy");
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("");
    match policy {
        // Defaulting turned a missing policy into Always, which a Job cannot use.
        "Always" | "" => errs.push(FieldError::required(
            &rp,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            if spec.pod_failure_policy.is_some() && policy != "Never" {
                errs.push(FieldError::invalid(
                    &rp,
                    policy,
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &rp,
            other,
            &["OnFailure", "Never"],
        )),
    }
    errs
}

/// `ValidateHasLabel`.
fn has_label(meta: Option<&ObjectMeta>, key: &str, expected: &str, errs: &mut Vec<FieldError>) {
    let path = Path::new("spec")
        .child("template")
        .child("metadata")
        .child("labels")
        .key(key);
    let labels = meta.and_then(|m| m.labels.as_ref());
    match labels.and_then(|l| l.get(key)) {
        None => errs.push(FieldError::required(path, format!("must be '{expected}'"))),
        Some(v) if v != expected => errs.push(invalid_rendered(
            path,
            go_string_map(labels),
            format!("must be '{expected}'"),
        )),
        Some(_) => {}
    }
}

/// `ValidateJob` (object metadata is validated by the generic store).
fn validate_job(job: &Job) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = spec_of(job);
    let name = job.metadata.name.as_deref().unwrap_or("");
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    // validateGeneratedSelector.
    if spec.manual_selector != Some(true)
        && let Some(sel) = &spec.selector
    {
        if uid.is_empty() {
            errs.push(FieldError::required(Path::new("metadata").child("uid"), ""));
        }
        let meta = spec.template.metadata.as_ref();
        has_label(meta, LEGACY_CONTROLLER_UID, uid, &mut errs);
        has_label(meta, LEGACY_JOB_NAME, name, &mut errs);
        has_label(meta, CONTROLLER_UID, uid, &mut errs);
        has_label(meta, JOB_NAME, name, &mut errs);
        let expected: std::collections::BTreeMap<String, String> = [
            (CONTROLLER_UID, uid),
            (JOB_NAME, name),
            (LEGACY_CONTROLLER_UID, uid),
            (LEGACY_JOB_NAME, name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(m) = Selector::from_k8s(sel).ok()
            && !m.matches(&expected)
        {
            errs.push(invalid_rendered(
                Path::new("spec").child("selector"),
                go_label_selector(sel),
                "`selector` not auto-generated",
            ));
        }
    }
    // ValidateJobSpec.
    let path = Path::new("spec");
    errs.extend(validate_job_spec(&spec, &path));
    let sp = path.child("selector");
    match &spec.selector {
        None => errs.push(FieldError::required(&sp, "")),
        Some(sel) => errs.extend(selector::validate(sel, &sp)),
    }
    let matcher = match &spec.selector {
        None => Some(Selector::nothing()),
        Some(sel) => Selector::from_k8s(sel).ok(),
    };
    if let Some(m) = matcher
        && !m.matches(&template::labels(&spec.template))
    {
        errs.push(template::mismatch(&spec.template, &path.child("template")));
    }
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(c) = spec.completions.filter(|c| *c > 0)
    {
        let host = format!("{name}-{}", c - 1);
        if !validation::dns1123_label(&host).is_empty() {
            errs.push(FieldError::invalid(
                Path::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    errs
}

fn immutable<T: PartialEq + serde::Serialize>(
    new: &T,
    old: &T,
    path: Path,
    errs: &mut Vec<FieldError>,
) {
    if new != old {
        errs.push(FieldError::invalid(
            path,
            serde_json::to_value(new).unwrap_or_default(),
            IMMUTABLE,
        ));
    }
}

/// `ValidateJobSpecUpdate`'s immutability rules.
fn validate_update_rules(new: &Job, old: &Job) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let path = Path::new("spec");
    if spec.completion_mode.as_deref() == Some("Indexed") {
        // Elastic Indexed Jobs: completions may change together with parallelism.
        if spec.completions != old_spec.completions
            && let Some(c) = spec.completions
            && Some(c) != spec.parallelism
        {
            errs.push(FieldError::invalid(
                path.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    } else {
        immutable(
            &spec.completions,
            &old_spec.completions,
            path.child("completions"),
            &mut errs,
        );
    }
    if spec.selector != old_spec.selector {
        let shown = spec
            .selector
            .as_ref()
            .map_or_else(|| "null".to_string(), go_label_selector);
        errs.push(invalid_rendered(path.child("selector"), shown, IMMUTABLE));
    }
    // Scheduling directives of a suspended Job that never started may change.
    let mut old_template = old_spec.template.clone();
    let suspended = old_spec.suspend == Some(true);
    let not_started = old
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_none();
    if suspended && not_started {
        let (t, o) = (&spec.template, &mut old_template);
        let new_pod = t.spec.clone().unwrap_or_default();
        let old_pod = o.spec.get_or_insert_with(Default::default);
        match (&new_pod.affinity, &mut old_pod.affinity) {
            (None, Some(a)) => {
                a.node_affinity = None;
                if a.pod_affinity.is_none() && a.pod_anti_affinity.is_none() {
                    old_pod.affinity = None;
                }
            }
            (Some(n), None) => {
                old_pod.affinity = Some(k8s_openapi::api::core::v1::Affinity {
                    node_affinity: n.node_affinity.clone(),
                    ..Default::default()
                });
            }
            (Some(n), Some(a)) => a.node_affinity.clone_from(&n.node_affinity),
            (None, None) => {}
        }
        old_pod.node_selector.clone_from(&new_pod.node_selector);
        old_pod.tolerations.clone_from(&new_pod.tolerations);
        old_pod
            .scheduling_gates
            .clone_from(&new_pod.scheduling_gates);
        let meta = o.metadata.get_or_insert_with(Default::default);
        let new_meta = t.metadata.clone().unwrap_or_default();
        meta.annotations = new_meta.annotations;
        meta.labels = new_meta.labels;
    }
    immutable(
        &spec.template,
        &old_template,
        path.child("template"),
        &mut errs,
    );
    immutable(
        &spec.completion_mode,
        &old_spec.completion_mode,
        path.child("completionMode"),
        &mut errs,
    );
    immutable(
        &spec.pod_failure_policy,
        &old_spec.pod_failure_policy,
        path.child("podFailurePolicy"),
        &mut errs,
    );
    immutable(
        &spec.backoff_limit_per_index,
        &old_spec.backoff_limit_per_index,
        path.child("backoffLimitPerIndex"),
        &mut errs,
    );
    immutable(
        &spec.managed_by,
        &old_spec.managed_by,
        path.child("managedBy"),
        &mut errs,
    );
    immutable(
        &spec.success_policy,
        &old_spec.success_policy,
        path.child("successPolicy"),
        &mut errs,
    );
    errs
}

fn validate_status(s: &JobStatus, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative_opt(s.active, &path.child("active"), &mut errs);
    non_negative_opt(s.succeeded, &path.child("succeeded"), &mut errs);
    non_negative_opt(s.failed, &path.child("failed"), &mut errs);
    non_negative_opt(s.ready, &path.child("ready"), &mut errs);
    non_negative_opt(s.terminating, &path.child("terminating"), &mut errs);
    if let Some(u) = &s.uncounted_terminated_pods {
        let up = path.child("uncountedTerminatedPods");
        let mut seen = std::collections::BTreeSet::new();
        for (kind, list) in [("succeeded", &u.succeeded), ("failed", &u.failed)] {
            for (i, uid) in list.iter().flatten().enumerate() {
                let p = up.child(kind).index(i);
                if uid.is_empty() {
                    errs.push(FieldError::invalid(p, "", "must not be empty"));
                } else if !seen.insert(uid.as_str()) {
                    errs.push(FieldError::duplicate(p, uid.as_str()));
                }
            }
        }
    }
    errs
}

impl Strategy for JobStrategy {
    type Object = Job;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, job: &mut Job) {
        let spec = job.spec.get_or_insert_with(JobSpec::default);
        default_spec(spec);
        defaults::template(&mut spec.template);
        labels_from_template(job);
    }

    fn prepare_for_create(&self, job: &mut Job) {
        if spec_of(job).manual_selector != Some(true) {
            generate_selector(job);
        }
        job.status = Some(JobStatus::default());
        labels_from_template(job);
    }

    fn validate(&self, job: &Job) -> Vec<FieldError> {
        validate_job(job)
    }

    fn validate_update(&self, new: &Job, old: &Job) -> Vec<FieldError> {
        let mut errs = validate_job(new);
        errs.extend(validate_update_rules(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Job, _old: &Job) -> Vec<FieldError> {
        validate_status(
            &new.status.clone().unwrap_or_default(),
            &Path::new("status"),
        )
    }

    fn before_write(
        &self,
        new: &mut Job,
        _old: Option<&Job>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        pod_spec::check_template_quantities("Job", Some(&spec_of(new).template))
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
