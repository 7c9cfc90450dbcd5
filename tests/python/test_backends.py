"""The same client flows against Sextant on PostgreSQL and Sextant with artifacts in S3.

Skipped against MLflow and when SEXTANT_TEST_POSTGRES_URL / SEXTANT_TEST_S3_ENDPOINT are unset
(scripts/test sets both).
"""

import hashlib
import os

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from helpers import unique


@pytest.fixture(params=["pg_server", "s3_server"])
def backend(request, monkeypatch):
    srv = request.getfixturevalue(request.param)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.url)
    mlflow.set_tracking_uri(srv.url)
    yield srv
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_tracking_flow(backend):
    client = MlflowClient(backend.url)
    exp_id = client.create_experiment(unique("backend"), tags={"k": "v"})
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="loop") as run:
        mlflow.log_params({"a": 1, "b": "x" * 7000})
        for step in range(20):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.set_tag("t.dotted", "yes")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"a": "1", "b": "x" * 6000}
    assert got.data.tags["t.dotted"] == "yes"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1 / (s + 1) for s in range(20)]

    rid = client.create_run(exp_id).info.run_id
    client.log_batch(
        rid,
        metrics=[Metric("m", float(i), 1, i) for i in range(1000)],
        params=[Param(f"p{i}", "v") for i in range(100)],
        tags=[RunTag(f"t{i}", "v") for i in range(100)],
    )
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "p1", "changed")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    client.log_metric(rid, "nan", float("nan"))

    for i in range(5):
        r = client.create_run(exp_id, start_time=1000 + i).info.run_id
        if i % 2 == 0:
            client.log_metric(r, "acc", i / 10)
    ordered = client.search_runs([exp_id], "", order_by=["metrics.acc DESC"])
    accs = [r.data.metrics.get("acc") for r in ordered]
    assert accs[:3] == [0.4, 0.2, 0.0] and all(a is None for a in accs[3:])
    seen, token = [], None
    while True:
        page = client.search_runs([exp_id], max_results=2, page_token=token)
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 7
    assert [r.info.run_id for r in client.search_runs([exp_id], "tags.`t.dotted` = 'yes'")] == [run.info.run_id]
    assert len(client.search_runs([exp_id], "params.b LIKE 'xx%' AND metrics.loss < 1")) == 1

    client.delete_experiment(exp_id)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_run(rid).info.lifecycle_stage == "active"


def test_artifacts_and_model(backend, tmp_path):
    client = MlflowClient(backend.url)
    mlflow.set_experiment(unique("backend-art"))
    src = tmp_path / "src"
    (src / "d/e").mkdir(parents=True)
    blob = os.urandom(3 * 1024 * 1024 + 7)
    (src / "d/e/blob.bin").write_bytes(blob)
    (src / "top.txt").write_text("top")
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = X @ [1.0, 2.0]
    model = LinearRegression().fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), "files")
        info = mlflow.sklearn.log_model(model, name="model")
    listed = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "files/d/e")}
    assert listed == {"files/d/e/blob.bin": len(blob)}
    out = client.download_artifacts(run.info.run_id, "files", str(tmp_path / "out"))
    got = open(os.path.join(out, "d/e/blob.bin"), "rb").read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()
    loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))

    if hasattr(backend, "s3"):
        keys = [o["Key"] for o in backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix="prefix/").get("Contents", [])]
        assert any(k.endswith("files/d/e/blob.bin") for k in keys), keys
        assert any(k.endswith("/MLmodel") for k in keys), keys
