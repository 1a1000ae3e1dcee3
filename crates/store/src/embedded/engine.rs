//! The seam between the embedded store's logic and the on-disk engine that holds its data.
//!
//! An engine stores four things: the history of every write (one row per revision; a delete is a
//! tombstone row that carries the key's last value), an index of the latest revision of every
//! live key, an index of history by `(key, revision)` for reads at older revisions, and a few
//! counters. Revision assignment, compare-and-swap, batching (group commit), watch fan-out and the
//! compaction schedule all live above this seam in [`super`], so the candidate engines (SQLite
//! and redb) were measured with exactly the same design around them.
//!
//! Contract every engine keeps:
//! * [`EngineWriter::transact`] returns `Ok` only after the transaction is durable (fsynced);
//!   on `Err` none of it is visible, except for [`EngineError::Commit`], after which the caller
//!   must assume nothing about the outcome.
//! * A [`ReadTxn`] sees one consistent snapshot: its counters match the data it reads.
//! * Compaction at revision `C` keeps every history row with a revision `>= C` and, for every key,
//!   the newest row `<= C` unless that row is a tombstone; so reads at any revision `>= C` and
//!   watches from any revision `>= C - 1` see complete data.

use std::path::Path;

use bytes::Bytes;

use crate::{EventKind, KeyValue, Revision, StoreError};

/// One write as it is kept in history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub revision: Revision,
    pub key: String,
    pub kind: EventKind,
    /// `Put`: the new value. `Delete`: the value the key had before the delete, so a delete
    /// event can be served from its own row even after the put before it was compacted away.
    pub value: Bytes,
    /// Create revision of the incarnation of the key this change belongs to.
    pub create_revision: Revision,
    /// Mod revision of the key's previous state; `0` when this change created the key.
    pub prev_revision: Revision,
}

/// A history row as read back, with the value of the previous state when it is still stored
/// (always for deletes; for updates until the previous row is compacted away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub change: Change,
    pub prev_value: Option<Bytes>,
}

/// The persistent counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Revision of the latest committed write.
    pub current: Revision,
    /// Reads below this revision fail with `Compacted`.
    pub compacted: Revision,
    /// History rows below this revision have been physically compacted at `compacted`;
    /// compaction is still running while this is below `compacted`.
    pub compact_progress: Revision,
}

/// Half-open key interval `[start, end)`; `end == None` means no upper bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBounds<'a> {
    pub start: &'a str,
    pub end: Option<&'a str>,
}

impl KeyBounds<'_> {
    pub fn contains(&self, key: &str) -> bool {
        key >= self.start && self.end.is_none_or(|end| key < end)
    }

    /// True when no key can fall inside (an engine may reject an inverted range).
    pub fn is_empty(&self) -> bool {
        self.end.is_some_and(|end| end <= self.start)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// redb's errors are several types; they are kept as text since callers only report them.
    #[error("redb: {0}")]
    Redb(String),
    #[error("cannot open data directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Stored data that does not decode: the file was damaged or written by something else.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The commit itself failed (for example fsync returned an error). The transaction may or
    /// may not be on disk, and after a failed fsync the OS may have dropped dirty pages, so the
    /// store stops accepting writes rather than guess.
    #[error("commit failed: {0}")]
    Commit(String),
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        StoreError::Internal(e.to_string())
    }
}

/// A storage engine: a value that knows how to open (or create) its files in a directory.
pub trait Engine: Send + 'static {
    type Writer: EngineWriter;
    type Reader: EngineReader;

    /// Opens or creates the engine's files under `dir` (which exists). Must not scan history:
    /// opening is on the server's start-up path.
    fn open(self, dir: &Path) -> Result<(Self::Writer, Self::Reader), EngineError>;
}

/// The write side, owned by the store's single writer thread.
pub trait EngineWriter: Send + 'static {
    /// Runs `f` in one write transaction and commits it durably if `f` returns `Ok`; rolls
    /// back if it returns `Err`.
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), EngineError>,
    ) -> Result<(), EngineError>;
}

/// Operations inside a write transaction. Reads see the transaction's own earlier writes.
pub trait WriteTxn {
    /// The latest state of a live key.
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError>;
    /// Records `change` in history and updates the live index (a delete removes the key).
    fn apply(&mut self, change: &Change) -> Result<(), EngineError>;
    fn set_current(&mut self, revision: Revision) -> Result<(), EngineError>;
    fn set_compaction(
        &mut self,
        compacted: Revision,
        progress: Revision,
    ) -> Result<(), EngineError>;
    /// Physically compacts (see the module docs) the history rows with revisions in
    /// `[from, target)`, examining at most `max_rows` of them. Returns where to continue, or
    /// `None` when no row below `target` is left to examine.
    fn compact_step(
        &mut self,
        target: Revision,
        from: Revision,
        max_rows: usize,
    ) -> Result<Option<Revision>, EngineError>;
}

/// The read side, shared by every reader; reads run concurrently with each other and with the
/// writer.
pub trait EngineReader: Send + Sync + 'static {
    /// Runs `f` against one consistent snapshot.
    fn read<R>(
        &self,
        f: impl FnOnce(&mut dyn ReadTxn) -> Result<R, StoreError>,
    ) -> Result<R, StoreError>;

    /// Releases what the reader holds open; later reads fail with `Unavailable`.
    fn close(&self);
}

/// Operations on a read snapshot.
pub trait ReadTxn {
    fn counters(&mut self) -> Result<Counters, EngineError>;
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError>;
    /// Live keys in `bounds` in key order, as of `at` (`None`: the latest), at most `limit`.
    /// The caller has checked `at` against the counters.
    fn range(
        &mut self,
        bounds: KeyBounds<'_>,
        at: Option<Revision>,
        limit: Option<usize>,
    ) -> Result<Vec<KeyValue>, EngineError>;
    /// History rows with revisions in `(after, upto]` and keys in `bounds`, in revision order.
    fn history(
        &mut self,
        bounds: KeyBounds<'_>,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<HistoryEntry>, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds() {
        let b = KeyBounds {
            start: "/a/",
            end: Some("/a0"),
        };
        assert!(b.contains("/a/"));
        assert!(b.contains("/a/x"));
        assert!(!b.contains("/a0"));
        assert!(!b.contains("/a"));
        assert!(!b.is_empty());
        let open = KeyBounds {
            start: "x",
            end: None,
        };
        assert!(open.contains("zzz"));
        assert!(!open.is_empty());
        let inverted = KeyBounds {
            start: "b",
            end: Some("a"),
        };
        assert!(inverted.is_empty());
    }
}
