"""Writes a zoo of scikit-learn models converted by skl2onnx into OUT_DIR, each with its
inputs and onnxruntime's outputs, for tests/zoo.rs to compare Sextant's engine against.

Usage: python make_zoo.py OUT_DIR

For every model NAME: NAME.onnx and NAME.json = {"inputs": {name: {"dtype", "shape", "data"}},
"outputs": [{"name", "kind": "tensor"|"records", "dtype", "shape", "data"} ...]}; records are
the list of dicts ZipMap gives, written as {"keys": [...], "rows": [[p, ...], ...]}.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, DoubleTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR, NuSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

OPSETS = {"": 17, "ai.onnx.ml": 3}


def tensor_json(a):
    a = np.asarray(a)
    if a.dtype.kind in "OUS":
        data, dtype = [str(v) for v in a.ravel()], "string"
    elif a.dtype.kind == "f":
        data = [None if np.isnan(v) else float(v) for v in a.ravel()]
        dtype = "float" if a.dtype == np.float32 else "double"
    elif a.dtype.kind == "b":
        data, dtype = [bool(v) for v in a.ravel()], "bool"
    else:
        data, dtype = [int(v) for v in a.ravel()], "int64"
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def write(out, name, onx, feeds):
    (out / f"{name}.onnx").write_bytes(onx.SerializeToString())
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(None, feeds)
    outputs = []
    for meta, value in zip(sess.get_outputs(), results):
        if isinstance(value, list):  # ZipMap: a list of dicts
            keys = list(value[0].keys()) if value else []
            outputs.append({"name": meta.name, "kind": "records",
                            "keys": [k if isinstance(k, str) else int(k) for k in keys],
                            "rows": [[float(row[k]) for k in keys] for row in value]})
        else:
            outputs.append({"name": meta.name, "kind": "tensor", **tensor_json(value)})
    doc = {"inputs": {k: tensor_json(v) for k, v in feeds.items()}, "outputs": outputs}
    (out / f"{name}.json").write_text(json.dumps(doc))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X, y = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
    X = X.astype(np.float32)
    Xc, yc = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)
    Xc = Xc.astype(np.float32)
    _, y3 = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=1)
    Xm, y3 = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=1)
    Xm = Xm.astype(np.float32)
    names = np.array(["cat", "dog", "emu"])
    test, testc, testm = X[:50], Xc[:50], Xm[:50]

    def save(name, model, x, zipmap=None, fit=None, xs=None, initial=None):
        model.fit(*(fit or (x, None)))
        options = None if zipmap is None else {id(model): {"zipmap": zipmap}}
        onx = to_onnx(model, (xs if xs is not None else x)[:1], options=options, target_opset=OPSETS,
                      initial_types=initial)
        feeds = {onx.graph.input[0].name: (xs if xs is not None else x)[:50]}
        write(out, name, onx, feeds)

    save("linear_regression", LinearRegression(), X, fit=(X, y))
    save("decision_tree_regressor", DecisionTreeRegressor(max_depth=6, random_state=0), X, fit=(X, y))
    save("random_forest_regressor", RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0), X, fit=(X, y))
    save("gbr", GradientBoostingRegressor(n_estimators=100, random_state=0), X, fit=(X, y))
    for zm in (False, True):
        tag = "zipmap" if zm else "plain"
        save(f"logistic_binary_{tag}", LogisticRegression(), Xc, zm, fit=(Xc, yc))
        save(f"logistic_multiclass_{tag}", LogisticRegression(max_iter=500), Xm, zm, fit=(Xm, y3))
        save(f"decision_tree_classifier_{tag}", DecisionTreeClassifier(max_depth=5, random_state=0), Xm, zm, fit=(Xm, y3))
        save(f"random_forest_binary_{tag}", RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0), Xc, zm, fit=(Xc, yc))
        save(f"random_forest_multiclass_{tag}", RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0), Xm, zm, fit=(Xm, y3))
        save(f"gb_binary_{tag}", GradientBoostingClassifier(n_estimators=30, random_state=0), Xc, zm, fit=(Xc, yc))
        save(f"gb_multiclass_{tag}", GradientBoostingClassifier(n_estimators=20, random_state=0), Xm, zm, fit=(Xm, y3))
        save(f"logistic_strings_{tag}", LogisticRegression(max_iter=500), Xm, zm, fit=(Xm, names[y3]))
        save(f"random_forest_strings_{tag}", RandomForestClassifier(n_estimators=10, random_state=0), Xm, zm, fit=(Xm, names[y3]))
    # Support vector machines: every kernel, regression, binary and multi-class, with and
    # without Platt probabilities, string labels.
    # (Targets scaled to unit variance: with dual coefficients of hundreds the f32 sum over
    # support vectors rounds differently in every BLAS, onnxruntime's included.)
    ys = (y / y.std()).astype(np.float32)
    for kernel in ("linear", "rbf", "poly", "sigmoid"):
        save(f"svr_{kernel}", SVR(kernel=kernel, C=1.0, gamma="scale", degree=2, coef0=0.5), X, fit=(X, ys))
    save("nusvr_rbf", NuSVR(nu=0.4), X, fit=(X, ys))
    for kernel in ("linear", "rbf", "poly"):
        save(f"svc_binary_{kernel}", SVC(kernel=kernel, degree=2, coef0=1.0), Xc, False, fit=(Xc, yc))
        save(f"svc_multiclass_{kernel}", SVC(kernel=kernel, degree=2, coef0=1.0), Xm, False, fit=(Xm, y3))
    for zm in (False, True):
        tag = "zipmap" if zm else "plain"
        save(f"svc_binary_proba_{tag}", SVC(probability=True, random_state=0), Xc, zm, fit=(Xc, yc))
        save(f"svc_multiclass_proba_{tag}", SVC(probability=True, random_state=0), Xm, zm, fit=(Xm, y3))
    save("svc_strings_proba", SVC(probability=True, random_state=0), Xm, False, fit=(Xm, names[y3]))
    save("svc_strings", SVC(kernel="sigmoid", gamma=0.05), Xm, False, fit=(Xm, names[y3]))
    save("pipeline_scaler_svc", Pipeline([("sc", StandardScaler()), ("svc", SVC(probability=True, random_state=0))]),
         Xm, False, fit=(Xm, y3))

    save("random_forest_benchmark", RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0), Xm, False, fit=(Xm, y3))

    # Pipelines: missing values, scaling, binarizing.
    Xn = Xm.copy()
    Xn[rng.random(Xn.shape) < 0.1] = np.nan
    save("pipeline_imputer_scaler_rf", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler()),
                                                 ("rf", RandomForestClassifier(n_estimators=10, random_state=0))]),
         Xn, False, fit=(Xn, y3))
    save("pipeline_scaler_logistic", Pipeline([("sc", StandardScaler()), ("lr", LogisticRegression(max_iter=500))]),
         Xm, False, fit=(Xm, y3))
    save("pipeline_minmax_binarizer_tree", Pipeline([("mm", MinMaxScaler()), ("bin", Binarizer(threshold=0.5)),
                                                     ("dt", DecisionTreeRegressor(max_depth=5, random_state=0))]),
         X, fit=(X, y))
    Xd = X.astype(np.float64)
    save("double_input_linear", LinearRegression(), Xd, fit=(Xd, y))

    # A column transformer with a one-hot encoded string column, as two inputs.
    cats = np.array(["red", "green", "blue", "grey"])
    num = Xm[:, :3]
    cat = cats[rng.integers(0, 4, size=len(num))].reshape(-1, 1)
    ct = ColumnTransformer([("num", StandardScaler(), [0]), ("cat", OneHotEncoder(handle_unknown="ignore"), [1])])
    import pandas as pd
    frame = pd.DataFrame({"x": num[:, 0], "c": cat[:, 0]})
    model = Pipeline([("ct", ColumnTransformer([("num", StandardScaler(), ["x"]),
                                                ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])),
                      ("lr", LogisticRegression(max_iter=500))])
    model.fit(frame, y3)
    onx = to_onnx(model, initial_types=[("x", FloatTensorType([None, 1])), ("c", StringTensorType([None, 1]))],
                  target_opset=OPSETS, options={id(model): {"zipmap": False}})
    cat_test = cat[:50].copy()
    cat_test[0, 0] = "purple"  # unknown category: all zeros
    write(out, "column_transformer_onehot", onx, {"x": num[:50, :1], "c": cat_test})


if __name__ == "__main__":
    main()
