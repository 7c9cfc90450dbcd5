//! Client-driven multipart uploads, as MLflow's proxied artifact service
//! offers them (`mpu/create`, one `PUT` per part, `mpu/complete`,
//! `mpu/abort`), on every backend.
//!
//! An upload lives in the store under the reserved directory
//! `.sextant-mpu/<upload id>/`, which no client path can name: a small
//! manifest (the target path and the number of parts) and one object per
//! uploaded part, `part-<n>.<token>`. The token is random and is the part's
//! ETag, so completing checks each ETag the client sends against what was
//! issued simply by finding the object; a part uploaded again gets a new
//! token, and the one the client names wins. Completing streams the parts, in
//! order, into the target with the store's own bounded-memory upload, then
//! removes the staging directory.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use object_store::PutPayload;

use crate::store::{backend, backend_named, location_of};
use crate::{ArtifactError, ArtifactStore, SafePath};

/// Most parts one upload may have (S3's limit).
pub const MAX_PARTS: u32 = 10_000;
/// Uploads untouched this long are abandoned (see [`ArtifactStore::purge_stale_uploads`]).
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Least time between two purges of abandoned uploads.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// First line of a manifest; a later format would change it.
const MANIFEST_MAGIC: &str = "sextant-mpu 1";
const MANIFEST: &str = "manifest";
/// A manifest is a few hundred bytes; anything larger is not ours.
const MAX_MANIFEST_BYTES: usize = 4096;

/// The id of a multipart upload: a random (version 4) UUID in its canonical
/// lowercase hyphenated form, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A new random id.
    pub fn generate() -> Self {
        UploadId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Accepts exactly the form [`UploadId::generate`] produces.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 36 {
            return None;
        }
        let id = uuid::Uuid::try_parse(s).ok()?;
        let canonical = id.hyphenated().to_string();
        (id.get_version() == Some(uuid::Version::Random) && canonical == s)
            .then_some(UploadId(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One part named by a client completing an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// The ETag the part's upload answered (quoted or not).
    pub etag: String,
}

/// What an upload was created for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    target: SafePath,
    num_parts: u32,
}

impl Manifest {
    fn encode(&self) -> String {
        format!("{MANIFEST_MAGIC}\n{}\n{}\n", self.num_parts, self.target)
    }

    fn decode(text: &str) -> Option<Manifest> {
        let mut lines = text.lines();
        if lines.next()? != MANIFEST_MAGIC {
            return None;
        }
        let num_parts = lines.next()?.parse().ok()?;
        let target = SafePath::parse(lines.next()?).ok()?;
        Some(Manifest { target, num_parts })
    }
}

/// A part's ETag: its token in double quotes, as S3 sends them.
fn etag_of(token: &str) -> String {
    format!("\"{token}\"")
}

/// The token inside an ETag a client sent back, if it has the issued form.
fn token_of(etag: &str) -> Option<&str> {
    let token = etag.trim();
    let token = token
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(token);
    (token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(token)
}

fn part_name(part_number: u32, token: &str) -> String {
    format!("part-{part_number:05}.{token}")
}

fn invalid(reason: impl Into<String>) -> ArtifactError {
    ArtifactError::InvalidMultipart(reason.into())
}

impl ArtifactStore {
    /// Starts an upload of `num_parts` parts that will become `target`.
    pub async fn create_multipart(
        &self,
        target: &SafePath,
        num_parts: u32,
    ) -> Result<UploadId, ArtifactError> {
        if target.is_root() {
            return Err(invalid("the upload has no file name"));
        }
        if !(1..=MAX_PARTS).contains(&num_parts) {
            return Err(invalid(format!(
                "num_parts must be between 1 and {MAX_PARTS}, not {num_parts}"
            )));
        }
        let id = UploadId::generate();
        let manifest = Manifest {
            target: target.clone(),
            num_parts,
        };
        let path = SafePath::reserved(&[id.as_str(), MANIFEST]);
        self.store
            .put(
                &self.location(&path),
                PutPayload::from(manifest.encode().into_bytes()),
            )
            .await
            .map_err(|e| backend(&path, e))?;
        tracing::debug!(upload_id = %id, %target, num_parts, "created multipart upload");
        Ok(id)
    }

    /// Stores one part of upload `id`, streamed, and returns its ETag.
    /// Uploading a part again stores it anew under a new ETag.
    pub async fn put_part<S, E>(
        &self,
        id: &UploadId,
        part_number: u32,
        body: S,
    ) -> Result<String, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: fmt::Display,
    {
        let manifest = self.manifest(id).await?;
        if !(1..=manifest.num_parts).contains(&part_number) {
            return Err(invalid(format!(
                "part number {part_number} is outside 1..={} of upload {id}",
                manifest.num_parts
            )));
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let name = part_name(part_number, &token);
        let path = SafePath::reserved(&[id.as_str(), &name]);
        let size = self.put(&path, body).await?;
        tracing::debug!(upload_id = %id, part_number, bytes = size, "stored part");
        Ok(etag_of(&token))
    }

    /// Assembles `parts` (ascending part numbers, each with the ETag its
    /// upload answered) into the upload's target, then removes the staged
    /// parts. Returns the target's size. `target` must be what the upload
    /// was created for.
    pub async fn complete_multipart(
        &self,
        id: &UploadId,
        target: &SafePath,
        parts: &[CompletedPart],
    ) -> Result<u64, ArtifactError> {
        let manifest = self.checked_manifest(id, target).await?;
        if parts.is_empty() {
            return Err(invalid("no parts to complete the upload with"));
        }
        let mut previous = 0;
        let mut names = Vec::with_capacity(parts.len());
        for part in parts {
            let n = part.part_number;
            if n <= previous || n > manifest.num_parts {
                return Err(invalid(format!(
                    "part numbers must ascend within 1..={}; got {n} after {previous}",
                    manifest.num_parts
                )));
            }
            previous = n;
            let token = token_of(&part.etag)
                .ok_or_else(|| invalid(format!("part {n}: the ETag does not match the upload")))?;
            names.push(part_name(n, token));
        }
        let staged = self.staged_names(id).await?;
        for (part, name) in parts.iter().zip(&names) {
            if !staged.contains(name) {
                return Err(invalid(format!(
                    "part {}: the ETag does not match the upload",
                    part.part_number
                )));
            }
        }
        drop(staged);
        // The body owns what it reads from, so it is `Send` for any lifetime.
        let store = self.store.clone();
        let staging = id.clone();
        let body = stream::iter(names)
            .then(move |name| {
                let store = store.clone();
                let path = SafePath::reserved(&[staging.as_str(), &name]);
                async move {
                    let result = store
                        .get(&location_of(&path))
                        .await
                        .map_err(|e| backend(&path, e))?;
                    let name = path.to_string();
                    Ok::<_, ArtifactError>(
                        result
                            .into_stream()
                            .map_err(move |e| backend_named(&name, e))
                            .boxed(),
                    )
                }
                .boxed()
            })
            .try_flatten()
            .boxed();
        let size = self.put_stream(target, body).await?;
        tracing::debug!(upload_id = %id, %target, bytes = size, "completed multipart upload");
        self.remove_upload(id).await;
        Ok(size)
    }

    /// Abandons upload `id` and removes what it staged.
    pub async fn abort_multipart(
        &self,
        id: &UploadId,
        target: &SafePath,
    ) -> Result<(), ArtifactError> {
        self.checked_manifest(id, target).await?;
        self.remove_upload(id).await;
        tracing::debug!(upload_id = %id, %target, "aborted multipart upload");
        Ok(())
    }

    /// Removes the uploads created at least `max_age` ago that were never
    /// completed or aborted (a client that died mid-upload leaves its parts
    /// behind); returns how many. Staged leftovers without a manifest go too.
    pub async fn purge_stale_uploads(&self, max_age: Duration) -> Result<usize, ArtifactError> {
        let staging = SafePath::reserved(&[]);
        let listed = match self
            .store
            .list_with_delimiter(Some(&self.location(&staging)))
            .await
        {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(backend(&staging, e)),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let cutoff = now.saturating_sub(max_age.as_secs() as i64);
        let mut purged = 0;
        for prefix in &listed.common_prefixes {
            let Some(id) = prefix.filename().and_then(UploadId::parse) else {
                continue;
            };
            let manifest = SafePath::reserved(&[id.as_str(), MANIFEST]);
            let stale = match self.store.head(&self.location(&manifest)).await {
                Ok(meta) => meta.last_modified.timestamp() <= cutoff,
                // No manifest: either a leftover, or an upload whose manifest
                // is being written right now. Only old leftovers go.
                Err(object_store::Error::NotFound { .. }) => {
                    let dir = SafePath::reserved(&[id.as_str()]);
                    let newest = self
                        .store
                        .list(Some(&self.location(&dir)))
                        .try_fold(i64::MIN, |newest, meta| async move {
                            Ok(newest.max(meta.last_modified.timestamp()))
                        })
                        .await
                        .map_err(|e| backend(&dir, e))?;
                    newest != i64::MIN && newest <= cutoff
                }
                Err(e) => return Err(backend(&manifest, e)),
            };
            if stale {
                self.remove_upload(&id).await;
                tracing::info!(upload_id = %id, "removed an abandoned multipart upload");
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Whether a purge of stale uploads is due (at most one per
    /// [`PURGE_INTERVAL`]); answering `true` counts as starting one.
    pub fn purge_due(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let last = self.last_purge.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PURGE_INTERVAL.as_secs() as i64
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The upload's manifest, if it was created for `target`.
    async fn checked_manifest(
        &self,
        id: &UploadId,
        target: &SafePath,
    ) -> Result<Manifest, ArtifactError> {
        let manifest = self.manifest(id).await?;
        if &manifest.target != target {
            return Err(invalid(format!(
                "upload {id} was created for another artifact"
            )));
        }
        Ok(manifest)
    }

    async fn manifest(&self, id: &UploadId) -> Result<Manifest, ArtifactError> {
        let path = SafePath::reserved(&[id.as_str(), MANIFEST]);
        let download = match self.get(&path, None).await {
            Ok(d) => d,
            Err(ArtifactError::NotFound(_)) => {
                return Err(ArtifactError::NoSuchUpload(id.to_string()));
            }
            Err(e) => return Err(e),
        };
        if download.size > MAX_MANIFEST_BYTES as u64 {
            return Err(ArtifactError::NoSuchUpload(id.to_string()));
        }
        let chunks: Vec<Bytes> = download.stream.try_collect().await?;
        let text = String::from_utf8(chunks.concat()).unwrap_or_default();
        Manifest::decode(&text).ok_or_else(|| ArtifactError::NoSuchUpload(id.to_string()))
    }

    /// The names of the objects staged for upload `id`.
    async fn staged_names(&self, id: &UploadId) -> Result<HashSet<String>, ArtifactError> {
        let dir = SafePath::reserved(&[id.as_str()]);
        let prefix = self.location(&dir);
        self.store
            .list(Some(&prefix))
            .map_err(|e| backend(&dir, e))
            .try_filter_map(|meta| async move { Ok(meta.location.filename().map(String::from)) })
            .try_collect()
            .await
    }

    /// Removes upload `id`'s staging directory; a failure is only logged
    /// (the upload itself is settled either way).
    async fn remove_upload(&self, id: &UploadId) {
        let dir = SafePath::reserved(&[id.as_str()]);
        if let Err(e) = self.delete(&dir).await {
            tracing::warn!(upload_id = %id, error = %e, "removing staged parts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_strict() {
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "",
            "x",
            "../../etc/passwd",
            &id.as_str().to_uppercase(),
            &id.as_str().replace('-', ""),
            &format!("{{{id}}}"),
            &format!("{id}/x"),
            // version 1
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "00000000-0000-0000-0000-000000000000",
        ] {
            assert!(UploadId::parse(bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn etags_round_trip() {
        let token = "0123456789abcdef0123456789abcdef";
        assert_eq!(token_of(&etag_of(token)), Some(token));
        assert_eq!(token_of(token), Some(token));
        assert_eq!(token_of("\"0123\""), None);
        assert_eq!(token_of("../0123456789abcdef0123456789abc"), None);
        assert_eq!(token_of("0123456789ABCDEF0123456789ABCDEF"), None);
    }

    #[test]
    fn manifests_round_trip() {
        let m = Manifest {
            target: SafePath::parse("0/r/artifacts/big file.bin").unwrap(),
            num_parts: 3,
        };
        assert_eq!(Manifest::decode(&m.encode()), Some(m));
        assert_eq!(Manifest::decode("other\n3\nx\n"), None);
        assert_eq!(Manifest::decode("sextant-mpu 1\n3\n../x\n"), None);
    }
}
