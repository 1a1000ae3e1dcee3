//! batch/v1: Jobs (`NAME STATUS COMPLETIONS DURATION AGE`) and CronJobs.
//!
//! A Job's STATUS is its first decisive condition in upstream's order: Complete, Failed, then
//! Terminating (deletion requested), Suspended, FailureTarget, and Running otherwise.

use std::sync::LazyLock;

use k8s_openapi::api::batch::v1::{CronJobSpec, CronJobStatus, JobSpec, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::duration::human_duration;
use crate::format;
use crate::kinds::apps::template_containers;
use crate::table::{Ctx, Printer, Row, TableError, count, decode, name, s};
use crate::view::{ConditionView, Meta, TemplateView, condition_true};

static JOB_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::string("Status", "Status of the job."),
        Column::string("Completions", doc::<JobStatus>("succeeded")),
        Column::string("Duration", "Time required to complete the job."),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<JobSpec>("selector")).wide(),
    ])
});

pub(crate) static JOB: Printer = Printer {
    columns: &JOB_COLUMNS,
    row: job_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct JobView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: JobSpecView<'a>,
    #[serde(borrow)]
    status: JobStatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct JobSpecView<'a> {
    completions: Option<i32>,
    parallelism: Option<i32>,
    selector: Option<LabelSelector>,
    #[serde(borrow)]
    template: Option<TemplateView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct JobStatusView<'a> {
    succeeded: i32,
    start_time: Option<Time>,
    completion_time: Option<Time>,
    #[serde(borrow)]
    conditions: Vec<ConditionView<'a>>,
}

fn job_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let job: JobView<'_> = decode(obj, "Job")?;
    let spec = &job.spec;
    let status = &job.status;
    let succeeded = status.succeeded;
    let completions = match (spec.completions, spec.parallelism.unwrap_or(0)) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (&status.start_time, &status.completion_time) {
        (None, _) => String::new(),
        (Some(start), None) => ctx.since_ts(start.0),
        (Some(start), Some(done)) => human_duration(done.0.duration_since(start.0)),
    };
    let conditions = status.conditions.as_slice();
    let state = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = template_containers(spec.template.as_ref());
    Ok(vec![
        name(&job.metadata),
        s(state),
        s(completions),
        s(duration),
        ctx.age(&job.metadata),
        names,
        images,
        s(format::label_selector(spec.selector.as_ref())),
    ]
    .into())
}

static CRON_JOB_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    let [c, i] = columns::containers_images();
    columns::to_json([
        columns::name(),
        Column::string("Schedule", doc::<CronJobSpec>("schedule")),
        Column::string("Timezone", doc::<CronJobSpec>("timeZone")),
        Column::new("Suspend", "boolean", doc::<CronJobSpec>("suspend")),
        Column::new("Active", "integer", doc::<CronJobStatus>("active")),
        Column::string("Last Schedule", doc::<CronJobStatus>("lastScheduleTime")),
        columns::age(),
        c,
        i,
        Column::string("Selector", doc::<JobSpec>("selector")).wide(),
    ])
});

pub(crate) static CRON_JOB: Printer = Printer {
    columns: &CRON_JOB_COLUMNS,
    row: cron_job_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct CronJobView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: CronJobSpecView<'a>,
    status: CronJobStatusView,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CronJobSpecView<'a> {
    schedule: Option<&'a str>,
    time_zone: Option<&'a str>,
    suspend: Option<bool>,
    #[serde(borrow)]
    job_template: JobTemplateView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct JobTemplateView<'a> {
    #[serde(borrow)]
    spec: JobSpecView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CronJobStatusView {
    active: Vec<IgnoredAny>,
    last_schedule_time: Option<Time>,
}

fn cron_job_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let cj: CronJobView<'_> = decode(obj, "CronJob")?;
    let spec = &cj.spec;
    let last_schedule = match &cj.status.last_schedule_time {
        Some(t) => ctx.since_ts(t.0),
        None => "<none>".to_string(),
    };
    let job_spec = &spec.job_template.spec;
    let (names, images) = template_containers(job_spec.template.as_ref());
    // `suspend` defaults to false on the server, so a stored CronJob always has it.
    let suspend = Some(spec.suspend.unwrap_or(false));
    Ok(vec![
        name(&cj.metadata),
        s(spec.schedule.unwrap_or_default()),
        s(spec.time_zone.unwrap_or("<none>")),
        s(format::bool_ptr(suspend)),
        count(cj.status.active.len()),
        s(last_schedule),
        ctx.age(&cj.metadata),
        names,
        images,
        s(format::label_selector(job_spec.selector.as_ref())),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::kinds::testutil::{ago, cells, header_line};

    fn job(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                           "restartPolicy": "Never"}});
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}});
        json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)}, "spec": spec, "status": status})
    }

    #[test]
    fn job_columns() {
        assert_eq!(
            header_line("batch", "v1", "Job"),
            "NAME STATUS COMPLETIONS DURATION AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
    }

    #[test]
    fn complete_job() {
        let j = job(
            json!({"completions": 1, "parallelism": 1}),
            json!({"succeeded": 1, "startTime": ago(600), "completionTime": ago(553),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                  {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            cells("batch", "v1", "Job", j),
            json!([
                "pi",
                "Complete",
                "1/1",
                "47s",
                "10m",
                "pi",
                "perl:5.34",
                "batch.kubernetes.io/controller-uid=abc"
            ])
        );
    }

    #[test]
    fn running_and_parallel_jobs() {
        let j = job(
            json!({"completions": 5, "parallelism": 2}),
            json!({"succeeded": 2, "active": 2, "startTime": ago(150)}),
        );
        let c = cells("batch", "v1", "Job", j);
        assert_eq!(c[1], "Running");
        assert_eq!(c[2], "2/5");
        assert_eq!(c[3], "2m30s");

        let work_queue = job(json!({"parallelism": 3}), json!({}));
        let c = cells("batch", "v1", "Job", work_queue);
        assert_eq!(c[2], "0/1 of 3");
        assert_eq!(c[3], "");
        let single = job(json!({}), json!({}));
        assert_eq!(cells("batch", "v1", "Job", single)[2], "0/1");
    }

    #[test]
    fn job_states() {
        let with = |conds: Value| job(json!({"completions": 1}), json!({"conditions": conds}));
        let state = |j: Value| cells("batch", "v1", "Job", j)[1].clone();
        assert_eq!(
            state(with(json!([{"type": "FailureTarget", "status": "True"},
                              {"type": "Failed", "status": "True"}]))),
            "Failed"
        );
        assert_eq!(
            state(with(json!([{"type": "Suspended", "status": "True"}]))),
            "Suspended"
        );
        assert_eq!(
            state(with(json!([{"type": "FailureTarget", "status": "True"}]))),
            "FailureTarget"
        );
        assert_eq!(
            state(with(json!([{"type": "Complete", "status": "False"}]))),
            "Running"
        );
        let mut deleting = with(json!([{"type": "Suspended", "status": "True"}]));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(state(deleting), "Terminating");
    }

    #[test]
    fn cron_job() {
        assert_eq!(
            header_line("batch", "v1", "CronJob"),
            "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE [CONTAINERS] [IMAGES] [SELECTOR]"
        );
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": ago(3 * 3600)},
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                         {"name": "hello", "image": "busybox:1.28"}]}}}}},
            "status": {"active": [{"name": "hello-1", "namespace": "default"}], "lastScheduleTime": ago(30)},
        });
        assert_eq!(
            cells("batch", "v1", "CronJob", cj),
            json!([
                "hello",
                "*/1 * * * *",
                "<none>",
                "False",
                1,
                "30s",
                "3h",
                "hello",
                "busybox:1.28",
                "<none>"
            ])
        );
        let never = json!({
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "suspend": true,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
        });
        let c = cells("batch", "v1", "CronJob", never);
        assert_eq!(c[2], "Europe/Berlin");
        assert_eq!(c[3], "True");
        assert_eq!(c[4], 0);
        assert_eq!(c[5], "<none>");
    }
}
