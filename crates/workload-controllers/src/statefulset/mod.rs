//! The StatefulSet controller: pods with stable ordinal identities and storage, created,
//! scaled and updated in the order upstream guarantees (see [`plan`]), with the template
//! history kept as ControllerRevisions ([`crate::history`]).
//!
//! Event handlers only enqueue set keys: a set's own changes, its pods' changes (through
//! their controller reference, or the selector for orphans) and its revisions' changes.

pub mod identity;
pub mod plan;
pub mod status;
pub mod sync;

use std::sync::Arc;

use controller_runtime::{Context, Expectations, Key, WorkQueue, spawn_workers};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use tokio::task::JoinSet;

use crate::handlers::{Cached, owner_of_meta, watch_pods};
use crate::history::History;

pub use sync::StatefulSets;

static NO_SELECTOR: LabelSelector = LabelSelector {
    match_expressions: None,
    match_labels: None,
};

fn selector(s: &StatefulSet) -> &LabelSelector {
    s.spec.as_ref().map_or(&NO_SELECTOR, |s| &s.selector)
}

/// Registers the handlers and spawns the workers.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let sets = ctx.informers.get::<StatefulSet>();
    let pods = ctx.informers.get::<Pod>();
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let expectations = Arc::new(Expectations::new());

    let q = queue.clone();
    sets.on_change(move |c| q.add(Key::of(c.object().as_ref())));
    let cached = || Cached {
        informer: sets.clone(),
        selector,
    };
    watch_pods(&pods, cached(), expectations.clone(), queue.clone());
    let (q, owners) = (queue.clone(), cached());
    revisions.on_change(move |c| {
        if let Some(k) = owner_of_meta(&c.object().metadata, &owners) {
            q.add(k);
        }
    });

    let reconciler = Arc::new(StatefulSets {
        sets,
        pods,
        claims,
        history: History {
            revisions,
            client: ctx.client.clone(),
        },
        client: ctx.client.clone(),
        recorder: ctx.events.recorder("statefulset-controller"),
        expectations,
    });
    spawn_workers(
        "statefulset",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}
