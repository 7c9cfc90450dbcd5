//! Sextant's built-in trainers: CSV data sets, linear and logistic regression, evaluation
//! metrics, and export to ONNX inside an MLflow model directory, also for the gradient-boosted
//! trees of `sextant-gbdt`.
//!
//! This crate does no network IO and knows nothing of HTTP or the tracking server: the
//! pipeline steps call it and log what it returns.

pub mod data;
mod error;
mod linalg;
pub mod linear;
pub mod logistic;
pub mod metrics;
pub mod mlflow_model;
pub mod onnx;
pub mod onnx_trees;

pub use error::TrainError;

/// Result type of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
