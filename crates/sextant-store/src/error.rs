//! Errors of the metadata store.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a domain rule (not found, invalid value, …).
    #[error(transparent)]
    Domain(#[from] sextant_core::Error),
    /// The database stayed locked past the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// A read ran past the store's query time limit and was stopped.
    #[error("the query exceeded the time limit of {limit_ms} ms")]
    Timeout { limit_ms: u64 },
    /// The caller cancelled the read (see [`crate::Cancel`]).
    #[error("the query was cancelled")]
    Cancelled,
    /// The store URI or settings are unusable.
    #[error("store configuration: {0}")]
    Config(String),
    /// A schema migration failed or the schema is newer than this binary.
    #[error("migration: {0}")]
    Migration(String),
    /// Stored data does not decode (a bug or a hand-edited database).
    #[error("corrupt store data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether a unique index refused a row (SQLite's primary-key or
    /// unique constraint, PostgreSQL's `unique_violation`).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            ),
            StoreError::Postgres(e) => {
                e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}
