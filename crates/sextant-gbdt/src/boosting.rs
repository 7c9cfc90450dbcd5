//! The boosting loop: parameters, training, prediction and persistence of a [`Gbdt`].

use serde::{Deserialize, Serialize};

use crate::binning::{Binner, MAX_BINS};
use crate::error::{GbdtError, invalid};
use crate::histogram::SplitRules;
use crate::objective::Objective;
use crate::tree::{GrowData, GrowParams, Node, Tree, grow};

/// Training parameters; the defaults are scikit-learn's `HistGradientBoosting*` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// The loss and what the model predicts.
    pub objective: Objective,
    /// Boosting iterations (`max_iter`); multiclass grows one tree per class in each.
    pub n_trees: usize,
    /// The shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// The most leaves a tree may have (`None`: no limit but `max_depth`).
    pub max_leaf_nodes: Option<usize>,
    /// The deepest a leaf may be, the root at depth 0 (`None`: no limit).
    pub max_depth: Option<usize>,
    /// The fewest training samples a leaf may hold.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values, added to every leaf's hessian sum.
    pub l2_regularization: f64,
    /// Non-missing bins per feature, at most 255.
    pub max_bins: usize,
    /// Stop when the loss on a held-out fraction stops improving.
    pub early_stopping: Option<EarlyStopping>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            objective: Objective::Regression,
            n_trees: 100,
            learning_rate: 0.1,
            max_leaf_nodes: Some(31),
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: MAX_BINS,
            early_stopping: None,
        }
    }
}

/// Early stopping on a random validation fraction of the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarlyStopping {
    /// The share of rows held out, in `(0, 1)`.
    pub validation_fraction: f64,
    /// Iterations without an improvement larger than `tol` before training stops.
    pub n_iter_no_change: usize,
    /// The smallest decrease of the validation loss that counts as an improvement.
    pub tol: f64,
    /// Seed of the shuffle that picks the validation rows.
    pub seed: u64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            seed: 0,
        }
    }
}

/// The scikit-learn default: a split must leave at least this much hessian on each side.
const MIN_HESSIAN_LEAF: f64 = 1e-3;

/// A trained gradient-boosted ensemble. Its fields are read-only so that every model has passed
/// either training or [`Gbdt::from_json`]'s checks, and prediction can index without panicking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    pub(crate) params: Params,
    pub(crate) n_features: usize,
    pub(crate) baseline: Vec<f64>,
    pub(crate) trees: Vec<Tree>,
    pub(crate) n_iter: usize,
}

impl Gbdt {
    /// Trains on row-major `x` (`n_features` columns, `NaN` for missing) and targets `y`
    /// (class indices as `f64` for classification).
    pub fn fit(
        params: &Params,
        x: &[f64],
        n_features: usize,
        y: &[f64],
    ) -> Result<Self, GbdtError> {
        Self::fit_until(params, x, n_features, y, &|| false)
    }

    /// [`Gbdt::fit`] that asks `stop` before each boosting iteration and gives up with
    /// [`GbdtError::Stopped`] once it answers true, so a cancelled pipeline step does not
    /// keep a core busy until the last tree.
    pub fn fit_until(
        params: &Params,
        x: &[f64],
        n_features: usize,
        y: &[f64],
        stop: &dyn Fn() -> bool,
    ) -> Result<Self, GbdtError> {
        check_params(params)?;
        let objective = params.objective;
        if n_features == 0 || x.len() != y.len() * n_features || y.is_empty() {
            return Err(invalid(format!(
                "{} values do not make {} rows of {n_features} features",
                x.len(),
                y.len()
            )));
        }
        objective.check_labels(y)?;
        let n = y.len();
        let (mut train, valid) = split_rows(n, params.early_stopping.as_ref())?;
        let train_x: Vec<f64> = train
            .iter()
            .flat_map(|&i| &x[i as usize * n_features..(i as usize + 1) * n_features])
            .copied()
            .collect();
        let binner = Binner::fit(&train_x, n_features, params.max_bins)?;
        drop(train_x);
        let binned = binner.transform(x)?;
        let n_bins: Vec<usize> = (0..n_features).map(|f| binner.n_bins(f)).collect();
        let data = GrowData {
            binned: &binned,
            binner: &binner,
            n_bins: &n_bins,
        };
        let train_y: Vec<f64> = train.iter().map(|&i| y[i as usize]).collect();
        let baseline = objective.baseline(&train_y);
        let k = objective.n_outputs();
        let mut raw: Vec<f64> = baseline.iter().copied().cycle().take(n * k).collect();
        let mut grad = vec![0.0; n * k];
        let mut hess = vec![0.0; n * k];
        let grow_params = GrowParams {
            max_leaf_nodes: params.max_leaf_nodes.unwrap_or(usize::MAX),
            max_depth: params.max_depth,
            rules: SplitRules {
                min_samples_leaf: params.min_samples_leaf,
                min_hessian_leaf: MIN_HESSIAN_LEAF,
                l2: params.l2_regularization,
            },
            learning_rate: params.learning_rate,
        };
        let mut trees = Vec::with_capacity(params.n_trees * k);
        let mut best_loss = f64::INFINITY;
        let mut since_best = 0;
        let mut n_iter = 0;
        for _ in 0..params.n_trees {
            if stop() {
                return Err(GbdtError::Stopped);
            }
            objective.gradients(y, &raw, &train, &mut grad, &mut hess);
            for output in 0..k {
                let outputs = output * n..(output + 1) * n;
                let (tree, leaves) = grow(
                    &data,
                    &mut train,
                    &grad[outputs.clone()],
                    &hess[outputs],
                    &grow_params,
                );
                for leaf in leaves {
                    for &i in &train[leaf.start..leaf.end] {
                        raw[i as usize * k + output] += leaf.value;
                    }
                }
                for &i in &valid {
                    let i = i as usize;
                    raw[i * k + output] += tree.predict(&x[i * n_features..(i + 1) * n_features]);
                }
                trees.push(tree);
            }
            n_iter += 1;
            if let Some(stopping) = &params.early_stopping {
                let loss = objective.loss(y, &raw, &valid);
                if loss < best_loss - stopping.tol {
                    best_loss = loss;
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= stopping.n_iter_no_change {
                        break;
                    }
                }
            }
        }
        Ok(Self {
            params: params.clone(),
            n_features,
            baseline,
            trees,
            n_iter,
        })
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The raw score before any tree, one per output.
    pub fn baseline(&self) -> &[f64] {
        &self.baseline
    }

    /// Trees in training order; tree `t` adds to output `t % n_outputs`.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Boosting iterations actually run (fewer than `n_trees` after early stopping).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// The objective the model was trained for.
    pub fn objective(&self) -> Objective {
        self.params.objective
    }

    /// Raw scores of row-major `x`: one per row, or one per class and row for multiclass.
    pub fn predict_raw(&self, x: &[f64]) -> Result<Vec<f64>, GbdtError> {
        let k = self.baseline.len();
        let rows = self.rows(x)?;
        let mut out = Vec::with_capacity(rows.len() * k);
        for row in rows {
            out.extend_from_slice(&self.baseline);
            let scores = out.len() - k..out.len();
            for (t, tree) in self.trees.iter().enumerate() {
                out[scores.start + t % k] += tree.predict(row);
            }
        }
        Ok(out)
    }

    /// Predictions of row-major `x`: the value for regression, else the probability of every
    /// class (two columns for binary), row by row.
    pub fn predict(&self, x: &[f64]) -> Result<Vec<f64>, GbdtError> {
        let raw = self.predict_raw(x)?;
        let k = self.baseline.len();
        let mut out = Vec::with_capacity(raw.len() * 2);
        let mut row = Vec::with_capacity(k.max(2));
        for scores in raw.chunks_exact(k) {
            row.clear();
            row.extend_from_slice(scores);
            self.objective().transform(&mut row);
            out.extend_from_slice(&row);
        }
        Ok(out)
    }

    /// The model as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model always serializes")
    }

    /// Reads a model written by [`Gbdt::to_json`], checking that its trees are well formed.
    pub fn from_json(json: &str) -> Result<Self, GbdtError> {
        let model: Gbdt = serde_json::from_str(json)?;
        model.check()?;
        Ok(model)
    }

    fn rows<'a>(&self, x: &'a [f64]) -> Result<std::slice::ChunksExact<'a, f64>, GbdtError> {
        if self.n_features == 0 || !x.len().is_multiple_of(self.n_features) {
            return Err(invalid(format!(
                "{} values do not make rows of {} features",
                x.len(),
                self.n_features
            )));
        }
        Ok(x.chunks_exact(self.n_features))
    }

    fn check(&self) -> Result<(), GbdtError> {
        let k = self.objective().n_outputs();
        if self.n_features == 0 || self.baseline.len() != k || !self.trees.len().is_multiple_of(k) {
            return Err(invalid(
                "model has no features or the wrong number of outputs",
            ));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            for (id, node) in tree.nodes.iter().enumerate() {
                if let Node::Split {
                    feature,
                    left,
                    right,
                    ..
                } = *node
                {
                    // Children after their parent: prediction always terminates.
                    let ok = feature < self.n_features
                        && left > id
                        && right > id
                        && left < tree.nodes.len()
                        && right < tree.nodes.len();
                    if !ok {
                        return Err(invalid(format!("tree {t} node {id} is malformed")));
                    }
                }
            }
            if tree.nodes.is_empty() {
                return Err(invalid(format!("tree {t} has no nodes")));
            }
        }
        Ok(())
    }
}

fn check_params(p: &Params) -> Result<(), GbdtError> {
    let problem = if p.n_trees == 0 {
        "n_trees must be at least 1"
    } else if !(p.learning_rate > 0.0 && p.learning_rate.is_finite()) {
        "learning_rate must be positive"
    } else if p.max_leaf_nodes.is_some_and(|n| n < 2) {
        "max_leaf_nodes must be at least 2"
    } else if p.min_samples_leaf == 0 {
        "min_samples_leaf must be at least 1"
    } else if !(p.l2_regularization >= 0.0 && p.l2_regularization.is_finite()) {
        "l2_regularization must be non-negative"
    } else if p.early_stopping.as_ref().is_some_and(|e| {
        !(e.validation_fraction > 0.0 && e.validation_fraction < 1.0) || e.n_iter_no_change == 0
    }) {
        "early_stopping needs 0 < validation_fraction < 1 and n_iter_no_change >= 1"
    } else {
        return Ok(());
    };
    Err(invalid(problem))
}

/// Training and validation row indices: all rows for training without early stopping, else a
/// seeded shuffle cut at the validation fraction.
fn split_rows(
    n: usize,
    stopping: Option<&EarlyStopping>,
) -> Result<(Vec<u32>, Vec<u32>), GbdtError> {
    let n32 = u32::try_from(n).map_err(|_| invalid(format!("{n} rows are more than 2^32")))?;
    let mut rows: Vec<u32> = (0..n32).collect();
    let Some(stopping) = stopping else {
        return Ok((rows, Vec::new()));
    };
    let mut state = stopping.seed;
    for i in (1..rows.len()).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        rows.swap(i, j);
    }
    let n_valid = ((n as f64) * stopping.validation_fraction).round() as usize;
    if n_valid == 0 || n_valid >= n {
        return Err(invalid(format!(
            "validation_fraction {} of {n} rows leaves no training or no validation rows",
            stopping.validation_fraction
        )));
    }
    let valid = rows.split_off(n - n_valid);
    Ok((rows, valid))
}

/// A small, good-enough generator for a reproducible shuffle, to stay dependency-free.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
