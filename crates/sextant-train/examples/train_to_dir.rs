//! Trains a linear or logistic model on a CSV and writes an MLflow model directory; the
//! Python interop test (`tests/python/test_builtin_models.py`) drives it.
//!
//! ```text
//! train_to_dir linear|logistic CSV TARGET OUT_DIR [PENALTY]
//! ```
//!
//! `PENALTY` is `l2` for linear (default 0) and `C` for logistic (default 1; `inf` for
//! none). Prints the coefficients and the model's own predictions on the CSV as JSON.

use std::path::Path;

use serde_json::json;
use sextant_train::{data, linear, logistic, mlflow_model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, csv, target, out, rest @ ..] = args.as_slice() else {
        return Err("usage: train_to_dir linear|logistic CSV TARGET OUT_DIR [PENALTY]".into());
    };
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
