//! The [`AuditStore`] trait: the hash-chained audit log, in the metadata
//! store's database (so a team's servers on one PostgreSQL keep one chain).
//! Reached through [`crate::MetaStore::audit`].
//!
//! Rows are appended unsealed and numbered in commit order; [`AuditStore::seal`]
//! then chains the unsealed tail in sequence order. The canonical JSON a
//! hash covers is the row's fields (`actor`, `auth_method`, `count`,
//! `method`, `request_id`, `resource`, `route`, `seq`, `source`, `status`,
//! `time_ms`) as one object with its keys in that (sorted) order, no
//! whitespace, absent values as `null`; the hash is the hex SHA-256 of the
//! previous hash's 64 hex characters followed by that JSON.

use sextant_core::audit::{AuditReport, AuditRow, NewAuditRow};

use crate::StoreError;

pub trait AuditStore: Send + Sync {
    /// Appends rows, unsealed, in one transaction.
    fn append(&self, rows: &[NewAuditRow]) -> Result<(), StoreError>;
    /// Appends rows and chains up to `batch` rows of the unsealed tail (them
    /// included) in one transaction: one commit per batch for a server's
    /// writer. On PostgreSQL it takes the sealer's turn before appending, so
    /// servers' writers take turns; `append` alone never waits for a sealer's
    /// turn. Returns how many rows were sealed.
    fn append_sealed(&self, rows: &[NewAuditRow], batch: u64) -> Result<u64, StoreError>;
    /// Chains up to `batch` rows of the unsealed tail, in sequence order, in
    /// one transaction; returns how many. Safe when several servers seal at
    /// once: they take turns, and a row is sealed once.
    fn seal(&self, batch: u64) -> Result<u64, StoreError>;
    /// Recomputes the whole chain and names the first row that breaks it.
    fn verify(&self) -> Result<AuditReport, StoreError>;
    /// Up to `limit` rows after sequence number `after`, in order.
    fn tail(&self, after: i64, limit: u64) -> Result<Vec<AuditRow>, StoreError>;
    /// Up to `limit` rows after `after` answered at or after `since_ms`, in
    /// sequence order (pages of an export).
    fn export(&self, since_ms: i64, after: i64, limit: u64) -> Result<Vec<AuditRow>, StoreError>;
    /// Deletes the sealed rows before sequence number `before` and keeps the
    /// last one's hash as the checkpoint the chain now starts from; returns
    /// how many rows went. Unsealed rows are never pruned.
    fn prune(&self, before: i64) -> Result<u64, StoreError>;
    /// The last sealed row's sequence number and hash (the checkpoint's when
    /// every row was pruned), `None` for an empty chain.
    fn head(&self) -> Result<Option<(i64, String)>, StoreError>;
}
