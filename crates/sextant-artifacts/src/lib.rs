//! Artifact storage over the `object_store` crate (local files, S3, memory):
//! safe relative paths, streaming upload and download, MLflow-style listing.
//!
//! Invariants: every path reaching a backend is a [`SafePath`] (no way out of
//! the store's root), and no operation holds a whole artifact in memory.
//! Client-driven multipart uploads stage their parts under a reserved
//! top-level directory that no client path can name and no listing shows.

pub mod data_roots;
mod multipart;
mod path;
mod proxied;
mod store;

pub use multipart::{CompletedPart, MAX_PARTS, PURGE_INTERVAL, STALE_UPLOAD_AGE, UploadId};
pub use path::{InvalidPath, SafePath};
pub use proxied::{ARTIFACTS_MARKER, NotProxied, proxied_root};
pub use store::{ArtifactStore, ByteRange, Download, Entry, PART_SIZE};

/// What can go wrong with an artifact operation.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The path is unsafe or malformed.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// Nothing is stored at that path.
    #[error("no such artifact: {0}")]
    NotFound(String),
    /// No multipart upload has that id (it never existed, or was completed or aborted).
    #[error("no such multipart upload: {0}")]
    NoSuchUpload(String),
    /// A multipart-upload request that does not fit its upload (part
    /// numbers, ETags, target).
    #[error("{0}")]
    InvalidMultipart(String),
    /// The requested byte range starts at or past the end of the object.
    #[error("range not satisfiable for {path} of {size} bytes")]
    RangeNotSatisfiable { path: String, size: u64 },
    /// The store URI names no supported backend, or its settings are wrong.
    #[error("artifact store {uri}: {reason}")]
    Config { uri: String, reason: String },
    /// The upload body failed before it ended (the client went away, most often).
    #[error("reading the upload body for {path}: {reason}")]
    Body { path: String, reason: String },
    /// The backend failed.
    #[error("artifact store failed on {path}: {source}")]
    Backend {
        path: String,
        #[source]
        source: object_store::Error,
    },
}
