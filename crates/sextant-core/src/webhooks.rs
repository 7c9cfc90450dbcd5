//! Webhooks: subscriptions to the events feed, MLflow's event names and how
//! they map onto Sextant's event kinds, the outbox of deliveries, and the
//! address rules of the SSRF guard (MLflow CVE-2026-2393).
//!
//! A subscription names either an MLflow webhook event (`entity.action`, the
//! body is MLflow's payload) or a Sextant event kind, exact or `prefix.*` (the
//! body is Sextant's event envelope). MLflow names that coincide with Sextant
//! kinds (`model_version.created`) are read as MLflow's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Error, Result};

/// Whether a webhook is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookStatus {
    #[default]
    Active,
    Disabled,
}

impl WebhookStatus {
    /// The proto enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "ACTIVE",
            WebhookStatus::Disabled => "DISABLED",
        }
    }
    /// Parses the proto name (any case) or number.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ACTIVE" | "1" => Ok(WebhookStatus::Active),
            "DISABLED" | "2" => Ok(WebhookStatus::Disabled),
            _ => Err(Error::invalid(format!(
                "Invalid webhook status '{s}'. Valid statuses are: ACTIVE, DISABLED"
            ))),
        }
    }
}

/// MLflow's webhook events, `entity.action`, with the proto enum names of
/// both halves. Prompt events are registry events on models tagged
/// `mlflow.prompt.is_prompt=true`.
pub const MLFLOW_EVENTS: [(&str, &str, &str); 15] = [
    ("registered_model.created", "REGISTERED_MODEL", "CREATED"),
    ("model_version.created", "MODEL_VERSION", "CREATED"),
    ("model_version_tag.set", "MODEL_VERSION_TAG", "SET"),
    ("model_version_tag.deleted", "MODEL_VERSION_TAG", "DELETED"),
    (
        "model_version_alias.created",
        "MODEL_VERSION_ALIAS",
        "CREATED",
    ),
    (
        "model_version_alias.deleted",
        "MODEL_VERSION_ALIAS",
        "DELETED",
    ),
    ("prompt.created", "PROMPT", "CREATED"),
    ("prompt_version.created", "PROMPT_VERSION", "CREATED"),
    ("prompt_tag.set", "PROMPT_TAG", "SET"),
    ("prompt_tag.deleted", "PROMPT_TAG", "DELETED"),
    ("prompt_version_tag.set", "PROMPT_VERSION_TAG", "SET"),
    (
        "prompt_version_tag.deleted",
        "PROMPT_VERSION_TAG",
        "DELETED",
    ),
    ("prompt_alias.created", "PROMPT_ALIAS", "CREATED"),
    ("prompt_alias.deleted", "PROMPT_ALIAS", "DELETED"),
    ("budget_policy.exceeded", "BUDGET_POLICY", "EXCEEDED"),
];

/// The tag that makes a registered model a prompt in MLflow.
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// One subscription of a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventFilter {
    /// An MLflow webhook event, `entity.action` (one of [`MLFLOW_EVENTS`]).
    Mlflow(String),
    /// A Sextant event kind, exact or `prefix.*`.
    Kind(String),
}

impl EventFilter {
    /// An MLflow event from its proto enum names (`MODEL_VERSION`, `CREATED`).
    pub fn mlflow_from_proto(entity: &str, action: &str) -> Result<Self> {
        let (e, a) = (entity.to_ascii_uppercase(), action.to_ascii_uppercase());
        MLFLOW_EVENTS
            .iter()
            .find(|(_, pe, pa)| *pe == e && *pa == a)
            .map(|(name, _, _)| EventFilter::Mlflow((*name).to_string()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "Invalid webhook event: entity '{entity}' with action '{action}'"
                ))
            })
    }

    /// A Sextant kind (`run.created`) or prefix (`model_version.*`, `*`).
    /// An MLflow event name given this way is taken as the MLflow event.
    pub fn kind(pattern: &str) -> Result<Self> {
        if MLFLOW_EVENTS.iter().any(|(name, _, _)| *name == pattern) {
            return Ok(EventFilter::Mlflow(pattern.to_string()));
        }
        let body = pattern.strip_suffix('*').unwrap_or(pattern);
        let ok = pattern.len() <= 128
            && (pattern == "*" || !body.is_empty())
            && body
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
            && (pattern.ends_with(".*") || pattern == "*" || !pattern.ends_with('*'));
        if ok {
            Ok(EventFilter::Kind(pattern.to_string()))
        } else {
            Err(Error::invalid(format!(
                "Invalid event kind '{pattern}': use a kind such as 'run.created' or a prefix \
                 such as 'model_version.*'"
            )))
        }
    }

    /// The proto enum names of an MLflow event.
    pub fn proto_names(&self) -> Option<(&'static str, &'static str)> {
        match self {
            EventFilter::Mlflow(name) => MLFLOW_EVENTS
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, e, a)| (*e, *a)),
            EventFilter::Kind(_) => None,
        }
    }

    /// How the filter is stored: `mlflow:<entity.action>` or `kind:<pattern>`.
    pub fn to_stored(&self) -> String {
        match self {
            EventFilter::Mlflow(n) => format!("mlflow:{n}"),
            EventFilter::Kind(k) => format!("kind:{k}"),
        }
    }

    /// Reads a stored filter.
    pub fn from_stored(s: &str) -> Option<Self> {
        if let Some(n) = s.strip_prefix("mlflow:") {
            Some(EventFilter::Mlflow(n.to_string()))
        } else {
            s.strip_prefix("kind:")
                .map(|k| EventFilter::Kind(k.to_string()))
        }
    }

    /// Whether a Sextant event of `kind` matches a `Kind` filter.
    pub fn matches_kind(&self, kind: &str) -> bool {
        match self {
            EventFilter::Kind(p) if p == "*" => true,
            EventFilter::Kind(p) => match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => p == kind,
            },
            EventFilter::Mlflow(_) => false,
        }
    }
}

/// The MLflow event a Sextant event is, if any. `is_prompt` says whether the
/// registered model it concerns is a prompt.
pub fn mlflow_event_for(kind: &str, is_prompt: bool) -> Option<&'static str> {
    let (model, prompt) = match kind {
        "registered_model.created" => ("registered_model.created", "prompt.created"),
        "model_version.created" => ("model_version.created", "prompt_version.created"),
        "model_version.tag_set" => ("model_version_tag.set", "prompt_version_tag.set"),
        "model_version.tag_deleted" => ("model_version_tag.deleted", "prompt_version_tag.deleted"),
        "model_version.alias_set" => ("model_version_alias.created", "prompt_alias.created"),
        "model_version.alias_deleted" => ("model_version_alias.deleted", "prompt_alias.deleted"),
        _ => return None,
    };
    Some(if is_prompt { prompt } else { model })
}

/// A webhook as stored; `secret` never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<EventFilter>,
    pub status: WebhookStatus,
    pub secret: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    /// The newest event id when the webhook was created: only later events
    /// are delivered to it.
    pub start_event_id: i64,
}

/// A webhook to create.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<EventFilter>,
    pub secret: Option<String>,
    pub status: WebhookStatus,
}

/// Changes to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<EventFilter>>,
    pub secret: Option<String>,
    pub status: Option<WebhookStatus>,
}

/// A delivery the fan-out decided on: one event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook_id: String,
    pub event_id: i64,
    /// The event name sent (`model_version.created`, `run.created`).
    pub event: String,
    /// The JSON body, fixed at fan-out so every attempt sends the same bytes.
    pub body: String,
}

/// A delivery waiting for its next attempt, with its webhook's current target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub id: i64,
    /// Stable across attempts, so receivers can drop duplicates.
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: i64,
    pub event: String,
    pub body: String,
    pub url: String,
    pub secret: Option<String>,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// The state of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for an attempt at the given time (ms).
    Pending { next_attempt_at: i64 },
    /// The receiver answered 2xx.
    Delivered,
    /// Attempts are exhausted or the target is refused.
    Failed,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub webhook_id: String,
    pub event_id: i64,
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub time: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Checks a webhook name as MLflow does: 1–63 letters, digits, `.`, `_`,
/// `-`, starting and ending with a letter or digit.
pub fn validate_webhook_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && ends(name.chars().next())
        && ends(name.chars().last())
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Webhook name '{name}' is invalid. It must start and end with a letter or digit, be \
             less than 63 characters long, and contain only letters, digits, dots (.), \
             underscores (_), and hyphens (-)."
        )))
    }
}

/// Checks events: at least one.
pub fn validate_webhook_events(events: &[EventFilter]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::invalid(
            "Webhook events must be a non-empty list of WebhookEvent objects: [].",
        ));
    }
    Ok(())
}

/// Whether an address may be the target of a webhook when private targets
/// are not allowed: not loopback, link-local (incl. the cloud metadata
/// address 169.254.169.254), private (RFC 1918, ULA, CGNAT), unspecified,
/// multicast, broadcast, documentation or reserved. IPv6 forms that embed an
/// IPv4 address (mapped, compatible, 6to4, NAT64) are judged by that address.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)) // discard-only
}

/// The IPv4 address carried by an IPv4-mapped, IPv4-compatible, 6to4 or
/// NAT64 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_recognised() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2002:a00:1::",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public_ip(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public_ip(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn filters_parse_match_and_round_trip() {
        let m = EventFilter::mlflow_from_proto("MODEL_VERSION_TAG", "SET").unwrap();
        assert_eq!(m, EventFilter::Mlflow("model_version_tag.set".into()));
        assert_eq!(m.proto_names(), Some(("MODEL_VERSION_TAG", "SET")));
        assert!(EventFilter::mlflow_from_proto("MODEL_VERSION", "SET").is_err());
        assert_eq!(
            EventFilter::kind("model_version.created").unwrap(),
            EventFilter::Mlflow("model_version.created".into())
        );
        let p = EventFilter::kind("model_version.*").unwrap();
        assert!(p.matches_kind("model_version.approved"));
        assert!(!p.matches_kind("run.created"));
        assert!(EventFilter::kind("*").unwrap().matches_kind("run.created"));
        for bad in ["", "Run.Created", "run*", "a b", ".*x"] {
            assert!(EventFilter::kind(bad).is_err(), "{bad}");
        }
        for f in [m, p] {
            assert_eq!(EventFilter::from_stored(&f.to_stored()), Some(f));
        }
    }

    #[test]
    fn sextant_kinds_map_to_mlflow_events() {
        assert_eq!(
            mlflow_event_for("model_version.alias_set", false),
            Some("model_version_alias.created")
        );
        assert_eq!(
            mlflow_event_for("model_version.created", true),
            Some("prompt_version.created")
        );
        assert_eq!(mlflow_event_for("run.created", false), None);
    }

    #[test]
    fn webhook_names_follow_mlflow() {
        for ok in ["a", "hook-1", "my.hook_2"] {
            assert!(validate_webhook_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", &"a".repeat(64)] {
            assert!(validate_webhook_name(bad).is_err(), "{bad}");
        }
    }
}
