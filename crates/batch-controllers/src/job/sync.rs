//! One Job sync (upstream's `syncJob` and `manageJob`): count what the pods did, decide
//! whether the Job has finished, create or delete pods to match the wanted parallelism,
//! then hand over to [`super::track`] to write status and release finalizers.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{Action, Key};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, PodFailurePolicy};
use k8s_openapi::api::core::v1::Pod;

use super::backoff::Record;
use super::conditions::{self, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED};
use super::failure_policy::{self, Verdict};
use super::indexes::Intervals;
use super::pods;
use super::{JobController, JobError};
use crate::clock::{add_seconds, until};

/// At most this many pods are created or deleted in one sync (upstream's
/// `MaxPodCreateDeletePerSync`).
pub(super) const MAX_PODS_PER_SYNC: usize = 500;

/// `spec.managedBy` of Jobs this controller runs (unset means the same).
pub(super) const MANAGED_BY_JOB_CONTROLLER: &str = "kubernetes.io/job-controller";

/// The spec fields a sync reads, with the API server's defaults applied.
pub(super) struct Params<'a> {
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub backoff_limit: i32,
    pub indexed: bool,
    pub suspended: bool,
    /// `podReplacementPolicy: Failed` (the default with a pod failure policy): terminating
    /// pods are neither replaced nor counted as failed until they are.
    pub only_replace_failed: bool,
    pub active_deadline: Option<i64>,
    pub failure_policy: Option<&'a PodFailurePolicy>,
    pub restart_on_failure: bool,
}

impl<'a> Params<'a> {
    pub fn of(spec: &'a JobSpec) -> Params<'a> {
        let failure_policy = spec.pod_failure_policy.as_ref();
        Params {
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            suspended: spec.suspend == Some(true),
            only_replace_failed: failure_policy.is_some()
                || spec.pod_replacement_policy.as_deref() == Some("Failed"),
            active_deadline: spec.active_deadline_seconds,
            failure_policy,
            restart_on_failure: spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref())
                == Some("OnFailure"),
        }
    }

    /// A valid completion index of an Indexed Job's pod.
    pub fn valid_index(&self, p: &Pod) -> Option<i32> {
        let i = pods::completion_index(p)?;
        (i < self.completions.unwrap_or(0)).then_some(i)
    }

    /// Whether `p` counts as failed: phase Failed, or (unless only failed pods are
    /// replaced) deleted before it could succeed.
    pub fn is_failed(&self, p: &Pod) -> bool {
        pods::is_phase_failed(p)
            || (!self.only_replace_failed && pods::is_deleting(p) && !pods::is_succeeded(p))
    }

    /// What the pod failure policy says about a failed pod.
    pub fn verdict(&self, p: &Pod) -> Verdict {
        match self.failure_policy {
            Some(policy) if pods::is_phase_failed(p) => failure_policy::check(policy, p),
            _ => Verdict::NoMatch,
        }
    }
}

/// Everything one sync computes, shared with the status tracking step.
pub(super) struct SyncState<'a> {
    pub key: &'a Key,
    pub job: Job,
    pub params: Params<'a>,
    pub pods: Vec<Arc<Pod>>,
    pub expected_rm: HashSet<String>,
    pub uncounted_succeeded: HashSet<String>,
    pub uncounted_failed: HashSet<String>,
    pub finished: Option<JobCondition>,
    pub prev_succeeded_indexes: Intervals,
    pub succeeded_indexes: Intervals,
    pub terminating: i32,
    pub backoff: Record,
    pub now: Timestamp,
}

/// Counters after the pods' changes since the last status write.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub active: i32,
    pub ready: i32,
    pub terminating: i32,
    pub succeeded: i32,
    pub failed: i32,
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Pods with the finalizer that are not yet in the uncounted lists (nor being released) and
/// for which `filter` holds.
fn newly_finished<'p>(
    s: &SyncState<'_>,
    pods: &'p [Arc<Pod>],
    uncounted: &HashSet<String>,
    filter: impl Fn(&Pod) -> bool,
) -> Vec<&'p Pod> {
    pods.iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            pods::has_tracking_finalizer(p)
                && !uncounted.contains(uid)
                && !s.expected_rm.contains(uid)
                && (!s.params.indexed || s.params.valid_index(p).is_some())
                && filter(p)
        })
        .collect()
}

/// Failed pods sorted before by a pod failure policy's `FailJob` rule: the first message.
fn fail_job_message(params: &Params<'_>, pods: &[Arc<Pod>]) -> Option<String> {
    params.failure_policy?;
    pods.iter().find_map(|p| match params.verdict(p) {
        Verdict::FailJob(m) if params.is_failed(p) => Some(m),
        _ => None,
    })
}

/// Whether restarts of `OnFailure` pods already exhaust the backoff limit.
fn past_backoff_limit_on_failure(params: &Params<'_>, pods: &[Arc<Pod>]) -> bool {
    if !params.restart_on_failure {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        // Upstream counts the restarts of Running and Pending pods only.
        .filter(|s| matches!(s.phase.as_deref(), Some("Running" | "Pending")))
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .fold(0i32, |a, b| a.saturating_add(b));
    if params.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= params.backoff_limit
    }
}

/// Which active pods to delete when `remove_at_least` must go: for Indexed Jobs first those
/// with a missing, out-of-range or duplicated index; then the least advanced (unscheduled,
/// pending, not ready, newest) first.
pub(super) fn pods_for_removal<'p>(
    params: &Params<'_>,
    active: &[&'p Pod],
    remove_at_least: usize,
) -> Vec<&'p Pod> {
    let mut remove = Vec::new();
    let mut keep: Vec<&Pod> = Vec::new();
    if params.indexed {
        let mut seen: BTreeMap<i32, &Pod> = BTreeMap::new();
        for p in active {
            match params.valid_index(p) {
                None => remove.push(*p),
                Some(i) => match seen.get(&i) {
                    // Keep the more advanced of two pods with one index.
                    Some(other) if rank(p) > rank(other) => {
                        remove.push(*other);
                        seen.insert(i, p);
                    }
                    Some(_) => remove.push(*p),
                    None => {
                        seen.insert(i, p);
                    }
                },
            }
        }
        keep.extend(seen.into_values());
    } else {
        keep.extend(active.iter().copied());
    }
    if remove.len() < remove_at_least {
        keep.sort_by_key(|p| rank(p));
        let more = remove_at_least - remove.len();
        remove.extend(keep.into_iter().take(more));
    }
    remove
}

/// How far along a pod is (upstream's `ActivePods` ordering, low = delete first): scheduled,
/// running, ready, then older.
fn rank(p: &Pod) -> (bool, bool, bool, std::cmp::Reverse<Option<Timestamp>>) {
    let scheduled = p
        .spec
        .as_ref()
        .is_some_and(|s| s.node_name.as_deref().is_some_and(|n| !n.is_empty()));
    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        scheduled,
        running,
        pods::is_ready(p),
        std::cmp::Reverse(created),
    )
}

impl JobController {
    pub(super) async fn sync(&self, key: &Key) -> Result<Action, JobError> {
        let Some(shared) = self.jobs.get(key) else {
            self.expectations.delete(key);
            self.finalizers.delete(key);
            self.backoff.remove(key);
            return Ok(Action::Done);
        };
        if conditions::finished(&shared).is_some() {
            self.backoff.remove(key);
            return Ok(Action::Done);
        }
        let Some(spec) = shared.spec.as_ref() else {
            return Ok(Action::Done);
        };
        if spec
            .managed_by
            .as_deref()
            .is_some_and(|m| m != MANAGED_BY_JOB_CONTROLLER)
        {
            // Another controller runs this Job (`spec.managedBy`); hands off.
            return Ok(Action::Done);
        }
        if let Some(mode) = spec.completion_mode.as_deref()
            && mode != "NonIndexed"
            && mode != "Indexed"
        {
            self.recorder.warning(
                shared.as_ref(),
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown",
            );
            return Ok(Action::Done);
        }
        let params = Params::of(spec);
        let now = self.clock.now();
        let mut job = (*shared).clone();
        let status = job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let uncounted_succeeded: HashSet<String> =
            uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> =
            uncounted.failed.iter().flatten().cloned().collect();

        // Expectations are read before the pods, so a pod arriving in between only makes
        // this sync more careful, never less.
        let satisfied = self.expectations.satisfied(key);
        let pods = self.pods_for(key, &shared).await?;
        let mut s = SyncState {
            key,
            params,
            pods,
            expected_rm: self.finalizers.expected(key),
            uncounted_succeeded,
            uncounted_failed,
            finished: None,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            terminating: 0,
            backoff: Record::default(),
            now,
            job: Job::default(),
        };
        let active: Vec<Arc<Pod>> = s
            .pods
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let mut counts = Counts {
            active: len_i32(active.len()),
            ready: len_i32(active.iter().filter(|p| pods::is_ready(p)).count()),
            terminating: len_i32(s.pods.iter().filter(|p| pods::is_terminating(p)).count()),
            ..Counts::default()
        };
        let new_succeeded = newly_finished(&s, &s.pods, &s.uncounted_succeeded, pods::is_succeeded);
        let new_failed =
            newly_finished(&s, &s.pods, &s.uncounted_failed, |p| s.params.is_failed(p));
        let counted_failures = new_failed
            .iter()
            .filter(|p| s.params.verdict(p).counts())
            .count();
        let status = job.status.get_or_insert_with(Default::default);
        counts.succeeded = status
            .succeeded
            .unwrap_or(0)
            .saturating_add(len_i32(new_succeeded.len()))
            .saturating_add(len_i32(s.uncounted_succeeded.len()));
        counts.failed = status
            .failed
            .unwrap_or(0)
            .saturating_add(len_i32(counted_failures))
            .saturating_add(len_i32(s.uncounted_failed.len()));
        if status.start_time.is_none() && !s.params.suspended {
            status.start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        }
        let start_time = status.start_time.as_ref().map(|t| t.0);
        s.backoff = self.backoff.get(key).observe(&new_succeeded, &new_failed);
        let conds = status.conditions.clone().unwrap_or_default();

        let mut requeue: Option<Duration> = None;
        // A decision taken by an earlier sync stands.
        s.finished = conditions::find(&conds, SUCCESS_CRITERIA_MET)
            .filter(|c| c.status == "True")
            .cloned();
        if s.finished.is_none() {
            if let Some(target) =
                conditions::find(&conds, FAILURE_TARGET).filter(|c| c.status == "True")
            {
                s.finished = Some(conditions::new(
                    conditions::FAILED,
                    "True",
                    target.reason.as_deref().unwrap_or_default(),
                    target.message.as_deref().unwrap_or_default(),
                    now,
                ));
            } else if let Some(message) = fail_job_message(&s.params, &s.pods) {
                s.finished = Some(conditions::new(
                    FAILURE_TARGET,
                    "True",
                    "PodFailurePolicy",
                    &message,
                    now,
                ));
            }
        }
        if s.finished.is_none() {
            let deadline_at = s
                .params
                .active_deadline
                .zip(start_time)
                .filter(|_| !s.params.suspended)
                .map(|(secs, start)| add_seconds(start, secs));
            if counts.failed > s.params.backoff_limit
                || past_backoff_limit_on_failure(&s.params, &s.pods)
            {
                s.finished = Some(conditions::new(
                    FAILURE_TARGET,
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ));
            } else if let Some(at) = deadline_at {
                if now >= at {
                    s.finished = Some(conditions::new(
                        FAILURE_TARGET,
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        now,
                    ));
                } else {
                    requeue = Some(until(now, at));
                }
            }
        }
        if s.params.indexed {
            let completions = s.params.completions.unwrap_or(0);
            s.prev_succeeded_indexes = Intervals::parse(
                status.completed_indexes.as_deref().unwrap_or_default(),
                completions,
            );
            let fresh: Vec<i32> = s
                .pods
                .iter()
                .filter(|p| pods::is_succeeded(p) && pods::has_tracking_finalizer(p))
                .filter_map(|p| s.params.valid_index(p))
                .collect();
            s.succeeded_indexes = s.prev_succeeded_indexes.with(&fresh);
            counts.succeeded = s.succeeded_indexes.total();
            if s.finished.is_none()
                && let Some(policy) = spec.success_policy.as_ref()
                && let Some(message) =
                    super::success_policy::matched(policy, completions, &s.succeeded_indexes)
            {
                s.finished = Some(conditions::new(
                    SUCCESS_CRITERIA_MET,
                    "True",
                    "SuccessPolicy",
                    &message,
                    now,
                ));
            }
        }

        let old_active = status.active.unwrap_or(0);
        let old_ready = status.ready;
        let old_terminating = status.terminating;
        s.job = job;
        let active_refs: Vec<&Pod> = active.iter().map(|p| p.as_ref()).collect();
        let mut suspend_changed = false;
        let mut manage_error = None;
        if s.finished.is_some() {
            let (deleted_ready, deleted, err) = self.delete_active(&s.job, &active_refs).await;
            if deleted != active_refs.len() || !satisfied {
                // Not final yet: pods may still be missing from the cache or running.
                s.finished = None;
            }
            counts.active -= len_i32(deleted);
            counts.terminating += len_i32(deleted);
            counts.ready -= deleted_ready;
            manage_error = err;
        } else {
            let mut managed = false;
            if satisfied && s.job.metadata.deletion_timestamp.is_none() {
                let (wait, err) = self.manage(&s, &active_refs, &mut counts).await;
                requeue = min_duration(requeue, wait);
                manage_error = err;
                managed = true;
            }
            let complete = match s.params.completions {
                None => counts.succeeded > 0 && counts.active == 0,
                Some(c) => counts.succeeded >= c && counts.active == 0,
            };
            if complete {
                s.finished = Some(conditions::new(
                    SUCCESS_CRITERIA_MET,
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
            } else if managed {
                let status = s.job.status.get_or_insert_with(Default::default);
                let list = status.conditions.get_or_insert_with(Vec::new);
                let event = if s.params.suspended {
                    conditions::ensure(
                        list,
                        SUSPENDED,
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        now,
                    )
                    .then_some(("Suspended", "Job suspended"))
                } else {
                    conditions::ensure(list, SUSPENDED, "False", "JobResumed", "Job resumed", now)
                        .then_some(("Resumed", "Job resumed"))
                };
                if let Some((reason, message)) = event {
                    suspend_changed = true;
                    if !s.params.suspended {
                        // activeDeadlineSeconds counts continuous activity: a resume
                        // restarts it.
                        status.start_time =
                            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
                    }
                    self.recorder.normal(&s.job, reason, message);
                }
            }
        }
        s.terminating = counts.terminating;
        let status = s.job.status.get_or_insert_with(Default::default);
        let needs_flush = suspend_changed
            || counts.active != old_active
            || Some(counts.ready) != old_ready
            || Some(counts.terminating) != old_terminating;
        status.active = Some(counts.active);
        status.ready = Some(counts.ready);
        status.terminating = Some(counts.terminating);
        let track_requeue = self.track(&mut s, needs_flush).await?;
        if let Some(e) = manage_error {
            return Err(e);
        }
        Ok(match min_duration(requeue, track_requeue) {
            Some(d) => Action::RequeueAfter(d),
            None => Action::Done,
        })
    }

    /// Creates or deletes pods so the Job runs as many as it should. Returns a delay after
    /// which to look again (pod failure backoff) and the first error.
    async fn manage(
        &self,
        s: &SyncState<'_>,
        active: &[&Pod],
        counts: &mut Counts,
    ) -> (Option<Duration>, Option<JobError>) {
        let p = &s.params;
        if p.suspended {
            let (ready, removed, err) = self.delete_job_pods(s, active).await;
            counts.active -= len_i32(removed);
            counts.terminating += len_i32(removed);
            counts.ready -= ready;
            return (None, err);
        }
        let want = match p.completions {
            // Without completions, one success ends the Job: keep what runs, start nothing.
            None if counts.succeeded > 0 => counts.active,
            None => p.parallelism,
            Some(c) => c.saturating_sub(counts.succeeded).clamp(0, p.parallelism),
        };
        let remove_at_least = usize::try_from(counts.active - want).unwrap_or(0);
        let mut remove = pods_for_removal(p, active, remove_at_least);
        remove.truncate(MAX_PODS_PER_SYNC);
        if !remove.is_empty() {
            // Deletions and creations never mix in one sync; deleting comes first.
            let (ready, removed, err) = self.delete_job_pods(s, &remove).await;
            counts.active -= len_i32(removed);
            counts.terminating += len_i32(removed);
            counts.ready -= ready;
            return (None, err);
        }
        let terminating = if p.only_replace_failed {
            counts.terminating
        } else {
            0
        };
        let diff = want - terminating - counts.active;
        if diff <= 0 {
            return (None, None);
        }
        let wait = s.backoff.remaining(s.now);
        if !wait.is_zero() {
            return (Some(wait), None);
        }
        let mut n = usize::try_from(diff).unwrap_or(0).min(MAX_PODS_PER_SYNC);
        let indexes: Vec<Option<i32>> = if p.indexed {
            let taken: BTreeSet<i32> = active
                .iter()
                .filter_map(|x| p.valid_index(x))
                .chain(
                    // Terminating pods still hold their index when only failed pods are replaced.
                    s.pods
                        .iter()
                        .filter(|x| p.only_replace_failed && pods::is_terminating(x))
                        .filter_map(|x| p.valid_index(x)),
                )
                .collect();
            let pending = s
                .succeeded_indexes
                .first_pending(&taken, n, p.completions.unwrap_or(0));
            n = pending.len();
            pending.into_iter().map(Some).collect()
        } else {
            vec![None; n]
        };
        if n == 0 {
            return (None, None);
        }
        self.expectations.expect(s.key, n, []);
        let (created, err) = self.create_pods(s, &indexes).await;
        counts.active += len_i32(created);
        (None, err)
    }
}

fn min_duration(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, index: Option<&str>, node: bool, phase: &str, ready: bool, age: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: index
                    .map(|i| [(pods::COMPLETION_INDEX.to_string(), i.to_string())].into()),
                creation_timestamp: Some(Time(Timestamp::from_second(1_000_000 - age).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.then(|| "n1".to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn names(v: Vec<&Pod>) -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn scale_down_removes_the_least_advanced_pods_first() {
        let spec = JobSpec::default();
        let p = Params::of(&spec);
        let pods = [
            pod("ready", None, true, "Running", true, 50),
            pod("pending", None, false, "Pending", false, 10),
            pod("running-old", None, true, "Running", false, 100),
            pod("running-new", None, true, "Running", false, 5),
            pod("scheduled", None, true, "Pending", false, 20),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            names(pods_for_removal(&p, &refs, 4)),
            ["pending", "scheduled", "running-new", "running-old"]
        );
        assert!(pods_for_removal(&p, &refs, 0).is_empty());
    }

    #[test]
    fn indexed_jobs_drop_duplicate_and_invalid_indexes_first() {
        let spec = JobSpec {
            completions: Some(3),
            completion_mode: Some("Indexed".into()),
            ..Default::default()
        };
        let p = Params::of(&spec);
        let pods = [
            pod("a0", Some("0"), true, "Running", true, 10),
            pod("b0", Some("0"), false, "Pending", false, 5),
            pod("c1", Some("1"), true, "Running", false, 10),
            pod("d7", Some("7"), true, "Running", true, 10),
            pod("none", None, true, "Running", true, 10),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(names(pods_for_removal(&p, &refs, 0)), ["b0", "d7", "none"]);
        assert_eq!(
            names(pods_for_removal(&p, &refs, 4)),
            ["b0", "d7", "none", "c1"]
        );
    }

    #[test]
    fn only_running_and_pending_restarts_count_against_the_backoff_limit() {
        use k8s_openapi::api::core::v1::ContainerStatus;
        let spec = JobSpec {
            backoff_limit: Some(2),
            template: k8s_openapi::api::core::v1::PodTemplateSpec {
                spec: Some(PodSpec {
                    restart_policy: Some("OnFailure".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = Params::of(&spec);
        let restarted = |phase: &str, n: i32| {
            let mut x = pod("x", None, true, phase, false, 1);
            if let Some(st) = x.status.as_mut() {
                st.container_statuses = Some(vec![ContainerStatus {
                    restart_count: n,
                    ..Default::default()
                }]);
            }
            Arc::new(x)
        };
        assert!(!past_backoff_limit_on_failure(
            &p,
            &[restarted("Running", 1)]
        ));
        assert!(past_backoff_limit_on_failure(
            &p,
            &[restarted("Running", 1), restarted("Pending", 1)]
        ));
        assert!(!past_backoff_limit_on_failure(
            &p,
            &[restarted("Running", 1), restarted("Unknown", 5)]
        ));
    }

    #[test]
    fn params_apply_upstream_defaults() {
        let spec = JobSpec::default();
        let p = Params::of(&spec);
        assert_eq!(
            (p.completions, p.parallelism, p.backoff_limit),
            (None, 1, 6)
        );
        assert!(!p.indexed && !p.suspended && !p.only_replace_failed);
        // A deleted, unfinished pod counts as failed unless only failed pods are replaced.
        let mut deleting = pod("x", None, true, "Running", false, 1);
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(p.is_failed(&deleting));
        let strict = JobSpec {
            pod_replacement_policy: Some("Failed".into()),
            ..Default::default()
        };
        assert!(!Params::of(&strict).is_failed(&deleting));
        assert!(Params::of(&strict).is_failed(&pod("y", None, true, "Failed", false, 1)));
    }
}
