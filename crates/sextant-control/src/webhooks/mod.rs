//! Webhook delivery: the SSRF guard, signing, the payloads, and the worker
//! that follows the events feed and posts each matching event at least once.
//!
//! Flow: the worker wakes on [`WebhookDeps::changes`] (or a slow poll, for other
//! writers of a shared database), fans new events out to the outbox in the
//! store, claims due deliveries, posts them, and logs each attempt. Every
//! piece of delivery state is in the store, so a restart loses nothing.
//! Secrets are stored sealed under the server's key (`secret`) and opened
//! only to sign a delivery.

mod guard;
mod payload;
mod rekey;
mod secret;
mod send;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use sextant_core::clock::SharedClock;
use sextant_store::{CallError, MetaStore, StoreError};

pub use rekey::{Rekeyed, rekey};
pub use secret::{KeyError, SecretError, SecretKey, is_sealed};
pub use send::{Outcome, Sender, sign};
pub use worker::{run_once, spawn};

/// What delivery works with.
#[derive(Clone)]
pub struct WebhookDeps {
    /// The events feed, the subscriptions and the outbox.
    pub store: Arc<dyn MetaStore>,
    /// Woken after every change that may have appended events.
    pub changes: Arc<tokio::sync::Notify>,
    /// Attempt times and retry deadlines read time from it.
    pub clock: SharedClock,
}

/// Why a target is refused or a delivery pass failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The target URL is not one deliveries may go to (the SSRF guard).
    #[error("{0}")]
    Refused(String),
    /// A secret was given and the server has no key to store it encrypted.
    #[error(
        "Webhook secrets are stored encrypted and this server has no key: set SEXTANT_SECRET_KEY \
         (32 random bytes in base64 or hex, such as the output of `openssl rand -base64 32`) and \
         restart it, or omit 'secret'."
    )]
    NoSecretKey,
    /// Sealing the secret failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The metadata store refused or failed.
    #[error(transparent)]
    Store(#[from] CallError),
}

impl WebhookError {
    /// The wire name of the error's code.
    pub fn error_code(&self) -> &'static str {
        match self {
            WebhookError::Refused(_) | WebhookError::NoSecretKey => "INVALID_PARAMETER_VALUE",
            WebhookError::Secret(_) => "INTERNAL_ERROR",
            WebhookError::Store(CallError::Store(e)) => store_code(e),
            WebhookError::Store(CallError::Task(_)) => "INTERNAL_ERROR",
        }
    }
}

/// The code a store error is answered with (as the server maps it).
fn store_code(e: &StoreError) -> &'static str {
    use sextant_core::Error as D;
    match e {
        StoreError::Domain(D::InvalidParameter(_)) | StoreError::Timeout { .. } => {
            "INVALID_PARAMETER_VALUE"
        }
        StoreError::Domain(D::NotFound(_)) => "RESOURCE_DOES_NOT_EXIST",
        StoreError::Domain(D::AlreadyExists(_)) => "RESOURCE_ALREADY_EXISTS",
        StoreError::Domain(D::InvalidState(_)) => "INVALID_STATE",
        StoreError::Domain(D::PermissionDenied(_)) => "PERMISSION_DENIED",
        StoreError::Busy(_) | StoreError::Cancelled => "TEMPORARILY_UNAVAILABLE",
        StoreError::Sqlite(_)
        | StoreError::Postgres(_)
        | StoreError::Config(_)
        | StoreError::Migration(_)
        | StoreError::Corrupt(_) => "INTERNAL_ERROR",
    }
}

/// Parses a webhook URL and checks its scheme and, unless private targets
/// are allowed, every address its host resolves to.
pub async fn validate_url(url: &str, allow_private: bool) -> Result<Url, WebhookError> {
    guard::validate_url(url, allow_private)
        .await
        .map_err(WebhookError::Refused)
}

/// MLflow's body for an example of `event`, as the test endpoint sends it.
pub fn payload_example(event: &str, now_ms: i64) -> String {
    payload::mlflow_body(event, payload::example_data(event), now_ms)
}

/// Sextant's envelope for an example of a kind or pattern.
pub fn envelope_example(kind: &str, now_ms: i64) -> String {
    payload::example_envelope(kind, now_ms)
}

/// Delivery settings of a server.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow targets on loopback, private and link-local addresses.
    pub allow_private: bool,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub backoff_cap: Duration,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// How often to look for events appended by other servers.
    pub poll_interval: Duration,
    /// Seals secrets at rest; without it, webhooks cannot have secrets.
    pub secret_key: Option<SecretKey>,
    /// Keys being retired: they still open what they sealed, and seal
    /// nothing (`SEXTANT_SECRET_KEY_PREVIOUS`; `sextant webhooks rekey`
    /// moves every secret to the current key).
    pub previous_keys: Vec<SecretKey>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            secret_key: None,
            previous_keys: Vec::new(),
        }
    }
}

impl WebhookSettings {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.backoff.saturating_mul(factor).min(self.backoff_cap)
    }
}

/// What webhook handlers and the worker share: the settings and one HTTP
/// client. Handlers find it as a request extension; without one they use
/// the defaults (private targets refused).
#[derive(Clone)]
pub struct Webhooks {
    pub settings: Arc<WebhookSettings>,
    pub sender: Sender,
}

impl Webhooks {
    /// The delivery machinery for these settings.
    pub fn new(settings: WebhookSettings) -> Self {
        let sender = Sender::new(&settings);
        Webhooks {
            settings: Arc::new(settings),
            sender,
        }
    }

    /// A secret from a create or update request in its stored form: sealed;
    /// empty (which clears it) as it is. Refused without a key: a plaintext
    /// secret in the database would sign deliveries for whoever reads it.
    pub fn seal_secret(&self, secret: Option<String>) -> Result<Option<String>, WebhookError> {
        match (secret, &self.settings.secret_key) {
            (Some(s), Some(key)) if !s.is_empty() => Ok(Some(key.seal(&s)?)),
            (Some(s), None) if !s.is_empty() => Err(WebhookError::NoSecretKey),
            (other, _) => Ok(other),
        }
    }

    /// The secret to sign with, from its stored form (sealed, or plaintext
    /// written before secrets were encrypted).
    pub fn reveal_secret(&self, stored: Option<&str>) -> Result<Option<String>, SecretError> {
        stored
            .filter(|s| !s.is_empty())
            .map(|s| {
                secret::reveal(
                    s,
                    self.settings.secret_key.as_ref(),
                    &self.settings.previous_keys,
                )
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = WebhookSettings::default();
        let waits: Vec<u64> = (1..=8).map(|a| s.delay_after(a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
