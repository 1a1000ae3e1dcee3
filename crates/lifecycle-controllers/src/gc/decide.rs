//! What to do with one object, given what its owners turned out to be on live reads
//! (upstream's `attemptToDeleteItem` decision table, kept free of I/O).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::graph::{FOREGROUND, ORPHAN};

/// An owner reference, resolved by a live read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists with this UID and is not waiting for its dependents.
    Solid,
    /// The owner does not exist (404, or the name now belongs to another UID).
    Dangling,
    /// The owner exists and is in foreground deletion, waiting for its dependents.
    Waiting,
    /// The owner's kind is not served (yet: a CRD may be coming); look again later.
    Unresolvable,
    /// A cluster-scoped object names a namespaced kind as its owner. Such a reference can never
    /// resolve; upstream leaves the object alone rather than retry forever.
    Invalid,
}

/// The propagation policy of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Owned by something that exists: leave it.
    Keep,
    /// Owned by something that exists, but also names owners that are gone or waiting for
    /// their dependents: drop those references (so the object neither keeps pointing at
    /// nothing nor blocks an owner it will outlive).
    RemoveReferences(Vec<String>),
    /// Every owner is gone or waiting for dependents, and the object has dependents of its own
    /// while an owner waits: delete it in the foreground too, so the wait covers the whole
    /// subtree. `unblock` lists owners whose references must first stop blocking, to break a
    /// cycle (a dependent of this object is itself waiting on its dependents).
    DeleteForeground { unblock: Vec<String> },
    /// No owner left: collect it, keeping the object's own requested propagation.
    Delete(Policy),
    /// Some owner could not be resolved and none is solid: look again later.
    Retry,
}

/// Decides for an object whose references resolved to `owners`. `has_dependents` and
/// `dependent_waiting` describe the object's own dependents in the graph; `finalizers` are
/// the object's.
pub fn decide(
    owners: &[(OwnerReference, OwnerState)],
    has_dependents: bool,
    dependent_waiting: bool,
    finalizers: &[String],
) -> Decision {
    let uids = |s: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, st)| *st == s)
            .map(|(r, _)| r.uid.clone())
            .collect()
    };
    if owners.is_empty() || owners.iter().any(|(_, s)| *s == OwnerState::Invalid) {
        return Decision::Keep;
    }
    let solid = uids(OwnerState::Solid);
    let dangling = uids(OwnerState::Dangling);
    let waiting = uids(OwnerState::Waiting);
    if !solid.is_empty() {
        let mut drop = dangling;
        drop.extend(waiting);
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::RemoveReferences(drop)
        };
    }
    if !uids(OwnerState::Unresolvable).is_empty() {
        return Decision::Retry;
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::DeleteForeground {
            unblock: if dependent_waiting {
                waiting
            } else {
                Vec::new()
            },
        };
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Decision::Delete(if has(ORPHAN) {
        Policy::Orphan
    } else if has(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    })
}

#[cfg(test)]
mod tests {
    use super::OwnerState::*;
    use super::*;

    fn r(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: uid.into(),
            uid: uid.into(),
            ..Default::default()
        }
    }

    #[test]
    fn decisions_follow_upstream() {
        let none: &[String] = &[];
        let orphan = &[ORPHAN.to_string()];
        let fg = &[FOREGROUND.to_string()];
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Vec<(&str, OwnerState)>,
            bool,
            bool,
            &[String],
            Decision,
        )> = vec![
            ("no owners", vec![], false, false, none, Decision::Keep),
            (
                "solid owner",
                vec![("a", Solid)],
                true,
                false,
                none,
                Decision::Keep,
            ),
            (
                "one of two owners gone",
                vec![("a", Dangling), ("b", Solid)],
                false,
                false,
                none,
                Decision::RemoveReferences(vec!["a".into()]),
            ),
            (
                "solid owner and one waiting",
                vec![("a", Waiting), ("b", Solid), ("c", Dangling)],
                false,
                false,
                none,
                Decision::RemoveReferences(vec!["c".into(), "a".into()]),
            ),
            (
                "dangling",
                vec![("a", Dangling)],
                true,
                false,
                none,
                Decision::Delete(Policy::Background),
            ),
            (
                "dangling, object asked to orphan",
                vec![("a", Dangling)],
                false,
                false,
                orphan,
                Decision::Delete(Policy::Orphan),
            ),
            (
                "dangling, object asked for foreground",
                vec![("a", Dangling)],
                false,
                false,
                fg,
                Decision::Delete(Policy::Foreground),
            ),
            (
                "waiting owner, no dependents",
                vec![("a", Waiting)],
                false,
                false,
                none,
                Decision::Delete(Policy::Background),
            ),
            (
                "waiting owner, with dependents",
                vec![("a", Waiting), ("b", Dangling)],
                true,
                false,
                none,
                Decision::DeleteForeground { unblock: vec![] },
            ),
            (
                "waiting owner, a dependent waits too",
                vec![("a", Waiting)],
                true,
                true,
                none,
                Decision::DeleteForeground {
                    unblock: vec!["a".into()],
                },
            ),
            (
                "unknown kind, nothing solid",
                vec![("a", Unresolvable), ("b", Dangling)],
                false,
                false,
                none,
                Decision::Retry,
            ),
            (
                "unknown kind beside a solid owner",
                vec![("a", Unresolvable), ("b", Solid)],
                false,
                false,
                none,
                Decision::Keep,
            ),
            (
                "invalid scope",
                vec![("a", Invalid), ("b", Dangling)],
                false,
                false,
                none,
                Decision::Keep,
            ),
        ];
        for (what, owners, deps, waiting, finalizers, want) in cases {
            let owners: Vec<_> = owners.into_iter().map(|(u, s)| (r(u), s)).collect();
            assert_eq!(decide(&owners, deps, waiting, finalizers), want, "{what}");
        }
    }
}
