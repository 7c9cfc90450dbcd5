//! Request guards applied to every route: the Host-header check that stops
//! DNS rebinding against a loopback-bound server (MLflow CVE-2025-14279).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

/// Which Host headers the server accepts.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Host names (without port) accepted; empty accepts any (a server bound
    /// to a public address with `--allow-remote`).
    pub allowed_hosts: Vec<String>,
}

impl SecurityConfig {
    /// The hosts a loopback-bound server answers to.
    pub fn loopback() -> Self {
        SecurityConfig {
            allowed_hosts: ["localhost", "127.0.0.1", "[::1]", "::1"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// Whether a Host header value names an allowed host.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Refuses requests whose Host header is not allowed; `/health` is exempt.
pub async fn check_host(
    State(cfg): State<Arc<SecurityConfig>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() != "/health" {
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let ok = match host {
            Some(h) => cfg.host_allowed(h),
            None => cfg.allowed_hosts.is_empty(),
        };
        if !ok {
            return ApiError::new(
                ErrorCode::PermissionDenied,
                "Invalid Host header: this server only answers to its own host names \
                 (DNS rebinding guard)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_accepts_local_names_with_ports() {
        let cfg = SecurityConfig::loopback();
        assert!(cfg.host_allowed("127.0.0.1:5000"));
        assert!(cfg.host_allowed("localhost"));
        assert!(cfg.host_allowed("[::1]:5000"));
        assert!(!cfg.host_allowed("evil.example.com"));
        assert!(!cfg.host_allowed("evil.example.com:5000"));
        assert!(!cfg.host_allowed("127.0.0.1.evil.example.com"));
    }
}
