//! Trains a linear, logistic or gradient-boosted tree model on a CSV and writes an MLflow
//! model directory; the Python interop tests (`tests/python/test_builtin_models.py`,
//! `tests/python/test_builtin_gbdt.py`) drive it.
//!
//! ```text
//! train_to_dir linear|logistic CSV TARGET OUT_DIR [PENALTY]
//! train_to_dir gbdt CSV TARGET OUT_DIR regression|classification PREDICTIONS_CSV [N_TREES]
//! ```
//!
//! `PENALTY` is `l2` for linear (default 0) and `C` for logistic (default 1; `inf` for
//! none). Prints the coefficients and the model's own predictions on the CSV as JSON.
//!
//! `gbdt` reads empty and `nan` feature cells as missing values; `classification` is binary
//! when the labels are 0 and 1, else multiclass over `0..=max label`. It writes the model's
//! own predictions on the CSV to `PREDICTIONS_CSV` (a `prediction` column, or `label` and
//! `p0`…`pK-1`) and prints a JSON summary.

use std::path::Path;

use serde_json::{Value, json};
use sextant_gbdt::{Gbdt, Objective, Params};
use sextant_train::{data, linear, logistic, mlflow_model};

const USAGE: &str = "usage: train_to_dir linear|logistic CSV TARGET OUT_DIR [PENALTY]
       train_to_dir gbdt CSV TARGET OUT_DIR regression|classification PREDICTIONS_CSV [N_TREES]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, csv, target, out, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    if kind == "gbdt" {
        println!("{}", gbdt(Path::new(csv), target, Path::new(out), rest)?);
        return Ok(());
    }
    let penalty: Option<f64> = rest.first().map(|p| p.parse()).transpose()?;
    let ds = data::load_csv(Path::new(csv), target)?;
    let report = match kind.as_str() {
        "linear" => {
            let params = linear::LinearParams {
                l2: penalty.unwrap_or(0.0),
            };
            let model = linear::fit(&ds.features, &ds.target, &params)?;
            mlflow_model::save_linear(Path::new(out), &model, &ds.feature_names, &ds.features)?;
            json!({
                "feature_names": ds.feature_names,
                "coefficients": model.coefficients,
                "intercept": model.intercept,
                "predictions": model.predict(&ds.features)?,
            })
        }
        "logistic" => {
            let params = logistic::LogisticParams {
                c: penalty.unwrap_or(1.0),
                ..Default::default()
            };
            let model = logistic::fit(&ds.features, &ds.target, &params)?;
            mlflow_model::save_logistic(Path::new(out), &model, &ds.feature_names, &ds.features)?;
            json!({
                "feature_names": ds.feature_names,
                "coefficients": model.coefficients,
                "intercept": model.intercept,
                "probabilities": model.predict_proba(&ds.features)?,
                "labels": model.predict(&ds.features)?,
            })
        }
        other => return Err(format!("unknown model kind {other:?}").into()),
    };
    println!("{report}");
    Ok(())
}

fn gbdt(
    csv: &Path,
    target: &str,
    out: &Path,
    rest: &[String],
) -> Result<Value, Box<dyn std::error::Error>> {
    let [task, predictions_csv, more @ ..] = rest else {
        return Err(USAGE.into());
    };
    let ds = data::load_csv_with_missing(csv, target)?;
    let objective = match task.as_str() {
        "regression" => Objective::Regression,
        "classification" => {
            let max_label = ds.target.iter().copied().fold(0.0, f64::max);
            match max_label as usize + 1 {
                2 => Objective::Binary,
                n_classes => Objective::Multiclass { n_classes },
            }
        }
        other => return Err(format!("unknown gbdt task {other:?}").into()),
    };
    let mut params = Params {
        objective,
        ..Default::default()
    };
    if let Some(n_trees) = more.first() {
        params.n_trees = n_trees.parse()?;
    }
    let x = &ds.features;
    let model = Gbdt::fit(&params, x.as_slice(), x.cols(), &ds.target)?;
    mlflow_model::save_gbdt(out, &model, &ds.feature_names, x)?;

    let predictions = model.predict(x.as_slice())?;
    let mut table = String::new();
    if objective == Objective::Regression {
        table.push_str("prediction\n");
        for p in &predictions {
            table.push_str(&format!("{p}\n"));
        }
    } else {
        let k = predictions.len() / x.rows();
        let columns: Vec<String> = (0..k).map(|c| format!("p{c}")).collect();
        table.push_str(&format!("label,{}\n", columns.join(",")));
        for row in predictions.chunks_exact(k) {
            // The first most probable class, as onnxruntime's ArgMax picks it.
            let label = (0..k).fold(0, |best, c| if row[c] > row[best] { c } else { best });
            let probabilities: Vec<String> = row.iter().map(f64::to_string).collect();
            table.push_str(&format!("{label},{}\n", probabilities.join(",")));
        }
    }
    std::fs::write(predictions_csv, table)?;
    Ok(json!({
        "feature_names": ds.feature_names,
        "objective": format!("{objective:?}"),
        "n_iter": model.n_iter(),
        "n_trees": model.trees().len(),
    }))
}
