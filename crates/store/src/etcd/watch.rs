//! Watches: one etcd watch (one gRPC stream) per [`KvStore::watch`], read by a task that turns
//! etcd's responses into [`WatchEvent`]s.
//!
//! Guarantees, on top of etcd's own (every event after the start revision, once, in order):
//! * **Delete events carry the last value.** The etcd watch asks for `prev_kv`, and a delete's
//!   `kv` is rebuilt from it (etcd's own delete event has an empty value). If etcd could not
//!   provide the previous value (its revision was compacted) the value is empty.
//! * **Progress in order.** [`super::EtcdStore::request_progress`] bumps a counter every watch
//!   task follows; each task then sends etcd a progress request on its own stream, and turns
//!   the answer (a response with no events, whose header revision is etcd's revision when it
//!   answered) into one [`EventKind::Progress`] event. A progress event never claims less than
//!   what the watch already delivered. etcd before 3.4.25 / 3.5.8 may send that answer ahead of
//!   events still queued for the stream (etcd issue 15220); against such a version the task
//!   holds the answer back until an event past it arrives (which proves the earlier ones were
//!   sent) or a short hold time passes, and if an event at or below a reported progress still
//!   turns up, it ends the stream with `Unavailable` rather than deliver it out of order — the
//!   consumer re-lists and is consistent again.
//! * **A broken watch ends.** A transport failure, etcd closing the stream, or the store being
//!   dropped ends the stream with `Unavailable`; a watch on compacted history ends with
//!   `Compacted`. HTTP/2 keep-alive pings (see `connect`) turn a silent network failure into a
//!   transport failure. The consumer re-watches; nothing here retries behind its back.
//! * **Back-pressure, not buffering.** Events go to the consumer through a bounded channel; a
//!   consumer that stops reading stops this task reading the gRPC stream, and etcd (not this
//!   process) holds the backlog — etcd never lets a slow watcher block its writers.

use std::sync::Arc;

use bytes::Bytes;
use etcd_client::proto::PbKeyValue;
use etcd_client::{WatchRequestSender, WatchResponse, WatchResponseStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Shared;
use super::error::map;
use crate::{EventKind, KeyValue, Revision, StoreError, WatchEvent};

/// Events buffered between the task and the consumer.
const CHANNEL_CAPACITY: usize = 256;

/// etcd's event type numbers (`mvccpb.Event.EventType`).
const PUT: i32 = 0;
const DELETE: i32 = 1;

pub(super) type Item = Result<WatchEvent, StoreError>;

/// Everything a watch task needs.
pub(super) struct WatchTask {
    pub(super) shared: Arc<Shared>,
    pub(super) prefix: String,
    /// The revision the watch was asked to start after.
    pub(super) after: Revision,
    pub(super) requests: WatchRequestSender,
    pub(super) responses: WatchResponseStream,
    pub(super) progress: watch::Receiver<u64>,
}

/// Spawns the task; returns the consumer's end.
pub(super) fn spawn(task: WatchTask) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(task.run(tx));
    rx
}

/// Where the task stands with respect to what it has told the consumer.
struct Cursor {
    /// Revision of the last event delivered (the start point before any).
    delivered: Revision,
    /// The highest progress revision reported (the start point before any).
    reported: Revision,
    /// An answer from etcd not yet passed on (only against etcd that does not order them):
    /// its revision and when to give up waiting for proof.
    held: Option<(Revision, Instant)>,
}

/// How a step of the task ended when it did not simply go on.
enum Stop {
    /// The consumer went away: end quietly.
    Gone,
    /// Tell the consumer why, then end.
    Fail(StoreError),
}

impl WatchTask {
    async fn run(mut self, tx: mpsc::Sender<Item>) {
        let mut cursor = Cursor {
            delivered: self.after,
            reported: self.after,
            held: None,
        };
        if let Err(Stop::Fail(e)) = self.follow(&tx, &mut cursor).await {
            tracing::debug!(prefix = %self.prefix, error = %e, "etcd watch ended");
            let _ = tx.send(Err(e)).await;
        }
        // Dropping the request sender and the response stream cancels the gRPC stream, and
        // with it the watch on the etcd side.
    }

    async fn follow(&mut self, tx: &mpsc::Sender<Item>, cursor: &mut Cursor) -> Result<(), Stop> {
        loop {
            let hold_until = cursor.held.map(|(_, until)| until);
            tokio::select! {
                biased;
                () = tx.closed() => return Err(Stop::Gone),
                changed = self.progress.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Fail(StoreError::Unavailable("the etcd store was closed".into())));
                    }
                    self.ask_progress().await?;
                }
                () = sleep_until(hold_until), if hold_until.is_some() => {
                    if let Some((revision, _)) = cursor.held.take() {
                        report(tx, cursor, revision).await?;
                    }
                }
                message = self.responses.message() => match message {
                    Ok(Some(response)) => self.handle(tx, cursor, response).await?,
                    Ok(None) => {
                        return Err(Stop::Fail(StoreError::Unavailable(format!(
                            "etcd at {} closed the watch on {:?}",
                            self.shared.endpoints, self.prefix
                        ))));
                    }
                    Err(e) => {
                        return Err(Stop::Fail(map(e, &self.shared.endpoints, &format!("watch {:?}", self.prefix))));
                    }
                },
            }
        }
    }

    async fn ask_progress(&mut self) -> Result<(), Stop> {
        let timeout = self.shared.options.request_timeout;
        match tokio::time::timeout(timeout, self.requests.request_progress()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Stop::Fail(map(
                e,
                &self.shared.endpoints,
                &format!("progress request on watch {:?}", self.prefix),
            ))),
            Err(_) => Err(Stop::Fail(StoreError::Timeout(format!(
                "etcd at {} took more than {timeout:?} to accept a progress request",
                self.shared.endpoints
            )))),
        }
    }

    async fn handle(
        &mut self,
        tx: &mpsc::Sender<Item>,
        cursor: &mut Cursor,
        response: WatchResponse,
    ) -> Result<(), Stop> {
        if response.compact_revision() > 0 {
            self.shared.note_etcd_compacted(response.compact_revision());
            return Err(Stop::Fail(StoreError::Compacted {
                requested: cursor.delivered,
                compacted: self.shared.compacted(),
            }));
        }
        if response.canceled() {
            return Err(Stop::Fail(StoreError::Unavailable(format!(
                "etcd at {} cancelled the watch on {:?}: {}",
                self.shared.endpoints,
                self.prefix,
                response.cancel_reason()
            ))));
        }
        if response.created() {
            return Ok(());
        }
        let header_revision = response.header().map(|h| h.revision());
        let WatchResponse(raw) = response;
        if raw.events.is_empty() {
            // A progress notification: etcd has sent everything up to its header revision.
            let Some(revision) = header_revision else {
                return Ok(());
            };
            if self.shared.ordered_progress {
                return report(tx, cursor, revision).await;
            }
            let hold = self.shared.options.unordered_progress_hold;
            let revision = cursor.held.map_or(revision, |(held, _)| held.max(revision));
            cursor.held = Some((revision, Instant::now() + hold));
            return Ok(());
        }
        for raw_event in raw.events {
            let event =
                convert(raw_event.r#type, raw_event.kv, raw_event.prev_kv).map_err(Stop::Fail)?;
            let revision = event.revision();
            // Several events share a revision when another client changed several keys in one
            // transaction; going backwards, or below a reported progress, is a broken promise.
            if revision < cursor.delivered || revision <= cursor.reported {
                return Err(Stop::Fail(StoreError::Unavailable(format!(
                    "etcd at {} sent an event at revision {revision} on {:?} after reporting \
                     progress up to {} (an etcd before 3.4.25/3.5.8 can do this); watch again",
                    self.shared.endpoints, self.prefix, cursor.reported
                ))));
            }
            // An event past a held progress answer proves everything up to it was sent.
            if let Some((held, _)) = cursor.held
                && revision > held
            {
                cursor.held = None;
                report(tx, cursor, held).await?;
            }
            cursor.delivered = revision;
            tx.send(Ok(event)).await.map_err(|_| Stop::Gone)?;
        }
        Ok(())
    }
}

/// Sends a progress event at `revision` — or at what was already delivered, if that is more.
async fn report(
    tx: &mpsc::Sender<Item>,
    cursor: &mut Cursor,
    revision: Revision,
) -> Result<(), Stop> {
    let revision = revision.max(cursor.delivered).max(cursor.reported);
    cursor.reported = revision;
    tx.send(Ok(WatchEvent::progress(revision)))
        .await
        .map_err(|_| Stop::Gone)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Turns one etcd event into a [`WatchEvent`].
fn convert(
    kind: i32,
    kv: Option<PbKeyValue>,
    prev: Option<PbKeyValue>,
) -> Result<WatchEvent, StoreError> {
    let kv =
        kv.ok_or_else(|| StoreError::Internal("etcd sent a watch event without a key".into()))?;
    let prev = prev.map(key_value).transpose()?;
    match kind {
        PUT => Ok(WatchEvent {
            kind: EventKind::Put,
            kv: key_value(kv)?,
            prev,
        }),
        DELETE => {
            // etcd's delete event has the key and the delete's revision only; the contract
            // wants the last value and the incarnation's create revision, which `prev` has.
            let (value, create_revision) = prev
                .as_ref()
                .map_or((Bytes::new(), 0), |p| (p.value.clone(), p.create_revision));
            Ok(WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: utf8_key(kv.key)?,
                    value,
                    create_revision,
                    mod_revision: kv.mod_revision,
                },
                prev,
            })
        }
        other => Err(StoreError::Internal(format!(
            "etcd sent a watch event of unknown type {other}"
        ))),
    }
}

/// etcd's key-value as the store's.
pub(super) fn key_value(kv: PbKeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: utf8_key(kv.key)?,
        value: Bytes::from(kv.value),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
    })
}

fn utf8_key(key: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(key).map_err(|e| {
        StoreError::Internal(format!(
            "etcd holds a key that is not UTF-8: {:?}",
            String::from_utf8_lossy(e.as_bytes())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(key: &str, value: &str, create: i64, modified: i64) -> PbKeyValue {
        PbKeyValue {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
            version: 1,
            lease: 0,
        }
    }

    fn kv(key: &str, value: &str, create: i64, modified: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn puts_keep_their_previous_state() {
        let e =
            convert(PUT, Some(pb("/a", "v2", 3, 5)), Some(pb("/a", "v1", 3, 3))).expect("event");
        assert_eq!(e.kind, EventKind::Put);
        assert_eq!(e.kv, kv("/a", "v2", 3, 5));
        assert_eq!(e.prev, Some(kv("/a", "v1", 3, 3)));
        let created = convert(PUT, Some(pb("/a", "v1", 3, 3)), None).expect("event");
        assert_eq!(created.prev, None);
    }

    #[test]
    fn deletes_carry_the_last_value_and_create_revision() {
        // What etcd sends for a delete at revision 9 of a key created at 3, last put at 5.
        let tombstone = PbKeyValue {
            key: b"/a".to_vec(),
            mod_revision: 9,
            ..PbKeyValue::default()
        };
        let e =
            convert(DELETE, Some(tombstone.clone()), Some(pb("/a", "v2", 3, 5))).expect("event");
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!(e.kv, kv("/a", "v2", 3, 9));
        assert_eq!(e.revision(), 9);
        assert_eq!(e.prev, Some(kv("/a", "v2", 3, 5)));
        // Without the previous state (compacted), the key and revision are still right.
        let bare = convert(DELETE, Some(tombstone), None).expect("event");
        assert_eq!(bare.kv, kv("/a", "", 0, 9));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        assert!(matches!(
            convert(PUT, None, None),
            Err(StoreError::Internal(_))
        ));
        assert!(matches!(
            convert(7, Some(pb("/a", "v", 1, 1)), None),
            Err(StoreError::Internal(_))
        ));
        let mut bad = pb("/a", "v", 1, 1);
        bad.key = vec![0xff, 0xfe];
        assert!(matches!(
            convert(PUT, Some(bad), None),
            Err(StoreError::Internal(_))
        ));
    }
}
