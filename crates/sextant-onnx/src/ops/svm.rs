//! `SVMRegressor` and `SVMClassifier` (ai.onnx.ml) with onnxruntime's semantics: a kernel
//! of the input against every support vector (or, without support vectors, one linear
//! kernel against the coefficients — liblinear's form), libsvm's one-vs-one decision
//! values and votes, Platt-scaled pairwise probabilities coupled into class
//! probabilities (Wu, Lin and Weng 2004, libsvm's `multiclass_probability`, in `f32` with
//! its stopping rule, as onnxruntime runs it), and onnxruntime's rules for the label and
//! for how many score columns come out.

use super::transform::{PostTransform, SecondClass, write_scores};
use super::{Op, input_tensor};
use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Labels, Tensor, TensorData, Value};

/// `kernel_type` with `kernel_params` = `[gamma, coef0, degree]`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl Kernel {
    fn parse(attrs: &Attrs) -> Result<Kernel, Error> {
        let params = attrs.floats("kernel_params");
        let p = |i: usize| params.get(i).copied().unwrap_or(0.0);
        let (gamma, coef0, degree) = (p(0), p(1), p(2));
        Ok(match attrs.string_or("kernel_type", "LINEAR").as_str() {
            "LINEAR" => Kernel::Linear,
            "POLY" => Kernel::Poly {
                gamma,
                coef0,
                degree,
            },
            "RBF" => Kernel::Rbf { gamma },
            "SIGMOID" => Kernel::Sigmoid { gamma, coef0 },
            other => return Err(attrs.error(format!("unknown kernel_type {other:?}"))),
        })
    }

    /// `K(x, v)`, in `f32` as onnxruntime computes it: with large dual coefficients the
    /// kernels' rounding shows in the prediction, so computing them more exactly would
    /// move away from onnxruntime's answers.
    #[inline]
    fn eval(self, x: &[f32], v: &[f32]) -> f32 {
        let dot = || -> f32 { x.iter().zip(v).map(|(&a, &b)| a * b).sum() };
        match self {
            Kernel::Linear => dot(),
            Kernel::Poly {
                gamma,
                coef0,
                degree,
            } => (gamma * dot() + coef0).powf(degree),
            Kernel::Rbf { gamma } => {
                let d2: f32 = x
                    .iter()
                    .zip(v)
                    .map(|(&a, &b)| {
                        let d = a - b;
                        d * d
                    })
                    .sum();
                (-gamma * d2).exp()
            }
            Kernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// Support vectors `[count, features]`, checked to be whole rows.
#[derive(Debug)]
struct Supports {
    vectors: Vec<f32>,
    count: usize,
    features: usize,
}

impl Supports {
    fn new(attrs: &Attrs, count: usize) -> Result<Supports, Error> {
        let vectors = attrs.floats("support_vectors").to_vec();
        if count == 0 || vectors.is_empty() || !vectors.len().is_multiple_of(count) {
            return Err(attrs.error(format!(
                "{} support_vectors values do not form {count} vectors",
                vectors.len()
            )));
        }
        let features = vectors.len() / count;
        Ok(Supports {
            vectors,
            count,
            features,
        })
    }

    /// `K(x, v)` for every support vector `v`, into `out`.
    fn kernels(&self, kernel: Kernel, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            self.vectors
                .chunks_exact(self.features)
                .map(|v| kernel.eval(x, v)),
        );
    }
}

/// The input as `f32` rows of `features` columns.
fn rows(op: &str, inputs: &[Option<&Value>], features: usize) -> Result<(usize, Vec<f32>), Error> {
    let x = input_tensor(op, inputs, 0)?;
    let (n, c) = x.rows_cols();
    if c != features {
        return Err(Error::op(
            op,
            format!("expects {features} input columns, got {c}"),
        ));
    }
    Ok((n, x.to_f32_vec(op)?))
}

fn required_floats(attrs: &Attrs, name: &str) -> Result<Vec<f32>, Error> {
    let v = attrs.floats(name).to_vec();
    if v.is_empty() {
        return Err(attrs.error(format!("{name} is required")));
    }
    Ok(v)
}

/// `SVMRegressor`: `Y [N, 1]` (float).
#[derive(Debug)]
pub(crate) struct Regressor {
    kernel: Kernel,
    /// `None`: liblinear's form, one linear kernel against `coefficients`.
    supports: Option<Supports>,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
}

impl Regressor {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let coefficients = required_floats(attrs, "coefficients")?;
        let rho = required_floats(attrs, "rho")?[0];
        let count = usize::try_from(attrs.int_or("n_supports", 0))
            .map_err(|_| attrs.error("n_supports must not be negative"))?;
        let (kernel, supports) = if count > 0 {
            let s = Supports::new(attrs, count)?;
            if coefficients.len() < count {
                return Err(attrs.error(format!(
                    "{} coefficients for {count} support vectors",
                    coefficients.len()
                )));
            }
            (Kernel::parse(attrs)?, Some(s))
        } else {
            (Kernel::Linear, None)
        };
        Ok(Box::new(Regressor {
            kernel,
            supports,
            coefficients,
            rho,
            one_class: attrs.int_or("one_class", 0) != 0,
        }))
    }
}

impl Op for Regressor {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "SVMRegressor";
        let features = self
            .supports
            .as_ref()
            .map_or(self.coefficients.len(), |s| s.features);
        let (n, x) = rows(op, inputs, features)?;
        let mut kernels = Vec::new();
        let mut out = Vec::with_capacity(n);
        for row in x.chunks_exact(features.max(1)).take(n) {
            let mut y = match &self.supports {
                Some(s) => {
                    s.kernels(self.kernel, row, &mut kernels);
                    kernels
                        .iter()
                        .zip(&self.coefficients)
                        .map(|(k, &c)| k * c)
                        .sum::<f32>()
                }
                None => Kernel::Linear.eval(row, &self.coefficients),
            } + self.rho;
            if self.one_class {
                y = if y > 0.0 { 1.0 } else { -1.0 };
            }
            out.push(y);
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            vec![n, 1],
            TensorData::F32(out),
        ))])
    }
}

/// How the classifier scores a row.
#[derive(Debug)]
enum Mode {
    /// libsvm: support vectors grouped by class, one-vs-one decision values.
    Svc {
        supports: Supports,
        /// First support vector of each class, and how many it has.
        starts: Vec<usize>,
        per_class: Vec<usize>,
        /// Platt parameters per class pair, when probabilities were fitted.
        platt: Option<(Vec<f32>, Vec<f32>)>,
    },
    /// liblinear: one linear score per class.
    Linear { features: usize },
}

/// `SVMClassifier`: `label [N]` (int64 or string), `scores [N, C]` (C: classes, or class
/// pairs when a multi-class model has no probabilities, or 2 for a binary one).
#[derive(Debug)]
pub(crate) struct Classifier {
    kernel: Kernel,
    mode: Mode,
    labels: Labels,
    classes: usize,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    weights_all_positive: bool,
    transform: PostTransform,
}

impl Classifier {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let labels = attrs
            .labels("classlabels_ints")
            .ok_or_else(|| attrs.error("no classlabels_ints or classlabels_strings"))?;
        let classes = labels.len();
        if classes < 2 {
            return Err(attrs.error(format!("{classes} class labels: at least 2 are needed")));
        }
        let coefficients = required_floats(attrs, "coefficients")?;
        let rho = required_floats(attrs, "rho")?;
        let pairs = classes * (classes - 1) / 2;
        let (prob_a, prob_b) = (
            attrs.floats("prob_a").to_vec(),
            attrs.floats("prob_b").to_vec(),
        );
        if prob_a.len() != prob_b.len() {
            return Err(attrs.error(format!(
                "{} prob_a but {} prob_b values",
                prob_a.len(),
                prob_b.len()
            )));
        }
        let per_class: Vec<usize> = attrs
            .ints("vectors_per_class")
            .iter()
            .map(|&v| {
                usize::try_from(v)
                    .map_err(|_| attrs.error("vectors_per_class must not be negative"))
            })
            .collect::<Result<_, _>>()?;
        let count: usize = per_class.iter().sum();
        let (kernel, mode) = if count > 0 {
            if per_class.len() != classes {
                return Err(attrs.error(format!(
                    "vectors_per_class has {} entries for {classes} classes",
                    per_class.len()
                )));
            }
            if coefficients.len() < (classes - 1) * count {
                return Err(attrs.error(format!(
                    "{} coefficients; {} are needed for {classes} classes and {count} support vectors",
                    coefficients.len(),
                    (classes - 1) * count
                )));
            }
            if rho.len() < pairs || (!prob_a.is_empty() && prob_a.len() < pairs) {
                return Err(attrs.error(format!(
                    "rho, prob_a and prob_b need one value per class pair ({pairs})"
                )));
            }
            let starts = per_class
                .iter()
                .scan(0, |at, &n| {
                    let s = *at;
                    *at += n;
                    Some(s)
                })
                .collect();
            let platt = (!prob_a.is_empty()).then_some((prob_a, prob_b));
            (
                Kernel::parse(attrs)?,
                Mode::Svc {
                    supports: Supports::new(attrs, count)?,
                    starts,
                    per_class,
                    platt,
                },
            )
        } else {
            if !coefficients.len().is_multiple_of(classes) {
                return Err(attrs.error(format!(
                    "{} coefficients do not form {classes} rows",
                    coefficients.len()
                )));
            }
            let features = coefficients.len() / classes;
            (Kernel::Linear, Mode::Linear { features })
        };
        Ok(Box::new(Classifier {
            kernel,
            mode,
            labels,
            classes,
            weights_all_positive: coefficients.iter().all(|&c| c >= 0.0),
            coefficients,
            rho,
            transform: PostTransform::parse(
                "SVMClassifier",
                &attrs.string_or("post_transform", "NONE"),
            )?,
        }))
    }

    fn features(&self) -> usize {
        match &self.mode {
            Mode::Svc { supports, .. } => supports.features,
            Mode::Linear { features } => *features,
        }
    }

    /// One-vs-one decision values of a row (pairs in order (0,1), (0,2), …, (1,2), …) and
    /// the votes they cast.
    fn decisions(
        &self,
        row: &[f32],
        kernels: &mut Vec<f32>,
        scores: &mut Vec<f64>,
        votes: &mut [u32],
    ) {
        let Mode::Svc {
            supports,
            starts,
            per_class,
            ..
        } = &self.mode
        else {
            unreachable!("decisions are for support-vector models")
        };
        supports.kernels(self.kernel, row, kernels);
        let count = supports.count;
        let block = |coef_row: usize, class: usize| -> f64 {
            let (s, n) = (starts[class], per_class[class]);
            let c = &self.coefficients[coef_row * count + s..coef_row * count + s + n];
            // Products in f32, summed in f64, as onnxruntime does.
            c.iter()
                .zip(&kernels[s..s + n])
                .map(|(&c, &k)| f64::from(c * k))
                .sum()
        };
        scores.clear();
        votes.fill(0);
        let mut pair = 0;
        for i in 0..self.classes - 1 {
            for j in i + 1..self.classes {
                let sum = block(j - 1, i) + block(i, j) + f64::from(self.rho[pair]);
                pair += 1;
                scores.push(f64::from(sum as f32));
                votes[if sum > 0.0 { i } else { j }] += 1;
            }
        }
    }
}

impl Op for Classifier {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "SVMClassifier";
        let features = self.features();
        let (n, x) = rows(op, inputs, features)?;
        let k = self.classes;
        let binary = k == 2;
        let (mut kernels, mut scores) = (Vec::new(), Vec::new());
        let mut votes = vec![0u32; k];
        let mut chosen = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(n * k);
        let has_probabilities = matches!(&self.mode, Mode::Svc { platt: Some(_), .. });
        // How many score columns come out, and how a binary model's one decision value
        // is widened to two: onnxruntime gives [-s, s] without a transform, [1 - s, s]
        // with one.
        let (width, second) = match &self.mode {
            Mode::Svc { platt: None, .. } if binary => (
                2,
                Some(if self.transform == PostTransform::None {
                    SecondClass::FromMargin
                } else {
                    SecondClass::FromProbability
                }),
            ),
            Mode::Svc { platt: None, .. } => (k * (k - 1) / 2, None),
            _ => (k, None),
        };
        for row in x.chunks_exact(features.max(1)).take(n) {
            let (class, max_weight) = match &self.mode {
                Mode::Linear { .. } => {
                    scores.clear();
                    scores.extend(
                        self.coefficients
                            .chunks_exact(features.max(1))
                            .map(|w| f64::from(Kernel::Linear.eval(row, w) + self.rho[0])),
                    );
                    let best = first_max(&scores);
                    (best, scores[best])
                }
                Mode::Svc { platt, .. } => {
                    self.decisions(row, &mut kernels, &mut scores, &mut votes);
                    if let Some((a, b)) = platt {
                        let probabilities = couple(k, &scores, a, b);
                        scores.clear();
                        scores.extend(probabilities.iter().map(|&p| f64::from(p)));
                    }
                    (first_max(&votes), 0.0)
                }
            };
            chosen.push(if binary && !has_probabilities {
                // onnxruntime's binary rule; with votes, `max_weight` stays 0.
                if (self.weights_all_positive && max_weight >= 0.5)
                    || (max_weight > 0.0 && !self.weights_all_positive)
                {
                    1
                } else {
                    class
                }
            } else {
                class
            });
            write_scores(&mut scores, self.transform, second, &mut out);
        }
        Ok(vec![
            Value::Tensor(self.labels.pick(&chosen)),
            Value::Tensor(Tensor::from_parts(vec![n, width], TensorData::F32(out))),
        ])
    }
}

/// The index of the first largest value.
fn first_max<T: PartialOrd>(v: &[T]) -> usize {
    (1..v.len()).fold(0, |b, j| if v[j] > v[b] { j } else { b })
}

/// Class probabilities from the pairwise decision values: Platt's sigmoid per pair
/// (clamped to [1e-7, 1 − 1e-7]), then libsvm's coupling.
fn couple(k: usize, decisions: &[f64], a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut r = vec![0f32; k * k];
    let mut pair = 0;
    for i in 0..k - 1 {
        for j in i + 1..k {
            let v = 1.0 - logistic_f32(decisions[pair] as f32 * a[pair] + b[pair]);
            let v = v.clamp(1.0e-7, 1.0 - 1.0e-7);
            r[i * k + j] = v;
            r[j * k + i] = 1.0 - v;
            pair += 1;
        }
    }
    multiclass_probability(k, &r)
}

fn logistic_f32(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

/// Wu, Lin and Weng's second method (libsvm's `multiclass_probability`): minimizes
/// `pᵀQp` under `Σp = 1` by coordinate updates, at most 100 rounds, stopping when every
/// `|(Qp)_i − pᵀQp|` is under `0.005 / k`. In `f32`, like onnxruntime, so the rounds and
/// the stopping point are the same.
fn multiclass_probability(k: usize, r: &[f32]) -> Vec<f32> {
    let mut q = vec![0f32; k * k];
    let mut p = vec![1.0 / k as f32; k];
    for i in 0..k {
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    let eps = 0.005 / k as f32;
    let mut qp = vec![0f32; k];
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = (0..k).map(|j| q[i * k + j] * p[j]).fold(0.0, |s, x| s + x);
            pqp += p[i] * qp[i];
        }
        let max_error = qp.iter().map(|&x| (x - pqp).abs()).fold(0f32, f32::max);
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupling_recovers_the_probabilities_behind_consistent_pairs() {
        // Pairs r_ij = p_i / (p_i + p_j) of p = (0.6, 0.3, 0.1).
        let p = [0.6f32, 0.3, 0.1];
        let mut r = [0f32; 9];
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    r[i * 3 + j] = p[i] / (p[i] + p[j]);
                }
            }
        }
        let got = multiclass_probability(3, &r);
        assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{got:?}");
        for (g, want) in got.iter().zip(p) {
            assert!((g - want).abs() < 0.01, "{got:?}");
        }
    }

    #[test]
    fn kernels_are_the_textbook_ones() {
        let (x, v) = ([1.0f32, 2.0], [3.0f32, -1.0]);
        assert_eq!(Kernel::Linear.eval(&x, &v), 1.0);
        let poly = Kernel::Poly {
            gamma: 0.5,
            coef0: 1.0,
            degree: 2.0,
        };
        assert_eq!(poly.eval(&x, &v), 2.25);
        let rbf = Kernel::Rbf { gamma: 0.1 };
        assert!((rbf.eval(&x, &v) - (-1.3f32).exp()).abs() < 1e-7);
    }
}
