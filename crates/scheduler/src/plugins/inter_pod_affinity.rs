//! InterPodAffinity: required pod affinity / anti-affinity as a filter, preferred terms as a
//! score, with upstream's semantics (`pkg/scheduler/framework/plugins/interpodaffinity`).
//!
//! PreFilter counts, per topology pair (`key=value` of a node label), the existing pods whose
//! required anti-affinity terms select the incoming pod, and the existing pods the incoming
//! pod's required (anti-)affinity terms select; Filter then only looks up the node's pairs.
//! Preemption keeps those counts current through the PreFilter extensions. PreScore sums the
//! weights of preferred terms in both directions (and existing pods' required affinity terms at
//! `hardPodAffinityWeight`) per topology pair; Score looks them up and NormalizeScore scales
//! them min-max into `0..=100`.
//!
//! The incoming pod's namespace selectors are resolved to namespace names once per cycle (as
//! upstream does), so the counts can be updated later without the snapshot.
//!
//! The per-node work behind PreFilter and PreScore is memoized across cycles (see
//! `pod_topology_spread::memo`): existing pods' required anti-affinity terms are indexed per
//! node and matched against the incoming pod once per distinct term, so scheduling ordinary
//! pods next to thousands of anti-affinity pods stays cheap.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api::selector::LabelSelector;
use api::validation::FieldError;
use k8s_openapi::api::core::v1::{Affinity, Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::framework::{
    AffinityTerm, ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, NamespaceLabels,
    NodeInfo, NodeScore, NormalizeScorePlugin, Plugin, PodInfo, PreFilterExtensions,
    PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot, Status,
    WeightedAffinityTerm,
};
use crate::plugins::pod_topology_spread::memo::{self, Aux, Domains, Interner, NodeMemo};

pub const NAME: &str = "InterPodAffinity";

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

/// The node's topology domain holds no pod the incoming pod's required affinity selects.
pub const ERR_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// The node's topology domain holds a pod the incoming pod's required anti-affinity selects.
pub const ERR_ANTI_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod anti-affinity rules";
/// An existing pod's required anti-affinity selects the incoming pod in the node's domain.
pub const ERR_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// `InterPodAffinityArgs` of `kubescheduler.config.k8s.io/v1`, defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterPodAffinityArgs {
    /// The score weight of an existing pod's required affinity term that selects the incoming
    /// pod (0 turns that part of scoring off).
    pub hard_pod_affinity_weight: i32,
    /// Skip scoring altogether when the incoming pod has no preferred (anti-)affinity terms.
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
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
    hard_pod_affinity_weight: Option<i32>,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: Option<bool>,
}

impl InterPodAffinityArgs {
    /// Decodes, defaults and validates the args (`None` or `null`: the defaults).
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = args.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let raw = RawArgs::deserialize(value)
            .map_err(|e| format!("decoding InterPodAffinityArgs: {e}"))?;
        let _ = raw.api_version;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "InterPodAffinityArgs") {
            return Err(format!(
                "want args of kind InterPodAffinityArgs, got {kind:?}"
            ));
        }
        let defaults = Self::default();
        let args = InterPodAffinityArgs {
            hard_pod_affinity_weight: raw
                .hard_pod_affinity_weight
                .unwrap_or(defaults.hard_pod_affinity_weight),
            ignore_preferred_terms_of_existing_pods: raw
                .ignore_preferred_terms_of_existing_pods
                .unwrap_or(defaults.ignore_preferred_terms_of_existing_pods),
        };
        if !(0..=100).contains(&args.hard_pod_affinity_weight) {
            return Err(FieldError::invalid(
                "hardPodAffinityWeight",
                args.hard_pod_affinity_weight,
                "not in valid range [0, 100]",
            )
            .to_string());
        }
        Ok(args)
    }
}

/// Per node: `(value id, matching pods)` per incoming term.
type TermMemo = NodeMemo<Vec<Arc<Interner>>, Vec<Option<(u32, i64)>>>;

pub struct InterPodAffinity {
    args: InterPodAffinityArgs,
    /// Per-node results across cycles (see [`memo`]): the incoming pod's required terms'
    /// matches, existing pods' required anti-affinity terms, and which nodes hold pods whose
    /// terms score.
    incoming_memo: TermMemo,
    existing_memo: NodeMemo<ExistingAux, Vec<(u32, u32)>>,
    scoring_memo: NodeMemo<(), bool>,
}

impl InterPodAffinity {
    fn with_args(args: InterPodAffinityArgs) -> InterPodAffinity {
        InterPodAffinity {
            args,
            incoming_memo: TermMemo::default(),
            existing_memo: NodeMemo::default(),
            scoring_memo: NodeMemo::default(),
        }
    }
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(InterPodAffinity::with_args(
        InterPodAffinityArgs::from_json(args)?,
    )))
}

impl Plugin for InterPodAffinity {
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

    /// An assigned pod appearing, changing labels or going away changes which domains hold
    /// matching pods; a new or relabelled node may bring a new domain.
    fn events(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::PodAdd,
            ClusterEvent::PodUpdate,
            ClusterEvent::PodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Term matching.

/// Upstream's `AffinityTerm.Matches`: `pod` is in one of the term's namespaces (listed, or
/// selected by the namespace selector through `namespace_labels`, the labels of `pod`'s
/// namespace) and its labels match the term's selector. An empty namespace selector selects
/// every namespace even when the namespace's labels are unknown.
fn term_matches(
    term: &AffinityTerm,
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let in_namespace = term.namespaces.contains(ns)
        || term.namespace_selector.as_ref().is_some_and(|sel| {
            sel.is_everything() || namespace_labels.is_some_and(|labels| sel.matches(labels))
        });
    in_namespace && term.selector.matches(&pod.metadata.labels)
}

/// Whether `pod` matches every term (false for no terms), with namespace selectors already
/// resolved to names.
fn matches_all(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| term_matches(t, pod, None))
}

/// Replaces the term's namespace selector by the names of the namespaces it selects now
/// (upstream's `mergeAffinityTermNamespacesIfNotEmpty`); an empty selector stays, as it
/// selects every namespace.
fn resolve_namespaces(term: &mut AffinityTerm, namespaces: &NamespaceLabels) {
    let Some(selector) = term.namespace_selector.as_ref() else {
        return;
    };
    if selector.is_everything() {
        return;
    }
    for (name, labels) in namespaces {
        if selector.matches(labels) {
            term.namespaces.insert(name.clone());
        }
    }
    term.namespace_selector = None;
}

/// Why a term did not parse, for the status message.
fn term_error(term: &PodAffinityTerm) -> String {
    let selectors = [
        ("labelSelector", term.label_selector.as_ref()),
        ("namespaceSelector", term.namespace_selector.as_ref()),
    ];
    for (field, selector) in selectors {
        if let Some(Err(e)) = selector.map(LabelSelector::from_k8s) {
            return format!("{field}: {e}");
        }
    }
    format!(
        "invalid matchLabelKeys/mismatchLabelKeys in term with topologyKey {:?}",
        term.topology_key
    )
}

fn parse_required(
    pod: &Pod,
    terms: Option<&Vec<PodAffinityTerm>>,
) -> Result<Vec<AffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(t, pod).ok_or_else(|| term_error(t)))
        .collect()
}

fn parse_preferred(
    pod: &Pod,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
) -> Result<Vec<WeightedAffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|w| {
            let term = AffinityTerm::new(&w.pod_affinity_term, pod)
                .ok_or_else(|| term_error(&w.pod_affinity_term))?;
            Ok(WeightedAffinityTerm {
                term,
                weight: w.weight,
            })
        })
        .collect()
}

/// The incoming pod's four term lists, parsed.
struct PodTerms {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    preferred_affinity: Vec<WeightedAffinityTerm>,
    preferred_anti_affinity: Vec<WeightedAffinityTerm>,
}

/// Parses every pod (anti-)affinity term of `pod`; an error names the first bad one (upstream
/// rejects the pod when any term, required or preferred, does not parse).
fn parse_pod_terms(pod: &Pod, affinity: Option<&Affinity>) -> Result<PodTerms, String> {
    let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
    let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
    Ok(PodTerms {
        required_affinity: parse_required(
            pod,
            pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        )
        .map_err(|e| format!("requiredAffinityTerms: {e}"))?,
        required_anti_affinity: parse_required(
            pod,
            paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        )
        .map_err(|e| format!("requiredAntiAffinityTerms: {e}"))?,
        preferred_affinity: parse_preferred(
            pod,
            pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        )
        .map_err(|e| format!("preferredAffinityTerms: {e}"))?,
        preferred_anti_affinity: parse_preferred(
            pod,
            paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        )
        .map_err(|e| format!("preferredAntiAffinityTerms: {e}"))?,
    })
}

fn pod_affinity(pod: &Pod) -> Option<&Affinity> {
    pod.spec.as_ref().and_then(|s| s.affinity.as_ref())
}

fn has_pod_affinity(affinity: Option<&Affinity>) -> bool {
    affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

// ---------------------------------------------------------------------------------------------
// Topology counts.

/// Numbers per topology pair, nested by key then value so lookups borrow the node's labels
/// instead of building a pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TopologyMap(HashMap<String, HashMap<String, i64>>);

impl TopologyMap {
    /// Adds `delta` to the pair, creating it if needed (scores keep zero entries).
    fn add(&mut self, key: &str, value: &str, delta: i64) {
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_string()).or_default(),
        };
        match values.get_mut(value) {
            Some(n) => *n += delta,
            None => {
                values.insert(value.to_string(), delta);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sum of the node's pairs.
    fn sum_for(&self, labels: &BTreeMap<String, String>) -> i64 {
        self.0
            .iter()
            .filter_map(|(key, values)| values.get(labels.get(key)?))
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// PreFilter / Filter.

/// Existing pods' required anti-affinity terms that select the incoming pod, per topology key
/// and value.
#[derive(Clone, Debug, Default)]
struct ExistingCounts(Vec<(String, Domains)>);

impl ExistingCounts {
    fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, d)| d.is_empty())
    }

    fn add(&mut self, key: &str, value: &str, delta: i64) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, d)) => {
                d.add(value, delta);
            }
            None => {
                let mut d = Domains::new(Arc::default());
                d.add(value, delta);
                self.0.push((key.to_string(), d));
            }
        }
    }

    /// Whether any of the node's pairs counts more than zero.
    fn any_positive(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .any(|(key, d)| !d.is_empty() && labels.get(key).is_some_and(|v| d.get(v) > 0))
    }
}

/// The existing pods' distinct required anti-affinity terms and the topology values met,
/// shared by the per-node results of `existing_memo`.
#[derive(Default)]
struct ExistingAux {
    terms: Vec<AffinityTerm>,
    term_ids: HashMap<String, u32>,
    /// Per term: the index of its topology key in `keys`.
    term_key: Vec<usize>,
    keys: Vec<String>,
    /// Per key: its values.
    values: Vec<Arc<Interner>>,
}

impl Aux for ExistingAux {
    fn size(&self) -> usize {
        self.terms.len() + self.values.iter().map(|v| v.len()).sum::<usize>()
    }
}

impl ExistingAux {
    /// The ids of `term` and of its value on the node.
    fn intern(&mut self, term: &AffinityTerm, value: &str) -> (u32, u32) {
        let fingerprint = format!("{term:?}");
        let id = match self.term_ids.get(&fingerprint) {
            Some(&id) => id,
            None => {
                let key = match self.keys.iter().position(|k| *k == term.topology_key) {
                    Some(k) => k,
                    None => {
                        self.keys.push(term.topology_key.clone());
                        self.values.push(Arc::default());
                        self.keys.len() - 1
                    }
                };
                let id = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
                self.terms.push(term.clone());
                self.term_key.push(key);
                self.term_ids.insert(fingerprint, id);
                id
            }
        };
        let key = self.term_key.get(id as usize).copied().unwrap_or(0);
        (id, memo::intern(&mut self.values[key], value))
    }
}

/// What does not change during the cycle: the incoming pod's required terms (namespace
/// selectors resolved) and its namespace's labels.
#[derive(Debug)]
struct IncomingPod {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    /// The pod matches all its own required affinity terms (the "first pod of a group"
    /// exception).
    matches_own_affinity: bool,
    namespace_labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug)]
struct PreFilterState {
    pod: Arc<IncomingPod>,
    /// Existing pods whose required anti-affinity terms select the incoming pod.
    existing_anti_affinity: ExistingCounts,
    /// Per required affinity term: existing pods matching all of them, per value of the
    /// term's key.
    affinity: Vec<Domains>,
    /// Per required anti-affinity term: existing pods matching it, per value.
    anti_affinity: Vec<Domains>,
}

/// Upstream counts per topology pair: terms with the same key add to the same pairs.
fn pair_count(terms: &[AffinityTerm], counts: &[Domains], key: &str, value: &str) -> i64 {
    terms
        .iter()
        .zip(counts)
        .filter(|(t, _)| t.topology_key == key)
        .map(|(_, d)| d.get(value))
        .sum()
}

fn all_empty(counts: &[Domains]) -> bool {
    counts.iter().all(Domains::is_empty)
}

impl PreFilterState {
    /// Accounts for `other` (an existing pod) on `node` appearing (`delta` 1) or going away
    /// (-1); `pod` is the incoming pod.
    fn update_with_pod(&mut self, pod: &Pod, other: &PodInfo, node: &NodeInfo, delta: i64) {
        let labels = node.labels();
        for t in &other.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && term_matches(t, pod, self.pod.namespace_labels.as_ref())
            {
                self.existing_anti_affinity.add(&t.topology_key, v, delta);
            }
        }
        let incoming = Arc::clone(&self.pod);
        if matches_all(&incoming.required_affinity, &other.pod) {
            for (t, counts) in incoming.required_affinity.iter().zip(&mut self.affinity) {
                if let Some(v) = labels.get(&t.topology_key) {
                    counts.add(v, delta);
                }
            }
        }
        for (t, counts) in incoming
            .required_anti_affinity
            .iter()
            .zip(&mut self.anti_affinity)
        {
            if let Some(v) = labels.get(&t.topology_key)
                && term_matches(t, &other.pod, None)
            {
                counts.add(v, delta);
            }
        }
    }
}

/// One node's `(value id, matching pods)` per incoming term (affinity terms first, counting
/// pods that match all of them; then anti-affinity terms, each on its own). Empty when the
/// node counts for none.
fn incoming_slots(
    node: &NodeInfo,
    affinity: &[AffinityTerm],
    anti_affinity: &[AffinityTerm],
    interners: &mut Vec<Arc<Interner>>,
) -> Vec<Option<(u32, i64)>> {
    let labels = node.labels();
    let any_key = affinity
        .iter()
        .chain(anti_affinity)
        .any(|t| labels.contains_key(&t.topology_key));
    if !any_key || node.pods.is_empty() {
        return Vec::new();
    }
    interners.resize_with(affinity.len() + anti_affinity.len(), Default::default);
    let (aff_interners, anti_interners) = interners.split_at_mut(affinity.len());
    let slot = |t: &AffinityTerm, interner: &mut Arc<Interner>, n: i64| {
        let v = labels.get(&t.topology_key).filter(|_| n > 0)?;
        Some((memo::intern(interner, v), n))
    };
    let all = node
        .pods
        .iter()
        .filter(|p| matches_all(affinity, &p.pod))
        .count() as i64;
    let mut out: Vec<Option<(u32, i64)>> = affinity
        .iter()
        .zip(aff_interners.iter_mut())
        .map(|(t, interner)| slot(t, interner, all))
        .collect();
    for (t, interner) in anti_affinity.iter().zip(anti_interners.iter_mut()) {
        let n = node
            .pods
            .iter()
            .filter(|p| term_matches(t, &p.pod, None))
            .count() as i64;
        out.push(slot(t, interner, n));
    }
    if out.iter().all(Option::is_none) {
        return Vec::new();
    }
    out
}

impl InterPodAffinity {
    /// Existing pods' required anti-affinity terms that select `pod`, per topology pair: the
    /// distinct terms are matched once, then their occurrences summed from the memo.
    fn existing_anti_affinity_counts(
        &self,
        pod: &Pod,
        namespace_labels: Option<&BTreeMap<String, String>>,
        snapshot: &Snapshot,
    ) -> ExistingCounts {
        if snapshot.have_pods_with_required_anti_affinity.is_empty() {
            return ExistingCounts::default();
        }
        self.existing_memo.with(
            "existing",
            &snapshot.nodes,
            |node, aux| {
                let labels = node.labels();
                let mut out = Vec::new();
                for existing in &node.pods_with_required_anti_affinity {
                    for t in &existing.required_anti_affinity {
                        if let Some(v) = labels.get(&t.topology_key) {
                            out.push(aux.intern(t, v));
                        }
                    }
                }
                out
            },
            |results, aux| {
                let matched: Vec<bool> = aux
                    .terms
                    .iter()
                    .map(|t| term_matches(t, pod, namespace_labels))
                    .collect();
                if !matched.contains(&true) {
                    return ExistingCounts::default();
                }
                let mut per_key: Vec<Domains> = aux
                    .values
                    .iter()
                    .map(|v| Domains::new(Arc::clone(v)))
                    .collect();
                for &(term, value) in results.iter().flatten() {
                    if matched.get(term as usize) == Some(&true)
                        && let Some(d) = aux
                            .term_key
                            .get(term as usize)
                            .and_then(|&k| per_key.get_mut(k))
                    {
                        d.add_at(value as usize, 1);
                    }
                }
                ExistingCounts(
                    aux.keys
                        .iter()
                        .cloned()
                        .zip(per_key)
                        .filter(|(_, d)| !d.is_empty())
                        .collect(),
                )
            },
        )
    }

    /// Existing pods the incoming pod's required affinity (all terms) and anti-affinity (each
    /// term) select, per term and value.
    fn incoming_counts(
        &self,
        incoming: &IncomingPod,
        snapshot: &Snapshot,
    ) -> (Vec<Domains>, Vec<Domains>) {
        let (affinity, anti_affinity) = (
            &incoming.required_affinity,
            &incoming.required_anti_affinity,
        );
        if affinity.is_empty() && anti_affinity.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let fingerprint = format!("{affinity:?}|{anti_affinity:?}");
        let slots = affinity.len() + anti_affinity.len();
        let mut all = self.incoming_memo.with(
            &fingerprint,
            &snapshot.nodes,
            |node, interners| incoming_slots(node, affinity, anti_affinity, interners),
            |results, interners| memo::sum_slots(results, interners, slots),
        );
        let anti = all.split_off(affinity.len());
        (all, anti)
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let affinity = pod_affinity(pod);
        if !has_pod_affinity(affinity) && snapshot.have_pods_with_required_anti_affinity.is_empty()
        {
            return (PreFilterResult::all(), Status::skip());
        }
        let terms = match parse_pod_terms(pod, affinity) {
            Ok(t) => t,
            Err(e) => {
                return (
                    PreFilterResult::all(),
                    Status::unresolvable(format!("parsing pod: {e}")),
                );
            }
        };
        let mut required_affinity = terms.required_affinity;
        let mut required_anti_affinity = terms.required_anti_affinity;
        for t in required_affinity
            .iter_mut()
            .chain(required_anti_affinity.iter_mut())
        {
            resolve_namespaces(t, &snapshot.namespace_labels);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let incoming = IncomingPod {
            matches_own_affinity: matches_all(&required_affinity, pod),
            required_affinity,
            required_anti_affinity,
            namespace_labels: snapshot.namespace_labels.get(ns).cloned(),
        };
        let existing_anti_affinity =
            self.existing_anti_affinity_counts(pod, incoming.namespace_labels.as_ref(), snapshot);
        let (affinity_counts, anti_affinity_counts) = self.incoming_counts(&incoming, snapshot);
        if existing_anti_affinity.is_empty()
            && incoming.required_affinity.is_empty()
            && incoming.required_anti_affinity.is_empty()
        {
            return (PreFilterResult::all(), Status::skip());
        }
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                pod: Arc::new(incoming),
                existing_anti_affinity,
                affinity: affinity_counts,
                anti_affinity: anti_affinity_counts,
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

impl PreFilterExtensions for InterPodAffinity {
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
        s.update_with_pod(pod, added, node, 1);
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
        s.update_with_pod(pod, removed, node, -1);
        Status::success()
    }
}

/// Every required affinity term's domain on this node holds a matching pod, or no pod
/// anywhere matches and the pod matches its own terms (so the first pod of a group that wants
/// to be together can start it); the node must carry every term's topology key either way.
fn satisfies_pod_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    let terms = &s.pod.required_affinity;
    let mut pods_exist = true;
    for t in terms {
        let Some(v) = labels.get(&t.topology_key) else {
            return false;
        };
        if pair_count(terms, &s.affinity, &t.topology_key, v) <= 0 {
            pods_exist = false;
        }
    }
    pods_exist || (all_empty(&s.affinity) && s.pod.matches_own_affinity)
}

fn satisfies_pod_anti_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    if all_empty(&s.anti_affinity) {
        return true;
    }
    let terms = &s.pod.required_anti_affinity;
    !terms.iter().any(|t| {
        labels
            .get(&t.topology_key)
            .is_some_and(|v| pair_count(terms, &s.anti_affinity, &t.topology_key, v) > 0)
    })
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _pod: &Pod, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return state_missing(PRE_FILTER_KEY);
        };
        let labels = node.labels();
        // Another pod arriving cannot fix a missing affinity match by preemption (removing
        // pods), hence unresolvable; anti-affinity violations can be preempted away.
        if !satisfies_pod_affinity(s, labels) {
            return Status::unresolvable(ERR_AFFINITY_RULES_NOT_MATCH);
        }
        if !satisfies_pod_anti_affinity(s, labels) {
            return Status::unschedulable(ERR_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        if s.existing_anti_affinity.any_positive(labels) {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        Status::success()
    }
}

// ---------------------------------------------------------------------------------------------
// PreScore / Score / NormalizeScore.

/// The summed weights per topology pair; read-only once written, so clones share it.
#[derive(Clone, Debug)]
struct PreScoreState(Arc<TopologyMap>);

/// What scoring needs of the incoming pod.
struct ScoringPod<'a> {
    pod: &'a Pod,
    preferred_affinity: Vec<WeightedAffinityTerm>,
    preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    namespace_labels: Option<&'a BTreeMap<String, String>>,
}

impl InterPodAffinity {
    /// Adds what one existing pod on a node with `labels` contributes (upstream's
    /// `processExistingPod`).
    fn process_existing_pod(
        &self,
        incoming: &ScoringPod<'_>,
        existing: &PodInfo,
        labels: &BTreeMap<String, String>,
        scores: &mut TopologyMap,
    ) {
        let mut add = |term: &AffinityTerm, weight: i64| {
            if let Some(v) = labels.get(&term.topology_key) {
                scores.add(&term.topology_key, v, weight);
            }
        };
        // The incoming pod's preferences about the existing pod.
        for w in &incoming.preferred_affinity {
            if term_matches(&w.term, &existing.pod, None) {
                add(&w.term, i64::from(w.weight));
            }
        }
        for w in &incoming.preferred_anti_affinity {
            if term_matches(&w.term, &existing.pod, None) {
                add(&w.term, -i64::from(w.weight));
            }
        }
        // The existing pod's rules about the incoming pod.
        let ns_labels = incoming.namespace_labels;
        let hard_weight = self.args.hard_pod_affinity_weight;
        if hard_weight > 0 {
            for t in &existing.required_affinity {
                if term_matches(t, incoming.pod, ns_labels) {
                    add(t, i64::from(hard_weight));
                }
            }
        }
        for w in &existing.preferred_affinity {
            if term_matches(&w.term, incoming.pod, ns_labels) {
                add(&w.term, i64::from(w.weight));
            }
        }
        for w in &existing.preferred_anti_affinity {
            if term_matches(&w.term, incoming.pod, ns_labels) {
                add(&w.term, -i64::from(w.weight));
            }
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if nodes.is_empty() {
            return Status::skip();
        }
        let affinity = pod_affinity(pod);
        let has_preferred =
            |terms: Option<&Vec<WeightedPodAffinityTerm>>| terms.is_some_and(|t| !t.is_empty());
        let has_constraints = has_preferred(
            affinity
                .and_then(|a| a.pod_affinity.as_ref())
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        ) || has_preferred(
            affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        );
        if !has_constraints
            && (self.args.ignore_preferred_terms_of_existing_pods
                || snapshot.have_pods_with_affinity.is_empty())
        {
            return Status::skip();
        }
        let terms = match parse_pod_terms(pod, affinity) {
            Ok(t) => t,
            Err(e) => return Status::error(format!("failed to parse pod: {e}")),
        };
        let mut preferred_affinity = terms.preferred_affinity;
        let mut preferred_anti_affinity = terms.preferred_anti_affinity;
        for w in preferred_affinity
            .iter_mut()
            .chain(preferred_anti_affinity.iter_mut())
        {
            resolve_namespaces(&mut w.term, &snapshot.namespace_labels);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let incoming = ScoringPod {
            pod,
            preferred_affinity,
            preferred_anti_affinity,
            namespace_labels: snapshot.namespace_labels.get(ns),
        };
        // Without preferred terms of its own, only existing pods with preferred terms (or
        // required affinity, when it weighs) can contribute: the memo knows which nodes hold
        // any.
        let hard = self.args.hard_pod_affinity_weight > 0;
        let relevant: Vec<&Arc<NodeInfo>> = if has_constraints {
            snapshot.nodes.iter().collect()
        } else {
            self.scoring_memo.with(
                if hard { "hard" } else { "soft" },
                &snapshot.nodes,
                |node, _| {
                    node.pods_with_affinity.iter().any(|p| {
                        (hard && !p.required_affinity.is_empty())
                            || !p.preferred_affinity.is_empty()
                            || !p.preferred_anti_affinity.is_empty()
                    })
                },
                |results, _| {
                    snapshot
                        .nodes
                        .iter()
                        .zip(results)
                        .filter(|(_, relevant)| **relevant)
                        .map(|(n, _)| n)
                        .collect()
                },
            )
        };
        let mut scores = TopologyMap::default();
        for node in relevant {
            let labels = node.labels();
            if labels.is_empty() {
                continue;
            }
            let pods = if has_constraints {
                &node.pods
            } else {
                &node.pods_with_affinity
            };
            for existing in pods {
                self.process_existing_pod(&incoming, existing, labels, &mut scores);
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState(Arc::new(scores)));
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (0, state_missing(PRE_SCORE_KEY));
        };
        (s.0.sum_for(node.labels()), Status::success())
    }

    fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for InterPodAffinity {
    /// Min-max scaling into `0..=MAX_NODE_SCORE`; all zero when every node scored the same.
    fn normalize_score(&self, state: &CycleState, _pod: &Pod, scores: &mut [NodeScore]) -> Status {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return state_missing(PRE_SCORE_KEY);
        };
        if s.0.is_empty() {
            return Status::success();
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max.saturating_sub(min);
        for s in scores.iter_mut() {
            s.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((s.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, labels: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    /// n1, n2 in zone z1, n3 in z2, n4 without a zone.
    fn nodes() -> Vec<Node> {
        vec![
            node("n1", json!({"zone": "z1", "host": "n1"})),
            node("n2", json!({"zone": "z1", "host": "n2"})),
            node("n3", json!({"zone": "z2", "host": "n3"})),
            node("n4", json!({"host": "n4"})),
        ]
    }

    fn pod(name: &str, ns: &str, labels: Value, node: Option<&str>, affinity: Value) -> Pod {
        let mut spec = json!({"containers": [{"name": "c"}], "affinity": affinity});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "uid": name, "labels": labels},
            "spec": spec
        }))
        .unwrap()
    }

    fn term(labels: Value, key: &str) -> Value {
        json!({"labelSelector": {"matchLabels": labels}, "topologyKey": key})
    }

    fn required(kind: &str, terms: Vec<Value>) -> Value {
        json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
    }

    fn preferred(kind: &str, terms: Vec<(i32, Value)>) -> Value {
        let terms: Vec<Value> = terms
            .into_iter()
            .map(|(w, t)| json!({"weight": w, "podAffinityTerm": t}))
            .collect();
        json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": terms}})
    }

    fn plugin(args: Option<Value>) -> InterPodAffinity {
        InterPodAffinity::with_args(InterPodAffinityArgs::from_json(args.as_ref()).unwrap())
    }

    /// Runs PreFilter then Filter on every node; a skipped PreFilter means every node passes.
    fn filter_all(
        pl: &InterPodAffinity,
        pod: &Pod,
        snapshot: &Snapshot,
    ) -> (CycleState, Vec<Status>) {
        let mut state = CycleState::new();
        let (_, status) = PreFilterPlugin::pre_filter(pl, &mut state, pod, snapshot);
        if status.is_skip() {
            return (state, vec![Status::success(); snapshot.len()]);
        }
        assert!(status.is_success(), "{status}");
        let out = snapshot
            .nodes
            .iter()
            .map(|n| FilterPlugin::filter(pl, &state, pod, n))
            .collect();
        (state, out)
    }

    const OK: Option<(Code, &str)> = None;
    const AFF: Option<(Code, &str)> = Some((
        Code::UnschedulableAndUnresolvable,
        ERR_AFFINITY_RULES_NOT_MATCH,
    ));
    const ANTI: Option<(Code, &str)> =
        Some((Code::Unschedulable, ERR_ANTI_AFFINITY_RULES_NOT_MATCH));
    const EXIST: Option<(Code, &str)> = Some((
        Code::Unschedulable,
        ERR_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
    ));

    fn simplify(statuses: &[Status]) -> Vec<Option<(Code, String)>> {
        statuses
            .iter()
            .map(|s| (!s.is_success()).then(|| (s.code, s.message())))
            .collect()
    }

    fn want(w: [Option<(Code, &str)>; 4]) -> Vec<Option<(Code, String)>> {
        w.iter()
            .map(|o| o.map(|(c, m)| (c, m.to_string())))
            .collect()
    }

    #[test]
    fn filter() {
        let web = || json!({"app": "web"});
        let none = json!(null);
        struct Case {
            name: &'static str,
            pod: Pod,
            existing: Vec<Pod>,
            namespaces: Vec<(&'static str, Value)>,
            want: [Option<(Code, &'static str)>; 4],
        }
        let cases = vec![
            Case {
                name: "no terms and no existing anti-affinity: all pass",
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                namespaces: vec![],
                want: [OK, OK, OK, OK],
            },
            Case {
                name: "required affinity by zone follows the matching pod",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required("podAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                namespaces: vec![],
                want: [OK, OK, AFF, AFF],
            },
            Case {
                name: "no matching pod anywhere, but the pod matches itself: first of its group",
                pod: pod(
                    "p",
                    "d",
                    web(),
                    None,
                    required("podAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({"app": "db"}),
                    Some("n1"),
                    none.clone(),
                )],
                namespaces: vec![],
                want: [OK, OK, OK, AFF],
            },
            Case {
                name: "no matching pod anywhere and the pod does not match itself",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required("podAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![],
                namespaces: vec![],
                want: [AFF, AFF, AFF, AFF],
            },
            Case {
                name: "a matching pod elsewhere disables the self-match exception",
                pod: pod(
                    "p",
                    "d",
                    web(),
                    None,
                    required("podAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![pod("e", "d", web(), Some("n3"), none.clone())],
                namespaces: vec![],
                want: [AFF, AFF, OK, AFF],
            },
            Case {
                name: "terms default to the pod's namespace",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required("podAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![pod("e", "other", web(), Some("n1"), none.clone())],
                namespaces: vec![],
                want: [AFF, AFF, AFF, AFF],
            },
            Case {
                name: "explicit namespaces",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required(
                        "podAffinity",
                        vec![json!({"labelSelector": {"matchLabels": web()},
                           "namespaces": ["other"], "topologyKey": "zone"})],
                    ),
                ),
                existing: vec![
                    pod("e", "other", web(), Some("n3"), none.clone()),
                    pod("f", "d", web(), Some("n1"), none.clone()),
                ],
                namespaces: vec![],
                want: [AFF, AFF, OK, AFF],
            },
            Case {
                name: "namespace selector resolves through the namespaces' labels",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required(
                        "podAffinity",
                        vec![json!({"labelSelector": {"matchLabels": web()},
                           "namespaceSelector": {"matchLabels": {"team": "a"}},
                           "topologyKey": "zone"})],
                    ),
                ),
                existing: vec![
                    pod("e", "other", web(), Some("n3"), none.clone()),
                    pod("f", "d", web(), Some("n1"), none.clone()),
                ],
                namespaces: vec![("other", json!({"team": "a"})), ("d", json!({"team": "b"}))],
                want: [AFF, AFF, OK, AFF],
            },
            Case {
                name: "empty namespace selector selects every namespace",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required(
                        "podAffinity",
                        vec![json!({"labelSelector": {"matchLabels": web()},
                           "namespaceSelector": {}, "topologyKey": "zone"})],
                    ),
                ),
                existing: vec![pod("e", "unlisted", web(), Some("n3"), none.clone())],
                namespaces: vec![],
                want: [AFF, AFF, OK, AFF],
            },
            Case {
                name: "a pod counts for affinity only if it matches all terms",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required(
                        "podAffinity",
                        vec![term(web(), "zone"), term(json!({"tier": "fe"}), "host")],
                    ),
                ),
                existing: vec![
                    pod(
                        "e",
                        "d",
                        json!({"app": "web", "tier": "fe"}),
                        Some("n1"),
                        none.clone(),
                    ),
                    pod("f", "d", web(), Some("n2"), none.clone()),
                ],
                namespaces: vec![],
                want: [OK, AFF, AFF, AFF],
            },
            Case {
                name: "required anti-affinity by host",
                pod: pod(
                    "p",
                    "d",
                    web(),
                    None,
                    required("podAntiAffinity", vec![term(web(), "host")]),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                namespaces: vec![],
                want: [ANTI, OK, OK, OK],
            },
            Case {
                name: "required anti-affinity by zone; nodes without the key pass",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    required("podAntiAffinity", vec![term(web(), "zone")]),
                ),
                existing: vec![pod("e", "d", web(), Some("n2"), none.clone())],
                namespaces: vec![],
                want: [ANTI, ANTI, OK, OK],
            },
            Case {
                name: "an existing pod's anti-affinity keeps the incoming pod out of its zone",
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({"app": "db"}),
                    Some("n3"),
                    required("podAntiAffinity", vec![term(web(), "zone")]),
                )],
                namespaces: vec![],
                want: [OK, OK, EXIST, OK],
            },
            Case {
                name: "an existing pod's anti-affinity that does not select the incoming pod",
                pod: pod("p", "d", json!({"app": "cache"}), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({"app": "db"}),
                    Some("n3"),
                    required("podAntiAffinity", vec![term(web(), "zone")]),
                )],
                namespaces: vec![],
                want: [OK, OK, OK, OK],
            },
            Case {
                name: "existing anti-affinity with a namespace selector on the incoming pod's namespace",
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "other",
                    json!({"app": "db"}),
                    Some("n1"),
                    required(
                        "podAntiAffinity",
                        vec![json!({
                        "labelSelector": {"matchLabels": web()},
                        "namespaceSelector": {"matchLabels": {"team": "b"}},
                        "topologyKey": "host"})],
                    ),
                )],
                namespaces: vec![("d", json!({"team": "b"}))],
                want: [EXIST, OK, OK, OK],
            },
            Case {
                name: "affinity is checked before anti-affinity",
                pod: pod(
                    "p",
                    "d",
                    json!({"app": "db"}),
                    None,
                    json!({
                    "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        [term(web(), "zone")]},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        [term(json!({"app": "cache"}), "host")]}}),
                ),
                existing: vec![
                    pod("e", "d", web(), Some("n1"), none.clone()),
                    pod("f", "d", json!({"app": "cache"}), Some("n1"), none.clone()),
                    pod("g", "d", json!({"app": "cache"}), Some("n3"), none.clone()),
                ],
                namespaces: vec![],
                want: [ANTI, OK, AFF, AFF],
            },
        ];
        let pl = &plugin(None);
        for c in cases {
            let mut snapshot = Snapshot::from_objects(nodes(), c.existing);
            for (ns, labels) in c.namespaces {
                snapshot
                    .namespace_labels
                    .insert(ns.to_string(), serde_json::from_value(labels).unwrap());
            }
            let (_, got) = filter_all(pl, &c.pod, &snapshot);
            assert_eq!(simplify(&got), want(c.want), "{}", c.name);
        }
    }

    #[test]
    fn counts_follow_snapshot_changes_across_cycles() {
        let pl = &plugin(None);
        let anti = pod(
            "p",
            "d",
            json!({"app": "web"}),
            None,
            required("podAntiAffinity", vec![term(json!({"app": "web"}), "host")]),
        );
        let before = Snapshot::from_objects(nodes(), vec![]);
        let (_, got) = filter_all(pl, &anti, &before);
        assert_eq!(simplify(&got), want([OK, OK, OK, OK]));
        // n2 gains a web pod with the same anti-affinity, between two cycles.
        let mut after = before.clone();
        let mut n2 = (*after.nodes[1]).clone();
        let existing = pod(
            "e",
            "d",
            json!({"app": "web"}),
            Some("n2"),
            required("podAntiAffinity", vec![term(json!({"app": "web"}), "host")]),
        );
        n2.add_pod(Arc::new(PodInfo::new(Arc::new(existing))));
        after.nodes[1] = Arc::new(n2);
        after.have_pods_with_affinity = vec![after.nodes[1].clone()];
        after.have_pods_with_required_anti_affinity = vec![after.nodes[1].clone()];
        let (state, got) = filter_all(pl, &anti, &after);
        assert_eq!(simplify(&got), want([OK, ANTI, OK, OK]));
        let s = state.read::<PreFilterState>(PRE_FILTER_KEY).unwrap();
        assert!(
            s.existing_anti_affinity
                .any_positive(after.nodes[1].labels())
        );
        // A plain pod is kept off n2 by the existing pod's term alone.
        let plain = pod("q", "d", json!({"app": "web"}), None, json!(null));
        let (_, got) = filter_all(pl, &plain, &after);
        assert_eq!(simplify(&got), want([OK, EXIST, OK, OK]));
        let (_, got) = filter_all(pl, &plain, &before);
        assert_eq!(simplify(&got), want([OK, OK, OK, OK]));
    }

    #[test]
    fn unparsable_terms_reject_the_pod() {
        let p = pod(
            "p",
            "d",
            json!({}),
            None,
            required(
                "podAffinity",
                vec![json!({
            "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Bad"}]},
            "topologyKey": "zone"})],
            ),
        );
        let snapshot = Snapshot::from_objects(nodes(), vec![]);
        let (_, status) =
            PreFilterPlugin::pre_filter(&plugin(None), &mut CycleState::new(), &p, &snapshot);
        assert_eq!(status.code, Code::UnschedulableAndUnresolvable);
        assert!(status.message().starts_with("parsing pod: "), "{status}");
    }

    #[test]
    fn filter_without_pre_filter_state_is_an_error() {
        let snapshot = Snapshot::from_objects(nodes(), vec![]);
        let p = pod("p", "d", json!({}), None, json!(null));
        let status =
            FilterPlugin::filter(&plugin(None), &CycleState::new(), &p, &snapshot.nodes[0]);
        assert_eq!(status.code, Code::Error);
    }

    #[test]
    fn pre_filter_extensions_track_added_and_removed_pods() {
        let web = json!({"app": "web"});
        struct Case {
            name: &'static str,
            pod: Pod,
            existing: Vec<Pod>,
            /// The existing pod (by index) preemption removes, on its node.
            remove: usize,
            after_remove: [Option<(Code, &'static str)>; 4],
        }
        let cases = vec![
            Case {
                name: "removing the pod the incoming anti-affinity selects",
                pod: pod(
                    "p",
                    "d",
                    web.clone(),
                    None,
                    required("podAntiAffinity", vec![term(web.clone(), "zone")]),
                ),
                existing: vec![pod("e", "d", web.clone(), Some("n1"), json!(null))],
                remove: 0,
                after_remove: [OK, OK, OK, OK],
            },
            Case {
                name: "removing the existing pod whose anti-affinity selects the incoming pod",
                pod: pod("p", "d", web.clone(), None, json!(null)),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n3"),
                    required("podAntiAffinity", vec![term(web.clone(), "host")]),
                )],
                remove: 0,
                after_remove: [OK, OK, OK, OK],
            },
            Case {
                name: "removing the only pod the affinity selects falls back to self-match",
                pod: pod(
                    "p",
                    "d",
                    web.clone(),
                    None,
                    required("podAffinity", vec![term(web.clone(), "zone")]),
                ),
                existing: vec![pod("e", "d", web.clone(), Some("n3"), json!(null))],
                remove: 0,
                after_remove: [OK, OK, OK, AFF],
            },
        ];
        let pl = &plugin(None);
        for c in cases {
            let snapshot = Snapshot::from_objects(nodes(), c.existing.clone());
            let (mut state, before) = filter_all(pl, &c.pod, &snapshot);
            let victim = &c.existing[c.remove];
            let on = victim.spec.as_ref().unwrap().node_name.clone().unwrap();
            let info = Arc::new(PodInfo::new(Arc::new(victim.clone())));
            let mut node = (**snapshot.get(&on).unwrap()).clone();
            node.remove_pod(info.uid());

            let mut copy = state.clone();
            assert!(pl.remove_pod(&mut copy, &c.pod, &info, &node).is_success());
            let after: Vec<Status> = snapshot
                .nodes
                .iter()
                .map(|n| {
                    if n.name() == on {
                        FilterPlugin::filter(pl, &copy, &c.pod, &node)
                    } else {
                        FilterPlugin::filter(pl, &copy, &c.pod, n)
                    }
                })
                .collect();
            assert_eq!(simplify(&after), want(c.after_remove), "{}: remove", c.name);

            // Adding it back restores the original verdicts; the original state is untouched.
            assert!(pl.add_pod(&mut copy, &c.pod, &info, &node).is_success());
            for (i, n) in snapshot.nodes.iter().enumerate() {
                assert_eq!(
                    FilterPlugin::filter(pl, &copy, &c.pod, n),
                    before[i],
                    "{}: add back",
                    c.name
                );
                assert_eq!(
                    FilterPlugin::filter(pl, &state, &c.pod, n),
                    before[i],
                    "{}: original",
                    c.name
                );
            }
            let _ = state.read_mut::<PreFilterState>(PRE_FILTER_KEY).unwrap();
        }
    }

    /// PreScore, Score on every node and NormalizeScore; `None` when PreScore skips.
    fn score_all(pl: &InterPodAffinity, pod: &Pod, snapshot: &Snapshot) -> Option<Vec<i64>> {
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
                assert!(status.is_success());
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
        let none = json!(null);
        struct Case {
            name: &'static str,
            args: Option<Value>,
            pod: Pod,
            existing: Vec<Pod>,
            want: Option<[i64; 4]>,
        }
        let cases = vec![
            Case {
                name: "no terms anywhere: skipped",
                args: None,
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                want: None,
            },
            Case {
                name: "preferred affinity by zone",
                args: None,
                pod: pod(
                    "p",
                    "d",
                    json!({}),
                    None,
                    preferred("podAffinity", vec![(5, term(web(), "zone"))]),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                want: Some([100, 100, 0, 0]),
            },
            Case {
                name: "preferred anti-affinity by host",
                args: None,
                pod: pod(
                    "p",
                    "d",
                    json!({}),
                    None,
                    preferred("podAntiAffinity", vec![(5, term(web(), "host"))]),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                want: Some([0, 100, 100, 100]),
            },
            Case {
                name: "affinity and anti-affinity combine per node",
                args: None,
                pod: pod(
                    "p",
                    "d",
                    json!({}),
                    None,
                    json!({
                    "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
                        [{"weight": 5, "podAffinityTerm": term(web(), "zone")}]},
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
                        [{"weight": 3, "podAffinityTerm": term(web(), "host")}]}}),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                // n1: 5-3, n2: 5, n3 and n4: 0.
                want: Some([40, 100, 0, 0]),
            },
            Case {
                name: "an existing pod's preferred affinity for the incoming pod",
                args: None,
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n3"),
                    preferred("podAffinity", vec![(10, term(web(), "zone"))]),
                )],
                want: Some([0, 0, 100, 0]),
            },
            Case {
                name: "an existing pod's preferred anti-affinity against the incoming pod",
                args: None,
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n1"),
                    preferred("podAntiAffinity", vec![(10, term(web(), "zone"))]),
                )],
                want: Some([0, 0, 100, 100]),
            },
            Case {
                name: "an existing pod's required affinity counts at hardPodAffinityWeight",
                args: Some(json!({"hardPodAffinityWeight": 4})),
                pod: pod(
                    "p",
                    "d",
                    web(),
                    None,
                    preferred("podAffinity", vec![(2, term(json!({"app": "x"}), "host"))]),
                ),
                existing: vec![
                    pod(
                        "e",
                        "d",
                        json!({}),
                        Some("n3"),
                        required("podAffinity", vec![term(web(), "host")]),
                    ),
                    pod("x", "d", json!({"app": "x"}), Some("n1"), none.clone()),
                ],
                // n3: 4, n1: 2.
                want: Some([50, 0, 100, 0]),
            },
            Case {
                name: "hardPodAffinityWeight 0 ignores existing pods' required affinity",
                args: Some(json!({"hardPodAffinityWeight": 0})),
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n3"),
                    required("podAffinity", vec![term(web(), "host")]),
                )],
                want: None,
            },
            Case {
                name: "ignorePreferredTermsOfExistingPods skips pods without preferences",
                args: Some(json!({"ignorePreferredTermsOfExistingPods": true})),
                pod: pod("p", "d", web(), None, none.clone()),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n3"),
                    preferred("podAffinity", vec![(10, term(web(), "zone"))]),
                )],
                want: None,
            },
            Case {
                name: "ignorePreferredTermsOfExistingPods still counts them for pods with preferences",
                args: Some(json!({"ignorePreferredTermsOfExistingPods": true})),
                pod: pod(
                    "p",
                    "d",
                    web(),
                    None,
                    preferred("podAffinity", vec![(1, term(json!({"app": "x"}), "host"))]),
                ),
                existing: vec![pod(
                    "e",
                    "d",
                    json!({}),
                    Some("n3"),
                    preferred("podAffinity", vec![(10, term(web(), "zone"))]),
                )],
                want: Some([0, 0, 100, 0]),
            },
            Case {
                name: "a topology key no node has: skipped",
                args: None,
                pod: pod(
                    "p",
                    "d",
                    json!({}),
                    None,
                    preferred("podAffinity", vec![(5, term(web(), "kind"))]),
                ),
                existing: vec![pod("e", "d", web(), Some("n1"), none.clone())],
                want: None,
            },
            Case {
                name: "a pod in another namespace does not count",
                args: None,
                pod: pod(
                    "p",
                    "d",
                    json!({}),
                    None,
                    preferred("podAffinity", vec![(5, term(web(), "zone"))]),
                ),
                existing: vec![pod("e", "other", web(), Some("n1"), none.clone())],
                want: None,
            },
        ];
        for c in cases {
            let pl = &plugin(c.args);
            let snapshot = Snapshot::from_objects(nodes(), c.existing);
            assert_eq!(
                score_all(pl, &c.pod, &snapshot),
                c.want.map(Vec::from),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn args() {
        let cases: Vec<(Option<Value>, Result<InterPodAffinityArgs, &str>)> = vec![
            (None, Ok(InterPodAffinityArgs::default())),
            (Some(json!(null)), Ok(InterPodAffinityArgs::default())),
            (
                Some(json!({"apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "InterPodAffinityArgs", "hardPodAffinityWeight": 7,
                    "ignorePreferredTermsOfExistingPods": true})),
                Ok(InterPodAffinityArgs {
                    hard_pod_affinity_weight: 7,
                    ignore_preferred_terms_of_existing_pods: true,
                }),
            ),
            (
                Some(json!({"hardPodAffinityWeight": 101})),
                Err("hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]"),
            ),
            (
                Some(json!({"hardPodAffinityWeight": -1})),
                Err("hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]"),
            ),
            (
                Some(json!({"kind": "NodeResourcesFitArgs"})),
                Err("want args of kind InterPodAffinityArgs, got \"NodeResourcesFitArgs\""),
            ),
        ];
        for (input, want) in cases {
            let got = InterPodAffinityArgs::from_json(input.as_ref());
            assert_eq!(got, want.map_err(str::to_string), "{input:?}");
        }
        let err = new(Some(&json!({"hardPodAffinityWeigth": 1})))
            .err()
            .unwrap();
        assert!(err.contains("unknown field"), "{err}");
        assert_eq!(new(None).unwrap().name(), NAME);
    }
}
