//! Bad models and bad inputs give errors that name the problem, never a panic.

use sextant_onnx::{Error, Model, Tensor};
use sextant_train::linear::LinearModel;
use sextant_train::onnx;

fn linear() -> onnx::pb::ModelProto {
    let m = LinearModel {
        coefficients: vec![1.0, 2.0],
        intercept: 0.5,
    };
    onnx::linear_regressor(&m, &["a".into(), "b".into()]).unwrap()
}

#[test]
fn garbage_bytes_are_not_a_model() {
    assert!(matches!(
        Model::load(b"\xff\xffnot onnx"),
        Err(Error::Decode(_))
    ));
}

#[test]
fn an_unknown_operator_is_named() {
    let mut proto = linear();
    proto.graph.as_mut().unwrap().node[0].op_type = "FancyOp".into();
    let err = Model::load(&onnx::to_bytes(&proto)).unwrap_err();
    assert!(err.to_string().contains("\"FancyOp\""), "{err}");
}

#[test]
fn metadata_describes_inputs_and_outputs() {
    let model = Model::load(&onnx::to_bytes(&linear())).unwrap();
    assert_eq!(model.inputs()[0].name, "X");
    assert_eq!(
        format!("{:?}", model.inputs()[0].kind),
        "Tensor { elem: F32, shape: Some([Free(Some(\"N\")), Fixed(2)]) }"
    );
    assert_eq!(model.outputs()[0].name, "variable");
    let out = model
        .run([("X", Tensor::f32(vec![1, 2], vec![1.0, 1.0]).unwrap())])
        .unwrap();
    assert_eq!(out[0].value.as_tensor().unwrap().as_f32().unwrap(), [3.5]);
}

#[test]
fn wrong_inputs_are_refused_with_their_names() {
    let model = Model::load(&onnx::to_bytes(&linear())).unwrap();
    let good = || Tensor::f32(vec![1, 2], vec![1.0, 1.0]).unwrap();
    let err = model.run([("Y", good())]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown input \"Y\"; the model's inputs are X"
    );
    let none: [(&str, Tensor); 0] = [];
    assert_eq!(
        model.run(none).unwrap_err(),
        Error::MissingInput("X".into())
    );
    let err = model
        .run([("X", Tensor::f32(vec![1, 3], vec![1.0; 3]).unwrap())])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "input \"X\": expected shape [N, 2], got [1, 3]"
    );
    let err = model
        .run([("X", Tensor::i64(vec![1, 2], vec![1, 1]).unwrap())])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "input \"X\": expected element type float, got int64"
    );
    assert!(Tensor::f32(vec![2, 2], vec![1.0]).is_err());
}

#[test]
fn a_dangling_value_is_an_invalid_model() {
    let mut proto = linear();
    proto.graph.as_mut().unwrap().node[1].input[0] = "nowhere".into();
    let err = Model::load(&onnx::to_bytes(&proto)).unwrap_err();
    assert!(err.to_string().contains("\"nowhere\""), "{err}");
}
