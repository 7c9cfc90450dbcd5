"""Sextant's built-in gradient-boosted trees (crates `sextant-gbdt` and `sextant-train`) as MLflow
model directories holding an `ai.onnx.ml` tree-ensemble graph.

The `train_to_dir` example of `sextant-train` trains on a generated CSV with some missing
feature values, writes the model directory, and writes the trainer's own predictions to a CSV.
Each test checks that the ONNX model passes the checker, that onnxruntime and
`mlflow.pyfunc.load_model` both load the directory, and that both agree with the Rust
predictions: labels exactly, probabilities and regression values to 1e-5.

The example is built with cargo into `$CARGO_TARGET_DIR` (else `target/`), like the server binary.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import mlflow.onnx
import mlflow.pyfunc
import numpy as np
import pandas as pd
import onnx
import onnxruntime as ort
import pytest
import yaml
from sklearn.datasets import make_classification, make_friedman1

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")

# Building and running a Rust example is Sextant's own business, not the MLflow server's.
pytestmark = pytest.mark.sextant_only

N_ROWS = 1500
N_FEATURES = 6


@pytest.fixture(scope="module")
def train_to_dir() -> Path:
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sextant-train", "--example", "train_to_dir"],
        cwd=REPO_ROOT,
        check=True,
    )
    return TARGET_DIR / "debug" / "examples" / "train_to_dir"


def generated(task: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 values (the ONNX input type, so that a split decision in Rust's f64
    is the same decision in onnxruntime's f32), one value in twenty missing."""
    if task == "regression":
        x, y = make_friedman1(n_samples=N_ROWS, n_features=N_FEATURES, random_state=7)
    else:
        x, y = make_classification(
            n_samples=N_ROWS, n_features=N_FEATURES, n_informative=4,
            n_classes=2 if task == "binary" else 3, random_state=7,
        )
    rng = np.random.default_rng(7)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x.astype(np.float32).astype(np.float64), y


def train(binary: Path, task: str, x: np.ndarray, y: np.ndarray, tmp: Path) -> tuple[Path, np.ndarray]:
    """Runs the example; returns the model directory and the Rust predictions."""
    names = [f"f{i}" for i in range(x.shape[1])]
    csv = tmp / "train.csv"
    # %.17g round-trips every float64 and writes NaN as `nan`, which the GBDT loader reads as
    # missing.
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header=",".join([*names, "target"]),
               comments="", fmt="%.17g")
    model_dir = tmp / "model"
    predictions = tmp / "predictions.csv"
    mode = "regression" if task == "regression" else "classification"
    done = subprocess.run(
        [str(binary), "gbdt", str(csv), "target", str(model_dir), mode, str(predictions), "40"],
        check=True, capture_output=True, text=True,
    )
    summary = json.loads(done.stdout)
    assert summary["feature_names"] == names
    assert summary["n_iter"] == 40
    return model_dir, np.loadtxt(predictions, delimiter=",", skiprows=1, ndmin=2)


def check_directory(model_dir: Path, outputs: list[dict]) -> None:
    """A column signature, each feature by name, and the declared `outputs`."""
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.onnx"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert inputs == [
        {"name": f"f{i}", "required": True, "type": "double"} for i in range(N_FEATURES)
    ]
    assert json.loads(mlmodel["signature"]["outputs"]) == outputs
    # JSON has no NaN: the example holds complete rows.
    example = json.loads((model_dir / "input_example.json").read_text())
    assert example["columns"] == [f"f{i}" for i in range(N_FEATURES)]
    example = np.asarray(example["data"], dtype=float)
    assert example.shape == (5, N_FEATURES) and not np.isnan(example).any()

    model = onnx.load(str(model_dir / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}["ai.onnx.ml"] == 3
    assert isinstance(mlflow.onnx.load_model(str(model_dir)), onnx.ModelProto)


def session(model_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])


def test_regression_agrees_with_onnxruntime_and_pyfunc(tmp_path, train_to_dir):
    x, y = generated("regression")
    model_dir, rust = train(train_to_dir, "regression", x, y, tmp_path)
    assert rust.shape == (N_ROWS, 1)
    check_directory(
        model_dir,
        [{"name": "variable", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}],
    )
    # Not a constant model: the comparison below would pass trivially otherwise.
    assert np.corrcoef(rust[:, 0], y)[0, 1] > 0.9

    x32 = x.astype(np.float32)
    (onnx_pred,) = session(model_dir).run(None, {"X": x32})
    assert onnx_pred.shape == (N_ROWS, 1)
    np.testing.assert_allclose(onnx_pred, rust, rtol=1e-5, atol=1e-5)

    # Columns in another order are matched by name (the column signature).
    names = [f"f{i}" for i in range(N_FEATURES)]
    table = pd.DataFrame(x, columns=names)[names[::-1]]
    pyfunc_pred = mlflow.pyfunc.load_model(str(model_dir)).predict(table)
    np.testing.assert_allclose(pyfunc_pred["variable"], rust[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("task, n_classes", [("binary", 2), ("multiclass", 3)])
def test_classifier_agrees_with_onnxruntime_and_pyfunc(tmp_path, train_to_dir, task, n_classes):
    x, y = generated(task)
    model_dir, rust = train(train_to_dir, task, x, y, tmp_path)
    assert rust.shape == (N_ROWS, 1 + n_classes)
    rust_labels, rust_proba = rust[:, 0].astype(np.int64), rust[:, 1:]
    # A column signature, and the output schema `mlflow` infers for a ZipMap classifier.
    check_directory(model_dir, [{"type": "any", "required": True}])
    assert (rust_labels == y).mean() > 0.8

    x32 = x.astype(np.float32)
    labels, maps = session(model_dir).run(["label", "probabilities"], {"X": x32})
    # skl2onnx's classifier outputs: int64 labels and ZipMap's one {class: probability} per row.
    assert labels.dtype == np.int64 and labels.shape == (N_ROWS,)
    classes = list(range(n_classes))
    assert len(maps) == N_ROWS and all(sorted(m) == classes for m in maps)
    np.testing.assert_array_equal(labels, rust_labels)
    np.testing.assert_allclose([[m[c] for c in classes] for m in maps], rust_proba, atol=1e-5)

    # Columns in another order are matched by name (the column signature).
    names = [f"f{i}" for i in range(N_FEATURES)]
    table = pd.DataFrame(x, columns=names)[names[::-1]]
    pyfunc_pred = mlflow.pyfunc.load_model(str(model_dir)).predict(table)
    np.testing.assert_array_equal(pyfunc_pred["label"], rust_labels)
    pyfunc_proba = [[m[c] for c in classes] for m in pyfunc_pred["probabilities"]]
    np.testing.assert_allclose(pyfunc_proba, rust_proba, atol=1e-5)
