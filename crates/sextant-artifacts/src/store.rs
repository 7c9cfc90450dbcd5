//! `ArtifactStore`: one `object_store` backend chosen by URI, with streaming
//! put and get, directory-style listing and recursive delete.

use std::ops::Range;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use percent_encoding::percent_decode_str;

use crate::path::RESERVED_DIR;
use crate::{ArtifactError, InvalidPath, SafePath};

/// Size of one multipart-upload part. S3 wants at least 5 MiB and allows
/// 10,000 parts, so uploads up to ~80 GB fit.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded concurrently; with [`PART_SIZE`] this bounds an upload's
/// memory to about 40 MiB however large the artifact.
const PARTS_IN_FLIGHT: usize = 4;

/// An artifact store rooted at one URI.
pub struct ArtifactStore {
    root: String,
    pub(crate) store: Arc<dyn ObjectStore>,
    /// When abandoned multipart uploads were last purged (Unix seconds).
    pub(crate) last_purge: AtomicI64,
}

/// One child of a listed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The child's name (a single segment).
    pub name: String,
    pub is_dir: bool,
    /// Size in bytes; 0 for directories.
    pub size: u64,
}

/// Which bytes of an artifact to read (the forms of an HTTP `Range` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..=end` (an `end` past the object's end is clamped).
    Inclusive { start: u64, end: u64 },
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

/// An artifact being read.
pub struct Download {
    /// The whole object's size.
    pub size: u64,
    /// The bytes `stream` yields.
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

impl ArtifactStore {
    /// Opens the store at `uri`: a directory path or `file://` URI (created if
    /// missing), `s3://bucket[/prefix]` (settings from `AWS_*` variables), or
    /// `memory://`.
    pub fn from_uri(uri: &str) -> Result<Self, ArtifactError> {
        Self::from_uri_with_env(uri, |key| std::env::var(key).ok())
    }

    /// Like [`ArtifactStore::from_uri`], reading the S3 endpoint, region and
    /// credentials through `env` instead of the process environment (which
    /// `object_store` still consults for everything else).
    pub fn from_uri_with_env(
        uri: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ArtifactError> {
        let config = |reason: String| ArtifactError::Config {
            uri: uri.to_string(),
            reason,
        };
        let store: Arc<dyn ObjectStore> = if let Some(rest) = uri.strip_prefix("s3://") {
            s3(rest, &env).map_err(config)?
        } else if uri.starts_with("memory://") {
            Arc::new(InMemory::new())
        } else if let Some(rest) = uri.strip_prefix("file://") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(config(
                    "a file URI needs an absolute path on this host".into(),
                ));
            }
            let path = percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| config("the path is not UTF-8".into()))?;
            local(&path).map_err(config)?
        } else if uri.contains("://") || uri.starts_with("mlflow-artifacts:") {
            return Err(config(
                "unsupported scheme; use a directory, file://, s3://, http(s):// or memory://"
                    .into(),
            ));
        } else {
            local(uri).map_err(config)?
        };
        Ok(ArtifactStore {
            root: uri.to_string(),
            store,
            last_purge: AtomicI64::new(0),
        })
    }

    /// A write-mostly store over HTTP: `PUT` and `GET` of `<url>/<path>` — a Sextant
    /// server's proxied artifact API (`http://host:5000/api/2.0/mlflow-artifacts/artifacts`)
    /// or a WebDAV server. Each write is one request (no multipart: keep files under
    /// [`PART_SIZE`]); listing needs WebDAV. What a separate gateway writes capture with.
    pub fn http(url: &str) -> Result<Self, ArtifactError> {
        let store = http(url).map_err(|reason| ArtifactError::Config {
            uri: url.to_string(),
            reason,
        })?;
        Ok(ArtifactStore {
            root: url.to_string(),
            store,
            last_purge: AtomicI64::new(0),
        })
    }

    /// The root URI.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Stores `body` at `path`, replacing what was there, and returns its size.
    /// Small bodies go up in one request; larger ones as a multipart upload
    /// that holds at most a few parts in memory. Nothing is visible at `path`
    /// until the whole body is stored, and a failed upload leaves nothing.
    pub async fn put<S, E>(&self, path: &SafePath, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let name = path.to_string();
        let body = body.map_err(move |e| ArtifactError::Body {
            path: name.clone(),
            reason: e.to_string(),
        });
        self.put_stream(path, body).await
    }

    /// [`ArtifactStore::put`] of a body whose errors are already artifact errors.
    pub(crate) async fn put_stream<S>(&self, path: &SafePath, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, ArtifactError>> + Send,
    {
        let location = self.writable(path)?;
        let mut body = pin!(body);
        let mut head = Vec::new();
        let mut total: u64 = 0;
        while total < PART_SIZE as u64 {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    total += chunk.len() as u64;
                    head.push(chunk);
                }
                None => {
                    let payload: PutPayload = head.into_iter().collect();
                    self.store
                        .put(&location, payload)
                        .await
                        .map_err(|e| backend(path, e))?;
                    tracing::debug!(%path, bytes = total, "stored artifact");
                    return Ok(total);
                }
            }
        }
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|e| backend(path, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in head {
            writer.put(chunk);
        }
        loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(backend(path, e));
            }
            match body.next().await {
                Some(Ok(chunk)) => {
                    total += chunk.len() as u64;
                    writer.put(chunk);
                }
                Some(Err(e)) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(%path, error = %abort, "aborting a failed upload");
                    }
                    return Err(e);
                }
                None => break,
            }
        }
        writer.finish().await.map_err(|e| backend(path, e))?;
        tracing::debug!(%path, bytes = total, "stored artifact (multipart)");
        Ok(total)
    }

    /// Reads the whole artifact at `path` into memory: for small files only
    /// (definitions, metrics, ground-truth batches), never models or data.
    pub async fn read_all(&self, path: &SafePath) -> Result<Vec<u8>, ArtifactError> {
        let mut download = self.get(path, None).await?;
        let mut out = Vec::with_capacity(usize::try_from(download.size).unwrap_or(0));
        while let Some(chunk) = download.stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Reads the artifact at `path`, or part of it, as a stream.
    pub async fn get(
        &self,
        path: &SafePath,
        range: Option<ByteRange>,
    ) -> Result<Download, ArtifactError> {
        let location = self.location(path);
        let range = match range {
            None => None,
            Some(r) => {
                let size = self
                    .store
                    .head(&location)
                    .await
                    .map_err(|e| backend(path, e))?
                    .size;
                let unsatisfiable = || ArtifactError::RangeNotSatisfiable {
                    path: path.to_string(),
                    size,
                };
                let resolved = match r {
                    ByteRange::Inclusive { start, end } if start <= end && start < size => {
                        start..(end + 1).min(size)
                    }
                    ByteRange::From(start) if start < size => start..size,
                    ByteRange::Suffix(n) if n > 0 && size > 0 => size.saturating_sub(n)..size,
                    _ => return Err(unsatisfiable()),
                };
                Some(GetRange::Bounded(resolved))
            }
        };
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&location, options)
            .await
            .map_err(|e| backend(path, e))?;
        let size = result.meta.size;
        let range = result.range.clone();
        let name = path.to_string();
        let stream = result
            .into_stream()
            .map_err(move |e| backend_named(&name, e))
            .boxed();
        Ok(Download {
            size,
            range,
            stream,
        })
    }

    /// The direct children of the directory `dir`, sorted by name, like
    /// MLflow's `list_artifacts`. A missing directory, or a file, has none.
    pub async fn list(&self, dir: &SafePath) -> Result<Vec<Entry>, ArtifactError> {
        let prefix = self.location(dir);
        let listing = if dir.is_root() { None } else { Some(&prefix) };
        let listed = match self.store.list_with_delimiter(listing).await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(backend(dir, e)),
        };
        let mut entries: Vec<Entry> = listed
            .common_prefixes
            .iter()
            .filter_map(last_name)
            .map(|name| Entry {
                name,
                is_dir: true,
                size: 0,
            })
            .chain(
                listed
                    .objects
                    .iter()
                    .filter(|o| o.location != prefix)
                    .filter_map(|o| {
                        last_name(&o.location).map(|name| Entry {
                            name,
                            is_dir: false,
                            size: o.size,
                        })
                    }),
            )
            // The store's own data is no artifact.
            .filter(|e| !(dir.is_root() && e.name.eq_ignore_ascii_case(RESERVED_DIR)))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Deletes the artifact at `path`, or everything under it if it is a
    /// directory. Deleting nothing is not an error.
    pub async fn delete(&self, path: &SafePath) -> Result<(), ArtifactError> {
        let location = self.writable(path)?;
        let children = self
            .store
            .list(Some(&location))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = self.store.delete_stream(children);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(path, e)),
            }
        }
        // A file at `path` itself. `head` first: a local directory left
        // behind (holding only empty directories) must not be "deleted" as a file.
        match self.store.head(&location).await {
            Ok(_) => match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(backend(path, e)),
            },
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(path, e)),
        }
    }

    /// The backend location of `path`.
    pub(crate) fn location(&self, path: &SafePath) -> Path {
        location_of(path)
    }

    /// The location of `path` for a write, which the root cannot be.
    fn writable(&self, path: &SafePath) -> Result<Path, ArtifactError> {
        if path.is_root() {
            return Err(InvalidPath {
                path: String::new(),
                reason: "the store's root itself",
            }
            .into());
        }
        Ok(self.location(path))
    }
}

/// The backend location of a path. Segments are stored under their own
/// names, so a directory or bucket written by MLflow reads the same; only a
/// name holding `%` is stored escaped (by `PathPart`), because the local
/// backend would otherwise decode it on its way to the file system.
pub(crate) fn location_of(path: &SafePath) -> Path {
    Path::from_iter(path.segments().iter().map(|s| match s.contains('%') {
        false => PathPart::parse(s).unwrap_or_else(|_| PathPart::from(s.as_str())),
        true => PathPart::from(s.as_str()),
    }))
}

/// The name of a backend location's last segment; only escaped names hold `%`.
fn last_name(location: &Path) -> Option<String> {
    let part = location.parts().last()?;
    Some(
        percent_decode_str(part.as_ref())
            .decode_utf8_lossy()
            .into_owned(),
    )
}

pub(crate) fn backend(path: &SafePath, e: object_store::Error) -> ArtifactError {
    backend_named(&path.to_string(), e)
}

pub(crate) fn backend_named(path: &str, e: object_store::Error) -> ArtifactError {
    match e {
        object_store::Error::NotFound { .. } => ArtifactError::NotFound(path.to_string()),
        source => ArtifactError::Backend {
            path: path.to_string(),
            source,
        },
    }
}

/// A local directory, created if missing. Deleting a directory's last file
/// removes the emptied directories too, so listings match MLflow's.
fn http(uri: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err("an HTTP store needs an http:// or https:// URL".into());
    }
    let store = object_store::http::HttpBuilder::new()
        .with_url(uri.trim_end_matches('/'))
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

fn local(dir: &str) -> Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {dir}: {e}"))?;
    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| e.to_string())?;
    Ok(Arc::new(fs.with_automatic_cleanup(true)))
}

/// An S3 bucket, optionally under a key prefix. `AWS_ENDPOINT_URL_S3` (or
/// `AWS_ENDPOINT_URL`) points at an S3-compatible server; a plain-HTTP
/// endpoint is allowed, as local test servers use one.
fn s3(rest: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn ObjectStore>, String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("no bucket name".into());
    }
    let var = |key: &str| env(key).filter(|v| !v.is_empty());
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")) {
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
    builder = builder.with_region(region.unwrap_or_else(|| "us-east-1".into()));
    if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = var("AWS_SESSION_TOKEN") {
            builder = builder.with_token(token);
        }
    }
    let s3 = builder.build().map_err(|e| e.to_string())?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok(Arc::new(s3));
    }
    let prefix = location_of(&SafePath::parse(prefix).map_err(|e| e.to_string())?);
    Ok(Arc::new(PrefixStore::new(s3, prefix)))
}
