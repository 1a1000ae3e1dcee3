//! The node taints the node lifecycle controller owns, and how pods tolerate taints.
//!
//! Two families, as upstream:
//! * NoSchedule taints that mirror node conditions (upstream's TaintNodesByCondition):
//!   `not-ready` / `unreachable` for Ready False / Unknown, `memory-pressure`,
//!   `disk-pressure`, `pid-pressure`, `network-unavailable` for those conditions being True,
//!   and `unschedulable` for `spec.unschedulable`.
//! * NoExecute taints that evict: `not-ready` for Ready False, `unreachable` for Ready
//!   Unknown, neither for Ready True (and left alone while the node has no Ready condition).
//!
//! [`desired_taints`] is pure: it takes a node's taints and conditions and returns the list
//! the node should carry, touching only the (key, effect) pairs above and keeping every other
//! taint — and the `timeAdded` of taints that stay — exactly as it was.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Keys of the NoSchedule taints that follow conditions.
const CONDITION_KEYS: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
    UNSCHEDULABLE,
];

/// Keys of the NoExecute taints that follow the Ready condition.
const EVICTION_KEYS: [&str; 2] = [NOT_READY, UNREACHABLE];

fn is_managed(t: &Taint) -> bool {
    match t.effect.as_str() {
        NO_SCHEDULE => CONDITION_KEYS.contains(&t.key.as_str()),
        NO_EXECUTE => EVICTION_KEYS.contains(&t.key.as_str()),
        _ => false,
    }
}

/// The node's condition of type `type_`.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

/// The status (`True`, `False`, `Unknown`) of the node's Ready condition, if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

/// The (key, effect) pairs the conditions and `spec.unschedulable` call for.
fn wanted(node: &Node) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match ready_status(node) {
        Some("False") => out.extend([(NOT_READY, NO_SCHEDULE), (NOT_READY, NO_EXECUTE)]),
        Some("Unknown") => out.extend([(UNREACHABLE, NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE)]),
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition(node, type_).is_some_and(|c| c.status == "True") {
            out.push((key, NO_SCHEDULE));
        }
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        out.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    out
}

/// The taints `node` should carry at `now`; `None` when they are already right.
///
/// Without a Ready condition the NoExecute taints are left as they are (upstream only acts
/// on the Ready condition once the kubelet, or this controller, has posted one).
pub fn desired_taints(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = wanted(node);
    let has_ready = ready_status(node).is_some();
    let keep = |t: &Taint| {
        !is_managed(t)
            || (t.effect == NO_EXECUTE && !has_ready)
            || wanted.iter().any(|(k, e)| t.key == *k && t.effect == *e)
    };
    let mut out: Vec<Taint> = current.iter().filter(|t| keep(t)).cloned().collect();
    for (key, effect) in &wanted {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: (*key).to_owned(),
                effect: (*effect).to_owned(),
                value: None,
                // Upstream stamps the NoExecute taints it adds (the taint manager and
                // `kubectl describe` show when eviction began); condition taints carry none.
                time_added: (*effect == NO_EXECUTE).then_some(Time(now)),
            });
        }
    }
    (out != current).then_some(out)
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        // An empty key with `Exists` tolerates everything; validation refuses it otherwise.
        return operator == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match operator {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The NoExecute taints of `node`.
pub fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == NO_EXECUTE)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn node(conds: &[(&str, &str)], taints: &[(&str, &str)], unschedulable: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: (!taints.is_empty()).then(|| {
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: (*k).into(),
                            effect: (*e).into(),
                            ..Default::default()
                        })
                        .collect()
                }),
                unschedulable: unschedulable.then_some(true),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(
                    conds
                        .iter()
                        .map(|(t, s)| NodeCondition {
                            type_: (*t).into(),
                            status: (*s).into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pairs(ts: &[Taint]) -> Vec<String> {
        ts.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    type Pairs<'a> = &'a [(&'a str, &'a str)];
    type Case<'a> = (Pairs<'a>, Pairs<'a>, bool, Option<&'a [&'a str]>);

    #[test]
    fn taints_follow_conditions() {
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        // (conditions, taints, unschedulable, the taints wanted or None for no change)
        let cases: &[Case] = &[
            // Healthy and untainted: nothing to do.
            (&[("Ready", "True")], &[], false, None),
            // Unreachable: both unreachable taints.
            (
                &[("Ready", "Unknown")],
                &[],
                false,
                Some(&[
                    "node.kubernetes.io/unreachable:NoSchedule",
                    "node.kubernetes.io/unreachable:NoExecute",
                ]),
            ),
            // Not ready after unreachable: swapped; someone else's taint stays first.
            (
                &[("Ready", "False")],
                &[
                    ("dedicated", "NoSchedule"),
                    (UNREACHABLE, NO_EXECUTE),
                    (UNREACHABLE, NO_SCHEDULE),
                ],
                false,
                Some(&[
                    "dedicated:NoSchedule",
                    "node.kubernetes.io/not-ready:NoSchedule",
                    "node.kubernetes.io/not-ready:NoExecute",
                ]),
            ),
            // Recovered: managed taints go, a user's NoExecute taint with a managed key but
            // another effect stays.
            (
                &[("Ready", "True"), ("DiskPressure", "False")],
                &[
                    (NOT_READY, NO_EXECUTE),
                    (NOT_READY, "PreferNoSchedule"),
                    (DISK_PRESSURE, NO_SCHEDULE),
                ],
                false,
                Some(&["node.kubernetes.io/not-ready:PreferNoSchedule"]),
            ),
            // Pressure and cordon.
            (
                &[
                    ("Ready", "True"),
                    ("MemoryPressure", "True"),
                    ("PIDPressure", "True"),
                    ("NetworkUnavailable", "True"),
                ],
                &[],
                true,
                Some(&[
                    "node.kubernetes.io/memory-pressure:NoSchedule",
                    "node.kubernetes.io/pid-pressure:NoSchedule",
                    "node.kubernetes.io/network-unavailable:NoSchedule",
                    "node.kubernetes.io/unschedulable:NoSchedule",
                ]),
            ),
            // No Ready condition: NoExecute taints are left alone.
            (&[], &[(UNREACHABLE, NO_EXECUTE)], false, None),
        ];
        for (i, (conds, taints, unsched, want)) in cases.iter().enumerate() {
            let got = desired_taints(&node(conds, taints, *unsched), now);
            assert_eq!(
                got.as_deref().map(pairs),
                want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                "case {i}"
            );
        }
    }

    #[test]
    fn only_new_no_execute_taints_are_stamped_and_old_stamps_stay() {
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let got = desired_taints(&node(&[("Ready", "Unknown")], &[], false), now).unwrap();
        assert_eq!(got[0].time_added, None);
        assert_eq!(got[1].time_added, Some(Time(now)));
        let mut n = node(&[("Ready", "Unknown")], &[], false);
        n.spec.as_mut().unwrap().taints = Some(got.clone());
        let later: Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(desired_taints(&n, later), None);
    }

    fn tol(
        key: Option<&str>,
        op: Option<&str>,
        value: Option<&str>,
        effect: Option<&str>,
    ) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        }
    }

    #[test]
    fn toleration_matching_follows_upstream() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: NO_EXECUTE.into(),
            time_added: None,
        };
        let cases = [
            (tol(None, Some("Exists"), None, None), true),
            (tol(None, Some("Exists"), None, Some("NoSchedule")), false),
            (
                tol(Some("k"), Some("Exists"), None, Some("NoExecute")),
                true,
            ),
            (tol(Some("k"), None, Some("v"), None), true),
            (tol(Some("k"), Some("Equal"), Some("w"), None), false),
            (tol(Some("other"), Some("Exists"), None, None), false),
            (tol(None, None, None, None), false),
        ];
        for (i, (t, want)) in cases.iter().enumerate() {
            assert_eq!(tolerates(t, &taint), *want, "case {i}");
        }
    }
}
