//! One cell at a time: a JSON (or CSV text) value checked against what the
//! column or graph input takes and collected, cast, into a tensor's elements.

use serde_json::Value;
use sextant_onnx::{ElemType, TensorData};

use super::table::Column;
use crate::error::InputError;
use crate::protocol::json_kind;
use crate::signature::ColType;

/// What a cell must hold, from the column type or else the graph's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Float,
    Int,
    Str,
    Bool,
}

impl Expect {
    pub(super) fn of_col(t: ColType) -> Expect {
        match t {
            ColType::Float | ColType::Double => Expect::Float,
            ColType::Integer | ColType::Long => Expect::Int,
            ColType::String => Expect::Str,
            ColType::Boolean => Expect::Bool,
        }
    }

    pub(super) fn of_elem(e: ElemType) -> Expect {
        match e {
            ElemType::F32 | ElemType::F64 => Expect::Float,
            ElemType::I64 => Expect::Int,
            ElemType::Str => Expect::Str,
            ElemType::Bool => Expect::Bool,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Expect::Float => "a number",
            Expect::Int => "an integer",
            Expect::Str => "a string",
            Expect::Bool => "a boolean",
        }
    }
}

/// Typed elements being collected for one tensor.
pub(super) enum Builder {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
    Bool(Vec<bool>),
}

impl Builder {
    pub(super) fn new(elem: ElemType, capacity: usize) -> Builder {
        match elem {
            ElemType::F32 => Builder::F32(Vec::with_capacity(capacity)),
            ElemType::F64 => Builder::F64(Vec::with_capacity(capacity)),
            ElemType::I64 => Builder::I64(Vec::with_capacity(capacity)),
            ElemType::Str => Builder::Str(Vec::with_capacity(capacity)),
            ElemType::Bool => Builder::Bool(Vec::with_capacity(capacity)),
        }
    }

    pub(super) fn finish(self) -> TensorData {
        match self {
            Builder::F32(v) => TensorData::F32(v),
            Builder::F64(v) => TensorData::F64(v),
            Builder::I64(v) => TensorData::I64(v),
            Builder::Str(v) => TensorData::Str(v),
            Builder::Bool(v) => TensorData::Bool(v),
        }
    }

    /// Adds cell `col` of row `r`, checked against the column's type.
    pub(super) fn push_cell(
        &mut self,
        row: &[Value],
        col: &Column,
        r: usize,
        elem: ElemType,
        text: bool,
    ) -> Result<(), InputError> {
        let value = col.index.and_then(|i| row.get(i)).unwrap_or(&Value::Null);
        let expect = col.expect.map_or(Expect::of_elem(elem), |(e, _)| e);
        self.push(value, expect, text).map_err(|got| {
            let wanted = match col.expect {
                Some((_, ty)) => format!("{} ({})", expect.describe(), ty.as_str()),
                None => expect.describe().to_owned(),
            };
            InputError::schema(format!(
                "column {:?}, row {r}: expected {wanted}, got {got}",
                col.name
            ))
        })
    }

    /// Adds one element; on refusal, says what the value was.
    pub(super) fn push(&mut self, v: &Value, expect: Expect, text: bool) -> Result<(), String> {
        let scalar = scalar(v, expect, text)?;
        match (self, scalar) {
            (Builder::F32(out), Scalar::F(x)) => out.push(x as f32),
            (Builder::F32(out), Scalar::I(x)) => out.push(x as f32),
            (Builder::F32(out), Scalar::B(x)) => out.push(f32::from(u8::from(x))),
            (Builder::F64(out), Scalar::F(x)) => out.push(x),
            (Builder::F64(out), Scalar::I(x)) => out.push(x as f64),
            (Builder::F64(out), Scalar::B(x)) => out.push(f64::from(u8::from(x))),
            (Builder::I64(out), Scalar::I(x)) => out.push(x),
            (Builder::I64(out), Scalar::B(x)) => out.push(i64::from(x)),
            (Builder::I64(out), Scalar::F(x)) => {
                if x.fract() != 0.0 || !x.is_finite() {
                    return Err(format!("{x}, which the model's integer input cannot take"));
                }
                out.push(x as i64)
            }
            (Builder::Str(out), Scalar::S(s)) => out.push(s),
            (Builder::Bool(out), Scalar::B(x)) => out.push(x),
            (Builder::Bool(out), Scalar::I(x)) if x == 0 || x == 1 => out.push(x == 1),
            (b, s) => {
                let target = match b {
                    Builder::F32(_) | Builder::F64(_) => "a number",
                    Builder::I64(_) => "an integer",
                    Builder::Str(_) => "a string",
                    Builder::Bool(_) => "a boolean",
                };
                return Err(format!(
                    "{}, which the model's input (that takes {target}) cannot take",
                    s.describe()
                ));
            }
        }
        Ok(())
    }
}

/// A checked cell.
enum Scalar {
    F(f64),
    I(i64),
    S(String),
    B(bool),
}

impl Scalar {
    fn describe(&self) -> String {
        match self {
            Scalar::F(x) => format!("the number {x}"),
            Scalar::I(x) => format!("the integer {x}"),
            Scalar::S(s) => format!("the string {s:?}"),
            Scalar::B(b) => format!("the boolean {b}"),
        }
    }
}

/// Reads a cell as `expect`; `null` (and an empty CSV cell) is a missing number, NaN.
fn scalar(v: &Value, expect: Expect, text: bool) -> Result<Scalar, String> {
    let got = || match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        other => json_kind(other).to_owned(),
    };
    match (expect, v) {
        (Expect::Float, Value::Number(n)) => Ok(Scalar::F(n.as_f64().unwrap_or(f64::NAN))),
        (Expect::Float, Value::Null) => Ok(Scalar::F(f64::NAN)),
        (Expect::Float, Value::String(s)) if text => {
            let s = s.trim();
            if s.is_empty() {
                Ok(Scalar::F(f64::NAN))
            } else {
                s.parse().map(Scalar::F).map_err(|_| got())
            }
        }
        (Expect::Int, Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Scalar::I(i)),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Scalar::I(f as i64)),
                _ => Err(got()),
            },
        },
        (Expect::Int, Value::String(s)) if text => {
            s.trim().parse().map(Scalar::I).map_err(|_| got())
        }
        (Expect::Str, Value::String(s)) => Ok(Scalar::S(s.clone())),
        (Expect::Bool, Value::Bool(b)) => Ok(Scalar::B(*b)),
        (Expect::Bool, Value::String(s)) if text => match s.trim() {
            "true" | "True" | "TRUE" | "1" => Ok(Scalar::B(true)),
            "false" | "False" | "FALSE" | "0" => Ok(Scalar::B(false)),
            _ => Err(got()),
        },
        _ => Err(got()),
    }
}
