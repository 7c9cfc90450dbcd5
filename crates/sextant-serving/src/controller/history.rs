//! Each endpoint's traffic over the last hour, per variant: every gateway's
//! cumulative counters (this server's own and the separate ones that report),
//! sampled every [`SAMPLE_EVERY_MS`] by the controller's loop and kept in this
//! process's memory for [`KEPT`] samples. A restart starts the series afresh;
//! `/metrics` is the place for long-term series.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{Deps, EndpointError, Endpoints};
use crate::VariantSnapshot;

/// How often the counters are sampled, in milliseconds of the controller's clock.
pub const SAMPLE_EVERY_MS: i64 = 10_000;

/// Samples kept per endpoint: an hour at [`SAMPLE_EVERY_MS`].
pub const KEPT: usize = 360;

/// Every source's counters for one endpoint at one moment.
pub(super) struct Sample {
    at_ms: i64,
    sources: Vec<(String, Vec<VariantSnapshot>)>,
}

/// The samples of each endpoint, oldest first.
pub(super) type History = HashMap<String, VecDeque<Sample>>;

/// What one variant did between two samples, summed over the gateways that
/// served it in both.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficPoint {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Requests, errors, rejections and the latency histogram of the interval
    /// (`in_flight` is the gauge at its end).
    pub counters: VariantSnapshot,
}

impl Endpoints {
    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a sample of `name`'s counters when the last one is
    /// [`SAMPLE_EVERY_MS`] old (the controller calls this every tick).
    pub(super) fn sample(&self, name: &str) {
        let now = self.clock.now_ms();
        let due = self
            .history()
            .get(name)
            .and_then(VecDeque::back)
            .is_none_or(|last| now - last.at_ms >= SAMPLE_EVERY_MS);
        if !due {
            return;
        }
        let sources = self.sources(name);
        let mut all = self.history();
        let samples = all.entry(name.to_string()).or_default();
        samples.push_back(Sample {
            at_ms: now,
            sources,
        });
        let extra = samples.len().saturating_sub(KEPT);
        samples.drain(..extra);
    }

    /// Forgets the samples of endpoints this server no longer serves.
    pub(super) fn forget_history(&self, serving: &[String]) {
        self.history().retain(|name, _| serving.contains(name));
    }

    /// Per variant (by name), what it did between each two consecutive
    /// samples, oldest first, and when the first sample was taken (`None`
    /// before any).
    pub async fn traffic(
        &self,
        deps: &Deps,
        name: &str,
    ) -> Result<(Option<i64>, BTreeMap<String, Vec<TrafficPoint>>), EndpointError> {
        let n = name.to_string();
        deps.db(move |s| s.get_endpoint(&n)).await?;
        let all = self.history();
        let Some(samples) = all.get(name) else {
            return Ok((None, BTreeMap::new()));
        };
        let mut out: BTreeMap<String, Vec<TrafficPoint>> = BTreeMap::new();
        for (before, after) in samples.iter().zip(samples.iter().skip(1)) {
            for (variant, counters) in interval(before, after) {
                out.entry(variant).or_default().push(TrafficPoint {
                    start_ms: before.at_ms,
                    end_ms: after.at_ms,
                    counters,
                });
            }
        }
        Ok((samples.front().map(|s| s.at_ms), out))
    }
}

/// Each variant's counters between two samples. A gateway missing from the
/// earlier sample is left out (its counters hold more than the interval); a
/// variant new to a gateway counts from zero; a counter that went down (the
/// gateway restarted) counts from zero again.
fn interval(before: &Sample, after: &Sample) -> BTreeMap<String, VariantSnapshot> {
    let mut out: BTreeMap<String, VariantSnapshot> = BTreeMap::new();
    for (source, variants) in &after.sources {
        let Some((_, earlier)) = before.sources.iter().find(|(s, _)| s == source) else {
            continue;
        };
        for now in variants {
            let delta = match earlier.iter().find(|v| v.name == now.name) {
                Some(e) if now.requests >= e.requests => now.since(e),
                _ => now.clone(),
            };
            match out.get_mut(&now.name) {
                Some(total) => *total = total.plus(&delta),
                None => {
                    out.insert(now.name.clone(), delta);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{HistogramSnapshot, LATENCY_BUCKETS};

    fn variant(name: &str, requests: u64, errors: u64, fast: u64) -> VariantSnapshot {
        let mut counts = vec![0; LATENCY_BUCKETS.len() + 1];
        counts[0] = fast;
        VariantSnapshot {
            name: name.into(),
            shadow: false,
            requests,
            errors,
            client_errors: 0,
            rejected: 0,
            in_flight: 0,
            latency: HistogramSnapshot {
                counts,
                sum_seconds: 0.0,
            },
        }
    }

    fn sample(at_ms: i64, sources: &[(&str, Vec<VariantSnapshot>)]) -> Sample {
        Sample {
            at_ms,
            sources: sources
                .iter()
                .map(|(s, v)| (s.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn an_interval_sums_gateways_and_survives_new_variants_restarts_and_newcomers() {
        let before = sample(
            0,
            &[
                ("", vec![variant("a", 10, 1, 10)]),
                ("g1", vec![variant("a", 100, 0, 100)]),
            ],
        );
        let after = sample(
            10_000,
            &[
                // 5 more here, and a canary that appeared meanwhile.
                (
                    "",
                    vec![variant("a", 15, 2, 15), variant("a-canary", 4, 0, 4)],
                ),
                // g1 restarted: its 7 requests are all new.
                ("g1", vec![variant("a", 7, 1, 7)]),
                // g2 reports for the first time: its totals are not this interval's.
                ("g2", vec![variant("a", 1_000, 0, 1_000)]),
            ],
        );
        let got = interval(&before, &after);
        assert_eq!(got.len(), 2);
        assert_eq!((got["a"].requests, got["a"].errors), (12, 2));
        assert_eq!(got["a"].latency.count(), 12);
        assert_eq!(got["a-canary"].requests, 4);
    }
}
