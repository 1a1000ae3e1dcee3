//! The collector's actions: check an object against its owners and delete or patch it
//! (upstream's `attemptToDeleteItem`), release the dependents of an owner deleted with the
//! `orphan` finalizer (`attemptToOrphan`), and finish foreground deletions.
//!
//! Guarantees:
//! * Nothing is deleted on the graph's word alone: the object is read live first (and must
//!   still have the UID the graph knows), and every owner is read live by name and UID (or
//!   found in the cache of owners already proven absent). The delete itself carries a UID
//!   precondition, so an object recreated under the same name is never collected by mistake.
//! * Patches of `ownerReferences` and `finalizers` carry the `resourceVersion` they were
//!   computed from: a concurrent writer makes them fail with a conflict and they are retried
//!   on fresh data, never lost or applied to a newer object blindly.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use controller_runtime::WorkQueue;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;

use super::decide::{Decision, OwnerState, Policy, decide};
use super::graph::{FOREGROUND, Graph, Identity, Node, ORPHAN, Reaction};
use crate::discovery::{Catalog, Served};

/// How long to wait before looking again at an object whose owner kind is not served.
pub const UNRESOLVED_RETRY: Duration = Duration::from_secs(30);
/// Owners proven absent, remembered (UIDs are never reused, so this never goes stale).
const ABSENT_REMEMBERED: usize = 4096;

/// A collector action failed; the item is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {what}")]
    Delete {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("patching {what}")]
    Patch {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// What a finished attempt asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Done,
    After(Duration),
}

/// Owners proven absent: (uid, namespace looked in).
#[derive(Default)]
struct Absent {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Absent {
    fn contains(&self, uid: &str, ns: &str) -> bool {
        self.set.contains(&(uid.to_owned(), ns.to_owned()))
    }

    fn insert(&mut self, uid: &str, ns: &str) {
        let k = (uid.to_owned(), ns.to_owned());
        if self.set.insert(k.clone()) {
            self.order.push_back(k);
            if self.order.len() > ABSENT_REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The state every collector worker shares.
pub struct Collector {
    pub client: Client,
    pub graph: Arc<Mutex<Graph>>,
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    pub deletes: Arc<WorkQueue<String>>,
    pub orphans: Arc<WorkQueue<String>>,
    absent: Mutex<Absent>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl Collector {
    pub fn new(
        client: Client,
        graph: Arc<Mutex<Graph>>,
        catalog: Arc<RwLock<Arc<Catalog>>>,
        deletes: Arc<WorkQueue<String>>,
        orphans: Arc<WorkQueue<String>>,
    ) -> Collector {
        Collector {
            client,
            graph,
            catalog,
            deletes,
            orphans,
            absent: Mutex::new(Absent::default()),
        }
    }

    /// Queues what a graph change asks for.
    pub fn enqueue(&self, r: Reaction) {
        for uid in r.attempt_delete {
            self.deletes.add(uid);
        }
        for uid in r.attempt_orphan {
            self.orphans.add(uid);
        }
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<Served> {
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        catalog.resolve(api_version, kind).cloned()
    }

    fn api(&self, served: &Served, namespace: &str) -> Api<DynamicObject> {
        if served.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &served.api)
        } else {
            Api::all_with(self.client.clone(), &served.api)
        }
    }

    /// The live metadata of `id` (through `served`), `None` when it is gone or is now another
    /// object with the same name.
    async fn live(&self, served: &Served, id: &Identity) -> Result<Option<ObjectMeta>, GcError> {
        let ns = if served.namespaced {
            id.namespace.as_str()
        } else {
            ""
        };
        match self.api(served, ns).get_metadata_opt(&id.name).await {
            Ok(Some(m)) if m.metadata.uid.as_deref() == Some(id.uid.as_str()) => {
                Ok(Some(m.metadata))
            }
            Ok(_) => Ok(None),
            Err(source) => Err(GcError::Read {
                what: id.to_string(),
                source,
            }),
        }
    }

    /// The object is gone: drop it from the graph, and look at whoever that concerns.
    fn gone(&self, uid: &str) {
        let r = lock(&self.graph).forget(uid);
        self.enqueue(r);
    }

    /// Checks one object for collection.
    pub async fn attempt_delete(&self, uid: &str) -> Result<Next, GcError> {
        let Some(node) = lock(&self.graph).node(uid).cloned() else {
            return Ok(Next::Done);
        };
        if node.virtual_ {
            return self.check_virtual(&node).await;
        }
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Next::Done);
        }
        if node.owners.is_empty() && !node.deleting_dependents {
            return Ok(Next::Done);
        }
        let id = &node.identity;
        let Some(served) = self.resolve(&id.api_version, &id.kind) else {
            return Ok(Next::After(UNRESOLVED_RETRY));
        };
        let Some(latest) = self.live(&served, id).await? else {
            self.gone(uid);
            return Ok(Next::Done);
        };
        let finalizers = latest.finalizers.clone().unwrap_or_default();
        if latest.deletion_timestamp.is_some() {
            if finalizers.iter().any(|f| f == FOREGROUND) {
                return self.finish_foreground(&served, &node).await;
            }
            return Ok(Next::Done);
        }
        let refs = latest.owner_references.clone().unwrap_or_default();
        let mut owners = Vec::with_capacity(refs.len());
        for r in refs {
            let state = self.owner_state(&id.namespace, &r).await?;
            if state == OwnerState::Invalid {
                tracing::warn!(
                    object = %id,
                    owner_kind = %r.kind,
                    owner = %r.name,
                    "a cluster-scoped object names a namespaced owner; this reference can never resolve"
                );
            }
            owners.push((r, state));
        }
        let (has_dependents, dependent_waiting) = {
            let g = lock(&self.graph);
            let deps = g.dependents(uid);
            (!deps.is_empty(), deps.iter().any(|d| d.deleting_dependents))
        };
        let api = self.api(&served, &id.namespace);
        match decide(&owners, has_dependents, dependent_waiting, &finalizers) {
            Decision::Keep => Ok(Next::Done),
            Decision::Retry => Ok(Next::After(UNRESOLVED_RETRY)),
            Decision::RemoveReferences(uids) => {
                tracing::debug!(object = %id, owners = ?uids, "removing references to owners that are gone or waiting");
                self.patch_references(&api, id, &latest, |r| {
                    (!uids.contains(&r.uid)).then(|| r.clone())
                })
                .await?;
                Ok(Next::Done)
            }
            Decision::DeleteForeground { unblock } => {
                if !unblock.is_empty() {
                    self.patch_references(&api, id, &latest, |r| {
                        let mut r = r.clone();
                        if unblock.contains(&r.uid) {
                            r.block_owner_deletion = Some(false);
                        }
                        Some(r)
                    })
                    .await?;
                }
                self.delete(&api, id, Policy::Foreground).await
            }
            Decision::Delete(policy) => self.delete(&api, id, policy).await,
        }
    }

    /// A virtual node: does the owner it stands for exist?
    async fn check_virtual(&self, node: &Node) -> Result<Next, GcError> {
        let id = &node.identity;
        let Some(served) = self.resolve(&id.api_version, &id.kind) else {
            return Ok(Next::After(UNRESOLVED_RETRY));
        };
        if served.namespaced && id.namespace.is_empty() {
            // Referenced only by cluster-scoped objects: never resolvable (see OwnerState).
            return Ok(Next::Done);
        }
        let ns = if served.namespaced {
            id.namespace.as_str()
        } else {
            ""
        };
        if self.live(&served, id).await?.is_none() {
            tracing::debug!(owner = %id, "owner is absent; checking its dependents");
            lock(&self.absent).insert(&id.uid, ns);
            self.gone(&id.uid);
        }
        Ok(Next::Done)
    }

    /// Resolves one owner reference of an object in `namespace`.
    async fn owner_state(
        &self,
        namespace: &str,
        r: &OwnerReference,
    ) -> Result<OwnerState, GcError> {
        {
            let absent = lock(&self.absent);
            if absent.contains(&r.uid, "") || absent.contains(&r.uid, namespace) {
                return Ok(OwnerState::Dangling);
            }
        }
        let Some(served) = self.resolve(&r.api_version, &r.kind) else {
            return Ok(OwnerState::Unresolvable);
        };
        if served.namespaced && namespace.is_empty() {
            return Ok(OwnerState::Invalid);
        }
        let id = Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: namespace.to_owned(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        Ok(match self.live(&served, &id).await? {
            None => {
                let ns = if served.namespaced { namespace } else { "" };
                lock(&self.absent).insert(&r.uid, ns);
                OwnerState::Dangling
            }
            Some(m)
                if m.deletion_timestamp.is_some()
                    && m.finalizers.iter().flatten().any(|f| f == FOREGROUND) =>
            {
                OwnerState::Waiting
            }
            Some(_) => OwnerState::Solid,
        })
    }

    async fn delete(
        &self,
        api: &Api<DynamicObject>,
        id: &Identity,
        policy: Policy,
    ) -> Result<Next, GcError> {
        let dp = DeleteParams {
            propagation_policy: Some(match policy {
                Policy::Background => PropagationPolicy::Background,
                Policy::Foreground => PropagationPolicy::Foreground,
                Policy::Orphan => PropagationPolicy::Orphan,
            }),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        tracing::info!(object = %id, ?policy, "deleting an object whose owners are gone");
        match api.delete(&id.name, &dp).await {
            Ok(_) => Ok(Next::Done),
            // Gone already, or replaced by a namesake (the UID precondition failed).
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(Next::Done),
            Err(source) => Err(GcError::Delete {
                what: id.to_string(),
                source,
            }),
        }
    }

    /// Rewrites `latest`'s owner references through `f` (which drops a reference by returning
    /// `None`), guarded by `latest`'s resourceVersion.
    async fn patch_references(
        &self,
        api: &Api<DynamicObject>,
        id: &Identity,
        latest: &ObjectMeta,
        f: impl Fn(&OwnerReference) -> Option<OwnerReference>,
    ) -> Result<(), GcError> {
        let refs: Vec<OwnerReference> = latest
            .owner_references
            .iter()
            .flatten()
            .filter_map(f)
            .collect();
        let patch = json!({
            "metadata": {
                "resourceVersion": latest.resource_version,
                "ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) },
            }
        });
        match api
            .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(source) => Err(GcError::Patch {
                what: id.to_string(),
                source,
            }),
        }
    }

    /// Removes `finalizer` from the live object `id`, if it is still there.
    async fn remove_finalizer(
        &self,
        served: &Served,
        id: &Identity,
        finalizer: &str,
    ) -> Result<(), GcError> {
        let Some(latest) = self.live(served, id).await? else {
            return Ok(());
        };
        let mut finalizers = latest.finalizers.clone().unwrap_or_default();
        if !finalizers.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        finalizers.retain(|f| f != finalizer);
        let patch = json!({
            "metadata": {
                "resourceVersion": latest.resource_version,
                "finalizers": if finalizers.is_empty() { json!(null) } else { json!(finalizers) },
            }
        });
        let ns = if served.namespaced {
            id.namespace.as_str()
        } else {
            ""
        };
        match self
            .api(served, ns)
            .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(source) => Err(GcError::Patch {
                what: id.to_string(),
                source,
            }),
        }
    }

    /// An owner in foreground deletion: done once no dependent blocks it; until then its
    /// blocking dependents are collected (each deletion queues the owner again).
    async fn finish_foreground(&self, served: &Served, node: &Node) -> Result<Next, GcError> {
        let blocking: Vec<(String, bool)> = lock(&self.graph)
            .blocking_dependents(&node.identity.uid)
            .iter()
            .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
            .collect();
        if blocking.is_empty() {
            tracing::debug!(owner = %node.identity, "no dependent blocks it any more; removing the foregroundDeletion finalizer");
            self.remove_finalizer(served, &node.identity, FOREGROUND)
                .await?;
            return Ok(Next::Done);
        }
        for (uid, waiting) in blocking {
            // One that waits for its own dependents is already on its way.
            if !waiting {
                self.deletes.add(uid);
            }
        }
        Ok(Next::Done)
    }

    /// Releases the dependents of an owner deleted with the `orphan` finalizer, then removes
    /// the finalizer.
    pub async fn attempt_orphan(&self, uid: &str) -> Result<Next, GcError> {
        let (owner, dependents) = {
            let g = lock(&self.graph);
            let Some(owner) = g.node(uid).cloned() else {
                return Ok(Next::Done);
            };
            let deps: Vec<Identity> = g
                .dependents(uid)
                .iter()
                .map(|d| d.identity.clone())
                .collect();
            (owner, deps)
        };
        if !owner.orphaning {
            return Ok(Next::Done);
        }
        for dep in &dependents {
            let Some(served) = self.resolve(&dep.api_version, &dep.kind) else {
                continue;
            };
            let Some(latest) = self.live(&served, dep).await? else {
                continue;
            };
            if !latest
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid)
            {
                continue;
            }
            let api = self.api(&served, &dep.namespace);
            self.patch_references(&api, dep, &latest, |r| (r.uid != uid).then(|| r.clone()))
                .await?;
        }
        let Some(served) = self.resolve(&owner.identity.api_version, &owner.identity.kind) else {
            return Ok(Next::After(UNRESOLVED_RETRY));
        };
        tracing::debug!(owner = %owner.identity, orphaned = dependents.len(), "dependents released; removing the orphan finalizer");
        self.remove_finalizer(&served, &owner.identity, ORPHAN)
            .await?;
        Ok(Next::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_absent_cache_is_bounded_and_scoped() {
        let mut a = Absent::default();
        a.insert("u", "ns");
        assert!(a.contains("u", "ns"));
        assert!(!a.contains("u", "other"));
        for i in 0..ABSENT_REMEMBERED {
            a.insert(&format!("x{i}"), "");
        }
        assert!(!a.contains("u", "ns"));
        assert!(a.contains("x1", ""));
        assert_eq!(a.set.len(), ABSENT_REMEMBERED);
    }
}
