//! The audit log: one row per request that changed state, per login (failed
//! or not) and per denied request, chained by hashes so that editing,
//! deleting, inserting or reordering a row shows.
//!
//! A row is appended unsealed (no hashes) and gets its sequence number in
//! commit order; a sealer then sets `prev_hash` (the hash of the row before
//! it, or of the checkpoint the chain starts from) and `hash` =
//! SHA-256(`prev_hash` ‖ canonical JSON of the row), in sequence order.
//! Writers therefore never wait on each other for the chain.

use std::fmt;

/// The `prev_hash` of the first row of a chain that has never been pruned.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What one audit row records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuditRow {
    /// When the request was answered (the start of the minute, for an
    /// aggregate of anonymous denials), Unix milliseconds.
    pub time_ms: i64,
    /// The authenticated user; `None` for anonymous callers and failed logins.
    pub actor: Option<String>,
    /// How the caller authenticated or tried to (`basic`, `bearer`, `internal`).
    pub auth_method: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// The HTTP method (`*` for an aggregate).
    pub method: String,
    /// The route template (`/api/2.0/mlflow/runs/create`), the path of a
    /// request that matched no route, or `*` for an aggregate.
    pub route: String,
    /// What the request named (`run:1f2e…`, `registered_model:churn/3`), when known.
    pub resource: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The request's `x-request-id` (the first one's, for an aggregate).
    pub request_id: Option<String>,
    /// How many requests the row stands for: 1, or the size of an aggregate
    /// of one source's anonymous denials within one minute.
    pub count: i64,
    /// What the row records beyond its request, when it is an action the
    /// log names: `login`, `logout`, `token.create`, `token.revoke`,
    /// `permission.grant`, `role.assign`, … (`resource` then names what it
    /// acted on). `None` for a plain request; left out of the hashed JSON
    /// then, so rows from before it existed keep their hashes.
    pub action: Option<String>,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The position in the chain: assigned in commit order, increasing, with
    /// gaps where an append rolled back.
    pub seq: i64,
    pub entry: NewAuditRow,
    /// The hash of the row before (or of the checkpoint); `None` until sealed.
    pub prev_hash: Option<String>,
    /// SHA-256(`prev_hash` ‖ canonical JSON), hex; `None` until sealed.
    pub hash: Option<String>,
}

/// Where a pruned chain starts: the last pruned row's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    /// When the prune happened.
    pub time_ms: i64,
}

/// Why a row breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Its fields no longer match its hash while it still links to the row
    /// before it: edited in place.
    Edited,
    /// Neither its hash nor its link match: moved here from elsewhere in the
    /// chain (reordered, renumbered) or replaced.
    Moved,
    /// The row after it links to the row before it: it was inserted.
    Inserted,
    /// It does not link to the row before it (`after`, or the chain's
    /// start): rows between them were deleted, or the row before was edited
    /// and re-hashed. `missing` counts the sequence numbers between them: a
    /// gap alone proves nothing (rolled-back appends leave gaps too), only
    /// the broken link does.
    Unlinked { after: Option<i64>, missing: i64 },
    /// It has no hash but a later row has one: inserted unsealed, or its
    /// hash removed.
    HashRemoved { sealed_after: i64 },
    /// It lies at or before the checkpoint the chain starts from.
    BeforeCheckpoint { checkpoint: i64 },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Edited => write!(f, "edited: its fields do not match its hash"),
            Break::Moved => write!(
                f,
                "moved or replaced: neither its hash nor its link to the row before match"
            ),
            Break::Inserted => write!(f, "inserted: the row after it links to the row before it"),
            Break::Unlinked { after, missing } => {
                let before = match after {
                    Some(s) => format!("row {s}"),
                    None => "the start of the chain".to_string(),
                };
                if *missing > 0 {
                    write!(
                        f,
                        "does not link to {before}: rows between them were deleted \
                         ({missing} sequence numbers missing), or {before} was edited and re-hashed"
                    )
                } else {
                    write!(
                        f,
                        "does not link to {before}: {before} was edited and re-hashed, or this row \
                         replaced (no sequence number is missing between them)"
                    )
                }
            }
            Break::HashRemoved { sealed_after } => write!(
                f,
                "has no hash while row {sealed_after} after it is sealed: inserted, or its hash removed"
            ),
            Break::BeforeCheckpoint { checkpoint } => write!(
                f,
                "lies at or before the checkpoint at row {checkpoint} the chain starts from"
            ),
        }
    }
}

/// The outcome of recomputing the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Rows in the table.
    pub rows: u64,
    /// Rows with hashes.
    pub sealed: u64,
    /// Rows after the last sealed one, waiting for the sealer.
    pub unsealed_tail: u64,
    /// The first row that breaks the chain, and why.
    pub first_bad: Option<(i64, Break)>,
    /// The last sealed row's sequence number and hash: what an outside copy
    /// anchors (deleting rows from the end of the chain shows only against it).
    pub head: Option<(i64, String)>,
    /// Where the chain starts after a prune.
    pub checkpoint: Option<AuditCheckpoint>,
}

impl AuditReport {
    /// Whether the chain is whole.
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}
