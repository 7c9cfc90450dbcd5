//! A monitor's definition as applied (`PUT /api/v1/monitors/{name}`, or
//! `sextant monitors apply FILE` from YAML): what data it watches (an
//! endpoint's capture or a dataset), which baseline it compares against, when
//! it runs, over which window, and which checks. Read strictly: an unknown key
//! or a bad value is a 400 naming it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use sextant_pipelines::yaml::{DefinitionError, read_definition};
use sextant_serving::endpoints::config::parse_duration;

/// The whole definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// The monitor's name, when the file says it (it must match the URL's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Watch this endpoint's captured requests…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// …of these variants only (default: every variant but the shadow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// …or a dataset on the server's host (CSV, JSON lines, Parquet, or a
    /// directory of capture files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// A directory with `statistics.json` and `constraints.json`, or
    /// `models:/name/3` / `models:/name@alias` (its `baseline/` directory).
    /// Default for an endpoint monitor: the `baseline/` of the model its
    /// first variant serves now, so a retrained model brings its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// A five-field cron schedule (UTC); without one the monitor runs on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How far back from the run's time the window reaches.
    #[serde(default = "default_window", with = "duration_text")]
    pub window: Duration,
    /// A window with fewer rows fails the run instead of judging noise.
    #[serde(default = "one")]
    pub min_rows: u64,
    /// Data-quality checks (SageMaker's six check types).
    #[serde(default = "yes")]
    pub data_quality: bool,
    #[serde(default)]
    pub drift: DriftSpec,
    /// Model quality against uploaded ground truth (endpoint monitors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_quality: Option<ModelQualitySpec>,
}

/// Drift checks per feature and for the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Effect-size threshold (normed Wasserstein, Jensen-Shannon distance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Significance level of the Benjamini–Hochberg-adjusted p-values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Share of drifted features that makes the dataset drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            enabled: true,
            threshold: None,
            alpha: None,
            drift_share: None,
        }
    }
}

/// How predictions are judged against ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelQualitySpec {
    pub problem_type: ProblemType,
    /// The label column of the window's data set written for retraining
    /// (required: a guessed name would train on the wrong column).
    pub label: String,
    /// SageMaker model-quality constraints (`{"mae": {"threshold": 1.0,
    /// "comparison_operator": "GreaterThanThreshold"}}`); a metric that
    /// breaks one is a violation.
    #[serde(default)]
    pub constraints: serde_json::Map<String, serde_json::Value>,
    /// The positive class of a binary classifier (default `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
}

pub use sextant_monitor::quality::ProblemType;

fn default_window() -> Duration {
    Duration::from_secs(3600)
}
fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", d.as_secs_f64()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                serde::de::Error::custom(format!("invalid window '{text}': use e.g. 10m, 1h or 1d"))
            })
    }
}

impl MonitorSpec {
    /// Reads a JSON or YAML definition; the error lists every problem as
    /// `file:line:col: message`, `file` being how the caller names the text.
    pub fn parse(file: &str, text: &str) -> Result<MonitorSpec, DefinitionError> {
        read_definition(file, text, "monitor definition", MonitorSpec::problems)
    }

    /// Every rule serde cannot say that the definition breaks, each with the
    /// dotted path of the field at fault (`drift.alpha`).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        match (&self.endpoint, &self.data) {
            (Some(_), Some(_)) => out.push((
                "data".into(),
                "a monitor watches an endpoint or a data set, not both".into(),
            )),
            (None, None) => out.push((
                String::new(),
                "a monitor needs an endpoint (its capture) or data (a file)".into(),
            )),
            (None, Some(_)) => {
                if self.baseline.is_none() {
                    out.push(("data".into(), "a data-set monitor needs a baseline".into()));
                }
                if self.model_quality.is_some() {
                    out.push((
                        "model_quality".into(),
                        "model_quality needs an endpoint: ground truth is joined with its captured predictions"
                            .into(),
                    ));
                }
            }
            (Some(_), None) => {}
        }
        if let Some(e) = &self.endpoint
            && let Err(e) = sextant_core::endpoints::validate_endpoint_name(e)
        {
            out.push(("endpoint".into(), e.to_string()));
        }
        if let Some(s) = &self.schedule
            && let Err(e) = sextant_pipelines::cron::parse_cron(s)
        {
            out.push(("schedule".into(), e.to_string()));
        }
        let unit = |what: &str, v: Option<f64>, max: f64| match v {
            Some(x) if !(x.is_finite() && x > 0.0 && x <= max) => Some((
                format!("drift.{what}"),
                format!("drift.{what} must be in (0, {max}], not {x}"),
            )),
            _ => None,
        };
        out.extend(unit("threshold", self.drift.threshold, f64::MAX));
        out.extend(unit("alpha", self.drift.alpha, 1.0));
        out.extend(unit("drift_share", self.drift.drift_share, 1.0));
        if let Some(mq) = &self.model_quality {
            if mq.label.trim().is_empty() {
                out.push((
                    "model_quality.label".into(),
                    "model_quality.label is empty: name the label column".into(),
                ));
            }
            // Checked now, not at every run.
            if let Err(e) = sextant_monitor::quality::QualityConstraints::from_map(
                mq.problem_type,
                &mq.constraints,
            ) {
                out.push((
                    "model_quality.constraints".into(),
                    format!("model_quality.constraints: {e}"),
                ));
            }
        }
        if !(self.data_quality || self.drift.enabled || self.model_quality.is_some()) {
            out.push((
                String::new(),
                "every check is off: enable data_quality, drift or model_quality".into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_definitions_and_their_mistakes() {
        let spec = MonitorSpec::parse(
            "m.yaml",
            "endpoint: churn\nschedule: '*/5 * * * *'\nwindow: 10m\nmodel_quality: {problem_type: Regression, label: price}\n",
        )
        .unwrap();
        assert_eq!(spec.window, Duration::from_secs(600));
        assert!(spec.data_quality && spec.drift.enabled);
        assert_eq!(spec.model_quality.unwrap().label, "price");
        for (bad, says) in [
            (
                "endpoint: churn\nwindoww: 1h\n",
                "m.yaml:2:1: unknown key 'windoww' in the monitor definition (did you mean 'window'?)",
            ),
            (
                "endpoint: churn\nwindow: soon\n",
                "m.yaml:2:9: window: invalid window 'soon'",
            ),
            (
                "data: x.csv\n",
                "m.yaml:1:7: a data-set monitor needs a baseline",
            ),
            (
                "endpoint: churn\ndata: x.csv\n",
                "m.yaml:2:7: a monitor watches an endpoint or a data set, not both",
            ),
            ("{}", "m.yaml:1:1: a monitor needs an endpoint"),
            (
                "endpoint: churn\nschedule: 'every hour'\n",
                "m.yaml:2:11: invalid cron",
            ),
            (
                "endpoint: churn\ndrift: {alpha: 2}\n",
                "m.yaml:2:16: drift.alpha must be in (0, 1], not 2",
            ),
            (
                "endpoint: churn\nmodel_quality: {problem_type: Ranking, label: y}\n",
                "model_quality.problem_type: unknown value 'Ranking'",
            ),
            (
                "endpoint: churn\nmodel_quality: {problem_type: Regression}\n",
                "m.yaml:2:16: missing key 'label' in model_quality",
            ),
            (
                "endpoint: [churn\n",
                "m.yaml:2:1: the monitor definition is not valid YAML",
            ),
        ] {
            let e = MonitorSpec::parse("m.yaml", bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let e = MonitorSpec::parse(
            "watch.yaml",
            "endpoint: churn\nwindow: soon\nmin_rows: -3\ndrift:\n  enabeld: true\n  alpha: 2\nmodel_quality:\n  problem_type: Regresion\n",
        )
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "watch.yaml:2:9: window: invalid window 'soon': use e.g. 10m, 1h or 1d",
                "watch.yaml:3:11: min_rows: integer `-3` is not a whole number of at least 0",
                "watch.yaml:5:3: unknown key 'enabeld' in drift (did you mean 'enabled'?)",
                "watch.yaml:8:17: model_quality.problem_type: unknown value 'Regresion': expected one of Regression, BinaryClassification, MulticlassClassification (did you mean 'Regression'?)",
            ],
            "{e}"
        );
        // Once the structure is right, the rules serde cannot say, all of them.
        let e = MonitorSpec::parse(
            "watch.yaml",
            "endpoint: churn\nschedule: hourly\ndrift:\n  alpha: 2\n  drift_share: 0\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e.lines().count(), 3, "{e}");
        assert!(e.starts_with("watch.yaml:2:11: "), "{e}");
    }
}
