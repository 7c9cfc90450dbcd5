//! `post_transform` of the ONNX-ML operators, computed the way onnxruntime computes it, so
//! that scores agree with it to float precision.

use crate::error::Error;

/// The `post_transform` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(op: &str, value: &str) -> Result<Self, Error> {
        Ok(match value {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => return Err(Error::op(op, format!("unknown post_transform {other:?}"))),
        })
    }
}

/// How a single binary score becomes two columns (onnxruntime's `add_second_class`): from
/// a probability (`[1 − p, p]`) or from a margin (`[−s, s]`, or both sides through the
/// logistic function when that is the transform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecondClass {
    FromProbability,
    FromMargin,
}

/// The logistic function, symmetric in the sign of `x` so large margins lose no precision.
pub(crate) fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

/// `√2 · erfinv(2p − 1)` with Winitzki's closed-form approximation of `erfinv` (a = 0.147),
/// the approximation onnxruntime uses: an exact inverse would differ from it by ~1e-3.
pub(crate) fn probit(p: f64) -> f64 {
    let x = 2.0 * p as f32 - 1.0;
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let ln = ((1.0 - x) * (1.0 + x)).ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * ln;
    let b = ln / 0.147;
    let erfinv = sign * ((a * a - b).sqrt() - a).sqrt();
    f64::from(std::f32::consts::SQRT_2 * erfinv)
}

/// Softmax over `scores` in place, shifted by the maximum.
pub(crate) fn softmax(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// Softmax that leaves exact zeros at zero (onnxruntime's `SOFTMAX_ZERO`).
fn softmax_zero(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        if *s != 0.0 {
            *s = (*s - max).exp();
            sum += *s;
        }
    }
    if sum > 0.0 {
        for s in scores.iter_mut() {
            *s /= sum;
        }
    }
}

/// Applies `transform` to one row of scores and appends the row to `out`. A row of one
/// score is widened to two columns when `second` says how.
pub(crate) fn write_scores(
    scores: &mut [f64],
    transform: PostTransform,
    second: Option<SecondClass>,
    out: &mut Vec<f32>,
) {
    if let ([s], Some(second)) = (&mut *scores, second) {
        let s = *s;
        let (a, b) = match (transform, second) {
            (PostTransform::Probit, _) => (probit(s), 0.0),
            (_, SecondClass::FromProbability) => (1.0 - s, s),
            (PostTransform::Logistic, SecondClass::FromMargin) => (logistic(-s), logistic(s)),
            (_, SecondClass::FromMargin) => (-s, s),
        };
        out.extend([a as f32, b as f32]);
        return;
    }
    match transform {
        PostTransform::None => {}
        PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
        PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
        PostTransform::Softmax => softmax(scores),
        PostTransform::SoftmaxZero => softmax_zero(scores),
    }
    out.extend(scores.iter().map(|&s| s as f32));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probit_is_close_to_the_normal_quantile() {
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.959964).abs() < 5e-3);
        assert!((probit(0.025) + 1.959964).abs() < 5e-3);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut s = [1.0, 2.0, 3.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    #[test]
    fn one_margin_becomes_two_logistic_columns() {
        let mut out = Vec::new();
        write_scores(
            &mut [0.0],
            PostTransform::Logistic,
            Some(SecondClass::FromMargin),
            &mut out,
        );
        assert_eq!(out, [0.5, 0.5]);
    }
}
