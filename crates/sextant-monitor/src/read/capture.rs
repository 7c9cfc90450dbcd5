//! SageMaker capture records as Sextant's endpoints write them: one JSON
//! record a line, the request and the answer as encoded bodies, decoded into
//! input rows and predictions.

use serde_json::Value;

use super::ReadError;
use super::csv::split_fields;
use crate::profile::{DatasetProfile, ProfileOptions};

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

#[cfg(test)]
mod tests {
    use super::*;

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
