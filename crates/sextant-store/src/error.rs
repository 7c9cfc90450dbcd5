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
