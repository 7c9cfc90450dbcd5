//! A variant's model URI → a local MLflow model directory: registry URIs
//! (`models:/name/3`, `models:/name@alias`) are resolved to a version and
//! its files copied once from the artifact store into
//! `<data-dir>/serving/models/<name>/<version>/`; a plain path or `file://`
//! URI names a directory on this host.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use sextant_artifacts::data_roots::DataRoots;
use sextant_artifacts::{ArtifactStore, NotProxied, SafePath};
use sextant_store::{MetaStore, StoreError};
use tokio::io::AsyncWriteExt;

use super::config::Runtime;
use super::rollout::Deployed;

/// Why a model URI gives no model.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Storage(String),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(sextant_core::Error::NotFound(m)) => ResolveError::NotFound(m),
            StoreError::Domain(d) => ResolveError::Invalid(d.to_string()),
            other => ResolveError::Storage(other.to_string()),
        }
    }
}

/// Which registry version a URI names, read from the store now.
pub fn version_of(
    store: &dyn MetaStore,
    uri: &str,
) -> Result<Option<sextant_core::registry::ModelVersion>, ResolveError> {
    let Some(rest) = uri.strip_prefix("models:/") else {
        return Ok(None);
    };
    let v = if let Some((name, alias)) = rest.split_once('@') {
        store.get_model_version_by_alias(name, alias)?
    } else if let Some((name, version)) = rest.rsplit_once('/') {
        let n: i64 = version.parse().map_err(|_| {
            ResolveError::Invalid(format!(
                "model URI '{uri}': expected models:/<name>/<version> or models:/<name>@<alias>"
            ))
        })?;
        store.get_model_version(name, n)?
    } else {
        return Err(ResolveError::Invalid(format!(
            "model URI '{uri}': expected models:/<name>/<version> or models:/<name>@<alias>"
        )));
    };
    Ok(Some(v))
}

/// Resolves `uri` as of now (blocking: reads the store). A local directory
/// must lie, with everything in it, under the server's data roots: the
/// server reads it on the caller's behalf.
pub fn resolve(
    store: &dyn MetaStore,
    uri: &str,
    runtime: Runtime,
    roots: &DataRoots,
) -> Result<Deployed, ResolveError> {
    if let Some(v) = version_of(store, uri)? {
        return Ok(Deployed {
            uri: uri.to_string(),
            resolved: format!("models:/{}/{}", v.name, v.version),
            model: Some(v.name),
            version: Some(v.version),
            runtime,
        });
    }
    let path = local_path(uri)?;
    roots
        .check_tree("model directory", &path)
        .map_err(|e| ResolveError::Invalid(e.to_string()))?;
    if !path.join("MLmodel").is_file() {
        return Err(ResolveError::NotFound(format!(
            "model '{uri}': {} holds no MLmodel file",
            path.display()
        )));
    }
    Ok(Deployed {
        uri: uri.to_string(),
        resolved: path.display().to_string(),
        model: None,
        version: None,
        runtime,
    })
}

fn local_path(uri: &str) -> Result<PathBuf, ResolveError> {
    let p = uri.strip_prefix("file://").unwrap_or(uri);
    if p.contains("://") || p.starts_with("runs:/") || p.starts_with("models:") {
        return Err(ResolveError::Invalid(format!(
            "model '{uri}': use models:/<name>/<version>, models:/<name>@<alias> or a local directory"
        )));
    }
    Ok(PathBuf::from(p))
}

/// The local directory of a resolved model, copying a registry version's
/// files from the artifact store the first time.
pub async fn materialize(
    store: &std::sync::Arc<dyn MetaStore>,
    artifacts: &ArtifactStore,
    data_dir: &Path,
    d: &Deployed,
) -> Result<PathBuf, ResolveError> {
    let (Some(name), Some(version)) = (&d.model, d.version) else {
        return Ok(PathBuf::from(&d.resolved));
    };
    let dir = data_dir
        .join("serving")
        .join("models")
        .join(name)
        .join(version.to_string());
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let (s, n) = (store.clone(), name.clone());
    let v = tokio::task::spawn_blocking(move || s.get_model_version(&n, version))
        .await
        .map_err(|e| ResolveError::Storage(e.to_string()))??;
    let location = if v.storage_location.is_empty() {
        &v.source
    } else {
        &v.storage_location
    };
    if let Some(local) = location
        .strip_prefix("file://")
        .or_else(|| location.starts_with('/').then_some(location.as_str()))
    {
        return Ok(PathBuf::from(local));
    }
    let root = sextant_artifacts::proxied_root(location).map_err(|e| {
        // The message the artifact API answers for the same root.
        let why = match e {
            NotProxied::InvalidPath(_) => "Invalid path".to_string(),
            e @ NotProxied::Elsewhere(_) => e.to_string(),
        };
        ResolveError::Storage(format!("model {name}/{version} at {location}: {why}"))
    })?;
    let staging = dir.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
    copy_tree(artifacts, &root, &staging).await?;
    std::fs::write(staging.join(".complete"), "")
        .map_err(|e| ResolveError::Storage(format!("writing {}: {e}", staging.display())))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ResolveError::Storage(format!("creating {}: {e}", parent.display())))?;
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        // Another load copied it first.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(e) => Err(ResolveError::Storage(format!(
            "moving {} into place: {e}",
            dir.display()
        ))),
    }
}

async fn copy_tree(
    artifacts: &ArtifactStore,
    root: &SafePath,
    dest: &Path,
) -> Result<(), ResolveError> {
    let mut stack = vec![(root.clone(), dest.to_path_buf())];
    let mut files = 0;
    while let Some((dir, local)) = stack.pop() {
        std::fs::create_dir_all(&local)
            .map_err(|e| ResolveError::Storage(format!("creating {}: {e}", local.display())))?;
        let entries = artifacts
            .list(&dir)
            .await
            .map_err(|e| ResolveError::Storage(format!("listing {dir}: {e}")))?;
        for e in entries {
            let child = dir
                .child(&e.name)
                .map_err(|err| ResolveError::Storage(err.to_string()))?;
            if e.is_dir {
                stack.push((child, local.join(&e.name)));
            } else {
                let download = artifacts
                    .get(&child, None)
                    .await
                    .map_err(|err| ResolveError::Storage(format!("reading {child}: {err}")))?;
                write_file(download.stream, &local.join(&e.name))
                    .await
                    .map_err(ResolveError::Storage)?;
                files += 1;
            }
        }
    }
    if files == 0 {
        return Err(ResolveError::NotFound(format!(
            "no model files under {root}"
        )));
    }
    Ok(())
}

/// Writes a stream of chunks into the local file `target`.
async fn write_file<S, E>(mut stream: S, target: &Path) -> Result<(), String>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(|e| format!("creating {}: {e}", target.display()))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", target.display()))
}
