//! The ONNX-ML preprocessing operators scikit-learn pipelines become: `Scaler`, `Imputer`,
//! `Binarizer`, `Normalizer`, `OneHotEncoder`, `LabelEncoder`, `CategoryMapper`,
//! `ArrayFeatureExtractor`, `FeatureVectorizer`, and `ZipMap`.

use std::collections::HashMap;

use super::{Op, input_tensor};
use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Labels, Records, Tensor, TensorData, Value};

/// A per-column parameter: one value for all columns or one per column.
fn per_column<'a, T>(
    op: &str,
    what: &str,
    values: &'a [T],
    columns: usize,
) -> Result<&'a [T], Error> {
    if values.len() == 1 || values.len() == columns {
        Ok(values)
    } else {
        Err(Error::op(
            op,
            format!("{} {what} for {columns} input columns", values.len()),
        ))
    }
}

fn at<T: Copy>(values: &[T], j: usize) -> T {
    values[if values.len() == 1 { 0 } else { j }]
}

/// `Scaler`: `(x − offset) · scale` per column, in float.
#[derive(Debug)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let (offset, scale) = (
            attrs.floats("offset").to_vec(),
            attrs.floats("scale").to_vec(),
        );
        if offset.is_empty() || scale.is_empty() {
            return Err(attrs.error("needs offset and scale"));
        }
        Ok(Box::new(Scaler { offset, scale }))
    }
}

impl Op for Scaler {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Scaler";
        let x = input_tensor(op, inputs, 0)?;
        let (_, c) = x.rows_cols();
        let offset = per_column(op, "offsets", &self.offset, c)?;
        let scale = per_column(op, "scales", &self.scale, c)?;
        let mut v = x.to_f32_vec(op)?;
        for (i, e) in v.iter_mut().enumerate() {
            let j = i % c.max(1);
            *e = (*e - at(offset, j)) * at(scale, j);
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            x.shape().to_vec(),
            TensorData::F32(v),
        ))])
    }
}

/// `Imputer`: replaces `replaced_value` (NaN by default for floats) by a per-column value.
#[derive(Debug)]
pub(crate) struct Imputer {
    floats: Vec<f32>,
    replaced_float: f32,
    ints: Vec<i64>,
    replaced_int: i64,
}

impl Imputer {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let imputer = Imputer {
            floats: attrs.floats("imputed_value_floats").to_vec(),
            replaced_float: attrs.float_or("replaced_value_float", 0.0),
            ints: attrs.ints("imputed_value_int64s").to_vec(),
            replaced_int: attrs.int_or("replaced_value_int64", 0),
        };
        if imputer.floats.is_empty() && imputer.ints.is_empty() {
            return Err(attrs.error("needs imputed_value_floats or imputed_value_int64s"));
        }
        Ok(Box::new(imputer))
    }
}

impl Op for Imputer {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Imputer";
        let x = input_tensor(op, inputs, 0)?;
        let (_, c) = x.rows_cols();
        let c = c.max(1);
        let data = match x.data() {
            TensorData::I64(v) => {
                let with = per_column(op, "imputed int64 values", &self.ints, c)?;
                let out = v.iter().enumerate().map(|(i, &e)| {
                    if e == self.replaced_int {
                        at(with, i % c)
                    } else {
                        e
                    }
                });
                TensorData::I64(out.collect())
            }
            _ => {
                let with = per_column(op, "imputed float values", &self.floats, c)?;
                let nan = self.replaced_float.is_nan();
                let mut v = x.to_f32_vec(op)?;
                for (i, e) in v.iter_mut().enumerate() {
                    if (nan && e.is_nan()) || *e == self.replaced_float {
                        *e = at(with, i % c);
                    }
                }
                TensorData::F32(v)
            }
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(
            x.shape().to_vec(),
            data,
        ))])
    }
}

/// `Binarizer`: 1 where `x > threshold`, else 0.
#[derive(Debug)]
pub(crate) struct Binarizer {
    threshold: f32,
}

impl Binarizer {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(Binarizer {
            threshold: attrs.float_or("threshold", 0.0),
        }))
    }
}

impl Op for Binarizer {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor("Binarizer", inputs, 0)?;
        let t = self.threshold;
        let data = match x.data() {
            TensorData::F64(v) => TensorData::F64(
                v.iter()
                    .map(|&e| f64::from(u8::from(e > f64::from(t))))
                    .collect(),
            ),
            _ => {
                let v = x.to_f32_vec("Binarizer")?;
                TensorData::F32(v.iter().map(|&e| f32::from(u8::from(e > t))).collect())
            }
        };
        Ok(vec![Value::Tensor(Tensor::from_parts(
            x.shape().to_vec(),
            data,
        ))])
    }
}

/// `Normalizer`: each row divided by its `MAX`, `L1` or `L2` norm.
#[derive(Debug)]
pub(crate) struct Normalizer {
    norm: Norm,
}

#[derive(Debug, Clone, Copy)]
enum Norm {
    Max,
    L1,
    L2,
}

impl Normalizer {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let norm = match attrs.string_or("norm", "MAX").as_str() {
            "MAX" => Norm::Max,
            "L1" => Norm::L1,
            "L2" => Norm::L2,
            other => return Err(attrs.error(format!("unknown norm {other:?}"))),
        };
        Ok(Box::new(Normalizer { norm }))
    }
}

impl Op for Normalizer {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "Normalizer";
        let x = input_tensor(op, inputs, 0)?;
        let (_, c) = x.rows_cols();
        let mut v = x.to_f32_vec(op)?;
        for row in v.chunks_exact_mut(c.max(1)) {
            let d = match self.norm {
                Norm::Max => row.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                Norm::L1 => row.iter().map(|e| e.abs()).sum(),
                Norm::L2 => row.iter().map(|e| e * e).sum::<f32>().sqrt(),
            };
            if d != 0.0 {
                row.iter_mut().for_each(|e| *e /= d);
            }
        }
        let (n, c) = x.rows_cols();
        Ok(vec![Value::Tensor(Tensor::from_parts(
            vec![n, c],
            TensorData::F32(v),
        ))])
    }
}

/// A category vocabulary of integers or strings, looked up by value.
#[derive(Debug)]
enum Vocabulary {
    Int(HashMap<i64, usize>),
    Str(HashMap<String, usize>),
}

impl Vocabulary {
    /// The index of element `i` of `x`, or `None` when it is not in the vocabulary.
    fn lookup(&self, op: &str, x: &Tensor) -> Result<Vec<Option<usize>>, Error> {
        Ok(match (self, x.data()) {
            (Vocabulary::Str(m), TensorData::Str(v)) => {
                v.iter().map(|s| m.get(s).copied()).collect()
            }
            (Vocabulary::Int(m), TensorData::I64(v)) => {
                v.iter().map(|i| m.get(i).copied()).collect()
            }
            (Vocabulary::Int(m), _) => {
                // Float categories: onnxruntime casts them to int64.
                let v = x.to_f64_vec(op)?;
                v.iter().map(|&f| m.get(&(f as i64)).copied()).collect()
            }
            (Vocabulary::Str(_), _) => {
                return Err(Error::op(
                    op,
                    format!("string categories, {} input", x.elem_type()),
                ));
            }
        })
    }
}

fn index_of<K: std::hash::Hash + Eq + Clone>(keys: &[K]) -> HashMap<K, usize> {
    // The first occurrence wins, as a linear search would find it.
    let mut m = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        m.entry(k.clone()).or_insert(i);
    }
    m
}

/// `OneHotEncoder`: appends a dimension of one column per category.
#[derive(Debug)]
pub(crate) struct OneHotEncoder {
    vocabulary: Vocabulary,
    width: usize,
    zeros: bool,
}

impl OneHotEncoder {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let strings = attrs.strings("cats_strings");
        let ints = attrs.ints("cats_int64s");
        let (vocabulary, width) = match (strings.is_empty(), ints.is_empty()) {
            (false, _) => (Vocabulary::Str(index_of(&strings)), strings.len()),
            (true, false) => (Vocabulary::Int(index_of(ints)), ints.len()),
            (true, true) => return Err(attrs.error("needs cats_strings or cats_int64s")),
        };
        Ok(Box::new(OneHotEncoder {
            vocabulary,
            width,
            zeros: attrs.int_or("zeros", 1) != 0,
        }))
    }
}

impl Op for OneHotEncoder {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "OneHotEncoder";
        let x = input_tensor(op, inputs, 0)?;
        let found = self.vocabulary.lookup(op, x)?;
        let mut out = vec![0.0f32; found.len() * self.width];
        for (i, f) in found.iter().enumerate() {
            match f {
                Some(j) => out[i * self.width + j] = 1.0,
                None if self.zeros => {}
                None => {
                    return Err(Error::op(
                        op,
                        format!("element {i} is not a known category"),
                    ));
                }
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(self.width);
        Ok(vec![Value::Tensor(Tensor::from_parts(
            shape,
            TensorData::F32(out),
        ))])
    }
}

/// What a lookup table maps to, with the default for keys it lacks.
#[derive(Debug)]
enum Targets {
    Int(Vec<i64>, i64),
    Str(Vec<String>, String),
    Float(Vec<f32>, f32),
}

impl Targets {
    fn pick(&self, shape: Vec<usize>, found: &[Option<usize>]) -> Tensor {
        let data = match self {
            Targets::Int(v, d) => {
                TensorData::I64(found.iter().map(|f| f.map_or(*d, |i| v[i])).collect())
            }
            Targets::Float(v, d) => {
                TensorData::F32(found.iter().map(|f| f.map_or(*d, |i| v[i])).collect())
            }
            Targets::Str(v, d) => TensorData::Str(
                found
                    .iter()
                    .map(|f| f.map_or_else(|| d.clone(), |i| v[i].clone()))
                    .collect(),
            ),
        };
        Tensor::from_parts(shape, data)
    }

    fn len(&self) -> usize {
        match self {
            Targets::Int(v, _) => v.len(),
            Targets::Str(v, _) => v.len(),
            Targets::Float(v, _) => v.len(),
        }
    }
}

/// `LabelEncoder` (ai.onnx.ml 2+): maps each key to its value, unknown keys to the default.
#[derive(Debug)]
pub(crate) struct LabelEncoder {
    keys: Vocabulary,
    values: Targets,
}

impl LabelEncoder {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let key_strings = attrs.strings("keys_strings");
        let key_ints = attrs.ints("keys_int64s");
        let (keys, n) = if !key_strings.is_empty() {
            (Vocabulary::Str(index_of(&key_strings)), key_strings.len())
        } else if !key_ints.is_empty() {
            (Vocabulary::Int(index_of(key_ints)), key_ints.len())
        } else {
            return Err(attrs.error(
                "needs keys_strings or keys_int64s (float and tensor keys are not supported)",
            ));
        };
        let value_strings = attrs.strings("values_strings");
        let values = if !value_strings.is_empty() {
            Targets::Str(value_strings, attrs.string_or("default_string", "_Unused"))
        } else if attrs.has("values_int64s") {
            Targets::Int(
                attrs.ints("values_int64s").to_vec(),
                attrs.int_or("default_int64", -1),
            )
        } else if attrs.has("values_floats") {
            Targets::Float(
                attrs.floats("values_floats").to_vec(),
                attrs.float_or("default_float", -0.0),
            )
        } else {
            return Err(attrs.error("needs values_strings, values_int64s or values_floats"));
        };
        if values.len() != n {
            return Err(attrs.error(format!("{n} keys but {} values", values.len())));
        }
        Ok(Box::new(LabelEncoder { keys, values }))
    }
}

impl Op for LabelEncoder {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let x = input_tensor("LabelEncoder", inputs, 0)?;
        let found = self.keys.lookup("LabelEncoder", x)?;
        Ok(vec![Value::Tensor(
            self.values.pick(x.shape().to_vec(), &found),
        )])
    }
}

/// `CategoryMapper`: strings to their index in `cats_strings` (as the matching
/// `cats_int64s`), or integers back to strings.
#[derive(Debug)]
pub(crate) struct CategoryMapper {
    to_int: (Vocabulary, Targets),
    to_str: (Vocabulary, Targets),
}

impl CategoryMapper {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let strings = attrs.strings("cats_strings");
        let ints = attrs.ints("cats_int64s").to_vec();
        if strings.len() != ints.len() || strings.is_empty() {
            return Err(
                attrs.error("cats_strings and cats_int64s must be non-empty and equally long")
            );
        }
        let default_int = attrs.int_or("default_int64", -1);
        let default_str = attrs.string_or("default_string", "_Unused");
        Ok(Box::new(CategoryMapper {
            to_int: (
                Vocabulary::Str(index_of(&strings)),
                Targets::Int(ints.clone(), default_int),
            ),
            to_str: (
                Vocabulary::Int(index_of(&ints)),
                Targets::Str(strings, default_str),
            ),
        }))
    }
}

impl Op for CategoryMapper {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "CategoryMapper";
        let x = input_tensor(op, inputs, 0)?;
        let (keys, values) = match x.data() {
            TensorData::Str(_) => &self.to_int,
            _ => &self.to_str,
        };
        let found = keys.lookup(op, x)?;
        Ok(vec![Value::Tensor(values.pick(x.shape().to_vec(), &found))])
    }
}

/// `ArrayFeatureExtractor`: the columns of `X` (last axis) listed in the int64 input `Y`.
#[derive(Debug)]
pub(crate) struct ArrayFeatureExtractor;

impl ArrayFeatureExtractor {
    pub(crate) fn build(_: &Attrs) -> Result<Box<dyn Op>, Error> {
        Ok(Box::new(ArrayFeatureExtractor))
    }
}

impl Op for ArrayFeatureExtractor {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "ArrayFeatureExtractor";
        let x = input_tensor(op, inputs, 0)?;
        let y = input_tensor(op, inputs, 1)?;
        let indices = y
            .as_i64()
            .ok_or_else(|| Error::op(op, "indices must be int64"))?;
        let c = *x.shape().last().unwrap_or(&1);
        let cols: Vec<usize> = indices
            .iter()
            .map(|&i| usize::try_from(i).ok().filter(|&i| i < c))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::op(op, format!("an index in {indices:?} is outside 0..{c}")))?;
        let mut shape = x.shape().to_vec();
        if shape.len() <= 1 {
            shape = vec![1, cols.len()];
        } else if let Some(last) = shape.last_mut() {
            *last = cols.len();
        }
        let data = super::shape::gather_columns(x.data(), c, &cols);
        Ok(vec![Value::Tensor(Tensor::from_parts(shape, data))])
    }
}

/// `FeatureVectorizer`: concatenates its inputs' columns into one float matrix, each input
/// cut or zero-padded to its `inputdimensions` entry.
#[derive(Debug)]
pub(crate) struct FeatureVectorizer {
    dims: Vec<usize>,
}

impl FeatureVectorizer {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let dims = attrs
            .ints("inputdimensions")
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| attrs.error("negative inputdimensions"))?;
        Ok(Box::new(FeatureVectorizer { dims }))
    }
}

impl Op for FeatureVectorizer {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "FeatureVectorizer";
        if inputs.len() != self.dims.len() {
            return Err(Error::op(
                op,
                format!(
                    "{} inputs for {} inputdimensions",
                    inputs.len(),
                    self.dims.len()
                ),
            ));
        }
        let parts = (0..inputs.len())
            .map(|i| {
                let t = input_tensor(op, inputs, i)?;
                Ok((t.rows_cols(), t.to_f32_vec(op)?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let n = parts.first().map_or(0, |((n, _), _)| *n);
        let width: usize = self.dims.iter().sum();
        let mut out = vec![0.0f32; n * width];
        let mut offset = 0;
        for (((rows, c), v), &d) in parts.iter().zip(&self.dims) {
            if *rows != n {
                return Err(Error::op(op, "inputs differ in number of rows"));
            }
            for r in 0..n {
                let take = d.min(*c);
                out[r * width + offset..r * width + offset + take]
                    .copy_from_slice(&v[r * c..r * c + take]);
            }
            offset += d;
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            vec![n, width],
            TensorData::F32(out),
        ))])
    }
}

/// `ZipMap`: `[N, C]` probabilities to one map per row from class label to probability.
#[derive(Debug)]
pub(crate) struct ZipMap {
    keys: Labels,
}

impl ZipMap {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let keys = attrs
            .labels("classlabels_int64s")
            .ok_or_else(|| attrs.error("no classlabels_int64s or classlabels_strings"))?;
        Ok(Box::new(ZipMap { keys }))
    }
}

impl Op for ZipMap {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "ZipMap";
        let x = input_tensor(op, inputs, 0)?;
        let (_, c) = x.rows_cols();
        if c != self.keys.len() {
            return Err(Error::op(
                op,
                format!("{} labels for {c} columns", self.keys.len()),
            ));
        }
        Ok(vec![Value::Records(Records {
            keys: self.keys.clone(),
            values: x.to_f32_vec(op)?,
        })])
    }
}
