//! In-process ONNX inference for Sextant's `onnx` serving runtime.
//!
//! A small interpreter of the graphs that skl2onnx, onnxmltools and Sextant's own trainers
//! emit for classic models: the ONNX-ML operators (tree ensembles, linear models, scalers,
//! imputers, encoders, ZipMap, …) are Sextant's own implementations, and the standard
//! operators cover what those graphs use. ARCHITECTURE.md says why this is not `tract` or
//! onnxruntime.
//!
//! [`Model::load`] decodes and checks a model once (every node built, every name resolved),
//! so [`Model::run`] on a bad input fails with an error that names it, never a panic. A
//! `Model` is immutable and `Sync`: share one behind an `Arc` across threads.

mod error;
mod model;
mod ops;
mod proto;
mod tensor;

pub use error::Error;
pub use model::{Dim, Model, Output, ValueInfo, ValueKind};
pub use tensor::{ElemType, Labels, Records, Tensor, TensorData, Value};
