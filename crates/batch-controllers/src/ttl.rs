//! The TTL-after-finished controller (upstream's `pkg/controller/ttlafterfinished`):
//! deletes a Job `spec.ttlSecondsAfterFinished` seconds after it finished.
//!
//! Guarantees:
//! * A Job is deleted only if a fresh read from the server (not the cache) still shows it
//!   finished, with the TTL set and expired; the delete carries the UID as a precondition, so
//!   a Job recreated under the same name is never hit. A user who raised the TTL meanwhile
//!   gets the new TTL.
//! * Deletion propagates in the background: the garbage collector removes the Job's pods.
//! * Until it expires the Job is requeued for exactly its expiry time.

use std::sync::Arc;
use std::time::Duration;

use controller_runtime::{Action, Context, Informer, Key, Reconcile, WorkQueue, spawn_workers};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock, add_seconds, until};
use crate::job::finished;

#[derive(Debug, thiserror::Error)]
pub enum TtlError {
    #[error("{action} Job {key}")]
    Api {
        action: &'static str,
        key: Key,
        #[source]
        source: kube::Error,
    },
}

/// When `job` expires: finish time plus TTL, if it has a TTL, finished, and is not being
/// deleted already. A finished Job without a finish time (no `lastTransitionTime`) expires
/// from its completion time, as a best effort.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let condition = finished(job)?;
    let at = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| job.status.as_ref()?.completion_time.as_ref().map(|t| t.0))?;
    Some(add_seconds(at, i64::from(ttl)))
}

/// What to do about `job` at `now`: `Some(0)` = delete now, `Some(d)` = look again after
/// `d`, `None` = nothing ever (no TTL, not finished).
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    expires_at(job).map(|at| until(now, at))
}

pub struct TtlController {
    jobs: Informer<Job>,
    client: kube::Client,
    clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl Reconcile for TtlController {
    type Error = TtlError;

    async fn reconcile(&self, key: &Key) -> Result<Action, TtlError> {
        let Some(cached) = self.jobs.get(key) else {
            return Ok(Action::Done);
        };
        match time_left(&cached, self.clock.now()) {
            None => return Ok(Action::Done),
            Some(d) if !d.is_zero() => return Ok(Action::RequeueAfter(d)),
            Some(_) => {}
        }
        // The cache may be stale (the TTL raised, the Job recreated): decide on a fresh read.
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.namespace);
        let fresh = match api.get_opt(&key.name).await {
            Ok(Some(j)) => j,
            Ok(None) => return Ok(Action::Done),
            Err(source) => {
                return Err(TtlError::Api {
                    action: "reading",
                    key: key.clone(),
                    source,
                });
            }
        };
        match time_left(&fresh, self.clock.now()) {
            None => return Ok(Action::Done),
            Some(d) if !d.is_zero() => return Ok(Action::RequeueAfter(d)),
            Some(_) => {}
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        tracing::info!(job = %key, "deleting a finished Job whose TTL expired");
        match api.delete(&key.name, &dp).await {
            Ok(_) => Ok(Action::Done),
            // Gone, or replaced by a new Job (UID precondition): nothing to delete.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Action::Done),
            Err(source) => Err(TtlError::Api {
                action: "deleting",
                key: key.clone(),
                source,
            }),
        }
    }
}

/// Starts the TTL-after-finished controller for one leadership term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let jobs = ctx.informers.get::<Job>();
    let queue = WorkQueue::<Key>::new();
    {
        let q = queue.clone();
        jobs.on_change(move |c| {
            if expires_at(c.object()).is_some() {
                q.add(Key::of(c.object().as_ref()));
            }
        });
    }
    let controller = TtlController {
        jobs,
        client: ctx.client.clone(),
        clock: Arc::new(SystemClock),
    };
    spawn_workers(
        "ttl-after-finished",
        Arc::new(controller),
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, condition: Option<(&str, &str)>) -> Job {
        let at: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: condition.map(|(t, s)| {
                    vec![JobCondition {
                        type_: t.into(),
                        status: s.into(),
                        last_transition_time: Some(Time(at)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn expiry_needs_a_ttl_and_a_terminal_condition() {
        let now: Timestamp = "2025-01-01T00:00:30Z".parse().unwrap();
        let cases = [
            (
                job(Some(100), Some(("Complete", "True"))),
                Some(Duration::from_secs(70)),
            ),
            (
                job(Some(10), Some(("Failed", "True"))),
                Some(Duration::ZERO),
            ),
            (
                job(Some(0), Some(("Complete", "True"))),
                Some(Duration::ZERO),
            ),
            (job(None, Some(("Complete", "True"))), None),
            (job(Some(10), Some(("Complete", "False"))), None),
            (job(Some(10), Some(("SuccessCriteriaMet", "True"))), None),
            (job(Some(10), None), None),
        ];
        for (i, (j, want)) in cases.iter().enumerate() {
            assert_eq!(time_left(j, now), *want, "case {i}");
        }
        let mut deleting = job(Some(1), Some(("Complete", "True")));
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert_eq!(time_left(&deleting, now), None);
    }
}
