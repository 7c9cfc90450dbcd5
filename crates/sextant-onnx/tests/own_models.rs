//! Sextant's own trainers' ONNX exports (sextant-train's linear and logistic graphs,
//! sextant-gbdt's tree ensembles) load and reproduce the trainers' own predictions. The
//! exports store weights as f32, so agreement is to 1e-4 relative, not bit for bit.

use anyhow::Result;
use sextant_gbdt::{Gbdt, Objective, Params};
use sextant_onnx::{Labels, Model, Records, Tensor, ValueKind};
use sextant_train::data::Matrix;
use sextant_train::{linear, logistic, onnx, onnx_trees};

const ROWS: usize = 200;
const COLS: usize = 3;

/// Row-major features whose values are exact in f32, so tree thresholds decide alike.
fn features() -> Vec<f64> {
    (0..ROWS * COLS)
        .map(|i| ((i * 37 + i / 7) % 101) as f64 / 8.0 - 6.0)
        .collect()
}

fn names() -> Vec<String> {
    (0..COLS).map(|i| format!("f{i}")).collect()
}

fn run(model: &onnx::pb::ModelProto, x: &[f64]) -> Result<Vec<sextant_onnx::Output>> {
    let model = Model::load(&onnx::to_bytes(model))?;
    let input = Tensor::f32(vec![ROWS, COLS], x.iter().map(|&v| v as f32).collect())?;
    Ok(model.run([(onnx::INPUT_NAME, input)])?)
}

/// A classifier's `probabilities`: ZipMap's maps, keyed by the classes `0..k`, declared as
/// a sequence of maps.
fn probability_maps(
    model: &onnx::pb::ModelProto,
    out: &[sextant_onnx::Output],
    k: usize,
) -> Vec<f32> {
    let loaded = Model::load(&onnx::to_bytes(model)).unwrap();
    assert_eq!(loaded.outputs()[1].kind, ValueKind::Records);
    assert_eq!(out[1].name, onnx::PROBABILITIES_OUTPUT);
    let records: &Records = out[1].value.as_records().unwrap();
    assert_eq!(records.keys, Labels::Int((0..k as i64).collect()));
    assert_eq!(records.rows(), ROWS);
    records.values.clone()
}

fn assert_close(ours: &[f32], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len());
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (f64::from(a) - b).abs() <= 1e-4 * b.abs().max(1.0),
            "[{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn linear_regression_export_matches_the_trainer() -> Result<()> {
    let x = features();
    let y: Vec<f64> = x
        .chunks(COLS)
        .map(|r| 2.0 * r[0] - r[1] + 0.5 * r[2] + 3.0)
        .collect();
    let matrix = Matrix::new(ROWS, COLS, x.clone())?;
    let model = linear::fit(&matrix, &y, &linear::LinearParams { l2: 0.0 })?;
    let out = run(&onnx::linear_regressor(&model, &names())?, &x)?;
    assert_eq!(out[0].name, onnx::REGRESSION_OUTPUT);
    let t = out[0].value.as_tensor().unwrap();
    assert_eq!(t.shape(), [ROWS, 1]);
    assert_close(t.as_f32().unwrap(), &model.predict(&matrix)?);
    Ok(())
}

#[test]
fn logistic_export_matches_the_trainer() -> Result<()> {
    let x = features();
    let y: Vec<f64> = x
        .chunks(COLS)
        .map(|r| f64::from(u8::from(r[0] + 0.3 * r[1] > 0.5)))
        .collect();
    let matrix = Matrix::new(ROWS, COLS, x.clone())?;
    let model = logistic::fit(
        &matrix,
        &y,
        &logistic::LogisticParams {
            c: 1.0,
            max_iter: 100,
        },
    )?;
    let proto = onnx::logistic_classifier(&model, &names())?;
    let out = run(&proto, &x)?;
    let labels = out[0].value.as_tensor().unwrap().as_i64().unwrap().to_vec();
    assert_eq!(labels, model.predict(&matrix)?);
    let p1: Vec<f32> = probability_maps(&proto, &out, 2)
        .chunks(2)
        .map(|r| r[1])
        .collect();
    assert_close(&p1, &model.predict_proba(&matrix)?);
    Ok(())
}

fn gbdt(objective: Objective, y: &[f64]) -> Result<(Gbdt, Vec<f64>)> {
    let x = features();
    let params = Params {
        objective,
        n_trees: 30,
        min_samples_leaf: 5,
        ..Params::default()
    };
    Ok((Gbdt::fit(&params, &x, COLS, y)?, x))
}

#[test]
fn gbdt_regressor_export_matches_the_trainer() -> Result<()> {
    let y: Vec<f64> = features()
        .chunks(COLS)
        .map(|r| r[0] * r[0] - 2.0 * r[2])
        .collect();
    let (model, x) = gbdt(Objective::Regression, &y)?;
    let out = run(&onnx_trees::gbdt_model(&model, &names())?, &x)?;
    assert_close(
        out[0].value.as_tensor().unwrap().as_f32().unwrap(),
        &model.predict(&x)?,
    );
    Ok(())
}

#[test]
fn gbdt_classifier_exports_match_the_trainer() -> Result<()> {
    let rows: Vec<Vec<f64>> = features().chunks(COLS).map(<[f64]>::to_vec).collect();
    let binary: Vec<f64> = rows
        .iter()
        .map(|r| f64::from(u8::from(r[0] > r[1])))
        .collect();
    let three: Vec<f64> = rows
        .iter()
        .map(|r| ((r[0] + 6.0) / 4.5).floor().clamp(0.0, 2.0))
        .collect();
    for (objective, y, k) in [
        (Objective::Binary, binary, 2),
        (Objective::Multiclass { n_classes: 3 }, three, 3),
    ] {
        let (model, x) = gbdt(objective, &y)?;
        let proto = onnx_trees::gbdt_model(&model, &names())?;
        let out = run(&proto, &x)?;
        let expected = model.predict(&x)?;
        assert_close(&probability_maps(&proto, &out, k), &expected);
        let labels = out[0].value.as_tensor().unwrap().as_i64().unwrap();
        for (i, row) in expected.chunks(k).enumerate() {
            let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            assert_eq!(labels[i], best as i64, "row {i}: {row:?}");
        }
    }
    Ok(())
}
