//! What the shared SQL code needs from a database: run statements inside a
//! transaction. SQLite and PostgreSQL each implement [`Conn`] and [`Backend`].
//!
//! SQL is written once with `?` placeholders; the PostgreSQL connection
//! rewrites them to `$1, $2, …`.

use crate::StoreError;

/// The SQL dialect, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlValue {
    /// The value as an integer; NULL and other types are corrupt data here.
    pub fn int(&self) -> Result<i64, StoreError> {
        match self {
            SqlValue::Int(i) => Ok(*i),
            other => Err(StoreError::Corrupt(format!(
                "expected an integer, found {other:?}"
            ))),
        }
    }
    /// The value as an optional integer.
    pub fn opt_int(&self) -> Result<Option<i64>, StoreError> {
        match self {
            SqlValue::Null => Ok(None),
            v => v.int().map(Some),
        }
    }
    /// The value as a double (integers widen).
    pub fn real(&self) -> Result<f64, StoreError> {
        match self {
            SqlValue::Real(f) => Ok(*f),
            SqlValue::Int(i) => Ok(*i as f64),
            other => Err(StoreError::Corrupt(format!(
                "expected a number, found {other:?}"
            ))),
        }
    }
    /// The value as text, consuming it.
    pub fn text(self) -> Result<String, StoreError> {
        match self {
            SqlValue::Text(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!(
                "expected text, found {other:?}"
            ))),
        }
    }
    /// The value as optional text.
    pub fn opt_text(self) -> Result<Option<String>, StoreError> {
        match self {
            SqlValue::Null => Ok(None),
            v => v.text().map(Some),
        }
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}
impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// A result row.
pub type Row = Vec<SqlValue>;

/// The type of a column written by [`Conn::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Real,
    Text,
}

/// Rows per multi-row `INSERT … VALUES`: few statements, far below both
/// databases' parameter limits.
const ROWS_PER_INSERT: usize = 100;

/// Inserts rows with multi-row `INSERT … VALUES (…), (…)` statements;
/// `values` holds the rows one after another, `width` values each.
pub fn insert_values<C: Conn + ?Sized>(
    c: &mut C,
    head: &str,
    tail: &str,
    width: usize,
    values: &[SqlValue],
) -> Result<(), StoreError> {
    let one = format!("({})", placeholders(width));
    for chunk in values.chunks(width * ROWS_PER_INSERT) {
        let tuples = vec![one.as_str(); chunk.len() / width].join(", ");
        let sql = format!("{head} VALUES {tuples} {tail}");
        c.exec(&sql, chunk)?;
    }
    Ok(())
}

/// A connection inside a transaction.
pub trait Conn {
    /// The dialect of this connection.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError>;
    /// Runs one statement for each parameter row (prepared once).
    fn exec_many(&mut self, sql: &str, rows: &[Vec<SqlValue>]) -> Result<u64, StoreError>;
    /// Runs a query and returns all rows.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError>;
    /// Runs a query and hands each row to `f` as it is read, for scans of
    /// many rows that keep few of them (a backend may reuse one row buffer).
    fn query_each(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        f: &mut dyn FnMut(&[SqlValue]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Adds rows that must all be new to `table`: one whose key is stored
    /// already fails the call with a unique violation, and the transaction
    /// must not commit. `columns` names one column per entry of `types`;
    /// `values` holds the rows one after another. A backend picks its
    /// fastest form (PostgreSQL copies them in, in binary).
    fn append(
        &mut self,
        table: &str,
        columns: &str,
        types: &[ColumnType],
        values: &[SqlValue],
    ) -> Result<(), StoreError> {
        self.insert(
            &format!("INSERT INTO {table} ({columns})"),
            "",
            types,
            values,
        )
    }
    /// Inserts many rows: `{head} <rows> {tail}`, where `head` is
    /// `INSERT INTO t (a, b, …)` naming one column per entry of `types`
    /// and `values` holds the rows one after another. A backend picks its
    /// fastest form (PostgreSQL sends each column as one array).
    fn insert(
        &mut self,
        head: &str,
        tail: &str,
        types: &[ColumnType],
        values: &[SqlValue],
    ) -> Result<(), StoreError> {
        insert_values(self, head, tail, types.len(), values)
    }
}

/// A database that hands out transactions.
pub trait Backend: Send + Sync + 'static {
    /// The dialect of this database.
    fn dialect(&self) -> Dialect;
    /// Runs `f` in a read transaction (a consistent snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Runs `f` in a write transaction, committed when `f` returns `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Told after `n` runs were created, so the planner's statistics can
    /// keep up with a fast-growing store.
    fn runs_created(&self, _n: u64) {}
}

/// Rewrites `?` placeholders to PostgreSQL's `$n`, leaving quoted text alone.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    out
}

/// `?, ?, ?` with `n` placeholders.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT '?' FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT '?' FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
    }
}
