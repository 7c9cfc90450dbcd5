//! An endpoint's definition as applied (`PUT /api/v1/endpoints/{name}`, or
//! `sextant endpoints apply FILE` from YAML): its variants, shadow, data
//! capture, rollout policy and the registry event it follows. Read strictly:
//! an unknown key or a bad value is a 400 naming it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_pipelines::yaml::{DefinitionError, read_definition};

/// A rule of the definition that a spec breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecProblem {
    /// The dotted path of the field at fault (`variants.1.weight`).
    pub field: String,
    pub message: String,
}

/// The whole definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// The endpoint's name, when the file says it (it must match the URL's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Serving variants; traffic is split by weight.
    pub variants: Vec<VariantSpec>,
    /// Gets a copy of a share of requests; its answers are captured, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureSpec>,
    /// How a changed model reaches traffic.
    #[serde(default)]
    pub rollout: RolloutPolicy,
    /// Deploy each new version of a registered model this way by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<FollowSpec>,
    /// Browser origins (`https://app.example.com`) whose pages may call the
    /// inference routes: they get CORS answers there, other origins none
    /// (requests are served either way; applications need no CORS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

/// One variant: a model and how much traffic it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    #[serde(default = "default_variant")]
    pub name: String,
    /// `models:/name/3`, `models:/name@alias`, or a local MLflow model directory.
    pub model: String,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Autoscaled runtime instances (the `process` runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstancesSpec>,
}

/// Between `min` and `max` child processes, as many as the peak of requests in flight
/// over `target_in_flight` asks for; one is retired after fewer did for `scale_in_after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesSpec {
    #[serde(default = "one_instance")]
    pub min: usize,
    pub max: usize,
    #[serde(default = "default_target_in_flight")]
    pub target_in_flight: f64,
    #[serde(default = "default_scale_in_after", with = "duration_text")]
    pub scale_in_after: Duration,
}

fn one_instance() -> usize {
    1
}
fn default_target_in_flight() -> f64 {
    4.0
}
fn default_scale_in_after() -> Duration {
    Duration::from_secs(300)
}

/// Most instances one variant may run.
pub const MAX_INSTANCES: usize = 64;

impl InstancesSpec {
    /// The data plane's policy (the scaler looks twice a second).
    pub fn policy(&self) -> crate::pool::ScalePolicy {
        crate::pool::ScalePolicy {
            min: self.min,
            max: self.max,
            target_in_flight: self.target_in_flight,
            scale_in_after: self.scale_in_after,
            interval: Duration::from_millis(500),
        }
    }
}

fn default_variant() -> String {
    "primary".into()
}
fn one() -> f64 {
    1.0
}
fn default_concurrency() -> usize {
    64
}

/// How a variant's model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// In process, by Sextant's ONNX engine.
    #[default]
    Onnx,
    /// A child `mlflow models serve` process behind the gateway.
    Process,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowSpec {
    #[serde(default = "default_shadow")]
    pub name: String,
    pub model: String,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default = "hundred")]
    pub sampling_percent: f64,
}

fn default_shadow() -> String {
    "shadow".into()
}
fn hundred() -> f64 {
    100.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    #[serde(default = "hundred")]
    pub sampling_percent: f64,
    /// `input`, `output` or `input_and_output`.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "input_and_output".into()
}

/// How traffic moves to a changed model, and when to give up on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPolicy {
    #[serde(default)]
    pub strategy: Strategy,
    /// Canary: its share during the bake. Linear: the share added each interval.
    #[serde(default = "ten")]
    pub percent: f64,
    /// Canary and blue/green: how long the new model bakes before the old one goes.
    #[serde(default = "default_bake", with = "duration_text")]
    pub bake: Duration,
    /// Linear: time between steps.
    #[serde(default = "default_bake", with = "duration_text")]
    pub interval: Duration,
    #[serde(default)]
    pub alarms: Alarms,
}

fn ten() -> f64 {
    10.0
}
fn default_bake() -> Duration {
    Duration::from_secs(300)
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            strategy: Strategy::default(),
            percent: ten(),
            bake: default_bake(),
            interval: default_bake(),
            alarms: Alarms::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    AllAtOnce,
    Canary,
    Linear,
    BlueGreen,
}

/// Rollback conditions on the new variant, evaluated continuously while it bakes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// Roll back when the new variant's error rate exceeds this (0..1)…
    #[serde(default = "default_error_rate")]
    pub max_error_rate: f64,
    /// …or exceeds the stable variant's by more than this (0..1).
    #[serde(default = "default_error_rate")]
    pub max_error_rate_increase: f64,
    /// Roll back when the new variant's p99 latency exceeds this many ms…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ms: Option<f64>,
    /// …or this multiple of the stable variant's p99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ratio: Option<f64>,
    /// Roll back when more than this share (0..1) of the new variant's requests are
    /// refused at its concurrency limit (capacity; off unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejected_rate: Option<f64>,
    /// Requests the new variant must have answered before an alarm can fire.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

fn default_error_rate() -> f64 {
    0.05
}
fn default_min_requests() -> u64 {
    20
}

impl Default for Alarms {
    fn default() -> Self {
        Alarms {
            max_error_rate: default_error_rate(),
            max_error_rate_increase: default_error_rate(),
            max_p99_ms: None,
            max_p99_ratio: None,
            max_rejected_rate: None,
            min_requests: default_min_requests(),
        }
    }
}

/// Which registry changes deploy a new model to the first variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowSpec {
    /// The registered model.
    pub model: String,
    /// Deploy the version this alias is moved to…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// …or each version approved (the default when no alias is named).
    #[serde(default)]
    pub approved: bool,
}

impl EndpointSpec {
    /// Reads a JSON or YAML definition; the error lists every problem as
    /// `file:line:col: message`, `file` being how the caller names the text.
    pub fn parse(file: &str, text: &str) -> Result<EndpointSpec, DefinitionError> {
        read_definition(file, text, "endpoint definition", EndpointSpec::problems)
    }

    /// The rules serde cannot say, the first problem only (see [`EndpointSpec::problems`]),
    /// for a definition made in code rather than read (a pipeline's `deploy:` step).
    pub fn check(&self) -> Result<(), SpecProblem> {
        match self.problems().into_iter().next() {
            Some((field, message)) => Err(SpecProblem { field, message }),
            None => Ok(()),
        }
    }

    /// Every rule serde cannot say that the definition breaks, each with the
    /// dotted path of the field at fault (`variants.1.weight`).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if self.variants.is_empty() {
            out.push((
                "variants".into(),
                "an endpoint needs at least one variant".into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let shadow = self
            .shadow
            .iter()
            .map(|s| ("shadow".to_string(), &s.name, &s.model));
        for (at, name, model) in self
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("variants.{i}"), &v.name, &v.model))
            .chain(shadow)
        {
            if let Some(e) = name_problem(name) {
                out.push((format!("{at}.name"), e));
            } else if name.ends_with("-canary") {
                out.push((
                    format!("{at}.name"),
                    format!("variant name '{name}': names ending in -canary are kept for rollouts"),
                ));
            } else if !names.insert(name.clone()) {
                out.push((
                    format!("{at}.name"),
                    format!("variant name '{name}' is used twice"),
                ));
            }
            if model.trim().is_empty() {
                out.push((
                    format!("{at}.model"),
                    format!("variant '{name}' has no model"),
                ));
            }
        }
        for (i, v) in self.variants.iter().enumerate() {
            let at = |field: &str| format!("variants.{i}.{field}");
            if !(v.weight.is_finite() && v.weight >= 0.0) {
                out.push((
                    at("weight"),
                    format!("variant '{}': weight must be a number >= 0", v.name),
                ));
            }
            if v.max_concurrency == 0 {
                out.push((
                    at("max_concurrency"),
                    format!("variant '{}': max_concurrency must be at least 1", v.name),
                ));
            }
            if let Some(n) = &v.instances {
                if v.runtime != Runtime::Process {
                    out.push((
                        at("instances"),
                        format!(
                            "variant '{}': instances autoscale the process runtime; an onnx model is one instance in this process that serves max_concurrency requests at once",
                            v.name
                        ),
                    ));
                }
                if !(1 <= n.min && n.min <= n.max && n.max <= MAX_INSTANCES) {
                    out.push((
                        at("instances"),
                        format!(
                            "variant '{}': instances need 1 <= min <= max <= {MAX_INSTANCES}, got min {} and max {}",
                            v.name, n.min, n.max
                        ),
                    ));
                }
                if !(n.target_in_flight.is_finite() && n.target_in_flight > 0.0) {
                    out.push((
                        at("instances.target_in_flight"),
                        format!(
                            "variant '{}': instances.target_in_flight must be above 0",
                            v.name
                        ),
                    ));
                }
            }
        }
        if !self.variants.is_empty() && self.variants.iter().all(|v| v.weight == 0.0) {
            out.push((
                "variants".into(),
                "at least one variant needs a weight above 0".into(),
            ));
        }
        let percent = |what: &str, p: f64| {
            (!(0.0..=100.0).contains(&p)).then(|| {
                (
                    what.to_string(),
                    format!("{what} must be between 0 and 100, got {p}"),
                )
            })
        };
        if let Some(s) = &self.shadow {
            out.extend(percent("shadow.sampling_percent", s.sampling_percent));
        }
        if let Some(c) = &self.capture {
            out.extend(percent("capture.sampling_percent", c.sampling_percent));
            if !matches!(c.mode.as_str(), "input" | "output" | "input_and_output") {
                out.push((
                    "capture.mode".into(),
                    format!(
                        "capture.mode must be input, output or input_and_output, got '{}'",
                        c.mode
                    ),
                ));
            }
        }
        let r = &self.rollout;
        if !(r.percent > 0.0 && r.percent <= 100.0) {
            out.push((
                "rollout.percent".into(),
                format!(
                    "rollout.percent must be above 0 and at most 100, got {}",
                    r.percent
                ),
            ));
        }
        let a = &r.alarms;
        for (what, v) in [
            ("max_error_rate", a.max_error_rate),
            ("max_error_rate_increase", a.max_error_rate_increase),
            ("max_rejected_rate", a.max_rejected_rate.unwrap_or(0.0)),
        ] {
            if !(0.0..=1.0).contains(&v) {
                out.push((
                    format!("rollout.alarms.{what}"),
                    format!("rollout.alarms.{what} must be between 0 and 1, got {v}"),
                ));
            }
        }
        if let Some(f) = &self.follow
            && f.model.trim().is_empty()
        {
            out.push(("follow.model".into(), "follow.model is empty".into()));
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if let Err(e) = crate::origin::normalize_origin(o) {
                out.push((format!("allowed_origins.{i}"), e));
            }
        }
        out
    }

    /// The browser origins the inference routes answer CORS for, normalized
    /// (invalid ones, which [`EndpointSpec::check`] refuses, left out).
    pub fn cors_origins(&self) -> Vec<String> {
        self.allowed_origins
            .iter()
            .filter_map(|o| crate::origin::normalize_origin(o).ok())
            .collect()
    }
}

/// What is wrong with a variant name, if anything: it must be a plain path
/// segment (it names capture directories).
fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    (!ok).then(|| format!("variant name '{name}' must be 1-64 letters, digits, '-', '_' or '.'"))
}

/// Durations written as `90s`, `5m`, `1h`, `250ms` (or a number of seconds).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) {
            s.serialize_str(&format!("{}s", ms / 1000))
        } else {
            s.serialize_str(&format!("{ms}ms"))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Seconds(f64),
            Text(String),
        }
        match Text::deserialize(d)? {
            Text::Seconds(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
            Text::Seconds(s) => Err(serde::de::Error::custom(format!("invalid duration {s}"))),
            Text::Text(t) => parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration '{t}': use e.g. 250ms, 30s, 5m or 1h"
                ))
            }),
        }
    }

    pub fn parse(t: &str) -> Option<Duration> {
        let t = t.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (n, unit) = t.split_at(split);
        let n: f64 = n.parse().ok()?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => return None,
        };
        Some(Duration::from_secs_f64(secs))
    }
}

pub use duration_text::parse as parse_duration;
