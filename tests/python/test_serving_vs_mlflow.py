"""Sextant's `onnx` runtime against a live `mlflow models serve` (3.17.2) of the same model
directory: every request format must get the same answer, structure exactly and numbers to a
float tolerance (Sextant writes a float32 output as float32, `346.74469`, where MLflow writes
its float64 widening, `346.74468994140625`).

Models: the built-in linear regressor (column signature, `variable [N, 1]`), the built-in
classifiers, logistic and multiclass gradient-boosted trees (column signature, `label` and
ZipMap's `probabilities`, as skl2onnx exports a classifier), and skl2onnx models:
a linear regressor with a tensor signature and with none, a classifier with ZipMap on (string
labels) under a column and a tensor signature, and one with ZipMap off (two tensor outputs).

Where MLflow refuses a request that Sextant answers, the case must be one of the documented
extensions in `EXTENSIONS`; where both refuse, both must answer 4xx.

`mlflow models serve` is started once per model for the module (in parallel), and waited for
on `/ping` with a deadline.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow.onnx
import mlflow.pyfunc
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression

from test_serving_onnx import OPSETS, Served, serve_model  # noqa: F401 (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
MLFLOW = Path(sys.executable).parent / "mlflow"
STARTUP_DEADLINE_S = 240.0

# Running Rust examples is Sextant's business; the comparison is against MLflow itself.
pytestmark = pytest.mark.sextant_only

# (model, request format) pairs MLflow refuses and Sextant answers, on purpose:
# - a list (`inputs`/`instances`) for a column signature: read positionally, in the
#   signature's column order, when its width fits (MLflow: "Failed to enforce schema");
# - records under `instances` for a model without a column signature: a table, by position
#   (MLflow turns them into a dict of columns, which a tensor model cannot take);
# - CSV for a tensor signature (MLflow cannot build pandas dtypes from a tensor spec);
# - a table answered by rows for outputs wider than one column (MLflow flattens each output
#   and fails with "All arrays must be of the same length").
EXTENSIONS = {
    ("builtin_linear", "inputs_list"),
    ("builtin_linear", "instances_list"),
    ("builtin_logistic", "inputs_list"),
    ("builtin_logistic", "instances_list"),
    ("builtin_gbdt_classes", "inputs_list"),
    ("builtin_gbdt_classes", "instances_list"),
    ("zipmap_columns", "inputs_list"),
    ("zipmap_columns", "instances_list"),
    ("tensor_linear", "instances_records"),
    ("tensor_linear", "csv"),
    ("zipmap_tensor", "instances_records"),
    ("zipmap_tensor", "csv"),
    ("nozipmap_tensor", "instances_records"),
    ("nozipmap_tensor", "csv"),
    ("nosig_linear", "instances_records"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body, content_type="application/json", method="POST"):
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class MlflowServe:
    """`mlflow models serve` of one directory, in its own process group (it starts uvicorn)."""

    def __init__(self, model_dir: Path, log: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        self.proc = subprocess.Popen(
            [str(MLFLOW), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
             "-h", "127.0.0.1", "-p", self.url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True,
            # It starts `uvicorn` by name: the venv's bin must be on PATH.
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PATH": f"{MLFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        )

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited: {self.log.read_text()[-2000:]}")
            try:
                if request(self.url + "/ping", None, method="GET")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"mlflow models serve not ready in time: {self.log.read_text()[-2000:]}")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def train_to_dir() -> Path:
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sextant-train", "--example", "train_to_dir"],
        cwd=REPO_ROOT, check=True,
    )
    return TARGET_DIR / "debug" / "examples" / "train_to_dir"


HOUSE = ["area", "rooms", "age", "distance", "garden"]


def house_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "area": rng.uniform(30, 200, n).round(2),
        "rooms": rng.integers(1, 7, n),
        "age": rng.integers(0, 100, n),
        "distance": rng.uniform(0.1, 20, n).round(2),
        "garden": rng.integers(0, 2, n),
    })


def builtin_models(root: Path) -> dict[str, tuple[Path, list[str]]]:
    binary = train_to_dir()
    x = house_table(200, 1)
    price = 3 * x.area + 20 * x.rooms - 0.8 * x.age - 5 * x.distance + 15 * x.garden
    x.assign(price=price.round(3)).to_csv(root / "house.csv", index=False)
    subprocess.run([str(binary), "linear", str(root / "house.csv"), "price", str(root / "builtin_linear")],
                   check=True, capture_output=True)
    x.assign(sold=(price > price.median()).astype(int)).to_csv(root / "sold.csv", index=False)
    subprocess.run([str(binary), "logistic", str(root / "sold.csv"), "sold", str(root / "builtin_logistic")],
                   check=True, capture_output=True)
    band = np.digitize(price, np.quantile(price, [1 / 3, 2 / 3]))
    x.assign(band=band).to_csv(root / "band.csv", index=False)
    subprocess.run([str(binary), "gbdt", str(root / "band.csv"), "band", str(root / "builtin_gbdt_classes"),
                    "classification", str(root / "band_predictions.csv"), "20"],
                   check=True, capture_output=True)
    return {"builtin_linear": (root / "builtin_linear", HOUSE),
            "builtin_logistic": (root / "builtin_logistic", HOUSE),
            "builtin_gbdt_classes": (root / "builtin_gbdt_classes", HOUSE)}


def skl2onnx_models(root: Path) -> dict[str, tuple[Path, list[str]]]:
    rng = np.random.default_rng(2)
    cols = ["f0", "f1", "f2", "f3"]
    x = rng.normal(size=(200, 4)).round(3)
    df = pd.DataFrame(x, columns=cols)
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + 1.0
    labels = np.array(["low", "mid", "high"])[np.digitize(y, np.quantile(y, [0.33, 0.66]))]
    x32 = x.astype(np.float32)
    out = {}

    def save(name, onx, signature):
        path = root / name
        mlflow.onnx.save_model(onx, str(path), signature=signature)
        out[name] = (path, cols)

    lin = LinearRegression().fit(x, y)
    lin_onx = to_onnx(lin, x32[:1], target_opset=OPSETS)
    save("tensor_linear", lin_onx, infer_signature(x32, lin.predict(x)))
    save("nosig_linear", lin_onx, None)
    clf = LogisticRegression(max_iter=500).fit(x, labels)
    zipmap = to_onnx(clf, x32[:1], target_opset=OPSETS)
    save("zipmap_tensor", zipmap, infer_signature(x32, clf.predict(x)))
    save("zipmap_columns", zipmap, infer_signature(df, clf.predict(x)))
    nozipmap = to_onnx(clf, x32[:1], target_opset=OPSETS, options={id(clf): {"zipmap": False}})
    save("nozipmap_tensor", nozipmap, infer_signature(x32, clf.predict(x)))
    return out


def bodies(cols: list[str], table: pd.DataFrame) -> dict[str, object]:
    rows = table[cols].values.tolist()
    records = table[cols].to_dict(orient="records")
    rev = cols[::-1]
    return {
        "split": {"dataframe_split": {"columns": cols, "data": rows}},
        "split_reordered": {"dataframe_split": {"columns": rev, "data": table[rev].values.tolist()}},
        "records": {"dataframe_records": records},
        "records_reordered": {"dataframe_records": table[rev].to_dict(orient="records")},
        "instances_list": {"instances": rows},
        "instances_records": {"instances": records},
        "inputs_list": {"inputs": rows},
        "inputs_dict": {"inputs": {c: table[c].tolist() for c in cols}},
        "csv": table[cols].to_csv(index=False),
    }


def to_python(v):
    """numpy scalars in records (to_dict keeps int64) to plain JSON values."""
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_python(x) for x in v]
    return v.item() if hasattr(v, "item") else v


def same(ours, theirs, path="predictions"):
    """Structure exactly, numbers to 1e-5 relative (1e-6 absolute)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for k in theirs:
            same(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, bool) or isinstance(theirs, str) or theirs is None:
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"
    elif isinstance(theirs, int) and not isinstance(ours, float):
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"
    else:
        assert isinstance(ours, (int, float)), f"{path}: {ours!r} vs {theirs!r}"
        assert math.isclose(ours, theirs, rel_tol=1e-5, abs_tol=1e-6), f"{path}: {ours!r} vs {theirs!r}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, serve_model):  # noqa: F811
    root = tmp_path_factory.mktemp("models")
    models = {**builtin_models(root), **skl2onnx_models(root)}
    started = {}
    try:
        for name, (path, cols) in models.items():
            theirs = MlflowServe(path, root / f"{name}.mlflow.log")
            started[name] = (Served(serve_model, path), theirs, cols, path)
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        for _, theirs, _, _ in started.values():
            theirs.wait_ready(deadline)
        yield started
    finally:
        for ours, theirs, _, _ in started.values():
            ours.close()
            theirs.close()


MODELS = ["builtin_linear", "builtin_logistic", "builtin_gbdt_classes", "tensor_linear", "nosig_linear",
          "zipmap_tensor", "zipmap_columns", "nozipmap_tensor"]


@pytest.mark.parametrize("model", MODELS)
def test_every_format_answers_as_mlflow_models_serve(servers, model):
    ours, theirs, cols, _ = servers[model]
    table = house_table(4, 7) if cols == HOUSE else pd.DataFrame(
        np.random.default_rng(3).normal(size=(4, len(cols))).round(3), columns=cols)
    checked = []
    for fmt, body in bodies(cols, table).items():
        body = to_python(body) if not isinstance(body, str) else body
        content_type = "text/csv" if fmt == "csv" else "application/json"
        m_status, m_text = request(theirs.url + "/invocations", body, content_type)
        s_status, s_text = request(ours.url + "/invocations", body, content_type)
        if m_status == 200:
            assert s_status == 200, f"{model} {fmt}: Sextant {s_status} {s_text}; MLflow {m_text}"
            same(json.loads(s_text), json.loads(m_text), f"{model} {fmt}")
            checked.append(fmt)
        elif (model, fmt) in EXTENSIONS:
            assert s_status == 200, f"{model} {fmt}: Sextant {s_status} {s_text}"
        else:
            assert (model, fmt) not in EXTENSIONS
            assert 400 <= s_status < 500, f"{model} {fmt}: Sextant {s_status} {s_text}; MLflow {m_status} {m_text}"
    # Every model answers at least the plain table and list forms somewhere.
    assert checked, model


def test_records_and_split_agree_on_every_model(servers):
    """Issue 15.2: records were put in alphabetical key order before predicting."""
    for model, (ours, _, cols, _) in servers.items():
        table = house_table(3, 11) if cols == HOUSE else pd.DataFrame(
            np.random.default_rng(4).normal(size=(3, len(cols))).round(3), columns=cols)
        b = bodies(cols, table)
        s1 = request(ours.url + "/invocations", to_python(b["split"]))
        s2 = request(ours.url + "/invocations", to_python(b["records"]))
        assert s1[0] == 200 and s1 == s2, (model, s1, s2)


def test_version_and_ping_answer_like_mlflow(servers):
    ours, theirs, _, _ = servers["builtin_linear"]
    assert request(ours.url + "/version", None, method="GET") == request(theirs.url + "/version", None, method="GET")
    assert request(ours.url + "/ping", None, method="GET")[0] == 200


def test_pyfunc_matches_columns_by_name_for_the_builtin_regressor(servers):
    """The built-in regressor's column signature in front of its float32 tensor input:
    `mlflow.pyfunc` predicts the same whatever the column order, and what onnxruntime
    computes on the columns in training order."""
    _, _, cols, path = servers["builtin_linear"]
    table = house_table(50, 5)
    model = mlflow.pyfunc.load_model(str(path))
    ordered = model.predict(table[cols])
    shuffled = model.predict(table[["garden", "distance", "age", "rooms", "area"]])
    np.testing.assert_allclose(ordered["variable"], shuffled["variable"], rtol=1e-6)
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    (direct,) = session.run(None, {"X": table[cols].values.astype(np.float32)})
    np.testing.assert_allclose(ordered["variable"], direct[:, 0], rtol=1e-5)
    # A float value in an integer (long) column is refused by both, not truncated.
    bad = table[cols].astype({"rooms": float}).assign(rooms=2.5)
    with pytest.raises(Exception, match="rooms"):
        model.predict(bad)
