//! The audit log ([`AuditStore`]): appends, the sealer that chains the
//! unsealed tail, and the verifier that recomputes the chain.
//!
//! Sequence numbers follow commit order: SQLite has one writer at a time,
//! and on PostgreSQL the sealer first takes `SHARE ROW EXCLUSIVE` on the
//! table. That lock conflicts with the `ROW EXCLUSIVE` every appending
//! transaction holds from its `INSERT` (where it draws its numbers) to its
//! end, and with itself: the sealer waits until every append in flight has
//! committed or rolled back, so a number missing then stays missing (a
//! rolled-back append's gap, skipped), and two servers sealing at once take
//! turns. Appenders never wait on each other, only briefly on a sealer.

use serde::Serialize;
use sextant_core::audit::{
    AuditCheckpoint, AuditReport, AuditRow, Break, GENESIS_HASH, NewAuditRow,
};
use sha2::{Digest, Sha256};

use super::{SqlStore, now_ms};
use crate::backend::{Backend, Conn, Dialect, Row, SqlValue};
use crate::{AuditStore, StoreError};

const COLUMNS: &str = "seq, time_ms, actor, auth_method, source, method, route, resource, \
                       status, request_id, count, prev_hash, hash, action";
/// Rows per multi-row statement: 12 parameters each, well under SQLite's limit.
const ROWS_PER_STATEMENT: usize = 500;
/// Rows read per verification page (each page its own read transaction).
const VERIFY_PAGE: u64 = 10_000;

/// The canonical JSON a row's hash covers: keys in sorted order (the field
/// order here), no whitespace, `null` for absent values — except `action`,
/// added by migration 8 and left out when absent, so every row written
/// before keeps its hash.
#[derive(Serialize)]
struct Canonical<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    actor: Option<&'a str>,
    auth_method: Option<&'a str>,
    count: i64,
    method: &'a str,
    request_id: Option<&'a str>,
    resource: Option<&'a str>,
    route: &'a str,
    seq: i64,
    source: Option<&'a str>,
    status: u16,
    time_ms: i64,
}

/// The hash of the row `seq` holding `e`, chained after `prev_hash`: what
/// the sealer stores and the verifier recomputes.
pub fn row_hash(prev_hash: &str, seq: i64, e: &NewAuditRow) -> String {
    let canonical = Canonical {
        action: e.action.as_deref(),
        actor: e.actor.as_deref(),
        auth_method: e.auth_method.as_deref(),
        count: e.count,
        method: &e.method,
        request_id: e.request_id.as_deref(),
        resource: e.resource.as_deref(),
        route: &e.route,
        seq,
        source: e.source.as_deref(),
        status: e.status,
        time_ms: e.time_ms,
    };
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    // Serializing plain strings and integers into a Vec cannot fail.
    h.update(serde_json::to_vec(&canonical).expect("canonical audit JSON"));
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn decode(row: Row) -> Result<AuditRow, StoreError> {
    let [
        seq,
        time_ms,
        actor,
        auth_method,
        source,
        method,
        route,
        resource,
        status,
        request_id,
        count,
        prev_hash,
        hash,
        action,
    ]: [SqlValue; 14] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short audit row".into()))?;
    let status = status.int()?;
    Ok(AuditRow {
        seq: seq.int()?,
        entry: NewAuditRow {
            time_ms: time_ms.int()?,
            actor: actor.opt_text()?,
            auth_method: auth_method.opt_text()?,
            source: source.opt_text()?,
            method: method.text()?,
            route: route.text()?,
            resource: resource.opt_text()?,
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("audit status {status}")))?,
            request_id: request_id.opt_text()?,
            count: count.int()?,
            action: action.opt_text()?,
        },
        prev_hash: prev_hash.opt_text()?,
        hash: hash.opt_text()?,
    })
}

fn append(c: &mut dyn Conn, rows: &[NewAuditRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut params = Vec::with_capacity(chunk.len() * 12);
        for r in chunk {
            params.extend([
                r.time_ms.into(),
                r.actor.as_deref().into(),
                r.auth_method.as_deref().into(),
                r.source.as_deref().into(),
                r.method.as_str().into(),
                r.route.as_str().into(),
                r.resource.as_deref().into(),
                i64::from(r.status).into(),
                r.request_id.as_deref().into(),
                r.count.into(),
                r.action.as_deref().into(),
            ]);
            params.push(SqlValue::Null);
        }
        c.exec(
            &format!(
                "INSERT INTO audit_log (time_ms, actor, auth_method, source, method, route, \
                 resource, status, request_id, count, action, prev_hash) VALUES {values}"
            ),
            &params,
        )?;
    }
    Ok(())
}

fn checkpoint(c: &mut dyn Conn) -> Result<Option<AuditCheckpoint>, StoreError> {
    let rows = c.query(
        "SELECT seq, hash, time_ms FROM audit_checkpoint WHERE id = 1",
        &[],
    )?;
    rows.into_iter()
        .next()
        .map(|r| {
            let [seq, hash, time_ms]: [SqlValue; 3] = r
                .try_into()
                .map_err(|_| StoreError::Corrupt("short audit checkpoint".into()))?;
            Ok(AuditCheckpoint {
                seq: seq.int()?,
                hash: hash.text()?,
                time_ms: time_ms.int()?,
            })
        })
        .transpose()
}

/// The last sealed row (or the checkpoint): what the next row chains after.
fn head(c: &mut dyn Conn) -> Result<Option<(i64, String)>, StoreError> {
    let rows = c.query(
        "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    if let Some([seq, hash]) = rows
        .into_iter()
        .next()
        .and_then(|r| <[SqlValue; 2]>::try_from(r).ok())
    {
        return Ok(Some((seq.int()?, hash.text()?)));
    }
    Ok(checkpoint(c)?.map(|cp| (cp.seq, cp.hash)))
}

/// Takes the sealer's turn (see the module documentation); on SQLite the
/// write transaction already holds the database's one write lock.
fn lock_chain(c: &mut dyn Conn) -> Result<(), StoreError> {
    if c.dialect() == Dialect::Postgres {
        c.exec("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE", &[])?;
    }
    Ok(())
}

fn seal(c: &mut dyn Conn, batch: u64) -> Result<u64, StoreError> {
    lock_chain(c)?;
    let (after, mut prev) = head(c)?.unwrap_or((i64::MIN, GENESIS_HASH.to_string()));
    let rows = c.query(
        &format!(
            "SELECT {COLUMNS} FROM audit_log WHERE hash IS NULL AND seq > ? ORDER BY seq LIMIT ?"
        ),
        &[after.into(), (batch.min(i64::MAX as u64) as i64).into()],
    )?;
    let mut sealed = Vec::with_capacity(rows.len());
    for row in rows {
        let r = decode(row)?;
        let hash = row_hash(&prev, r.seq, &r.entry);
        sealed.push((r.seq, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    match c.dialect() {
        // In-process: one prepared statement per row, each a rowid lookup
        // (SQLite would plan a joined UPDATE … FROM as a scan of the table).
        Dialect::Sqlite => {
            let rows: Vec<Vec<SqlValue>> = sealed
                .iter()
                .map(|(seq, p, h)| vec![p.into(), h.into(), (*seq).into()])
                .collect();
            c.exec_many(
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?",
                &rows,
            )?;
        }
        // One round trip per chunk rather than per row.
        Dialect::Postgres => {
            for chunk in sealed.chunks(ROWS_PER_STATEMENT) {
                let values = vec!["(CAST(? AS BIGINT), ?, ?)"; chunk.len()].join(", ");
                let params: Vec<SqlValue> = chunk
                    .iter()
                    .flat_map(|(seq, p, h)| [(*seq).into(), p.into(), h.into()])
                    .collect();
                c.exec(
                    &format!(
                        "UPDATE audit_log SET prev_hash = v.column2, hash = v.column3 \
                         FROM (VALUES {values}) AS v WHERE audit_log.seq = v.column1"
                    ),
                    &params,
                )?;
            }
        }
    }
    Ok(sealed.len() as u64)
}

fn rows_after(
    c: &mut dyn Conn,
    since_ms: i64,
    after: i64,
    limit: u64,
) -> Result<Vec<AuditRow>, StoreError> {
    c.query(
        &format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > ? AND time_ms >= ? ORDER BY seq LIMIT ?"
        ),
        &[
            after.into(),
            since_ms.into(),
            (limit.min(i64::MAX as u64) as i64).into(),
        ],
    )?
    .into_iter()
    .map(decode)
    .collect()
}

fn prune(c: &mut dyn Conn, before: i64) -> Result<u64, StoreError> {
    lock_chain(c)?;
    let last = c.query(
        "SELECT seq, hash FROM audit_log WHERE seq < ? AND hash IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
        &[before.into()],
    )?;
    let Some([seq, hash]) = last
        .into_iter()
        .next()
        .and_then(|r| <[SqlValue; 2]>::try_from(r).ok())
    else {
        return Ok(0);
    };
    let (seq, hash) = (seq.int()?, hash.text()?);
    let gone = c.exec("DELETE FROM audit_log WHERE seq <= ?", &[seq.into()])?;
    c.exec(
        "INSERT INTO audit_checkpoint (id, seq, hash, time_ms) VALUES (1, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         time_ms = excluded.time_ms",
        &[seq.into(), hash.into(), now_ms().into()],
    )?;
    Ok(gone)
}

/// What the verifier knows of the chain so far.
struct Chain {
    report: AuditReport,
    /// The sequence number and hash the next row must link to.
    prev: Option<(i64, String)>,
    /// The hash before that: a row linking to it skips an inserted one.
    prev_prev: Option<String>,
    /// Rows seen since the last sealed one.
    since_sealed: u64,
}

impl Chain {
    fn start(checkpoint: Option<AuditCheckpoint>) -> Self {
        Chain {
            prev: checkpoint.as_ref().map(|c| (c.seq, c.hash.clone())),
            report: AuditReport {
                checkpoint,
                ..AuditReport::default()
            },
            prev_prev: None,
            since_sealed: 0,
        }
    }

    fn bad(&mut self, seq: i64, why: Break) {
        if self.report.first_bad.is_none() {
            self.report.first_bad = Some((seq, why));
        }
    }

    /// Checks one sealed row against the chain so far, then moves past it.
    fn sealed(&mut self, r: &AuditRow, prev_hash: Option<&str>, hash: &str) {
        self.report.sealed += 1;
        self.since_sealed = 0;
        self.report.head = Some((r.seq, hash.to_string()));
        if self.report.first_bad.is_none() {
            let expected = self.prev.as_ref().map_or(GENESIS_HASH, |(_, h)| h.as_str());
            let self_ok = prev_hash.is_some_and(|p| row_hash(p, r.seq, &r.entry) == hash);
            let link_ok = prev_hash == Some(expected);
            if let Some(cp) = &self.report.checkpoint
                && r.seq <= cp.seq
            {
                self.bad(r.seq, Break::BeforeCheckpoint { checkpoint: cp.seq });
            } else if !self_ok && link_ok {
                self.bad(r.seq, Break::Edited);
            } else if !self_ok {
                self.bad(r.seq, Break::Moved);
            } else if !link_ok {
                match &self.prev {
                    Some((inserted, _)) if prev_hash == self.prev_prev.as_deref() => {
                        self.bad(*inserted, Break::Inserted);
                    }
                    _ => {
                        let after = self.prev.as_ref().map(|(s, _)| *s);
                        let missing = (r.seq - after.unwrap_or(0) - 1).max(0);
                        self.bad(r.seq, Break::Unlinked { after, missing });
                    }
                }
            }
        }
        self.prev_prev = self.prev.take().map(|(_, h)| h);
        self.prev = Some((r.seq, hash.to_string()));
    }
}

/// Recomputes the chain in pages, each its own read transaction. A sealer
/// running meanwhile only extends the sealed run past where it was, so
/// pages already checked stay true; where the scan meets an unsealed row,
/// one statement says whether the rest is an unsealed tail.
fn verify<B: Backend>(db: &B) -> Result<AuditReport, StoreError> {
    let mut chain = Chain::start(db.read(checkpoint)?);
    let mut after = i64::MIN;
    'pages: loop {
        let page = db.read(|c| rows_after(c, i64::MIN, after, VERIFY_PAGE))?;
        if page.is_empty() {
            break;
        }
        for r in page {
            chain.report.rows += 1;
            match (&r.prev_hash, &r.hash) {
                (p, Some(h)) => chain.sealed(&r, p.as_deref(), h),
                (_, None) if chain.report.first_bad.is_some() => chain.since_sealed += 1,
                (_, None) => {
                    let (rest, first_sealed) = db.read(|c| tail_from(c, r.seq))?;
                    match first_sealed {
                        // Sealed since the page was read: read on from it.
                        Some(s) if s == r.seq => {
                            chain.report.rows -= 1;
                            continue 'pages;
                        }
                        Some(s) => {
                            chain.bad(r.seq, Break::HashRemoved { sealed_after: s });
                            chain.since_sealed += 1;
                        }
                        None => {
                            chain.report.rows += rest - 1;
                            chain.since_sealed += rest;
                            break 'pages;
                        }
                    }
                }
            }
            after = r.seq;
        }
    }
    chain.report.unsealed_tail = chain.since_sealed;
    Ok(chain.report)
}

/// How many rows lie from `seq` on, and the first sealed one among them.
fn tail_from(c: &mut dyn Conn, seq: i64) -> Result<(u64, Option<i64>), StoreError> {
    let rows = c.query(
        "SELECT COUNT(*), MIN(CASE WHEN hash IS NOT NULL THEN seq END) FROM audit_log \
         WHERE seq >= ?",
        &[seq.into()],
    )?;
    let [n, first]: [SqlValue; 2] = rows
        .into_iter()
        .next()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("empty count".into()))?;
    Ok((n.int()?.max(0) as u64, first.opt_int()?))
}

impl<B: Backend> AuditStore for SqlStore<B> {
    fn append(&self, rows: &[NewAuditRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.db.write(|c| append(c, rows))
    }
    fn append_sealed(&self, rows: &[NewAuditRow], batch: u64) -> Result<u64, StoreError> {
        self.db.write(|c| {
            // The turn first: appending first and then waiting for it would
            // deadlock against another server doing the same.
            lock_chain(c)?;
            append(c, rows)?;
            seal(c, batch)
        })
    }
    fn seal(&self, batch: u64) -> Result<u64, StoreError> {
        self.db.write(|c| seal(c, batch))
    }
    fn verify(&self) -> Result<AuditReport, StoreError> {
        verify(&self.db)
    }
    fn tail(&self, after: i64, limit: u64) -> Result<Vec<AuditRow>, StoreError> {
        self.db.read(|c| rows_after(c, i64::MIN, after, limit))
    }
    fn export(&self, since_ms: i64, after: i64, limit: u64) -> Result<Vec<AuditRow>, StoreError> {
        self.db.read(|c| rows_after(c, since_ms, after, limit))
    }
    fn prune(&self, before: i64) -> Result<u64, StoreError> {
        self.db.write(|c| prune(c, before))
    }
    fn head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.db.read(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_json_has_sorted_keys_and_nulls() {
        let e = NewAuditRow {
            time_ms: 5,
            method: "POST".into(),
            route: "/r".into(),
            status: 200,
            count: 1,
            actor: Some("ada \"x\"".into()),
            ..NewAuditRow::default()
        };
        let json = serde_json::to_string(&Canonical {
            action: None,
            actor: e.actor.as_deref(),
            auth_method: None,
            count: 1,
            method: "POST",
            request_id: None,
            resource: None,
            route: "/r",
            seq: 7,
            source: None,
            status: 200,
            time_ms: 5,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"actor":"ada \"x\"","auth_method":null,"count":1,"method":"POST","request_id":null,"resource":null,"route":"/r","seq":7,"source":null,"status":200,"time_ms":5}"#
        );
        // SHA-256 of the genesis hash followed by that JSON, as any tool computes it.
        let mut h = Sha256::new();
        h.update(GENESIS_HASH.as_bytes());
        h.update(json.as_bytes());
        assert_eq!(row_hash(GENESIS_HASH, 7, &e), hex(&h.finalize()));
        assert_eq!(row_hash(GENESIS_HASH, 7, &e).len(), 64);
        // An action comes first and counts; without one the JSON is as it
        // was before migration 8.
        let acted = NewAuditRow {
            action: Some("login".into()),
            ..e.clone()
        };
        let json = serde_json::to_string(&Canonical {
            action: Some("login"),
            actor: e.actor.as_deref(),
            auth_method: None,
            count: 1,
            method: "POST",
            request_id: None,
            resource: None,
            route: "/r",
            seq: 7,
            source: None,
            status: 200,
            time_ms: 5,
        })
        .unwrap();
        assert!(json.starts_with(r#"{"action":"login","actor":"#), "{json}");
        let mut h = Sha256::new();
        h.update(GENESIS_HASH.as_bytes());
        h.update(json.as_bytes());
        assert_eq!(row_hash(GENESIS_HASH, 7, &acted), hex(&h.finalize()));
        assert_ne!(
            row_hash(GENESIS_HASH, 7, &acted),
            row_hash(GENESIS_HASH, 7, &e)
        );
    }
}
