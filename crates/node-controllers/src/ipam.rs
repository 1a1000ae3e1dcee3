//! Node IPAM (`nodeipam`, upstream's range allocator): every node without `spec.podCIDR` gets
//! the next free `/node_cidr_mask_size` block of the cluster CIDR in `spec.podCIDR` and
//! `spec.podCIDRs`.
//!
//! Guarantees:
//! * No block is given to two nodes: before the first allocation of a term, the blocks of
//!   every node already in the (synced) cache are marked used, and allocation holds the lock
//!   that marks a block used.
//! * A deleted node's block is released (and reused last, see [`crate::cidrs`]).
//! * A node whose CIDR lies outside the cluster CIDR (set by someone else) is left alone.
//! * When the range is exhausted the node gets a `CIDRNotAvailable` Event and is retried with
//!   backoff.
//!
//! IPv4 single-stack only; dual-stack cluster CIDRs are not supported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use controller_runtime::{Action, Change, Context, Informer, Key, Reconcile, Recorder, WorkQueue};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinSet;

use crate::cidrs::CidrSet;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no pod CIDR left in the cluster CIDR for node {node}")]
    Exhausted { node: String },
    #[error("setting the pod CIDR of node {node} to {cidr}")]
    Patch {
        node: String,
        cidr: String,
        #[source]
        source: kube::Error,
    },
}

/// Starts the allocator for one term (nothing when `allocate_node_cidrs` is off or the
/// cluster CIDR is unusable, which is logged).
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    if !ctx.settings.allocate_node_cidrs {
        return;
    }
    let set = match CidrSet::new(&ctx.settings.cluster_cidr, ctx.settings.node_cidr_mask_size) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, cluster_cidr = %ctx.settings.cluster_cidr, "node IPAM disabled");
            return;
        }
    };
    let nodes = ctx.informers.get::<Node>();
    let queue = WorkQueue::new();
    {
        let q = queue.clone();
        nodes.on_change(move |c: &Change<Node>| {
            let interesting = match c {
                Change::Updated { old, new } => pod_cidr(old) != pod_cidr(new),
                _ => true,
            };
            if interesting {
                q.add(Key::of(c.object().as_ref()));
            }
        });
    }
    let reconciler = Arc::new(RangeAllocator {
        client: ctx.client.clone(),
        nodes,
        recorder: ctx.events.recorder("cidrAllocator"),
        state: Mutex::new(State {
            set,
            initialized: false,
            by_node: HashMap::new(),
            pending: HashMap::new(),
        }),
    });
    controller_runtime::spawn_workers(
        "nodeipam",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

fn pod_cidr(n: &Node) -> Option<&str> {
    n.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .filter(|c| !c.is_empty())
}

struct State {
    set: CidrSet,
    initialized: bool,
    /// The block each node holds, as far as this allocator knows.
    by_node: HashMap<String, String>,
    /// Blocks this allocator wrote, by node name: (node UID, block).
    pending: HashMap<String, (String, String)>,
}

impl State {
    /// Records that `node` holds `cidr` (or nothing), releasing what it held before.
    fn assign(&mut self, node: &str, cidr: Option<&str>) {
        if self.by_node.get(node).map(String::as_str) == cidr {
            return;
        }
        if let Some(old) = self.by_node.remove(node) {
            // Only blocks inside the range are ever recorded, so this cannot fail.
            let _ = self.set.release(&old);
        }
        if let Some(c) = cidr {
            match self.set.occupy(c) {
                Ok(()) => {
                    self.by_node.insert(node.to_owned(), c.to_owned());
                }
                Err(e) => tracing::debug!(node, error = %e, "pod CIDR not ours; left alone"),
            }
        }
    }
}

struct RangeAllocator {
    client: kube::Client,
    nodes: Informer<Node>,
    recorder: Recorder,
    state: Mutex<State>,
}

impl RangeAllocator {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Reconcile for RangeAllocator {
    type Error = IpamError;

    async fn reconcile(&self, key: &Key) -> Result<Action, IpamError> {
        let node = self.nodes.get(key);
        let cidr = {
            let mut st = self.state();
            if !st.initialized {
                // Workers start after the cache synced: it holds every existing node.
                for n in self.nodes.list() {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    st.assign(&name, pod_cidr(&n));
                }
                st.initialized = true;
            }
            let Some(node) = node.as_ref() else {
                st.pending.remove(&key.name);
                st.assign(&key.name, None);
                return Ok(Action::Done);
            };
            if let Some(c) = pod_cidr(node) {
                st.pending.remove(&key.name);
                st.assign(&key.name, Some(c));
                return Ok(Action::Done);
            }
            let uid = node.metadata.uid.clone().unwrap_or_default();
            match st.pending.get(&key.name) {
                // Allocated to this very node, whose update has not reached the cache yet:
                // write the same block again rather than a second one.
                Some((u, c)) if *u == uid && st.by_node.get(&key.name) == Some(c) => c.clone(),
                _ => {
                    // A node of this name that held a block was replaced by one without.
                    st.assign(&key.name, None);
                    match st.set.allocate() {
                        Some(c) => {
                            st.by_node.insert(key.name.clone(), c.clone());
                            st.pending.insert(key.name.clone(), (uid, c.clone()));
                            c
                        }
                        None => {
                            drop(st);
                            self.recorder.normal(
                                node.as_ref(),
                                "CIDRNotAvailable",
                                &format!("Node {} status is now: CIDRNotAvailable", key.name),
                            );
                            return Err(IpamError::Exhausted {
                                node: key.name.clone(),
                            });
                        }
                    }
                }
            }
        };
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        let api: Api<Node> = Api::all(self.client.clone());
        match api
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %key.name, %cidr, "pod CIDR allocated");
                Ok(Action::Done)
            }
            Err(e) => {
                let code = match &e {
                    kube::Error::Api(s) => s.code,
                    _ => 0,
                };
                // Gone, or refused (someone else set a pod CIDR first): the block is free
                // again. Any other failure keeps it pending for this node, so the retry
                // writes the same block.
                if code == 404 || code == 422 {
                    let mut st = self.state();
                    st.pending.remove(&key.name);
                    st.assign(&key.name, None);
                }
                if code == 404 {
                    return Ok(Action::Done);
                }
                Err(IpamError::Patch {
                    node: key.name.clone(),
                    cidr,
                    source: e,
                })
            }
        }
    }
}
