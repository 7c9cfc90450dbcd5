"""Sextant's built-in trainers (crate `sextant-train`) against scikit-learn, onnxruntime and
`mlflow.pyfunc`.

The crate's `train_to_dir` example trains on a generated CSV, writes an MLflow model directory
with an ONNX model, and prints its coefficients and its own predictions. Each test checks that:
the fit matches scikit-learn's on the same data; onnxruntime and `mlflow.pyfunc.load_model` both
load the directory; and both agree with the Rust predictions.

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
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")

# Building and running a Rust example is Sextant's own business, not the MLflow server's.
pytestmark = pytest.mark.sextant_only


@pytest.fixture(scope="module")
def train_to_dir() -> Path:
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sextant-train", "--example", "train_to_dir"],
        cwd=REPO_ROOT,
        check=True,
    )
    return TARGET_DIR / "debug" / "examples" / "train_to_dir"


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    # %.17g round-trips every float64, so Rust and scikit-learn fit on identical values.
    table = np.column_stack([x, y])
    np.savetxt(path, table, delimiter=",", header=",".join(names), comments="", fmt="%.17g")


def train(binary: Path, kind: str, csv: Path, target: str, out: Path, *penalty: str) -> dict:
    done = subprocess.run(
        [str(binary), kind, str(csv), target, str(out), *penalty],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def check_mlmodel(model_dir: Path, names: list[str], outputs: list[dict]) -> None:
    """A column signature, each feature by name, and the declared `outputs`."""
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert mlmodel["flavors"]["onnx"]["data"] == "model.onnx"
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.onnx"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    example = json.loads((model_dir / "input_example.json").read_text())
    assert inputs == [{"name": n, "required": True, "type": "double"} for n in names]
    assert example["columns"] == names
    assert json.loads(mlmodel["signature"]["outputs"]) == outputs
    assert np.asarray(example["data"]).shape == (5, len(names))
    # The strict checker (with shape inference), then the `onnx` flavor's own loader.
    onnx.checker.check_model(onnx.load(str(model_dir / "model.onnx")), full_check=True)
    assert isinstance(mlflow.onnx.load_model(str(model_dir)), onnx.ModelProto)


def test_linear_regression_matches_sklearn_onnxruntime_and_pyfunc(tmp_path, train_to_dir):
    rng = np.random.default_rng(11)
    n = 300
    # Columns on very different scales, to exercise the standardized solve.
    x = np.column_stack(
        [rng.normal(0, 1, n), rng.normal(50, 10, n), rng.uniform(-0.01, 0.01, n), rng.normal(0, 3, n)]
    )
    y = x @ np.array([1.5, -0.2, 40.0, 0.7]) + 3.0 + rng.normal(0, 0.1, n)
    csv = tmp_path / "train.csv"
    write_csv(csv, x, y, ["a", "b", "c", "d", "price"])
    model_dir = tmp_path / "model"

    rust = train(train_to_dir, "linear", csv, "price", model_dir)

    sk = LinearRegression().fit(x, y)
    np.testing.assert_allclose(rust["coefficients"], sk.coef_, rtol=1e-4)
    np.testing.assert_allclose(rust["intercept"], sk.intercept_, rtol=1e-4)
    np.testing.assert_allclose(rust["predictions"], sk.predict(x), rtol=1e-4)

    check_mlmodel(model_dir, ["a", "b", "c", "d"],
                  [{"name": "variable", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}])
    x32 = x.astype(np.float32)
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_pred,) = session.run(None, {"X": x32})
    assert onnx_pred.shape == (n, 1)
    np.testing.assert_allclose(onnx_pred[:, 0], rust["predictions"], rtol=1e-5, atol=1e-5)

    # The column signature: a table in another column order is matched by name.
    table = pd.DataFrame(x, columns=["a", "b", "c", "d"])[["d", "c", "b", "a"]]
    pyfunc_pred = mlflow.pyfunc.load_model(str(model_dir)).predict(table)
    np.testing.assert_allclose(pyfunc_pred["variable"], rust["predictions"], rtol=1e-5, atol=1e-5)


def test_logistic_regression_matches_sklearn_onnxruntime_and_pyfunc(tmp_path, train_to_dir):
    rng = np.random.default_rng(5)
    n = 400
    x = np.column_stack([rng.normal(0, 1, n), rng.normal(10, 4, n), rng.normal(0, 0.1, n)])
    logit = 1.2 * x[:, 0] - 0.3 * (x[:, 1] - 10) + 8.0 * x[:, 2] + 0.4
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    csv = tmp_path / "train.csv"
    write_csv(csv, x, y, ["f0", "f1", "f2", "label"])
    model_dir = tmp_path / "model"

    rust = train(train_to_dir, "logistic", csv, "label", model_dir, "1.0")

    # scikit-learn's default L2 with C=1.0, converged tightly so only the optimum is compared.
    sk = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(rust["coefficients"], sk.coef_[0], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(rust["probabilities"], sk.predict_proba(x)[:, 1], atol=1e-3)
    rust_labels = np.asarray(rust["labels"])
    assert (rust_labels == y).mean() == (sk.predict(x) == y).mean()

    # A column signature, and the output schema `mlflow` infers for a ZipMap classifier.
    check_mlmodel(model_dir, ["f0", "f1", "f2"], [{"type": "any", "required": True}])
    x32 = x.astype(np.float32)
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    labels, maps = session.run(["label", "probabilities"], {"X": x32})
    # skl2onnx's classifier outputs: int64 labels and ZipMap's one {class: probability} per row.
    assert labels.dtype == np.int64 and labels.shape == (n,)
    assert len(maps) == n and all(sorted(m) == [0, 1] for m in maps)
    probabilities = np.array([[m[0], m[1]] for m in maps])
    np.testing.assert_array_equal(labels, rust_labels)
    np.testing.assert_allclose(probabilities[:, 1], rust["probabilities"], atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)

    # The column signature: a table in another column order is matched by name.
    table = pd.DataFrame(x, columns=["f0", "f1", "f2"])[["f2", "f0", "f1"]]
    pyfunc_pred = mlflow.pyfunc.load_model(str(model_dir)).predict(table)
    np.testing.assert_array_equal(pyfunc_pred["label"], rust_labels)
    pyfunc_p1 = [m[1] for m in pyfunc_pred["probabilities"]]
    np.testing.assert_allclose(pyfunc_p1, rust["probabilities"], atol=1e-5)
