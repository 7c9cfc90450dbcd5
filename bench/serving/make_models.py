"""Writes the serving benchmark's models and request bodies into OUT_DIR.

Usage: python make_models.py OUT_DIR

Models (10 float features, skl2onnx, saved with `mlflow.onnx.save_model`, tensor signature):
`linear` (LinearRegression), `gbr` (GradientBoostingRegressor, 100 trees, depth 3), `rf`
(RandomForestClassifier, 100 trees, depth 8, ZipMap off). Bodies: `rows1.json` and
`rows100.json`, `{"inputs": [[...], ...]}` with 1 and 100 rows.
"""

import json
import sys
from pathlib import Path

import mlflow.onnx
import numpy as np
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression

OPSETS = {"": 17, "ai.onnx.ml": 3}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    X, y = make_regression(n_samples=2000, n_features=10, noise=5.0, random_state=0)
    X = X.astype(np.float32)
    Xc, yc = make_classification(n_samples=2000, n_features=10, n_informative=6, random_state=0)
    Xc = Xc.astype(np.float32)
    models = {
        "linear": (LinearRegression().fit(X, y), X, None),
        "gbr": (GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X, y), X, None),
        "rf": (RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(Xc, yc), Xc,
               {"zipmap": False}),
    }
    for name, (model, x, opts) in models.items():
        path = out / name
        if path.exists():
            continue
        options = {id(model): opts} if opts else None
        onx = to_onnx(model, x[:1], target_opset=OPSETS, options=options)
        mlflow.onnx.save_model(onx, str(path), signature=infer_signature(x, model.predict(x)))
        # The same model for `mlflow models serve` comparisons is this directory itself.
    for rows in (1, 100):
        (out / f"rows{rows}.json").write_text(json.dumps({"inputs": X[:rows].tolist()}))


if __name__ == "__main__":
    main()
