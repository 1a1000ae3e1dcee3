//! The etcd backend: [`KvStore`] over a real etcd v3 cluster, so that several keelson servers
//! can share one control-plane state (`keelson server --datastore etcd://h1:2379,h2:2379`).
//!
//! # Layout and revisions
//! Keys and values are stored as they are (a key is its UTF-8 bytes, a value its bytes), so
//! the layout is the embedded store's and an object's `resourceVersion` is its key's etcd
//! `mod_revision`. etcd's revision is the store revision: a fresh cluster starts at 1, every
//! successful write takes exactly the next one, and a failed compare-and-swap takes none
//! (its transaction writes nothing). The writes are single etcd transactions:
//! * create: `if create_revision(key) == 0 then put`;
//! * update: `if create_revision(key) > 0 && mod_revision(key) == expected then put else get`
//!   (the `else` read is the `Conflict`'s current state, or proves `NotFound`);
//! * delete: the same compare (the revision part only when one is expected), deleting with
//!   `prev_kv` so the key's last state comes back with the delete's revision.
//!
//! Reads are linearizable (etcd's default): a read through any keelson server sees every
//! write acknowledged through any other. Calls that fail because etcd is unavailable are
//! retried for a few seconds (an election, a member going away) — reads always, writes only
//! when no connection could be made at all, since a write whose answer was lost may have been
//! applied.
//!
//! # Compacted revision
//! The store's compacted revision `C` is kept in etcd as a compaction at `C - 1`. etcd drops a
//! key's tombstone at the compaction revision itself, so after compacting at `C` a watch from
//! `C` (etcd's start revision is inclusive) would miss a delete made exactly at `C`; the
//! contract promises that history from `C` on is complete. Compacting one revision lower keeps
//! every event at `C` and above. Reads at `C - 1`, which etcd would still serve, are refused
//! here with `Compacted` (when this process knows of the compaction), so the store answers
//! like the embedded one.
//!
//! etcd does not report its compacted revision directly, and recording it in a key on every
//! [`KvStore::compact`] would make compaction take a revision (the contract says it takes
//! none). So the store asks etcd itself: a count-only read at the etcd compaction revision this
//! process knows of succeeds exactly when nothing newer has been compacted — one cheap round
//! trip; if it fails, a watch from revision 1 on a key nobody writes is answered by etcd with
//! its compaction revision (`compact_revision`). Compacted responses to reads and watches keep
//! the known value fresh. This stays right whoever compacts: this process, another keelson
//! server, etcd's own `--auto-compaction-*`, or an operator with `etcdctl compact` (an etcd
//! compaction at `E` reads as a store compaction at `E + 1`).
//!
//! # Automatic compaction
//! Like the embedded store (same [`CompactionPolicy`]), see the `compactor` module: several
//! servers sharing one etcd take turns through a compare-and-swap on one key
//! ([`EtcdOptions::compaction_key`], as upstream's apiserver does with `compact_rev_key`), so
//! each round compacts once, not once per server.
//!
//! # Failures
//! `connect` probes every endpoint and fails with each endpoint's cause (refused, timed out,
//! certificate not trusted...) if none answers. Afterwards the client reconnects on its own;
//! meanwhile calls fail with `Unavailable` or `Timeout` within the request timeout (never
//! hang, never panic), and watch streams end with `Unavailable` so their consumers re-watch.
//! See `watch` for the watch and progress guarantees.

mod compactor;
mod connect;
mod error;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::proto::PbTxnOpResponse;
use etcd_client::{
    CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, TxnOp, TxnResponse,
    WatchClient, WatchOptions,
};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::embedded::CompactionPolicy;
use crate::{KeyValue, KvStore, RangeRequest, RangeResponse, Revision, StoreError, WatchStream};
use connect::Version;
use error::{Failure, classify, map};

pub use connect::EtcdTls;

/// Tuning of the etcd backend; [`Default`] is what `keelson server` uses.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// How long to wait for a TCP (and TLS) connection to a member.
    pub connect_timeout: Duration,
    /// How long one store call may take, retries included.
    pub request_timeout: Duration,
    /// How long a call keeps retrying while etcd is unavailable (a leader election, a member
    /// going away) before it fails with `Unavailable`; capped by the request timeout.
    pub unavailable_retry: Duration,
    /// HTTP/2 ping interval, idle connections included.
    pub keep_alive_interval: Duration,
    /// How long a ping may go unanswered before the connection (and every watch on it) is
    /// declared dead.
    pub keep_alive_timeout: Duration,
    /// Automatic compaction; `None` turns it off.
    pub auto_compaction: Option<CompactionPolicy>,
    /// The key servers sharing the cluster take turns on to compact. Must lie outside every
    /// prefix the API server stores objects under.
    pub compaction_key: String,
    /// Against an etcd that may send progress answers ahead of queued events (before 3.4.25 /
    /// 3.5.8), how long a watch holds an answer back waiting for proof (see `watch`).
    pub unordered_progress_hold: Duration,
    /// Largest response accepted from etcd (a big range or a watch catching up).
    pub max_response_bytes: usize,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            // Covers an election with etcd's default timings; an etcd that is down for longer
            // is reported rather than waited for.
            unavailable_retry: Duration::from_secs(3),
            keep_alive_interval: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            auto_compaction: Some(CompactionPolicy::default()),
            compaction_key: "/keelson/compact_rev".into(),
            unordered_progress_hold: Duration::from_millis(100),
            // etcd's own clients accept up to 2 GiB.
            max_response_bytes: i32::MAX as usize,
        }
    }
}

/// State shared by the store handle, its watch tasks and its compactor.
struct Shared {
    /// The endpoints, comma-separated, for messages.
    endpoints: String,
    options: EtcdOptions,
    version: Version,
    /// Whether etcd orders progress answers with events (see `watch`).
    ordered_progress: bool,
    /// The highest revision etcd is known to have compacted at (`E`; the store's compacted
    /// revision is `E + 1`, see the module docs).
    etcd_compacted: AtomicI64,
    compactions: AtomicU64,
}

impl Shared {
    /// Records that etcd has compacted at `revision` (etcd's number, not the store's).
    fn note_etcd_compacted(&self, revision: Revision) {
        self.etcd_compacted.fetch_max(revision, Ordering::AcqRel);
    }

    fn etcd_compacted(&self) -> Revision {
        self.etcd_compacted.load(Ordering::Acquire)
    }

    /// The store's compacted revision, as far as this process knows.
    fn compacted(&self) -> Revision {
        store_compacted(self.etcd_compacted())
    }

    fn probe_key(&self) -> String {
        format!("{}/probe", self.options.compaction_key)
    }
}

/// A [`KvStore`] on an etcd v3 cluster.
pub struct EtcdStore {
    shared: Arc<Shared>,
    kv: KvClient,
    watch: WatchClient,
    /// Bumped by `request_progress`; every watch task follows it.
    progress: tokio::sync::watch::Sender<u64>,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(task) = self.compactor.take() {
            task.abort();
        }
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://host:port`, `https://host:port`,
    /// or `host:port`). Fails, naming each endpoint and its problem, when none of them answers
    /// within the connect timeout, or when the cluster cannot serve a read (no leader).
    pub async fn connect(
        endpoints: &[String],
        tls: Option<EtcdTls>,
        options: EtcdOptions,
    ) -> Result<Arc<EtcdStore>, StoreError> {
        if options.compaction_key.is_empty() {
            return Err(StoreError::Internal(
                "the etcd compaction key must not be empty".into(),
            ));
        }
        let endpoints = connect::normalize(endpoints, tls.as_ref())?;
        let version = connect::probe_all(&endpoints, tls.as_ref(), &options).await?;
        let client = connect::client(&endpoints, tls.as_ref(), &options).await?;
        let shared = Arc::new(Shared {
            endpoints: endpoints.join(","),
            ordered_progress: version.orders_progress(),
            version,
            options: options.clone(),
            etcd_compacted: AtomicI64::new(0),
            compactions: AtomicU64::new(0),
        });
        let kv = client
            .kv_client()
            .max_decoding_message_size(options.max_response_bytes);
        let watch = client
            .watch_client()
            .max_decoding_message_size(options.max_response_bytes);
        let (progress, _) = tokio::sync::watch::channel(0);
        let mut store = EtcdStore {
            shared,
            kv,
            watch,
            progress,
            compactor: None,
        };
        // A member answers status without a leader; a read needs one (and a quorum).
        store.current_revision().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "etcd at {} answers but cannot serve reads: {e}",
                store.shared.endpoints
            ))
        })?;
        if !store.shared.ordered_progress {
            tracing::warn!(
                version = %version,
                "etcd before 3.4.25/3.5.8 does not order progress notifications with watch events; \
                 keelson works around it, but upgrading etcd is recommended"
            );
        }
        if let Some(policy) = options.auto_compaction {
            let task = compactor::Compactor::new(store.kv.clone(), store.shared.clone(), policy);
            store.compactor = Some(tokio::spawn(task.run()));
        }
        tracing::info!(endpoints = %store.shared.endpoints, version = %version, "connected to etcd");
        Ok(Arc::new(store))
    }

    /// The endpoints in use, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.shared.endpoints
    }

    /// The oldest etcd version among the members that answered at connect, e.g. "3.4.23".
    pub fn server_version(&self) -> String {
        self.shared.version.to_string()
    }

    /// How many automatic compactions this store has run.
    pub fn compactions(&self) -> u64 {
        self.shared.compactions.load(Ordering::Relaxed)
    }

    /// Runs `call` with a fresh KV client until it succeeds, fails for good, or the request
    /// timeout passes. Only while etcd is unavailable (for `unavailable_retry`), and only
    /// `idempotent` calls or calls that provably never reached etcd are retried.
    async fn rpc<T, F, Fut>(&self, what: &str, idempotent: bool, mut call: F) -> Result<T, Failure>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let timeout = self.shared.options.request_timeout;
        let deadline = Instant::now() + timeout;
        let retry_until = Instant::now() + self.shared.options.unavailable_retry;
        let mut backoff = Duration::from_millis(20);
        loop {
            let attempt = tokio::time::timeout_at(deadline, call(self.kv.clone())).await;
            let (failure, retry) = match attempt {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => {
                    let retry = idempotent || error::never_sent(&e);
                    (classify(e, &self.shared.endpoints, what), retry)
                }
                Err(_) => {
                    return Err(Failure::Other(StoreError::Timeout(format!(
                        "{what} on etcd at {}: no answer within {timeout:?}",
                        self.shared.endpoints
                    ))));
                }
            };
            match failure {
                Failure::Other(StoreError::Unavailable(why))
                    if retry && Instant::now() + backoff < retry_until.min(deadline) =>
                {
                    tracing::debug!(error = %why, "etcd call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                other => return Err(other),
            }
        }
    }

    /// A transaction (retried only when it cannot have reached etcd).
    async fn txn(&self, what: &str, txn: etcd_client::Txn) -> Result<TxnResponse, StoreError> {
        self.rpc(what, false, |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|f| self.unexpected(f, what))
    }

    /// A failure that has no special meaning for `what`.
    fn unexpected(&self, failure: Failure, what: &str) -> StoreError {
        match failure {
            Failure::Other(e) => e,
            Failure::Compacted | Failure::FutureRevision => StoreError::Internal(format!(
                "{what} on etcd at {}: unexpected revision error",
                self.shared.endpoints
            )),
        }
    }

    /// A count-only read of the probe key at `revision`: succeeds exactly when that revision
    /// is readable.
    async fn read_at(&self, revision: Revision) -> Result<Revision, Failure> {
        let key = self.shared.probe_key();
        let opts = GetOptions::new().with_count_only().with_revision(revision);
        let resp = self
            .rpc("read", true, |mut kv| {
                let (key, opts) = (key.clone(), opts.clone());
                async move { kv.get(key, Some(opts)).await }
            })
            .await?;
        header_revision(resp.header(), &self.shared.endpoints).map_err(Failure::Other)
    }

    /// The store's compacted revision, asking etcd as described in the module docs.
    async fn learn_compacted(&self) -> Result<Revision, StoreError> {
        for _ in 0..2 {
            let known = self.shared.etcd_compacted();
            match self.read_at(known.max(1)).await {
                Ok(_) => return Ok(store_compacted(known)),
                Err(Failure::Compacted) => return self.ask_compacted().await,
                // The cluster is behind what this process saw: it was replaced or restored
                // from a backup. Forget what was known and look again.
                Err(Failure::FutureRevision) => {
                    self.shared.etcd_compacted.store(0, Ordering::Release)
                }
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Internal(format!(
            "etcd at {} keeps moving its revision backwards",
            self.shared.endpoints
        )))
    }

    /// Opens a watch from revision 1 on the probe key (nobody writes it); etcd answers a watch
    /// on compacted history with its compacted revision. Only called once a read has shown
    /// that something above revision 1 was compacted, so the answer is sure to come.
    async fn ask_compacted(&self) -> Result<Revision, StoreError> {
        let timeout = self.shared.options.request_timeout;
        let what = "compacted revision probe";
        let endpoints = &self.shared.endpoints;
        let mut client = self.watch.clone();
        let probe = async {
            let opts = WatchOptions::new().with_start_revision(1);
            let mut stream = client
                .watch(self.shared.probe_key(), Some(opts))
                .await
                .map_err(|e| map(e, endpoints, what))?;
            loop {
                match stream
                    .message()
                    .await
                    .map_err(|e| map(e, endpoints, what))?
                {
                    Some(resp) if resp.compact_revision() > 0 => return Ok(resp.compact_revision()),
                    Some(resp) if resp.canceled() => {
                        return Err(StoreError::Unavailable(format!(
                            "{what} on etcd at {endpoints}: watch cancelled: {}",
                            resp.cancel_reason()
                        )));
                    }
                    Some(_) => continue,
                    None => {
                        return Err(StoreError::Unavailable(format!(
                            "{what} on etcd at {endpoints}: stream closed"
                        )));
                    }
                }
            }
        };
        let compacted = tokio::time::timeout(timeout, probe).await.map_err(|_| {
            StoreError::Timeout(format!(
                "{what} on etcd at {endpoints}: no answer within {timeout:?}"
            ))
        })??;
        self.shared.note_etcd_compacted(compacted);
        Ok(self.shared.compacted())
    }

    /// `Compacted` for a request at `requested`, with etcd's compacted revision.
    async fn compacted_error(&self, requested: Revision) -> StoreError {
        match self.learn_compacted().await {
            Ok(compacted) => StoreError::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }

    /// `FutureRevision` for a request at `requested`, with etcd's current revision.
    async fn future_error(&self, requested: Revision) -> StoreError {
        match self.current_revision().await {
            Ok(current) => StoreError::FutureRevision { requested, current },
            Err(e) => e,
        }
    }

    /// The state of `key` after a failed compare, from the transaction's `else` read.
    fn current_after_failed_compare(
        &self,
        resp: &TxnResponse,
        key: &str,
    ) -> Result<Option<KeyValue>, StoreError> {
        let TxnResponse(raw) = resp;
        match raw.responses.first().and_then(|r| r.response.as_ref()) {
            Some(PbTxnOpResponse::ResponseRange(range)) => {
                range.kvs.first().cloned().map(watch::key_value).transpose()
            }
            _ => Err(StoreError::Internal(format!(
                "etcd at {} answered a failed compare on {key:?} without the key's state",
                self.shared.endpoints
            ))),
        }
    }
}

/// The store's compacted revision for an etcd compaction at `etcd_revision` (0: none).
fn store_compacted(etcd_revision: Revision) -> Revision {
    if etcd_revision > 0 {
        etcd_revision + 1
    } else {
        0
    }
}

fn header_revision(
    header: Option<&etcd_client::ResponseHeader>,
    endpoints: &str,
) -> Result<Revision, StoreError> {
    header.map(|h| h.revision()).ok_or_else(|| {
        StoreError::Internal(format!(
            "etcd at {endpoints} sent a response without a header"
        ))
    })
}

/// The etcd key range holding every key that starts with `prefix`: `[prefix, end)`. The empty
/// prefix is the whole key space (`["\0", "\0")` in etcd's notation).
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (prefix.as_bytes().to_vec(), end);
        }
    }
    // Only 0xff bytes (not valid UTF-8, so not a real prefix): everything from it on.
    (prefix.as_bytes().to_vec(), vec![0])
}

#[async_trait]
impl KvStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let what = format!("get {key:?}");
        let resp = self
            .rpc(&what, true, |mut kv| {
                let key = key.to_owned();
                async move { kv.get(key, None).await }
            })
            .await
            .map_err(|f| self.unexpected(f, &what))?;
        let etcd_client::GetResponse(raw) = resp;
        raw.kvs.into_iter().next().map(watch::key_value).transpose()
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        let what = format!("range {:?}", req.prefix);
        let (prefix_start, end) = prefix_range(&req.prefix);
        let start = match req.start {
            Some(start) if start.as_bytes() > prefix_start.as_slice() => start.into_bytes(),
            _ => prefix_start,
        };
        let limit = req.limit.filter(|&n| n > 0);
        // As in etcd, revision 0 (or below) reads the latest.
        let revision = req.revision.filter(|&r| r > 0);
        if let Some(r) = revision
            && r < self.shared.compacted()
        {
            // etcd still serves `C - 1`; the store does not (see the module docs).
            return Err(StoreError::Compacted {
                requested: r,
                compacted: self.shared.compacted(),
            });
        }
        let mut opts = GetOptions::new().with_range(end);
        if let Some(n) = limit {
            opts = opts.with_limit(i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(r) = revision {
            opts = opts.with_revision(r);
        }
        let result = self
            .rpc(&what, true, |mut kv| {
                let (start, opts) = (start.clone(), opts.clone());
                async move { kv.get(start, Some(opts)).await }
            })
            .await;
        let resp = match (result, revision) {
            (Ok(resp), _) => resp,
            (Err(Failure::Compacted), Some(r)) => return Err(self.compacted_error(r).await),
            (Err(Failure::FutureRevision), Some(r)) => return Err(self.future_error(r).await),
            (Err(f), _) => return Err(self.unexpected(f, &what)),
        };
        let header = header_revision(resp.header(), &self.shared.endpoints)?;
        let etcd_client::GetResponse(raw) = resp;
        let kvs = raw
            .kvs
            .into_iter()
            .map(watch::key_value)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RangeResponse {
            kvs,
            more: raw.more,
            revision: revision.unwrap_or(header),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        let txn = etcd_client::Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(&format!("create {key:?}"), txn).await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists { key: key.into() });
        }
        header_revision(resp.header(), &self.shared.endpoints)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        // `create_revision > 0` keeps `expected == 0` from matching (and creating) a missing key.
        let txn = etcd_client::Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(&format!("update {key:?}"), txn).await?;
        if resp.succeeded() {
            return header_revision(resp.header(), &self.shared.endpoints);
        }
        match self.current_after_failed_compare(&resp, key)? {
            Some(current) => Err(StoreError::Conflict {
                key: key.into(),
                expected,
                current: Box::new(current),
            }),
            None => Err(StoreError::NotFound { key: key.into() }),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let mut compare = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compare.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = etcd_client::Txn::new()
            .when(compare)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(&format!("delete {key:?}"), txn).await?;
        if !resp.succeeded() {
            return match (self.current_after_failed_compare(&resp, key)?, expected) {
                (Some(current), Some(expected)) => Err(StoreError::Conflict {
                    key: key.into(),
                    expected,
                    current: Box::new(current),
                }),
                _ => Err(StoreError::NotFound { key: key.into() }),
            };
        }
        let revision = header_revision(resp.header(), &self.shared.endpoints)?;
        let TxnResponse(raw) = resp;
        let last = match raw.responses.into_iter().next().and_then(|r| r.response) {
            Some(PbTxnOpResponse::ResponseDeleteRange(d)) => d.prev_kvs.into_iter().next(),
            _ => None,
        };
        let last = last.ok_or_else(|| {
            StoreError::Internal(format!(
                "etcd at {} deleted {key:?} without returning its last state",
                self.shared.endpoints
            ))
        })?;
        Ok((revision, watch::key_value(last)?))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let after = after.max(0);
        let known = self.shared.compacted();
        if after + 1 < known {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: known,
            });
        }
        let what = format!("watch {prefix:?}");
        let endpoints = &self.shared.endpoints;
        let (key, end) = prefix_range(prefix);
        // etcd's start revision is inclusive.
        let opts = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_prev_key();
        let mut client = self.watch.clone();
        let timeout = self.shared.options.request_timeout;
        // Open the stream and wait for etcd to create the watch: its answer carries etcd's
        // revision, which tells a watch from the future apart.
        let opened = tokio::time::timeout(timeout, async {
            let mut stream = client.watch(key, Some(opts)).await?;
            let created = stream.message().await?;
            Ok::<_, etcd_client::Error>((stream, created))
        })
        .await
        .map_err(|_| {
            StoreError::Timeout(format!(
                "{what} on etcd at {endpoints}: no answer within {timeout:?}"
            ))
        })?;
        let (stream, created) = opened.map_err(|e| map(e, endpoints, &what))?;
        let created = created.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "{what} on etcd at {endpoints}: stream closed before the watch was created"
            ))
        })?;
        if created.compact_revision() > 0 {
            self.shared.note_etcd_compacted(created.compact_revision());
            return Err(StoreError::Compacted {
                requested: after,
                compacted: self.shared.compacted(),
            });
        }
        if !created.created() || created.canceled() {
            return Err(StoreError::Unavailable(format!(
                "{what} on etcd at {endpoints}: watch not created: {}",
                created.cancel_reason()
            )));
        }
        let current = header_revision(created.header(), endpoints)?;
        if after > current {
            return Err(StoreError::FutureRevision {
                requested: after,
                current,
            });
        }
        let (requests, responses) = stream.split();
        let rx = watch::spawn(watch::WatchTask {
            shared: self.shared.clone(),
            prefix: prefix.to_owned(),
            after,
            requests,
            responses,
            progress: self.progress.subscribe(),
        });
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let compacted = self.learn_compacted().await?;
        if revision <= compacted {
            // Compacting again at the compacted revision is a no-op; below it, an error.
            return match revision == compacted || (revision <= 1 && compacted == 0) {
                true => Ok(()),
                false => Err(StoreError::Compacted {
                    requested: revision,
                    compacted,
                }),
            };
        }
        // etcd would accept `revision - 1` even when `revision` is one past its head.
        let current = self.current_revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        let etcd_revision = revision - 1;
        if etcd_revision < 1 {
            // Revision 1 is a fresh etcd's empty state: there is no history before it.
            return Ok(());
        }
        let what = format!("compact at {revision}");
        let opts = CompactionOptions::new().with_physical();
        let result = self
            .rpc(&what, false, |mut kv| {
                let opts = opts.clone();
                async move { kv.compact(etcd_revision, Some(opts)).await }
            })
            .await;
        match result {
            Ok(_) => {
                self.shared.note_etcd_compacted(etcd_revision);
                Ok(())
            }
            // Someone else compacted in the meantime.
            Err(Failure::Compacted) => {
                let compacted = self.learn_compacted().await?;
                if revision <= compacted {
                    return match revision == compacted {
                        true => Ok(()),
                        false => Err(StoreError::Compacted {
                            requested: revision,
                            compacted,
                        }),
                    };
                }
                Err(StoreError::Internal(format!(
                    "{what} on etcd at {}: etcd says compacted, but its compacted revision is {compacted}",
                    self.shared.endpoints
                )))
            }
            Err(Failure::FutureRevision) => Err(self.future_error(revision).await),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.read_at(0)
            .await
            .map_err(|f| self.unexpected(f, "read the current revision"))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.learn_compacted().await
    }

    async fn request_progress(&self) -> Result<(), StoreError> {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_cover_exactly_the_prefix() {
        assert_eq!(
            prefix_range("/registry/pods/"),
            (b"/registry/pods/".to_vec(), b"/registry/pods0".to_vec())
        );
        assert_eq!(prefix_range(""), (vec![0], vec![0]));
        // A multi-byte last character: the last byte is bumped, which is still the smallest
        // byte string above every key under the prefix.
        let (start, end) = prefix_range("/a\u{e9}");
        assert_eq!(start, "/a\u{e9}".as_bytes());
        assert_eq!(end, vec![b'/', b'a', 0xc3, 0xaa]);
        for key in ["/a\u{e9}", "/a\u{e9}/x", "/a\u{e9}\u{10FFFF}"] {
            assert!(
                key.as_bytes() >= start.as_slice() && key.as_bytes() < end.as_slice(),
                "{key:?}"
            );
        }
        for key in ["/a\u{ea}", "/b", "/a"] {
            assert!(
                !(key.as_bytes() >= start.as_slice() && key.as_bytes() < end.as_slice()),
                "{key:?}"
            );
        }
    }
}
