//! One regression tree and its leaf-wise (best-first) growth from gradient histograms.

use serde::{Deserialize, Serialize};

use crate::binning::{BinnedMatrix, Binner};
use crate::histogram::{Histogram, Split, SplitRules, Stats, best_split};

/// A node of a [`Tree`]; children are indices into [`Tree::nodes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, `NaN` follows `missing_left`.
    Split {
        feature: usize,
        #[serde(with = "threshold_json")]
        threshold: f64,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// A leaf's contribution to the raw score, learning rate included.
    Leaf { value: f64 },
}

/// A binary tree whose root is `nodes[0]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes, parents before their children.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The value of the leaf a raw row falls into.
    pub(crate) fn predict(&self, row: &[f64]) -> f64 {
        let mut id = 0;
        loop {
            match self.nodes[id] {
                Node::Leaf { value } => return value,
                Node::Split {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => {
                    let v = row[feature];
                    let go_left = if v.is_nan() {
                        missing_left
                    } else {
                        v <= threshold
                    };
                    id = if go_left { left } else { right };
                }
            }
        }
    }

    /// The number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }
}

/// JSON has no infinity, and the split "missing or not" has `+inf` as its threshold, so
/// thresholds are numbers when finite and the string `"inf"` otherwise.
mod threshold_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(t: &f64, s: S) -> Result<S::Ok, S::Error> {
        if t.is_finite() {
            Repr::Number(*t).serialize(s)
        } else {
            Repr::Text(t.to_string()).serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(t) => Ok(t),
            Repr::Text(text) => match text.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!(
                    "threshold {text:?} is not a number"
                ))),
            },
        }
    }
}

/// Limits on a tree's shape and leaf values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrowParams {
    pub max_leaf_nodes: usize,
    pub max_depth: Option<usize>,
    pub rules: SplitRules,
    pub learning_rate: f64,
}

/// A leaf of the finished tree: the range of the sample indices it holds and its value.
pub(crate) struct LeafRange {
    pub start: usize,
    pub end: usize,
    pub value: f64,
}

/// The training data a grower reads.
pub(crate) struct GrowData<'a> {
    pub binned: &'a BinnedMatrix,
    pub binner: &'a Binner,
    pub n_bins: &'a [usize],
}

/// A leaf that may still be split.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    stats: Stats,
    hist: Option<Histogram>,
    split: Option<Split>,
}

/// Grows one tree on the samples in `indices` (reordered so each leaf's samples are contiguous)
/// and returns it with the leaves' sample ranges, so the caller can update raw scores without
/// walking the tree.
pub(crate) fn grow(
    data: &GrowData,
    indices: &mut [u32],
    grad: &[f64],
    hess: &[f64],
    params: &GrowParams,
) -> (Tree, Vec<LeafRange>) {
    let n_features = data.n_bins.len();
    let mut stats = Stats::default();
    for &i in indices.iter() {
        stats.g += grad[i as usize];
        stats.h += hess[i as usize];
    }
    stats.n = indices.len();
    let mut root = Open {
        node: 0,
        start: 0,
        end: indices.len(),
        depth: 0,
        stats,
        hist: None,
        split: None,
    };
    if can_split(&root, params) {
        let hist = Histogram::build(data.binned, n_features, indices, grad, hess);
        root.split = best_split(&hist, data.n_bins, stats, &params.rules);
        root.hist = Some(hist);
    }
    let mut nodes = vec![Node::Leaf { value: 0.0 }];
    let mut open = vec![root];
    let mut scratch: Vec<u32> = Vec::new();
    while open.len() < params.max_leaf_nodes {
        let Some(best) = open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.split.map(|s| (i, s.gain)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
        else {
            break;
        };
        let parent = open.swap_remove(best);
        let split = parent.split.expect("chosen for its split");
        let mid = partition(
            data.binned.column(split.feature),
            &mut indices[parent.start..parent.end],
            &split,
            &mut scratch,
        ) + parent.start;
        let (left_id, right_id) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf { value: 0.0 });
        nodes.push(Node::Leaf { value: 0.0 });
        nodes[parent.node] = Node::Split {
            feature: split.feature,
            threshold: data.binner.threshold(split.feature, split.bin),
            missing_left: split.missing_left,
            left: left_id,
            right: right_id,
        };
        let child = |node, start, end, stats| Open {
            node,
            start,
            end,
            depth: parent.depth + 1,
            stats,
            hist: None,
            split: None,
        };
        let mut left = child(left_id, parent.start, mid, split.left);
        let mut right = child(right_id, mid, parent.end, split.right);
        if can_split(&left, params) || can_split(&right, params) {
            // Scan the smaller child; the larger one's histogram is the parent's minus it.
            let (small, large) = if left.end - left.start <= right.end - right.start {
                (&mut left, &mut right)
            } else {
                (&mut right, &mut left)
            };
            let small_hist = Histogram::build(
                data.binned,
                n_features,
                &indices[small.start..small.end],
                grad,
                hess,
            );
            let mut large_hist = parent.hist.expect("a split node has a histogram");
            large_hist.subtract(&small_hist);
            small.hist = Some(small_hist);
            large.hist = Some(large_hist);
            for c in [&mut left, &mut right] {
                if can_split(c, params) {
                    let hist = c.hist.as_ref().expect("just built");
                    c.split = best_split(hist, data.n_bins, c.stats, &params.rules);
                }
                if c.split.is_none() {
                    c.hist = None;
                }
            }
        }
        open.push(left);
        open.push(right);
    }
    let mut leaves = Vec::with_capacity(open.len());
    for leaf in open {
        let value = -params.learning_rate * leaf.stats.g / (leaf.stats.h + params.rules.l2);
        nodes[leaf.node] = Node::Leaf { value };
        leaves.push(LeafRange {
            start: leaf.start,
            end: leaf.end,
            value,
        });
    }
    (Tree { nodes }, leaves)
}

fn can_split(o: &Open, params: &GrowParams) -> bool {
    o.stats.n >= 2 * params.rules.min_samples_leaf.max(1)
        && params.max_depth.is_none_or(|d| o.depth < d)
}

/// Stable partition of `indices` by the split; returns the number that went left.
fn partition(column: &[u8], indices: &mut [u32], split: &Split, scratch: &mut Vec<u32>) -> usize {
    scratch.clear();
    let mut n_left = 0;
    for k in 0..indices.len() {
        let i = indices[k];
        if split.goes_left(column[i as usize]) {
            indices[n_left] = i;
            n_left += 1;
        } else {
            scratch.push(i);
        }
    }
    indices[n_left..].copy_from_slice(scratch);
    n_left
}
