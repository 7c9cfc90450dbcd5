"""Trains a scikit-learn gradient-boosting regressor and saves it as an MLflow model directory.

Reads `data.csv` from the `train` input, writes the model into the step's `model` output.
The number of trees comes from the pipeline parameter `n_estimators` (SEXTANT_PARAM_N_ESTIMATORS).
"""

import os

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import root_mean_squared_error

TARGET = "price"


def main() -> None:
    data = pd.read_csv(os.path.join(os.environ["SEXTANT_INPUT_TRAIN"], "data.csv"))
    # Doubles throughout, so the model's signature accepts any number.
    x, y = data.drop(columns=[TARGET]).astype("float64"), data[TARGET]
    n_estimators = int(os.environ.get("SEXTANT_PARAM_N_ESTIMATORS", "200"))
    model = HistGradientBoostingRegressor(max_iter=n_estimators, learning_rate=0.1, random_state=7)
    model.fit(x, y)
    mlflow.log_params({"max_iter": n_estimators, "learning_rate": 0.1})
    mlflow.log_metric("training_rmse", root_mean_squared_error(y, model.predict(x)))
    out = os.environ["SEXTANT_OUTPUT_MODEL"]
    mlflow.sklearn.save_model(
        model,
        out,
        signature=infer_signature(x, model.predict(x)),
        input_example=x.head(3),
        # MLflow stores scikit-learn models with skops, which loads only the types it is told
        # to trust; the tree predictor is part of the model we just trained.
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    print(f"trained {n_estimators} trees on {len(x)} rows into {out}")


if __name__ == "__main__":
    main()
