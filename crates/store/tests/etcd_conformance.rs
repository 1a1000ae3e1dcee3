//! The backend-agnostic conformance suite against a real etcd (`/usr/bin/etcd`, Debian's
//! `etcd-server`): once per property, each on its own fresh single-member cluster, and once in
//! full on one cluster reused for every property (so revisions do not start at 1 and history
//! was already compacted — what a long-lived cluster looks like).

mod etcd_support;

use std::sync::Arc;

use etcd_support::Cluster;
use store::KvStore;
use store::conformance;

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let cluster = Cluster::single().await;
            let store: Arc<dyn KvStore> = cluster.store().await;
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

/// Every property on one long-lived cluster; each gets a new store on it with the
/// `/conformance/` keys removed (the suite wants an empty store; revisions go on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_reused_cluster() {
    let cluster = Cluster::single().await;
    conformance::run_all(|| async {
        let store = cluster.store().await;
        let all = store
            .range(store::RangeRequest {
                prefix: "/conformance/".into(),
                ..Default::default()
            })
            .await
            .expect("list leftovers");
        for kv in all.kvs {
            store.delete(&kv.key, None).await.expect("delete leftover");
        }
        let store: Arc<dyn KvStore> = store;
        store
    })
    .await;
}
