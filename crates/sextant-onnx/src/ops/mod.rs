//! The operators: the trait the graph runs and the table from `(domain, op_type)` to the
//! builder of each.

mod linear;
mod math;
mod preprocess;
mod shape;
mod svm;
pub(crate) mod transform;
mod tree;

use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Tensor, Value};

/// A node's computation, built once at load time from its attributes.
pub(crate) trait Op: Send + Sync + std::fmt::Debug {
    /// Computes the node's outputs; an absent optional input (empty name) is `None`.
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error>;
}

type Builder = fn(&Attrs) -> Result<Box<dyn Op>, Error>;

/// The builder for `op_type` in `domain`, or `None` when the engine lacks that operator.
pub(crate) fn builder(domain: &str, op_type: &str) -> Option<Builder> {
    match domain {
        "ai.onnx.ml" => ml_builder(op_type),
        "" | "ai.onnx" => standard_builder(op_type),
        _ => None,
    }
}

fn ml_builder(op_type: &str) -> Option<Builder> {
    Some(match op_type {
        "TreeEnsembleRegressor" => tree::Regressor::build,
        "TreeEnsembleClassifier" => tree::Classifier::build,
        "LinearRegressor" => linear::Regressor::build,
        "LinearClassifier" => linear::Classifier::build,
        "SVMRegressor" => svm::Regressor::build,
        "SVMClassifier" => svm::Classifier::build,
        "Scaler" => preprocess::Scaler::build,
        "Imputer" => preprocess::Imputer::build,
        "Binarizer" => preprocess::Binarizer::build,
        "Normalizer" => preprocess::Normalizer::build,
        "OneHotEncoder" => preprocess::OneHotEncoder::build,
        "LabelEncoder" => preprocess::LabelEncoder::build,
        "CategoryMapper" => preprocess::CategoryMapper::build,
        "ArrayFeatureExtractor" => preprocess::ArrayFeatureExtractor::build,
        "FeatureVectorizer" => preprocess::FeatureVectorizer::build,
        "ZipMap" => preprocess::ZipMap::build,
        _ => return None,
    })
}

fn standard_builder(op_type: &str) -> Option<Builder> {
    Some(match op_type {
        "Add" | "Sub" | "Mul" | "Div" => math::Binary::build,
        "Sum" => math::Sum::build,
        "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "Equal" => math::Compare::build,
        "Sigmoid" | "Exp" | "Log" | "Abs" | "Neg" | "Sqrt" | "Relu" | "Tanh" | "Reciprocal"
        | "Floor" | "Ceil" => math::Unary::build,
        "Softmax" => math::Softmax::build,
        "MatMul" => math::MatMul::build,
        "Gemm" => math::Gemm::build,
        "ArgMax" | "ArgMin" => math::ArgMax::build,
        "Reshape" => shape::Reshape::build,
        "Concat" => shape::Concat::build,
        "Flatten" => shape::Flatten::build,
        "Identity" => shape::Identity::build,
        "Cast" => shape::Cast::build,
        "Shape" => shape::ShapeOf::build,
        "Gather" => shape::Gather::build,
        "Squeeze" | "Unsqueeze" => shape::Squeeze::build,
        _ => return None,
    })
}

/// Input `i` as a tensor, or an error naming the operator.
pub(crate) fn input_tensor<'a>(
    op: &str,
    inputs: &[Option<&'a Value>],
    i: usize,
) -> Result<&'a Tensor, Error> {
    match inputs.get(i).copied().flatten() {
        Some(Value::Tensor(t)) => Ok(t),
        Some(Value::Records(_)) => Err(Error::op(
            op,
            format!("input {i} must be a tensor, not a sequence of maps"),
        )),
        None => Err(Error::op(op, format!("missing input {i}"))),
    }
}

/// Input `i` if present.
pub(crate) fn optional_tensor<'a>(
    op: &str,
    inputs: &[Option<&'a Value>],
    i: usize,
) -> Result<Option<&'a Tensor>, Error> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(_) => input_tensor(op, inputs, i).map(Some),
    }
}

/// An axis attribute or input, negative counting from the end, checked against `rank`.
pub(crate) fn axis(op: &str, axis: i64, rank: usize) -> Result<usize, Error> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(Error::op(
            op,
            format!("axis {axis} is out of range for rank {rank}"),
        ))
    }
}
