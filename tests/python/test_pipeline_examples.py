"""`examples/python/pipeline.yaml` run by Sextant: Python steps that use scikit-learn and the
plain `mlflow` client, a condition on their metrics, and a registered model.

The server's step processes find `python` on their PATH; the fixture puts this interpreter's
directory first, so the steps run in the same venv as the tests. The pipeline is started with
the CLI (`sextant pipelines run … --wait`), as a person would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from sklearn.metrics import r2_score

from conftest import REPO_ROOT, sextant_bin, start_sextant

# Pipelines are Sextant's own; MLflow has none.
pytestmark = pytest.mark.sextant_only

EXAMPLE = REPO_ROOT / "examples" / "python"
DATA = REPO_ROOT / "examples" / "builtin" / "housing.csv"


@pytest.fixture(scope="module")
def pipeline_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline-server")
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    srv = start_sextant(tmp, env={"PATH": path})
    yield srv, tmp
    srv.stop()


def sextant(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sextant_bin(), *args, "--server", url], capture_output=True, text=True, timeout=900
    )


def test_the_python_example_trains_logs_and_registers(pipeline_server):
    srv, tmp = pipeline_server
    out = sextant(
        srv.url,
        "pipelines", "run", str(EXAMPLE / "pipeline.yaml"),
        "--param", f"data={DATA}",
        "--param", f"code={EXAMPLE}",
        "--wait",
    )
    assert out.returncode == 0, f"{out.stderr}\n{srv.log_tail()}"
    run_id = out.stdout.strip()
    run = requests.get(f"{srv.url}/api/v1/pipeline-runs/{run_id}", timeout=60).json()
    assert run["status"] == "SUCCEEDED", run
    steps = {s["name"]: s for s in run["steps"]}
    assert all(s["status"] == "succeeded" for s in steps.values()), steps

    # What the steps logged with the fluent API landed in each step's own run, nested under
    # the pipeline's run.
    client = MlflowClient(srv.url)
    prepare = client.get_run(steps["prepare"]["tracking_run_id"])
    assert prepare.data.metrics == {"train_rows": 3200.0, "test_rows": 800.0}
    train = client.get_run(steps["train"]["tracking_run_id"])
    assert train.data.params["max_iter"] == "200"
    assert train.data.tags["mlflow.parentRunId"] == run["tracking_run_id"]
    evaluate = steps["evaluate"]["metrics"]
    assert evaluate["r2"] >= 0.85, evaluate
    assert set(evaluate) == {"rmse", "mae", "r2"}
    assert steps["gate"]["branch"] == "then"

    # The registered version is the trained model: loaded through the registry, it scores the
    # pipeline's own test split exactly as the evaluate step did.
    assert steps["register"]["model_version"] == 1
    version = client.get_model_version("housing-sklearn", "1")
    assert version.run_id == steps["register"]["tracking_run_id"]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(srv.url)
    try:
        model = mlflow.pyfunc.load_model("models:/housing-sklearn/1")
    finally:
        mlflow.set_tracking_uri(previous)
    test = pd.read_csv(tmp / "data" / "pipeline-runs" / run_id / "prepare" / "test" / "data.csv")
    x, y = test.drop(columns=["price"]).astype("float64"), test["price"]
    assert r2_score(y, model.predict(x)) == pytest.approx(evaluate["r2"], abs=1e-12)

    logs = sextant(srv.url, "pipelines", "logs", run_id, "evaluate")
    assert logs.returncode == 0, logs.stderr
    assert "r2=" in logs.stdout, logs.stdout
