//! The scheduler's cache of the cluster (upstream's `internal/cache`): every node with the pods
//! bound to it, the pods the scheduler has *assumed* onto a node while their binding is in
//! flight, namespace labels, PodDisruptionBudgets and the workload selectors default topology
//! spreading needs — and the [`Snapshot`] a scheduling cycle works on.
//!
//! Guarantees:
//! * A pod is counted on at most one node. An assumed pod counts on its node from
//!   [`Cache::assume_pod`] until the bound pod arrives from the watch (confirmed, possibly on
//!   another node), [`Cache::forget_pod`] (the binding failed), or — once its binding finished
//!   — the assumed-pod TTL passes without the watch confirming it ([`Cache::cleanup_expired`]).
//! * Snapshots are incremental: each node's [`NodeInfo`] is an `Arc` shared with the snapshots
//!   and copied on write (`Arc::make_mut`), and every change is stamped with a cache-wide
//!   generation, so [`Cache::update_snapshot`] replaces only the nodes changed since the
//!   snapshot's generation. Only adding or removing a node rebuilds the node list (still
//!   sharing every `NodeInfo`). Nothing is deep-copied per cycle, which keeps a cycle cheap at
//!   thousands of nodes.
//! * Pods whose node is not (yet, or any more) known are kept under that node's name and leave
//!   snapshots alone until the Node appears.
//!
//! The cache is plain data behind one mutex; the watches that feed it live in
//! [`crate::informers`], and `keelson why` fills one from lists to rebuild the scheduler's view.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::framework::{
    ClusterEvent, NamespaceLabels, NodeInfo, PodInfo, Snapshot, WorkloadSelector,
};

/// How long an assumed pod whose binding finished may wait for the watch to confirm it before
/// the cache drops it (upstream's historical `durationToExpireAssumedPod`).
pub const DEFAULT_ASSUMED_POD_TTL: Duration = Duration::from_secs(30);

/// Why the scheduler's bookkeeping refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("pod {0} has no uid")]
    NoUid(String),
    #[error("pod {pod} is already in the cache (on node {node:?})")]
    AlreadyPresent { pod: String, node: String },
    #[error("pod {0} is not assumed")]
    NotAssumed(String),
}

/// Whether a pod is bound to a node (`spec.nodeName` set).
pub fn is_assigned(pod: &Pod) -> bool {
    node_name(pod).is_some()
}

/// `spec.nodeName`, if set.
pub fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Succeeded or Failed: the pod's resources are free again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Being deleted (`metadata.deletionTimestamp` set).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `spec.schedulerName`, `default-scheduler` when unset (as the API server defaults it).
pub fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME)
}

/// `namespace/name`, for logs and errors.
pub fn pod_key(pod: &Pod) -> String {
    meta_key(&pod.metadata)
}

fn meta_key(m: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// Identifies one Service, ReplicaSet, ReplicationController or StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl WorkloadKey {
    fn of(kind: &'static str, meta: &ObjectMeta) -> WorkloadKey {
        WorkloadKey {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// A Service's pod selector; `None` for a Service without one (it selects no pods).
pub fn service_selector(s: &Service) -> (WorkloadKey, Option<WorkloadSelector>) {
    let key = WorkloadKey::of("Service", &s.metadata);
    let sel = s.spec.as_ref().and_then(|spec| spec.selector.as_ref());
    let selector = sel.map(|set| WorkloadSelector {
        kind: "Service",
        namespace: key.namespace.clone(),
        selector: LabelSelector::from_set(set),
    });
    (key, selector)
}

/// A ReplicationController's selector (an empty one selects nothing here: the API server
/// defaults it to the template's labels, so empty means "not set").
pub fn replication_controller_selector(
    rc: &ReplicationController,
) -> (WorkloadKey, Option<WorkloadSelector>) {
    let key = WorkloadKey::of("ReplicationController", &rc.metadata);
    let sel = rc
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.as_ref())
        .filter(|s| !s.is_empty());
    let selector = sel.map(|set| WorkloadSelector {
        kind: "ReplicationController",
        namespace: key.namespace.clone(),
        selector: LabelSelector::from_set(set),
    });
    (key, selector)
}

/// A ReplicaSet's selector; `None` if it does not parse.
pub fn replica_set_selector(rs: &ReplicaSet) -> (WorkloadKey, Option<WorkloadSelector>) {
    let key = WorkloadKey::of("ReplicaSet", &rs.metadata);
    let selector = rs
        .spec
        .as_ref()
        .and_then(|spec| LabelSelector::from_k8s(&spec.selector).ok())
        .map(|selector| WorkloadSelector {
            kind: "ReplicaSet",
            namespace: key.namespace.clone(),
            selector,
        });
    (key, selector)
}

/// A StatefulSet's selector; `None` if it does not parse.
pub fn stateful_set_selector(ss: &StatefulSet) -> (WorkloadKey, Option<WorkloadSelector>) {
    let key = WorkloadKey::of("StatefulSet", &ss.metadata);
    let selector = ss
        .spec
        .as_ref()
        .and_then(|spec| LabelSelector::from_k8s(&spec.selector).ok())
        .map(|selector| WorkloadSelector {
            kind: "StatefulSet",
            namespace: key.namespace.clone(),
            selector,
        });
    (key, selector)
}

/// What a Node update changes for pods waiting to be scheduled: `None` when nothing the
/// scheduler looks at changed (heartbeats, images only), else the event to replay.
pub fn node_event(old: Option<&Node>, new: &Node) -> Option<ClusterEvent> {
    let Some(old) = old else {
        return Some(ClusterEvent::NodeAdd);
    };
    let spec = |n: &Node| {
        n.spec
            .as_ref()
            .map(|s| (s.unschedulable.unwrap_or(false), s.taints.clone()))
    };
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    let conditions = |n: &Node| -> Vec<(String, String)> {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect()
    };
    let changed = old.metadata.labels != new.metadata.labels
        || spec(old) != spec(new)
        || allocatable(old) != allocatable(new)
        || conditions(old) != conditions(new);
    changed.then_some(ClusterEvent::NodeUpdate)
}

/// Whether a Node update changes anything the cache keeps (the event-worthy fields, plus the
/// images ImageLocality scores by). Heartbeat-only updates are dropped without a copy.
fn node_content_changed(old: &Node, new: &Node) -> bool {
    let images = |n: &Node| n.status.as_ref().and_then(|s| s.images.clone());
    node_event(Some(old), new).is_some()
        || images(old) != images(new)
        || old.metadata.annotations != new.metadata.annotations
}

/// An assumed pod's state.
#[derive(Clone, Copy, Debug)]
struct Assumed {
    /// Set when the binding call returned: from then on the TTL runs.
    deadline: Option<Instant>,
}

struct PodEntry {
    info: Arc<PodInfo>,
    node: String,
    assumed: Option<Assumed>,
}

struct NodeEntry {
    /// `None` while only pods know of the node.
    node: Option<Arc<Node>>,
    info: Arc<NodeInfo>,
    /// The cache generation of the last change.
    changed_at: u64,
}

#[derive(Default)]
struct State {
    generation: u64,
    nodes: HashMap<String, NodeEntry>,
    /// Changed nodes by the generation they last changed at (one entry per node).
    recent: BTreeMap<u64, String>,
    /// The generation the set of known nodes (with a Node object) last changed at.
    node_set_changed_at: u64,
    pods: HashMap<String, PodEntry>,
    namespaces: NamespaceLabels,
    pdbs: BTreeMap<(String, String), Arc<PodDisruptionBudget>>,
    workloads: BTreeMap<WorkloadKey, WorkloadSelector>,
    /// The generation namespaces, PDBs or workloads last changed at.
    others_changed_at: u64,
}

/// The scheduler's cache. Cheap to share (`Arc<Cache>`); every method takes the one lock briefly.
pub struct Cache {
    state: Mutex<State>,
    assumed_ttl: Duration,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_ASSUMED_POD_TTL)
    }
}

/// A snapshot kept current by [`Cache::update_snapshot`]: the scheduling loop owns one.
#[derive(Default)]
pub struct CachedSnapshot {
    snapshot: Snapshot,
    /// Node name → position in `snapshot.nodes`.
    positions: HashMap<String, usize>,
    generation: u64,
    node_set_generation: u64,
    others_generation: u64,
    initialized: bool,
}

impl CachedSnapshot {
    pub fn new() -> CachedSnapshot {
        CachedSnapshot::default()
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Cache {
    pub fn new(assumed_ttl: Duration) -> Cache {
        Cache {
            state: Mutex::new(State::default()),
            assumed_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping the scheduler would; keep going with what is there.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- nodes ---------------------------------------------------------------------------

    /// Adds or replaces a Node. Returns the event pods waiting to be scheduled should see
    /// (`None` for heartbeat-only updates, which leave the cache untouched).
    pub fn set_node(&self, node: Arc<Node>) -> Option<ClusterEvent> {
        let name = node.metadata.name.clone()?;
        let mut st = self.lock();
        let old = st.nodes.get(&name).and_then(|e| e.node.clone());
        if let Some(old) = &old
            && !node_content_changed(old, &node)
        {
            return None;
        }
        let event = node_event(old.as_deref(), &node);
        let gen_ = st.bump();
        let entry = st.nodes.entry(name.clone()).or_insert_with(|| NodeEntry {
            node: None,
            info: Arc::new(NodeInfo::new(node.clone())),
            changed_at: 0,
        });
        let was_known = entry.node.is_some();
        Arc::make_mut(&mut entry.info).set_node(node.clone());
        entry.node = Some(node);
        let previous = std::mem::replace(&mut entry.changed_at, gen_);
        st.touch(previous, gen_, name);
        if !was_known {
            st.node_set_changed_at = gen_;
        }
        event
    }

    /// Removes a Node. Pods still bound to it stay (out of snapshots) until they are deleted.
    pub fn delete_node(&self, name: &str) -> bool {
        let mut st = self.lock();
        let Some(entry) = st.nodes.get(name) else {
            return false;
        };
        if entry.node.is_none() {
            return false;
        }
        let empty = entry.info.pods.is_empty();
        let gen_ = st.bump();
        st.node_set_changed_at = gen_;
        if empty {
            if let Some(e) = st.nodes.remove(name) {
                st.recent.remove(&e.changed_at);
            }
        } else if let Some(e) = st.nodes.get_mut(name) {
            e.node = None;
            let previous = std::mem::replace(&mut e.changed_at, gen_);
            st.touch(previous, gen_, name.to_string());
        }
        true
    }

    // ---- pods ----------------------------------------------------------------------------

    /// Adds or updates a pod bound to a node (from the watch). Confirms an assumed pod (moving
    /// it if it was bound elsewhere). Terminal pods are removed: their resources are free.
    /// Returns the event this is for pods waiting to be scheduled, `None` if nothing changed.
    pub fn set_pod(&self, pod: Arc<Pod>) -> Option<ClusterEvent> {
        let node = node_name(&pod).map(str::to_string)?;
        let Some(uid) = pod.metadata.uid.clone() else {
            tracing::debug!(pod = %pod_key(&pod), "ignoring a pod without uid");
            return None;
        };
        if is_terminal(&pod) {
            return self
                .remove_pod_by_uid(&uid)
                .then_some(ClusterEvent::PodDelete);
        }
        let mut st = self.lock();
        if let Some(e) = st.pods.get_mut(&uid) {
            // An update that leaves everything the plugins read alone (status churn such as
            // container states) just swaps the object, without touching the node.
            if e.assumed.is_none() && e.node == node && same_for_scheduling(&e.info.pod, &pod) {
                return None;
            }
        }
        // Confirming an assumed pod is the pod's arrival as far as waiting pods can tell.
        let existed = st.pods.get(&uid).is_some_and(|e| e.assumed.is_none());
        st.remove_pod_locked(&uid);
        st.add_pod_locked(Arc::new(PodInfo::new(pod)), node, None);
        Some(if existed {
            ClusterEvent::PodUpdate
        } else {
            ClusterEvent::PodAdd
        })
    }

    /// Removes a pod (deleted, or gone terminal). True if it was counted on a node.
    pub fn delete_pod(&self, pod: &Pod) -> bool {
        match pod.metadata.uid.as_deref() {
            Some(uid) => self.remove_pod_by_uid(uid),
            None => false,
        }
    }

    fn remove_pod_by_uid(&self, uid: &str) -> bool {
        self.lock().remove_pod_locked(uid)
    }

    /// Counts `pod` on `node` before its binding is written, so the next cycles see the node's
    /// resources taken.
    pub fn assume_pod(&self, pod: Arc<PodInfo>, node: &str) -> Result<(), CacheError> {
        let uid = pod.uid().to_string();
        if uid.is_empty() {
            return Err(CacheError::NoUid(pod_key(&pod.pod)));
        }
        let mut st = self.lock();
        if let Some(e) = st.pods.get(&uid) {
            return Err(CacheError::AlreadyPresent {
                pod: pod_key(&pod.pod),
                node: e.node.clone(),
            });
        }
        st.add_pod_locked(pod, node.to_string(), Some(Assumed { deadline: None }));
        Ok(())
    }

    /// The binding call returned: the assumed pod now expires `assumed_ttl` after `now` unless
    /// the watch confirms it first. A pod confirmed already is left alone.
    pub fn finish_binding(&self, uid: &str, now: Instant) {
        let ttl = self.assumed_ttl;
        let mut st = self.lock();
        if let Some(a) = st.pods.get_mut(uid).and_then(|e| e.assumed.as_mut()) {
            a.deadline = Some(now + ttl);
        }
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget_pod(&self, uid: &str) -> Result<(), CacheError> {
        let mut st = self.lock();
        match st.pods.get(uid) {
            Some(e) if e.assumed.is_some() => {
                st.remove_pod_locked(uid);
                Ok(())
            }
            _ => Err(CacheError::NotAssumed(uid.to_string())),
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.lock()
            .pods
            .get(uid)
            .is_some_and(|e| e.assumed.is_some())
    }

    /// Whether the watch has shown the pod bound to a node (not merely assumed).
    pub fn is_bound(&self, uid: &str) -> bool {
        self.lock()
            .pods
            .get(uid)
            .is_some_and(|e| e.assumed.is_none())
    }

    /// Removes assumed pods whose binding finished more than the TTL before `now` without the
    /// watch confirming them; returns them (each is logged: it means a lost watch event).
    pub fn cleanup_expired(&self, now: Instant) -> Vec<Arc<PodInfo>> {
        let mut st = self.lock();
        let expired: Vec<String> = st
            .pods
            .iter()
            .filter(|(_, e)| e.assumed.and_then(|a| a.deadline).is_some_and(|d| d <= now))
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut out = Vec::new();
        for uid in expired {
            if let Some(e) = st.pods.get(&uid) {
                tracing::warn!(pod = %pod_key(&e.info.pod), node = %e.node, "assumed pod expired: its binding was never seen");
                out.push(e.info.clone());
            }
            st.remove_pod_locked(&uid);
        }
        out
    }

    /// The node a pod is counted on (bound or assumed).
    pub fn pod_node(&self, uid: &str) -> Option<String> {
        self.lock().pods.get(uid).map(|e| e.node.clone())
    }

    // ---- namespaces, PDBs, workloads ------------------------------------------------------

    /// Records a namespace's labels; true if they changed.
    pub fn set_namespace(&self, ns: &Namespace) -> bool {
        let Some(name) = ns.metadata.name.clone() else {
            return false;
        };
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        let mut st = self.lock();
        if st.namespaces.get(&name) == Some(&labels) {
            return false;
        }
        st.namespaces.insert(name, labels);
        st.others_changed();
        true
    }

    pub fn delete_namespace(&self, name: &str) -> bool {
        let mut st = self.lock();
        let removed = st.namespaces.remove(name).is_some();
        if removed {
            st.others_changed();
        }
        removed
    }

    pub fn set_pdb(&self, pdb: Arc<PodDisruptionBudget>) {
        let key = (
            pdb.metadata.namespace.clone().unwrap_or_default(),
            pdb.metadata.name.clone().unwrap_or_default(),
        );
        let mut st = self.lock();
        st.pdbs.insert(key, pdb);
        st.others_changed();
    }

    pub fn delete_pdb(&self, namespace: &str, name: &str) -> bool {
        let mut st = self.lock();
        let removed = st
            .pdbs
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some();
        if removed {
            st.others_changed();
        }
        removed
    }

    /// Records (or with `None`, forgets) one workload's selector.
    pub fn set_workload(&self, key: WorkloadKey, selector: Option<WorkloadSelector>) {
        let mut st = self.lock();
        let changed = match selector {
            Some(s) => {
                let same = st
                    .workloads
                    .get(&key)
                    .is_some_and(|old| old.selector.to_string() == s.selector.to_string());
                st.workloads.insert(key, s);
                !same
            }
            None => st.workloads.remove(&key).is_some(),
        };
        if changed {
            st.others_changed();
        }
    }

    // ---- snapshots -----------------------------------------------------------------------

    /// Brings `snap` up to date with the cache, copying only what changed since its last update.
    pub fn update_snapshot(&self, snap: &mut CachedSnapshot) {
        let st = self.lock();
        if !snap.initialized || snap.node_set_generation != st.node_set_changed_at {
            st.rebuild(snap);
            return;
        }
        if snap.generation == st.generation {
            return;
        }
        let mut affinity_changed = false;
        let mut image_changes: Vec<(Arc<NodeInfo>, Arc<NodeInfo>)> = Vec::new();
        for name in st.recent.range(snap.generation + 1..).map(|(_, n)| n) {
            let (Some(entry), Some(&at)) = (st.nodes.get(name), snap.positions.get(name)) else {
                continue;
            };
            let Some(slot) = snap.snapshot.nodes.get_mut(at) else {
                continue;
            };
            let old = std::mem::replace(slot, entry.info.clone());
            affinity_changed |=
                !old.pods_with_affinity.is_empty() || !entry.info.pods_with_affinity.is_empty();
            if !Arc::ptr_eq(&old.node, &entry.info.node) {
                image_changes.push((old, entry.info.clone()));
            }
        }
        let s = &mut snap.snapshot;
        if affinity_changed {
            s.have_pods_with_affinity = s
                .nodes
                .iter()
                .filter(|n| !n.pods_with_affinity.is_empty())
                .cloned()
                .collect();
            s.have_pods_with_required_anti_affinity = s
                .nodes
                .iter()
                .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
                .cloned()
                .collect();
        }
        for (old, new) in image_changes {
            let before: BTreeSet<&str> = old.images().map(|(n, _)| n).collect();
            let after: BTreeSet<&str> = new.images().map(|(n, _)| n).collect();
            for gone in before.difference(&after) {
                if let Some(c) = s.image_nodes.get_mut(*gone) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        s.image_nodes.remove(*gone);
                    }
                }
            }
            for added in after.difference(&before) {
                *s.image_nodes.entry((*added).to_string()).or_insert(0) += 1;
            }
        }
        if snap.others_generation != st.others_changed_at {
            st.fill_others(s);
            snap.others_generation = st.others_changed_at;
        }
        snap.generation = st.generation;
    }

    /// A fresh, complete snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = CachedSnapshot::new();
        self.update_snapshot(&mut snap);
        snap.snapshot
    }

    /// How many nodes (with a Node object) and pods (bound or assumed) the cache holds.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        let nodes = st.nodes.values().filter(|e| e.node.is_some()).count();
        (nodes, st.pods.len())
    }
}

/// Whether two versions of a bound pod look the same to every plugin: labels, spec, deletion
/// and namespace are what plugins read; status changes (other than going terminal, handled
/// before) do not matter.
fn same_for_scheduling(old: &Pod, new: &Pod) -> bool {
    old.metadata.labels == new.metadata.labels
        && old.metadata.deletion_timestamp == new.metadata.deletion_timestamp
        && old.spec == new.spec
}

impl State {
    fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Moves `name` in the change log from `previous` to `now`.
    fn touch(&mut self, previous: u64, now: u64, name: String) {
        self.recent.remove(&previous);
        self.recent.insert(now, name);
    }

    fn others_changed(&mut self) {
        let g = self.bump();
        self.others_changed_at = g;
    }

    fn add_pod_locked(&mut self, pod: Arc<PodInfo>, node: String, assumed: Option<Assumed>) {
        let gen_ = self.bump();
        let entry = self.nodes.entry(node.clone()).or_insert_with(|| NodeEntry {
            node: None,
            info: Arc::new(NodeInfo::new(Arc::new(placeholder_node(&node)))),
            changed_at: 0,
        });
        Arc::make_mut(&mut entry.info).add_pod(pod.clone());
        let previous = std::mem::replace(&mut entry.changed_at, gen_);
        self.touch(previous, gen_, node.clone());
        let uid = pod.uid().to_string();
        self.pods.insert(
            uid,
            PodEntry {
                info: pod,
                node,
                assumed,
            },
        );
    }

    fn remove_pod_locked(&mut self, uid: &str) -> bool {
        let Some(p) = self.pods.remove(uid) else {
            return false;
        };
        let gen_ = self.bump();
        let Some(entry) = self.nodes.get_mut(&p.node) else {
            return true;
        };
        Arc::make_mut(&mut entry.info).remove_pod(uid);
        if entry.node.is_none() && entry.info.pods.is_empty() {
            // The last pod of a node that is gone (or never came): forget the node.
            let at = entry.changed_at;
            self.nodes.remove(&p.node);
            self.recent.remove(&at);
        } else {
            let previous = std::mem::replace(&mut entry.changed_at, gen_);
            self.touch(previous, gen_, p.node);
        }
        true
    }

    /// Rebuilds the node list (sharing every `NodeInfo`), interleaving zones as upstream's node
    /// tree does so that a scan of a prefix of the nodes sees every zone.
    fn rebuild(&self, snap: &mut CachedSnapshot) {
        let mut zones: BTreeMap<String, Vec<&Arc<NodeInfo>>> = BTreeMap::new();
        let mut names: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.node.is_some())
            .map(|(n, _)| n)
            .collect();
        names.sort();
        for name in names {
            if let Some(e) = self.nodes.get(name) {
                zones.entry(zone_key(&e.info)).or_default().push(&e.info);
            }
        }
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut columns: Vec<std::slice::Iter<'_, &Arc<NodeInfo>>> =
            zones.values().map(|v| v.iter()).collect();
        loop {
            let before = nodes.len();
            for col in &mut columns {
                if let Some(n) = col.next() {
                    nodes.push((*n).clone());
                }
            }
            if nodes.len() == before {
                break;
            }
        }
        snap.positions = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        let mut s = Snapshot::new(nodes, NamespaceLabels::new(), Vec::new());
        self.fill_others(&mut s);
        snap.snapshot = s;
        snap.generation = self.generation;
        snap.node_set_generation = self.node_set_changed_at;
        snap.others_generation = self.others_changed_at;
        snap.initialized = true;
    }

    fn fill_others(&self, s: &mut Snapshot) {
        s.namespace_labels = self.namespaces.clone();
        s.pdbs = self.pdbs.values().cloned().collect();
        s.workload_selectors = self.workloads.values().cloned().collect();
    }
}

/// Upstream's zone key: region and zone labels (either may be empty).
fn zone_key(n: &NodeInfo) -> String {
    let l = n.labels();
    let region = l
        .get("topology.kubernetes.io/region")
        .or_else(|| l.get("failure-domain.beta.kubernetes.io/region"));
    let zone = l
        .get("topology.kubernetes.io/zone")
        .or_else(|| l.get("failure-domain.beta.kubernetes.io/zone"));
    format!(
        "{}:\u{0}:{}",
        region.map(String::as_str).unwrap_or_default(),
        zone.map(String::as_str).unwrap_or_default()
    )
}

fn placeholder_node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, zone: Option<&str>) -> Arc<Node> {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if let Some(z) = zone {
            labels["topology.kubernetes.io/zone"] = json!(z);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                             "labels": {"app": name}},
                "spec": {"nodeName": node, "containers": [
                    {"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
            }))
            .unwrap(),
        )
    }

    fn requested(snap: &Snapshot, node: &str) -> i64 {
        snap.get(node).unwrap().requested.milli_cpu
    }

    #[test]
    fn bound_pods_count_on_their_node_and_terminal_ones_do_not() {
        let c = Cache::default();
        c.set_node(node("n1", "4", None));
        assert_eq!(
            c.set_pod(pod("a", Some("n1"), "1")),
            Some(ClusterEvent::PodAdd)
        );
        assert_eq!(
            c.set_pod(pod("b", Some("n1"), "500m")),
            Some(ClusterEvent::PodAdd)
        );
        assert_eq!(
            c.set_pod(pod("pending", None, "1")),
            None,
            "unbound pods are the queue's"
        );
        let s = c.snapshot();
        assert_eq!(requested(&s, "n1"), 1500);
        assert_eq!(s.get("n1").unwrap().pods.len(), 2);

        let mut done = (*pod("a", Some("n1"), "1")).clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        assert_eq!(c.set_pod(Arc::new(done)), Some(ClusterEvent::PodDelete));
        assert_eq!(requested(&c.snapshot(), "n1"), 500);
        assert!(c.delete_pod(&pod("b", Some("n1"), "500m")));
        assert_eq!(requested(&c.snapshot(), "n1"), 0);
        assert_eq!(c.counts(), (1, 0));
    }

    #[test]
    fn status_churn_of_a_bound_pod_changes_nothing() {
        let c = Cache::default();
        c.set_node(node("n1", "4", None));
        c.set_pod(pod("a", Some("n1"), "1"));
        let mut snap = CachedSnapshot::new();
        c.update_snapshot(&mut snap);
        let before = snap.snapshot().get("n1").unwrap().clone();
        let mut running = (*pod("a", Some("n1"), "1")).clone();
        running.status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());
        assert_eq!(c.set_pod(Arc::new(running)), None);
        c.update_snapshot(&mut snap);
        assert!(Arc::ptr_eq(&before, snap.snapshot().get("n1").unwrap()));
    }

    #[test]
    fn assumed_pods_are_confirmed_forgotten_or_expire() {
        let c = Cache::new(Duration::from_secs(30));
        c.set_node(node("n1", "4", None));
        c.set_node(node("n2", "4", None));
        let info = |name: &str| Arc::new(PodInfo::new(pod(name, None, "1")));

        // Confirmed on another node than assumed: it moves.
        c.assume_pod(info("a"), "n1").unwrap();
        assert!(c.is_assumed("uid-a"));
        assert_eq!(
            c.assume_pod(info("a"), "n2"),
            Err(CacheError::AlreadyPresent {
                pod: "default/a".into(),
                node: "n1".into()
            })
        );
        assert_eq!(requested(&c.snapshot(), "n1"), 1000);
        assert_eq!(
            c.set_pod(pod("a", Some("n2"), "1")),
            Some(ClusterEvent::PodAdd)
        );
        assert!(!c.is_assumed("uid-a"));
        let s = c.snapshot();
        assert_eq!((requested(&s, "n1"), requested(&s, "n2")), (0, 1000));
        assert_eq!(
            c.forget_pod("uid-a"),
            Err(CacheError::NotAssumed("uid-a".into())),
            "a confirmed pod is not forgotten"
        );

        // Forgotten after a failed binding.
        c.assume_pod(info("b"), "n1").unwrap();
        c.forget_pod("uid-b").unwrap();
        assert_eq!(requested(&c.snapshot(), "n1"), 0);

        // Expires only after the binding finished and the TTL passed.
        let t0 = Instant::now();
        c.assume_pod(info("c"), "n1").unwrap();
        assert!(c.cleanup_expired(t0 + Duration::from_secs(3600)).is_empty());
        c.finish_binding("uid-c", t0);
        assert!(c.cleanup_expired(t0 + Duration::from_secs(29)).is_empty());
        let expired = c.cleanup_expired(t0 + Duration::from_secs(30));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].name(), "c");
        assert_eq!(requested(&c.snapshot(), "n1"), 0);
        assert!(!c.is_assumed("uid-c"));
    }

    #[test]
    fn incremental_snapshots_share_unchanged_nodes() {
        let c = Cache::default();
        for i in 0..50 {
            c.set_node(node(&format!("n{i:02}"), "4", None));
        }
        let mut snap = CachedSnapshot::new();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.snapshot().len(), 50);
        let before: Vec<Arc<NodeInfo>> = snap.snapshot().nodes.clone();

        c.assume_pod(Arc::new(PodInfo::new(pod("x", None, "1"))), "n07")
            .unwrap();
        c.update_snapshot(&mut snap);
        let after = &snap.snapshot().nodes;
        let changed: Vec<&str> = before
            .iter()
            .zip(after)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .map(|(_, b)| b.name())
            .collect();
        assert_eq!(changed, ["n07"]);
        assert_eq!(requested(snap.snapshot(), "n07"), 1000);
        // The old snapshot's copy is untouched (copy on write).
        assert_eq!(before[7].requested.milli_cpu, 0);

        // Nothing changed: nothing is replaced.
        let again = snap.snapshot().nodes.clone();
        c.update_snapshot(&mut snap);
        assert!(
            again
                .iter()
                .zip(&snap.snapshot().nodes)
                .all(|(a, b)| Arc::ptr_eq(a, b))
        );

        // Removing a node rebuilds the list.
        c.delete_node("n03");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.snapshot().len(), 49);
        assert!(snap.snapshot().get("n03").is_none());
        assert_eq!(requested(snap.snapshot(), "n07"), 1000);
    }

    #[test]
    fn heartbeats_are_ignored_but_taints_and_images_are_not() {
        let c = Cache::default();
        assert_eq!(
            c.set_node(node("n1", "4", None)),
            Some(ClusterEvent::NodeAdd)
        );
        let mut beat = (*node("n1", "4", None)).clone();
        beat.metadata.resource_version = Some("9".into());
        assert_eq!(c.set_node(Arc::new(beat.clone())), None);

        let mut images = beat.clone();
        images.status.as_mut().unwrap().images = Some(vec![
            serde_json::from_value(json!({"names": ["nginx:1"], "sizeBytes": 10})).unwrap(),
        ]);
        let mut snap = CachedSnapshot::new();
        c.update_snapshot(&mut snap);
        assert_eq!(c.set_node(Arc::new(images.clone())), None, "no queue event");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.snapshot().image_nodes.get("nginx:1"), Some(&1));

        let mut tainted = images;
        tainted.spec = Some(
            serde_json::from_value(json!({"taints": [{"key": "k", "effect": "NoSchedule"}]}))
                .unwrap(),
        );
        assert_eq!(
            c.set_node(Arc::new(tainted)),
            Some(ClusterEvent::NodeUpdate)
        );
        c.update_snapshot(&mut snap);
        let n1 = snap.snapshot().get("n1").unwrap();
        assert_eq!(
            n1.node
                .spec
                .as_ref()
                .unwrap()
                .taints
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(snap.snapshot().image_nodes.get("nginx:1"), Some(&1));
    }

    #[test]
    fn pods_of_unknown_nodes_wait_for_the_node() {
        let c = Cache::default();
        c.set_pod(pod("early", Some("late"), "1"));
        assert!(c.snapshot().is_empty());
        c.set_node(node("late", "4", None));
        assert_eq!(requested(&c.snapshot(), "late"), 1000);
        // Deleting the node keeps its pods out of snapshots until they go too.
        c.delete_node("late");
        assert!(c.snapshot().is_empty());
        c.delete_pod(&pod("early", Some("late"), "1"));
        assert_eq!(c.counts(), (0, 0));
    }

    #[test]
    fn zones_are_interleaved() {
        let c = Cache::default();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("c1", "c"),
            ("c2", "c"),
        ] {
            c.set_node(node(n, "1", Some(z)));
        }
        let names: Vec<String> = c
            .snapshot()
            .nodes
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        assert_eq!(names, ["a1", "b1", "c1", "a2", "c2", "a3"]);
    }

    #[test]
    fn namespaces_pdbs_and_workloads_reach_the_snapshot() {
        let c = Cache::default();
        c.set_node(node("n1", "1", None));
        let mut snap = CachedSnapshot::new();
        c.update_snapshot(&mut snap);
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "team", "labels": {"t": "x"}}}))
                .unwrap();
        assert!(c.set_namespace(&ns));
        assert!(!c.set_namespace(&ns), "unchanged labels are no change");
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"selector": {"app": "web"}}
        }))
        .unwrap();
        let (key, sel) = service_selector(&svc);
        c.set_workload(key.clone(), sel);
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "team"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
        }))
        .unwrap();
        c.set_pdb(Arc::new(pdb));
        c.update_snapshot(&mut snap);
        let s = snap.snapshot();
        assert_eq!(s.namespace_labels["team"]["t"], "x");
        assert_eq!(s.pdbs.len(), 1);
        assert_eq!(s.workload_selectors.len(), 1);
        assert_eq!(s.workload_selectors[0].kind, "Service");
        assert_eq!(s.workload_selectors[0].selector.to_string(), "app=web");

        c.set_workload(key, None);
        assert!(c.delete_pdb("team", "b"));
        c.update_snapshot(&mut snap);
        assert!(snap.snapshot().workload_selectors.is_empty());
        assert!(snap.snapshot().pdbs.is_empty());
    }
}
