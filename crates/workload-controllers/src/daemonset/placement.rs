//! Which nodes a DaemonSet's pod belongs on (upstream's `NodeShouldRunDaemonPod` and the
//! daemon pod helpers of `pkg/controller/daemon/util`).
//!
//! * A node is eligible when the template's `nodeName` (if any) names it, its labels match
//!   the `nodeSelector` and the required node affinity, and the pod tolerates every
//!   `NoSchedule` and `NoExecute` taint. An untolerated `NoExecute` taint also evicts an
//!   existing pod; an untolerated `NoSchedule` one only stops new pods.
//! * Daemon pods tolerate what upstream adds automatically: not-ready and unreachable
//!   (`NoExecute`), disk, memory and PID pressure and unschedulable (`NoSchedule`), and
//!   network-unavailable for host-network pods.
//! * Each pod is pinned to its node by a required node affinity on `metadata.name`, which
//!   the scheduler honours (upstream stopped setting `nodeName` directly in 1.12).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

const NODE_NAME_FIELD: &str = "metadata.name";

/// `(key, effect)` of the tolerations every daemon pod gets; host-network pods also get
/// [`NETWORK_UNAVAILABLE`].
const DAEMON_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];
const NETWORK_UNAVAILABLE: (&str, &str) = ("node.kubernetes.io/network-unavailable", "NoSchedule");

/// Adds the automatic daemon tolerations the spec lacks (upstream's
/// `AddOrUpdateDaemonPodTolerations`; an existing toleration of the same key and effect is
/// replaced, so a user's `tolerationSeconds` on them does not survive, as upstream).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let extra = host_network.then_some(NETWORK_UNAVAILABLE);
    for &(key, effect) in DAEMON_TOLERATIONS.iter().chain(extra.iter()) {
        tolerations
            .retain(|t| !(t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect)));
        tolerations.push(Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        });
    }
}

/// Whether `t` tolerates `taint` (upstream's `Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            // An empty key with Equal is invalid; it tolerates nothing.
            !key.is_empty()
                && t.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether `node` matches `term` (its expressions and fields all hold; an empty term
/// matches nothing, as upstream).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == NODE_NAME_FIELD && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// Whether the node's labels satisfy `nodeSelector` and required node affinity.
fn selects(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|sel| {
            sel.node_selector_terms
                .iter()
                .any(|t| term_matches(t, node))
        });
    selector_ok && affinity_ok
}

/// Whether a daemon pod should run on a node, and whether an existing one may stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub should_run: bool,
    pub should_continue_running: bool,
}

/// The verdict for `node`; `spec` already carries the daemon tolerations.
pub fn evaluate(spec: &PodSpec, node: &Node) -> Verdict {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let no = Verdict {
        should_run: false,
        should_continue_running: false,
    };
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return no;
    }
    if !selects(spec, node) {
        return no;
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let untolerated = |effect: &str| {
        node.spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|t| t.effect == effect)
            .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
    };
    let evicting = untolerated("NoExecute");
    Verdict {
        should_run: !evicting && !untolerated("NoSchedule"),
        should_continue_running: !evicting,
    }
}

/// Pins `spec` to `node` with a required node affinity on `metadata.name`, replacing any
/// required terms (the controller already checked them; upstream's
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: NODE_NAME_FIELD.into(),
            operator: "In".into(),
            values: Some(vec![node.to_owned()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod is for: its `nodeName`, else the node its affinity pins it to
/// (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            match (r.key.as_str(), r.operator.as_str(), r.values.as_deref()) {
                (NODE_NAME_FIELD, "In", Some([v])) => Some(v.as_str()),
                _ => None,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn daemon_spec() -> PodSpec {
        let mut s = PodSpec::default();
        add_daemon_tolerations(&mut s);
        s
    }

    #[test]
    fn verdicts_follow_selectors_and_taints() {
        let yes = Verdict {
            should_run: true,
            should_continue_running: true,
        };
        let stay = Verdict {
            should_run: false,
            should_continue_running: true,
        };
        let no = Verdict {
            should_run: false,
            should_continue_running: false,
        };
        let mut gpu = daemon_spec();
        gpu.node_selector = Some([("gpu".to_string(), "yes".to_string())].into());
        let mut affine = daemon_spec();
        affine.affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".into(),
                            operator: "NotIn".into(),
                            values: Some(vec!["b".into()]),
                        }]),
                        match_fields: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut tolerant = daemon_spec();
        tolerant
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            });
        let cases = [
            ("plain node", daemon_spec(), node("n", &[], &[]), yes),
            (
                "selector matches",
                gpu.clone(),
                node("n", &[("gpu", "yes")], &[]),
                yes,
            ),
            ("selector misses", gpu, node("n", &[("gpu", "no")], &[]), no),
            (
                "affinity matches",
                affine.clone(),
                node("n", &[("zone", "a")], &[]),
                yes,
            ),
            (
                "affinity misses",
                affine,
                node("n", &[("zone", "b")], &[]),
                no,
            ),
            (
                "NoSchedule taint",
                daemon_spec(),
                node("n", &[], &[("dedicated", "NoSchedule")]),
                stay,
            ),
            (
                "NoExecute taint",
                daemon_spec(),
                node("n", &[], &[("dedicated", "NoExecute")]),
                no,
            ),
            (
                "tolerated taint",
                tolerant,
                node("n", &[], &[("dedicated", "NoExecute")]),
                yes,
            ),
            (
                "PreferNoSchedule ignored",
                daemon_spec(),
                node("n", &[], &[("x", "PreferNoSchedule")]),
                yes,
            ),
            (
                "automatic tolerations",
                daemon_spec(),
                node(
                    "n",
                    &[],
                    &[
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                    ],
                ),
                yes,
            ),
            (
                "not-ready NoSchedule is not tolerated",
                daemon_spec(),
                node("n", &[], &[("node.kubernetes.io/not-ready", "NoSchedule")]),
                stay,
            ),
            (
                "network-unavailable only for host network",
                daemon_spec(),
                node(
                    "n",
                    &[],
                    &[("node.kubernetes.io/network-unavailable", "NoSchedule")],
                ),
                stay,
            ),
        ];
        for (what, spec, node, want) in cases {
            assert_eq!(evaluate(&spec, &node), want, "{what}");
        }
        let mut host = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        add_daemon_tolerations(&mut host);
        assert_eq!(
            evaluate(
                &host,
                &node(
                    "n",
                    &[],
                    &[("node.kubernetes.io/network-unavailable", "NoSchedule")]
                )
            ),
            yes
        );
        let pinned = PodSpec {
            node_name: Some("other".into()),
            ..daemon_spec()
        };
        assert_eq!(evaluate(&pinned, &node("n", &[], &[])), no);
    }

    #[test]
    fn toleration_matching() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t =
            |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| Toleration {
                key: key.map(Into::into),
                operator: Some(op.into()),
                value: value.map(Into::into),
                effect: effect.map(Into::into),
                toleration_seconds: None,
            };
        assert!(tolerates(&t(Some("k"), "Equal", Some("v"), None), &taint));
        assert!(!tolerates(&t(Some("k"), "Equal", Some("w"), None), &taint));
        assert!(tolerates(&t(None, "Exists", None, None), &taint));
        assert!(!tolerates(
            &t(Some("k"), "Exists", None, Some("NoExecute")),
            &taint
        ));
        assert!(tolerates(
            &t(Some("k"), "Exists", None, Some("NoSchedule")),
            &taint
        ));
        assert!(!tolerates(&t(Some("j"), "Exists", None, None), &taint));
    }

    #[test]
    fn pods_are_pinned_and_found_by_node() {
        let mut spec = PodSpec::default();
        pin_to_node(&mut spec, "n1");
        let mut pod = Pod {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(target_node(&pod), Some("n1"));
        assert!(term_matches(
            &pod.spec
                .as_ref()
                .and_then(|s| s.affinity.clone())
                .and_then(|a| a.node_affinity)
                .and_then(|n| n.required_during_scheduling_ignored_during_execution)
                .map(|s| s.node_selector_terms[0].clone())
                .unwrap_or_default(),
            &node("n1", &[], &[])
        ));
        if let Some(s) = pod.spec.as_mut() {
            s.node_name = Some("n2".into());
        }
        assert_eq!(target_node(&pod), Some("n2"));
        assert_eq!(target_node(&Pod::default()), None);
    }
}
