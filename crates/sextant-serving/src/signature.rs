//! MLflow model signatures: the `signature.inputs` / `signature.outputs` JSON strings of an
//! `MLmodel` file, column form (`ColSpec`) or tensor form (`TensorSpec`).

use serde_json::Value;

use super::error::LoadError;

/// The type of one signature column, as MLflow's `DataType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `boolean`.
    Boolean,
    /// `integer` (int32).
    Integer,
    /// `long` (int64).
    Long,
    /// `float` (float32).
    Float,
    /// `double` (float64).
    Double,
    /// `string`.
    String,
}

impl ColType {
    fn parse(name: &str) -> Option<ColType> {
        Some(match name {
            "boolean" => ColType::Boolean,
            "integer" => ColType::Integer,
            "long" => ColType::Long,
            "float" => ColType::Float,
            "double" => ColType::Double,
            "string" => ColType::String,
            _ => return None,
        })
    }

    /// MLflow's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ColType::Boolean => "boolean",
            ColType::Integer => "integer",
            ColType::Long => "long",
            ColType::Float => "float",
            ColType::Double => "double",
            ColType::String => "string",
        }
    }
}

/// One column of a column-based signature.
#[derive(Debug, Clone, PartialEq)]
pub struct ColSpec {
    /// The column's name; MLflow allows unnamed columns, which are matched by position.
    pub name: Option<String>,
    /// Its type.
    pub ty: ColType,
    /// Whether a request must carry it (MLflow's `required`, true by default).
    pub required: bool,
}

/// One tensor of a tensor-based signature.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// The tensor's name, if the signature gives one.
    pub name: Option<String>,
    /// NumPy dtype name (`float32`, `int64`, `str`, …).
    pub dtype: String,
    /// Dimensions; `-1` is a free dimension.
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Whether `shape` fits, `-1` matching any size.
    pub fn accepts(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(&want, &got)| want < 0 || want as usize == got)
    }

    /// The shape as MLflow prints it, e.g. `(-1, 10)`.
    pub fn shape_text(&self) -> String {
        tuple(self.shape.iter().map(i64::to_string))
    }
}

/// A shape as a Python tuple, the way MLflow's messages print shapes.
pub(crate) fn tuple(dims: impl Iterator<Item = String>) -> String {
    let dims: Vec<String> = dims.collect();
    if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    }
}

/// The input or output half of a signature.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Schema {
    /// The model has no signature for this side.
    #[default]
    None,
    /// A table of named, typed columns.
    Columns(Vec<ColSpec>),
    /// One or more tensors.
    Tensors(Vec<TensorSpec>),
}

impl Schema {
    /// Parses one side of an `MLmodel` signature (`what` names it in errors).
    pub fn parse(text: Option<&str>, what: &str) -> Result<Schema, LoadError> {
        let Some(text) = text
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "null")
        else {
            return Ok(Schema::None);
        };
        let bad = |message: String| LoadError::Signature {
            part: what.to_owned(),
            message,
        };
        let doc: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Array(items) = doc else {
            return Err(bad("expected a JSON list".into()));
        };
        if items.is_empty() {
            return Ok(Schema::None);
        }
        let tensors = items.iter().all(|i| i["type"] == "tensor");
        if tensors {
            items
                .iter()
                .map(|item| {
                    let spec = &item["tensor-spec"];
                    let dtype = spec["dtype"]
                        .as_str()
                        .ok_or_else(|| bad("a tensor-spec without dtype".into()))?;
                    let shape = spec["shape"]
                        .as_array()
                        .ok_or_else(|| bad("a tensor-spec without shape".into()))?
                        .iter()
                        .map(|d| d.as_i64().ok_or_else(|| bad(format!("bad dimension {d}"))))
                        .collect::<Result<_, _>>()?;
                    Ok(TensorSpec {
                        name: item["name"].as_str().map(str::to_owned),
                        dtype: dtype.to_owned(),
                        shape,
                    })
                })
                .collect::<Result<_, _>>()
                .map(Schema::Tensors)
        } else {
            items
                .iter()
                .map(|item| {
                    let ty = item["type"].as_str().unwrap_or("?");
                    let ty = ColType::parse(ty).ok_or_else(|| {
                        bad(format!(
                            "column type {ty:?} is not supported by the onnx runtime \
                             (boolean, integer, long, float, double and string are)"
                        ))
                    })?;
                    Ok(ColSpec {
                        name: item["name"].as_str().map(str::to_owned),
                        ty,
                        required: item["required"].as_bool().unwrap_or(true),
                    })
                })
                .collect::<Result<_, _>>()
                .map(Schema::Columns)
        }
    }

    /// Parses an `MLmodel`'s output schema. MLflow never enforces one, and its
    /// `infer_signature` writes `[{"type": "any"}]` for outputs it cannot describe (a ZipMap
    /// classifier's maps of integer keys): such a schema tells a runtime nothing, so it reads
    /// as none rather than refusing the model.
    pub fn parse_outputs(text: Option<&str>) -> Result<Schema, LoadError> {
        let untyped = text
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|doc| {
                doc.as_array()
                    .map(|items| items.iter().any(|i| i["type"] == "any"))
            })
            .unwrap_or(false);
        if untyped {
            return Ok(Schema::None);
        }
        Schema::parse(text, "outputs")
    }

    /// The signature's columns, if it is column-based.
    pub fn columns(&self) -> Option<&[ColSpec]> {
        match self {
            Schema::Columns(c) => Some(c),
            Schema::None | Schema::Tensors(_) => None,
        }
    }
}

/// A model's signature: its inputs and outputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signature {
    /// What a request carries.
    pub inputs: Schema,
    /// What the model answers.
    pub outputs: Schema,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tensor_and_column_forms() {
        let t = Schema::parse(
            Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}}]"#),
            "inputs",
        )
        .unwrap();
        let Schema::Tensors(specs) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(specs[0].shape, vec![-1, 10]);
        assert!(specs[0].accepts(&[3, 10]));
        assert!(!specs[0].accepts(&[3, 9]));
        assert_eq!(specs[0].shape_text(), "(-1, 10)");

        let c = Schema::parse(
            Some(r#"[{"type": "double", "name": "a", "required": true}, {"type": "string", "name": "b", "required": false}]"#),
            "inputs",
        )
        .unwrap();
        assert_eq!(
            c.columns().unwrap()[1],
            ColSpec {
                name: Some("b".into()),
                ty: ColType::String,
                required: false
            }
        );
        assert_eq!(Schema::parse(None, "inputs").unwrap(), Schema::None);
        assert_eq!(Schema::parse(Some("null"), "inputs").unwrap(), Schema::None);
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let e = Schema::parse(Some(r#"[{"type": "array", "name": "a"}]"#), "inputs").unwrap_err();
        assert!(e.to_string().contains("\"array\""), "{e}");
        let e = Schema::parse(Some("{"), "inputs").unwrap_err();
        assert!(e.to_string().contains("signature inputs"), "{e}");
    }

    #[test]
    fn an_output_schema_of_type_any_reads_as_none() {
        // What `mlflow.models.infer_signature` writes for a ZipMap classifier's outputs.
        let any = Some(r#"[{"type": "any", "required": true}]"#);
        assert_eq!(Schema::parse_outputs(any).unwrap(), Schema::None);
        let e = Schema::parse_outputs(Some(r#"[{"type": "array", "name": "a"}]"#)).unwrap_err();
        assert!(e.to_string().contains("signature outputs"), "{e}");
    }
}
