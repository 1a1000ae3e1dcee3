//! The Job controller (upstream's `pkg/controller/job`).
//!
//! Guarantees:
//! * A Job never has more than `min(parallelism, remaining completions)` active pods for long,
//!   and never gets duplicate pods from a stale cache: creations and deletions are recorded
//!   as [`Expectations`] and a sync that still waits for them does not create or delete.
//! * Every pod's outcome is counted exactly once: pods carry the
//!   `batch.kubernetes.io/job-tracking` finalizer; a finished pod's UID is first written to
//!   `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves into
//!   `succeeded`/`failed` (upstream's finalizer-based tracking). A crash between any two
//!   steps is recovered from the status and the pods alone.
//! * A Job's terminal condition (`Complete`/`Failed`) is written only once no pod is still
//!   running or terminating and nothing is uncounted; before that the interim
//!   `SuccessCriteriaMet`/`FailureTarget` condition records the decision (as v1.31+).
//! * Pods whose Job is gone or finished lose the tracking finalizer (the orphan queue), so
//!   nothing is left undeletable.

mod backoff;
mod conditions;
mod failure_policy;
mod indexes;
mod pod_control;
mod pods;
mod success_policy;
mod sync;
mod track;

pub use conditions::finished;
pub use indexes::Intervals;
pub use pods::{COMPLETION_INDEX, COMPLETION_INDEX_ENV, TRACKING_FINALIZER};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use api::selector::LabelSelector;
use controller_runtime::owners::controller_of;
use controller_runtime::{
    Action, Change, Context, Expectations, Informer, Key, Reconcile, Recorder, WorkQueue,
    spawn_workers,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::task::JoinSet;

use crate::clock::{Clock, SystemClock};

/// What can go wrong in a sync.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{action} {kind} {namespace}/{name}")]
    Api {
        action: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Job {key} has an invalid selector: {message}")]
    Selector { key: Key, message: String },
    #[error("Job {key} was replaced while being synced (uid {expected} is gone)")]
    Replaced { key: Key, expected: String },
}

fn api_error(
    action: &'static str,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> impl FnOnce(kube::Error) -> JobError {
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    move |source| JobError::Api {
        action,
        kind,
        namespace,
        name,
        source,
    }
}

/// Pod UIDs whose tracking finalizer removal was requested and not yet observed, per Job
/// (upstream's `uidTrackingExpectations`): such pods are neither counted again nor patched
/// again while the cache catches up.
#[derive(Debug, Default)]
pub(crate) struct FinalizerExpectations(Mutex<HashMap<Key, HashSet<String>>>);

impl FinalizerExpectations {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, HashSet<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn expect(&self, key: &Key, uids: impl IntoIterator<Item = String>) {
        self.map().entry(key.clone()).or_default().extend(uids);
    }

    pub(crate) fn observed(&self, key: &Key, uid: &str) {
        let mut m = self.map();
        if let Some(set) = m.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                m.remove(key);
            }
        }
    }

    pub(crate) fn expected(&self, key: &Key) -> HashSet<String> {
        self.map().get(key).cloned().unwrap_or_default()
    }

    pub(crate) fn delete(&self, key: &Key) {
        self.map().remove(key);
    }
}

/// The Job controller's state shared by its workers and handlers.
pub struct JobController {
    pub(crate) jobs: Informer<Job>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) client: kube::Client,
    pub(crate) recorder: Recorder,
    pub(crate) expectations: Expectations,
    pub(crate) finalizers: FinalizerExpectations,
    pub(crate) backoff: backoff::Store,
    pub(crate) clock: Arc<dyn Clock>,
}

impl JobController {
    /// The Job a controller reference points at, if it is in the cache with that UID.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<Job>> {
        if r.kind != "Job" || !r.api_version.starts_with("batch/") {
            return None;
        }
        self.jobs
            .get(&Key::new(namespace, &r.name))
            .filter(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
    }

    /// Jobs in the pod's namespace whose selector matches it (candidates for adoption).
    fn selecting(&self, pod: &Pod) -> Vec<Key> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        self.jobs
            .list_in(ns)
            .iter()
            .filter(|j| {
                let sel = j.spec.as_ref().and_then(|s| s.selector.as_ref());
                sel.and_then(|s| LabelSelector::from_k8s(s).ok())
                    .is_some_and(|s| !s.is_everything() && s.matches(&pod.metadata.labels))
            })
            .map(|j| Key::of(j.as_ref()))
            .collect()
    }

    /// Maps one pod change to the Jobs to sync (and the orphan pods to clean), counting
    /// expectations down on the way (upstream's addPod/updatePod/deletePod).
    fn on_pod(&self, c: &Change<Pod>, jobs: &WorkQueue<Key>, orphans: &WorkQueue<Key>) {
        let pod = c.object();
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let deleted = matches!(c, Change::Deleted(_));
        if let Some(old) = c.old()
            && controller_of(&old.metadata) != controller_of(&pod.metadata)
            && let Some(job) = controller_of(&old.metadata).and_then(|r| self.resolve(ns, r))
        {
            let key = Key::of(job.as_ref());
            if !pods::has_tracking_finalizer(pod) {
                self.finalizers.observed(&key, uid);
            }
            jobs.add(key);
        }
        let Some(r) = controller_of(&pod.metadata) else {
            if pods::has_tracking_finalizer(pod) {
                orphans.add(Key::of(pod.as_ref()));
            }
            if !deleted {
                for key in self.selecting(pod) {
                    jobs.add(key);
                }
            }
            return;
        };
        let job = self.resolve(ns, r);
        let Some(job) = job.filter(|j| conditions::finished(j).is_none()) else {
            // No sync will look at this pod again: clean its finalizer here.
            if pods::has_tracking_finalizer(pod) {
                orphans.add(Key::of(pod.as_ref()));
            }
            return;
        };
        let key = Key::of(job.as_ref());
        if deleted || pods::is_deleting(pod) {
            self.expectations.deletion_observed(&key, uid);
        } else if matches!(c, Change::Added(_)) {
            self.expectations.creation_observed(&key);
        }
        if deleted || !pods::has_tracking_finalizer(pod) {
            self.finalizers.observed(&key, uid);
        }
        jobs.add(key);
    }

    /// Removes the tracking finalizer from a pod no Job will count any more.
    async fn clean_orphan(&self, key: &Key) -> Result<Action, JobError> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(Action::Done);
        };
        if !pods::has_tracking_finalizer(&pod) {
            return Ok(Action::Done);
        }
        let owned_by_live_job = controller_of(&pod.metadata)
            .and_then(|r| self.resolve(&key.namespace, r))
            .is_some_and(|j| conditions::finished(&j).is_none());
        if owned_by_live_job {
            return Ok(Action::Done);
        }
        remove_finalizer(&self.client, &pod)
            .await
            .map_err(api_error(
                "removing the tracking finalizer of",
                "Pod",
                &key.namespace,
                &key.name,
            ))?;
        Ok(Action::Done)
    }
}

/// Removes the tracking finalizer from `pod` (a 404 means there is nothing left to do).
pub(crate) async fn remove_finalizer(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"metadata": {
        "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
    }});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

struct Jobs(Arc<JobController>);

#[async_trait::async_trait]
impl Reconcile for Jobs {
    type Error = JobError;

    async fn reconcile(&self, key: &Key) -> Result<Action, JobError> {
        self.0.sync(key).await
    }
}

struct OrphanPods(Arc<JobController>);

#[async_trait::async_trait]
impl Reconcile for OrphanPods {
    type Error = JobError;

    async fn reconcile(&self, key: &Key) -> Result<Action, JobError> {
        self.0.clean_orphan(key).await
    }
}

/// Starts the Job controller for one leadership term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let controller = Arc::new(JobController {
        jobs: ctx.informers.get::<Job>(),
        pods: ctx.informers.get::<Pod>(),
        client: ctx.client.clone(),
        recorder: ctx.events.recorder("job-controller"),
        expectations: Expectations::new(),
        finalizers: FinalizerExpectations::default(),
        backoff: backoff::Store::default(),
        clock: Arc::new(SystemClock),
    });
    let queue = WorkQueue::<Key>::new();
    let orphans = WorkQueue::<Key>::new();
    {
        // Weak: the informers outlive nothing they hold, so no reference cycle keeps a
        // finished term's controller alive.
        let (q, o, c) = (queue.clone(), orphans.clone(), Arc::downgrade(&controller));
        controller.jobs.on_change(move |change| {
            let job = change.object();
            q.add(Key::of(job.as_ref()));
            if let Change::Deleted(job) = change
                && let Some(c) = c.upgrade()
            {
                // Its pods still carrying the finalizer are orphans now.
                let uid = job.metadata.uid.as_deref().unwrap_or_default();
                let ns = job.metadata.namespace.as_deref().unwrap_or_default();
                for p in c.pods.list_in(ns) {
                    if pods::has_tracking_finalizer(&p)
                        && controller_runtime::owners::is_controlled_by(&p.metadata, uid)
                    {
                        o.add(Key::of(p.as_ref()));
                    }
                }
            }
        });
    }
    {
        let (q, o, c) = (queue.clone(), orphans.clone(), Arc::downgrade(&controller));
        controller.pods.on_change(move |change| {
            if let Some(c) = c.upgrade() {
                c.on_pod(change, &q, &o);
            }
        });
    }
    let workers = ctx.settings.workers;
    spawn_workers(
        "job",
        Arc::new(Jobs(controller.clone())),
        queue,
        workers,
        &ctx.informers,
        tasks,
    );
    spawn_workers(
        "job-orphan-pods",
        Arc::new(OrphanPods(controller)),
        orphans,
        1,
        &ctx.informers,
        tasks,
    );
}
