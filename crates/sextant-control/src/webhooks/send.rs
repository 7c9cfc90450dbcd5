//! One delivery attempt: MLflow's headers, the HMAC-SHA256 signature, and
//! the classification of the answer.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebhookSettings;
use super::guard::{self, GuardedResolver};

/// MLflow's webhook headers.
pub const DELIVERY_ID_HEADER: &str = "X-MLflow-Delivery-Id";
pub const TIMESTAMP_HEADER: &str = "X-MLflow-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-MLflow-Signature";
/// Sextant's additions: the event name and the feed id of the event.
pub const EVENT_HEADER: &str = "X-Sextant-Event";
pub const EVENT_ID_HEADER: &str = "X-Sextant-Event-Id";

/// The most of a receiver's answer kept for a test result.
const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// MLflow's signature: `v1,` + base64 of HMAC-SHA256 over
/// `{delivery_id}.{timestamp}.{body}` keyed with the secret.
pub fn sign(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac accepts any key");
    mac.update(format!("{delivery_id}.{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered; `retry` says whether the status is worth another try.
    Answered {
        status: u16,
        body: String,
        retry: bool,
    },
    /// No answer (connection, timeout); worth another try.
    Unreachable(String),
    /// Not sent: the SSRF guard refused the target, or the secret cannot be
    /// decrypted; never retried.
    Refused(String),
}

impl Outcome {
    /// Whether the receiver accepted the delivery (2xx).
    pub fn delivered(&self) -> bool {
        matches!(self, Outcome::Answered { status, .. } if (200..300).contains(status))
    }
}

/// The HTTP client of webhook deliveries: no proxies (the proxy would be
/// the peer the guard checks), no redirects (a redirect could name a private
/// address), and, unless private targets are allowed, the guarded resolver.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A client for these settings.
    pub fn new(settings: &WebhookSettings) -> Self {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sextant-webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(GuardedResolver));
        }
        let client = builder.build().unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhook client with settings failed; using defaults");
            reqwest::Client::new()
        });
        Sender {
            client,
            allow_private: settings.allow_private,
        }
    }

    /// Posts `body` once; returns the outcome and how long it took.
    pub async fn post(
        &self,
        url: &str,
        secret: Option<&str>,
        delivery_id: &str,
        event: &str,
        event_id: i64,
        body: &str,
    ) -> (Outcome, Duration) {
        let started = Instant::now();
        let target = match guard::parse(url) {
            Ok(u) => u,
            Err(e) => return (Outcome::Refused(e), started.elapsed()),
        };
        if !self.allow_private
            && let Err(e) = guard::check_literal(&target)
        {
            return (Outcome::Refused(e), started.elapsed());
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let mut req = self
            .client
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_ID_HEADER, delivery_id)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(EVENT_HEADER, event)
            .header(EVENT_ID_HEADER, event_id.to_string());
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            req = req.header(
                SIGNATURE_HEADER,
                sign(secret, delivery_id, &timestamp, body),
            );
        }
        let outcome = match req.body(body.to_string()).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let mut text = resp.text().await.unwrap_or_default();
                truncate(&mut text, MAX_RESPONSE_BODY);
                Outcome::Answered {
                    status,
                    body: text,
                    retry: matches!(status, 408 | 429 | 500..=599),
                }
            }
            Err(e) => classify(&e),
        };
        (outcome, started.elapsed())
    }
}

/// A transport error: refused by the guarded resolver, or unreachable.
fn classify(e: &reqwest::Error) -> Outcome {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    if chain.contains("webhook connection blocked") {
        Outcome::Refused(chain)
    } else {
        Outcome::Unreachable(chain)
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_mlflow() {
        // Python: base64.b64encode(hmac.new(b"s3cret", b"d-1.1700000000.{\"a\": 1}",
        //   hashlib.sha256).digest())
        assert_eq!(
            sign("s3cret", "d-1", "1700000000", "{\"a\": 1}"),
            "v1,cXba7k2h2S9JgnqN7BcpWvnFMfMoFMqAonfzn9WFZBg="
        );
    }
}
