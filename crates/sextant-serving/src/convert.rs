//! Turning a decoded request into the ONNX model's input tensors, with the model's
//! signature: columns put in signature order, cells checked against the column types and
//! cast to the graph's element types, tensor shapes checked against the tensor specs.
//! Every refusal is an [`InputError`] naming the column, input or shape at fault.

use serde_json::Value;
use sextant_onnx::{ElemType, Tensor, TensorData, ValueInfo, ValueKind};

use super::error::{InputError, LoadError};
use super::protocol::{Frame, JsonTensor, Payload, json_kind};
use super::signature::{ColSpec, ColType, Schema, Signature, TensorSpec, tuple};

/// One tensor input of the graph.
#[derive(Debug, Clone)]
struct GraphInput {
    name: String,
    elem: ElemType,
    /// Declared rank, when the graph declares a shape.
    rank: Option<usize>,
}

/// What a request's data became: the graph's inputs, and whether the answer is MLflow's
/// table form (one record per row) or one whole value per output.
#[derive(Debug)]
pub struct Converted {
    /// One tensor per graph input, by name.
    pub tensors: Vec<(String, Tensor)>,
    /// The data reached the model as a table, so MLflow's ONNX flavor answers one record
    /// per row (a pandas DataFrame of the outputs); otherwise one value per output.
    pub records: bool,
    /// Rows in the request.
    pub rows: usize,
    /// Columns of the request that the column signature does not name, which were ignored.
    pub ignored: Vec<String>,
}

/// How a model's requests are converted; built once at load, where a signature that does
/// not fit the graph is refused.
#[derive(Debug, Clone)]
pub struct InputPlan {
    /// The signature's kind.
    kind: Kind,
    /// A column signature's columns.
    columns: Option<Vec<ColSpec>>,
    tensors: Vec<TensorSpec>,
    inputs: Vec<GraphInput>,
}

/// The kind of a model's input signature, which decides how MLflow reads a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No signature: a table reaches the model as it was sent (columns in the order given,
    /// or by name for a graph with several inputs) and is answered as a table.
    None,
    /// Columns with names: a table is matched to them by name.
    NamedColumns,
    /// Columns without names: a table is taken by position.
    UnnamedColumns,
    /// Tensors: a table is turned into a tensor by position and answered as tensors.
    Tensors,
}

/// What a cell must hold, from the column type or else the graph's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Float,
    Int,
    Str,
    Bool,
}

impl Expect {
    fn of_col(t: ColType) -> Expect {
        match t {
            ColType::Float | ColType::Double => Expect::Float,
            ColType::Integer | ColType::Long => Expect::Int,
            ColType::String => Expect::Str,
            ColType::Boolean => Expect::Bool,
        }
    }

    fn of_elem(e: ElemType) -> Expect {
        match e {
            ElemType::F32 | ElemType::F64 => Expect::Float,
            ElemType::I64 => Expect::Int,
            ElemType::Str => Expect::Str,
            ElemType::Bool => Expect::Bool,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expect::Float => "a number",
            Expect::Int => "an integer",
            Expect::Str => "a string",
            Expect::Bool => "a boolean",
        }
    }
}

impl InputPlan {
    /// Checks the signature against the graph's inputs.
    pub fn new(signature: &Signature, graph_inputs: &[ValueInfo]) -> Result<InputPlan, LoadError> {
        let inputs = graph_inputs
            .iter()
            .map(|v| match &v.kind {
                ValueKind::Tensor { elem, shape } => Ok(GraphInput {
                    name: v.name.clone(),
                    elem: *elem,
                    rank: shape.as_ref().map(Vec::len),
                }),
                ValueKind::Records | ValueKind::Unknown => Err(LoadError::Mismatch(format!(
                    "graph input {:?} is not a tensor",
                    v.name
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if inputs.is_empty() {
            return Err(LoadError::Mismatch("the graph has no inputs".into()));
        }
        let (kind, columns, tensors) = match &signature.inputs {
            Schema::None => (Kind::None, None, Vec::new()),
            Schema::Columns(c) if c.iter().all(|c| c.name.is_some()) => {
                (Kind::NamedColumns, Some(c.clone()), Vec::new())
            }
            Schema::Columns(c) => (Kind::UnnamedColumns, Some(c.clone()), Vec::new()),
            Schema::Tensors(t) => (Kind::Tensors, None, t.clone()),
        };
        if let Some(cols) = &columns
            && inputs.len() > 1
        {
            for input in &inputs {
                if !cols.iter().any(|c| c.name.as_deref() == Some(&input.name)) {
                    return Err(LoadError::Mismatch(format!(
                        "graph input {:?} has no column of that name in the signature",
                        input.name
                    )));
                }
            }
        }
        if let [input] = inputs.as_slice()
            && let Some(cols) = &columns
            && cols.iter().any(|c| c.ty == ColType::String)
            && input.elem != ElemType::Str
            && cols.len() > 1
        {
            return Err(LoadError::Mismatch(format!(
                "the signature has string columns but the single graph input {:?} is {}",
                input.name, input.elem
            )));
        }
        Ok(InputPlan {
            kind,
            columns,
            tensors,
            inputs,
        })
    }

    /// The graph's input names.
    fn input_names(&self) -> String {
        names(self.inputs.iter().map(|i| i.name.as_str()))
    }

    /// The signature's column names.
    fn column_names(&self) -> String {
        names(
            self.columns
                .iter()
                .flatten()
                .filter_map(|c| c.name.as_deref()),
        )
    }

    /// Converts a request's data.
    pub fn convert(&self, payload: Payload) -> Result<Converted, InputError> {
        match payload {
            Payload::Frame(frame) => self.frame(frame),
            Payload::Tensor(t) => self.bare_tensor(t),
            Payload::Named(named) => self.named(named),
        }
    }

    /// One unnamed tensor (`inputs` or `instances` as a list), always taken by position.
    fn bare_tensor(&self, t: JsonTensor) -> Result<Converted, InputError> {
        if let Some(cols) = &self.columns {
            // MLflow refuses a list for a column signature ("Failed to enforce schema");
            // Sextant reads its rows as the signature's columns in order, when they fit.
            let fits = match t.shape.as_slice() {
                [_, width] => *width == cols.len(),
                [_] => cols.len() == 1,
                _ => false,
            };
            if !fits {
                return Err(InputError::schema(format!(
                    "the input has shape {}; the model takes rows of {} values, its columns {} \
                     in that order (or send a table naming them)",
                    tuple(t.shape.iter().map(usize::to_string)),
                    cols.len(),
                    self.column_names()
                )));
            }
            let order = self.signature_order(cols);
            let frame = positional_frame(t);
            let mut c = self.build(&frame, &order, Vec::new())?;
            c.records = false;
            return Ok(c);
        }
        let [input] = self.inputs.as_slice() else {
            return Err(InputError::schema(format!(
                "the model has {} inputs ({}); send \"inputs\" as an object of name to tensor",
                self.inputs.len(),
                self.input_names()
            )));
        };
        let rows = t.rows();
        let spec = self.tensors.first();
        let tensor = self.tensor(input, spec, t)?;
        Ok(Converted {
            tensors: vec![(input.name.clone(), tensor)],
            records: false,
            rows,
            ignored: Vec::new(),
        })
    }

    fn named(&self, named: Vec<(String, JsonTensor)>) -> Result<Converted, InputError> {
        // With a named column signature an object is a table of columns (MLflow's schema
        // enforcement turns such a dict into a DataFrame), unless it names the graph's
        // inputs rather than columns (a Sextant extension: tensors fed by name).
        if self.kind == Kind::NamedColumns {
            let is_column = |n: &str| {
                self.columns
                    .iter()
                    .flatten()
                    .any(|c| c.name.as_deref() == Some(n))
            };
            let graph_inputs = named
                .iter()
                .all(|(n, _)| self.inputs.iter().any(|i| &i.name == n))
                && !named.iter().all(|(n, _)| is_column(n));
            if !graph_inputs {
                return self.frame(columnar_frame(named)?);
            }
        }
        let all_inputs = named
            .iter()
            .all(|(n, _)| self.inputs.iter().any(|i| &i.name == n));
        if !all_inputs {
            let unknown: Vec<&str> = named
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !self.inputs.iter().any(|i| i.name == *n))
                .collect();
            return Err(InputError::schema(format!(
                "unknown inputs {}; the model's inputs are {}",
                names(unknown.into_iter()),
                self.input_names()
            )));
        }
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !named.iter().any(|(m, _)| m == n))
            .collect();
        if !missing.is_empty() {
            return Err(InputError::schema(format!(
                "Model is missing inputs {}",
                names(missing.into_iter())
            )));
        }
        let rows = named.first().map_or(0, |(_, t)| t.rows());
        let mut tensors = Vec::with_capacity(named.len());
        for (name, t) in named {
            let input = self
                .inputs
                .iter()
                .find(|i| i.name == name)
                .expect("checked above");
            let spec = match self.tensors.as_slice() {
                [only] if self.inputs.len() == 1 => Some(only),
                specs => specs.iter().find(|s| s.name.as_deref() == Some(&name)),
            };
            tensors.push((name, self.tensor(input, spec, t)?));
        }
        Ok(Converted {
            tensors,
            records: false,
            rows,
            ignored: Vec::new(),
        })
    }

    /// One tensor, checked against its spec and cast to the graph's element type.
    fn tensor(
        &self,
        input: &GraphInput,
        spec: Option<&TensorSpec>,
        t: JsonTensor,
    ) -> Result<Tensor, InputError> {
        if let Some(spec) = spec
            && !spec.accepts(&t.shape)
        {
            return Err(shape_mismatch(&t.shape, spec));
        }
        let expect = Expect::of_elem(input.elem);
        let mut out = Builder::new(input.elem, t.data.len());
        for (i, v) in t.data.iter().enumerate() {
            out.push(v, expect, false).map_err(|got| {
                InputError::schema(format!(
                    "input {:?}, element {i}: expected {}, got {got}",
                    input.name,
                    expect.describe()
                ))
            })?;
        }
        Tensor::new(t.shape, out.finish()).map_err(|e| InputError::schema(e.to_string()))
    }

    /// A table: its columns resolved against the signature as MLflow does, then converted.
    fn frame(&self, frame: Frame) -> Result<Converted, InputError> {
        let (order, ignored) = self.column_order(&frame)?;
        let mut converted = self.build(&frame, &order, ignored)?;
        // With a tensor signature MLflow turns the table into a tensor before the model
        // sees it, and answers tensors.
        converted.records = self.kind != Kind::Tensors;
        Ok(converted)
    }

    /// The tensors of `frame`'s columns `order`: one `[N, C]` tensor for a single-input
    /// graph, or one `[N, 1]` column per input by name.
    fn build(
        &self,
        frame: &Frame,
        order: &[Column],
        ignored: Vec<String>,
    ) -> Result<Converted, InputError> {
        let rows = frame.rows.len();
        let tensors = if let [input] = self.inputs.as_slice() {
            if let Some(spec) = self.tensors.first() {
                let shape = [rows, order.len()];
                if order.len() != 1 && !spec.accepts(&shape) {
                    return Err(shape_mismatch(&shape, spec));
                }
            }
            let mut out = Builder::new(input.elem, rows * order.len());
            for (r, row) in frame.rows.iter().enumerate() {
                for col in order {
                    out.push_cell(row, col, r, input.elem, frame.text_cells)?;
                }
            }
            let shape = if input.rank == Some(1) && order.len() == 1 {
                vec![rows]
            } else {
                vec![rows, order.len()]
            };
            vec![(
                input.name.clone(),
                Tensor::new(shape, out.finish()).map_err(|e| InputError::schema(e.to_string()))?,
            )]
        } else {
            let mut tensors = Vec::with_capacity(self.inputs.len());
            let mut missing = Vec::new();
            for input in &self.inputs {
                let Some(col) = order.iter().find(|c| c.name == input.name) else {
                    missing.push(input.name.as_str());
                    continue;
                };
                let mut out = Builder::new(input.elem, rows);
                for (r, row) in frame.rows.iter().enumerate() {
                    out.push_cell(row, col, r, input.elem, frame.text_cells)?;
                }
                let shape = if input.rank == Some(1) {
                    vec![rows]
                } else {
                    vec![rows, 1]
                };
                let t = Tensor::new(shape, out.finish())
                    .map_err(|e| InputError::schema(e.to_string()))?;
                tensors.push((input.name.clone(), t));
            }
            if !missing.is_empty() {
                return Err(InputError::schema(format!(
                    "Model is missing inputs {}",
                    names(missing.into_iter())
                )));
            }
            tensors
        };
        Ok(Converted {
            tensors,
            records: true,
            rows,
            ignored,
        })
    }

    /// The signature's columns, taken by position.
    fn signature_order(&self, cols: &[ColSpec]) -> Vec<Column> {
        cols.iter()
            .enumerate()
            .map(|(i, c)| Column {
                name: c.name.clone().unwrap_or_else(|| i.to_string()),
                index: Some(i),
                expect: Some((Expect::of_col(c.ty), c.ty)),
            })
            .collect()
    }

    /// The frame's columns in the order the model takes them, and the columns ignored.
    fn column_order(&self, frame: &Frame) -> Result<(Vec<Column>, Vec<String>), InputError> {
        let width = frame
            .columns
            .as_ref()
            .map_or_else(|| frame.rows.first().map_or(0, Vec::len), Vec::len);
        let cols = match (self.kind, &self.columns) {
            (Kind::NamedColumns, Some(cols)) => cols,
            (Kind::UnnamedColumns, Some(cols)) => {
                // MLflow takes the first columns by position, and needs as many as declared.
                if width < cols.len() {
                    return Err(InputError::schema(format!(
                        "the input has {width} columns; the model's signature declares {} \
                         (unnamed, so taken by position)",
                        cols.len()
                    )));
                }
                return Ok((self.signature_order(cols), Vec::new()));
            }
            _ => {
                // No column signature: the columns as sent, in the order sent.
                let order = (0..width)
                    .map(|i| Column {
                        name: frame
                            .columns
                            .as_ref()
                            .map_or_else(|| i.to_string(), |c| c[i].clone()),
                        index: Some(i),
                        expect: None,
                    })
                    .collect();
                return Ok((order, Vec::new()));
            }
        };
        let Some(given) = &frame.columns else {
            // pandas names such columns 0, 1, …, so MLflow finds none of the signature's.
            return Err(InputError::schema(format!(
                "Model is missing inputs {}: the input's columns have no names, and the \
                 model's signature takes its columns by name (send \"columns\" with \
                 dataframe_split, or the rows as \"inputs\")",
                self.column_names()
            )));
        };
        let mut order = Vec::with_capacity(cols.len());
        let mut missing = Vec::new();
        for c in cols {
            let name = c.name.clone().unwrap_or_default();
            // The last column of a repeated name, as pandas' `df[name]` on a
            // deduplicated frame would hold.
            let index = given.iter().rposition(|g| *g == name);
            if index.is_none() && c.required {
                missing.push(name.clone());
            }
            order.push(Column {
                name,
                index,
                expect: Some((Expect::of_col(c.ty), c.ty)),
            });
        }
        let mut ignored: Vec<String> = Vec::new();
        for g in given {
            if !cols.iter().any(|c| c.name.as_deref() == Some(g.as_str())) && !ignored.contains(g) {
                ignored.push(g.clone());
            }
        }
        if !missing.is_empty() {
            let mut message = format!(
                "Model is missing inputs {}",
                names(missing.iter().map(String::as_str))
            );
            if !ignored.is_empty() {
                message.push_str(&format!(
                    ". Note that there were extra inputs: {}",
                    names(ignored.iter().map(String::as_str))
                ));
            }
            return Err(InputError::schema(message));
        }
        Ok((order, ignored))
    }
}

/// MLflow's message for a tensor of the wrong shape.
fn shape_mismatch(shape: &[usize], spec: &TensorSpec) -> InputError {
    InputError::schema(format!(
        "Shape of input {} does not match expected shape {}",
        tuple(shape.iter().map(usize::to_string)),
        spec.shape_text()
    ))
}

/// A column of the request in model order: where it is in the frame (`None`: an optional
/// column the client left out) and the signature's type.
#[derive(Debug)]
struct Column {
    name: String,
    index: Option<usize>,
    expect: Option<(Expect, ColType)>,
}

/// `['a', 'b']`, the way MLflow lists names.
pub(crate) fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A `[N, C]` (or `[N]`, one column) tensor read as a table of unnamed columns.
fn positional_frame(t: JsonTensor) -> Frame {
    let width = t.shape.get(1).copied().unwrap_or(1);
    let mut rows = Vec::with_capacity(t.shape[0]);
    let mut data = t.data.into_iter();
    for _ in 0..t.shape[0] {
        rows.push(data.by_ref().take(width).collect());
    }
    Frame {
        columns: None,
        rows,
        text_cells: false,
    }
}

/// TF-serving's columnar form (`{"col": [v, …], …}`) as a table.
fn columnar_frame(named: Vec<(String, JsonTensor)>) -> Result<Frame, InputError> {
    let rows = named.first().map_or(0, |(_, t)| t.rows());
    let mut columns = Vec::with_capacity(named.len());
    let mut data = Vec::with_capacity(named.len());
    for (name, t) in named {
        let flat_column = match t.shape.as_slice() {
            [n] | [n, 1] => *n == rows,
            _ => false,
        };
        if !flat_column {
            return Err(InputError::schema(format!(
                "column {name:?} has shape {}; every column must be a list of {rows} values",
                tuple(t.shape.iter().map(usize::to_string))
            )));
        }
        columns.push(name);
        data.push(t.data.into_iter());
    }
    let rows = (0..rows)
        .map(|_| {
            data.iter_mut()
                .map(|c| c.next().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Ok(Frame {
        columns: Some(columns),
        rows,
        text_cells: false,
    })
}

/// Typed elements being collected for one tensor.
enum Builder {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
    Bool(Vec<bool>),
}

impl Builder {
    fn new(elem: ElemType, capacity: usize) -> Builder {
        match elem {
            ElemType::F32 => Builder::F32(Vec::with_capacity(capacity)),
            ElemType::F64 => Builder::F64(Vec::with_capacity(capacity)),
            ElemType::I64 => Builder::I64(Vec::with_capacity(capacity)),
            ElemType::Str => Builder::Str(Vec::with_capacity(capacity)),
            ElemType::Bool => Builder::Bool(Vec::with_capacity(capacity)),
        }
    }

    fn finish(self) -> TensorData {
        match self {
            Builder::F32(v) => TensorData::F32(v),
            Builder::F64(v) => TensorData::F64(v),
            Builder::I64(v) => TensorData::I64(v),
            Builder::Str(v) => TensorData::Str(v),
            Builder::Bool(v) => TensorData::Bool(v),
        }
    }

    /// Adds cell `col` of row `r`, checked against the column's type.
    fn push_cell(
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
    fn push(&mut self, v: &Value, expect: Expect, text: bool) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sextant_onnx::Dim;

    fn graph_input(name: &str, elem: ElemType, rank: usize) -> ValueInfo {
        ValueInfo {
            name: name.into(),
            kind: ValueKind::Tensor {
                elem,
                shape: Some(
                    (0..rank)
                        .map(|i| {
                            if i == 0 {
                                Dim::Free(None)
                            } else {
                                Dim::Fixed(1)
                            }
                        })
                        .collect(),
                ),
            },
        }
    }

    fn columns_sig(cols: &[(&str, &str)]) -> Signature {
        let items: Vec<Value> = cols
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t, "required": true}))
            .collect();
        Signature {
            inputs: Schema::parse(Some(&Value::Array(items).to_string()), "inputs").unwrap(),
            outputs: Schema::None,
        }
    }

    fn frame(cols: &[&str], rows: Vec<Vec<Value>>) -> Payload {
        Payload::Frame(Frame {
            columns: Some(cols.iter().map(|c| c.to_string()).collect()),
            rows,
            text_cells: false,
        })
    }

    #[test]
    fn orders_columns_by_the_signature() {
        let sig = columns_sig(&[("a", "double"), ("b", "long")]);
        let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
        let c = plan
            .convert(frame(&["b", "a"], vec![vec![json!(2), json!(1.5)]]))
            .unwrap();
        assert!(c.records);
        assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.5, 2.0]);
        assert_eq!(c.tensors[0].1.shape(), &[1, 2]);
    }

    #[test]
    fn names_missing_extra_and_mistyped_columns() {
        let sig = columns_sig(&[("a", "double"), ("b", "long")]);
        let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
        let e = plan
            .convert(frame(&["a"], vec![vec![json!(1)]]))
            .unwrap_err();
        assert_eq!(e.to_string(), "Model is missing inputs ['b']");
        // A column the signature does not name is ignored, as MLflow ignores it.
        let c = plan
            .convert(frame(
                &["z", "b", "a"],
                vec![vec![json!(9), json!(2), json!(1)]],
            ))
            .unwrap();
        assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.0, 2.0]);
        assert_eq!(c.ignored, ["z"]);
        let e = plan
            .convert(frame(&["b", "z"], vec![vec![json!(2), json!(3)]]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Model is missing inputs ['a']. Note that there were extra inputs: ['z']"
        );
        // Without names, nothing can be matched.
        let e = plan
            .convert(Payload::Frame(Frame {
                columns: None,
                rows: vec![vec![json!(1), json!(2)]],
                text_cells: false,
            }))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Model is missing inputs ['a', 'b']: "),
            "{e}"
        );
        let e = plan
            .convert(frame(&["a", "b"], vec![vec![json!(1), json!(2.5)]]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"b\", row 0: expected an integer (long), got the number 2.5"
        );
        let e = plan
            .convert(frame(&["a", "b"], vec![vec![json!("x"), json!(2)]]))
            .unwrap_err();
        assert!(e.to_string().contains("got the string \"x\""), "{e}");
    }

    #[test]
    fn a_column_signature_takes_bare_tensors_by_position_in_signature_order() {
        let sig = columns_sig(&[("a", "double"), ("b", "long")]);
        let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
        let t = JsonTensor::from_nested(json!([[1.5, 2], [3, 4]]), "inputs").unwrap();
        let c = plan.convert(Payload::Tensor(t)).unwrap();
        assert!(!c.records);
        assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.5, 2.0, 3.0, 4.0]);
        let t = JsonTensor::from_nested(json!([[1, 2, 3]]), "inputs").unwrap();
        let e = plan.convert(Payload::Tensor(t)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the input has shape (1, 3); the model takes rows of 2 values"),
            "{e}"
        );
        let t = JsonTensor::from_nested(json!([[1, 2.5]]), "inputs").unwrap();
        let e = plan.convert(Payload::Tensor(t)).unwrap_err();
        assert!(e.to_string().contains("expected an integer (long)"), "{e}");
    }

    #[test]
    fn without_a_column_signature_tables_are_positional_in_the_order_sent() {
        let sig = Signature {
            inputs: Schema::parse(
                Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#),
                "inputs",
            )
            .unwrap(),
            outputs: Schema::None,
        };
        let input = [graph_input("X", ElemType::F32, 2)];
        for (sig, records) in [(sig, false), (Signature::default(), true)] {
            let plan = InputPlan::new(&sig, &input).unwrap();
            let c = plan
                .convert(frame(&["b", "a"], vec![vec![json!(2), json!(1)]]))
                .unwrap();
            assert_eq!(c.records, records);
            assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[2.0, 1.0]);
        }
        let plan = InputPlan::new(
            &Signature {
                inputs: Schema::parse(
                    Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#),
                    "inputs",
                )
                .unwrap(),
                outputs: Schema::None,
            },
            &input,
        )
        .unwrap();
        let e = plan
            .convert(frame(
                &["a", "b", "c"],
                vec![vec![json!(1), json!(2), json!(3)]],
            ))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Shape of input (1, 3) does not match expected shape (-1, 2)"
        );
    }

    #[test]
    fn checks_tensor_shapes_against_the_spec() {
        let sig = Signature {
            inputs: Schema::parse(
                Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]"#),
                "inputs",
            )
            .unwrap(),
            outputs: Schema::None,
        };
        let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
        let t = JsonTensor::from_nested(json!([[1, 2]]), "inputs").unwrap();
        let e = plan.convert(Payload::Tensor(t)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Shape of input (1, 2) does not match expected shape (-1, 3)"
        );
        let t = JsonTensor::from_nested(json!([[1, 2, null]]), "inputs").unwrap();
        let c = plan.convert(Payload::Tensor(t)).unwrap();
        assert!(!c.records);
        assert!(c.tensors[0].1.as_f32().unwrap()[2].is_nan());
        let t = JsonTensor::from_nested(json!([[1, 2, "x"]]), "inputs").unwrap();
        let e = plan.convert(Payload::Tensor(t)).unwrap_err();
        assert!(e.to_string().starts_with("input \"X\", element 2"), "{e}");
    }

    #[test]
    fn multi_input_graphs_take_columns_by_name() {
        let sig = columns_sig(&[("x", "float"), ("c", "string")]);
        let inputs = [
            graph_input("x", ElemType::F32, 2),
            graph_input("c", ElemType::Str, 2),
        ];
        let plan = InputPlan::new(&sig, &inputs).unwrap();
        let c = plan
            .convert(frame(
                &["c", "x"],
                vec![vec![json!("a"), json!(1)], vec![json!("b"), json!(2)]],
            ))
            .unwrap();
        assert_eq!(c.tensors[0].0, "x");
        assert_eq!(c.tensors[0].1.shape(), &[2, 1]);
        assert_eq!(c.tensors[1].1.as_strings().unwrap(), &["a", "b"]);
        let t = JsonTensor::from_nested(json!([1, 2]), "inputs").unwrap();
        let columnar = vec![
            ("x".to_owned(), t),
            (
                "c".to_owned(),
                JsonTensor::from_nested(json!(["a", "b"]), "inputs").unwrap(),
            ),
        ];
        let c = plan.convert(Payload::Named(columnar)).unwrap();
        assert!(c.records);
        let e = InputPlan::new(&columns_sig(&[("x", "float")]), &inputs).unwrap_err();
        assert!(e.to_string().contains("\"c\""), "{e}");
    }

    #[test]
    fn csv_cells_are_parsed_by_column_type() {
        let sig = columns_sig(&[("a", "double"), ("b", "long")]);
        let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F64, 2)]).unwrap();
        let c = plan
            .convert(Payload::Frame(Frame {
                columns: Some(vec!["a".into(), "b".into()]),
                rows: vec![vec![json!("1.5"), json!("2")], vec![json!(""), json!("3")]],
                text_cells: true,
            }))
            .unwrap();
        let v = c.tensors[0].1.as_f64().unwrap();
        assert_eq!((v[0], v[1], v[3]), (1.5, 2.0, 3.0));
        assert!(v[2].is_nan());
    }
}
