//! The scheduling queue (upstream's `PriorityQueue`): which pending pod to schedule next, and
//! when to retry a pod that did not fit.
//!
//! Three places a pending pod can be:
//! * **activeQ** — ready; popped highest `spec.priority` first, then the earliest queued
//!   (upstream's `PrioritySort`).
//! * **backoffQ** — failed recently; waits `podInitialBackoffSeconds · 2^(attempts-1)` (capped
//!   at `podMaxBackoffSeconds`) from its last failure before it becomes active. As upstream
//!   v1.33 (`SchedulerPopFromBackoffQ`), an idle scheduler pops from here rather than wait.
//! * **unschedulable** — rejected by some plugins; stays until a cluster event one of those
//!   plugins registered for ([`Plugin::events`](crate::framework::Plugin::events)) happens, or
//!   for at most 5 minutes. Pods with `spec.schedulingGates` wait here too (as "gated") until
//!   an update removes the gates.
//!
//! A popped pod is *in flight* until [`SchedulingQueue::done`]. Events that happen meanwhile
//! are remembered, so a pod whose attempt fails because of a state that changed during the
//! attempt is requeued at once rather than parked: no event is lost between "the cycle read
//! the snapshot" and "the pod went back to the queue" (upstream's in-flight events).
//!
//! The queue also keeps the nominated pods per node (preemptors waiting for their victims to
//! go), which the framework adds to nodes when filtering: it implements [`PodNominator`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::SchedulerConfiguration;
use crate::framework::{ClusterEvent, PodInfo};
use crate::profile::PodNominator;

/// How long a pod may sit in the unschedulable pool before it is retried anyway.
pub const DEFAULT_MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
/// How often completed backoffs are flushed into activeQ.
pub const BACKOFF_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often the unschedulable pool is checked for pods that waited too long.
pub const UNSCHEDULABLE_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

/// Queue tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_in_unschedulable: Duration,
    /// Pop a backing-off pod when activeQ is empty (upstream v1.33 default).
    pub pop_from_backoff_q: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: DEFAULT_MAX_IN_UNSCHEDULABLE,
            pop_from_backoff_q: true,
        }
    }
}

impl QueueConfig {
    /// The backoff settings of a scheduler configuration.
    pub fn from_config(c: &SchedulerConfiguration) -> QueueConfig {
        QueueConfig {
            initial_backoff: c.pod_initial_backoff,
            max_backoff: c.pod_max_backoff,
            ..QueueConfig::default()
        }
    }
}

/// A pending pod with its queueing history (upstream's `QueuedPodInfo`).
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    pub pod_info: Arc<PodInfo>,
    /// When the pod was last (re)queued: orders equal priorities, starts the backoff.
    pub timestamp: Instant,
    /// When the pod was first popped (for latency metrics).
    pub initial_attempt_timestamp: Option<Instant>,
    /// How many times the pod was popped.
    pub attempts: u32,
    /// The plugins that rejected it in its last attempt.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    /// Held back by `spec.schedulingGates`.
    pub gated: bool,
}

impl QueuedPodInfo {
    fn new(pod_info: Arc<PodInfo>, now: Instant) -> QueuedPodInfo {
        let gated = is_gated(&pod_info.pod);
        QueuedPodInfo {
            pod_info,
            timestamp: now,
            initial_attempt_timestamp: None,
            attempts: 0,
            unschedulable_plugins: BTreeSet::new(),
            gated,
        }
    }

    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod_info.pod
    }

    pub fn uid(&self) -> &str {
        self.pod_info.uid()
    }
}

fn is_gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// The key a pod is known by: its UID (or `namespace/name` for a pod without one).
fn key_of(pod: &Pod) -> String {
    match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

fn nominated_node(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Why a pod could not be put back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("pod {pod} is already present in the {queue}")]
    AlreadyPresent { pod: String, queue: &'static str },
}

/// How many pods are where (for status and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
    pub in_flight: usize,
}

/// activeQ order: higher priority first, then earlier timestamp, then insertion order.
type ActiveKey = (Reverse<i32>, Instant, u64);
/// backoffQ order: earlier expiry first.
type BackoffKey = (Instant, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Active(ActiveKey),
    Backoff(BackoffKey),
    Unschedulable,
    Gated,
}

impl Location {
    fn queue_name(self) -> &'static str {
        match self {
            Location::Active(_) => "active queue",
            Location::Backoff(_) => "backoff queue",
            Location::Unschedulable | Location::Gated => "unschedulable pods",
        }
    }
}

struct Entry {
    info: QueuedPodInfo,
    at: Location,
}

struct InFlight {
    /// The first event sequence number the pod has not seen.
    since: u64,
    /// The pod was updated during its attempt (the newest version).
    updated: Option<Arc<Pod>>,
    deleted: bool,
}

#[derive(Default)]
struct Nominator {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

impl Nominator {
    fn delete(&mut self, key: &str) {
        let Some(node) = self.node_of.remove(key) else {
            return;
        };
        if let Some(list) = self.by_node.get_mut(&node) {
            list.retain(|p| key_of(&p.pod) != key);
            if list.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    fn add(&mut self, info: Arc<PodInfo>, node: Option<&str>) {
        let key = key_of(&info.pod);
        self.delete(&key);
        let Some(node) = node.or_else(|| nominated_node(&info.pod)) else {
            return;
        };
        if is_bound(&info.pod) {
            return;
        }
        self.node_of.insert(key, node.to_string());
        self.by_node.entry(node.to_string()).or_default().push(info);
    }

    /// Upstream's `updateNominatedPod`: a nomination the scheduler made is kept when an update
    /// arrives that does not carry it yet.
    fn update(&mut self, old: Option<&Pod>, new: Arc<PodInfo>) {
        let key = key_of(&new.pod);
        let keep = match old {
            Some(old) if nominated_node(old).is_none() && nominated_node(&new.pod).is_none() => {
                self.node_of.get(&key).cloned()
            }
            _ => None,
        };
        self.add(new, keep.as_deref());
    }
}

struct Inner {
    config: QueueConfig,
    pods: HashMap<String, Entry>,
    active: BTreeMap<ActiveKey, String>,
    /// Keys of the pods at `Location::Unschedulable`: cluster events scan these, not every
    /// pending pod (a backlog of thousands in activeQ made each event cost thousands of steps).
    unschedulable: BTreeSet<String>,
    backoff: BTreeMap<BackoffKey, String>,
    in_flight: HashMap<String, InFlight>,
    /// Events seen while some pod was in flight, with their sequence numbers.
    events: VecDeque<(u64, ClusterEvent)>,
    next_event: u64,
    seq: u64,
    scheduling_cycle: u64,
    nominator: Nominator,
    closed: bool,
}

/// The scheduling queue. Cheap to share (`Arc`); every method takes `&self`.
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    plugin_events: HashMap<&'static str, Vec<ClusterEvent>>,
    nominated_count: AtomicUsize,
}

impl std::fmt::Debug for SchedulingQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulingQueue")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SchedulingQueue {
    /// A queue; `plugin_events` says which cluster events may help a pod each plugin rejected
    /// (from [`crate::profile::Frameworks::plugin_events`]; a plugin not listed, or listed
    /// with no events, is helped by any event).
    pub fn new(
        config: QueueConfig,
        plugin_events: HashMap<&'static str, Vec<ClusterEvent>>,
    ) -> SchedulingQueue {
        SchedulingQueue {
            inner: Mutex::new(Inner {
                config,
                pods: HashMap::new(),
                active: BTreeMap::new(),
                unschedulable: BTreeSet::new(),
                backoff: BTreeMap::new(),
                in_flight: HashMap::new(),
                events: VecDeque::new(),
                next_event: 0,
                seq: 0,
                scheduling_cycle: 0,
                nominator: Nominator::default(),
                closed: false,
            }),
            notify: Notify::new(),
            plugin_events,
            nominated_count: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent maps (every mutation is a few
        // infallible map operations), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync_nominated_count(&self, inner: &Inner) {
        self.nominated_count
            .store(inner.nominator.node_of.len(), Ordering::Relaxed);
    }

    /// A new pending pod (informer add). A pod already queued is updated instead.
    pub fn add(&self, pod: Arc<Pod>) {
        let key = key_of(&pod);
        {
            let mut inner = self.lock();
            if inner.pods.contains_key(&key) || inner.in_flight.contains_key(&key) {
                drop(inner);
                return self.update(pod);
            }
            let now = Instant::now();
            let info = Arc::new(PodInfo::new(pod));
            inner.nominator.add(info.clone(), None);
            let qp = QueuedPodInfo::new(info, now);
            let at = if qp.gated {
                Location::Gated
            } else {
                inner.active_key(&qp)
            };
            inner.place(key, qp, at);
            self.sync_nominated_count(&inner);
        }
        self.notify.notify_waiters();
    }

    /// A pending pod changed (informer update).
    pub fn update(&self, pod: Arc<Pod>) {
        let key = key_of(&pod);
        let now = Instant::now();
        let info = Arc::new(PodInfo::new(pod.clone()));
        let mut inner = self.lock();
        if let Some(f) = inner.in_flight.get_mut(&key) {
            // Its attempt will come back through add_unschedulable_if_not_present, which then
            // takes this version and retries it.
            f.updated = Some(pod);
            let old = inner
                .nominator
                .node_of
                .contains_key(&key)
                .then(|| self.find_nominated(&inner, &key))
                .flatten();
            inner.nominator.update(old.as_deref(), info);
            self.sync_nominated_count(&inner);
            return;
        }
        let Some(entry) = inner.pods.remove(&key) else {
            drop(inner);
            return self.add(pod);
        };
        let old = entry.info.pod_info.pod.clone();
        inner.nominator.update(Some(&old), info.clone());
        self.sync_nominated_count(&inner);
        inner.unindex(&key, entry.at);
        let mut qp = entry.info;
        qp.pod_info = info;
        qp.gated = is_gated(&qp.pod_info.pod);
        let at = match entry.at {
            _ if qp.gated => Location::Gated,
            Location::Gated => inner.active_key(&qp),
            Location::Active(_) => inner.active_key(&qp),
            Location::Backoff(k) => Location::Backoff(k),
            Location::Unschedulable => {
                if pod_meaningfully_updated(&old, &qp.pod_info.pod) {
                    inner.after_backoff_location(&qp, now)
                } else {
                    Location::Unschedulable
                }
            }
        };
        let wake = matches!(at, Location::Active(_) | Location::Backoff(_));
        inner.place(key, qp, at);
        drop(inner);
        if wake {
            self.notify.notify_waiters();
        }
    }

    fn find_nominated(&self, inner: &Inner, key: &str) -> Option<Arc<Pod>> {
        let node = inner.nominator.node_of.get(key)?;
        inner
            .nominator
            .by_node
            .get(node)?
            .iter()
            .find(|p| key_of(&p.pod) == key)
            .map(|p| p.pod.clone())
    }

    /// A pending pod was deleted (or bound by someone else).
    pub fn delete(&self, pod: &Pod) {
        let key = key_of(pod);
        let mut inner = self.lock();
        inner.nominator.delete(&key);
        self.sync_nominated_count(&inner);
        if let Some(entry) = inner.pods.remove(&key) {
            inner.unindex(&key, entry.at);
        }
        if let Some(f) = inner.in_flight.get_mut(&key) {
            f.deleted = true;
        }
    }

    /// The next pod to schedule, waiting until there is one; `None` once the queue is closed.
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_backoff = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                if let Some(p) = inner.pop_now(Instant::now()) {
                    return Some(p);
                }
                inner.backoff.keys().next().map(|(t, _)| *t)
            };
            match next_backoff {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The next pod if one is ready now (tests, and draining).
    pub fn try_pop(&self) -> Option<QueuedPodInfo> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        inner.pop_now(Instant::now())
    }

    /// The number of pods popped so far; the runtime passes the value of a pod's attempt to
    /// [`SchedulingQueue::add_unschedulable_if_not_present`].
    pub fn scheduling_cycle(&self) -> u64 {
        self.lock().scheduling_cycle
    }

    /// Puts back a pod whose attempt failed (upstream's `AddUnschedulableIfNotPresent`), and
    /// ends its in-flight state. `rejectors` are the plugins that rejected it (empty for an
    /// internal error: it is retried after backoff). If an event one of them cares about
    /// happened during the attempt — or the pod itself was updated — it is retried (after
    /// backoff) instead of waiting in the unschedulable pool. A pod deleted meanwhile is
    /// dropped.
    pub fn add_unschedulable_if_not_present(
        &self,
        mut pod_info: QueuedPodInfo,
        rejectors: BTreeSet<&'static str>,
        cycle: u64,
    ) -> Result<(), QueueError> {
        let key = key_of(&pod_info.pod_info.pod);
        let now = Instant::now();
        let mut inner = self.lock();
        let flight = inner.in_flight.remove(&key);
        let result = 'put: {
            if let Some(entry) = inner.pods.get(&key) {
                break 'put Err(QueueError::AlreadyPresent {
                    pod: format!(
                        "{}/{}",
                        pod_info.pod_info.namespace(),
                        pod_info.pod_info.name()
                    ),
                    queue: entry.at.queue_name(),
                });
            }
            if flight.as_ref().is_some_and(|f| f.deleted) {
                break 'put Ok(());
            }
            let mut self_updated = false;
            if let Some(newer) = flight.as_ref().and_then(|f| f.updated.clone()) {
                self_updated = pod_meaningfully_updated(&pod_info.pod_info.pod, &newer);
                pod_info.pod_info = Arc::new(PodInfo::new(newer));
                pod_info.gated = is_gated(&pod_info.pod_info.pod);
            }
            pod_info.timestamp = now;
            pod_info.unschedulable_plugins = rejectors;
            let retry = pod_info.unschedulable_plugins.is_empty()
                || self_updated
                || match &flight {
                    Some(f) => inner
                        .events
                        .iter()
                        .filter(|(seq, _)| *seq >= f.since)
                        .any(|(_, e)| self.helps(&pod_info, *e)),
                    // Not popped from this queue: fall back on "anything moved since".
                    None => inner.scheduling_cycle > cycle,
                };
            let at = if pod_info.gated {
                Location::Gated
            } else if retry {
                inner.after_backoff_location(&pod_info, now)
            } else {
                Location::Unschedulable
            };
            inner.place(key, pod_info, at);
            Ok(())
        };
        inner.prune_events();
        drop(inner);
        self.notify.notify_waiters();
        result
    }

    /// Whether `event` may make `pod` schedulable, per its rejecting plugins.
    fn helps(&self, pod: &QueuedPodInfo, event: ClusterEvent) -> bool {
        pod.unschedulable_plugins.is_empty()
            || pod
                .unschedulable_plugins
                .iter()
                .any(|p| match self.plugin_events.get(p) {
                    None => true,
                    Some(events) => events.is_empty() || events.contains(&event),
                })
    }

    /// A cluster event happened: every unschedulable pod a rejecting plugin of which
    /// registered `event` is retried (into backoffQ if still backing off, else activeQ); the
    /// event is remembered for pods in flight.
    pub fn move_all_to_active_or_backoff(&self, event: ClusterEvent) {
        let now = Instant::now();
        let mut inner = self.lock();
        if !inner.in_flight.is_empty() {
            let seq = inner.next_event;
            inner.next_event += 1;
            inner.events.push_back((seq, event));
        }
        // Deterministic activeQ order among equals: the longest-waiting first.
        let movable = inner.unschedulable_where(|qp| self.helps(qp, event));
        let moved = !movable.is_empty();
        for key in movable {
            inner.requeue(&key, now);
        }
        drop(inner);
        if moved {
            self.notify.notify_waiters();
        }
    }

    /// Moves every pod whose backoff is over into activeQ.
    pub fn flush_backoff_completed(&self) {
        let moved = self.lock().flush_backoff(Instant::now());
        if moved {
            self.notify.notify_waiters();
        }
    }

    /// Retries every pod that has waited in the unschedulable pool longer than
    /// `max_in_unschedulable`.
    pub fn flush_unschedulable_leftover(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let max = inner.config.max_in_unschedulable;
        let stale = inner.unschedulable_where(|qp| now.duration_since(qp.timestamp) > max);
        let moved = !stale.is_empty();
        for key in stale {
            inner.requeue(&key, now);
        }
        drop(inner);
        if moved {
            self.notify.notify_waiters();
        }
    }

    /// Runs the periodic flushes until the queue is closed.
    pub async fn run_flush(self: Arc<Self>) {
        let mut backoff = tokio::time::interval(BACKOFF_FLUSH_INTERVAL);
        let mut leftover = tokio::time::interval(UNSCHEDULABLE_FLUSH_INTERVAL);
        loop {
            tokio::select! {
                _ = backoff.tick() => self.flush_backoff_completed(),
                _ = leftover.tick() => self.flush_unschedulable_leftover(),
            }
            if self.lock().closed {
                return;
            }
        }
    }

    /// Ends a pod's attempt (bound, or given up) without putting it back.
    pub fn done(&self, uid: &str) {
        let mut inner = self.lock();
        inner.in_flight.remove(uid);
        inner.prune_events();
    }

    /// Wakes every `pop` with `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Records that `pod` is nominated to `node` (after preemption chose it), before the
    /// API update saying so arrives.
    pub fn add_nominated_pod(&self, pod: Arc<PodInfo>, node: &str) {
        let mut inner = self.lock();
        inner.nominator.add(pod, Some(node));
        self.sync_nominated_count(&inner);
    }

    /// Forgets a nomination (the pod was bound or deleted).
    pub fn delete_nominated_pod_if_exists(&self, uid: &str) {
        let mut inner = self.lock();
        inner.nominator.delete(uid);
        self.sync_nominated_count(&inner);
    }

    pub fn stats(&self) -> QueueStats {
        let inner = self.lock();
        let mut s = QueueStats {
            active: inner.active.len(),
            backoff: inner.backoff.len(),
            in_flight: inner.in_flight.len(),
            ..QueueStats::default()
        };
        for e in inner.pods.values() {
            match e.at {
                Location::Unschedulable => s.unschedulable += 1,
                Location::Gated => s.gated += 1,
                _ => {}
            }
        }
        s
    }

    /// Every queued pod (not in flight) with where it is: `active`, `backoff`,
    /// `unschedulable` or `gated`.
    pub fn pending_pods(&self) -> Vec<(QueuedPodInfo, &'static str)> {
        let inner = self.lock();
        inner
            .pods
            .values()
            .map(|e| {
                let at = match e.at {
                    Location::Active(_) => "active",
                    Location::Backoff(_) => "backoff",
                    Location::Unschedulable => "unschedulable",
                    Location::Gated => "gated",
                };
                (e.info.clone(), at)
            })
            .collect()
    }
}

impl PodNominator for SchedulingQueue {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.lock()
            .nominator
            .by_node
            .get(node)
            .cloned()
            .unwrap_or_default()
    }

    fn has_nominated_pods(&self) -> bool {
        self.nominated_count.load(Ordering::Relaxed) > 0
    }
}

/// Whether an update can change the scheduling result (upstream's `isPodUpdated`: anything
/// but status and bookkeeping metadata).
fn pod_meaningfully_updated(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || old.metadata.owner_references != new.metadata.owner_references
        || old.metadata.finalizers != new.metadata.finalizers
}

impl Inner {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn active_key(&mut self, qp: &QueuedPodInfo) -> Location {
        let seq = self.next_seq();
        Location::Active((Reverse(qp.pod_info.priority()), qp.timestamp, seq))
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.config.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.config.max_backoff {
                return self.config.max_backoff;
            }
        }
        d.min(self.config.max_backoff)
    }

    fn backoff_expiry(&self, qp: &QueuedPodInfo) -> Instant {
        qp.timestamp + self.backoff_duration(qp.attempts)
    }

    /// Where a pod to retry goes: backoffQ while its backoff lasts, else activeQ.
    fn after_backoff_location(&mut self, qp: &QueuedPodInfo, now: Instant) -> Location {
        let expiry = self.backoff_expiry(qp);
        if expiry > now {
            let seq = self.next_seq();
            Location::Backoff((expiry, seq))
        } else {
            self.active_key(qp)
        }
    }

    fn place(&mut self, key: String, info: QueuedPodInfo, at: Location) {
        match at {
            Location::Active(k) => {
                self.active.insert(k, key.clone());
            }
            Location::Backoff(k) => {
                self.backoff.insert(k, key.clone());
            }
            Location::Unschedulable => {
                self.unschedulable.insert(key.clone());
            }
            Location::Gated => {}
        }
        self.pods.insert(key, Entry { info, at });
    }

    fn unindex(&mut self, key: &str, at: Location) {
        match at {
            Location::Active(k) => {
                self.active.remove(&k);
            }
            Location::Backoff(k) => {
                self.backoff.remove(&k);
            }
            Location::Unschedulable => {
                self.unschedulable.remove(key);
            }
            Location::Gated => {}
        }
    }

    /// The unschedulable pods `keep` selects, longest-waiting first.
    fn unschedulable_where(&self, keep: impl Fn(&QueuedPodInfo) -> bool) -> Vec<String> {
        let mut found: Vec<(Instant, &String)> = self
            .unschedulable
            .iter()
            .filter_map(|k| {
                let e = self.pods.get(k)?;
                (e.at == Location::Unschedulable && keep(&e.info)).then_some((e.info.timestamp, k))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, k)| k.clone()).collect()
    }

    /// Moves an unschedulable pod to backoffQ or activeQ.
    fn requeue(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.pods.remove(key) else {
            return;
        };
        self.unindex(key, entry.at);
        let at = self.after_backoff_location(&entry.info, now);
        self.place(key.to_string(), entry.info, at);
    }

    fn flush_backoff(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some((&(expiry, seq), _)) = self.backoff.first_key_value() {
            if expiry > now {
                break;
            }
            let Some(key) = self.backoff.remove(&(expiry, seq)) else {
                break;
            };
            if let Some(entry) = self.pods.remove(&key) {
                let at = self.active_key(&entry.info);
                self.place(key, entry.info, at);
                moved = true;
            }
        }
        moved
    }

    fn pop_now(&mut self, now: Instant) -> Option<QueuedPodInfo> {
        self.flush_backoff(now);
        let key = match self.active.pop_first() {
            Some((_, key)) => key,
            None if self.config.pop_from_backoff_q => self.backoff.pop_first()?.1,
            None => return None,
        };
        let mut qp = self.pods.remove(&key)?.info;
        qp.attempts += 1;
        qp.initial_attempt_timestamp.get_or_insert(now);
        qp.unschedulable_plugins.clear();
        self.scheduling_cycle += 1;
        self.in_flight.insert(
            key,
            InFlight {
                since: self.next_event,
                updated: None,
                deleted: false,
            },
        );
        Some(qp)
    }

    /// Drops the events no pod in flight can still need.
    fn prune_events(&mut self) {
        let oldest = self.in_flight.values().map(|f| f.since).min();
        match oldest {
            None => self.events.clear(),
            Some(since) => {
                while self.events.front().is_some_and(|(seq, _)| *seq < since) {
                    self.events.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "d", "uid": name},
                "spec": {"containers": [], "priority": priority}
            }))
            .unwrap(),
        )
    }

    fn with(p: &Arc<Pod>, f: impl FnOnce(&mut Pod)) -> Arc<Pod> {
        let mut p = (**p).clone();
        f(&mut p);
        Arc::new(p)
    }

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(
            QueueConfig {
                pop_from_backoff_q: false,
                ..QueueConfig::default()
            },
            HashMap::from([
                (
                    "NodeFit",
                    vec![ClusterEvent::NodeAdd, ClusterEvent::PodDelete],
                ),
                ("Anything", vec![]),
            ]),
        )
    }

    fn names(q: &SchedulingQueue) -> Vec<String> {
        std::iter::from_fn(|| q.try_pop())
            .map(|p| p.pod_info.name().to_string())
            .collect()
    }

    fn fail(q: &SchedulingQueue, rejectors: &[&'static str]) -> String {
        let cycle = q.scheduling_cycle();
        let p = q.try_pop().expect("a pod to pop");
        let name = p.pod_info.name().to_string();
        q.add_unschedulable_if_not_present(p, rejectors.iter().copied().collect(), cycle)
            .unwrap();
        name
    }

    #[tokio::test(start_paused = true)]
    async fn active_queue_orders_by_priority_then_time() {
        let q = queue();
        q.add(pod("low", 1));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("high", 10));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add(pod("low2", 1));
        q.add(pod("high2", 10));
        assert_eq!(names(&q), ["high", "high2", "low", "low2"]);
        assert_eq!(q.stats().in_flight, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_the_cap() {
        let q = queue();
        q.add(pod("p", 0));
        let mut popped = q.try_pop().unwrap();
        // Each failure with no rejector (an error) goes to backoffQ: 1s, 2s, 4s, 8s, 10s, 10s.
        for want in [1u64, 2, 4, 8, 10, 10] {
            let cycle = q.scheduling_cycle();
            q.add_unschedulable_if_not_present(popped, BTreeSet::new(), cycle)
                .unwrap();
            assert_eq!(q.stats().backoff, 1);
            tokio::time::advance(Duration::from_millis(want * 1000 - 1)).await;
            assert!(
                q.try_pop().is_none(),
                "still backing off after {want}s - 1ms"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
            popped = q.try_pop().expect("backoff over");
        }
        assert_eq!(popped.attempts, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn events_move_only_pods_their_rejectors_care_about() {
        let q = queue();
        q.add(pod("fit", 0));
        q.add(pod("any", 0));
        q.add(pod("unknown", 0));
        q.add(pod("other", 0));
        assert_eq!(fail(&q, &["NodeFit"]), "fit");
        assert_eq!(fail(&q, &["Anything"]), "any");
        assert_eq!(fail(&q, &["NotListed"]), "unknown");
        assert_eq!(fail(&q, &["NodeFit"]), "other");
        assert_eq!(q.stats().unschedulable, 4);

        tokio::time::advance(Duration::from_secs(30)).await;
        q.move_all_to_active_or_backoff(ClusterEvent::NodeUpdate);
        // NodeFit does not care about NodeUpdate; the others match any event.
        assert_eq!(q.stats().unschedulable, 2);
        assert_eq!(names(&q), ["any", "unknown"]);
        q.move_all_to_active_or_backoff(ClusterEvent::PodDelete);
        assert_eq!(q.stats().unschedulable, 0);
        assert_eq!(q.stats().active, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn moved_pods_still_serve_their_backoff() {
        let q = queue();
        q.add(pod("p", 0));
        fail(&q, &["NodeFit"]);
        tokio::time::advance(Duration::from_millis(500)).await;
        q.move_all_to_active_or_backoff(ClusterEvent::NodeAdd);
        assert_eq!(q.stats().backoff, 1);
        assert!(q.try_pop().is_none());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(names(&q), ["p"]);
    }

    #[tokio::test(start_paused = true)]
    async fn events_during_an_attempt_are_not_lost() {
        let q = queue();
        q.add(pod("a", 0));
        q.add(pod("b", 0));
        let cycle = q.scheduling_cycle();
        let a = q.try_pop().unwrap();
        let b = q.try_pop().unwrap();
        // A node appears while both are being scheduled.
        q.move_all_to_active_or_backoff(ClusterEvent::NodeAdd);
        q.add_unschedulable_if_not_present(a, BTreeSet::from(["NodeFit"]), cycle)
            .unwrap();
        assert_eq!(q.stats().backoff, 1, "a is retried: NodeAdd may help it");
        // An event NodeFit ignores does not rescue b... but the NodeAdd before it still does.
        q.move_all_to_active_or_backoff(ClusterEvent::NodeUpdate);
        q.add_unschedulable_if_not_present(b, BTreeSet::from(["NodeFit"]), cycle)
            .unwrap();
        assert_eq!(q.stats().backoff, 2);

        // With nothing relevant during the attempt, the pod parks.
        tokio::time::advance(Duration::from_secs(20)).await;
        let c = q.scheduling_cycle();
        let a = q.try_pop().unwrap();
        q.move_all_to_active_or_backoff(ClusterEvent::NodeUpdate);
        q.add_unschedulable_if_not_present(a, BTreeSet::from(["NodeFit"]), c)
            .unwrap();
        assert_eq!(q.stats().unschedulable, 1);
        assert_eq!(q.stats().in_flight, 0);
        let b = q.try_pop().unwrap();
        q.move_all_to_active_or_backoff(ClusterEvent::NodeAdd);
        assert_eq!(q.lock().events.len(), 1, "remembered while b is in flight");
        assert_eq!(q.stats().in_flight, 1);
        q.done(b.uid());
        assert_eq!(q.stats().in_flight, 0);
        assert!(
            q.lock().events.is_empty(),
            "events are pruned once nobody is in flight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn updates_and_deletes_during_an_attempt() {
        let q = queue();
        let p = pod("p", 0);
        q.add(p.clone());
        let c = q.scheduling_cycle();
        let popped = q.try_pop().unwrap();
        q.update(with(&p, |p| {
            p.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        }));
        assert_eq!(q.stats().active, 0, "an in-flight pod is not queued twice");
        q.add_unschedulable_if_not_present(popped, BTreeSet::from(["NodeFit"]), c)
            .unwrap();
        let queued = q.pending_pods();
        assert_eq!(queued.len(), 1);
        assert_eq!(
            queued[0].1, "backoff",
            "its own update makes it worth retrying"
        );
        assert!(
            queued[0].0.pod().metadata.labels.is_some(),
            "the newest version is kept"
        );

        tokio::time::advance(Duration::from_secs(20)).await;
        let c = q.scheduling_cycle();
        let popped = q.try_pop().unwrap();
        q.delete(&p);
        q.add_unschedulable_if_not_present(popped, BTreeSet::from(["NodeFit"]), c)
            .unwrap();
        assert!(
            q.pending_pods().is_empty(),
            "a pod deleted meanwhile is dropped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn updating_an_unschedulable_pod() {
        let q = queue();
        let p = pod("p", 0);
        q.add(p.clone());
        fail(&q, &["NodeFit"]);
        // A status-only update leaves it parked; a spec change retries it.
        q.update(with(&p, |p| {
            p.status = Some(Default::default());
        }));
        assert_eq!(q.stats().unschedulable, 1);
        q.update(with(&p, |p| {
            p.spec.as_mut().unwrap().priority = Some(5);
        }));
        assert_eq!(q.stats().backoff, 1);
        assert!(
            q.add_unschedulable_if_not_present(
                QueuedPodInfo::new(Arc::new(PodInfo::new(p.clone())), Instant::now()),
                BTreeSet::new(),
                0
            )
            .is_err(),
            "already queued"
        );
        q.delete(&p);
        assert_eq!(q.stats(), QueueStats::default());
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_are_retried_after_five_minutes() {
        let q = queue();
        q.add(pod("p", 0));
        fail(&q, &["NodeFit"]);
        tokio::time::advance(Duration::from_secs(299)).await;
        q.flush_unschedulable_leftover();
        assert_eq!(q.stats().unschedulable, 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        q.flush_unschedulable_leftover();
        assert_eq!(q.stats().active, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gated_pods_wait_for_their_gates_to_go() {
        let q = queue();
        let p = with(&pod("g", 0), |p| {
            p.spec.as_mut().unwrap().scheduling_gates =
                Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                    name: "x".into(),
                }]);
        });
        q.add(p.clone());
        assert_eq!(q.stats().gated, 1);
        q.move_all_to_active_or_backoff(ClusterEvent::NodeAdd);
        assert!(q.try_pop().is_none());
        q.update(with(&p, |p| {
            p.spec.as_mut().unwrap().scheduling_gates = None
        }));
        assert_eq!(names(&q), ["g"]);
    }

    #[tokio::test(start_paused = true)]
    async fn pop_waits_for_pods_and_backoff() {
        let q = Arc::new(queue());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.add(pod("late", 0));
        let popped = waiter.await.unwrap().unwrap();
        assert_eq!(popped.pod_info.name(), "late");

        // A backing-off pod is popped when its backoff ends, without a flush.
        q.add_unschedulable_if_not_present(popped, BTreeSet::new(), 0)
            .unwrap();
        let start = Instant::now();
        let p = q.pop().await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        assert_eq!(p.attempts, 2);

        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.is_none() }
        });
        tokio::task::yield_now().await;
        q.close();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_queue_pops_from_backoff() {
        let q = SchedulingQueue::new(QueueConfig::default(), HashMap::new());
        q.add(pod("p", 0));
        fail(&q, &[]);
        assert_eq!(
            names(&q),
            ["p"],
            "v1.33 pops a backing-off pod when activeQ is empty"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nominated_pods_are_indexed_by_node() {
        let q = queue();
        assert!(!q.has_nominated_pods());
        let p = with(&pod("pre", 10), |p| {
            p.status = Some(k8s_openapi::api::core::v1::PodStatus {
                nominated_node_name: Some("n1".into()),
                ..Default::default()
            });
        });
        q.add(p.clone());
        assert!(q.has_nominated_pods());
        assert_eq!(q.nominated_pods_for_node("n1").len(), 1);
        // A nomination the scheduler made survives an update that does not carry it yet.
        let other = pod("other", 5);
        q.add(other.clone());
        q.add_nominated_pod(Arc::new(PodInfo::new(other.clone())), "n2");
        q.update(with(&other, |p| {
            p.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        }));
        assert_eq!(q.nominated_pods_for_node("n2").len(), 1);
        assert!(
            q.nominated_pods_for_node("n2")[0]
                .pod
                .metadata
                .labels
                .is_some()
        );
        // Changing the nomination moves it; deleting forgets it.
        q.update(with(&p, |p| {
            p.status.as_mut().unwrap().nominated_node_name = Some("n3".into());
        }));
        assert!(q.nominated_pods_for_node("n1").is_empty());
        assert_eq!(q.nominated_pods_for_node("n3").len(), 1);
        q.delete(&p);
        q.delete_nominated_pod_if_exists("other");
        assert!(!q.has_nominated_pods());
    }
}
