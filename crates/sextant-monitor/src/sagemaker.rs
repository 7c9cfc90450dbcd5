//! SageMaker Model Monitor's files, written and read in its schema:
//! `statistics.json` (per-feature statistics with the KLL sketch's levels),
//! `constraints.json` (suggested constraints and `monitoring_config`) and
//! `constraint_violations.json` (its six check types, plus
//! `non_negative_check` for `num_constraints.is_non_negative`).
//!
//! A `statistics.json` is enough to compare against: numeric CDFs come back
//! from the sketch levels (level `h` items weigh `2^h`) and categories from
//! the categorical buckets, so a baseline SageMaker wrote works too.

use serde::{Deserialize, Serialize};

use crate::drift::{Cdf, linf_categorical, linf_distance, linf_robust};
use crate::kll::{Kll, SHRINK};
use crate::profile::{ColumnProfile, DatasetProfile};

/// Buckets of a numeric feature's distribution (SageMaker's fixed number).
pub const BUCKETS: usize = 10;
/// Constraints suggest `domains` for string features with at most this many values (Deequ's rule).
pub const DOMAIN_LIMIT: u64 = 120;

/// `statistics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub version: f64,
    pub dataset: DatasetStatistics,
    pub features: Vec<FeatureStatistics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStatistics {
    pub item_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStatistics {
    pub name: String,
    pub inferred_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical_statistics: Option<NumericalStatistics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_statistics: Option<StringStatistics>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Common {
    pub num_present: u64,
    pub num_missing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericalStatistics {
    pub common: Common,
    pub mean: f64,
    pub sum: f64,
    pub std_dev: f64,
    pub min: f64,
    pub max: f64,
    pub distribution: NumericalDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericalDistribution {
    pub kll: KllDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllDistribution {
    pub buckets: Vec<KllBucket>,
    pub sketch: KllSketchState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllBucket {
    pub lower_bound: f64,
    pub upper_bound: f64,
    pub count: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllSketchState {
    pub parameters: KllParameters,
    pub data: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KllParameters {
    pub c: f64,
    pub k: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringStatistics {
    pub common: Common,
    pub distinct_count: f64,
    pub distribution: StringDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringDistribution {
    pub categorical: CategoricalDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDistribution {
    pub buckets: Vec<CategoricalBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalBucket {
    pub value: String,
    pub count: f64,
}

fn common(c: &ColumnProfile) -> Common {
    Common {
        num_present: c.present(),
        num_missing: c.missing,
    }
}

/// Equal-width buckets between min and max; bucket counts by Deequ's rule
/// (rank of the upper bound less rank of the lower, the first bucket
/// including its lower bound).
fn buckets(kll: &Kll, min: f64, max: f64) -> Vec<KllBucket> {
    if !(min.is_finite() && max.is_finite()) {
        return Vec::new();
    }
    let weighted = kll.weighted();
    let rank_le = |x: f64| -> f64 {
        weighted
            .iter()
            .filter(|(v, _)| *v <= x)
            .map(|(_, w)| w)
            .sum()
    };
    let rank_lt = |x: f64| -> f64 {
        weighted
            .iter()
            .filter(|(v, _)| *v < x)
            .map(|(_, w)| w)
            .sum()
    };
    let width = (max - min) / BUCKETS as f64;
    (0..BUCKETS)
        .map(|i| {
            let lo = min + width * i as f64;
            let hi = if i + 1 == BUCKETS {
                max
            } else {
                min + width * (i + 1) as f64
            };
            let below = if i == 0 { rank_lt(lo) } else { rank_le(lo) };
            KllBucket {
                lower_bound: lo,
                upper_bound: hi,
                count: rank_le(hi) - below,
            }
        })
        .collect()
}

impl Statistics {
    /// The statistics of a profile.
    pub fn from_profile(p: &DatasetProfile) -> Statistics {
        let features = p
            .columns
            .iter()
            .map(|c| {
                let t = c.inferred_type();
                let mut f = FeatureStatistics {
                    name: c.name.clone(),
                    inferred_type: t.as_str().to_string(),
                    numerical_statistics: None,
                    string_statistics: None,
                };
                if t.is_numeric() {
                    let m = &c.moments;
                    let (min, max) = if m.n == 0 { (0.0, 0.0) } else { (m.min, m.max) };
                    f.numerical_statistics = Some(NumericalStatistics {
                        common: common(c),
                        mean: m.mean,
                        sum: m.sum,
                        std_dev: m.std_dev(),
                        min,
                        max,
                        distribution: NumericalDistribution {
                            kll: KllDistribution {
                                buckets: buckets(&c.kll, m.min, m.max),
                                sketch: KllSketchState {
                                    parameters: KllParameters {
                                        c: SHRINK,
                                        k: f64::from(c.kll.k()),
                                    },
                                    data: c.kll.levels().to_vec(),
                                },
                            },
                        },
                    });
                } else {
                    f.string_statistics = Some(StringStatistics {
                        common: common(c),
                        distinct_count: c.distinct_count() as f64,
                        distribution: StringDistribution {
                            categorical: CategoricalDistribution {
                                buckets: c
                                    .categories()
                                    .into_iter()
                                    .map(|(value, count)| CategoricalBucket {
                                        value,
                                        count: count as f64,
                                    })
                                    .collect(),
                            },
                        },
                    });
                }
                f
            })
            .collect();
        Statistics {
            version: 0.0,
            dataset: DatasetStatistics {
                item_count: p.item_count,
            },
            features,
        }
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureStatistics> {
        self.features.iter().find(|f| f.name == name)
    }
}

impl FeatureStatistics {
    /// The numbers' CDF rebuilt from the sketch's levels (empty for a string feature).
    pub fn cdf(&self) -> Cdf {
        match &self.numerical_statistics {
            Some(n) => {
                let s = &n.distribution.kll.sketch;
                Kll::from_levels(s.parameters.k.clamp(8.0, 65535.0) as u16, s.data.clone()).cdf()
            }
            None => Cdf::default(),
        }
    }

    /// Category counts (empty for a numeric feature).
    pub fn categories(&self) -> Vec<(String, u64)> {
        self.string_statistics
            .as_ref()
            .map(|s| {
                s.distribution
                    .categorical
                    .buckets
                    .iter()
                    .map(|b| (b.value.clone(), b.count.max(0.0) as u64))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn common(&self) -> Common {
        self.numerical_statistics
            .as_ref()
            .map(|n| n.common)
            .or(self.string_statistics.as_ref().map(|s| s.common))
            .unwrap_or(Common {
                num_present: 0,
                num_missing: 0,
            })
    }

    /// Population standard deviation (0 for a string feature).
    pub fn std_dev(&self) -> f64 {
        self.numerical_statistics
            .as_ref()
            .map_or(0.0, |n| n.std_dev)
    }

    /// Whether it is a numeric feature.
    pub fn is_numeric(&self) -> bool {
        self.numerical_statistics.is_some()
    }
}

/// `constraints.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    pub version: f64,
    pub features: Vec<FeatureConstraints>,
    pub monitoring_config: MonitoringConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConstraints {
    pub name: String,
    pub inferred_type: String,
    pub completeness: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_constraints: Option<NumConstraints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_constraints: Option<StringConstraints>,
    #[serde(
        default,
        rename = "monitoringConfigOverrides",
        skip_serializing_if = "Option::is_none"
    )]
    pub monitoring_config_overrides: Option<ConfigOverrides>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumConstraints {
    pub is_non_negative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringConstraints {
    pub domains: Vec<String>,
}

/// Per-feature overrides of the monitoring config (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype_check_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_content_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical_comparison_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perform_comparison: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringConfig {
    #[serde(default = "enabled")]
    pub evaluate_constraints: String,
    #[serde(default = "enabled")]
    pub emit_metrics: String,
    #[serde(default = "tenth")]
    pub datatype_check_threshold: f64,
    #[serde(default = "tenth")]
    pub domain_content_threshold: f64,
    #[serde(default)]
    pub distribution_constraints: DistributionConstraints,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionConstraints {
    #[serde(default = "enabled")]
    pub perform_comparison: String,
    #[serde(default = "tenth")]
    pub comparison_threshold: f64,
    #[serde(default = "robust")]
    pub comparison_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical_comparison_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical_drift_method: Option<String>,
}

fn enabled() -> String {
    "Enabled".into()
}
fn tenth() -> f64 {
    0.1
}
fn robust() -> String {
    "Robust".into()
}

impl Default for DistributionConstraints {
    fn default() -> Self {
        DistributionConstraints {
            perform_comparison: enabled(),
            comparison_threshold: 0.1,
            comparison_method: robust(),
            categorical_comparison_threshold: Some(0.1),
            categorical_drift_method: Some("LInfinity".into()),
        }
    }
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            evaluate_constraints: enabled(),
            emit_metrics: enabled(),
            datatype_check_threshold: 0.1,
            domain_content_threshold: 0.1,
            distribution_constraints: DistributionConstraints::default(),
        }
    }
}

impl Constraints {
    /// Deequ's suggestions: keep completeness and type, numbers non-negative
    /// when the baseline had no negative value, the observed values of a
    /// low-cardinality string feature as its domain.
    pub fn suggest(stats: &Statistics) -> Constraints {
        let features = stats
            .features
            .iter()
            .map(|f| {
                let c = f.common();
                let rows = c.num_present + c.num_missing;
                let completeness = if rows == 0 {
                    1.0
                } else {
                    c.num_present as f64 / rows as f64
                };
                let num_constraints = f.numerical_statistics.as_ref().map(|n| NumConstraints {
                    is_non_negative: n.min >= 0.0,
                });
                let string_constraints = f.string_statistics.as_ref().and_then(|s| {
                    let cats = f.categories();
                    (s.distinct_count as u64 <= DOMAIN_LIMIT
                        && cats.len() as f64 >= s.distinct_count)
                        .then(|| StringConstraints {
                            domains: cats.into_iter().map(|(v, _)| v).collect(),
                        })
                });
                FeatureConstraints {
                    name: f.name.clone(),
                    inferred_type: f.inferred_type.clone(),
                    completeness,
                    num_constraints,
                    string_constraints,
                    monitoring_config_overrides: None,
                }
            })
            .collect();
        Constraints {
            version: 0.0,
            features,
            monitoring_config: MonitoringConfig::default(),
        }
    }
}

/// `constraint_violations.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Violations {
    pub violations: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub feature_name: String,
    pub constraint_check_type: String,
    pub description: String,
}

fn violation(feature: &str, check: &str, description: String) -> Violation {
    Violation {
        feature_name: feature.to_string(),
        constraint_check_type: check.to_string(),
        description,
    }
}

/// How the present values of a column fit the baseline's type: the share that
/// fits, and the most common type that does not with its share (`None` when
/// every value fits). A whole-valued float (`3.0`) fits `Integral`.
fn type_match(baseline: &str, c: &ColumnProfile) -> (f64, Option<(&'static str, f64)>) {
    let t = c.types;
    let present = t.integral + t.fractional + t.boolean + t.string;
    if present == 0 {
        return (1.0, None);
    }
    // Values by type, whole-valued floats apart from the other fractional ones.
    let kinds = [
        ("Integral", t.integral + t.whole),
        ("Fractional", t.fractional.saturating_sub(t.whole)),
        ("Boolean", t.boolean),
        ("String", t.string),
    ];
    let fits = |kind: &str| match baseline {
        "Integral" | "Boolean" => kind == baseline,
        "Fractional" => matches!(kind, "Integral" | "Fractional"),
        // String and Unknown columns take any value.
        _ => true,
    };
    let fitting: u64 = kinds.iter().filter(|(k, _)| fits(k)).map(|(_, n)| n).sum();
    let offending = kinds
        .iter()
        .filter(|(k, n)| *n > 0 && !fits(k))
        .max_by_key(|(_, n)| *n)
        .map(|(k, n)| (*k, *n as f64 / present as f64));
    (fitting as f64 / present as f64, offending)
}

/// Checks `current` (its profile, for type counts) against a baseline's
/// statistics and constraints, as SageMaker's analyzer does.
pub fn check(
    baseline: &Statistics,
    constraints: &Constraints,
    current: &DatasetProfile,
) -> Violations {
    let mut out = Vec::new();
    if constraints.monitoring_config.evaluate_constraints != "Enabled" {
        return Violations::default();
    }
    let current_stats = Statistics::from_profile(current);
    for fc in &constraints.features {
        if current.column(&fc.name).is_none() {
            out.push(violation(
                &fc.name,
                "missing_column_check",
                format!(
                    "There are missing columns in current dataset: '{}' is in the baseline constraints but not in the current data ({} columns in current data, {} in the baseline)",
                    fc.name,
                    current.columns.len(),
                    constraints.features.len()
                ),
            ));
        }
    }
    for c in &current.columns {
        if !constraints.features.iter().any(|f| f.name == c.name) {
            out.push(violation(
                &c.name,
                "extra_column_check",
                format!(
                    "There are extra columns in current dataset: '{}' is not in the baseline constraints ({} columns in current data, {} in the baseline)",
                    c.name,
                    current.columns.len(),
                    constraints.features.len()
                ),
            ));
        }
    }
    let cfg = &constraints.monitoring_config;
    for fc in &constraints.features {
        let Some(col) = current.column(&fc.name) else {
            continue;
        };
        let o = fc.monitoring_config_overrides.clone().unwrap_or_default();
        let type_threshold = o
            .datatype_check_threshold
            .unwrap_or(cfg.datatype_check_threshold);
        let (matched, offending) = type_match(&fc.inferred_type, col);
        if let Some((kind, share)) = offending
            && 1.0 - matched > type_threshold
        {
            // SageMaker's wording, then the share of the type that broke it.
            out.push(violation(
                &fc.name,
                "data_type_check",
                format!(
                    "Data type match requirement is not met. Expected data type: {}, Expected match: {:.2}%. Observed: Only {:.2}% of data is {}; {:.2}% is {kind}",
                    fc.inferred_type,
                    (1.0 - type_threshold) * 100.0,
                    matched * 100.0,
                    fc.inferred_type,
                    share * 100.0,
                ),
            ));
        }
        let completeness = if col.count == 0 {
            1.0
        } else {
            col.present() as f64 / col.count as f64
        };
        if completeness < fc.completeness - 1e-12 {
            out.push(violation(
                &fc.name,
                "completeness_check",
                format!(
                    "Data completeness requirement is not met. Expected completeness: {:.4}, observed: {:.4} ({} of {} values missing)",
                    fc.completeness, completeness, col.missing, col.count
                ),
            ));
        }
        if fc.num_constraints.is_some_and(|n| n.is_non_negative)
            && col.moments.n > 0
            && col.moments.min < 0.0
        {
            out.push(violation(
                &fc.name,
                "non_negative_check",
                format!(
                    "The baseline had no negative value; the current data has a minimum of {}",
                    col.moments.min
                ),
            ));
        }
        if let Some(domains) = &fc.string_constraints
            && col.present() > 0
        {
            let domains = &domains.domains;
            let threshold = o
                .domain_content_threshold
                .unwrap_or(cfg.domain_content_threshold);
            let total = col.present();
            let known: u64 = col
                .categories()
                .iter()
                .filter(|(v, _)| domains.contains(v))
                .map(|(_, n)| n)
                .sum();
            let unknown = 1.0 - known as f64 / total.max(1) as f64;
            if total > 0 && unknown > threshold {
                out.push(violation(
                    &fc.name,
                    "categorical_values_check",
                    format!(
                        "Categorical value requirement is not met: {:.2}% of values are outside the baseline domain (threshold {:.2}%)",
                        unknown * 100.0,
                        threshold * 100.0
                    ),
                ));
            }
        }
        let dist = &cfg.distribution_constraints;
        let perform = o
            .perform_comparison
            .as_deref()
            .unwrap_or(&dist.perform_comparison);
        if perform != "Enabled" {
            continue;
        }
        let (Some(base), Some(cur)) = (baseline.feature(&fc.name), current_stats.feature(&fc.name))
        else {
            continue;
        };
        let method = o
            .comparison_method
            .as_deref()
            .unwrap_or(&dist.comparison_method);
        let (distance, threshold) = if base.is_numeric() && cur.is_numeric() {
            let d = linf_distance(&base.cdf(), &cur.cdf());
            (
                d,
                o.comparison_threshold.unwrap_or(dist.comparison_threshold),
            )
        } else if !base.is_numeric() && !cur.is_numeric() {
            let d = linf_categorical(&base.categories(), &cur.categories());
            let t = o
                .categorical_comparison_threshold
                .or(dist.categorical_comparison_threshold)
                .unwrap_or(dist.comparison_threshold);
            (d, t)
        } else {
            continue; // a type change is the data_type_check's finding
        };
        let distance = if method == "Robust" {
            linf_robust(
                distance,
                base.common().num_present,
                cur.common().num_present,
            )
        } else {
            distance
        };
        if distance > threshold {
            out.push(violation(
                &fc.name,
                "baseline_drift_check",
                format!(
                    "Baseline drift distance: {distance:.4} exceeds threshold: {threshold} ({} comparison)",
                    method
                ),
            ));
        }
    }
    Violations { violations: out }
}

/// Profiles a data set and writes `statistics.json` and suggested
/// `constraints.json` into `dir`; returns `{rows, features, files}`.
pub fn write_baseline(
    data: &std::path::Path,
    dir: &std::path::Path,
    exclude: &[&str],
) -> Result<serde_json::Value, String> {
    let mut profile = crate::read::profile_path(data, crate::profile::ProfileOptions::default())
        .map_err(|e| e.to_string())?;
    if let Some(missing) = exclude
        .iter()
        .find(|x| !profile.columns.iter().any(|c| c.name == **x))
    {
        return Err(format!(
            "{}: no column named {missing:?} to leave out of the baseline",
            data.display()
        ));
    }
    profile
        .columns
        .retain(|c| !exclude.contains(&c.name.as_str()));
    if profile.item_count == 0 {
        return Err(format!("{}: no rows to make a baseline of", data.display()));
    }
    let stats = Statistics::from_profile(&profile);
    let constraints = Constraints::suggest(&stats);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, bytes) in [
        (
            "statistics.json",
            serde_json::to_vec_pretty(&stats).expect("JSON"),
        ),
        (
            "constraints.json",
            serde_json::to_vec_pretty(&constraints).expect("JSON"),
        ),
    ] {
        std::fs::write(dir.join(name), bytes)
            .map_err(|e| format!("writing {}: {e}", dir.join(name).display()))?;
    }
    Ok(serde_json::json!({
        "rows": profile.item_count,
        "features": stats.features.len(),
        "files": [dir.join("statistics.json").display().to_string(), dir.join("constraints.json").display().to_string()],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileOptions;
    use crate::read::profile_csv;

    fn profile(text: &str) -> DatasetProfile {
        profile_csv(text.as_bytes(), "t.csv", ProfileOptions::default()).unwrap()
    }

    #[test]
    fn clean_data_passes_and_broken_data_names_each_check() {
        let mut base = String::from("x,n,c\n");
        for i in 0..2000 {
            base.push_str(&format!(
                "{},{},{}\n",
                i % 100,
                i % 7,
                ["a", "b", "c"][i % 3]
            ));
        }
        let stats = Statistics::from_profile(&profile(&base));
        let cons = Constraints::suggest(&stats);
        assert_eq!(
            cons.features[2]
                .string_constraints
                .as_ref()
                .unwrap()
                .domains
                .len(),
            3
        );
        assert!(cons.features[0].num_constraints.unwrap().is_non_negative);
        assert!(check(&stats, &cons, &profile(&base)).violations.is_empty());
        let mut bad = String::from("x,c,extra\n");
        for i in 0..2000 {
            let x = if i % 5 == 0 {
                "oops".to_string()
            } else {
                format!("{}", -(i as i64 % 100) - 200)
            };
            bad.push_str(&format!("{x},{},1\n", if i % 2 == 0 { "z" } else { "" }));
        }
        let v = check(&stats, &cons, &profile(&bad));
        let mut kinds: Vec<(&str, &str)> = v
            .violations
            .iter()
            .map(|v| (v.feature_name.as_str(), v.constraint_check_type.as_str()))
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                ("c", "baseline_drift_check"),
                ("c", "categorical_values_check"),
                ("c", "completeness_check"),
                ("extra", "extra_column_check"),
                ("n", "missing_column_check"),
                ("x", "baseline_drift_check"),
                ("x", "data_type_check"),
                ("x", "non_negative_check"),
            ]
        );
    }

    #[test]
    fn the_data_type_check_names_the_offending_type_and_takes_whole_floats_as_integral() {
        let mut base = String::from("n\n");
        for i in 0..100 {
            base.push_str(&format!("{}\n", i % 10));
        }
        let stats = Statistics::from_profile(&profile(&base));
        assert_eq!(stats.features[0].inferred_type, "Integral");
        let cons = Constraints::suggest(&stats);
        let json = |values: &[&str]| {
            let lines: String = values.iter().map(|v| format!("{{\"n\": {v}}}\n")).collect();
            crate::read::profile_json_lines(&lines, "w.jsonl", ProfileOptions::default()).unwrap()
        };
        let types = |p: &DatasetProfile| -> Vec<String> {
            check(&stats, &cons, p)
                .violations
                .into_iter()
                .filter(|v| v.constraint_check_type == "data_type_check")
                .map(|v| v.description)
                .collect()
        };
        // Python's json writes 3.0 for an integer-valued float: no false alarm.
        assert_eq!(types(&json(&["3.0", "4.0", "5"])), Vec::<String>::new());
        let all_fractional = types(&json(&["3.5", "4.25", "5.5", "6.5"]));
        assert_eq!(all_fractional.len(), 1, "{all_fractional:?}");
        assert!(
            all_fractional[0]
                .ends_with("Observed: Only 0.00% of data is Integral; 100.00% is Fractional"),
            "{all_fractional:?}"
        );
        let mixed = types(&json(&["1", "2", "\"x\"", "\"y\"", "\"z\"", "1.5"]));
        assert!(
            mixed[0].ends_with("Only 33.33% of data is Integral; 50.00% is String"),
            "{mixed:?}"
        );
    }

    #[test]
    fn statistics_round_trip_and_rebuild_distributions() {
        let mut text = String::from("x,c\n");
        for i in 0..10_000 {
            text.push_str(&format!(
                "{},{}\n",
                i as f64 / 100.0,
                if i % 4 == 0 { "u" } else { "v" }
            ));
        }
        let stats = Statistics::from_profile(&profile(&text));
        let json = serde_json::to_string(&stats).unwrap();
        let back: Statistics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stats);
        let x = back.feature("x").unwrap();
        let n = x.numerical_statistics.as_ref().unwrap();
        assert_eq!(n.distribution.kll.buckets.len(), BUCKETS);
        let total: f64 = n.distribution.kll.buckets.iter().map(|b| b.count).sum();
        assert_eq!(total, 10_000.0);
        assert!((x.cdf().at(50.0) - 0.5).abs() < 0.01);
        assert_eq!(
            back.feature("c").unwrap().categories(),
            [("v".to_string(), 7500), ("u".to_string(), 2500)]
        );
        // SageMaker's documented shape reads.
        let sm = r#"{"version": 0, "dataset": {"item_count": 3}, "features": [
            {"name": "f", "inferred_type": "Fractional", "numerical_statistics": {
              "common": {"num_present": 3, "num_missing": 0}, "mean": 2, "sum": 6, "std_dev": 0.8, "min": 1, "max": 3,
              "distribution": {"kll": {"buckets": [{"lower_bound": 1, "upper_bound": 3, "count": 3}],
                "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[1.0, 2.0, 3.0]]}}}}}]}"#;
        let s: Statistics = serde_json::from_str(sm).unwrap();
        assert_eq!(s.features[0].cdf().at(2.0), 2.0 / 3.0);
    }
}
