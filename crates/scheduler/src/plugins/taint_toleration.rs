//! TaintToleration: a node's `NoSchedule`/`NoExecute` taints keep off pods that do not
//! tolerate them, and its `PreferNoSchedule` taints make it less attractive, with upstream's
//! semantics (`pkg/scheduler/framework/plugins/tainttoleration`).
//!
//! Filter rejects (unresolvably) at the first untolerated hard taint in the node's order.
//! PreScore keeps the pod's tolerations that can apply to `PreferNoSchedule` (that effect or
//! none); Score counts the node's `PreferNoSchedule` taints none of them tolerates, and
//! NormalizeScore turns the counts around so the node with the fewest scores 100.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, NodeScore,
    NormalizeScorePlugin, Plugin, PreScorePlugin, ScorePlugin, Snapshot, Status,
};
use crate::plugins::node_name::expect_no_args;

pub const NAME: &str = "TaintToleration";

const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

pub const EFFECT_NO_SCHEDULE: &str = "NoSchedule";
pub const EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const EFFECT_NO_EXECUTE: &str = "NoExecute";

/// The plugin; it has no args.
pub struct TaintToleration;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(TaintToleration))
}

/// Whether one toleration tolerates `taint` (upstream's `Toleration.ToleratesTaint`): an
/// empty effect matches every effect, an empty key every key (with `Exists`), and the
/// operator is `Equal` (values must be equal) when unset.
pub fn toleration_tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| toleration_tolerates(t, taint))
}

/// The pod's tolerations (none when unset).
pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// The node's taints (none when unset).
pub fn node_taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// The first taint of `taints` that `consider` selects and `tolerations` do not tolerate
/// (upstream's `FindMatchingUntoleratedTaint`).
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    consider: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .find(|t| consider(t) && !tolerations_tolerate(tolerations, t))
}

/// The Filter reason for an untolerated taint, exactly as upstream words it.
pub fn untolerated_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or_default()
    )
}

/// What PreScore keeps for Score: the tolerations that may tolerate `PreferNoSchedule`.
#[derive(Clone, Debug, Default)]
struct PreScoreState {
    tolerations: Vec<Toleration>,
}

fn prefer_no_schedule_tolerations(pod: &Pod) -> Vec<Toleration> {
    pod_tolerations(pod)
        .iter()
        .filter(|t| {
            let effect = t.effect.as_deref().unwrap_or_default();
            effect.is_empty() || effect == EFFECT_PREFER_NO_SCHEDULE
        })
        .cloned()
        .collect()
}

fn count_intolerable_prefer_no_schedule(taints: &[Taint], tolerations: &[Toleration]) -> i64 {
    let n = taints
        .iter()
        .filter(|t| t.effect == EFFECT_PREFER_NO_SCHEDULE && !tolerations_tolerate(tolerations, t))
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Upstream's `helper.DefaultNormalizeScore`: scales scores so the highest becomes
/// `max_priority` (integer division), then optionally reverses them; all-zero scores stay zero
/// (or all become `max_priority` when reversing).
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [NodeScore]) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max_priority;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max_priority.saturating_mul(s.score) / max;
        s.score = if reverse {
            max_priority - scaled
        } else {
            scaled
        };
    }
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
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
        // A node losing a taint (or a new node), or the pod gaining a toleration.
        vec![
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::PodUpdate,
        ]
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
        let hard = |t: &Taint| t.effect == EFFECT_NO_SCHEDULE || t.effect == EFFECT_NO_EXECUTE;
        match find_untolerated_taint(node_taints(node), pod_tolerations(pod), hard) {
            None => Status::success(),
            Some(taint) => Status::unresolvable(untolerated_reason(taint)),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                tolerations: prefer_no_schedule_tolerations(pod),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let count = match state.read::<PreScoreState>(PRE_SCORE_KEY) {
            Some(s) => count_intolerable_prefer_no_schedule(node_taints(node), &s.tolerations),
            // PreScore did not run (disabled): compute the same from the pod.
            None => count_intolerable_prefer_no_schedule(
                node_taints(node),
                &prefer_no_schedule_tolerations(pod),
            ),
        };
        (count, Status::success())
    }

    fn normalize(&self) -> Option<&dyn NormalizeScorePlugin> {
        Some(self)
    }
}

impl NormalizeScorePlugin for TaintToleration {
    fn normalize_score(&self, _state: &CycleState, _pod: &Pod, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{Value, json};

    fn taint(key: &str, value: &str, effect: &str) -> Value {
        json!({"key": key, "value": value, "effect": effect})
    }

    fn node(name: &str, taints: Vec<Value>) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"taints": taints}
            }))
            .unwrap(),
        ))
    }

    fn pod(tolerations: Vec<Value>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}
        }))
        .unwrap()
    }

    #[test]
    fn toleration_matching() {
        let t: Taint = serde_json::from_value(taint("k", "v", "NoSchedule")).unwrap();
        let cases = [
            (
                json!({"key": "k", "value": "v", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "k", "operator": "Equal", "value": "v"}), true),
            (json!({"key": "k", "value": "other"}), false),
            (json!({"key": "k", "operator": "Exists"}), true),
            (
                json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
            (json!({"operator": "Exists"}), true),
            (json!({"operator": "Exists", "effect": "NoSchedule"}), true),
            (json!({"key": "other", "operator": "Exists"}), false),
            // An empty key with Equal matches any key with an equal value.
            (json!({"value": "v"}), true),
            (
                json!({"key": "k", "operator": "Bogus", "value": "v"}),
                false,
            ),
        ];
        for (tol, want) in cases {
            let tol: Toleration = serde_json::from_value(tol.clone()).unwrap();
            assert_eq!(toleration_tolerates(&tol, &t), want, "{tol:?}");
        }
    }

    #[test]
    fn filter() {
        let cases = [
            ("no taints", vec![], vec![], None),
            (
                "untolerated NoSchedule",
                vec![taint("dedicated", "gpu", "NoSchedule")],
                vec![],
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "empty value prints empty",
                vec![taint(
                    "node-role.kubernetes.io/control-plane",
                    "",
                    "NoSchedule",
                )],
                vec![],
                Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (
                "tolerated",
                vec![taint("dedicated", "gpu", "NoSchedule")],
                vec![
                    json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
                ],
                None,
            ),
            (
                "PreferNoSchedule never filters",
                vec![taint("a", "b", "PreferNoSchedule")],
                vec![],
                None,
            ),
            (
                "first untolerated hard taint is reported",
                vec![
                    taint("a", "1", "PreferNoSchedule"),
                    taint("b", "2", "NoSchedule"),
                    taint("c", "3", "NoExecute"),
                ],
                vec![json!({"key": "b", "operator": "Exists"})],
                Some("node(s) had untolerated taint {c: 3}"),
            ),
            (
                "tolerate everything",
                vec![taint("b", "2", "NoSchedule"), taint("c", "3", "NoExecute")],
                vec![json!({"operator": "Exists"})],
                None,
            ),
        ];
        for (name, taints, tolerations, want) in cases {
            let s = FilterPlugin::filter(
                &TaintToleration,
                &CycleState::new(),
                &pod(tolerations),
                &node("n", taints),
            );
            match want {
                None => assert!(s.is_success(), "{name}: {s}"),
                Some(reason) => {
                    assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(s.reasons, vec![reason.to_string()], "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        let nodes = [
            node("clean", vec![]),
            node("one", vec![taint("a", "1", "PreferNoSchedule")]),
            node(
                "two",
                vec![
                    taint("a", "1", "PreferNoSchedule"),
                    taint("b", "2", "PreferNoSchedule"),
                    taint("hard", "x", "NoSchedule"),
                ],
            ),
            node("tolerated", vec![taint("c", "3", "PreferNoSchedule")]),
        ];
        let p = pod(vec![
            json!({"key": "c", "operator": "Exists"}),
            // Not a PreferNoSchedule toleration: ignored when scoring.
            json!({"key": "a", "operator": "Exists", "effect": "NoSchedule"}),
        ]);
        let mut state = CycleState::new();
        let snapshot = Snapshot::default();
        assert!(
            PreScorePlugin::pre_score(&TaintToleration, &mut state, &p, &[], &snapshot)
                .is_success()
        );
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_string(),
                score: ScorePlugin::score(&TaintToleration, &state, &p, n).0,
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        // Without PreScore the same counts come out.
        assert_eq!(
            ScorePlugin::score(&TaintToleration, &CycleState::new(), &p, &nodes[2]).0,
            2
        );
        NormalizeScorePlugin::normalize_score(&TaintToleration, &state, &p, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [100, 50, 0, 100]
        );
    }

    #[test]
    fn normalize() {
        let cases: [(&[i64], bool, &[i64]); 5] = [
            (&[0, 0], true, &[100, 100]),
            (&[0, 0], false, &[0, 0]),
            (&[1, 2, 3], false, &[33, 66, 100]),
            (&[1, 2, 3], true, &[67, 34, 0]),
            (&[], false, &[]),
        ];
        for (input, reverse, want) in cases {
            let mut scores: Vec<NodeScore> = input
                .iter()
                .map(|&score| NodeScore {
                    name: String::new(),
                    score,
                })
                .collect();
            default_normalize_score(100, reverse, &mut scores);
            assert_eq!(
                scores.iter().map(|s| s.score).collect::<Vec<_>>(),
                want,
                "{input:?} reverse={reverse}"
            );
        }
    }
}
