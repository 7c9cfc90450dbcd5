//! The one typed HTTP client of Sextant's own APIs: the native `/api/v1`
//! (models and approvals, endpoints, monitors, pipelines and their runs,
//! logs and steps, events, the worker protocol) and the parts of the MLflow
//! API Sextant's own processes and tests call (experiments and runs,
//! registered models and versions, model download URIs, proxied artifacts,
//! webhooks). The CLI, `sextant worker`, `sextant gateway`, the quickstart
//! and the server's integration tests talk to a server through it, never
//! on raw paths.
//!
//! Requests are typed structs; answers the caller reads field by field are
//! typed too. Documents the CLI prints whole (an endpoint, a pipeline run, a
//! monitor report) come back as [`serde_json::Value`]: `--json` prints what
//! the server sent, every field of it, not what this crate knows of it.
//!
//! Every call is async; a command-line caller blocks on it with its own
//! runtime. Errors say whether the server answered ([`ClientError::Server`],
//! with its status, `error_code` and message) or could not be reached.
//!
//! Every request carries the [`Credentials`] of its [`Settings`], which
//! [`Client::new`] reads from the environment as MLflow's Python client does
//! (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`, else `MLFLOW_TRACKING_TOKEN`, else
//! `SEXTANT_TOKEN`). An authentication layer's plain-text 401 and 403 come
//! back as [`ClientError::Unauthenticated`] and [`ClientError::PermissionDenied`].

mod credentials;
mod error;
mod mlflow;
mod native;
mod registry;
mod request;
mod tracking;
mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

pub use credentials::Credentials;
pub use error::ClientError;
pub use mlflow::{ArtifactFile, ArtifactList};
pub use native::endpoints::{Applied, Definition};
pub use native::events::{EventsPage, EventsQuery};
pub use native::models::{
    Approval, ApprovalSettings, ApprovalSettingsUpdate, Decision, ModelsPage,
};
pub use native::pipelines::{LogChunk, LogQuery, OffsetPage, RunRequest};
pub use native::runs::MetricSummary;
pub use native::tasks::{Claim, Claimed, Heartbeat};
pub use registry::NewVersion;
pub use reqwest::{Method, Url};
pub use tracking::{Metric, RunSearch};
pub use webhooks::{WebhookChanges, WebhookEvent, WebhookRequest};

/// How a [`Client`] talks: its `User-Agent`, its timeouts and who it says
/// it is. `Debug` never shows a password or token.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sent as `User-Agent`; none when `None`.
    pub user_agent: Option<String>,
    /// The longest a request may take, long-polls getting their wait on top;
    /// none when `None` (a worker's upload of a large output).
    pub timeout: Option<Duration>,
    /// The longest connecting may take.
    pub connect_timeout: Option<Duration>,
    /// Sent as `Authorization` on every request; none when `None`.
    pub credentials: Option<Credentials>,
    /// A PEM file of certificates to trust besides the system's (a private
    /// CA that signed an HTTPS server's certificate; `--ca-cert`, or
    /// MLflow's `MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub ca_cert: Option<PathBuf>,
}

impl Default for Settings {
    /// The CLI's: answers within a minute, a connection within ten seconds,
    /// and the credentials the environment gives ([`Credentials::from_env`]).
    fn default() -> Settings {
        Settings {
            user_agent: None,
            timeout: Some(Duration::from_secs(60)),
            connect_timeout: Some(Duration::from_secs(10)),
            credentials: Credentials::from_env(),
            ca_cert: None,
        }
    }
}

/// A connection to one Sextant server. Cheap to clone: clones share their
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    timeout: Option<Duration>,
    /// Whether an `Authorization` header goes with every request, so that a
    /// 401 can say the credentials were refused rather than missing.
    sends_credentials: bool,
}

impl Client {
    /// A client of the server at `server` with the default [`Settings`]:
    /// credentials from the environment as MLflow's client reads them.
    pub fn new(server: &str) -> Result<Client, ClientError> {
        Client::with_settings(server, Settings::default())
    }

    /// A client of the server at `server` (`http://host:port`, maybe with a
    /// path prefix; `host:port` means `http://host:port`).
    pub fn with_settings(server: &str, settings: Settings) -> Result<Client, ClientError> {
        let base = server_url(server)?;
        let mut builder = reqwest::Client::builder();
        if let Some(agent) = settings.user_agent {
            builder = builder.user_agent(agent);
        }
        if let Some(t) = settings.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(path) = &settings.ca_cert {
            for cert in ca_certs(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        // A default header reaches every request, those built outside
        // `send` (an inference call) too; reqwest drops it on a redirect to
        // another host.
        if let Some(credentials) = &settings.credentials {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, credentials.header()?);
            builder = builder.default_headers(headers);
        }
        let http = builder.build().map_err(ClientError::Build)?;
        Ok(Client {
            http,
            base,
            timeout: settings.timeout,
            sends_credentials: settings.credentials.is_some(),
        })
    }

    /// The server's base URL, as normalised from what was given.
    pub fn base(&self) -> &Url {
        &self.base
    }
}

/// The certificates of a PEM file, each to be trusted as a root; a file
/// that cannot be read or holds none is an error naming it.
fn ca_certs(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let refused = |reason: String| ClientError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| refused(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| refused(e.to_string()))?;
    if certs.is_empty() {
        return Err(refused("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The URL of a server as given to `--server`: `host:port` without a scheme
/// means `http://host:port`; anything but `http`/`https` is refused.
pub fn server_url(server: &str) -> Result<Url, ClientError> {
    let full = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let invalid = |reason: String| ClientError::InvalidUrl {
        server: server.to_string(),
        reason,
    };
    let base = Url::parse(&full).map_err(|e| invalid(e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(invalid("it must be http:// or https://".into()));
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_mean_http() {
        assert_eq!(
            server_url("127.0.0.1:5203").unwrap().as_str(),
            "http://127.0.0.1:5203/"
        );
        assert_eq!(
            server_url("https://example.com/prefix").unwrap().as_str(),
            "https://example.com/prefix"
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        let e = server_url("ftp://example.com").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --server URL 'ftp://example.com': it must be http:// or https://"
        );
        assert!(server_url("http://").is_err());
    }
}
