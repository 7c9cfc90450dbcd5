//! One monitor check without IO but reading local files: the window's profile,
//! SageMaker's constraint checks, drift per feature, model quality, and the
//! files a run stores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::config::MonitorSpec;

/// A baseline as read from its directory.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Where it came from, for the summary.
    pub source: String,
    /// `statistics.json`.
    pub statistics: Vec<u8>,
    /// `constraints.json`, when there is one (else suggested from the statistics).
    pub constraints: Option<Vec<u8>>,
}

impl Baseline {
    /// Reads `dir/statistics.json` and `dir/constraints.json`.
    pub fn read(dir: &Path, source: &str) -> Result<Baseline, String> {
        let statistics = std::fs::read(dir.join("statistics.json")).map_err(|e| {
            format!(
                "baseline {source}: cannot read {}: {e} (write one with `sextant monitors baseline` or `uses: builtin/baseline`)",
                dir.join("statistics.json").display()
            )
        })?;
        let constraints = match std::fs::read(dir.join("constraints.json")) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("baseline {source}: constraints.json: {e}")),
        };
        Ok(Baseline {
            source: source.to_string(),
            statistics,
            constraints,
        })
    }
}

/// The window's data.
#[derive(Debug)]
pub enum Input {
    /// Capture lines of the window and the uploaded labels by inference id.
    Capture {
        lines: Vec<String>,
        labels: HashMap<String, String>,
    },
    /// A data set on this host.
    File(PathBuf),
}

/// What a check found and the files to store.
#[derive(Debug, Default)]
pub struct Output {
    pub rows: u64,
    pub baseline_source: String,
    /// SageMaker-shaped violations (`feature_name`, `constraint_check_type`, `description`).
    pub violations: Vec<Value>,
    /// Drift summary: `drifted`, `share`, `drifted_features` (top first), per feature.
    pub drift: Value,
    pub quality: Option<Value>,
    /// File name → bytes.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

/// Runs the checks of `spec` on `input` against `baseline`.
pub fn evaluate(spec: &MonitorSpec, baseline: &Baseline, input: Input) -> Result<Output, String> {
    let _ = (spec, baseline, input);
    Err("monitor checks are not wired yet".into())
}
