//! NodeAffinity: `spec.nodeSelector` and required node affinity as a filter, preferred node
//! affinity as a score, with upstream's semantics (`pkg/scheduler/framework/plugins/nodeaffinity`
//! and `component-helpers/scheduling/corev1/nodeaffinity`).
//!
//! A node fits when it has every `nodeSelector` label and matches at least one required term.
//! A term ANDs its `matchExpressions` (label requirements: In, NotIn, Exists, DoesNotExist, Gt,
//! Lt) and `matchFields` (only `metadata.name`, In/NotIn with one value); a term with neither
//! matches nothing, and a term that does not parse is skipped (upstream's lazy errors, kept for
//! compatibility). PreFilter narrows the candidates when every term pins `metadata.name`.
//!
//! Score sums the weights of the preferred terms the node matches (plus those of the args'
//! `addedAffinity`); NormalizeScore scales the sums so the best node gets 100.
//!
//! `addedAffinity` (NodeAffinityArgs) applies to every pod of the profile: its required part
//! is checked first, with its own reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use api::selector::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1::{
    NodeAffinity as K8sNodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PreferredSchedulingTerm,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore,
    NormalizeScorePlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin,
    Snapshot, Status,
};
use crate::plugins::taint_toleration::default_normalize_score;

pub const NAME: &str = "NodeAffinity";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

/// The Filter reason when the pod's own selector or required affinity does not match.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// The Filter reason when the profile's `addedAffinity` does not match.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
/// The PreFilter reason when the terms pin disjoint sets of node names.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

/// The node field `matchFields` can select on.
const OBJECT_NAME_FIELD: &str = "metadata.name";

/// One `matchFields` requirement, parsed.
#[derive(Clone, Debug)]
struct FieldRequirement {
    key: String,
    value: String,
    equal: bool,
}

impl FieldRequirement {
    fn matches(&self, node_name: &str) -> bool {
        // Unknown fields read as empty, as upstream's `fields.Set`.
        let actual = if self.key == OBJECT_NAME_FIELD {
            node_name
        } else {
            ""
        };
        (actual == self.value) == self.equal
    }
}

/// One node selector term, parsed; a term that did not parse keeps its error.
#[derive(Clone, Debug)]
struct Term {
    labels: Option<LabelSelector>,
    fields: Option<Vec<FieldRequirement>>,
    error: Option<String>,
}

fn is_empty_term(t: &NodeSelectorTerm) -> bool {
    t.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && t.match_fields.as_ref().is_none_or(Vec::is_empty)
}

fn label_requirement(r: &NodeSelectorRequirement, path: &str) -> Result<Requirement, String> {
    let op = match r.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        other => {
            return Err(format!(
                "{path}.operator: Invalid value: {other:?}: not a valid selector operator"
            ));
        }
    };
    Requirement::new(&r.key, op, r.values.clone().unwrap_or_default())
        .map_err(|e| format!("{path}: {e}"))
}

fn field_requirement(r: &NodeSelectorRequirement, path: &str) -> Result<FieldRequirement, String> {
    let equal = match r.operator.as_str() {
        "In" => true,
        "NotIn" => false,
        other => {
            return Err(format!(
                "{path}.operator: Unsupported value: {other:?}: supported values: \"In\", \"NotIn\""
            ));
        }
    };
    match r.values.as_deref() {
        Some([value]) => Ok(FieldRequirement {
            key: r.key.clone(),
            value: value.clone(),
            equal,
        }),
        values => Err(format!(
            "{path}.values: Invalid value: {:?}: must have one element",
            values.unwrap_or_default()
        )),
    }
}

impl Term {
    fn parse(t: &NodeSelectorTerm, path: &str) -> Term {
        let mut errors = Vec::new();
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        let labels = (!exprs.is_empty()).then(|| {
            let mut sel = LabelSelector::everything();
            for (i, r) in exprs.iter().enumerate() {
                match label_requirement(r, &format!("{path}.matchExpressions[{i}]")) {
                    Ok(req) => sel.add(req),
                    Err(e) => errors.push(e),
                }
            }
            sel
        });
        let field_reqs = t.match_fields.as_deref().unwrap_or_default();
        let fields = (!field_reqs.is_empty()).then(|| {
            field_reqs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    match field_requirement(r, &format!("{path}.matchFields[{i}]")) {
                        Ok(f) => Some(f),
                        Err(e) => {
                            errors.push(e);
                            None
                        }
                    }
                })
                .collect()
        });
        Term {
            labels,
            fields,
            error: (!errors.is_empty()).then(|| errors.join(", ")),
        }
    }

    fn matches(&self, node: &NodeInfo) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Some(sel) = &self.labels
            && !sel.matches(node.labels())
        {
            return false;
        }
        let name = node.name();
        if let Some(fields) = &self.fields
            && !name.is_empty()
            && !fields.iter().all(|f| f.matches(name))
        {
            return false;
        }
        true
    }
}

/// Required terms (ORed), empty terms dropped.
fn parse_required(ns: &NodeSelector, path: &str) -> Vec<Term> {
    ns.node_selector_terms
        .iter()
        .enumerate()
        .filter(|(_, t)| !is_empty_term(t))
        .map(|(i, t)| Term::parse(t, &format!("{path}.nodeSelectorTerms[{i}]")))
        .collect()
}

/// Preferred terms with their weights; zero weights and empty terms dropped. Any parse error
/// fails the whole list, as upstream's `NewPreferredSchedulingTerms`.
fn parse_preferred(
    terms: &[PreferredSchedulingTerm],
    path: &str,
) -> Result<Vec<(Term, i64)>, String> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        if t.weight == 0 || is_empty_term(&t.preference) {
            continue;
        }
        let term = Term::parse(&t.preference, &format!("{path}[{i}].preference"));
        match &term.error {
            Some(e) => errors.push(e.clone()),
            None => out.push((term, i64::from(t.weight))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join(", "))
    }
}

fn preferred_score(terms: &[(Term, i64)], node: &NodeInfo) -> i64 {
    terms
        .iter()
        .filter(|(t, _)| t.matches(node))
        .map(|(_, w)| *w)
        .sum()
}

/// A pod's `nodeSelector` and required node affinity (upstream's `RequiredNodeAffinity`).
#[derive(Clone, Debug)]
pub struct RequiredNodeAffinity {
    node_selector: Option<BTreeMap<String, String>>,
    terms: Option<Vec<Term>>,
}

impl RequiredNodeAffinity {
    pub fn of(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let node_selector = spec
            .and_then(|s| s.node_selector.clone())
            .filter(|m| !m.is_empty());
        let terms = node_affinity(pod)
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| parse_required(ns, "requiredDuringSchedulingIgnoredDuringExecution"));
        RequiredNodeAffinity {
            node_selector,
            terms,
        }
    }

    /// Whether `node` satisfies both the selector and the required terms.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        if let Some(sel) = &self.node_selector {
            let labels = node.labels();
            if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return false;
            }
        }
        match &self.terms {
            None => true,
            Some(terms) => terms.iter().any(|t| t.matches(node)),
        }
    }
}

fn node_affinity(pod: &Pod) -> Option<&K8sNodeAffinity> {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
}

/// The pod's preferred terms; `Ok(None)` when the pod has none set.
fn pod_preferred(pod: &Pod) -> Result<Option<Vec<(Term, i64)>>, String> {
    node_affinity(pod)
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| parse_preferred(terms, "preferredDuringSchedulingIgnoredDuringExecution"))
        .transpose()
}

/// `NodeAffinityArgs` of `kubescheduler.config.k8s.io/v1`, parsed.
#[derive(Clone, Debug, Default)]
pub struct NodeAffinityArgs {
    added_required: Option<Vec<Term>>,
    added_preferred: Option<Vec<(Term, i64)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArgs {
    #[serde(default)]
    api_version: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    added_affinity: Option<K8sNodeAffinity>,
}

impl NodeAffinityArgs {
    /// Decodes and validates the args (`None` or `null`: no added affinity). Unlike a pod's
    /// own terms, a term of `addedAffinity` that does not parse is an error.
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = args.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let raw =
            RawArgs::deserialize(value).map_err(|e| format!("decoding NodeAffinityArgs: {e}"))?;
        let _ = raw.api_version;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "NodeAffinityArgs") {
            return Err(format!("want args of kind NodeAffinityArgs, got {kind:?}"));
        }
        let Some(added) = raw.added_affinity else {
            return Ok(Self::default());
        };
        let mut args = NodeAffinityArgs::default();
        let mut errors = Vec::new();
        if let Some(ns) = &added.required_during_scheduling_ignored_during_execution {
            let terms = parse_required(
                ns,
                "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            );
            errors.extend(terms.iter().filter_map(|t| t.error.clone()));
            args.added_required = Some(terms);
        }
        if let Some(terms) = added
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .filter(|t| !t.is_empty())
        {
            match parse_preferred(
                terms,
                "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution",
            ) {
                Ok(t) => args.added_preferred = Some(t),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(args)
        } else {
            Err(errors.join(", "))
        }
    }
}

/// The plugin.
pub struct NodeAffinity {
    args: NodeAffinityArgs,
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeAffinity {
        args: NodeAffinityArgs::from_json(args)?,
    }))
}

#[derive(Clone, Debug)]
struct PreScoreState {
    preferred: Option<Vec<(Term, i64)>>,
}

/// The node names the required terms pin: `None` when some term allows any name.
fn pinned_node_names(pod: &Pod) -> Option<BTreeSet<String>> {
    let terms = &node_affinity(pod)?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for t in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == OBJECT_NAME_FIELD && r.operator == "In" {
                let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                // Requirements of one term are ANDed.
                term_names = Some(match term_names {
                    None => values,
                    Some(prev) => prev.intersection(&values).cloned().collect(),
                });
            }
        }
        // Terms are ORed: one without a name pin lets every node through.
        names.extend(term_names?);
    }
    Some(names)
}

impl Plugin for NodeAffinity {
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
        // A node appearing or changing its labels.
        vec![ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let has_required = node_affinity(pod).is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .is_some()
        });
        let has_selector = pod.spec.as_ref().is_some_and(|s| s.node_selector.is_some());
        if !has_required && !has_selector && self.args.added_required.is_none() {
            // Filter has nothing to check for this pod.
            return (PreFilterResult::all(), Status::skip());
        }
        state.write(PRE_FILTER_KEY, RequiredNodeAffinity::of(pod));
        match pinned_node_names(pod) {
            None => (PreFilterResult::all(), Status::success()),
            Some(names) if names.is_empty() => (
                PreFilterResult::all(),
                Status::unresolvable(ERR_REASON_CONFLICT),
            ),
            Some(names) => (PreFilterResult::only(names), Status::success()),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        if let Some(terms) = &self.args.added_required
            && !terms.iter().any(|t| t.matches(node))
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        let matches = match state.read::<RequiredNodeAffinity>(PRE_FILTER_KEY) {
            Some(required) => required.matches(node),
            // PreFilter did not run: compute the same from the pod.
            None => RequiredNodeAffinity::of(pod).matches(node),
        };
        if matches {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        if nodes.is_empty() {
            return Status::success();
        }
        let preferred = match pod_preferred(pod) {
            Ok(p) => p,
            Err(e) => return Status::error(format!("parsing preferred node affinity: {e}")),
        };
        if preferred.is_none() && self.args.added_preferred.is_none() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, PreScoreState { preferred });
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let mut count = self
            .args
            .added_preferred
            .as_deref()
            .map_or(0, |t| preferred_score(t, node));
        let own = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => s
                .preferred
                .as_deref()
                .map_or(0, |t| preferred_score(t, node)),
            // PreScore did not run: compute the same from the pod.
            None => match pod_preferred(pod) {
                Ok(p) => p.as_deref().map_or(0, |t| preferred_score(t, node)),
                Err(e) => {
                    return (
                        0,
                        Status::error(format!("parsing preferred node affinity: {e}")),
                    );
                }
            },
        };
        count = count.saturating_add(own);
        (count, Status::success())
    }

    fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for NodeAffinity {
    fn normalize_score(&self, _state: &CycleState, _pod: &Pod, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{Value, json};

    fn node(name: &str, labels: Value) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap(),
        ))
    }

    fn pod(spec: Value) -> Pod {
        let mut p = json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}]}
        });
        for (k, v) in spec.as_object().unwrap() {
            p["spec"][k] = v.clone();
        }
        serde_json::from_value(p).unwrap()
    }

    fn required(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }}})
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> Value {
        json!({"key": key, "operator": op, "values": values})
    }

    fn run_filter(plugin: &NodeAffinity, p: &Pod, n: &NodeInfo) -> Status {
        let mut state = CycleState::new();
        let (_, pre) = PreFilterPlugin::pre_filter(plugin, &mut state, p, &Snapshot::default());
        if pre.is_skip() {
            return Status::success();
        }
        if !pre.is_success() {
            return pre;
        }
        let with_state = FilterPlugin::filter(plugin, &state, p, n);
        // Filter without PreFilter agrees.
        assert_eq!(
            FilterPlugin::filter(plugin, &CycleState::new(), p, n).code,
            with_state.code
        );
        with_state
    }

    #[test]
    fn filter() {
        let labels = json!({"zone": "a", "gpu": "true", "cores": "8"});
        let cases = [
            ("nothing required", json!({}), true),
            (
                "selector matches",
                json!({"nodeSelector": {"zone": "a"}}),
                true,
            ),
            (
                "selector mismatch",
                json!({"nodeSelector": {"zone": "b"}}),
                false,
            ),
            (
                "selector missing label",
                json!({"nodeSelector": {"zone": "a", "rack": "1"}}),
                false,
            ),
            (
                "In",
                required(json!([{"matchExpressions": [expr("zone", "In", &["a", "b"])]}])),
                true,
            ),
            (
                "NotIn",
                required(json!([{"matchExpressions": [expr("zone", "NotIn", &["a"])]}])),
                false,
            ),
            (
                "NotIn on a missing label",
                required(json!([{"matchExpressions": [expr("rack", "NotIn", &["1"])]}])),
                true,
            ),
            (
                "Exists",
                required(json!([{"matchExpressions": [expr("gpu", "Exists", &[])]}])),
                true,
            ),
            (
                "DoesNotExist",
                required(json!([{"matchExpressions": [expr("gpu", "DoesNotExist", &[])]}])),
                false,
            ),
            (
                "Gt",
                required(json!([{"matchExpressions": [expr("cores", "Gt", &["4"])]}])),
                true,
            ),
            (
                "Lt",
                required(json!([{"matchExpressions": [expr("cores", "Lt", &["4"])]}])),
                false,
            ),
            (
                "expressions of a term are ANDed",
                required(json!([{"matchExpressions": [
                    expr("zone", "In", &["a"]), expr("gpu", "In", &["false"])
                ]}])),
                false,
            ),
            (
                "terms are ORed",
                required(json!([
                    {"matchExpressions": [expr("zone", "In", &["b"])]},
                    {"matchExpressions": [expr("gpu", "In", &["true"])]}
                ])),
                true,
            ),
            (
                "an empty term matches nothing",
                required(json!([{}])),
                false,
            ),
            ("no terms match nothing", required(json!([])), false),
            (
                "a bad term is skipped, the next still counts",
                required(json!([
                    {"matchExpressions": [expr("zone", "Bogus", &["a"])]},
                    {"matchExpressions": [expr("zone", "In", &["a"])]}
                ])),
                true,
            ),
            (
                "Gt needs an integer",
                required(json!([{"matchExpressions": [expr("cores", "Gt", &["x"])]}])),
                false,
            ),
            (
                "matchFields name",
                required(json!([{"matchFields": [expr("metadata.name", "In", &["n1"])]}])),
                true,
            ),
            (
                "matchFields NotIn name",
                required(json!([{"matchFields": [expr("metadata.name", "NotIn", &["n1"])]}])),
                false,
            ),
            (
                "matchFields and expressions AND",
                required(json!([{
                    "matchFields": [expr("metadata.name", "In", &["n1"])],
                    "matchExpressions": [expr("zone", "In", &["b"])]
                }])),
                false,
            ),
            (
                "selector and affinity both apply",
                {
                    let mut v =
                        required(json!([{"matchExpressions": [expr("zone", "In", &["a"])]}]));
                    v["nodeSelector"] = json!({"gpu": "false"});
                    v
                },
                false,
            ),
        ];
        let plugin = NodeAffinity {
            args: NodeAffinityArgs::default(),
        };
        let n = node("n1", labels);
        for (name, spec, fits) in cases {
            let s = run_filter(&plugin, &pod(spec), &n);
            if fits {
                assert!(s.is_success(), "{name}: {s}");
            } else {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                assert_eq!(s.message(), ERR_REASON_POD, "{name}");
            }
        }
    }

    #[test]
    fn pre_filter_narrows_by_node_name() {
        let name_in = |names: &[&str]| expr("metadata.name", "In", names);
        let cases = [
            ("no affinity: skip", json!({}), None, Code::Skip),
            (
                "selector only",
                json!({"nodeSelector": {"a": "b"}}),
                None,
                Code::Success,
            ),
            (
                "one term pinning names",
                required(json!([{"matchFields": [name_in(&["n1", "n2"])]}])),
                Some(vec!["n1", "n2"]),
                Code::Success,
            ),
            (
                "terms union",
                required(json!([
                    {"matchFields": [name_in(&["n1"])]},
                    {"matchFields": [name_in(&["n3"])]}
                ])),
                Some(vec!["n1", "n3"]),
                Code::Success,
            ),
            (
                "requirements in a term intersect",
                required(
                    json!([{"matchFields": [name_in(&["n1", "n2"]), name_in(&["n2", "n3"])]}]),
                ),
                Some(vec!["n2"]),
                Code::Success,
            ),
            (
                "a term without a name pin allows all",
                required(json!([
                    {"matchFields": [name_in(&["n1"])]},
                    {"matchExpressions": [expr("zone", "In", &["a"])]}
                ])),
                None,
                Code::Success,
            ),
            (
                "conflicting pins",
                required(json!([{"matchFields": [name_in(&["n1"]), name_in(&["n2"])]}])),
                None,
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        let plugin = NodeAffinity {
            args: NodeAffinityArgs::default(),
        };
        for (name, spec, want_names, code) in cases {
            let (result, s) = PreFilterPlugin::pre_filter(
                &plugin,
                &mut CycleState::new(),
                &pod(spec),
                &Snapshot::default(),
            );
            assert_eq!(s.code, code, "{name}: {s}");
            if code == Code::UnschedulableAndUnresolvable {
                assert_eq!(s.message(), ERR_REASON_CONFLICT);
            }
            assert_eq!(
                result.node_names,
                want_names.map(|v| v.into_iter().map(String::from).collect()),
                "{name}"
            );
        }
    }

    #[test]
    fn added_affinity() {
        let args = json!({"addedAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [expr("pool", "In", &["batch"])]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "preference": {"matchExpressions": [expr("fast", "Exists", &[])]}}
            ]
        }});
        let plugin = NodeAffinity {
            args: NodeAffinityArgs::from_json(Some(&args)).unwrap(),
        };
        let batch_fast = node("a", json!({"pool": "batch", "fast": "1"}));
        let batch = node("b", json!({"pool": "batch"}));
        let web = node("c", json!({"pool": "web"}));
        let p = pod(json!({}));
        // The pod has no affinity, but the added one makes PreFilter run.
        let mut state = CycleState::new();
        let (_, s) = PreFilterPlugin::pre_filter(&plugin, &mut state, &p, &Snapshot::default());
        assert!(s.is_success());
        assert!(FilterPlugin::filter(&plugin, &state, &p, &batch).is_success());
        let s = FilterPlugin::filter(&plugin, &state, &p, &web);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_ENFORCED);
        // The pod's own selector is checked after the enforced one.
        let picky = pod(json!({"nodeSelector": {"fast": "1"}}));
        assert_eq!(
            FilterPlugin::filter(&plugin, &CycleState::new(), &picky, &batch).message(),
            ERR_REASON_POD
        );
        // Added preferred terms score even for a pod without any.
        let nodes = [Arc::new(batch_fast.clone()), Arc::new(batch.clone())];
        let mut state = CycleState::new();
        assert!(
            PreScorePlugin::pre_score(&plugin, &mut state, &p, &nodes, &Snapshot::default())
                .is_success()
        );
        assert_eq!(ScorePlugin::score(&plugin, &state, &p, &batch_fast).0, 5);
        assert_eq!(ScorePlugin::score(&plugin, &state, &p, &batch).0, 0);
    }

    #[test]
    fn score_and_normalize() {
        let spec = json!({"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 2, "preference": {"matchExpressions": [expr("zone", "In", &["a"])]}},
                {"weight": 5, "preference": {"matchExpressions": [expr("ssd", "Exists", &[])]}},
                {"weight": 0, "preference": {"matchExpressions": [expr("zone", "Exists", &[])]}},
                {"weight": 9, "preference": {}},
                {"weight": 1, "preference": {"matchFields": [expr("metadata.name", "In", &["n3"])]}}
            ]
        }}});
        let p = pod(spec);
        let nodes: Vec<Arc<NodeInfo>> = [
            ("n1", json!({"zone": "a"})),
            ("n2", json!({"zone": "a", "ssd": "y"})),
            ("n3", json!({"zone": "b"})),
            ("n4", json!({})),
        ]
        .into_iter()
        .map(|(n, l)| Arc::new(node(n, l)))
        .collect();
        let plugin = NodeAffinity {
            args: NodeAffinityArgs::default(),
        };
        let mut state = CycleState::new();
        assert!(
            PreScorePlugin::pre_score(&plugin, &mut state, &p, &nodes, &Snapshot::default())
                .is_success()
        );
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_string(),
                score: ScorePlugin::score(&plugin, &state, &p, n).0,
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [2, 7, 1, 0]
        );
        assert_eq!(
            ScorePlugin::score(&plugin, &CycleState::new(), &p, &nodes[1]).0,
            7
        );
        NormalizeScorePlugin::normalize_score(&plugin, &state, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [28, 100, 14, 0]
        );

        // No preferred terms: skip.
        let plain = pod(json!({}));
        assert!(
            PreScorePlugin::pre_score(
                &plugin,
                &mut CycleState::new(),
                &plain,
                &nodes,
                &Snapshot::default()
            )
            .is_skip()
        );
        // A preferred term that does not parse is an error.
        let bad = pod(json!({"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [expr("a", "Gt", &["1", "2"])]}}
            ]
        }}}));
        let s = PreScorePlugin::pre_score(
            &plugin,
            &mut CycleState::new(),
            &bad,
            &nodes,
            &Snapshot::default(),
        );
        assert_eq!(s.code, Code::Error);
    }

    #[test]
    fn args() {
        let cases = [
            (None, None),
            (Some(json!(null)), None),
            (Some(json!({})), None),
            (Some(json!({"addedAffinity": {}})), None),
            (
                Some(
                    json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [expr("a", "Bogus", &[])]}]
                    }}}),
                ),
                Some(
                    "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator",
                ),
            ),
            (
                Some(
                    json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "preference": {"matchFields": [expr("metadata.name", "In", &["a", "b"])]}}
                    ]}}),
                ),
                Some("must have one element"),
            ),
            (Some(json!({"addedAffinty": {}})), Some("unknown field")),
            (
                Some(json!({"kind": "Other"})),
                Some("want args of kind NodeAffinityArgs"),
            ),
        ];
        for (args, want_err) in cases {
            match (new(args.as_ref()), want_err) {
                (Ok(p), None) => assert_eq!(p.name(), NAME),
                (Err(e), Some(w)) => assert!(e.contains(w), "{e} should contain {w}"),
                (Ok(_), Some(w)) => panic!("{args:?}: want error {w}"),
                (Err(e), None) => panic!("{args:?}: {e}"),
            }
        }
    }
}
