//! What one StatefulSet sync does to its pods (upstream's `updateStatefulSet`), as a pure
//! function of the set's policy and its members, so every ordering rule is tested without
//! a server.
//!
//! Rules, as upstream:
//! * Ordinals `start .. start+replicas` are wanted; others are condemned.
//! * `OrderedReady` (monotonic): missing pods are created lowest ordinal first, one at a time,
//!   each only after every lower one is Running, Ready and available; condemned pods are
//!   deleted highest ordinal first, one at a time, and only while every wanted pod is
//!   healthy. A terminating pod blocks progress until it is gone.
//! * `Parallel`: all missing pods are created and all condemned pods deleted at once.
//! * Failed or succeeded pods are deleted (to be recreated at the same ordinal).
//! * `RollingUpdate`: once the above is done, the highest-ordinal pod at or above the
//!   partition that is not at the update revision is deleted (it is recreated at the update
//!   revision), one at a time, waiting for each to be healthy again. `OnDelete` never deletes
//!   for an update: pods pick the update revision up when someone deletes them.
//! * A missing pod below the partition is recreated at the *current* revision.
//! * A set being deleted is left alone (the garbage collector removes its pods).

use std::collections::BTreeMap;

/// The set's knobs that decide the plan.
#[derive(Clone, Debug)]
pub struct Policy {
    pub replicas: i32,
    /// `spec.ordinals.start`.
    pub start: i32,
    pub parallel: bool,
    /// `Some(partition)` for `RollingUpdate`, `None` for `OnDelete`.
    pub partition: Option<i32>,
    pub deleting: bool,
}

/// One pod of the set, as the plan sees it.
#[derive(Clone, Debug)]
pub struct Member {
    pub ordinal: i32,
    pub name: String,
    /// Its `controller-revision-hash` label.
    pub revision: String,
    pub terminating: bool,
    /// Phase `Failed` or `Succeeded`.
    pub terminal: bool,
    /// Running and Ready.
    pub ready: bool,
    /// Ready for `minReadySeconds`.
    pub available: bool,
    pub identity_ok: bool,
}

impl Member {
    fn healthy(&self) -> bool {
        self.ready && !self.terminating
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    Failed,
    Condemned,
    Update,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the pod of `ordinal`, from the current revision if `current`, else the update one.
    Create {
        ordinal: i32,
        current: bool,
    },
    Delete {
        name: String,
        why: Why,
    },
    /// Restore the identity labels of the pod.
    Repair {
        name: String,
        ordinal: i32,
    },
}

/// The steps of one sync, in order.
pub fn plan(p: &Policy, members: &[Member], update_revision: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    if p.deleting {
        return steps;
    }
    let monotonic = !p.parallel;
    let end = p.start.saturating_add(p.replicas.max(0));
    let wanted = |o: i32| o >= p.start && o < end;
    let mut by_ordinal: BTreeMap<i32, &Member> = BTreeMap::new();
    for m in members {
        by_ordinal.entry(m.ordinal).or_insert(m);
    }
    let mut condemned: Vec<&Member> = by_ordinal
        .values()
        .filter(|m| !wanted(m.ordinal))
        .copied()
        .collect();
    condemned.reverse();
    // A missing wanted pod counts as unhealthy, and comes before any condemned one.
    let first_unhealthy = (p.start..end)
        .find(|o| by_ordinal.get(o).is_none_or(|m| !m.healthy()))
        .or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|m| !m.healthy())
                .map(|m| m.ordinal)
        });
    let below_partition = |o: i32| p.partition.is_some_and(|part| o - p.start < part);

    for ordinal in p.start..end {
        match by_ordinal.get(&ordinal) {
            None => {
                steps.push(Step::Create {
                    ordinal,
                    current: below_partition(ordinal),
                });
                if monotonic {
                    return steps;
                }
            }
            Some(m) if m.terminal && !m.terminating => {
                steps.push(Step::Delete {
                    name: m.name.clone(),
                    why: Why::Failed,
                });
                if monotonic {
                    return steps;
                }
            }
            Some(m) if m.terminating => {
                if monotonic {
                    return steps;
                }
            }
            Some(m) => {
                if monotonic && !(m.ready && m.available) {
                    return steps;
                }
                if !m.identity_ok {
                    steps.push(Step::Repair {
                        name: m.name.clone(),
                        ordinal,
                    });
                }
            }
        }
    }

    for m in &condemned {
        if m.terminating {
            if monotonic {
                return steps;
            }
            continue;
        }
        if monotonic && !m.ready && first_unhealthy != Some(m.ordinal) {
            return steps;
        }
        steps.push(Step::Delete {
            name: m.name.clone(),
            why: Why::Condemned,
        });
        if monotonic {
            return steps;
        }
    }

    let Some(partition) = p.partition else {
        return steps;
    };
    let lowest = p.start.saturating_add(partition.max(0));
    for ordinal in (lowest..end).rev() {
        let Some(m) = by_ordinal.get(&ordinal) else {
            return steps;
        };
        if m.revision != update_revision && !m.terminating {
            steps.push(Step::Delete {
                name: m.name.clone(),
                why: Why::Update,
            });
            return steps;
        }
        if !(m.healthy() && m.available) {
            return steps;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec` per pod: ordinal and a state letter: R ready (at revision "new"), O ready at
    /// "old", P pending, T terminating, F failed, I ready but missing identity labels.
    fn members(spec: &[(i32, char)]) -> Vec<Member> {
        spec.iter()
            .map(|&(ordinal, s)| Member {
                ordinal,
                name: format!("web-{ordinal}"),
                revision: if s == 'O' { "old" } else { "new" }.into(),
                terminating: s == 'T',
                terminal: s == 'F',
                ready: matches!(s, 'R' | 'O' | 'I' | 'T'),
                available: matches!(s, 'R' | 'O' | 'I' | 'T'),
                identity_ok: s != 'I',
            })
            .collect()
    }

    fn policy(replicas: i32, parallel: bool, partition: Option<i32>) -> Policy {
        Policy {
            replicas,
            start: 0,
            parallel,
            partition,
            deleting: false,
        }
    }

    fn create(ordinal: i32) -> Step {
        Step::Create {
            ordinal,
            current: false,
        }
    }

    fn delete(ordinal: i32, why: Why) -> Step {
        Step::Delete {
            name: format!("web-{ordinal}"),
            why,
        }
    }

    #[test]
    fn ordered_ready_goes_one_pod_at_a_time() {
        let roll = Some(0);
        type Case = (&'static str, Policy, Vec<(i32, char)>, Vec<Step>);
        let cases: Vec<Case> = vec![
            (
                "empty: create 0 only",
                policy(3, false, roll),
                vec![],
                vec![create(0)],
            ),
            (
                "0 pending: wait",
                policy(3, false, roll),
                vec![(0, 'P')],
                vec![],
            ),
            (
                "0 ready: create 1",
                policy(3, false, roll),
                vec![(0, 'R')],
                vec![create(1)],
            ),
            (
                "hole at 0 with 1 ready: create 0 first",
                policy(3, false, roll),
                vec![(1, 'R'), (2, 'R')],
                vec![create(0)],
            ),
            (
                "0 failed: delete it, nothing else",
                policy(3, false, roll),
                vec![(0, 'F'), (1, 'R')],
                vec![delete(0, Why::Failed)],
            ),
            (
                "scale down: highest first, one at a time",
                policy(1, false, roll),
                vec![(0, 'R'), (1, 'R'), (2, 'R')],
                vec![delete(2, Why::Condemned)],
            ),
            (
                "scale down waits for a terminating condemned pod",
                policy(1, false, roll),
                vec![(0, 'R'), (1, 'R'), (2, 'T')],
                vec![],
            ),
            (
                "scale down waits for unhealthy wanted pods",
                policy(1, false, roll),
                vec![(0, 'P'), (1, 'R')],
                vec![],
            ),
            (
                "an unready condemned pod blocks unless it is the first unhealthy",
                policy(1, false, roll),
                vec![(0, 'R'), (1, 'P'), (2, 'R')],
                vec![delete(2, Why::Condemned)],
            ),
            (
                "the first unhealthy condemned pod may go",
                policy(1, false, roll),
                vec![(0, 'R'), (1, 'R'), (2, 'P')],
                vec![delete(2, Why::Condemned)],
            ),
            (
                "identity repaired",
                policy(2, false, roll),
                vec![(0, 'I'), (1, 'R')],
                vec![Step::Repair {
                    name: "web-0".into(),
                    ordinal: 0,
                }],
            ),
        ];
        for (what, p, spec, want) in cases {
            assert_eq!(plan(&p, &members(&spec), "new"), want, "{what}");
        }
    }

    #[test]
    fn parallel_does_everything_at_once() {
        let p = policy(3, true, Some(0));
        assert_eq!(
            plan(&p, &members(&[(1, 'P')]), "new"),
            vec![create(0), create(2)]
        );
        let p = policy(1, true, Some(0));
        assert_eq!(
            plan(
                &p,
                &members(&[(0, 'P'), (1, 'P'), (2, 'T'), (3, 'R')]),
                "new"
            ),
            vec![delete(3, Why::Condemned), delete(1, Why::Condemned)]
        );
    }

    #[test]
    fn rolling_updates_respect_the_partition() {
        let all_old = [(0, 'O'), (1, 'O'), (2, 'O'), (3, 'O')];
        assert_eq!(
            plan(&policy(4, false, Some(0)), &members(&all_old), "new"),
            vec![delete(3, Why::Update)]
        );
        assert_eq!(
            plan(
                &policy(4, false, Some(0)),
                &members(&[(0, 'O'), (1, 'O'), (2, 'O'), (3, 'P')]),
                "new"
            ),
            vec![],
            "waits for the updated pod to be ready"
        );
        assert_eq!(
            plan(
                &policy(4, false, Some(2)),
                &members(&[(0, 'O'), (1, 'O'), (2, 'O'), (3, 'R')]),
                "new"
            ),
            vec![delete(2, Why::Update)]
        );
        assert_eq!(
            plan(
                &policy(4, false, Some(2)),
                &members(&[(0, 'O'), (1, 'O'), (2, 'R'), (3, 'R')]),
                "new"
            ),
            vec![],
            "ordinals below the partition keep the current revision"
        );
        assert_eq!(
            plan(&policy(4, false, None), &members(&all_old), "new"),
            vec![],
            "OnDelete never deletes for an update"
        );
        assert_eq!(
            plan(
                &policy(4, false, Some(2)),
                &members(&[(0, 'O'), (2, 'R'), (3, 'R')]),
                "new"
            ),
            vec![Step::Create {
                ordinal: 1,
                current: true
            }],
            "a pod below the partition is recreated at the current revision"
        );
        let mut deleting = policy(4, false, Some(0));
        deleting.deleting = true;
        assert_eq!(plan(&deleting, &members(&all_old), "new"), vec![]);
    }

    #[test]
    fn start_ordinals_shift_the_range() {
        let p = Policy {
            replicas: 2,
            start: 5,
            parallel: false,
            partition: Some(0),
            deleting: false,
        };
        assert_eq!(plan(&p, &members(&[]), "new"), vec![create(5)]);
        assert_eq!(
            plan(&p, &members(&[(0, 'R'), (5, 'R'), (6, 'R')]), "new"),
            vec![delete(0, Why::Condemned)]
        );
    }
}
