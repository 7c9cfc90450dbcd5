//! MLflow 3.17's `/invocations` request decoding (`mlflow.pyfunc.scoring_server`): JSON
//! bodies with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`
//! (plus `params`), and `text/csv`. SageMaker's container contract uses the same route.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::ordered::Json;
use super::{Frame, JsonTensor, ModelRequest, Payload, RawBody, json_kind};
use crate::error::InputError;

/// The four input fields, one of which a JSON body must carry.
const FORMATS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

/// The body's media type, once its parameters have been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`.
    Json,
    /// `text/csv`.
    Csv,
}

/// Checks `Content-Type` the way MLflow's scoring server does: only `charset=utf-8` may
/// follow the media type, and only JSON and CSV are accepted (MLflow's parquet is not).
pub fn media_type(content_type: Option<&str>) -> Result<MediaType, InputError> {
    let raw = content_type.unwrap_or("");
    let mut parts = raw.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut unknown = Vec::new();
    for param in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = key.trim().to_ascii_lowercase();
        if key == "charset" {
            if !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8") {
                return Err(InputError::UnsupportedMediaType(
                    "The scoring server only supports UTF-8".into(),
                ));
            }
        } else {
            unknown.push(key);
        }
    }
    if !unknown.is_empty() {
        return Err(InputError::UnsupportedMediaType(format!(
            "Unrecognized content type parameters: {}. IMPORTANT: The MLflow Model scoring \
             protocol has changed in MLflow version 2.0; send one of dataframe_split, \
             dataframe_records, instances or inputs in a JSON body instead of a format parameter.",
            unknown.join(", ")
        )));
    }
    match mime.as_str() {
        "application/json" => Ok(MediaType::Json),
        "text/csv" => Ok(MediaType::Csv),
        _ => Err(InputError::UnsupportedMediaType(format!(
            "This predictor only supports the following content types: \
             Types: ['text/csv', 'application/json']. Got '{raw}'."
        ))),
    }
}

/// Decodes an `/invocations` body.
pub fn decode(content_type: Option<&str>, body: Bytes) -> Result<ModelRequest, InputError> {
    let media = media_type(content_type)?;
    let raw = Some(RawBody {
        content_type: content_type.unwrap_or_default().to_owned(),
        body: body.clone(),
    });
    let (payload, params) = match media {
        MediaType::Json => decode_json(&body)?,
        MediaType::Csv => (Payload::Frame(decode_csv(&body)?), None),
    };
    Ok(ModelRequest {
        payload,
        params,
        raw,
    })
}

fn decode_json(body: &[u8]) -> Result<(Payload, Option<Map<String, Value>>), InputError> {
    // Three ordered levels: the body, a field's list, and each record of it.
    let doc = Json::parse(body, 3).map_err(|e| {
        InputError::invalid(format!(
            "Invalid input. Ensure that input is a valid JSON formatted string. Error: {e}"
        ))
    })?;
    let fields = match doc {
        Json::Object(fields) => fields,
        other => {
            return Err(InputError::invalid(format!(
                "the input must be a JSON object with exactly one of the fields {}; received {}",
                FORMATS.join(", "),
                json_kind(&other.into_value())
            )));
        }
    };
    // Later duplicates win, as in Python's `json`.
    let mut params = None;
    let mut data: Vec<(String, Json)> = Vec::with_capacity(1);
    for (key, value) in fields {
        if key == "params" {
            params = Some(value);
        } else if let Some(slot) = data.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            data.push((key, value));
        }
    }
    let params = match params.map(Json::into_value) {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "params must be a JSON object, got {}",
                json_kind(&other)
            )));
        }
    };
    if data.len() != 1 || !FORMATS.contains(&data[0].0.as_str()) {
        let mut received: Vec<String> = data.iter().map(|(k, _)| format!("{k:?}")).collect();
        received.sort();
        return Err(InputError::invalid(format!(
            "the input must be a JSON object with exactly one of the fields {}; received [{}]",
            FORMATS.join(", "),
            received.join(", ")
        )));
    }
    let (key, value) = data.pop().expect("one key, checked above");
    let payload = match key.as_str() {
        "dataframe_split" => Payload::Frame(dataframe_split(value.into_value())?),
        "dataframe_records" => Payload::Frame(records(value, "dataframe_records")?),
        "instances" => match value {
            Json::Array(items) if matches!(items.first(), Some(Json::Object(_))) => {
                Payload::Frame(records(Json::Array(items), "instances")?)
            }
            Json::Array(items) => Payload::Tensor(JsonTensor::from_nested(
                Json::Array(items).into_value(),
                "instances",
            )?),
            other => {
                return Err(InputError::invalid(format!(
                    "instances must be a list, got {}",
                    json_kind(&other.into_value())
                )));
            }
        },
        _ => match value {
            Json::Object(named) => Payload::Named(
                named
                    .into_iter()
                    .fold(Vec::<(String, Json)>::new(), |mut acc, (name, v)| {
                        match acc.iter_mut().find(|(n, _)| *n == name) {
                            Some(slot) => slot.1 = v,
                            None => acc.push((name, v)),
                        }
                        acc
                    })
                    .into_iter()
                    .map(|(name, v)| {
                        let what = format!("inputs[{name:?}]");
                        JsonTensor::from_nested(v.into_value(), &what).map(|t| (name, t))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => Payload::Tensor(JsonTensor::from_nested(other.into_value(), "inputs")?),
        },
    };
    Ok((payload, params))
}

/// `{"columns": [...]?, "data": [[...], ...], "index": [...]?}`, pandas' split orient.
fn dataframe_split(value: Value) -> Result<Frame, InputError> {
    let Value::Object(mut split) = value else {
        return Err(InputError::invalid(
            "dataframe_split must be an object with \"data\" and optionally \"columns\" and \"index\"",
        ));
    };
    if let Some(extra) = split
        .keys()
        .find(|k| !matches!(k.as_str(), "columns" | "data" | "index"))
    {
        return Err(InputError::invalid(format!(
            "dataframe_split has an unknown field {extra:?}; it takes columns, data and index"
        )));
    }
    let columns = match split.remove("columns") {
        None | Some(Value::Null) => None,
        Some(Value::Array(cols)) => Some(
            cols.into_iter()
                .map(|c| match c {
                    Value::String(s) => Ok(s),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(InputError::invalid(format!(
                        "dataframe_split columns must be strings, got {}",
                        json_kind(&other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "dataframe_split columns must be a list, got {}",
                json_kind(&other)
            )));
        }
    };
    let data = match split.remove("data") {
        Some(Value::Array(rows)) => rows,
        None => return Err(InputError::invalid("dataframe_split has no \"data\"")),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "dataframe_split data must be a list of rows, got {}",
                json_kind(&other)
            )));
        }
    };
    let width = columns
        .as_ref()
        .map(Vec::len)
        .or_else(|| data.first().map(|r| r.as_array().map_or(1, Vec::len)));
    let rows = data
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let row = match row {
                Value::Array(cells) => cells,
                scalar => vec![scalar],
            };
            if Some(row.len()) != width {
                return Err(InputError::invalid(format!(
                    "dataframe_split row {i} has {} values, expected {}",
                    row.len(),
                    width.unwrap_or(0)
                )));
            }
            Ok(row)
        })
        .collect::<Result<_, _>>()?;
    Ok(Frame {
        columns,
        rows,
        text_cells: false,
    })
}

/// A list of `{"column": value}` records (pandas' records orient): the columns in the order
/// their keys first appear, as pandas builds the frame; a key missing from a record is a
/// missing value, and a key repeated within a record takes its last value.
fn records(value: Json, what: &str) -> Result<Frame, InputError> {
    let Json::Array(items) = value else {
        return Err(InputError::invalid(format!(
            "{what} must be a list of records, got {}",
            json_kind(&value.into_value())
        )));
    };
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Json::Object(record) = item else {
            return Err(InputError::invalid(format!(
                "{what}[{i}] must be an object mapping column names to values, got {}",
                json_kind(&item.into_value())
            )));
        };
        let mut row = vec![Value::Null; columns.len()];
        for (key, v) in record {
            let at = match columns.iter().position(|c| *c == key) {
                Some(at) => at,
                None => {
                    columns.push(key);
                    row.push(Value::Null);
                    columns.len() - 1
                }
            };
            row[at] = v.into_value();
        }
        rows.push(row);
    }
    for row in &mut rows {
        row.resize(columns.len(), Value::Null);
    }
    Ok(Frame {
        columns: Some(columns),
        rows,
        text_cells: false,
    })
}

/// A CSV table with a header row; cells stay text until the signature types them.
fn decode_csv(body: &[u8]) -> Result<Frame, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let bad = |e: csv::Error| InputError::invalid(format!("invalid CSV: {e}"));
    let columns: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(str::to_owned)
        .collect();
    if columns.is_empty() {
        return Err(InputError::invalid("invalid CSV: no header row"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        rows.push(record.iter().map(|c| Value::String(c.to_owned())).collect());
    }
    Ok(Frame {
        columns: Some(columns),
        rows,
        text_cells: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_body(v: Value) -> Result<ModelRequest, InputError> {
        decode(
            Some("application/json"),
            Bytes::from(serde_json::to_vec(&v).unwrap()),
        )
    }

    #[test]
    fn content_types_follow_mlflow() {
        assert_eq!(
            media_type(Some("application/json; charset=UTF-8")),
            Ok(MediaType::Json)
        );
        assert_eq!(media_type(Some("text/csv")), Ok(MediaType::Csv));
        let e = media_type(Some("application/json; charset=latin-1")).unwrap_err();
        assert_eq!(e.to_string(), "The scoring server only supports UTF-8");
        let e = media_type(Some("application/json; format=pandas-split")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Unrecognized content type parameters: format.")
        );
        let e = media_type(Some("text/plain")).unwrap_err();
        assert!(e.to_string().ends_with("Got 'text/plain'."), "{e}");
        assert!(matches!(
            media_type(None),
            Err(InputError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn decodes_each_json_format() {
        let r = json_body(
            json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]], "index": [0]}}),
        )
        .unwrap();
        assert_eq!(
            r.payload,
            Payload::Frame(Frame {
                columns: Some(vec!["a".into(), "b".into()]),
                rows: vec![vec![json!(1), json!(2)]],
                text_cells: false
            })
        );
        let r = json_body(json!({"dataframe_records": [{"a": 1}, {"b": 2}]})).unwrap();
        let Payload::Frame(f) = r.payload else {
            panic!()
        };
        assert_eq!(
            f.rows,
            vec![vec![json!(1), Value::Null], vec![Value::Null, json!(2)]]
        );
        let r = json_body(json!({"instances": [[1, 2], [3, 4]], "params": {"k": 1}})).unwrap();
        assert!(matches!(r.payload, Payload::Tensor(ref t) if t.shape == [2, 2]));
        assert_eq!(r.params.unwrap()["k"], json!(1));
        let r = json_body(json!({"instances": [{"a": 1}]})).unwrap();
        assert!(matches!(r.payload, Payload::Frame(_)));
        let r = json_body(json!({"inputs": {"x": [[1.0]], "y": [["s"]]}})).unwrap();
        assert!(matches!(r.payload, Payload::Named(ref n) if n.len() == 2));
    }

    #[test]
    fn records_keep_the_key_order_sent() {
        // Not alphabetical: pandas takes the columns in the order their keys first appear.
        let body = br#"{"dataframe_records": [{"z": 1, "a": 2}, {"m": 3, "a": 4, "a": 5}]}"#;
        let r = decode(Some("application/json"), Bytes::from_static(body)).unwrap();
        let Payload::Frame(f) = r.payload else {
            panic!()
        };
        assert_eq!(f.columns.unwrap(), ["z", "a", "m"]);
        assert_eq!(
            f.rows,
            vec![
                vec![json!(1), json!(2), Value::Null],
                vec![Value::Null, json!(5), json!(3)]
            ]
        );
        let body = br#"{"instances": [{"b": 1, "a": 2}]}"#;
        let r = decode(Some("application/json"), Bytes::from_static(body)).unwrap();
        let Payload::Frame(f) = r.payload else {
            panic!()
        };
        assert_eq!(f.columns.unwrap(), ["b", "a"]);
        let body = br#"{"inputs": {"y": [1], "x": [2]}, "params": {"k": [1]}}"#;
        let r = decode(Some("application/json"), Bytes::from_static(body)).unwrap();
        let Payload::Named(n) = r.payload else {
            panic!()
        };
        assert_eq!((n[0].0.as_str(), n[1].0.as_str()), ("y", "x"));
        assert_eq!(r.params.unwrap()["k"], json!([1]));
    }

    #[test]
    fn refuses_malformed_bodies_with_the_reason() {
        let cases = [
            (json!([1, 2]), "received a list"),
            (
                json!({"inputs": [1], "instances": [1]}),
                "received [\"inputs\", \"instances\"]",
            ),
            (json!({"foo": 1}), "received [\"foo\"]"),
            (
                json!({"inputs": [1], "params": 3}),
                "params must be a JSON object",
            ),
            (
                json!({"dataframe_split": {"data": [[1]], "colums": ["a"]}}),
                "unknown field \"colums\"",
            ),
            (
                json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}),
                "row 1 has 1 values, expected 2",
            ),
            (json!({"dataframe_records": {"a": 1}}), "must be a list"),
            (
                json!({"dataframe_records": [1]}),
                "dataframe_records[0] must be an object",
            ),
            (json!({"inputs": [[1, 2], [3]]}), "ragged"),
        ];
        for (body, expected) in cases {
            let e = json_body(body.clone()).unwrap_err();
            assert!(e.to_string().contains(expected), "{body}: {e}");
        }
        let e = decode(Some("application/json"), Bytes::from_static(b"{nope")).unwrap_err();
        assert!(e.to_string().starts_with("Invalid input."), "{e}");
    }

    #[test]
    fn decodes_csv_as_text_cells() {
        let r = decode(Some("text/csv"), Bytes::from_static(b"a,b\n1,x\n2,\n")).unwrap();
        let Payload::Frame(f) = r.payload else {
            panic!()
        };
        assert!(f.text_cells);
        assert_eq!(f.rows[1], vec![json!("2"), json!("")]);
        let e = decode(Some("text/csv"), Bytes::from_static(b"a,b\n1\n")).unwrap_err();
        assert!(e.to_string().starts_with("invalid CSV"), "{e}");
    }
}
