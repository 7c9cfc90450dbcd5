//! Publishing step outputs to the artifact store by digest, and bringing
//! them back to a local directory for the steps that read them.
//!
//! An output is stored once per digest (`sextant_pipelines::outputs`): its
//! files first, its manifest last, so a manifest in the store means the whole
//! output is there. A run keeps a marker per output it has on local disk
//! (`<run dir>/.digests/<step>/<output>`, holding the digest); a consumer
//! whose marker matches reads the local directory as is, any other
//! (a cache hit from another run, an output made by a worker on another
//! host, a restarted server with a cleaned disk) fetches it by digest first.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use sextant_artifacts::{ArtifactError, ArtifactStore, InvalidPath, NotProxied, SafePath};
use sextant_client::ClientError;
use sextant_pipelines::outputs::{self, Manifest, OutputError};
use tokio::io::AsyncReadExt;

/// Files are streamed in chunks of this size.
const CHUNK: usize = 1 << 20;

/// Why an output (or a file of a tracking run) could not be stored, found
/// or brought back. Its messages end up in a step's recorded error.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The server's artifact store failed.
    #[error(transparent)]
    Artifacts(Box<ArtifactError>),
    /// The server's artifact API failed (the store of a remote worker), or
    /// a download from it broke off.
    #[error(transparent)]
    Client(Box<ClientError>),
    /// Reading an object through the server's artifact API failed.
    #[error("reading {path}: {source}")]
    Fetch {
        path: SafePath,
        #[source]
        source: Box<ClientError>,
    },
    /// The server's artifact API has no object at `path`.
    #[error("reading {path}: 404 Not Found")]
    Absent { path: SafePath },
    /// Storing `what` (a local file, or where it was to go) failed.
    #[error("storing {what}: {source}")]
    Storing {
        what: String,
        #[source]
        source: Box<BlobError>,
    },
    /// Storing the manifest that completes output `digest` failed.
    #[error("storing the manifest of output {digest}: {source}")]
    StoringManifest {
        digest: String,
        #[source]
        source: Box<BlobError>,
    },
    /// A local file or directory could not be created.
    #[error("creating {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A local file could not be read.
    #[error("reading {}: {source}", .path.display())]
    Read {
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
    /// What was at a fetched output's place could not be removed.
    #[error("replacing {}: {source}", .path.display())]
    Replace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A fetched output could not be moved from its staging directory.
    #[error("moving {} into place: {source}", .path.display())]
    MoveIntoPlace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A place to fetch an output to that has no parent directory.
    #[error("{} has no parent directory", .0.display())]
    NoParent(PathBuf),
    /// A file of an output has a path the artifact store refuses.
    #[error("output path {path}: {source}")]
    OutputPath {
        path: String,
        #[source]
        source: InvalidPath,
    },
    /// A file of a tracking run has a path the artifact store refuses.
    #[error(transparent)]
    Path(#[from] InvalidPath),
    /// A tracking run's artifact root is not in this server's artifact store.
    #[error(transparent)]
    NotProxied(#[from] NotProxied),
    /// Not the digest of an output.
    #[error("invalid output digest '{0}'")]
    Digest(String),
    /// The output directory could not be described.
    #[error(transparent)]
    Describe(#[from] OutputError),
    /// The blocking task hashing an output directory panicked.
    #[error("hashing task failed: {0}")]
    Hashing(#[source] tokio::task::JoinError),
    /// No manifest of output `0` is in the store.
    #[error("output {0} is not in the artifact store")]
    NotStored(String),
    /// The stored manifest of output `digest` is not one.
    #[error("the stored manifest of output {digest} is unreadable: {source}")]
    Manifest {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    /// A fetched file differs from what the output's manifest says.
    #[error("stored file {file} of output {digest} does not match its manifest")]
    Mismatch { file: String, digest: String },
}

impl From<ArtifactError> for BlobError {
    fn from(e: ArtifactError) -> Self {
        BlobError::Artifacts(Box::new(e))
    }
}

impl From<ClientError> for BlobError {
    fn from(e: ClientError) -> Self {
        BlobError::Client(Box::new(e))
    }
}

impl BlobError {
    /// "storing `what`: …".
    pub fn storing(what: impl std::fmt::Display, source: impl Into<BlobError>) -> BlobError {
        BlobError::Storing {
            what: what.to_string(),
            source: Box::new(source.into()),
        }
    }
}

/// Where outputs are stored: the server's artifact store, or the server's
/// artifact API seen from a remote worker (`super::worker`).
pub trait Blobs: Sync {
    /// The whole object at `path`; `None` when there is none.
    fn read(
        &self,
        path: &SafePath,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, BlobError>> + Send;
    /// Streams the object at `path` into the local file `target`; returns
    /// the size and SHA-256 of what it wrote.
    fn get_file(
        &self,
        path: &SafePath,
        target: &Path,
    ) -> impl std::future::Future<Output = Result<(u64, String), BlobError>> + Send;
    /// Streams the local file `file` to `dest`.
    fn put_file(
        &self,
        dest: &SafePath,
        file: &Path,
    ) -> impl std::future::Future<Output = Result<(), BlobError>> + Send;
    /// Stores `data` at `dest`.
    fn put_bytes(
        &self,
        dest: &SafePath,
        data: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), BlobError>> + Send;
}

impl Blobs for ArtifactStore {
    async fn read(&self, path: &SafePath) -> Result<Option<Vec<u8>>, BlobError> {
        match self.read_all(path).await {
            Ok(data) => Ok(Some(data)),
            Err(ArtifactError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_file(&self, path: &SafePath, target: &Path) -> Result<(u64, String), BlobError> {
        let download = self.get(path, None).await?;
        write_stream(download.stream, target).await
    }

    async fn put_file(&self, dest: &SafePath, file: &Path) -> Result<(), BlobError> {
        let body = file_stream(file).await?;
        self.put(dest, body)
            .await
            .map(|_| ())
            .map_err(|e| BlobError::storing(file.display(), e))
    }

    async fn put_bytes(&self, dest: &SafePath, data: Vec<u8>) -> Result<(), BlobError> {
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(data)) });
        self.put(dest, body)
            .await
            .map(|_| ())
            .map_err(|e| BlobError::storing(dest, e))
    }
}

fn safe(path: &str) -> Result<SafePath, BlobError> {
    SafePath::parse(path).map_err(|source| BlobError::OutputPath {
        path: path.to_string(),
        source,
    })
}

fn locations(digest: &str) -> Result<(SafePath, SafePath), BlobError> {
    let (dir, manifest) =
        outputs::object_dir(digest).ok_or_else(|| BlobError::Digest(digest.to_string()))?;
    Ok((safe(&dir)?, safe(&manifest)?))
}

/// Hashes `dir` and stores it under its digest unless already stored.
pub async fn publish(store: &impl Blobs, dir: &Path) -> Result<Manifest, BlobError> {
    let d = dir.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || outputs::of_dir(&d))
        .await
        .map_err(BlobError::Hashing)??;
    if is_stored(store, &manifest.digest).await? {
        return Ok(manifest);
    }
    let (root, manifest_path) = locations(&manifest.digest)?;
    for f in &manifest.files {
        let dest = root.join(&safe(&f.path)?);
        store.put_file(&dest, &dir.join(&f.path)).await?;
    }
    let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
    store
        .put_bytes(&manifest_path, json)
        .await
        .map_err(|e| BlobError::StoringManifest {
            digest: manifest.digest.clone(),
            source: Box::new(e),
        })?;
    Ok(manifest)
}

/// Whether the output with this digest is wholly in the store.
pub async fn is_stored(store: &impl Blobs, digest: &str) -> Result<bool, BlobError> {
    let (_, manifest) = locations(digest)?;
    Ok(store.read(&manifest).await?.is_some())
}

/// The marker file recording which output a run has at `<run_dir>/<step>/<output>`.
pub fn marker(run_dir: &Path, step: &str, output: &str) -> PathBuf {
    run_dir.join(".digests").join(step).join(output)
}

/// Records that `<run_dir>/<step>/<output>` holds the output `digest`.
pub fn mark(run_dir: &Path, step: &str, output: &str, digest: &str) -> Result<(), BlobError> {
    let m = marker(run_dir, step, output);
    if let Some(parent) = m.parent() {
        std::fs::create_dir_all(parent).map_err(|source| BlobError::Create {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&m, digest).map_err(|source| BlobError::Write { path: m, source })
}

/// Makes `<run_dir>/<step>/<output>` hold the output `digest`, fetching it
/// from the store unless the run's marker says it is already there.
pub async fn ensure_local(
    store: &impl Blobs,
    run_dir: &Path,
    step: &str,
    output: &str,
    digest: &str,
) -> Result<PathBuf, BlobError> {
    let dest = run_dir.join(step).join(output);
    let m = marker(run_dir, step, output);
    if tokio::fs::read_to_string(&m).await.ok().as_deref() == Some(digest) && dest.is_dir() {
        return Ok(dest);
    }
    fetch(store, digest, &dest).await?;
    mark(run_dir, step, output, digest)?;
    Ok(dest)
}

/// `std::io::Error` → the [`BlobError`] `variant` of `path`.
fn io(
    variant: fn(PathBuf, std::io::Error) -> BlobError,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> BlobError {
    let path = path.to_path_buf();
    move |source| variant(path, source)
}

fn create(path: PathBuf, source: std::io::Error) -> BlobError {
    BlobError::Create { path, source }
}

/// Downloads the output `digest` into `dest`, replacing what was there.
/// Files land in a sibling directory first, moved into place when complete.
pub async fn fetch(store: &impl Blobs, digest: &str, dest: &Path) -> Result<(), BlobError> {
    let (root, manifest_path) = locations(digest)?;
    let stored = store
        .read(&manifest_path)
        .await?
        .ok_or_else(|| BlobError::NotStored(digest.to_string()))?;
    let manifest: Manifest =
        serde_json::from_slice(&stored).map_err(|source| BlobError::Manifest {
            digest: digest.to_string(),
            source,
        })?;
    let parent = dest
        .parent()
        .ok_or_else(|| BlobError::NoParent(dest.to_path_buf()))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(io(create, parent))?;
    let staging = parent.join(format!(
        ".fetch-{}-{}",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output"),
        uuid::Uuid::new_v4().simple()
    ));
    let result = async {
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(io(create, &staging))?;
        for f in &manifest.files {
            let target = staging.join(&f.path);
            if let Some(p) = target.parent() {
                tokio::fs::create_dir_all(p).await.map_err(io(create, p))?;
            }
            let (size, sha256) = store.get_file(&root.join(&safe(&f.path)?), &target).await?;
            if size != f.size || sha256 != f.sha256 {
                return Err(BlobError::Mismatch {
                    file: f.path.clone(),
                    digest: digest.to_string(),
                });
            }
        }
        if tokio::fs::metadata(dest).await.is_ok() {
            tokio::fs::remove_dir_all(dest)
                .await
                .map_err(io(|path, source| BlobError::Replace { path, source }, dest))?;
        }
        tokio::fs::rename(&staging, dest).await.map_err(io(
            |path, source| BlobError::MoveIntoPlace { path, source },
            dest,
        ))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    result
}

/// Writes a stream of chunks into the local file `target`; returns the size
/// and SHA-256 of what it wrote.
pub async fn write_stream<S, E>(mut stream: S, target: &Path) -> Result<(u64, String), BlobError>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BlobError>,
{
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let written = |source| BlobError::Write {
        path: target.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(io(create, target))?;
    let mut h = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Into::into)?;
        h.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(written)?;
    }
    file.flush().await.map_err(written)?;
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

/// A local file as a stream of chunks.
pub async fn file_stream(
    file: &Path,
) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static, BlobError> {
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|source| BlobError::Read {
            path: file.to_path_buf(),
            source,
        })?;
    Ok(futures::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; CHUNK];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    }))
}
