//! The parts of the MLflow API Sextant's own processes call: where a model
//! version's files are, and the proxied artifact store (`mlflow-artifacts`)
//! a worker and a remote gateway read and write through.

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStream};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// A directory listing of the proxied artifact store.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArtifactList {
    #[serde(default)]
    pub files: Vec<ArtifactFile>,
}

/// One entry of an [`ArtifactList`].
#[derive(Debug, Clone, Deserialize)]
pub struct ArtifactFile {
    /// The name relative to the listed directory.
    pub path: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(default)]
    pub file_size: Option<u64>,
}

impl Client {
    /// The artifact URI of a model version's files
    /// (`model-versions/get-download-uri`).
    pub async fn model_version_download_uri(
        &self,
        name: &str,
        version: i64,
    ) -> Result<String, ClientError> {
        let segments = ["api", "2.0", "mlflow", "model-versions", "get-download-uri"];
        let query = [("name", name.to_string()), ("version", version.to_string())];
        let answer: Value = self.get(&segments, &query).await?;
        let url = self.url(&segments, &query);
        match answer["artifact_uri"].as_str() {
            Some(uri) => Ok(uri.to_string()),
            None => Err(ClientError::Unexpected {
                method: Method::GET,
                url: url.to_string(),
                status: 200,
                text: format!("no artifact_uri in {answer}"),
                base: self.base.to_string(),
            }),
        }
    }

    /// The URL of the proxied artifact at `path` (`a/b/file`).
    fn artifact_url(&self, path: &str) -> Url {
        let mut segments = vec!["api", "2.0", "mlflow-artifacts", "artifacts"];
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        self.url(&segments, &[])
    }

    /// Lists the proxied artifact directory `path`.
    pub async fn list_artifacts(&self, path: &str) -> Result<ArtifactList, ClientError> {
        self.get(
            &["api", "2.0", "mlflow-artifacts", "artifacts"],
            &[("path", path.to_string())],
        )
        .await
    }

    /// The proxied artifact at `path` as a stream of its bytes; `None` when
    /// there is no such artifact.
    pub async fn artifact_stream(
        &self,
        path: &str,
    ) -> Result<Option<BoxStream<'static, Result<Bytes, ClientError>>>, ClientError> {
        let url = self.artifact_url(path);
        let resp = self
            .send(Method::GET, url.clone(), Body::None, Wait::Usual)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.refusal(Method::GET, url, resp).await);
        }
        let stream = resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| ClientError::Read {
                method: Method::GET,
                url: url.to_string(),
                source,
            })
        });
        Ok(Some(stream.boxed()))
    }

    /// The whole proxied artifact at `path`; `None` when there is none.
    pub async fn artifact_bytes(&self, path: &str) -> Result<Option<Bytes>, ClientError> {
        let url = self.artifact_url(path);
        let resp = self
            .send(Method::GET, url.clone(), Body::None, Wait::Usual)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.refusal(Method::GET, url, resp).await);
        }
        match resp.bytes().await {
            Ok(b) => Ok(Some(b)),
            Err(source) => Err(ClientError::Read {
                method: Method::GET,
                url: url.to_string(),
                source,
            }),
        }
    }

    /// Stores `data` as the proxied artifact at `path`.
    pub async fn put_artifact(&self, path: &str, data: Bytes) -> Result<(), ClientError> {
        self.put_artifact_body(path, reqwest::Body::from(data))
            .await
    }

    /// Stores what `stream` yields as the proxied artifact at `path`, never
    /// holding it whole.
    pub async fn put_artifact_stream<S>(&self, path: &str, stream: S) -> Result<(), ClientError>
    where
        S: TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        self.put_artifact_body(path, reqwest::Body::wrap_stream(stream))
            .await
    }

    async fn put_artifact_body(&self, path: &str, body: reqwest::Body) -> Result<(), ClientError> {
        let url = self.artifact_url(path);
        let resp = self
            .send(Method::PUT, url.clone(), Body::Raw(body), Wait::Usual)
            .await?;
        if !resp.status().is_success() {
            return Err(self.refusal(Method::PUT, url, resp).await);
        }
        Ok(())
    }
}
