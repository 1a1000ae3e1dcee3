//! The redb engine: the runner-up of the engine measurement, kept (behind the `redb` feature) so
//! the comparison in `benches/engines.rs` can be rerun. Same layout as the SQLite engine, as redb
//! tables in one file `store.redb`:
//! * `history: i64 -> bytes` — one row per write (flags, create/prev revisions, key, value);
//! * `key_rev: (key, i64) -> ()` — history by key, for reads at older revisions and compaction;
//! * `kv: key -> (create_rev, mod_rev)` — the live keys, values fetched from `history`;
//! * `meta: name -> i64` — the counters.
//!
//! Every commit uses `Durability::Immediate` (fsync before `commit` returns). With
//! `quick_repair` each commit also saves the allocator state, so a crash does not force a full
//! scan of the file on the next open — at the price of a two-phase commit.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::engine::{
    Change, Counters, Engine, EngineError, EngineReader, EngineWriter, HistoryEntry, KeyBounds,
    ReadTxn, WriteTxn,
};
use crate::{EventKind, KeyValue, Revision, StoreError};

pub const DB_FILE: &str = "store.redb";

const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const KV: TableDefinition<&str, (i64, i64)> = TableDefinition::new("kv");
const HISTORY: TableDefinition<i64, &[u8]> = TableDefinition::new("history");
const KEY_REV: TableDefinition<(&str, i64), ()> = TableDefinition::new("key_rev");

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::Redb(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError
);

#[derive(Clone, Copy, Debug)]
pub struct RedbEngine {
    /// Save the allocator state at every commit so that reopening after a crash is fast.
    pub quick_repair: bool,
    pub cache_bytes: usize,
}

impl Default for RedbEngine {
    fn default() -> Self {
        RedbEngine {
            quick_repair: true,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Engine for RedbEngine {
    type Writer = RedbWriter;
    type Reader = RedbReader;

    fn open(self, dir: &Path) -> Result<(RedbWriter, RedbReader), EngineError> {
        let db = Database::builder()
            .set_cache_size(self.cache_bytes)
            .create(dir.join(DB_FILE))?;
        let db = Arc::new(db);
        let mut writer = RedbWriter {
            db: db.clone(),
            quick_repair: self.quick_repair,
        };
        // Creates the tables on first open, so readers can always open them.
        writer.transact(&mut |_| Ok(()))?;
        Ok((
            writer,
            RedbReader {
                db,
                closed: AtomicBool::new(false),
            },
        ))
    }
}

pub struct RedbWriter {
    db: Arc<Database>,
    quick_repair: bool,
}

struct RedbWriteTxn<'t> {
    meta: redb::Table<'t, &'static str, i64>,
    kv: redb::Table<'t, &'static str, (i64, i64)>,
    history: redb::Table<'t, i64, &'static [u8]>,
    key_rev: redb::Table<'t, (&'static str, i64), ()>,
}

impl EngineWriter for RedbWriter {
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut tx = self.db.begin_write()?;
        tx.set_quick_repair(self.quick_repair);
        let result = (|| {
            let mut t = RedbWriteTxn {
                meta: tx.open_table(META)?,
                kv: tx.open_table(KV)?,
                history: tx.open_table(HISTORY)?,
                key_rev: tx.open_table(KEY_REV)?,
            };
            f(&mut t)
        })();
        match result {
            Ok(()) => tx.commit().map_err(|e| EngineError::Commit(e.to_string())),
            Err(e) => {
                tx.abort()?;
                Err(e)
            }
        }
    }
}

impl WriteTxn for RedbWriteTxn<'_> {
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError> {
        get(&self.kv, &self.history, key)
    }

    fn apply(&mut self, c: &Change) -> Result<(), EngineError> {
        let deleted = c.kind == EventKind::Delete;
        let row = encode(
            deleted,
            c.create_revision,
            c.prev_revision,
            &c.key,
            &c.value,
        )?;
        self.history.insert(c.revision, row.as_slice())?;
        self.key_rev.insert((c.key.as_str(), c.revision), ())?;
        if deleted {
            self.kv.remove(c.key.as_str())?;
        } else {
            self.kv
                .insert(c.key.as_str(), (c.create_revision, c.revision))?;
        }
        Ok(())
    }

    fn set_current(&mut self, revision: Revision) -> Result<(), EngineError> {
        self.meta.insert("current", revision)?;
        Ok(())
    }

    fn set_compaction(
        &mut self,
        compacted: Revision,
        progress: Revision,
    ) -> Result<(), EngineError> {
        self.meta.insert("compacted", compacted)?;
        self.meta.insert("compact_progress", progress)?;
        Ok(())
    }

    fn compact_step(
        &mut self,
        target: Revision,
        from: Revision,
        max_rows: usize,
    ) -> Result<Option<Revision>, EngineError> {
        // Decide first, delete after: a row deleted in this step still supersedes older ones.
        let mut doomed: Vec<(Revision, String)> = Vec::new();
        let mut last = None;
        for item in self.history.range(from..target)?.take(max_rows) {
            let (rev, row) = item?;
            let rev = rev.value();
            let row = decode(row.value())?;
            last = Some(rev);
            let superseded = row.deleted || {
                let newer = self
                    .key_rev
                    .range((row.key, rev + 1)..=(row.key, target))?
                    .next();
                newer.is_some()
            };
            if superseded {
                doomed.push((rev, row.key.to_owned()));
            }
        }
        for (rev, key) in &doomed {
            self.history.remove(*rev)?;
            self.key_rev.remove((key.as_str(), *rev))?;
        }
        Ok(last.map(|rev| rev + 1))
    }
}

pub struct RedbReader {
    db: Arc<Database>,
    closed: AtomicBool,
}

struct RedbReadTxn {
    meta: redb::ReadOnlyTable<&'static str, i64>,
    kv: redb::ReadOnlyTable<&'static str, (i64, i64)>,
    history: redb::ReadOnlyTable<i64, &'static [u8]>,
    key_rev: redb::ReadOnlyTable<(&'static str, i64), ()>,
}

impl EngineReader for RedbReader {
    fn read<R>(
        &self,
        f: impl FnOnce(&mut dyn ReadTxn) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let open = || -> Result<RedbReadTxn, EngineError> {
            let tx = self.db.begin_read()?;
            Ok(RedbReadTxn {
                meta: tx.open_table(META)?,
                kv: tx.open_table(KV)?,
                history: tx.open_table(HISTORY)?,
                key_rev: tx.open_table(KEY_REV)?,
            })
        };
        let mut t = open()?;
        f(&mut t)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl ReadTxn for RedbReadTxn {
    fn counters(&mut self) -> Result<Counters, EngineError> {
        let read = |name: &str| -> Result<i64, EngineError> {
            Ok(self.meta.get(name)?.map_or(0, |v| v.value()))
        };
        Ok(Counters {
            current: read("current")?,
            compacted: read("compacted")?,
            compact_progress: read("compact_progress")?,
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError> {
        get(&self.kv, &self.history, key)
    }

    fn range(
        &mut self,
        bounds: KeyBounds<'_>,
        at: Option<Revision>,
        limit: Option<usize>,
    ) -> Result<Vec<KeyValue>, EngineError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if bounds.is_empty() || limit == 0 {
            return Ok(out);
        }
        let Some(at) = at else {
            let end = bounds.end.map_or(Bound::Unbounded, Bound::Excluded);
            for item in self
                .kv
                .range::<&str>((Bound::Included(bounds.start), end))?
            {
                let (key, revs) = item?;
                let (create_revision, mod_revision) = revs.value();
                let value = row_value(&self.history, mod_revision)?;
                out.push(KeyValue {
                    key: key.value().to_owned(),
                    value,
                    create_revision,
                    mod_revision,
                });
                if out.len() >= limit {
                    break;
                }
            }
            return Ok(out);
        };
        let end = bounds
            .end
            .map_or(Bound::Unbounded, |end| Bound::Excluded((end, i64::MIN)));
        // Walk `(key, rev)` in order; the last revision `<= at` seen for a key before the key
        // changes is that key's state at `at`.
        let mut newest: Option<(String, Revision)> = None;
        let emit = |out: &mut Vec<KeyValue>, key: String, rev: Revision| {
            let row = self.history.get(rev)?.ok_or_else(|| missing_row(rev))?;
            let row = decode(row.value())?;
            if !row.deleted {
                out.push(KeyValue {
                    key,
                    value: Bytes::copy_from_slice(row.value),
                    create_revision: row.create,
                    mod_revision: rev,
                });
            }
            Ok::<_, EngineError>(())
        };
        for item in self
            .key_rev
            .range((Bound::Included((bounds.start, i64::MIN)), end))?
        {
            let (entry, _) = item?;
            let (key, rev) = entry.value();
            if rev > at {
                continue;
            }
            match &mut newest {
                Some((k, r)) if k == key => *r = rev,
                _ => {
                    if let Some((k, r)) = newest.take() {
                        emit(&mut out, k, r)?;
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                    newest = Some((key.to_owned(), rev));
                }
            }
        }
        if let Some((k, r)) = newest {
            emit(&mut out, k, r)?;
        }
        Ok(out)
    }

    fn history(
        &mut self,
        bounds: KeyBounds<'_>,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<HistoryEntry>, EngineError> {
        let mut out = Vec::new();
        if upto <= after {
            return Ok(out);
        }
        for item in self.history.range((after + 1)..=upto)? {
            let (rev, row) = item?;
            let row = decode(row.value())?;
            if !bounds.contains(row.key) {
                continue;
            }
            let value = Bytes::copy_from_slice(row.value);
            let prev_value = if row.deleted {
                Some(value.clone())
            } else if row.prev > 0 {
                match self.history.get(row.prev)? {
                    Some(prev) => Some(Bytes::copy_from_slice(decode(prev.value())?.value)),
                    None => None,
                }
            } else {
                None
            };
            out.push(HistoryEntry {
                change: Change {
                    revision: rev.value(),
                    key: row.key.to_owned(),
                    kind: if row.deleted {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    },
                    value,
                    create_revision: row.create,
                    prev_revision: row.prev,
                },
                prev_value,
            });
        }
        Ok(out)
    }
}

fn get(
    kv: &impl ReadableTable<&'static str, (i64, i64)>,
    history: &impl ReadableTable<i64, &'static [u8]>,
    key: &str,
) -> Result<Option<KeyValue>, EngineError> {
    let Some(revs) = kv.get(key)? else {
        return Ok(None);
    };
    let (create_revision, mod_revision) = revs.value();
    Ok(Some(KeyValue {
        key: key.to_owned(),
        value: row_value(history, mod_revision)?,
        create_revision,
        mod_revision,
    }))
}

fn row_value(
    history: &impl ReadableTable<i64, &'static [u8]>,
    rev: Revision,
) -> Result<Bytes, EngineError> {
    let row = history.get(rev)?.ok_or_else(|| missing_row(rev))?;
    Ok(Bytes::copy_from_slice(decode(row.value())?.value))
}

fn missing_row(rev: Revision) -> EngineError {
    EngineError::Corrupt(format!("history row {rev} is missing"))
}

struct Row<'a> {
    deleted: bool,
    create: Revision,
    prev: Revision,
    key: &'a str,
    value: &'a [u8],
}

const HEADER: usize = 1 + 8 + 8 + 4;

fn encode(
    deleted: bool,
    create: Revision,
    prev: Revision,
    key: &str,
    value: &[u8],
) -> Result<Vec<u8>, EngineError> {
    let key_len = u32::try_from(key.len())
        .map_err(|_| EngineError::Corrupt(format!("key of {} bytes is too long", key.len())))?;
    let mut out = Vec::with_capacity(HEADER + key.len() + value.len());
    out.push(u8::from(deleted));
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&prev.to_le_bytes());
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Row<'_>, EngineError> {
    let corrupt = || EngineError::Corrupt("undecodable history row".into());
    let header = bytes.get(..HEADER).ok_or_else(corrupt)?;
    let i64_at = |at: usize| -> Result<i64, EngineError> {
        let raw = header.get(at..at + 8).ok_or_else(corrupt)?;
        Ok(i64::from_le_bytes(raw.try_into().map_err(|_| corrupt())?))
    };
    let key_len = header
        .get(17..21)
        .and_then(|raw| raw.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(corrupt)?;
    let key_end = HEADER + usize::try_from(key_len).map_err(|_| corrupt())?;
    let key = bytes.get(HEADER..key_end).ok_or_else(corrupt)?;
    Ok(Row {
        deleted: header.first() == Some(&1),
        create: i64_at(1)?,
        prev: i64_at(9)?,
        key: std::str::from_utf8(key).map_err(|_| corrupt())?,
        value: bytes.get(key_end..).ok_or_else(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_round_trip_and_garbage() {
        let row = encode(true, 7, 9, "/a/b", b"{}").expect("encode");
        let back = decode(&row).expect("decode");
        assert!(back.deleted);
        assert_eq!(
            (back.create, back.prev, back.key, back.value),
            (7, 9, "/a/b", &b"{}"[..])
        );
        assert!(decode(&row[..5]).is_err());
        let mut long_key = row.clone();
        long_key[17] = 200;
        assert!(decode(&long_key).is_err());
    }
}
