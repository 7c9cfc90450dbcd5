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
use sextant_artifacts::{ArtifactError, ArtifactStore, SafePath};
use sextant_pipelines::outputs::{self, Manifest};
use tokio::io::AsyncReadExt;

/// Files are streamed in chunks of this size.
const CHUNK: usize = 1 << 20;

/// Where outputs are stored: the server's artifact store, or the server's
/// artifact API seen from a remote worker (`super::worker`).
pub trait Blobs: Sync {
    /// The whole object at `path`; `None` when there is none.
    fn read(
        &self,
        path: &SafePath,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, String>> + Send;
    /// Streams the object at `path` into the local file `target`; returns
    /// the size and SHA-256 of what it wrote.
    fn get_file(
        &self,
        path: &SafePath,
        target: &Path,
    ) -> impl std::future::Future<Output = Result<(u64, String), String>> + Send;
    /// Streams the local file `file` to `dest`.
    fn put_file(
        &self,
        dest: &SafePath,
        file: &Path,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Stores `data` at `dest`.
    fn put_bytes(
        &self,
        dest: &SafePath,
        data: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

impl Blobs for ArtifactStore {
    async fn read(&self, path: &SafePath) -> Result<Option<Vec<u8>>, String> {
        match self.read_all(path).await {
            Ok(data) => Ok(Some(data)),
            Err(ArtifactError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn get_file(&self, path: &SafePath, target: &Path) -> Result<(u64, String), String> {
        let download = self.get(path, None).await.map_err(|e| e.to_string())?;
        write_stream(download.stream, target).await
    }

    async fn put_file(&self, dest: &SafePath, file: &Path) -> Result<(), String> {
        let body = file_stream(file).await?;
        self.put(dest, body)
            .await
            .map(|_| ())
            .map_err(|e| format!("storing {}: {e}", file.display()))
    }

    async fn put_bytes(&self, dest: &SafePath, data: Vec<u8>) -> Result<(), String> {
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(data)) });
        self.put(dest, body)
            .await
            .map(|_| ())
            .map_err(|e| format!("storing {dest}: {e}"))
    }
}

fn safe(path: &str) -> Result<SafePath, String> {
    SafePath::parse(path).map_err(|e| format!("output path {path}: {e}"))
}

fn locations(digest: &str) -> Result<(SafePath, SafePath), String> {
    let (dir, manifest) =
        outputs::object_dir(digest).ok_or_else(|| format!("invalid output digest '{digest}'"))?;
    Ok((safe(&dir)?, safe(&manifest)?))
}

/// Hashes `dir` and stores it under its digest unless already stored.
pub async fn publish(store: &impl Blobs, dir: &Path) -> Result<Manifest, String> {
    let d = dir.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || outputs::of_dir(&d))
        .await
        .map_err(|e| format!("hashing task failed: {e}"))?
        .map_err(|e| e.to_string())?;
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
        .map_err(|e| format!("storing the manifest of output {}: {e}", manifest.digest))?;
    Ok(manifest)
}

/// Whether the output with this digest is wholly in the store.
pub async fn is_stored(store: &impl Blobs, digest: &str) -> Result<bool, String> {
    let (_, manifest) = locations(digest)?;
    Ok(store.read(&manifest).await?.is_some())
}

/// The marker file recording which output a run has at `<run_dir>/<step>/<output>`.
pub fn marker(run_dir: &Path, step: &str, output: &str) -> PathBuf {
    run_dir.join(".digests").join(step).join(output)
}

/// Records that `<run_dir>/<step>/<output>` holds the output `digest`.
pub fn mark(run_dir: &Path, step: &str, output: &str, digest: &str) -> Result<(), String> {
    let m = marker(run_dir, step, output);
    if let Some(parent) = m.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::write(&m, digest).map_err(|e| format!("writing {}: {e}", m.display()))
}

/// Makes `<run_dir>/<step>/<output>` hold the output `digest`, fetching it
/// from the store unless the run's marker says it is already there.
pub async fn ensure_local(
    store: &impl Blobs,
    run_dir: &Path,
    step: &str,
    output: &str,
    digest: &str,
) -> Result<PathBuf, String> {
    let dest = run_dir.join(step).join(output);
    let m = marker(run_dir, step, output);
    if tokio::fs::read_to_string(&m).await.ok().as_deref() == Some(digest) && dest.is_dir() {
        return Ok(dest);
    }
    fetch(store, digest, &dest).await?;
    mark(run_dir, step, output, digest)?;
    Ok(dest)
}

/// Downloads the output `digest` into `dest`, replacing what was there.
/// Files land in a sibling directory first, moved into place when complete.
pub async fn fetch(store: &impl Blobs, digest: &str, dest: &Path) -> Result<(), String> {
    let (root, manifest_path) = locations(digest)?;
    let stored = store
        .read(&manifest_path)
        .await?
        .ok_or_else(|| format!("output {digest} is not in the artifact store"))?;
    let manifest: Manifest = serde_json::from_slice(&stored)
        .map_err(|e| format!("the stored manifest of output {digest} is unreadable: {e}"))?;
    let parent = dest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dest.display()))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
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
            .map_err(|e| format!("creating {}: {e}", staging.display()))?;
        for f in &manifest.files {
            let target = staging.join(&f.path);
            if let Some(p) = target.parent() {
                tokio::fs::create_dir_all(p)
                    .await
                    .map_err(|e| format!("creating {}: {e}", p.display()))?;
            }
            let (size, sha256) = store.get_file(&root.join(&safe(&f.path)?), &target).await?;
            if size != f.size || sha256 != f.sha256 {
                return Err(format!(
                    "stored file {} of output {digest} does not match its manifest",
                    f.path
                ));
            }
        }
        if tokio::fs::metadata(dest).await.is_ok() {
            tokio::fs::remove_dir_all(dest)
                .await
                .map_err(|e| format!("replacing {}: {e}", dest.display()))?;
        }
        tokio::fs::rename(&staging, dest)
            .await
            .map_err(|e| format!("moving {} into place: {e}", dest.display()))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
    result
}

/// Writes a stream of chunks into the local file `target`; returns the size
/// and SHA-256 of what it wrote.
pub async fn write_stream<S, E>(mut stream: S, target: &Path) -> Result<(u64, String), String>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(|e| format!("creating {}: {e}", target.display()))?;
    let mut h = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        h.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", target.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("writing {}: {e}", target.display()))?;
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

/// A local file as a stream of chunks.
pub async fn file_stream(
    file: &Path,
) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static, String> {
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("reading {}: {e}", file.display()))?;
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
