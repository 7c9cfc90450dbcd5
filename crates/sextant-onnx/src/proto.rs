//! Reading the prost ONNX messages: node attributes and initializer tensors.

use sextant_onnx_proto as pb;

use crate::error::Error;
use crate::tensor::{ElemType, Labels, Tensor, TensorData};
use pb::tensor_proto::DataType;

/// The attributes of one node, looked up by name, with errors that name the attribute.
pub(crate) struct Attrs<'a> {
    node: &'a pb::NodeProto,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a pb::NodeProto) -> Self {
        Attrs { node }
    }

    fn find(&self, name: &str) -> Option<&'a pb::AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// An error about this node's operator.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::op(&self.node.op_type, message)
    }

    /// The node's operator.
    pub(crate) fn op_type(&self) -> &'a str {
        &self.node.op_type
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        self.find(name).map(|a| a.i)
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> i64 {
        self.int(name).unwrap_or(default)
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> f32 {
        self.find(name).map_or(default, |a| a.f)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.find(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    pub(crate) fn ints(&self, name: &str) -> &'a [i64] {
        self.find(name).map_or(&[], |a| a.ints.as_slice())
    }

    pub(crate) fn floats(&self, name: &str) -> &'a [f32] {
        self.find(name).map_or(&[], |a| a.floats.as_slice())
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.find(name).map_or_else(Vec::new, |a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<Tensor>, Error> {
        match self.find(name).and_then(|a| a.t.as_ref()) {
            Some(t) => tensor(t)
                .map(Some)
                .map_err(|e| self.error(format!("{name}: {e}"))),
            None => Ok(None),
        }
    }

    /// `name` as `floats`, or `name_as_tensor` (the double-precision form of the ONNX-ML
    /// operators), widened to `f64`.
    pub(crate) fn floats_or_tensor(&self, name: &str) -> Result<Vec<f64>, Error> {
        if let Some(t) = self.tensor(&format!("{name}_as_tensor"))? {
            return t.to_f64_vec(&self.node.op_type);
        }
        Ok(self.floats(name).iter().map(|&v| f64::from(v)).collect())
    }

    /// `classlabels_<ints>` or `classlabels_strings`, whichever the node has.
    pub(crate) fn labels(&self, ints: &str) -> Option<Labels> {
        let strings = self.strings("classlabels_strings");
        if !strings.is_empty() {
            return Some(Labels::Str(strings));
        }
        let ints = self.ints(ints);
        (!ints.is_empty()).then(|| Labels::Int(ints.to_vec()))
    }
}

/// The element type of an ONNX data type code, if this engine handles it.
pub(crate) fn elem_type(code: i32) -> Option<ElemType> {
    match DataType::try_from(code).ok()? {
        DataType::Float => Some(ElemType::F32),
        DataType::Double => Some(ElemType::F64),
        DataType::Int64 | DataType::Int32 => Some(ElemType::I64),
        DataType::String => Some(ElemType::Str),
        DataType::Bool => Some(ElemType::Bool),
        _ => None,
    }
}

/// An initializer or attribute tensor as a [`Tensor`]. Integers of 32 bits are widened to
/// `int64`, the one integer type this engine computes with.
pub(crate) fn tensor(t: &pb::TensorProto) -> Result<Tensor, Error> {
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(Error::InvalidModel(format!(
            "tensor {:?} keeps its data in an external file, which is not supported",
            t.name
        )));
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::InvalidModel(format!("tensor {:?} has a negative dimension", t.name))
        })?;
    let raw = &t.raw_data;
    let data = match DataType::try_from(t.data_type).ok() {
        Some(DataType::Float) if raw.is_empty() => TensorData::F32(t.float_data.clone()),
        Some(DataType::Float) => TensorData::F32(le_chunks(raw, f32::from_le_bytes)),
        Some(DataType::Double) if raw.is_empty() => TensorData::F64(t.double_data.clone()),
        Some(DataType::Double) => TensorData::F64(le_chunks(raw, f64::from_le_bytes)),
        Some(DataType::Int64) if raw.is_empty() => TensorData::I64(t.int64_data.clone()),
        Some(DataType::Int64) => TensorData::I64(le_chunks(raw, i64::from_le_bytes)),
        Some(DataType::Int32) if raw.is_empty() => {
            TensorData::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
        }
        Some(DataType::Int32) => TensorData::I64(
            le_chunks(raw, i32::from_le_bytes)
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        Some(DataType::Bool) if raw.is_empty() => {
            TensorData::Bool(t.int32_data.iter().map(|&v| v != 0).collect())
        }
        Some(DataType::Bool) => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
        Some(DataType::String) => TensorData::Str(
            t.string_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        _ => {
            return Err(Error::InvalidModel(format!(
                "tensor {:?} has unsupported data type {}",
                t.name, t.data_type
            )));
        }
    };
    Tensor::new(shape, data).map_err(|e| Error::InvalidModel(format!("tensor {:?}: {e}", t.name)))
}

/// Little-endian values of `N` bytes each; a trailing partial value is a malformed tensor,
/// which [`Tensor::new`] then reports as an element-count mismatch.
fn le_chunks<T, const N: usize>(raw: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            from(b)
        })
        .collect()
}
