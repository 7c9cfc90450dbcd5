//! `WebhookService`: MLflow 3.17's webhook API, extended with Sextant event
//! kinds (`sextant_events`, or strings in `events`) and a delivery log
//! (`GET /webhooks/{id}/deliveries`). Secrets are stored encrypted under the
//! server's `SEXTANT_SECRET_KEY` (refused without one), never returned.
//!
//! MLflow-named events travel as `{entity, action}` proto enums in `events`;
//! Sextant kinds and prefixes travel as strings in `sextant_events`, a field
//! the MLflow client ignores.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::on;
use serde_json::Value;
use sextant_core::webhooks::{
    DeliveryAttempt, EventFilter, NewWebhook, Webhook, WebhookStatus, WebhookUpdate,
};

use super::wire::{Fields, Obj, Reply, empty, invalid_value, reply};
use super::{next_page_token, page_offset};
use crate::error::ApiError;
use crate::routes::{Capability as C, Resource as R, Route};
use crate::state::AppState;
use sextant_control::webhooks::{self as delivery, Outcome, Webhooks};
use sextant_core::clock::now_ms;

/// `ListWebhooks.max_results`: MLflow's default and bounds.
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1_000;
/// Attempts shown by the delivery log at most.
const MAX_LOG: i64 = 1_000;

pub(super) const ROUTES: &[Route] = &[
    Route::json(Method::POST, "/webhooks", R::Webhook, C::Create, |m| {
        on(m, create)
    }),
    Route::get("/webhooks", R::Webhook, |m| on(m, list)),
    Route::get("/webhooks/{webhook_id}", R::Webhook, |m| on(m, get_one)),
    Route::json(
        Method::PATCH,
        "/webhooks/{webhook_id}",
        R::Webhook,
        C::Edit,
        |m| on(m, update),
    ),
    Route::json(
        Method::DELETE,
        "/webhooks/{webhook_id}",
        R::Webhook,
        C::Manage,
        |m| on(m, delete),
    ),
    Route::json(
        Method::POST,
        "/webhooks/{webhook_id}/test",
        R::Webhook,
        C::Edit,
        |m| on(m, test),
    ),
    Route::get("/webhooks/{webhook_id}/deliveries", R::Webhook, |m| {
        on(m, deliveries)
    }),
];

/// The server's webhook machinery, or the defaults (private targets refused).
fn machinery(ext: Option<Extension<Webhooks>>) -> Webhooks {
    ext.map_or_else(|| Webhooks::new(Default::default()), |Extension(w)| w)
}

/// The subscriptions of a request: `events` (MLflow `{entity, action}`
/// messages, or Sextant kinds as strings) and `sextant_events` (kinds).
fn event_filters(f: &Fields) -> Result<Vec<EventFilter>, ApiError> {
    let mut out = Vec::new();
    match f.raw("events") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(m) => {
                        let e = Fields::new(m.clone());
                        let entity = e.opt_enum("entity")?.unwrap_or_default();
                        let action = e.opt_enum("action")?.unwrap_or_default();
                        out.push(EventFilter::mlflow_from_proto(&entity, &action)?);
                    }
                    Value::String(s) => out.push(EventFilter::kind(s)?),
                    other => return Err(invalid_value("events", other)),
                }
            }
        }
        Some(other) => return Err(invalid_value("events", other)),
    }
    for kind in f.str_list("sextant_events")? {
        out.push(EventFilter::kind(&kind)?);
    }
    Ok(out)
}

fn status(f: &Fields) -> Result<Option<WebhookStatus>, ApiError> {
    match f.opt_enum("status")? {
        None => Ok(None),
        Some(s) => Ok(Some(WebhookStatus::parse(&s)?)),
    }
}

/// Checks a target URL against the SSRF guard.
async fn checked_url(url: &str, hooks: &Webhooks) -> Result<String, ApiError> {
    delivery::validate_url(url, hooks.settings.allow_private).await?;
    Ok(url.to_string())
}

/// The proto-JSON of a webhook, without its secret.
fn webhook_json(w: &Webhook) -> Value {
    let mut mlflow = Vec::new();
    let mut kinds = Vec::new();
    for f in &w.events {
        match (f.proto_names(), f) {
            (Some((entity, action)), _) => mlflow.push(
                Obj::new()
                    .set("entity", entity)
                    .set("action", action)
                    .into(),
            ),
            (None, EventFilter::Kind(k)) => kinds.push(Value::from(k.as_str())),
            (None, EventFilter::Mlflow(_)) => {}
        }
    }
    Obj::new()
        .set("webhook_id", w.webhook_id.as_str())
        .set("name", w.name.as_str())
        .opt(
            "description",
            w.description.as_deref().filter(|d| !d.is_empty()),
        )
        .set("url", w.url.as_str())
        .list("events", mlflow)
        .set("status", w.status.as_str())
        .set("creation_timestamp", w.creation_timestamp)
        .set("last_updated_timestamp", w.last_updated_timestamp)
        .list("sextant_events", kinds)
        .into()
}

fn webhook_reply(w: &Webhook) -> Reply {
    reply(Obj::new().set("webhook", webhook_json(w)))
}

async fn create(State(st): State<AppState>, ext: Option<Extension<Webhooks>>, f: Fields) -> Reply {
    let hooks = machinery(ext);
    let name = f.req_str("name")?;
    sextant_core::webhooks::validate_webhook_name(&name)?;
    let url = checked_url(&f.req_str("url")?, &hooks).await?;
    let new = NewWebhook {
        name,
        description: f.opt_str("description")?,
        url,
        events: event_filters(&f)?,
        secret: hooks.seal_secret(f.opt_str("secret")?)?,
        status: status(&f)?.unwrap_or_default(),
    };
    let w = st.db(move |s| s.create_webhook(&new)).await?;
    webhook_reply(&w)
}

async fn list(State(st): State<AppState>, f: Fields) -> Reply {
    let max = f.opt_i64("max_results")?.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&max) {
        return Err(ApiError::invalid("max_results must be between 1 and 1000."));
    }
    let offset = page_offset(&f)?;
    let page = st.db(move |s| s.list_webhooks(max as u64, offset)).await?;
    reply(
        Obj::new()
            // A webhook subscribed only to Sextant kinds has no MLflow
            // events, which the MLflow client cannot read: MLflow-format
            // lists leave it out (getting it by id still works).
            .list(
                "webhooks",
                page.items
                    .iter()
                    .filter(|w| w.events.iter().any(|f| f.proto_names().is_some()))
                    .map(webhook_json)
                    .collect(),
            )
            .opt("next_page_token", next_page_token(page.next_offset)),
    )
}

async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    let w = st.db(move |s| s.get_webhook(&id)).await?;
    webhook_reply(&w)
}

/// Empty `name`, `url` and `events` leave the field as it is (as in
/// MLflow); a present `description` or `secret` is written, empty clears it.
async fn update(
    State(st): State<AppState>,
    ext: Option<Extension<Webhooks>>,
    Path(id): Path<String>,
    f: Fields,
) -> Reply {
    let hooks = machinery(ext);
    let url = match f.opt_str("url")?.filter(|u| !u.is_empty()) {
        Some(u) => Some(checked_url(&u, &hooks).await?),
        None => None,
    };
    let events = event_filters(&f)?;
    let update = WebhookUpdate {
        name: f.opt_str("name")?.filter(|n| !n.is_empty()),
        description: f.opt_str("description")?,
        url,
        events: (!events.is_empty()).then_some(events),
        secret: hooks.seal_secret(f.opt_str("secret")?)?,
        status: status(&f)?,
    };
    let w = st.db(move |s| s.update_webhook(&id, &update)).await?;
    webhook_reply(&w)
}

async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    st.db(move |s| s.delete_webhook(&id)).await?;
    empty()
}

/// Sends an example of `event` (default: the webhook's first event) now and
/// reports the receiver's answer; nothing is queued or logged.
async fn test(
    State(st): State<AppState>,
    ext: Option<Extension<Webhooks>>,
    Path(id): Path<String>,
    f: Fields,
) -> Reply {
    let hooks = machinery(ext);
    let w = st.db(move |s| s.get_webhook(&id)).await?;
    let event = match f.message("event")? {
        Some(e) => EventFilter::mlflow_from_proto(
            &e.opt_enum("entity")?.unwrap_or_default(),
            &e.opt_enum("action")?.unwrap_or_default(),
        )?,
        None => w
            .events
            .first()
            .cloned()
            .ok_or_else(|| ApiError::invalid("the webhook has no events"))?,
    };
    let now = now_ms();
    let (name, body) = match &event {
        EventFilter::Mlflow(n) => (n.clone(), delivery::payload_example(n, now)),
        EventFilter::Kind(k) => (k.clone(), delivery::envelope_example(k, now)),
    };
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let outcome = match hooks.reveal_secret(w.secret.as_deref()) {
        Ok(secret) => {
            hooks
                .sender
                .post(&w.url, secret.as_deref(), &delivery_id, &name, 0, &body)
                .await
                .0
        }
        Err(e) => Outcome::Refused(e.to_string()),
    };
    let result = match outcome {
        Outcome::Answered { status, body, .. } => Obj::new()
            .set("success", status < 400)
            .set("response_status", i64::from(status))
            .opt("response_body", Some(body).filter(|b| !b.is_empty())),
        Outcome::Unreachable(e) | Outcome::Refused(e) => Obj::new()
            .set("success", false)
            .set("error_message", format!("Failed to test webhook: {e}")),
    };
    reply(Obj::new().set("result", result))
}

fn attempt_json(a: &DeliveryAttempt) -> Value {
    Obj::new()
        .set("webhook_id", a.webhook_id.as_str())
        .set("event_id", a.event_id)
        .set("delivery_id", a.delivery_id.as_str())
        .set("attempt", a.attempt)
        .set("time", a.time)
        .opt("status_code", a.status_code)
        .opt("error", a.error.as_deref())
        .set("duration_ms", a.duration_ms)
        .into()
}

/// Sextant's delivery log of a webhook: its newest attempts, oldest first.
/// An unknown (or deleted) webhook is a 404, not an empty log.
async fn deliveries(State(st): State<AppState>, Path(id): Path<String>, f: Fields) -> Reply {
    let max = f.opt_i64("max_results")?.unwrap_or(MAX_LOG);
    if !(1..=MAX_LOG).contains(&max) {
        return Err(ApiError::invalid("max_results must be between 1 and 1000."));
    }
    let log = st
        .db(move |s| {
            s.get_webhook(&id)?;
            s.webhook_delivery_log(&id, max as u64)
        })
        .await?;
    reply(Obj::new().list("deliveries", log.iter().map(attempt_json).collect()))
}
