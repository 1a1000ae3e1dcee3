//! The scheduling framework: one trait per extension point, shaped like upstream's
//! (`k8s.io/kubernetes/pkg/scheduler/framework`), a status with a code, and the per-cycle state
//! plugins share.
//!
//! A plugin is one value implementing [`Plugin`]; it takes part in an extension point by
//! returning itself from the matching accessor (`Plugin::filter` for [`FilterPlugin`], ...).
//! Everything here is synchronous and works on an immutable [`Snapshot`] of the cluster, so
//! plugins are tested table-driven without a server; what needs the API (binding, evicting
//! preemption victims) is returned as data or done behind [`BindPlugin`].

mod types;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

pub use types::*;

/// What a plugin said (upstream's `framework.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Success,
    /// An internal failure: the pod is retried with backoff.
    Error,
    /// The pod does not fit, but preemption (or a cluster change) might make it fit.
    Unschedulable,
    /// The pod does not fit and preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    /// A Permit plugin holds the pod until it is allowed or rejected.
    Wait,
    /// The plugin has nothing to do for this pod (e.g. a Bind plugin leaving it to the next).
    Skip,
}

/// A plugin's answer: a code, human-readable reasons, and which plugin gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that returned a non-success status (set by the framework).
    pub plugin: Option<&'static str>,
}

impl Status {
    pub fn success() -> Status {
        Status::new(Code::Success, Vec::new())
    }

    pub fn new(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons,
            plugin: None,
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, vec![reason.into()])
    }

    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }

    pub fn error(reason: impl Into<String>) -> Status {
        Status::new(Code::Error, vec![reason.into()])
    }

    pub fn skip() -> Status {
        Status::new(Code::Skip, Vec::new())
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = Some(plugin);
        self
    }

    /// The reasons joined, as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.plugin {
            Some(p) => write!(f, "{:?} from {p}: {}", self.code, self.message()),
            None => write!(f, "{:?}: {}", self.code, self.message()),
        }
    }
}

/// Data a plugin keeps in the cycle state. Cloned when preemption simulates removing pods.
pub trait StateData: Any + Send + Sync {
    fn clone_data(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// What plugins share during one scheduling cycle of one pod (upstream's `CycleState`),
/// keyed by a name each plugin picks (conventionally `"PreFilter" + plugin name`).
#[derive(Default)]
pub struct CycleState {
    /// A handful of entries (one or two per plugin), read once per node per plugin: a linear
    /// scan that usually matches on the key's address beats hashing the key every time.
    data: Vec<(&'static str, Box<dyn StateData>)>,
    /// Set by the scheduler when it is scoring all feasible nodes rather than a sample.
    pub skip_filter_plugins: BTreeSet<&'static str>,
    pub skip_score_plugins: BTreeSet<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_data()))
                .collect(),
            skip_filter_plugins: self.skip_filter_plugins.clone(),
            skip_score_plugins: self.skip_score_plugins.clone(),
        }
    }
}

impl CycleState {
    pub fn new() -> CycleState {
        CycleState::default()
    }

    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        match self.position(key) {
            Some(i) => self.data[i].1 = Box::new(value),
            None => self.data.push((key, Box::new(value))),
        }
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        let data: &dyn StateData = &*self.data[self.position(key)?].1;
        data.as_any().downcast_ref()
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        let i = self.position(key)?;
        let data: &mut dyn StateData = &mut *self.data[i].1;
        data.as_any_mut().downcast_mut()
    }

    fn position(&self, key: &str) -> Option<usize> {
        let same = |k: &&str| std::ptr::eq(k.as_ptr(), key.as_ptr()) && k.len() == key.len();
        self.data
            .iter()
            .position(|(k, _)| same(k))
            .or_else(|| self.data.iter().position(|(k, _)| *k == key))
    }
}

/// Why each node was rejected, by node name.
pub type NodeToStatus = BTreeMap<String, Status>;

/// A node's score from one plugin (or the weighted total).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

/// Scores are normalized into `0..=MAX_NODE_SCORE` before weighting.
pub const MAX_NODE_SCORE: i64 = 100;
pub const MIN_NODE_SCORE: i64 = 0;

/// A PreFilter's narrowing of the candidate nodes: `None` means all nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Option<BTreeSet<String>>,
}

impl PreFilterResult {
    pub fn all() -> PreFilterResult {
        PreFilterResult { node_names: None }
    }

    pub fn only(names: impl IntoIterator<Item = String>) -> PreFilterResult {
        PreFilterResult {
            node_names: Some(names.into_iter().collect()),
        }
    }

    /// The intersection of two results.
    pub fn merge(self, other: PreFilterResult) -> PreFilterResult {
        match (self.node_names, other.node_names) {
            (None, n) | (n, None) => PreFilterResult { node_names: n },
            (Some(a), Some(b)) => PreFilterResult {
                node_names: Some(a.intersection(&b).cloned().collect()),
            },
        }
    }
}

/// What a PostFilter plugin (preemption) decided: nominate `node` for the pod once `victims`
/// are gone. The scheduler deletes the victims (gracefully) and sets the pod's
/// `status.nominatedNodeName`.
#[derive(Clone, Debug)]
pub struct PostFilterResult {
    pub nominated_node: String,
    pub victims: Vec<Arc<Pod>>,
    /// Lower-priority pods nominated to `nominated_node` whose nomination must be cleared.
    pub clear_nominations: Vec<Arc<Pod>>,
}

/// What the framework lends to PostFilter plugins: running the other plugins on what-if
/// node states (upstream's `framework.Handle` as preemption uses it).
pub trait FrameworkHandle: Send + Sync {
    /// Runs every Filter plugin on `node` (stopping at the first rejection).
    fn run_filter_plugins(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status;
    /// Tells every PreFilter plugin with extensions that `added` now runs on `node`.
    fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
    /// Tells every PreFilter plugin with extensions that `removed` no longer runs on `node`.
    fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
}

/// A named plugin; it takes part in each extension point it returns itself for.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    fn pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    fn bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    /// The cluster changes that may make a pod this plugin rejected schedulable; the queue
    /// moves such pods back to the active queue when one happens. Empty: any change.
    fn events(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }
}

/// Runs before filtering, once per pod: precomputes into the cycle state, may reject the pod
/// outright or narrow the nodes to consider.
pub trait PreFilterPlugin: Send + Sync {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status);

    /// Incremental updates of the precomputed state when preemption simulates adding or
    /// removing pods; `None` if the plugin's state does not depend on other pods.
    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        None
    }
}

pub trait PreFilterExtensions: Send + Sync {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
}

/// Whether the pod can run on one node.
pub trait FilterPlugin: Send + Sync {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status;
}

/// Runs when no node passed the filters (preemption).
pub trait PostFilterPlugin: Send + Sync {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        rejected: &NodeToStatus,
        framework: &dyn FrameworkHandle,
    ) -> (Option<PostFilterResult>, Status);
}

/// Runs once before scoring, with the feasible nodes.
pub trait PreScorePlugin: Send + Sync {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status;
}

/// Ranks one feasible node; higher is better.
pub trait ScorePlugin: Send + Sync {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status);

    /// Rescales this plugin's scores into `0..=MAX_NODE_SCORE`, if they are not already.
    fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
        None
    }
}

pub trait NormalizeScorePlugin: Send + Sync {
    fn normalize_score(&self, state: &CycleState, pod: &Pod, scores: &mut [NodeScore]) -> Status;
}

/// Claims (and on failure releases) resources for the pod on the chosen node before binding.
pub trait ReservePlugin: Send + Sync {
    fn reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &Pod, node: &str);
}

/// Approves, rejects or holds (`Code::Wait`, up to the returned timeout) the binding.
pub trait PermitPlugin: Send + Sync {
    fn permit(&self, state: &mut CycleState, pod: &Pod, node: &str) -> (Status, Duration);
}

/// Work that must happen before the binding (e.g. volume provisioning).
pub trait PreBindPlugin: Send + Sync {
    fn pre_bind(&self, state: &CycleState, pod: &Pod, node: &str) -> Status;
}

/// Binds the pod; the first plugin that does not return `Skip` handles it. Binding talks to
/// the API server, so the plugin says how and the scheduler carries it out.
pub trait BindPlugin: Send + Sync {
    fn bind(&self, state: &CycleState, pod: &Pod, node: &str) -> BindAction;
}

/// How a Bind plugin wants the pod bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAction {
    /// Not this plugin's pod.
    Skip,
    /// POST the `pods/binding` subresource with this target node.
    Binding { node: String },
    /// Refuse with this status.
    Refuse(Status),
}

/// Kinds of cluster change the scheduling queue reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    NodeDelete,
    /// A pod was scheduled, updated or deleted (freeing resources, changing affinity matches).
    PodAdd,
    PodUpdate,
    PodDelete,
    PdbChange,
    NamespaceChange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Counter(u32);

    #[test]
    fn cycle_state_is_typed_and_clones_deeply() {
        let mut s = CycleState::new();
        s.write("A", Counter(1));
        assert_eq!(s.read::<Counter>("A"), Some(&Counter(1)));
        assert_eq!(s.read::<String>("A"), None, "wrong type reads nothing");
        let mut copy = s.clone();
        copy.read_mut::<Counter>("A").unwrap().0 = 5;
        assert_eq!(s.read::<Counter>("A"), Some(&Counter(1)));
        assert_eq!(copy.read::<Counter>("A"), Some(&Counter(5)));
    }

    #[test]
    fn pre_filter_results_intersect() {
        let a = PreFilterResult::only(["n1".to_string(), "n2".to_string()]);
        let b = PreFilterResult::only(["n2".to_string(), "n3".to_string()]);
        assert_eq!(
            a.clone().merge(b).node_names.unwrap(),
            BTreeSet::from(["n2".to_string()])
        );
        assert_eq!(a.clone().merge(PreFilterResult::all()), a);
    }
}
