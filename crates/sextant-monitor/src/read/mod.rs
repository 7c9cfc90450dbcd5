//! Profiles from files in one streaming pass — CSV with a header row
//! (`csv.rs`), JSON lines of flat objects, Parquet (`parquet.rs`) — and from
//! SageMaker capture records as Sextant's endpoints write them (`capture.rs`).
//! This module picks the reader by the path's extension.

mod capture;
mod csv;
mod parquet;

use std::path::Path;

use serde_json::Value;

use crate::profile::{DatasetProfile, ProfileOptions};

pub use capture::{
    CapturedExchange, Prediction, decode_capture_line, decode_capture_value, profile_capture,
};
pub use csv::profile_csv;
pub use parquet::profile_parquet;

/// Why a file could not be profiled; each names the file and, where it
/// applies, the line.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {message}")]
    Data {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

/// File formats profiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Parquet,
    /// SageMaker capture records (`captureData`…), one per line.
    Capture,
}

impl Format {
    /// The format a path's extension names (`.csv`, `.jsonl`/`.json`, `.parquet`); a
    /// directory holds capture files.
    pub fn of(path: &Path) -> Option<Format> {
        if path.is_dir() {
            return Some(Format::Capture);
        }
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "json" | "ndjson" => Some(Format::JsonLines),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// Profiles the file (or capture directory) at `path`.
pub fn profile_path(path: &Path, opts: ProfileOptions) -> Result<DatasetProfile, ReadError> {
    let name = path.display().to_string();
    let format = Format::of(path).ok_or_else(|| ReadError::Format {
        path: name.clone(),
        message: "unknown format: use a .csv, .jsonl or .parquet file, or a directory of capture .jsonl files".into(),
    })?;
    match format {
        Format::Parquet => profile_parquet(path, opts),
        Format::Csv => {
            let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
                path: name.clone(),
                source,
            })?;
            profile_csv(file, &name, opts)
        }
        Format::JsonLines => {
            let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
                path: name.clone(),
                source,
            })?;
            if text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.contains("\"captureData\""))
            {
                return profile_capture(text.lines(), None, opts)
                    .map(|(p, _)| p)
                    .map_err(|e| e.in_file(&name));
            }
            profile_json_lines(&text, &name, opts)
        }
        Format::Capture => {
            let mut files = Vec::new();
            collect_files(path, &mut files).map_err(|source| ReadError::Io {
                path: name.clone(),
                source,
            })?;
            files.sort();
            let mut profile = DatasetProfile::new(opts);
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|source| ReadError::Io {
                    path: f.display().to_string(),
                    source,
                })?;
                let (p, _) = profile_capture(text.lines(), None, opts)
                    .map_err(|e| e.in_file(&f.display().to_string()))?;
                profile.merge(&p);
            }
            Ok(profile)
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "jsonl") {
            out.push(p);
        }
    }
    Ok(())
}

impl ReadError {
    fn in_file(self, path: &str) -> ReadError {
        match self {
            ReadError::Data { line, message, .. } => ReadError::Data {
                path: path.to_string(),
                line,
                message,
            },
            other => other,
        }
    }
}

/// Profiles JSON lines of flat objects.
pub fn profile_json_lines(
    text: &str,
    name: &str,
    opts: ProfileOptions,
) -> Result<DatasetProfile, ReadError> {
    let mut p = DatasetProfile::new(opts);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| ReadError::Data {
            path: name.to_string(),
            line: i as u64 + 1,
            message: format!("not JSON: {e}"),
        })?;
        let Value::Object(map) = v else {
            return Err(ReadError::Data {
                path: name.to_string(),
                line: i as u64 + 1,
                message: "expected a JSON object".into(),
            });
        };
        p.push_json_row(map.iter().map(|(k, v)| (k.as_str(), v)));
    }
    Ok(p)
}
