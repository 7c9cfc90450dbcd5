//! Trains through the public API and writes MLflow model directories to a temp dir.

use prost::Message;
use sextant_gbdt::{Gbdt, Objective, Params};
use sextant_train::data::Matrix;
use sextant_train::onnx::{TrainedModel, pb};
use sextant_train::{linear, logistic, mlflow_model, onnx};

fn features(n: usize) -> Matrix {
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let t = i as f64;
            vec![(t * 0.37).sin() * 10.0, (t * 1.1).cos(), t / 10.0]
        })
        .collect();
    Matrix::from_rows(&rows).unwrap()
}

fn feature_names() -> Vec<String> {
    ["wind", "temp", "hour"].map(String::from).to_vec()
}

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn linear_model_directory_has_mlflow_layout_and_weights() {
    let x = features(40);
    let y: Vec<f64> = (0..40)
        .map(|i| 2.0 * x.row(i)[0] - x.row(i)[1] + 0.5 * x.row(i)[2] + 3.0)
        .collect();
    let model = linear::fit(&x, &y, &linear::LinearParams::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let saved = mlflow_model::save_linear(&dir, &model, &feature_names(), &x).unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "MLmodel",
            "conda.yaml",
            "input_example.json",
            "model.onnx",
            "python_env.yaml",
            "requirements.txt",
            "serving_input_example.json"
        ]
    );

    let mlmodel = read(&dir, "MLmodel");
    assert!(mlmodel.contains("loader_module: mlflow.onnx"), "{mlmodel}");
    assert!(mlmodel.contains(&format!("model_uuid: {}", saved.model_uuid)));
    // A column signature: requests are matched to the features by name.
    assert!(
        mlmodel.contains(
            r#"inputs: '[{"name":"wind","required":true,"type":"double"},{"name":"temp","required":true,"type":"double"},{"name":"hour","required":true,"type":"double"}]'"#
        ),
        "{mlmodel}"
    );
    assert!(mlmodel.contains(r#""name":"variable""#), "{mlmodel}");
    assert!(mlmodel.contains("pandas_orient: split\n"), "{mlmodel}");

    let example: serde_json::Value =
        serde_json::from_str(&read(&dir, "input_example.json")).unwrap();
    assert_eq!(example["columns"], serde_json::json!(feature_names()));
    assert_eq!(example["data"].as_array().unwrap().len(), 5);
    assert_eq!(example["data"][1][0], f64::from(x.row(1)[0] as f32));
    let serving: serde_json::Value =
        serde_json::from_str(&read(&dir, "serving_input_example.json")).unwrap();
    assert_eq!(serving["dataframe_split"], example);

    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let proto = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(proto.ir_version, onnx::IR_VERSION);
    let graph = proto.graph.unwrap();
    let weights: Vec<f32> = model.coefficients.iter().map(|&w| w as f32).collect();
    assert_eq!(graph.initializer[0].float_data, weights);
    assert_eq!(graph.initializer[1].float_data, [model.intercept as f32]);

    let back = mlflow_model::load(&dir).unwrap();
    assert_eq!(back.feature_names, feature_names());
    let TrainedModel::Linear(back) = back.model else {
        panic!("read back as {:?}", back.model)
    };
    let widened: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
    assert_eq!(back.coefficients, widened);
}

#[test]
fn integer_features_are_long_columns_unless_all_are() {
    let x = Matrix::from_rows(&[vec![1.5, 3.0, 0.0], vec![2.25, 4.0, 1.0]]).unwrap();
    let model = linear::LinearModel {
        coefficients: vec![1.0, 1.0, 1.0],
        intercept: 0.0,
    };
    let tmp = tempfile::tempdir().unwrap();
    mlflow_model::save_linear(tmp.path(), &model, &feature_names(), &x).unwrap();
    let mlmodel = read(tmp.path(), "MLmodel");
    assert!(
        mlmodel.contains(
            r#"[{"name":"wind","required":true,"type":"double"},{"name":"temp","required":true,"type":"long"},{"name":"hour","required":true,"type":"long"}]"#
        ),
        "{mlmodel}"
    );
    let example: serde_json::Value =
        serde_json::from_str(&read(tmp.path(), "input_example.json")).unwrap();
    assert_eq!(example["data"][1], serde_json::json!([2.25, 4, 1]));
    // All integers: MLflow's onnx flavor would hand an int64 table to the float input.
    let x = Matrix::from_rows(&[vec![1.0, 3.0, 0.0]]).unwrap();
    mlflow_model::save_linear(tmp.path(), &model, &feature_names(), &x).unwrap();
    let mlmodel = read(tmp.path(), "MLmodel");
    assert!(!mlmodel.contains("long"), "{mlmodel}");
    let e = mlflow_model::save_linear(tmp.path(), &model, &feature_names()[..2], &x).unwrap_err();
    assert!(e.to_string().contains("feature names"), "{e}");
}

/// A classifier's signature: the same column signature as a regressor's, and the output
/// schema `mlflow.models.infer_signature` gives a ZipMap classifier.
fn assert_classifier_signature(mlmodel: &str) {
    assert!(
        mlmodel.contains(
            r#"inputs: '[{"name":"wind","required":true,"type":"double"},{"name":"temp","required":true,"type":"double"},{"name":"hour","required":true,"type":"double"}]'"#
        ),
        "{mlmodel}"
    );
    assert!(
        mlmodel.contains(r#"outputs: '[{"required":true,"type":"any"}]'"#),
        "{mlmodel}"
    );
    assert!(mlmodel.contains("  type: dataframe\n"), "{mlmodel}");
}

#[test]
fn logistic_model_directory_declares_label_and_probabilities() {
    let x = features(60);
    let y: Vec<f64> = (0..60)
        .map(|i| f64::from(x.row(i)[0] + x.row(i)[1] > 0.3))
        .collect();
    let model = logistic::fit(&x, &y, &logistic::LogisticParams::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    mlflow_model::save_logistic(tmp.path(), &model, &feature_names(), &x).unwrap();

    assert_classifier_signature(&read(tmp.path(), "MLmodel"));
    assert_eq!(
        read(tmp.path(), "requirements.txt")
            .lines()
            .collect::<Vec<_>>(),
        [
            "mlflow==3.17.2",
            "numpy==2.4.6",
            "onnx==1.23.2",
            "onnxruntime==1.32.0"
        ]
    );
    let bytes = std::fs::read(tmp.path().join("model.onnx")).unwrap();
    let graph = pb::ModelProto::decode(bytes.as_slice())
        .unwrap()
        .graph
        .unwrap();
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["label", "probabilities"]);
    assert_eq!(graph.node.last().unwrap().op_type, "ZipMap");
}

#[test]
fn gbdt_directory_declares_class_probabilities_and_reads_back() {
    // The first rows miss a value: the input example skips them, since JSON has no NaN.
    let mut rows: Vec<Vec<f64>> = (0..90).map(|i| features(90).row(i).to_vec()).collect();
    for row in rows.iter_mut().take(3) {
        row[1] = f64::NAN;
    }
    let x = Matrix::from_rows(&rows).unwrap();
    let y: Vec<f64> = (0..90).map(|i| (i % 3) as f64).collect();
    let params = Params {
        objective: Objective::Multiclass { n_classes: 3 },
        n_trees: 3,
        min_samples_leaf: 5,
        ..Default::default()
    };
    let model = Gbdt::fit(&params, x.as_slice(), x.cols(), &y).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    mlflow_model::save_gbdt(tmp.path(), &model, &feature_names(), &x).unwrap();

    assert_classifier_signature(&read(tmp.path(), "MLmodel"));
    let example: serde_json::Value =
        serde_json::from_str(&read(tmp.path(), "input_example.json")).unwrap();
    assert_eq!(example["data"].as_array().unwrap().len(), 5);
    assert_eq!(example["data"][0][0], f64::from(x.row(3)[0] as f32));

    let back = mlflow_model::load(tmp.path()).unwrap();
    assert_eq!(back.feature_names, feature_names());
    let TrainedModel::Gbdt(ensemble) = back.model else {
        panic!("read back as {:?}", back.model)
    };
    // The stored ensemble predicts what the model does, up to f32 weights.
    let ours = model.predict(x.as_slice()).unwrap();
    let stored = ensemble.evaluate(x.as_slice(), x.cols()).unwrap();
    assert_eq!(ours.len(), stored.len());
    for (a, b) in ours.iter().zip(&stored) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}
