//! What each gateway serving an endpoint counted — this server's own and the
//! separate ones that report — and the rollout windows the alarms judge.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::{Deps, EndpointError, Endpoints};
use crate::VariantSnapshot;
use crate::endpoints::rollout::{Rollout, Window};
use crate::endpoints::{EndpointState, EndpointStatus, canary};

/// Per endpoint, per rollout id, each variant's counters at the start of the
/// rollout's window, by (gateway, variant): [`LOCAL`] for this server's own
/// gateway, a separate gateway's id for what it reported.
pub(super) type Baselines =
    HashMap<String, HashMap<String, BTreeMap<(String, String), VariantSnapshot>>>;

/// The source name of this server's own gateway in [`Baselines`].
const LOCAL: &str = "";

/// A separate gateway's report is forgotten when it is older than this (the
/// gateway stopped); its counters then leave the rollout's window.
const REPORT_TTL: Duration = Duration::from_secs(300);

/// Most variants one report may carry (an endpoint has a handful).
const MAX_REPORTED_VARIANTS: usize = 64;

/// The latest counters each separate gateway (`sextant gateway`) reported, by
/// endpoint and gateway id.
pub(super) type Reports =
    HashMap<String, HashMap<String, (std::time::Instant, Vec<VariantSnapshot>)>>;

impl Endpoints {
    pub(super) fn baselines(&self) -> std::sync::MutexGuard<'_, Baselines> {
        self.baselines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what a separate gateway serving `endpoint` reports, its cumulative counters
    /// per variant, once the report is well formed and the endpoint exists.
    pub async fn report(
        &self,
        deps: &Deps,
        endpoint: &str,
        gateway: &str,
        variants: Vec<VariantSnapshot>,
    ) -> Result<(), EndpointError> {
        let refuse = |m: String| Err(EndpointError::Invalid(format!("gateway stats: {m}")));
        if gateway.is_empty() || gateway.chars().count() > 200 {
            return refuse("'gateway' must be a non-empty id of at most 200 characters".into());
        }
        if variants.len() > MAX_REPORTED_VARIANTS {
            return refuse(format!(
                "{} variants, at most {MAX_REPORTED_VARIANTS}",
                variants.len()
            ));
        }
        if let Some(v) = variants.iter().find(|v| !v.well_formed()) {
            return refuse(format!(
                "variant '{}': latency needs {} bucket counts and a finite, non-negative sum",
                v.name,
                crate::stats::LATENCY_BUCKETS.len() + 1
            ));
        }
        let name = endpoint.to_string();
        deps.db(move |s| s.get_endpoint(&name)).await?;
        self.keep_report(endpoint, gateway, variants);
        Ok(())
    }

    /// Keeps a report. Reports older than [`REPORT_TTL`] are dropped.
    fn keep_report(&self, endpoint: &str, gateway: &str, variants: Vec<VariantSnapshot>) {
        let now = self.clock.instant();
        let mut all = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for of in all.values_mut() {
            of.retain(|_, (at, _)| now.duration_since(*at) < REPORT_TTL);
        }
        all.entry(endpoint.to_string())
            .or_default()
            .insert(gateway.to_string(), (now, variants));
    }

    /// Every source's counters for `name`: this server's gateway, then each separate one.
    pub(super) fn sources(&self, name: &str) -> Vec<(String, Vec<VariantSnapshot>)> {
        let mut out = Vec::new();
        if let Some(g) = self.gateways.get(name) {
            out.push((LOCAL.to_string(), g.stats().variants));
        }
        let all = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(of) = all.get(name) {
            let now = self.clock.instant();
            out.extend(
                of.iter()
                    .filter(|(_, (at, _))| now.duration_since(*at) < REPORT_TTL)
                    .map(|(id, (_, v))| (id.clone(), v.clone())),
            );
        }
        out
    }

    /// Records each source's variant counters as the start of the rollout's window.
    pub(super) fn take_baseline(&self, name: &str, state: &EndpointState) {
        let Some(r) = &state.rollout else { return };
        if self
            .baselines()
            .get(name)
            .is_some_and(|of| of.contains_key(&r.id))
        {
            return;
        }
        let base = self
            .sources(name)
            .into_iter()
            .flat_map(|(source, variants)| {
                variants
                    .into_iter()
                    .map(move |v| ((source.clone(), v.name.clone()), v))
            })
            .collect();
        self.baselines()
            .entry(name.to_string())
            .or_default()
            .entry(r.id.clone())
            .or_insert(base);
    }

    /// What the stable and the new model did since the rollout began, on this server
    /// and on every separate gateway that reports. A counter without a baseline counts
    /// from zero: its variant or gateway appeared after the rollout began.
    pub(super) fn windows(&self, name: &str, r: &Rollout) -> (Window, Window) {
        self.take_baseline_for(name, r);
        let sources = self.sources(name);
        let all = self.baselines();
        let base = all.get(name).and_then(|b| b.get(&r.id));
        let window = |variant: &str| {
            let mut total: Option<VariantSnapshot> = None;
            for (source, variants) in &sources {
                let Some(now) = variants.iter().find(|v| v.name == variant) else {
                    continue;
                };
                let key = (source.clone(), variant.to_string());
                let w = match base.and_then(|b| b.get(&key)) {
                    Some(b) => now.since(b),
                    None => now.clone(),
                };
                total = Some(match total {
                    Some(t) => t.plus(&w),
                    None => w,
                });
            }
            let Some(w) = total else {
                return Window::default();
            };
            Window {
                requests: w.requests,
                errors: w.errors,
                rejected: w.rejected,
                p99_ms: w.latency.quantile(0.99).map(|s| s * 1000.0),
            }
        };
        (window(&canary(&r.variant)), window(&r.variant))
    }

    fn take_baseline_for(&self, name: &str, r: &Rollout) {
        let state = EndpointState {
            status: EndpointStatus::InService,
            deployed: BTreeMap::new(),
            shadow: None,
            rollout: Some(r.clone()),
            past_rollouts: Vec::new(),
            traffic: Vec::new(),
            message: None,
        };
        self.take_baseline(name, &state);
    }
}
