//! Watch streams: history from disk, then live events from the hub, each revision exactly once.
//!
//! A watcher is a cursor (the last revision it has *covered*, whether or not any event under its
//! prefix had that revision) plus a small queue of events ready to hand out. To advance, it asks
//! the hub for batches after the cursor; if the hub has evicted them (the watcher is new and
//! starts in the past, or it read too slowly) it reads the missing revisions from the on-disk
//! history in pages on a blocking thread, then returns to the hub. The cursor only moves forward
//! and each revision is consumed from exactly one place, which gives exactly-once, in-order
//! delivery. Because the stream is pulled, a consumer that stops reading only stops its own
//! watcher: the writer never waits for it, and if it falls out of the ring it resumes from disk —
//! or ends with `Compacted` if that history has been compacted away meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;

use super::engine::{EngineReader, HistoryEntry, KeyBounds};
use super::hub::Slice;
use super::{Shared, prefix_end};
use crate::{KeyValue, Revision, StoreError, WatchEvent, WatchStream};

/// Ring batches copied out per look at the hub.
const RING_READ_BATCHES: usize = 64;

pub(super) fn watch_stream<R: EngineReader>(
    shared: Arc<Shared<R>>,
    prefix: String,
    after: Revision,
) -> WatchStream {
    let watcher = Watcher {
        head: shared.hub.subscribe(),
        end: prefix_end(&prefix),
        shared,
        prefix,
        cursor: after,
        pending: VecDeque::new(),
        done: false,
        progress_seen: 0,
    };
    Box::pin(futures::stream::unfold(watcher, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

struct Watcher<R> {
    shared: Arc<Shared<R>>,
    head: tokio::sync::watch::Receiver<Revision>,
    prefix: String,
    end: Option<String>,
    /// Every revision `<= cursor` has been dealt with (queued in `pending` or not ours).
    cursor: Revision,
    pending: VecDeque<WatchEvent>,
    done: bool,
    /// The hub's progress-request count this watcher has answered.
    progress_seen: u64,
}

impl<R: EngineReader> Watcher<R> {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            // Mark the head seen *before* looking at the ring: a publish after this point is
            // then guaranteed to wake `changed()` below.
            self.head.borrow_and_update();
            match self.shared.hub.read_after(self.cursor, RING_READ_BATCHES) {
                Slice::Closed => return self.fail(closed()),
                Slice::Ready(batches) if batches.is_empty() => {
                    // Up to date: everything up to the cursor has been handed out, so this is
                    // the moment to answer a progress request.
                    let requested = self.shared.hub.progress_requests();
                    if requested > self.progress_seen {
                        self.progress_seen = requested;
                        return Some(Ok(WatchEvent::progress(self.cursor)));
                    }
                    if self.head.changed().await.is_err() {
                        return self.fail(closed());
                    }
                }
                Slice::Ready(batches) => {
                    for batch in batches {
                        // The hub's invariant: no revision between the cursor and the ring.
                        debug_assert!(batch.first <= self.cursor + 1, "gap before {batch:?}");
                        let fresh = batch.events.iter().filter(|e| {
                            e.revision() > self.cursor && e.kv.key.starts_with(&self.prefix)
                        });
                        self.pending.extend(fresh.cloned());
                        self.cursor = self.cursor.max(batch.last);
                    }
                }
                Slice::Evicted { start } => {
                    let page = self.shared.options.watch_catchup_revisions.max(1);
                    let upto = (start - 1).min(self.cursor.saturating_add(page));
                    if let Err(e) = self.catch_up(upto).await {
                        return self.fail(e);
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: StoreError) -> Option<Result<WatchEvent, StoreError>> {
        self.done = true;
        Some(Err(e))
    }

    /// Queues the history in `(cursor, upto]` from disk; every revision there is committed.
    async fn catch_up(&mut self, upto: Revision) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let (after, start, end) = (self.cursor, self.prefix.clone(), self.end.clone());
        let entries = tokio::task::spawn_blocking(move || {
            shared.reader.read(|t| {
                let counters = t.counters()?;
                // History above `compacted - 1` is complete (see `engine`); below it, events
                // may be gone.
                if after + 1 < counters.compacted {
                    return Err(StoreError::Compacted {
                        requested: after,
                        compacted: counters.compacted,
                    });
                }
                let bounds = KeyBounds {
                    start: &start,
                    end: end.as_deref(),
                };
                Ok(t.history(bounds, after, upto)?)
            })
        })
        .await
        .map_err(|e| StoreError::Internal(format!("watch catch-up task failed: {e}")))??;
        self.pending.extend(entries.into_iter().map(to_event));
        self.cursor = upto;
        Ok(())
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store was closed".into())
}

/// The event a history row stands for, shaped exactly like the live event the writer published
/// for the same write.
pub(super) fn to_event(entry: HistoryEntry) -> WatchEvent {
    let c = entry.change;
    let prev = match (c.prev_revision, entry.prev_value) {
        (prev_revision, Some(value)) if prev_revision > 0 => Some(KeyValue {
            key: c.key.clone(),
            value,
            create_revision: c.create_revision,
            mod_revision: prev_revision,
        }),
        _ => None,
    };
    WatchEvent {
        kind: c.kind,
        kv: KeyValue {
            key: c.key,
            value: c.value,
            create_revision: c.create_revision,
            mod_revision: c.revision,
        },
        prev,
    }
}
