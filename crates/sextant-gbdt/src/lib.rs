//! Histogram gradient-boosted decision trees, after scikit-learn's `HistGradientBoosting*` and
//! LightGBM: quantile binning into at most 255 bins plus one bin for missing values, leaf-wise
//! growth with the histogram subtraction trick, and squared-error, binary log-loss and softmax
//! objectives.
//!
//! A trained [`Gbdt`] predicts from raw `f64` rows (`NaN` is missing), serializes to JSON, and
//! exports the flat attribute arrays of ONNX's `ai.onnx.ml` `TreeEnsembleRegressor` /
//! `TreeEnsembleClassifier` ([`TreeEnsemble`]), which [`TreeEnsemble::evaluate`] can evaluate
//! independently of the tree structures.
//!
//! The crate does no IO and has no dependencies beyond serde and thiserror, so training runs on
//! whatever thread the caller chooses (a blocking pool, in the server).

mod binning;
mod boosting;
mod error;
mod export;
mod histogram;
mod objective;
mod tree;

pub use binning::{BinnedMatrix, Binner, MAX_BINS, MISSING_BIN};
pub use boosting::{EarlyStopping, Gbdt, Params};
pub use error::GbdtError;
pub use export::{EnsembleKind, PostTransform, TreeEnsemble};
pub use objective::Objective;
pub use tree::{Node, Tree};
