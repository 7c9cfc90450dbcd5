//! Per-variant cumulative counters and latency histograms. Counters only grow, so a
//! rollout controller takes two [`VariantSnapshot`]s and diffs them ([`VariantSnapshot::since`])
//! to get a window's error rate, rejected rate and p99.
//!
//! A request refused because its variant was at its concurrency limit is *rejected*, not an
//! error: it says the endpoint lacks capacity, not that the model is wrong, so a burst of
//! traffic must not make an identical canary look broken. Error rates are over the requests
//! the model answered; the rejected rate is over all requests routed to the variant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`); µs-scale at the low
/// end because in-process inference answers in tens of microseconds.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with fixed buckets, updated lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Counts per bucket, non-cumulative; the last one is `+Inf`.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// The current counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramSnapshot {
    /// Per bucket of [`LATENCY_BUCKETS`] plus `+Inf`, non-cumulative.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1), as the upper bound of the bucket it falls in (so never
    /// under the true value); `None` with no observations. The `+Inf` bucket reports the
    /// largest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(
                    LATENCY_BUCKETS
                        .get(i)
                        .copied()
                        .unwrap_or(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1]),
                );
            }
        }
        LATENCY_BUCKETS.last().copied()
    }

    /// Observations of both (two gateways' histograms of one variant).
    pub fn plus(&self, other: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .zip(&other.counts)
                .map(|(a, b)| a + b)
                .collect(),
            sum_seconds: self.sum_seconds + other.sum_seconds,
        }
    }

    /// What was observed after `earlier`.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum_seconds: (self.sum_seconds - earlier.sum_seconds).max(0.0),
        }
    }
}

/// Cumulative counters of one variant, kept across variant-set swaps by name.
#[derive(Debug, Default)]
pub struct VariantStats {
    requests: AtomicU64,
    errors: AtomicU64,
    client_errors: AtomicU64,
    rejected: AtomicU64,
    in_flight: AtomicU64,
    latency: Histogram,
}

/// How a request ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx.
    Ok,
    /// The client's mistake (4xx): not an error of the variant.
    ClientError,
    /// A 5xx, a timeout or a model failure: an error of the variant.
    Error,
}

impl VariantStats {
    /// Records a request that reached the variant's model.
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {}
            Outcome::ClientError => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Error => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency.observe(latency);
    }

    /// Records a request refused because the variant was saturated (a 503 that counts as
    /// rejected, not as an error of the variant).
    pub fn record_rejected(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a request as running until the guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// The counters now.
    pub fn snapshot(&self, name: &str, shadow: bool) -> VariantSnapshot {
        VariantSnapshot {
            name: name.to_owned(),
            shadow,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            client_errors: self.client_errors.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// Decrements the in-flight gauge on drop.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One variant's counters at a moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VariantSnapshot {
    /// Variant name.
    pub name: String,
    /// Whether it is the shadow variant.
    pub shadow: bool,
    /// Requests routed to it (including rejected ones).
    pub requests: u64,
    /// Requests it failed: 5xx answers, timeouts, model failures (not rejections).
    pub errors: u64,
    /// 4xx answers (the client's mistakes).
    pub client_errors: u64,
    /// Requests refused with 503 because the variant was at its concurrency limit; not
    /// part of `errors`.
    pub rejected: u64,
    /// Requests running now (a gauge, not diffed).
    pub in_flight: u64,
    /// Latency of requests that reached the model.
    pub latency: HistogramSnapshot,
}

impl VariantSnapshot {
    /// Both together: one variant's counters on two gateways.
    pub fn plus(&self, other: &VariantSnapshot) -> VariantSnapshot {
        VariantSnapshot {
            name: self.name.clone(),
            shadow: self.shadow,
            requests: self.requests + other.requests,
            errors: self.errors + other.errors,
            client_errors: self.client_errors + other.client_errors,
            rejected: self.rejected + other.rejected,
            in_flight: self.in_flight + other.in_flight,
            latency: self.latency.plus(&other.latency),
        }
    }

    /// Whether its histogram has the buckets this build counts in (a report from
    /// another gateway is checked with it).
    pub fn well_formed(&self) -> bool {
        self.latency.counts.len() == LATENCY_BUCKETS.len() + 1
            && self.latency.sum_seconds.is_finite()
            && self.latency.sum_seconds >= 0.0
    }

    /// What happened after `earlier` (the same variant's older snapshot).
    pub fn since(&self, earlier: &VariantSnapshot) -> VariantSnapshot {
        VariantSnapshot {
            name: self.name.clone(),
            shadow: self.shadow,
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            client_errors: self.client_errors.saturating_sub(earlier.client_errors),
            rejected: self.rejected.saturating_sub(earlier.rejected),
            in_flight: self.in_flight,
            latency: self.latency.since(&earlier.latency),
        }
    }

    /// Requests that reached the model (routed minus rejected).
    pub fn answered(&self) -> u64 {
        self.requests.saturating_sub(self.rejected)
    }

    /// `errors / answered`; `None` when the model answered nothing.
    pub fn error_rate(&self) -> Option<f64> {
        let answered = self.answered();
        (answered > 0).then(|| self.errors as f64 / answered as f64)
    }

    /// `rejected / requests`; `None` with no requests.
    pub fn rejected_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.rejected as f64 / self.requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.observe(Duration::from_micros(40));
        }
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        assert_eq!(s.quantile(0.5), Some(0.000_05));
        assert_eq!(s.quantile(0.99), Some(0.005));
        assert_eq!(s.quantile(1.0), Some(30.0));
        assert_eq!(
            HistogramSnapshot {
                counts: vec![0; 19],
                sum_seconds: 0.0
            }
            .quantile(0.5),
            None
        );
    }

    #[test]
    fn snapshots_diff_into_a_window() {
        let v = VariantStats::default();
        v.record(Outcome::Ok, Duration::from_micros(10));
        let before = v.snapshot("a", false);
        v.record(Outcome::Error, Duration::from_millis(20));
        v.record(Outcome::ClientError, Duration::from_micros(10));
        v.record_rejected();
        let window = v.snapshot("a", false).since(&before);
        assert_eq!(
            (
                window.requests,
                window.errors,
                window.client_errors,
                window.rejected
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(window.latency.count(), 2);
        assert_eq!(window.latency.quantile(0.99), Some(0.025));
        // One error of the two answered; the rejection is capacity, not an error.
        assert!((window.error_rate().unwrap() - 0.5).abs() < 1e-12);
        assert!((window.rejected_rate().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }
}
