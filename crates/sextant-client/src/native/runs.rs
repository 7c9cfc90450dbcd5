//! Reads over tracking runs that MLflow's API lacks.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::v1;
use crate::request::{Body, Wait};
use crate::{Client, ClientError};

/// One run's metric: the latest value with its step and time, and the
/// smallest and largest value logged (NaN skipped; NaN when every value is).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetricSummary {
    pub run_id: String,
    pub key: String,
    #[serde(deserialize_with = "double")]
    pub last: f64,
    #[serde(deserialize_with = "double")]
    pub min: f64,
    #[serde(deserialize_with = "double")]
    pub max: f64,
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

#[derive(Deserialize)]
struct SummariesPage {
    summaries: Vec<MetricSummary>,
}

/// A double as the server writes it: a number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| serde::de::Error::custom("a double out of range")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!("not a double: {other}"))),
        },
        other => Err(serde::de::Error::custom(format!("not a double: {other}"))),
    }
}

impl Client {
    /// The latest, smallest and largest value of `keys` (every key when
    /// empty) of each run of `run_ids` (at most 100), by run id and key.
    pub async fn metric_summaries(
        &self,
        run_ids: &[&str],
        keys: &[&str],
    ) -> Result<Vec<MetricSummary>, ClientError> {
        let mut query: Vec<(&str, String)> =
            run_ids.iter().map(|r| ("run_id", r.to_string())).collect();
        query.extend(keys.iter().map(|k| ("key", k.to_string())));
        let url = self.url(&v1(&["runs", "metric-summaries"]), &query);
        let page: SummariesPage = self
            .call(reqwest::Method::GET, url, Body::None, Wait::Usual)
            .await?;
        Ok(page.summaries)
    }
}
