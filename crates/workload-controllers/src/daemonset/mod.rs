//! The DaemonSet controller: one pod per eligible node ([`placement`]), kept there as nodes
//! join, leave or change, and rolled to new templates with `maxUnavailable` / `maxSurge`
//! ([`plan`]), the template history kept as ControllerRevisions ([`crate::history`]).
//!
//! Event handlers only enqueue DaemonSet keys: a set's own changes, its pods' and
//! revisions' changes, and — for every set — nodes appearing, disappearing or changing
//! labels, taints or schedulability.

pub mod placement;
pub mod plan;
pub mod status;
pub mod sync;

use std::sync::Arc;

use controller_runtime::{Change, Context, Expectations, Key, WorkQueue, spawn_workers};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use tokio::task::JoinSet;

use crate::handlers::{Cached, owner_of_meta, watch_pods};
use crate::history::History;

pub use sync::DaemonSets;

static NO_SELECTOR: LabelSelector = LabelSelector {
    match_expressions: None,
    match_labels: None,
};

fn selector(s: &DaemonSet) -> &LabelSelector {
    s.spec.as_ref().map_or(&NO_SELECTOR, |s| &s.selector)
}

/// Whether a node change can change where daemon pods belong.
fn node_change_matters(c: &Change<Node>) -> bool {
    match c {
        Change::Added(_) | Change::Deleted(_) => true,
        Change::Updated { old, new } => {
            let spec = |n: &Node| n.spec.as_ref().map(|s| (s.taints.clone(), s.unschedulable));
            old.metadata.labels != new.metadata.labels || spec(old) != spec(new)
        }
    }
}

/// Registers the handlers and spawns the workers.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let sets = ctx.informers.get::<DaemonSet>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
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
    let (q, all) = (queue.clone(), sets.clone());
    nodes.on_change(move |c| {
        if node_change_matters(c) {
            for ds in all.list() {
                q.add(Key::of(ds.as_ref()));
            }
        }
    });

    let reconciler = Arc::new(DaemonSets {
        sets,
        pods,
        nodes,
        history: History {
            revisions,
            client: ctx.client.clone(),
        },
        client: ctx.client.clone(),
        recorder: ctx.events.recorder("daemonset-controller"),
        expectations,
    });
    spawn_workers(
        "daemonset",
        reconciler,
        queue,
        ctx.settings.workers,
        &ctx.informers,
        tasks,
    );
}
