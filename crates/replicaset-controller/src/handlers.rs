//! What a pod change means for the owners (upstream's `addPod` / `updatePod` / `deletePod`):
//! which owner keys to sync, and which expected creations and deletions it fulfils.
//!
//! * A pod with a controller reference concerns only that owner (resolved by kind, name and
//!   UID, so a recreated owner of the same name is not confused with the old one).
//! * An orphan concerns every owner in its namespace whose selector matches it, so one of
//!   them can adopt it — but only when it appears or its labels change.
//! * A pod that gets a `deletionTimestamp` counts as deleted at once: it no longer counts as
//!   a replica, and waiting for its grace period would slow the replacement.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use controller_runtime::owners::controller_of;
use controller_runtime::{Change, Key};

/// Finds owners in the informer cache.
pub trait OwnerLookup {
    /// The key of the owner `r` points at, if it is of our kind and in the cache with that UID.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key>;
    /// The owners in the pod's namespace whose selector matches its labels.
    fn selecting(&self, pod: &Pod) -> Vec<Key>;
}

/// An expectation a pod change fulfils.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Created(Key),
    /// The owner's key and the pod's UID.
    Deleted(Key, String),
}

/// What to do about one change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    pub observed: Vec<Observation>,
    pub enqueue: Vec<Key>,
}

impl Reaction {
    fn sync(&mut self, key: Option<Key>) {
        if let Some(k) = key
            && !self.enqueue.contains(&k)
        {
            self.enqueue.push(k);
        }
    }

    fn deleted(&mut self, pod: &Pod, owners: &impl OwnerLookup) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(key) = controller_of(&pod.metadata).and_then(|r| owners.resolve(ns, r)) else {
            return;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.observed.push(Observation::Deleted(key.clone(), uid));
        self.sync(Some(key));
    }
}

/// The reaction to one pod change.
pub fn react(change: &Change<Pod>, owners: &impl OwnerLookup) -> Reaction {
    let mut r = Reaction::default();
    match change {
        Change::Added(pod) if pod.metadata.deletion_timestamp.is_some() => {
            // Seen for the first time already being deleted (after a relist): upstream counts
            // it as a deletion so expectations are not left waiting for it.
            r.deleted(pod, owners);
        }
        Change::Added(pod) => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            if let Some(owner) = controller_of(&pod.metadata) {
                if let Some(key) = owners.resolve(ns, owner) {
                    r.observed.push(Observation::Created(key.clone()));
                    r.sync(Some(key));
                }
            } else {
                for k in owners.selecting(pod) {
                    r.sync(Some(k));
                }
            }
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return r;
            }
            let labels_changed = old.metadata.labels != new.metadata.labels;
            if new.metadata.deletion_timestamp.is_some() {
                r.deleted(new, owners);
                if labels_changed {
                    // The old labels may have belonged to another owner's selector.
                    r.deleted(old, owners);
                }
                return r;
            }
            let ns = new.metadata.namespace.as_deref().unwrap_or_default();
            let (old_ref, new_ref) = (controller_of(&old.metadata), controller_of(&new.metadata));
            let ref_changed = old_ref != new_ref;
            if ref_changed && let Some(o) = old_ref {
                r.sync(owners.resolve(ns, o));
            }
            if let Some(n) = new_ref {
                r.sync(owners.resolve(ns, n));
                return r;
            }
            if labels_changed || ref_changed {
                for k in owners.selecting(new) {
                    r.sync(Some(k));
                }
            }
        }
        Change::Deleted(pod) => r.deleted(pod, owners),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{at, pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::Arc;

    /// Owners `rs-a` (uid `a`, selects app=a) and `rs-b` (uid `b`, selects app=a too) in `ns`.
    struct Fake;

    impl OwnerLookup for Fake {
        fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key> {
            (namespace == "ns"
                && r.kind == "ReplicaSet"
                && ["a", "b"].contains(&r.uid.as_str())
                && r.name == format!("rs-{}", r.uid))
            .then(|| Key::new("ns", &r.name))
        }
        fn selecting(&self, pod: &Pod) -> Vec<Key> {
            let app = pod.metadata.labels.as_ref().and_then(|l| l.get("app"));
            if app.map(String::as_str) == Some("a") {
                vec![Key::new("ns", "rs-a"), Key::new("ns", "rs-b")]
            } else {
                vec![]
            }
        }
    }

    fn p(rv: &str, app: &str, owner: Option<&str>, deleting: bool) -> Arc<Pod> {
        let mut p = pod("p", "Running", None);
        p.metadata.resource_version = Some(rv.into());
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        p.metadata.owner_references = owner.map(|o| {
            vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("rs-{o}"),
                uid: o.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(at("2025-01-01T00:00:00Z")));
        }
        Arc::new(p)
    }

    fn upd(old: Arc<Pod>, new: Arc<Pod>) -> Change<Pod> {
        Change::Updated { old, new }
    }

    #[test]
    fn changes_map_to_owners_and_expectations() {
        let a = || Key::new("ns", "rs-a");
        let b = || Key::new("ns", "rs-b");
        let uid = || "uid-p".to_string();
        type Case = (&'static str, Change<Pod>, Vec<Observation>, Vec<Key>);
        let cases: Vec<Case> = vec![
            (
                "owned pod added: creation observed",
                Change::Added(p("1", "a", Some("a"), false)),
                vec![Observation::Created(a())],
                vec![a()],
            ),
            (
                "orphan added: every selecting owner may adopt",
                Change::Added(p("1", "a", None, false)),
                vec![],
                vec![a(), b()],
            ),
            (
                "unselected orphan added: nobody",
                Change::Added(p("1", "x", None, false)),
                vec![],
                vec![],
            ),
            (
                "added while deleting: deletion observed",
                Change::Added(p("1", "a", Some("a"), true)),
                vec![Observation::Deleted(a(), uid())],
                vec![a()],
            ),
            (
                "owner of unknown uid: nothing",
                Change::Added(p("1", "a", Some("zz"), false)),
                vec![],
                vec![],
            ),
            (
                "resync (same resourceVersion): nothing",
                upd(p("1", "a", Some("a"), false), p("1", "a", Some("a"), false)),
                vec![],
                vec![],
            ),
            (
                "deletionTimestamp set: deletion observed",
                upd(p("1", "a", Some("a"), false), p("2", "a", Some("a"), true)),
                vec![Observation::Deleted(a(), uid())],
                vec![a()],
            ),
            (
                "status update of an owned pod: its owner syncs",
                upd(p("1", "a", Some("a"), false), p("2", "a", Some("a"), false)),
                vec![],
                vec![a()],
            ),
            (
                "released (ref removed): old owner and selecting owners",
                upd(p("1", "a", Some("a"), false), p("2", "a", None, false)),
                vec![],
                vec![a(), b()],
            ),
            (
                "relabeled orphan: selecting owners",
                upd(p("1", "x", None, false), p("2", "a", None, false)),
                vec![],
                vec![a(), b()],
            ),
            (
                "orphan status update: nobody",
                upd(p("1", "a", None, false), p("2", "a", None, false)),
                vec![],
                vec![],
            ),
            (
                "controller changed: both owners",
                upd(p("1", "a", Some("a"), false), p("2", "a", Some("b"), false)),
                vec![],
                vec![a(), b()],
            ),
            (
                "owned pod deleted",
                Change::Deleted(p("1", "a", Some("b"), false)),
                vec![Observation::Deleted(b(), uid())],
                vec![b()],
            ),
            (
                "orphan deleted: nobody",
                Change::Deleted(p("1", "a", None, false)),
                vec![],
                vec![],
            ),
        ];
        for (what, change, observed, enqueue) in cases {
            assert_eq!(
                react(&change, &Fake),
                Reaction { observed, enqueue },
                "{what}"
            );
        }
    }
}
