//! Who the client says it is: the `Authorization` header sent on every
//! request, read from the environment the way MLflow's Python client reads
//! it, so one set of variables serves `mlflow` and `sextant` alike.

use base64::Engine;
use reqwest::header::HeaderValue;

use crate::ClientError;

/// Credentials sent as `Authorization` on every request. `Debug` shows which
/// kind they are, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl Credentials {
    /// The credentials in the process environment, as MLflow's client reads
    /// them: Basic when `MLFLOW_TRACKING_USERNAME` and
    /// `MLFLOW_TRACKING_PASSWORD` are both non-empty, else a Bearer token from
    /// `MLFLOW_TRACKING_TOKEN`, then `SEXTANT_TOKEN`; else none.
    pub fn from_env() -> Option<Credentials> {
        Credentials::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        // MLflow prefers the username and password to the token when both
        // are given, whatever the token's documentation says; so do we.
        if let (Some(username), Some(password)) = (
            set("MLFLOW_TRACKING_USERNAME"),
            set("MLFLOW_TRACKING_PASSWORD"),
        ) {
            return Some(Credentials::Basic { username, password });
        }
        set("MLFLOW_TRACKING_TOKEN")
            .or_else(|| set("SEXTANT_TOKEN"))
            .map(Credentials::Bearer)
    }

    /// The `Authorization` header's value, marked sensitive so that neither
    /// reqwest's `Debug` nor its logs show it. Refused when the credentials
    /// hold a byte a header cannot carry (a newline in a token).
    pub(crate) fn header(&self) -> Result<HeaderValue, ClientError> {
        let text = match self {
            Credentials::Basic { username, password } => {
                let pair = format!("{username}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Credentials::Bearer(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| ClientError::BadCredentials { kind: self.kind() })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `Basic` or `Bearer`, for messages that must not show the secret.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Credentials::Basic { .. } => "Basic",
            Credentials::Bearer(_) => "Bearer",
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Option<Credentials> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::from_vars(|name| vars.get(name).cloned())
    }

    fn basic(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    fn bearer(token: &str) -> Option<Credentials> {
        Some(Credentials::Bearer(token.into()))
    }

    #[test]
    fn username_and_password_beat_a_token() {
        let all = [
            ("MLFLOW_TRACKING_USERNAME", "alice"),
            ("MLFLOW_TRACKING_PASSWORD", "s3cret"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
            ("SEXTANT_TOKEN", "sxt"),
        ];
        assert_eq!(from(&all), basic("alice", "s3cret"));
    }

    #[test]
    fn half_a_login_falls_back_to_the_token() {
        let user_only = [
            ("MLFLOW_TRACKING_USERNAME", "alice"),
            ("MLFLOW_TRACKING_PASSWORD", ""),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ];
        assert_eq!(from(&user_only), bearer("tok"));
        let password_only = [("MLFLOW_TRACKING_PASSWORD", "s3cret")];
        assert_eq!(from(&password_only), None);
    }

    #[test]
    fn the_mlflow_token_comes_before_sextants() {
        let both = [("MLFLOW_TRACKING_TOKEN", "tok"), ("SEXTANT_TOKEN", "sxt")];
        assert_eq!(from(&both), bearer("tok"));
        let empty_mlflow = [("MLFLOW_TRACKING_TOKEN", ""), ("SEXTANT_TOKEN", "sxt")];
        assert_eq!(from(&empty_mlflow), bearer("sxt"));
        assert_eq!(from(&[]), None);
    }

    #[test]
    fn headers_are_mlflows() {
        let header = |c: Option<Credentials>| c.unwrap().header().unwrap();
        // base64("alice:s3cret"), as `requests.auth.HTTPBasicAuth` sends it.
        assert_eq!(header(basic("alice", "s3cret")), "Basic YWxpY2U6czNjcmV0");
        assert_eq!(header(bearer("tok")), "Bearer tok");
        assert!(header(bearer("tok")).is_sensitive());
        let refused = bearer("line\nbreak").unwrap().header().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the Bearer credentials hold a character an HTTP header cannot carry"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!("{:?} {:?}", basic("alice", "s3cret"), bearer("tok-123"));
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok-123"),
            "{shown}"
        );
        assert!(shown.contains("alice"), "{shown}");
    }
}
