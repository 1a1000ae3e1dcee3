//! The backend-agnostic conformance suite, run against the embedded store: once per property with
//! the default options, and once in full with a one-batch watch buffer, so that every watch in
//! the suite also goes through the catch-up-from-disk path.

use std::sync::{Arc, Mutex};

use store::KvStore;
use store::conformance;
use store::embedded::{EmbeddedOptions, EmbeddedStore};
use tempfile::TempDir;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        auto_compaction: None,
        ..EmbeddedOptions::default()
    }
}

async fn fresh(options: EmbeddedOptions) -> (TempDir, Arc<dyn KvStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), options)
        .await
        .expect("open store");
    (dir, store)
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh(options()).await;
            conformance::$name(store).await;
        }
    )*};
}

conformance_tests!(
    create_get_already_exists,
    update_compare_and_swap,
    delete_with_and_without_expected_revision,
    range_prefix_start_limit,
    range_at_older_revisions,
    revisions_are_consecutive,
    concurrent_writes_get_distinct_consecutive_revisions,
    watch_replays_history_then_live,
    watch_exactly_once_in_order_under_concurrent_writers,
    watch_prefix_isolation,
    slow_watcher_does_not_block_writers,
    compaction,
    future_revisions,
    current_and_compacted_revision,
    progress_requests,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_with_watchers_served_from_disk() {
    let dirs = Mutex::new(Vec::new());
    conformance::run_all(|| async {
        let (dir, store) = fresh(EmbeddedOptions {
            watch_buffer_bytes: 1,
            watch_catchup_revisions: 7,
            ..options()
        })
        .await;
        dirs.lock().expect("dirs").push(dir);
        store
    })
    .await;
}

/// The runner-up engine passes the same suite, so the engine measurement compared two correct
/// implementations.
#[cfg(feature = "redb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_redb() {
    let dirs = Mutex::new(Vec::new());
    conformance::run_all(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = store::embedded::redb::RedbEngine::default();
        let store: Arc<dyn KvStore> = EmbeddedStore::open_with(engine, dir.path(), options())
            .await
            .expect("open redb store");
        dirs.lock().expect("dirs").push(dir);
        store
    })
    .await;
}
