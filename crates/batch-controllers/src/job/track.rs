//! Finalizer-based tracking (upstream's `trackJobStatusAndRemoveFinalizers`): the only place
//! a Job's counters and terminal conditions are written.
//!
//! Order matters for exactly-once counting: (1) a finished pod's UID is written to
//! `status.uncountedTerminatedPods` (or, for Indexed Jobs, its index to `completedIndexes`);
//! (2) its finalizer is removed; (3) UIDs whose pods no longer hold the finalizer move from
//! the uncounted lists into `succeeded`/`failed`. A crash after (1) finds the UID uncounted
//! and does not count the pod again; after (2) step (3) still happens on the next sync.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::PostParams;

use super::conditions::{self, COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET};
use super::pods;
use super::sync::SyncState;
use super::{JobController, JobError, api_error};

/// At most this many UIDs wait in the uncounted lists (keeps the status under ~20 KB and a
/// big Job from starving others; upstream's `MaxUncountedPods`).
const MAX_UNCOUNTED: usize = 500;

/// Moves uncounted UIDs whose pods no longer hold the finalizer into the counters.
/// Returns whether the status changed.
pub(super) fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut changed = false;
    for (list, counter) in [
        (&mut uncounted.succeeded, &mut status.succeeded),
        (&mut uncounted.failed, &mut status.failed),
    ] {
        let Some(uids) = list.as_mut() else { continue };
        let before = uids.len();
        uids.retain(|u| with_finalizer.contains(u));
        let moved = before - uids.len();
        if moved > 0 {
            changed = true;
            let n = i32::try_from(moved).unwrap_or(i32::MAX);
            *counter = Some(counter.unwrap_or(0).saturating_add(n));
        }
        if uids.is_empty() {
            *list = None;
        }
    }
    changed
}

fn uncounted_len(status: &JobStatus) -> usize {
    status.uncounted_terminated_pods.as_ref().map_or(0, |u| {
        u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
    })
}

impl JobController {
    pub(super) async fn track(
        &self,
        s: &mut SyncState<'_>,
        mut needs_flush: bool,
    ) -> Result<Option<Duration>, JobError> {
        let indexed = s.params.indexed;
        let mut with_finalizer: HashSet<String> = s
            .pods
            .iter()
            .filter(|p| pods::has_tracking_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .filter(|u| !s.expected_rm.contains(u))
            .collect();
        let job_deleting = s.job.metadata.deletion_timestamp.is_some();
        let failing = s
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ != SUCCESS_CRITERIA_MET && c.type_ != COMPLETE);
        let mut candidates: Vec<Arc<Pod>> = s.pods.clone();
        if indexed {
            candidates.sort_by_key(|p| pods::completion_index(p).unwrap_or(i32::MAX));
        }
        let status = s.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        let mut release: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut reached_max = false;
        {
            let uncounted = status
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            for p in &candidates {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if !pods::has_tracking_finalizer(p) || s.expected_rm.contains(&uid) {
                    continue;
                }
                let failed = s.params.is_failed(p);
                let succeeded = pods::is_succeeded(p);
                if !(job_deleting || s.finished.is_some() || succeeded || failed) {
                    continue;
                }
                release.push(p.clone());
                if succeeded && !s.uncounted_failed.contains(&uid) {
                    if indexed {
                        if let Some(ix) = s.params.valid_index(p)
                            && !s.prev_succeeded_indexes.has(ix)
                        {
                            new_indexes.push(ix);
                            needs_flush = true;
                        }
                    } else if !s.uncounted_succeeded.contains(&uid) {
                        uncounted.succeeded.get_or_insert_with(Vec::new).push(uid);
                        needs_flush = true;
                    }
                } else if (failed || failing)
                    && !s.uncounted_failed.contains(&uid)
                    && (!indexed || s.params.valid_index(p).is_some())
                    && s.params.verdict(p).counts()
                {
                    // Once the Job is failing, every pod not succeeded counts as failed.
                    uncounted.failed.get_or_insert_with(Vec::new).push(uid);
                    needs_flush = true;
                }
                let waiting = new_indexes.len()
                    + uncounted.succeeded.as_ref().map_or(0, Vec::len)
                    + uncounted.failed.as_ref().map_or(0, Vec::len);
                if waiting >= MAX_UNCOUNTED {
                    // The status write below requeues the Job for the rest.
                    reached_max = true;
                    break;
                }
            }
        }
        if indexed {
            s.succeeded_indexes = s.succeeded_indexes.with(&new_indexes);
            let text = s.succeeded_indexes.to_string();
            if status.completed_indexes.as_deref().unwrap_or_default() != text {
                needs_flush = true;
            }
            status.succeeded = Some(s.succeeded_indexes.total());
            status.completed_indexes = (!text.is_empty()).then_some(text);
        }
        let list = status.conditions.get_or_insert_with(Vec::new);
        if let Some(c) = s.finished.take() {
            s.finished = Some(match c.type_.as_str() {
                FAILURE_TARGET => {
                    // Recorded before finalizers go, so the reason survives a crash.
                    list.push(c.clone());
                    needs_flush = true;
                    let (reason, message) =
                        (c.reason.unwrap_or_default(), c.message.unwrap_or_default());
                    conditions::new(FAILED, "True", &reason, &message, s.now)
                }
                SUCCESS_CRITERIA_MET => {
                    if conditions::find(list, SUCCESS_CRITERIA_MET).is_none() {
                        list.push(c.clone());
                        needs_flush = true;
                    }
                    let (reason, message) =
                        (c.reason.unwrap_or_default(), c.message.unwrap_or_default());
                    conditions::new(COMPLETE, "True", &reason, &message, s.now)
                }
                _ => c,
            });
        }

        if needs_flush {
            self.write_status(s).await?;
            self.backoff.set(s.key, s.backoff);
            needs_flush = false;
        }
        let mut release_error = None;
        if !release.is_empty() {
            let uids: Vec<String> = release
                .iter()
                .filter_map(|p| p.metadata.uid.clone())
                .collect();
            self.finalizers.expect(s.key, uids);
            let results = futures::future::join_all(
                release
                    .iter()
                    .map(|p| super::remove_finalizer(&self.client, p)),
            )
            .await;
            for (p, r) in release.iter().zip(results) {
                let uid = p.metadata.uid.as_deref().unwrap_or_default();
                match r {
                    Ok(()) => {
                        with_finalizer.remove(uid);
                    }
                    Err(e) => {
                        self.finalizers.observed(s.key, uid);
                        let name = p.metadata.name.as_deref().unwrap_or_default();
                        release_error.get_or_insert_with(|| {
                            api_error(
                                "removing the tracking finalizer of",
                                "Pod",
                                &s.key.namespace,
                                name,
                            )(e)
                        });
                    }
                }
            }
        }
        let status = s.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = release_error {
            if needs_flush {
                self.write_status(s).await?;
            }
            return Err(e);
        }
        let finished = !reached_max && self.enact_finished(s);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            self.write_status(s).await?;
            if finished {
                self.record_finished(s);
            }
        }
        Ok(None)
    }

    /// Adds the terminal condition once nothing is uncounted or terminating any more.
    fn enact_finished(&self, s: &mut SyncState<'_>) -> bool {
        let Some(c) = s.finished.clone() else {
            return false;
        };
        let status = s.job.status.get_or_insert_with(Default::default);
        if uncounted_len(status) > 0 || s.terminating > 0 {
            return false;
        }
        let list = status.conditions.get_or_insert_with(Vec::new);
        conditions::ensure(
            list,
            &c.type_,
            &c.status,
            c.reason.as_deref().unwrap_or_default(),
            c.message.as_deref().unwrap_or_default(),
            s.now,
        );
        if c.type_ == COMPLETE {
            status.completion_time = Some(Time(s.now));
        }
        true
    }

    fn record_finished(&self, s: &SyncState<'_>) {
        let Some(c) = s.finished.as_ref() else { return };
        let job = &s.job;
        if c.type_ == COMPLETE {
            let succeeded = job.status.as_ref().and_then(|st| st.succeeded).unwrap_or(0);
            if s.params.completions.is_some_and(|n| succeeded > n) {
                self.recorder.warning(
                    job,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                );
            }
            self.recorder.normal(job, "Completed", "Job completed");
        } else {
            self.recorder.warning(
                job,
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default(),
            );
        }
    }

    /// Writes `s.job`'s status (optimistically: a 409 means the cache was stale, and the
    /// sync is retried from the newer version).
    async fn write_status(&self, s: &mut SyncState<'_>) -> Result<(), JobError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &s.key.namespace);
        let written = api
            .replace_status(&s.key.name, &PostParams::default(), &s.job)
            .await
            .map_err(api_error(
                "writing the status of",
                "Job",
                &s.key.namespace,
                &s.key.name,
            ))?;
        s.job = written;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::UncountedTerminatedPods;

    #[test]
    fn uncounted_uids_move_to_the_counters_once_their_finalizer_is_gone() {
        let mut status = JobStatus {
            succeeded: Some(2),
            failed: None,
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let still: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut status, &still));
        assert_eq!(status.succeeded, Some(3));
        assert_eq!(status.failed, Some(1));
        let u = status.uncounted_terminated_pods.as_ref().unwrap();
        assert_eq!(u.succeeded.as_deref(), Some(&["b".to_string()][..]));
        assert_eq!(u.failed, None);
        assert_eq!(uncounted_len(&status), 1);
        assert!(
            !clean_uncounted(&mut status, &still),
            "nothing more to move"
        );
    }
}
