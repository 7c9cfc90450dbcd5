//! The lifecycle events feed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    /// Events after this id; `latest` means only those yet to come
    /// [default: from the first].
    pub after: Option<String>,
    pub limit: u32,
    /// How long the server may hold the request while nothing is new.
    pub wait: Duration,
    /// Comma-separated kinds; `model_version.*` matches a prefix.
    pub kinds: Option<String>,
}

/// One answer of the feed.
#[derive(Debug, Clone, Deserialize)]
pub struct EventsPage {
    /// Each event as the server describes it, oldest first.
    pub events: Vec<Value>,
    /// Pass as the next `after`.
    pub cursor: i64,
    /// Whether more events wait past `limit`.
    pub has_more: bool,
}

impl Client {
    /// Reads the feed; with a `wait`, a long-poll that answers as soon as
    /// an event arrives.
    pub async fn events(&self, q: &EventsQuery) -> Result<EventsPage, ClientError> {
        let mut query: Vec<(&str, String)> = q.after.iter().map(|a| ("after", a.clone())).collect();
        query.push(("limit", q.limit.to_string()));
        query.push(("wait", q.wait.as_secs().to_string()));
        query.extend(q.kinds.clone().map(|k| ("kinds", k)));
        let url = self.url(&v1(&["events"]), &query);
        self.call(reqwest::Method::GET, url, Body::None, Wait::Longer(q.wait))
            .await
    }
}
