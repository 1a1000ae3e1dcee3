//! batch/v1 CronJobs: defaults (Allow concurrency, not suspended, history limits 3/1, pod
//! template defaults inside the job template), schedule and time zone validation, the job
//! template rules (no selector, OnFailure/Never restarts), and a 52-character name limit so
//! the Jobs it creates (`<name>-<timestamp>`) stay within 63.

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, CronJobStatus, JobSpec};

use crate::DynStrategy;
use crate::strategy::{Adapter, Strategy};
use crate::workloads::common::{go_label_selector, invalid_rendered, non_negative_opt};
use crate::workloads::pod_spec::{self, defaults};
use crate::workloads::{cron, jobs};

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, CronJobStrategy))
}

/// The CronJob strategy.
pub struct CronJobStrategy;

/// CronJob names leave room for the 11-character suffix of the Jobs they create.
const MAX_NAME: usize = 63 - 11;

fn spec_of(c: &CronJob) -> std::borrow::Cow<'_, CronJobSpec> {
    match &c.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(CronJobSpec::default()),
    }
}

/// `validateTimeZone`.
fn time_zone(tz: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !tz.split('/').all(part_ok) {
        errs.push(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if !cron::known_time_zone(tz) {
        errs.push(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
}

/// `validateCronJobSpec`.
fn validate_spec(spec: &CronJobSpec, old: Option<&CronJobSpec>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = path.child("schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&sp, ""));
    } else {
        if let Err(e) = cron::parse(&spec.schedule) {
            errs.push(FieldError::invalid(&sp, spec.schedule.as_str(), e));
        }
        // A TZ prefix is only tolerated on objects that already had one.
        let allow_tz = old.is_some_and(|o| o.schedule.contains("TZ"));
        if allow_tz && spec.schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                &sp,
                spec.schedule.as_str(),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &sp,
                spec.schedule.as_str(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    non_negative_opt(
        spec.starting_deadline_seconds,
        &path.child("startingDeadlineSeconds"),
        &mut errs,
    );
    if let Some(tz) = &spec.time_zone
        && old.is_none_or(|o| o.time_zone.as_ref() != Some(tz))
    {
        time_zone(tz, &path.child("timeZone"), &mut errs);
    }
    let cp = path.child("concurrencyPolicy");
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&cp, "")),
        other => errs.push(FieldError::not_supported(
            &cp,
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    // ValidateJobTemplateSpec.
    let jp = path.child("jobTemplate").child("spec");
    let default = JobSpec::default();
    let job = spec.job_template.spec.as_ref().unwrap_or(&default);
    errs.extend(jobs::validate_job_spec(job, &jp));
    if let Some(sel) = &job.selector {
        errs.push(invalid_rendered(
            jp.child("selector"),
            go_label_selector(sel),
            "`selector` will be auto-generated",
        ));
    }
    if job.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            jp.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    non_negative_opt(
        spec.successful_jobs_history_limit,
        &path.child("successfulJobsHistoryLimit"),
        &mut errs,
    );
    non_negative_opt(
        spec.failed_jobs_history_limit,
        &path.child("failedJobsHistoryLimit"),
        &mut errs,
    );
    errs
}

impl Strategy for CronJobStrategy {
    type Object = CronJob;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn set_defaults(&self, c: &mut CronJob) {
        let spec = c.spec.get_or_insert_with(CronJobSpec::default);
        if spec.concurrency_policy.as_deref().unwrap_or("").is_empty() {
            spec.concurrency_policy = Some("Allow".to_string());
        }
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        let job = spec.job_template.spec.get_or_insert_with(JobSpec::default);
        defaults::template(&mut job.template);
    }

    fn prepare_for_create(&self, c: &mut CronJob) {
        c.status = Some(CronJobStatus::default());
    }

    fn validate(&self, c: &CronJob) -> Vec<FieldError> {
        let mut errs = validate_spec(&spec_of(c), None, &Path::new("spec"));
        let name = c.metadata.name.as_deref().unwrap_or("");
        if name.len() > MAX_NAME {
            errs.push(FieldError::invalid(
                Path::new("metadata").child("name"),
                name,
                format!("must be no more than {MAX_NAME} characters"),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &CronJob, old: &CronJob) -> Vec<FieldError> {
        // The name limit is not re-checked, so older long-named objects stay editable.
        validate_spec(&spec_of(new), Some(&spec_of(old)), &Path::new("spec"))
    }

    fn before_write(
        &self,
        new: &mut CronJob,
        _old: Option<&CronJob>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        let spec = spec_of(new);
        pod_spec::check_template_quantities(
            "CronJob",
            spec.job_template.spec.as_ref().map(|j| &j.template),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Arc<dyn DynStrategy> {
        super::strategy(api::resources::lookup("batch", "v1", "cronjobs").unwrap())
    }

    fn cj() -> serde_json::Value {
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "containers": [{"name": "hello", "image": "busybox:1.28"}],
                    "restartPolicy": "OnFailure"
                }}}}
            }
        })
    }

    #[test]
    fn defaults() {
        let out = strategy().admit_create(cj(), false).unwrap().object;
        let spec = &out["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        // The job template gets pod defaults but not the Job's own defaults.
        let job = &spec["jobTemplate"]["spec"];
        assert!(job.get("backoffLimit").is_none());
        assert_eq!(job["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            job["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(out["status"], json!({}));
        assert_eq!(out["metadata"]["generation"], 1);
    }

    fn causes(v: serde_json::Value) -> Vec<String> {
        let err = strategy().admit_create(v, false).unwrap_err();
        err.causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn schedule_and_zone() {
        let mut bad = cj();
        bad["spec"]["schedule"] = json!("61 * * * *");
        assert_eq!(
            causes(bad),
            [
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        let mut tz = cj();
        tz["spec"]["schedule"] = json!("CRON_TZ=UTC 0 * * * *");
        assert_eq!(
            causes(tz),
            [
                "spec.schedule: Invalid value: \"CRON_TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        let mut zone = cj();
        zone["spec"]["timeZone"] = json!("Mars/Olympus");
        assert_eq!(
            causes(zone),
            ["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"]
        );
        let mut ok = cj();
        ok["spec"]["timeZone"] = json!("Europe/Berlin");
        ok["spec"]["schedule"] = json!("@daily");
        assert!(strategy().admit_create(ok, false).is_ok());
        let mut local = cj();
        local["spec"]["timeZone"] = json!("Local");
        assert_eq!(
            causes(local),
            [
                "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
            ]
        );
    }

    #[test]
    fn template_and_name_rules() {
        let mut bad = cj();
        bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        bad["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
        bad["metadata"]["name"] = json!("x".repeat(53));
        assert_eq!(
            causes(bad),
            [
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
                "spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated",
                "metadata.name: Invalid value: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": must be no more than 52 characters",
            ]
        );
    }
}
