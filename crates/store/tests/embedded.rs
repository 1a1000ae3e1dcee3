//! Properties of the embedded store beyond the shared conformance suite: group commit, restart,
//! the directory lock, slow watchers falling back to disk (and to `Compacted`), `prev` on every
//! update and delete, automatic compaction, physical compaction resuming after a restart, close.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::embedded::{CompactionPolicy, EmbeddedOptions, EmbeddedStore, sqlite};
use store::{EventKind, KeyValue, KvStore, RangeRequest, Revision, StoreError, WatchStream};

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        auto_compaction: None,
        ..EmbeddedOptions::default()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next(w: &mut WatchStream) -> Result<store::WatchEvent, StoreError> {
    tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("watch item in time")
        .expect("watch still open")
}

/// History rows left in the SQLite file (read with a separate connection).
fn history_rows(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(sqlite::DB_FILE)).expect("open db");
    conn.query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..20 {
                    let key = format!("/group/{w}/{n}");
                    store.create(&key, b("v")).await.expect("create");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let stats = store.stats();
    assert_eq!(stats.writes, 320);
    // With 16 writers always waiting, a commit nearly always carries several writes; one write
    // per commit would mean no group commit at all.
    assert!(
        stats.commits * 2 <= stats.writes,
        "expected shared fsyncs, got {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_and_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    let r1 = store.create("/r/a", b("a1")).await.expect("create");
    let r2 = store.update("/r/a", b("a2"), r1).await.expect("update");
    let r3 = store.create("/r/b", b("b1")).await.expect("create");
    let (r4, _) = store.delete("/r/b", None).await.expect("delete");
    let r5 = store.create("/r/c", b("c1")).await.expect("create");
    store.compact(r3).await.expect("compact");
    store.close().await;
    assert!(matches!(
        store.get("/r/a").await,
        Err(StoreError::Unavailable(_))
    ));
    drop(store);

    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("reopen");
    assert_eq!(store.current_revision().await, Ok(r5));
    assert_eq!(store.compacted_revision().await, Ok(r3));
    let a = KeyValue {
        key: "/r/a".into(),
        value: b("a2"),
        create_revision: r1,
        mod_revision: r2,
    };
    assert_eq!(store.get("/r/a").await, Ok(Some(a.clone())));
    assert_eq!(store.get("/r/b").await, Ok(None));
    let at_r3 = store
        .range(RangeRequest {
            prefix: "/r/".into(),
            revision: Some(r3),
            ..RangeRequest::default()
        })
        .await
        .expect("range at the compacted revision");
    assert_eq!(at_r3.kvs.len(), 2, "{at_r3:?}");
    assert_eq!(
        store
            .range(RangeRequest {
                prefix: "/r/".into(),
                revision: Some(r2),
                ..RangeRequest::default()
            })
            .await,
        Err(StoreError::Compacted {
            requested: r2,
            compacted: r3
        })
    );
    // History after the compacted revision survived, with the delete's last value.
    let mut w = store.watch("/r/", r3).await.expect("watch");
    let delete = next(&mut w).await.expect("delete event");
    assert_eq!((delete.kind, delete.revision()), (EventKind::Delete, r4));
    assert_eq!(delete.kv.value, b("b1"));
    assert_eq!(next(&mut w).await.expect("event").revision(), r5);
    let r6 = store.create("/r/d", b("d1")).await.expect("create");
    assert_eq!(r6, r5 + 1, "revisions continue after a restart");
    assert_eq!(next(&mut w).await.expect("live event").revision(), r6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_opened_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    match EmbeddedStore::open(dir.path(), options()).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("in use"), "{msg}"),
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("a second open of the same directory must fail"),
    }
    store.close().await;
    let again = EmbeddedStore::open(dir.path(), options()).await;
    assert!(again.is_ok(), "reopen after close: {:?}", again.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiny_buffer = EmbeddedOptions {
        watch_buffer_bytes: 1,
        watch_catchup_revisions: 50,
        ..options()
    };
    let store = EmbeddedStore::open(dir.path(), tiny_buffer)
        .await
        .expect("open");
    let mut w = store.watch("/slow/", 0).await.expect("watch");
    for n in 0..300 {
        let key = format!("/slow/{n:03}");
        store.create(&key, b(&key)).await.expect("create");
        if n % 3 == 0 {
            store
                .create(&format!("/other/{n}"), b("x"))
                .await
                .expect("create");
        }
    }
    let mut last = 0;
    for n in 0..300 {
        let e = next(&mut w).await.expect("event");
        assert_eq!(e.kv.key, format!("/slow/{n:03}"));
        assert_eq!(e.kv.value, b(&e.kv.key));
        assert!(e.revision() > last);
        last = e.revision();
    }
    // And then live.
    let r = store.create("/slow/live", b("x")).await.expect("create");
    assert_eq!(next(&mut w).await.expect("live").revision(), r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_gets_compacted_when_its_history_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiny_buffer = EmbeddedOptions {
        watch_buffer_bytes: 1,
        ..options()
    };
    let store = EmbeddedStore::open(dir.path(), tiny_buffer)
        .await
        .expect("open");
    let r0 = store.create("/c/first", b("x")).await.expect("create");
    let mut w = store.watch("/c/", r0).await.expect("watch");
    for n in 0..50 {
        store
            .create(&format!("/c/{n}"), b("x"))
            .await
            .expect("create");
    }
    let head = store.current_revision().await.expect("revision");
    store.compact(head).await.expect("compact");
    assert_eq!(
        next(&mut w).await,
        Err(StoreError::Compacted {
            requested: r0,
            compacted: head
        })
    );
    let end = tokio::time::timeout(Duration::from_secs(5), w.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ends after the error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_carry_prev_live_and_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    let mut live = store.watch("/p/", 0).await.expect("watch");
    let r1 = store.create("/p/a", b("1")).await.expect("create");
    let r2 = store.update("/p/a", b("2"), r1).await.expect("update");
    let (r3, _) = store.delete("/p/a", Some(r2)).await.expect("delete");
    let mut from_disk = store.watch("/p/", 0).await.expect("watch");
    let v1 = KeyValue {
        key: "/p/a".into(),
        value: b("1"),
        create_revision: r1,
        mod_revision: r1,
    };
    let v2 = KeyValue {
        value: b("2"),
        mod_revision: r2,
        ..v1.clone()
    };
    for w in [&mut live, &mut from_disk] {
        let create = next(w).await.expect("create");
        assert_eq!(create.prev, None);
        let update = next(w).await.expect("update");
        assert_eq!(update.prev.as_ref(), Some(&v1));
        let delete = next(w).await.expect("delete");
        assert_eq!(delete.kv.mod_revision, r3);
        assert_eq!(delete.prev.as_ref(), Some(&v2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_follows_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions {
            auto_compaction: Some(CompactionPolicy {
                interval: Duration::from_millis(50),
                min_age: Duration::ZERO,
                min_revisions_behind: 10,
            }),
            ..EmbeddedOptions::default()
        },
    )
    .await
    .expect("open");
    let mut rev: Revision = store.create("/auto/k", b("0")).await.expect("create");
    for n in 1..100 {
        rev = store
            .update("/auto/k", b(&n.to_string()), rev)
            .await
            .expect("update");
    }
    let mut compacted = 0;
    for _ in 0..200 {
        compacted = store.compacted_revision().await.expect("compacted");
        if compacted == rev - 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        compacted,
        rev - 10,
        "compacts to 10 revisions behind the head"
    );
    // The physical compaction follows: one row at the compacted revision, ten after it.
    let mut rows = 0;
    for _ in 0..200 {
        rows = history_rows(dir.path());
        if rows == 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rows, 11);
    assert_eq!(
        store.get("/auto/k").await.expect("get").map(|kv| kv.value),
        Some(b("99"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn physical_compaction_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    let mut rev = store.create("/resume/k", b("0")).await.expect("create");
    for n in 1..5_000 {
        rev = store
            .update("/resume/k", b(&n.to_string()), rev)
            .await
            .expect("update");
    }
    store.compact(rev).await.expect("compact");
    // Closing right away leaves most dead rows in place (they go in chunks while idle).
    store.close().await;
    drop(store);
    let left = history_rows(dir.path());
    assert!(
        left > 1,
        "compaction was meant to be cut short by the close ({left} rows)"
    );
    let store = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("reopen");
    let mut rows = history_rows(dir.path());
    for _ in 0..400 {
        if rows == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        rows = history_rows(dir.path());
    }
    assert_eq!(rows, 1, "only the latest row of the key is left");
    assert_eq!(store.compacted_revision().await, Ok(rev));
    assert_eq!(
        store
            .get("/resume/k")
            .await
            .expect("get")
            .map(|kv| kv.value),
        Some(b("4999"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_watches_and_refuses_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<EmbeddedStore> = EmbeddedStore::open(dir.path(), options())
        .await
        .expect("open");
    let mut w = store.watch("/", 0).await.expect("watch");
    store.close().await;
    assert!(matches!(
        next(&mut w).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.create("/x", b("x")).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.watch("/", 0).await,
        Err(StoreError::Unavailable(_))
    ));
}
