//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! `foregroundDeletion` and `orphan` finalizers the API server puts on owners deleted with
//! those propagation policies (upstream's `pkg/controller/garbagecollector`).
//!
//! Shape: discovery finds every type that can be listed, watched and deleted (rediscovered
//! every [`REDISCOVERY`], so CustomResources are followed once their CRD appears); one
//! metadata-only watch per type (`PartialObjectMetadata`) feeds the [`graph`]; graph changes
//! queue UIDs on two work queues, whose workers act through [`attempt`].
//!
//! Guarantees:
//! * Workers start only once the first discovery's watches have listed (or after
//!   [`SYNC_TIMEOUT`], for a type that cannot be listed): a half-built graph could miss the
//!   dependents of an owner being orphaned. Deletions are safe even then (see [`attempt`]).
//! * A UID is never worked on by two workers at once (the queue's guarantee); failures are
//!   retried with per-UID exponential backoff.
//! * Owner references resolve as upstream: a namespaced owner kind is looked up in the
//!   dependent's namespace, a cluster-scoped one at cluster scope; a cluster-scoped dependent
//!   naming a namespaced owner kind is never collected through that reference (it cannot
//!   resolve); an owner kind that is not served is looked at again every 30 s, since its
//!   CRD may be on the way.
//! * Events (`events`, `events.k8s.io`) are not followed, as upstream's default ignore list.

pub mod attempt;
pub mod decide;
pub mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use controller_runtime::{Context, WorkQueue};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use crate::discovery::{self, Catalog, Served};
use attempt::{Collector, Next};
use graph::Graph;

/// How often the served types are discovered again.
pub const REDISCOVERY: Duration = Duration::from_secs(30);
/// Longest wait for the first lists before the workers start anyway.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Upstream's `--concurrent-gc-syncs` default.
pub const WORKERS: usize = 20;

/// Types the collector never follows.
fn ignored(s: &Served) -> bool {
    s.api.plural == "events" && (s.api.group.is_empty() || s.api.group == "events.k8s.io")
}

/// Starts the collector for one term.
pub fn start(ctx: &Context, tasks: &mut JoinSet<()>) {
    let graph = Arc::new(Mutex::new(Graph::default()));
    let catalog = Arc::new(RwLock::new(Arc::new(Catalog::default())));
    let collector = Arc::new(Collector::new(
        ctx.client.clone(),
        graph,
        catalog,
        WorkQueue::new(),
        WorkQueue::new(),
    ));
    let (synced_tx, synced_rx) = watch::channel(false);
    tasks.spawn(monitors(collector.clone(), synced_tx));
    for i in 0..WORKERS {
        let (c, mut synced) = (collector.clone(), synced_rx.clone());
        let orphaning = i % 4 == 3;
        tasks.spawn(async move {
            if synced.wait_for(|s| *s).await.is_err() {
                return;
            }
            if orphaning {
                work(&c, &c.orphans, "attemptToOrphan").await;
            } else {
                work(&c, &c.deletes, "attemptToDelete").await;
            }
        });
    }
}

/// Drains one queue until it shuts down.
async fn work(c: &Arc<Collector>, q: &Arc<WorkQueue<String>>, what: &'static str) {
    while let Some(uid) = q.get().await {
        let result = if what == "attemptToOrphan" {
            c.attempt_orphan(&uid).await
        } else {
            c.attempt_delete(&uid).await
        };
        match result {
            Ok(next) => {
                q.forget(&uid);
                if let Next::After(d) = next {
                    q.add_after(uid.clone(), d);
                }
            }
            Err(e) => {
                let chained = controller_runtime::worker::chain(&e);
                if controller_runtime::worker::is_conflict(&e) {
                    tracing::debug!(%uid, error = %chained, "{what}: conflict; retrying");
                } else {
                    tracing::warn!(%uid, error = %chained, retries = q.failures(&uid), "{what} failed; will retry with backoff");
                }
                q.add_rate_limited(uid.clone());
            }
        }
        q.done(&uid);
    }
}

/// Keeps one watch per collectable type, rediscovering the types periodically.
async fn monitors(c: Arc<Collector>, synced: watch::Sender<bool>) {
    let mut running: HashMap<(String, String), (String, AbortHandle)> = HashMap::new();
    let mut watches = JoinSet::new();
    let mut first = true;
    loop {
        match discovery::discover(&c.client).await {
            Ok(found) => {
                let mut initial = Vec::new();
                let wanted: Vec<Served> = found
                    .resources
                    .iter()
                    .filter(|s| s.collectable() && !ignored(s))
                    .cloned()
                    .collect();
                let keys: HashSet<(String, String)> = wanted
                    .iter()
                    .map(|s| (s.api.group.clone(), s.api.plural.clone()))
                    .collect();
                running.retain(|k, (_, h)| {
                    let keep = keys.contains(k);
                    if !keep {
                        tracing::info!(resource = %format!("{}.{}", k.1, k.0), "no longer served; stopping its watch");
                        h.abort();
                    }
                    keep
                });
                if let Ok(mut cat) = c.catalog.write() {
                    *cat = Arc::new(found);
                }
                for s in wanted {
                    let key = (s.api.group.clone(), s.api.plural.clone());
                    // A change of preferred version restarts the watch at the new one.
                    if running.get(&key).is_some_and(|(v, _)| *v == s.api.version) {
                        continue;
                    }
                    if let Some((_, h)) = running.remove(&key) {
                        h.abort();
                    }
                    let (tx, rx) = watch::channel(false);
                    initial.push(rx);
                    let handle = watches.spawn(monitor(c.clone(), s.clone(), tx));
                    running.insert(key, (s.api.version.clone(), handle));
                }
                if first {
                    first = false;
                    let all =
                        futures::future::join_all(initial.into_iter().map(|mut rx| async move {
                            let _ = rx.wait_for(|s| *s).await;
                        }));
                    if tokio::time::timeout(SYNC_TIMEOUT, all).await.is_err() {
                        tracing::warn!(
                            "not every type listed in time; garbage collection starts anyway"
                        );
                    }
                    synced.send_replace(true);
                    tracing::debug!(types = running.len(), "garbage collector synced");
                }
            }
            Err(e) => {
                tracing::warn!(error = %controller_runtime::worker::chain(&e), "garbage collector: discovery failed; retrying");
            }
        }
        // Reap finished watch tasks (they only end when aborted).
        while watches.try_join_next().is_some() {}
        tokio::time::sleep(if first {
            Duration::from_secs(2)
        } else {
            REDISCOVERY
        })
        .await;
    }
}

/// Watches one type's metadata forever, feeding the graph.
async fn monitor(c: Arc<Collector>, s: Served, synced: watch::Sender<bool>) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(c.client.clone(), &s.api);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let (api_version, kind) = (s.api.api_version.clone(), s.api.kind.clone());
    let mut known: HashSet<String> = HashSet::new();
    let mut relisting: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relisting = Some(HashSet::new()),
            Ok(Event::InitApply(o)) | Ok(Event::Apply(o)) => {
                if let Some(uid) = o.metadata.uid.clone() {
                    if let Some(seen) = relisting.as_mut() {
                        seen.insert(uid.clone());
                    }
                    known.insert(uid);
                }
                let r = lock(&c.graph).observe(&api_version, &kind, &o.metadata);
                c.enqueue(r);
            }
            Ok(Event::InitDone) => {
                if let Some(seen) = relisting.take() {
                    // Deleted while the watch was down.
                    for uid in known.difference(&seen) {
                        let r = lock(&c.graph).forget(uid);
                        c.enqueue(r);
                    }
                    known = seen;
                }
                synced.send_replace(true);
            }
            Ok(Event::Delete(o)) => {
                if let Some(uid) = o.metadata.uid.as_deref() {
                    known.remove(uid);
                    let r = lock(&c.graph).forget(uid);
                    c.enqueue(r);
                }
            }
            Err(e) => {
                tracing::warn!(resource = %s.group_resource(), error = %e, "garbage collector watch failed; relisting after a backoff");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
