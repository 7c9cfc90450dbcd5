//! Artifact roots this server's own store serves ("proxied" roots, in
//! MLflow's words). Only those are read on a caller's behalf: reading any
//! other URI the server could reach would let a client read whatever an
//! experiment's `artifact_location` names (`file:///etc`) or make the server
//! fetch URLs.

use crate::{InvalidPath, SafePath};

/// The part of an HTTP artifact URI after which the store path follows.
pub const ARTIFACTS_MARKER: &str = "/mlflow-artifacts/artifacts/";

/// Why an artifact root cannot be read from this store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotProxied {
    /// The root is a local path, another scheme or another URL.
    #[error(
        "the artifact root '{0}' is not served by this server: it serves only roots in its own artifact store (mlflow-artifacts:/…, or …/api/2.0/mlflow-artifacts/artifacts/…), never local paths or other URLs; read this root directly from the client"
    )]
    Elsewhere(String),
    /// The root is proxied but its path is unsafe or malformed.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
}

/// Where the artifact root `uri` lies in this server's store:
/// `mlflow-artifacts:/p`, `mlflow-artifacts://host:port/p` (the authority
/// names this server) or `http(s)://…/mlflow-artifacts/artifacts/p`.
pub fn proxied_root(uri: &str) -> Result<SafePath, NotProxied> {
    let path = if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        let rest = match rest.strip_prefix("//") {
            Some(authority_and_path) => authority_and_path.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        SafePath::parse(rest.trim_start_matches('/'))
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        match uri.split_once(ARTIFACTS_MARKER) {
            Some((_, encoded)) => SafePath::from_encoded(encoded),
            None => return Err(NotProxied::Elsewhere(uri.to_string())),
        }
    } else {
        return Err(NotProxied::Elsewhere(uri.to_string()));
    };
    Ok(path?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_roots() {
        let root = |u: &str| proxied_root(u).map(|p| p.to_string());
        assert_eq!(
            root("mlflow-artifacts:/0/r/artifacts"),
            Ok("0/r/artifacts".into())
        );
        assert_eq!(
            root("mlflow-artifacts:///0/r/artifacts"),
            Ok("0/r/artifacts".into())
        );
        assert_eq!(
            root("mlflow-artifacts://h:5000/0/r/artifacts"),
            Ok("0/r/artifacts".into())
        );
        assert_eq!(
            root("http://h:5000/api/2.0/mlflow-artifacts/artifacts/0/r%20x/artifacts"),
            Ok("0/r x/artifacts".into())
        );
        for other in ["file:///etc", "/etc", "http://example.com/etc", "s3://b/p"] {
            assert_eq!(
                root(other),
                Err(NotProxied::Elsewhere(other.into())),
                "{other}"
            );
        }
        assert!(matches!(
            root("mlflow-artifacts:/0/../../etc"),
            Err(NotProxied::InvalidPath(_))
        ));
    }
}
