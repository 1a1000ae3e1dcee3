//! The watch cache: one store watch per resource feeds an in-memory copy of every object and a
//! window of recent events; lists and watches are answered from it.
//!
//! Guarantees:
//! * Objects are encoded once, when their event arrives: every list and every watcher shares the
//!   same `Bytes` (upstream's `cachingObject`).
//! * A watch started at revision `r` receives every event with revision `> r` exactly once, in
//!   order — replayed from the window, then live — or fails with 410 Gone when `r` is older than
//!   the window.
//! * A slow watcher never blocks the cache: its bounded queue overflowing closes that watcher
//!   (the client resumes from its last resourceVersion, as client-go does after any watch end).
//! * The object map and the window are swapped as a whole when the cache (re)lists, like
//!   kube-rs' reflector; watchers of the old generation are closed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use api::ApiError;
use api::resources::ResourceInfo;
use futures::StreamExt;
use store::{EventKind, KvStore, RangeRequest, StoreError, WatchEvent};
use tokio::sync::{mpsc, watch};

pub use crate::cached::CachedObject;

/// How many past events each resource keeps for watch resumption.
const HISTORY_CAPACITY: usize = 10_000;
/// Events older than this leave the window even when it is not full.
const HISTORY_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Events queued for one watcher before it is considered stuck and closed.
pub const WATCHER_QUEUE: usize = 1024;
/// Keys read per page while (re)listing the store.
const RELIST_PAGE: usize = 2000;

/// The watch event type of a store change: a put of a key that existed is a modification.
pub(crate) fn event_type(kind: EventKind, existed: bool) -> EventType {
    match (kind, existed) {
        (EventKind::Delete, _) => EventType::Deleted,
        (_, true) => EventType::Modified,
        (_, false) => EventType::Added,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as the cache saw it.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    /// The object after the change; for a delete, its last state stamped with the delete's revision.
    pub object: Arc<CachedObject>,
    /// The object before the change (for selector transitions: a watcher whose selector stops
    /// matching sees a DELETED).
    pub prev: Option<Arc<CachedObject>>,
    pub at: Instant,
}

impl CacheEvent {
    pub fn rv(&self) -> i64 {
        self.object.rv
    }
}

/// What a watcher receives.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(Arc<CacheEvent>),
    /// The cache has seen everything up to this revision (for bookmarks).
    Progress(i64),
}

struct Watcher {
    id: u64,
    tx: mpsc::Sender<WatchItem>,
}

struct State {
    objects: BTreeMap<Arc<str>, Arc<CachedObject>>,
    /// Revision the cache is complete up to.
    rv: i64,
    /// Every event with a revision above this is in `history` (or was never under our prefix).
    history_start: i64,
    history: VecDeque<Arc<CacheEvent>>,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    ready: bool,
}

/// The cache of one resource (one storage prefix).
pub struct WatchCache {
    info: &'static ResourceInfo,
    prefix: String,
    state: RwLock<State>,
    /// Publishes `State::rv` so readers can wait for freshness.
    rv_tx: watch::Sender<i64>,
    /// Why the cache is not serving, when it is not.
    last_error: Mutex<Option<String>>,
}

/// A registered watcher: initial items to send first, then the live queue.
pub struct Subscription {
    pub initial: Vec<WatchItem>,
    pub rx: mpsc::Receiver<WatchItem>,
    /// The revision the initial items bring the watcher up to.
    pub rv: i64,
}

impl WatchCache {
    pub fn new(info: &'static ResourceInfo) -> Arc<WatchCache> {
        let (rv_tx, _) = watch::channel(0);
        Arc::new(WatchCache {
            info,
            prefix: info.storage_prefix(),
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                rv: 0,
                history_start: 0,
                history: VecDeque::new(),
                watchers: Vec::new(),
                next_watcher: 0,
                ready: false,
            }),
            rv_tx,
            last_error: Mutex::new(None),
        })
    }

    pub fn info(&self) -> &'static ResourceInfo {
        self.info
    }

    /// Runs the cache: list, then follow the store's watch; relist whenever the watch breaks.
    /// While it is broken the cache does not serve: its watchers are ended (they resume from
    /// their last `resourceVersion`) and readers go to the store.
    pub async fn run(self: Arc<Self>, kv: Arc<dyn KvStore>) {
        let mut backoff = Duration::from_millis(100);
        // When the current streak of failures began.
        let mut broken_since: Option<Instant> = None;
        loop {
            let mut synced = false;
            let e = match self.sync_once(&kv, &mut synced, broken_since).await {
                Ok(()) => StoreError::Unavailable("store watch ended".into()),
                Err(e) => e,
            };
            if synced {
                broken_since = None;
                backoff = Duration::from_millis(100);
            }
            self.unready(&e);
            if broken_since.is_none() {
                broken_since = Some(Instant::now());
                tracing::warn!(
                    resource = self.info.plural,
                    error = %e,
                    "watch cache lost its store watch; reads go to the store while it relists"
                );
            } else {
                tracing::debug!(resource = self.info.plural, error = %e, "watch cache relist failed; retrying");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Marks the cache as not serving and ends its watchers.
    fn unready(&self, why: &StoreError) {
        let mut st = self.write();
        st.ready = false;
        st.watchers.clear();
        drop(st);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(why.to_string());
        }
    }

    /// One list-then-watch cycle; sets `synced` once the cache serves again.
    async fn sync_once(
        &self,
        kv: &Arc<dyn KvStore>,
        synced: &mut bool,
        broken_since: Option<Instant>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let (objects, rv) = self.list_store(kv).await?;
        tracing::debug!(
            resource = self.info.plural,
            objects = objects.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "watch cache listed the store"
        );
        let mut stream = kv.watch(&self.prefix, rv).await?;
        self.replace(objects, rv);
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
        *synced = true;
        if let Some(since) = broken_since {
            tracing::info!(
                resource = self.info.plural,
                rv,
                down_ms = since.elapsed().as_millis() as u64,
                "watch cache is following the store again"
            );
        }
        while let Some(ev) = stream.next().await {
            self.apply(ev?);
        }
        Ok(())
    }

    /// Lists the store page by page. Each page is decoded on a blocking thread while the next
    /// one is read, so a large resource loads on both cores at start-up.
    async fn list_store(
        &self,
        kv: &Arc<dyn KvStore>,
    ) -> Result<(BTreeMap<Arc<str>, Arc<CachedObject>>, i64), StoreError> {
        let info = self.info;
        let decode = move |kvs: Vec<store::KeyValue>| {
            kvs.into_iter()
                .filter_map(|item| match CachedObject::from_store(info, &item.key, &item.value, item.mod_revision) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        tracing::error!(resource = info.plural, error = %e, "skipping corrupt stored object");
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        let mut objects = BTreeMap::new();
        let mut start = None;
        let mut revision = None;
        let mut decoding: Option<tokio::task::JoinHandle<Vec<CachedObject>>> = None;
        loop {
            let resp = kv
                .range(RangeRequest {
                    prefix: self.prefix.clone(),
                    start: start.take(),
                    revision,
                    limit: Some(RELIST_PAGE),
                })
                .await?;
            revision = Some(resp.revision);
            start = resp.kvs.last().map(|kv| format!("{}\0", kv.key));
            if let Some(previous) = decoding.take() {
                for o in previous
                    .await
                    .map_err(|e| StoreError::Internal(format!("decoding a listing: {e}")))?
                {
                    objects.insert(o.key.clone(), Arc::new(o));
                }
            }
            let kvs = resp.kvs;
            decoding = Some(tokio::task::spawn_blocking(move || decode(kvs)));
            if !resp.more {
                break;
            }
        }
        if let Some(last) = decoding {
            for o in last
                .await
                .map_err(|e| StoreError::Internal(format!("decoding a listing: {e}")))?
            {
                objects.insert(o.key.clone(), Arc::new(o));
            }
        }
        Ok((objects, revision.unwrap_or(0)))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as before (every
        // mutation below is a single step), so a poisoned lock is still usable.
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Swaps in a fresh listing; watchers of the previous listing are closed.
    fn replace(&self, objects: BTreeMap<Arc<str>, Arc<CachedObject>>, rv: i64) {
        let mut st = self.write();
        st.objects = objects;
        st.rv = rv;
        st.history_start = rv;
        st.history.clear();
        st.watchers.clear();
        st.ready = true;
        drop(st);
        self.rv_tx.send_replace(rv);
        tracing::debug!(resource = self.info.plural, rv, "watch cache ready");
    }

    fn apply(&self, ev: WatchEvent) {
        let rv = ev.revision();
        if ev.kind == EventKind::Progress {
            self.progress(rv);
            return;
        }
        // Decode before taking the lock: readers never wait on JSON work. A delete's value is
        // the object's last state.
        let object = match CachedObject::from_store(self.info, &ev.kv.key, &ev.kv.value, rv) {
            Ok(o) => Arc::new(o),
            Err(e) => {
                tracing::error!(resource = self.info.plural, error = %e, "skipping corrupt stored object");
                self.progress(rv);
                return;
            }
        };
        let mut st = self.write();
        if rv <= st.rv {
            return; // already seen
        }
        let prev = match ev.kind {
            EventKind::Delete => st.objects.remove(ev.kv.key.as_str()),
            _ => st.objects.insert(object.key.clone(), object.clone()),
        };
        let kind = event_type(ev.kind, prev.is_some());
        let event = Arc::new(CacheEvent {
            kind,
            object,
            prev,
            at: Instant::now(),
        });
        st.rv = rv;
        st.history.push_back(event.clone());
        while st.history.len() > HISTORY_CAPACITY
            || st
                .history
                .front()
                .is_some_and(|e| e.at.elapsed() > HISTORY_MAX_AGE)
        {
            if let Some(old) = st.history.pop_front() {
                st.history_start = old.rv();
            }
        }
        st.watchers
            .retain(|w| match w.tx.try_send(WatchItem::Event(event.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(
                        resource = self.info.plural,
                        watcher = w.id,
                        "closing a watcher that stopped reading"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        drop(st);
        self.rv_tx.send_replace(rv);
    }

    /// Records that the store has no events for this prefix up to `rv`.
    pub fn progress(&self, rv: i64) {
        let mut st = self.write();
        if rv > st.rv {
            st.rv = rv;
            st.watchers.retain(|w| {
                !matches!(
                    w.tx.try_send(WatchItem::Progress(rv)),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            });
            drop(st);
            self.rv_tx.send_replace(rv);
        }
    }

    /// Tells every watcher how far the cache has got, without changing anything.
    pub fn tick(&self) {
        let mut st = self.write();
        let rv = st.rv;
        st.watchers.retain(|w| {
            !matches!(
                w.tx.try_send(WatchItem::Progress(rv)),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }

    /// The revision the cache is complete up to, if it is serving.
    pub fn ready_rv(&self) -> Option<i64> {
        let st = self.read();
        st.ready.then_some(st.rv)
    }

    /// Waits until the cache has seen revision `rv`, or fails with upstream's 504 "Too large
    /// resource version" after `timeout`.
    pub async fn wait_for(&self, rv: i64, timeout: Duration) -> Result<(), ApiError> {
        let mut rx = self.rv_tx.subscribe();
        let wait = rx.wait_for(|&seen| seen >= rv && self.read().ready);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let current = self.read().rv;
                let mut e = ApiError::timeout(format!(
                    "Too large resource version: {rv}, current resource version: {current}"
                ));
                e.retry_after_seconds = Some(1);
                if let Ok(last) = self.last_error.lock()
                    && let Some(why) = last.as_ref()
                {
                    e.message
                        .push_str(&format!(" (watch cache not synced: {why})"));
                }
                Err(e)
            }
        }
    }

    /// Objects under `namespace` (all when `None`) that `keep` accepts, in key order, with the
    /// revision of the snapshot.
    pub fn list(
        &self,
        namespace: Option<&str>,
        keep: impl Fn(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, i64) {
        let st = self.read();
        let out = match namespace {
            Some(ns) if self.info.namespaced => {
                let lo = format!("{}{ns}/", self.prefix);
                let hi = format!("{}{ns}0", self.prefix); // '0' is the byte after '/'
                st.objects
                    .range::<str, _>((
                        std::ops::Bound::Included(lo.as_str()),
                        std::ops::Bound::Excluded(hi.as_str()),
                    ))
                    .map(|(_, o)| o)
                    .filter(|o| keep(o))
                    .cloned()
                    .collect()
            }
            _ => st.objects.values().filter(|o| keep(o)).cloned().collect(),
        };
        (out, st.rv)
    }

    /// One object by store key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).cloned()
    }

    /// Starts a watch. With `from = None` the watcher first receives every current object as
    /// ADDED (upstream's "Get State and Start at Most Recent"); with `Some(rv)` it receives the
    /// events after `rv`. Registration and the snapshot happen under one lock, so nothing falls
    /// between them.
    pub fn subscribe(
        &self,
        from: Option<i64>,
        namespace: Option<&str>,
    ) -> Result<Subscription, ApiError> {
        let mut st = self.write();
        if !st.ready {
            return Err(ApiError::service_unavailable(format!(
                "the watch cache of {} is not ready yet; retry shortly",
                self.info.plural
            )));
        }
        let initial: Vec<WatchItem> = match from {
            None => {
                let ns_prefix = namespace
                    .filter(|_| self.info.namespaced)
                    .map(|ns| format!("{}{ns}/", self.prefix));
                st.objects
                    .iter()
                    .filter(|(k, _)| ns_prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
                    .map(|(_, o)| {
                        WatchItem::Event(Arc::new(CacheEvent {
                            kind: EventType::Added,
                            object: o.clone(),
                            prev: None,
                            at: Instant::now(),
                        }))
                    })
                    .collect()
            }
            Some(rv) => {
                if rv < st.history_start {
                    return Err(ApiError::too_old_resource_version(rv, st.history_start + 1));
                }
                st.history
                    .iter()
                    .filter(|e| e.rv() > rv)
                    .map(|e| WatchItem::Event(e.clone()))
                    .collect()
            }
        };
        let (tx, rx) = mpsc::channel(WATCHER_QUEUE);
        let id = st.next_watcher;
        st.next_watcher += 1;
        st.watchers.push(Watcher { id, tx });
        Ok(Subscription {
            initial,
            rx,
            rv: st.rv,
        })
    }

    /// The oldest revision a watch can start from.
    pub fn oldest_rv(&self) -> i64 {
        self.read().history_start
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
