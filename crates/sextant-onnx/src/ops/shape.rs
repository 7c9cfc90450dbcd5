//! Standard operators that move or convert elements: `Reshape`, `Concat`, `Flatten`,
//! `Identity`, `Cast`, `Shape`, `Gather`, `Squeeze`/`Unsqueeze`.

use super::{Op, axis, input_tensor, optional_tensor};
use crate::error::Error;
use crate::proto::{Attrs, elem_type};
use crate::tensor::{ElemType, Tensor, TensorData, Value};

/// Picks, from each row of `c` elements, the columns `cols` (in that order).
pub(crate) fn gather_columns(data: &TensorData, c: usize, cols: &[usize]) -> TensorData {
    fn pick<T: Clone>(v: &[T], c: usize, cols: &[usize]) -> Vec<T> {
        if c == 0 {
            return Vec::new();
        }
        v.chunks_exact(c)
            .flat_map(|row| cols.iter().map(|&j| row[j].clone()))
            .collect()
    }
    match data {
        TensorData::F32(v) => TensorData::F32(pick(v, c, cols)),
        TensorData::F64(v) => TensorData::F64(pick(v, c, cols)),
        TensorData::I64(v) => TensorData::I64(pick(v, c, cols)),
        TensorData::Str(v) => TensorData::Str(pick(v, c, cols)),
        TensorData::Bool(v) => TensorData::Bool(pick(v, c, cols)),
    }
}

/// The int64 elements of a shape-like input.
fn int_input<'a>(op: &str, t: &'a Tensor) -> Result<&'a [i64], Error> {
    t.as_i64().ok_or_else(|| {
        Error::op(
            op,
            format!("expects an int64 tensor, got {}", t.elem_type()),
        )
    })
}

fn tensor(t: Tensor) -> Result<Vec<Value>, Error> {
    Ok(vec![Value::Tensor(t)])
}

/// `Reshape`: `0` copies the input's dimension, one `-1` takes what is left.
#[derive(Debug)]
pub(crate) struct Reshape;

impl Reshape {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Reshape))
    }
}

impl Op for Reshape {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Reshape";
        let x = input_tensor(op, inputs, 0)?;
        let spec = int_input(op, input_tensor(op, inputs, 1)?)?;
        let mut shape = Vec::with_capacity(spec.len());
        let mut infer = None;
        for (i, &d) in spec.iter().enumerate() {
            shape.push(match d {
                0 => *x
                    .shape()
                    .get(i)
                    .ok_or_else(|| Error::op(op, "0 refers past the input's rank"))?,
                -1 if infer.is_none() => {
                    infer = Some(i);
                    1
                }
                d => usize::try_from(d)
                    .map_err(|_| Error::op(op, format!("invalid dimension {d} in {spec:?}")))?,
            });
        }
        let known: usize = shape.iter().product();
        if let Some(i) = infer {
            if known == 0 || !x.len().is_multiple_of(known) {
                return Err(Error::op(
                    op,
                    format!("cannot reshape {:?} to {spec:?}", x.shape()),
                ));
            }
            shape[i] = x.len() / known;
        } else if known != x.len() {
            return Err(Error::op(
                op,
                format!("cannot reshape {:?} to {spec:?}", x.shape()),
            ));
        }
        tensor(x.clone().reshaped(shape))
    }
}

/// `Flatten`: `[d0 … d(axis−1), rest]` as a matrix.
#[derive(Debug)]
pub(crate) struct Flatten {
    axis: i64,
}

impl Flatten {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Flatten {
            axis: attrs.int_or("axis", 1),
        }))
    }
}

impl Op for Flatten {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor("Flatten", inputs, 0)?;
        let rank = x.shape().len();
        let a = if self.axis == rank as i64 {
            rank
        } else {
            axis("Flatten", self.axis, rank)?
        };
        let outer: usize = x.shape()[..a].iter().product();
        let inner: usize = x.shape()[a..].iter().product();
        tensor(x.clone().reshaped(vec![outer, inner]))
    }
}

/// `Identity`.
#[derive(Debug)]
pub(crate) struct Identity;

impl Identity {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Identity))
    }
}

impl Op for Identity {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        match inputs.first().copied().flatten() {
            Some(v) => Ok(vec![v.clone()]),
            None => Err(Error::op("Identity", "missing input 0")),
        }
    }
}

/// `Concat` along an axis; all inputs share the element type and the other dimensions.
#[derive(Debug)]
pub(crate) struct Concat {
    axis: i64,
}

impl Concat {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let axis = attrs
            .int("axis")
            .ok_or_else(|| attrs.error("needs an axis"))?;
        Ok(Box::new(Concat { axis }))
    }
}

impl Op for Concat {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Concat";
        let parts = (0..inputs.len())
            .map(|i| input_tensor(op, inputs, i))
            .collect::<Result<Vec<_>, _>>()?;
        let first = parts.first().ok_or_else(|| Error::op(op, "no inputs"))?;
        let rank = first.shape().len();
        let ax = axis(op, self.axis, rank)?;
        let outer: usize = first.shape()[..ax].iter().product();
        let mut shape = first.shape().to_vec();
        shape[ax] = 0;
        for p in &parts {
            let same = p.shape().len() == rank
                && p.elem_type() == first.elem_type()
                && (0..rank).all(|d| d == ax || p.shape()[d] == first.shape()[d]);
            if !same {
                return Err(Error::op(
                    op,
                    format!(
                        "cannot join {} {:?} to {} {:?} on axis {ax}",
                        p.elem_type(),
                        p.shape(),
                        first.elem_type(),
                        first.shape()
                    ),
                ));
            }
            shape[ax] += p.shape()[ax];
        }
        // Each input contributes a block of `len / outer` elements per outer index.
        macro_rules! join {
            ($variant:ident) => {{
                let mut out = Vec::with_capacity(shape.iter().product());
                for o in 0..outer {
                    for p in &parts {
                        let TensorData::$variant(v) = p.data() else {
                            unreachable!("types checked")
                        };
                        let block = if outer == 0 { 0 } else { v.len() / outer };
                        out.extend_from_slice(&v[o * block..(o + 1) * block]);
                    }
                }
                TensorData::$variant(out)
            }};
        }
        let data = match first.data() {
            TensorData::F32(_) => join!(F32),
            TensorData::F64(_) => join!(F64),
            TensorData::I64(_) => join!(I64),
            TensorData::Str(_) => join!(Str),
            TensorData::Bool(_) => join!(Bool),
        };
        tensor(Tensor::from_parts(shape, data))
    }
}

/// `Cast` between float, double, int64, bool and string.
#[derive(Debug)]
pub(crate) struct Cast {
    to: ElemType,
}

impl Cast {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let code = attrs
            .int("to")
            .ok_or_else(|| attrs.error("needs a 'to' type"))?;
        let to = elem_type(code as i32)
            .ok_or_else(|| attrs.error(format!("cannot cast to data type {code}")))?;
        Ok(Box::new(Cast { to }))
    }
}

/// Numbers written as onnxruntime writes them into string tensors.
fn number_string(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        x.to_string()
    }
}

impl Op for Cast {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Cast";
        let x = input_tensor(op, inputs, 0)?;
        let data = match (x.data(), self.to) {
            (d, to) if d.elem_type() == to => d.clone(),
            (TensorData::Str(v), to) => {
                let parsed = v
                    .iter()
                    .map(|s| {
                        s.trim()
                            .parse::<f64>()
                            .map_err(|_| Error::op(op, format!("{s:?} is not a number")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                from_f64(parsed, to)
            }
            (TensorData::I64(v), ElemType::Str) => {
                TensorData::Str(v.iter().map(i64::to_string).collect())
            }
            (TensorData::I64(v), to) => match to {
                ElemType::F32 => TensorData::F32(v.iter().map(|&e| e as f32).collect()),
                ElemType::F64 => TensorData::F64(v.iter().map(|&e| e as f64).collect()),
                _ => TensorData::Bool(v.iter().map(|&e| e != 0).collect()),
            },
            (_, to) => from_f64(x.to_f64_vec(op)?, to),
        };
        tensor(Tensor::from_parts(x.shape().to_vec(), data))
    }
}

fn from_f64(v: Vec<f64>, to: ElemType) -> TensorData {
    match to {
        ElemType::F32 => TensorData::F32(v.into_iter().map(|e| e as f32).collect()),
        ElemType::F64 => TensorData::F64(v),
        // Truncation toward zero, saturating, as C++ casts do on the values that fit.
        ElemType::I64 => TensorData::I64(v.into_iter().map(|e| e as i64).collect()),
        ElemType::Bool => TensorData::Bool(v.into_iter().map(|e| e != 0.0).collect()),
        ElemType::Str => TensorData::Str(v.into_iter().map(number_string).collect()),
    }
}

/// `Shape` (without `start`/`end`).
#[derive(Debug)]
pub(crate) struct ShapeOf;

impl ShapeOf {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(ShapeOf))
    }
}

impl Op for ShapeOf {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor("Shape", inputs, 0)?;
        let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
        tensor(Tensor::from_parts(vec![dims.len()], TensorData::I64(dims)))
    }
}

/// `Gather` along an axis with int64 indices (negative counting from the end).
#[derive(Debug)]
pub(crate) struct Gather {
    axis: i64,
}

impl Gather {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Gather {
            axis: attrs.int_or("axis", 0),
        }))
    }
}

impl Op for Gather {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Gather";
        let x = input_tensor(op, inputs, 0)?;
        let idx_t = input_tensor(op, inputs, 1)?;
        let ax = axis(op, self.axis, x.shape().len())?;
        let len = x.shape()[ax];
        let indices = int_input(op, idx_t)?
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + len as i64 } else { i };
                usize::try_from(j)
                    .ok()
                    .filter(|&j| j < len)
                    .ok_or_else(|| Error::op(op, format!("index {i} is outside an axis of {len}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outer: usize = x.shape()[..ax].iter().product();
        let inner: usize = x.shape()[ax + 1..].iter().product();
        // As columns of an [outer, len·inner] matrix.
        let cols: Vec<usize> = indices
            .iter()
            .flat_map(|&j| (0..inner).map(move |k| j * inner + k))
            .collect();
        let data = gather_columns(x.data(), len * inner, &cols);
        let mut shape = x.shape()[..ax].to_vec();
        shape.extend_from_slice(idx_t.shape());
        shape.extend_from_slice(&x.shape()[ax + 1..]);
        debug_assert_eq!(outer * cols.len(), data.len());
        tensor(Tensor::from_parts(shape, data))
    }
}

/// `Squeeze` and `Unsqueeze`, axes from the attribute (opset < 13) or the second input.
#[derive(Debug)]
pub(crate) struct Squeeze {
    squeeze: bool,
    axes: Vec<i64>,
}

impl Squeeze {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Squeeze {
            squeeze: attrs.op_type() == "Squeeze",
            axes: attrs.ints("axes").to_vec(),
        }))
    }
}

impl Op for Squeeze {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = if self.squeeze { "Squeeze" } else { "Unsqueeze" };
        let x = input_tensor(op, inputs, 0)?;
        let axes = match optional_tensor(op, inputs, 1)? {
            Some(t) => int_input(op, t)?.to_vec(),
            None => self.axes.clone(),
        };
        let mut shape = x.shape().to_vec();
        if self.squeeze {
            let mut drop = axes
                .iter()
                .map(|&a| axis(op, a, shape.len()))
                .collect::<Result<Vec<_>, _>>()?;
            if axes.is_empty() {
                drop = (0..shape.len()).filter(|&d| shape[d] == 1).collect();
            }
            if drop.iter().any(|&d| shape[d] != 1) {
                return Err(Error::op(
                    op,
                    format!("cannot squeeze axes {axes:?} of shape {shape:?}"),
                ));
            }
            shape = shape
                .iter()
                .enumerate()
                .filter(|(d, _)| !drop.contains(d))
                .map(|(_, &s)| s)
                .collect();
        } else {
            let rank = shape.len() + axes.len();
            let mut add = axes
                .iter()
                .map(|&a| axis(op, a, rank))
                .collect::<Result<Vec<_>, _>>()?;
            add.sort_unstable();
            for a in add {
                shape.insert(a, 1);
            }
        }
        tensor(x.clone().reshaped(shape))
    }
}
