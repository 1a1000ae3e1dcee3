//! What one DaemonSet sync does (upstream's `manage` / `podsShouldBeOnNode` and
//! `rollingUpdate`), as pure functions of the nodes' verdicts and their daemon pods.
//!
//! * [`manage`]: a pod for every node that should run one and has none; failed pods deleted
//!   (to be replaced); duplicates deleted, keeping the oldest (with surge, the oldest old and
//!   the oldest updated pod); every pod deleted from a node it may no longer stay on; pods
//!   pinned to nodes that no longer exist and never scheduled, deleted.
//! * [`rolling_update`]: with `maxSurge` 0, old pods are deleted (and recreated by the next
//!   manage) while at most `maxUnavailable` nodes lack an available pod — unavailable old pods
//!   are always replaceable; with `maxSurge`, a new pod is started next to an available old
//!   one on at most `maxSurge` nodes at a time, and the old one deleted once the new one is
//!   available.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::placement::Verdict;

/// A daemon pod, as the plan sees it.
#[derive(Clone, Debug)]
pub struct DaemonPod {
    pub name: String,
    /// At the update revision.
    pub updated: bool,
    pub terminating: bool,
    pub failed: bool,
    /// `Ready=True`.
    pub ready: bool,
    /// Ready for `minReadySeconds`.
    pub available: bool,
    /// Scheduled (`nodeName` set).
    pub scheduled: bool,
}

/// A node with its verdict and daemon pods, oldest first; `verdict` is `None` for a node
/// that does not exist (pods still pinned to it).
#[derive(Clone, Debug)]
pub struct NodePods {
    pub verdict: Option<Verdict>,
    pub pods: Vec<DaemonPod>,
}

/// Pods to create (by node) and delete (by name).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
    /// Failed pods among `delete` (upstream records an Event for each).
    pub failed: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty()
    }
}

/// The creations and deletions that make each node's pods match its verdict.
pub fn manage(nodes: &BTreeMap<String, NodePods>, surge: bool) -> Plan {
    let mut plan = Plan::default();
    for (name, n) in nodes {
        let Some(v) = n.verdict else {
            // A vanished node: only pods the scheduler never bound are ours to delete (the
            // pod garbage collector handles bound ones, as upstream).
            for p in n.pods.iter().filter(|p| !p.scheduled && !p.terminating) {
                plan.delete.push(p.name.clone());
            }
            continue;
        };
        if v.should_run && n.pods.is_empty() {
            plan.create_on.push(name.clone());
        }
        if !v.should_continue_running {
            for p in n.pods.iter().filter(|p| !p.terminating) {
                plan.delete.push(p.name.clone());
            }
            continue;
        }
        let mut running = Vec::new();
        for p in n.pods.iter().filter(|p| !p.terminating) {
            if p.failed {
                plan.delete.push(p.name.clone());
                plan.failed.push(p.name.clone());
            } else {
                running.push(p);
            }
        }
        let (mut kept_old, mut kept_new) = (false, false);
        for p in running {
            let keep = if !surge {
                !std::mem::replace(&mut kept_old, true)
            } else if p.updated {
                !std::mem::replace(&mut kept_new, true)
            } else {
                !std::mem::replace(&mut kept_old, true)
            };
            if !keep {
                plan.delete.push(p.name.clone());
            }
        }
    }
    plan
}

/// `IntOrString` against `total`, percentages rounded up (upstream's
/// `GetScaledValueFromIntOrPercent(_, total, true)`); a malformed value counts as 0.
pub fn scaled(v: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => (*i).max(0),
        Some(IntOrString::String(s)) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let v = (pct.max(0) * i64::from(total.max(0)) + 99) / 100;
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

/// The one non-terminating updated and old pod of a node, or `None` if there are more
/// (then [`manage`] removes the extras first, as upstream's `findUpdatedPodsOnNode`).
fn split(pods: &[DaemonPod]) -> Option<(Option<&DaemonPod>, Option<&DaemonPod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !p.terminating) {
        let slot = if p.updated { &mut new } else { &mut old };
        if slot.replace(p).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// The next step of a rolling update; `max_surge` and `max_unavailable` already scaled.
pub fn rolling_update(
    nodes: &BTreeMap<String, NodePods>,
    max_surge: i32,
    max_unavailable: i32,
) -> Plan {
    let mut plan = Plan::default();
    let with_pods = nodes
        .iter()
        .filter(|(_, n)| n.verdict.is_some() && !n.pods.is_empty());
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for (_, n) in with_pods {
            let Some((new, old)) = split(&n.pods) else {
                continue;
            };
            match (new, old) {
                (None, None) => unavailable += 1,
                (Some(new), _) => {
                    if !new.available {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) if !old.available => {
                    // Nothing is lost by replacing what is not serving anyway.
                    plan.delete.push(old.name.clone());
                    unavailable += 1;
                }
                (None, Some(old)) => candidates.push(old.name.clone()),
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        plan.delete.extend(candidates.into_iter().take(room));
    } else {
        let mut surging = 0;
        let mut candidates = Vec::new();
        for (name, n) in with_pods {
            let Some((new, old)) = split(&n.pods) else {
                continue;
            };
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) if !old.available => plan.create_on.push(name.clone()),
                (None, Some(_)) => candidates.push(name.clone()),
                (Some(new), Some(_)) if !new.available => surging += 1,
                (Some(_), Some(old)) => plan.delete.push(old.name.clone()),
            }
        }
        let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
        plan.create_on.extend(candidates.into_iter().take(room));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Verdict = Verdict {
        should_run: true,
        should_continue_running: true,
    };
    const STAY: Verdict = Verdict {
        should_run: false,
        should_continue_running: true,
    };
    const OFF: Verdict = Verdict {
        should_run: false,
        should_continue_running: false,
    };

    /// Pods by letter: N updated available, n updated unavailable, O old available, o old
    /// unavailable, F failed, T terminating, U unscheduled old.
    fn pods(node: &str, spec: &str) -> Vec<DaemonPod> {
        spec.chars()
            .enumerate()
            .map(|(i, c)| DaemonPod {
                name: format!("{node}-{i}{c}"),
                updated: c == 'N' || c == 'n',
                terminating: c == 'T',
                failed: c == 'F',
                ready: c == 'N' || c == 'O',
                available: c == 'N' || c == 'O',
                scheduled: c != 'U',
            })
            .collect()
    }

    fn cluster(spec: &[(&str, Option<Verdict>, &str)]) -> BTreeMap<String, NodePods> {
        spec.iter()
            .map(|(n, v, p)| {
                (
                    n.to_string(),
                    NodePods {
                        verdict: *v,
                        pods: pods(n, p),
                    },
                )
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn manage_matches_pods_to_verdicts() {
        let c = cluster(&[
            ("a", Some(RUN), ""),
            ("b", Some(RUN), "O"),
            ("c", Some(RUN), "OO"),
            ("d", Some(OFF), "OT"),
            ("e", Some(STAY), "O"),
            ("f", Some(RUN), "F"),
            ("g", None, "UO"),
            ("h", Some(RUN), "T"),
            ("i", Some(STAY), ""),
        ]);
        assert_eq!(
            manage(&c, false),
            Plan {
                create_on: s(&["a"]),
                delete: s(&["c-1O", "d-0O", "f-0F", "g-0U"]),
                failed: s(&["f-0F"]),
            }
        );
        let surge = cluster(&[("a", Some(RUN), "ONNO")]);
        assert_eq!(manage(&surge, true).delete, s(&["a-2N", "a-3O"]));
        assert_eq!(manage(&surge, false).delete, s(&["a-1N", "a-2N", "a-3O"]));
    }

    #[test]
    fn rolling_without_surge_respects_max_unavailable() {
        let c = cluster(&[
            ("a", Some(RUN), "O"),
            ("b", Some(RUN), "O"),
            ("c", Some(RUN), "O"),
        ]);
        assert_eq!(rolling_update(&c, 0, 1).delete, s(&["a-0O"]));
        assert_eq!(rolling_update(&c, 0, 2).delete, s(&["a-0O", "b-0O"]));
        let c = cluster(&[
            ("a", Some(RUN), "n"),
            ("b", Some(RUN), "O"),
            ("c", Some(RUN), "o"),
        ]);
        assert_eq!(
            rolling_update(&c, 0, 1).delete,
            s(&["c-0o"]),
            "an unavailable old pod is always replaced; the available one waits"
        );
        let c = cluster(&[("a", Some(RUN), "T"), ("b", Some(RUN), "O")]);
        assert_eq!(rolling_update(&c, 0, 1), Plan::default());
        let done = cluster(&[("a", Some(RUN), "N"), ("b", Some(RUN), "N")]);
        assert!(rolling_update(&done, 0, 1).is_empty());
    }

    #[test]
    fn rolling_with_surge_starts_new_pods_first() {
        let c = cluster(&[
            ("a", Some(RUN), "O"),
            ("b", Some(RUN), "O"),
            ("c", Some(RUN), "o"),
        ]);
        assert_eq!(
            rolling_update(&c, 1, 0),
            Plan {
                create_on: s(&["c", "a"]),
                ..Plan::default()
            }
        );
        let c = cluster(&[("a", Some(RUN), "On"), ("b", Some(RUN), "O")]);
        assert_eq!(
            rolling_update(&c, 1, 0),
            Plan::default(),
            "one surge at a time"
        );
        let c = cluster(&[("a", Some(RUN), "ON"), ("b", Some(RUN), "O")]);
        assert_eq!(
            rolling_update(&c, 1, 0),
            Plan {
                create_on: s(&["b"]),
                delete: s(&["a-0O"]),
                failed: vec![],
            }
        );
    }

    #[test]
    fn percentages_round_up() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled(Some(&pct("10%")), 3, 1), 1);
        assert_eq!(scaled(Some(&pct("50%")), 3, 1), 2);
        assert_eq!(scaled(Some(&pct("0%")), 3, 1), 0);
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 3, 1), 2);
        assert_eq!(scaled(None, 3, 1), 1);
        assert_eq!(scaled(Some(&pct("x")), 3, 1), 0);
    }
}
