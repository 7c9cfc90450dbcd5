//! A variant's model URI → a local MLflow model directory: registry URIs
//! (`models:/name/3`, `models:/name@alias`) are resolved to a version and
//! its files copied once from the artifact store into
//! `<data-dir>/serving/models/<name>/<version>/`; a plain path or `file://`
//! URI names a directory on this host.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use sextant_artifacts::data_roots::DataRoots;
use sextant_artifacts::{ArtifactError, ArtifactStore, InvalidPath, NotProxied, SafePath};
use sextant_store::{MetaStore, StoreError};
use tokio::io::AsyncWriteExt;

use super::config::Runtime;
use super::rollout::Deployed;

/// Why a model URI gives no model, or its files no local directory.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The URI (or the directory it names) cannot be served.
    #[error("{0}")]
    Invalid(String),
    /// The URI names no model.
    #[error("{0}")]
    NotFound(String),
    /// The metadata store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The blocking task reading the store panicked.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// A registry version's files are not in this server's artifact store.
    #[error("model {model} at {location}: {}", not_served(.source))]
    NotServed {
        /// `name/version`.
        model: String,
        location: String,
        #[source]
        source: NotProxied,
    },
    /// The artifact store failed (a download broke off).
    #[error(transparent)]
    Artifacts(Box<ArtifactError>),
    /// Listing a directory of the model's files failed.
    #[error("listing {dir}: {source}")]
    List {
        dir: SafePath,
        #[source]
        source: Box<ArtifactError>,
    },
    /// Reading one of the model's files failed.
    #[error("reading {path}: {source}")]
    Read {
        path: SafePath,
        #[source]
        source: Box<ArtifactError>,
    },
    /// A stored file name the artifact store refuses.
    #[error(transparent)]
    Path(#[from] InvalidPath),
    /// A local directory or file could not be created.
    #[error("creating {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A local file could not be written.
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copied model could not be moved into place.
    #[error("moving {} into place: {source}", .path.display())]
    MoveIntoPlace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a root is not served, in the words the artifact API answers for it.
fn not_served(e: &NotProxied) -> String {
    match e {
        NotProxied::InvalidPath(_) => "Invalid path".to_string(),
        e @ NotProxied::Elsewhere(_) => e.to_string(),
    }
}

impl From<ArtifactError> for ResolveError {
    fn from(e: ArtifactError) -> Self {
        ResolveError::Artifacts(Box::new(e))
    }
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(sextant_core::Error::NotFound(m)) => ResolveError::NotFound(m),
            StoreError::Domain(d) => ResolveError::Invalid(d.to_string()),
            other => ResolveError::Store(other),
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
    let v = tokio::task::spawn_blocking(move || s.get_model_version(&n, version)).await??;
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
    let root =
        sextant_artifacts::proxied_root(location).map_err(|source| ResolveError::NotServed {
            model: format!("{name}/{version}"),
            location: location.clone(),
            source,
        })?;
    let staging = dir.with_extension(format!("partial-{}", uuid::Uuid::new_v4().simple()));
    copy_tree(artifacts, &root, &staging).await?;
    std::fs::write(staging.join(".complete"), "").map_err(|source| ResolveError::Write {
        path: staging.clone(),
        source,
    })?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ResolveError::Create {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        // Another load copied it first.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(source) => Err(ResolveError::MoveIntoPlace { path: dir, source }),
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
        std::fs::create_dir_all(&local).map_err(|source| ResolveError::Create {
            path: local.clone(),
            source,
        })?;
        let entries = artifacts
            .list(&dir)
            .await
            .map_err(|source| ResolveError::List {
                dir: dir.clone(),
                source: Box::new(source),
            })?;
        for e in entries {
            let child = dir.child(&e.name)?;
            if e.is_dir {
                stack.push((child, local.join(&e.name)));
            } else {
                let download =
                    artifacts
                        .get(&child, None)
                        .await
                        .map_err(|source| ResolveError::Read {
                            path: child.clone(),
                            source: Box::new(source),
                        })?;
                write_file(download.stream, &local.join(&e.name)).await?;
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
async fn write_file<S>(mut stream: S, target: &Path) -> Result<(), ResolveError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, ArtifactError>> + Unpin,
{
    let written = |source| ResolveError::Write {
        path: target.to_path_buf(),
        source,
    };
    let mut file =
        tokio::fs::File::create(target)
            .await
            .map_err(|source| ResolveError::Create {
                path: target.to_path_buf(),
                source,
            })?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await.map_err(written)?;
    }
    file.flush().await.map_err(written)
}
