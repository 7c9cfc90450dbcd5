//! Sextant's engine against onnxruntime on a zoo of skl2onnx models: `tests/python/make_zoo.py`
//! converts scikit-learn models and records onnxruntime's outputs; every output must match
//! to 1e-5 (relative for values above 1), labels exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;
use sextant_onnx::{Model, Tensor, Value};

/// A Python with skl2onnx and onnxruntime: `$SEXTANT_VENV`, the `python3` on `PATH`
/// (`scripts/test` puts its venv first), or a venv under `~/.cache/sextant`.
fn python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(venv) = std::env::var("SEXTANT_VENV") {
        candidates.push(Path::new(&venv).join("bin/python"));
    }
    candidates.push(PathBuf::from("python3"));
    if let Some(dir) = std::env::var("HOME")
        .ok()
        .and_then(|home| std::fs::read_dir(Path::new(&home).join(".cache/sextant")).ok())
    {
        {
            let mut venvs: Vec<PathBuf> = dir
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("venv-"))
                })
                .map(|p| p.join("bin/python"))
                .collect();
            venvs.sort();
            candidates.extend(venvs);
        }
    }
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import skl2onnx, onnxruntime, sklearn"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn tensor_from_json(doc: &Json) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(doc["shape"].clone())?;
    let data = doc["data"].as_array().context("data")?;
    let f = |v: &Json| v.as_f64().unwrap_or(f64::NAN);
    Ok(match doc["dtype"].as_str().context("dtype")? {
        "float" => Tensor::f32(shape, data.iter().map(|v| f(v) as f32).collect())?,
        "double" => Tensor::f64(shape, data.iter().map(f).collect())?,
        "int64" => Tensor::i64(
            shape,
            data.iter().map(|v| v.as_i64().unwrap_or(0)).collect(),
        )?,
        "string" => Tensor::strings(
            shape,
            data.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect(),
        )?,
        other => bail!("dtype {other}"),
    })
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0) || (ours.is_nan() && theirs.is_nan())
}

fn compare_tensor(what: &str, ours: &Tensor, expected: &Tensor) -> Result<()> {
    if ours.shape() != expected.shape() {
        bail!(
            "{what}: shape {:?}, onnxruntime {:?}",
            ours.shape(),
            expected.shape()
        );
    }
    match (
        ours.as_f32(),
        expected.as_f32(),
        ours.as_f64(),
        expected.as_f64(),
    ) {
        (Some(a), Some(b), _, _) => {
            for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
                if !close(f64::from(x), f64::from(y)) {
                    bail!("{what}[{i}]: {x}, onnxruntime {y}");
                }
            }
        }
        (_, _, Some(a), Some(b)) => {
            for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
                if !close(x, y) {
                    bail!("{what}[{i}]: {x}, onnxruntime {y}");
                }
            }
        }
        _ if ours.data() == expected.data() => {}
        _ => bail!(
            "{what}: {:?}\nonnxruntime: {:?}",
            ours.data(),
            expected.data()
        ),
    }
    Ok(())
}

fn check_model(dir: &Path, name: &str) -> Result<()> {
    let model = Model::load(&std::fs::read(dir.join(format!("{name}.onnx")))?)?;
    let doc: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json")))?)?;
    let inputs = doc["inputs"]
        .as_object()
        .context("inputs")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), tensor_from_json(v)?)))
        .collect::<Result<Vec<_>>>()?;
    let outputs = model.run(inputs)?;
    let expected = doc["outputs"].as_array().context("outputs")?;
    if outputs.len() != expected.len() {
        bail!("{} outputs, onnxruntime {}", outputs.len(), expected.len());
    }
    for (ours, theirs) in outputs.iter().zip(expected) {
        let what = format!("{name}.{}", ours.name);
        if theirs["kind"] == "records" {
            let Value::Records(r) = &ours.value else {
                bail!("{what}: not records")
            };
            let keys: Vec<Json> = match &r.keys {
                sextant_onnx::Labels::Int(v) => v.iter().map(|&k| Json::from(k)).collect(),
                sextant_onnx::Labels::Str(v) => v.iter().map(|k| Json::from(k.as_str())).collect(),
            };
            if Json::from(keys.clone()) != theirs["keys"] {
                bail!("{what}: keys {keys:?}, onnxruntime {}", theirs["keys"]);
            }
            let rows = theirs["rows"].as_array().context("rows")?;
            if rows.len() != r.rows() {
                bail!("{what}: {} rows, onnxruntime {}", r.rows(), rows.len());
            }
            for (i, row) in rows.iter().enumerate() {
                for (j, v) in row.as_array().context("row")?.iter().enumerate() {
                    let (x, y) = (f64::from(r.row(i)[j]), v.as_f64().context("p")?);
                    if !close(x, y) {
                        bail!("{what}[{i}][{j}]: {x}, onnxruntime {y}");
                    }
                }
            }
        } else {
            let Value::Tensor(t) = &ours.value else {
                bail!("{what}: not a tensor")
            };
            compare_tensor(&what, t, &tensor_from_json(theirs)?)?;
        }
    }
    Ok(())
}

#[test]
fn predictions_match_onnxruntime_on_the_skl2onnx_zoo() -> Result<()> {
    let Some(python) = python() else {
        eprintln!(
            "SKIPPED: no Python with skl2onnx and onnxruntime (set SEXTANT_VENV or run scripts/test)"
        );
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let script = Path::new(&manifest_dir()).join("tests/python/make_zoo.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .output()?;
    if !out.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".onnx")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "the zoo has only {names:?}");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| {
            check_model(dir.path(), n)
                .err()
                .map(|e| format!("{n}: {e:#}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} models differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
    Ok(())
}

/// This crate's directory, read when the test runs (cargo and nextest set it):
/// a binary built from another checkout of the same sources is reused by
/// cargo, and the compile-time value would point at that checkout.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
