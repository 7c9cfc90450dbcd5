//! How every call is made: the URL under the server's base, the body, the
//! timeout, and the answer read as JSON or as the error it is.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Client, ClientError};

/// A request body.
pub(crate) enum Body {
    None,
    Json(Value),
    Yaml(String),
    Raw(reqwest::Body),
}

impl Body {
    /// `value` as a JSON body.
    pub(crate) fn json(value: &impl Serialize) -> Body {
        Body::Json(serde_json::to_value(value).expect("request types serialize"))
    }
}

/// How long a call may take.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// The client's timeout.
    Usual,
    /// The client's timeout with this on top (a long-poll, a child process
    /// starting on the server).
    Longer(Duration),
    /// Exactly this, whatever the client's timeout (a worker's claim).
    Exactly(Duration),
}

impl Client {
    /// The URL of `segments` under the server's base, each segment escaped.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in server_url: the base URL has a path")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends one request; any answer is returned, whatever its status.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Body,
        wait: Wait,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.request(method, url);
        let timeout = match wait {
            Wait::Usual => self.timeout,
            Wait::Longer(extra) => self.timeout.map(|t| t + extra),
            Wait::Exactly(t) => Some(t),
        };
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Yaml(text) => req
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(text),
            Body::Raw(b) => req.body(b),
        };
        req.send()
            .await
            .map_err(|e| ClientError::unreachable(&self.base, e))
    }

    /// Sends one request and reads its JSON answer as `T` (`null` for an
    /// empty answer).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Body,
        wait: Wait,
    ) -> Result<T, ClientError> {
        Ok(self.call_status(method, url, body, wait).await?.1)
    }

    /// [`Client::call`], keeping the successful answer's status: where it
    /// says something the body does not (a PUT that created rather than
    /// replaced).
    pub(crate) async fn call_status<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Body,
        wait: Wait,
    ) -> Result<(StatusCode, T), ClientError> {
        let resp = self.send(method.clone(), url.clone(), body, wait).await?;
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(source) => {
                return Err(ClientError::Read {
                    method,
                    url: url.to_string(),
                    source,
                });
            }
        };
        let json = if status == StatusCode::NO_CONTENT || (status.is_success() && bytes.is_empty())
        {
            Ok(Value::Null)
        } else {
            serde_json::from_slice::<Value>(&bytes)
        };
        match json {
            Ok(v) if status.is_success() => serde_json::from_value(v)
                .map(|answer| (status, answer))
                .map_err(|source| ClientError::Decode {
                    method,
                    url: url.to_string(),
                    source,
                }),
            Ok(v) if v["message"].is_string() => Err(ClientError::Server {
                status: status.as_u16(),
                code: v["error_code"].as_str().unwrap_or("UNKNOWN").to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            }),
            Ok(_) | Err(_) => Err(self.unexpected(method, url, status, &bytes)),
        }
    }

    /// An answer that is not Sextant's, with the start of its body. A 401 or
    /// 403 in that form is the refusal of an MLflow-style authentication
    /// layer (a plain-text body), told as such.
    pub(crate) fn unexpected(
        &self,
        method: Method,
        url: Url,
        status: StatusCode,
        bytes: &[u8],
    ) -> ClientError {
        match status {
            StatusCode::UNAUTHORIZED => {
                return ClientError::Unauthenticated {
                    method,
                    url: url.to_string(),
                    sent: self.sends_credentials,
                };
            }
            StatusCode::FORBIDDEN => {
                return ClientError::PermissionDenied {
                    method,
                    url: url.to_string(),
                };
            }
            _ => {}
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        let text = text.get(..200).unwrap_or(text);
        ClientError::Unexpected {
            method,
            url: url.to_string(),
            status: status.as_u16(),
            text: text.to_string(),
            base: self.base.to_string(),
        }
    }

    /// A refusal of a request whose successful answer is not JSON (an
    /// artifact): the server's error when it sent one.
    pub(crate) async fn refusal(
        &self,
        method: Method,
        url: Url,
        resp: reqwest::Response,
    ) -> ClientError {
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(source) => {
                return ClientError::Read {
                    method,
                    url: url.to_string(),
                    source,
                };
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v["message"].is_string() => ClientError::Server {
                status: status.as_u16(),
                code: v["error_code"].as_str().unwrap_or("UNKNOWN").to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            },
            _ => self.unexpected(method, url, status, &bytes),
        }
    }

    /// `GET` a JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        self.call(Method::GET, url, Body::None, Wait::Usual).await
    }
}
