//! The garbage collector's view of the cluster: a graph of objects by UID, with an edge from
//! every owner to each of its dependents (upstream's `GraphBuilder` and `uidToNode`).
//!
//! The graph is only an index: it says *whom to look at* when something changes. Every
//! decision to delete or patch is taken on live reads (see [`super::attempt`]), so a graph that
//! lags behind the server can delay collection but never cause a wrong deletion.
//!
//! Guarantees of [`Graph::observe`] / [`Graph::forget`]:
//! * An owner referenced before (or without) being observed gets a *virtual* node, which is
//!   queued once for a live existence check.
//! * Every transition that can make an object collectable queues it: its owner vanished, it
//!   joined (or its owner entered) foreground deletion, its `orphan` finalizer appeared.
//! * An owner in foreground deletion is queued again whenever one of its dependents goes away
//!   or stops blocking it, so its `foregroundDeletion` finalizer is removed as soon as
//!   nothing blocks it any more.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Who an object is. `namespace` is empty for cluster-scoped objects; for a virtual node it is
/// the namespace of the dependent that referenced it (an owner reference has no namespace: a
/// namespaced owner lives in its dependent's namespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ", self.api_version, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{} (uid {})", self.name, self.uid)
    }
}

/// One object.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub identity: Identity,
    /// Known only from someone's owner reference, not (yet) from a watch.
    pub virtual_: bool,
    pub owners: Vec<OwnerReference>,
    pub dependents: BTreeSet<String>,
    /// Has a deletionTimestamp.
    pub being_deleted: bool,
    /// Being deleted with the `foregroundDeletion` finalizer: waits for blocking dependents.
    pub deleting_dependents: bool,
    /// Being deleted with the `orphan` finalizer: its dependents are to be released.
    pub orphaning: bool,
}

/// The queues a change feeds: UIDs to check for collection, and owners to orphan from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    pub attempt_delete: BTreeSet<String>,
    pub attempt_orphan: BTreeSet<String>,
}

/// All nodes, by UID.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `uid` still in the graph.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Dependents of `uid` whose reference to it has `blockOwnerDeletion: true`.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| d.owners.iter().any(|r| r.uid == uid && blocks(r)))
            .collect()
    }

    /// An object was added or updated (as seen by a watch of `api_version`/`kind`).
    pub fn observe(&mut self, api_version: &str, kind: &str, meta: &ObjectMeta) -> Reaction {
        let mut out = Reaction::default();
        let Some(uid) = meta.uid.clone().filter(|u| !u.is_empty()) else {
            return out;
        };
        let identity = Identity {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: uid.clone(),
        };
        let new_owners = meta.owner_references.clone().unwrap_or_default();
        let being_deleted = meta.deletion_timestamp.is_some();
        let deleting_dependents = being_deleted && has_finalizer(meta, FOREGROUND);
        let orphaning = being_deleted && has_finalizer(meta, ORPHAN);

        let (old_owners, was_deleting_dependents, dependents) = match self.nodes.get(&uid) {
            Some(n) => (
                n.owners.clone(),
                n.deleting_dependents,
                n.dependents.clone(),
            ),
            None => (Vec::new(), false, BTreeSet::new()),
        };

        // Owners that went away, or whose reference stopped blocking.
        for old in &old_owners {
            let now = new_owners.iter().find(|r| r.uid == old.uid);
            if now.is_some_and(|r| !blocks(old) || blocks(r)) {
                continue;
            }
            if now.is_none() {
                self.unlink(&old.uid, &uid);
            }
            if self
                .nodes
                .get(&old.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                out.attempt_delete.insert(old.uid.clone());
            }
        }
        // Owners that are new.
        for r in &new_owners {
            if old_owners.iter().any(|o| o.uid == r.uid) {
                continue;
            }
            match self.nodes.get_mut(&r.uid) {
                Some(owner) => {
                    owner.dependents.insert(uid.clone());
                    // Joining an owner already waiting for its dependents: be collected too.
                    // Naming an owner that lives in another namespace: the reference cannot
                    // resolve from here (it is looked up in our namespace), so have it checked.
                    let elsewhere = !owner.virtual_
                        && !owner.identity.namespace.is_empty()
                        && owner.identity.namespace != identity.namespace;
                    if owner.deleting_dependents || elsewhere {
                        out.attempt_delete.insert(uid.clone());
                    }
                }
                None => {
                    self.nodes.insert(
                        r.uid.clone(),
                        Node {
                            identity: Identity {
                                api_version: r.api_version.clone(),
                                kind: r.kind.clone(),
                                namespace: identity.namespace.clone(),
                                name: r.name.clone(),
                                uid: r.uid.clone(),
                            },
                            virtual_: true,
                            owners: Vec::new(),
                            dependents: [uid.clone()].into(),
                            being_deleted: false,
                            deleting_dependents: false,
                            orphaning: false,
                        },
                    );
                    out.attempt_delete.insert(r.uid.clone());
                }
            }
        }

        if deleting_dependents {
            out.attempt_delete.insert(uid.clone());
            if !was_deleting_dependents {
                out.attempt_delete.extend(dependents.iter().cloned());
            }
        }
        if orphaning {
            out.attempt_orphan.insert(uid.clone());
        }
        self.nodes.insert(
            uid,
            Node {
                identity,
                virtual_: false,
                owners: new_owners,
                dependents,
                being_deleted,
                deleting_dependents,
                orphaning,
            },
        );
        out
    }

    /// An object is gone (observed deleted, or a virtual node found absent): its dependents are
    /// checked for collection, and owners waiting for it are checked again.
    pub fn forget(&mut self, uid: &str) -> Reaction {
        let mut out = Reaction::default();
        let Some(node) = self.nodes.remove(uid) else {
            return out;
        };
        for r in &node.owners {
            self.unlink(&r.uid, uid);
            if self
                .nodes
                .get(&r.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                out.attempt_delete.insert(r.uid.clone());
            }
        }
        out.attempt_delete.extend(node.dependents.iter().cloned());
        out.attempt_delete.retain(|u| self.nodes.contains_key(u));
        out
    }

    /// Removes the edge owner → dependent; a virtual owner left without dependents is dropped
    /// (nothing refers to it any more, so nothing needs it checked).
    fn unlink(&mut self, owner: &str, dependent: &str) {
        let drop_owner = match self.nodes.get_mut(owner) {
            Some(o) => {
                o.dependents.remove(dependent);
                o.virtual_ && o.dependents.is_empty()
            }
            None => false,
        };
        if drop_owner {
            self.nodes.remove(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("cm-{uid}"),
            uid: uid.into(),
            block_owner_deletion: block.then_some(true),
            controller: None,
        }
    }

    fn meta(uid: &str, owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            namespace: Some("ns".into()),
            name: Some(format!("cm-{uid}")),
            uid: Some(uid.into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..Default::default()
        }
    }

    fn deleting(mut m: ObjectMeta, finalizer: &str) -> ObjectMeta {
        m.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        m.finalizers = Some(vec![finalizer.into()]);
        m
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn obs(g: &mut Graph, m: &ObjectMeta) -> Reaction {
        g.observe("v1", "ConfigMap", m)
    }

    #[test]
    fn unseen_owners_become_virtual_and_are_checked_once() {
        let mut g = Graph::default();
        let r = obs(&mut g, &meta("d1", vec![owner_ref("o", false)]));
        assert_eq!(r.attempt_delete, set(&["o"]));
        let o = g.node("o").unwrap();
        assert!(o.virtual_);
        assert_eq!(o.identity.namespace, "ns");
        assert_eq!(o.identity.name, "cm-o");
        // A second dependent of the same virtual owner does not queue it again.
        let r = obs(&mut g, &meta("d2", vec![owner_ref("o", false)]));
        assert_eq!(r, Reaction::default());
        assert_eq!(g.node("o").unwrap().dependents, set(&["d1", "d2"]));
        // Observing the owner makes it real and keeps its dependents.
        let r = obs(&mut g, &meta("o", vec![]));
        assert_eq!(r, Reaction::default());
        assert!(!g.node("o").unwrap().virtual_);
        assert_eq!(g.dependents("o").len(), 2);
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        obs(&mut g, &meta("o", vec![]));
        obs(&mut g, &meta("d1", vec![owner_ref("o", false)]));
        obs(&mut g, &meta("d2", vec![owner_ref("o", true)]));
        let r = g.forget("o");
        assert_eq!(r.attempt_delete, set(&["d1", "d2"]));
        assert!(g.node("o").is_none());
        // The dependents keep their references until the collector patches or deletes them.
        assert_eq!(g.node("d1").unwrap().owners.len(), 1);
        assert_eq!(g.forget("missing"), Reaction::default());
    }

    #[test]
    fn a_virtual_owner_without_dependents_is_dropped() {
        let mut g = Graph::default();
        obs(&mut g, &meta("d", vec![owner_ref("v", false)]));
        assert!(g.node("v").is_some());
        obs(&mut g, &meta("d", vec![]));
        assert!(g.node("v").is_none());
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn foreground_deletion_queues_the_owner_and_its_dependents_once() {
        let mut g = Graph::default();
        obs(&mut g, &meta("o", vec![]));
        obs(&mut g, &meta("d1", vec![owner_ref("o", true)]));
        obs(&mut g, &meta("d2", vec![owner_ref("o", false)]));
        let r = obs(&mut g, &deleting(meta("o", vec![]), FOREGROUND));
        assert_eq!(r.attempt_delete, set(&["o", "d1", "d2"]));
        assert!(g.node("o").unwrap().deleting_dependents);
        let blocking: Vec<&str> = g
            .blocking_dependents("o")
            .iter()
            .map(|n| n.identity.uid.as_str())
            .collect();
        assert_eq!(blocking, ["d1"]);
        // Later updates of the owner only queue the owner.
        let r = obs(&mut g, &deleting(meta("o", vec![]), FOREGROUND));
        assert_eq!(r.attempt_delete, set(&["o"]));
        // A blocking dependent going away re-checks the owner.
        let r = g.forget("d1");
        assert_eq!(r.attempt_delete, set(&["o"]));
        // A dependent that stops blocking re-checks it too.
        obs(&mut g, &meta("d3", vec![owner_ref("o", true)]));
        let r = obs(&mut g, &meta("d3", vec![owner_ref("o", false)]));
        assert_eq!(r.attempt_delete, set(&["o"]));
        // A new dependent of an owner in foreground deletion is collected too.
        let r = obs(&mut g, &meta("d4", vec![owner_ref("o", true)]));
        assert_eq!(r.attempt_delete, set(&["d4"]));
    }

    #[test]
    fn an_orphan_finalizer_queues_the_owner_for_orphaning() {
        let mut g = Graph::default();
        obs(&mut g, &meta("o", vec![]));
        obs(&mut g, &meta("d", vec![owner_ref("o", true)]));
        let r = obs(&mut g, &deleting(meta("o", vec![]), ORPHAN));
        assert_eq!(r.attempt_orphan, set(&["o"]));
        assert!(r.attempt_delete.is_empty());
        assert!(g.node("o").unwrap().orphaning);
        // A finalizer without a deletionTimestamp means nothing yet.
        let mut m = meta("p", vec![]);
        m.finalizers = Some(vec![ORPHAN.into()]);
        assert_eq!(obs(&mut g, &m), Reaction::default());
    }

    #[test]
    fn a_reference_across_namespaces_is_checked() {
        let mut g = Graph::default();
        obs(&mut g, &meta("o", vec![]));
        let mut m = meta("d", vec![owner_ref("o", false)]);
        m.namespace = Some("other".into());
        assert_eq!(obs(&mut g, &m).attempt_delete, set(&["d"]));
        // From the owner's own namespace, nothing to check.
        assert_eq!(
            obs(&mut g, &meta("d2", vec![owner_ref("o", false)])),
            Reaction::default()
        );
    }

    #[test]
    fn objects_without_uid_are_ignored() {
        let mut g = Graph::default();
        let mut m = meta("x", vec![owner_ref("o", false)]);
        m.uid = None;
        assert_eq!(obs(&mut g, &m), Reaction::default());
        assert!(g.is_empty());
    }
}
