//! Hollow nodes: thousands of simulated kubelets in one process, for testing a control plane at
//! scale without machines (upstream's kubemark, done as a plain API client).
//!
//! Each hollow node behaves like a healthy kubelet as seen through the API:
//! * it registers a Node with capacity, allocatable, the four node conditions (Ready), node
//!   info, an InternalIP and a pod CIDR of its own, and the kubelet's labels;
//! * it heartbeats through a Lease in `kube-node-lease` owned by the Node, renewed every 10 s
//!   (40 s duration), and reports its full status every 5 minutes or when someone changed it;
//! * every pod bound to it goes Pending → Running and Ready through pods/status, with an
//!   address from the node's pod CIDR, and on graceful deletion its containers are reported
//!   terminated and the delete is finished with no grace and a uid precondition;
//! * if its Node is deleted, it registers it again.
//!
//! All nodes share one HTTP/2 connection ([`client`]), one pod watch and one node watch; the
//! writes of all nodes go through one bounded budget, and renewals are spread over the period.
//! The state per node is a few words; see [`engine`](crate::engine) for the run loop.

pub mod client;
pub mod config;
mod engine;
pub mod ipam;
pub mod objects;
mod ops;
pub mod view;

use std::time::Duration;

pub use config::{Config, ConfigError, parse_labels, parse_taints};

/// Why the simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("the API server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the API server refused to register node {node}: {reason}")]
    Refused { node: String, reason: String },
}

/// Reported while the simulation starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Another node registered for the first time.
    Registered { done: u32, total: u32 },
    /// Every node is registered; heartbeats and pods are being served.
    AllRegistered { elapsed: Duration },
}

/// What a simulation did, returned when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub nodes: u32,
    /// Nodes registered at least once.
    pub registered: u32,
    /// Time from start until every node was registered.
    pub registration_time: Option<Duration>,
    pub lease_renewals: u64,
    pub lease_failures: u64,
    pub status_reports: u64,
    /// Nodes registered again after someone deleted them.
    pub nodes_recreated: u64,
    pub pods_started: u64,
    /// Pods found already running (from an earlier run) and kept as they were.
    pub pods_adopted: u64,
    /// Pods whose graceful deletion was finished.
    pub pods_deleted: u64,
    pub pod_write_failures: u64,
    /// Pods left Pending because their node's pod CIDR was full.
    pub pods_without_address: u64,
    /// With cleanup, how many nodes were deleted at the end.
    pub cleaned_up: Option<u32>,
    pub uptime: Duration,
}

/// A set of hollow nodes against one API server.
pub struct HollowCluster {
    client: kube::Client,
    config: Config,
    addressing: ipam::Addressing,
}

impl HollowCluster {
    /// Checks `config`; nothing is sent to the server yet.
    pub fn new(client: kube::Client, config: Config) -> Result<HollowCluster, Error> {
        let addressing = config.validate()?;
        Ok(HollowCluster {
            client,
            config,
            addressing,
        })
    }

    /// Registers the nodes and runs them until `shutdown` resolves; then stops heartbeating,
    /// lets the calls in flight finish and, with `cleanup`, deletes the Nodes and Leases.
    /// `progress` hears about registration.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
        cleanup: bool,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<Summary, Error> {
        // One cheap request first, so an unreachable server or a bad credential is one clear
        // error rather than thousands of failed registrations.
        self.client
            .apiserver_version()
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        let shared = ops::Shared::new(self.config, self.addressing, self.client);
        engine::Engine::new(shared, &mut progress)
            .run(shutdown, cleanup)
            .await
    }
}
