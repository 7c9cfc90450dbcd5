//! The PostgreSQL backend: a small pool of synchronous clients.
//!
//! The synchronous `postgres` client runs its own small tokio runtime and
//! blocks on it, so it must never be used or dropped on a thread that is
//! running an async runtime: dropping one there panics inside a destructor
//! ("Cannot start a runtime from within a runtime") and aborts the process.
//! Store calls run on the blocking pool, but the pool itself is dropped
//! wherever the last store handle goes — at shutdown, on a runtime worker.
//! So every client is held in a [`PgClient`], whose drop hands the client
//! to one plain thread that closes it: no client ever dies on a runtime
//! thread, whatever path drops it (shutdown, a broken connection discarded,
//! a panic unwinding).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use crate::backend::{Backend, ColumnType, Conn, Dialect, Row, SqlValue, numbered_placeholders};
use crate::options::limit_ms;
use crate::{Cancel, StoreError, StoreOptions};

/// Rows from which [`Conn::append`] copies them in rather than inserting.
const COPY_MIN_ROWS: usize = 64;
/// Rows per `COPY` at most. Each row a `COPY` buffers takes a tuple slot,
/// and PostgreSQL (up to 16) records every slot's tuple descriptor in a
/// resource owner whose lookups grow with their number: copies of 1,000
/// rows spent 8 % of all CPU there. Batches of 1,000 metrics copied 250
/// rows at a time went 6–10 % faster than in one copy, and than 125 or 500
/// at a time (`tracking_load.py`, fresh databases, binaries alternated).
const COPY_MAX_ROWS: usize = 250;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;
/// Statements kept prepared per connection.
const MAX_PREPARED: usize = 256;
/// How long dropping the pool waits for its idle connections to be closed
/// politely (a Terminate message each) before leaving them to the OS.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A PostgreSQL database.
pub struct Postgres {
    uri: String,
    idle: Mutex<Vec<PgClient>>,
    statistics: Arc<Statistics>,
    /// The time limit of a read transaction's statements.
    query_timeout: Option<Duration>,
    /// What starts a read transaction: read only, with the time limit.
    read_begin: String,
}

/// A synchronous client that is closed on the closer thread when dropped,
/// with the statements it has prepared.
pub struct PgClient {
    client: Option<Client>,
    /// Statements prepared on this connection, by their SQL: a statement
    /// run again costs one round trip (bind and execute) instead of two
    /// (parse and describe first).
    prepared: HashMap<String, Statement>,
}

impl PgClient {
    fn new(client: Client) -> Self {
        PgClient {
            client: Some(client),
            prepared: HashMap::new(),
        }
    }

    /// `sql` (with `$n` placeholders) prepared on this connection, once.
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.deref_mut().prepare(sql)?;
        if self.prepared.len() >= MAX_PREPARED {
            // Statements built per call (IN lists of many lengths, search
            // filters) would grow the cache without bound; the hot ones are
            // prepared again at once.
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

impl Deref for PgClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("client present until dropped")
    }
}

impl DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("client present until dropped")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        // Statements are closed with their connection.
        self.prepared.clear();
        if let Some(client) = self.client.take() {
            closer(Close::Client(Box::new(client)));
        }
    }
}

/// Work for the closer thread.
enum Close {
    Client(Box<Client>),
    /// Answered once everything sent before it is closed.
    Flush(SyncSender<()>),
}

/// Sends `job` to the one thread of the process that closes clients,
/// started on first use. It is a plain thread: no async runtime, so the
/// client's blocking close is allowed there.
fn closer(job: Close) {
    static CLOSER: OnceLock<Mutex<Sender<Close>>> = OnceLock::new();
    let sender = CLOSER.get_or_init(|| {
        let (tx, rx) = channel::<Close>();
        let spawned = std::thread::Builder::new()
            .name("sextant-pg-close".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Close::Client(client) => drop(client),
                        Close::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the thread that closes PostgreSQL connections");
        }
        Mutex::new(tx)
    });
    if let Err(unsent) = sender.lock().expect("closer poisoned").send(job) {
        // No closer thread: leak the client rather than risk dropping it on
        // a runtime thread; the OS closes its socket at exit.
        std::mem::forget(unsent.0);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().expect("pool poisoned"));
        if idle.is_empty() {
            return;
        }
        drop(idle);
        let (done, closed) = sync_channel(1);
        closer(Close::Flush(done));
        let _ = closed.recv_timeout(CLOSE_WAIT);
    }
}

impl Postgres {
    /// Connects to `postgresql://…` (or `postgres://…`) and checks the connection.
    pub fn open(uri: &str) -> Result<Self, StoreError> {
        let pg = Postgres {
            uri: uri.to_string(),
            idle: Mutex::new(Vec::new()),
            statistics: Arc::default(),
            query_timeout: StoreOptions::default().query_timeout,
            read_begin: read_begin(&StoreOptions::default()),
        };
        let client = pg.client()?;
        pg.release(client);
        Ok(pg)
    }

    /// The same database with `options` (the time limit of reads).
    pub fn with_options(mut self, options: StoreOptions) -> Self {
        self.read_begin = read_begin(&options);
        self.query_timeout = options.query_timeout;
        self
    }

    /// A client from the pool, or a fresh one; also for session-level work
    /// such as advisory locks.
    pub fn client(&self) -> Result<PgClient, StoreError> {
        loop {
            let Some(c) = self.idle.lock().expect("pool poisoned").pop() else {
                break;
            };
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let mut client = PgClient::new(Client::connect(&self.uri, NoTls)?);
        // Store queries are short; JIT compiling one costs seconds when the
        // planner's estimate is high (a filter of many clauses) and never
        // pays back.
        client.batch_execute("SET jit = off")?;
        Ok(client)
    }

    /// Returns a client to the pool.
    pub fn release(&self, client: PgClient) {
        let mut idle = self.idle.lock().expect("pool poisoned");
        if idle.len() < MAX_IDLE && !client.is_closed() {
            idle.push(client);
        }
    }

    fn in_tx<T>(
        &self,
        read_only: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Only reads are cancelled (see `Cancel`).
        let cancel = Cancel::current().filter(|_| read_only);
        if cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            return Err(StoreError::Cancelled);
        }
        let mut client = self.client()?;
        // A pooled connection may have died while idle (the server
        // restarted, an operator's pg_terminate_backend): its BEGIN fails
        // before anything ran, so take another one rather than fail a
        // request that never touched the dead one.
        let begin = if read_only {
            self.read_begin.as_str()
        } else {
            "BEGIN"
        };
        let mut attempts = 0;
        loop {
            match client.batch_execute(begin) {
                Ok(()) => break,
                Err(e) if connection_lost(&e) && attempts < MAX_IDLE => {
                    attempts += 1;
                    client = self.client()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let armed = match &cancel {
            Some(c) => {
                let token = client.cancel_token();
                // The cancel request needs its own connection and blocks:
                // off the caller's thread, which may be a runtime's.
                let interrupt = Box::new(move || {
                    std::thread::spawn(move || {
                        if let Err(e) = token.cancel_query(NoTls) {
                            tracing::warn!(error = %e, "cancelling a PostgreSQL query");
                        }
                    });
                });
                match c.arm(interrupt) {
                    Some(armed) => Some(armed),
                    None => {
                        if client.batch_execute("ROLLBACK").is_ok() {
                            self.release(client);
                        }
                        return Err(StoreError::Cancelled);
                    }
                }
            }
            None => None,
        };
        let out = f(&mut PgConn(&mut client));
        let end = match &out {
            Ok(_) => client.batch_execute("COMMIT"),
            Err(_) => client.batch_execute("ROLLBACK"),
        };
        let interrupted = armed.is_some_and(|a| a.disarm());
        let out = match (out, end) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        };
        if interrupted || client.is_closed() {
            // A cancel request may still be on its way to this session:
            // never hand the connection to another caller.
            drop(client);
        } else {
            self.release(client);
        }
        out.map_err(|e| match e {
            StoreError::Postgres(pg) if pg.code() == Some(&SqlState::QUERY_CANCELED) => {
                match (interrupted, self.query_timeout) {
                    (true, _) => StoreError::Cancelled,
                    (false, Some(limit)) => StoreError::Timeout {
                        limit_ms: limit_ms(limit),
                    },
                    // Cancelled by someone else (an operator's pg_cancel_backend).
                    (false, None) => StoreError::Postgres(pg),
                }
            }
            e => e,
        })
    }
}

/// Whether `e` says the connection is gone (closed, or its backend terminated).
fn connection_lost(e: &postgres::Error) -> bool {
    e.is_closed() || e.code() == Some(&SqlState::ADMIN_SHUTDOWN)
}

/// The start of a read transaction, one round trip: read only; each
/// statement planned for its own values; and the time limit as
/// `statement_timeout`, which PostgreSQL enforces per statement (a read
/// transaction is a few statements, each bounded). `SET LOCAL` ends with
/// the transaction.
///
/// Statements stay prepared per connection (`PgClient::statement`); after
/// five runs of one PostgreSQL may settle on a generic plan, blind to the
/// values, and for a search filter that can mean a worse join order. Reads
/// are where the values matter; writes keep the cheaper cached plans.
fn read_begin(options: &StoreOptions) -> String {
    let begin = "BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_custom_plan";
    match options.query_timeout {
        Some(limit) => format!("{begin}; SET LOCAL statement_timeout = {}", limit_ms(limit)),
        None => begin.into(),
    }
}

impl Backend for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.in_tx(true, f)
    }
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.in_tx(false, f)
    }
    fn runs_created(&self, n: u64) {
        self.statistics.runs_created(&self.uri, n);
    }
}

/// Runs created, since the store last had the tracking tables analyzed,
/// before it does so again (or a tenth of the runs, if more).
const ANALYZE_AFTER_RUNS: u64 = 500;

/// Keeps the planner's statistics of the tracking tables in step with the
/// store's growth. Autovacuum analyzes a table only once a minute at best;
/// until then a freshly filled table looks empty to the planner, which
/// then joins a search's filters as if each matched one row: a 3 ms search
/// over 4,000 runs took 160–260 ms for its first minute.
#[derive(Default)]
struct Statistics {
    /// Runs in the table when it was last analyzed (PostgreSQL's estimate).
    runs_then: AtomicU64,
    /// Runs this process created since.
    created: AtomicU64,
    analyzing: AtomicBool,
}

impl Statistics {
    fn runs_created(self: &Arc<Self>, uri: &str, n: u64) {
        let created = self.created.fetch_add(n, Ordering::Relaxed) + n;
        let due = ANALYZE_AFTER_RUNS.max(self.runs_then.load(Ordering::Relaxed) / 10);
        if created < due || self.analyzing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.created.store(0, Ordering::Relaxed);
        let (this, uri) = (self.clone(), uri.to_string());
        // A plain thread of its own: the synchronous client may not run on
        // a runtime thread, and no request waits for this.
        let spawned = std::thread::Builder::new()
            .name("sextant-pg-analyze".into())
            .spawn(move || {
                if let Err(e) = this.analyze(&uri) {
                    tracing::warn!(error = %e, "analyzing the tracking tables");
                }
                this.analyzing.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.analyzing.store(false, Ordering::Release);
        }
    }

    fn analyze(&self, uri: &str) -> Result<(), postgres::Error> {
        let mut client = PgClient::new(Client::connect(uri, NoTls)?);
        client.batch_execute("ANALYZE runs, run_tags, params, latest_metrics")?;
        let runs: f32 = client
            .query_one(
                "SELECT reltuples FROM pg_class WHERE oid = 'runs'::regclass",
                &[],
            )?
            .get(0);
        self.runs_then
            .store(runs.max(0.0) as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A connection inside a transaction begun with `BEGIN` by `in_tx`.
struct PgConn<'a>(&'a mut PgClient);

fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, values: &[SqlValue]) -> Result<u64, StoreError> {
        let stmt = self.0.statement(&numbered_placeholders(sql))?;
        Ok(self.0.execute(&stmt, &params(values))?)
    }

    fn exec_many(&mut self, sql: &str, rows: &[Vec<SqlValue>]) -> Result<u64, StoreError> {
        let stmt = self.0.statement(&numbered_placeholders(sql))?;
        let mut n = 0;
        for row in rows {
            n += self.0.execute(&stmt, &params(row))?;
        }
        Ok(n)
    }

    fn query(&mut self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.0.statement(&numbered_placeholders(sql))?;
        let rows = self.0.query(&stmt, &params(values))?;
        rows.iter().map(decode_row).collect()
    }

    /// Rows decoded as they arrive, none kept.
    fn query_each(
        &mut self,
        sql: &str,
        values: &[SqlValue],
        f: &mut dyn FnMut(&[SqlValue]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let stmt = self.0.statement(&numbered_placeholders(sql))?;
        let mut rows = self.0.query_raw(&stmt, params(values))?;
        while let Some(row) = rows.next()? {
            f(&decode_row(&row)?)?;
        }
        Ok(())
    }

    /// `COPY … FROM STDIN` in the binary format: the server stores the rows
    /// as they come, several per heap page and WAL record, where an
    /// `INSERT` plans, projects and logs each row. Both statements (the
    /// copy, and the probe that reads the columns' types, which the binary
    /// format must match) are prepared once per connection. A copy takes
    /// two round trips (the server first says it is ready for the data), so
    /// a few rows go by `insert`, in one.
    fn append(
        &mut self,
        table: &str,
        columns: &str,
        types: &[ColumnType],
        values: &[SqlValue],
    ) -> Result<(), StoreError> {
        if values.len() < COPY_MIN_ROWS * types.len() {
            let head = format!("INSERT INTO {table} ({columns})");
            return self.insert(&head, "", types, values);
        }
        let probe = self
            .0
            .statement(&format!("SELECT {columns} FROM {table} LIMIT 0"))?;
        let kinds: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
        if kinds.len() != types.len() {
            return Err(StoreError::Corrupt(format!(
                "{table}: {} columns named, {} typed",
                kinds.len(),
                types.len()
            )));
        }
        let copy = self.0.statement(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))?;
        for rows in values.chunks(COPY_MAX_ROWS * types.len()) {
            let data = binary_copy(&kinds, rows)?;
            let mut writer = self.0.copy_in(&copy)?;
            // The writer reports the connection's failures as I/O errors.
            writer.write_all(&data).map_err(|e| {
                let text = e.to_string();
                match e
                    .into_inner()
                    .map(|inner| inner.downcast::<postgres::Error>())
                {
                    Some(Ok(failed)) => StoreError::Postgres(*failed),
                    _ => StoreError::Corrupt(format!("copying into {table}: {text}")),
                }
            })?;
            writer.finish()?;
        }
        Ok(())
    }

    /// One statement whatever the number of rows: each column goes as one
    /// array parameter, `unnest` turns them back into rows. The statement
    /// is the same for every batch size, so it is prepared once.
    fn insert(
        &mut self,
        head: &str,
        tail: &str,
        types: &[ColumnType],
        values: &[SqlValue],
    ) -> Result<(), StoreError> {
        if values.is_empty() {
            return Ok(());
        }
        let arrays = types
            .iter()
            .enumerate()
            .map(|(i, &ty)| column_array(ty, values.iter().skip(i).step_by(types.len())))
            .collect::<Result<Vec<_>, _>>()?;
        let unnest: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let elem = match ty {
                    ColumnType::Int => "BIGINT",
                    ColumnType::Real => "DOUBLE PRECISION",
                    ColumnType::Text => "TEXT",
                };
                format!("${}::{elem}[]", i + 1)
            })
            .collect();
        let sql = format!("{head} SELECT * FROM unnest({}) {tail}", unnest.join(", "));
        let stmt = self.0.statement(&sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(ColumnArray::as_sql).collect();
        self.0.execute(&stmt, &refs)?;
        Ok(())
    }
}

/// `values` (rows of `kinds.len()` values, one after another) in
/// PostgreSQL's binary copy format: a header, then per row its field count
/// and each field's length and bytes (-1 for NULL), then -1.
fn binary_copy(kinds: &[Type], values: &[SqlValue]) -> Result<BytesMut, StoreError> {
    let mut buf = BytesMut::with_capacity(32 + values.len() * 16);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    buf.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    let width = i16::try_from(kinds.len())
        .map_err(|_| StoreError::Corrupt(format!("{} columns to copy", kinds.len())))?;
    for row in values.chunks(kinds.len()) {
        buf.extend_from_slice(&width.to_be_bytes());
        for (value, kind) in row.iter().zip(kinds) {
            let at = buf.len();
            buf.extend_from_slice(&0i32.to_be_bytes()); // the length, set below
            let written = value.to_sql(kind, &mut buf).map_err(|e| {
                StoreError::Corrupt(format!("a {kind} column given {value:?}: {e}"))
            })?;
            let len = match written {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(buf.len() - at - 4).map_err(|_| {
                    StoreError::Corrupt(format!("a {kind} value of {} bytes", buf.len() - at))
                })?,
            };
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(buf)
}

/// One column of rows, as the array parameter `unnest` takes.
enum ColumnArray {
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl ColumnArray {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            ColumnArray::Int(v) => v,
            ColumnArray::Real(v) => v,
            ColumnArray::Text(v) => v,
        }
    }
}

fn column_array<'a>(
    ty: ColumnType,
    values: impl Iterator<Item = &'a SqlValue>,
) -> Result<ColumnArray, StoreError> {
    let mismatch = |v: &SqlValue| StoreError::Corrupt(format!("a {ty:?} column given {v:?}"));
    Ok(match ty {
        ColumnType::Int => ColumnArray::Int(
            values
                .map(|v| match v {
                    SqlValue::Null => Ok(None),
                    SqlValue::Int(i) => Ok(Some(*i)),
                    v => Err(mismatch(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        ColumnType::Real => ColumnArray::Real(
            values
                .map(|v| match v {
                    SqlValue::Null => Ok(None),
                    SqlValue::Real(f) => Ok(Some(*f)),
                    SqlValue::Int(i) => Ok(Some(*i as f64)),
                    v => Err(mismatch(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        ColumnType::Text => ColumnArray::Text(
            values
                .map(|v| match v {
                    SqlValue::Null => Ok(None),
                    SqlValue::Text(s) => Ok(Some(s.clone())),
                    v => Err(mismatch(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn decode_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.into()
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(i64::from).into()
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(i64::from).into()
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(i64::from).into()
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.into()
        } else if *t == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)?.map(f64::from).into()
        } else {
            row.try_get::<_, Option<String>>(i)?.into()
        };
        out.push(v);
    }
    Ok(out)
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            SqlValue::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            SqlValue::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// A query that never ends on its own; the marker finds it in `pg_stat_activity`.
    fn endless(marker: &str) -> String {
        format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
             SELECT count(*) /* {marker} */ FROM c"
        )
    }

    fn url() -> String {
        std::env::var("SEXTANT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
    }

    fn db(limit: Option<Duration>) -> Postgres {
        Postgres::open(&url())
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", url()))
            .with_options(StoreOptions {
                query_timeout: limit,
                ..StoreOptions::default()
            })
    }

    #[test]
    fn a_read_past_the_time_limit_is_stopped_with_the_limit() {
        let db = db(Some(Duration::from_millis(50)));
        match db.read(|c| c.query(&endless("h5-timeout"), &[])) {
            Err(StoreError::Timeout { limit_ms: 50 }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        let rows = db.read(|c| c.query("SELECT 1::BIGINT", &[])).unwrap();
        assert_eq!(rows, vec![vec![SqlValue::Int(1)]]);
        // Writes keep no limit from a read (SET LOCAL ends with its transaction).
        let rows = db
            .write(|c| c.query("SELECT current_setting('statement_timeout')", &[]))
            .unwrap();
        assert_eq!(rows, vec![vec![SqlValue::Text("0".into())]]);
    }

    #[test]
    fn a_cancelled_read_stops_and_its_connection_is_not_reused() {
        let db = Arc::new(db(None));
        let marker = format!("h5-cancel-{}", std::process::id());
        let cancel = Cancel::new();
        let reader = {
            let (db, cancel, sql) = (db.clone(), cancel.clone(), endless(&marker));
            std::thread::spawn(move || cancel.scope(|| db.read(|c| c.query(&sql, &[]))))
        };
        // Cancel once the query runs on the server (a cancel request that
        // arrives before it would find nothing to cancel).
        let mut admin = Client::connect(&url(), NoTls).unwrap();
        let active = |admin: &mut Client| -> i64 {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                     AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                    &[&marker],
                )
                .unwrap()
                .get(0)
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while active(&mut admin) == 0 {
            assert!(Instant::now() < deadline, "the query never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        cancel.cancel();
        let out = reader.join().unwrap();
        assert!(matches!(out, Err(StoreError::Cancelled)), "{out:?}");
        assert_eq!(active(&mut admin), 0);
        assert!(db.read(|c| c.query("SELECT 1", &[])).is_ok());
    }

    #[test]
    fn a_pool_dropped_on_an_async_runtime_thread_does_not_panic() {
        // The shutdown path: the last store handle goes away on a runtime
        // worker. A client dropped there used to abort the process.
        let db = db(None);
        let idle: Vec<PgClient> = (0..3).map(|_| db.client().unwrap()).collect();
        for c in idle {
            db.release(c);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::spawn(async move { drop(db) }).await.unwrap();
        });
    }
}
