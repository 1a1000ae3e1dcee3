//! Live fan-out of committed writes to watchers, without ever making a writer wait for one.
//!
//! The writer thread appends each committed batch of events to a ring of recent batches and bumps
//! a `tokio::sync::watch` channel holding the newest revision. Watchers are not registered
//! anywhere: each one *pulls* from the ring at its own pace, remembering the last revision it has
//! covered. Publishing therefore costs the writer one short mutex section and never depends on how
//! many watchers there are or how fast they read. The ring is bounded (by bytes); a watcher whose
//! position has been evicted is told so and catches up from the on-disk history instead (see
//! [`super::watch`]).
//!
//! Invariant: every committed revision `>= start()` is in the ring, and every revision below it
//! is on disk — so a watcher at `cursor` reads revision `cursor + 1` from the ring if
//! `cursor + 1 >= start()` and from disk otherwise.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::{Revision, WatchEvent};

/// The events of one committed transaction: revisions `first..=last`, all of them (a watcher
/// filters by prefix itself).
#[derive(Debug)]
pub struct Batch {
    pub first: Revision,
    pub last: Revision,
    pub events: Vec<WatchEvent>,
    bytes: usize,
}

impl Batch {
    /// `events` must be non-empty and hold consecutive revisions.
    pub fn new(events: Vec<WatchEvent>) -> Option<Batch> {
        let first = events.first()?.revision();
        let last = events.last()?.revision();
        let bytes = events
            .iter()
            .map(|e| {
                // Approximate retained size: the values are shared `Bytes`, but a value only
                // this ring still holds would be freed by eviction, so count it.
                e.kv.key.len() + e.kv.value.len() + e.prev.as_ref().map_or(0, |p| p.key.len())
            })
            .sum::<usize>()
            + events.len() * std::mem::size_of::<WatchEvent>();
        Some(Batch {
            first,
            last,
            events,
            bytes,
        })
    }
}

/// What a watcher finds when it looks for revisions after its cursor.
#[derive(Debug)]
pub enum Slice {
    /// Batches holding revisions after the cursor (oldest first); empty when it is up to date.
    Ready(Vec<Arc<Batch>>),
    /// Revisions `cursor + 1 .. start` are no longer in memory: read them from disk.
    Evicted { start: Revision },
    /// The store was closed.
    Closed,
}

pub struct Hub {
    ring: Mutex<Ring>,
    head: watch::Sender<Revision>,
    closed: AtomicBool,
    /// Progress requests so far; each watcher reports progress once per increase.
    progress_requests: AtomicU64,
}

struct Ring {
    batches: VecDeque<Arc<Batch>>,
    bytes: usize,
    max_bytes: usize,
    /// Lowest revision guaranteed to be in the ring once committed.
    start: Revision,
}

impl Hub {
    /// A hub for a store whose latest committed revision is `current`.
    pub fn new(current: Revision, max_bytes: usize) -> Hub {
        Hub {
            ring: Mutex::new(Ring {
                batches: VecDeque::new(),
                bytes: 0,
                max_bytes,
                start: current + 1,
            }),
            head: watch::Sender::new(current),
            closed: AtomicBool::new(false),
            progress_requests: AtomicU64::new(0),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding this lock cannot leave the ring half-updated in a way that
        // breaks the invariant (each mutation is a single push/pop), so poisoning is ignored.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the writer after a batch is durable, in revision order.
    pub fn publish(&self, batch: Batch) {
        let last = batch.last;
        {
            let mut ring = self.ring();
            ring.bytes += batch.bytes;
            ring.batches.push_back(Arc::new(batch));
            // Keep at least the newest batch, however large, so that a watcher that is up to
            // date never has to go to disk for it.
            while ring.bytes > ring.max_bytes && ring.batches.len() > 1 {
                if let Some(old) = ring.batches.pop_front() {
                    ring.bytes -= old.bytes;
                    ring.start = old.last + 1;
                }
            }
        }
        self.head.send_replace(last);
    }

    /// A receiver that is notified after every publish (and on close).
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.head.subscribe()
    }

    /// Up to `max_batches` batches holding revisions after `cursor`.
    pub fn read_after(&self, cursor: Revision, max_batches: usize) -> Slice {
        if self.closed.load(Ordering::Acquire) {
            return Slice::Closed;
        }
        let ring = self.ring();
        if cursor + 1 < ring.start {
            return Slice::Evicted { start: ring.start };
        }
        let from = ring.batches.partition_point(|b| b.last <= cursor);
        Slice::Ready(
            ring.batches
                .range(from..)
                .take(max_batches)
                .cloned()
                .collect(),
        )
    }

    /// Asks every watcher to report its progress once it is up to date, and wakes them.
    pub fn request_progress(&self) {
        self.progress_requests.fetch_add(1, Ordering::AcqRel);
        self.head.send_modify(|_| {});
    }

    /// How many progress reports have been requested.
    pub fn progress_requests(&self) -> u64 {
        self.progress_requests.load(Ordering::Acquire)
    }

    /// Wakes every watcher; from now on they see [`Slice::Closed`].
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.head.send_modify(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, KeyValue};
    use bytes::Bytes;

    fn event(rev: Revision, value_len: usize) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: format!("/k/{rev}"),
                value: Bytes::from(vec![b'x'; value_len]),
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        }
    }

    fn batch(revs: std::ops::RangeInclusive<Revision>, value_len: usize) -> Batch {
        Batch::new(revs.map(|r| event(r, value_len)).collect()).expect("non-empty")
    }

    fn ready(slice: Slice) -> Vec<(Revision, Revision)> {
        match slice {
            Slice::Ready(b) => b.iter().map(|b| (b.first, b.last)).collect(),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn reads_batches_after_cursor() {
        let hub = Hub::new(10, 1 << 20);
        assert!(ready(hub.read_after(10, 8)).is_empty());
        hub.publish(batch(11..=12, 10));
        hub.publish(batch(13..=13, 10));
        hub.publish(batch(14..=16, 10));
        assert_eq!(*hub.subscribe().borrow(), 16);
        assert_eq!(
            ready(hub.read_after(10, 8)),
            vec![(11, 12), (13, 13), (14, 16)]
        );
        // A cursor inside a batch gets that batch; the watcher skips what it has seen.
        assert_eq!(
            ready(hub.read_after(11, 8)),
            vec![(11, 12), (13, 13), (14, 16)]
        );
        assert_eq!(ready(hub.read_after(12, 2)), vec![(13, 13), (14, 16)]);
        assert!(ready(hub.read_after(16, 8)).is_empty());
        // Revisions from before the hub existed are on disk.
        assert!(matches!(hub.read_after(9, 8), Slice::Evicted { start: 11 }));
    }

    #[test]
    fn evicts_oldest_beyond_budget_but_keeps_newest() {
        let one = batch(1..=1, 1000).bytes;
        let hub = Hub::new(0, one * 2);
        hub.publish(batch(1..=1, 1000));
        hub.publish(batch(2..=2, 1000));
        hub.publish(batch(3..=3, 1000));
        assert!(matches!(hub.read_after(0, 8), Slice::Evicted { start: 2 }));
        assert_eq!(ready(hub.read_after(1, 8)), vec![(2, 2), (3, 3)]);
        hub.publish(batch(4..=4, 100_000));
        assert!(matches!(hub.read_after(2, 8), Slice::Evicted { start: 4 }));
        assert_eq!(ready(hub.read_after(3, 8)), vec![(4, 4)]);
    }

    #[test]
    fn close_is_seen() {
        let hub = Hub::new(0, 1024);
        let mut rx = hub.subscribe();
        rx.borrow_and_update();
        hub.close();
        assert!(rx.has_changed().expect("sender alive"));
        assert!(matches!(hub.read_after(0, 1), Slice::Closed));
    }
}
