//! The Deployment controller (upstream's `pkg/controller/deployment`): a Deployment owns
//! ReplicaSets, one per pod template it has had (named `<deployment>-<pod-template-hash>`,
//! their `deployment.kubernetes.io/revision` annotations the rollout history that
//! `kubectl rollout history|undo` read); it rolls from the old ones to the new one by its
//! strategy and reports progress in status. The ReplicaSet controller makes the pods.
//!
//! Handlers only enqueue Deployment keys: a Deployment change; a ReplicaSet change (its
//! controlling Deployment, or for an orphan every Deployment whose selector matches, so it can
//! be adopted); a pod deletion (a Recreate rollout waits for old pods to be gone).

pub mod sync;
pub mod util;

use std::sync::Arc;

use api::selector::LabelSelector;
use controller_runtime::{
    Change, Context, Controller, Informer, Key, WorkQueue, owners, spawn_workers,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use tokio::task::JoinSet;

pub use sync::{Deployments, SyncError};

/// The controllers this crate provides, for the controller manager.
pub const CONTROLLERS: &[Controller] = &[Controller {
    name: "deployment",
    start,
}];

/// Upstream's event source.
pub const COMPONENT: &str = "deployment-controller";

/// The Deployment controlling `meta`, if it is one we have.
fn owner_key(
    deployments: &Informer<Deployment>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<Key> {
    let r = owners::controller_of(meta)?;
    if r.kind != "Deployment" {
        return None;
    }
    let key = Key::new(meta.namespace.as_deref().unwrap_or_default(), &r.name);
    let d = deployments.get(&key)?;
    (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
}

/// Deployments in the ReplicaSet's namespace whose selector matches it (orphan adoption).
fn matching(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<Key> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
    deployments
        .list_in(ns)
        .iter()
        .filter(|d| {
            LabelSelector::from_k8s_opt(d.spec.as_ref().map(|s| &s.selector))
                .is_ok_and(|s| !s.is_everything() && s.matches(&rs.metadata.labels))
        })
        .map(|d| Key::of(d.as_ref()))
        .collect()
}

fn rs_keys(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<Key> {
    match owner_key(deployments, &rs.metadata) {
        Some(k) => vec![k],
        None if owners::controller_of(&rs.metadata).is_none() => matching(deployments, rs),
        None => Vec::new(),
    }
}

/// Starts the Deployment controller.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let deployments = ctx.informers.get::<Deployment>();
    let replicasets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();

    let q = queue.clone();
    deployments.on_change(move |c| q.add(Key::of(c.object().as_ref())));

    let (q, ds) = (queue.clone(), deployments.clone());
    replicasets.on_change(move |c: &Change<ReplicaSet>| {
        let mut keys = rs_keys(&ds, c.object());
        if let Some(old) = c.old() {
            keys.extend(rs_keys(&ds, old));
        }
        for k in keys {
            q.add(k);
        }
    });

    let (q, ds, rss) = (queue.clone(), deployments.clone(), replicasets.clone());
    pods.on_change(move |c: &Change<Pod>| {
        let Change::Deleted(p) = c else { return };
        let Some(r) = owners::controller_of(&p.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(rs) = rss.get(&Key::new(ns, &r.name))
            && let Some(k) = owner_key(&ds, &rs.metadata)
        {
            q.add(k);
        }
    });

    let reconciler = Arc::new(Deployments {
        deployments,
        replicasets,
        pods,
        client: ctx.client.clone(),
        recorder: ctx.events.recorder(COMPONENT),
    });
    spawn_workers(
        "deployment",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}
