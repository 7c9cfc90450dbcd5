//! What can go wrong talking to a server: it answered with an error, it
//! answered something that is not Sextant's, or it could not be reached.

use reqwest::{Method, Url};

/// A failed call. [`ClientError::Server`] is the server's own answer; the
/// other variants are about getting one. URLs are kept as text, so an error
/// stays small enough to return by value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request with `{"error_code", "message"}`.
    #[error("{message} ({code}, HTTP {status})")]
    Server {
        status: u16,
        /// The wire name, e.g. `RESOURCE_DOES_NOT_EXIST`; `UNKNOWN` when the
        /// body had a message but no code.
        code: String,
        message: String,
    },
    /// The server URL given is not one this client can talk to.
    #[error("invalid --server URL '{server}': {reason}")]
    InvalidUrl { server: String, reason: String },
    /// No answer: the connection failed.
    #[error("cannot reach the Sextant server at {base}: {cause}")]
    Unreachable {
        base: String,
        /// The innermost cause ("Connection refused", a DNS or TLS failure).
        cause: String,
    },
    /// No answer in time.
    #[error("the Sextant server at {base} did not answer in time: {cause}")]
    TimedOut { base: String, cause: String },
    /// The answer broke off while it was read.
    #[error("reading the answer to {method} {url}")]
    Read {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not a Sextant answer: not JSON, or an error without
    /// a message (a proxy's page, another program on the port).
    #[error("unexpected answer to {method} {url}: HTTP {status} {text}")]
    Unexpected {
        method: Method,
        url: String,
        status: u16,
        /// The start of the body, trimmed.
        text: String,
        /// The server the client was pointed at.
        base: String,
    },
    /// The server wants credentials (401) and answered in MLflow's style, a
    /// plain-text body rather than a Sextant error.
    #[error(
        "authentication required: set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN{} ({method} {url}: HTTP 401)",
        if *.sent { "; the server refused the credentials sent" } else { "" }
    )]
    Unauthenticated {
        method: Method,
        url: String,
        /// Whether credentials were sent (and so were refused).
        sent: bool,
    },
    /// The credentials sent do not allow the request (403, MLflow's
    /// plain-text `Permission denied`).
    #[error("permission denied: {method} {url} (HTTP 403)")]
    PermissionDenied { method: Method, url: String },
    /// The certificates to trust cannot be read (`--ca-cert`).
    #[error("cannot use {path} as --ca-cert: {reason}")]
    CaCert { path: String, reason: String },
    /// The credentials given cannot be sent as a header.
    #[error("the {kind} credentials hold a character an HTTP header cannot carry")]
    BadCredentials {
        /// `Basic` or `Bearer`; never the secret.
        kind: &'static str,
    },
    /// A successful answer whose JSON does not have the expected shape.
    #[error("unreadable answer to {method} {url}: {source}")]
    Decode {
        method: Method,
        url: String,
        source: serde_json::Error,
    },
    /// The HTTP client could not be set up (TLS roots, for one).
    #[error("building the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl ClientError {
    /// The HTTP status of an answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Server { status, .. } | ClientError::Unexpected { status, .. } => {
                Some(*status)
            }
            ClientError::Unauthenticated { .. } => Some(401),
            ClientError::PermissionDenied { .. } => Some(403),
            ClientError::InvalidUrl { .. }
            | ClientError::BadCredentials { .. }
            | ClientError::CaCert { .. }
            | ClientError::Unreachable { .. }
            | ClientError::TimedOut { .. }
            | ClientError::Read { .. }
            | ClientError::Decode { .. }
            | ClientError::Build(_) => None,
        }
    }

    /// The server's `error_code`, when it answered with one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ClientError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the request may not have reached the server, or its answer
    /// was lost: worth retrying while the server may come back.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. }
                | ClientError::TimedOut { .. }
                | ClientError::Read { .. }
        )
    }

    /// The error for a request that got no answer.
    pub(crate) fn unreachable(base: &Url, e: reqwest::Error) -> ClientError {
        // reqwest's own message is generic; the innermost cause says what
        // happened.
        let mut root: &dyn std::error::Error = &e;
        while let Some(next) = root.source() {
            root = next;
        }
        let (base, cause) = (base.to_string(), root.to_string());
        if e.is_timeout() {
            ClientError::TimedOut { base, cause }
        } else {
            ClientError::Unreachable { base, cause }
        }
    }
}
