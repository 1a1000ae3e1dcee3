//! The ReplicaSet and ReplicationController controllers: keep `spec.replicas` pods from the
//! template running for each owner, as upstream's `pkg/controller/replicaset` (which also
//! runs ReplicationControllers, through the same logic).
//!
//! Guarantees:
//! * Level-triggered: a sync reads the owner and its pods from the informer caches and acts
//!   on the difference, so any number of syncs of the same state converge to one result,
//!   across restarts and leadership changes too.
//! * No over-creation while the cache catches up with our own writes (see [`sync`]).
//! * Pods are owned through controller references: orphans the selector matches are adopted,
//!   owned pods it no longer matches are released, other controllers' pods are left alone.
//! * Scale-down deletes the pods upstream would ([`ranking`]).
//!
//! Event handlers only enqueue owner keys (and count expectations down); see [`handlers`].

pub mod handlers;
pub mod owner;
pub mod pods;
pub mod ranking;
pub mod slow_start;
pub mod status;
pub mod sync;
#[cfg(test)]
mod sync_tests;

use std::sync::Arc;

use controller_runtime::{
    Change, Context, Controller, Expectations, Informer, Key, WorkQueue, spawn_workers,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use tokio::task::JoinSet;

pub use owner::ReplicaOwner;
pub use sync::Replicas;

use handlers::{Observation, OwnerLookup};

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "replicaset",
        start: start::<ReplicaSet>,
    },
    Controller {
        name: "replicationcontroller",
        start: start::<ReplicationController>,
    },
];

/// Owners of kind `K` in the informer cache.
struct Cached<K>(Informer<K>);

impl<K: ReplicaOwner> OwnerLookup for Cached<K> {
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Key> {
        if r.kind != K::kind(&()) {
            return None;
        }
        let key = Key::new(namespace, &r.name);
        let owner = self.0.get(&key)?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    fn selecting(&self, pod: &Pod) -> Vec<Key> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let empty = Default::default();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.0
            .list_in(ns)
            .iter()
            .filter(|o| {
                // An empty selector would match everything; upstream has it match nothing.
                o.owner_spec()
                    .selector
                    .is_ok_and(|s| !s.is_everything() && s.matches(labels))
            })
            .map(|o| Key::of(o.as_ref()))
            .collect()
    }
}

/// An owner changed: sync it. A deleted owner's expectations are forgotten at once, as
/// upstream's `deleteRS`: an owner recreated under the same name before the key is synced
/// must not wait out the old one's expectations (the old one's pods no longer resolve to this
/// key, so they would never be observed).
fn owner_changed<K: ReplicaOwner>(c: &Change<K>, x: &Expectations, q: &WorkQueue<Key>) {
    let key = Key::of(c.object().as_ref());
    if let Change::Deleted(_) = c {
        x.delete(&key);
    }
    q.add(key);
}

/// Registers the handlers for owners of kind `K` and spawns their workers.
pub fn start<K: ReplicaOwner>(ctx: &Context, tasks: &mut JoinSet<()>) {
    let owners = ctx.informers.get::<K>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let expectations = Arc::new(Expectations::new());

    let (q, x) = (queue.clone(), expectations.clone());
    owners.on_change(move |c| owner_changed(c, &x, &q));

    let (q, x, lookup) = (queue.clone(), expectations.clone(), Cached(owners.clone()));
    pods.on_change(move |c| {
        let reaction = handlers::react(c, &lookup);
        for o in reaction.observed {
            match o {
                Observation::Created(key) => x.creation_observed(&key),
                Observation::Deleted(key, uid) => x.deletion_observed(&key, &uid),
            }
        }
        for key in reaction.enqueue {
            q.add(key);
        }
    });

    let reconciler = Arc::new(Replicas {
        owners,
        pods,
        client: ctx.client.clone(),
        recorder: ctx.events.recorder(K::COMPONENT),
        expectations,
    });
    spawn_workers(
        K::CONTROLLER,
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn rs(uid: &str) -> Arc<ReplicaSet> {
        Arc::new(ReplicaSet {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn a_deleted_owner_forgets_its_expectations_at_once() {
        let (x, q) = (Expectations::new(), WorkQueue::new());
        let key = Key::new("ns", "web");
        x.expect(&key, 3, []);
        owner_changed(
            &Change::Updated {
                old: rs("1"),
                new: rs("1"),
            },
            &x,
            &q,
        );
        assert!(!x.satisfied(&key), "an update keeps them");
        owner_changed(&Change::Deleted(rs("1")), &x, &q);
        assert!(x.satisfied(&key), "a recreated owner is not held back");
        owner_changed(&Change::Added(rs("2")), &x, &q);
        assert_eq!(q.len(), 1, "the key is queued (once)");
    }
}
