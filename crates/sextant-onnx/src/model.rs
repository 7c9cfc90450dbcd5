//! Loading a model into an execution plan, its input/output metadata, and running it.

use std::collections::HashMap;
use std::fmt;

use prost::Message;
use sextant_onnx_proto as pb;

use crate::error::Error;
use crate::ops::{self, Op};
use crate::proto::{self, Attrs};
use crate::tensor::{ElemType, Tensor, Value};

/// A dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named or unnamed free dimension, usually the batch size.
    Free(Option<String>),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Free(Some(name)) => f.write_str(name),
            Dim::Free(None) => f.write_str("?"),
        }
    }
}

/// What a model input or output holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A tensor; the shape is `None` when the model does not declare one.
    Tensor {
        /// Element type.
        elem: ElemType,
        /// Declared dimensions.
        shape: Option<Vec<Dim>>,
    },
    /// ZipMap's sequence of maps from class label to probability.
    Records,
    /// A type this engine does not know (it can still flow if no operator reads it).
    Unknown,
}

/// A model input or output: its name and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    /// The graph's name for it.
    pub name: String,
    /// Its type and shape.
    pub kind: ValueKind,
}

/// One named result of [`Model::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The graph output's name.
    pub name: String,
    /// Its value.
    pub value: Value,
}

/// One node of the plan: its operator and the slots it reads and writes.
#[derive(Debug)]
struct Step {
    node: String,
    op_type: String,
    op: Box<dyn Op>,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
}

/// A loaded model: checked, with every node built, ready to run any number of times.
#[derive(Debug)]
pub struct Model {
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    metadata: Vec<(String, String)>,
    /// Initializers; slot `i < consts.len()` is `consts[i]`.
    consts: Vec<Value>,
    n_slots: usize,
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    steps: Vec<Step>,
}

impl Model {
    /// Decodes an ONNX model (the bytes of a `.onnx` file) and builds its plan. Fails on
    /// anything the engine cannot run: an unsupported operator (named), malformed
    /// attributes, a value used but never produced, tensors kept in external files.
    pub fn load(bytes: &[u8]) -> Result<Model, Error> {
        let proto = pb::ModelProto::decode(bytes).map_err(|e| Error::Decode(e.to_string()))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| Error::InvalidModel("the model has no graph".into()))?;
        Planner::default().plan(&proto, graph)
    }

    /// The inputs a caller must pass (initializers excluded), in graph order.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    /// The outputs [`Model::run`] returns, in graph order.
    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    /// The model's `metadata_props` (e.g. Sextant's `sextant.feature_names`).
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// Runs the model on a batch: one tensor per input, by name. Each input is checked
    /// against its declared element type and shape before any node runs.
    pub fn run<S: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (S, Tensor)>,
    ) -> Result<Vec<Output>, Error> {
        let n_consts = self.consts.len();
        let mut values: Vec<Option<Value>> = vec![None; self.n_slots - n_consts];
        for (name, tensor) in inputs {
            let name = name.as_ref();
            let i = self
                .inputs
                .iter()
                .position(|v| v.name == name)
                .ok_or_else(|| Error::UnknownInput {
                    name: name.to_owned(),
                    expected: self
                        .inputs
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            check_input(&self.inputs[i], &tensor)?;
            values[self.input_slots[i] - n_consts] = Some(Value::Tensor(tensor));
        }
        for (info, &slot) in self.inputs.iter().zip(&self.input_slots) {
            if values[slot - n_consts].is_none() {
                return Err(Error::MissingInput(info.name.clone()));
            }
        }
        for step in &self.steps {
            let produced = {
                let args: Vec<Option<&Value>> = step
                    .inputs
                    .iter()
                    .map(|s| s.and_then(|s| self.slot(&values, s)))
                    .collect();
                step.op.run(&args).map_err(|e| e.at_node(&step.node))?
            };
            // Only outputs the graph names must exist; trailing unnamed ones may be absent.
            let needed = step
                .outputs
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |i| i + 1);
            if produced.len() < needed {
                return Err(Error::Node {
                    node: step.node.clone(),
                    op: step.op_type.clone(),
                    message: format!(
                        "declares {needed} outputs, the operator gives {}",
                        produced.len()
                    ),
                });
            }
            for (slot, value) in step.outputs.iter().zip(produced) {
                if let Some(slot) = slot {
                    values[slot - n_consts] = Some(value);
                }
            }
        }
        self.outputs
            .iter()
            .zip(&self.output_slots)
            .map(|(info, &slot)| {
                let value = self.slot(&values, slot).cloned().ok_or_else(|| {
                    Error::InvalidModel(format!("output {:?} was not computed", info.name))
                })?;
                Ok(Output {
                    name: info.name.clone(),
                    value,
                })
            })
            .collect()
    }

    fn slot<'a>(&'a self, values: &'a [Option<Value>], slot: usize) -> Option<&'a Value> {
        match slot.checked_sub(self.consts.len()) {
            None => self.consts.get(slot),
            Some(i) => values.get(i).and_then(Option::as_ref),
        }
    }
}

/// Refuses an input of the wrong element type, rank or fixed dimension.
fn check_input(info: &ValueInfo, tensor: &Tensor) -> Result<(), Error> {
    let ValueKind::Tensor { elem, shape } = &info.kind else {
        return Ok(());
    };
    if tensor.elem_type() != *elem {
        return Err(Error::InputType {
            name: info.name.clone(),
            expected: elem.to_string(),
            got: tensor.elem_type().to_string(),
        });
    }
    if let Some(dims) = shape {
        let fits = dims.len() == tensor.shape().len()
            && dims.iter().zip(tensor.shape()).all(|(d, &n)| match d {
                Dim::Fixed(f) => *f == n,
                Dim::Free(_) => true,
            });
        if !fits {
            let expected = dims
                .iter()
                .map(Dim::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::InputShape {
                name: info.name.clone(),
                expected: format!("[{expected}]"),
                got: tensor.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Assigns a slot to every value name while building the steps in dependency order.
#[derive(Default)]
struct Planner {
    slots: HashMap<String, usize>,
    n_slots: usize,
}

impl Planner {
    fn define(&mut self, name: &str) -> Result<usize, Error> {
        if self.slots.contains_key(name) {
            return Err(Error::InvalidModel(format!(
                "value {name:?} is defined twice"
            )));
        }
        let slot = self.n_slots;
        self.slots.insert(name.to_owned(), slot);
        self.n_slots += 1;
        Ok(slot)
    }

    fn plan(mut self, proto: &pb::ModelProto, graph: &pb::GraphProto) -> Result<Model, Error> {
        let mut consts = Vec::with_capacity(graph.initializer.len());
        for init in &graph.initializer {
            self.define(&init.name)?;
            consts.push(Value::Tensor(proto::tensor(init)?));
        }
        let mut inputs = Vec::new();
        let mut input_slots = Vec::new();
        for vi in &graph.input {
            // Older exporters also list initializers as inputs; those are not the caller's.
            if self.slots.contains_key(&vi.name) {
                continue;
            }
            input_slots.push(self.define(&vi.name)?);
            inputs.push(value_info(vi, None));
        }
        let order = topological_order(graph, &self.slots)?;
        let mut steps = Vec::with_capacity(order.len());
        for &i in &order {
            steps.push(self.step(&graph.node[i])?);
        }
        let mut outputs = Vec::new();
        let mut output_slots = Vec::new();
        for vi in &graph.output {
            let slot = *self.slots.get(&vi.name).ok_or_else(|| {
                Error::InvalidModel(format!("output {:?} is not produced by any node", vi.name))
            })?;
            let producer = graph.node.iter().find(|n| n.output.contains(&vi.name));
            outputs.push(value_info(vi, producer.map(|n| n.op_type.as_str())));
            output_slots.push(slot);
        }
        Ok(Model {
            inputs,
            outputs,
            metadata: proto
                .metadata_props
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
            consts,
            n_slots: self.n_slots,
            input_slots,
            output_slots,
            steps,
        })
    }

    fn step(&mut self, node: &pb::NodeProto) -> Result<Step, Error> {
        let name = if node.name.is_empty() {
            node.output
                .first()
                .cloned()
                .unwrap_or_else(|| node.op_type.clone())
        } else {
            node.name.clone()
        };
        let builder =
            ops::builder(&node.domain, &node.op_type).ok_or_else(|| Error::UnsupportedOp {
                op_type: node.op_type.clone(),
                domain: node.domain.clone(),
                node: name.clone(),
            })?;
        let op = builder(&Attrs::new(node)).map_err(|e| e.at_node(&name))?;
        let inputs = node
            .input
            .iter()
            .map(|i| {
                if i.is_empty() {
                    None
                } else {
                    self.slots.get(i).copied()
                }
            })
            .collect();
        let outputs = node
            .output
            .iter()
            .map(|o| {
                if o.is_empty() {
                    Ok(None)
                } else {
                    self.define(o).map(Some)
                }
            })
            .collect::<Result<_, Error>>()?;
        Ok(Step {
            node: name,
            op_type: node.op_type.clone(),
            op,
            inputs,
            outputs,
        })
    }
}

/// Node indexes in an order where each node comes after the producers of its inputs
/// (graph order when it already is one), or an error naming a value nothing produces.
fn topological_order(
    graph: &pb::GraphProto,
    known: &HashMap<String, usize>,
) -> Result<Vec<usize>, Error> {
    let mut available: std::collections::HashSet<&str> = known.keys().map(String::as_str).collect();
    let mut placed = vec![false; graph.node.len()];
    let mut order = Vec::with_capacity(graph.node.len());
    while order.len() < graph.node.len() {
        let before = order.len();
        for (i, node) in graph.node.iter().enumerate() {
            if !placed[i]
                && node
                    .input
                    .iter()
                    .all(|n| n.is_empty() || available.contains(n.as_str()))
            {
                placed[i] = true;
                order.push(i);
                available.extend(node.output.iter().map(String::as_str));
            }
        }
        if order.len() == before {
            let (node, missing) = graph
                .node
                .iter()
                .enumerate()
                .filter(|(i, _)| !placed[*i])
                .find_map(|(_, n)| {
                    n.input
                        .iter()
                        .find(|i| !i.is_empty() && !available.contains(i.as_str()))
                        .map(|m| (n, m))
                })
                .expect("a node is unplaced because an input is unavailable");
            return Err(Error::InvalidModel(format!(
                "node {:?} ({}) reads {missing:?}, which no node, input or initializer provides",
                node.name, node.op_type
            )));
        }
    }
    Ok(order)
}

/// The metadata of a declared input or output; `producer` is the operator that computes
/// it. ZipMap's output is a sequence of maps, whether or not the model declares its type.
fn value_info(vi: &pb::ValueInfoProto, producer: Option<&str>) -> ValueInfo {
    use pb::tensor_shape_proto::dimension::Value as D;
    use pb::type_proto::Value as T;
    let declared = vi.r#type.as_ref().and_then(|t| t.value.as_ref());
    let sequence_of_maps = |v: &T| match v {
        T::SequenceType(s) => matches!(
            s.elem_type.as_ref().and_then(|e| e.value.as_ref()),
            Some(T::MapType(_))
        ),
        T::TensorType(_) | T::MapType(_) => false,
    };
    let kind = match (producer, declared) {
        (Some("ZipMap"), _) => ValueKind::Records,
        (_, Some(v)) if sequence_of_maps(v) => ValueKind::Records,
        (_, Some(T::TensorType(t))) => match proto::elem_type(t.elem_type) {
            Some(elem) => ValueKind::Tensor {
                elem,
                shape: t.shape.as_ref().map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(D::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                            Some(D::DimParam(p)) => Dim::Free(Some(p.clone())),
                            _ => Dim::Free(None),
                        })
                        .collect()
                }),
            },
            None => ValueKind::Unknown,
        },
        _ => ValueKind::Unknown,
    };
    ValueInfo {
        name: vi.name.clone(),
        kind,
    }
}
