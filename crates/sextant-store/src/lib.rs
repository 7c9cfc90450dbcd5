//! The metadata store: one [`MetaStore`] trait, one SQL implementation of it
//! shared by two backends (SQLite, the embedded default, and PostgreSQL),
//! explicit migrations, and a conformance suite run against both.
//!
//! The trait is synchronous: callers in async code run it on a blocking pool.

pub mod actor;
mod audit_store;
mod auth_store;
mod backend;
mod blocking;
mod cancel;
mod clocked_store;
mod error;
pub mod import;
mod migrations;
mod mlflow_source;
mod names;
mod options;
mod postgres;
mod search_sql;
mod sql_store;
mod sqlite;
pub mod sqlite_uri;
mod store;
pub mod token;

pub use audit_store::AuditStore;
pub use auth_store::AuthStore;
pub use blocking::{CallError, call};
pub use cancel::{Cancel, CancelOnDrop};
pub use clocked_store::ClockedStore;
pub use error::StoreError;
pub use options::{DEFAULT_QUERY_TIMEOUT, SqliteSynchronous, StoreOptions};
pub use sql_store::{SqlStore, audit_row_hash, events_appended, open_in_memory};
pub use store::{
    ExperimentSearch, LoggedModelSearch, MetaStore, ModelVersionSearch, PipelineRunSearch,
    RegisteredModelSearch, RunKeyKind, RunSearch, open, open_with, upgrade, upgrade_to,
};
