//! ONNX export of the linear models as plain standard-domain graphs (no `ai.onnx.ml`
//! ops), so onnxruntime, tract and any other runtime with opset 17 can run them; the shared
//! graph-building helpers and the reader of every model this crate writes. Tree ensembles are
//! in [`crate::onnx_trees`].

use prost::Message;

use crate::linear::LinearModel;
use crate::logistic::LogisticModel;
use crate::onnx_trees::{self, GBDT_GRAPH};
use crate::{Result, TrainError};
use sextant_gbdt::TreeEnsemble;

/// The ONNX protobuf messages (`sextant-onnx-proto`).
pub use sextant_onnx_proto as pb;

use pb::tensor_proto::DataType;

/// IR version written into every model: IR 8 is the one that goes with opset 17
/// (ONNX 1.12+), and onnxruntime 1.32 accepts it.
pub const IR_VERSION: i64 = 8;
/// Default-domain opset the graphs are written for.
pub const OPSET: i64 = 17;
/// Name of the single float input `[N, F]`.
pub const INPUT_NAME: &str = "X";
/// Name of the regressor's output `[N, 1]` (skl2onnx's name).
pub const REGRESSION_OUTPUT: &str = "variable";
/// Name of the classifier's int64 label output `[N]`.
pub const LABEL_OUTPUT: &str = "label";
/// Name of the classifier's probability output: one map per row from class label (int64)
/// to probability (float), ZipMap's sequence of maps, as skl2onnx ends a classifier's graph.
pub const PROBABILITIES_OUTPUT: &str = "probabilities";
/// The classifier's `[N, K]` probability tensor inside the graph, before ZipMap.
pub(crate) const PROBABILITY_TENSOR: &str = "probability_tensor";
/// `metadata_props` key holding the JSON array of feature names, in input column order: the
/// tensor input has no column names, and evaluation must feed a CSV's columns in that order.
pub const FEATURE_NAMES_KEY: &str = "sextant.feature_names";
/// Domain of the tree-ensemble operators.
pub const ML_DOMAIN: &str = "ai.onnx.ml";
/// `ai.onnx.ml` opset of the tree-ensemble graphs: version 3 goes with ONNX 1.12 and IR 8.
pub const ML_OPSET: i64 = 3;
const LINEAR_GRAPH: &str = "sextant_linear_regression";
const LOGISTIC_GRAPH: &str = "sextant_logistic_regression";

/// `X [N, F] → MatMul(coefficients) → Add(intercept) → variable [N, 1]`.
pub fn linear_regressor(model: &LinearModel, feature_names: &[String]) -> Result<pb::ModelProto> {
    let f = model.coefficients.len();
    let graph = pb::GraphProto {
        name: LINEAR_GRAPH.into(),
        node: vec![
            node(
                "MatMul",
                &[INPUT_NAME, "coefficients"],
                &["product"],
                vec![],
            ),
            node(
                "Add",
                &["product", "intercept"],
                &[REGRESSION_OUTPUT],
                vec![],
            ),
        ],
        initializer: vec![
            float_tensor("coefficients", &[f as i64, 1], &model.coefficients),
            float_tensor("intercept", &[1], &[model.intercept]),
        ],
        input: vec![value_info(
            INPUT_NAME,
            DataType::Float,
            &[None, Some(f as i64)],
        )],
        output: vec![value_info(
            REGRESSION_OUTPUT,
            DataType::Float,
            &[None, Some(1)],
        )],
        ..Default::default()
    };
    model_proto(graph, feature_names, f, false)
}

/// `X [N, F]` → logit → `[1 − σ, σ]` → `label [N]` = their `ArgMax` and `probabilities`, one
/// `{0: 1 − σ, 1: σ}` map per row (ZipMap), the outputs skl2onnx gives a binary
/// `LogisticRegression` (named `label`/`probabilities` rather than `output_label`/
/// `output_probability`).
pub fn logistic_classifier(
    model: &LogisticModel,
    feature_names: &[String],
) -> Result<pb::ModelProto> {
    let f = model.coefficients.len();
    let graph = pb::GraphProto {
        name: LOGISTIC_GRAPH.into(),
        node: vec![
            node(
                "MatMul",
                &[INPUT_NAME, "coefficients"],
                &["product"],
                vec![],
            ),
            node("Add", &["product", "intercept"], &["logit"], vec![]),
            node("Sigmoid", &["logit"], &["p1"], vec![]),
            node("Sub", &["one", "p1"], &["p0"], vec![]),
            node(
                "Concat",
                &["p0", "p1"],
                &[PROBABILITY_TENSOR],
                vec![int_attribute("axis", 1)],
            ),
            node(
                "ArgMax",
                &[PROBABILITY_TENSOR],
                &[LABEL_OUTPUT],
                vec![int_attribute("axis", 1), int_attribute("keepdims", 0)],
            ),
            zipmap(&[0, 1]),
        ],
        initializer: vec![
            float_tensor("coefficients", &[f as i64, 1], &model.coefficients),
            float_tensor("intercept", &[1], &[model.intercept]),
            float_tensor("one", &[1], &[1.0]),
        ],
        input: vec![value_info(
            INPUT_NAME,
            DataType::Float,
            &[None, Some(f as i64)],
        )],
        output: classifier_outputs(),
        ..Default::default()
    };
    model_proto(graph, feature_names, f, true)
}

/// `ZipMap` of [`PROBABILITY_TENSOR`] into [`PROBABILITIES_OUTPUT`], keyed by `classes`.
pub(crate) fn zipmap(classes: &[i64]) -> pb::NodeProto {
    let mut zipmap = node(
        "ZipMap",
        &[PROBABILITY_TENSOR],
        &[PROBABILITIES_OUTPUT],
        vec![ints_attribute("classlabels_int64s", classes)],
    );
    zipmap.domain = ML_DOMAIN.into();
    zipmap
}

/// A classifier's outputs: `label` (int64 `[N]`) and `probabilities`, a sequence of maps
/// int64 → float, declared as skl2onnx declares ZipMap's output.
pub(crate) fn classifier_outputs() -> Vec<pb::ValueInfoProto> {
    use pb::type_proto::{Map, Sequence, Tensor, Value};
    let typed = |value| pb::TypeProto {
        value: Some(value),
        ..Default::default()
    };
    let probability = typed(Value::TensorType(Tensor {
        elem_type: DataType::Float as i32,
        shape: None,
    }));
    let map = typed(Value::MapType(Box::new(Map {
        key_type: DataType::Int64 as i32,
        value_type: Some(Box::new(probability)),
    })));
    let sequence = typed(Value::SequenceType(Box::new(Sequence {
        elem_type: Some(Box::new(map)),
    })));
    vec![
        value_info(LABEL_OUTPUT, DataType::Int64, &[None]),
        pb::ValueInfoProto {
            name: PROBABILITIES_OUTPUT.into(),
            r#type: Some(sequence),
            ..Default::default()
        },
    ]
}

/// The model's protobuf encoding, the content of a `.onnx` file.
pub fn to_bytes(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Wraps `graph`, whose input has `width` columns, in a model; `ml` adds the `ai.onnx.ml`
/// opset import the tree-ensemble operators need.
pub(crate) fn model_proto(
    graph: pb::GraphProto,
    feature_names: &[String],
    width: usize,
    ml: bool,
) -> Result<pb::ModelProto> {
    if feature_names.len() != width {
        return Err(TrainError::LengthMismatch {
            what: "feature names vs model inputs",
            left: feature_names.len(),
            right: width,
        });
    }
    let mut opset_import = vec![pb::OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    if ml {
        opset_import.push(pb::OperatorSetIdProto {
            domain: ML_DOMAIN.into(),
            version: ML_OPSET,
        });
    }
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import,
        producer_name: "sextant".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: vec![pb::StringStringEntryProto {
            key: FEATURE_NAMES_KEY.into(),
            value: serde_json::to_string(feature_names).expect("strings serialize to JSON"),
        }],
        ..Default::default()
    })
}

/// A model read back from an ONNX file this module wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedModel {
    /// Feature names in input column order.
    pub feature_names: Vec<String>,
    /// The model, with the weights as stored (f32 precision).
    pub model: TrainedModel,
}

/// The kinds of model this crate writes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainedModel {
    /// From [`linear_regressor`].
    Linear(LinearModel),
    /// From [`logistic_classifier`].
    Logistic(LogisticModel),
    /// From [`crate::onnx_trees::gbdt_model`]: the ensemble as stored (f32 thresholds and
    /// weights), which [`TreeEnsemble::evaluate`] scores.
    Gbdt(Box<TreeEnsemble>),
}

/// Reads back a model written by [`linear_regressor`], [`logistic_classifier`] or
/// [`crate::onnx_trees::gbdt_model`], so that `builtin/evaluate` can score it without an ONNX
/// runtime. Any other ONNX model is refused.
pub fn read(bytes: &[u8]) -> Result<ExportedModel> {
    let proto =
        pb::ModelProto::decode(bytes).map_err(|e| unknown(format!("not ONNX protobuf: {e}")))?;
    let graph = proto.graph.ok_or_else(|| unknown("no graph"))?;
    let (model, width) = match graph.name.as_str() {
        LINEAR_GRAPH | LOGISTIC_GRAPH => read_linear(&graph)?,
        GBDT_GRAPH => {
            let (ensemble, width) = onnx_trees::read_ensemble(&graph)?;
            (TrainedModel::Gbdt(Box::new(ensemble)), width)
        }
        other => return Err(unknown(format!("unknown graph {other:?}"))),
    };
    let feature_names: Vec<String> = proto
        .metadata_props
        .iter()
        .find(|p| p.key == FEATURE_NAMES_KEY)
        .and_then(|p| serde_json::from_str(&p.value).ok())
        .ok_or_else(|| unknown(format!("no valid {FEATURE_NAMES_KEY} metadata")))?;
    if feature_names.len() != width {
        return Err(unknown("feature names and model inputs differ in number"));
    }
    Ok(ExportedModel {
        feature_names,
        model,
    })
}

/// The linear or logistic model of `graph` and its number of inputs.
fn read_linear(graph: &pb::GraphProto) -> Result<(TrainedModel, usize)> {
    let weights = |name: &str| -> Result<Vec<f64>> {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name && t.data_type == DataType::Float as i32)
            .map(|t| t.float_data.iter().map(|&v| f64::from(v)).collect())
            .ok_or_else(|| unknown(format!("no float initializer {name:?}")))
    };
    let coefficients = weights("coefficients")?;
    let intercept = *weights("intercept")?
        .first()
        .ok_or_else(|| unknown("empty intercept"))?;
    let width = coefficients.len();
    let model = if graph.name == LINEAR_GRAPH {
        TrainedModel::Linear(LinearModel {
            coefficients,
            intercept,
        })
    } else {
        TrainedModel::Logistic(LogisticModel {
            coefficients,
            intercept,
            // The file does not record how the model was fitted.
            iterations: 0,
        })
    };
    Ok((model, width))
}

pub(crate) fn unknown(why: impl Into<String>) -> TrainError {
    TrainError::UnknownModel(why.into())
}

pub(crate) fn node(
    op_type: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op_type}_{}", outputs[0]),
        op_type: op_type.into(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

pub(crate) fn int_attribute(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

pub(crate) fn ints_attribute(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// An initializer; weights are trained in f64 and stored as f32, the graphs' input type.
fn float_tensor(name: &str, dims: &[i64], values: &[f64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: values.iter().map(|&v| v as f32).collect(),
        ..Default::default()
    }
}

/// A tensor value info; `None` dimensions are the symbolic batch size `N`.
pub(crate) fn value_info(
    name: &str,
    elem_type: DataType,
    dims: &[Option<i64>],
) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => Value::DimValue(*n),
                None => Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_graph_round_trips_through_protobuf() {
        let model = LinearModel {
            coefficients: vec![1.5, -2.0],
            intercept: 0.25,
        };
        let names = ["a".to_owned(), "b".to_owned()];
        let bytes = to_bytes(&linear_regressor(&model, &names).unwrap());
        let decoded = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.ir_version, IR_VERSION);
        assert_eq!(decoded.opset_import[0].version, OPSET);
        let graph = decoded.graph.unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["MatMul", "Add"]);
        assert_eq!(graph.initializer[0].float_data, [1.5, -2.0]);
        assert_eq!(graph.initializer[0].dims, [2, 1]);
        assert_eq!(graph.output[0].name, REGRESSION_OUTPUT);

        let back = read(&bytes).unwrap();
        assert_eq!(back.feature_names, names);
        assert_eq!(back.model, TrainedModel::Linear(model));
    }

    #[test]
    fn feature_names_must_match_coefficients() {
        let model = LinearModel {
            coefficients: vec![1.0],
            intercept: 0.0,
        };
        assert!(linear_regressor(&model, &[]).is_err());
    }

    #[test]
    fn reading_foreign_bytes_is_an_error() {
        let err = read(b"not a model").unwrap_err().to_string();
        assert!(
            err.contains("not a model written by sextant-train"),
            "{err}"
        );
    }

    #[test]
    fn logistic_graph_has_label_and_probabilities() {
        let model = LogisticModel {
            coefficients: vec![0.5],
            intercept: -1.0,
            iterations: 1,
        };
        let names = ["x".to_owned()];
        let proto = logistic_classifier(&model, &names).unwrap();
        let back = read(&to_bytes(&proto)).unwrap();
        assert!(matches!(back.model, TrainedModel::Logistic(ref m) if m.coefficients == [0.5]));
        let graph = proto.graph.unwrap();
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outputs, [LABEL_OUTPUT, PROBABILITIES_OUTPUT]);
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops[ops.len() - 2..], ["ArgMax", "ZipMap"]);
        let zipmap = graph.node.last().unwrap();
        assert_eq!(zipmap.domain, ML_DOMAIN);
        assert_eq!(zipmap.attribute[0].ints, [0, 1]);
        // `probabilities` is declared a sequence of maps int64 → float, as skl2onnx does.
        use pb::type_proto::Value;
        let Some(Value::SequenceType(seq)) = &graph.output[1].r#type.as_ref().unwrap().value else {
            panic!("{:?}", graph.output[1])
        };
        let Some(Value::MapType(map)) = &seq.elem_type.as_ref().unwrap().value else {
            panic!("{seq:?}")
        };
        assert_eq!(map.key_type, DataType::Int64 as i32);
    }
}
