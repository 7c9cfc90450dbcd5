//! Conversions end to end: a signature and graph inputs, a request, the tensors or the
//! refusal.

use serde_json::{Value, json};
use sextant_onnx::Dim;

use super::*;
use crate::protocol::Frame;

fn graph_input(name: &str, elem: ElemType, rank: usize) -> ValueInfo {
    ValueInfo {
        name: name.into(),
        kind: ValueKind::Tensor {
            elem,
            shape: Some(
                (0..rank)
                    .map(|i| {
                        if i == 0 {
                            Dim::Free(None)
                        } else {
                            Dim::Fixed(1)
                        }
                    })
                    .collect(),
            ),
        },
    }
}

fn columns_sig(cols: &[(&str, &str)]) -> Signature {
    let items: Vec<Value> = cols
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t, "required": true}))
        .collect();
    Signature {
        inputs: Schema::parse(Some(&Value::Array(items).to_string()), "inputs").unwrap(),
        outputs: Schema::None,
    }
}

fn frame(cols: &[&str], rows: Vec<Vec<Value>>) -> Payload {
    Payload::Frame(Frame {
        columns: Some(cols.iter().map(|c| c.to_string()).collect()),
        rows,
        text_cells: false,
    })
}

#[test]
fn orders_columns_by_the_signature() {
    let sig = columns_sig(&[("a", "double"), ("b", "long")]);
    let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
    let c = plan
        .convert(frame(&["b", "a"], vec![vec![json!(2), json!(1.5)]]))
        .unwrap();
    assert!(c.records);
    assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.5, 2.0]);
    assert_eq!(c.tensors[0].1.shape(), &[1, 2]);
}

#[test]
fn names_missing_extra_and_mistyped_columns() {
    let sig = columns_sig(&[("a", "double"), ("b", "long")]);
    let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
    let e = plan
        .convert(frame(&["a"], vec![vec![json!(1)]]))
        .unwrap_err();
    assert_eq!(e.to_string(), "Model is missing inputs ['b']");
    // A column the signature does not name is ignored, as MLflow ignores it.
    let c = plan
        .convert(frame(
            &["z", "b", "a"],
            vec![vec![json!(9), json!(2), json!(1)]],
        ))
        .unwrap();
    assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.0, 2.0]);
    assert_eq!(c.ignored, ["z"]);
    let e = plan
        .convert(frame(&["b", "z"], vec![vec![json!(2), json!(3)]]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Model is missing inputs ['a']. Note that there were extra inputs: ['z']"
    );
    // Without names, nothing can be matched.
    let e = plan
        .convert(Payload::Frame(Frame {
            columns: None,
            rows: vec![vec![json!(1), json!(2)]],
            text_cells: false,
        }))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Model is missing inputs ['a', 'b']: "),
        "{e}"
    );
    let e = plan
        .convert(frame(&["a", "b"], vec![vec![json!(1), json!(2.5)]]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "column \"b\", row 0: expected an integer (long), got the number 2.5"
    );
    let e = plan
        .convert(frame(&["a", "b"], vec![vec![json!("x"), json!(2)]]))
        .unwrap_err();
    assert!(e.to_string().contains("got the string \"x\""), "{e}");
}

#[test]
fn a_column_signature_takes_bare_tensors_by_position_in_signature_order() {
    let sig = columns_sig(&[("a", "double"), ("b", "long")]);
    let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
    let t = JsonTensor::from_nested(json!([[1.5, 2], [3, 4]]), "inputs").unwrap();
    let c = plan.convert(Payload::Tensor(t)).unwrap();
    assert!(!c.records);
    assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[1.5, 2.0, 3.0, 4.0]);
    let t = JsonTensor::from_nested(json!([[1, 2, 3]]), "inputs").unwrap();
    let e = plan.convert(Payload::Tensor(t)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the input has shape (1, 3); the model takes rows of 2 values"),
        "{e}"
    );
    let t = JsonTensor::from_nested(json!([[1, 2.5]]), "inputs").unwrap();
    let e = plan.convert(Payload::Tensor(t)).unwrap_err();
    assert!(e.to_string().contains("expected an integer (long)"), "{e}");
}

#[test]
fn without_a_column_signature_tables_are_positional_in_the_order_sent() {
    let sig = Signature {
        inputs: Schema::parse(
            Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#),
            "inputs",
        )
        .unwrap(),
        outputs: Schema::None,
    };
    let input = [graph_input("X", ElemType::F32, 2)];
    for (sig, records) in [(sig, false), (Signature::default(), true)] {
        let plan = InputPlan::new(&sig, &input).unwrap();
        let c = plan
            .convert(frame(&["b", "a"], vec![vec![json!(2), json!(1)]]))
            .unwrap();
        assert_eq!(c.records, records);
        assert_eq!(c.tensors[0].1.as_f32().unwrap(), &[2.0, 1.0]);
    }
    let plan = InputPlan::new(
        &Signature {
            inputs: Schema::parse(
                Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#),
                "inputs",
            )
            .unwrap(),
            outputs: Schema::None,
        },
        &input,
    )
    .unwrap();
    let e = plan
        .convert(frame(
            &["a", "b", "c"],
            vec![vec![json!(1), json!(2), json!(3)]],
        ))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Shape of input (1, 3) does not match expected shape (-1, 2)"
    );
}

#[test]
fn checks_tensor_shapes_against_the_spec() {
    let sig = Signature {
        inputs: Schema::parse(
            Some(r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]"#),
            "inputs",
        )
        .unwrap(),
        outputs: Schema::None,
    };
    let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F32, 2)]).unwrap();
    let t = JsonTensor::from_nested(json!([[1, 2]]), "inputs").unwrap();
    let e = plan.convert(Payload::Tensor(t)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Shape of input (1, 2) does not match expected shape (-1, 3)"
    );
    let t = JsonTensor::from_nested(json!([[1, 2, null]]), "inputs").unwrap();
    let c = plan.convert(Payload::Tensor(t)).unwrap();
    assert!(!c.records);
    assert!(c.tensors[0].1.as_f32().unwrap()[2].is_nan());
    let t = JsonTensor::from_nested(json!([[1, 2, "x"]]), "inputs").unwrap();
    let e = plan.convert(Payload::Tensor(t)).unwrap_err();
    assert!(e.to_string().starts_with("input \"X\", element 2"), "{e}");
}

#[test]
fn multi_input_graphs_take_columns_by_name() {
    let sig = columns_sig(&[("x", "float"), ("c", "string")]);
    let inputs = [
        graph_input("x", ElemType::F32, 2),
        graph_input("c", ElemType::Str, 2),
    ];
    let plan = InputPlan::new(&sig, &inputs).unwrap();
    let c = plan
        .convert(frame(
            &["c", "x"],
            vec![vec![json!("a"), json!(1)], vec![json!("b"), json!(2)]],
        ))
        .unwrap();
    assert_eq!(c.tensors[0].0, "x");
    assert_eq!(c.tensors[0].1.shape(), &[2, 1]);
    assert_eq!(c.tensors[1].1.as_strings().unwrap(), &["a", "b"]);
    let t = JsonTensor::from_nested(json!([1, 2]), "inputs").unwrap();
    let columnar = vec![
        ("x".to_owned(), t),
        (
            "c".to_owned(),
            JsonTensor::from_nested(json!(["a", "b"]), "inputs").unwrap(),
        ),
    ];
    let c = plan.convert(Payload::Named(columnar)).unwrap();
    assert!(c.records);
    let e = InputPlan::new(&columns_sig(&[("x", "float")]), &inputs).unwrap_err();
    assert!(e.to_string().contains("\"c\""), "{e}");
}

#[test]
fn csv_cells_are_parsed_by_column_type() {
    let sig = columns_sig(&[("a", "double"), ("b", "long")]);
    let plan = InputPlan::new(&sig, &[graph_input("X", ElemType::F64, 2)]).unwrap();
    let c = plan
        .convert(Payload::Frame(Frame {
            columns: Some(vec!["a".into(), "b".into()]),
            rows: vec![vec![json!("1.5"), json!("2")], vec![json!(""), json!("3")]],
            text_cells: true,
        }))
        .unwrap();
    let v = c.tensors[0].1.as_f64().unwrap();
    assert_eq!((v[0], v[1], v[3]), (1.5, 2.0, 3.0));
    assert!(v[2].is_nan());
}
