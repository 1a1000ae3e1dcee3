//! The machinery every keelson controller shares, shaped like client-go's and
//! kube-runtime's: [`informer`]s (one list-and-watch per type, shared), a [`queue`] of keys that
//! never hands one key to two workers, [`worker`]s that run a level-triggered [`Reconcile`] and
//! retry with backoff, [`expectations`] against acting on a stale cache, the [`owners`] rules for
//! controller references, and an [`events`] recorder.
//!
//! Controllers are clients of the public API only. A controller is started with a
//! [`Context`] for one leadership term: it registers handlers on the informers it needs
//! (handlers only enqueue keys), and spawns its workers; everything stops when the term's
//! tasks are aborted.

pub mod events;
pub mod expectations;
pub mod hash;
pub mod informer;
pub mod key;
pub mod owners;
pub mod queue;
pub mod worker;

pub use events::{EventSink, EventType, Recorder};
pub use expectations::Expectations;
pub use informer::{Change, Informer, Informers, Watched};
pub use key::Key;
pub use queue::WorkQueue;
pub use worker::{Action, Reconcile, spawn_workers};

use std::sync::Arc;
use std::time::Duration;

/// What one leadership term gives its controllers.
#[derive(Clone)]
pub struct Context {
    /// Authenticated as the controller manager.
    pub client: kube::Client,
    pub informers: Informers,
    pub events: EventSink,
    pub settings: Arc<Settings>,
}

impl Context {
    /// A context whose informers and Event writer run on `tasks`.
    pub fn new(
        client: kube::Client,
        settings: Arc<Settings>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Context {
        Context {
            informers: Informers::new(client.clone()),
            events: EventSink::start(client.clone(), tasks),
            client,
            settings,
        }
    }
}

/// The controller manager's knobs (upstream's kube-controller-manager flags of the same
/// names; defaults are upstream's unless said otherwise).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Workers per controller (`--concurrent-*-syncs`).
    pub workers: usize,
    /// A node whose Lease and status stop being renewed for this long goes `Ready=Unknown`
    /// (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// A node that never posted status gets this long before it is judged
    /// (`--node-startup-grace-period`).
    pub node_startup_grace_period: Duration,
    /// Pod CIDRs are allocated from this range (`--cluster-cidr`; keelson's default, as k3s').
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Whether nodes get pod CIDRs (`--allocate-node-cidrs`; on by default in keelson).
    pub allocate_node_cidrs: bool,
    /// Terminated pods beyond this many are garbage-collected, oldest first
    /// (`--terminated-pod-gc-threshold`).
    pub terminated_pod_gc_threshold: usize,
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 5,
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            node_startup_grace_period: Duration::from_secs(60),
            cluster_cidr: "10.42.0.0/16".to_owned(),
            node_cidr_mask_size: 24,
            allocate_node_cidrs: true,
            terminated_pod_gc_threshold: 12_500,
            root_ca_pem: None,
        }
    }
}

/// Starts one controller for a term: registers its informer handlers and spawns its workers
/// on the given tasks.
pub type StartFn = fn(&Context, &mut tokio::task::JoinSet<()>);

/// A controller the manager can run, by its upstream name (`replicaset`, `deployment`, ...;
/// the names `--controllers` takes).
#[derive(Clone, Copy)]
pub struct Controller {
    pub name: &'static str,
    pub start: StartFn,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .finish()
    }
}
