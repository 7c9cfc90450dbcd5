//! The Open Inference Protocol v2 (KServe V2) REST body: `…/infer` requests and answers,
//! and model metadata. Binary tensor data (Triton's extension) is not supported.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sextant_onnx::{Output, Value as OnnxValue};

use super::output::Flat;
use super::{JsonTensor, ModelRequest, Payload, Prediction, json_kind};
use crate::error::InputError;
use crate::model::{ModelInfo, oip_datatype};

/// What an infer request asks besides its data.
#[derive(Debug, Clone, Default)]
pub struct InferOptions {
    /// The request `id`, echoed in the answer.
    pub id: Option<String>,
    /// The outputs asked for (all when `None`).
    pub outputs: Option<Vec<String>>,
}

/// Decodes an infer request body.
pub fn decode(body: &[u8]) -> Result<(ModelRequest, InferOptions), InputError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| InputError::invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut doc) = doc else {
        return Err(InputError::invalid(format!(
            "an infer request must be a JSON object, got {}",
            json_kind(&doc)
        )));
    };
    let id = match doc.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "id must be a string, got {}",
                json_kind(&other)
            )));
        }
    };
    let params = match doc.remove("parameters") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "parameters must be an object, got {}",
                json_kind(&other)
            )));
        }
    };
    if params
        .as_ref()
        .is_some_and(|p| p.get("binary_data_output").and_then(Value::as_bool) == Some(true))
    {
        return Err(InputError::invalid(
            "binary tensor data is not supported; ask for JSON outputs",
        ));
    }
    let outputs = match doc.remove("outputs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    o.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| InputError::invalid(format!("outputs[{i}] has no name")))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "outputs must be a list, got {}",
                json_kind(&other)
            )));
        }
    };
    let inputs = match doc.remove("inputs") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(InputError::invalid("inputs is empty")),
        None => return Err(InputError::invalid("an infer request needs inputs")),
        Some(other) => {
            return Err(InputError::invalid(format!(
                "inputs must be a list, got {}",
                json_kind(&other)
            )));
        }
    };
    let named = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| input_tensor(i, input))
        .collect::<Result<_, _>>()?;
    Ok((
        ModelRequest {
            payload: Payload::Named(named),
            params,
            raw: None,
        },
        InferOptions { id, outputs },
    ))
}

/// One `{"name", "shape", "datatype", "data"}` input.
fn input_tensor(i: usize, input: Value) -> Result<(String, JsonTensor), InputError> {
    let Value::Object(mut input) = input else {
        return Err(InputError::invalid(format!(
            "inputs[{i}] must be an object"
        )));
    };
    let field = |input: &mut Map<String, Value>, key: &str| {
        input
            .remove(key)
            .ok_or_else(|| InputError::invalid(format!("inputs[{i}] has no {key}")))
    };
    let name = match field(&mut input, "name")? {
        Value::String(s) => s,
        _ => {
            return Err(InputError::invalid(format!(
                "inputs[{i}].name must be a string"
            )));
        }
    };
    let shape: Vec<usize> = match field(&mut input, "shape")? {
        Value::Array(dims) => dims
            .iter()
            .map(|d| {
                d.as_u64().map(|n| n as usize).ok_or_else(|| {
                    InputError::invalid(format!(
                        "input {name:?}: shape must be a list of non-negative integers"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(InputError::invalid(format!(
                "input {name:?}: shape must be a list"
            )));
        }
    };
    let datatype = match field(&mut input, "datatype")? {
        Value::String(s) => s,
        _ => {
            return Err(InputError::invalid(format!(
                "input {name:?}: datatype must be a string"
            )));
        }
    };
    let data = field(&mut input, "data")?;
    let flat = JsonTensor::from_nested(data, &format!("input {name:?} data"))?.data;
    let expected: usize = shape.iter().product();
    if flat.len() != expected {
        return Err(InputError::invalid(format!(
            "input {name:?}: shape {shape:?} needs {expected} elements, data has {}",
            flat.len()
        )));
    }
    let fits: fn(&Value) -> bool = match datatype.as_str() {
        "BOOL" => Value::is_boolean,
        "UINT8" | "UINT16" | "UINT32" | "UINT64" => |v| v.is_u64(),
        "INT8" | "INT16" | "INT32" | "INT64" => |v| v.is_i64() || v.is_u64(),
        "FP16" | "FP32" | "FP64" | "BF16" => |v| v.is_number() || v.is_null(),
        "BYTES" => Value::is_string,
        other => {
            return Err(InputError::invalid(format!(
                "input {name:?}: unknown datatype {other:?}"
            )));
        }
    };
    if let Some((j, bad)) = flat.iter().enumerate().find(|(_, v)| !fits(v)) {
        return Err(InputError::invalid(format!(
            "input {name:?}: element {j} is {}, not {datatype}",
            json_kind(bad)
        )));
    }
    Ok((name, JsonTensor { shape, data: flat }))
}

/// One output of an infer answer.
#[derive(Serialize)]
struct OutputJson<'a> {
    name: Cow<'a, str>,
    datatype: &'a str,
    shape: Vec<usize>,
    data: OutputData<'a>,
}

enum OutputData<'a> {
    Tensor(Flat<'a>),
    Records(&'a [f32]),
    Json(Vec<Value>),
}

impl Serialize for OutputData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OutputData::Tensor(t) => t.serialize(s),
            OutputData::Records(v) => v.serialize(s),
            OutputData::Json(v) => v.serialize(s),
        }
    }
}

/// The infer answer `{"model_name", "model_version"?, "id"?, "outputs": [...]}`.
pub fn encode(
    prediction: &Prediction,
    model_name: &str,
    model_version: Option<&str>,
    options: &InferOptions,
) -> Result<Vec<u8>, InputError> {
    let mut outputs: Vec<OutputJson<'_>> = match prediction {
        Prediction::Outputs { outputs, .. } => outputs.iter().map(tensor_output).collect(),
        Prediction::Json(v) => json_outputs(v),
    };
    if let Some(wanted) = &options.outputs {
        if let Some(unknown) = wanted
            .iter()
            .find(|w| !outputs.iter().any(|o| o.name == **w))
        {
            let names: Vec<&str> = outputs.iter().map(|o| o.name.as_ref()).collect();
            return Err(InputError::invalid(format!(
                "unknown output {unknown:?}; the model's outputs are {}",
                names.join(", ")
            )));
        }
        outputs.retain(|o| wanted.iter().any(|w| *w == o.name));
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        model_name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        model_version: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        outputs: Vec<OutputJson<'a>>,
    }
    let answer = Answer {
        model_name,
        model_version,
        id: options.id.as_deref(),
        outputs,
    };
    Ok(serde_json::to_vec(&answer).expect("serializing to memory cannot fail"))
}

fn tensor_output(o: &Output) -> OutputJson<'_> {
    match &o.value {
        OnnxValue::Tensor(t) => OutputJson {
            name: Cow::Borrowed(&o.name),
            datatype: oip_datatype(t.elem_type()),
            shape: t.shape().to_vec(),
            data: OutputData::Tensor(Flat(t.data())),
        },
        // ZipMap's maps as their [N, classes] matrix, in label order.
        OnnxValue::Records(r) => OutputJson {
            name: Cow::Borrowed(&o.name),
            datatype: "FP32",
            shape: vec![r.rows(), r.keys.len()],
            data: OutputData::Records(&r.values),
        },
    }
}

/// A `process` runtime's `predictions` as OIP outputs: an object gives one output per key,
/// anything else one output named `predictions`.
fn json_outputs(v: &Value) -> Vec<OutputJson<'_>> {
    let one = |name: &'static str, v: &Value| {
        let tensor = JsonTensor::from_nested(v.clone(), name).unwrap_or(JsonTensor {
            shape: vec![1],
            data: vec![v.clone()],
        });
        (tensor, name)
    };
    let convert = |name: &str, t: JsonTensor| {
        let datatype = if t.data.iter().all(Value::is_boolean) {
            "BOOL"
        } else if t.data.iter().all(|d| d.is_i64() || d.is_u64()) {
            "INT64"
        } else if t.data.iter().all(|d| d.is_number() || d.is_null()) {
            "FP64"
        } else {
            "BYTES"
        };
        let data = if datatype == "BYTES" {
            t.data
                .into_iter()
                .map(|d| match d {
                    Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                })
                .collect()
        } else {
            t.data
        };
        (datatype, t.shape, data, name.to_owned())
    };
    let parts: Vec<(&str, Vec<usize>, Vec<Value>, String)> = match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let (t, _) = one("predictions", v);
                convert(k, t)
            })
            .collect(),
        other => {
            let (t, name) = one("predictions", other);
            vec![convert(name, t)]
        }
    };
    parts
        .into_iter()
        .map(|(datatype, shape, data, name)| OutputJson {
            name: Cow::Owned(name),
            datatype,
            shape,
            data: OutputData::Json(data),
        })
        .collect()
}

/// `GET /v2/models/{name}[/versions/{v}]`.
pub fn metadata(name: &str, versions: &[String], info: &ModelInfo) -> Value {
    let tensors = |list: &[crate::model::TensorMeta]| -> Vec<Value> {
        list.iter()
            .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
            .collect()
    };
    let mut doc = json!({
        "name": name,
        "platform": info.platform,
        "inputs": tensors(&info.inputs),
        "outputs": tensors(&info.outputs),
    });
    if !versions.is_empty() {
        doc["versions"] = json!(versions);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_onnx::Tensor;

    #[test]
    fn decodes_flat_and_nested_data() {
        let (req, opts) = decode(
            br#"{"id": "42", "inputs": [{"name": "X", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}], "outputs": [{"name": "label"}]}"#,
        )
        .unwrap();
        assert_eq!(opts.id.as_deref(), Some("42"));
        assert_eq!(opts.outputs, Some(vec!["label".to_owned()]));
        let Payload::Named(named) = req.payload else {
            panic!()
        };
        assert_eq!(named[0].1.shape, vec![2, 2]);
        assert_eq!(named[0].1.data.len(), 4);
    }

    #[test]
    fn names_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (br#"[1]"#, "must be a JSON object"),
            (br#"{"inputs": []}"#, "inputs is empty"),
            (
                br#"{"inputs": [{"name": "X", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}"#,
                "needs 3 elements, data has 2",
            ),
            (
                br#"{"inputs": [{"name": "X", "shape": [1], "datatype": "INT64", "data": [1.5]}]}"#,
                "element 0 is a number, not INT64",
            ),
            (
                br#"{"inputs": [{"name": "X", "shape": [1], "datatype": "FP99", "data": [1]}]}"#,
                "unknown datatype \"FP99\"",
            ),
            (br#"{"inputs": [{"shape": [1]}]}"#, "inputs[0] has no name"),
        ];
        for (body, expected) in cases {
            let e = decode(body).unwrap_err();
            assert!(e.to_string().contains(expected), "{e}");
        }
    }

    #[test]
    fn encodes_outputs_and_echoes_the_id() {
        let p = Prediction::Outputs {
            outputs: vec![Output {
                name: "variable".into(),
                value: OnnxValue::Tensor(Tensor::f32(vec![2, 1], vec![1.5, 2.5]).unwrap()),
            }],
            records: false,
        };
        let opts = InferOptions {
            id: Some("7".into()),
            outputs: None,
        };
        let body: Value =
            serde_json::from_slice(&encode(&p, "churn", Some("3"), &opts).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"model_name": "churn", "model_version": "3", "id": "7", "outputs": [
                {"name": "variable", "datatype": "FP32", "shape": [2, 1], "data": [1.5, 2.5]}]})
        );
        let opts = InferOptions {
            id: None,
            outputs: Some(vec!["nope".into()]),
        };
        let e = encode(&p, "churn", None, &opts).unwrap_err();
        assert!(e.to_string().contains("unknown output \"nope\""), "{e}");
    }
}
