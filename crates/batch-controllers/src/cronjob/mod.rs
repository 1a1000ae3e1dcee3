//! The CronJob controller (upstream's `cronjob_controllerv2`).
//!
//! Guarantees:
//! * At most one Job per start time: the Job's name is `<cronjob>-<start time in minutes
//!   since the epoch>`, so a retried or duplicated sync hits AlreadyExists instead of
//!   starting a second run; `status.lastScheduleTime` records the start time handled.
//! * `status.active` lists exactly the CronJob's unfinished Jobs that it started; finished
//!   and vanished ones are removed (with `SawCompletedJob` / `MissingJob` events).
//! * Start times are evaluated in the CronJob's time zone; missed ones are caught up only
//!   once (the latest), and not at all past `startingDeadlineSeconds`.
//! * The CronJob is requeued for just after its next start time, so nothing polls.

mod schedule;

pub use schedule::{CronSchedule, Due, MAX_MISSED, ScheduleError, due};

use std::sync::Arc;

use controller_runtime::events::object_reference;
use controller_runtime::owners::{controller_of, controller_reference, is_controlled_by};
use controller_runtime::{
    Action, Context, Informer, Key, Reconcile, Recorder, WorkQueue, spawn_workers,
};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock};
use crate::job::finished;

/// The annotation carrying a Job's scheduled start time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    #[error("{action} {kind} {namespace}/{name}")]
    Api {
        action: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

fn api_error(
    action: &'static str,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> CronJobError {
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    move |source| CronJobError::Api {
        action,
        kind,
        namespace,
        name,
        source,
    }
}

/// `<cronjob>-<minutes since the epoch>` (upstream's `getJobName`).
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job a CronJob starts for `scheduled`: its template, owned by the CronJob, annotated
/// with the start time.
pub fn job_for(cj: &CronJob, sched: &CronSchedule, scheduled: Timestamp) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.to_owned(), sched.format(scheduled));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(
                cj.metadata.name.as_deref().unwrap_or_default(),
                scheduled,
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_reference(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The finished Jobs to delete to respect the history limits: the oldest (by start, then
/// creation time) beyond each limit.
pub fn beyond_history<'a>(cj: &CronJob, jobs: &[&'a Job]) -> Vec<&'a Job> {
    let spec = cj.spec.as_ref();
    let limits = [
        (
            "Complete",
            spec.and_then(|s| s.successful_jobs_history_limit),
        ),
        ("Failed", spec.and_then(|s| s.failed_jobs_history_limit)),
    ];
    let mut out = Vec::new();
    for (kind, limit) in limits {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j).is_some_and(|c| c.type_ == kind))
            .collect();
        // Upstream's `byJobStartTime`: by start time, a Job without one counting as the
        // newest, ties broken by name.
        done.sort_by_key(|j| {
            let start = j
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            (start.is_none(), start, j.metadata.name.clone())
        });
        let extra = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        out.extend(done.into_iter().take(extra));
    }
    out
}

/// Whether `job` is an unfinished Job missing from `cj`'s `status.active`.
fn unlisted(cj: &CronJob, job: &Job) -> bool {
    let juid = job.metadata.uid.as_deref();
    finished(job).is_none()
        && !cj
            .status
            .as_ref()
            .and_then(|s| s.active.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|r| r.uid.as_deref() == juid)
}

/// What to do about a due start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Its Job was started already (by name in `status.active`, or it is
    /// `lastScheduleTime`).
    AlreadyStarted,
    /// Past `startingDeadlineSeconds`: skipped, with a `MissSchedule` event.
    TooLate,
    /// `concurrencyPolicy: Forbid` and a run is still active.
    Forbidden,
    /// Start it; with `replace`, delete the active runs first (`Replace`).
    Start { replace: bool },
}

/// Upstream's checks between "a start time is due" and "create its Job", in upstream's order.
pub fn decide(cj: &CronJob, name: &str, scheduled: Timestamp, now: Timestamp) -> Decision {
    let spec = cj.spec.as_ref();
    let status = cj.status.as_ref();
    let active = status.and_then(|s| s.active.as_deref()).unwrap_or_default();
    if let Some(deadline) = spec.and_then(|s| s.starting_deadline_seconds)
        && crate::clock::add_seconds(scheduled, deadline) < now
    {
        return Decision::TooLate;
    }
    if active.iter().any(|r| r.name.as_deref() == Some(name))
        || status
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0)
            == Some(scheduled)
    {
        return Decision::AlreadyStarted;
    }
    match spec.and_then(|s| s.concurrency_policy.as_deref()) {
        Some("Forbid") if !active.is_empty() => Decision::Forbidden,
        Some("Replace") => Decision::Start {
            replace: !active.is_empty(),
        },
        _ => Decision::Start { replace: false },
    }
}

pub struct CronJobController {
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    client: kube::Client,
    recorder: Recorder,
    clock: Arc<dyn Clock>,
}

impl CronJobController {
    async fn sync(&self, key: &Key) -> Result<Action, CronJobError> {
        let Some(cached) = self.cronjobs.get(key) else {
            return Ok(Action::Done);
        };
        let mut cj = (*cached).clone();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let children: Vec<Arc<Job>> = self
            .jobs
            .list_in(&key.namespace)
            .into_iter()
            .filter(|j| is_controlled_by(&j.metadata, &uid))
            .collect();
        if children.iter().any(|j| unlisted(&cj, j)) {
            // Usually the Job this controller just created, seen before the status write
            // that lists it: read the CronJob afresh (as upstream) rather than warn about
            // it and schedule from a stale `lastScheduleTime`.
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), &key.namespace);
            match api.get_opt(&key.name).await {
                Ok(Some(fresh)) if fresh.metadata.uid.as_deref() == Some(uid.as_str()) => {
                    cj = fresh;
                }
                Ok(_) => return Ok(Action::Done),
                Err(e) => {
                    return Err(api_error("reading", "CronJob", &key.namespace, &key.name)(
                        e,
                    ));
                }
            }
        }
        let mut changed = self.reconcile_active(&mut cj, &children).await?;
        let (action, wrote) = self.schedule(key, &mut cj).await?;
        changed |= wrote;
        let refs: Vec<&Job> = children.iter().map(|j| j.as_ref()).collect();
        changed |= self.clean_history(&mut cj, &refs).await;
        if changed {
            self.write_status(key, &cj).await?;
        }
        Ok(action)
    }

    /// Brings `status.active` and `lastSuccessfulTime` in line with the Jobs. Returns whether
    /// the status changed.
    async fn reconcile_active(
        &self,
        cj: &mut CronJob,
        children: &[Arc<Job>],
    ) -> Result<bool, CronJobError> {
        let mut changed = false;
        let status = cj.status.get_or_insert_with(Default::default);
        let mut active: Vec<ObjectReference> = status.active.take().unwrap_or_default();
        let mut unexpected = Vec::new();
        let mut saw_completed = Vec::new();
        for j in children {
            let juid = j.metadata.uid.as_deref().unwrap_or_default();
            let name = j.metadata.name.clone().unwrap_or_default();
            let listed = active.iter().any(|r| r.uid.as_deref() == Some(juid));
            let done = finished(j);
            match (listed, done) {
                (false, None) => unexpected.push(name),
                (true, Some(c)) => {
                    active.retain(|r| r.uid.as_deref() != Some(juid));
                    saw_completed
                        .push(format!("Saw completed job: {name}, condition: {}", c.type_));
                    changed = true;
                }
                _ => {}
            }
            if let Some(c) = done.filter(|c| c.type_ == "Complete")
                && let Some(at) = j
                    .status
                    .as_ref()
                    .and_then(|s| s.completion_time.as_ref())
                    .or(c.last_transition_time.as_ref())
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|t| t.0 < at.0)
            {
                status.last_successful_time = Some(at.clone());
                changed = true;
            }
        }
        // A listed Job missing from the cache may just be new: ask the server before
        // dropping it.
        let ns = cj.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let mut missing = Vec::new();
        for r in &active {
            let ruid = r.uid.as_deref().unwrap_or_default();
            if children
                .iter()
                .any(|j| j.metadata.uid.as_deref() == Some(ruid))
            {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            let fresh = api
                .get_opt(&name)
                .await
                .map_err(api_error("reading", "Job", &ns, &name))?;
            if fresh.is_none_or(|j| j.metadata.uid.as_deref() != Some(ruid)) {
                missing.push(ruid.to_owned());
                self.recorder.normal(
                    &*cj,
                    "MissingJob",
                    &format!("Active job went missing: {name}"),
                );
            }
        }
        if !missing.is_empty() {
            active.retain(|r| !missing.iter().any(|m| r.uid.as_deref() == Some(m)));
            changed = true;
        }
        let status = cj.status.get_or_insert_with(Default::default);
        status.active = (!active.is_empty()).then_some(active);
        for name in unexpected {
            self.recorder.warning(
                &*cj,
                "UnexpectedJob",
                &format!("Saw a job that the controller did not create or forgot: {name}"),
            );
        }
        for m in saw_completed {
            self.recorder.normal(&*cj, "SawCompletedJob", &m);
        }
        Ok(changed)
    }

    /// Starts the Job that is due, if any. Returns when to look again and whether the
    /// status changed.
    async fn schedule(&self, key: &Key, cj: &mut CronJob) -> Result<(Action, bool), CronJobError> {
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok((Action::Done, false));
        }
        let Some(spec) = cj.spec.clone() else {
            return Ok((Action::Done, false));
        };
        if spec.suspend == Some(true) {
            return Ok((Action::Done, false));
        }
        if spec.schedule.contains("TZ") {
            self.recorder.warning(
                &*cj,
                "UnsupportedSchedule",
                &format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            );
        }
        let sched = match CronSchedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                let reason = match e {
                    ScheduleError::UnknownTimeZone { .. } => "UnknownTimeZone",
                    ScheduleError::Unparseable { .. } => "UnparseableSchedule",
                };
                self.recorder.warning(&*cj, reason, &e.to_string());
                return Ok((Action::Done, false));
            }
        };
        let now = self.clock.now();
        let status = cj.status.get_or_insert_with(Default::default);
        let earliest = status
            .last_schedule_time
            .as_ref()
            .or(cj.metadata.creation_timestamp.as_ref())
            .map_or(now, |t| t.0);
        let d = due(&sched, earliest, spec.starting_deadline_seconds, now);
        let next = d.requeue.map_or(Action::Done, Action::RequeueAfter);
        if d.missed > MAX_MISSED {
            self.recorder.warning(
                &*cj,
                "TooManyMissedTimes",
                &format!(
                    "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                    d.missed
                ),
            );
        }
        let Some(scheduled) = d.scheduled else {
            return Ok((next, false));
        };
        let name = job_name(&key.name, scheduled);
        match decide(cj, &name, scheduled, now) {
            Decision::AlreadyStarted => return Ok((next, false)),
            Decision::TooLate => {
                let at = scheduled.to_zoned(jiff::tz::TimeZone::UTC);
                self.recorder.warning(
                    &*cj,
                    "MissSchedule",
                    &format!(
                        "Missed scheduled time to start a job: {}",
                        at.strftime("%a, %d %b %Y %H:%M:%S %z")
                    ),
                );
                return Ok((next, false));
            }
            Decision::Forbidden => {
                self.recorder.normal(
                    &*cj,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid",
                );
                return Ok((next, false));
            }
            Decision::Start { replace } => {
                let active = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.active.clone())
                    .unwrap_or_default();
                if replace {
                    for r in &active {
                        self.delete_job(cj, r.name.as_deref().unwrap_or_default(), r.uid.clone())
                            .await?;
                    }
                    cj.status.get_or_insert_with(Default::default).active = None;
                }
            }
        }
        let job = job_for(cj, &sched, scheduled);
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.namespace);
        let created = match api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.recorder
                    .normal(&*cj, "SuccessfulCreate", &format!("Created job {name}"));
                j
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Created by an earlier sync whose status write was lost: take it over if it
                // is ours, otherwise fail (someone else owns the name).
                let existing = api.get(&name).await.map_err(api_error(
                    "reading",
                    "Job",
                    &key.namespace,
                    &name,
                ))?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref());
                if !ours {
                    return Err(api_error("creating", "Job", &key.namespace, &name)(
                        kube::Error::Api(e),
                    ));
                }
                existing
            }
            Err(e) => {
                self.recorder
                    .warning(&*cj, "FailedCreate", &format!("Error creating job: {e}"));
                return Err(api_error("creating", "Job", &key.namespace, &name)(e));
            }
        };
        let status = cj.status.get_or_insert_with(Default::default);
        if finished(&created).is_none() {
            status
                .active
                .get_or_insert_with(Vec::new)
                .push(object_reference(&created));
        }
        status.last_schedule_time = Some(Time(scheduled));
        Ok((next, true))
    }

    /// Deletes finished Jobs beyond the history limits. Returns whether `status.active`
    /// changed.
    async fn clean_history(&self, cj: &mut CronJob, jobs: &[&Job]) -> bool {
        let mut changed = false;
        for j in beyond_history(cj, jobs) {
            let name = j.metadata.name.clone().unwrap_or_default();
            let uid = j.metadata.uid.clone();
            if let Err(e) = self.delete_job(cj, &name, uid.clone()).await {
                // Retried at the next sync; history cleanup never blocks scheduling.
                let cronjob = format!(
                    "{}/{}",
                    cj.metadata.namespace.as_deref().unwrap_or_default(),
                    cj.metadata.name.as_deref().unwrap_or_default()
                );
                tracing::warn!(error = %e, %cronjob, job = %name, "could not delete an old Job of a CronJob");
                continue;
            }
            if let Some(active) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
                let before = active.len();
                active.retain(|r| r.uid != uid);
                changed |= active.len() != before;
            }
        }
        changed
    }

    async fn delete_job(
        &self,
        cj: &CronJob,
        name: &str,
        uid: Option<String>,
    ) -> Result<(), CronJobError> {
        let ns = cj.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(kube::api::Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {
                self.recorder
                    .normal(cj, "SuccessfulDelete", &format!("Deleted job {name}"));
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedDelete", &format!("Deleted job: {e}"));
                Err(api_error("deleting", "Job", ns, name)(e))
            }
        }
    }

    async fn write_status(&self, key: &Key, cj: &CronJob) -> Result<(), CronJobError> {
        let api: Api<CronJob> = Api::namespaced(self.client.clone(), &key.namespace);
        api.replace_status(&key.name, &PostParams::default(), cj)
            .await
            .map_err(api_error(
                "writing the status of",
                "CronJob",
                &key.namespace,
                &key.name,
            ))?;
        Ok(())
    }
}

struct Reconciler(Arc<CronJobController>);

#[async_trait::async_trait]
impl Reconcile for Reconciler {
    type Error = CronJobError;

    async fn reconcile(&self, key: &Key) -> Result<Action, CronJobError> {
        self.0.sync(key).await
    }
}

/// Starts the CronJob controller for one leadership term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    start_with_clock(ctx, tasks, Arc::new(SystemClock));
}

/// [`start`] with another clock (tests).
pub fn start_with_clock(ctx: &Context, tasks: &mut JoinSet<()>, clock: Arc<dyn Clock>) {
    let controller = Arc::new(CronJobController {
        cronjobs: ctx.informers.get::<CronJob>(),
        jobs: ctx.informers.get::<Job>(),
        client: ctx.client.clone(),
        recorder: ctx.events.recorder("cronjob-controller"),
        clock,
    });
    let queue = WorkQueue::<Key>::new();
    {
        let q = queue.clone();
        controller
            .cronjobs
            .on_change(move |c| q.add(Key::of(c.object().as_ref())));
    }
    {
        let q = queue.clone();
        controller.jobs.on_change(move |c| {
            let job = c.object();
            if let Some(r) = controller_of(&job.metadata).filter(|r| r.kind == "CronJob") {
                let ns = job.metadata.namespace.as_deref().unwrap_or_default();
                q.add(Key::new(ns, &r.name));
            }
        });
    }
    spawn_workers(
        "cronjob",
        Arc::new(Reconciler(controller)),
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        CronJobSpec, JobCondition, JobSpec, JobStatus, JobTemplateSpec,
    };

    fn cronjob() -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("backup".into()),
                namespace: Some("ns".into()),
                uid: Some("cj-uid".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "*/5 * * * *".into(),
                successful_jobs_history_limit: Some(2),
                failed_jobs_history_limit: Some(1),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "backup".to_string())].into()),
                        annotations: Some([("note".to_string(), "x".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(JobSpec {
                        backoff_limit: Some(2),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn jobs_are_named_by_their_start_minute_and_owned() {
        let cj = cronjob();
        let sched = CronSchedule::parse("*/5 * * * *", Some("UTC")).unwrap();
        let at: Timestamp = "2025-01-01T10:05:00Z".parse().unwrap();
        let job = job_for(&cj, &sched, at);
        assert_eq!(job.metadata.name.as_deref(), Some("backup-28928765"));
        assert_eq!(at.as_second() / 60, 28_928_765);
        let ann = job.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[SCHEDULED_TIMESTAMP], "2025-01-01T10:05:00Z");
        assert_eq!(ann["note"], "x");
        assert_eq!(job.metadata.labels.as_ref().unwrap()["app"], "backup");
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("CronJob", "cj-uid")
        );
        assert_eq!(job.spec.unwrap().backoff_limit, Some(2));
    }

    fn finished_job(name: &str, kind: &str, start: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(JobStatus {
                start_time: Some(Time(start.parse().unwrap())),
                conditions: (!kind.is_empty()).then(|| {
                    vec![JobCondition {
                        type_: kind.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn due_start_times_pass_upstreams_checks_in_order() {
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let scheduled = at("2025-01-01T10:05:00Z");
        let now = at("2025-01-01T10:05:30Z");
        let with =
            |policy: Option<&str>, active: &[&str], last: Option<&str>, deadline: Option<i64>| {
                let mut cj = cronjob();
                let spec = cj.spec.as_mut().unwrap();
                spec.concurrency_policy = policy.map(Into::into);
                spec.starting_deadline_seconds = deadline;
                cj.status = Some(k8s_openapi::api::batch::v1::CronJobStatus {
                    active: (!active.is_empty()).then(|| {
                        active
                            .iter()
                            .map(|n| ObjectReference {
                                name: Some(n.to_string()),
                                ..Default::default()
                            })
                            .collect()
                    }),
                    last_schedule_time: last.map(|t| Time(at(t))),
                    ..Default::default()
                });
                decide(&cj, "backup-28928765", scheduled, now)
            };
        let cases = [
            (
                with(None, &[], None, None),
                Decision::Start { replace: false },
            ),
            (
                with(Some("Allow"), &["old"], None, None),
                Decision::Start { replace: false },
            ),
            (
                with(Some("Forbid"), &["old"], None, None),
                Decision::Forbidden,
            ),
            (
                with(Some("Forbid"), &[], None, None),
                Decision::Start { replace: false },
            ),
            (
                with(Some("Replace"), &["old"], None, None),
                Decision::Start { replace: true },
            ),
            (
                with(Some("Replace"), &[], None, None),
                Decision::Start { replace: false },
            ),
            (
                with(None, &["backup-28928765"], None, None),
                Decision::AlreadyStarted,
            ),
            (
                with(None, &[], Some("2025-01-01T10:05:00Z"), None),
                Decision::AlreadyStarted,
            ),
            (
                with(None, &[], Some("2025-01-01T10:00:00Z"), None),
                Decision::Start { replace: false },
            ),
            (
                with(Some("Forbid"), &["old"], None, Some(10)),
                Decision::TooLate,
            ),
            (
                with(None, &[], None, Some(30)),
                Decision::Start { replace: false },
            ),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn only_unfinished_jobs_missing_from_active_are_unlisted() {
        let mut cj = cronjob();
        let mut running = finished_job("run", "", "2025-01-01T00:00:00Z");
        running.metadata.uid = Some("j1".into());
        let mut done = finished_job("done", "Complete", "2025-01-01T00:00:00Z");
        done.metadata.uid = Some("j2".into());
        assert!(unlisted(&cj, &running));
        assert!(!unlisted(&cj, &done));
        cj.status = Some(k8s_openapi::api::batch::v1::CronJobStatus {
            active: Some(vec![ObjectReference {
                uid: Some("j1".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(!unlisted(&cj, &running));
    }

    #[test]
    fn history_limits_delete_the_oldest_finished_jobs() {
        let cj = cronjob();
        let jobs = [
            finished_job("s3", "Complete", "2025-01-01T03:00:00Z"),
            finished_job("s1", "Complete", "2025-01-01T01:00:00Z"),
            finished_job("s2", "Complete", "2025-01-01T02:00:00Z"),
            finished_job("f1", "Failed", "2025-01-01T01:30:00Z"),
            finished_job("f2", "Failed", "2025-01-01T02:30:00Z"),
            finished_job("running", "", "2025-01-01T00:00:00Z"),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        let names: Vec<&str> = beyond_history(&cj, &refs)
            .iter()
            .map(|j| j.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["s1", "f1"]);
        // A Job without a start time counts as the newest (kept); equal times go by name.
        let mut unstarted = finished_job("s0", "Complete", "2025-01-01T00:00:00Z");
        if let Some(st) = unstarted.status.as_mut() {
            st.start_time = None;
        }
        let twin = finished_job("s2b", "Complete", "2025-01-01T02:00:00Z");
        let more: Vec<&Job> = refs.iter().copied().chain([&unstarted, &twin]).collect();
        let names: Vec<&str> = beyond_history(&cj, &more)
            .iter()
            .map(|j| j.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["s1", "s2", "s2b", "f1"]);
        let mut unlimited = cronjob();
        if let Some(s) = unlimited.spec.as_mut() {
            s.successful_jobs_history_limit = None;
            s.failed_jobs_history_limit = None;
        }
        assert!(beyond_history(&unlimited, &refs).is_empty());
    }
}
