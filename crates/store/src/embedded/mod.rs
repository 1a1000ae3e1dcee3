//! The embedded store: keelson's default [`KvStore`], an MVCC key-value store in one directory.
//!
//! # Engine: SQLite, chosen by measurement
//!
//! `benches/engines.rs` runs this same store (group commit, layout, watch hub) over SQLite
//! (rusqlite with bundled SQLite, WAL, `synchronous=FULL`) and over redb 4.5
//! (`Durability::Immediate`, with and without quick-repair), fsync real. Medians of three full
//! runs on the 2-core development machine, shared with other builds (so absolute numbers are
//! noisy; the ratios held in every run). Values are 300-byte JSON documents.
//!
//! | | SQLite | redb | redb, no quick-repair |
//! |---|---|---|---|
//! | 16 concurrent writers: creates/s | **10,851** | 6,746 | 5,523 |
//! | — latency p50 / p99 (ms) | **1.15 / 9.2** | 1.77 / 16.0 | 1.51 / 11.2 |
//! | — writes per fsync (mean batch) | 13.2 | 13.3 | 11.6 |
//! | 1 sequential writer: creates/s | **2,894** | 795 | 1,091 |
//! | — latency p50 / p99 (ms) | **0.29 / 4.4** | 0.77 / 9.8 | 0.49 / 4.7 |
//! | — p50 on a store of 100,000 keys (ms) | **0.60** | 0.83 | 0.72 |
//! | range of 10,000 keys, latest (ms) | 9.4 | **7.6** | 7.4 |
//! | range of 10,000 keys, older revision (ms) | 21.6 | **12.3** | 14.5 |
//! | get p50 (ms) | 0.040 | **0.023** | 0.023 |
//! | open, 100,000 keys, after clean close (ms) | **0.9** | 12.1 | 8.0 |
//! | open, 100,000 keys, after SIGKILL (ms) | **2.2** | 1.8 | 158 |
//! | size of 100,000 keys + history (MiB) | **45** | 75 | 75 |
//!
//! Why SQLite: every write pays one commit, and SQLite's WAL commit (append + one fsync) is the
//! cheapest — a single writer is 2.6x faster than redb and a loaded store 1.6x, with half the
//! tail latency. Opening is about 1 ms and recovery after a kill is bounded by the WAL, while redb
//! must either scan the whole file after a crash (158 ms at 100,000 keys, growing with size: a
//! large cluster would blow the 300 ms start-up budget) or save its allocator state at every
//! commit (quick-repair, the slowest writes here). The file is 40% smaller. redb reads faster,
//! but the API server answers lists and watches from its watch cache, so store reads are off
//! the hot path and writes and start-up are on it. Rerun with
//! `cargo bench -p store --features redb --bench engines`.
//!
//!
//! # Guarantees
//! * **Durable.** A write is acknowledged only after the transaction holding it is fsynced.
//! * **Group commit.** Writes go through one queue to one writer thread, which applies whatever
//!   is queued in one transaction with one fsync (the `writer` module). Each write still gets
//!   its own revision, consecutive and in queue order. A commit that fails (fsync error) stops
//!   all further writes with `Unavailable` until the store is reopened: after a failed fsync the
//!   outcome on disk is unknown.
//! * **MVCC.** One global revision. Every write is kept in history (a delete as a tombstone that
//!   carries the key's last value) until compaction, so reads at older revisions and watches from
//!   older revisions work. Reads are served from a snapshot on a blocking thread and never wait
//!   for the writer.
//! * **Compaction.** [`KvStore::compact`] and an automatic [`CompactionPolicy`]. After compaction
//!   at `C`, reads at revisions `< C` and watches from revisions `< C - 1` fail with
//!   [`StoreError::Compacted`]; the latest state of every key is always kept.
//! * **Watch.** Exactly once, in revision order, under the prefix; history first, then live.
//!   Live fan-out never blocks a writer; a watcher that falls behind catches up from disk, or
//!   ends with `Compacted` if that history is gone (the `watch` module).
//! * **One process per directory.** The directory is locked (`LOCK`, `flock`) while open; a
//!   second `open` fails with [`StoreError::Unavailable`].
//! * **Fast open.** Opening reads three counters; it never scans history. SQLite recovers its
//!   WAL (bounded by the checkpoint size) after a crash.
//!
//! The store is meant to be used from tokio: every disk access runs on the writer thread or on
//! `spawn_blocking`, never on an async worker.

pub mod engine;
mod hub;
#[cfg(feature = "redb")]
pub mod redb;
pub mod sqlite;
mod watch;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::{KeyValue, KvStore, RangeRequest, RangeResponse, Revision, StoreError, WatchStream};
use engine::{Engine, EngineReader, KeyBounds, ReadTxn};
use hub::Hub;
use writer::{AutoCompactor, Command, WriteOp, Writer, Written};

pub use sqlite::SqliteEngine;
pub use writer::CompactionPolicy;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Tuning of the embedded store; [`Default`] is what `keelson server` uses.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Automatic compaction; `None` turns it off (compaction then only happens on
    /// [`KvStore::compact`]).
    pub auto_compaction: Option<CompactionPolicy>,
    /// Most writes applied in one transaction.
    pub max_batch: usize,
    /// Memory for recent events kept for live watchers. A watcher that falls further behind
    /// reads from disk instead.
    pub watch_buffer_bytes: usize,
    /// Revisions read from disk per step when a watcher catches up.
    pub watch_catchup_revisions: Revision,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            auto_compaction: Some(CompactionPolicy::default()),
            max_batch: 256,
            watch_buffer_bytes: 32 * 1024 * 1024,
            watch_catchup_revisions: 5_000,
        }
    }
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Write transactions committed (each one fsync).
    pub commits: u64,
    /// Successful writes in them.
    pub writes: u64,
}

#[derive(Default)]
struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
}

/// State shared by the store handle, the writer thread and the watch streams.
struct Shared<R> {
    reader: R,
    hub: Hub,
    /// Mirrors of the writer's counters, for the cheap `current_revision` and for checking a
    /// watch's start without a disk read.
    current: AtomicI64,
    compacted: AtomicI64,
    closed: AtomicBool,
    stats: Stats,
    options: EmbeddedOptions,
}

/// The embedded store over engine `E` (SQLite unless a benchmark says otherwise).
pub struct EmbeddedStore<E: Engine = SqliteEngine> {
    shared: Arc<Shared<E::Reader>>,
    commands: mpsc::Sender<Command>,
    dir: PathBuf,
}

impl EmbeddedStore<SqliteEngine> {
    /// Opens (creating if needed) the store in `dir`.
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> Result<Arc<Self>, StoreError> {
        Self::open_with(SqliteEngine::default(), dir, options).await
    }
}

impl<E: Engine> EmbeddedStore<E> {
    /// Opens the store in `dir` on a specific engine.
    pub async fn open_with(
        engine: E,
        dir: &Path,
        options: EmbeddedOptions,
    ) -> Result<Arc<Self>, StoreError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(engine, &dir, options))
            .await
            .map_err(|e| StoreError::Internal(format!("store open task failed: {e}")))?
    }

    /// [`Self::open_with`] for callers outside an async context. The store's methods still
    /// need a tokio runtime.
    pub fn open_blocking(
        engine: E,
        dir: &Path,
        options: EmbeddedOptions,
    ) -> Result<Arc<Self>, StoreError> {
        let io_error = |what: &str, e: std::io::Error| {
            StoreError::Internal(format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create data directory", e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| io_error("cannot create the lock file in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Unavailable(format!(
                    "data directory {} is in use by another process",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", e)),
        }
        let (engine_writer, reader) = engine.open(dir)?;
        let counters = reader.read(|t| Ok(t.counters()?))?;
        let shared = Arc::new(Shared {
            reader,
            hub: Hub::new(counters.current, options.watch_buffer_bytes),
            current: AtomicI64::new(counters.current),
            compacted: AtomicI64::new(counters.compacted),
            closed: AtomicBool::new(false),
            stats: Stats::default(),
            options: options.clone(),
        });
        let writer = Writer {
            engine: engine_writer,
            shared: shared.clone(),
            counters,
            auto: options
                .auto_compaction
                .map(|p| AutoCompactor::new(p, Instant::now(), counters.current)),
            max_batch: options.max_batch.max(1),
            failed: None,
            lock,
        };
        let (commands, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the store writer: {e}")))?;
        Ok(Arc::new(EmbeddedStore {
            shared,
            commands,
            dir: dir.to_path_buf(),
        }))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> EmbeddedStats {
        EmbeddedStats {
            commits: self.shared.stats.commits.load(Ordering::Relaxed),
            writes: self.shared.stats.writes.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after the writes already queued, closes the files and releases the
    /// directory lock. Afterwards every call fails with `Unavailable` and watch streams end
    /// with it. Dropping the last handle does the same without waiting.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Close { done }).is_ok() {
            let _ = finished.await;
        }
    }

    fn ensure_open(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        Ok(())
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn ReadTxn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.ensure_open()?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.reader.read(f))
            .await
            .map_err(|e| StoreError::Internal(format!("store read task failed: {e}")))?
    }

    async fn write(&self, op: WriteOp) -> Result<Written, StoreError> {
        self.ensure_open()?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Write { op, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Internal(format!(
        "store writer answered {what} with the wrong outcome"
    ))
}

#[async_trait]
impl<E: Engine> KvStore for EmbeddedStore<E> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.read(move |t| Ok(t.get(&key)?)).await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        let RangeRequest {
            prefix,
            start,
            revision,
            limit,
        } = req;
        let end = prefix_end(&prefix);
        let start = match start {
            Some(start) if start > prefix => start,
            _ => prefix,
        };
        let limit = limit.filter(|&n| n > 0);
        // As in etcd, a revision of 0 (or below) means the latest.
        let revision = revision.filter(|&r| r > 0);
        self.read(move |t| {
            let counters = t.counters()?;
            if let Some(at) = revision {
                if at > counters.current {
                    return Err(StoreError::FutureRevision {
                        requested: at,
                        current: counters.current,
                    });
                }
                if at < counters.compacted {
                    return Err(StoreError::Compacted {
                        requested: at,
                        compacted: counters.compacted,
                    });
                }
            }
            let bounds = KeyBounds {
                start: &start,
                end: end.as_deref(),
            };
            let mut kvs = if bounds.is_empty() {
                Vec::new()
            } else {
                // The latest state is cheaper to read than the state at a revision.
                let at = revision.filter(|&at| at < counters.current);
                t.range(bounds, at, limit.map(|n| n.saturating_add(1)))?
            };
            let more = limit.is_some_and(|n| kvs.len() > n);
            if let Some(n) = limit {
                kvs.truncate(n);
            }
            Ok(RangeResponse {
                kvs,
                more,
                revision: revision.unwrap_or(counters.current),
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        let key = key.to_owned();
        match self.write(WriteOp::Create { key, value }).await? {
            Written::Put(rev) => Ok(rev),
            Written::Deleted(..) => Err(unexpected("a create")),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let key = key.to_owned();
        let op = WriteOp::Update {
            key,
            value,
            expected,
        };
        match self.write(op).await? {
            Written::Put(rev) => Ok(rev),
            Written::Deleted(..) => Err(unexpected("an update")),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let key = key.to_owned();
        match self.write(WriteOp::Delete { key, expected }).await? {
            Written::Deleted(rev, last) => Ok((rev, last)),
            Written::Put(_) => Err(unexpected("a delete")),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.ensure_open()?;
        let after = after.max(0);
        let current = self.shared.current.load(Ordering::Acquire);
        if after > current {
            return Err(StoreError::FutureRevision {
                requested: after,
                current,
            });
        }
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if after + 1 < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        Ok(watch::watch_stream(
            self.shared.clone(),
            prefix.to_owned(),
            after,
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.ensure_open()?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Compact { revision, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.ensure_open()?;
        Ok(self.shared.current.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.ensure_open()?;
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn request_progress(&self) -> Result<(), StoreError> {
        self.ensure_open()?;
        self.shared.hub.request_progress();
        Ok(())
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when
/// there is none (`prefix` is empty or all `char::MAX`). Keys compare as UTF-8 bytes, which is
/// code point order, so bumping the last code point that can be bumped gives the bound.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            char::MAX => None,
            // The surrogate range is not made of chars; jump over it.
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_prefixed_keys() {
        assert_eq!(
            prefix_end("/registry/pods/").as_deref(),
            Some("/registry/pods0")
        );
        assert_eq!(prefix_end("a").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
        let end = prefix_end("/a/").expect("bounded");
        for key in ["/a/", "/a/\u{10FFFF}\u{10FFFF}", "/a/zzz", "/a/\0"] {
            assert!(key.starts_with("/a/") && key < end.as_str(), "{key:?}");
        }
        for key in ["/a0", "/b", "/a0/x"] {
            assert!(key >= end.as_str(), "{key:?}");
        }
    }
}
