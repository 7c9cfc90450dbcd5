//! The flat form of an ensemble: the attribute arrays of ONNX's `ai.onnx.ml`
//! `TreeEnsembleRegressor` and `TreeEnsembleClassifier`, and an evaluator of that form.
//!
//! An ONNX writer copies these arrays into node attributes; this module knows nothing of
//! protobuf. The evaluator exists so the flat form is tested against [`Gbdt::predict`] on its
//! own, before any runtime sees it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::boosting::Gbdt;
use crate::error::GbdtError;
use crate::objective::{Objective, sigmoid, softmax};
use crate::tree::Node;

/// Which ONNX operator the arrays are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnsembleKind {
    /// `TreeEnsembleRegressor`: the `target_*` arrays are its `target_*` attributes.
    Regressor,
    /// `TreeEnsembleClassifier`: the `target_*` arrays are its `class_*` attributes.
    Classifier,
}

/// ONNX's `post_transform` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostTransform {
    /// `"NONE"`: scores are the predictions.
    None,
    /// `"LOGISTIC"`: binary classification from one score column.
    Logistic,
    /// `"SOFTMAX"`: multiclass probabilities.
    Softmax,
}

impl PostTransform {
    /// The attribute's string value.
    pub fn as_str(&self) -> &'static str {
        match self {
            PostTransform::None => "NONE",
            PostTransform::Logistic => "LOGISTIC",
            PostTransform::Softmax => "SOFTMAX",
        }
    }
}

/// A tree ensemble as ONNX attribute arrays (`aggregate_function` is always `"SUM"`).
///
/// Node ids restart at 0 in every tree, and each tree's root is its first node. Leaves have mode
/// `"LEAF"` and zeros in the branch arrays. `nodes_values` are `f64`; thresholds are chosen to be
/// `f32` values whenever the training data were, so a writer may store them as `floats` without
/// changing any decision on `f32` inputs.
///
/// Binary classification follows skl2onnx's convention: one score column (every leaf's class id
/// is 0, one base value), `classlabels_int64s` `[0, 1]` and `"LOGISTIC"`, which onnxruntime
/// expands to `[1 - p, p]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    /// The operator.
    pub kind: EnsembleKind,
    /// `n_targets` of a regressor (1); 0 for a classifier.
    pub n_targets: i64,
    /// `classlabels_int64s` of a classifier; empty for a regressor.
    pub classlabels_int64s: Vec<i64>,
    /// `nodes_treeids`.
    pub nodes_treeids: Vec<i64>,
    /// `nodes_nodeids`.
    pub nodes_nodeids: Vec<i64>,
    /// `nodes_featureids`.
    pub nodes_featureids: Vec<i64>,
    /// `nodes_modes`: `"BRANCH_LEQ"` or `"LEAF"`.
    pub nodes_modes: Vec<String>,
    /// `nodes_values`: the threshold `t` of `x <= t`.
    pub nodes_values: Vec<f64>,
    /// `nodes_truenodeids`: where `x <= t` goes.
    pub nodes_truenodeids: Vec<i64>,
    /// `nodes_falsenodeids`.
    pub nodes_falsenodeids: Vec<i64>,
    /// `nodes_missing_value_tracks_true`: 1 when `NaN` takes the true branch.
    pub nodes_missing_value_tracks_true: Vec<i64>,
    /// `target_ids` / `class_ids`: the output a leaf adds to.
    pub target_ids: Vec<i64>,
    /// `target_nodeids` / `class_nodeids`.
    pub target_nodeids: Vec<i64>,
    /// `target_treeids` / `class_treeids`.
    pub target_treeids: Vec<i64>,
    /// `target_weights` / `class_weights`.
    pub target_weights: Vec<f64>,
    /// `base_values`: one per score column.
    pub base_values: Vec<f64>,
    /// `post_transform`.
    pub post_transform: PostTransform,
}

impl Gbdt {
    /// The model as ONNX tree-ensemble attribute arrays.
    pub fn to_tree_ensemble(&self) -> TreeEnsemble {
        let k = self.baseline.len();
        let (kind, n_targets, classlabels_int64s, post_transform) = match self.objective() {
            Objective::Regression => (EnsembleKind::Regressor, 1, vec![], PostTransform::None),
            Objective::Binary => (
                EnsembleKind::Classifier,
                0,
                vec![0, 1],
                PostTransform::Logistic,
            ),
            Objective::Multiclass { n_classes } => (
                EnsembleKind::Classifier,
                0,
                (0..n_classes as i64).collect(),
                PostTransform::Softmax,
            ),
        };
        let mut e = TreeEnsemble {
            kind,
            n_targets,
            classlabels_int64s,
            nodes_treeids: vec![],
            nodes_nodeids: vec![],
            nodes_featureids: vec![],
            nodes_modes: vec![],
            nodes_values: vec![],
            nodes_truenodeids: vec![],
            nodes_falsenodeids: vec![],
            nodes_missing_value_tracks_true: vec![],
            target_ids: vec![],
            target_nodeids: vec![],
            target_treeids: vec![],
            target_weights: vec![],
            base_values: self.baseline.clone(),
            post_transform,
        };
        for (t, tree) in self.trees.iter().enumerate() {
            let tree_id = t as i64;
            for (id, node) in tree.nodes.iter().enumerate() {
                let (mode, feature, value, yes, no, missing) = match *node {
                    Node::Split {
                        feature,
                        threshold,
                        missing_left,
                        left,
                        right,
                    } => (
                        "BRANCH_LEQ",
                        feature as i64,
                        threshold,
                        left as i64,
                        right as i64,
                        i64::from(missing_left),
                    ),
                    Node::Leaf { value } => {
                        e.target_ids.push((t % k) as i64);
                        e.target_nodeids.push(id as i64);
                        e.target_treeids.push(tree_id);
                        e.target_weights.push(value);
                        ("LEAF", 0, 0.0, 0, 0, 0)
                    }
                };
                e.nodes_treeids.push(tree_id);
                e.nodes_nodeids.push(id as i64);
                e.nodes_featureids.push(feature);
                e.nodes_modes.push(mode.to_owned());
                e.nodes_values.push(value);
                e.nodes_truenodeids.push(yes);
                e.nodes_falsenodeids.push(no);
                e.nodes_missing_value_tracks_true.push(missing);
            }
        }
        e
    }
}

/// A node of the flat form, resolved to positions for evaluation.
enum Flat {
    Branch {
        feature: usize,
        threshold: f64,
        missing_true: bool,
        yes: usize,
        no: usize,
    },
    Leaf {
        weights: Vec<(usize, f64)>,
    },
}

impl TreeEnsemble {
    /// Evaluates row-major `x` (`n_features` columns) as an ONNX runtime would in double
    /// precision: scores summed over trees plus base values, then the post transform. Output
    /// rows are laid out like [`Gbdt::predict`]'s (two probabilities per row for binary).
    pub fn evaluate(&self, x: &[f64], n_features: usize) -> Result<Vec<f64>, GbdtError> {
        let (nodes, roots) = self.resolve(n_features)?;
        let columns = self.base_values.len();
        if n_features == 0 || !x.len().is_multiple_of(n_features) {
            return Err(malformed(format!(
                "{} values do not make rows of {n_features}",
                x.len()
            )));
        }
        let mut out = Vec::new();
        let mut scores = Vec::with_capacity(columns.max(2));
        for row in x.chunks_exact(n_features) {
            scores.clear();
            scores.extend_from_slice(&self.base_values);
            for &root in &roots {
                let mut at = root;
                // Each step moves to a resolved node; `resolve` rejected cycles by requiring
                // children to come after their parent.
                loop {
                    match &nodes[at] {
                        Flat::Branch {
                            feature,
                            threshold,
                            missing_true,
                            yes,
                            no,
                        } => {
                            let v = row[*feature];
                            let go_true = if v.is_nan() {
                                *missing_true
                            } else {
                                v <= *threshold
                            };
                            at = if go_true { *yes } else { *no };
                        }
                        Flat::Leaf { weights } => {
                            for (target, w) in weights {
                                scores[*target] += w;
                            }
                            break;
                        }
                    }
                }
            }
            match self.post_transform {
                PostTransform::None => {}
                PostTransform::Logistic => {
                    let p = sigmoid(scores[0]);
                    scores.clear();
                    scores.extend([1.0 - p, p]);
                }
                PostTransform::Softmax => softmax(&mut scores),
            }
            out.extend_from_slice(&scores);
        }
        Ok(out)
    }

    /// Checks the arrays agree in length and every reference resolves, and turns node ids into
    /// positions. Returns the nodes and each tree's root.
    fn resolve(&self, n_features: usize) -> Result<(Vec<Flat>, Vec<usize>), GbdtError> {
        let n = self.nodes_nodeids.len();
        let lengths = [
            self.nodes_treeids.len(),
            self.nodes_featureids.len(),
            self.nodes_modes.len(),
            self.nodes_values.len(),
            self.nodes_truenodeids.len(),
            self.nodes_falsenodeids.len(),
            self.nodes_missing_value_tracks_true.len(),
        ];
        let m = self.target_ids.len();
        let target_lengths = [
            self.target_nodeids.len(),
            self.target_treeids.len(),
            self.target_weights.len(),
        ];
        if lengths.iter().any(|l| *l != n) || target_lengths.iter().any(|l| *l != m) {
            return Err(malformed("attribute arrays differ in length"));
        }
        let mut position: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        let mut roots = Vec::new();
        for i in 0..n {
            let tree = self.nodes_treeids[i];
            if i == 0 || self.nodes_treeids[i - 1] != tree {
                roots.push(i);
            }
            if position.insert((tree, self.nodes_nodeids[i]), i).is_some() {
                return Err(malformed(format!(
                    "tree {tree} repeats node {}",
                    self.nodes_nodeids[i]
                )));
            }
        }
        let child = |i: usize, id: i64| -> Result<usize, GbdtError> {
            match position.get(&(self.nodes_treeids[i], id)) {
                Some(&p) if p > i => Ok(p),
                _ => Err(malformed(format!(
                    "node at position {i} has a bad child {id}"
                ))),
            }
        };
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(match self.nodes_modes[i].as_str() {
                "LEAF" => Flat::Leaf { weights: vec![] },
                "BRANCH_LEQ" => {
                    let feature = usize::try_from(self.nodes_featureids[i])
                        .ok()
                        .filter(|f| *f < n_features)
                        .ok_or_else(|| {
                            malformed(format!("node at position {i} has a bad feature"))
                        })?;
                    Flat::Branch {
                        feature,
                        threshold: self.nodes_values[i],
                        missing_true: self.nodes_missing_value_tracks_true[i] != 0,
                        yes: child(i, self.nodes_truenodeids[i])?,
                        no: child(i, self.nodes_falsenodeids[i])?,
                    }
                }
                mode => return Err(malformed(format!("node mode {mode:?} is not supported"))),
            });
        }
        for j in 0..m {
            let target = usize::try_from(self.target_ids[j])
                .ok()
                .filter(|t| *t < self.base_values.len())
                .ok_or_else(|| malformed(format!("weight {j} has a bad target")))?;
            let at = position
                .get(&(self.target_treeids[j], self.target_nodeids[j]))
                .ok_or_else(|| malformed(format!("weight {j} names a missing node")))?;
            match &mut nodes[*at] {
                Flat::Leaf { weights } => weights.push((target, self.target_weights[j])),
                Flat::Branch { .. } => return Err(malformed(format!("weight {j} is on a branch"))),
            }
        }
        Ok((nodes, roots))
    }
}

fn malformed(message: impl Into<String>) -> GbdtError {
    GbdtError::MalformedEnsemble(message.into())
}
