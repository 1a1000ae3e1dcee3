//! The node lifecycle controller (`nodelifecycle`): node health, condition taints, and
//! marking pods on lost nodes not ready.
//!
//! Every `node_monitor_period` each node is reconciled (and also whenever it changes):
//! 1. Health ([`crate::health`]): a node whose Lease and Ready heartbeat have not changed for
//!    the grace period gets its kubelet conditions set to `Unknown` (a strategic-merge patch
//!    of `nodes/status` guarded by the resourceVersion we judged, so a kubelet that spoke up
//!    meanwhile wins).
//! 2. Taints ([`crate::taints`]): the NoSchedule taints that mirror conditions and the
//!    NoExecute `unreachable` / `not-ready` taints that start taint-based eviction, written
//!    as one guarded patch of `spec.taints`.
//! 3. Pods on a node whose Ready is `Unknown` get their Ready condition set False (upstream's
//!    `MarkPodsNotReady`): nobody else will, since the kubelet is silent.
//!
//! Not implemented (documented divergences from upstream): zone states and the eviction rate
//! limits (`--node-eviction-rate`, `--secondary-node-eviction-rate`, full-disruption mode in
//! which upstream stops tainting when every node of every zone is down). Here a lost node is
//! tainted as soon as it is judged, whatever happens to other nodes.

use std::sync::{Arc, Mutex};

use controller_runtime::{Action, Change, Context, Informer, Key, Reconcile, Recorder, WorkQueue};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinSet;

use crate::health::{Grace, HealthMap, unknown_conditions};
use crate::taints::{desired_taints, ready_status};

/// The namespace of the kubelets' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("marking node {node} Unknown")]
    Status {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the taints of node {node}")]
    Taints {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("marking pod {pod} not ready")]
    PodNotReady {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// Starts the controller for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        nodes.on_change(move |c: &Change<Node>| q.add(Key::of(c.object().as_ref())));
    }
    // Upstream's monitorNodeHealth loop: every node is judged once a period, changed or not
    // (silence is exactly what does not produce a change).
    {
        let (q, nodes, informers) = (queue.clone(), nodes.clone(), ctx.informers.clone());
        let period = ctx
            .settings
            .node_monitor_period
            .max(std::time::Duration::from_millis(100));
        tasks.spawn(async move {
            informers.wait_synced().await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for n in nodes.list() {
                    q.add(Key::of(n.as_ref()));
                }
            }
        });
    }
    let reconciler = Arc::new(NodeLifecycle {
        client: ctx.client.clone(),
        nodes,
        leases,
        pods,
        recorder: ctx.events.recorder("node-controller"),
        health: Mutex::new(HealthMap::default()),
        grace: Grace {
            monitor: ctx.settings.node_monitor_grace_period,
            startup: ctx.settings.node_startup_grace_period,
        },
    });
    controller_runtime::spawn_workers(
        "nodelifecycle",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

struct NodeLifecycle {
    client: kube::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    recorder: Recorder,
    health: Mutex<HealthMap>,
    grace: Grace,
}

impl NodeLifecycle {
    fn health(&self) -> std::sync::MutexGuard<'_, HealthMap> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the node's kubelet conditions Unknown; the node as written.
    async fn mark_unknown(&self, node: &Node) -> Result<Option<Node>, LifecycleError> {
        let now = Timestamp::now();
        let Some(conditions) = unknown_conditions(node, now) else {
            return Ok(None);
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        let api: Api<Node> = Api::all(self.client.clone());
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|source| LifecycleError::Status {
                node: name.clone(),
                source,
            })?;
        tracing::info!(node = %name, "node stopped posting status; marked Unknown");
        if ready_status(node) == Some("True") {
            self.recorder.normal(
                &written,
                "NodeNotReady",
                &format!("Node {name} status is now: NodeNotReady"),
            );
        }
        Ok(Some(written))
    }

    async fn update_taints(&self, node: &Node) -> Result<(), LifecycleError> {
        let Some(taints) = desired_taints(node, Timestamp::now()) else {
            return Ok(());
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        // Taints have no merge key: the whole list is replaced, so guard it with the version
        // it was computed from (a concurrent `kubectl taint` makes this a 409 and a retry).
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        let api: Api<Node> = Api::all(self.client.clone());
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| LifecycleError::Taints {
                node: name.clone(),
                source,
            })?;
        tracing::debug!(node = %name, "node taints updated");
        Ok(())
    }

    /// Sets Ready False on the node's pods that still claim to be ready.
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), LifecycleError> {
        let ready_pods = self.pods.filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                && p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        for pod in ready_pods {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let patch = json!({
                "metadata": {"uid": pod.metadata.uid},
                "status": {"conditions": [{
                    "type": "Ready",
                    "status": "False",
                    "lastTransitionTime": Time(Timestamp::now()),
                }]},
            });
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => self
                    .recorder
                    .warning(pod.as_ref(), "NodeNotReady", "Node is not ready"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(LifecycleError::PodNotReady {
                        pod: format!("{ns}/{name}"),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconcile for NodeLifecycle {
    type Error = LifecycleError;

    async fn reconcile(&self, key: &Key) -> Result<Action, LifecycleError> {
        let Some(cached) = self.nodes.get(key) else {
            self.health().forget(&key.name);
            return Ok(Action::Done);
        };
        let lease = self.leases.get(&Key::new(NODE_LEASE_NAMESPACE, &key.name));
        let stale = self.health().observe(
            &cached,
            lease.as_deref(),
            self.grace,
            tokio::time::Instant::now(),
        );
        let mut node = (*cached).clone();
        if stale && let Some(written) = self.mark_unknown(&node).await? {
            node = written;
        }
        self.update_taints(&node).await?;
        if ready_status(&node) == Some("Unknown") {
            self.mark_pods_not_ready(&key.name).await?;
        }
        Ok(Action::Done)
    }
}
