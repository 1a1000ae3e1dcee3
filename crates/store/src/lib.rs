//! The storage contract keelson's API server is written against, and its backends.
//!
//! [`KvStore`] is deliberately etcd-shaped: a flat, ordered key space; one global revision that
//! every write bumps; get and range reads (optionally at an older revision); create-if-absent;
//! update and delete as compare-and-swap on an object's mod revision; watch from a revision; and
//! compaction of old history. Anything the API server needs beyond this (selectors, paging,
//! encodings) is built above it, so a real etcd cluster can stand in for the embedded backend.
//!
//! Backends: [`embedded`] (the default: SQLite in the data directory) and [`etcd`] (an etcd v3
//! cluster several keelson servers can share).
//!
//! Guarantees every backend must keep (checked by the suite in `conformance`, behind the cargo
//! feature of the same name):
//! * a write is acknowledged only once it is durable;
//! * revisions are strictly increasing; each successful write gets exactly one revision;
//! * a watch from revision `r` delivers every change with revision `> r` under its prefix, exactly
//!   once, in revision order — or ends with [`StoreError::Compacted`] when that history is gone;
//! * after [`KvStore::request_progress`], every watch reports how far it has got, in order with
//!   its events.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod embedded;
pub mod etcd;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A store revision. The first write gets revision 1; `0` means "nothing yet".
pub type Revision = i64;

/// One key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key (the object's `resourceVersion`).
    pub mod_revision: Revision,
}

/// A range read: keys starting with `prefix`, from `start` (inclusive) on, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub prefix: String,
    /// First key to return (inclusive); `None` starts at `prefix`. Paging passes the last key
    /// seen with a `\0` appended.
    pub start: Option<String>,
    /// Read the state as of this revision; `None` reads the latest.
    pub revision: Option<Revision>,
    /// At most this many keys; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
}

/// The result of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut the result short.
    pub more: bool,
    /// The revision the read was served at (the latest revision when none was asked for).
    pub revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
    /// Not a change: the watch has delivered every change under its prefix up to
    /// `kv.mod_revision` (its other fields are empty). Sent after [`KvStore::request_progress`],
    /// like etcd's progress notifications; never stored.
    Progress,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For `Put`: the key's new state. For `Delete`: the key, with `mod_revision` set to the
    /// revision of the delete and `value` the last value it had.
    pub kv: KeyValue,
    /// The key's state before this change, when the backend knows it (`None` for a create).
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// A progress notification at `revision`.
    pub fn progress(revision: Revision) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Progress,
            kv: KeyValue {
                key: String::new(),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: revision,
            },
            prev: None,
        }
    }
}

/// A stream of watch events in revision order. It ends with an error if the watch cannot go on
/// (for example the watcher fell so far behind that its history was compacted).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    /// A compare-and-swap failed: the key's mod revision was not the expected one.
    /// `current` is the key's present state (so a retry loop need not read it again).
    #[error("key {key:?} was modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Box<KeyValue>,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted; oldest available is {compacted}")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The backend cannot be reached or is shutting down; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage operation timed out: {0}")]
    Timeout(String),
    #[error("storage error: {0}")]
    Internal(String),
}

/// The etcd-shaped storage contract. See the crate docs for the guarantees.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The latest state of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys under a prefix, optionally as of an older revision, optionally limited.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError>;

    /// Creates `key` only if it does not exist; returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError>;

    /// Replaces `key`'s value if its mod revision is `expected`; returns the new revision.
    /// `NotFound` if the key does not exist, `Conflict` if it changed.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError>;

    /// Deletes `key`, if `expected` is given only when its mod revision matches. Returns the
    /// revision of the delete and the key's last state.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError>;

    /// Every change under `prefix` with a revision greater than `after`, in order, then live
    /// changes as they commit. `Compacted` if history after `after` is no longer complete.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// Discards history older than `revision` (the latest state of every key is kept).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The revision of the latest committed write.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// The oldest revision reads and watches can still start from.
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;

    /// Asks every open watch to send one [`EventKind::Progress`] event once it has delivered
    /// everything up to the store's revision at (or after) this call — etcd's `RequestProgress`.
    /// The API server uses it to tell that a quiet watch cache is nonetheless up to date.
    async fn request_progress(&self) -> Result<(), StoreError>;
}
