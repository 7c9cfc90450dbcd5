"""Sextant's histogram GBDT (`crates/sextant-gbdt`) against scikit-learn's
HistGradientBoostingRegressor/Classifier on the same data with the same parameters.

The Rust side runs through the crate's `gbdt_cli` example (train on CSV, predict to CSV), built
here with cargo into `$CARGO_TARGET_DIR` (else `target/`). The two implementations bin slightly
differently, so the comparison is on held-out quality: RMSE within 10% of scikit-learn's,
accuracy within 2 points. Predictions from the exported ONNX-shaped arrays must equal the trees'.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_friedman1
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from sklearn.model_selection import train_test_split

from conftest import AGAINST_MLFLOW, REPO_ROOT

pytestmark = pytest.mark.skipif(AGAINST_MLFLOW, reason="tests Sextant's own trainer")

PARAMS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20}


@pytest.fixture(scope="module")
def gbdt_cli() -> Path:
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sextant-gbdt", "--example", "gbdt_cli"],
        cwd=REPO_ROOT,
        check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO_ROOT / "target")
    return Path(target) / "debug" / "examples" / "gbdt_cli"


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    columns = [f"f{j}" for j in range(x.shape[1])]
    data = x
    if y is not None:
        columns.append("y")
        data = np.column_stack([x, y])
    np.savetxt(path, data, delimiter=",", header=",".join(columns), comments="", fmt="%.17g")
    return path


def sextant_fit_predict(cli: Path, tmp: Path, objective: str, x_train, y_train, x_test, l2: float):
    """Trains through the CLI and returns the trees' predictions and the flat ensemble's."""
    model = tmp / f"{objective}.json"
    subprocess.run(
        [
            str(cli), "train", "--data", str(write_csv(tmp / "train.csv", x_train, y_train)),
            "--target", "y", "--objective", objective, "--model", str(model),
            "--n-trees", str(PARAMS["max_iter"]), "--learning-rate", str(PARAMS["learning_rate"]),
            "--max-leaf-nodes", str(PARAMS["max_leaf_nodes"]),
            "--min-samples-leaf", str(PARAMS["min_samples_leaf"]), "--l2", str(l2),
        ],
        check=True,
    )
    test_csv = write_csv(tmp / "test.csv", x_test)
    results = []
    for extra in ([], ["--flat"]):
        out = tmp / f"pred{len(extra)}.csv"
        subprocess.run(
            [str(cli), "predict", "--model", str(model), "--data", str(test_csv), "--out", str(out),
             *extra],
            check=True,
        )
        results.append(np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2))
    trees, flat = results
    np.testing.assert_allclose(flat, trees, rtol=1e-12, atol=1e-12)
    return trees


def test_regression_matches_sklearn_on_friedman1(gbdt_cli, tmp_path):
    x, y = make_friedman1(n_samples=5000, n_features=10, noise=1.0, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    reference = HistGradientBoostingRegressor(**PARAMS, l2_regularization=0.0, early_stopping=False)
    reference.fit(x_train, y_train)
    sk_rmse = mean_squared_error(y_test, reference.predict(x_test)) ** 0.5
    ours = sextant_fit_predict(gbdt_cli, tmp_path, "regression", x_train, y_train, x_test, 0.0)[:, 0]
    our_rmse = mean_squared_error(y_test, ours) ** 0.5
    print(f"friedman1 rmse: sextant {our_rmse:.4f}, scikit-learn {sk_rmse:.4f}")
    assert abs(our_rmse - sk_rmse) <= 0.10 * sk_rmse
    # Far better than predicting the mean, so the comparison cannot pass by both being useless.
    assert our_rmse < 0.5 * np.std(y_test)


def test_binary_with_missing_values_matches_sklearn(gbdt_cli, tmp_path):
    x, y = make_classification(
        n_samples=5000, n_features=10, n_informative=5, n_redundant=2, random_state=1
    )
    # One value in twenty missing: both implementations learn where NaN goes.
    rng = np.random.default_rng(1)
    x[rng.random(x.shape) < 0.05] = np.nan
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=1)
    reference = HistGradientBoostingClassifier(**PARAMS, l2_regularization=1.0, early_stopping=False)
    reference.fit(x_train, y_train)
    sk_proba = reference.predict_proba(x_test)
    ours = sextant_fit_predict(gbdt_cli, tmp_path, "binary", x_train, y_train, x_test, 1.0)
    assert ours.shape == (len(y_test), 2)
    sk_acc = accuracy_score(y_test, sk_proba.argmax(axis=1))
    our_acc = accuracy_score(y_test, ours.argmax(axis=1))
    print(f"binary accuracy: sextant {our_acc:.4f}, scikit-learn {sk_acc:.4f}; "
          f"log-loss {log_loss(y_test, ours):.4f} vs {log_loss(y_test, sk_proba):.4f}")
    assert abs(our_acc - sk_acc) <= 0.02
    assert our_acc > 0.8


def test_multiclass_matches_sklearn(gbdt_cli, tmp_path):
    x, y = make_classification(
        n_samples=6000, n_features=12, n_informative=6, n_classes=3, n_clusters_per_class=2,
        random_state=2,
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=2)
    reference = HistGradientBoostingClassifier(**PARAMS, l2_regularization=0.0, early_stopping=False)
    reference.fit(x_train, y_train)
    sk_proba = reference.predict_proba(x_test)
    ours = sextant_fit_predict(gbdt_cli, tmp_path, "multiclass", x_train, y_train, x_test, 0.0)
    assert ours.shape == (len(y_test), 3)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-9)
    sk_acc = accuracy_score(y_test, sk_proba.argmax(axis=1))
    our_acc = accuracy_score(y_test, ours.argmax(axis=1))
    print(f"3-class accuracy: sextant {our_acc:.4f}, scikit-learn {sk_acc:.4f}; "
          f"log-loss {log_loss(y_test, ours):.4f} vs {log_loss(y_test, sk_proba):.4f}")
    assert abs(our_acc - sk_acc) <= 0.02
    assert our_acc > 0.7


def ensemble_to_onnx(ensemble: dict, n_features: int) -> bytes:
    """An ONNX model of the exported arrays, as an ONNX writer would build it (f32 thresholds)."""
    import onnx
    from onnx import TensorProto, helper

    common = {
        "nodes_treeids": ensemble["nodes_treeids"],
        "nodes_nodeids": ensemble["nodes_nodeids"],
        "nodes_featureids": ensemble["nodes_featureids"],
        "nodes_modes": ensemble["nodes_modes"],
        "nodes_values": ensemble["nodes_values"],
        "nodes_truenodeids": ensemble["nodes_truenodeids"],
        "nodes_falsenodeids": ensemble["nodes_falsenodeids"],
        "nodes_missing_value_tracks_true": ensemble["nodes_missing_value_tracks_true"],
        "base_values": ensemble["base_values"],
        "post_transform": {"None": "NONE", "Logistic": "LOGISTIC", "Softmax": "SOFTMAX"}[
            ensemble["post_transform"]
        ],
    }
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])
    if ensemble["kind"] == "Regressor":
        node = helper.make_node(
            "TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", n_targets=1,
            target_ids=ensemble["target_ids"], target_nodeids=ensemble["target_nodeids"],
            target_treeids=ensemble["target_treeids"], target_weights=ensemble["target_weights"],
            **common,
        )
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])]
    else:
        node = helper.make_node(
            "TreeEnsembleClassifier", ["x"], ["label", "y"], domain="ai.onnx.ml",
            classlabels_int64s=ensemble["classlabels_int64s"], class_ids=ensemble["target_ids"],
            class_nodeids=ensemble["target_nodeids"], class_treeids=ensemble["target_treeids"],
            class_weights=ensemble["target_weights"], **common,
        )
        n_classes = len(ensemble["classlabels_int64s"])
        outputs = [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_classes]),
        ]
    graph = helper.make_graph([node], "gbdt", [x], outputs)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.mark.parametrize("objective", ["regression", "binary", "multiclass"])
def test_exported_arrays_run_in_onnxruntime_like_the_model(gbdt_cli, tmp_path, objective):
    """The arrays' conventions (missing_value_tracks_true, the binary single score column,
    thresholds that stay exact in f32) as onnxruntime reads them."""
    import json

    import onnxruntime as ort

    n_classes = {"regression": 0, "binary": 2, "multiclass": 3}[objective]
    if n_classes:
        x, y = make_classification(
            n_samples=2000, n_features=6, n_informative=4, n_classes=n_classes, random_state=3
        )
    else:
        x, y = make_friedman1(n_samples=2000, n_features=6, random_state=3)
    rng = np.random.default_rng(3)
    x[rng.random(x.shape) < 0.05] = np.nan
    # onnxruntime computes in f32: train and predict on f32 values so decisions can be compared.
    x = x.astype(np.float32).astype(np.float64)
    model = tmp_path / "model.json"
    subprocess.run(
        [str(gbdt_cli), "train", "--data", str(write_csv(tmp_path / "train.csv", x, y)), "--target",
         "y", "--objective", objective, "--model", str(model), "--n-trees", "30"],
        check=True,
    )
    ensemble_path = tmp_path / "ensemble.json"
    subprocess.run(
        [str(gbdt_cli), "export", "--model", str(model), "--out", str(ensemble_path)], check=True
    )
    out = tmp_path / "pred.csv"
    subprocess.run(
        [str(gbdt_cli), "predict", "--model", str(model), "--data",
         str(write_csv(tmp_path / "x.csv", x)), "--out", str(out)],
        check=True,
    )
    ours = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    ensemble = json.loads(ensemble_path.read_text())
    session = ort.InferenceSession(
        ensemble_to_onnx(ensemble, x.shape[1]), providers=["CPUExecutionProvider"]
    )
    (theirs,) = session.run(["y"], {"x": x.astype(np.float32)})
    assert theirs.shape == ours.shape
    # Same leaves everywhere; only f32 accumulation separates the sums.
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)
