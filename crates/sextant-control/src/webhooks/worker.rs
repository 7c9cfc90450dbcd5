//! The delivery worker: fan-out of new events to the outbox, then attempts
//! at the due deliveries, then a wait for the next change, retry or poll.

use std::collections::HashMap;
use std::time::Duration;

use sextant_core::registry::Event;
use sextant_core::webhooks::{
    DeliveryAttempt, DeliveryState, EventFilter, NewDelivery, PendingDelivery, Webhook,
    mlflow_event_for,
};
use sextant_store::MetaStore;

use super::payload;
use super::send::Outcome;
use super::{WebhookDeps, WebhookError, Webhooks};

/// Events read per fan-out transaction.
const FANOUT_BATCH: u64 = 500;
/// Deliveries claimed (and attempted concurrently) at a time.
const CLAIM_BATCH: u64 = 32;
/// How long a claimed delivery stays with its sender beyond the request
/// timeout before another sender may retry it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Starts the worker on the current runtime.
pub fn spawn(deps: WebhookDeps, hooks: Webhooks) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let changes = deps.changes.clone();
            let notified = changes.notified();
            tokio::pin!(notified);
            // Registered before the work, so a change during it is not missed.
            notified.as_mut().enable();
            let wait = match run_once(&deps, &hooks).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery pass failed");
                    hooks.settings.poll_interval
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

/// One pass: fans out every new event, then attempts every due delivery.
/// Returns how long the worker may sleep before the next retry is due.
pub async fn run_once(deps: &WebhookDeps, hooks: &Webhooks) -> Result<Duration, WebhookError> {
    while fan_out(deps).await? {}
    let settings = hooks.settings.clone();
    let lease = i64::try_from((settings.timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX);
    let mut wake = settings.poll_interval;
    loop {
        let now = deps.clock.now_ms();
        let due = sextant_store::call(&deps.store, move |s| {
            s.claim_webhook_deliveries(now, lease, CLAIM_BATCH)
        })
        .await?;
        if due.is_empty() {
            return Ok(wake);
        }
        let attempts = due.into_iter().map(|d| attempt(deps, hooks, d));
        for retry_in in futures::future::join_all(attempts).await {
            if let Some(d) = retry_in? {
                wake = wake.min(d);
            }
        }
    }
}

/// Fans out one batch of new events; true when there may be more.
///
/// With no active webhook there is nothing to fan out and the cursor is left
/// where it is: every event wakes this worker, and moving the cursor is a
/// commit. A webhook only ever gets events after the one current when it was
/// created (`start_event_id`), so reading resumes from the oldest such start
/// of the active webhooks when that is past the cursor.
async fn fan_out(deps: &WebhookDeps) -> Result<bool, WebhookError> {
    // Due from now on the clock the claims in `run_once` read.
    let now = deps.clock.now_ms();
    let more = sextant_store::call(&deps.store, move |s| {
        let hooks = s.active_webhooks()?;
        let Some(floor) = hooks.iter().map(|h| h.start_event_id).min() else {
            return Ok(false);
        };
        let cursor = s.webhook_cursor()?;
        let events = s.events_after(cursor.max(floor), &[], FANOUT_BATCH)?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(false);
        };
        let deliveries = plan(s, &hooks, &events);
        let moved = s.enqueue_webhook_deliveries_at(cursor, last, &deliveries, now)?;
        Ok(!moved || events.len() as u64 == FANOUT_BATCH)
    })
    .await?;
    Ok(more)
}

/// The deliveries of `events` to `hooks`: at most one per webhook and event,
/// in MLflow's format when the webhook subscribes to the event's MLflow name.
fn plan(store: &dyn MetaStore, hooks: &[Webhook], events: &[Event]) -> Vec<NewDelivery> {
    let mut prompts: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let mut mlflow_name = None;
        let mut mlflow_body: Option<String> = None;
        for h in hooks.iter().filter(|h| e.id > h.start_event_id) {
            let wants_mlflow = h.events.iter().any(|f| matches!(f, EventFilter::Mlflow(_)));
            if wants_mlflow && mlflow_name.is_none() {
                let prompt = payload::model_name(e).is_some_and(|name| {
                    *prompts
                        .entry(name.clone())
                        .or_insert_with(|| payload::is_prompt(store, &name))
                });
                mlflow_name = Some(mlflow_event_for(&e.kind, prompt));
            }
            let named = mlflow_name
                .flatten()
                .filter(|n| h.events.contains(&EventFilter::Mlflow((*n).to_string())));
            let (event, body) = if let Some(name) = named {
                let body = mlflow_body
                    .get_or_insert_with(|| {
                        payload::mlflow_body(name, payload::mlflow_data(store, name, e), e.time)
                    })
                    .clone();
                (name.to_string(), body)
            } else if h.events.iter().any(|f| f.matches_kind(&e.kind)) {
                (e.kind.clone(), payload::envelope(e))
            } else {
                continue;
            };
            out.push(NewDelivery {
                webhook_id: h.webhook_id.clone(),
                event_id: e.id,
                event,
                body,
            });
        }
    }
    out
}

/// Makes one attempt and records it; returns the wait before a retry.
async fn attempt(
    deps: &WebhookDeps,
    hooks: &Webhooks,
    d: PendingDelivery,
) -> Result<Option<Duration>, WebhookError> {
    let settings = &hooks.settings;
    let number = d.attempts + 1;
    let time = deps.clock.now_ms();
    // A secret that cannot be opened (no key, or another key) would send the
    // delivery unsigned or wrongly signed: refused, and said in the log.
    let (outcome, took) = match hooks.reveal_secret(d.secret.as_deref()) {
        Ok(secret) => {
            hooks
                .sender
                .post(
                    &d.url,
                    secret.as_deref(),
                    &d.delivery_id,
                    &d.event,
                    d.event_id,
                    &d.body,
                )
                .await
        }
        Err(e) => (Outcome::Refused(e.to_string()), Duration::ZERO),
    };
    let (status_code, error, retryable) = match &outcome {
        Outcome::Answered { status, retry, .. } => {
            let error = (!outcome.delivered()).then(|| format!("receiver answered HTTP {status}"));
            (Some(i64::from(*status)), error, *retry)
        }
        Outcome::Unreachable(e) => (None, Some(e.clone()), true),
        Outcome::Refused(e) => (None, Some(e.clone()), false),
    };
    let max = i64::from(settings.max_attempts.max(1));
    let mut retry_in = None;
    let next = if outcome.delivered() {
        DeliveryState::Delivered
    } else if retryable && number < max {
        let wait = settings.delay_after(u32::try_from(number).unwrap_or(u32::MAX));
        retry_in = Some(wait);
        DeliveryState::Pending {
            next_attempt_at: deps.clock.now_ms()
                + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
        }
    } else {
        DeliveryState::Failed
    };
    tracing::info!(
        webhook_id = %d.webhook_id,
        event_id = d.event_id,
        event = %d.event,
        attempt = number,
        status = ?status_code,
        error = ?error,
        state = ?next,
        "webhook delivery attempt"
    );
    let log = DeliveryAttempt {
        webhook_id: d.webhook_id,
        event_id: d.event_id,
        delivery_id: d.delivery_id,
        attempt: number,
        time,
        status_code,
        error,
        duration_ms: i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
    };
    let id = d.id;
    sextant_store::call(&deps.store, move |s| {
        s.record_webhook_attempt(id, &log, next)
    })
    .await?;
    Ok(retry_in)
}
