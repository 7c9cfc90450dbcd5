//! A model's answer and its JSON forms, shaped as MLflow's scoring server shapes what its
//! `onnx` flavor returns: when the data reached the model as a table (a DataFrame: a column
//! signature, or no signature and a table input), one record per row, each output's row
//! value (a scalar for `[N]` and `[N, 1]`, ZipMap's map); otherwise one whole value per
//! output (`{"variable": [[…]]}`, ZipMap's list of maps). Floats are written as `f32` when the
//! model computed `f32` (`0.2194582`, not MLflow's `0.2194582223892212`), and NaN or
//! infinity as `null`.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use sextant_onnx::{Labels, Output, Records, Tensor, TensorData, Value as OnnxValue};

/// What a predictor answered.
#[derive(Debug, Clone)]
pub enum Prediction {
    /// The onnx runtime's outputs in graph order. `records`: the data reached the model as
    /// a table, so MLflow's answer is one record per row rather than one value per output.
    Outputs {
        /// Named outputs.
        outputs: Vec<Output>,
        /// Answer row records.
        records: bool,
    },
    /// A `process` runtime's `predictions`, as the child process answered them.
    Json(Value),
}

impl Prediction {
    /// MLflow's `{"predictions": …}` body.
    pub fn to_mlflow_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            predictions: MlflowPredictions<'a>,
        }
        let body = Body {
            predictions: MlflowPredictions(self),
        };
        serde_json::to_vec(&body).expect("serializing predictions to memory cannot fail")
    }
}

struct MlflowPredictions<'a>(&'a Prediction);

impl Serialize for MlflowPredictions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Prediction::Json(v) => v.serialize(s),
            Prediction::Outputs {
                outputs,
                records: false,
            } => {
                let mut map = s.serialize_map(Some(outputs.len()))?;
                for o in outputs {
                    map.serialize_entry(&o.name, &WholeValue(&o.value))?;
                }
                map.end()
            }
            Prediction::Outputs {
                outputs,
                records: true,
            } => {
                let rows = outputs.first().map_or(0, |o| value_rows(&o.value));
                let mut seq = s.serialize_seq(Some(rows))?;
                for i in 0..rows {
                    seq.serialize_element(&RowRecord { outputs, row: i })?;
                }
                seq.end()
            }
        }
    }
}

/// Rows of an output: its first dimension, or the number of ZipMap maps.
pub(crate) fn value_rows(v: &OnnxValue) -> usize {
    match v {
        OnnxValue::Tensor(t) => t.shape().first().copied().unwrap_or(1),
        OnnxValue::Records(r) => r.rows(),
    }
}

/// A whole output: a nested list, or ZipMap's list of maps.
struct WholeValue<'a>(&'a OnnxValue);

impl Serialize for WholeValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            OnnxValue::Tensor(t) => Nested::of(t).serialize(s),
            OnnxValue::Records(r) => {
                let mut seq = s.serialize_seq(Some(r.rows()))?;
                for i in 0..r.rows() {
                    seq.serialize_element(&RecordMap(r, i))?;
                }
                seq.end()
            }
        }
    }
}

/// Row `row` of every output, as one `{"name": value}` record. A `[N]` or `[N, 1]` output
/// gives a scalar (as MLflow's `reshape(-1)` does); a wider one gives the row's list. This is
/// a deliberate deviation: MLflow flattens such an output into N·K values and then fails
/// with "All arrays must be of the same length" beside any other output (or answers N·K
/// records for a lone one).
struct RowRecord<'a> {
    outputs: &'a [Output],
    row: usize,
}

impl Serialize for RowRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.outputs.len()))?;
        for o in self.outputs {
            map.serialize_key(&o.name)?;
            match &o.value {
                OnnxValue::Records(r) if self.row < r.rows() => {
                    map.serialize_value(&RecordMap(r, self.row))?
                }
                OnnxValue::Tensor(t) if self.row < t.shape().first().copied().unwrap_or(1) => {
                    let inner: &[usize] = t.shape().get(1..).unwrap_or(&[]);
                    let inner = if inner == [1] { &[][..] } else { inner };
                    let stride: usize = inner.iter().product();
                    map.serialize_value(&Nested {
                        shape: inner,
                        data: t.data(),
                        offset: self.row * stride,
                    })?
                }
                OnnxValue::Records(_) | OnnxValue::Tensor(_) => map.serialize_value(&())?,
            }
        }
        map.end()
    }
}

/// Row `i` of ZipMap's output: `{"label": probability, …}`.
struct RecordMap<'a>(&'a Records, usize);

impl Serialize for RecordMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (records, i) = (self.0, self.1);
        let row = records.row(i);
        let mut map = s.serialize_map(Some(row.len()))?;
        match &records.keys {
            Labels::Int(keys) => {
                for (k, p) in keys.iter().zip(row) {
                    map.serialize_entry(k, p)?;
                }
            }
            Labels::Str(keys) => {
                for (k, p) in keys.iter().zip(row) {
                    map.serialize_entry(k, p)?;
                }
            }
        }
        map.end()
    }
}

/// A tensor (or a part of one) as nested lists.
pub(crate) struct Nested<'a> {
    pub shape: &'a [usize],
    pub data: &'a TensorData,
    pub offset: usize,
}

impl<'a> Nested<'a> {
    pub(crate) fn of(t: &'a Tensor) -> Self {
        Nested {
            shape: t.shape(),
            data: t.data(),
            offset: 0,
        }
    }
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some((&n, inner)) = self.shape.split_first() else {
            return Element(self.data, self.offset).serialize(s);
        };
        let stride: usize = inner.iter().product();
        let mut seq = s.serialize_seq(Some(n))?;
        for i in 0..n {
            seq.serialize_element(&Nested {
                shape: inner,
                data: self.data,
                offset: self.offset + i * stride,
            })?;
        }
        seq.end()
    }
}

/// One element of a tensor.
pub(crate) struct Element<'a>(pub &'a TensorData, pub usize);

impl Serialize for Element<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.1;
        match self.0 {
            TensorData::F32(v) => s.serialize_f32(v[i]),
            TensorData::F64(v) => s.serialize_f64(v[i]),
            TensorData::I64(v) => s.serialize_i64(v[i]),
            TensorData::Str(v) => s.serialize_str(&v[i]),
            TensorData::Bool(v) => s.serialize_bool(v[i]),
        }
    }
}

/// All elements of a tensor, flat (OIP's `data`).
pub(crate) struct Flat<'a>(pub &'a TensorData);

impl Serialize for Flat<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            TensorData::F32(v) => v.serialize(s),
            TensorData::F64(v) => v.serialize(s),
            TensorData::I64(v) => v.serialize(s),
            TensorData::Str(v) => v.serialize(s),
            TensorData::Bool(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(name: &str, value: OnnxValue) -> Output {
        Output {
            name: name.into(),
            value,
        }
    }

    fn classifier() -> Vec<Output> {
        vec![
            out(
                "label",
                OnnxValue::Tensor(Tensor::i64(vec![2], vec![1, 0]).unwrap()),
            ),
            out(
                "probabilities",
                OnnxValue::Tensor(Tensor::f32(vec![2, 2], vec![0.25, 0.75, 0.5, 0.5]).unwrap()),
            ),
        ]
    }

    fn body(p: &Prediction) -> Value {
        serde_json::from_slice(&p.to_mlflow_json()).unwrap()
    }

    #[test]
    fn tensor_input_answers_one_list_per_output() {
        let p = Prediction::Outputs {
            outputs: classifier(),
            records: false,
        };
        assert_eq!(
            body(&p),
            json!({"predictions": {"label": [1, 0], "probabilities": [[0.25, 0.75], [0.5, 0.5]]}})
        );
    }

    #[test]
    fn table_input_answers_one_record_per_row() {
        let p = Prediction::Outputs {
            outputs: classifier(),
            records: true,
        };
        assert_eq!(
            body(&p),
            json!({"predictions": [{"label": 1, "probabilities": [0.25, 0.75]}, {"label": 0, "probabilities": [0.5, 0.5]}]})
        );
        let regressor = Prediction::Outputs {
            outputs: vec![out(
                "variable",
                OnnxValue::Tensor(Tensor::f32(vec![2, 1], vec![1.5, f32::NAN]).unwrap()),
            )],
            records: true,
        };
        assert_eq!(
            body(&regressor),
            json!({"predictions": [{"variable": 1.5}, {"variable": null}]})
        );
    }

    #[test]
    fn zipmap_answers_maps() {
        let zipmap = out(
            "output_probability",
            OnnxValue::Records(Records {
                keys: Labels::Int(vec![0, 1]),
                values: vec![0.25, 0.75, 0.5, 0.5],
            }),
        );
        let p = Prediction::Outputs {
            outputs: vec![zipmap.clone()],
            records: false,
        };
        assert_eq!(
            body(&p),
            json!({"predictions": {"output_probability": [{"0": 0.25, "1": 0.75}, {"0": 0.5, "1": 0.5}]}})
        );
        let p = Prediction::Outputs {
            outputs: vec![zipmap],
            records: true,
        };
        assert_eq!(
            body(&p),
            json!({"predictions": [{"output_probability": {"0": 0.25, "1": 0.75}}, {"output_probability": {"0": 0.5, "1": 0.5}}]})
        );
    }

    #[test]
    fn f32_keeps_its_short_form() {
        let p = Prediction::Outputs {
            outputs: vec![out(
                "p",
                OnnxValue::Tensor(Tensor::f32(vec![1], vec![0.219_458_22]).unwrap()),
            )],
            records: false,
        };
        let text = String::from_utf8(p.to_mlflow_json()).unwrap();
        assert_eq!(text, r#"{"predictions":{"p":[0.21945822]}}"#);
    }
}
