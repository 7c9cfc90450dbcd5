//! Profiles from files in one streaming pass — CSV (with a header row), JSON
//! lines of flat objects and Parquet — and from SageMaker capture records as
//! Sextant's endpoints write them.
//!
//! CSV is read in large blocks by one thread that only finds row boundaries
//! (tracking quotes, so a quoted newline never splits a row); worker threads
//! split and profile the blocks, and their profiles are merged in block
//! order. Memory is a few blocks plus the sketches, whatever the file's size.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use serde_json::Value;

use crate::profile::{DatasetProfile, ProfileOptions};

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

/// Block size of the CSV reader.
const BLOCK: usize = 4 << 20;

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

/// A block of whole rows and the line number of its first row.
struct Block {
    index: usize,
    first_line: u64,
    bytes: Vec<u8>,
}

/// Profiles CSV with a header row from `reader`; `name` names it in errors.
pub fn profile_csv<R: Read + Send>(
    mut reader: R,
    name: &str,
    opts: ProfileOptions,
) -> Result<DatasetProfile, ReadError> {
    let io = |source| ReadError::Io {
        path: name.to_string(),
        source,
    };
    // The header.
    let mut pending: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let header_end = loop {
        if let Some(i) = pending.iter().position(|&b| b == b'\n') {
            break i;
        }
        let mut buf = vec![0u8; 64 << 10];
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            if pending.is_empty() {
                return Err(ReadError::Format {
                    path: name.to_string(),
                    message: "empty file: expected a header row".into(),
                });
            }
            break pending.len();
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let mut header_line = &pending[..header_end];
    if header_line.last() == Some(&b'\r') {
        header_line = &header_line[..header_line.len() - 1];
    }
    let header_text = std::str::from_utf8(header_line).map_err(|_| ReadError::Data {
        path: name.to_string(),
        line: 1,
        message: "the header is not UTF-8".into(),
    })?;
    let mut fields = Vec::new();
    split_fields(header_text, &mut fields).map_err(|m| ReadError::Data {
        path: name.to_string(),
        line: 1,
        message: m,
    })?;
    let columns: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
    if columns.iter().any(String::is_empty) {
        return Err(ReadError::Data {
            path: name.to_string(),
            line: 1,
            message: "the header has an empty column name".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(ReadError::Data {
            path: name.to_string(),
            line: 1,
            message: format!("column '{dup}' appears twice in the header"),
        });
    }
    pending.drain(..(header_end + 1).min(pending.len()));

    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (block_tx, block_rx) = mpsc::sync_channel::<Block>(workers * 2);
    let block_rx = std::sync::Arc::new(std::sync::Mutex::new(block_rx));
    // Block profiles come back here and are merged in block order as soon as they can
    // be, so at most the blocks in flight are held, whatever the file's size.
    let (done_tx, done_rx) = mpsc::channel::<(usize, DatasetProfile)>();
    let mut profile = DatasetProfile::new(opts);
    for c in &columns {
        profile.column_index(c);
    }
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0usize;
    let mut merge_ready = |profile: &mut DatasetProfile, arrived: Vec<(usize, DatasetProfile)>| {
        waiting.extend(arrived);
        while let Some(p) = waiting.remove(&next) {
            profile.merge(&p);
            next += 1;
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = block_rx.clone();
                let done = done_tx.clone();
                let columns = &columns;
                scope.spawn(move || -> Result<(), ReadError> {
                    loop {
                        let block = match rx.lock().expect("block queue").recv() {
                            Ok(b) => b,
                            Err(_) => return Ok(()),
                        };
                        let p = profile_block(&block, columns, name, opts)?;
                        if done.send((block.index, p)).is_err() {
                            return Ok(());
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        // This thread finds row boundaries and hands blocks out.
        let mut line = 2u64;
        let mut index = 0usize;
        let mut eof = false;
        let mut in_quotes = false;
        let mut scanned = 0usize;
        let mut last_boundary = 0usize;
        let mut lines_to_boundary = 0u64;
        let mut lines_scanned = 0u64;
        let mut result = Ok(());
        while !eof || !pending.is_empty() {
            if !eof && pending.len() < BLOCK {
                let start = pending.len();
                pending.resize(start + BLOCK, 0);
                match reader.read(&mut pending[start..]) {
                    Ok(n) => {
                        pending.truncate(start + n);
                        eof = n == 0;
                    }
                    Err(e) => {
                        pending.truncate(start);
                        result = Err(io(e));
                        break;
                    }
                }
                if !eof {
                    continue;
                }
            }
            for (i, &b) in pending.iter().enumerate().skip(scanned) {
                if b == b'"' {
                    in_quotes = !in_quotes;
                } else if b == b'\n' {
                    lines_scanned += 1;
                    if !in_quotes {
                        last_boundary = i + 1;
                        lines_to_boundary = lines_scanned;
                    }
                }
            }
            scanned = pending.len();
            let cut = if eof { pending.len() } else { last_boundary };
            if cut == 0 {
                if pending.len() > 256 << 20 {
                    result = Err(ReadError::Data {
                        path: name.to_string(),
                        line,
                        message: "a row longer than 256 MiB (an unclosed quote?)".into(),
                    });
                    break;
                }
                continue;
            }
            let rest = pending.split_off(cut);
            let bytes = std::mem::replace(&mut pending, rest);
            let lines = if eof {
                lines_scanned + 1
            } else {
                lines_to_boundary
            };
            if block_tx
                .send(Block {
                    index,
                    first_line: line,
                    bytes,
                })
                .is_err()
            {
                break; // a worker failed; its error is reported below
            }
            index += 1;
            merge_ready(&mut profile, done_rx.try_iter().collect());
            line += lines;
            lines_scanned -= lines_to_boundary.min(lines_scanned);
            scanned -= cut.min(scanned);
            last_boundary = 0;
            lines_to_boundary = 0;
            if eof {
                pending.clear();
            }
        }
        drop(block_tx);
        // Every worker's sender is gone once it returns: this drains to the end.
        merge_ready(&mut profile, done_rx.iter().collect());
        for h in handles {
            if let Err(e) = h.join().expect("a profiling thread panicked")
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result?;
        Ok(profile)
    })
}

/// Profiles one block of whole CSV rows.
fn profile_block(
    block: &Block,
    columns: &[String],
    name: &str,
    opts: ProfileOptions,
) -> Result<DatasetProfile, ReadError> {
    let mut p = DatasetProfile::new(opts);
    for c in columns {
        p.column_index(c);
    }
    let text = std::str::from_utf8(&block.bytes).map_err(|e| {
        let line = block.first_line
            + block.bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
        ReadError::Data {
            path: name.to_string(),
            line,
            message: "not UTF-8".into(),
        }
    })?;
    let mut fields: Vec<&str> = Vec::with_capacity(columns.len());
    let mut owned: Vec<String> = Vec::new();
    let mut line = block.first_line;
    let mut rest = text;
    while !rest.is_empty() {
        let (row, next, lines) = next_row(rest);
        rest = next;
        let row_line = line;
        line += lines;
        let row = row.strip_suffix('\r').unwrap_or(row);
        if row.is_empty() {
            continue;
        }
        let quoted;
        let n = if row.contains('"') {
            owned.clear();
            split_quoted(row, &mut owned).map_err(|m| ReadError::Data {
                path: name.to_string(),
                line: row_line,
                message: m,
            })?;
            quoted = true;
            owned.len()
        } else {
            fields.clear();
            fields.extend(row.split(','));
            quoted = false;
            fields.len()
        };
        if n != columns.len() {
            return Err(ReadError::Data {
                path: name.to_string(),
                line: row_line,
                message: format!("{n} fields, but the header has {} columns", columns.len()),
            });
        }
        if quoted {
            for (c, f) in p.columns.iter_mut().zip(&owned) {
                c.push_text(Some(f));
            }
        } else {
            for (c, f) in p.columns.iter_mut().zip(&fields) {
                c.push_text(Some(f));
            }
        }
        p.item_count += 1;
    }
    Ok(p)
}

/// The next row (without its newline), the text after it, and the lines it spans.
fn next_row(text: &str) -> (&str, &str, u64) {
    let b = text.as_bytes();
    let mut in_quotes = false;
    let mut lines = 1;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => return (&text[..i], &text[i + 1..], lines),
            b'\n' => lines += 1,
            _ => {}
        }
    }
    (text, "", lines)
}

/// Splits a header row (which may be quoted).
fn split_fields(row: &str, out: &mut Vec<String>) -> Result<(), String> {
    if row.contains('"') {
        split_quoted(row, out)
    } else {
        out.extend(row.split(',').map(String::from));
        Ok(())
    }
}

/// Splits a row with RFC 4180 quoting (`""` inside quotes is a quote).
fn split_quoted(row: &str, out: &mut Vec<String>) -> Result<(), String> {
    let mut field = String::new();
    let mut chars = row.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, ',') => {
                out.push(std::mem::take(&mut field));
                at_start = true;
            }
            (false, c) => {
                field.push(c);
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote".into());
                }
            }
            (true, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote".into());
    }
    out.push(field);
    Ok(())
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

/// One prediction of a captured answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prediction {
    /// A numeric prediction (regression, or a numeric class label).
    pub value: Option<f64>,
    /// A class label.
    pub label: Option<String>,
    /// The positive class's probability (binary classifiers).
    pub probability: Option<f64>,
}

/// One captured exchange, decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedExchange {
    pub event_id: String,
    pub inference_id: Option<String>,
    /// `inferenceTime`.
    pub time: String,
    /// Input rows as (column, value).
    pub rows: Vec<Vec<(String, Value)>>,
    /// One per input row when the answer was captured.
    pub predictions: Vec<Prediction>,
}

/// Decodes one capture line. `columns` names the fields of CSV bodies and of
/// JSON bodies without names (`instances`/`inputs` as lists).
pub fn decode_capture_line(
    line: &str,
    columns: Option<&[String]>,
) -> Result<CapturedExchange, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    decode_capture_value(&v, columns)
}

/// Decodes one capture record already parsed as JSON (see [`decode_capture_line`]).
pub fn decode_capture_value(
    v: &Value,
    columns: Option<&[String]>,
) -> Result<CapturedExchange, String> {
    let meta = v.get("eventMetadata").ok_or("no eventMetadata")?;
    let data = v.get("captureData").ok_or("no captureData")?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(String::from);
    let mut out = CapturedExchange {
        event_id: text("eventId").unwrap_or_default(),
        inference_id: text("inferenceId"),
        time: text("inferenceTime").unwrap_or_default(),
        ..CapturedExchange::default()
    };
    if let Some(input) = data.get("endpointInput") {
        out.rows = decode_input(input, columns)?;
    }
    if let Some(output) = data.get("endpointOutput") {
        out.predictions = decode_output(output)?;
    }
    Ok(out)
}

fn body_text(b: &Value) -> Result<(String, String), String> {
    let encoding = b.get("encoding").and_then(Value::as_str).unwrap_or("JSON");
    let data = b
        .get("data")
        .and_then(Value::as_str)
        .ok_or("a body without data")?;
    match encoding {
        "JSON" | "CSV" => Ok((encoding.to_string(), data.to_string())),
        "BASE64" => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| format!("BASE64 body: {e}"))?;
            let text = String::from_utf8(bytes).map_err(|_| "a BASE64 body that is not text")?;
            let kind = if text.trim_start().starts_with(['{', '[']) {
                "JSON"
            } else {
                "CSV"
            };
            Ok((kind.to_string(), text))
        }
        other => Err(format!("unknown encoding '{other}'")),
    }
}

fn name_of(columns: Option<&[String]>, i: usize) -> String {
    columns
        .and_then(|c| c.get(i))
        .cloned()
        .unwrap_or_else(|| format!("_c{i}"))
}

fn positional(row: &[Value], columns: Option<&[String]>) -> Vec<(String, Value)> {
    row.iter()
        .enumerate()
        .map(|(i, v)| (name_of(columns, i), v.clone()))
        .collect()
}

fn decode_input(
    b: &Value,
    columns: Option<&[String]>,
) -> Result<Vec<Vec<(String, Value)>>, String> {
    let (encoding, text) = body_text(b)?;
    if encoding == "CSV" {
        let mut rows = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut fields = Vec::new();
            split_fields(line, &mut fields)?;
            rows.push(
                fields
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let v = f
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .and_then(|x| serde_json::Number::from_f64(x).map(Value::Number))
                            .unwrap_or(Value::String(f));
                        (name_of(columns, i), v)
                    })
                    .collect(),
            );
        }
        return Ok(rows);
    }
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("input body is not JSON: {e}"))?;
    let records = |list: &[Value]| -> Vec<Vec<(String, Value)>> {
        list.iter()
            .map(|r| match r {
                Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                Value::Array(a) => positional(a, columns),
                other => vec![(name_of(columns, 0), other.clone())],
            })
            .collect()
    };
    if let Some(split) = v.get("dataframe_split") {
        let names: Vec<String> = match split.get("columns").and_then(Value::as_array) {
            Some(c) => c
                .iter()
                .map(|n| n.as_str().map_or_else(|| n.to_string(), String::from))
                .collect(),
            None => columns.map(<[String]>::to_vec).unwrap_or_default(),
        };
        let data = split
            .get("data")
            .and_then(Value::as_array)
            .ok_or("dataframe_split without data")?;
        return Ok(data
            .iter()
            .map(|row| match row {
                Value::Array(a) => positional(a, Some(&names)),
                other => vec![(name_of(Some(&names), 0), other.clone())],
            })
            .collect());
    }
    if let Some(Value::Array(list)) = v.get("dataframe_records") {
        return Ok(records(list));
    }
    for key in ["instances", "inputs"] {
        match v.get(key) {
            Some(Value::Array(list)) => return Ok(records(list)),
            Some(Value::Object(cols)) => {
                // Columnar: {"x": [1, 2], "y": [3, 4]}.
                let n = cols
                    .values()
                    .filter_map(Value::as_array)
                    .map(Vec::len)
                    .max()
                    .unwrap_or(0);
                return Ok((0..n)
                    .map(|i| {
                        cols.iter()
                            .map(|(k, c)| (k.clone(), c.get(i).cloned().unwrap_or(Value::Null)))
                            .collect()
                    })
                    .collect());
            }
            _ => {}
        }
    }
    Err("input body has none of dataframe_split, dataframe_records, instances, inputs".into())
}

fn decode_output(b: &Value) -> Result<Vec<Prediction>, String> {
    let (encoding, text) = body_text(b)?;
    if encoding == "CSV" {
        return Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| one_prediction(&Value::String(l.trim().to_string())))
            .collect());
    }
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("output body is not JSON: {e}"))?;
    let p = v.get("predictions").unwrap_or(&v);
    Ok(match p {
        Value::Array(rows) => rows.iter().map(one_prediction).collect(),
        Value::Object(outputs) => {
            // One list per output: turn into one record per row.
            let n = outputs
                .values()
                .filter_map(Value::as_array)
                .map(Vec::len)
                .max()
                .unwrap_or(0);
            (0..n)
                .map(|i| {
                    let record: serde_json::Map<String, Value> = outputs
                        .iter()
                        .map(|(k, col)| (k.clone(), col.get(i).cloned().unwrap_or(Value::Null)))
                        .collect();
                    one_prediction(&Value::Object(record))
                })
                .collect()
        }
        other => vec![one_prediction(other)],
    })
}

/// The positive class's probability in a probabilities value: `[p0, p1]`,
/// `{"0": p0, "1": p1}` or a bare number.
fn positive_probability(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(a) if a.len() == 2 => a[1].as_f64(),
        Value::Array(a) if a.len() == 1 => positive_probability(&a[0]),
        Value::Object(m) => ["1", "true", "True", "yes"]
            .iter()
            .find_map(|k| m.get(*k))
            .or_else(|| (m.len() == 2).then(|| m.values().next_back()).flatten())
            .and_then(Value::as_f64),
        _ => None,
    }
}

fn one_prediction(v: &Value) -> Prediction {
    match v {
        Value::Number(n) => Prediction {
            value: n.as_f64(),
            ..Prediction::default()
        },
        Value::String(s) => Prediction {
            value: s.parse().ok(),
            label: Some(s.clone()),
            probability: None,
        },
        Value::Bool(b) => Prediction {
            value: Some(f64::from(u8::from(*b))),
            label: Some(b.to_string()),
            probability: None,
        },
        Value::Array(a) => a.first().map(one_prediction).unwrap_or_default(),
        Value::Object(m) => {
            let label = ["label", "output_label", "predicted_label", "prediction"]
                .iter()
                .find_map(|k| m.get(*k))
                .map(one_prediction);
            let probability = ["probabilities", "output_probability", "probability"]
                .iter()
                .find_map(|k| m.get(*k))
                .and_then(positive_probability);
            match label {
                Some(mut p) => {
                    p.label = p.label.or_else(|| p.value.map(|x| x.to_string()));
                    p.probability = probability;
                    p
                }
                None => {
                    // A regressor's single named output, e.g. {"variable": 1.5}.
                    let mut p = m.values().next().map(one_prediction).unwrap_or_default();
                    p.probability = probability;
                    p
                }
            }
        }
        Value::Null => Prediction::default(),
    }
}

/// Profiles the inputs of capture lines and returns the decoded exchanges
/// (for joining predictions with ground truth). A line that does not decode
/// is an error naming its number.
pub fn profile_capture<'a>(
    lines: impl Iterator<Item = &'a str>,
    columns: Option<&[String]>,
    opts: ProfileOptions,
) -> Result<(DatasetProfile, Vec<CapturedExchange>), ReadError> {
    let mut p = DatasetProfile::new(opts);
    let mut exchanges = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex = decode_capture_line(line, columns).map_err(|message| ReadError::Data {
            path: "capture".into(),
            line: i as u64 + 1,
            message,
        })?;
        for row in &ex.rows {
            p.push_json_row(row.iter().map(|(k, v)| (k.as_str(), v)));
        }
        exchanges.push(ex);
    }
    Ok((p, exchanges))
}

/// Profiles a Parquet file: row groups in parallel (one thread per CPU, each
/// with its own reader, taking every n-th group), each through the record
/// API, merged in row-group order; columns keep the schema's order. Nested
/// values (lists, maps, structs) are profiled as their text.
pub fn profile_parquet(path: &Path, opts: ProfileOptions) -> Result<DatasetProfile, ReadError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let name = path.display().to_string();
    let open = || -> Result<SerializedFileReader<std::fs::File>, ReadError> {
        let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
            path: name.clone(),
            source,
        })?;
        SerializedFileReader::new(file).map_err(|e| ReadError::Format {
            path: name.clone(),
            message: format!("not a readable Parquet file: {e}"),
        })
    };
    let reader = open()?;
    let groups = reader.metadata().num_row_groups();
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let empty = || {
        let mut p = DatasetProfile::new(opts);
        for c in &columns {
            p.column_index(c);
        }
        p
    };
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(groups)
        .max(1);
    let parts: Vec<Result<Vec<(usize, DatasetProfile)>, ReadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (open, empty, name) = (&open, &empty, &name);
                scope.spawn(move || {
                    let reader = open()?;
                    let mut out = Vec::new();
                    for g in (t..groups).step_by(threads) {
                        let bad = |e: parquet::errors::ParquetError| {
                            let e = e.to_string();
                            let hint = if e.contains("Disabled feature") {
                                " (Sextant reads Snappy-compressed and uncompressed Parquet)"
                            } else {
                                ""
                            };
                            ReadError::Format {
                                path: name.clone(),
                                message: format!("row group {g}: {e}{hint}"),
                            }
                        };
                        let group = reader.get_row_group(g).map_err(bad)?;
                        let mut profile = empty();
                        for row in group.get_row_iter(None).map_err(bad)? {
                            let row = row.map_err(bad)?;
                            for (i, (_, field)) in row.get_column_iter().enumerate() {
                                push_parquet(&mut profile.columns[i], field);
                            }
                            profile.end_row();
                        }
                        out.push((g, profile));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a Parquet worker panicked"))
            .collect()
    });
    let mut all = Vec::with_capacity(groups);
    for part in parts {
        all.extend(part?);
    }
    all.sort_by_key(|(g, _)| *g);
    let mut profile = empty();
    for (_, p) in &all {
        profile.merge(p);
    }
    Ok(profile)
}

/// One Parquet value into a column's profile: numbers keep their kind
/// (integers integral, floats fractional), text is typed like a CSV cell.
fn push_parquet(column: &mut crate::profile::ColumnProfile, field: &parquet::record::Field) {
    use parquet::record::Field;
    match field {
        Field::Null => column.push_json(&Value::Null),
        Field::Bool(b) => column.push_json(&Value::Bool(*b)),
        Field::Byte(x) => column.push_json(&Value::from(*x)),
        Field::Short(x) => column.push_json(&Value::from(*x)),
        Field::Int(x) => column.push_json(&Value::from(*x)),
        Field::Long(x) => column.push_json(&Value::from(*x)),
        Field::UByte(x) => column.push_json(&Value::from(*x)),
        Field::UShort(x) => column.push_json(&Value::from(*x)),
        Field::UInt(x) => column.push_json(&Value::from(*x)),
        Field::ULong(x) => column.push_json(&Value::from(*x)),
        // A NaN is missing, as in CSV; JSON has no NaN to carry it.
        Field::Float(x) if x.is_nan() => column.push_json(&Value::Null),
        Field::Double(x) if x.is_nan() => column.push_json(&Value::Null),
        Field::Float(x) => column.push_json(&float(f64::from(*x))),
        Field::Double(x) => column.push_json(&float(*x)),
        Field::Str(s) => column.push_text(Some(s)),
        // Decimals, dates, timestamps, bytes and nested values as their text.
        other => column.push_text(Some(&other.to_string())),
    }
}

/// A JSON number that stays a float (`2.0`, not `2`), so the column reads as fractional.
fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Result<DatasetProfile, ReadError> {
        profile_csv(text.as_bytes(), "t.csv", ProfileOptions::default())
    }

    #[test]
    fn csv_with_quotes_crlf_and_missing_cells() {
        let p =
            profile("a,b,\"c d\"\r\n1,x,\"q,\"\"uoted\"\"\"\r\n2,,\"multi\nline\"\n3,y,z").unwrap();
        assert_eq!(p.item_count, 3);
        let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c d"]);
        assert_eq!(p.column("a").unwrap().moments.sum, 6.0);
        assert_eq!(p.column("b").unwrap().missing, 1);
        let c: Vec<String> = p
            .column("c d")
            .unwrap()
            .categories()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            c.contains(&"q,\"uoted\"".to_string()) && c.contains(&"multi\nline".to_string()),
            "{c:?}"
        );
    }

    #[test]
    fn ragged_rows_name_their_line() {
        let e = profile("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert_eq!(e, "t.csv: line 3: 1 fields, but the header has 2 columns");
        let e = profile("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
        let e = profile("").unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let e = profile("a,b\n1,\"2\n").unwrap_err().to_string();
        assert!(e.contains("unclosed quote"), "{e}");
    }

    #[test]
    fn blocks_split_on_row_boundaries() {
        let mut text = String::from("x,s\n");
        for i in 0..300_000 {
            text.push_str(&format!("{i},\"v\n{}\"\n", i % 7));
        }
        let p = profile(&text).unwrap();
        assert_eq!(p.item_count, 300_000);
        assert_eq!(p.column("s").unwrap().distinct_count(), 7);
        assert_eq!(p.column("x").unwrap().moments.max, 299_999.0);
    }

    #[test]
    fn capture_records_decode_inputs_and_predictions() {
        let input = serde_json::json!({"dataframe_split": {"columns": ["x", "c"], "data": [[1.5, "a"], [2.5, "b"]]}}).to_string();
        let output = serde_json::json!({"predictions": {"variable": [[0.5], [0.7]]}}).to_string();
        let line = serde_json::json!({
            "captureData": {
                "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": input, "encoding": "JSON"},
                "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": output, "encoding": "JSON"}
            },
            "eventMetadata": {"eventId": "e1", "inferenceId": "i1", "inferenceTime": "2026-12-04T01:02:03Z"},
            "eventVersion": "0"
        })
        .to_string();
        let (p, ex) = profile_capture(
            std::iter::once(line.as_str()),
            None,
            ProfileOptions::default(),
        )
        .unwrap();
        assert_eq!(p.item_count, 2);
        assert_eq!(p.column("x").unwrap().moments.mean, 2.0);
        assert_eq!(ex[0].inference_id.as_deref(), Some("i1"));
        assert_eq!(
            ex[0]
                .predictions
                .iter()
                .map(|p| p.value)
                .collect::<Vec<_>>(),
            [Some(0.5), Some(0.7)]
        );
        let cls = decode_output(&serde_json::json!({"data": r#"{"predictions": [{"label": 1, "probabilities": [0.25, 0.75]}]}"#, "encoding": "JSON"})).unwrap();
        assert_eq!(
            cls[0],
            Prediction {
                value: Some(1.0),
                label: Some("1".into()),
                probability: Some(0.75)
            }
        );
        let zipmap = decode_output(&serde_json::json!({"data": r#"{"predictions": {"output_label": ["yes"], "output_probability": [{"no": 0.1, "yes": 0.9}]}}"#, "encoding": "JSON"})).unwrap();
        assert_eq!(zipmap[0].label.as_deref(), Some("yes"));
        assert_eq!(zipmap[0].probability, Some(0.9));
        // The built-in classifiers' answers: a record per row for a table, a list per output
        // for a tensor; ZipMap's integer classes are JSON object keys.
        for body in [
            r#"{"predictions": [{"label": 1, "probabilities": {"0": 0.25, "1": 0.75}}, {"label": 0, "probabilities": {"0": 0.5, "1": 0.5}}]}"#,
            r#"{"predictions": {"label": [1, 0], "probabilities": [{"0": 0.25, "1": 0.75}, {"0": 0.5, "1": 0.5}]}}"#,
        ] {
            let builtin =
                decode_output(&serde_json::json!({"data": body, "encoding": "JSON"})).unwrap();
            let decoded: Vec<_> = builtin
                .iter()
                .map(|p| (p.label.as_deref(), p.probability))
                .collect();
            assert_eq!(
                decoded,
                [(Some("1"), Some(0.75)), (Some("0"), Some(0.5))],
                "{body}"
            );
        }
        let e = profile_capture(std::iter::once("{}"), None, ProfileOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("eventMetadata"), "{e}");
    }
}
