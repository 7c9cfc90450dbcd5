//! The window of an endpoint's capture: the variants watched, every
//! `yyyy/mm/dd/hh` directory the window touches, and each file's records
//! pushed into the engine's [`CaptureWindow`] one file at a time.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use sextant_artifacts::SafePath;
use sextant_monitor::engine::CaptureWindow;

use super::config::MonitorSpec;
use super::{MonitorError, Monitors};
use sextant_serving::endpoints::{canary, capture_prefix};

fn artifacts_error(e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Artifacts(e.to_string())
}

impl Monitors {
    /// The variants of `endpoint` whose capture the monitor reads: those
    /// named (and their canaries), else every one but the shadow.
    async fn watched_variants(
        &self,
        endpoint: &str,
        spec: &MonitorSpec,
        root: &SafePath,
    ) -> Result<Vec<String>, MonitorError> {
        let mut variants: Vec<String> = self
            .deps
            .artifacts
            .list(root)
            .await
            .map_err(artifacts_error)?
            .into_iter()
            .filter(|e| e.is_dir)
            .map(|e| e.name)
            .collect();
        if spec.variants.is_empty() {
            let e = endpoint.to_string();
            if let Ok(stored) = self.db(move |s| s.get_endpoint(&e)).await
                && let Ok((espec, _)) = super::baseline::parse_endpoint(&stored)
                && let Some(shadow) = espec.shadow
            {
                variants.retain(|v| *v != shadow.name);
            }
        } else {
            variants.retain(|v| spec.variants.iter().any(|w| v == w || *v == canary(w)));
        }
        Ok(variants)
    }

    /// Pushes the capture records of `endpoint` whose inference time falls in
    /// `[start, end)` into `window`, file by file.
    pub(super) async fn read_capture(
        &self,
        endpoint: &str,
        spec: &MonitorSpec,
        (start, end): (i64, i64),
        mut window: CaptureWindow,
    ) -> Result<CaptureWindow, MonitorError> {
        let prefix = capture_prefix();
        let prefix = prefix.to_string_lossy();
        let root = SafePath::parse(&format!("{prefix}/{endpoint}")).map_err(artifacts_error)?;
        let variants = self.watched_variants(endpoint, spec, &root).await?;
        let from = DateTime::<Utc>::from_timestamp_millis(start)
            .ok_or_else(|| artifacts_error("window start out of range"))?;
        let to = DateTime::<Utc>::from_timestamp_millis(end)
            .ok_or_else(|| artifacts_error("window end out of range"))?;
        for variant in &variants {
            for hour in hours(from, to) {
                let dir = SafePath::parse(&format!("{prefix}/{endpoint}/{variant}/{hour}"))
                    .map_err(artifacts_error)?;
                for entry in self
                    .deps
                    .artifacts
                    .list(&dir)
                    .await
                    .map_err(artifacts_error)?
                {
                    if entry.is_dir || !entry.name.ends_with(".jsonl") {
                        continue;
                    }
                    let file = dir.join(&SafePath::parse(&entry.name).map_err(artifacts_error)?);
                    let bytes = self
                        .deps
                        .artifacts
                        .read_all(&file)
                        .await
                        .map_err(|e| artifacts_error(format!("reading {file}: {e}")))?;
                    // Decoding and profiling is CPU work: off the async runtime.
                    window = tokio::task::spawn_blocking(move || {
                        let in_window = |time: &str| {
                            // A record without a readable time is kept: its file's hour is in the window.
                            inference_time(time).is_none_or(|t| t >= start && t < end)
                        };
                        for line in String::from_utf8_lossy(&bytes).lines() {
                            window
                                .push_line(line, in_window)
                                .map_err(sextant_monitor::engine::EngineError::from)?;
                        }
                        Ok::<_, MonitorError>(window)
                    })
                    .await
                    .map_err(|e| MonitorError::Panicked(e.to_string()))??;
                }
            }
        }
        Ok(window)
    }
}

/// An `inferenceTime` in ms (RFC 3339, with or without fractional seconds,
/// as SageMaker writes it).
fn inference_time(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Every `yyyy/mm/dd/hh` directory from `from`'s hour to `to`'s.
pub(crate) fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let mut t = from
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(from);
    let mut out = Vec::new();
    while t <= to && out.len() < 24 * 400 {
        out.push(t.format("%Y/%m/%d/%H").to_string());
        t += TimeDelta::hours(1);
    }
    out
}
