"""Evaluates the trained model on the test set, loaded as any MLflow model is (`pyfunc`).

Logs rmse, mae and r2 to this step's run; the pipeline's condition reads them from there.
"""

import os

import mlflow
import mlflow.pyfunc
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

TARGET = "price"


def main() -> None:
    model = mlflow.pyfunc.load_model(os.environ["SEXTANT_INPUT_MODEL"])
    test = pd.read_csv(os.path.join(os.environ["SEXTANT_INPUT_TEST"], "data.csv"))
    x, y = test.drop(columns=[TARGET]).astype("float64"), test[TARGET]
    predicted = model.predict(x)
    metrics = {
        "rmse": root_mean_squared_error(y, predicted),
        "mae": mean_absolute_error(y, predicted),
        "r2": r2_score(y, predicted),
    }
    mlflow.log_metrics(metrics)
    print(", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
