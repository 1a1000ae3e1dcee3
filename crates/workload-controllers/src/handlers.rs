//! What a pod or revision change means for its owners (upstream's `addPod` / `updatePod` /
//! `deletePod` of both controllers): which owner keys to sync, and which expectations the
//! change fulfils. Handlers run on the informer's task, so this only computes keys.
//!
//! * A pod with a controller reference concerns only that owner, resolved by kind, name and
//!   UID (a recreated owner of the same name is a different owner).
//! * An orphan concerns the owners in its namespace whose selector matches it, so one can
//!   adopt it; only when it appears or its labels change.
//! * A pod that gets a `deletionTimestamp` counts as deleted at once.

use std::sync::Arc;

use controller_runtime::owners::controller_of;
use controller_runtime::{Change, Expectations, Informer, Key, Watched, WorkQueue};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

/// What to do about one pod change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Owners whose expected creations this change fulfils.
    pub created: Vec<Key>,
    /// Owners and pod UIDs whose expected deletions this change fulfils.
    pub deleted: Vec<(Key, String)>,
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

    fn gone(&mut self, meta: &ObjectMeta, owners: &impl Owners) {
        let ns = meta.namespace.as_deref().unwrap_or_default();
        if let Some(key) = controller_of(meta).and_then(|r| owners.resolve(ns, r)) {
            self.deleted
                .push((key.clone(), meta.uid.clone().unwrap_or_default()));
            self.sync(Some(key));
        }
    }

    /// Applies the reaction: counts expectations down, enqueues.
    pub fn apply(self, expectations: &Expectations, queue: &WorkQueue<Key>) {
        for k in &self.created {
            expectations.creation_observed(k);
        }
        for (k, uid) in &self.deleted {
            expectations.deletion_observed(k, uid);
        }
        for k in self.enqueue {
            queue.add(k);
        }
    }
}

/// Finds the owners a pod may belong to.
pub trait Owners {
    /// The key of the owner `r` points at, if it is of our kind and cached with that UID.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key>;
    /// The owners in the namespace whose selector matches `meta`'s labels.
    fn selecting(&self, meta: &ObjectMeta) -> Vec<Key>;
}

/// Owners of kind `K` in an informer cache; `selector` reads an owner's pod selector.
pub struct Cached<K> {
    pub informer: Informer<K>,
    pub selector: fn(&K) -> &LabelSelector,
}

impl<K: Watched> Owners for Cached<K> {
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key> {
        if r.kind != K::kind(&()) {
            return None;
        }
        let key = Key::new(namespace, &r.name);
        let owner = self.informer.get(&key)?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    fn selecting(&self, meta: &ObjectMeta) -> Vec<Key> {
        let ns = meta.namespace.as_deref().unwrap_or_default();
        self.informer
            .list_in(ns)
            .iter()
            .filter(|o| {
                // An empty selector would match everything; upstream has it match nothing.
                api::selector::LabelSelector::from_k8s((self.selector)(o))
                    .is_ok_and(|s| !s.is_everything() && s.matches(&meta.labels))
            })
            .map(|o| Key::of(o.as_ref()))
            .collect()
    }
}

/// The reaction to one pod change.
pub fn react(change: &Change<Pod>, owners: &impl Owners) -> Reaction {
    let mut r = Reaction::default();
    match change {
        Change::Added(pod) if pod.metadata.deletion_timestamp.is_some() => {
            r.gone(&pod.metadata, owners);
        }
        Change::Added(pod) => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            match controller_of(&pod.metadata) {
                Some(o) => {
                    if let Some(key) = owners.resolve(ns, o) {
                        r.created.push(key.clone());
                        r.sync(Some(key));
                    }
                }
                None => {
                    for k in owners.selecting(&pod.metadata) {
                        r.sync(Some(k));
                    }
                }
            }
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return r;
            }
            if new.metadata.deletion_timestamp.is_some() {
                r.gone(&new.metadata, owners);
                return r;
            }
            let ns = new.metadata.namespace.as_deref().unwrap_or_default();
            let (o, n) = (controller_of(&old.metadata), controller_of(&new.metadata));
            if o != n
                && let Some(o) = o
            {
                r.sync(owners.resolve(ns, o));
            }
            match n {
                Some(n) => r.sync(owners.resolve(ns, n)),
                None if o.is_some() || old.metadata.labels != new.metadata.labels => {
                    for k in owners.selecting(&new.metadata) {
                        r.sync(Some(k));
                    }
                }
                None => {}
            }
        }
        Change::Deleted(pod) => r.gone(&pod.metadata, owners),
    }
    r
}

/// Enqueues the owner of a changed revision (upstream watches revisions for the same reason:
/// someone else deleting or editing history must not go unnoticed).
pub fn owner_of_meta(meta: &ObjectMeta, owners: &impl Owners) -> Option<Key> {
    let ns = meta.namespace.as_deref().unwrap_or_default();
    controller_of(meta).and_then(|r| owners.resolve(ns, r))
}

/// Registers `react` on `pods` for `owners`, feeding `expectations` and `queue`.
pub fn watch_pods<O: Owners + Send + Sync + 'static>(
    pods: &Informer<Pod>,
    owners: O,
    expectations: Arc<Expectations>,
    queue: Arc<WorkQueue<Key>>,
) {
    pods.on_change(move |c| react(c, &owners).apply(&expectations, &queue));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// Owner `web` (uid `a`) and `db` (uid `b`) in `ns`; both select app=x.
    struct Fake;

    impl Owners for Fake {
        fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key> {
            let ok = namespace == "ns"
                && r.kind == "StatefulSet"
                && ((r.name == "web" && r.uid == "a") || (r.name == "db" && r.uid == "b"));
            ok.then(|| Key::new("ns", &r.name))
        }
        fn selecting(&self, meta: &ObjectMeta) -> Vec<Key> {
            let app = meta.labels.as_ref().and_then(|l| l.get("app"));
            if app.map(String::as_str) == Some("x") {
                vec![Key::new("ns", "web"), Key::new("ns", "db")]
            } else {
                vec![]
            }
        }
    }

    fn p(rv: &str, app: &str, owner: Option<(&str, &str)>, deleting: bool) -> Arc<Pod> {
        let mut p = pod("p", "Running", None);
        p.metadata.resource_version = Some(rv.into());
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        p.metadata.owner_references = owner.map(|(name, uid)| {
            vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                name: name.into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        }
        Arc::new(p)
    }

    #[test]
    fn pod_changes_map_to_owners() {
        let web = || Key::new("ns", "web");
        let db = || Key::new("ns", "db");
        let gone = |k: Key| vec![(k, "uid-p".to_string())];
        let none: Vec<(Key, String)> = vec![];
        let upd = |old, new| Change::Updated { old, new };
        let cases = vec![
            (
                "owned pod added",
                Change::Added(p("1", "x", Some(("web", "a")), false)),
                vec![web()],
                none.clone(),
                vec![web()],
            ),
            (
                "orphan added",
                Change::Added(p("1", "x", None, false)),
                vec![],
                none.clone(),
                vec![web(), db()],
            ),
            (
                "stale uid",
                Change::Added(p("1", "x", Some(("web", "zz")), false)),
                vec![],
                none.clone(),
                vec![],
            ),
            (
                "resync",
                upd(
                    p("1", "x", Some(("web", "a")), false),
                    p("1", "x", Some(("web", "a")), false),
                ),
                vec![],
                none.clone(),
                vec![],
            ),
            (
                "deleting",
                upd(
                    p("1", "x", Some(("web", "a")), false),
                    p("2", "x", Some(("web", "a")), true),
                ),
                vec![],
                gone(web()),
                vec![web()],
            ),
            (
                "controller changed",
                upd(
                    p("1", "x", Some(("web", "a")), false),
                    p("2", "x", Some(("db", "b")), false),
                ),
                vec![],
                none.clone(),
                vec![web(), db()],
            ),
            (
                "released",
                upd(
                    p("1", "y", Some(("db", "b")), false),
                    p("2", "x", None, false),
                ),
                vec![],
                none.clone(),
                vec![db(), web()],
            ),
            (
                "orphan status change",
                upd(p("1", "x", None, false), p("2", "x", None, false)),
                vec![],
                none.clone(),
                vec![],
            ),
            (
                "deleted",
                Change::Deleted(p("1", "x", Some(("db", "b")), false)),
                vec![],
                gone(db()),
                vec![db()],
            ),
        ];
        for (what, change, created, deleted, enqueue) in cases {
            assert_eq!(
                react(&change, &Fake),
                Reaction {
                    created,
                    deleted,
                    enqueue
                },
                "{what}"
            );
        }
    }
}
