//! The SSRF guard (MLflow CVE-2026-2393): webhook targets must be http(s)
//! URLs whose host is a public address.
//!
//! Checked twice. At create and update, the host is resolved and every
//! address must be public. At delivery, the client resolves through
//! [`GuardedResolver`], which hands the connector only addresses it has
//! checked, so the address connected to is one that passed (a DNS-rebinding
//! answer that turns private between the two checks is refused). IP-literal
//! hosts never reach a resolver, so they are checked from the URL itself.

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sextant_core::webhooks::is_public_ip;

/// Why a target is refused, in words a person can act on.
pub type Refusal = String;

/// Parses a webhook URL and checks its scheme and, unless private targets
/// are allowed, every address its host resolves to.
pub async fn validate_url(url: &str, allow_private: bool) -> Result<Url, Refusal> {
    let parsed = parse(url)?;
    if allow_private {
        return Ok(parsed);
    }
    check_literal(&parsed)?;
    if let Some(Host::Domain(host)) = host_of(&parsed) {
        let addrs = tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|e| format!("Cannot resolve Webhook URL hostname '{host}': {e}"))?;
        for addr in addrs {
            if !is_public_ip(addr.ip()) {
                return Err(non_public(&host, addr.ip()));
            }
        }
    }
    Ok(parsed)
}

/// The URL, if it is http(s) with a host.
pub fn parse(url: &str) -> Result<Url, Refusal> {
    if url.trim().is_empty() {
        return Err(format!(
            "Webhook URL cannot be empty or just whitespace: '{url}'"
        ));
    }
    let parsed = Url::parse(url).map_err(|e| format!("Invalid webhook URL '{url}': {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "Invalid webhook URL scheme: '{}'. Allowed schemes are: http, https.",
            parsed.scheme()
        ));
    }
    if parsed.host().is_none() {
        return Err(format!("Webhook URL must include a hostname: '{url}'"));
    }
    Ok(parsed)
}

/// The host of a URL.
enum Host {
    Domain(String),
    Ip(IpAddr),
}

/// The URL parser prints IP hosts canonically (IPv6 in brackets), so
/// parsing the printed host tells literals from names.
fn host_of(u: &Url) -> Option<Host> {
    let h = u.host_str()?;
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Domain(h.to_string()),
    })
}

/// Refuses a URL whose host is a non-public IP literal. The URL parser has
/// already normalised legacy spellings (`127.1`, `0x7f.0.0.1`, `2130706433`).
pub fn check_literal(u: &Url) -> Result<(), Refusal> {
    if let Some(Host::Ip(ip)) = host_of(u)
        && !is_public_ip(ip)
    {
        return Err(non_public(&ip.to_string(), ip));
    }
    Ok(())
}

fn non_public(host: &str, ip: IpAddr) -> Refusal {
    format!("Webhook URL must not resolve to a non-public IP address. '{host}' resolves to {ip}.")
}

/// A resolver that only yields public addresses (all of them, or an error).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public_ip(a.ip())) {
                let msg = format!(
                    "webhook connection blocked: '{host}' resolves to {}, not a public address",
                    bad.ip()
                );
                return Err(msg.into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
