//! The run loop behind [`crate::HollowCluster`]: one task owns the state of every hollow node
//! and every pod bound to one, and reacts to four things — the pod watch, the node watch,
//! timers (lease renewals, status reports, retries) and finished API calls.
//!
//! Guarantees:
//! * At most one API operation per node and per pod is in flight, and at most
//!   `max_in_flight` in all; lease renewals go before other work.
//! * Level-triggered: watch events only update what is known and queue the object; what to
//!   do is decided when it is dequeued, from the latest state, so repeated or stale events
//!   are harmless and a failed operation is simply tried again later.
//! * Timers carry the node's registration epoch: when a node is deleted and registered
//!   again its old renewal chain dies and a new one starts, so there is one per node.
//! * Per node, only a few words are kept (uid, lease resourceVersion, a lazily allocated
//!   pod-address bitmap); objects are rebuilt from the configuration on each write.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ops::{self, OpError, PodJob, Registered, Shared};
use crate::view::{ContainerView, NodeView, PodView};
use crate::{Error, Progress, Summary};

/// Upstream's lease controller and status loop jitter their periods by up to 4 %.
const JITTER: f64 = 0.04;
/// First retry delay of a failed operation; doubles per failure.
const RETRY_BASE: Duration = Duration::from_millis(200);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a stopping simulator waits for the calls already in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Node work bits.
const REGISTER: u8 = 1;
const LEASE: u8 = 2;
const STATUS: u8 = 4;

fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + JITTER * rand::random::<f64>())
}

fn backoff(failures: u8) -> Duration {
    RETRY_BASE
        .saturating_mul(1 << failures.min(8))
        .min(RETRY_MAX)
}

#[derive(Debug)]
struct NodeState {
    /// The registered Node's uid; `None` until registered (or after it was deleted).
    uid: Option<Box<str>>,
    /// The Lease's last known resourceVersion.
    lease_rv: Option<Box<str>>,
    /// When the node became Ready (its conditions' lastTransitionTime).
    since: Timestamp,
    ips: crate::ipam::PodIps,
    /// Bumped at each registration; timers of older epochs are ignored.
    epoch: u32,
    /// REGISTER | LEASE | STATUS still to do.
    want: u8,
    busy: bool,
    queued: bool,
    failures: u8,
    /// Node-watch generation that last listed or saw this node.
    seen: u32,
    /// Node-watch generation current when the node was last registered.
    registered_in: u32,
    ever_registered: bool,
}

#[derive(Debug)]
struct PodState {
    uid: Box<str>,
    node: u32,
    containers: Arc<[ContainerView]>,
    init_containers: Arc<[ContainerView]>,
    /// Host offset of the pod's address in its node's block.
    ip: Option<u32>,
    start: Option<Timestamp>,
    deleting: bool,
    gone: bool,
    started: bool,
    terminated: bool,
    busy: bool,
    queued: bool,
    failures: u8,
    /// Pod-watch generation that last listed or saw this pod.
    seen: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Lease {
        node: u32,
        epoch: u32,
    },
    Status {
        node: u32,
        epoch: u32,
    },
    /// Sets `bits` again after a failure.
    Retry {
        node: u32,
        epoch: u32,
        bits: u8,
    },
    Pod {
        key: Box<str>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

enum NodeOp {
    Register,
    Lease,
    Status,
}

enum Done {
    Registered {
        node: u32,
        result: Result<Registered, OpError>,
    },
    Lease {
        node: u32,
        result: Result<String, OpError>,
    },
    Status {
        node: u32,
        result: Result<(), OpError>,
    },
    Pod {
        key: Box<str>,
        uid: Box<str>,
        terminate: bool,
        result: Result<(), OpError>,
    },
}

enum Work {
    Node(u32),
    Pod(Box<str>),
}

type Watch<K> = Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>>;

pub(crate) struct Engine<'p> {
    shared: Arc<Shared>,
    nodes: Vec<NodeState>,
    pods: HashMap<Box<str>, PodState>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    lease_queue: VecDeque<u32>,
    queue: VecDeque<Work>,
    in_flight: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    stats: Summary,
    /// While the first registration of every node is under way: when it began.
    registering: Option<Instant>,
    fatal: Option<Error>,
    node_gen: u32,
    pod_gen: u32,
    progress: &'p mut (dyn FnMut(Progress) + Send),
}

impl<'p> Engine<'p> {
    pub(crate) fn new(
        shared: Shared,
        progress: &'p mut (dyn FnMut(Progress) + Send),
    ) -> Engine<'p> {
        let now = Timestamp::now();
        let n = shared.cfg.nodes;
        let nodes = (0..n)
            .map(|_| NodeState {
                uid: None,
                lease_rv: None,
                since: now,
                ips: shared.addr.pod_ips(),
                epoch: 0,
                want: REGISTER,
                busy: false,
                queued: true,
                failures: 0,
                seen: 0,
                registered_in: 0,
                ever_registered: false,
            })
            .collect();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Engine {
            stats: Summary {
                nodes: n,
                ..Summary::default()
            },
            shared: Arc::new(shared),
            nodes,
            pods: HashMap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            lease_queue: VecDeque::new(),
            queue: (0..n).map(Work::Node).collect(),
            in_flight: 0,
            done_tx,
            done_rx,
            registering: Some(Instant::now()),
            fatal: None,
            node_gen: 0,
            pod_gen: 0,
            progress,
        }
    }

    /// Runs until `shutdown` resolves (or a configuration error shows at registration),
    /// then stops heartbeating, waits for the calls in flight and, if asked, deletes what it
    /// registered.
    pub(crate) async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
        cleanup: bool,
    ) -> Result<Summary, Error> {
        let started = Instant::now();
        let client = self.shared.client.clone();
        // Pages keep the first list of a big cluster's pods from arriving as one huge body.
        let wcfg = watcher::Config::default().page_size(500);
        let mut pod_watch: Watch<PodView> = Box::pin(
            watcher::watcher(Api::<PodView>::all(client.clone()), wcfg.clone()).default_backoff(),
        );
        let mut node_watch: Watch<NodeView> =
            Box::pin(watcher::watcher(Api::<NodeView>::all(client), wcfg).default_backoff());
        tokio::pin!(shutdown);
        loop {
            self.dispatch();
            if self.fatal.is_some() {
                break;
            }
            // The watches start once every node is registered: until then there is nothing
            // for them to find, and registration gets the whole write budget.
            let watching = self.registering.is_none();
            let next = self.timers.peek().map(|t| t.0.at);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = self.done_rx.recv() => self.complete(done),
                () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => self.fire_timers(),
                Some(event) = node_watch.next(), if watching => self.node_event(event),
                Some(event) = pod_watch.next(), if watching => self.pod_event(event),
            }
        }
        drop((pod_watch, node_watch));
        self.drain().await;
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        if cleanup {
            self.stats.cleaned_up = Some(self.cleanup().await);
        }
        self.stats.uptime = started.elapsed();
        Ok(self.stats)
    }

    fn push_timer(&mut self, after: Duration, kind: TimerKind) {
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            at: Instant::now() + after,
            seq: self.seq,
            kind,
        }));
    }

    fn enqueue_node(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        if n.queued || n.busy || n.want == 0 {
            return;
        }
        n.queued = true;
        if n.want & LEASE != 0 {
            self.lease_queue.push_back(i);
        } else {
            self.queue.push_back(Work::Node(i));
        }
    }

    fn enqueue_pod(&mut self, key: &str) {
        if let Some(p) = self.pods.get_mut(key)
            && !p.queued
            && !p.busy
        {
            p.queued = true;
            self.queue.push_back(Work::Pod(key.into()));
        }
    }

    /// Starts queued work while the write budget allows.
    fn dispatch(&mut self) {
        while self.in_flight < self.shared.cfg.max_in_flight {
            let work = match self.lease_queue.pop_front() {
                Some(i) => Work::Node(i),
                None => match self.queue.pop_front() {
                    Some(w) => w,
                    None => return,
                },
            };
            match work {
                Work::Node(i) => self.start_node_op(i),
                Work::Pod(key) => self.start_pod_op(key),
            }
        }
    }

    fn start_node_op(&mut self, i: u32) {
        let shared = self.shared.clone();
        let tx = self.done_tx.clone();
        let n = &mut self.nodes[i as usize];
        n.queued = false;
        if n.busy {
            return;
        }
        let op = if n.want & REGISTER != 0 {
            // Registration reports the status too.
            n.want &= !(REGISTER | STATUS);
            NodeOp::Register
        } else if n.uid.is_none() {
            // Deleted and not yet due for registration again: nothing to renew.
            n.want = 0;
            return;
        } else if n.want & LEASE != 0 {
            n.want &= !LEASE;
            NodeOp::Lease
        } else if n.want & STATUS != 0 {
            n.want &= !STATUS;
            NodeOp::Status
        } else {
            return;
        };
        n.busy = true;
        self.in_flight += 1;
        let (uid, rv, since) = (n.uid.clone(), n.lease_rv.clone(), n.since);
        match op {
            NodeOp::Register => {
                tokio::spawn(async move {
                    let result = ops::register(shared, i, since).await;
                    let _ = tx.send(Done::Registered { node: i, result });
                });
            }
            NodeOp::Lease => {
                let uid = uid.map(String::from).unwrap_or_default();
                tokio::spawn(async move {
                    let result = ops::renew_lease(shared, i, uid, rv.map(String::from)).await;
                    let _ = tx.send(Done::Lease { node: i, result });
                });
            }
            NodeOp::Status => {
                tokio::spawn(async move {
                    let result = ops::report_status(shared, i, since).await;
                    let _ = tx.send(Done::Status { node: i, result });
                });
            }
        }
    }

    fn start_pod_op(&mut self, key: Box<str>) {
        let Some(p) = self.pods.get_mut(&key) else {
            return;
        };
        p.queued = false;
        if p.busy {
            return;
        }
        let node = p.node;
        if p.gone {
            if let Some(off) = p.ip {
                self.nodes[node as usize].ips.release(off);
            }
            self.pods.remove(&key);
            return;
        }
        let terminate = if p.deleting {
            if p.terminated {
                return;
            }
            true
        } else {
            if p.started {
                return;
            }
            if p.ip.is_none() {
                match self.nodes[node as usize].ips.allocate() {
                    Some(off) => p.ip = Some(off),
                    None => {
                        tracing::warn!(pod = %key, node = %self.shared.cfg.node_name(node), "no free pod address on the node; the pod stays Pending");
                        self.stats.pods_without_address += 1;
                        return;
                    }
                }
            }
            false
        };
        let start = *p.start.get_or_insert_with(Timestamp::now);
        let addr = &self.shared.addr;
        let (namespace, name) = key.split_once('/').unwrap_or(("", &key));
        let job = PodJob {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: p.uid.to_string(),
            containers: p.containers.clone(),
            init_containers: p.init_containers.clone(),
            host_ip: addr.node_ip(node),
            pod_ip: p.ip.map(|off| addr.pod_ip(node, off)),
            start,
        };
        p.busy = true;
        self.in_flight += 1;
        let uid = p.uid.clone();
        let (shared, tx) = (self.shared.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            let result = if terminate {
                ops::terminate_pod(shared, job).await
            } else {
                ops::start_pod(shared, job).await
            };
            let _ = tx.send(Done::Pod {
                key,
                uid,
                terminate,
                result,
            });
        });
    }

    fn complete(&mut self, done: Done) {
        self.in_flight -= 1;
        match done {
            Done::Registered { node, result } => self.registered(node, result),
            Done::Lease { node, result } => {
                let cfg_renew = self.shared.cfg.lease_renew_interval;
                let n = &mut self.nodes[node as usize];
                n.busy = false;
                let epoch = n.epoch;
                match result {
                    Ok(rv) => {
                        n.lease_rv = Some(rv.into());
                        n.failures = 0;
                        self.stats.lease_renewals += 1;
                        self.push_timer(jittered(cfg_renew), TimerKind::Lease { node, epoch });
                    }
                    Err(e) => {
                        n.lease_rv = None;
                        n.failures = n.failures.saturating_add(1);
                        self.stats.lease_failures += 1;
                        let failures = n.failures;
                        if failures == 3 {
                            tracing::warn!(node = %self.shared.cfg.node_name(node), error = %e, "lease renewal keeps failing");
                        } else {
                            tracing::debug!(node = %self.shared.cfg.node_name(node), error = %e, "lease renewal failed");
                        }
                        self.push_timer(
                            backoff(failures).min(cfg_renew),
                            TimerKind::Lease { node, epoch },
                        );
                    }
                }
                self.enqueue_node(node);
            }
            Done::Status { node, result } => {
                let n = &mut self.nodes[node as usize];
                n.busy = false;
                match result {
                    Ok(()) => self.stats.status_reports += 1,
                    Err(OpError::NotFound) => {
                        self.node_gone(node, "its status report found it deleted")
                    }
                    Err(e) => {
                        n.failures = n.failures.saturating_add(1);
                        let (failures, epoch) = (n.failures, n.epoch);
                        tracing::warn!(node = %self.shared.cfg.node_name(node), error = %e, "node status report failed");
                        self.push_timer(
                            backoff(failures),
                            TimerKind::Retry {
                                node,
                                epoch,
                                bits: STATUS,
                            },
                        );
                    }
                }
                self.enqueue_node(node);
            }
            Done::Pod {
                key,
                uid,
                terminate,
                result,
            } => self.pod_done(key, uid, terminate, result),
        }
    }

    fn registered(&mut self, node: u32, result: Result<Registered, OpError>) {
        let renew = self.shared.cfg.lease_renew_interval;
        let report = self.shared.cfg.status_report_interval;
        let node_gen = self.node_gen;
        let n = &mut self.nodes[node as usize];
        n.busy = false;
        match result {
            Ok(r) => {
                n.uid = Some(r.uid.into());
                n.lease_rv = Some(r.lease_rv.into());
                n.failures = 0;
                n.epoch = n.epoch.wrapping_add(1);
                n.registered_in = node_gen;
                let epoch = n.epoch;
                let first = !std::mem::replace(&mut n.ever_registered, true);
                // Spread first renewals over a whole period, whatever the registration order.
                self.push_timer(
                    renew.mul_f64(rand::random::<f64>()),
                    TimerKind::Lease { node, epoch },
                );
                self.push_timer(jittered(report), TimerKind::Status { node, epoch });
                if first {
                    self.stats.registered += 1;
                    (self.progress)(Progress::Registered {
                        done: self.stats.registered,
                        total: self.stats.nodes,
                    });
                    if self.stats.registered == self.stats.nodes
                        && let Some(began) = self.registering.take()
                    {
                        let elapsed = began.elapsed();
                        self.stats.registration_time = Some(elapsed);
                        (self.progress)(Progress::AllRegistered { elapsed });
                    }
                }
            }
            Err(e) => {
                let name = self.shared.cfg.node_name(node);
                if self.registering.is_some() && matches!(e, OpError::Refused(_)) {
                    // Every node is built alike: if the server refuses one, it refuses all.
                    self.fatal = Some(Error::Refused {
                        node: name,
                        reason: e.to_string(),
                    });
                    return;
                }
                n.failures = n.failures.saturating_add(1);
                let (failures, epoch) = (n.failures, n.epoch);
                tracing::warn!(node = %name, error = %e, "node registration failed; retrying");
                self.push_timer(
                    backoff(failures),
                    TimerKind::Retry {
                        node,
                        epoch,
                        bits: REGISTER,
                    },
                );
            }
        }
        self.enqueue_node(node);
    }

    fn pod_done(
        &mut self,
        key: Box<str>,
        uid: Box<str>,
        terminate: bool,
        result: Result<(), OpError>,
    ) {
        let Some(p) = self.pods.get_mut(&key) else {
            return;
        };
        p.busy = false;
        if p.uid != uid {
            // The pod was replaced meanwhile; the result was about the old one.
            self.enqueue_pod(&key);
            return;
        }
        match result {
            Ok(()) if terminate => {
                p.terminated = true;
                self.stats.pods_deleted += 1;
            }
            Ok(()) => {
                p.started = true;
                p.failures = 0;
                self.stats.pods_started += 1;
            }
            // Gone, or replaced by a pod of the same name (the uid precondition): the watch
            // tells the rest.
            Err(OpError::NotFound) => p.gone = true,
            Err(OpError::Conflict(_)) if terminate => p.gone = true,
            Err(e) => {
                p.failures = p.failures.saturating_add(1);
                let failures = p.failures;
                self.stats.pod_write_failures += 1;
                tracing::warn!(pod = %key, error = %e, "pod status update failed; retrying");
                self.push_timer(backoff(failures), TimerKind::Pod { key: key.clone() });
                return;
            }
        }
        self.enqueue_pod(&key);
    }

    /// The node was deleted by someone else: register it again, as a kubelet whose Node
    /// disappears does on its next sync.
    fn node_gone(&mut self, node: u32, why: &str) {
        let n = &mut self.nodes[node as usize];
        if n.uid.is_none() {
            return;
        }
        n.uid = None;
        n.lease_rv = None;
        n.since = Timestamp::now();
        n.want |= REGISTER;
        self.stats.nodes_recreated += 1;
        tracing::info!(node = %self.shared.cfg.node_name(node), "{why}; registering it again");
        self.enqueue_node(node);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let report = self.shared.cfg.status_report_interval;
        while let Some(top) = self.timers.peek()
            && top.0.at <= now
        {
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            match t.kind {
                TimerKind::Lease { node, epoch } => {
                    if self.nodes[node as usize].epoch == epoch {
                        self.nodes[node as usize].want |= LEASE;
                        self.enqueue_node(node);
                    }
                }
                TimerKind::Status { node, epoch } => {
                    if self.nodes[node as usize].epoch == epoch {
                        self.nodes[node as usize].want |= STATUS;
                        self.push_timer(jittered(report), TimerKind::Status { node, epoch });
                        self.enqueue_node(node);
                    }
                }
                TimerKind::Retry { node, epoch, bits } => {
                    let n = &mut self.nodes[node as usize];
                    if n.epoch == epoch && (bits != REGISTER || n.uid.is_none()) {
                        n.want |= bits;
                        self.enqueue_node(node);
                    }
                }
                TimerKind::Pod { key } => self.enqueue_pod(&key),
            }
        }
    }

    fn node_event(&mut self, event: Result<Event<NodeView>, watcher::Error>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "node watch failed; it will be restarted");
                return;
            }
        };
        match event {
            Event::Init => self.node_gen += 1,
            Event::InitApply(node) | Event::Apply(node) => {
                let Some(i) = node
                    .metadata
                    .name
                    .as_deref()
                    .and_then(|n| self.shared.cfg.node_index(n))
                else {
                    return;
                };
                let n = &mut self.nodes[i as usize];
                n.seen = self.node_gen;
                let ours = n.uid.is_some() && n.uid.as_deref() == node.metadata.uid.as_deref();
                if ours && !node.ready() && n.want & STATUS == 0 {
                    // Someone changed the status we report (the node lifecycle controller
                    // marks silent nodes Unknown): report it again.
                    n.want |= STATUS;
                    self.enqueue_node(i);
                }
            }
            Event::Delete(node) => {
                let Some(i) = node
                    .metadata
                    .name
                    .as_deref()
                    .and_then(|n| self.shared.cfg.node_index(n))
                else {
                    return;
                };
                if self.nodes[i as usize].uid.as_deref() == node.metadata.uid.as_deref() {
                    self.node_gone(i, "the node was deleted");
                }
            }
            Event::InitDone => {
                // Nodes registered before this list began but missing from it were deleted
                // while the watch was down.
                let gen_ = self.node_gen;
                let missing: Vec<u32> = (0..self.shared.cfg.nodes)
                    .filter(|&i| {
                        let n = &self.nodes[i as usize];
                        n.uid.is_some() && !n.busy && n.seen != gen_ && n.registered_in < gen_
                    })
                    .collect();
                for i in missing {
                    self.node_gone(i, "the node is missing from a fresh list");
                }
            }
        }
    }

    fn pod_event(&mut self, event: Result<Event<PodView>, watcher::Error>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; it will be restarted");
                return;
            }
        };
        match event {
            Event::Init => self.pod_gen += 1,
            Event::InitApply(pod) | Event::Apply(pod) => self.pod_applied(pod),
            Event::Delete(pod) => {
                let key = pod_key(&pod);
                if let Some(p) = self.pods.get_mut(key.as_str())
                    && Some(&*p.uid) == pod.metadata.uid.as_deref()
                {
                    p.gone = true;
                    self.enqueue_pod(&key);
                }
            }
            Event::InitDone => {
                let gen_ = self.pod_gen;
                let missing: Vec<Box<str>> = self
                    .pods
                    .iter_mut()
                    .filter(|(_, p)| p.seen != gen_)
                    .map(|(k, p)| {
                        p.gone = true;
                        k.clone()
                    })
                    .collect();
                for key in missing {
                    self.enqueue_pod(&key);
                }
            }
        }
    }

    fn pod_applied(&mut self, pod: PodView) {
        let key = pod_key(&pod);
        let node = pod.node_name().and_then(|n| self.shared.cfg.node_index(n));
        let Some(node) = node else {
            // Not ours; if a pod of that name was, it has been replaced by this one.
            if let Some(p) = self.pods.get_mut(key.as_str()) {
                p.gone = true;
                self.enqueue_pod(&key);
            }
            return;
        };
        let uid: Box<str> = pod.metadata.uid.as_deref().unwrap_or_default().into();
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let gen_ = self.pod_gen;
        let spec = pod.spec.as_ref();
        let fresh = |busy| PodState {
            uid: uid.clone(),
            node,
            containers: spec
                .map(|s| s.containers.clone())
                .unwrap_or_default()
                .into(),
            init_containers: spec
                .and_then(|s| s.init_containers.clone())
                .unwrap_or_default()
                .into(),
            ip: None,
            start: None,
            deleting: false,
            gone: false,
            started: false,
            terminated: false,
            busy,
            queued: false,
            failures: 0,
            seen: gen_,
        };
        let p = match self.pods.get_mut(key.as_str()) {
            Some(p) if p.uid == uid => p,
            Some(p) => {
                // Replaced by a new pod of the same name.
                if let Some(off) = p.ip.take() {
                    self.nodes[p.node as usize].ips.release(off);
                }
                let (busy, queued) = (p.busy, p.queued);
                *p = fresh(busy);
                p.queued = queued;
                p
            }
            None => self
                .pods
                .entry(key.as_str().into())
                .or_insert_with(|| fresh(false)),
        };
        p.seen = gen_;
        p.deleting |= deleting;
        if !p.started && !p.deleting && p.ip.is_none() {
            if let Some(off) = pod
                .running_ip()
                .and_then(|ip| self.shared.addr.pod_offset(node, ip))
                .filter(|&off| self.nodes[node as usize].ips.reserve(off))
            {
                // Started by an earlier run of the simulator: keep it as it is.
                p.ip = Some(off);
                p.started = true;
                self.stats.pods_adopted += 1;
            } else if pod.terminal() {
                // A kubelet never restarts a finished pod.
                p.started = true;
            }
        }
        self.enqueue_pod(&key);
    }

    /// Lets the calls in flight finish (for at most [`DRAIN`]); starts nothing new.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while self.in_flight > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(_)) => self.in_flight -= 1,
                _ => {
                    tracing::warn!(
                        in_flight = self.in_flight,
                        "stopping with API calls still in flight"
                    );
                    return;
                }
            }
        }
    }

    /// Deletes every registered node's Lease and Node; how many nodes were deleted.
    async fn cleanup(&self) -> u32 {
        let s = &self.shared;
        let registered: Vec<u32> = (0..s.cfg.nodes)
            .filter(|&i| self.nodes[i as usize].ever_registered)
            .collect();
        let deleted = futures::stream::iter(registered)
            .map(|i| async move {
                let name = s.cfg.node_name(i);
                let dp = kube::api::DeleteParams::default();
                if let Err(e) = s.leases.delete(&name, &dp).await.map_err(OpError::from)
                    && e != OpError::NotFound
                {
                    tracing::warn!(node = %name, error = %e, "deleting the lease failed");
                }
                match s.nodes.delete(&name, &dp).await.map_err(OpError::from) {
                    Ok(_) => true,
                    Err(OpError::NotFound) => false,
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e, "deleting the node failed");
                        false
                    }
                }
            })
            .buffer_unordered(s.cfg.max_in_flight)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        u32::try_from(deleted).unwrap_or(u32::MAX)
    }
}

fn pod_key(pod: &PodView) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let cases = [(1, 400), (2, 800), (5, 6400), (8, 30_000), (200, 30_000)];
        for (failures, ms) in cases {
            assert_eq!(backoff(failures), Duration::from_millis(ms), "{failures}");
        }
    }

    #[test]
    fn jitter_stays_within_four_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(10) && d <= Duration::from_millis(10_400),
                "{d:?}"
            );
        }
    }

    #[test]
    fn timers_pop_earliest_first() {
        let base = Instant::now();
        let mut heap = BinaryHeap::new();
        for (secs, seq) in [(3, 1), (1, 2), (2, 3), (1, 4)] {
            heap.push(Reverse(Timer {
                at: base + Duration::from_secs(secs),
                seq,
                kind: TimerKind::Lease { node: 0, epoch: 0 },
            }));
        }
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|t| t.0.seq)).collect();
        assert_eq!(order, [2, 4, 3, 1]);
    }
}
