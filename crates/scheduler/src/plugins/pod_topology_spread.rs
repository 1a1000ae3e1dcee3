//! PodTopologySpread: spreads matching pods evenly over topology domains, with upstream's
//! semantics (`pkg/scheduler/framework/plugins/podtopologyspread`).
//!
//! Hard constraints (`whenUnsatisfiable: DoNotSchedule`) are a filter: PreFilter counts the
//! matching pods per domain over the eligible nodes (those carrying every constraint's
//! topology key and passing the node inclusion policies) and keeps the two smallest domains
//! per constraint, so Filter checks `count + self - global minimum <= maxSkew` with lookups
//! only; preemption updates the counts through the PreFilter extensions. Soft constraints
//! (`ScheduleAnyway`) are a score: fewer matching pods in a node's domains is better, each
//! constraint weighted by the log of its number of domains.
//!
//! A pod without constraints of its own gets the configured default constraints (the system
//! defaults unless `defaultingType: List`), selecting the pods of the Services, ReplicaSets,
//! ReplicationControllers and StatefulSets that select it; a pod selected by none gets none.
//!
//! The per-node counting behind PreFilter and PreScore is memoized across cycles ([`memo`],
//! also used by InterPodAffinity): a cycle recomputes only the nodes that changed since, so
//! its cost at thousands of nodes is a pass over the node list, not over every node's pods.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use api::selector::{LabelSelector, Operator, Requirement};
use api::validation::{self, FieldError};
use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration, TopologySpreadConstraint,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

use self::memo::{Domains, Interner, NodeMemo};
use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore,
    NormalizeScorePlugin, Plugin, PodInfo, PreFilterExtensions, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status, WorkloadSelector,
};

pub const NAME: &str = "PodTopologySpread";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";

/// Placing the pod on the node would exceed a constraint's maxSkew.
pub const ERR_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
/// The node lacks a constraint's topology key.
pub const ERR_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

// ---------------------------------------------------------------------------------------------
// Args.

/// Where a pod without constraints of its own gets its constraints from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultingType {
    /// Upstream's built-in defaults (hostname maxSkew 3, zone maxSkew 5, both ScheduleAnyway).
    System,
    /// `defaultConstraints` from the args (possibly none).
    List,
}

/// `PodTopologySpreadArgs` of `kubescheduler.config.k8s.io/v1`, defaulted and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PodTopologySpreadArgs {
    pub default_constraints: Vec<TopologySpreadConstraint>,
    pub defaulting_type: DefaultingType,
}

impl Default for PodTopologySpreadArgs {
    fn default() -> Self {
        PodTopologySpreadArgs {
            default_constraints: Vec::new(),
            defaulting_type: DefaultingType::System,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArgs {
    #[serde(default)]
    api_version: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    default_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

/// Upstream's `ErrorList.ToAggregate()` text: one error bare, several as `[a, b]`.
fn aggregate(errs: Vec<FieldError>) -> Result<(), String> {
    let mut msgs: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    match msgs.len() {
        0 => Ok(()),
        1 => Err(msgs.concat()),
        _ => Err(format!("[{}]", msgs.join(", "))),
    }
}

impl PodTopologySpreadArgs {
    /// Decodes, defaults (`defaultingType: System`) and validates the args as upstream's
    /// `ValidatePodTopologySpreadArgs` (`None` or `null`: the defaults).
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = args.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let raw = RawArgs::deserialize(value)
            .map_err(|e| format!("decoding PodTopologySpreadArgs: {e}"))?;
        let _ = raw.api_version;
        if let Some(kind) = raw
            .kind
            .as_deref()
            .filter(|k| *k != "PodTopologySpreadArgs")
        {
            return Err(format!(
                "want args of kind PodTopologySpreadArgs, got {kind:?}"
            ));
        }
        let constraints = raw.default_constraints.unwrap_or_default();
        let defaulting = raw.defaulting_type.unwrap_or_else(|| "System".to_string());
        let mut errs = Vec::new();
        let defaulting_type = match defaulting.as_str() {
            "System" => Some(DefaultingType::System),
            "List" => Some(DefaultingType::List),
            _ => None,
        };
        match defaulting_type {
            None => errs.push(FieldError::not_supported(
                "defaultingType",
                defaulting.as_str(),
                &["System", "List"],
            )),
            Some(DefaultingType::System) if !constraints.is_empty() => {
                errs.push(FieldError::invalid(
                    "defaultingType",
                    defaulting.as_str(),
                    "when .defaultConstraints are not empty",
                ))
            }
            Some(_) => {}
        }
        for (i, c) in constraints.iter().enumerate() {
            let path = format!("defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                errs.push(FieldError::invalid(
                    format!("{path}.maxSkew"),
                    c.max_skew,
                    "not in valid range (0, inf)",
                ));
            }
            let key_path = format!("{path}.topologyKey");
            if c.topology_key.is_empty() {
                errs.push(FieldError::required(key_path, "can not be empty"));
            } else {
                for msg in validation::qualified_name(&c.topology_key) {
                    errs.push(FieldError::invalid(
                        key_path.clone(),
                        c.topology_key.as_str(),
                        msg,
                    ));
                }
            }
            let action_path = format!("{path}.whenUnsatisfiable");
            match c.when_unsatisfiable.as_str() {
                "" => errs.push(FieldError::required(action_path, "can not be empty")),
                DO_NOT_SCHEDULE | SCHEDULE_ANYWAY => {}
                other => errs.push(FieldError::not_supported(
                    action_path,
                    other,
                    &[DO_NOT_SCHEDULE, SCHEDULE_ANYWAY],
                )),
            }
            if c.label_selector.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{path}.labelSelector"),
                    "constraint must not define a selector, as they deduced for each pod",
                ));
            }
            let repeated = constraints[..i].iter().any(|o| {
                o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
            });
            if repeated {
                errs.push(FieldError::duplicate(
                    path,
                    format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
                ));
            }
        }
        aggregate(errs)?;
        Ok(PodTopologySpreadArgs {
            default_constraints: constraints,
            defaulting_type: defaulting_type.unwrap_or(DefaultingType::System),
        })
    }
}

/// Upstream's `systemDefaultConstraints`.
fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    let soft = |key: &str, max_skew| TopologySpreadConstraint {
        max_skew,
        topology_key: key.to_string(),
        when_unsatisfiable: SCHEDULE_ANYWAY.to_string(),
        ..TopologySpreadConstraint::default()
    };
    vec![soft(LABEL_HOSTNAME, 3), soft(LABEL_ZONE, 5)]
}

// ---------------------------------------------------------------------------------------------
// The plugin.

/// Per node: `(topology value id, matching pods)` per constraint.
type SlotMemo = NodeMemo<Vec<Arc<Interner>>, Vec<Option<(u32, i64)>>>;

pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    /// The defaults are the system's: nodes then need not carry every default key to be
    /// scored (so nodes without a zone still get hostname spreading).
    system_defaulted: bool,
    /// Per-node counts for PreFilter and PreScore, across cycles.
    memo: SlotMemo,
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    let args = PodTopologySpreadArgs::from_json(args)?;
    Ok(Arc::new(PodTopologySpread::from_args(args)))
}

impl PodTopologySpread {
    fn from_args(args: PodTopologySpreadArgs) -> PodTopologySpread {
        match args.defaulting_type {
            DefaultingType::System => PodTopologySpread {
                default_constraints: system_default_constraints(),
                system_defaulted: true,
                memo: SlotMemo::default(),
            },
            DefaultingType::List => PodTopologySpread {
                default_constraints: args.default_constraints,
                system_defaulted: false,
                memo: SlotMemo::default(),
            },
        }
    }

    /// The pod's constraints with `action` (its own, or else the defaults).
    fn constraints(
        &self,
        pod: &Pod,
        action: &str,
        snapshot: &Snapshot,
    ) -> Result<Vec<Constraint>, String> {
        let labels = pod_labels(pod);
        match own_constraints(pod) {
            Some(own) => build_constraints(own, labels, action),
            None => {
                let mut constraints = build_constraints(&self.default_constraints, labels, action)?;
                if constraints.is_empty() {
                    return Ok(constraints);
                }
                let selector = default_selector(pod, &snapshot.workload_selectors);
                if selector.is_everything() {
                    return Ok(Vec::new());
                }
                for c in &mut constraints {
                    c.selector = selector.clone();
                }
                Ok(constraints)
            }
        }
    }
}

impl PodTopologySpread {
    /// Matching pods per domain of each constraint over `snapshot`'s nodes, as PreFilter
    /// (`require_all`, every constraint) and PreScore (hostname constraints left to Score)
    /// count them; read from the memo for nodes unchanged since an earlier cycle.
    fn count_domains(
        &self,
        pod: &Pod,
        constraints: &[Constraint],
        inclusion: &NodeInclusion,
        require_all: bool,
        skip_hostname: bool,
        snapshot: &Snapshot,
    ) -> Vec<Domains> {
        let ns = pod_namespace(pod);
        let fingerprint =
            format!("{require_all}|{skip_hostname}|{ns:?}|{constraints:?}|{inclusion:?}");
        self.memo.with(
            &fingerprint,
            &snapshot.nodes,
            |node, interners| {
                node_slots(
                    node,
                    constraints,
                    inclusion,
                    ns,
                    require_all,
                    skip_hostname,
                    interners,
                )
            },
            |results, interners| memo::sum_slots(results, interners, constraints.len()),
        )
    }
}

/// One node's `(value id, matching pods)` per constraint; `None` where the node is no domain
/// of the constraint (excluded by a policy, or lacking a key). Without `require_all`, a
/// missing key counts under the empty value (upstream's behaviour for system defaults).
fn node_slots(
    node: &NodeInfo,
    constraints: &[Constraint],
    inclusion: &NodeInclusion,
    ns: &str,
    require_all: bool,
    skip_hostname: bool,
    interners: &mut Vec<Arc<Interner>>,
) -> Vec<Option<(u32, i64)>> {
    let labels = node.labels();
    if require_all && !has_all_keys(labels, constraints) {
        return Vec::new();
    }
    interners.resize_with(constraints.len(), Default::default);
    let mut check = InclusionCheck::new(inclusion, &node.node);
    constraints
        .iter()
        .zip(interners.iter_mut())
        .map(|(c, interner)| {
            if (skip_hostname && c.is_hostname()) || !check.includes(c) {
                return None;
            }
            let value = match labels.get(&c.topology_key) {
                Some(v) => v.as_str(),
                None if !require_all => "",
                None => return None,
            };
            Some((
                memo::intern(interner, value),
                count_matching(&node.pods, &c.selector, ns),
            ))
        })
        .collect()
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }

    /// Pods coming, changing labels or going change the counts; nodes coming, going or
    /// changing labels or taints change the domains.
    fn events(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::PodAdd,
            ClusterEvent::PodUpdate,
            ClusterEvent::PodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::NodeDelete,
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Constraints.

fn pod_labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or_default()
}

fn own_constraints(pod: &Pod) -> Option<&[TopologySpreadConstraint]> {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .filter(|c| !c.is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Honor,
    Ignore,
}

impl Policy {
    /// Only `Honor` honors: another value (not admitted by the API) counts as `Ignore`.
    fn parse(value: Option<&str>, default: Policy) -> Policy {
        match value {
            None => default,
            Some("Honor") => Policy::Honor,
            Some(_) => Policy::Ignore,
        }
    }
}

/// One constraint, parsed (upstream's `topologySpreadConstraint`).
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: LabelSelector,
    min_domains: i64,
    node_affinity_policy: Policy,
    node_taints_policy: Policy,
}

impl Constraint {
    fn is_hostname(&self) -> bool {
        self.topology_key == LABEL_HOSTNAME
    }
}

/// Parses the constraints with `action`; `matchLabelKeys` add the pod's values of those keys to
/// the selector.
fn build_constraints(
    list: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for c in list.iter().filter(|c| c.when_unsatisfiable == action) {
        let mut selector = LabelSelector::from_k8s_opt(c.label_selector.as_ref())
            .map_err(|e| format!("labelSelector of constraint on {:?}: {e}", c.topology_key))?;
        let match_labels: BTreeMap<String, String> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| Some((k.clone(), pod_labels.get(k)?.clone())))
            .collect();
        // A null selector selects nothing, whatever keys are added to it.
        if !match_labels.is_empty() && !selector.is_nothing() {
            let mut merged = LabelSelector::from_set(&match_labels);
            for r in selector.requirements() {
                merged.add(r.clone());
            }
            selector = merged;
        }
        out.push(Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: i64::from(c.min_domains.unwrap_or(1)),
            node_affinity_policy: Policy::parse(c.node_affinity_policy.as_deref(), Policy::Honor),
            node_taints_policy: Policy::parse(c.node_taints_policy.as_deref(), Policy::Ignore),
        });
    }
    Ok(out)
}

/// Upstream's `helper.DefaultSelector`: the union of the selectors of the Services selecting
/// the pod and of its controller, when that is a ReplicationController, ReplicaSet or
/// StatefulSet. The snapshot lists workloads by selector, not by name, so the controller's
/// selector is that of the workloads of the owner's kind in the pod's namespace that select
/// the pod.
fn default_selector(pod: &Pod, workloads: &[WorkloadSelector]) -> LabelSelector {
    let ns = pod_namespace(pod);
    let labels = pod_labels(pod);
    let controller_kind = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .and_then(|o| match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "ReplicationController") => Some("ReplicationController"),
            ("apps/v1", "ReplicaSet") => Some("ReplicaSet"),
            ("apps/v1", "StatefulSet") => Some("StatefulSet"),
            _ => None,
        });
    let mut selector = LabelSelector::everything();
    for w in workloads {
        let relevant = w.kind == "Service" || Some(w.kind) == controller_kind;
        if !relevant || w.namespace != ns || w.selector.is_nothing() || !w.selector.matches(labels)
        {
            continue;
        }
        for r in w.selector.requirements() {
            if !selector.requirements().contains(r) {
                selector.add(r.clone());
            }
        }
    }
    selector
}

/// Matching pods among `pods`: same namespace, not terminating, selected. An empty selector
/// counts nothing (as upstream).
fn count_matching(pods: &[Arc<PodInfo>], selector: &LabelSelector, ns: &str) -> i64 {
    if selector.is_everything() {
        return 0;
    }
    pods.iter()
        .filter(|p| {
            let meta = &p.pod.metadata;
            meta.deletion_timestamp.is_none()
                && meta.namespace.as_deref().unwrap_or_default() == ns
                && selector.matches(&meta.labels)
        })
        .count() as i64
}

fn has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

// ---------------------------------------------------------------------------------------------
// Node inclusion policies: the incoming pod's required node affinity and tolerations.

/// One required node selector term; matches nothing when it did not parse or is empty.
#[derive(Debug)]
struct NodeTerm {
    labels: LabelSelector,
    /// `metadata.name` In (true) / NotIn (false) one name.
    fields: Vec<(bool, String)>,
}

impl NodeTerm {
    /// Upstream's lazy-error term parsing: `None` for a term that can never match.
    fn parse(term: &NodeSelectorTerm) -> Option<NodeTerm> {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let mut labels = LabelSelector::everything();
        for e in exprs {
            labels.add(label_requirement(e)?);
        }
        let fields = fields
            .iter()
            .map(|f| {
                let [name] = f.values.as_deref().unwrap_or_default() else {
                    return None;
                };
                match (f.key.as_str(), f.operator.as_str()) {
                    ("metadata.name", "In") => Some((true, name.clone())),
                    ("metadata.name", "NotIn") => Some((false, name.clone())),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(NodeTerm { labels, fields })
    }

    fn matches(&self, node: &Node) -> bool {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        self.labels.matches(&node.metadata.labels)
            && self.fields.iter().all(|(is_in, v)| (name == v) == *is_in)
    }
}

fn label_requirement(e: &NodeSelectorRequirement) -> Option<Requirement> {
    let op = match e.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return None,
    };
    Requirement::new(&e.key, op, e.values.clone().unwrap_or_default()).ok()
}

/// What the node inclusion policies check of a node, from the incoming pod.
#[derive(Debug, Default)]
struct NodeInclusion {
    /// `spec.nodeSelector`, when set.
    node_selector: Option<LabelSelector>,
    /// The required node affinity terms (ORed), when set.
    affinity_terms: Option<Vec<Option<NodeTerm>>>,
    tolerations: Vec<Toleration>,
}

impl NodeInclusion {
    fn new(pod: &Pod) -> NodeInclusion {
        let Some(spec) = pod.spec.as_ref() else {
            return NodeInclusion::default();
        };
        NodeInclusion {
            node_selector: spec
                .node_selector
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(LabelSelector::from_set),
            affinity_terms: spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|s| s.node_selector_terms.iter().map(NodeTerm::parse).collect()),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
        }
    }

    /// Upstream's `RequiredNodeAffinity.Match` (parse errors: no match).
    fn matches_affinity(&self, node: &Node) -> bool {
        if let Some(sel) = &self.node_selector
            && !sel.matches(&node.metadata.labels)
        {
            return false;
        }
        match &self.affinity_terms {
            None => true,
            Some(terms) => terms.iter().flatten().any(|t| t.matches(node)),
        }
    }

    /// No NoSchedule/NoExecute taint of the node goes untolerated.
    fn tolerates(&self, node: &Node) -> bool {
        let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref());
        taints.unwrap_or_default().iter().all(|taint| {
            !matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                || self.tolerations.iter().any(|t| {
                    let effect_ok = t
                        .effect
                        .as_deref()
                        .is_none_or(|e| e.is_empty() || e == taint.effect);
                    let key_ok = t
                        .key
                        .as_deref()
                        .is_none_or(|k| k.is_empty() || k == taint.key);
                    let value_ok = match t.operator.as_deref() {
                        None | Some("") | Some("Equal") => {
                            t.value.as_deref().unwrap_or_default()
                                == taint.value.as_deref().unwrap_or_default()
                        }
                        Some("Exists") => true,
                        Some(_) => false,
                    };
                    effect_ok && key_ok && value_ok
                })
        })
    }
}

/// Evaluates a node's inclusion per constraint, computing each policy at most once.
struct InclusionCheck<'a> {
    inclusion: &'a NodeInclusion,
    node: &'a Node,
    affinity: Option<bool>,
    taints: Option<bool>,
}

impl<'a> InclusionCheck<'a> {
    fn new(inclusion: &'a NodeInclusion, node: &'a Node) -> Self {
        InclusionCheck {
            inclusion,
            node,
            affinity: None,
            taints: None,
        }
    }

    /// Upstream's `matchNodeInclusionPolicies`.
    fn includes(&mut self, c: &Constraint) -> bool {
        if c.node_affinity_policy == Policy::Honor
            && !*self
                .affinity
                .get_or_insert_with(|| self.inclusion.matches_affinity(self.node))
        {
            return false;
        }
        if c.node_taints_policy == Policy::Honor
            && !*self
                .taints
                .get_or_insert_with(|| self.inclusion.tolerates(self.node))
        {
            return false;
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// PreFilter / Filter.

/// The two domains (by value id) with the fewest matching pods (upstream's `criticalPaths`):
/// the first always holds the minimum; the second is at least as large, not necessarily the
/// second smallest. Enough because preemption evaluates one node at a time on its own copy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CriticalPaths([(usize, i64); 2]);

impl CriticalPaths {
    fn new() -> CriticalPaths {
        let unset = (usize::MAX, i64::from(i32::MAX));
        CriticalPaths([unset, unset])
    }

    fn update(&mut self, id: usize, num: i64) {
        let p = &mut self.0;
        let at = if p[0].0 == id {
            Some(0)
        } else if p[1].0 == id {
            Some(1)
        } else {
            None
        };
        match at {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None if num < p[0].1 => {
                p[1] = p[0];
                p[0] = (id, num);
            }
            None if num < p[1].1 => p[1] = (id, num),
            None => {}
        }
    }
}

/// What does not change during the cycle.
#[derive(Debug)]
struct FilterConstraints {
    constraints: Vec<Constraint>,
    /// Whether each constraint's selector matches the incoming pod itself.
    self_match: Vec<bool>,
    inclusion: NodeInclusion,
}

#[derive(Clone, Debug)]
struct PreFilterState {
    fixed: Arc<FilterConstraints>,
    /// Per constraint: matching pods per domain (every eligible domain is one).
    match_num: Vec<Domains>,
    critical_paths: Vec<CriticalPaths>,
}

impl PreFilterState {
    /// The global minimum for the skew, 0 while there are fewer domains than minDomains.
    fn min_match_num(&self, i: usize, min_domains: i64) -> i64 {
        if (self.match_num[i].domains() as i64) < min_domains {
            0
        } else {
            self.critical_paths[i].0[0].1
        }
    }

    fn update_with_pod(&mut self, updated: &Pod, incoming: &Pod, node: &Node, delta: i64) {
        if pod_namespace(updated) != pod_namespace(incoming) {
            return;
        }
        let Some(labels) = node.metadata.labels.as_ref() else {
            return;
        };
        let fixed = Arc::clone(&self.fixed);
        if !has_all_keys(labels, &fixed.constraints) {
            return;
        }
        let mut check = InclusionCheck::new(&fixed.inclusion, node);
        let updated_labels = pod_labels(updated);
        for (i, c) in fixed.constraints.iter().enumerate() {
            if !c.selector.matches(updated_labels) || !check.includes(c) {
                continue;
            }
            let Some(v) = labels.get(&c.topology_key) else {
                continue;
            };
            let (id, n) = self.match_num[i].add(v, delta);
            self.critical_paths[i].update(id, n);
        }
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let constraints = match self.constraints(pod, DO_NOT_SCHEDULE, snapshot) {
            Ok(c) => c,
            Err(e) => {
                return (
                    PreFilterResult::all(),
                    Status::error(format!("get constraints from pod: {e}")),
                );
            }
        };
        if constraints.is_empty() {
            return (PreFilterResult::all(), Status::skip());
        }
        let inclusion = NodeInclusion::new(pod);
        let match_num = self.count_domains(pod, &constraints, &inclusion, true, false, snapshot);
        let critical_paths = match_num
            .iter()
            .map(|domains| {
                let mut paths = CriticalPaths::new();
                for (id, n) in domains.iter() {
                    paths.update(id, n);
                }
                paths
            })
            .collect();
        let labels = pod_labels(pod);
        let self_match = constraints
            .iter()
            .map(|c| c.selector.matches(labels))
            .collect();
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                fixed: Arc::new(FilterConstraints {
                    constraints,
                    self_match,
                    inclusion,
                }),
                match_num,
                critical_paths,
            },
        );
        (PreFilterResult::all(), Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

fn state_missing(key: &str) -> Status {
    Status::error(format!("reading {key:?} from cycleState: not found"))
}

impl PreFilterExtensions for PodTopologySpread {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) else {
            return state_missing(PRE_FILTER_KEY);
        };
        s.update_with_pod(&added.pod, pod, &node.node, 1);
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) else {
            return state_missing(PRE_FILTER_KEY);
        };
        s.update_with_pod(&removed.pod, pod, &node.node, -1);
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _pod: &Pod, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return state_missing(PRE_FILTER_KEY);
        };
        let labels = node.labels();
        for (i, c) in s.fixed.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.topology_key) else {
                tracing::trace!(node = node.name(), key = %c.topology_key,
                    "node lacks a topology spread key");
                return Status::unresolvable(ERR_NODE_LABEL_NOT_MATCH);
            };
            let min = s.min_match_num(i, c.min_domains);
            let self_match = i64::from(s.fixed.self_match[i]);
            let matching = s.match_num[i].get(v);
            if matching + self_match - min > c.max_skew {
                tracing::trace!(node = node.name(), key = %c.topology_key, matching, self_match,
                    min, max_skew = c.max_skew, "topology spread skew exceeded");
                return Status::unschedulable(ERR_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

// ---------------------------------------------------------------------------------------------
// PreScore / Score / NormalizeScore.

#[derive(Debug)]
struct ScoreData {
    constraints: Vec<Constraint>,
    /// Feasible nodes lacking a required key: scored 0.
    ignored: HashSet<String>,
    /// Per constraint (not hostname ones: those count per node in Score): matching pods per
    /// domain of the feasible nodes.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: ln(number of domains + 2), so small topologies weigh less.
    weights: Vec<f64>,
}

/// Read-only once written, so clones share it.
#[derive(Clone, Debug)]
struct PreScoreState(Arc<ScoreData>);

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if snapshot.is_empty() {
            return Status::skip();
        }
        let constraints = match self.constraints(pod, SCHEDULE_ANYWAY, snapshot) {
            Ok(c) => c,
            Err(e) => return Status::error(format!("calculating preScoreState: {e}")),
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        // Only the system defaults let nodes lacking some key be scored on the others.
        let require_all = own_constraints(pod).is_some() || !self.system_defaulted;
        let inclusion = NodeInclusion::new(pod);
        let totals = self.count_domains(pod, &constraints, &inclusion, require_all, true, snapshot);
        let mut ignored = HashSet::new();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for node in nodes {
            let labels = node.labels();
            if require_all && !has_all_keys(labels, &constraints) {
                ignored.insert(node.name().to_string());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.is_hostname() {
                    continue;
                }
                // Only domains of feasible nodes are scored.
                let v = labels.get(&c.topology_key).map_or("", String::as_str);
                if !counts[i].contains_key(v) {
                    counts[i].insert(v.to_string(), totals[i].get(v));
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                let size = if c.is_hostname() {
                    nodes.len() - ignored.len()
                } else {
                    domains.len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        state.write(
            PRE_SCORE_KEY,
            PreScoreState(Arc::new(ScoreData {
                constraints,
                ignored,
                counts,
                weights,
            })),
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    /// The weighted number of matching pods in the node's domains (higher is worse; reversed
    /// by NormalizeScore).
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (0, state_missing(PRE_SCORE_KEY));
        };
        if !s.ignored.is_empty() && s.ignored.contains(node.name()) {
            return (0, Status::success());
        }
        let labels = node.labels();
        let ns = pod_namespace(pod);
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.is_hostname() {
                count_matching(&node.pods, &c.selector, ns)
            } else {
                s.counts[i].get(v).copied().unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        (score.round() as i64, Status::success())
    }

    fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for PodTopologySpread {
    /// Reverses and scales: the least crowded node gets `MAX_NODE_SCORE`; ignored nodes 0.
    fn normalize_score(&self, state: &CycleState, _pod: &Pod, scores: &mut [NodeScore]) -> Status {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return state_missing(PRE_SCORE_KEY);
        };
        let ignored = |name: &str| !s.ignored.is_empty() && s.ignored.contains(name);
        let mut min = i64::MAX;
        let mut max = 0;
        for ns in scores.iter().filter(|ns| !ignored(&ns.name)) {
            min = min.min(ns.score);
            max = max.max(ns.score);
        }
        for ns in scores.iter_mut() {
            ns.score = if ignored(&ns.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - ns.score) / max
            };
        }
        Status::success()
    }
}

// ---------------------------------------------------------------------------------------------
// Per-node memo, shared with InterPodAffinity.

/// Per-node results kept across scheduling cycles, so a cycle does not walk every node's pods
/// and labels again.
///
/// Why this is sound: the scheduler cache never mutates a `NodeInfo` another `Arc` holder can
/// see (it copies on write), and the memo holds a `Weak` to the `Arc` each result was computed
/// from, which keeps that allocation (not the node's data) reserved, so its address cannot be
/// reused by another `NodeInfo` while the memo lives. A snapshot node
/// pointer-equal to the memoized one is therefore the very same, unchanged node, and only
/// nodes that changed since (or moved in the node list) are recomputed; the rest is read from
/// one contiguous array. Results are keyed by a fingerprint of everything besides the node that
/// they depend on (the caller's job); a few fingerprints are kept, least recently used evicted.
pub(crate) mod memo {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, PoisonError, Weak};

    use crate::framework::NodeInfo;

    /// Fingerprints kept per memo.
    const MAX_ENTRIES: usize = 8;

    /// Topology values and dense ids for them.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Interner {
        ids: HashMap<String, u32>,
        values: Vec<String>,
    }

    impl Interner {
        pub(crate) fn get(&self, value: &str) -> Option<u32> {
            self.ids.get(value).copied()
        }

        pub(crate) fn len(&self) -> usize {
            self.values.len()
        }

        #[cfg(test)]
        pub(crate) fn value(&self, id: usize) -> &str {
            self.values.get(id).map_or("", String::as_str)
        }

        fn insert(&mut self, value: &str) -> u32 {
            let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
            self.values.push(value.to_string());
            self.ids.insert(value.to_string(), id);
            id
        }
    }

    /// The id of `value` in the shared interner, adding it (copying the interner first only if
    /// some cycle state still holds it).
    pub(crate) fn intern(interner: &mut Arc<Interner>, value: &str) -> u32 {
        match interner.get(value) {
            Some(id) => id,
            None => Arc::make_mut(interner).insert(value),
        }
    }

    /// What a memo entry keeps besides the per-node results; its size bounds the entry (values
    /// of nodes long gone are never forgotten otherwise).
    pub(crate) trait Aux: Default {
        fn size(&self) -> usize;
    }

    impl Aux for () {
        fn size(&self) -> usize {
            0
        }
    }

    impl Aux for Vec<Arc<Interner>> {
        fn size(&self) -> usize {
            self.iter().map(|i| i.len()).sum()
        }
    }

    struct Entry<A, T> {
        fingerprint: String,
        nodes: Vec<Weak<NodeInfo>>,
        results: Vec<T>,
        aux: A,
        used: u64,
    }

    pub(crate) struct NodeMemo<A, T> {
        entries: Mutex<Vec<Entry<A, T>>>,
    }

    impl<A: Aux, T> Default for NodeMemo<A, T> {
        fn default() -> Self {
            NodeMemo {
                entries: Mutex::new(Vec::new()),
            }
        }
    }

    impl<A: Aux, T> NodeMemo<A, T> {
        /// Brings the results for `fingerprint` up to date with `nodes` (calling `compute` for
        /// changed nodes only) and hands them, in `nodes` order, to `read`.
        pub(crate) fn with<R>(
            &self,
            fingerprint: &str,
            nodes: &[Arc<NodeInfo>],
            mut compute: impl FnMut(&NodeInfo, &mut A) -> T,
            read: impl FnOnce(&[T], &A) -> R,
        ) -> R {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let clock = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
            let at = match entries.iter().position(|e| e.fingerprint == fingerprint) {
                Some(at) => at,
                None => {
                    if entries.len() >= MAX_ENTRIES
                        && let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].used)
                    {
                        entries.swap_remove(oldest);
                    }
                    entries.push(Entry {
                        fingerprint: fingerprint.to_string(),
                        nodes: Vec::new(),
                        results: Vec::new(),
                        aux: A::default(),
                        used: 0,
                    });
                    entries.len() - 1
                }
            };
            let e = &mut entries[at];
            e.used = clock;
            if e.aux.size() > 4 * nodes.len() + 1024 {
                e.nodes.clear();
                e.results.clear();
                e.aux = A::default();
            }
            e.nodes.truncate(nodes.len());
            e.results.truncate(nodes.len());
            for (i, node) in nodes.iter().enumerate() {
                match e.nodes.get(i) {
                    Some(old) if std::ptr::eq(old.as_ptr(), Arc::as_ptr(node)) => {}
                    Some(_) => {
                        e.results[i] = compute(node, &mut e.aux);
                        e.nodes[i] = Arc::downgrade(node);
                    }
                    None => {
                        e.results.push(compute(node, &mut e.aux));
                        e.nodes.push(Arc::downgrade(node));
                    }
                }
            }
            read(&e.results, &e.aux)
        }
    }

    /// Numbers per topology value of one key (one constraint or term): the counts the filters
    /// look up by a node's label value. A value is a *domain* once something added to it, even
    /// zero (topology spreading counts empty domains).
    #[derive(Clone, Debug)]
    pub(crate) struct Domains {
        shared: Arc<Interner>,
        /// Values not in `shared` (met by preemption's what-ifs); ids follow `shared`'s.
        local: Interner,
        counts: Vec<i64>,
        present: Vec<bool>,
        domains: usize,
        nonzero: usize,
    }

    impl Domains {
        pub(crate) fn new(shared: Arc<Interner>) -> Domains {
            let n = shared.len();
            Domains {
                shared,
                local: Interner::default(),
                counts: vec![0; n],
                present: vec![false; n],
                domains: 0,
                nonzero: 0,
            }
        }

        fn id(&self, value: &str) -> Option<usize> {
            match self.shared.get(value) {
                Some(id) => Some(id as usize),
                None => self
                    .local
                    .get(value)
                    .map(|id| self.shared.len() + id as usize),
            }
        }

        /// Adds `n` to the value with id `id` (an id of the shared interner).
        pub(crate) fn add_at(&mut self, id: usize, n: i64) -> i64 {
            if id >= self.counts.len() {
                // Only ids of the interner this was made from reach here; stay safe anyway.
                self.counts.resize(id + 1, 0);
                self.present.resize(id + 1, false);
            }
            if !self.present[id] {
                self.present[id] = true;
                self.domains += 1;
            }
            let before = self.counts[id];
            let after = before + n;
            self.counts[id] = after;
            if before == 0 && after != 0 {
                self.nonzero += 1;
            } else if before != 0 && after == 0 {
                self.nonzero -= 1;
            }
            after
        }

        /// Adds `n` to `value`'s count, returning its id and the new count.
        pub(crate) fn add(&mut self, value: &str, n: i64) -> (usize, i64) {
            let id = match self.id(value) {
                Some(id) => id,
                None => self.shared.len() + self.local.insert(value) as usize,
            };
            (id, self.add_at(id, n))
        }

        pub(crate) fn get(&self, value: &str) -> i64 {
            self.id(value)
                .and_then(|id| self.counts.get(id))
                .copied()
                .unwrap_or(0)
        }

        /// How many domains there are.
        pub(crate) fn domains(&self) -> usize {
            self.domains
        }

        /// No value counts anything.
        pub(crate) fn is_empty(&self) -> bool {
            self.nonzero == 0
        }

        /// Every domain's id and count.
        pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
            self.present
                .iter()
                .zip(&self.counts)
                .enumerate()
                .filter(|(_, (p, _))| **p)
                .map(|(id, (_, n))| (id, *n))
        }

        #[cfg(test)]
        pub(crate) fn value(&self, id: usize) -> &str {
            match id.checked_sub(self.shared.len()) {
                None => self.shared.value(id),
                Some(local) => self.local.value(local),
            }
        }
    }

    /// Sums per-node `(value id, count)` slots into one [`Domains`] per slot; slot `i` of a
    /// node's result is `None` when the node is no domain for it (an empty result: none).
    pub(crate) fn sum_slots(
        results: &[Vec<Option<(u32, i64)>>],
        interners: &[Arc<Interner>],
        slots: usize,
    ) -> Vec<Domains> {
        let mut out: Vec<Domains> = (0..slots)
            .map(|i| Domains::new(interners.get(i).cloned().unwrap_or_default()))
            .collect();
        for node in results {
            for (domains, slot) in out.iter_mut().zip(node) {
                if let Some((id, n)) = slot {
                    domains.add_at(*id as usize, *n);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{Value, json};

    const ZONE: &str = LABEL_ZONE;
    const HOST: &str = LABEL_HOSTNAME;

    fn node(name: &str, zone: Option<&str>, taints: Value) -> Node {
        let mut labels = json!({HOST: name});
        if let Some(z) = zone {
            labels[ZONE] = json!(z);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .unwrap()
    }

    /// n1, n2 in z1; n3, n4 in z2; n5 without a zone.
    fn nodes() -> Vec<Node> {
        vec![
            node("n1", Some("z1"), json!(null)),
            node("n2", Some("z1"), json!(null)),
            node("n3", Some("z2"), json!(null)),
            node("n4", Some("z2"), json!(null)),
            node("n5", None, json!(null)),
        ]
    }

    fn pod_with(name: &str, labels: Value, node: Option<&str>, spec: Value) -> Pod {
        let mut spec_obj = json!({"containers": [{"name": "c"}]});
        if let Some(n) = node {
            spec_obj["nodeName"] = json!(n);
        }
        for (k, v) in spec.as_object().into_iter().flatten() {
            spec_obj[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "uid": name, "labels": labels},
            "spec": spec_obj
        }))
        .unwrap()
    }

    /// `n` pods labelled app=web on `node`.
    fn webs(node: &str, n: usize) -> Vec<Pod> {
        (0..n)
            .map(|i| {
                pod_with(
                    &format!("{node}-{i}"),
                    json!({"app": "web"}),
                    Some(node),
                    json!({}),
                )
            })
            .collect()
    }

    fn constraint(key: &str, max_skew: i32, action: &str, extra: Value) -> Value {
        let mut c = json!({
            "maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": action,
            "labelSelector": {"matchLabels": {"app": "web"}}
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    }

    fn incoming(labels: Value, constraints: Vec<Value>, spec: Value) -> Pod {
        let mut spec = spec;
        spec["topologySpreadConstraints"] = json!(constraints);
        pod_with("incoming", labels, None, spec)
    }

    fn plugin(args: Option<Value>) -> PodTopologySpread {
        PodTopologySpread::from_args(PodTopologySpreadArgs::from_json(args.as_ref()).unwrap())
    }

    type Verdict = Option<(Code, &'static str)>;
    const OK: Verdict = None;
    const SKEW: Verdict = Some((Code::Unschedulable, ERR_CONSTRAINTS_NOT_MATCH));
    const LABEL: Verdict = Some((Code::UnschedulableAndUnresolvable, ERR_NODE_LABEL_NOT_MATCH));

    fn verdicts(statuses: &[Status]) -> Vec<Option<(Code, String)>> {
        statuses
            .iter()
            .map(|s| (!s.is_success()).then(|| (s.code, s.message())))
            .collect()
    }

    fn want(w: &[Verdict]) -> Vec<Option<(Code, String)>> {
        w.iter()
            .map(|o| o.map(|(c, m)| (c, m.to_string())))
            .collect()
    }

    fn filter_all(
        pl: &PodTopologySpread,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> (CycleState, Vec<Status>) {
        let mut state = CycleState::new();
        let (result, status) = PreFilterPlugin::pre_filter(pl, &mut state, pod, snapshot);
        assert_eq!(result, PreFilterResult::all());
        if status.is_skip() {
            return (state, vec![Status::success(); snapshot.len()]);
        }
        assert!(status.is_success(), "{status}");
        let statuses = snapshot
            .nodes
            .iter()
            .map(|n| FilterPlugin::filter(pl, &state, pod, n))
            .collect();
        (state, statuses)
    }

    fn rs_owned(labels: Value) -> Pod {
        let mut p = pod_with("incoming", labels, None, json!({}));
        p.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs",
                "controller": true
            }))
            .unwrap(),
        ]);
        p
    }

    fn workload(kind: &'static str, selector: &str) -> WorkloadSelector {
        WorkloadSelector {
            kind,
            namespace: "d".to_string(),
            selector: LabelSelector::parse(selector).unwrap(),
        }
    }

    #[test]
    fn filter() {
        let web = || json!({"app": "web"});
        let hard = |key, skew, extra| constraint(key, skew, DO_NOT_SCHEDULE, extra);
        let tainted = json!([{"key": "k", "value": "v", "effect": "NoSchedule"}]);
        let tainted_nodes = || {
            vec![
                node("n1", Some("z1"), json!(null)),
                node("n2", Some("z1"), json!(null)),
                node("n3", Some("z2"), tainted.clone()),
                node("n4", Some("z2"), tainted.clone()),
                node("n5", None, json!(null)),
            ]
        };
        struct Case {
            name: &'static str,
            args: Option<Value>,
            pod: Pod,
            nodes: Vec<Node>,
            existing: Vec<Pod>,
            workloads: Vec<WorkloadSelector>,
            want: [Verdict; 5],
        }
        let case = |name, pod, existing, want| Case {
            name,
            args: None,
            pod,
            nodes: nodes(),
            existing,
            workloads: vec![],
            want,
        };
        let cases = vec![
            case(
                "no constraints: skipped",
                pod_with("p", web(), None, json!({})),
                webs("n1", 3),
                [OK, OK, OK, OK, OK],
            ),
            case(
                "soft constraints do not filter",
                incoming(
                    web(),
                    vec![constraint(ZONE, 1, SCHEDULE_ANYWAY, json!({}))],
                    json!({}),
                ),
                webs("n1", 3),
                [OK, OK, OK, OK, OK],
            ),
            case(
                "zone skew: the crowded zone fails, a node without the key is unresolvable",
                incoming(web(), vec![hard(ZONE, 1, json!({}))], json!({})),
                webs("n1", 2),
                [SKEW, SKEW, OK, OK, LABEL],
            ),
            case(
                "a pod not matching its own selector does not count itself",
                incoming(
                    json!({"app": "db"}),
                    vec![hard(ZONE, 2, json!({}))],
                    json!({}),
                ),
                webs("n1", 2),
                [OK, OK, OK, OK, LABEL],
            ),
            case(
                "the global minimum is the least crowded domain",
                incoming(web(), vec![hard(ZONE, 1, json!({}))], json!({})),
                [webs("n1", 2), webs("n3", 1)].concat(),
                [SKEW, SKEW, OK, OK, LABEL],
            ),
            case(
                "fewer domains than minDomains: the minimum counts as 0",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({"minDomains": 3}))],
                    json!({}),
                ),
                [webs("n1", 1), webs("n3", 1)].concat(),
                [SKEW, SKEW, SKEW, SKEW, LABEL],
            ),
            case(
                "enough domains for minDomains",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({"minDomains": 2}))],
                    json!({}),
                ),
                [webs("n1", 1), webs("n3", 1)].concat(),
                [OK, OK, OK, OK, LABEL],
            ),
            case(
                "hostname spreading",
                incoming(web(), vec![hard(HOST, 1, json!({}))], json!({})),
                webs("n1", 1),
                [SKEW, OK, OK, OK, OK],
            ),
            case(
                "zone and hostname together",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({})), hard(HOST, 1, json!({}))],
                    json!({}),
                ),
                [webs("n1", 1), webs("n3", 1)].concat(),
                [SKEW, OK, SKEW, OK, LABEL],
            ),
            case(
                "nodeAffinityPolicy Honor: domains outside the pod's node selector do not count",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({}))],
                    json!({"nodeSelector": {ZONE: "z1"}}),
                ),
                [webs("n1", 1), webs("n3", 3)].concat(),
                [OK, OK, OK, OK, LABEL],
            ),
            case(
                "nodeAffinityPolicy Honor with required node affinity",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({}))],
                    json!({"affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": ZONE, "operator": "In", "values": ["z1"]}]}]}}}}),
                ),
                [webs("n1", 1), webs("n3", 3)].concat(),
                [OK, OK, OK, OK, LABEL],
            ),
            case(
                "nodeAffinityPolicy Ignore counts every domain",
                incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({"nodeAffinityPolicy": "Ignore"}))],
                    json!({"nodeSelector": {ZONE: "z1"}}),
                ),
                [webs("n1", 1), webs("n3", 3)].concat(),
                [OK, OK, SKEW, SKEW, LABEL],
            ),
            Case {
                name: "nodeTaintsPolicy Ignore (default) counts tainted domains",
                args: None,
                pod: incoming(web(), vec![hard(ZONE, 1, json!({}))], json!({})),
                nodes: tainted_nodes(),
                existing: webs("n1", 1),
                workloads: vec![],
                want: [SKEW, SKEW, OK, OK, LABEL],
            },
            Case {
                name: "nodeTaintsPolicy Honor leaves out domains with untolerated taints",
                args: None,
                pod: incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({"nodeTaintsPolicy": "Honor"}))],
                    json!({}),
                ),
                nodes: tainted_nodes(),
                existing: webs("n1", 1),
                workloads: vec![],
                want: [OK, OK, OK, OK, LABEL],
            },
            Case {
                name: "nodeTaintsPolicy Honor with a tolerating pod",
                args: None,
                pod: incoming(
                    web(),
                    vec![hard(ZONE, 1, json!({"nodeTaintsPolicy": "Honor"}))],
                    json!({"tolerations": [{"key": "k", "operator": "Exists"}]}),
                ),
                nodes: tainted_nodes(),
                existing: webs("n1", 1),
                workloads: vec![],
                want: [SKEW, SKEW, OK, OK, LABEL],
            },
            case(
                "matchLabelKeys narrow the selector to the pod's values",
                incoming(
                    json!({"app": "web", "version": "v2"}),
                    vec![hard(ZONE, 1, json!({"matchLabelKeys": ["version"]}))],
                    json!({}),
                ),
                vec![
                    pod_with(
                        "a",
                        json!({"app": "web", "version": "v1"}),
                        Some("n1"),
                        json!({}),
                    ),
                    pod_with(
                        "b",
                        json!({"app": "web", "version": "v1"}),
                        Some("n1"),
                        json!({}),
                    ),
                ],
                [OK, OK, OK, OK, LABEL],
            ),
            case(
                "terminating pods and pods of other namespaces do not count",
                incoming(web(), vec![hard(ZONE, 1, json!({}))], json!({})),
                {
                    let mut gone = pod_with("gone", web(), Some("n1"), json!({}));
                    gone.metadata.deletion_timestamp =
                        serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap();
                    let mut other = pod_with("other", web(), Some("n1"), json!({}));
                    other.metadata.namespace = Some("elsewhere".into());
                    vec![gone, other]
                },
                [OK, OK, OK, OK, LABEL],
            ),
            Case {
                name: "List defaults apply to a pod its ReplicaSet selects",
                args: Some(json!({"defaultingType": "List", "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]})),
                pod: rs_owned(web()),
                nodes: nodes(),
                existing: webs("n1", 2),
                workloads: vec![workload("ReplicaSet", "app=web")],
                want: [SKEW, SKEW, OK, OK, LABEL],
            },
            Case {
                name: "List defaults do not apply to a pod nothing selects",
                args: Some(json!({"defaultingType": "List", "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]})),
                pod: pod_with("p", web(), None, json!({})),
                nodes: nodes(),
                existing: webs("n1", 2),
                workloads: vec![workload("ReplicaSet", "app=web")],
                want: [OK, OK, OK, OK, OK],
            },
        ];
        for c in cases {
            let pl = plugin(c.args);
            let mut snapshot = Snapshot::from_objects(c.nodes, c.existing);
            snapshot.workload_selectors = c.workloads;
            let (_, got) = filter_all(&pl, &c.pod, &snapshot);
            assert_eq!(verdicts(&got), want(&c.want), "{}", c.name);
        }
    }

    #[test]
    fn pre_filter_extensions_track_preemption() {
        let pl = plugin(None);
        let pod = incoming(
            json!({"app": "web"}),
            vec![constraint(ZONE, 2, DO_NOT_SCHEDULE, json!({}))],
            json!({}),
        );
        let snapshot = Snapshot::from_objects(nodes(), [webs("n1", 1), webs("n2", 1)].concat());
        let (state, before) = filter_all(&pl, &pod, &snapshot);
        assert_eq!(verdicts(&before), want(&[SKEW, SKEW, OK, OK, LABEL]));
        let run = |state: &CycleState| -> Vec<Status> {
            snapshot
                .nodes
                .iter()
                .map(|n| FilterPlugin::filter(&pl, state, &pod, n))
                .collect()
        };

        // Removing a web pod from z1 brings its skew down to 1 + 1 - 0.
        let victim = Arc::new(PodInfo::new(Arc::new(webs("n1", 1).remove(0))));
        let n1 = snapshot.get("n1").unwrap();
        let mut removed = state.clone();
        assert!(pl.remove_pod(&mut removed, &pod, &victim, n1).is_success());
        assert_eq!(verdicts(&run(&removed)), want(&[OK, OK, OK, OK, LABEL]));

        // Adding a web pod in z2 raises the global minimum to 1.
        let newcomer = Arc::new(PodInfo::new(Arc::new(webs("n3", 1).remove(0))));
        let n3 = snapshot.get("n3").unwrap();
        let mut added = state.clone();
        assert!(pl.add_pod(&mut added, &pod, &newcomer, n3).is_success());
        assert_eq!(verdicts(&run(&added)), want(&[OK, OK, OK, OK, LABEL]));
        let s = added.read::<PreFilterState>(PRE_FILTER_KEY).unwrap();
        let (id, n) = s.critical_paths[0].0[0];
        assert_eq!((s.match_num[0].value(id), n), ("z2", 1));

        // Pods of other namespaces and on nodes lacking the key change nothing.
        let mut other = webs("n3", 1).remove(0);
        other.metadata.namespace = Some("elsewhere".into());
        let mut unchanged = state.clone();
        let other = Arc::new(PodInfo::new(Arc::new(other)));
        assert!(pl.add_pod(&mut unchanged, &pod, &other, n3).is_success());
        assert!(
            pl.add_pod(&mut unchanged, &pod, &newcomer, snapshot.get("n5").unwrap())
                .is_success()
        );
        assert_eq!(run(&unchanged), before);
        // The original state is untouched by the copies.
        assert_eq!(run(&state), before);
    }

    #[test]
    fn critical_paths_keep_the_minimum() {
        type Case = (&'static [(usize, i64)], (usize, i64));
        let cases: Vec<Case> = vec![
            (&[(0, 3), (1, 1), (2, 2)], (1, 1)),
            (&[(0, 3), (1, 1), (1, 4)], (0, 3)),
            (&[(0, 0), (0, 5), (1, 2)], (1, 2)),
        ];
        for (updates, want) in cases {
            let mut p = CriticalPaths::new();
            for (id, n) in updates {
                p.update(*id, *n);
            }
            assert_eq!(p.0[0], want, "{updates:?}");
            assert!(p.0[0].1 <= p.0[1].1);
        }
    }

    /// PreScore, Score and NormalizeScore over every node; `None` when PreScore skips.
    fn score_all(pl: &PodTopologySpread, pod: &Pod, snapshot: &Snapshot) -> Option<Vec<i64>> {
        let mut state = CycleState::new();
        let status = PreScorePlugin::pre_score(pl, &mut state, pod, &snapshot.nodes, snapshot);
        if status.is_skip() {
            return None;
        }
        assert!(status.is_success(), "{status}");
        let mut scores: Vec<NodeScore> = snapshot
            .nodes
            .iter()
            .map(|n| {
                let (score, status) = ScorePlugin::score(pl, &state, pod, n);
                assert!(status.is_success(), "{status}");
                NodeScore {
                    name: n.name().to_string(),
                    score,
                }
            })
            .collect();
        assert!(pl.normalize_score(&state, pod, &mut scores).is_success());
        Some(scores.into_iter().map(|s| s.score).collect())
    }

    #[test]
    fn score() {
        let web = || json!({"app": "web"});
        let soft = |key, skew| constraint(key, skew, SCHEDULE_ANYWAY, json!({}));
        struct Case {
            name: &'static str,
            args: Option<Value>,
            pod: Pod,
            existing: Vec<Pod>,
            workloads: Vec<WorkloadSelector>,
            want: Option<[i64; 5]>,
        }
        let case = |name, pod, existing, want| Case {
            name,
            args: None,
            pod,
            existing,
            workloads: vec![],
            want,
        };
        let cases = vec![
            case(
                "no soft constraints: skipped",
                incoming(
                    web(),
                    vec![constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))],
                    json!({}),
                ),
                webs("n1", 1),
                None,
            ),
            // Weight ln(2 zones + 2); n1 2 pods -> 2.77 -> 3, n3 1 pod -> 1; n5 lacks the key.
            case(
                "zone: fewer matching pods score higher",
                incoming(web(), vec![soft(ZONE, 1)], json!({})),
                [webs("n1", 2), webs("n3", 1)].concat(),
                Some([33, 33, 100, 100, 0]),
            ),
            // maxSkew 3 adds 2 to every node: 4.77 -> 5 and 3.39 -> 3.
            case(
                "a larger maxSkew waters down differences",
                incoming(web(), vec![soft(ZONE, 3)], json!({})),
                [webs("n1", 2), webs("n3", 1)].concat(),
                Some([60, 60, 100, 100, 0]),
            ),
            // Weight ln(5 nodes + 2): n1 3.89 -> 4, n2 1.95 -> 2.
            case(
                "hostname counts per node",
                incoming(web(), vec![soft(HOST, 1)], json!({})),
                [webs("n1", 2), webs("n2", 1)].concat(),
                Some([0, 50, 100, 100, 100]),
            ),
            case(
                "no matching pods: every eligible node scores the maximum",
                incoming(web(), vec![soft(ZONE, 1)], json!({})),
                vec![],
                Some([100, 100, 100, 100, 0]),
            ),
            // Hostname weight ln(7), zone weight ln(5) (z1, z2 and "" for n5):
            // n1 2*1.95+2 + 2*1.61+4 = 13.1 -> 13; n2 2 + 7.22 -> 9; n3 3.95 + 5.61 -> 10;
            // n4 2 + 5.61 -> 8; n5 hostname only: 2.
            Case {
                name: "system defaults for a ReplicaSet's pod; nodes without a zone still score",
                args: None,
                pod: rs_owned(web()),
                existing: [webs("n1", 2), webs("n3", 1)].concat(),
                workloads: vec![workload("ReplicaSet", "app=web")],
                want: Some([15, 46, 38, 53, 100]),
            },
            Case {
                name: "system defaults follow the Services selecting the pod",
                args: None,
                pod: pod_with("p", web(), None, json!({})),
                existing: [webs("n1", 2), webs("n3", 1)].concat(),
                workloads: vec![workload("Service", "app=web")],
                want: Some([15, 46, 38, 53, 100]),
            },
            Case {
                name: "no workload selects the pod: no default constraints",
                args: None,
                pod: rs_owned(web()),
                existing: webs("n1", 2),
                workloads: vec![
                    workload("ReplicaSet", "app=db"),
                    workload("StatefulSet", "app=web"),
                ],
                want: None,
            },
            Case {
                name: "List defaulting without constraints: nothing to score",
                args: Some(json!({"defaultingType": "List"})),
                pod: rs_owned(web()),
                existing: webs("n1", 2),
                workloads: vec![workload("ReplicaSet", "app=web")],
                want: None,
            },
            // Not system defaults, so n5 (no zone) is ignored; zone weight ln(4).
            Case {
                name: "List defaults require every key",
                args: Some(json!({"defaultingType": "List", "defaultConstraints": [
                    {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway"}]})),
                pod: rs_owned(web()),
                existing: [webs("n1", 2), webs("n3", 1)].concat(),
                workloads: vec![workload("ReplicaSet", "app=web")],
                want: Some([33, 33, 100, 100, 0]),
            },
        ];
        for c in cases {
            let pl = plugin(c.args);
            let mut snapshot = Snapshot::from_objects(nodes(), c.existing);
            snapshot.workload_selectors = c.workloads;
            assert_eq!(
                score_all(&pl, &c.pod, &snapshot),
                c.want.map(Vec::from),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn default_selector_merges_services_and_the_controller() {
        let pod = rs_owned(json!({"app": "web", "tier": "fe"}));
        let workloads = vec![
            workload("Service", "app=web"),
            workload("Service", "tier=fe"),
            workload("Service", "app=db"),
            workload("ReplicaSet", "app=web,tier=fe"),
            workload("StatefulSet", "app=web"),
            WorkloadSelector {
                kind: "Service",
                namespace: "other".into(),
                selector: LabelSelector::parse("zone=x").unwrap(),
            },
        ];
        let sel = default_selector(&pod, &workloads);
        assert_eq!(sel.to_string(), "app=web,tier=fe");
        let lone = pod_with("p", json!({"app": "web"}), None, json!({}));
        assert!(default_selector(&lone, &workloads[3..]).is_everything());
    }

    #[test]
    fn memo_recomputes_only_changed_nodes() {
        let snapshot = Snapshot::from_objects(nodes(), webs("n1", 1));
        let memo: memo::NodeMemo<(), usize> = memo::NodeMemo::default();
        let calls = std::cell::Cell::new(0);
        let count = |n: &NodeInfo, _: &mut ()| {
            calls.set(calls.get() + 1);
            n.pods.len()
        };
        let sum = |r: &[usize], _: &()| r.iter().sum::<usize>();
        assert_eq!(memo.with("k", &snapshot.nodes, count, sum), 1);
        assert_eq!(calls.get(), 5);
        assert_eq!(memo.with("k", &snapshot.nodes, count, sum), 1);
        assert_eq!(calls.get(), 5, "nothing changed");
        // Another fingerprint computes its own results.
        memo.with("other", &snapshot.nodes, count, sum);
        assert_eq!(calls.get(), 10);
        // A changed node (a new Arc) is recomputed, alone.
        let mut changed = snapshot.clone();
        let mut n2 = (*changed.nodes[1]).clone();
        for p in webs("n2", 2) {
            n2.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
        }
        changed.nodes[1] = Arc::new(n2);
        assert_eq!(memo.with("k", &changed.nodes, count, sum), 3);
        assert_eq!(calls.get(), 11);
        // Fewer nodes: the results shrink with them.
        assert_eq!(memo.with("k", &changed.nodes[2..], count, sum), 0);
        assert_eq!(calls.get(), 14, "positions moved");
    }

    #[test]
    fn pre_filter_follows_snapshot_changes_across_cycles() {
        let pl = plugin(None);
        let pod = incoming(
            json!({"app": "web"}),
            vec![constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))],
            json!({}),
        );
        let before = Snapshot::from_objects(nodes(), webs("n1", 1));
        let (_, got) = filter_all(&pl, &pod, &before);
        assert_eq!(verdicts(&got), want(&[SKEW, SKEW, OK, OK, LABEL]));
        // The next cycle's snapshot shares every node but n3, which gained a web pod.
        let mut after = before.clone();
        let mut n3 = (*after.nodes[2]).clone();
        n3.add_pod(Arc::new(PodInfo::new(Arc::new(webs("n3", 1).remove(0)))));
        after.nodes[2] = Arc::new(n3);
        let (_, got) = filter_all(&pl, &pod, &after);
        assert_eq!(verdicts(&got), want(&[OK, OK, OK, OK, LABEL]));
        let (_, got) = filter_all(&pl, &pod, &before);
        assert_eq!(verdicts(&got), want(&[SKEW, SKEW, OK, OK, LABEL]));
    }

    #[test]
    fn args() {
        let c = |key: &str, skew: i32, action: &str| json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": action});
        let cases: Vec<(Option<Value>, Result<DefaultingType, &str>)> = vec![
            (None, Ok(DefaultingType::System)),
            (Some(json!({})), Ok(DefaultingType::System)),
            (
                Some(
                    json!({"kind": "PodTopologySpreadArgs", "defaultingType": "List",
                    "defaultConstraints": [c("zone", 1, "DoNotSchedule")]}),
                ),
                Ok(DefaultingType::List),
            ),
            (
                Some(json!({"defaultConstraints": [c("zone", 1, "DoNotSchedule")]})),
                Err(
                    r#"defaultingType: Invalid value: "System": when .defaultConstraints are not empty"#,
                ),
            ),
            (
                Some(json!({"defaultingType": "Other"})),
                Err(
                    r#"defaultingType: Unsupported value: "Other": supported values: "System", "List""#,
                ),
            ),
            (
                Some(
                    json!({"defaultingType": "List", "defaultConstraints": [c("zone", 0, "DoNotSchedule")]}),
                ),
                Err("defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)"),
            ),
            (
                Some(
                    json!({"defaultingType": "List", "defaultConstraints": [c("", 1, "DoNotSchedule")]}),
                ),
                Err("defaultConstraints[0].topologyKey: Required value: can not be empty"),
            ),
            (
                Some(
                    json!({"defaultingType": "List", "defaultConstraints": [c("zone", 1, "Maybe")]}),
                ),
                Err(
                    r#"defaultConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway""#,
                ),
            ),
            (
                Some(json!({"defaultingType": "List", "defaultConstraints": [{
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"a": "b"}}}]})),
                Err(
                    "defaultConstraints[0].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod",
                ),
            ),
            (
                Some(json!({"defaultingType": "List", "defaultConstraints": [
                    c("node", 1, "DoNotSchedule"), c("node", 2, "DoNotSchedule")]})),
                Err(r#"defaultConstraints[1]: Duplicate value: "{node, DoNotSchedule}""#),
            ),
            (
                Some(json!({"defaultingType": "List", "defaultConstraints": [c("zone", -1, "")]})),
                Err(
                    "[defaultConstraints[0].maxSkew: Invalid value: -1: not in valid range (0, inf), defaultConstraints[0].whenUnsatisfiable: Required value: can not be empty]",
                ),
            ),
        ];
        for (input, expected) in cases {
            let got = PodTopologySpreadArgs::from_json(input.as_ref()).map(|a| a.defaulting_type);
            assert_eq!(got, expected.map_err(str::to_string), "{input:?}");
        }
        let err = new(Some(&json!({"defaultConstraint": []}))).err().unwrap();
        assert!(err.contains("unknown field"), "{err}");
        let pl = new(None).unwrap();
        assert_eq!(pl.name(), NAME);
        assert!(pl.events().contains(&ClusterEvent::NodeDelete));
    }
}

/// Timing on a bench-sized cluster: `cargo test --release -p scheduler -- --ignored --nocapture
/// cluster_scale`.
#[cfg(test)]
mod scale {
    use super::*;
    use std::time::Instant;

    use serde_json::json;

    use crate::plugins::inter_pod_affinity;

    fn cluster(pods_per_node: usize, anti: bool) -> Snapshot {
        let nodes = (0..5000)
            .map(|i| {
                let node: Node = serde_json::from_value(json!({"metadata": {
                    "name": format!("node-{i}"),
                    "labels": {LABEL_HOSTNAME: format!("node-{i}"), LABEL_ZONE: format!("zone-{}", i % 10),
                        "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m5"}
                }}))
                .unwrap();
                let mut info = NodeInfo::new(Arc::new(node));
                for j in 0..pods_per_node {
                    let mut spec = json!({"containers": [{"name": "c"}]});
                    if anti {
                        spec["affinity"] = json!({"podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [{
                                "labelSelector": {"matchLabels": {"app": "x"}},
                                "topologyKey": LABEL_HOSTNAME}]}});
                    }
                    let pod: Pod = serde_json::from_value(json!({
                        "metadata": {"name": format!("p-{i}-{j}"), "namespace": "d",
                            "uid": format!("p-{i}-{j}"), "labels": {"app": "x"}},
                        "spec": spec
                    }))
                    .unwrap();
                    info.add_pod(Arc::new(PodInfo::new(Arc::new(pod))));
                }
                Arc::new(info)
            })
            .collect();
        Snapshot::new(nodes, Default::default(), Vec::new())
    }

    fn run(name: &str, pl: &dyn Plugin, pod: &Pod, snapshot: &Snapshot) {
        let rounds = 50;
        // The first cycle fills the plugins' per-node memos; later ones reuse them.
        let start = Instant::now();
        let mut state = CycleState::new();
        let _ = pl
            .pre_filter()
            .unwrap()
            .pre_filter(&mut state, pod, snapshot);
        let _ = pl
            .pre_score()
            .unwrap()
            .pre_score(&mut state, pod, &snapshot.nodes, snapshot);
        println!("{name}: first cycle {:?}", start.elapsed());
        let start = Instant::now();
        let mut feasible = 0;
        for _ in 0..rounds {
            let mut state = CycleState::new();
            let mut nodes = Vec::new();
            let (_, st) = pl
                .pre_filter()
                .unwrap()
                .pre_filter(&mut state, pod, snapshot);
            for n in &snapshot.nodes {
                if st.is_skip() || pl.filter().unwrap().filter(&state, pod, n).is_success() {
                    nodes.push(n.clone());
                }
            }
            feasible = nodes.len();
            let st = pl
                .pre_score()
                .unwrap()
                .pre_score(&mut state, pod, &nodes, snapshot);
            if !st.is_skip() {
                let score = pl.score().unwrap();
                let mut scores: Vec<NodeScore> = nodes
                    .iter()
                    .map(|n| NodeScore {
                        name: n.name().to_string(),
                        score: score.score(&state, pod, n).0,
                    })
                    .collect();
                score
                    .normalize()
                    .unwrap()
                    .normalize_score(&state, pod, &mut scores);
            }
        }
        println!(
            "{name}: {:?} per cycle over 5000 nodes ({feasible} feasible)",
            start.elapsed() / rounds
        );
    }

    #[test]
    #[ignore]
    fn cluster_scale() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "in", "namespace": "d", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "x"}},
                    "topologyKey": LABEL_HOSTNAME}]}}}
        }))
        .unwrap();
        let ipa = inter_pod_affinity::new(None).unwrap();
        run("anti-affinity, 1 pod/node", &*ipa, &pod, &cluster(1, true));
        let plain: Pod = serde_json::from_value(json!({
            "metadata": {"name": "in", "namespace": "d", "labels": {"app": "y"}},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        run(
            "plain pod, anti-affinity pods",
            &*ipa,
            &plain,
            &cluster(1, true),
        );

        let pts = new(None).unwrap();
        let spread: Pod = serde_json::from_value(json!({
            "metadata": {"name": "in", "namespace": "d", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "x"}}},
                {"maxSkew": 1, "topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": {"app": "x"}}}]}
        }))
        .unwrap();
        run(
            "topology spread zone+host, 2 pods/node",
            &*pts,
            &spread,
            &cluster(2, false),
        );
        let hard_host: Pod = serde_json::from_value(json!({
            "metadata": {"name": "in", "namespace": "d", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "x"}}}]}
        }))
        .unwrap();
        run(
            "topology spread hard hostname, 2 pods/node",
            &*pts,
            &hard_host,
            &cluster(2, false),
        );
    }
}
