//! The SQLite engine (rusqlite, bundled SQLite, WAL journal): the embedded store's engine.
//!
//! Layout, in one file `store.db` (plus SQLite's `-wal` and `-shm`):
//! * `history(rev INTEGER PRIMARY KEY, key, deleted, create_rev, prev_rev, value)` — one row per
//!   write; `rev` is the rowid, so reading history in revision order is a rowid scan. Values are
//!   stored only here.
//! * `history_key` — index on `(key, rev)`, for reads at older revisions and for compaction.
//! * `kv(key PRIMARY KEY, create_rev, mod_rev) WITHOUT ROWID` — the live keys; a latest read
//!   joins it to `history` on `mod_rev` to fetch the value, so a write stores its value once.
//! * `meta(name, value)` — the counters.
//!
//! Durability: `journal_mode=WAL` with `synchronous=FULL`, so every commit fsyncs the WAL before
//! it returns. Readers use their own connections (pooled), which in WAL mode read a snapshot
//! without blocking the writer or being blocked by it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::engine::{
    Change, Counters, Engine, EngineError, EngineReader, EngineWriter, HistoryEntry, KeyBounds,
    ReadTxn, WriteTxn,
};
use crate::{EventKind, KeyValue, Revision, StoreError};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "store.db";

/// Bumped when the layout changes incompatibly; a file with another version is refused.
const FORMAT_VERSION: i64 = 1;

/// Idle reader connections kept for reuse; more are opened under load and closed afterwards.
const READER_POOL: usize = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS history_key ON history (key, rev);
";

const GET: &str = "SELECT k.create_rev, k.mod_rev, h.value FROM kv k \
    CROSS JOIN history h ON h.rev = k.mod_rev WHERE k.key = ?1";

// Latest ranges read in two steps: the keys (from `kv` alone, in key order), then each value by
// revision in *revision* order. Key order and revision order are unrelated, so fetching values
// in key order touches history pages at random, one read per row; in revision order each page
// is read once for all the rows on it (measured: 22,800 keys in 140 ms → see `range`).
const RANGE_LATEST_KEYS: &str = "SELECT key, create_rev, mod_rev FROM kv \
    WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";
const RANGE_LATEST_KEYS_OPEN: &str = "SELECT key, create_rev, mod_rev FROM kv \
    WHERE key >= ?1 ORDER BY key LIMIT ?3";
const VALUE_AT: &str = "SELECT value FROM history WHERE rev = ?1";

// The inner query finds each key's newest revision `<= ?4` from the covering `(key, rev)` index
// alone, in key order; only those rows are then fetched, and tombstones dropped. An `ORDER BY`
// on the outer query would make SQLite sort the whole result in a temporary b-tree (3x slower
// for 10,000 keys); the order of the outer loop of a `CROSS JOIN` is the order the subquery
// produces, and `range` checks it row by row anyway.
const RANGE_AT: &str = "SELECT h.key, h.create_rev, h.rev, h.value FROM \
    (SELECT key AS k, max(rev) AS r FROM history \
        WHERE key >= ?1 AND key < ?2 AND rev <= ?4 GROUP BY key ORDER BY key) m \
    CROSS JOIN history h ON h.rev = m.r WHERE h.deleted = 0 LIMIT ?3";
const RANGE_AT_OPEN: &str = "SELECT h.key, h.create_rev, h.rev, h.value FROM \
    (SELECT key AS k, max(rev) AS r FROM history \
        WHERE key >= ?1 AND rev <= ?4 GROUP BY key ORDER BY key) m \
    CROSS JOIN history h ON h.rev = m.r WHERE h.deleted = 0 LIMIT ?3";

const HISTORY: &str = "SELECT h.rev, h.key, h.deleted, h.create_rev, h.prev_rev, h.value, p.value \
    FROM history h LEFT JOIN history p ON p.rev = h.prev_rev AND h.deleted = 0 \
    WHERE h.rev > ?1 AND h.rev <= ?2 AND h.key >= ?3 AND h.key < ?4 ORDER BY h.rev";
const HISTORY_OPEN: &str = "SELECT h.rev, h.key, h.deleted, h.create_rev, h.prev_rev, h.value, \
    p.value FROM history h LEFT JOIN history p ON p.rev = h.prev_rev AND h.deleted = 0 \
    WHERE h.rev > ?1 AND h.rev <= ?2 AND h.key >= ?3 ORDER BY h.rev";

const SET_META: &str = "INSERT INTO meta (name, value) VALUES (?1, ?2) \
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// Opens `store.db` in WAL mode with fsync on every commit.
#[derive(Clone, Copy, Debug)]
pub struct SqliteEngine {
    /// Page cache of the writer connection, in KiB.
    pub writer_cache_kib: i64,
    /// Page cache of each reader connection, in KiB.
    pub reader_cache_kib: i64,
}

impl Default for SqliteEngine {
    /// Small caches on purpose: the API server answers reads from its watch cache, so the
    /// store's reads are few (GETs, paged lists), and the OS page cache holds the file anyway.
    /// Each page cached here would be a second copy of data the process already keeps.
    fn default() -> Self {
        SqliteEngine {
            writer_cache_kib: 4 * 1024,
            reader_cache_kib: 2 * 1024,
        }
    }
}

impl Engine for SqliteEngine {
    type Writer = SqliteWriter;
    type Reader = SqliteReader;

    fn open(self, dir: &Path) -> Result<(SqliteWriter, SqliteReader), EngineError> {
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(EngineError::Corrupt(format!(
                "{} refused WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        // FULL: fsync the WAL at every commit. (NORMAL would only sync at checkpoints, so an
        // acknowledged write could be lost on power failure.)
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -self.writer_cache_kib)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        stable_plans(&conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => {
                conn.execute_batch(SCHEMA)?;
                conn.pragma_update(None, "user_version", FORMAT_VERSION)?;
            }
            FORMAT_VERSION => {}
            other => {
                return Err(EngineError::Corrupt(format!(
                    "{} has format version {other}; this build reads version {FORMAT_VERSION}",
                    path.display()
                )));
            }
        }
        let reader = SqliteReader {
            path,
            cache_kib: self.reader_cache_kib,
            pool: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        };
        Ok((SqliteWriter { conn }, reader))
    }
}

pub struct SqliteWriter {
    conn: Connection,
}

impl EngineWriter for SqliteWriter {
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        // IMMEDIATE takes the write lock up front; this process is the only writer (the store
        // holds the directory lock), so it never waits.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        f(&mut SqliteWriteTxn { conn: &tx })?;
        tx.commit().map_err(|e| EngineError::Commit(e.to_string()))
    }
}

struct SqliteWriteTxn<'a> {
    conn: &'a Connection,
}

impl WriteTxn for SqliteWriteTxn<'_> {
    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError> {
        get(self.conn, key)
    }

    fn apply(&mut self, c: &Change) -> Result<(), EngineError> {
        let deleted = c.kind == EventKind::Delete;
        self.conn
            .prepare_cached(
                "INSERT INTO history (rev, key, deleted, create_rev, prev_rev, value) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                c.revision,
                c.key,
                deleted,
                c.create_revision,
                c.prev_revision,
                c.value.as_ref()
            ])?;
        if deleted {
            self.conn
                .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute(params![c.key])?;
        } else {
            self.conn
                .prepare_cached(
                    "INSERT INTO kv (key, create_rev, mod_rev) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO UPDATE SET create_rev = excluded.create_rev, \
                     mod_rev = excluded.mod_rev",
                )?
                .execute(params![c.key, c.create_revision, c.revision])?;
        }
        Ok(())
    }

    fn set_current(&mut self, revision: Revision) -> Result<(), EngineError> {
        self.conn
            .prepare_cached(SET_META)?
            .execute(params!["current", revision])?;
        Ok(())
    }

    fn set_compaction(
        &mut self,
        compacted: Revision,
        progress: Revision,
    ) -> Result<(), EngineError> {
        let mut stmt = self.conn.prepare_cached(SET_META)?;
        stmt.execute(params!["compacted", compacted])?;
        stmt.execute(params!["compact_progress", progress])?;
        Ok(())
    }

    fn compact_step(
        &mut self,
        target: Revision,
        from: Revision,
        max_rows: usize,
    ) -> Result<Option<Revision>, EngineError> {
        let upto: Option<Revision> = self
            .conn
            .prepare_cached(
                "SELECT max(rev) FROM (SELECT rev FROM history \
                 WHERE rev >= ?1 AND rev < ?2 ORDER BY rev LIMIT ?3)",
            )?
            .query_row(params![from, target, sql_limit(Some(max_rows))], |r| {
                r.get(0)
            })?;
        let Some(upto) = upto else {
            return Ok(None);
        };
        // A row below the target goes if it is a tombstone, or if a newer row of the same key
        // at or below the target supersedes it. SQLite evaluates the whole WHERE before
        // deleting, so rows deleted by this statement still count as superseding.
        self.conn
            .prepare_cached(
                "DELETE FROM history WHERE rev >= ?1 AND rev <= ?2 AND (deleted = 1 OR EXISTS \
                 (SELECT 1 FROM history n WHERE n.key = history.key \
                  AND n.rev > history.rev AND n.rev <= ?3))",
            )?
            .execute(params![from, upto, target])?;
        Ok(Some(upto + 1))
    }
}

pub struct SqliteReader {
    path: PathBuf,
    cache_kib: i64,
    pool: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl SqliteReader {
    fn connection(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.pool.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(conn);
        }
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(&self.path)?;
            conn.pragma_update(None, "query_only", true)?;
            conn.pragma_update(None, "cache_size", -self.cache_kib)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            stable_plans(&conn)?;
            Ok(conn)
        };
        open().map_err(|e| EngineError::Sqlite(e).into())
    }
}

impl EngineReader for SqliteReader {
    fn read<R>(
        &self,
        f: impl FnOnce(&mut dyn ReadTxn) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let conn = self.connection()?;
        let result = {
            // The transaction pins one WAL snapshot for all statements in `f`; it only reads,
            // so dropping it (a rollback) is how it ends.
            let tx = conn.unchecked_transaction().map_err(EngineError::from)?;
            f(&mut SqliteReadTxn { conn: &tx })
        };
        if !self.closed.load(Ordering::Acquire)
            && let Ok(mut pool) = self.pool.lock()
            && pool.len() < READER_POOL
        {
            pool.push(conn);
        }
        result
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut pool) = self.pool.lock() {
            pool.clear();
        }
    }
}

struct SqliteReadTxn<'a> {
    conn: &'a Connection,
}

impl SqliteReadTxn<'_> {
    /// The latest state of a key range, values fetched in revision order (see `VALUE_AT`).
    fn range_latest(
        &mut self,
        bounds: KeyBounds<'_>,
        limit: Option<usize>,
    ) -> Result<Vec<KeyValue>, EngineError> {
        let sql = if bounds.end.is_some() {
            RANGE_LATEST_KEYS
        } else {
            RANGE_LATEST_KEYS_OPEN
        };
        let mut keys = self.conn.prepare_cached(sql)?;
        let end = bounds.end.unwrap_or("");
        let mut kvs = keys
            .query_map(params![bounds.start, end, sql_limit(limit)], |r| {
                Ok(KeyValue {
                    key: r.get(0)?,
                    create_revision: r.get(1)?,
                    mod_revision: r.get(2)?,
                    value: Bytes::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_revision: Vec<usize> = (0..kvs.len()).collect();
        by_revision.sort_unstable_by_key(|&i| kvs[i].mod_revision);
        let mut value = self.conn.prepare_cached(VALUE_AT)?;
        for i in by_revision {
            let bytes: Vec<u8> = value
                .query_row([kvs[i].mod_revision], |r| r.get(0))
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => EngineError::Corrupt(format!(
                        "key {:?} points at revision {}, which has no history row",
                        kvs[i].key, kvs[i].mod_revision
                    )),
                    e => e.into(),
                })?;
            kvs[i].value = Bytes::from(bytes);
        }
        Ok(kvs)
    }
}

impl ReadTxn for SqliteReadTxn<'_> {
    fn counters(&mut self) -> Result<Counters, EngineError> {
        let mut counters = Counters::default();
        let mut stmt = self.conn.prepare_cached("SELECT name, value FROM meta")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let value: i64 = row.get(1)?;
            match name.as_str() {
                "current" => counters.current = value,
                "compacted" => counters.compacted = value,
                "compact_progress" => counters.compact_progress = value,
                _ => {}
            }
        }
        Ok(counters)
    }

    fn get(&mut self, key: &str) -> Result<Option<KeyValue>, EngineError> {
        get(self.conn, key)
    }

    fn range(
        &mut self,
        bounds: KeyBounds<'_>,
        at: Option<Revision>,
        limit: Option<usize>,
    ) -> Result<Vec<KeyValue>, EngineError> {
        if at.is_none() {
            return self.range_latest(bounds, limit);
        }
        let sql = if bounds.end.is_some() {
            RANGE_AT
        } else {
            RANGE_AT_OPEN
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let end = bounds.end.unwrap_or("");
        let limit = sql_limit(limit);
        let row_to_kv = |r: &rusqlite::Row<'_>| {
            Ok(KeyValue {
                key: r.get(0)?,
                create_revision: r.get(1)?,
                mod_revision: r.get(2)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(3)?),
            })
        };
        // Unused parameters are fine to bind: SQLite only complains about missing ones, and
        // binding by index keeps one code path for all four statements.
        let rows = match at {
            None => stmt.query_map(params![bounds.start, end, limit], row_to_kv)?,
            Some(at) => stmt.query_map(params![bounds.start, end, limit, at], row_to_kv)?,
        };
        let kvs = rows.collect::<Result<Vec<_>, _>>()?;
        if !kvs.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(EngineError::Corrupt(
                "SQLite returned a range out of key order; this build's query plan assumption \
                 no longer holds"
                    .into(),
            ));
        }
        Ok(kvs)
    }

    fn history(
        &mut self,
        bounds: KeyBounds<'_>,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<HistoryEntry>, EngineError> {
        let sql = if bounds.end.is_some() {
            HISTORY
        } else {
            HISTORY_OPEN
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let end = bounds.end.unwrap_or("");
        let rows = stmt.query_map(params![after, upto, bounds.start, end], |r| {
            let deleted: bool = r.get(2)?;
            let value = Bytes::from(r.get::<_, Vec<u8>>(5)?);
            let prev_value = if deleted {
                Some(value.clone())
            } else {
                r.get::<_, Option<Vec<u8>>>(6)?.map(Bytes::from)
            };
            Ok(HistoryEntry {
                change: Change {
                    revision: r.get(0)?,
                    key: r.get(1)?,
                    kind: if deleted {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    },
                    value,
                    create_revision: r.get(3)?,
                    prev_revision: r.get(4)?,
                },
                prev_value,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>, EngineError> {
    let found = conn
        .prepare_cached(GET)?
        .query_row(params![key], |r| {
            Ok(KeyValue {
                key: key.to_owned(),
                create_revision: r.get(0)?,
                mod_revision: r.get(1)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(2)?),
            })
        })
        .optional()?;
    Ok(found)
}

/// Turns on the query planner stability guarantee. The bundled SQLite is built with STAT4, and
/// without this a cached statement whose parameter meets an indexed column (`WHERE key = ?1`)
/// is marked to be re-planned whenever that parameter is rebound: every `get` re-parsed and
/// re-planned its SQL, which was 13% of the server's CPU under a pod-scheduling load. Our
/// queries have one good plan whatever the values, so planning once is right.
fn stable_plans(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// SQLite's `LIMIT -1` means no limit.
fn sql_limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(rev: Revision, key: &str, value: &str, create: Revision, prev: Revision) -> Change {
        Change {
            revision: rev,
            key: key.into(),
            kind: EventKind::Put,
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: create,
            prev_revision: prev,
        }
    }

    fn history_revs(conn: &Connection) -> Vec<Revision> {
        let mut stmt = conn
            .prepare("SELECT rev FROM history ORDER BY rev")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows")
    }

    #[test]
    fn compaction_keeps_latest_row_at_target_and_everything_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut w, r) = SqliteEngine::default().open(dir.path()).expect("open");
        w.transact(&mut |t| {
            t.apply(&put(1, "/a", "a1", 1, 0))?; // superseded by 2
            t.apply(&put(2, "/a", "a2", 1, 1))?; // newest <= 4 for /a: kept
            t.apply(&put(3, "/b", "b3", 3, 0))?; // superseded by the tombstone 4
            t.apply(&Change {
                kind: EventKind::Delete,
                ..put(4, "/b", "b3", 3, 3)
            })?; // a tombstone at the target itself: kept
            t.apply(&put(5, "/a", "a5", 1, 2))?; // after the target: kept
            t.apply(&put(6, "/c", "c6", 6, 0))?;
            t.apply(&Change {
                kind: EventKind::Delete,
                ..put(7, "/c", "c6", 6, 6)
            })?;
            t.set_current(7)
        })
        .expect("write");
        // Compact at 4 in steps of two rows.
        let mut from = 0;
        loop {
            let mut next = None;
            w.transact(&mut |t| {
                next = t.compact_step(4, from, 2)?;
                Ok(())
            })
            .expect("compact");
            match next {
                Some(n) => from = n,
                None => break,
            }
        }
        assert_eq!(history_revs(&w.conn), vec![2, 4, 5, 6, 7]);
        // Compacting at 8 drops the superseded /a@2, /a@5 stays as /a's newest, /c's tombstone
        // at 7 goes along with the put it deleted, and /b's tombstone goes.
        w.transact(&mut |t| t.compact_step(8, 0, 100).map(drop))
            .expect("compact");
        assert_eq!(history_revs(&w.conn), vec![5]);
        let kvs = r
            .read(|t| {
                Ok(t.range(
                    KeyBounds {
                        start: "/",
                        end: None,
                    },
                    None,
                    None,
                )?)
            })
            .expect("range");
        assert_eq!(kvs.len(), 1);
        assert_eq!(kvs[0].key, "/a");
        assert_eq!(kvs[0].value.as_ref(), b"a5");
    }

    #[test]
    fn refuses_unknown_format_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(SqliteEngine::default().open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
        conn.pragma_update(None, "user_version", 99)
            .expect("pragma");
        drop(conn);
        let err = SqliteEngine::default().open(dir.path()).err();
        assert!(
            matches!(err, Some(EngineError::Corrupt(ref m)) if m.contains("format version 99")),
            "{err:?}"
        );
    }

    #[test]
    fn gets_of_different_keys_reuse_one_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut w, _r) = SqliteEngine::default().open(dir.path()).expect("open");
        w.transact(&mut |t| {
            for (i, key) in ["/a", "/b", "/c"].into_iter().enumerate() {
                let rev = i as Revision + 1;
                t.apply(&put(rev, key, "v", rev, 0))?;
            }
            t.set_current(3)
        })
        .expect("write");
        for key in ["/a", "/b", "/c", "/a", "/missing"] {
            get(&w.conn, key).expect("get");
        }
        let stmt = w.conn.prepare_cached(GET).expect("cached");
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "rebinding the key made SQLite re-plan the lookup"
        );
    }
}
