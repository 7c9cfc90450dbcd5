//! ONNX export of gradient-boosted trees as one `ai.onnx.ml` `TreeEnsembleRegressor` or
//! `TreeEnsembleClassifier` node (the classifier's followed by `ZipMap`), with the outputs
//! skl2onnx gives scikit-learn's `HistGradientBoosting*` models.
//!
//! The node's attributes are the arrays of [`sextant_gbdt::TreeEnsemble`], copied as they are:
//! thresholds, leaf weights and base values are stored as `floats`, which loses nothing on
//! thresholds because the trainer picks them among `f32` values when the data were `f32`.

use sextant_gbdt::{EnsembleKind, Gbdt, PostTransform, TreeEnsemble};

use crate::Result;
use crate::onnx::{
    INPUT_NAME, LABEL_OUTPUT, ML_DOMAIN, PROBABILITY_TENSOR, REGRESSION_OUTPUT, classifier_outputs,
    int_attribute, ints_attribute as ints, model_proto, node, pb, unknown, value_info, zipmap,
};
use pb::attribute_proto::AttributeType;
use pb::tensor_proto::DataType;

/// Name of the graph of every tree-ensemble model this crate writes.
pub const GBDT_GRAPH: &str = "sextant_gbdt";

/// `X [N, F]` → `TreeEnsembleRegressor` → `variable [N, 1]` for a regression model, or
/// `TreeEnsembleClassifier` → `label [N]` (int64) and `[N, K]` probabilities for a binary
/// (`K` = 2) or multiclass one, zipped into `probabilities`, one map per row from class to
/// probability. `NaN` inputs are missing values, routed as in training.
pub fn gbdt_model(model: &Gbdt, feature_names: &[String]) -> Result<pb::ModelProto> {
    let ensemble = model.to_tree_ensemble();
    let f = model.n_features();
    let input = value_info(INPUT_NAME, DataType::Float, &[None, Some(f as i64)]);
    let mut attributes = node_attributes(&ensemble);
    let (op_type, node_outputs, outputs) = match ensemble.kind {
        EnsembleKind::Regressor => {
            attributes.extend([
                int_attribute("n_targets", ensemble.n_targets),
                ints("target_ids", &ensemble.target_ids),
                ints("target_nodeids", &ensemble.target_nodeids),
                ints("target_treeids", &ensemble.target_treeids),
                floats("target_weights", &ensemble.target_weights),
            ]);
            let outputs = vec![value_info(
                REGRESSION_OUTPUT,
                DataType::Float,
                &[None, Some(ensemble.n_targets)],
            )];
            ("TreeEnsembleRegressor", vec![REGRESSION_OUTPUT], outputs)
        }
        EnsembleKind::Classifier => {
            attributes.extend([
                ints("classlabels_int64s", &ensemble.classlabels_int64s),
                ints("class_ids", &ensemble.target_ids),
                ints("class_nodeids", &ensemble.target_nodeids),
                ints("class_treeids", &ensemble.target_treeids),
                floats("class_weights", &ensemble.target_weights),
            ]);
            (
                "TreeEnsembleClassifier",
                vec![LABEL_OUTPUT, PROBABILITY_TENSOR],
                classifier_outputs(),
            )
        }
    };
    let mut tree_node = node(op_type, &[INPUT_NAME], &node_outputs, attributes);
    tree_node.domain = ML_DOMAIN.into();
    let mut nodes = vec![tree_node];
    if ensemble.kind == EnsembleKind::Classifier {
        nodes.push(zipmap(&ensemble.classlabels_int64s));
    }
    let graph = pb::GraphProto {
        name: GBDT_GRAPH.into(),
        node: nodes,
        input: vec![input],
        output: outputs,
        ..Default::default()
    };
    model_proto(graph, feature_names, f, true)
}

/// The ensemble of a graph [`gbdt_model`] wrote, with its number of input columns. The arrays
/// are checked to form valid trees over that many features.
pub(crate) fn read_ensemble(graph: &pb::GraphProto) -> Result<(TreeEnsemble, usize)> {
    use pb::tensor_shape_proto::dimension::Value;
    // A classifier's ensemble is followed by ZipMap (not in models written before it was).
    let node = match graph.node.as_slice() {
        [node] => node,
        [node, zipmap] if zipmap.op_type == "ZipMap" => node,
        _ => {
            return Err(unknown(
                "a tree-ensemble graph has one node, then a classifier's ZipMap",
            ));
        }
    };
    let width = graph
        .input
        .first()
        .and_then(|i| {
            let pb::type_proto::Value::TensorType(t) = i.r#type.as_ref()?.value.as_ref()? else {
                return None;
            };
            match t.shape.as_ref()?.dim.get(1)?.value {
                Some(Value::DimValue(w)) => usize::try_from(w).ok(),
                _ => None,
            }
        })
        .ok_or_else(|| unknown("the input has no fixed number of columns"))?;
    let find = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let ints = |name: &str| find(name).map(|a| a.ints.clone()).unwrap_or_default();
    let floats = |name: &str| -> Vec<f64> {
        find(name).map_or_else(Vec::new, |a| {
            a.floats.iter().map(|&v| f64::from(v)).collect()
        })
    };
    let (kind, prefix) = match node.op_type.as_str() {
        "TreeEnsembleRegressor" => (EnsembleKind::Regressor, "target"),
        "TreeEnsembleClassifier" => (EnsembleKind::Classifier, "class"),
        other => return Err(unknown(format!("unexpected operator {other:?}"))),
    };
    let post_transform = match find("post_transform").map(|a| a.s.as_slice()) {
        None | Some(b"NONE") => PostTransform::None,
        Some(b"LOGISTIC") => PostTransform::Logistic,
        Some(b"SOFTMAX") => PostTransform::Softmax,
        Some(other) => {
            let other = String::from_utf8_lossy(other);
            return Err(unknown(format!("unsupported post_transform {other:?}")));
        }
    };
    let ensemble = TreeEnsemble {
        kind,
        n_targets: find("n_targets").map_or(0, |a| a.i),
        classlabels_int64s: ints("classlabels_int64s"),
        nodes_treeids: ints("nodes_treeids"),
        nodes_nodeids: ints("nodes_nodeids"),
        nodes_featureids: ints("nodes_featureids"),
        nodes_modes: find("nodes_modes").map_or_else(Vec::new, |a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }),
        nodes_values: floats("nodes_values"),
        nodes_truenodeids: ints("nodes_truenodeids"),
        nodes_falsenodeids: ints("nodes_falsenodeids"),
        nodes_missing_value_tracks_true: ints("nodes_missing_value_tracks_true"),
        target_ids: ints(&format!("{prefix}_ids")),
        target_nodeids: ints(&format!("{prefix}_nodeids")),
        target_treeids: ints(&format!("{prefix}_treeids")),
        target_weights: floats(&format!("{prefix}_weights")),
        base_values: floats("base_values"),
        post_transform,
    };
    // Evaluating no rows checks every reference in the arrays.
    ensemble
        .evaluate(&[], width)
        .map_err(|e| unknown(e.to_string()))?;
    Ok((ensemble, width))
}

/// The attributes both operators share: the tree structure, base values and post transform.
fn node_attributes(e: &TreeEnsemble) -> Vec<pb::AttributeProto> {
    let mut attributes = vec![
        ints("nodes_treeids", &e.nodes_treeids),
        ints("nodes_nodeids", &e.nodes_nodeids),
        ints("nodes_featureids", &e.nodes_featureids),
        strings("nodes_modes", &e.nodes_modes),
        floats("nodes_values", &e.nodes_values),
        ints("nodes_truenodeids", &e.nodes_truenodeids),
        ints("nodes_falsenodeids", &e.nodes_falsenodeids),
        ints(
            "nodes_missing_value_tracks_true",
            &e.nodes_missing_value_tracks_true,
        ),
        floats("base_values", &e.base_values),
    ];
    attributes.push(pb::AttributeProto {
        name: "post_transform".into(),
        r#type: AttributeType::String as i32,
        s: e.post_transform.as_str().as_bytes().to_vec(),
        ..Default::default()
    });
    attributes
}

/// A `floats` attribute; the operators take `f32` values.
fn floats(name: &str, values: &[f64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: values.iter().map(|&v| v as f32).collect(),
        ..Default::default()
    }
}

fn strings(name: &str, values: &[String]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use sextant_gbdt::{Objective, Params};

    use super::*;
    use crate::onnx::{IR_VERSION, ML_OPSET, PROBABILITIES_OUTPUT, TrainedModel, to_bytes};

    /// Three features, the first carrying the signal, every seventh value of it missing.
    fn fit(objective: Objective) -> Gbdt {
        let n = 200;
        let mut x = Vec::with_capacity(n * 3);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let t = i as f64 / n as f64;
            let first = if i % 7 == 0 { f64::NAN } else { t };
            x.extend([first, (i as f64 * 0.7).sin(), (i % 5) as f64]);
            y.push(match objective {
                Objective::Regression => 3.0 * t + (i % 5) as f64,
                Objective::Binary => f64::from(t > 0.5),
                Objective::Multiclass { n_classes } => (i * n_classes / n) as f64,
            });
        }
        let params = Params {
            objective,
            n_trees: 5,
            min_samples_leaf: 5,
            ..Default::default()
        };
        Gbdt::fit(&params, &x, 3, &y).unwrap()
    }

    fn names() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    fn attribute<'a>(node: &'a pb::NodeProto, name: &str) -> &'a pb::AttributeProto {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no attribute {name}"))
    }

    /// Encodes and decodes the model, returning its tree-ensemble node and output names.
    fn round_trip(model: &Gbdt) -> (pb::NodeProto, Vec<String>) {
        let bytes = to_bytes(&gbdt_model(model, &names()).unwrap());
        let decoded = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.ir_version, IR_VERSION);
        let ml = decoded.opset_import.iter().find(|o| o.domain == ML_DOMAIN);
        assert_eq!(ml.map(|o| o.version), Some(ML_OPSET));
        let graph = decoded.graph.unwrap();
        assert_eq!(graph.name, GBDT_GRAPH);
        assert_eq!(graph.input[0].name, INPUT_NAME);
        let outputs = graph.output.iter().map(|o| o.name.clone()).collect();
        let mut nodes = graph.node.into_iter();
        let node = nodes.next().unwrap();
        assert_eq!(node.domain, ML_DOMAIN);
        if node.op_type == "TreeEnsembleClassifier" {
            let zipmap = nodes.next().unwrap();
            assert_eq!(
                (zipmap.op_type.as_str(), zipmap.domain.as_str()),
                ("ZipMap", ML_DOMAIN)
            );
            assert_eq!(zipmap.input, [PROBABILITY_TENSOR]);
            assert_eq!(zipmap.output, [PROBABILITIES_OUTPUT]);
            assert_eq!(
                attribute(&zipmap, "classlabels_int64s").ints,
                attribute(&node, "classlabels_int64s").ints
            );
        }
        assert!(nodes.next().is_none());
        (node, outputs)
    }

    #[test]
    fn regressor_round_trips_with_the_ensemble_arrays() {
        let model = fit(Objective::Regression);
        let ensemble = model.to_tree_ensemble();
        let (node, outputs) = round_trip(&model);
        assert_eq!(node.op_type, "TreeEnsembleRegressor");
        assert_eq!(outputs, [REGRESSION_OUTPUT]);
        assert_eq!(attribute(&node, "n_targets").i, 1);
        assert_eq!(
            attribute(&node, "nodes_featureids").ints,
            ensemble.nodes_featureids
        );
        let thresholds: Vec<f32> = ensemble.nodes_values.iter().map(|&v| v as f32).collect();
        assert_eq!(attribute(&node, "nodes_values").floats, thresholds);
        assert_eq!(
            attribute(&node, "nodes_missing_value_tracks_true").ints,
            ensemble.nodes_missing_value_tracks_true
        );
        let modes: Vec<&[u8]> = attribute(&node, "nodes_modes")
            .strings
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert!(modes.contains(&b"BRANCH_LEQ".as_slice()) && modes.contains(&b"LEAF".as_slice()));
        assert_eq!(
            attribute(&node, "target_weights").floats.len(),
            ensemble.target_weights.len()
        );
        assert_eq!(attribute(&node, "post_transform").s, b"NONE");
    }

    #[test]
    fn binary_classifier_has_one_score_column_and_logistic_transform() {
        let (node, outputs) = round_trip(&fit(Objective::Binary));
        assert_eq!(node.op_type, "TreeEnsembleClassifier");
        assert_eq!(outputs, [LABEL_OUTPUT, PROBABILITIES_OUTPUT]);
        assert_eq!(node.output, [LABEL_OUTPUT, PROBABILITY_TENSOR]);
        assert_eq!(attribute(&node, "classlabels_int64s").ints, [0, 1]);
        assert!(attribute(&node, "class_ids").ints.iter().all(|&c| c == 0));
        assert_eq!(attribute(&node, "base_values").floats.len(), 1);
        assert_eq!(attribute(&node, "post_transform").s, b"LOGISTIC");
    }

    #[test]
    fn multiclass_classifier_scores_every_class() {
        let (node, _) = round_trip(&fit(Objective::Multiclass { n_classes: 3 }));
        assert_eq!(attribute(&node, "classlabels_int64s").ints, [0, 1, 2]);
        let mut classes = attribute(&node, "class_ids").ints.clone();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes, [0, 1, 2]);
        assert_eq!(attribute(&node, "base_values").floats.len(), 3);
        assert_eq!(attribute(&node, "post_transform").s, b"SOFTMAX");
    }

    #[test]
    fn read_gives_back_the_ensemble_at_f32_precision() {
        for objective in [
            Objective::Regression,
            Objective::Binary,
            Objective::Multiclass { n_classes: 3 },
        ] {
            let model = fit(objective);
            let bytes = to_bytes(&gbdt_model(&model, &names()).unwrap());
            let back = crate::onnx::read(&bytes).unwrap();
            assert_eq!(back.feature_names, names());
            let TrainedModel::Gbdt(ensemble) = back.model else {
                panic!("read back as {:?}", back.model)
            };
            let mut expected = model.to_tree_ensemble();
            for v in expected
                .nodes_values
                .iter_mut()
                .chain(&mut expected.target_weights)
                .chain(&mut expected.base_values)
            {
                *v = f64::from(*v as f32);
            }
            assert_eq!(*ensemble, expected);
        }
    }

    #[test]
    fn a_classifier_written_before_zipmap_still_reads_back() {
        // Models registered before the export ended in ZipMap have the ensemble node alone.
        let model = fit(Objective::Binary);
        let mut proto = gbdt_model(&model, &names()).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        graph.node.truncate(1);
        graph.node[0].output[1] = PROBABILITIES_OUTPUT.into();
        let back = crate::onnx::read(&to_bytes(&proto)).unwrap();
        assert!(matches!(back.model, TrainedModel::Gbdt(_)), "{back:?}");
    }

    #[test]
    fn feature_names_must_match_the_model_width() {
        let model = fit(Objective::Regression);
        assert!(gbdt_model(&model, &names()[..2]).is_err());
    }
}
