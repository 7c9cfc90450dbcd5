//! The wire protocols of an endpoint, each decoded into one protocol-neutral
//! [`ModelRequest`] and encoded back from a [`Prediction`]: MLflow's `/invocations`
//! (also SageMaker's), and the Open Inference Protocol v2.

pub mod mlflow;
pub mod oip;
mod ordered;
mod output;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::error::InputError;
pub use output::Prediction;

/// A decoded request: what to predict on, whatever protocol carried it.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The data.
    pub payload: Payload,
    /// MLflow's `params` (passed through; the onnx runtime has none to apply).
    pub params: Option<Map<String, Value>>,
    /// The original MLflow body, which a `process` runtime forwards unchanged.
    pub raw: Option<RawBody>,
}

/// An original request body and its content type.
#[derive(Debug, Clone)]
pub struct RawBody {
    /// `Content-Type` as sent.
    pub content_type: String,
    /// The bytes.
    pub body: Bytes,
}

/// The data of a request, in one of the three forms MLflow distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A table (`dataframe_split`, `dataframe_records`, `instances` of objects, CSV): the
    /// answer is one record per row.
    Frame(Frame),
    /// One unnamed tensor (`inputs`/`instances` as a nested list).
    Tensor(JsonTensor),
    /// Tensors by name (`inputs` as an object, OIP `inputs`).
    Named(Vec<(String, JsonTensor)>),
}

/// A table of cells, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Column names; `None` when the client sent none (matched by position).
    pub columns: Option<Vec<String>>,
    /// One entry per row, each as long as `columns` (`Null` for a missing cell).
    pub rows: Vec<Vec<Value>>,
    /// Cells are CSV text, to be parsed as the column's type.
    pub text_cells: bool,
}

/// A tensor as JSON sent it: its shape and its elements, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: Vec<Value>,
}

impl JsonTensor {
    /// Flattens a nested JSON list; refuses ragged lists. A scalar is a rank-0 tensor.
    pub fn from_nested(value: Value, what: &str) -> Result<JsonTensor, InputError> {
        let mut shape = Vec::new();
        let mut probe = &value;
        while let Value::Array(items) = probe {
            shape.push(items.len());
            match items.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        let mut data = Vec::with_capacity(shape.iter().product());
        flatten(value, &shape, 0, &mut data, what)?;
        Ok(JsonTensor { shape, data })
    }

    /// Number of rows: the first dimension (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }
}

fn flatten(
    value: Value,
    shape: &[usize],
    depth: usize,
    out: &mut Vec<Value>,
    what: &str,
) -> Result<(), InputError> {
    match value {
        Value::Array(items) => {
            if depth >= shape.len() || items.len() != shape[depth] {
                return Err(InputError::invalid(format!(
                    "{what} is a ragged nested list: expected a list of {} at depth {depth}, got {} items",
                    shape
                        .get(depth)
                        .map_or("scalars".to_owned(), |n| n.to_string()),
                    items.len()
                )));
            }
            for item in items {
                flatten(item, shape, depth + 1, out, what)?;
            }
            Ok(())
        }
        scalar => {
            if depth != shape.len() {
                return Err(InputError::invalid(format!(
                    "{what} is a ragged nested list: a scalar at depth {depth}, lists expected"
                )));
            }
            out.push(scalar);
            Ok(())
        }
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_lists() {
        let t = JsonTensor::from_nested(json!([[1, 2, 3], [4, 5, 6]]), "inputs").unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data[5], json!(6));
        let t = JsonTensor::from_nested(json!(7), "inputs").unwrap();
        assert_eq!((t.shape.len(), t.rows()), (0, 1));
        let t = JsonTensor::from_nested(json!([]), "inputs").unwrap();
        assert_eq!(t.shape, vec![0]);
    }

    #[test]
    fn refuses_ragged_lists() {
        for bad in [json!([[1, 2], [3]]), json!([[1, 2], 3]), json!([1, [2]])] {
            let e = JsonTensor::from_nested(bad.clone(), "inputs").unwrap_err();
            assert!(e.to_string().contains("ragged"), "{bad}: {e}");
        }
    }
}
