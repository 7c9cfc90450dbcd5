//! Dense tensors (row-major, owned) and the values that flow between nodes.

use std::fmt;

use crate::error::Error;

/// Element type of a tensor, as far as this engine computes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// `tensor(float)`.
    F32,
    /// `tensor(double)`.
    F64,
    /// `tensor(int64)`.
    I64,
    /// `tensor(string)`.
    Str,
    /// `tensor(bool)`.
    Bool,
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElemType::F32 => "float",
            ElemType::F64 => "double",
            ElemType::I64 => "int64",
            ElemType::Str => "string",
            ElemType::Bool => "bool",
        })
    }
}

/// The elements of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `float` elements.
    F32(Vec<f32>),
    /// `double` elements.
    F64(Vec<f64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `string` elements.
    Str(Vec<String>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Str(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn elem_type(&self) -> ElemType {
        match self {
            TensorData::F32(_) => ElemType::F32,
            TensorData::F64(_) => ElemType::F64,
            TensorData::I64(_) => ElemType::I64,
            TensorData::Str(_) => ElemType::Str,
            TensorData::Bool(_) => ElemType::Bool,
        }
    }
}

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor of `shape` holding `data`; the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, Error> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(Error::BadTensor(format!(
                "shape {shape:?} needs {expected} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// A `float` tensor.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, Error> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// A `double` tensor.
    pub fn f64(shape: Vec<usize>, data: Vec<f64>) -> Result<Self, Error> {
        Tensor::new(shape, TensorData::F64(data))
    }

    /// An `int64` tensor.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Self, Error> {
        Tensor::new(shape, TensorData::I64(data))
    }

    /// A `string` tensor.
    pub fn strings(shape: Vec<usize>, data: Vec<String>) -> Result<Self, Error> {
        Tensor::new(shape, TensorData::Str(data))
    }

    /// Builds a tensor whose element count the caller computed from `shape`.
    pub(crate) fn from_parts(shape: Vec<usize>, data: TensorData) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The elements, by value.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The element type.
    pub fn elem_type(&self) -> ElemType {
        self.data.elem_type()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same elements under another shape with as many elements.
    pub(crate) fn reshaped(self, shape: Vec<usize>) -> Self {
        Tensor::from_parts(shape, self.data)
    }

    /// The `float` elements, if that is the type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The `double` elements, if that is the type.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The `int64` elements, if that is the type.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The `string` elements, if that is the type.
    pub fn as_strings(&self) -> Option<&[String]> {
        match &self.data {
            TensorData::Str(v) => Some(v),
            _ => None,
        }
    }

    /// `(rows, columns)` of a matrix-like input: `[N, C]` as is, `[C]` as one row, and a
    /// higher rank as `[N, rest]`, the way the ONNX-ML operators read their input.
    pub(crate) fn rows_cols(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [] => (1, 1),
            [c] => (1, *c),
            [n, rest @ ..] => (*n, rest.iter().product()),
        }
    }

    /// Numeric elements as `f64` (ints and bools converted), for operators that compute in
    /// floating point whatever their input; strings are refused.
    pub(crate) fn to_f64_vec(&self, op: &str) -> Result<Vec<f64>, Error> {
        Ok(match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
            TensorData::Str(_) => return Err(Error::op(op, "expects a numeric input, got string")),
        })
    }

    /// Numeric elements as `f32`, the type the ONNX-ML operators compute and answer in.
    pub(crate) fn to_f32_vec(&self, op: &str) -> Result<Vec<f32>, Error> {
        Ok(match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
            TensorData::Str(_) => return Err(Error::op(op, "expects a numeric input, got string")),
        })
    }
}

/// The class labels of a classifier: ONNX keeps either integers or strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// `classlabels_int64s` / `classlabels_ints`.
    Int(Vec<i64>),
    /// `classlabels_strings`.
    Str(Vec<String>),
}

impl Labels {
    /// Number of labels.
    pub fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels at `indices` as a `[N]` tensor.
    pub(crate) fn pick(&self, indices: &[usize]) -> Tensor {
        let n = indices.len();
        match self {
            Labels::Int(v) => Tensor::from_parts(
                vec![n],
                TensorData::I64(indices.iter().map(|&i| v[i]).collect()),
            ),
            Labels::Str(v) => Tensor::from_parts(
                vec![n],
                TensorData::Str(indices.iter().map(|&i| v[i].clone()).collect()),
            ),
        }
    }
}

/// ZipMap's output, a sequence of one map per row from class label to probability. Kept as
/// the labels plus a `[N, C]` matrix, which is what a serializer needs to write
/// `[{"label": p, ...}, ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    /// The map keys, in column order.
    pub keys: Labels,
    /// `rows × keys.len()` probabilities, row-major.
    pub values: Vec<f32>,
}

impl Records {
    /// Number of maps (rows).
    pub fn rows(&self) -> usize {
        if self.keys.is_empty() {
            0
        } else {
            self.values.len() / self.keys.len()
        }
    }

    /// The probabilities of row `i`, in key order.
    pub fn row(&self, i: usize) -> &[f32] {
        let c = self.keys.len();
        &self.values[i * c..(i + 1) * c]
    }
}

/// A value flowing through the graph: a tensor, or ZipMap's sequence of maps.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A dense tensor.
    Tensor(Tensor),
    /// `seq(map(int64|string, float))`.
    Records(Records),
}

impl Value {
    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            Value::Records(_) => None,
        }
    }

    /// The tensor by value, if this is one.
    pub fn into_tensor(self) -> Option<Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            Value::Records(_) => None,
        }
    }

    /// The maps, if this is ZipMap's output.
    pub fn as_records(&self) -> Option<&Records> {
        match self {
            Value::Records(r) => Some(r),
            Value::Tensor(_) => None,
        }
    }
}
