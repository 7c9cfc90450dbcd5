//! The SQLite backend: one writer connection (SQLite allows one writer at a
//! time; queuing in-process beats busy-waiting) and a pool of readers, all in
//! WAL mode so readers never block the writer.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::backend::{Backend, Conn, Dialect, Row, SqlValue};
use crate::sqlite_uri::{SqliteTarget, sqlite_target};

/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(20);
/// Idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// A SQLite database file (or a private in-memory database).
pub struct Sqlite {
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
        })
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.readers.lock().expect("reader pool poisoned").pop() {
            return Ok(c);
        }
        connect(self.path.as_ref())
    }
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
    // of this process (kill -9); only a power loss may drop the last commits.
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
            return in_tx(&mut w, "BEGIN", f);
        }
        let mut conn = self.reader()?;
        let out = in_tx(&mut conn, "BEGIN", f);
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
        let mut stmt = self.0.prepare_cached(sql)?;
        bind(&mut stmt, params)?;
        let ncol = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(busy)? {
            let mut r = Vec::with_capacity(ncol);
            for i in 0..ncol {
                r.push(match row.get::<_, Value>(i)? {
                    Value::Null => SqlValue::Null,
                    Value::Integer(v) => SqlValue::Int(v),
                    Value::Real(v) => SqlValue::Real(v),
                    Value::Text(v) => SqlValue::Text(v),
                    Value::Blob(_) => {
                        return Err(StoreError::Corrupt("unexpected blob column".into()));
                    }
                });
            }
            out.push(r);
        }
        Ok(out)
    }
}
