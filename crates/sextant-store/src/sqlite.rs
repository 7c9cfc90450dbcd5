//! The SQLite backend: one writer connection (SQLite allows one writer at a
//! time; queuing in-process beats busy-waiting) and a pool of readers, all in
//! WAL mode so readers never block the writer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::backend::{Backend, Conn, Dialect, Row, SqlValue};
use crate::options::limit_ms;
use crate::sqlite_uri::{SqliteTarget, sqlite_target};
use crate::{Cancel, StoreError, StoreOptions};

/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(20);
/// Idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Virtual-machine steps between two checks of a read's time limit and
/// cancel flag: a few tens of microseconds of work, so a stop is prompt and
/// the check (a clock read) costs nothing measurable.
const PROGRESS_STEPS: i32 = 1000;

/// A SQLite database file (or a private in-memory database).
pub struct Sqlite {
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    options: StoreOptions,
}

impl Sqlite {
    /// Opens `sqlite:///rel/path`, `sqlite:////abs/path` or `sqlite://:memory:`
    /// (read as SQLAlchemy reads them: see [`crate::sqlite_uri`]).
    pub fn open(uri: &str) -> Result<Self, StoreError> {
        let path = match sqlite_target(uri)? {
            SqliteTarget::Memory => None,
            SqliteTarget::File(p) => Some(p),
        };
        if let Some(dir) = path.as_ref().and_then(|p| p.parent())
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("creating {}: {e}", dir.display())))?;
        }
        let writer = connect(path.as_ref())?;
        Ok(Sqlite {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            options: StoreOptions::default(),
        })
    }

    /// The same database with `options`: the time limit of reads, and the
    /// `synchronous` mode of every connection.
    pub fn with_options(mut self, options: StoreOptions) -> Result<Self, StoreError> {
        let synchronous = options.sqlite_synchronous.as_str();
        self.writer
            .get_mut()
            .expect("writer poisoned")
            .pragma_update(None, "synchronous", synchronous)?;
        for reader in self.readers.get_mut().expect("reader pool poisoned") {
            reader.pragma_update(None, "synchronous", synchronous)?;
        }
        self.options = options;
        Ok(self)
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.readers.lock().expect("reader pool poisoned").pop() {
            return Ok(c);
        }
        let conn = connect(self.path.as_ref())?;
        conn.pragma_update(
            None,
            "synchronous",
            self.options.sqlite_synchronous.as_str(),
        )?;
        Ok(conn)
    }
}

/// Why a read's progress handler stopped it.
const RUNNING: u8 = 0;
const TIMED_OUT: u8 = 1;
const CANCELLED: u8 = 2;

/// Runs `f` as a read transaction on `conn`, stopped by SQLite's progress
/// handler once past `limit` or when the caller's [`Cancel`] fires.
fn read_tx<T>(
    conn: &mut Connection,
    limit: Option<Duration>,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let cancel = Cancel::current();
    if cancel.as_ref().is_some_and(Cancel::is_cancelled) {
        return Err(StoreError::Cancelled);
    }
    if limit.is_none() && cancel.is_none() {
        return in_tx(conn, "BEGIN", f);
    }
    let deadline = limit.map(|l| Instant::now() + l);
    let stopped = Arc::new(AtomicU8::new(RUNNING));
    let why = stopped.clone();
    let watched = cancel.clone();
    conn.progress_handler(
        PROGRESS_STEPS,
        Some(move || {
            let reason = if watched.as_ref().is_some_and(Cancel::is_cancelled) {
                CANCELLED
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                TIMED_OUT
            } else {
                return false;
            };
            why.store(reason, Ordering::SeqCst);
            true
        }),
    );
    let out = in_tx(conn, "BEGIN", f);
    conn.progress_handler(0, None::<fn() -> bool>);
    out.map_err(|e| match (&e, stopped.load(Ordering::SeqCst)) {
        (StoreError::Sqlite(s), reason)
            if s.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
        {
            match (reason, limit) {
                (TIMED_OUT, Some(l)) => StoreError::Timeout {
                    limit_ms: limit_ms(l),
                },
                _ => StoreError::Cancelled,
            }
        }
        _ => e,
    })
}

fn connect(path: Option<&PathBuf>) -> Result<Connection, StoreError> {
    let conn = match path {
        Some(p) => Connection::open_with_flags(
            p,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL with synchronous=NORMAL: a committed transaction survives a crash
    // of this process (kill -9); only a power loss or OS crash may drop the
    // last commits. `StoreOptions::sqlite_synchronous` (FULL) closes that gap
    // at the cost of an fsync per commit; `Sqlite::with_options` applies it.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Backend for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.path.is_none() {
            // A private in-memory database exists in one connection only.
            let mut w = self.writer.lock().expect("writer poisoned");
            return read_tx(&mut w, self.options.query_timeout, f);
        }
        let mut conn = self.reader()?;
        let out = read_tx(&mut conn, self.options.query_timeout, f);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut w = self.writer.lock().expect("writer poisoned");
        in_tx(&mut w, "BEGIN IMMEDIATE", f)
    }
}

fn in_tx<T>(
    conn: &mut Connection,
    begin: &str,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch(begin).map_err(busy)?;
    let mut c = SqliteConn(conn);
    match f(&mut c) {
        Ok(v) => match c.0.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = c.0.execute_batch("ROLLBACK");
                Err(busy(e))
            }
        },
        Err(e) => {
            let _ = c.0.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn busy(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy(e.to_string())
        }
        _ => StoreError::Sqlite(e),
    }
}

struct SqliteConn<'a>(&'a mut Connection);

fn to_sql(v: &SqlValue) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match v {
        SqlValue::Null => ValueRef::Null,
        SqlValue::Int(i) => ValueRef::Integer(*i),
        SqlValue::Real(f) => ValueRef::Real(*f),
        SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
    })
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[SqlValue]) -> Result<(), StoreError> {
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sql(p))?;
    }
    Ok(())
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        bind(&mut stmt, params)?;
        Ok(stmt.raw_execute().map_err(busy)? as u64)
    }

    fn exec_many(&mut self, sql: &str, rows: &[Vec<SqlValue>]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut n = 0;
        for row in rows {
            bind(&mut stmt, row)?;
            n += stmt.raw_execute().map_err(busy)? as u64;
        }
        Ok(n)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        scan(self.0, sql, params, &mut |row| {
            out.push(std::mem::take(row));
            Ok(())
        })?;
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        f: &mut dyn FnMut(&[SqlValue]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        scan(self.0, sql, params, &mut |row| f(row))
    }
}

/// Runs a query, filling one row buffer per row read and handing it to
/// `f`, which may keep it (taking it) or leave it to be reused.
fn scan(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
    f: &mut dyn FnMut(&mut Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let ncol = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut r: Row = Vec::new();
    while let Some(row) = rows.next().map_err(busy)? {
        r.clear();
        r.reserve(ncol);
        for i in 0..ncol {
            r.push(match row.get_ref(i)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(v) => SqlValue::Int(v),
                ValueRef::Real(v) => SqlValue::Real(v),
                ValueRef::Text(v) => SqlValue::Text(
                    std::str::from_utf8(v)
                        .map_err(|e| StoreError::Corrupt(format!("text column: {e}")))?
                        .to_owned(),
                ),
                ValueRef::Blob(_) => {
                    return Err(StoreError::Corrupt("unexpected blob column".into()));
                }
            });
        }
        f(&mut r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query that never ends on its own.
    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM c";

    fn db(limit: Option<Duration>) -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("t.db").display());
        let db = Sqlite::open(&uri)
            .unwrap()
            .with_options(StoreOptions {
                query_timeout: limit,
                ..StoreOptions::default()
            })
            .unwrap();
        (dir, db)
    }

    #[test]
    fn a_read_past_the_time_limit_is_stopped_with_the_limit() {
        let (_dir, db) = db(Some(Duration::from_millis(50)));
        match db.read(|c| c.query(ENDLESS, &[])) {
            Err(StoreError::Timeout { limit_ms: 50 }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        // The connection goes back to the pool in working order.
        let rows = db.read(|c| c.query("SELECT 1", &[])).unwrap();
        assert_eq!(rows, vec![vec![SqlValue::Int(1)]]);
    }

    #[test]
    fn a_cancelled_read_stops_and_later_reads_in_the_scope_fail_at_once() {
        let (_dir, db) = db(None);
        let db = Arc::new(db);
        let cancel = Cancel::new();
        let (started_tx, started) = std::sync::mpsc::channel();
        let reader = {
            let (db, cancel) = (db.clone(), cancel.clone());
            std::thread::spawn(move || {
                cancel.scope(|| {
                    let endless = db.read(|c| {
                        started_tx.send(()).unwrap();
                        c.query(ENDLESS, &[])
                    });
                    (endless, db.read(|c| c.query("SELECT 1", &[])))
                })
            })
        };
        started.recv().unwrap();
        cancel.cancel();
        let (endless, later) = reader.join().unwrap();
        assert!(matches!(endless, Err(StoreError::Cancelled)), "{endless:?}");
        assert!(matches!(later, Err(StoreError::Cancelled)), "{later:?}");
        // Outside the scope the same store reads normally.
        assert!(db.read(|c| c.query("SELECT 1", &[])).is_ok());
    }

    #[test]
    fn writes_have_no_time_limit() {
        let (_dir, db) = db(Some(Duration::from_millis(1)));
        // Long enough for many progress checks; a write is never stopped.
        let n = db
            .write(|c| {
                c.query(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                     SELECT count(*) FROM c",
                    &[],
                )
            })
            .unwrap();
        assert_eq!(n, vec![vec![SqlValue::Int(300_000)]]);
    }
}
