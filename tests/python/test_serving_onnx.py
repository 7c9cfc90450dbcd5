"""The serving data plane against onnxruntime: scikit-learn models converted by skl2onnx and
saved with `mlflow.onnx.save_model` (tensor and column signatures, ZipMap on and off, a
multi-input pipeline with a string column) are served by the `serve_model` example of
sextant-server, and every MLflow request format must answer what onnxruntime computes
(1e-5), in the shape MLflow's scoring server gives (`{"predictions": ...}`: one record per
row when a table reaches the model as a DataFrame, i.e. under a column signature or none, one
value per output otherwise; `test_serving_vs_mlflow.py` compares with a live MLflow).

The example is built with cargo into `$CARGO_TARGET_DIR` (else `target/`), like the server,
unless `SEXTANT_SERVE_MODEL` names a built one.
"""

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import mlflow.onnx
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
OPSETS = {"": 17, "ai.onnx.ml": 3}


@pytest.fixture(scope="module")
def serve_model() -> Path:
    if os.environ.get("SEXTANT_SERVE_MODEL"):
        return Path(os.environ["SEXTANT_SERVE_MODEL"])
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sextant-server", "--example", "serve_model"],
        cwd=REPO, check=True,
    )
    return TARGET_DIR / "debug" / "examples" / "serve_model"


class Served:
    def __init__(self, binary: Path, model_dir: Path):
        self.proc = subprocess.Popen(
            [str(binary), "--model", str(model_dir), "--name", "m"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"serve_model did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1]

    def post(self, body, content_type="application/json", path="/invocations"):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def served(binary, model_dir):
    s = Served(binary, model_dir)
    return s


def save(tmp_path, name, onx, signature):
    path = tmp_path / name
    mlflow.onnx.save_model(onx, str(path), signature=signature)
    return path


def run_ort(onx, feeds):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return names, sess.run(None, feeds)


def assert_close(ours, theirs):
    """Nested JSON against numpy/ORT values, floats to 1e-5 (relative above 1)."""
    if isinstance(theirs, dict):
        assert set(map(str, theirs)) == set(ours), (ours, theirs)
        for k, v in theirs.items():
            assert_close(ours[str(k)], v)
    elif isinstance(theirs, (list, tuple, np.ndarray)) and np.ndim(theirs) > 0 or isinstance(theirs, list):
        theirs = list(theirs)
        assert len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            assert_close(a, b)
    elif isinstance(theirs, (float, np.floating)):
        assert abs(ours - float(theirs)) <= 1e-5 * max(1.0, abs(float(theirs))), (ours, theirs)
    else:
        assert ours == (theirs.item() if hasattr(theirs, "item") else theirs), (ours, theirs)


def as_dict_of_outputs(names, results):
    return {n: (r if isinstance(r, list) else r.tolist()) for n, r in zip(names, results)}


def as_records(names, results):
    rows = len(results[0])
    out = []
    for i in range(rows):
        rec = {}
        for n, r in zip(names, results):
            v = r[i]
            if isinstance(v, np.ndarray) and v.shape == (1,):
                v = v[0]
            rec[n] = v.tolist() if isinstance(v, np.ndarray) else v
        out.append(rec)
    return out


def test_tensor_signature_regressor_and_zipmap_forest(serve_model, tmp_path):
    X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    X = X.astype(np.float32)
    lin = LinearRegression().fit(X, y)
    onx = to_onnx(lin, X[:1], target_opset=OPSETS)
    path = save(tmp_path, "linear", onx, infer_signature(X, lin.predict(X)))
    test = X[:7]
    names, results = run_ort(onx, {onx.graph.input[0].name: test})
    s = served(serve_model, path)
    try:
        for key in ["inputs", "instances"]:
            status, body = s.post({key: test.tolist()})
            assert status == 200, body
            assert_close(body["predictions"], as_dict_of_outputs(names, results))
        # Under a tensor signature MLflow turns a table into the tensor (by position) and
        # answers tensors, not records.
        status, body = s.post({"dataframe_split": {"data": test.tolist()}})
        assert status == 200, body
        assert_close(body["predictions"], as_dict_of_outputs(names, results))
        status, body = s.post({"inputs": X[:1, :3].tolist()})
        assert status == 400
        assert "does not match expected shape (-1, 5)" in body["message"]
    finally:
        s.close()

    Xc, yc = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    Xc = Xc.astype(np.float32)
    rf = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(Xc, yc)
    onx = to_onnx(rf, Xc[:1], target_opset=OPSETS)  # ZipMap on: a list of dicts
    path = save(tmp_path, "forest", onx, infer_signature(Xc, rf.predict(Xc)))
    test = Xc[:9]
    names, results = run_ort(onx, {onx.graph.input[0].name: test})
    s = served(serve_model, path)
    try:
        status, body = s.post({"inputs": test.tolist()})
        assert status == 200, body
        assert_close(body["predictions"], as_dict_of_outputs(names, results))
        assert isinstance(body["predictions"]["output_probability"][0], dict)
        status, body = s.post({"dataframe_split": {"data": test.tolist()}})
        assert status == 200, body
        assert_close(body["predictions"], as_dict_of_outputs(names, results))
    finally:
        s.close()


def test_column_signature_gbr_and_classifier_with_csv(serve_model, tmp_path):
    X, y = make_regression(n_samples=300, n_features=5, random_state=1)
    cols = [f"f{i}" for i in range(5)]
    df = pd.DataFrame(X, columns=cols)
    gbr = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X, y)
    onx = to_onnx(gbr, X[:1].astype(np.float32), target_opset=OPSETS)
    path = save(tmp_path, "gbr", onx, infer_signature(df, gbr.predict(X)))
    test = df.iloc[:8]
    names, results = run_ort(onx, {onx.graph.input[0].name: test.values.astype(np.float32)})
    expected = as_records(names, results)
    s = served(serve_model, path)
    try:
        status, body = s.post({"dataframe_split": json.loads(test.to_json(orient="split"))})
        assert status == 200, body
        assert_close(body["predictions"], expected)
        # Columns in another order are put back in signature order.
        shuffled = test[cols[::-1]]
        status, body = s.post({"dataframe_records": json.loads(shuffled.to_json(orient="records"))})
        assert status == 200, body
        assert_close(body["predictions"], expected)
        status, body = s.post(test.to_csv(index=False), content_type="text/csv")
        assert status == 200, body
        assert_close(body["predictions"], expected)
        status, body = s.post({"dataframe_split": {"columns": cols[:4], "data": test.values[:, :4].tolist()}})
        assert status == 400
        assert body["message"] == "Model is missing inputs ['f4']"
    finally:
        s.close()

    Xm, ym = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0,
                                 n_classes=3, random_state=2)
    dfm = pd.DataFrame(Xm, columns=["a", "b", "c", "d"])
    logit = LogisticRegression(max_iter=500).fit(Xm, ym)
    onx = to_onnx(logit, Xm[:1].astype(np.float32), target_opset=OPSETS,
                  options={id(logit): {"zipmap": False}})
    path = save(tmp_path, "logit", onx, infer_signature(dfm, logit.predict(Xm)))
    test = dfm.iloc[:6]
    names, results = run_ort(onx, {onx.graph.input[0].name: test.values.astype(np.float32)})
    s = served(serve_model, path)
    try:
        # MLflow itself fails here ("All arrays must be of the same length"); Sextant answers
        # one record per row with the label and the row's probabilities.
        status, body = s.post({"dataframe_split": json.loads(test.to_json(orient="split"))})
        assert status == 200, body
        assert_close(body["predictions"], as_records(names, results))
        assert set(body["predictions"][0]) == {"label", "probabilities"}
    finally:
        s.close()


def test_multi_input_pipeline_with_a_string_column(serve_model, tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"x": rng.normal(size=n).astype(np.float32),
                       "c": rng.choice(["red", "green", "blue"], size=n)})
    y = (df["x"] > 0).astype(int) ^ (df["c"] == "red").astype(int)
    pipe = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["x"]),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])),
        ("clf", LogisticRegression()),
    ]).fit(df, y)
    onx = to_onnx(pipe, initial_types=[("x", FloatTensorType([None, 1])), ("c", StringTensorType([None, 1]))],
                  target_opset=OPSETS, options={id(pipe.steps[-1][1]): {"zipmap": False}})
    path = save(tmp_path, "pipe", onx, infer_signature(df, pipe.predict(df)))
    test = df.iloc[:10]
    feeds = {"x": test[["x"]].values.astype(np.float32), "c": test[["c"]].values.astype(object)}
    names, results = run_ort(onx, feeds)
    s = served(serve_model, path)
    try:
        status, body = s.post({"dataframe_records": json.loads(test.to_json(orient="records"))})
        assert status == 200, body
        assert_close(body["predictions"], as_records(names, results))
        status, body = s.post(test.to_csv(index=False), content_type="text/csv")
        assert status == 200, body
        assert_close(body["predictions"], as_records(names, results))
        status, body = s.post({"dataframe_records": [{"x": 1.0, "c": 3}]})
        assert status == 400
        assert body["message"].startswith('column "c", row 0: expected a string')
        # OIP with one tensor per graph input.
        oip = {"inputs": [
            {"name": "x", "shape": [10, 1], "datatype": "FP32", "data": feeds["x"].ravel().tolist()},
            {"name": "c", "shape": [10, 1], "datatype": "BYTES", "data": feeds["c"].ravel().tolist()},
        ]}
        status, body = s.post(oip, path="/v2/models/m/infer")
        assert status == 200, body
        by_name = {o["name"]: o for o in body["outputs"]}
        for name, value in zip(names, results):
            assert by_name[name]["shape"] == list(value.shape)
            assert_close(by_name[name]["data"], value.ravel().tolist())
    finally:
        s.close()


def test_process_runtime_serves_a_pyfunc_model_through_mlflow(serve_model, tmp_path):
    """`--runtime process`: a scikit-learn pyfunc model served by a child `mlflow models serve`
    behind Sextant's gateway answers what the model predicts, over MLflow and OIP."""
    import mlflow.sklearn

    X, y = make_regression(n_samples=100, n_features=3, random_state=3)
    model = LinearRegression().fit(X, y)
    path = tmp_path / "sk"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)))
    proc = subprocess.Popen(
        [str(serve_model), "--model", str(path), "--name", "m", "--runtime", "process"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        s = Served.__new__(Served)
        s.proc, s.url = proc, line.split()[-1]
        status, body = s.post({"inputs": X[:4].tolist()})
        assert status == 200, body
        assert_close(body["predictions"], model.predict(X[:4]).tolist())
        status, body = s.post({"inputs": X[:1, :2].tolist()})
        assert status == 400, body
        oip = {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                           "data": X[:2].ravel().tolist()}]}
        status, body = s.post(oip, path="/v2/models/m/infer")
        assert status == 200, body
        assert_close(body["outputs"][0]["data"], model.predict(X[:2]).tolist())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
