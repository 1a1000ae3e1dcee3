//! NodeResourcesFit and NodeResourcesBalancedAllocation, with upstream's semantics
//! (`pkg/scheduler/framework/plugins/noderesources`).
//!
//! **NodeResourcesFit** filters out nodes whose allocatable minus what their pods request
//! cannot hold the pod's requests (containers summed, the largest init-container phase, plus
//! overhead), or that are at their pod limit; it reports every shortfall ("Insufficient cpu",
//! "Too many pods", ...). Extended resources listed in `ignoredResources`, or whose
//! `<group>/` prefix is in `ignoredResourceGroups`, are not checked. It also scores nodes by
//! `scoringStrategy`:
//! * `LeastAllocated` (default): `(allocatable − requested) × 100 / allocatable` per resource,
//!   weighted mean (integer division) — spreads pods out;
//! * `MostAllocated`: `requested × 100 / allocatable` (capped at 100) — packs pods;
//! * `RequestedToCapacityRatio`: a piecewise-linear function of the utilization percentage,
//!   given as `shape` points with scores 0..10, weighted mean rounded.
//!
//! Scoring counts cpu and memory with the non-zero defaults (100m, 200Mi per container that
//! sets none), so best-effort pods still spread; other resources as requested. An extended
//! resource the pod does not request, or the node does not have, is left out of the mean.
//!
//! **NodeResourcesBalancedAllocation** prefers nodes whose resource fractions (requested ÷
//! allocatable after placing the pod, each capped at 1) are close to each other:
//! `(1 − std-deviation) × 100`. Like upstream it uses the actual requests (no defaults) and
//! skips best-effort pods altogether (kubernetes/kubernetes#129138).

use std::collections::BTreeSet;
use std::sync::Arc;

use api::validation::{FieldError, qualified_name};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, Resource, ScorePlugin, Snapshot, Status, pod_requests,
};

/// NodeResourcesFit's name; [`new`] builds it.
pub const NAME: &str = "NodeResourcesFit";
/// NodeResourcesBalancedAllocation's name; [`new_balanced_allocation`] builds it.
pub const BALANCED_ALLOCATION_NAME: &str = "NodeResourcesBalancedAllocation";

const PRE_FILTER_KEY: &str = "PreFilterNodeResourcesFit";
const PRE_SCORE_KEY: &str = "PreScoreNodeResourcesFit";
const BALANCED_PRE_SCORE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

/// Shape scores are given in `0..=MAX_CUSTOM_PRIORITY_SCORE` and scaled to `MAX_NODE_SCORE`.
const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
const MAX_UTILIZATION: i64 = 100;

// ---------------------------------------------------------------------------------------------
// Args.

/// A resource and its weight in a score.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

fn default_resources() -> Vec<ResourceSpec> {
    ["cpu", "memory"]
        .into_iter()
        .map(|name| ResourceSpec {
            name: name.to_string(),
            weight: 1,
        })
        .collect()
}

/// One point of a RequestedToCapacityRatio shape: utilization percent → score (0..10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizationShapePoint {
    #[serde(default)]
    pub utilization: i32,
    #[serde(default)]
    pub score: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoringStrategyType {
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

/// How NodeResourcesFit scores, defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoringStrategy {
    pub strategy: ScoringStrategyType,
    pub resources: Vec<ResourceSpec>,
    /// Only for `RequestedToCapacityRatio`.
    pub shape: Vec<UtilizationShapePoint>,
}

/// `NodeResourcesFitArgs` of `kubescheduler.config.k8s.io/v1`, defaulted and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeResourcesFitArgs {
    pub ignored_resources: BTreeSet<String>,
    pub ignored_resource_groups: BTreeSet<String>,
    pub scoring_strategy: ScoringStrategy,
}

impl Default for NodeResourcesFitArgs {
    fn default() -> Self {
        NodeResourcesFitArgs {
            ignored_resources: BTreeSet::new(),
            ignored_resource_groups: BTreeSet::new(),
            scoring_strategy: ScoringStrategy {
                strategy: ScoringStrategyType::LeastAllocated,
                resources: default_resources(),
                shape: Vec::new(),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFitArgs {
    #[serde(default)]
    api_version: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    ignored_resources: Option<Vec<String>>,
    #[serde(default)]
    ignored_resource_groups: Option<Vec<String>>,
    #[serde(default)]
    scoring_strategy: Option<RawScoringStrategy>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawScoringStrategy {
    #[serde(default, rename = "type")]
    strategy: String,
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RawRequestedToCapacityRatio>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRequestedToCapacityRatio {
    #[serde(default)]
    shape: Option<Vec<UtilizationShapePoint>>,
}

/// Fills in weight 1 for unset weights and the default resources for an empty list
/// (upstream's v1 defaulting).
fn default_resource_specs(specs: Option<Vec<ResourceSpec>>) -> Vec<ResourceSpec> {
    let mut specs = specs.unwrap_or_default();
    if specs.is_empty() {
        return default_resources();
    }
    for s in &mut specs {
        if s.weight == 0 {
            s.weight = 1;
        }
    }
    specs
}

fn check_kind(kind: Option<&str>, want: &str) -> Result<(), String> {
    match kind {
        Some(k) if k != want => Err(format!("want args of kind {want}, got {k:?}")),
        _ => Ok(()),
    }
}

fn validate_weights(specs: &[ResourceSpec], path: &str, errors: &mut Vec<FieldError>) {
    for (i, r) in specs.iter().enumerate() {
        if r.weight <= 0 || r.weight > 100 {
            errors.push(FieldError::invalid(
                format!("{path}[{i}].weight"),
                r.weight,
                format!("resource weight of {} not in valid range (0, 100]", r.name),
            ));
        }
    }
}

fn validate_shape(shape: &[UtilizationShapePoint], path: &str, errors: &mut Vec<FieldError>) {
    if shape.is_empty() {
        errors.push(FieldError::required(
            path,
            "at least one point must be specified",
        ));
        return;
    }
    if let Some(i) = (1..shape.len()).find(|&i| shape[i - 1].utilization >= shape[i].utilization) {
        errors.push(FieldError::invalid(
            format!("{path}[{i}].utilization"),
            shape[i].utilization,
            "Utilization values must be sorted in increasing order",
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=100).contains(&p.utilization) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}].utilization"),
                p.utilization,
                "not in valid range [0, 100]",
            ));
        }
        if !(0..=10).contains(&p.score) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}].score"),
                p.score,
                "not in valid range [0, 10]",
            ));
        }
    }
}

fn join_errors(errors: Vec<FieldError>) -> Result<(), String> {
    if errors.is_empty() {
        return Ok(());
    }
    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Err(if msgs.len() == 1 {
        msgs.concat()
    } else {
        format!("[{}]", msgs.join(", "))
    })
}

impl NodeResourcesFitArgs {
    /// Decodes, defaults and validates the args (`None` or `null`: the defaults).
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = args.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let raw = RawFitArgs::deserialize(value)
            .map_err(|e| format!("decoding NodeResourcesFitArgs: {e}"))?;
        let _ = raw.api_version;
        check_kind(raw.kind.as_deref(), "NodeResourcesFitArgs")?;
        let mut errors = Vec::new();
        let ignored_resources = raw.ignored_resources.unwrap_or_default();
        for (i, r) in ignored_resources.iter().enumerate() {
            for e in qualified_name(r) {
                errors.push(FieldError::invalid(
                    format!("ignoredResources[{i}]"),
                    r.as_str(),
                    e,
                ));
            }
        }
        let ignored_resource_groups = raw.ignored_resource_groups.unwrap_or_default();
        for (i, g) in ignored_resource_groups.iter().enumerate() {
            let path = format!("ignoredResourceGroups[{i}]");
            if g.contains('/') {
                errors.push(FieldError::invalid(
                    &path,
                    g.as_str(),
                    "resource group name can't contain '/'",
                ));
            }
            for e in qualified_name(g) {
                errors.push(FieldError::invalid(&path, g.as_str(), e));
            }
        }
        let scoring_strategy = match raw.scoring_strategy {
            None => Self::default().scoring_strategy,
            Some(s) => {
                let resources = default_resource_specs(s.resources);
                validate_weights(&resources, "scoringStrategy.resources", &mut errors);
                let shape = s
                    .requested_to_capacity_ratio
                    .map(|r| r.shape.unwrap_or_default());
                if let Some(shape) = &shape {
                    validate_shape(shape, "scoringStrategy.shape", &mut errors);
                }
                let strategy = match s.strategy.as_str() {
                    "LeastAllocated" => ScoringStrategyType::LeastAllocated,
                    "MostAllocated" => ScoringStrategyType::MostAllocated,
                    "RequestedToCapacityRatio" => {
                        if shape.is_none() {
                            errors.push(FieldError::required(
                                "scoringStrategy.requestedToCapacityRatio",
                                "the RequestedToCapacityRatio strategy needs a shape",
                            ));
                        }
                        ScoringStrategyType::RequestedToCapacityRatio
                    }
                    other => {
                        errors.push(FieldError::not_supported(
                            "scoringStrategy.type",
                            other,
                            &[
                                "LeastAllocated",
                                "MostAllocated",
                                "RequestedToCapacityRatio",
                            ],
                        ));
                        ScoringStrategyType::LeastAllocated
                    }
                };
                ScoringStrategy {
                    strategy,
                    resources,
                    shape: shape.unwrap_or_default(),
                }
            }
        };
        join_errors(errors)?;
        Ok(NodeResourcesFitArgs {
            ignored_resources: ignored_resources.into_iter().collect(),
            ignored_resource_groups: ignored_resource_groups.into_iter().collect(),
            scoring_strategy,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBalancedArgs {
    #[serde(default)]
    api_version: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
}

/// `NodeResourcesBalancedAllocationArgs`: the resources to balance (default cpu and memory;
/// every weight must be 1, names unique).
pub fn balanced_allocation_args(
    args: Option<&serde_json::Value>,
) -> Result<Vec<ResourceSpec>, String> {
    let Some(value) = args.filter(|v| !v.is_null()) else {
        return Ok(default_resources());
    };
    let raw = RawBalancedArgs::deserialize(value)
        .map_err(|e| format!("decoding NodeResourcesBalancedAllocationArgs: {e}"))?;
    let _ = raw.api_version;
    check_kind(raw.kind.as_deref(), "NodeResourcesBalancedAllocationArgs")?;
    let resources = default_resource_specs(raw.resources);
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, r) in resources.iter().enumerate() {
        if !seen.insert(r.name.as_str()) {
            errors.push(FieldError::duplicate(
                format!("resources[{i}].name"),
                r.name.as_str(),
            ));
        }
        if r.weight != 1 {
            errors.push(FieldError::invalid(
                format!("resources[{i}].weight"),
                r.weight,
                "must be 1",
            ));
        }
    }
    join_errors(errors)?;
    Ok(resources)
}

// ---------------------------------------------------------------------------------------------
// Fit (Filter).

/// An extended resource: has a domain prefix, outside `kubernetes.io/`, and is not a quota
/// `requests.` name (upstream's `IsExtendedResourceName`).
pub fn is_extended_resource_name(name: &str) -> bool {
    name.contains('/')
        && !name.contains("kubernetes.io/")
        && !name.starts_with("requests.")
        && qualified_name(&format!("requests.{name}")).is_empty()
}

/// Why the pod does not fit the node, one reason per short resource, in upstream's order.
pub fn insufficient_resources(
    request: &Resource,
    node: &NodeInfo,
    ignored: &BTreeSet<String>,
    ignored_groups: &BTreeSet<String>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let pods = i64::try_from(node.pods.len()).unwrap_or(i64::MAX);
    if pods.saturating_add(1) > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    if request.milli_cpu == 0
        && request.memory == 0
        && request.ephemeral_storage == 0
        && request.scalar.is_empty()
    {
        return reasons;
    }
    let free = |alloc: i64, used: i64| alloc.saturating_sub(used);
    let (alloc, used) = (&node.allocatable, &node.requested);
    if request.milli_cpu > 0 && request.milli_cpu > free(alloc.milli_cpu, used.milli_cpu) {
        reasons.push("Insufficient cpu".to_string());
    }
    if request.memory > 0 && request.memory > free(alloc.memory, used.memory) {
        reasons.push("Insufficient memory".to_string());
    }
    if request.ephemeral_storage > 0
        && request.ephemeral_storage > free(alloc.ephemeral_storage, used.ephemeral_storage)
    {
        reasons.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, &quantity) in &request.scalar {
        if quantity == 0 {
            continue;
        }
        if is_extended_resource_name(name) {
            let group = name.split('/').next().unwrap_or_default();
            if ignored.contains(name) || ignored_groups.contains(group) {
                continue;
            }
        }
        if quantity > free(alloc.get(name), used.get(name)) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

// ---------------------------------------------------------------------------------------------
// Scoring shared by both plugins.

/// The pod's request of each resource in `specs`; `non_zero` applies the scoring defaults.
fn pod_request_list(pod: &Pod, specs: &[ResourceSpec], non_zero: bool) -> Vec<i64> {
    let r = pod_requests(pod, non_zero);
    specs.iter().map(|s| r.get(&s.name)).collect()
}

/// `(allocatable, requested including the pod)` of one resource on `node`; `(0, 0)` leaves
/// the resource out of the score (upstream's `calculateResourceAllocatableRequest`).
fn allocatable_and_requested(
    node: &NodeInfo,
    resource: &str,
    pod_request: i64,
    use_requested: bool,
) -> (i64, i64) {
    let cpu_mem = if use_requested {
        &node.requested
    } else {
        &node.non_zero_requested
    };
    let alloc = &node.allocatable;
    match resource {
        "cpu" => (
            alloc.milli_cpu,
            cpu_mem.milli_cpu.saturating_add(pod_request),
        ),
        "memory" => (alloc.memory, cpu_mem.memory.saturating_add(pod_request)),
        "ephemeral-storage" => (
            alloc.ephemeral_storage,
            node.requested.ephemeral_storage.saturating_add(pod_request),
        ),
        // Scalar resources the pod does not ask for do not count.
        _ if pod_request == 0 => (0, 0),
        other => match alloc.scalar.get(other) {
            Some(&a) => (a, node.requested.get(other).saturating_add(pod_request)),
            None => (0, 0),
        },
    }
}

/// Requested and allocatable per resource, zero for resources left out.
fn resource_vectors(
    node: &NodeInfo,
    specs: &[ResourceSpec],
    pod_requests: &[i64],
    use_requested: bool,
) -> (Vec<i64>, Vec<i64>) {
    let mut requested = vec![0; specs.len()];
    let mut allocatable = vec![0; specs.len()];
    for (i, (spec, &pod_request)) in specs.iter().zip(pod_requests).enumerate() {
        let (a, r) = allocatable_and_requested(node, &spec.name, pod_request, use_requested);
        if a == 0 {
            continue;
        }
        allocatable[i] = a;
        requested[i] = r;
    }
    (requested, allocatable)
}

/// `a * b / c` without overflow (c > 0).
fn mul_div(a: i64, b: i64, c: i64) -> i64 {
    let v = i128::from(a) * i128::from(b) / i128::from(c);
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    mul_div(capacity - requested, MAX_NODE_SCORE, capacity)
}

fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    // Requested can exceed capacity through the non-zero defaults.
    mul_div(requested.min(capacity), MAX_NODE_SCORE, capacity)
}

/// Upstream's `BuildBrokenLinearFunction` over `(utilization, score)` points.
fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            let Some(&(pu, ps)) = i.checked_sub(1).and_then(|j| shape.get(j)) else {
                return s;
            };
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map_or(0, |&(_, s)| s)
}

/// A scoring function over requested/allocatable vectors.
#[derive(Clone, Debug)]
enum Scorer {
    Least,
    Most,
    /// Shape points with scores already scaled to `MAX_NODE_SCORE`.
    Ratio(Vec<(i64, i64)>),
}

impl Scorer {
    fn score(&self, specs: &[ResourceSpec], requested: &[i64], allocatable: &[i64]) -> i64 {
        let mut total: i64 = 0;
        let mut weights: i64 = 0;
        for (i, spec) in specs.iter().enumerate() {
            let (req, cap) = (requested[i], allocatable[i]);
            if cap == 0 {
                continue;
            }
            let s = match self {
                Scorer::Least => least_requested_score(req, cap),
                Scorer::Most => most_requested_score(req, cap),
                Scorer::Ratio(shape) => {
                    let utilization = if req > cap {
                        MAX_UTILIZATION
                    } else {
                        mul_div(req, MAX_UTILIZATION, cap)
                    };
                    let s = broken_linear(shape, utilization);
                    // Upstream leaves zero scores out of the mean for this strategy.
                    if s <= 0 {
                        continue;
                    }
                    s
                }
            };
            total = total.saturating_add(s.saturating_mul(spec.weight));
            weights = weights.saturating_add(spec.weight);
        }
        if weights == 0 {
            return 0;
        }
        match self {
            Scorer::Ratio(_) => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        }
    }
}

/// Upstream's `balancedResourceScorer`.
fn balanced_score(requested: &[i64], allocatable: &[i64]) -> i64 {
    let fractions: Vec<f64> = requested
        .iter()
        .zip(allocatable)
        .filter(|&(_, &a)| a != 0)
        .map(|(&r, &a)| (r as f64 / a as f64).min(1.0))
        .collect();
    let std = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        f if f.len() > 2 => {
            let n = f.len() as f64;
            let mean = f.iter().sum::<f64>() / n;
            (f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

// ---------------------------------------------------------------------------------------------
// NodeResourcesFit.

/// The NodeResourcesFit plugin.
pub struct Fit {
    pub args: NodeResourcesFitArgs,
    scorer: Scorer,
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(Fit::new(NodeResourcesFitArgs::from_json(args)?)))
}

impl Fit {
    pub fn new(args: NodeResourcesFitArgs) -> Fit {
        let scorer = match args.scoring_strategy.strategy {
            ScoringStrategyType::LeastAllocated => Scorer::Least,
            ScoringStrategyType::MostAllocated => Scorer::Most,
            ScoringStrategyType::RequestedToCapacityRatio => Scorer::Ratio(
                args.scoring_strategy
                    .shape
                    .iter()
                    .map(|p| {
                        (
                            i64::from(p.utilization),
                            i64::from(p.score) * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
                        )
                    })
                    .collect(),
            ),
        };
        Fit { args, scorer }
    }

    fn pod_scoring_requests(&self, pod: &Pod) -> Vec<i64> {
        pod_request_list(pod, &self.args.scoring_strategy.resources, true)
    }
}

/// The pod's requests, computed once per cycle.
#[derive(Clone, Debug)]
struct FitPreFilterState(Resource);

/// The pod's scoring requests per configured resource.
#[derive(Clone, Debug)]
struct FitPreScoreState(Vec<i64>);

impl Plugin for Fit {
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

    fn events(&self) -> Vec<ClusterEvent> {
        // Resources are freed by pods going away or scaling down, or added by nodes.
        vec![
            ClusterEvent::PodDelete,
            ClusterEvent::PodUpdate,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ]
    }
}

impl PreFilterPlugin for Fit {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        state.write(PRE_FILTER_KEY, FitPreFilterState(pod_requests(pod, false)));
        (PreFilterResult::all(), Status::success())
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let computed;
        let request = match state.read::<FitPreFilterState>(PRE_FILTER_KEY) {
            Some(s) => &s.0,
            None => {
                computed = pod_requests(pod, false);
                &computed
            }
        };
        let reasons = insufficient_resources(
            request,
            node,
            &self.args.ignored_resources,
            &self.args.ignored_resource_groups,
        );
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::new(crate::framework::Code::Unschedulable, reasons)
        }
    }
}

impl PreScorePlugin for Fit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_KEY,
            FitPreScoreState(self.pod_scoring_requests(pod)),
        );
        Status::success()
    }
}

impl ScorePlugin for Fit {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let computed;
        let pod_requests = match state.read::<FitPreScoreState>(PRE_SCORE_KEY) {
            Some(s) => &s.0,
            None => {
                computed = self.pod_scoring_requests(pod);
                &computed
            }
        };
        let specs = &self.args.scoring_strategy.resources;
        let (requested, allocatable) = resource_vectors(node, specs, pod_requests, false);
        (
            self.scorer.score(specs, &requested, &allocatable),
            Status::success(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// NodeResourcesBalancedAllocation.

/// The NodeResourcesBalancedAllocation plugin.
pub struct BalancedAllocation {
    pub resources: Vec<ResourceSpec>,
}

pub fn new_balanced_allocation(
    args: Option<&serde_json::Value>,
) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(BalancedAllocation {
        resources: balanced_allocation_args(args)?,
    }))
}

#[derive(Clone, Debug)]
struct BalancedPreScoreState(Vec<i64>);

impl BalancedAllocation {
    fn pod_requests(&self, pod: &Pod) -> Vec<i64> {
        pod_request_list(pod, &self.resources, false)
    }
}

fn is_best_effort(requests: &[i64]) -> bool {
    requests.iter().all(|&r| r == 0)
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        BALANCED_ALLOCATION_NAME
    }

    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        let requests = self.pod_requests(pod);
        if is_best_effort(&requests) {
            // Balancing on nothing would pile best-effort pods onto one node.
            return Status::skip();
        }
        state.write(BALANCED_PRE_SCORE_KEY, BalancedPreScoreState(requests));
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let computed;
        let pod_requests = match state.read::<BalancedPreScoreState>(BALANCED_PRE_SCORE_KEY) {
            Some(s) => &s.0,
            None => {
                computed = self.pod_requests(pod);
                if is_best_effort(&computed) {
                    return (0, Status::success());
                }
                &computed
            }
        };
        let (requested, allocatable) = resource_vectors(node, &self.resources, pod_requests, true);
        (balanced_score(&requested, &allocatable), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, PodInfo};
    use serde_json::{Value, json};

    fn node(name: &str, allocatable: Value, pods: Vec<Pod>) -> NodeInfo {
        let mut n = NodeInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": allocatable}
            }))
            .unwrap(),
        ));
        for p in pods {
            n.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
        }
        n
    }

    /// A pod with one container per request list (`null`: no requests).
    fn pod(name: &str, containers: &[Value]) -> Pod {
        let containers: Vec<Value> = containers
            .iter()
            .map(|r| json!({"name": "c", "resources": {"requests": r}}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "uid": name},
            "spec": {"containers": containers}
        }))
        .unwrap()
    }

    fn fit(args: Value) -> Fit {
        Fit::new(NodeResourcesFitArgs::from_json(Some(&args)).unwrap())
    }

    fn run_filter(plugin: &Fit, p: &Pod, n: &NodeInfo) -> Status {
        let mut state = CycleState::new();
        let (_, pre) = PreFilterPlugin::pre_filter(plugin, &mut state, p, &Snapshot::default());
        assert!(pre.is_success());
        let s = FilterPlugin::filter(plugin, &state, p, n);
        assert_eq!(
            FilterPlugin::filter(plugin, &CycleState::new(), p, n),
            s,
            "fallback agrees"
        );
        s
    }

    #[test]
    fn filter() {
        let n = || {
            node(
                "n",
                json!({"cpu": "4", "memory": "8Gi", "pods": "3", "ephemeral-storage": "10Gi",
                       "example.com/gpu": "2", "hugepages-2Mi": "4Mi"}),
                vec![pod(
                    "existing",
                    &[json!({"cpu": "3", "memory": "1Gi", "example.com/gpu": "1"})],
                )],
            )
        };
        let cases: Vec<(&str, Value, Pod, Vec<&str>)> = vec![
            (
                "fits",
                json!({}),
                pod("p", &[json!({"cpu": "500m"})]),
                vec![],
            ),
            (
                "exactly fits",
                json!({}),
                pod("p", &[json!({"cpu": "1"})]),
                vec![],
            ),
            (
                "best effort fits",
                json!({}),
                pod("p", &[json!(null)]),
                vec![],
            ),
            (
                "cpu",
                json!({}),
                pod("p", &[json!({"cpu": "1500m"})]),
                vec!["Insufficient cpu"],
            ),
            (
                "cpu summed over containers",
                json!({}),
                pod("p", &[json!({"cpu": "600m"}), json!({"cpu": "600m"})]),
                vec!["Insufficient cpu"],
            ),
            (
                "cpu and memory",
                json!({}),
                pod("p", &[json!({"cpu": "2", "memory": "8Gi"})]),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "ephemeral storage",
                json!({}),
                pod("p", &[json!({"ephemeral-storage": "11Gi"})]),
                vec!["Insufficient ephemeral-storage"],
            ),
            (
                "extended resource",
                json!({}),
                pod("p", &[json!({"example.com/gpu": "2"})]),
                vec!["Insufficient example.com/gpu"],
            ),
            (
                "extended resource the node lacks",
                json!({}),
                pod("p", &[json!({"example.com/fpga": "1"})]),
                vec!["Insufficient example.com/fpga"],
            ),
            (
                "zero extended request",
                json!({}),
                pod("p", &[json!({"example.com/fpga": "0"})]),
                vec![],
            ),
            (
                "ignored resource",
                json!({"ignoredResources": ["example.com/gpu"]}),
                pod("p", &[json!({"example.com/gpu": "2"})]),
                vec![],
            ),
            (
                "ignored resource group",
                json!({"ignoredResourceGroups": ["example.com"]}),
                pod(
                    "p",
                    &[json!({"example.com/gpu": "2", "example.com/fpga": "1"})],
                ),
                vec![],
            ),
            (
                "hugepages are not extended: never ignored",
                json!({"ignoredResources": ["hugepages-2Mi"]}),
                pod("p", &[json!({"hugepages-2Mi": "6Mi"})]),
                vec!["Insufficient hugepages-2Mi"],
            ),
        ];
        for (name, args, p, want) in cases {
            let s = run_filter(&fit(args), &p, &n());
            if want.is_empty() {
                assert!(s.is_success(), "{name}: {s}");
            } else {
                assert_eq!(s.code, Code::Unschedulable, "{name}");
                assert_eq!(s.reasons, want, "{name}");
            }
        }
    }

    #[test]
    fn filter_pod_count_and_init_containers() {
        let full = node(
            "n",
            json!({"cpu": "4", "memory": "8Gi", "pods": "1"}),
            vec![pod("existing", &[json!(null)])],
        );
        let plugin = fit(json!({}));
        let s = run_filter(&plugin, &pod("p", &[json!(null)]), &full);
        assert_eq!(s.reasons, ["Too many pods"]);
        let s = run_filter(&plugin, &pod("p", &[json!({"cpu": "5"})]), &full);
        assert_eq!(s.reasons, ["Too many pods", "Insufficient cpu"]);

        // An init container bigger than the containers sets the request.
        let with_init: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "5"}}}]
            }
        }))
        .unwrap();
        let empty = node(
            "n",
            json!({"cpu": "4", "memory": "8Gi", "pods": "10"}),
            vec![],
        );
        assert_eq!(
            run_filter(&plugin, &with_init, &empty).reasons,
            ["Insufficient cpu"]
        );
    }

    fn fit_scores(plugin: &Fit, p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
        let mut state = CycleState::new();
        assert!(
            PreScorePlugin::pre_score(plugin, &mut state, p, &[], &Snapshot::default())
                .is_success()
        );
        nodes
            .iter()
            .map(|n| {
                let (s, status) = ScorePlugin::score(plugin, &state, p, n);
                assert!(status.is_success());
                assert_eq!(
                    ScorePlugin::score(plugin, &CycleState::new(), p, n).0,
                    s,
                    "fallback agrees"
                );
                s
            })
            .collect()
    }

    #[test]
    fn scoring_strategies() {
        let nodes = || {
            vec![
                // Half used by an existing pod.
                node(
                    "busy",
                    json!({"cpu": "4", "memory": "8Gi", "example.com/gpu": "4"}),
                    vec![pod("existing", &[json!({"cpu": "1", "memory": "2Gi"})])],
                ),
                node(
                    "idle",
                    json!({"cpu": "8", "memory": "8Gi", "example.com/gpu": "4"}),
                    vec![],
                ),
                node("tiny", json!({"cpu": "500m", "memory": "1Gi"}), vec![]),
            ]
        };
        let regular = pod("p", &[json!({"cpu": "1", "memory": "2Gi"})]);
        let best_effort = pod("p", &[json!(null)]);
        let gpu = pod(
            "p",
            &[json!({"cpu": "1", "memory": "2Gi", "example.com/gpu": "1"})],
        );
        let least = json!({});
        let most = json!({"scoringStrategy": {"type": "MostAllocated"}});
        let spread_shape = json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [
                {"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}}});
        let pack_shape = json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [
                {"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}});
        let with_gpu = |t: &str| {
            json!({"scoringStrategy": {"type": t, "resources": [
                {"name": "cpu", "weight": 1}, {"name": "example.com/gpu", "weight": 1}]}})
        };
        let cases: Vec<(&str, Value, &Pod, [i64; 3])> = vec![
            // busy: cpu 2000/4000, mem 4Gi/8Gi → 50, 50. idle: cpu 1000/8000 → 87, mem 2/8 →
            // 75: (87+75)/2 = 81. tiny: cpu over capacity → 0, mem 2Gi > 1Gi → 0.
            ("least", least.clone(), &regular, [50, 81, 0]),
            // Best effort counts 100m and 200Mi: idle cpu 7900/8000 → 98, mem 7992/8192 → 97.
            // busy: cpu 4000-1100 → 72, mem 8192-2248 Mi → 72. tiny: cpu 80, mem 80.
            ("least, best effort", least, &best_effort, [72, 97, 80]),
            // idle: 12 and 25 → 18; tiny: both capped at 100.
            ("most", most.clone(), &regular, [50, 18, 100]),
            ("most, best effort", most, &best_effort, [27, 1, 19]),
            // idle: utilization 12 and 25 → 88 and 75 → 81.5 rounds to 82.
            ("ratio spreading", spread_shape, &regular, [50, 82, 0]),
            // idle: 12 and 25 → 18.5 rounds to 19; tiny: over capacity → utilization 100.
            ("ratio packing", pack_shape, &regular, [50, 19, 100]),
            // busy: cpu 50, gpu 3/4 free → 75: 62. idle: 87, 75 → 81. tiny lacks gpus: cpu 0.
            (
                "least with gpu",
                with_gpu("LeastAllocated"),
                &gpu,
                [62, 81, 0],
            ),
            // A pod not asking for the gpu leaves it out: cpu alone.
            (
                "gpu not requested",
                with_gpu("LeastAllocated"),
                &regular,
                [50, 87, 0],
            ),
            (
                "weights",
                json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [
                    {"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}}),
                &regular,
                // idle: (87×3 + 75) / 4 = 84.
                [50, 84, 0],
            ),
        ];
        for (name, args, p, want) in cases {
            assert_eq!(fit_scores(&fit(args), p, &nodes()), want, "{name}");
        }
    }

    #[test]
    fn balanced_allocation() {
        let nodes = || {
            vec![
                node(
                    "busy",
                    json!({"cpu": "4", "memory": "8Gi", "example.com/gpu": "4"}),
                    vec![pod("existing", &[json!({"cpu": "1", "memory": "2Gi"})])],
                ),
                node(
                    "idle",
                    json!({"cpu": "8", "memory": "8Gi", "example.com/gpu": "4"}),
                    vec![pod("best-effort", &[json!(null)])],
                ),
                node("tiny", json!({"cpu": "500m", "memory": "8Gi"}), vec![]),
            ]
        };
        let three = json!({"resources": [
            {"name": "cpu"}, {"name": "memory"}, {"name": "example.com/gpu"}]});
        /// Name, args, pod, and the scores of the three nodes (`None`: PreScore skips).
        type Case = (&'static str, Option<Value>, Pod, Option<[i64; 3]>);
        let cases: Vec<Case> = vec![
            // busy: 0.5 and 0.5 → 100. idle: 0.125 and 0.25 (the best-effort pod counts for
            // nothing) → std 0.0625 → 93. tiny: cpu capped at 1, mem 0.25 → 62.
            (
                "cpu and memory",
                None,
                pod("p", &[json!({"cpu": "1", "memory": "2Gi"})]),
                Some([100, 93, 62]),
            ),
            // No memory request: busy 0.5 vs 0.25 → 87; idle 0.125 vs 0 → 93; tiny 1 vs 0 → 50.
            (
                "cpu only",
                None,
                pod("p", &[json!({"cpu": "1"})]),
                Some([87, 93, 50]),
            ),
            (
                "best effort is skipped",
                None,
                pod("p", &[json!(null)]),
                None,
            ),
            // idle: 0.125, 0.25, 0.25 → std 0.0589 → 94. busy: 0.5, 0.5, 0.25 → 88.
            // tiny has no gpu: two fractions, 1 and 0.25 → 62.
            (
                "three resources",
                Some(three),
                pod(
                    "p",
                    &[json!({"cpu": "1", "memory": "2Gi", "example.com/gpu": "1"})],
                ),
                Some([88, 94, 62]),
            ),
        ];
        for (name, args, p, want) in cases {
            let plugin = BalancedAllocation {
                resources: balanced_allocation_args(args.as_ref()).unwrap(),
            };
            let mut state = CycleState::new();
            let s = PreScorePlugin::pre_score(&plugin, &mut state, &p, &[], &Snapshot::default());
            let Some(want) = want else {
                assert!(s.is_skip(), "{name}");
                assert_eq!(
                    ScorePlugin::score(&plugin, &state, &p, &nodes()[0]).0,
                    0,
                    "{name}"
                );
                continue;
            };
            assert!(s.is_success(), "{name}");
            let got: Vec<i64> = nodes()
                .iter()
                .map(|n| {
                    let score = ScorePlugin::score(&plugin, &state, &p, n).0;
                    assert_eq!(
                        ScorePlugin::score(&plugin, &CycleState::new(), &p, n).0,
                        score
                    );
                    score
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn broken_linear_function() {
        let shape = [(10, 0), (50, 100), (90, 20)];
        let cases = [
            (0, 0),
            (10, 0),
            (30, 50),
            (50, 100),
            (70, 60),
            (90, 20),
            (100, 20),
        ];
        for (p, want) in cases {
            assert_eq!(broken_linear(&shape, p), want, "{p}");
        }
    }

    #[test]
    fn extended_resource_names() {
        let cases = [
            ("example.com/gpu", true),
            ("nvidia.com/gpu", true),
            ("cpu", false),
            ("hugepages-2Mi", false),
            ("kubernetes.io/something", false),
            ("requests.example.com/gpu", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_extended_resource_name(name), want, "{name}");
        }
    }

    #[test]
    fn fit_args() {
        let ok = |v: Value| NodeResourcesFitArgs::from_json(Some(&v)).unwrap();
        assert_eq!(
            NodeResourcesFitArgs::from_json(None).unwrap(),
            NodeResourcesFitArgs::default()
        );
        let a = ok(json!({"scoringStrategy": {"type": "MostAllocated"}}));
        assert_eq!(
            a.scoring_strategy.strategy,
            ScoringStrategyType::MostAllocated
        );
        assert_eq!(a.scoring_strategy.resources, default_resources());
        let a = ok(json!({"scoringStrategy": {"type": "LeastAllocated",
            "resources": [{"name": "cpu"}, {"name": "example.com/gpu", "weight": 5}]}}));
        assert_eq!(
            a.scoring_strategy
                .resources
                .iter()
                .map(|r| r.weight)
                .collect::<Vec<_>>(),
            [1, 5]
        );
        let a = ok(json!({"apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "NodeResourcesFitArgs", "ignoredResourceGroups": ["example.com"]}));
        assert!(a.ignored_resource_groups.contains("example.com"));

        let errors = [
            (
                json!({"scoringStrategy": {"type": "Bogus"}}),
                "scoringStrategy.type: Unsupported value: \"Bogus\"",
            ),
            (
                json!({"scoringStrategy": {}}),
                "scoringStrategy.type: Unsupported value: \"\"",
            ),
            (
                json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 101}]}}),
                "scoringStrategy.resources[0].weight: Invalid value: 101: resource weight of cpu not in valid range (0, 100]",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}),
                "scoringStrategy.requestedToCapacityRatio: Required value",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": []}}}),
                "scoringStrategy.shape: Required value: at least one point must be specified",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [
                        {"utilization": 50, "score": 1}, {"utilization": 40, "score": 11}]}}}),
                "scoringStrategy.shape[1].utilization: Invalid value: 40: Utilization values must be sorted in increasing order",
            ),
            (
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 11}]}}}),
                "scoringStrategy.shape[0].score: Invalid value: 11: not in valid range [0, 10]",
            ),
            (
                json!({"ignoredResourceGroups": ["example.com/gpu"]}),
                "ignoredResourceGroups[0]: Invalid value: \"example.com/gpu\": resource group name can't contain '/'",
            ),
            (
                json!({"ignoredResources": ["-bad"]}),
                "ignoredResources[0]: Invalid value: \"-bad\"",
            ),
            (
                json!({"ignoredResource": []}),
                "unknown field `ignoredResource`",
            ),
            (
                json!({"kind": "InterPodAffinityArgs"}),
                "want args of kind NodeResourcesFitArgs",
            ),
        ];
        for (args, want) in errors {
            let e = NodeResourcesFitArgs::from_json(Some(&args)).unwrap_err();
            assert!(e.contains(want), "{args}: {e:?} should contain {want:?}");
        }
        assert_eq!(new(None).unwrap().name(), NAME);
    }

    #[test]
    fn balanced_args() {
        assert_eq!(balanced_allocation_args(None).unwrap(), default_resources());
        let cases = [
            (json!({}), None),
            (json!({"resources": [{"name": "cpu", "weight": 1}]}), None),
            (
                json!({"resources": [{"name": "cpu", "weight": 2}]}),
                Some("resources[0].weight: Invalid value: 2: must be 1"),
            ),
            (
                json!({"resources": [{"name": "cpu"}, {"name": "cpu"}]}),
                Some("resources[1].name: Duplicate value: \"cpu\""),
            ),
            (json!({"kind": "Foo"}), Some("want args of kind")),
        ];
        for (args, want) in cases {
            match (balanced_allocation_args(Some(&args)), want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{e} should contain {w}"),
                (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            new_balanced_allocation(None).unwrap().name(),
            BALANCED_ALLOCATION_NAME
        );
    }
}
