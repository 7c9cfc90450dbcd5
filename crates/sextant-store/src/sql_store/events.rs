//! The events feed: one row per lifecycle change, appended by the change's
//! own transaction, read back in id order.
//!
//! Readers page with "events after id N", which is only sound if ids become
//! visible in increasing order. SQLite has a single writer, so they do. On
//! PostgreSQL a `BIGSERIAL` is handed out at insert time and two transactions
//! may commit in the other order, so [`append`] first takes a
//! transaction-level advisory lock: ids are then allocated and committed one
//! transaction at a time. Callers append their events after their other
//! writes, so a transaction holding the lock takes no further row locks and
//! the lock cannot join a deadlock cycle.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use sextant_core::registry::Event;

use super::now_ms;
use crate::StoreError;
use crate::backend::{Conn, Dialect, Row, SqlValue};

/// Advisory-lock key that orders event ids by commit on PostgreSQL.
const EVENT_LOCK_KEY: i64 = 0x5e_47_e7_e7;

/// Events appended by this process (counted when written, whether or not
/// their transaction then commits).
static APPENDED: AtomicU64 = AtomicU64::new(0);

/// How many events this process has appended so far: a request that did
/// not move it wrote none, and nobody waiting for events needs waking.
pub fn appended() -> u64 {
    APPENDED.load(Ordering::Acquire)
}

/// Appends one event in the caller's transaction. The actor is the one the
/// store call runs as (`crate::actor`: the authenticated caller) when
/// there is one, else `actor`.
pub fn append(
    c: &mut dyn Conn,
    kind: &str,
    subject: &str,
    actor: Option<&str>,
    payload: Value,
) -> Result<(), StoreError> {
    let acting = crate::actor::current();
    let actor = acting.as_deref().or(actor);
    let mut params: Vec<SqlValue> = Vec::with_capacity(6);
    let sql = match c.dialect() {
        // The lock first, then the id: the CTE (volatile, so evaluated once
        // and before the row it feeds) takes it in the same round trip.
        Dialect::Postgres => {
            params.push(EVENT_LOCK_KEY.into());
            "WITH l AS (SELECT pg_advisory_xact_lock(?)) \
             INSERT INTO events (time, kind, subject, actor, payload) SELECT ?, ?, ?, ?, ? FROM l"
        }
        Dialect::Sqlite => {
            "INSERT INTO events (time, kind, subject, actor, payload) VALUES (?, ?, ?, ?, ?)"
        }
    };
    params.extend([
        now_ms().into(),
        kind.into(),
        subject.into(),
        actor.filter(|a| !a.is_empty()).into(),
        payload.to_string().into(),
    ]);
    c.exec(sql, &params)?;
    APPENDED.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

fn decode(row: Row) -> Result<Event, StoreError> {
    let [id, time, kind, subject, actor, payload]: [SqlValue; 6] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short event row".into()))?;
    Ok(Event {
        id: id.int()?,
        time: time.int()?,
        kind: kind.text()?,
        subject: subject.text()?,
        actor: actor.opt_text()?,
        payload: payload.text()?,
    })
}

/// Events with id above `after`, oldest first; `kinds` entries are exact
/// kinds or `prefix.*`.
pub fn after(
    c: &mut dyn Conn,
    after: i64,
    kinds: &[String],
    limit: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut params: Vec<SqlValue> = vec![after.into()];
    let mut alternatives = Vec::new();
    for kind in kinds {
        match kind.strip_suffix('*') {
            Some(prefix) => {
                // A prefix compare, not LIKE: kinds may contain `_`.
                alternatives.push("substr(kind, 1, ?) = ?".to_string());
                params.push((prefix.chars().count() as i64).into());
                params.push(prefix.into());
            }
            None => {
                alternatives.push("kind = ?".to_string());
                params.push(kind.into());
            }
        }
    }
    let filter = if alternatives.is_empty() {
        String::new()
    } else {
        format!(" AND ({})", alternatives.join(" OR "))
    };
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT id, time, kind, subject, actor, payload FROM events WHERE id > ?{filter} \
         ORDER BY id LIMIT ?"
    );
    c.query(&sql, &params)?.into_iter().map(decode).collect()
}

/// The newest event id, 0 when there is none.
pub fn last_id(c: &mut dyn Conn) -> Result<i64, StoreError> {
    let rows = c.query("SELECT COALESCE(MAX(id), 0) FROM events", &[])?;
    rows.first()
        .and_then(|r| r.first())
        .ok_or_else(|| StoreError::Corrupt("no max event id".into()))?
        .int()
}
