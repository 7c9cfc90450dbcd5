//! `TreeEnsembleRegressor` and `TreeEnsembleClassifier` (ai.onnx.ml), Sextant's own
//! evaluator. Every tree is flattened at load time into one node array shared by all trees;
//! a leaf points at a slice of one weight array, so scoring a batch is a rows × trees loop
//! that allocates nothing per row or leaf. The arrays are checked at load time (ids,
//! references, cycles), so evaluation can index without failing.

use std::collections::HashMap;

use super::transform::{PostTransform, SecondClass, write_scores};
use super::{Op, input_tensor};
use crate::error::Error;
use crate::proto::Attrs;
use crate::tensor::{Labels, Tensor, TensorData, Value};

/// A node's comparison; a branch goes to its true child when `x <mode> threshold` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

impl Mode {
    fn parse(op: &str, s: &str) -> Result<Self, Error> {
        Ok(match s {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            other => return Err(Error::op(op, format!("unknown node mode {other:?}"))),
        })
    }
}

/// One flattened node. For a branch, `a`/`b` are the indexes of the true/false children;
/// for a leaf, the start and length of its weights.
#[derive(Debug, Clone, Copy)]
struct Node {
    mode: Mode,
    missing_true: bool,
    feature: u32,
    threshold: f64,
    a: u32,
    b: u32,
}

/// `aggregate_function` of the regressor (the classifier always sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// The trees of either operator.
#[derive(Debug)]
struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// `(target or class index, weight)` of every leaf, leaf after leaf.
    weights: Vec<(u32, f64)>,
    n_targets: usize,
    /// Input columns the trees read: one more than the largest feature id.
    n_features: usize,
}

impl Forest {
    /// Builds the flat form from the `nodes_*` arrays and the `<prefix>_*` leaf weights.
    fn build(attrs: &Attrs, prefix: &str, n_targets: usize) -> Result<Self, Error> {
        let op = "tree ensemble";
        let tree_ids = attrs.ints("nodes_treeids");
        let node_ids = attrs.ints("nodes_nodeids");
        let features = attrs.ints("nodes_featureids");
        let modes = attrs.strings("nodes_modes");
        let values = attrs.floats_or_tensor("nodes_values")?;
        let trues = attrs.ints("nodes_truenodeids");
        let falses = attrs.ints("nodes_falsenodeids");
        let missing = attrs.ints("nodes_missing_value_tracks_true");
        let n = tree_ids.len();
        let same_length = [
            node_ids.len(),
            features.len(),
            modes.len(),
            trues.len(),
            falses.len(),
        ]
        .iter()
        .all(|&l| l == n)
            && (values.len() == n || values.is_empty())
            && (missing.len() == n || missing.is_empty());
        if !same_length {
            return Err(attrs.error("the nodes_* attributes differ in length"));
        }
        let mut index = HashMap::with_capacity(n);
        for (i, (&t, &id)) in tree_ids.iter().zip(node_ids).enumerate() {
            if index.insert((t, id), i as u32).is_some() {
                return Err(attrs.error(format!("node {id} appears twice in tree {t}")));
            }
        }
        let child = |t: i64, id: i64| -> Result<u32, Error> {
            index
                .get(&(t, id))
                .copied()
                .ok_or_else(|| attrs.error(format!("tree {t} refers to missing node {id}")))
        };
        let mut nodes = Vec::with_capacity(n);
        let mut n_features = 0usize;
        for i in 0..n {
            let mode = Mode::parse(op, &modes[i])?;
            let (mut a, mut b, mut feature) = (0, 0, 0);
            if mode != Mode::Leaf {
                a = child(tree_ids[i], trues[i])?;
                b = child(tree_ids[i], falses[i])?;
                feature = u32::try_from(features[i])
                    .map_err(|_| attrs.error(format!("negative feature id {}", features[i])))?;
                n_features = n_features.max(feature as usize + 1);
            }
            nodes.push(Node {
                mode,
                missing_true: missing.get(i).is_some_and(|&m| m != 0),
                feature,
                threshold: values.get(i).copied().unwrap_or(0.0),
                a,
                b,
            });
        }
        let weights = attach_weights(attrs, prefix, &index, &mut nodes, n_targets)?;
        let roots = find_roots(attrs, tree_ids, &nodes)?;
        check_acyclic(attrs, &nodes, &roots)?;
        Ok(Forest {
            nodes,
            roots,
            weights,
            n_targets,
            n_features,
        })
    }

    /// The leaf `row` reaches in the tree rooted at `root`. NaN takes the true branch when
    /// the node says missing values track true, otherwise whatever the comparison gives.
    #[inline]
    fn leaf(&self, root: u32, row: &[f64]) -> &Node {
        let mut node = &self.nodes[root as usize];
        while node.mode != Mode::Leaf {
            let x = row[node.feature as usize];
            let t = node.threshold;
            let go_true = match node.mode {
                Mode::Leq => x <= t,
                Mode::Lt => x < t,
                Mode::Gte => x >= t,
                Mode::Gt => x > t,
                Mode::Eq => x == t,
                Mode::Neq => x != t,
                Mode::Leaf => unreachable!("loop condition"),
            } || (node.missing_true && x.is_nan());
            node = &self.nodes[if go_true { node.a } else { node.b } as usize];
        }
        node
    }

    /// Aggregated scores of one row into `scores`; `has` marks targets some leaf voted for.
    fn score_row(&self, row: &[f64], agg: Aggregate, scores: &mut [f64], has: &mut [bool]) {
        scores.fill(0.0);
        has.fill(false);
        for &root in &self.roots {
            let leaf = self.leaf(root, row);
            let start = leaf.a as usize;
            for &(target, w) in &self.weights[start..start + leaf.b as usize] {
                let (s, h) = (&mut scores[target as usize], &mut has[target as usize]);
                *s = match agg {
                    Aggregate::Sum | Aggregate::Average => *s + w,
                    Aggregate::Min if *h => s.min(w),
                    Aggregate::Max if *h => s.max(w),
                    Aggregate::Min | Aggregate::Max => w,
                };
                *h = true;
            }
        }
    }

    /// The input as `f64` rows of at least [`Forest::n_features`] columns.
    fn rows(&self, op: &str, x: &Tensor) -> Result<(usize, usize, Vec<f64>), Error> {
        let (n, c) = x.rows_cols();
        if c < self.n_features {
            return Err(Error::op(
                op,
                format!(
                    "the trees read feature {} but the input has {c} columns",
                    self.n_features - 1
                ),
            ));
        }
        Ok((n, c, x.to_f64_vec(op)?))
    }
}

/// Groups the leaf weights by leaf, turning each leaf's `a`/`b` into a slice of them.
fn attach_weights(
    attrs: &Attrs,
    prefix: &str,
    index: &HashMap<(i64, i64), u32>,
    nodes: &mut [Node],
    n_targets: usize,
) -> Result<Vec<(u32, f64)>, Error> {
    let trees = attrs.ints(&format!("{prefix}_treeids"));
    let ids = attrs.ints(&format!("{prefix}_nodeids"));
    let targets = attrs.ints(&format!("{prefix}_ids"));
    let values = attrs.floats_or_tensor(&format!("{prefix}_weights"))?;
    if [ids.len(), targets.len(), values.len()]
        .iter()
        .any(|&l| l != trees.len())
    {
        return Err(attrs.error(format!("the {prefix}_* attributes differ in length")));
    }
    let mut per_leaf: Vec<Vec<(u32, f64)>> = vec![Vec::new(); nodes.len()];
    for i in 0..trees.len() {
        let leaf = *index.get(&(trees[i], ids[i])).ok_or_else(|| {
            attrs.error(format!(
                "weight for missing node {} of tree {}",
                ids[i], trees[i]
            ))
        })? as usize;
        if nodes[leaf].mode != Mode::Leaf {
            return Err(attrs.error(format!(
                "weight for node {} of tree {}, which is not a leaf",
                ids[i], trees[i]
            )));
        }
        let target = usize::try_from(targets[i])
            .ok()
            .filter(|&t| t < n_targets)
            .ok_or_else(|| {
                attrs.error(format!(
                    "{prefix}_ids has {} but there are {n_targets} outputs",
                    targets[i]
                ))
            })?;
        per_leaf[leaf].push((target as u32, values[i]));
    }
    let mut weights = Vec::with_capacity(trees.len());
    for (node, w) in nodes.iter_mut().zip(per_leaf) {
        if node.mode == Mode::Leaf {
            node.a = weights.len() as u32;
            node.b = w.len() as u32;
            weights.extend(w);
        }
    }
    Ok(weights)
}

/// The root of each tree, in order of first appearance: its one node no branch points to.
fn find_roots(attrs: &Attrs, tree_ids: &[i64], nodes: &[Node]) -> Result<Vec<u32>, Error> {
    let mut is_child = vec![false; nodes.len()];
    for node in nodes.iter().filter(|n| n.mode != Mode::Leaf) {
        is_child[node.a as usize] = true;
        is_child[node.b as usize] = true;
    }
    let mut roots: Vec<(i64, u32)> = Vec::new();
    for (i, &t) in tree_ids.iter().enumerate() {
        if !is_child[i] {
            if roots.iter().any(|&(rt, _)| rt == t) {
                return Err(attrs.error(format!("tree {t} has more than one root")));
            }
            roots.push((t, i as u32));
        }
    }
    let mut seen: Vec<i64> = tree_ids.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != roots.len() {
        return Err(attrs.error("a tree has no root (its nodes form a cycle)"));
    }
    Ok(roots.into_iter().map(|(_, i)| i).collect())
}

/// Refuses a node reachable twice from the roots (a cycle or a shared subtree), so that
/// evaluation always ends at a leaf.
fn check_acyclic(attrs: &Attrs, nodes: &[Node], roots: &[u32]) -> Result<(), Error> {
    let mut seen = vec![false; nodes.len()];
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(attrs.error("a node is reachable twice: the trees are not trees"));
        }
        let node = nodes[i as usize];
        if node.mode != Mode::Leaf {
            stack.extend([node.a, node.b]);
        }
    }
    Ok(())
}

/// `TreeEnsembleRegressor`: `X [N, F]` → `Y [N, n_targets]` (float).
#[derive(Debug)]
pub(crate) struct Regressor {
    forest: Forest,
    aggregate: Aggregate,
    base_values: Vec<f64>,
    transform: PostTransform,
}

impl Regressor {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let op = "TreeEnsembleRegressor";
        let n_targets = usize::try_from(attrs.int_or("n_targets", 1))
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| attrs.error("n_targets must be positive"))?;
        let aggregate = match attrs.string_or("aggregate_function", "SUM").as_str() {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(attrs.error(format!("unknown aggregate_function {other:?}"))),
        };
        let base_values = attrs.floats_or_tensor("base_values")?;
        if !base_values.is_empty() && base_values.len() != n_targets {
            return Err(attrs.error(format!(
                "{} base_values for {n_targets} targets",
                base_values.len()
            )));
        }
        let transform = PostTransform::parse(op, &attrs.string_or("post_transform", "NONE"))?;
        Ok(Box::new(Regressor {
            forest: Forest::build(attrs, "target", n_targets)?,
            aggregate,
            base_values,
            transform,
        }))
    }
}

impl Op for Regressor {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "TreeEnsembleRegressor";
        let (n, c, x) = self.forest.rows(op, input_tensor(op, inputs, 0)?)?;
        let k = self.forest.n_targets;
        let n_trees = self.forest.roots.len().max(1) as f64;
        let (mut scores, mut has) = (vec![0.0; k], vec![false; k]);
        let mut out = Vec::with_capacity(n * k);
        for row in x.chunks_exact(c.max(1)).take(n) {
            self.forest
                .score_row(row, self.aggregate, &mut scores, &mut has);
            for (j, s) in scores.iter_mut().enumerate() {
                if self.aggregate == Aggregate::Average {
                    *s /= n_trees;
                }
                *s += self.base_values.get(j).copied().unwrap_or(0.0);
            }
            // onnxruntime applies only PROBIT to a single target.
            let transform = match (k, self.transform) {
                (1, PostTransform::Probit) | (2.., _) => self.transform,
                (_, _) => PostTransform::None,
            };
            write_scores(&mut scores, transform, None, &mut out);
        }
        Ok(vec![Value::Tensor(Tensor::from_parts(
            vec![n, k],
            TensorData::F32(out),
        ))])
    }
}

/// `TreeEnsembleClassifier`: `X [N, F]` → `label [N]`, `probabilities [N, C]`.
#[derive(Debug)]
pub(crate) struct Classifier {
    forest: Forest,
    labels: Labels,
    base_values: Vec<f64>,
    transform: PostTransform,
    /// Two classes and every leaf votes for the same one: one score decides both columns.
    single_score: bool,
    weights_all_positive: bool,
}

impl Classifier {
    pub(crate) fn build(attrs: &Attrs) -> Result<Box<dyn Op>, Error> {
        let op = "TreeEnsembleClassifier";
        let labels = attrs
            .labels("classlabels_int64s")
            .ok_or_else(|| attrs.error("no classlabels_int64s or classlabels_strings"))?;
        let forest = Forest::build(attrs, "class", labels.len())?;
        let mut voted: Vec<u32> = forest.weights.iter().map(|&(c, _)| c).collect();
        voted.sort_unstable();
        voted.dedup();
        Ok(Box::new(Classifier {
            single_score: labels.len() == 2 && voted.len() == 1,
            weights_all_positive: forest.weights.iter().all(|&(_, w)| w >= 0.0),
            base_values: attrs.floats_or_tensor("base_values")?,
            transform: PostTransform::parse(op, &attrs.string_or("post_transform", "NONE"))?,
            forest,
            labels,
        }))
    }

    /// The winning class index of one row and its probability columns, appended to `out`.
    /// Follows onnxruntime's rules, including its handling of two classes.
    fn finish_row(&self, scores: &mut Vec<f64>, has: &mut [bool], out: &mut Vec<f32>) -> usize {
        let base = &self.base_values;
        if self.labels.len() > 2 {
            for (j, b) in base.iter().enumerate().take(scores.len()) {
                scores[j] += b;
                has[j] = true;
            }
            let mut best: Option<usize> = None;
            for j in 0..scores.len() {
                if has[j] && best.is_none_or(|b| scores[j] > scores[b]) {
                    best = Some(j);
                }
            }
            write_scores(scores, self.transform, None, out);
            return best.unwrap_or(0);
        }
        // Two classes.
        match base.len() {
            2 if has[1] => {
                scores[1] = base[1] + scores[0];
                scores[0] = -scores[1];
            }
            2 => {
                scores[0] += base[0];
                scores[1] += base[1];
            }
            1 => scores[0] += base[0],
            _ => {}
        }
        let (class, second) = self.binary_decision(scores[if has[1] { 1 } else { 0 }]);
        if !has[1] && base.len() != 2 {
            scores.truncate(1);
        }
        write_scores(scores, self.transform, second, out);
        class
    }

    /// The class of a two-class row from its deciding score, and how a lone score becomes
    /// two columns.
    fn binary_decision(&self, score: f64) -> (usize, Option<SecondClass>) {
        if !self.single_score {
            return (usize::from(score > 0.0), Some(SecondClass::FromMargin));
        }
        if self.weights_all_positive {
            (usize::from(score > 0.5), Some(SecondClass::FromProbability))
        } else {
            (usize::from(score > 0.0), Some(SecondClass::FromMargin))
        }
    }
}

impl Op for Classifier {
    fn run(&self, inputs: &[Option<&Value>]) -> Result<Vec<Value>, Error> {
        let op = "TreeEnsembleClassifier";
        let (n, c, x) = self.forest.rows(op, input_tensor(op, inputs, 0)?)?;
        let k = self.labels.len();
        let (mut scores, mut has) = (vec![0.0; k], vec![false; k]);
        let mut classes = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(n * k);
        for row in x.chunks_exact(c.max(1)).take(n) {
            scores.resize(k, 0.0);
            self.forest
                .score_row(row, Aggregate::Sum, &mut scores, &mut has);
            classes.push(self.finish_row(&mut scores, &mut has, &mut out));
        }
        Ok(vec![
            Value::Tensor(self.labels.pick(&classes)),
            Value::Tensor(Tensor::from_parts(vec![n, k], TensorData::F32(out))),
        ])
    }
}
