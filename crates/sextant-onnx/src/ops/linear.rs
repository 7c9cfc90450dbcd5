//! `LinearRegressor` and `LinearClassifier` (ai.onnx.ml): `X · Wᵀ + b` in `f32`, then the
//! label and post-transform rules onnxruntime applies.

use super::transform::{PostTransform, SecondClass, write_scores};
use super::{Op, input_tensor};
use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Labels, Tensor, TensorData, Value};

/// Dense weights `[targets, features]` and one intercept per target.
#[derive(Debug)]
struct Weights {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    targets: usize,
}

impl Weights {
    fn new(attrs: &Attrs, targets: usize) -> Result<Self, Error> {
        let coefficients = attrs.floats("coefficients").to_vec();
        if targets == 0 || coefficients.is_empty() || !coefficients.len().is_multiple_of(targets) {
            return Err(attrs.error(format!(
                "{} coefficients do not form {targets} rows",
                coefficients.len()
            )));
        }
        let mut intercepts = attrs.floats("intercepts").to_vec();
        if intercepts.is_empty() {
            intercepts = vec![0.0; targets];
        } else if intercepts.len() != targets {
            return Err(attrs.error(format!(
                "{} intercepts for {targets} targets",
                intercepts.len()
            )));
        }
        Ok(Weights {
            coefficients,
            intercepts,
            targets,
        })
    }

    /// `[N, targets]` scores of `x`; the input must have exactly the weights' columns.
    fn scores(&self, op: &str, x: &Tensor) -> Result<(usize, Vec<f64>), Error> {
        let (n, c) = x.rows_cols();
        let features = self.coefficients.len() / self.targets;
        if c != features {
            return Err(Error::op(
                op,
                format!("expects {features} input columns, got {c}"),
            ));
        }
        let x = x.to_f32_vec(op)?;
        let mut out = Vec::with_capacity(n * self.targets);
        for row in x.chunks_exact(c).take(n) {
            for (w, &b) in self.coefficients.chunks_exact(c).zip(&self.intercepts) {
                let dot: f32 = row.iter().zip(w).map(|(a, b)| a * b).sum();
                out.push(f64::from(dot + b));
            }
        }
        Ok((n, out))
    }
}

/// `LinearRegressor`: `Y [N, targets]` (float).
#[derive(Debug)]
pub(crate) struct Regressor {
    weights: Weights,
    transform: PostTransform,
}

impl Regressor {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let targets = usize::try_from(attrs.int_or("targets", 1))
            .map_err(|_| attrs.error("targets must be positive"))?;
        Ok(Box::new(Regressor {
            weights: Weights::new(attrs, targets)?,
            transform: PostTransform::parse(
                "LinearRegressor",
                &attrs.string_or("post_transform", "NONE"),
            )?,
        }))
    }
}

impl Op for Regressor {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "LinearRegressor";
        let (n, mut scores) = self.weights.scores(op, input_tensor(op, inputs, 0)?)?;
        let k = self.weights.targets;
        let mut out = Vec::with_capacity(scores.len());
        for row in scores.chunks_exact_mut(k) {
            write_scores(row, self.transform, None, &mut out);
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            vec![n, k],
            TensorData::F32(out),
        ))])
    }
}

/// `LinearClassifier`: `label [N]` (int64 or string), `probabilities [N, C]`.
#[derive(Debug)]
pub(crate) struct Classifier {
    weights: Weights,
    labels: Labels,
    transform: PostTransform,
}

impl Classifier {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let targets = attrs.floats("intercepts").len().max(1);
        let labels = attrs
            .labels("classlabels_ints")
            .ok_or_else(|| attrs.error("no classlabels_ints or classlabels_strings"))?;
        if targets > 1 && labels.len() != targets {
            return Err(attrs.error(format!(
                "{} class labels for {targets} score rows",
                labels.len()
            )));
        }
        Ok(Box::new(Classifier {
            weights: Weights::new(attrs, targets)?,
            labels,
            transform: PostTransform::parse(
                "LinearClassifier",
                &attrs.string_or("post_transform", "NONE"),
            )?,
        }))
    }
}

impl Op for Classifier {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "LinearClassifier";
        let (n, mut scores) = self.weights.scores(op, input_tensor(op, inputs, 0)?)?;
        let k = self.weights.targets;
        let two_from_one = k == 1 && self.labels.len() == 2;
        let mut classes = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(n * k.max(2));
        for row in scores.chunks_exact_mut(k) {
            classes.push(if k == 1 {
                usize::from(row[0] > 0.0)
            } else {
                // The first of equal maxima wins.
                (1..k).fold(0, |best, j| if row[j] > row[best] { j } else { best })
            });
            if two_from_one && self.transform == PostTransform::Logistic {
                row[0] = super::transform::logistic(row[0]);
                write_scores(
                    row,
                    PostTransform::None,
                    Some(SecondClass::FromProbability),
                    &mut out,
                );
            } else {
                let second = two_from_one.then_some(SecondClass::FromMargin);
                write_scores(row, self.transform, second, &mut out);
            }
        }
        let width = if two_from_one { 2 } else { k };
        let labels = if k == 1 && self.labels.len() != 2 {
            // onnxruntime answers 0/1 when a single score row has no two labels to pick from.
            Tensor::from_parts(
                vec![n],
                TensorData::I64(classes.iter().map(|&c| c as i64).collect()),
            )
        } else {
            self.labels.pick(&classes)
        };
        Ok(vec![
            Value::Tensor(labels),
            Value::Tensor(Tensor::from_parts(vec![n, width], TensorData::F32(out))),
        ])
    }
}
