//! An endpoint's window built record by record from its capture files, and
//! the window's rows written back as CSV for retraining.

use std::collections::HashMap;

use serde_json::Value;

use super::Window;
use crate::profile::{DatasetProfile, ProfileOptions};
use crate::read::{CapturedExchange, ReadError, decode_capture_value};

/// The capture records of a window, profiled as they are pushed: each line
/// is parsed once, kept or left out by its `inferenceTime`, decoded and
/// profiled; nothing keeps the text.
#[derive(Debug)]
pub struct CaptureWindow {
    columns: Vec<String>,
    profile: DatasetProfile,
    exchanges: Vec<CapturedExchange>,
    /// Records kept so far, to name the one that does not decode.
    kept: u64,
}

impl CaptureWindow {
    /// An empty window whose CSV and unnamed JSON bodies have `columns`.
    pub fn new(columns: Vec<String>, opts: ProfileOptions) -> CaptureWindow {
        CaptureWindow {
            columns,
            profile: DatasetProfile::new(opts),
            exchanges: Vec::new(),
            kept: 0,
        }
    }

    /// Takes one capture line, unless `in_window` says its `inferenceTime`
    /// (RFC 3339) falls outside the window; a blank line is skipped. A record
    /// without a time is kept. A kept line that does not decode is an error
    /// naming its number among the kept ones.
    pub fn push_line(
        &mut self,
        line: &str,
        in_window: impl Fn(&str) -> bool,
    ) -> Result<(), ReadError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let record = serde_json::from_str::<Value>(line);
        if let Ok(v) = &record
            && let Some(time) = v
                .pointer("/eventMetadata/inferenceTime")
                .and_then(Value::as_str)
            && !in_window(time)
        {
            return Ok(());
        }
        self.kept += 1;
        let decoded = record
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| decode_capture_value(&v, Some(&self.columns)));
        let ex = decoded.map_err(|message| ReadError::Data {
            path: "capture".into(),
            line: self.kept,
            message,
        })?;
        for row in &ex.rows {
            self.profile
                .push_json_row(row.iter().map(|(k, v)| (k.as_str(), v)));
        }
        self.exchanges.push(ex);
        Ok(())
    }

    /// The window, with the labels uploaded for it by inference id.
    pub fn finish(self, labels: HashMap<String, String>) -> Window {
        Window {
            profile: self.profile,
            exchanges: self.exchanges,
            labels,
        }
    }
}

/// The window's rows in the baseline's `columns`, and with `label` (when
/// model quality is on) only the rows of single-row exchanges that have one.
pub(super) fn window_csv(columns: &[String], label: Option<&str>, window: &Window) -> String {
    let mut csv = columns.join(",");
    if let Some(l) = label {
        csv.push(',');
        csv.push_str(l);
    }
    csv.push('\n');
    for ex in &window.exchanges {
        let value = ex
            .inference_id
            .as_ref()
            .and_then(|id| window.labels.get(id));
        if label.is_some() && (value.is_none() || ex.rows.len() != 1) {
            continue; // a training row needs its label
        }
        for row in &ex.rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    row.iter()
                        .find(|(k, _)| k == c)
                        .map_or(String::new(), |(_, v)| csv_cell(v))
                })
                .collect();
            csv.push_str(&cells.join(","));
            if let Some(l) = value {
                csv.push(',');
                csv.push_str(&csv_cell(&Value::String(l.clone())));
            }
            csv.push('\n');
        }
    }
    csv
}

fn csv_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
