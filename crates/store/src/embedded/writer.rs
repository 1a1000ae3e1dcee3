//! The single writer thread: group commit, revision assignment, compare-and-swap, compaction.
//!
//! Every write is a message on one queue. The thread takes the first waiting message, drains
//! whatever else is queued (up to `max_batch`), applies them in order in one engine transaction,
//! and commits it with one fsync; only then does it publish the batch's events to the hub and
//! answer the writers. While it is inside a commit, new writers queue up, so under concurrency
//! the batches grow and fsyncs are shared — without a timer that would add latency when idle.
//!
//! Each successful write in a batch gets its own revision, consecutive and in queue order; a
//! write that fails its check (already exists, not found, conflict) gets none and does not
//! disturb the others. If the engine fails before commit, the whole batch is rolled back and
//! every writer in it gets the error. If the *commit* fails, the outcome on disk is unknown, so
//! the thread stops accepting writes (`Unavailable`) until the store is reopened.
//!
//! Compaction is two steps: the new compacted revision is committed at once (reads and watches
//! below it fail from then on), and the dead history rows are deleted afterwards in small chunks,
//! only while no write is waiting, so compaction never holds writers up for more than a chunk.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Shared;
use super::engine::{Change, Counters, EngineError, EngineReader, EngineWriter, WriteTxn};
use super::hub::Batch;
use crate::{EventKind, KeyValue, Revision, StoreError, WatchEvent};

/// History rows examined per compaction transaction.
const COMPACT_CHUNK_ROWS: usize = 2_000;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Command {
    Write {
        op: WriteOp,
        reply: Reply<Written>,
    },
    Compact {
        revision: Revision,
        reply: Reply<()>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

pub(super) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(super) enum Written {
    Put(Revision),
    Deleted(Revision, KeyValue),
}

/// When the automatic compaction runs and how much history it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// How often the policy is evaluated.
    pub interval: Duration,
    /// History younger than this is kept.
    pub min_age: Duration,
    /// At least this many revisions behind the head are kept.
    pub min_revisions_behind: Revision,
}

impl Default for CompactionPolicy {
    /// Every minute, compact what is both older than 5 minutes and more than 10,000 revisions
    /// behind the head (upstream's apiserver compacts etcd every 5 minutes; the revision floor
    /// keeps a burst of writes from pushing watchers that are a few seconds behind into 410s).
    fn default() -> Self {
        CompactionPolicy {
            interval: Duration::from_secs(60),
            min_age: Duration::from_secs(5 * 60),
            min_revisions_behind: 10_000,
        }
    }
}

/// Remembers which revision was the head at each tick, to know which revisions are old enough.
#[derive(Debug)]
pub(super) struct AutoCompactor {
    policy: CompactionPolicy,
    next_tick: Instant,
    /// `(when, head then)`, oldest first; at most one sample older than `min_age` is kept.
    samples: VecDeque<(Instant, Revision)>,
}

impl AutoCompactor {
    pub(super) fn new(policy: CompactionPolicy, now: Instant, head: Revision) -> Self {
        AutoCompactor {
            policy,
            next_tick: now + policy.interval,
            samples: VecDeque::from([(now, head)]),
        }
    }

    fn due(&self, now: Instant) -> bool {
        now >= self.next_tick
    }

    /// Records the head at `now` and returns the revision to compact at, if it is above
    /// `compacted`: the newest revision that was already the head `min_age` ago, capped at
    /// `min_revisions_behind` below the head.
    pub(super) fn tick(
        &mut self,
        now: Instant,
        head: Revision,
        compacted: Revision,
    ) -> Option<Revision> {
        self.next_tick = now + self.policy.interval;
        self.samples.push_back((now, head));
        let old_enough = |t: &Instant| now.saturating_duration_since(*t) >= self.policy.min_age;
        while self.samples.get(1).is_some_and(|(t, _)| old_enough(t)) {
            self.samples.pop_front();
        }
        let (t, aged_head) = *self.samples.front()?;
        if !old_enough(&t) {
            return None;
        }
        let target = aged_head.min(head - self.policy.min_revisions_behind);
        (target > compacted).then_some(target)
    }
}

pub(super) struct Writer<W, R> {
    pub(super) engine: W,
    pub(super) shared: Arc<Shared<R>>,
    pub(super) counters: Counters,
    pub(super) auto: Option<AutoCompactor>,
    pub(super) max_batch: usize,
    /// Set when a commit failed; writes are refused from then on.
    pub(super) failed: Option<String>,
    /// The data directory's lock, held for as long as this thread may write.
    pub(super) lock: File,
}

impl<W: EngineWriter, R: EngineReader> Writer<W, R> {
    pub(super) fn run(mut self, rx: Receiver<Command>) {
        // Ends the watch streams even if this thread dies of a bug, instead of leaving them
        // waiting for events that will never come.
        let guard = CloseOnExit(self.shared.clone());
        let mut closed = None;
        while let Some(first) = self.next_command(&rx) {
            let mut batch = Vec::new();
            let mut after_batch = None;
            match first {
                Command::Write { op, reply } => batch.push((op, reply)),
                other => after_batch = Some(other),
            }
            if !batch.is_empty() {
                while batch.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(Command::Write { op, reply }) => batch.push((op, reply)),
                        Ok(other) => {
                            after_batch = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                self.commit(batch);
            }
            match after_batch {
                Some(Command::Compact { revision, reply }) => {
                    let _ = reply.send(self.compact(revision));
                }
                Some(Command::Close { done }) => {
                    closed = Some(done);
                    break;
                }
                Some(Command::Write { .. }) | None => {}
            }
            self.maybe_auto_compact();
        }
        // Writes still queued are dropped with `rx`: their callers see `Unavailable`.
        drop(rx);
        drop(guard);
        // Close the files and release the lock *before* answering `close`, so the caller can
        // reopen the directory at once.
        let Writer {
            engine,
            lock,
            shared,
            ..
        } = self;
        drop(engine);
        drop(shared);
        drop(lock);
        if let Some(done) = closed {
            let _ = done.send(());
        }
    }

    /// The next command; between commands, runs compaction chunks and the policy timer.
    /// `None` once every sender is gone.
    fn next_command(&mut self, rx: &Receiver<Command>) -> Option<Command> {
        loop {
            if self.compaction_pending() {
                match rx.try_recv() {
                    Ok(cmd) => return Some(cmd),
                    Err(TryRecvError::Empty) => {
                        self.compact_chunk();
                        self.maybe_auto_compact();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => return None,
                }
            }
            let Some(auto) = &self.auto else {
                return rx.recv().ok();
            };
            let wait = auto.next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(cmd) => return Some(cmd),
                Err(RecvTimeoutError::Timeout) => self.maybe_auto_compact(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn commit(&mut self, batch: Vec<(WriteOp, Reply<Written>)>) {
        if let Some(reason) = &self.failed {
            let err = StoreError::Unavailable(reason.clone());
            for (_, reply) in batch {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }
        let base = self.counters.current;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let result = self.engine.transact(&mut |txn| {
            outcomes.clear();
            events.clear();
            let mut rev = base;
            for (op, _) in &batch {
                match apply(txn, op, rev + 1)? {
                    Ok((written, event)) => {
                        rev += 1;
                        outcomes.push(Ok(written));
                        events.push(event);
                    }
                    Err(e) => outcomes.push(Err(e)),
                }
            }
            if rev > base {
                txn.set_current(rev)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            let err = self.engine_failed(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }
        let stats = &self.shared.stats;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        if let Some(batch) = Batch::new(events) {
            let last = batch.last;
            self.counters.current = last;
            // Published before anyone is answered, so a caller that watches from its own
            // write's revision right after the ack never races the fan-out; and published
            // before `current` moves, so a watcher that has caught up with the hub has always
            // seen at least `current_revision()` (what progress requests rely on).
            self.shared.hub.publish(batch);
            self.shared.current.store(last, Ordering::Release);
        }
        for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }

    fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::Unavailable(reason.clone()));
        }
        let Counters {
            current, compacted, ..
        } = self.counters;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision < compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted,
            });
        }
        if revision == compacted {
            return Ok(());
        }
        self.engine
            .transact(&mut |t| t.set_compaction(revision, 0))
            .map_err(|e| self.engine_failed(e))?;
        self.counters.compacted = revision;
        self.counters.compact_progress = 0;
        self.shared.compacted.store(revision, Ordering::Release);
        tracing::debug!(revision, "store compacted");
        Ok(())
    }

    fn compaction_pending(&self) -> bool {
        self.failed.is_none() && self.counters.compact_progress < self.counters.compacted
    }

    fn compact_chunk(&mut self) {
        let (target, from) = (self.counters.compacted, self.counters.compact_progress);
        let mut next = None;
        let result = self.engine.transact(&mut |t| {
            next = t.compact_step(target, from, COMPACT_CHUNK_ROWS)?;
            t.set_compaction(target, next.unwrap_or(target))
        });
        match result {
            Ok(()) => self.counters.compact_progress = next.unwrap_or(target),
            Err(e) => {
                let e = self.engine_failed(e);
                // Give up on this round; the dead rows are harmless and the next compaction
                // starts its scan from the beginning.
                tracing::error!(error = %e, "store compaction failed");
                self.counters.compact_progress = target;
            }
        }
    }

    fn maybe_auto_compact(&mut self) {
        let now = Instant::now();
        let Some(auto) = self.auto.as_mut().filter(|a| a.due(now)) else {
            return;
        };
        let Some(target) = auto.tick(now, self.counters.current, self.counters.compacted) else {
            return;
        };
        if let Err(e) = self.compact(target) {
            tracing::error!(error = %e, target, "automatic store compaction failed");
        }
    }

    /// Maps an engine error for the callers, and stops writes if the commit itself failed.
    fn engine_failed(&mut self, e: EngineError) -> StoreError {
        if let EngineError::Commit(msg) = &e {
            let reason = format!(
                "a commit to the data directory failed ({msg}); writes are refused until \
                 the server restarts"
            );
            tracing::error!("{reason}");
            self.failed = Some(reason.clone());
            return StoreError::Unavailable(reason);
        }
        e.into()
    }
}

struct CloseOnExit<R: EngineReader>(Arc<Shared<R>>);

impl<R: EngineReader> Drop for CloseOnExit<R> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.hub.close();
        self.0.reader.close();
    }
}

type Applied = Result<(Written, WatchEvent), StoreError>;

/// Checks and applies one write at `rev`. The outer error aborts the transaction; the inner one
/// only fails this write.
fn apply(txn: &mut dyn WriteTxn, op: &WriteOp, rev: Revision) -> Result<Applied, EngineError> {
    let (key, value, prev) = match op {
        WriteOp::Create { key, value } => {
            if txn.get(key)?.is_some() {
                return Ok(Err(StoreError::AlreadyExists { key: key.clone() }));
            }
            (key, value, None)
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let current = match check(txn, key, Some(*expected))? {
                Ok(current) => current,
                Err(e) => return Ok(Err(e)),
            };
            (key, value, Some(current))
        }
        WriteOp::Delete { key, expected } => {
            let last = match check(txn, key, *expected)? {
                Ok(last) => last,
                Err(e) => return Ok(Err(e)),
            };
            let change = Change {
                revision: rev,
                key: key.clone(),
                kind: EventKind::Delete,
                value: last.value.clone(),
                create_revision: last.create_revision,
                prev_revision: last.mod_revision,
            };
            txn.apply(&change)?;
            let event = WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    value: last.value.clone(),
                    create_revision: last.create_revision,
                    mod_revision: rev,
                },
                prev: Some(last.clone()),
            };
            return Ok(Ok((Written::Deleted(rev, last), event)));
        }
    };
    let create_revision = prev.as_ref().map_or(rev, |p| p.create_revision);
    let change = Change {
        revision: rev,
        key: key.clone(),
        kind: EventKind::Put,
        value: value.clone(),
        create_revision,
        prev_revision: prev.as_ref().map_or(0, |p| p.mod_revision),
    };
    txn.apply(&change)?;
    let event = WatchEvent {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key.clone(),
            value: value.clone(),
            create_revision,
            mod_revision: rev,
        },
        prev,
    };
    Ok(Ok((Written::Put(rev), event)))
}

/// The key's current state, if it exists and (when `expected` is given) is at that revision.
fn check(
    txn: &mut dyn WriteTxn,
    key: &str,
    expected: Option<Revision>,
) -> Result<Result<KeyValue, StoreError>, EngineError> {
    let Some(current) = txn.get(key)? else {
        return Ok(Err(StoreError::NotFound { key: key.into() }));
    };
    match expected {
        Some(expected) if expected != current.mod_revision => Ok(Err(StoreError::Conflict {
            key: key.into(),
            expected,
            current: Box::new(current),
        })),
        _ => Ok(Ok(current)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn default_policy_waits_for_age_and_distance() {
        let t0 = Instant::now();
        let mut auto = AutoCompactor::new(CompactionPolicy::default(), t0, 0);
        // Busy cluster: 30,000 revisions a minute. Nothing is 5 minutes old before minute 5.
        for minute in 1..5u32 {
            let head = 30_000 * Revision::from(minute);
            assert_eq!(
                auto.tick(t0 + MIN * minute, head, 0),
                None,
                "minute {minute}"
            );
        }
        // At minute 5 the head of minute 0 (revision 0) is old enough, but 0 is not above the
        // compacted revision. At minute 6 the head of minute 1 is.
        assert_eq!(auto.tick(t0 + MIN * 5, 150_000, 0), None);
        assert_eq!(auto.tick(t0 + MIN * 6, 180_000, 0), Some(30_000));
        assert_eq!(auto.tick(t0 + MIN * 7, 210_000, 30_000), Some(60_000));
        // Samples older than the newest aged one are dropped.
        assert!(auto.samples.len() <= 7, "{:?}", auto.samples);
    }

    #[test]
    fn default_policy_keeps_ten_thousand_revisions_on_a_quiet_cluster() {
        let t0 = Instant::now();
        let mut auto = AutoCompactor::new(CompactionPolicy::default(), t0, 12_000);
        // Ten minutes later, only 500 more writes: the 10,000-revision floor wins.
        assert_eq!(auto.tick(t0 + MIN * 10, 12_500, 0), Some(2_500));
        assert_eq!(auto.tick(t0 + MIN * 11, 12_500, 2_500), None);
        // Fewer than 10,000 revisions in all: nothing to compact.
        let mut small = AutoCompactor::new(CompactionPolicy::default(), t0, 100);
        assert_eq!(small.tick(t0 + MIN * 10, 9_000, 0), None);
    }

    #[test]
    fn ticks_are_spaced_by_the_interval() {
        let t0 = Instant::now();
        let mut auto = AutoCompactor::new(CompactionPolicy::default(), t0, 0);
        assert!(!auto.due(t0 + Duration::from_secs(59)));
        assert!(auto.due(t0 + MIN));
        auto.tick(t0 + MIN * 3 / 2, 0, 0);
        assert!(!auto.due(t0 + MIN * 2));
        assert!(auto.due(t0 + MIN * 5 / 2));
    }
}
