//! Turning a decoded request into the ONNX model's input tensors, with the model's
//! signature: columns put in signature order, cells checked against the column types and
//! cast to the graph's element types, tensor shapes checked against the tensor specs.
//! Every refusal is an [`InputError`] naming the column, input or shape at fault.
//!
//! Here: the plan built at load and the tensor forms of a request (one bare tensor,
//! tensors by input name); `table.rs` takes tables (column order, then tensors) and
//! `cells.rs` checks and casts each value.

mod cells;
mod table;

use sextant_onnx::{ElemType, Tensor, ValueInfo, ValueKind};

use super::error::{InputError, LoadError};
use super::protocol::{JsonTensor, Payload};
use super::signature::{ColSpec, ColType, Schema, Signature, TensorSpec, tuple};
use cells::{Builder, Expect};
use table::{columnar_frame, positional_frame};

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
}

/// MLflow's message for a tensor of the wrong shape.
fn shape_mismatch(shape: &[usize], spec: &TensorSpec) -> InputError {
    InputError::schema(format!(
        "Shape of input {} does not match expected shape {}",
        tuple(shape.iter().map(usize::to_string)),
        spec.shape_text()
    ))
}

/// `['a', 'b']`, the way MLflow lists names.
pub(crate) fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests;
