//! Settings of an opened store that are not part of its URI.

use std::time::Duration;

/// The default time limit of one read transaction.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The longest a read transaction may run before it is stopped with
    /// [`crate::StoreError::Timeout`]; `None` for no limit. Writes have none:
    /// they are short, and stopping one would lose what the caller asked for.
    pub query_timeout: Option<Duration>,
    /// SQLite's `synchronous` setting (ignored on PostgreSQL).
    pub sqlite_synchronous: SqliteSynchronous,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            sqlite_synchronous: SqliteSynchronous::Normal,
        }
    }
}

/// When SQLite waits for the disk (in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSynchronous {
    /// Commits survive a crash of the process; a power loss or OS crash
    /// may drop the last commits (never corrupts the database).
    #[default]
    Normal,
    /// Every commit is on disk before it returns, at the cost of an fsync
    /// per write transaction.
    Full,
}

impl SqliteSynchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
        }
    }
}

impl std::str::FromStr for SqliteSynchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(SqliteSynchronous::Normal),
            "full" => Ok(SqliteSynchronous::Full),
            other => Err(format!(
                "unknown sqlite synchronous mode '{other}': use normal or full"
            )),
        }
    }
}

/// The time limit in whole milliseconds, as errors and PostgreSQL's
/// `statement_timeout` state it (at least 1: 0 means none to PostgreSQL).
pub(crate) fn limit_ms(limit: Duration) -> u64 {
    (limit.as_millis() as u64).max(1)
}
