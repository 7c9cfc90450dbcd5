//! A table's way into the graph: its columns matched to the signature as
//! MLflow matches them (by name, or by position), then gathered into one
//! `[N, C]` tensor or one column per graph input.

use serde_json::Value;
use sextant_onnx::Tensor;

use super::cells::{Builder, Expect};
use super::{Converted, InputPlan, Kind, names, shape_mismatch};
use crate::error::InputError;
use crate::protocol::{Frame, JsonTensor};
use crate::signature::{ColSpec, ColType, tuple};

impl InputPlan {
    /// A table: its columns resolved against the signature as MLflow does, then converted.
    pub(super) fn frame(&self, frame: Frame) -> Result<Converted, InputError> {
        let (order, ignored) = self.column_order(&frame)?;
        let mut converted = self.build(&frame, &order, ignored)?;
        // With a tensor signature MLflow turns the table into a tensor before the model
        // sees it, and answers tensors.
        converted.records = self.kind != Kind::Tensors;
        Ok(converted)
    }

    /// The tensors of `frame`'s columns `order`: one `[N, C]` tensor for a single-input
    /// graph, or one `[N, 1]` column per input by name.
    pub(super) fn build(
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
    pub(super) fn signature_order(&self, cols: &[ColSpec]) -> Vec<Column> {
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

/// A column of the request in model order: where it is in the frame (`None`: an optional
/// column the client left out) and the signature's type.
#[derive(Debug)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) index: Option<usize>,
    pub(super) expect: Option<(Expect, ColType)>,
}

/// A `[N, C]` (or `[N]`, one column) tensor read as a table of unnamed columns.
pub(super) fn positional_frame(t: JsonTensor) -> Frame {
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
pub(super) fn columnar_frame(named: Vec<(String, JsonTensor)>) -> Result<Frame, InputError> {
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
