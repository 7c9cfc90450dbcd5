//! `GET /api/v1/events`: the lifecycle events feed, paged by cursor, with
//! long-polling so followers see a change as soon as it is committed.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::convert::{self, EventWire};
use super::query;
use crate::error::ApiError;
use crate::state::AppState;

/// Events per page unless the client asks otherwise.
const DEFAULT_LIMIT: u64 = 100;
/// The largest page.
const MAX_LIMIT: u64 = 1000;
/// The longest long-poll a client may ask for, in seconds.
const MAX_WAIT_SECS: u64 = 60;
/// A long-poll also looks at the store this often: writers in another
/// process (a second server on the same PostgreSQL) do not wake this one.
const RECHECK: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    kinds: Option<String>,
    limit: Option<u64>,
    wait: Option<u64>,
}

#[derive(Serialize)]
pub struct EventPage {
    events: Vec<EventWire>,
    /// The id of the last event returned, or the `after` given when there is
    /// none: pass it as the next `after`.
    cursor: i64,
    /// Whether more events were ready than `limit` allowed.
    has_more: bool,
}

/// `GET /api/v1/events?after=&kinds=&limit=&wait=`.
pub async fn list(
    State(st): State<AppState>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let q = query(q)?;
    let kinds = parse_kinds(q.kinds.as_deref().unwrap_or(""))?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "invalid limit {n}: it must be between 1 and {MAX_LIMIT}"
            )));
        }
    };
    let wait = match q.wait.unwrap_or(0) {
        w @ 0..=MAX_WAIT_SECS => Duration::from_secs(w),
        w => {
            return Err(ApiError::invalid(format!(
                "invalid wait {w}: it must be between 0 and {MAX_WAIT_SECS} seconds"
            )));
        }
    };
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some("latest") => st.db(|s| s.last_event_id()).await?,
        Some(a) => match a.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(ApiError::invalid(format!(
                    "invalid after '{a}': it must be an event id or 'latest'"
                )));
            }
        },
    };

    let deadline = Instant::now() + wait;
    loop {
        // Register interest before looking, so a change committed between
        // the look and the wait still wakes us.
        let changed = st.changes.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let kinds = kinds.clone();
        let mut events = st
            .db(move |s| s.events_after(after, &kinds, limit + 1))
            .await?;
        let now = Instant::now();
        if !events.is_empty() || now >= deadline {
            let has_more = events.len() as u64 > limit;
            events.truncate(limit as usize);
            let cursor = events.last().map_or(after, |e| e.id);
            return Ok(Json(EventPage {
                events: events.into_iter().map(convert::event).collect(),
                cursor,
                has_more,
            }));
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline.min(now + RECHECK)) => {}
        }
    }
}

/// `kinds=a.b,c.*`: exact kinds, or prefixes ending in `.*`; `*` or an
/// empty list means every kind.
fn parse_kinds(s: &str) -> Result<Vec<String>, ApiError> {
    let mut kinds = Vec::new();
    for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if k == "*" {
            return Ok(Vec::new());
        }
        let stem = k.strip_suffix(".*").unwrap_or(k);
        let valid = !stem.is_empty()
            && stem.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if !valid {
            return Err(ApiError::invalid(format!(
                "invalid event kind '{k}': kinds look like 'model_version.approved' or 'run.*'"
            )));
        }
        kinds.push(k.to_string());
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_exact_names_or_prefixes() {
        assert_eq!(
            parse_kinds(" run.created, model_version.* ,").unwrap(),
            ["run.created", "model_version.*"]
        );
        assert!(parse_kinds("").unwrap().is_empty());
        assert!(parse_kinds("run.*,*").unwrap().is_empty());
        for bad in [
            "run.",
            ".*",
            "Run.created",
            "run*",
            "run.**",
            "a..b",
            "run;drop",
        ] {
            assert!(parse_kinds(bad).is_err(), "{bad}");
        }
    }
}
