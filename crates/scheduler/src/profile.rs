//! One scheduling profile turned into a runnable framework (upstream's `frameworkImpl`): the
//! plugins per extension point in their configured order, the score weights, and the `run_*`
//! methods that call the plugins with upstream's semantics for each point.
//!
//! Building follows upstream's `NewFramework`: every plugin the profile names is instantiated
//! once (with its `pluginConfig` args); the explicit extension-point lists come first, then
//! `multiPoint` is expanded into every point the plugin implements, unless that point disables
//! it (or `"*"`). A plugin listed both explicitly and in `multiPoint` keeps its explicit
//! position; the order is "explicit overrides, then multiPoint, then other explicit ones".
//! Score weights come from the explicit `score` list first, then `multiPoint`; 0 means 1.
//!
//! [`Frameworks`] holds one framework per `schedulerName`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::config::{
    ExtensionPoint, PRIORITY_SORT, PluginSet, Profile, SCHEDULING_GATES, SchedulerConfiguration,
};
use crate::framework::{
    BindAction, ClusterEvent, Code, CycleState, FrameworkHandle, MAX_NODE_SCORE, MIN_NODE_SCORE,
    NodeInfo, NodeScore, NodeToStatus, Plugin, PodInfo, PostFilterResult, PreFilterResult,
    ScorePlugin, Snapshot, Status, pod_priority,
};
use crate::registry::Registry;

/// Upstream's cap on how long a Permit plugin may hold a pod.
pub const MAX_PERMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where the framework finds the pods nominated to a node (preemptors waiting for their
/// victims to leave); the scheduling queue implements it.
pub trait PodNominator: Send + Sync {
    /// The pods nominated to `node` that are not yet bound.
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>>;

    /// Whether any pod is nominated anywhere: a cheap check that lets filtering skip the
    /// per-node lookups in the common case.
    fn has_nominated_pods(&self) -> bool {
        true
    }
}

/// Why a profile could not be turned into a framework.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("profile {profile:?}: plugin {plugin:?} does not exist")]
    UnknownPlugin { profile: String, plugin: String },
    #[error("profile {profile:?}: initializing plugin {plugin:?}: {message}")]
    PluginInit {
        profile: String,
        plugin: String,
        message: String,
    },
    #[error("profile {profile:?}: plugin {plugin:?} does not extend {point} plugin")]
    DoesNotExtend {
        profile: String,
        plugin: String,
        point: ExtensionPoint,
    },
    #[error("profile {profile:?}: plugin {plugin:?} already registered as {point:?}")]
    Duplicate {
        profile: String,
        plugin: String,
        point: ExtensionPoint,
    },
    #[error("at least one bind plugin is needed for profile with scheduler name {0:?}")]
    NoBindPlugin(String),
    #[error("profile {0:?}: total score of Score plugins could overflow")]
    ScoreOverflow(String),
}

/// One Score plugin's weighted score of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginScore {
    pub plugin: &'static str,
    /// The plugin's weight in this profile.
    pub weight: i64,
    /// Normalized score times weight.
    pub score: i64,
}

/// The scores of every scored node (upstream's `[]NodePluginScores`), stored as one table:
/// for `keelson why`, each node's total and per-plugin breakdown.
#[derive(Clone, Debug, Default)]
pub struct NodeScores {
    /// The Score plugins that ran (not skipped by PreScore), with their weights.
    pub plugins: Vec<(&'static str, i64)>,
    pub nodes: Vec<Arc<NodeInfo>>,
    /// Weighted, node-major: `weighted[node * plugins.len() + plugin]`.
    weighted: Vec<i64>,
    pub totals: Vec<i64>,
}

impl NodeScores {
    /// Every node with the same total and no plugin breakdown.
    pub fn uniform(nodes: &[Arc<NodeInfo>], total: i64) -> NodeScores {
        NodeScores {
            plugins: Vec::new(),
            nodes: nodes.to_vec(),
            weighted: Vec::new(),
            totals: vec![total; nodes.len()],
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node_name(&self, i: usize) -> &str {
        self.nodes.get(i).map(|n| n.name()).unwrap_or_default()
    }

    /// The index of `node`, if it was scored.
    pub fn index_of(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == node)
    }

    pub fn total(&self, i: usize) -> i64 {
        self.totals.get(i).copied().unwrap_or(0)
    }

    /// Node `i`'s score from each plugin.
    pub fn breakdown(&self, i: usize) -> Vec<PluginScore> {
        let n = self.plugins.len();
        self.plugins
            .iter()
            .enumerate()
            .map(|(p, (plugin, weight))| PluginScore {
                plugin,
                weight: *weight,
                score: self.weighted.get(i * n + p).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Every node with its total score, best first (ties by name).
    pub fn ranked(&self) -> Vec<(&str, i64)> {
        let mut v: Vec<(&str, i64)> = (0..self.len())
            .map(|i| (self.node_name(i), self.total(i)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

/// What PreFilter decided (upstream's `RunPreFilterPlugins` result).
#[derive(Clone, Debug)]
pub struct PreFilterOutcome {
    /// The merged narrowing of the candidate nodes.
    pub result: PreFilterResult,
    /// Success, a rejection (with the plugin set), or an error.
    pub status: Status,
    /// The plugins whose results narrowed the nodes.
    pub plugins_with_nodes: BTreeSet<&'static str>,
}

type Plugins = Vec<Arc<dyn Plugin>>;

/// A profile's plugins, ready to run.
pub struct Framework {
    profile_name: String,
    percentage_of_nodes_to_score: u32,
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
    pre_filter: Plugins,
    filter: Plugins,
    post_filter: Plugins,
    pre_score: Plugins,
    score: Vec<(Arc<dyn Plugin>, i64)>,
    reserve: Plugins,
    permit: Plugins,
    pre_bind: Plugins,
    bind: Plugins,
    nominator: OnceLock<Arc<dyn PodNominator>>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework")
            .field("profile", &self.profile_name)
            .field("filter", &names(&self.filter))
            .field(
                "score",
                &self
                    .score
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn names(list: &Plugins) -> Vec<&'static str> {
    list.iter().map(|p| p.name()).collect()
}

/// Whether `plugin` implements `point`.
fn extends(plugin: &dyn Plugin, point: ExtensionPoint) -> bool {
    match point {
        ExtensionPoint::PreFilter => plugin.pre_filter().is_some(),
        ExtensionPoint::Filter => plugin.filter().is_some(),
        ExtensionPoint::PostFilter => plugin.post_filter().is_some(),
        ExtensionPoint::PreScore => plugin.pre_score().is_some(),
        ExtensionPoint::Score => plugin.score().is_some(),
        ExtensionPoint::Reserve => plugin.reserve().is_some(),
        ExtensionPoint::Permit => plugin.permit().is_some(),
        ExtensionPoint::PreBind => plugin.pre_bind().is_some(),
        ExtensionPoint::Bind => plugin.bind().is_some(),
        // Implemented by the queue (PrioritySort, SchedulingGates), or not at all (PostBind).
        ExtensionPoint::PreEnqueue | ExtensionPoint::QueueSort | ExtensionPoint::PostBind => false,
    }
}

/// The points the framework runs plugins at.
const RUN_POINTS: [ExtensionPoint; 9] = [
    ExtensionPoint::PreFilter,
    ExtensionPoint::Filter,
    ExtensionPoint::PostFilter,
    ExtensionPoint::PreScore,
    ExtensionPoint::Score,
    ExtensionPoint::Reserve,
    ExtensionPoint::Permit,
    ExtensionPoint::PreBind,
    ExtensionPoint::Bind,
];

fn is_queue_builtin(name: &str) -> bool {
    name == PRIORITY_SORT || name == SCHEDULING_GATES
}

impl Framework {
    /// Builds the framework of `profile`; `global_percentage` is the configuration's
    /// `percentageOfNodesToScore` (used when the profile sets none).
    pub fn new(
        profile: &Profile,
        registry: &Registry,
        global_percentage: u32,
    ) -> Result<Framework, FrameworkError> {
        let pname = profile.scheduler_name.clone();
        let plugins_cfg = &profile.plugins;

        // Instantiate every plugin named anywhere, once.
        let mut needed: Vec<&str> = Vec::new();
        let all_sets = std::iter::once(&plugins_cfg.multi_point).chain(plugins_cfg.points.values());
        for set in all_sets {
            for p in &set.enabled {
                if !is_queue_builtin(&p.name) && !needed.contains(&p.name.as_str()) {
                    needed.push(&p.name);
                }
            }
        }
        let mut by_config_name: HashMap<&str, Arc<dyn Plugin>> = HashMap::new();
        let mut plugins = BTreeMap::new();
        for name in needed {
            let factory = registry
                .get(name)
                .ok_or_else(|| FrameworkError::UnknownPlugin {
                    profile: pname.clone(),
                    plugin: name.to_string(),
                })?;
            let args = profile.plugin_config.get(name).filter(|v| !v.is_null());
            let plugin = factory(args).map_err(|message| FrameworkError::PluginInit {
                profile: pname.clone(),
                plugin: name.to_string(),
                message,
            })?;
            plugins.insert(plugin.name(), plugin.clone());
            by_config_name.insert(name, plugin);
        }

        let mut lists: BTreeMap<ExtensionPoint, Plugins> = BTreeMap::new();
        for point in RUN_POINTS {
            let list = expand_point(
                &pname,
                point,
                plugins_cfg.get(point),
                plugins_cfg,
                &by_config_name,
            )?;
            lists.insert(point, list);
        }
        // Queue-only points: any non-builtin plugin there cannot run.
        for point in [
            ExtensionPoint::QueueSort,
            ExtensionPoint::PreEnqueue,
            ExtensionPoint::PostBind,
        ] {
            if let Some(p) = plugins_cfg
                .get(point)
                .enabled
                .iter()
                .find(|p| !is_queue_builtin(&p.name))
            {
                return Err(FrameworkError::DoesNotExtend {
                    profile: pname,
                    plugin: p.name.clone(),
                    point,
                });
            }
        }

        let mut take = |p| lists.remove(&p).unwrap_or_default();
        let score_list = take(ExtensionPoint::Score);
        // Weights: the explicit score list first, then multiPoint; 0 means 1.
        let mut weights: HashMap<&str, i64> = HashMap::new();
        for p in plugins_cfg
            .get(ExtensionPoint::Score)
            .enabled
            .iter()
            .chain(&plugins_cfg.multi_point.enabled)
        {
            let Some(plugin) = by_config_name.get(p.name.as_str()) else {
                continue;
            };
            if plugin.score().is_none() {
                continue;
            }
            weights.entry(plugin.name()).or_insert(if p.weight == 0 {
                1
            } else {
                i64::from(p.weight)
            });
        }
        let mut total: i64 = 0;
        let mut score = Vec::with_capacity(score_list.len());
        for p in score_list {
            let w = weights.get(p.name()).copied().unwrap_or(1);
            total = w
                .checked_mul(MAX_NODE_SCORE)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| FrameworkError::ScoreOverflow(pname.clone()))?;
            score.push((p, w));
        }

        let fw = Framework {
            percentage_of_nodes_to_score: profile
                .percentage_of_nodes_to_score
                .unwrap_or(global_percentage),
            plugins,
            pre_filter: take(ExtensionPoint::PreFilter),
            filter: take(ExtensionPoint::Filter),
            post_filter: take(ExtensionPoint::PostFilter),
            pre_score: take(ExtensionPoint::PreScore),
            score,
            reserve: take(ExtensionPoint::Reserve),
            permit: take(ExtensionPoint::Permit),
            pre_bind: take(ExtensionPoint::PreBind),
            bind: take(ExtensionPoint::Bind),
            nominator: OnceLock::new(),
            profile_name: pname,
        };
        if fw.bind.is_empty() {
            return Err(FrameworkError::NoBindPlugin(fw.profile_name));
        }
        tracing::debug!(framework = ?fw, "built scheduling framework");
        Ok(fw)
    }

    /// The profile's `schedulerName`.
    pub fn profile_name(&self) -> &str {
        &self.profile_name
    }

    /// The effective percentage of nodes to score (0: adaptive).
    pub fn percentage_of_nodes_to_score(&self) -> u32 {
        self.percentage_of_nodes_to_score
    }

    /// Lets the framework see nominated pods (the scheduling queue). Set once; later calls are
    /// ignored and return false.
    pub fn set_pod_nominator(&self, nominator: Arc<dyn PodNominator>) -> bool {
        self.nominator.set(nominator).is_ok()
    }

    /// The plugin named `name`, if this profile uses it.
    pub fn plugin(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.get(name)
    }

    /// The plugins at `point`, in the order they run.
    pub fn plugin_names(&self, point: ExtensionPoint) -> Vec<&'static str> {
        match point {
            ExtensionPoint::PreFilter => names(&self.pre_filter),
            ExtensionPoint::Filter => names(&self.filter),
            ExtensionPoint::PostFilter => names(&self.post_filter),
            ExtensionPoint::PreScore => names(&self.pre_score),
            ExtensionPoint::Score => self.score.iter().map(|(p, _)| p.name()).collect(),
            ExtensionPoint::Reserve => names(&self.reserve),
            ExtensionPoint::Permit => names(&self.permit),
            ExtensionPoint::PreBind => names(&self.pre_bind),
            ExtensionPoint::Bind => names(&self.bind),
            ExtensionPoint::QueueSort => vec![PRIORITY_SORT],
            ExtensionPoint::PreEnqueue => vec![SCHEDULING_GATES],
            ExtensionPoint::PostBind => Vec::new(),
        }
    }

    /// The weight of Score plugin `name`.
    pub fn score_weight(&self, name: &str) -> Option<i64> {
        self.score
            .iter()
            .find(|(p, _)| p.name() == name)
            .map(|(_, w)| *w)
    }

    pub fn has_filter_plugins(&self) -> bool {
        !self.filter.is_empty()
    }

    pub fn has_score_plugins(&self) -> bool {
        !self.score.is_empty()
    }

    pub fn has_post_filter_plugins(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// The cluster events each plugin of this profile wants pods it rejected requeued on
    /// (an empty list: every event).
    pub fn plugin_events(&self) -> HashMap<&'static str, Vec<ClusterEvent>> {
        self.plugins
            .iter()
            .map(|(name, p)| (*name, p.events()))
            .collect()
    }

    /// Runs PreFilter (upstream's `RunPreFilterPlugins`): a plugin returning Skip is skipped
    /// in Filter (recorded in `state.skip_filter_plugins`); results are intersected and an
    /// empty intersection rejects the pod as unresolvable; an `UnschedulableAndUnresolvable`
    /// stops at once, an `Unschedulable` still lets the others run (preemption needs their
    /// state); any other failure is an error.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> PreFilterOutcome {
        let mut skip = BTreeSet::new();
        let mut result = PreFilterResult::all();
        let mut with_nodes = BTreeSet::new();
        let mut rejected: Option<Status> = None;
        let outcome = 'run: {
            for p in &self.pre_filter {
                let Some(pf) = p.pre_filter() else { continue };
                let (r, s) = pf.pre_filter(state, pod, snapshot);
                if s.is_skip() {
                    skip.insert(p.name());
                    continue;
                }
                if !s.is_success() {
                    let s = s.with_plugin(p.name());
                    match s.code {
                        Code::UnschedulableAndUnresolvable => {
                            break 'run PreFilterOutcome {
                                result: PreFilterResult::all(),
                                status: s,
                                plugins_with_nodes: BTreeSet::new(),
                            };
                        }
                        Code::Unschedulable => {
                            rejected = Some(s);
                            continue;
                        }
                        _ => {
                            break 'run PreFilterOutcome {
                                result: PreFilterResult::all(),
                                status: Status::error(format!(
                                    "running PreFilter plugin {:?}: {}",
                                    p.name(),
                                    s.message()
                                ))
                                .with_plugin(p.name()),
                                plugins_with_nodes: BTreeSet::new(),
                            };
                        }
                    }
                }
                if r.node_names.is_some() {
                    with_nodes.insert(p.name());
                }
                result = result.merge(r);
                if result.node_names.as_ref().is_some_and(|n| n.is_empty()) {
                    let msg = if with_nodes.len() == 1 {
                        format!(
                            "node(s) didn't satisfy plugin {}",
                            with_nodes.first().copied().unwrap_or_default()
                        )
                    } else {
                        format!(
                            "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                            with_nodes.iter().copied().collect::<Vec<_>>().join(" ")
                        )
                    };
                    break 'run PreFilterOutcome {
                        result,
                        status: Status::unresolvable(msg),
                        plugins_with_nodes: with_nodes,
                    };
                }
            }
            PreFilterOutcome {
                result,
                status: rejected.unwrap_or_else(Status::success),
                plugins_with_nodes: with_nodes,
            }
        };
        state.skip_filter_plugins = skip;
        outcome
    }

    /// Runs every Filter plugin on `node` until the first rejection, which is returned with its
    /// plugin set (upstream's `RunFilterPlugins`). Plugins PreFilter skipped are skipped.
    pub fn run_filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        for p in &self.filter {
            let name = p.name();
            if !state.skip_filter_plugins.is_empty() && state.skip_filter_plugins.contains(name) {
                continue;
            }
            let Some(f) = p.filter() else { continue };
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                let s = if s.is_rejected() {
                    s
                } else {
                    Status::error(format!("running {name:?} filter plugin: {}", s.message()))
                };
                return s.with_plugin(name);
            }
        }
        Status::success()
    }

    /// `run_filter` with the pods nominated to `node` taken into account, as upstream's
    /// `RunFilterPluginsWithNominatedPods`: the pod must fit both with the nominated pods of
    /// equal or higher priority added (they must not lose the room preemption made for them)
    /// and without them (they may still go elsewhere).
    pub fn run_filter_with_nominated_pods(
        &self,
        state: &CycleState,
        pod: &Pod,
        node: &NodeInfo,
    ) -> Status {
        let nominated = match self.nominator.get() {
            Some(n) if n.has_nominated_pods() => n.nominated_pods_for_node(node.name()),
            _ => return self.run_filter(state, pod, node),
        };
        let priority = pod_priority(pod);
        let uid = pod.metadata.uid.as_deref();
        let mut added = nominated
            .into_iter()
            .filter(|p| p.priority() >= priority && p.pod.metadata.uid.as_deref() != uid)
            .peekable();
        if added.peek().is_none() {
            return self.run_filter(state, pod, node);
        }
        let mut node_with = node.clone();
        let mut state_with = state.clone();
        for p in added {
            node_with.add_pod(p.clone());
            let s = self.run_pre_filter_extension_add_pod(&mut state_with, pod, &p, &node_with);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(&state_with, pod, &node_with);
        if !s.is_success() {
            return s;
        }
        self.run_filter(state, pod, node)
    }

    fn run_pre_filter_extension_add_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter_plugins.contains(p.name()) {
                continue;
            }
            let Some(ext) = p.pre_filter().and_then(|pf| pf.extensions()) else {
                continue;
            };
            let s = ext.add_pod(state, pod, added, node);
            if !s.is_success() {
                return Status::error(format!(
                    "running AddPod on PreFilter plugin {:?}: {}",
                    p.name(),
                    s.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    fn run_pre_filter_extension_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.skip_filter_plugins.contains(p.name()) {
                continue;
            }
            let Some(ext) = p.pre_filter().and_then(|pf| pf.extensions()) else {
                continue;
            };
            let s = ext.remove_pod(state, pod, removed, node);
            if !s.is_success() {
                return Status::error(format!(
                    "running RemovePod on PreFilter plugin {:?}: {}",
                    p.name(),
                    s.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs PostFilter (preemption) until one succeeds, is unresolvable or fails (upstream's
    /// `RunPostFilterPlugins`); otherwise the reasons of all are joined, with the first
    /// rejecting plugin. `rejected` must name every node (the caller fills in nodes that were
    /// rejected as a group, e.g. by PreFilter).
    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        rejected: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let mut result = None;
        let mut reasons = Vec::new();
        let mut rejector: Option<&'static str> = None;
        for p in &self.post_filter {
            let Some(pf) = p.post_filter() else { continue };
            let (r, s) = pf.post_filter(state, pod, snapshot, rejected, self);
            match s.code {
                Code::Success => return (r, s),
                Code::UnschedulableAndUnresolvable => return (r, s.with_plugin(p.name())),
                Code::Unschedulable => {}
                _ => {
                    return (None, Status::error(s.message()).with_plugin(p.name()));
                }
            }
            if r.is_some() {
                result = r;
            }
            reasons.extend(s.reasons);
            rejector.get_or_insert(p.name());
        }
        let mut s = Status::new(Code::Unschedulable, reasons);
        s.plugin = rejector;
        (result, s)
    }

    /// Runs PreScore; plugins returning Skip are left out of Score (recorded in
    /// `state.skip_score_plugins`).
    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let mut skip = BTreeSet::new();
        let mut out = Status::success();
        for p in &self.pre_score {
            let Some(ps) = p.pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes, snapshot);
            if s.is_skip() {
                skip.insert(p.name());
                continue;
            }
            if !s.is_success() {
                out = Status::error(format!(
                    "running PreScore plugin {:?}: {}",
                    p.name(),
                    s.message()
                ))
                .with_plugin(p.name());
                break;
            }
        }
        state.skip_score_plugins = skip;
        out
    }

    /// Runs Score on every node, normalizes each plugin's scores, checks they are within
    /// `0..=MAX_NODE_SCORE`, weights and sums them (upstream's `RunScorePlugins`).
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
    ) -> Result<NodeScores, Status> {
        let active: Vec<(&'static str, &dyn ScorePlugin, i64)> = self
            .score
            .iter()
            .filter(|(p, _)| !state.skip_score_plugins.contains(p.name()))
            .filter_map(|(p, w)| Some((p.name(), p.score()?, *w)))
            .collect();
        let np = active.len();
        let nn = nodes.len();
        // Node-major, like upstream: each node is scored by every plugin while it is in cache.
        // `raw` is plugin-major so that each plugin's column can be normalized in place.
        let mut raw = vec![0i64; nn * np];
        for (ni, node) in nodes.iter().enumerate() {
            for (pi, (name, sp, _)) in active.iter().enumerate() {
                let (score, s) = sp.score(state, pod, node);
                if !s.is_success() {
                    return Err(Status::error(format!(
                        "running Score plugins: plugin {name:?} failed with: {}",
                        s.message()
                    ))
                    .with_plugin(name));
                }
                raw[pi * nn + ni] = score;
            }
        }
        let mut weighted = vec![0i64; nn * np];
        let mut totals = vec![0i64; nn];
        for (pi, (name, sp, weight)) in active.iter().enumerate() {
            let column = &mut raw[pi * nn..(pi + 1) * nn];
            if let Some(norm) = sp.normalize() {
                let s = NORMALIZE_BUFFER.with_borrow_mut(|list| {
                    fill_node_scores(list, nodes, column);
                    let s = norm.normalize_score(state, pod, list);
                    for (c, ns) in column.iter_mut().zip(list.iter()) {
                        *c = ns.score;
                    }
                    s
                });
                if !s.is_success() {
                    return Err(Status::error(format!(
                        "running Normalize on Score plugins: plugin {name:?} failed with: {}",
                        s.message()
                    ))
                    .with_plugin(name));
                }
            }
            for (ni, score) in column.iter().enumerate() {
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(score) {
                    return Err(Status::error(format!(
                        "applying score defaultWeights on Score plugins: plugin {name:?} returns an invalid score {score}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing"
                    ))
                    .with_plugin(name));
                }
                let w = score * weight;
                weighted[ni * np + pi] = w;
                totals[ni] += w;
            }
        }
        Ok(NodeScores {
            plugins: active.iter().map(|(name, _, w)| (*name, *w)).collect(),
            nodes: nodes.to_vec(),
            weighted,
            totals,
        })
    }

    /// Runs Reserve in order; on the first failure returns it (the caller then runs
    /// [`Framework::run_unreserve`]).
    pub fn run_reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status {
        for p in &self.reserve {
            let Some(r) = p.reserve() else { continue };
            let s = r.reserve(state, pod, node);
            if !s.is_success() {
                let s = if s.is_rejected() {
                    s
                } else {
                    Status::error(format!(
                        "running Reserve plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ))
                };
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs Unreserve of every Reserve plugin, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &Pod, node: &str) {
        for p in self.reserve.iter().rev() {
            if let Some(r) = p.reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Runs Permit: the first rejection or error wins; if some plugins ask to wait, returns
    /// `Code::Wait` (plugin: the first that waits) with the shortest of their timeouts, each
    /// capped at [`MAX_PERMIT_TIMEOUT`] — when it passes without the pod being allowed, the
    /// pod is rejected, as upstream's waiting pods are.
    pub fn run_permit(&self, state: &mut CycleState, pod: &Pod, node: &str) -> (Status, Duration) {
        let mut wait: Option<(&'static str, Duration)> = None;
        for p in &self.permit {
            let Some(pm) = p.permit() else { continue };
            let (s, timeout) = pm.permit(state, pod, node);
            match s.code {
                Code::Success => {}
                Code::Wait => {
                    let t = timeout.min(MAX_PERMIT_TIMEOUT);
                    wait = Some(match wait {
                        Some((first, t0)) => (first, t0.min(t)),
                        None => (p.name(), t),
                    });
                }
                Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                    return (s.with_plugin(p.name()), Duration::ZERO);
                }
                _ => {
                    return (
                        Status::error(format!(
                            "running Permit plugin {:?}: {}",
                            p.name(),
                            s.message()
                        ))
                        .with_plugin(p.name()),
                        Duration::ZERO,
                    );
                }
            }
        }
        match wait {
            Some((plugin, t)) => {
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                (
                    Status::new(
                        Code::Wait,
                        vec![format!(
                            "one or more plugins asked to wait and no plugin rejected pod {name:?}"
                        )],
                    )
                    .with_plugin(plugin),
                    t,
                )
            }
            None => (Status::success(), Duration::ZERO),
        }
    }

    /// Runs PreBind in order until the first failure.
    pub fn run_pre_bind(&self, state: &CycleState, pod: &Pod, node: &str) -> Status {
        for p in &self.pre_bind {
            let Some(pb) = p.pre_bind() else { continue };
            let s = pb.pre_bind(state, pod, node);
            if !s.is_success() {
                let s = if s.is_rejected() {
                    s
                } else {
                    Status::error(format!(
                        "running PreBind plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ))
                };
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Asks the Bind plugins in order; the first that does not skip decides (its refusal gets
    /// its plugin name). `BindAction::Skip` if every plugin skipped.
    pub fn run_bind(
        &self,
        state: &CycleState,
        pod: &Pod,
        node: &str,
    ) -> (BindAction, Option<&'static str>) {
        for p in &self.bind {
            let Some(b) = p.bind() else { continue };
            match b.bind(state, pod, node) {
                BindAction::Skip => continue,
                BindAction::Refuse(s) => {
                    let s = if s.is_rejected() {
                        s
                    } else {
                        Status::error(format!(
                            "running Bind plugin {:?}: {}",
                            p.name(),
                            s.message()
                        ))
                    };
                    return (BindAction::Refuse(s.with_plugin(p.name())), Some(p.name()));
                }
                action => return (action, Some(p.name())),
            }
        }
        (BindAction::Skip, None)
    }
}

thread_local! {
    /// The `NodeScore` list handed to NormalizeScore, reused so that scoring hundreds of nodes
    /// does not allocate every node name for every normalizing plugin of every pod.
    static NORMALIZE_BUFFER: std::cell::RefCell<Vec<NodeScore>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes `list` hold one entry per node, named after it, with `scores`; existing strings are
/// reused.
fn fill_node_scores(list: &mut Vec<NodeScore>, nodes: &[Arc<NodeInfo>], scores: &[i64]) {
    list.truncate(nodes.len());
    for (i, (node, score)) in nodes.iter().zip(scores).enumerate() {
        match list.get_mut(i) {
            Some(entry) => {
                if entry.name != node.name() {
                    entry.name.clear();
                    entry.name.push_str(node.name());
                }
                entry.score = *score;
            }
            None => list.push(NodeScore {
                name: node.name().to_string(),
                score: *score,
            }),
        }
    }
}

/// The plugins at one extension point, per upstream's `updatePluginList` + MultiPoint
/// expansion.
fn expand_point(
    profile: &str,
    point: ExtensionPoint,
    explicit: &PluginSet,
    all: &crate::config::Plugins,
    by_name: &HashMap<&str, Arc<dyn Plugin>>,
) -> Result<Plugins, FrameworkError> {
    let lookup = |name: &str| {
        by_name
            .get(name)
            .cloned()
            .ok_or_else(|| FrameworkError::UnknownPlugin {
                profile: profile.to_string(),
                plugin: name.to_string(),
            })
    };
    let mut explicit_names: Vec<&str> = Vec::new();
    for p in &explicit.enabled {
        let plugin = lookup(&p.name)?;
        if !extends(plugin.as_ref(), point) {
            return Err(FrameworkError::DoesNotExtend {
                profile: profile.to_string(),
                plugin: p.name.clone(),
                point,
            });
        }
        if explicit_names.contains(&p.name.as_str()) {
            return Err(FrameworkError::Duplicate {
                profile: profile.to_string(),
                plugin: p.name.clone(),
                point,
            });
        }
        explicit_names.push(&p.name);
    }
    let mut overrides: BTreeSet<&str> = BTreeSet::new();
    let mut multi: Vec<&str> = Vec::new();
    if !explicit.disables_all() {
        for p in &all.multi_point.enabled {
            if is_queue_builtin(&p.name) {
                continue;
            }
            let plugin = lookup(&p.name)?;
            if !extends(plugin.as_ref(), point) || explicit.disables(&p.name) {
                continue;
            }
            if explicit_names.contains(&p.name.as_str()) {
                overrides.insert(&p.name);
                continue;
            }
            if multi.contains(&p.name.as_str()) {
                return Err(FrameworkError::Duplicate {
                    profile: profile.to_string(),
                    plugin: p.name.clone(),
                    point,
                });
            }
            multi.push(&p.name);
        }
    }
    let ordered = explicit_names
        .iter()
        .filter(|n| overrides.contains(*n))
        .chain(multi.iter())
        .chain(explicit_names.iter().filter(|n| !overrides.contains(*n)));
    ordered.map(|n| lookup(n)).collect()
}

impl FrameworkHandle for Framework {
    /// Includes the nominated pods, as upstream's preemption does
    /// (`RunFilterPluginsWithNominatedPods`).
    fn run_filter_plugins(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        self.run_filter_with_nominated_pods(state, pod, node)
    }

    fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        self.run_pre_filter_extension_add_pod(state, pod, added, node)
    }

    fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        self.run_pre_filter_extension_remove_pod(state, pod, removed, node)
    }
}

/// The frameworks of all profiles, by `schedulerName`.
#[derive(Debug, Default, Clone)]
pub struct Frameworks {
    by_name: BTreeMap<String, Arc<Framework>>,
}

impl Frameworks {
    /// Checks the configuration's plugin names against `registry` and builds every profile.
    pub fn new(
        config: &SchedulerConfiguration,
        registry: &Registry,
    ) -> Result<Frameworks, FrameworkError> {
        config.validate_plugins(registry)?;
        let mut by_name = BTreeMap::new();
        for p in &config.profiles {
            let fw = Framework::new(p, registry, config.percentage_of_nodes_to_score)?;
            by_name.insert(p.scheduler_name.clone(), Arc::new(fw));
        }
        Ok(Frameworks { by_name })
    }

    /// The framework of pods with `spec.schedulerName` = `name`.
    pub fn get(&self, scheduler_name: &str) -> Option<&Arc<Framework>> {
        self.by_name.get(scheduler_name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Framework>)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn scheduler_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Gives every framework the nominated pods (see [`Framework::set_pod_nominator`]).
    pub fn set_pod_nominator(&self, nominator: Arc<dyn PodNominator>) {
        for fw in self.by_name.values() {
            fw.set_pod_nominator(nominator.clone());
        }
    }

    /// Every plugin's requeueing events, over all profiles (for the scheduling queue).
    pub fn plugin_events(&self) -> HashMap<&'static str, Vec<ClusterEvent>> {
        let mut out = HashMap::new();
        for fw in self.by_name.values() {
            out.extend(fw.plugin_events());
        }
        out
    }
}

/// Configurable fake plugins for the framework's, the algorithm's and the queue's tests.
#[cfg(test)]
pub(crate) mod fakes {
    use std::sync::Mutex;

    use super::*;
    use crate::config::{PluginRef, Plugins as PluginsConfig};
    use crate::framework::{
        BindPlugin, FilterPlugin, NormalizeScorePlugin, PermitPlugin, PostFilterPlugin,
        PreBindPlugin, PreFilterPlugin, PreScorePlugin, ReservePlugin, ScorePlugin,
    };

    type PreFilterFn = dyn Fn(&Pod) -> (PreFilterResult, Status) + Send + Sync;
    type FilterFn = dyn Fn(&Pod, &NodeInfo) -> Status + Send + Sync;
    type ScoreFn = dyn Fn(&NodeInfo) -> i64 + Send + Sync;

    /// A plugin taking part in the points whose behaviour is set; calls are logged.
    #[derive(Default)]
    pub struct Fake {
        pub name: &'static str,
        pub pre_filter: Option<Box<PreFilterFn>>,
        pub filter: Option<Box<FilterFn>>,
        pub post_filter: Option<(Option<PostFilterResult>, Status)>,
        pub pre_score: Option<Status>,
        pub score: Option<Box<ScoreFn>>,
        /// Rescale scores so the highest becomes MAX_NODE_SCORE.
        pub normalize: bool,
        pub reserve: Option<Status>,
        pub permit: Option<(Status, Duration)>,
        pub pre_bind: Option<Status>,
        pub bind: Option<BindAction>,
        pub events: Vec<ClusterEvent>,
        pub log: Arc<Mutex<Vec<String>>>,
    }

    impl Fake {
        pub fn new(name: &'static str) -> Fake {
            Fake {
                name,
                ..Fake::default()
            }
        }

        fn record(&self, what: &str) {
            self.log
                .lock()
                .unwrap()
                .push(format!("{what}:{}", self.name));
        }
    }

    impl Plugin for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
            self.pre_filter.as_ref().map(|_| self as _)
        }
        fn filter(&self) -> Option<&dyn FilterPlugin> {
            self.filter.as_ref().map(|_| self as _)
        }
        fn post_filter(&self) -> Option<&dyn PostFilterPlugin> {
            self.post_filter.as_ref().map(|_| self as _)
        }
        fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
            self.pre_score.as_ref().map(|_| self as _)
        }
        fn score(&self) -> Option<&dyn ScorePlugin> {
            self.score.as_ref().map(|_| self as _)
        }
        fn reserve(&self) -> Option<&dyn ReservePlugin> {
            self.reserve.as_ref().map(|_| self as _)
        }
        fn permit(&self) -> Option<&dyn PermitPlugin> {
            self.permit.as_ref().map(|_| self as _)
        }
        fn pre_bind(&self) -> Option<&dyn PreBindPlugin> {
            self.pre_bind.as_ref().map(|_| self as _)
        }
        fn bind(&self) -> Option<&dyn BindPlugin> {
            self.bind.as_ref().map(|_| self as _)
        }
        fn events(&self) -> Vec<ClusterEvent> {
            self.events.clone()
        }
    }

    impl PreFilterPlugin for Fake {
        fn pre_filter(
            &self,
            _: &mut CycleState,
            pod: &Pod,
            _: &Snapshot,
        ) -> (PreFilterResult, Status) {
            self.record("prefilter");
            self.pre_filter
                .as_ref()
                .map(|f| f(pod))
                .unwrap_or_default_pair()
        }
    }

    trait DefaultPair {
        fn unwrap_or_default_pair(self) -> (PreFilterResult, Status);
    }
    impl DefaultPair for Option<(PreFilterResult, Status)> {
        fn unwrap_or_default_pair(self) -> (PreFilterResult, Status) {
            self.unwrap_or((PreFilterResult::all(), Status::success()))
        }
    }

    impl FilterPlugin for Fake {
        fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
            self.filter
                .as_ref()
                .map(|f| f(pod, node))
                .unwrap_or_else(Status::success)
        }
    }

    impl PostFilterPlugin for Fake {
        fn post_filter(
            &self,
            _: &CycleState,
            _: &Pod,
            _: &Snapshot,
            rejected: &NodeToStatus,
            _: &dyn FrameworkHandle,
        ) -> (Option<PostFilterResult>, Status) {
            self.record(&format!("postfilter({})", rejected.len()));
            self.post_filter
                .clone()
                .unwrap_or((None, Status::success()))
        }
    }

    impl PreScorePlugin for Fake {
        fn pre_score(
            &self,
            _: &mut CycleState,
            _: &Pod,
            _: &[Arc<NodeInfo>],
            _: &Snapshot,
        ) -> Status {
            self.record("prescore");
            self.pre_score.clone().unwrap_or_else(Status::success)
        }
    }

    impl ScorePlugin for Fake {
        fn score(&self, _: &CycleState, _: &Pod, node: &NodeInfo) -> (i64, Status) {
            (
                self.score.as_ref().map(|f| f(node)).unwrap_or(0),
                Status::success(),
            )
        }
        fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
            self.normalize.then_some(self as _)
        }
    }

    impl NormalizeScorePlugin for Fake {
        fn normalize_score(&self, _: &CycleState, _: &Pod, scores: &mut [NodeScore]) -> Status {
            let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
            for s in scores.iter_mut() {
                s.score = if max == 0 {
                    0
                } else {
                    s.score * MAX_NODE_SCORE / max
                };
            }
            Status::success()
        }
    }

    impl ReservePlugin for Fake {
        fn reserve(&self, _: &mut CycleState, _: &Pod, _: &str) -> Status {
            self.record("reserve");
            self.reserve.clone().unwrap_or_else(Status::success)
        }
        fn unreserve(&self, _: &mut CycleState, _: &Pod, _: &str) {
            self.record("unreserve");
        }
    }

    impl PermitPlugin for Fake {
        fn permit(&self, _: &mut CycleState, _: &Pod, _: &str) -> (Status, Duration) {
            self.permit
                .clone()
                .unwrap_or((Status::success(), Duration::ZERO))
        }
    }

    impl PreBindPlugin for Fake {
        fn pre_bind(&self, _: &CycleState, _: &Pod, _: &str) -> Status {
            self.record("prebind");
            self.pre_bind.clone().unwrap_or_else(Status::success)
        }
    }

    impl BindPlugin for Fake {
        fn bind(&self, _: &CycleState, _: &Pod, _: &str) -> BindAction {
            self.record("bind");
            self.bind.clone().unwrap_or(BindAction::Skip)
        }
    }

    /// A binder that binds to the given node.
    pub fn binder(name: &'static str) -> Fake {
        Fake {
            bind: Some(BindAction::Binding {
                node: String::new(),
            }),
            ..Fake::new(name)
        }
    }

    /// A registry with `plugins`, and a profile enabling them (in order, with weights) in
    /// `multiPoint` only.
    pub fn setup(plugins: Vec<(Fake, i32)>) -> (Registry, Profile) {
        let mut reg = Registry::new();
        let mut profile = Profile::new("test");
        let mut mp = Vec::new();
        for (f, weight) in plugins {
            let name = f.name;
            let p: Arc<dyn Plugin> = Arc::new(f);
            reg.register(name, move |_| Ok(p.clone())).unwrap();
            mp.push(PluginRef {
                name: name.to_string(),
                weight,
            });
        }
        profile.plugins = PluginsConfig::default();
        profile.plugins.multi_point.enabled = mp;
        (reg, profile)
    }

    /// A framework of `plugins` (plus a binder) with percentage 0.
    pub fn framework(mut plugins: Vec<(Fake, i32)>) -> Framework {
        if !plugins.iter().any(|(f, _)| f.bind.is_some()) {
            plugins.push((binder("FakeBinder"), 0));
        }
        let (reg, profile) = setup(plugins);
        Framework::new(&profile, &reg, 0).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::fakes::*;
    use super::*;
    use crate::config::{PluginRef, Plugins as PluginsConfig};

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": []}
        }))
        .unwrap()
    }

    fn nodes(names: &[&str]) -> Vec<Arc<NodeInfo>> {
        names
            .iter()
            .map(|n| {
                let node =
                    serde_json::from_value(serde_json::json!({"metadata": {"name": n}})).unwrap();
                Arc::new(NodeInfo::new(Arc::new(node)))
            })
            .collect()
    }

    fn named_ref(name: &str, weight: i32) -> PluginRef {
        PluginRef {
            name: name.into(),
            weight,
        }
    }

    fn filter_fake(name: &'static str) -> Fake {
        Fake {
            filter: Some(Box::new(|_, _| Status::success())),
            score: Some(Box::new(|_| 1)),
            ..Fake::new(name)
        }
    }

    #[test]
    fn multi_point_expansion_orders_like_upstream() {
        // multiPoint: A, B, C (all filter+score); filter explicitly lists C then D; score
        // disables B.
        let (reg, mut profile) = setup(vec![
            (filter_fake("A"), 0),
            (filter_fake("B"), 4),
            (filter_fake("C"), 0),
            (filter_fake("D"), 0),
            (binder("Bind"), 0),
        ]);
        profile
            .plugins
            .multi_point
            .enabled
            .retain(|p| p.name != "D");
        let filter = crate::config::PluginSet {
            enabled: vec![named_ref("C", 0), named_ref("D", 0)],
            disabled: Vec::new(),
        };
        profile
            .plugins
            .points
            .insert(ExtensionPoint::Filter, filter);
        let score = crate::config::PluginSet {
            enabled: vec![named_ref("C", 7)],
            disabled: vec!["B".into()],
        };
        profile.plugins.points.insert(ExtensionPoint::Score, score);
        let fw = Framework::new(&profile, &reg, 0).unwrap();
        // Overrides (C) first, then multiPoint (A, B), then other explicit ones (D).
        assert_eq!(
            fw.plugin_names(ExtensionPoint::Filter),
            ["C", "A", "B", "D"]
        );
        assert_eq!(fw.plugin_names(ExtensionPoint::Score), ["C", "A"]);
        assert_eq!(fw.score_weight("C"), Some(7), "explicit score weight wins");
        assert_eq!(fw.score_weight("A"), Some(1), "weight 0 means 1");
        assert_eq!(fw.plugin_names(ExtensionPoint::Bind), ["Bind"]);
        assert!(fw.plugin_names(ExtensionPoint::Reserve).is_empty());
    }

    #[test]
    fn building_checks_the_profile() {
        let (reg, profile) = setup(vec![(filter_fake("A"), 0)]);
        let err = Framework::new(&profile, &reg, 0).unwrap_err().to_string();
        assert!(err.contains("at least one bind plugin"), "{err}");

        let (reg, mut profile) = setup(vec![(filter_fake("A"), 0), (binder("B"), 0)]);
        let bind = crate::config::PluginSet {
            enabled: vec![named_ref("A", 0)],
            disabled: Vec::new(),
        };
        profile.plugins.points.insert(ExtensionPoint::Bind, bind);
        let err = Framework::new(&profile, &reg, 0).unwrap_err().to_string();
        assert!(err.contains("\"A\" does not extend bind"), "{err}");

        let (reg, mut profile) = setup(vec![(binder("B"), 0)]);
        profile.plugins.multi_point.enabled.push(named_ref("B", 0));
        let err = Framework::new(&profile, &reg, 0).unwrap_err().to_string();
        assert!(err.contains("already registered"), "{err}");

        let (reg, mut profile) = setup(vec![(binder("B"), 0)]);
        profile
            .plugins
            .multi_point
            .enabled
            .push(named_ref("Nope", 0));
        let err = Framework::new(&profile, &reg, 0).unwrap_err().to_string();
        assert!(err.contains("\"Nope\" does not exist"), "{err}");

        let mut reg = Registry::new();
        reg.register("Bad", |args| {
            Err(format!(
                "bad args {}",
                args.map(|a| a.to_string()).unwrap_or_default()
            ))
        })
        .unwrap();
        let mut profile = Profile::new("p");
        profile.plugins = PluginsConfig::default();
        profile.plugins.multi_point.enabled = vec![named_ref("Bad", 0)];
        profile
            .plugin_config
            .insert("Bad".into(), serde_json::json!({"x": 1}));
        let err = Framework::new(&profile, &reg, 0).unwrap_err().to_string();
        assert!(err.contains("bad args {\"x\":1}"), "{err}");
    }

    #[test]
    fn pre_filter_merges_results_and_skips() {
        let fw = framework(vec![
            (
                Fake {
                    pre_filter: Some(Box::new(|_| {
                        (
                            PreFilterResult::only(["n1".into(), "n2".into()]),
                            Status::success(),
                        )
                    })),
                    ..Fake::new("Narrow1")
                },
                0,
            ),
            (
                Fake {
                    pre_filter: Some(Box::new(|_| (PreFilterResult::all(), Status::skip()))),
                    filter: Some(Box::new(|_, _| Status::unschedulable("never runs"))),
                    ..Fake::new("Skipper")
                },
                0,
            ),
            (
                Fake {
                    pre_filter: Some(Box::new(|_| {
                        (
                            PreFilterResult::only(["n2".into(), "n3".into()]),
                            Status::success(),
                        )
                    })),
                    ..Fake::new("Narrow2")
                },
                0,
            ),
        ]);
        let mut state = CycleState::new();
        let out = fw.run_pre_filter(&mut state, &pod(), &Snapshot::default());
        assert!(out.status.is_success());
        assert_eq!(out.result, PreFilterResult::only(["n2".to_string()]));
        assert_eq!(
            out.plugins_with_nodes,
            BTreeSet::from(["Narrow1", "Narrow2"])
        );
        assert!(state.skip_filter_plugins.contains("Skipper"));
        let n = nodes(&["n2"]);
        assert!(fw.run_filter(&state, &pod(), &n[0]).is_success());
    }

    #[test]
    fn pre_filter_rejections() {
        let disjoint = |a: &'static str, b: &'static str| {
            vec![
                (
                    Fake {
                        pre_filter: Some(Box::new(move |_| {
                            (PreFilterResult::only([a.to_string()]), Status::success())
                        })),
                        ..Fake::new("X")
                    },
                    0,
                ),
                (
                    Fake {
                        pre_filter: Some(Box::new(move |_| {
                            (PreFilterResult::only([b.to_string()]), Status::success())
                        })),
                        ..Fake::new("Y")
                    },
                    0,
                ),
            ]
        };
        let fw = framework(disjoint("n1", "n2"));
        let out = fw.run_pre_filter(&mut CycleState::new(), &pod(), &Snapshot::default());
        assert_eq!(out.status.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            out.status.message(),
            "node(s) didn't satisfy plugin(s) [X Y] simultaneously"
        );

        // Unschedulable lets the rest run; unresolvable stops; errors are wrapped.
        let log = Arc::new(Mutex::new(Vec::new()));
        let fw = framework(vec![
            (
                Fake {
                    pre_filter: Some(Box::new(|_| {
                        (PreFilterResult::all(), Status::unschedulable("no"))
                    })),
                    log: log.clone(),
                    ..Fake::new("First")
                },
                0,
            ),
            (
                Fake {
                    pre_filter: Some(Box::new(|_| (PreFilterResult::all(), Status::success()))),
                    log: log.clone(),
                    ..Fake::new("Second")
                },
                0,
            ),
        ]);
        let out = fw.run_pre_filter(&mut CycleState::new(), &pod(), &Snapshot::default());
        assert_eq!(out.status.code, Code::Unschedulable);
        assert_eq!(out.status.plugin, Some("First"));
        assert_eq!(
            *log.lock().unwrap(),
            ["prefilter:First", "prefilter:Second"]
        );

        let fw = framework(vec![(
            Fake {
                pre_filter: Some(Box::new(|_| {
                    (PreFilterResult::all(), Status::error("boom"))
                })),
                ..Fake::new("Err")
            },
            0,
        )]);
        let out = fw.run_pre_filter(&mut CycleState::new(), &pod(), &Snapshot::default());
        assert_eq!(out.status.code, Code::Error);
        assert_eq!(
            out.status.message(),
            "running PreFilter plugin \"Err\": boom"
        );
    }

    #[test]
    fn filter_first_rejection_wins() {
        let fw = framework(vec![
            (
                Fake {
                    filter: Some(Box::new(|_, n| {
                        if n.name() == "bad" {
                            Status::unschedulable("first says no")
                        } else {
                            Status::success()
                        }
                    })),
                    ..Fake::new("One")
                },
                0,
            ),
            (
                Fake {
                    filter: Some(Box::new(|_, _| Status::unresolvable("second says no"))),
                    ..Fake::new("Two")
                },
                0,
            ),
        ]);
        let ns = nodes(&["bad", "good"]);
        let s = fw.run_filter(&CycleState::new(), &pod(), &ns[0]);
        assert_eq!(
            (s.code, s.plugin, s.message().as_str()),
            (Code::Unschedulable, Some("One"), "first says no")
        );
        let s = fw.run_filter(&CycleState::new(), &pod(), &ns[1]);
        assert_eq!(s.plugin, Some("Two"));
    }

    #[test]
    fn scores_are_normalized_weighted_and_summed() {
        let fw = framework(vec![
            (
                Fake {
                    // Raw 1, 2, 4 → normalized 25, 50, 100; weight 2.
                    score: Some(Box::new(|n| match n.name() {
                        "a" => 1,
                        "b" => 2,
                        _ => 4,
                    })),
                    normalize: true,
                    ..Fake::new("Norm")
                },
                2,
            ),
            (
                Fake {
                    score: Some(Box::new(|n| if n.name() == "a" { 90 } else { 10 })),
                    ..Fake::new("Plain")
                },
                1,
            ),
            (
                Fake {
                    score: Some(Box::new(|_| 100)),
                    pre_score: Some(Status::skip()),
                    ..Fake::new("Skipped")
                },
                5,
            ),
        ]);
        let ns = nodes(&["a", "b", "c"]);
        let mut state = CycleState::new();
        assert!(
            fw.run_pre_score(&mut state, &pod(), &ns, &Snapshot::default())
                .is_success()
        );
        let scores = fw.run_score(&state, &pod(), &ns).unwrap();
        assert_eq!(scores.plugins, [("Norm", 2), ("Plain", 1)]);
        assert_eq!(scores.totals, [50 + 90, 100 + 10, 200 + 10]);
        assert_eq!(
            scores.breakdown(0),
            [
                PluginScore {
                    plugin: "Norm",
                    weight: 2,
                    score: 50
                },
                PluginScore {
                    plugin: "Plain",
                    weight: 1,
                    score: 90
                }
            ]
        );
        assert_eq!(scores.ranked()[0], ("c", 210));

        let fw = framework(vec![(
            Fake {
                score: Some(Box::new(|_| 101)),
                ..Fake::new("TooHigh")
            },
            1,
        )]);
        let err = fw.run_score(&CycleState::new(), &pod(), &ns).unwrap_err();
        assert!(
            err.message().contains("returns an invalid score 101"),
            "{err}"
        );
    }

    #[test]
    fn reserve_unreserve_prebind_and_bind() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mk = |name, reserve: Status| Fake {
            reserve: Some(reserve),
            log: log.clone(),
            ..Fake::new(name)
        };
        let fw = framework(vec![
            (mk("R1", Status::success()), 0),
            (mk("R2", Status::unschedulable("full")), 0),
            (mk("R3", Status::success()), 0),
            (
                Fake {
                    bind: Some(BindAction::Skip),
                    log: log.clone(),
                    ..Fake::new("SkipBinder")
                },
                0,
            ),
            (
                Fake {
                    bind: Some(BindAction::Binding { node: "n".into() }),
                    pre_bind: Some(Status::success()),
                    log: log.clone(),
                    ..Fake::new("RealBinder")
                },
                0,
            ),
        ]);
        let mut state = CycleState::new();
        let s = fw.run_reserve(&mut state, &pod(), "n");
        assert_eq!((s.code, s.plugin), (Code::Unschedulable, Some("R2")));
        fw.run_unreserve(&mut state, &pod(), "n");
        assert!(fw.run_pre_bind(&state, &pod(), "n").is_success());
        let (action, by) = fw.run_bind(&state, &pod(), "n");
        assert_eq!(action, BindAction::Binding { node: "n".into() });
        assert_eq!(by, Some("RealBinder"));
        assert_eq!(
            *log.lock().unwrap(),
            [
                "reserve:R1",
                "reserve:R2",
                "unreserve:R3",
                "unreserve:R2",
                "unreserve:R1",
                "prebind:RealBinder",
                "bind:SkipBinder",
                "bind:RealBinder"
            ]
        );
    }

    #[test]
    fn permit_waits_for_the_shortest_capped_timeout() {
        let wait = |name, secs| Fake {
            permit: Some((Status::new(Code::Wait, vec![]), Duration::from_secs(secs))),
            ..Fake::new(name)
        };
        let fw = framework(vec![(wait("W1", 3600), 0), (wait("W2", 20 * 60), 0)]);
        let (s, t) = fw.run_permit(&mut CycleState::new(), &pod(), "n");
        assert_eq!((s.code, s.plugin), (Code::Wait, Some("W1")));
        assert_eq!(t, MAX_PERMIT_TIMEOUT);

        let fw = framework(vec![
            (wait("W1", 5), 0),
            (
                Fake {
                    permit: Some((Status::unschedulable("nope"), Duration::ZERO)),
                    ..Fake::new("Rejecter")
                },
                0,
            ),
        ]);
        let (s, _) = fw.run_permit(&mut CycleState::new(), &pod(), "n");
        assert_eq!((s.code, s.plugin), (Code::Unschedulable, Some("Rejecter")));
    }

    #[test]
    fn post_filter_collects_reasons() {
        let pf = |name, code, reason: &str| Fake {
            post_filter: Some((None, Status::new(code, vec![reason.to_string()]))),
            ..Fake::new(name)
        };
        let fw = framework(vec![
            (pf("P1", Code::Unschedulable, "a"), 0),
            (pf("P2", Code::Unschedulable, "b"), 0),
        ]);
        let (r, s) = fw.run_post_filter(
            &CycleState::new(),
            &pod(),
            &Snapshot::default(),
            &NodeToStatus::new(),
        );
        assert!(r.is_none());
        assert_eq!(
            (s.code, s.plugin, s.message()),
            (Code::Unschedulable, Some("P1"), "a, b".to_string())
        );

        let fw = framework(vec![
            (pf("P1", Code::UnschedulableAndUnresolvable, "stop"), 0),
            (pf("P2", Code::Unschedulable, "b"), 0),
        ]);
        let (_, s) = fw.run_post_filter(
            &CycleState::new(),
            &pod(),
            &Snapshot::default(),
            &NodeToStatus::new(),
        );
        assert_eq!((s.plugin, s.message()), (Some("P1"), "stop".to_string()));
    }

    struct Nominated(Vec<Arc<PodInfo>>);
    impl PodNominator for Nominated {
        fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
            if node == "n1" {
                self.0.clone()
            } else {
                Vec::new()
            }
        }
    }

    #[test]
    fn filtering_accounts_for_higher_priority_nominated_pods() {
        // The node holds one pod at most.
        let fw = framework(vec![(
            Fake {
                filter: Some(Box::new(|_, n| {
                    if n.pods.is_empty() {
                        Status::success()
                    } else {
                        Status::unschedulable("Too many pods")
                    }
                })),
                ..Fake::new("OnePod")
            },
            0,
        )]);
        let ns = nodes(&["n1"]);
        let mk = |uid: &str, priority: i32| {
            Arc::new(PodInfo::new(Arc::new(
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": uid, "namespace": "d", "uid": uid},
                    "spec": {"containers": [], "priority": priority}
                }))
                .unwrap(),
            )))
        };
        assert!(
            fw.run_filter_with_nominated_pods(&CycleState::new(), &pod(), &ns[0])
                .is_success()
        );
        assert!(fw.set_pod_nominator(Arc::new(Nominated(vec![mk("low", -1)]))));
        assert!(
            fw.run_filter_with_nominated_pods(&CycleState::new(), &pod(), &ns[0])
                .is_success(),
            "lower-priority nominations do not count"
        );
        let fw2 = framework(vec![(
            Fake {
                filter: Some(Box::new(|_, n| {
                    if n.pods.is_empty() {
                        Status::success()
                    } else {
                        Status::unschedulable("Too many pods")
                    }
                })),
                ..Fake::new("OnePod")
            },
            0,
        )]);
        fw2.set_pod_nominator(Arc::new(Nominated(vec![mk("high", 10)])));
        let s = fw2.run_filter_with_nominated_pods(&CycleState::new(), &pod(), &ns[0]);
        assert_eq!(s.message(), "Too many pods");
        // The pod itself being nominated there does not block it.
        let fw3 = framework(vec![]);
        fw3.set_pod_nominator(Arc::new(Nominated(vec![mk("u", 10)])));
        assert!(
            fw3.run_filter_with_nominated_pods(&CycleState::new(), &pod(), &ns[0])
                .is_success()
        );
    }

    #[test]
    fn frameworks_by_scheduler_name() {
        let mut reg = Registry::new();
        let b: Arc<dyn Plugin> = Arc::new(Fake {
            events: vec![ClusterEvent::NodeAdd],
            ..binder("DefaultBinder")
        });
        reg.register("DefaultBinder", move |_| Ok(b.clone()))
            .unwrap();
        let config = SchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 40\nprofiles:\n- schedulerName: one\n  plugins: {multiPoint: {disabled: [{name: \"*\"}], enabled: [{name: DefaultBinder}]}}\n- schedulerName: two\n  percentageOfNodesToScore: 10\n  plugins: {multiPoint: {disabled: [{name: \"*\"}], enabled: [{name: DefaultBinder}]}}\n",
        )
        .unwrap();
        let fws = Frameworks::new(&config, &reg).unwrap();
        assert_eq!(fws.scheduler_names().collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(fws.get("one").unwrap().percentage_of_nodes_to_score(), 40);
        assert_eq!(fws.get("two").unwrap().percentage_of_nodes_to_score(), 10);
        assert!(fws.get("three").is_none());
        assert_eq!(
            fws.plugin_events().get("DefaultBinder"),
            Some(&vec![ClusterEvent::NodeAdd])
        );
        // The default configuration names plugins this registry lacks.
        let err = Frameworks::new(&SchedulerConfiguration::default(), &reg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
