//! Webhooks, their delivery outbox and the per-attempt delivery log.
//!
//! Delivery state lives here so that it survives restarts: the fan-out
//! advances `webhook_cursor` and inserts the outbox rows it decided on in one
//! transaction (a compare-and-set on the cursor, so two servers never fan
//! out the same events twice); senders claim due rows by pushing their
//! `next_attempt_at` past a lease, so a crash mid-send means a retry, never
//! a loss.

use sextant_core::Error;
use sextant_core::entities::Page;
use sextant_core::webhooks::{
    DeliveryAttempt, DeliveryState, EventFilter, NewDelivery, NewWebhook, PendingDelivery, Webhook,
    WebhookStatus, WebhookUpdate, validate_webhook_events, validate_webhook_name,
};

use super::experiments::page_rest;
use super::{events, now_ms};
use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue};

const COLUMNS: &str = "webhook_id, name, description, url, secret, status, creation_timestamp, \
                       last_updated_timestamp, start_event_id";

fn status(s: &str) -> Result<WebhookStatus, StoreError> {
    WebhookStatus::parse(s).map_err(|_| StoreError::Corrupt(format!("webhook status {s}")))
}

fn decode(row: Row) -> Result<Webhook, StoreError> {
    let [
        id,
        name,
        description,
        url,
        secret,
        st,
        created,
        updated,
        start,
    ]: [SqlValue; 9] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short webhook row".into()))?;
    Ok(Webhook {
        webhook_id: id.text()?,
        name: name.text()?,
        description: description.opt_text()?,
        url: url.text()?,
        events: Vec::new(),
        status: status(&st.text()?)?,
        secret: secret.opt_text()?,
        creation_timestamp: created.int()?,
        last_updated_timestamp: updated.int()?,
        start_event_id: start.int()?,
    })
}

fn attach_events(c: &mut dyn Conn, hooks: &mut [Webhook]) -> Result<(), StoreError> {
    for h in hooks {
        let rows = c.query(
            "SELECT event FROM webhook_events WHERE webhook_id = ? ORDER BY event",
            &[h.webhook_id.as_str().into()],
        )?;
        h.events = rows
            .into_iter()
            .map(|r| {
                let s = r.into_iter().next().map(SqlValue::text).transpose()?;
                s.as_deref()
                    .and_then(EventFilter::from_stored)
                    .ok_or_else(|| StoreError::Corrupt("webhook event".into()))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// `Some(None)` for an empty string: the update clears the field.
fn cleared(v: Option<&str>) -> Option<Option<&str>> {
    v.map(|v| Some(v).filter(|v| !v.is_empty()))
}

fn insert_events(c: &mut dyn Conn, id: &str, events: &[EventFilter]) -> Result<(), StoreError> {
    let mut stored: Vec<String> = events.iter().map(EventFilter::to_stored).collect();
    stored.sort();
    stored.dedup();
    let rows: Vec<Vec<SqlValue>> = stored
        .into_iter()
        .map(|e| vec![id.into(), e.into()])
        .collect();
    c.exec_many(
        "INSERT INTO webhook_events (webhook_id, event) VALUES (?, ?)",
        &rows,
    )?;
    Ok(())
}

pub fn create(c: &mut dyn Conn, new: &NewWebhook) -> Result<Webhook, StoreError> {
    validate_webhook_name(&new.name)?;
    validate_webhook_events(&new.events)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let start = events::last_id(c)?;
    c.exec(
        &format!("INSERT INTO webhooks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            id.as_str().into(),
            new.name.as_str().into(),
            new.description.as_deref().filter(|d| !d.is_empty()).into(),
            new.url.as_str().into(),
            new.secret.as_deref().filter(|s| !s.is_empty()).into(),
            new.status.as_str().into(),
            now.into(),
            now.into(),
            start.into(),
        ],
    )?;
    insert_events(c, &id, &new.events)?;
    get(c, &id)
}

pub fn get(c: &mut dyn Conn, id: &str) -> Result<Webhook, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {COLUMNS} FROM webhooks WHERE webhook_id = ? AND deleted_timestamp IS NULL"
        ),
        &[id.into()],
    )?;
    let mut hooks = rows
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    attach_events(c, &mut hooks)?;
    hooks
        .pop()
        .ok_or_else(|| Error::not_found(format!("Webhook with ID {id} not found.")).into())
}

/// Live webhooks, newest first.
pub fn list(c: &mut dyn Conn, max_results: u64, offset: u64) -> Result<Page<Webhook>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {COLUMNS} FROM webhooks WHERE deleted_timestamp IS NULL \
             ORDER BY creation_timestamp DESC, seq DESC LIMIT ? OFFSET ?"
        ),
        &[
            i64::try_from(max_results + 1).unwrap_or(i64::MAX).into(),
            i64::try_from(offset).unwrap_or(i64::MAX).into(),
        ],
    )?;
    let mut items = rows
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let next_offset = page_rest(&mut items, max_results, offset);
    attach_events(c, &mut items)?;
    Ok(Page { items, next_offset })
}

/// Live, active webhooks (the fan-out's subscribers).
pub fn active(c: &mut dyn Conn) -> Result<Vec<Webhook>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT {COLUMNS} FROM webhooks WHERE deleted_timestamp IS NULL AND status = ? \
             ORDER BY creation_timestamp, seq"
        ),
        &[WebhookStatus::Active.as_str().into()],
    )?;
    let mut hooks = rows
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    attach_events(c, &mut hooks)?;
    Ok(hooks)
}

pub fn update(c: &mut dyn Conn, id: &str, u: &WebhookUpdate) -> Result<Webhook, StoreError> {
    let before = get(c, id)?;
    if let Some(name) = &u.name {
        validate_webhook_name(name)?;
    }
    if let Some(events) = &u.events {
        validate_webhook_events(events)?;
        c.exec(
            "DELETE FROM webhook_events WHERE webhook_id = ?",
            &[id.into()],
        )?;
        insert_events(c, id, events)?;
    }
    let mut sets = vec!["last_updated_timestamp = ?".to_string()];
    let mut params: Vec<SqlValue> = vec![now_ms().into()];
    // An empty description or secret clears it.
    for (column, value) in [
        ("name", u.name.as_deref().map(Some)),
        ("url", u.url.as_deref().map(Some)),
        ("status", u.status.map(|s| Some(s.as_str()))),
        ("description", cleared(u.description.as_deref())),
        ("secret", cleared(u.secret.as_deref())),
    ] {
        if let Some(v) = value {
            sets.push(format!("{column} = ?"));
            params.push(v.into());
        }
    }
    // Turned on again, a webhook gets the events from now on, as a new one
    // does: not those of the time it was off.
    if u.status == Some(WebhookStatus::Active) && before.status != WebhookStatus::Active {
        sets.push("start_event_id = ?".into());
        params.push(events::last_id(c)?.into());
    }
    params.push(id.into());
    c.exec(
        &format!(
            "UPDATE webhooks SET {} WHERE webhook_id = ?",
            sets.join(", ")
        ),
        &params,
    )?;
    get(c, id)
}

/// Soft-deletes a webhook, dropping its secret (nothing signs with it
/// again, and no retired key should still open it), and cancels its
/// undelivered events.
pub fn delete(c: &mut dyn Conn, id: &str) -> Result<(), StoreError> {
    get(c, id)?;
    let now = now_ms();
    c.exec(
        "UPDATE webhooks SET deleted_timestamp = ?, last_updated_timestamp = ?, secret = NULL \
         WHERE webhook_id = ?",
        &[now.into(), now.into(), id.into()],
    )?;
    c.exec(
        "UPDATE webhook_outbox SET state = 'cancelled' WHERE webhook_id = ? AND state = 'pending'",
        &[id.into()],
    )?;
    Ok(())
}

/// Replaces a live webhook's stored secret `from` by `to` (the same
/// secret sealed under another key), unless it changed since it was read:
/// whether it did. Neither the webhook's update time nor the events feed
/// moves: what the webhook does is unchanged.
pub fn reseal_secret(c: &mut dyn Conn, id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
    let n = c.exec(
        "UPDATE webhooks SET secret = ? WHERE webhook_id = ? AND secret = ? \
         AND deleted_timestamp IS NULL",
        &[to.into(), id.into(), from.into()],
    )?;
    Ok(n == 1)
}

/// The id of the last event the fan-out has handled.
pub fn cursor(c: &mut dyn Conn) -> Result<i64, StoreError> {
    let rows = c.query("SELECT last_event_id FROM webhook_cursor WHERE id = 1", &[])?;
    match rows.first().and_then(|r| r.first()) {
        Some(v) => v.int(),
        None => Ok(0),
    }
}

/// Moves the cursor from `from` to `to` and queues `deliveries`, due at `now`
/// (the delivery worker's clock, which its claims read); returns false,
/// changing nothing, when another fan-out moved the cursor first.
pub fn enqueue_at(
    c: &mut dyn Conn,
    from: i64,
    to: i64,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<bool, StoreError> {
    c.exec(
        "INSERT INTO webhook_cursor (id, last_event_id) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        &[],
    )?;
    let moved = c.exec(
        "UPDATE webhook_cursor SET last_event_id = ? WHERE id = 1 AND last_event_id = ?",
        &[to.into(), from.into()],
    )?;
    if moved == 0 {
        return Ok(false);
    }
    let rows: Vec<Vec<SqlValue>> = deliveries
        .iter()
        .map(|d| {
            vec![
                uuid::Uuid::new_v4().to_string().into(),
                d.webhook_id.as_str().into(),
                d.event_id.into(),
                d.event.as_str().into(),
                d.body.as_str().into(),
                now.into(),
                now.into(),
            ]
        })
        .collect();
    c.exec_many(
        "INSERT INTO webhook_outbox (delivery_id, webhook_id, event_id, event, body, state, \
         attempts, next_attempt_at, created_time) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) \
         ON CONFLICT (webhook_id, event_id) DO NOTHING",
        &rows,
    )?;
    Ok(true)
}

/// Claims up to `limit` deliveries due at `now` by moving their next attempt
/// `lease_ms` ahead; a sender that dies leaves them to be retried then.
pub fn claim(
    c: &mut dyn Conn,
    now: i64,
    lease_ms: i64,
    limit: u64,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let rows = c.query(
        "SELECT o.id, o.delivery_id, o.webhook_id, o.event_id, o.event, o.body, w.url, w.secret, \
         o.attempts, o.next_attempt_at FROM webhook_outbox o \
         JOIN webhooks w ON w.webhook_id = o.webhook_id \
         WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND w.deleted_timestamp IS NULL \
         AND w.status = ? ORDER BY o.next_attempt_at, o.id LIMIT ?",
        &[
            now.into(),
            WebhookStatus::Active.as_str().into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let [
            id,
            delivery_id,
            webhook_id,
            event_id,
            event,
            body,
            url,
            secret,
            attempts,
            next,
        ]: [SqlValue; 10] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("short outbox row".into()))?;
        let id = id.int()?;
        let claimed = c.exec(
            "UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ?",
            &[(now + lease_ms).into(), id.into(), next.clone()],
        )?;
        if claimed == 0 {
            continue;
        }
        out.push(PendingDelivery {
            id,
            delivery_id: delivery_id.text()?,
            webhook_id: webhook_id.text()?,
            event_id: event_id.int()?,
            event: event.text()?,
            body: body.text()?,
            url: url.text()?,
            secret: secret.opt_text()?,
            attempts: attempts.int()?,
            next_attempt_at: now + lease_ms,
        });
    }
    Ok(out)
}

/// Logs an attempt and moves its delivery to `state`.
pub fn record(
    c: &mut dyn Conn,
    outbox_id: i64,
    a: &DeliveryAttempt,
    state: DeliveryState,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, delivery_id, attempt, time, \
         status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            a.webhook_id.as_str().into(),
            a.event_id.into(),
            a.delivery_id.as_str().into(),
            a.attempt.into(),
            a.time.into(),
            a.status_code.into(),
            a.error.as_deref().into(),
            a.duration_ms.into(),
        ],
    )?;
    let (state, next) = match state {
        DeliveryState::Pending { next_attempt_at } => ("pending", next_attempt_at),
        DeliveryState::Delivered => ("delivered", a.time),
        DeliveryState::Failed => ("failed", a.time),
    };
    c.exec(
        "UPDATE webhook_outbox SET state = ?, attempts = ?, next_attempt_at = ? \
         WHERE id = ? AND state = 'pending'",
        &[
            state.into(),
            a.attempt.into(),
            next.into(),
            outbox_id.into(),
        ],
    )?;
    Ok(())
}

/// The newest `limit` attempts to a webhook, oldest first; deleted webhooks
/// keep their log.
pub fn log(
    c: &mut dyn Conn,
    webhook_id: &str,
    limit: u64,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    let rows = c.query(
        "SELECT webhook_id, event_id, delivery_id, attempt, time, status_code, error, duration_ms \
         FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
        &[
            webhook_id.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    )?;
    let mut out = rows
        .into_iter()
        .map(|row| {
            let [w, e, d, attempt, time, code, error, duration]: [SqlValue; 8] = row
                .try_into()
                .map_err(|_| StoreError::Corrupt("short delivery row".into()))?;
            Ok(DeliveryAttempt {
                webhook_id: w.text()?,
                event_id: e.int()?,
                delivery_id: d.text()?,
                attempt: attempt.int()?,
                time: time.int()?,
                status_code: code.opt_int()?,
                error: error.opt_text()?,
                duration_ms: duration.int()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.reverse();
    Ok(out)
}
