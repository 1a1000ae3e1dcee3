//! The running scheduler (upstream's `scheduleOne` loop): pop a pod, bring the snapshot up to
//! date, choose a node, assume the pod there, run Reserve and Permit, and bind in the
//! background; on failure undo, requeue with backoff, and tell the user why.
//!
//! Guarantees:
//! * Only the leader schedules: with leader election on (the default), the loop runs only
//!   while this process holds the `kube-system/kube-scheduler` Lease, and everything of a term
//!   (watches, queue, in-flight bindings) is dropped the moment leadership is lost. A new term
//!   starts from a fresh list.
//! * Scheduling decisions are sequential (one pod at a time, against a snapshot that includes
//!   every pod assumed before), so two pods never race for the same free capacity. Bindings,
//!   status updates and preemption's deletions run concurrently, bounded
//!   ([`Options::bind_concurrency`]), and the loop waits for a free slot rather than queue
//!   unbounded work.
//! * A pod whose binding fails is un-reserved, forgotten by the cache (its capacity is free
//!   again at once) and retried after backoff.
//! * What a pending pod shows: `PodScheduled=False` with reason `Unschedulable` and upstream's
//!   `0/N nodes are available: ...` message (written only when it changed), and a
//!   `FailedScheduling` Event (see [`crate::events`] for how Events are rate-limited).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::algorithm::{self, ScheduleError};
use crate::cache::{self, Cache, CachedSnapshot};
use crate::config::SchedulerConfiguration;
use crate::events::{EventLimits, EventRecorder};
use crate::framework::{
    BindAction, ClusterEvent, Code, CycleState, PodInfo, PostFilterResult, Status,
};
use crate::informers::{self, Sinks};
use crate::profile::{Framework, FrameworkError, Frameworks, PodNominator};
use crate::queue::{QueueConfig, QueuedPodInfo, SchedulingQueue};
use crate::registry::Registry;

/// Upstream's limit on the length of a condition or Event message (`NoteLengthLimit`).
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Why the scheduler could not run.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("building the scheduling profiles: {0}")]
    Framework(#[from] FrameworkError),
}

/// Knobs beyond the configuration file.
#[derive(Clone, Debug)]
pub struct Options {
    /// This scheduler's identity in the Lease and in Events (`reportingInstance`).
    pub identity: String,
    /// Bindings (and other API writes) in flight at once.
    pub bind_concurrency: usize,
    pub events: EventLimits,
    pub assumed_pod_ttl: Duration,
    /// The configuration's text (its file's contents; "" for the defaults), published in
    /// [`crate::published`] at the start of every leadership term. `None`: not published.
    pub published_config: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: default_identity(),
            bind_concurrency: 64,
            events: EventLimits::default(),
            assumed_pod_ttl: cache::DEFAULT_ASSUMED_POD_TTL,
            published_config: None,
        }
    }
}

pub use leader::default_identity;

/// The scheduler.
pub struct Scheduler;

impl Scheduler {
    /// Runs until `shutdown` turns true, with the default [`Options`].
    pub async fn run(
        client: Client,
        config: SchedulerConfiguration,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), SchedulerError> {
        Scheduler::run_with(client, config, Options::default(), shutdown).await
    }

    /// Runs until `shutdown` turns true. Fails at once if the profiles cannot be built.
    pub async fn run_with(
        client: Client,
        config: SchedulerConfiguration,
        options: Options,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), SchedulerError> {
        let registry = Registry::default_plugins();
        // Checked once up front so a bad configuration is an error, not a log line per term.
        Frameworks::new(&config, &registry)?;
        let le = &config.leader_election;
        let mut leadership = if le.leader_elect {
            let mut lc =
                leader::Config::new(&le.resource_namespace, &le.resource_name, &options.identity);
            lc.lease_duration = le.lease_duration;
            lc.renew_deadline = le.renew_deadline;
            lc.retry_period = le.retry_period;
            let (l, _task) = leader::LeaderElector::new(
                lc,
                Arc::new(leader::KubeLeases {
                    client: client.clone(),
                }),
            )
            .spawn(shutdown.clone());
            Some(l)
        } else {
            None
        };
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if let Some(l) = leadership.as_mut() {
                tokio::select! {
                    _ = l.wait_for(true) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            tracing::info!(identity = %options.identity, "scheduler starting");
            if let Some(text) = &options.published_config {
                let (client, identity, text) =
                    (client.clone(), options.identity.clone(), text.clone());
                tokio::spawn(async move {
                    if let Err(e) = crate::published::publish(&client, &identity, &text).await {
                        tracing::warn!(
                            error = %e,
                            "could not publish the scheduler configuration in ConfigMap {}/{}; `keelson why` will need --scheduler-config",
                            crate::published::NAMESPACE,
                            crate::published::NAME
                        );
                    }
                });
            }
            let frameworks = Frameworks::new(&config, &registry)?;
            let mut term = Term::start(&client, &config, &options, frameworks);
            let stop = term.run(leadership.clone(), shutdown.clone()).await;
            term.stop();
            match stop {
                Stop::Shutdown => return Ok(()),
                Stop::LostLeadership => {
                    tracing::warn!("scheduler lost leadership; stopped scheduling");
                }
            }
        }
    }
}

enum Stop {
    Shutdown,
    LostLeadership,
}

/// Waits until the watched value satisfies `f` (or its sender is gone). The guard `wait_for`
/// returns is not `Send`; this drops it before the caller's next await.
async fn until<T>(rx: &mut watch::Receiver<T>, f: impl FnMut(&T) -> bool) {
    let _ = rx.wait_for(f).await.map(|_| ());
}

/// What the background work of a term shares.
struct Ctx {
    client: Client,
    cache: Arc<Cache>,
    queue: Arc<SchedulingQueue>,
    events: EventRecorder,
    writes: Arc<Semaphore>,
    /// Turns true when the term ends: every write still in flight is abandoned.
    stopped: watch::Sender<bool>,
}

impl Ctx {
    /// Runs `work` in the background until it finishes or the term ends.
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut stopped = self.stopped.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = work => {}
                _ = until(&mut stopped, |s| *s) => {}
            }
        });
    }
}

/// One leadership term: its own watches, cache and queue.
struct Term {
    ctx: Arc<Ctx>,
    frameworks: Arc<Frameworks>,
    snapshot: CachedSnapshot,
    next_start: usize,
    synced: watch::Receiver<usize>,
    background: JoinSet<()>,
}

impl Term {
    fn start(
        client: &Client,
        config: &SchedulerConfiguration,
        options: &Options,
        frameworks: Frameworks,
    ) -> Term {
        let queue = Arc::new(SchedulingQueue::new(
            QueueConfig::from_config(config),
            frameworks.plugin_events(),
        ));
        frameworks.set_pod_nominator(queue.clone() as Arc<dyn PodNominator>);
        let frameworks = Arc::new(frameworks);
        let cache = Arc::new(Cache::new(options.assumed_pod_ttl));
        let mut background = JoinSet::new();
        let events = EventRecorder::start(
            client.clone(),
            &options.identity,
            options.events.clone(),
            &mut background,
        );
        let sinks = Sinks {
            cache: cache.clone(),
            queue: queue.clone(),
            frameworks: frameworks.clone(),
        };
        let synced = informers::spawn(client, &sinks, &mut background);
        background.spawn(queue.clone().run_flush());
        let (c, q) = (cache.clone(), queue.clone());
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if !c.cleanup_expired(std::time::Instant::now()).is_empty() {
                    q.move_all_to_active_or_backoff(ClusterEvent::PodDelete);
                }
            }
        });
        Term {
            ctx: Arc::new(Ctx {
                client: client.clone(),
                cache,
                queue,
                events,
                writes: Arc::new(Semaphore::new(options.bind_concurrency.max(1))),
                stopped: watch::channel(false).0,
            }),
            frameworks,
            snapshot: CachedSnapshot::new(),
            next_start: 0,
            synced,
            background,
        }
    }

    async fn run(
        &mut self,
        mut leadership: Option<leader::Leadership>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Stop {
        let lost = async {
            match leadership.as_mut() {
                Some(l) => l.wait_for(false).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(lost);
        // Never schedule against a half-listed cluster.
        let mut synced = self.synced.clone();
        tokio::select! {
            _ = until(&mut synced, |n| *n >= informers::WATCHES) => {}
            _ = &mut lost => return Stop::LostLeadership,
            _ = until(&mut shutdown, |s| *s) => return Stop::Shutdown,
        }
        tracing::info!("scheduler caches synced; scheduling");
        loop {
            let queue = self.ctx.queue.clone();
            tokio::select! {
                popped = queue.pop() => match popped {
                    Some(qp) => self.schedule_one(qp).await,
                    None => return Stop::Shutdown,
                },
                _ = &mut lost => return Stop::LostLeadership,
                _ = until(&mut shutdown, |s| *s) => return Stop::Shutdown,
            }
        }
    }

    fn stop(&mut self) {
        self.ctx.queue.close();
        self.ctx.stopped.send_replace(true);
        self.background.abort_all();
    }

    async fn schedule_one(&mut self, qp: QueuedPodInfo) {
        let pod = qp.pod().clone();
        let uid = qp.uid().to_string();
        let Some(fw) = self.frameworks.get(cache::scheduler_name(&pod)).cloned() else {
            self.ctx.queue.done(&uid);
            return;
        };
        // Deleted meanwhile, or already on its way to a node: nothing to do (upstream's
        // `skipPodSchedule`).
        if cache::is_terminating(&pod) || self.ctx.cache.is_assumed(&uid) {
            self.ctx.queue.done(&uid);
            return;
        }
        let cycle = self.ctx.queue.scheduling_cycle();
        self.ctx.cache.update_snapshot(&mut self.snapshot);
        let snapshot = self.snapshot.snapshot();
        let mut state = CycleState::new();
        match algorithm::schedule_pod(&fw, &mut state, &pod, snapshot, &mut self.next_start) {
            Ok(result) => {
                self.assume_and_bind(fw, state, qp, result.node, cycle)
                    .await
            }
            Err(ScheduleError::Unschedulable(mut fit)) => {
                let mut nominate = Nominate::Keep;
                if fw.has_post_filter_plugins() {
                    let (result, status) =
                        algorithm::run_post_filter(&fw, &state, &pod, snapshot, &mut fit);
                    if status.is_success()
                        && let Some(r) = result
                    {
                        nominate = Nominate::Set(r.nominated_node.clone());
                        self.preempt(&pod, r).await;
                    }
                }
                let rejectors = fit.diagnosis.unschedulable_plugins.clone();
                let failure = Failure {
                    reason: "Unschedulable",
                    message: fit.to_string(),
                    rejectors,
                    nominate,
                };
                failed(&self.ctx, qp, cycle, failure).await;
            }
            Err(e @ ScheduleError::NoNodesAvailable) => {
                let failure = Failure {
                    reason: "Unschedulable",
                    message: e.to_string(),
                    rejectors: BTreeSet::new(),
                    nominate: Nominate::Clear,
                };
                failed(&self.ctx, qp, cycle, failure).await;
            }
            Err(ScheduleError::Internal(status)) => {
                tracing::error!(pod = %cache::pod_key(&pod), error = %status, "error selecting a node for the pod");
                failed(&self.ctx, qp, cycle, Failure::error(&status)).await;
            }
        }
    }

    /// Assumes the pod on `node`, runs Reserve and Permit, and starts the binding.
    async fn assume_and_bind(
        &mut self,
        fw: Arc<Framework>,
        mut state: CycleState,
        qp: QueuedPodInfo,
        node: String,
        cycle: u64,
    ) {
        let mut assumed_pod = (**qp.pod()).clone();
        if let Some(spec) = assumed_pod.spec.as_mut() {
            spec.node_name = Some(node.clone());
        }
        let assumed = Arc::new(PodInfo::new(Arc::new(assumed_pod)));
        let uid = qp.uid().to_string();
        if let Err(e) = self.ctx.cache.assume_pod(assumed.clone(), &node) {
            tracing::error!(error = %e, "assuming the pod failed");
            failed(
                &self.ctx,
                qp,
                cycle,
                Failure::error(&Status::error(e.to_string())),
            )
            .await;
            return;
        }
        let pod = assumed.pod.clone();
        let s = fw.run_reserve(&mut state, &pod, &node);
        if !s.is_success() {
            fw.run_unreserve(&mut state, &pod, &node);
            let _ = self.ctx.cache.forget_pod(&uid);
            failed(&self.ctx, qp, cycle, Failure::from_status(&s)).await;
            return;
        }
        let (s, wait) = fw.run_permit(&mut state, &pod, &node);
        if !s.is_success() && s.code != Code::Wait {
            fw.run_unreserve(&mut state, &pod, &node);
            let _ = self.ctx.cache.forget_pod(&uid);
            failed(&self.ctx, qp, cycle, Failure::from_status(&s)).await;
            return;
        }
        let wait = (s.code == Code::Wait).then_some((wait, s.plugin));
        // Bounded concurrency: wait here (not in an unbounded pile of tasks) for a slot.
        let Ok(permit) = self.ctx.writes.clone().acquire_owned().await else {
            return;
        };
        let ctx = self.ctx.clone();
        self.ctx.spawn(async move {
            let _permit = permit;
            binding_cycle(ctx, fw, state, qp, pod, node, cycle, wait).await;
        });
    }

    /// Carries out a preemption decision: victims are told why and deleted gracefully, and
    /// lower-priority pods nominated to the node lose their nomination. The preemptor's own
    /// nomination is recorded in the queue now (so the next cycles keep the room for it) and
    /// in its status with the failure.
    async fn preempt(&mut self, preemptor: &Arc<Pod>, r: PostFilterResult) {
        self.ctx
            .queue
            .add_nominated_pod(Arc::new(PodInfo::new(preemptor.clone())), &r.nominated_node);
        let Ok(permit) = self.ctx.writes.clone().acquire_owned().await else {
            return;
        };
        let ctx = self.ctx.clone();
        let preemptor = preemptor.clone();
        self.ctx.spawn(async move {
            let _permit = permit;
            for victim in &r.victims {
                evict_victim(&ctx, victim, &preemptor, &r.nominated_node).await;
            }
            for p in &r.clear_nominations {
                let patch = json!({"status": {"nominatedNodeName": null}});
                if let Err(e) = patch_status(&ctx.client, p, &patch).await {
                    tracing::debug!(pod = %cache::pod_key(p), error = %e, "clearing a nomination failed");
                }
            }
        });
    }
}

async fn evict_victim(ctx: &Ctx, victim: &Pod, preemptor: &Pod, node: &str) {
    let key = cache::pod_key(victim);
    let condition = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{}: preempting to accommodate a higher priority pod", cache::scheduler_name(preemptor)),
        "lastTransitionTime": Timestamp::now().to_string(),
    }]}});
    if let Err(e) = patch_status(&ctx.client, victim, &condition).await {
        tracing::debug!(pod = %key, error = %e, "marking a preemption victim failed");
    }
    let api: Api<Pod> = pods_api(&ctx.client, victim);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: victim.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api
        .delete(victim.metadata.name.as_deref().unwrap_or_default(), &params)
        .await
    {
        Ok(_) => {
            tracing::info!(victim = %key, preemptor = %cache::pod_key(preemptor), node, "preempted");
            ctx.events.preempted(victim, preemptor, node);
        }
        Err(kube::Error::Api(s)) if s.is_not_found() => {}
        Err(e) => tracing::warn!(victim = %key, error = %e, "deleting a preemption victim failed"),
    }
}

fn pods_api(client: &Client, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

async fn patch_status(client: &Client, pod: &Pod, patch: &Value) -> Result<(), kube::Error> {
    pods_api(client, pod)
        .patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .map(|_| ())
}

/// The binding cycle of one pod (runs concurrently with the scheduling of the next ones).
#[allow(clippy::too_many_arguments)]
async fn binding_cycle(
    ctx: Arc<Ctx>,
    fw: Arc<Framework>,
    mut state: CycleState,
    qp: QueuedPodInfo,
    pod: Arc<Pod>,
    node: String,
    cycle: u64,
    wait: Option<(Duration, Option<&'static str>)>,
) {
    let uid = qp.uid().to_string();
    let outcome = async {
        if let Some((timeout, plugin)) = wait {
            // keelson's framework has no handle for plugins to allow a waiting pod later, so a
            // pod held by Permit is rejected when its timeout ends, as upstream does then.
            tokio::time::sleep(timeout).await;
            return Err(Status::unschedulable(format!(
                "rejected due to timeout after waiting {timeout:?} at plugin {}",
                plugin.unwrap_or_default()
            )));
        }
        let s = fw.run_pre_bind(&state, &pod, &node);
        if !s.is_success() {
            return Err(s);
        }
        match fw.run_bind(&state, &pod, &node).0 {
            BindAction::Binding { node: target } => bind(&ctx.client, &pod, &target).await,
            BindAction::Refuse(s) => Err(s),
            BindAction::Skip => Err(Status::error("no bind plugin bound the pod")),
        }
    }
    .await;
    match outcome {
        Ok(()) => {
            ctx.cache.finish_binding(&uid, std::time::Instant::now());
            ctx.queue.done(&uid);
            ctx.queue.delete_nominated_pod_if_exists(&uid);
            tracing::debug!(pod = %cache::pod_key(&pod), node = %node, "bound");
            ctx.events.scheduled(&pod, &node);
        }
        Err(s) => {
            fw.run_unreserve(&mut state, &pod, &node);
            if ctx.cache.forget_pod(&uid).is_ok() {
                // Its capacity is free again: pods waiting for room may fit now.
                ctx.queue
                    .move_all_to_active_or_backoff(ClusterEvent::PodDelete);
            }
            tracing::info!(pod = %cache::pod_key(&pod), node = %node, error = %s, "binding failed");
            failed(&ctx, qp, cycle, Failure::from_status(&s)).await;
        }
    }
}

/// POSTs the `binding` subresource (upstream's DefaultBinder).
async fn bind(client: &Client, pod: &Pod, node: &str) -> Result<(), Status> {
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {
            "name": pod.metadata.name,
            "namespace": pod.metadata.namespace,
            "uid": pod.metadata.uid,
        },
        "target": {"kind": "Node", "name": node},
    });
    pods_api(client, pod)
        .create_subresource::<Value, Value>(
            "binding",
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PostParams::default(),
            &binding,
        )
        .await
        .map(|_| ())
        .map_err(|e| Status::error(format!("binding rejected: {e}")))
}

/// What happens to `status.nominatedNodeName` with a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Nominate {
    Keep,
    Set(String),
    Clear,
}

struct Failure {
    /// `Unschedulable` or `SchedulerError` (the PodScheduled condition's reason).
    reason: &'static str,
    message: String,
    rejectors: BTreeSet<&'static str>,
    nominate: Nominate,
}

impl Failure {
    fn error(s: &Status) -> Failure {
        Failure {
            reason: "SchedulerError",
            message: s.message(),
            rejectors: BTreeSet::new(),
            nominate: Nominate::Clear,
        }
    }

    /// A Reserve/Permit/PreBind/Bind status: a rejection waits for its plugin's events, an
    /// error is retried after backoff.
    fn from_status(s: &Status) -> Failure {
        if s.is_rejected() {
            Failure {
                reason: "Unschedulable",
                message: s.message(),
                rejectors: s.plugin.into_iter().collect(),
                nominate: Nominate::Keep,
            }
        } else {
            Failure::error(s)
        }
    }
}

/// Requeues a pod that was not scheduled and tells the user why (upstream's
/// `handleSchedulingFailure`).
async fn failed(ctx: &Arc<Ctx>, qp: QueuedPodInfo, cycle: u64, f: Failure) {
    let pod = qp.pod().clone();
    // Bound meanwhile (by someone else, or by a binding whose answer was lost): the failure is
    // stale, and writing `PodScheduled=False` would contradict the binding.
    if ctx.cache.is_bound(qp.uid()) {
        tracing::info!(pod = %cache::pod_key(&pod), "pod has been assigned to a node; not requeueing it");
        ctx.queue.done(qp.uid());
        return;
    }
    let message = truncate(&f.message);
    tracing::debug!(pod = %cache::pod_key(&pod), reason = f.reason, message = %message, "pod not scheduled");
    if let Nominate::Set(node) = &f.nominate {
        ctx.queue.add_nominated_pod(qp.pod_info.clone(), node);
    }
    if let Err(e) = ctx
        .queue
        .add_unschedulable_if_not_present(qp, f.rejectors, cycle)
    {
        tracing::error!(error = %e, "requeueing a pod that was not scheduled");
    }
    ctx.events.failed_scheduling(&pod, &message);
    let Some(patch) = status_patch(&pod, f.reason, &message, &f.nominate, Timestamp::now()) else {
        return;
    };
    let Ok(permit) = ctx.writes.clone().acquire_owned().await else {
        return;
    };
    let c = ctx.clone();
    ctx.spawn(async move {
        let _permit = permit;
        match patch_status(&c.client, &pod, &patch).await {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => {
                tracing::debug!(pod = %cache::pod_key(&pod), "the pod changed; its status is written at its next failure");
            }
            Err(e) => tracing::warn!(pod = %cache::pod_key(&pod), error = %e, "updating the pod's status failed"),
        }
    });
}

/// Upstream's `truncateMessage`: at most [`MAX_MESSAGE_LEN`] bytes, ending in `...` if cut.
fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_LEN {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_LEN - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// The strategic-merge patch of `pods/status` a failure needs: the `PodScheduled=False`
/// condition and the nomination. `None` if the pod already shows exactly that, so that a pod
/// retried every few seconds does not cost a write each time.
fn status_patch(
    pod: &Pod,
    reason: &str,
    message: &str,
    nominate: &Nominate,
    now: Timestamp,
) -> Option<Value> {
    let status = pod.status.as_ref();
    let current = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let condition_same = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    let nominated = status
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    let nomination = match nominate {
        Nominate::Set(n) if nominated != Some(n.as_str()) => Some(json!(n)),
        Nominate::Clear if nominated.is_some() => Some(Value::Null),
        _ => None,
    };
    if condition_same && nomination.is_none() {
        return None;
    }
    let mut patch = json!({"status": {}});
    if !condition_same {
        // The transition time moves only when the status does (upstream's UpdatePodCondition).
        let transition = match current {
            Some(c) if c.status == "False" => c
                .last_transition_time
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| now.to_string()),
            _ => now.to_string(),
        };
        patch["status"]["conditions"] = json!([{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }]);
    }
    if let Some(n) = nomination {
        patch["status"]["nominatedNodeName"] = n;
    }
    // Conditional on the version the attempt saw: a pod bound (or otherwise changed) since
    // gets a 409 instead of a stale `PodScheduled=False` over its binding's `True`. A pod
    // still pending is retried and the next failure writes the condition.
    if let Some(rv) = pod.metadata.resource_version.as_deref() {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "d"}, "status": status}),
        )
        .unwrap()
    }

    fn now() -> Timestamp {
        "2025-01-02T03:04:05Z".parse().unwrap()
    }

    #[test]
    fn status_patches_are_written_only_when_something_changes() {
        let msg = "0/1 nodes are available: 1 Insufficient cpu.";
        // First failure: the condition appears.
        let p = pod(json!({"phase": "Pending"}));
        let patch = status_patch(&p, "Unschedulable", msg, &Nominate::Keep, now()).unwrap();
        assert_eq!(
            patch,
            json!({"status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": msg, "lastProbeTime": null, "lastTransitionTime": "2025-01-02T03:04:05Z"
            }]}})
        );
        // The same failure again: nothing to write.
        let same = pod(
            json!({"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": msg, "lastTransitionTime": "2025-01-01T00:00:00Z"}]}),
        );
        assert_eq!(
            status_patch(&same, "Unschedulable", msg, &Nominate::Keep, now()),
            None
        );
        // A new message keeps the transition time (the status did not change).
        let patch = status_patch(
            &same,
            "Unschedulable",
            "0/2 nodes are available.",
            &Nominate::Keep,
            now(),
        )
        .unwrap();
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2025-01-01T00:00:00Z"
        );
        // Nominations: set when new, cleared when asked and present.
        let patch = status_patch(
            &same,
            "Unschedulable",
            msg,
            &Nominate::Set("n1".into()),
            now(),
        )
        .unwrap();
        assert_eq!(patch, json!({"status": {"nominatedNodeName": "n1"}}));
        let nominated = pod(
            json!({"nominatedNodeName": "n1", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": msg}]}),
        );
        assert_eq!(
            status_patch(
                &nominated,
                "Unschedulable",
                msg,
                &Nominate::Set("n1".into()),
                now()
            ),
            None
        );
        let patch =
            status_patch(&nominated, "Unschedulable", msg, &Nominate::Clear, now()).unwrap();
        assert_eq!(patch, json!({"status": {"nominatedNodeName": null}}));
        // The version the attempt saw is the patch's precondition.
        let mut versioned = nominated.clone();
        versioned.metadata.resource_version = Some("42".into());
        let patch =
            status_patch(&versioned, "Unschedulable", msg, &Nominate::Clear, now()).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "42"}, "status": {"nominatedNodeName": null}})
        );
    }

    #[test]
    fn long_messages_are_truncated_like_upstream() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(600);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE_LEN);
        assert!(t.ends_with("..."));
    }

    #[test]
    fn failures_from_plugins_keep_their_rejector() {
        let f = Failure::from_status(&Status::unschedulable("no").with_plugin("VolumeBinding"));
        assert_eq!(f.reason, "Unschedulable");
        assert_eq!(f.rejectors, BTreeSet::from(["VolumeBinding"]));
        let f = Failure::from_status(&Status::error("boom").with_plugin("X"));
        assert_eq!(f.reason, "SchedulerError");
        assert!(f.rejectors.is_empty());
        assert_eq!(f.nominate, Nominate::Clear);
    }
}
