//! Standard arithmetic operators: element-wise with NumPy broadcasting (`Add`…, `Sum`,
//! comparisons), activations, `Softmax`, `MatMul`, `Gemm`, `ArgMax`/`ArgMin`.

use super::{Op, axis, input_tensor, optional_tensor};
use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Tensor, TensorData, Value};

/// The broadcast shape of `a` and `b` (NumPy rules), or an error naming both.
pub(crate) fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(Error::op(
                op,
                format!("shapes {a:?} and {b:?} do not broadcast"),
            )),
        })
        .collect()
}

/// For each element of `out` (row-major), the index of the element of `shape` it reads.
pub(crate) fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    if shape == out {
        return (0..n).collect();
    }
    let pad = out.len() - shape.len();
    // Stride of each output axis in the source; 0 where the source is broadcast.
    let mut strides = vec![0usize; out.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[i + pad] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    let mut idx = vec![0usize; out.len()];
    let mut result = Vec::with_capacity(n);
    let mut offset = 0usize;
    for _ in 0..n {
        result.push(offset);
        for ax in (0..out.len()).rev() {
            idx[ax] += 1;
            offset += strides[ax];
            if idx[ax] < out[ax] {
                break;
            }
            offset -= strides[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    result
}

/// `Add`, `Sub`, `Mul`, `Div` on tensors of one numeric type.
#[derive(Debug)]
pub(crate) struct Binary {
    op: BinaryOp,
}

#[derive(Debug, Clone, Copy)]
enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let op = match attrs.op_type() {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            _ => BinaryOp::Div,
        };
        Ok(Box::new(Binary { op }))
    }

    fn name(&self) -> &'static str {
        match self.op {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
        }
    }
}

fn zip_with<T: Copy, U>(
    a: &[T],
    ia: &[usize],
    b: &[T],
    ib: &[usize],
    f: impl Fn(T, T) -> U,
) -> Vec<U> {
    ia.iter().zip(ib).map(|(&i, &j)| f(a[i], b[j])).collect()
}

impl Op for Binary {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let name = self.name();
        let (a, b) = (
            input_tensor(name, inputs, 0)?,
            input_tensor(name, inputs, 1)?,
        );
        Ok(vec![Value::Tensor(binary(name, self.op, a, b)?)])
    }
}

/// `a op b` with broadcasting, both of one numeric type.
fn binary(name: &str, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, Error> {
    let shape = broadcast_shape(name, a.shape(), b.shape())?;
    let (ia, ib) = (
        broadcast_index(a.shape(), &shape),
        broadcast_index(b.shape(), &shape),
    );
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            TensorData::F32(zip_with(x, &ia, y, &ib, |p, q| match op {
                BinaryOp::Add => p + q,
                BinaryOp::Sub => p - q,
                BinaryOp::Mul => p * q,
                BinaryOp::Div => p / q,
            }))
        }
        (TensorData::F64(x), TensorData::F64(y)) => {
            TensorData::F64(zip_with(x, &ia, y, &ib, |p, q| match op {
                BinaryOp::Add => p + q,
                BinaryOp::Sub => p - q,
                BinaryOp::Mul => p * q,
                BinaryOp::Div => p / q,
            }))
        }
        (TensorData::I64(x), TensorData::I64(y)) => {
            if matches!(op, BinaryOp::Div) && ib.iter().any(|&j| y[j] == 0) {
                return Err(Error::op(name, "integer division by zero"));
            }
            TensorData::I64(zip_with(x, &ia, y, &ib, |p, q| match op {
                BinaryOp::Add => p.wrapping_add(q),
                BinaryOp::Sub => p.wrapping_sub(q),
                BinaryOp::Mul => p.wrapping_mul(q),
                BinaryOp::Div => p.wrapping_div(q),
            }))
        }
        (x, y) => {
            return Err(Error::op(
                name,
                format!(
                    "operands are {} and {}; both must be the same numeric type",
                    x.elem_type(),
                    y.elem_type()
                ),
            ));
        }
    };
    Ok(Tensor::from_parts(shape, data))
}

/// `Sum`: the element-wise sum of one or more tensors, with broadcasting.
#[derive(Debug)]
pub(crate) struct Sum;

impl Sum {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Sum))
    }
}

impl Op for Sum {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let mut total = input_tensor("Sum", inputs, 0)?.clone();
        for i in 1..inputs.len() {
            total = binary(
                "Sum",
                BinaryOp::Add,
                &total,
                input_tensor("Sum", inputs, i)?,
            )?;
        }
        Ok(vec![Value::Tensor(total)])
    }
}

/// `Less`, `LessOrEqual`, `Greater`, `GreaterOrEqual`, `Equal`: a `bool` tensor, with
/// broadcasting; numbers are compared as `f64` (exact for `f32` and for integers below 2^53).
#[derive(Debug)]
pub(crate) struct Compare {
    name: &'static str,
    test: fn(f64, f64) -> bool,
}

impl Compare {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let (name, test): (&'static str, fn(f64, f64) -> bool) = match attrs.op_type() {
            "Less" => ("Less", |a, b| a < b),
            "LessOrEqual" => ("LessOrEqual", |a, b| a <= b),
            "Greater" => ("Greater", |a, b| a > b),
            "GreaterOrEqual" => ("GreaterOrEqual", |a, b| a >= b),
            _ => ("Equal", |a, b| a == b),
        };
        Ok(Box::new(Compare { name, test }))
    }
}

impl Op for Compare {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let (a, b) = (
            input_tensor(self.name, inputs, 0)?,
            input_tensor(self.name, inputs, 1)?,
        );
        let shape = broadcast_shape(self.name, a.shape(), b.shape())?;
        let (ia, ib) = (
            broadcast_index(a.shape(), &shape),
            broadcast_index(b.shape(), &shape),
        );
        let data = match (a.data(), b.data()) {
            (TensorData::Str(x), TensorData::Str(y)) if self.name == "Equal" => {
                ia.iter().zip(&ib).map(|(&i, &j)| x[i] == y[j]).collect()
            }
            _ => {
                let (x, y) = (a.to_f64_vec(self.name)?, b.to_f64_vec(self.name)?);
                zip_with(&x, &ia, &y, &ib, self.test)
            }
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(
            shape,
            TensorData::Bool(data),
        ))])
    }
}

/// Element-wise functions of floating-point tensors.
#[derive(Debug)]
pub(crate) struct Unary {
    name: String,
    f: fn(f64) -> f64,
}

impl Unary {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let f: fn(f64) -> f64 = match attrs.op_type() {
            "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
            "Exp" => f64::exp,
            "Log" => f64::ln,
            "Abs" => f64::abs,
            "Neg" => |x| -x,
            "Sqrt" => f64::sqrt,
            "Relu" => |x| x.max(0.0),
            "Tanh" => f64::tanh,
            "Reciprocal" => f64::recip,
            "Floor" => f64::floor,
            _ => f64::ceil,
        };
        Ok(Box::new(Unary {
            name: attrs.op_type().to_owned(),
            f,
        }))
    }
}

impl Op for Unary {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor(&self.name, inputs, 0)?;
        let f = self.f;
        let data = match x.data() {
            TensorData::F32(v) => {
                TensorData::F32(v.iter().map(|&e| f(f64::from(e)) as f32).collect())
            }
            TensorData::F64(v) => TensorData::F64(v.iter().map(|&e| f(e)).collect()),
            TensorData::I64(v) if matches!(self.name.as_str(), "Abs" | "Neg" | "Relu") => {
                TensorData::I64(v.iter().map(|&e| f(e as f64) as i64).collect())
            }
            other => {
                return Err(Error::op(
                    &self.name,
                    format!("does not take {} input", other.elem_type()),
                ));
            }
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(
            x.shape().to_vec(),
            data,
        ))])
    }
}

/// Splits `shape` around `axis` into (outer, axis length, inner) element counts.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape.get(axis).copied().unwrap_or(1), inner)
}

/// `Softmax` along one axis (opset 13+ semantics; default axis −1).
#[derive(Debug)]
pub(crate) struct Softmax {
    axis: i64,
}

impl Softmax {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Softmax {
            axis: attrs.int_or("axis", -1),
        }))
    }
}

impl Op for Softmax {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor("Softmax", inputs, 0)?;
        let ax = axis("Softmax", self.axis, x.shape().len())?;
        let (outer, len, inner) = around(x.shape(), ax);
        let mut v = x.to_f64_vec("Softmax")?;
        let mut buf = vec![0.0; len];
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| o * len * inner + k * inner + i;
                (0..len).for_each(|k| buf[k] = v[at(k)]);
                super::transform::softmax(&mut buf);
                (0..len).for_each(|k| v[at(k)] = buf[k]);
            }
        }
        let data = match x.data() {
            TensorData::F64(_) => TensorData::F64(v),
            _ => TensorData::F32(v.into_iter().map(|e| e as f32).collect()),
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(
            x.shape().to_vec(),
            data,
        ))])
    }
}

/// `A [N, K] · B [K, M]` (or `B [K]`), accumulating in the input type.
fn matmul(
    op: &str,
    a: &Tensor,
    b: &Tensor,
    trans_a: bool,
    trans_b: bool,
) -> Result<(Vec<usize>, TensorData), Error> {
    let (n, k) = match (a.shape(), trans_a) {
        ([k], false) => (1, *k),
        ([n, k], false) => (*n, *k),
        ([k, n], true) => (*n, *k),
        (s, _) => {
            return Err(Error::op(
                op,
                format!("A must be a matrix, got shape {s:?}"),
            ));
        }
    };
    let (k2, m, vector) = match (b.shape(), trans_b) {
        ([k], false) => (*k, 1, true),
        ([k, m], false) => (*k, *m, false),
        ([m, k], true) => (*k, *m, false),
        (s, _) => {
            return Err(Error::op(
                op,
                format!("B must be a matrix, got shape {s:?}"),
            ));
        }
    };
    if k != k2 {
        return Err(Error::op(
            op,
            format!("inner dimensions differ: {:?} · {:?}", a.shape(), b.shape()),
        ));
    }
    let ai = |r: usize, c: usize| if trans_a { c * n + r } else { r * k + c };
    let bi = |r: usize, c: usize| if trans_b { c * k + r } else { r * m + c };
    macro_rules! product {
        ($x:expr, $y:expr, $zero:expr) => {{
            let mut out = Vec::with_capacity(n * m);
            for r in 0..n {
                for c in 0..m {
                    let mut s = $zero;
                    for j in 0..k {
                        s += $x[ai(r, j)] * $y[bi(j, c)];
                    }
                    out.push(s);
                }
            }
            out
        }};
    }
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => TensorData::F32(product!(x, y, 0.0f32)),
        (TensorData::F64(x), TensorData::F64(y)) => TensorData::F64(product!(x, y, 0.0f64)),
        (TensorData::I64(x), TensorData::I64(y)) => TensorData::I64(product!(x, y, 0i64)),
        (x, y) => {
            return Err(Error::op(
                op,
                format!("operands are {} and {}", x.elem_type(), y.elem_type()),
            ));
        }
    };
    let shape = match (a.shape().len(), vector) {
        (1, true) => vec![],
        (1, false) => vec![m],
        (_, true) => vec![n],
        (_, false) => vec![n, m],
    };
    Ok((shape, data))
}

/// `MatMul` of matrices and vectors (no batched stacks).
#[derive(Debug)]
pub(crate) struct MatMul;

impl MatMul {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(MatMul))
    }
}

impl Op for MatMul {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let (a, b) = (
            input_tensor("MatMul", inputs, 0)?,
            input_tensor("MatMul", inputs, 1)?,
        );
        let (shape, data) = matmul("MatMul", a, b, false, false)?;
        Ok(vec![Value::Tensor(Tensor::from_parts(shape, data))])
    }
}

/// `Gemm`: `alpha · A' · B' + beta · C`.
#[derive(Debug)]
pub(crate) struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Gemm {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Gemm {
            alpha: attrs.float_or("alpha", 1.0),
            beta: attrs.float_or("beta", 1.0),
            trans_a: attrs.int_or("transA", 0) != 0,
            trans_b: attrs.int_or("transB", 0) != 0,
        }))
    }
}

impl Op for Gemm {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Gemm";
        let (a, b) = (input_tensor(op, inputs, 0)?, input_tensor(op, inputs, 1)?);
        if a.shape().len() != 2 || b.shape().len() != 2 {
            return Err(Error::op(op, "A and B must be matrices"));
        }
        let (shape, product) = matmul(op, a, b, self.trans_a, self.trans_b)?;
        let product = Tensor::from_parts(shape.clone(), product);
        let mut y = product.to_f64_vec(op)?;
        let alpha = f64::from(self.alpha);
        y.iter_mut().for_each(|e| *e *= alpha);
        if let Some(c) = optional_tensor(op, inputs, 2)? {
            let out = broadcast_shape(op, &shape, c.shape())?;
            if out != shape {
                return Err(Error::op(
                    op,
                    format!("C of shape {:?} does not broadcast to {shape:?}", c.shape()),
                ));
            }
            let cv = c.to_f64_vec(op)?;
            let beta = f64::from(self.beta);
            for (e, &j) in y.iter_mut().zip(&broadcast_index(c.shape(), &shape)) {
                *e += beta * cv[j];
            }
        }
        let data = match product.data() {
            TensorData::F64(_) => TensorData::F64(y),
            TensorData::I64(_) => TensorData::I64(y.into_iter().map(|e| e as i64).collect()),
            _ => TensorData::F32(y.into_iter().map(|e| e as f32).collect()),
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(shape, data))])
    }
}

/// `ArgMax` / `ArgMin` along an axis, int64 output.
#[derive(Debug)]
pub(crate) struct ArgMax {
    max: bool,
    axis: i64,
    keepdims: bool,
    last: bool,
}

impl ArgMax {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(ArgMax {
            max: attrs.op_type() == "ArgMax",
            axis: attrs.int_or("axis", 0),
            keepdims: attrs.int_or("keepdims", 1) != 0,
            last: attrs.int_or("select_last_index", 0) != 0,
        }))
    }
}

impl Op for ArgMax {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = if self.max { "ArgMax" } else { "ArgMin" };
        let x = input_tensor(op, inputs, 0)?;
        let ax = axis(op, self.axis, x.shape().len())?;
        let (outer, len, inner) = around(x.shape(), ax);
        if len == 0 {
            return Err(Error::op(op, "the axis is empty"));
        }
        let v = x.to_f64_vec(op)?;
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| v[o * len * inner + k * inner + i];
                let mut best = 0;
                for k in 1..len {
                    let better = if self.max {
                        at(k) > at(best)
                    } else {
                        at(k) < at(best)
                    };
                    if better || (self.last && at(k) == at(best)) {
                        best = k;
                    }
                }
                out.push(best as i64);
            }
        }
        let mut shape = x.shape().to_vec();
        if self.keepdims {
            shape[ax] = 1;
        } else if !shape.is_empty() {
            shape.remove(ax);
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            shape,
            TensorData::I64(out),
        ))])
    }
}
