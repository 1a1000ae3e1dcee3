//! The conformance suite every [`KvStore`] backend must pass: one public function per property,
//! and [`run_all`] to run them all, each on a fresh store.
//!
//! Written against the trait only, so the embedded backend and an etcd backend are held to the
//! same behaviour. What a backend may choose is left open: revisions need not start at 0
//! (a fresh etcd starts at 1), a watch may report `Compacted`/`FutureRevision` either from
//! [`KvStore::watch`] itself or as the first item of the stream, and the `prev` of an event is
//! optional (but must be right when present). What is pinned down:
//! * revisions: each successful write takes exactly the next revision; failed writes take none;
//! * `Conflict` carries the key's current state; a delete returns the key's last state;
//! * a delete event's `kv` has the delete's revision and the key's last value;
//! * ranges: key order, prefix isolation (`/a/` does not match `/ab`), `start` (paging passes the
//!   last key plus `"\0"`), `limit`/`more`, reads at older revisions, `revision: Some(0)` means
//!   the latest (as in etcd), `RangeResponse::revision` is the revision read at;
//! * compaction at `C`: reads below `C` and watches from below `C - 1` fail with `Compacted`;
//!   reads at `C` and the latest state are intact; compacting below `C` fails, at `C` is a no-op;
//! * watches: every event after the start revision, exactly once, in order, then live events,
//!   even with concurrent writers and a consumer that does not read for a while.
//!
//! Each test assumes a store that no one else writes to while it runs and whose automatic
//! compaction (if any) will not run during the test. Keys all live under `/conformance/`. The
//! tests need a tokio runtime (they spawn tasks). The suite panics, with a message saying what
//! was expected, on the first violation.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    EventKind, KeyValue, KvStore, RangeRequest, RangeResponse, Revision, StoreError, WatchEvent,
    WatchStream,
};

/// How long a test waits for an expected watch event or a batch of writes.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test watches to make sure nothing (more) arrives.
const QUIET: Duration = Duration::from_millis(200);

/// Runs every property, each on a store from `make` (which must be fresh and empty).
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn KvStore>>,
{
    create_get_already_exists(make().await).await;
    update_compare_and_swap(make().await).await;
    delete_with_and_without_expected_revision(make().await).await;
    range_prefix_start_limit(make().await).await;
    range_at_older_revisions(make().await).await;
    revisions_are_consecutive(make().await).await;
    concurrent_writes_get_distinct_consecutive_revisions(make().await).await;
    watch_replays_history_then_live(make().await).await;
    watch_exactly_once_in_order_under_concurrent_writers(make().await).await;
    watch_prefix_isolation(make().await).await;
    slow_watcher_does_not_block_writers(make().await).await;
    compaction(make().await).await;
    future_revisions(make().await).await;
    current_and_compacted_revision(make().await).await;
    progress_requests(make().await).await;
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn kv(key: &str, value: &str, create: Revision, modified: Revision) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: b(value),
        create_revision: create,
        mod_revision: modified,
    }
}

async fn current(store: &Arc<dyn KvStore>) -> Revision {
    store.current_revision().await.expect("current_revision")
}

async fn range(store: &Arc<dyn KvStore>, req: RangeRequest) -> RangeResponse {
    let what = format!("{req:?}");
    store
        .range(req)
        .await
        .unwrap_or_else(|e| panic!("range {what}: {e}"))
}

fn prefix(p: &str) -> RangeRequest {
    RangeRequest {
        prefix: p.into(),
        ..RangeRequest::default()
    }
}

fn at(p: &str, revision: Revision) -> RangeRequest {
    RangeRequest {
        prefix: p.into(),
        revision: Some(revision),
        ..RangeRequest::default()
    }
}

fn keys(resp: &RangeResponse) -> Vec<&str> {
    resp.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn revisions(events: &[WatchEvent]) -> Vec<Revision> {
    events.iter().map(WatchEvent::revision).collect()
}

async fn watch(store: &Arc<dyn KvStore>, prefix: &str, after: Revision) -> WatchStream {
    store
        .watch(prefix, after)
        .await
        .unwrap_or_else(|e| panic!("watch {prefix:?} after {after}: {e}"))
}

/// The error a watch fails with, whether `watch` returns it or the stream yields it first.
async fn watch_error(store: &Arc<dyn KvStore>, prefix: &str, after: Revision) -> StoreError {
    match store.watch(prefix, after).await {
        Err(e) => e,
        Ok(mut stream) => match tokio::time::timeout(TIMEOUT, stream.next()).await {
            Ok(Some(Err(e))) => e,
            other => panic!("watch {prefix:?} after {after} should fail, got {other:?}"),
        },
    }
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {TIMEOUT:?}"),
    }
}

async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(stream).await);
    }
    out
}

async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("expected no more watch items, got {item:?}");
    }
}

/// `prev` is optional, but when present it must be the key's previous state.
fn check_prev(event: &WatchEvent, expected: Option<&KeyValue>) {
    match (&event.prev, expected) {
        (None, _) => {}
        (Some(prev), Some(expected)) => assert_eq!(prev, expected, "prev of {event:?}"),
        (Some(prev), None) => panic!("a create must have no prev, got {prev:?}"),
    }
}

fn check_event(event: &WatchEvent, kind: EventKind, kv: &KeyValue, prev: Option<&KeyValue>) {
    assert_eq!((event.kind, &event.kv), (kind, kv), "event {event:?}");
    assert_eq!(event.revision(), kv.mod_revision);
    check_prev(event, prev);
}

/// `create` stores a new key and returns the next revision; creating it again is
/// `AlreadyExists` and takes no revision.
pub async fn create_get_already_exists(store: Arc<dyn KvStore>) {
    let key = "/conformance/create/a";
    let r0 = current(&store).await;
    assert_eq!(store.get(key).await, Ok(None));
    let r1 = store.create(key, b("v1")).await.expect("create");
    assert_eq!(r1, r0 + 1, "a write takes the next revision");
    assert_eq!(store.get(key).await, Ok(Some(kv(key, "v1", r1, r1))));
    assert_eq!(
        store.create(key, b("other")).await,
        Err(StoreError::AlreadyExists { key: key.into() })
    );
    assert_eq!(
        current(&store).await,
        r1,
        "a failed create takes no revision"
    );
    assert_eq!(store.get(key).await, Ok(Some(kv(key, "v1", r1, r1))));
    let empty = "/conformance/create/empty";
    let r2 = store.create(empty, Bytes::new()).await.expect("create");
    assert_eq!(store.get(empty).await, Ok(Some(kv(empty, "", r2, r2))));
    assert_eq!(store.get("/conformance/create/missing").await, Ok(None));
}

/// `update` is a compare-and-swap on the mod revision: `NotFound` for a missing key, `Conflict`
/// carrying the current state when the revision moved on; the create revision is kept.
pub async fn update_compare_and_swap(store: Arc<dyn KvStore>) {
    let key = "/conformance/update/a";
    let r1 = store.create(key, b("v1")).await.expect("create");
    let missing = "/conformance/update/missing";
    assert_eq!(
        store.update(missing, b("x"), r1).await,
        Err(StoreError::NotFound {
            key: missing.into()
        })
    );
    let r2 = store.update(key, b("v2"), r1).await.expect("update");
    assert_eq!(r2, r1 + 1);
    assert_eq!(store.get(key).await, Ok(Some(kv(key, "v2", r1, r2))));
    assert_eq!(
        store.update(key, b("v3"), r1).await,
        Err(StoreError::Conflict {
            key: key.into(),
            expected: r1,
            current: Box::new(kv(key, "v2", r1, r2)),
        })
    );
    assert_eq!(
        current(&store).await,
        r2,
        "a failed update takes no revision"
    );
    let r3 = store.update(key, b("v3"), r2).await.expect("update");
    assert_eq!(store.get(key).await, Ok(Some(kv(key, "v3", r1, r3))));
}

/// `delete` with an expected revision is a compare-and-swap, without one it is unconditional;
/// it returns the delete's revision and the key's last state. A re-created key starts a new
/// incarnation (new create revision).
pub async fn delete_with_and_without_expected_revision(store: Arc<dyn KvStore>) {
    let key = "/conformance/delete/a";
    let r1 = store.create(key, b("v1")).await.expect("create");
    let r2 = store.update(key, b("v2"), r1).await.expect("update");
    let missing = "/conformance/delete/missing";
    let not_found = StoreError::NotFound {
        key: missing.into(),
    };
    assert_eq!(store.delete(missing, None).await, Err(not_found.clone()));
    assert_eq!(store.delete(missing, Some(r1)).await, Err(not_found));
    assert_eq!(
        store.delete(key, Some(r1)).await,
        Err(StoreError::Conflict {
            key: key.into(),
            expected: r1,
            current: Box::new(kv(key, "v2", r1, r2)),
        })
    );
    assert_eq!(
        current(&store).await,
        r2,
        "a failed delete takes no revision"
    );
    let deleted = store.delete(key, Some(r2)).await.expect("delete");
    assert_eq!(deleted, (r2 + 1, kv(key, "v2", r1, r2)));
    assert_eq!(store.get(key).await, Ok(None));
    let gone = StoreError::NotFound { key: key.into() };
    assert_eq!(store.delete(key, None).await, Err(gone.clone()));
    assert_eq!(store.update(key, b("v3"), r2).await, Err(gone));

    let other = "/conformance/delete/b";
    let r4 = store.create(other, b("b1")).await.expect("create");
    let deleted = store.delete(other, None).await.expect("delete");
    assert_eq!(deleted, (r4 + 1, kv(other, "b1", r4, r4)));

    let r6 = store.create(key, b("again")).await.expect("re-create");
    assert_eq!(store.get(key).await, Ok(Some(kv(key, "again", r6, r6))));
}

/// Ranges return keys under the prefix in key order, honour `start` and `limit`, say `more`
/// when cut short, and report the revision they read at.
pub async fn range_prefix_start_limit(store: Arc<dyn KvStore>) {
    let base = "/conformance/range/";
    // Inserted out of order; neighbours of the prefix must not leak in.
    for key in ["a/2", "ab/1", "a/3", "a", "a/1", "b/1"] {
        let full = format!("{base}{key}");
        store.create(&full, b(key)).await.expect("create");
    }
    let head = current(&store).await;
    let all = range(&store, prefix("/conformance/range/a/")).await;
    assert_eq!(
        keys(&all),
        [
            "/conformance/range/a/1",
            "/conformance/range/a/2",
            "/conformance/range/a/3"
        ]
    );
    assert!(!all.more);
    assert_eq!(all.revision, head);
    for kv in &all.kvs {
        let short = kv.key.trim_start_matches(base);
        assert_eq!(kv.value, b(short), "value of {}", kv.key);
        assert!(kv.create_revision > 0 && kv.create_revision == kv.mod_revision);
    }

    let page = |start: Option<&str>, limit: Option<usize>| RangeRequest {
        prefix: "/conformance/range/a/".into(),
        start: start.map(str::to_owned),
        revision: None,
        limit,
    };
    let first = range(&store, page(None, Some(2))).await;
    assert_eq!(
        keys(&first),
        ["/conformance/range/a/1", "/conformance/range/a/2"]
    );
    assert!(first.more, "limit cut the result short");
    let next_start = format!("{}\0", first.kvs[1].key);
    let second = range(&store, page(Some(&next_start), Some(2))).await;
    assert_eq!(keys(&second), ["/conformance/range/a/3"]);
    assert!(!second.more);

    let exact = range(&store, page(None, Some(3))).await;
    assert_eq!(exact.kvs.len(), 3);
    assert!(!exact.more, "a limit equal to the count is not cut short");
    let unlimited = range(&store, page(None, Some(0))).await;
    assert_eq!(unlimited.kvs.len(), 3, "limit 0 means no limit");
    let before = range(&store, page(Some("/"), None)).await;
    assert_eq!(
        before.kvs.len(),
        3,
        "a start before the prefix starts at it"
    );
    let from_2 = range(&store, page(Some("/conformance/range/a/2"), None)).await;
    assert_eq!(
        keys(&from_2),
        ["/conformance/range/a/2", "/conformance/range/a/3"],
        "start is inclusive"
    );
    let beyond = range(&store, page(Some("/conformance/range/a/9"), None)).await;
    assert!(beyond.kvs.is_empty() && !beyond.more);
    let past_prefix = range(&store, page(Some("/conformance/range/b/"), None)).await;
    assert!(past_prefix.kvs.is_empty(), "start past the prefix");

    let no_slash = range(&store, prefix("/conformance/range/a")).await;
    assert_eq!(
        keys(&no_slash),
        [
            "/conformance/range/a",
            "/conformance/range/a/1",
            "/conformance/range/a/2",
            "/conformance/range/a/3",
            "/conformance/range/ab/1"
        ]
    );
    let nothing = range(&store, prefix("/conformance/range/none/")).await;
    assert!(nothing.kvs.is_empty() && !nothing.more);
    assert_eq!(nothing.revision, head);
}

/// A range at an older revision sees exactly the state at that revision: older values, keys
/// deleted since, not keys created since; paging works there too.
pub async fn range_at_older_revisions(store: Arc<dyn KvStore>) {
    let p = "/conformance/mvcc/";
    let (x, y, z) = (
        "/conformance/mvcc/x",
        "/conformance/mvcc/y",
        "/conformance/mvcc/z",
    );
    let r1 = store.create(x, b("x1")).await.expect("create");
    let r2 = store.create(y, b("y1")).await.expect("create");
    let r3 = store.update(x, b("x2"), r1).await.expect("update");
    let (r4, _) = store.delete(y, None).await.expect("delete");
    let r5 = store.create(z, b("z1")).await.expect("create");
    let r6 = store.create(y, b("y2")).await.expect("re-create");
    let expect = [
        (r1, vec![kv(x, "x1", r1, r1)]),
        (r2, vec![kv(x, "x1", r1, r1), kv(y, "y1", r2, r2)]),
        (r3, vec![kv(x, "x2", r1, r3), kv(y, "y1", r2, r2)]),
        (r4, vec![kv(x, "x2", r1, r3)]),
        (r5, vec![kv(x, "x2", r1, r3), kv(z, "z1", r5, r5)]),
        (
            r6,
            vec![
                kv(x, "x2", r1, r3),
                kv(y, "y2", r6, r6),
                kv(z, "z1", r5, r5),
            ],
        ),
    ];
    for (revision, kvs) in expect {
        let resp = range(&store, at(p, revision)).await;
        assert_eq!(resp.kvs, kvs, "state at revision {revision}");
        assert!(!resp.more);
        assert_eq!(resp.revision, revision, "read at the requested revision");
    }
    let latest = range(&store, prefix(p)).await;
    assert_eq!(latest.kvs.len(), 3);
    assert_eq!(latest.revision, r6);
    let zero = range(&store, at(p, 0)).await;
    assert_eq!(
        zero.kvs, latest.kvs,
        "revision 0 reads the latest, as in etcd"
    );
    assert_eq!(zero.revision, r6);

    let first = range(
        &store,
        RangeRequest {
            limit: Some(1),
            ..at(p, r3)
        },
    )
    .await;
    assert_eq!(first.kvs, vec![kv(x, "x2", r1, r3)]);
    assert!(first.more);
    let second = range(
        &store,
        RangeRequest {
            start: Some(format!("{x}\0")),
            limit: Some(1),
            ..at(p, r3)
        },
    )
    .await;
    assert_eq!(second.kvs, vec![kv(y, "y1", r2, r2)]);
    assert!(!second.more);
}

/// Every successful write takes exactly the next revision, failed ones none, and
/// `current_revision` and the key's mod revision agree with what the write returned.
pub async fn revisions_are_consecutive(store: Arc<dyn KvStore>) {
    let mut last = current(&store).await;
    for i in 0..5 {
        let key = format!("/conformance/revs/{i}");
        let r = store.create(&key, b("v")).await.expect("create");
        assert_eq!(r, last + 1);
        last = r;
        assert!(store.create(&key, b("v")).await.is_err());
        assert!(store.update(&key, b("v"), last - 1).await.is_err());
        let r = store.update(&key, b("w"), last).await.expect("update");
        assert_eq!(r, last + 1);
        last = r;
        let stored = store
            .get(&key)
            .await
            .expect("get")
            .map(|kv| kv.mod_revision);
        assert_eq!(stored, Some(last));
        assert_eq!(current(&store).await, last);
    }
}

/// Concurrent writers each get distinct revisions, together exactly the next ones.
pub async fn concurrent_writes_get_distinct_consecutive_revisions(store: Arc<dyn KvStore>) {
    let (writers, per_writer) = (16, 10);
    let r0 = current(&store).await;
    let tasks: Vec<_> = (0..writers)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revs = Vec::new();
                for n in 0..per_writer {
                    let key = format!("/conformance/concurrent/{t}/{n}");
                    revs.push(store.create(&key, b("v")).await.expect("create"));
                }
                revs
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for task in tasks {
        let revs = task.await.expect("writer task");
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
        for r in revs {
            assert!(all.insert(r), "revision {r} given twice");
        }
    }
    let total = writers * per_writer;
    let expected: BTreeSet<Revision> = (r0 + 1..=r0 + total).collect();
    assert_eq!(all, expected);
    assert_eq!(current(&store).await, r0 + total);
}

/// A watch from a past revision replays the history after it (puts, updates, deletes with
/// their last value), then delivers live events; from the head it delivers only live ones.
pub async fn watch_replays_history_then_live(store: Arc<dyn KvStore>) {
    let p = "/conformance/watch/";
    let (a, bk) = ("/conformance/watch/a", "/conformance/watch/b");
    let r0 = current(&store).await;
    let r1 = store.create(a, b("v1")).await.expect("create");
    let r2 = store.update(a, b("v2"), r1).await.expect("update");
    let (r3, _) = store.delete(a, Some(r2)).await.expect("delete");

    let mut from_start = watch(&store, p, r0).await;
    let events = next_events(&mut from_start, 3).await;
    check_event(&events[0], EventKind::Put, &kv(a, "v1", r1, r1), None);
    check_event(
        &events[1],
        EventKind::Put,
        &kv(a, "v2", r1, r2),
        Some(&kv(a, "v1", r1, r1)),
    );
    check_event(
        &events[2],
        EventKind::Delete,
        &kv(a, "v2", r1, r3),
        Some(&kv(a, "v2", r1, r2)),
    );
    let r4 = store.create(bk, b("b1")).await.expect("create");
    let live = next_event(&mut from_start).await;
    check_event(&live, EventKind::Put, &kv(bk, "b1", r4, r4), None);
    assert_quiet(&mut from_start).await;

    let mut from_middle = watch(&store, p, r2).await;
    assert_eq!(revisions(&next_events(&mut from_middle, 2).await), [r3, r4]);

    let mut from_head = watch(&store, p, r4).await;
    assert_quiet(&mut from_head).await;
    let r5 = store.update(bk, b("b2"), r4).await.expect("update");
    check_event(
        &next_event(&mut from_head).await,
        EventKind::Put,
        &kv(bk, "b2", r4, r5),
        Some(&kv(bk, "b1", r4, r4)),
    );
    assert_eq!(next_event(&mut from_start).await.revision(), r5);
    assert_eq!(next_event(&mut from_middle).await.revision(), r5);
    for w in [&mut from_start, &mut from_middle, &mut from_head] {
        assert_quiet(w).await;
    }
}

/// With 16 concurrent writers, a watch started before them and one started from the same past
/// revision while they run both see every write exactly once, in revision order.
pub async fn watch_exactly_once_in_order_under_concurrent_writers(store: Arc<dyn KvStore>) {
    let p = "/conformance/fanout/";
    let (writers, keys_per_writer) = (16, 10);
    let r0 = current(&store).await;
    let mut early = watch(&store, p, r0).await;
    let tasks: Vec<_> = (0..writers)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..keys_per_writer {
                    let key = format!("{p}{t}/{n}");
                    let r = store.create(&key, b("created")).await.expect("create");
                    store.update(&key, b("updated"), r).await.expect("update");
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut late = watch(&store, p, r0).await;
    for task in tasks {
        task.await.expect("writer task");
    }
    let total = writers * keys_per_writer * 2;
    for (name, w) in [("early", &mut early), ("late", &mut late)] {
        let events = next_events(w, usize::try_from(total).unwrap_or(0)).await;
        let expected: Vec<Revision> = (r0 + 1..=r0 + total).collect();
        assert_eq!(revisions(&events), expected, "{name} watcher: order");
        let mut per_key: BTreeMap<&str, Vec<&WatchEvent>> = BTreeMap::new();
        for e in &events {
            per_key.entry(e.kv.key.as_str()).or_default().push(e);
        }
        assert_eq!(per_key.len(), usize::try_from(total / 2).unwrap_or(0));
        for (key, seen) in per_key {
            let [create, update] = seen.as_slice() else {
                panic!("{name} watcher: {key} seen {} times", seen.len());
            };
            assert_eq!(create.kv.value, b("created"));
            assert_eq!(create.kv.create_revision, create.kv.mod_revision);
            assert_eq!(update.kv.value, b("updated"));
            assert_eq!(update.kv.create_revision, create.kv.mod_revision);
            check_prev(update, Some(&create.kv));
        }
        assert_quiet(w).await;
    }
}

/// A watch sees only keys under its prefix: not the prefix's neighbours.
pub async fn watch_prefix_isolation(store: Arc<dyn KvStore>) {
    let r0 = current(&store).await;
    let mut w = watch(&store, "/conformance/iso/a/", r0).await;
    let mut everything = watch(&store, "/conformance/iso/", r0).await;
    let keys = [
        "/conformance/iso/ab/x",
        "/conformance/iso/a",
        "/conformance/iso/b/y",
        "/conformance/iso/",
        "/conformance/iso/a/1",
        "/conformance/iso/a0",
        "/conformance/iso/a/2",
    ];
    for key in keys {
        store.create(key, b("v")).await.expect("create");
    }
    let first = next_event(&mut w).await;
    assert_eq!((first.kv.key.as_str(), first.revision()), (keys[4], r0 + 5));
    let second = next_event(&mut w).await;
    assert_eq!(
        (second.kv.key.as_str(), second.revision()),
        (keys[6], r0 + 7)
    );
    assert_quiet(&mut w).await;
    let all = next_events(&mut everything, keys.len()).await;
    let seen: Vec<&str> = all.iter().map(|e| e.kv.key.as_str()).collect();
    assert_eq!(seen, keys);
}

/// A watcher that does not read while many writes happen does not hold the writers up, and
/// still gets every event, in order, when it reads again.
pub async fn slow_watcher_does_not_block_writers(store: Arc<dyn KvStore>) {
    let p = "/conformance/slow/";
    let (writers, per_writer) = (8, 125);
    let r0 = current(&store).await;
    let mut idle = watch(&store, p, r0).await;
    let value = Bytes::from(vec![b'x'; 2048]);
    let tasks: Vec<_> = (0..writers)
        .map(|t| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let key = format!("{p}{t}/{n}");
                    store.create(&key, value.clone()).await.expect("create");
                }
            })
        })
        .collect();
    let all_written = async {
        for task in tasks {
            task.await.expect("writer task");
        }
    };
    tokio::time::timeout(TIMEOUT, all_written)
        .await
        .expect("writes finish while a watcher is not reading");
    let total = writers * per_writer;
    let events = next_events(&mut idle, usize::try_from(total).unwrap_or(0)).await;
    let expected: Vec<Revision> = (r0 + 1..=r0 + total).collect();
    assert_eq!(revisions(&events), expected);
    assert!(events.iter().all(|e| e.kv.value == value));
    assert_quiet(&mut idle).await;
}

/// Compaction at `C`: reads below `C` and watches from below `C - 1` fail with `Compacted`,
/// reads at `C` and later (and the latest state) are intact; it takes no revision.
pub async fn compaction(store: Arc<dyn KvStore>) {
    let p = "/conformance/compact/";
    let (a, bk) = ("/conformance/compact/a", "/conformance/compact/b");
    let r0 = current(&store).await;
    let r1 = store.create(a, b("a1")).await.expect("create");
    let r2 = store.update(a, b("a2"), r1).await.expect("update");
    let r3 = store.create(bk, b("b1")).await.expect("create");
    let (r4, _) = store.delete(bk, None).await.expect("delete");
    let r5 = store.update(a, b("a3"), r2).await.expect("update");

    store.compact(r4).await.expect("compact");
    assert_eq!(store.compacted_revision().await, Ok(r4));
    assert_eq!(current(&store).await, r5, "compaction takes no revision");
    for old in [r1, r3] {
        assert_eq!(
            store.range(at(p, old)).await,
            Err(StoreError::Compacted {
                requested: old,
                compacted: r4
            })
        );
    }
    assert_eq!(
        range(&store, at(p, r4)).await.kvs,
        vec![kv(a, "a2", r1, r2)]
    );
    assert_eq!(
        range(&store, prefix(p)).await.kvs,
        vec![kv(a, "a3", r1, r5)]
    );
    assert_eq!(store.get(a).await, Ok(Some(kv(a, "a3", r1, r5))));
    for old in [r0, r2] {
        assert_eq!(
            watch_error(&store, p, old).await,
            StoreError::Compacted {
                requested: old,
                compacted: r4
            },
            "watch after {old}"
        );
    }
    // History from the compacted revision on is complete.
    let mut w = watch(&store, p, r3).await;
    let events = next_events(&mut w, 2).await;
    let first = &events[0];
    assert_eq!(
        (first.kind, first.kv.key.as_str(), first.revision()),
        (EventKind::Delete, bk, r4)
    );
    check_event(
        &events[1],
        EventKind::Put,
        &kv(a, "a3", r1, r5),
        Some(&kv(a, "a2", r1, r2)),
    );
    let mut w = watch(&store, p, r4).await;
    assert_eq!(next_event(&mut w).await.revision(), r5);

    assert_eq!(
        store.compact(r3).await,
        Err(StoreError::Compacted {
            requested: r3,
            compacted: r4
        })
    );
    assert_eq!(
        store.compact(r4).await,
        Ok(()),
        "compacting again is a no-op"
    );
    store.compact(r5).await.expect("compact at the head");
    assert_eq!(
        store.range(at(p, r4)).await,
        Err(StoreError::Compacted {
            requested: r4,
            compacted: r5
        })
    );
    assert_eq!(
        range(&store, at(p, r5)).await.kvs,
        vec![kv(a, "a3", r1, r5)]
    );
    let mut live = watch(&store, p, r5).await;
    let r6 = store
        .create(bk, b("b2"))
        .await
        .expect("create after compaction");
    assert_eq!(r6, r5 + 1);
    check_event(
        &next_event(&mut live).await,
        EventKind::Put,
        &kv(bk, "b2", r6, r6),
        None,
    );
}

/// Reading, watching or compacting at a revision beyond the head is `FutureRevision`.
pub async fn future_revisions(store: Arc<dyn KvStore>) {
    let p = "/conformance/future/";
    store
        .create("/conformance/future/a", b("v"))
        .await
        .expect("create");
    let head = current(&store).await;
    let future = StoreError::FutureRevision {
        requested: head + 1,
        current: head,
    };
    assert_eq!(store.range(at(p, head + 1)).await, Err(future.clone()));
    assert_eq!(watch_error(&store, p, head + 1).await, future);
    assert_eq!(store.compact(head + 1).await, Err(future));
    let resp = range(&store, at(p, head)).await;
    assert_eq!((resp.kvs.len(), resp.revision), (1, head));
}

/// `current_revision` follows the writes; `compacted_revision` follows `compact` and never
/// exceeds the current revision.
pub async fn current_and_compacted_revision(store: Arc<dyn KvStore>) {
    let compacted = store
        .compacted_revision()
        .await
        .expect("compacted_revision");
    let head = current(&store).await;
    assert!(0 <= compacted && compacted <= head, "{compacted} <= {head}");
    let r = store
        .create("/conformance/revisions/a", b("v"))
        .await
        .expect("create");
    assert_eq!(current(&store).await, r);
    assert_eq!(store.compacted_revision().await, Ok(compacted));
    store.compact(r).await.expect("compact");
    assert_eq!(store.compacted_revision().await, Ok(r));
    assert_eq!(range(&store, prefix("/conformance/")).await.revision, r);
}

/// `request_progress` makes a quiet watch report that it has seen everything up to the
/// store's revision, after any events it still had to deliver, and only when asked.
pub async fn progress_requests(store: Arc<dyn KvStore>) {
    let r0 = current(&store).await;
    let mut quiet = watch(&store, "/conformance/progress/quiet/", r0).await;
    let mut busy = watch(&store, "/conformance/progress/busy/", r0).await;
    let r1 = store
        .create("/conformance/progress/busy/a", b("1"))
        .await
        .expect("create");
    let r2 = store
        .create("/conformance/progress/other/x", b("2"))
        .await
        .expect("create");
    assert_quiet(&mut quiet).await;
    store.request_progress().await.expect("request progress");
    let p = next_event(&mut quiet).await;
    assert_eq!(p.kind, EventKind::Progress);
    assert!(
        p.revision() >= r2,
        "progress at {} before the write at {r2}",
        p.revision()
    );
    assert!(p.kv.key.is_empty() && p.kv.value.is_empty());
    // The busy watch reports progress only after the event it still owed.
    let e = next_event(&mut busy).await;
    assert_eq!((e.kind, e.revision()), (EventKind::Put, r1));
    let p = next_event(&mut busy).await;
    assert_eq!(p.kind, EventKind::Progress);
    assert!(p.revision() >= r2);
    // One request, one report.
    assert_quiet(&mut quiet).await;
    assert_quiet(&mut busy).await;
}
