//! What the pipelines crate's integration tests share: one poll with a
//! deadline.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` until it answers `Some`, failing after `within` with `what`
/// it was waiting for. The pause between probes is a poll interval, not a
/// wait for the work: the deadline bounds the test.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
