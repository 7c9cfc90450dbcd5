"""Splits the housing CSV into train and test sets (scikit-learn's split, seeded).

Writes `data.csv` into the step's `train` and `test` outputs and logs the row counts.
"""

import os
import sys

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

TARGET = "price"


def main() -> None:
    data = pd.read_csv(sys.argv[1])
    if TARGET not in data.columns:
        sys.exit(f"{sys.argv[1]} has no '{TARGET}' column (columns: {', '.join(data.columns)})")
    train, test = train_test_split(data, test_size=0.2, random_state=7)
    train.to_csv(os.path.join(os.environ["SEXTANT_OUTPUT_TRAIN"], "data.csv"), index=False)
    test.to_csv(os.path.join(os.environ["SEXTANT_OUTPUT_TEST"], "data.csv"), index=False)
    # MLFLOW_RUN_ID names this step's run, so the fluent API logs there.
    mlflow.log_metrics({"train_rows": len(train), "test_rows": len(test)})
    print(f"split {len(data)} rows: {len(train)} to train, {len(test)} to test")


if __name__ == "__main__":
    main()
