"""`sextant import mlflow`: fill a real `mlflow server` 3.17.2 through the client, stop it, import
its SQLite database and artifact root into a fresh Sextant data directory, start `sextant server`
on that directory and compare everything through the client. Then import again: everything is
skipped and nothing changes."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import ViewType
from sklearn.linear_model import LogisticRegression

from conftest import AGAINST_MLFLOW, sextant_bin, start_mlflow, start_sextant

pytestmark = pytest.mark.skipif(AGAINST_MLFLOW, reason="imports into Sextant")

NESTED_BYTES = bytes(range(256)) * 40


def fill(url: str) -> dict:
    """Everything the import has to carry over, logged through the client; returns what the
    comparisons need besides the server's own answers."""
    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    exp = client.create_experiment("import-main", tags={"team": "vision", "empty": ""})
    gone = client.create_experiment("import-deleted", tags={"x": "y"})
    client.delete_experiment(gone)
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] + X["b"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    dataset = mlflow.data.from_pandas(X, name="train", source="s3://bucket/train.csv")
    files = Path(tempfile.mkdtemp())
    (files / "sub" / "deeper").mkdir(parents=True)
    (files / "a.txt").write_text("hello")
    (files / "sub" / "deeper" / "b.bin").write_bytes(NESTED_BYTES)

    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.1", "depth": "3"})
        mlflow.set_tags({"stage": "dev", "note": "ünïcode"})
        for i in range(50):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        mlflow.log_metric("loss", float("nan"), step=50)
        mlflow.log_metric("edge", float("inf"), step=0)
        mlflow.log_metric("edge", float("-inf"), step=1)
        mlflow.log_metric("edge", 0.5, step=1, timestamp=123)
        mlflow.log_input(dataset, context="training", tags={"split": "train"})
        mlflow.log_artifacts(str(files), "files")
        with mlflow.start_run(run_name="child-1", nested=True) as child1:
            mlflow.log_param("p", "1")
            info1 = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="import-model", input_example=X.head(2)
            )
            mlflow.log_metric("acc", 0.91, model_id=info1.model_id, dataset=dataset)
        with mlflow.start_run(run_name="child-2", nested=True):
            mlflow.log_param("p", "2")
            info2 = mlflow.sklearn.log_model(model, name="model", registered_model_name="import-model")
    with mlflow.start_run(run_name="doomed") as doomed:
        mlflow.log_param("x", "y")
    client.delete_run(doomed.info.run_id)
    with mlflow.start_run(experiment_id="0", run_name="in-default"):
        mlflow.log_metric("m", 1.0)

    client.set_registered_model_alias("import-model", "champion", "1")
    client.transition_model_version_stage("import-model", "2", "Production")
    client.set_model_version_tag("import-model", "1", "validated", "yes")
    client.set_registered_model_tag("import-model", "owner", "me")
    client.update_registered_model("import-model", description="the import test's model")
    client.update_model_version("import-model", "2", description="second")
    client.create_registered_model("import-other", tags={"k": "v"})
    for _ in range(3):
        client.create_model_version(
            "import-other", f"models:/{info1.model_id}", run_id=child1.info.run_id, model_id=info1.model_id
        )
    client.delete_model_version("import-other", "2")
    client.set_registered_model_alias("import-other", "latest-good", "3")
    return {
        "model": model,
        "X": X,
        "parent_run_id": parent.info.run_id,
        "model_ids": [info1.model_id, info2.model_id],
    }


def norm(v):
    """A value made comparable: NaN equals NaN, containers recurse."""
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v


def artifact_tree(client, run_id, path=None) -> list:
    out = []
    for f in client.list_artifacts(run_id, path):
        out.append((f.path, f.is_dir, f.file_size))
        if f.is_dir:
            out.extend(artifact_tree(client, run_id, f.path))
    return out


def snapshot(url: str) -> dict:
    """Everything a client can see, as plain data."""
    client = MlflowClient(url)
    exps = client.search_experiments(view_type=ViewType.ALL, order_by=["experiment_id"])
    snap = {
        "experiments": [
            (e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time,
             e.last_update_time, sorted(e.tags.items()))
            for e in sorted(exps, key=lambda e: int(e.experiment_id))
        ]
    }
    exp_ids = [e.experiment_id for e in exps]
    runs = client.search_runs(exp_ids, run_view_type=ViewType.ALL, order_by=["attributes.run_id"])
    snap["runs"] = {}
    for r in runs:
        i = r.info
        snap["runs"][i.run_id] = {
            "info": (i.run_name, i.experiment_id, i.user_id, i.status, i.start_time, i.end_time,
                     i.artifact_uri, i.lifecycle_stage),
            "metrics": norm(dict(sorted(r.data.metrics.items()))),
            "params": sorted(r.data.params.items()),
            "tags": sorted(r.data.tags.items()),
            "datasets": sorted(
                (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
                 d.dataset.schema, d.dataset.profile, sorted((t.key, t.value) for t in d.tags))
                for d in r.inputs.dataset_inputs
            ),
            "model_inputs": sorted(m.model_id for m in (r.inputs.model_inputs or [])),
            "model_outputs": sorted((m.model_id, m.step) for m in (r.outputs.model_outputs or [])),
            "history": {
                key: norm(sorted((m.timestamp, m.step, repr(m.value)) for m in client.get_metric_history(i.run_id, key)))
                for key in r.data.metrics
            },
            "artifacts": artifact_tree(client, i.run_id) if i.lifecycle_stage == "active" else None,
        }
    models = client.search_logged_models(experiment_ids=exp_ids)
    snap["logged_models"] = {
        m.model_id: (m.name, m.experiment_id, m.artifact_location, str(m.status), m.source_run_id,
                     m.creation_timestamp, m.last_updated_timestamp, sorted(m.tags.items()),
                     sorted(m.params.items()),
                     sorted((x.key, x.value, x.step, x.timestamp, x.run_id, x.dataset_name, x.dataset_digest)
                            for x in m.metrics or []))
        for m in models
    }
    snap["registered_models"] = {}
    for rm in client.search_registered_models(order_by=["name"]):
        # get_model_version, not the search's entries: MLflow's search leaves `aliases` empty.
        versions = [
            client.get_model_version(rm.name, v.version)
            for v in client.search_model_versions(f"name = '{rm.name}'", order_by=["version_number"])
        ]
        snap["registered_models"][rm.name] = {
            "model": (rm.description, rm.creation_timestamp, rm.last_updated_timestamp,
                      sorted(rm.tags.items()), sorted(rm.aliases.items()),
                      sorted((v.version, v.current_stage) for v in rm.latest_versions)),
            "versions": [
                (v.version, v.source, v.run_id, v.current_stage, v.status, v.description,
                 v.creation_timestamp, v.last_updated_timestamp, sorted(v.tags.items()), sorted(v.aliases),
                 client.get_model_version_download_uri(rm.name, v.version))
                for v in versions
            ],
        }
    return snap


def run_import(mlflow_dir: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """As a user types it in MLflow's directory: `sqlite:///mlflow.db` is
    relative there (SQLAlchemy's reading), and so is the data directory."""
    argv = [
        os.path.abspath(sextant_bin()), "import", "mlflow",
        "--backend-store-uri", "sqlite:///mlflow.db",
        "--artifacts", "artifacts",
        "--data-dir", os.path.relpath(data_dir, mlflow_dir),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=mlflow_dir,
                         env={k: v for k, v in os.environ.items() if not k.startswith("SEXTANT_")})
    assert out.returncode == 0, out.stderr
    return out


def counts(stderr: str) -> dict:
    """`entity: N imported, M skipped` lines of the import's progress output."""
    return {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^([a-z ]+): (\d+) (?:imported|files copied)[^,]*, (\d+) skipped", stderr, re.M)
    }


@pytest.fixture(scope="module")
def migration(tmp_path_factory):
    """(what was logged, MLflow's snapshot, Sextant server on the imported data, import output)."""
    mlflow_dir = tmp_path_factory.mktemp("mlflow-source")
    source = start_mlflow(mlflow_dir)
    try:
        logged = fill(source.url)
        before = snapshot(source.url)
    finally:
        source.stop()
    sextant_dir = tmp_path_factory.mktemp("sextant-target")
    first = run_import(mlflow_dir, sextant_dir / "data")
    server = start_sextant(sextant_dir)
    yield logged, before, server, first, mlflow_dir, sextant_dir
    server.stop()


def test_everything_arrives_unchanged(migration):
    logged, before, server, first, _, _ = migration
    after = snapshot(server.url)
    assert after["experiments"] == before["experiments"]
    assert after["runs"].keys() == before["runs"].keys()
    for run_id, expected in before["runs"].items():
        assert after["runs"][run_id] == expected, run_id
    assert after["logged_models"] == before["logged_models"]
    assert after["registered_models"].keys() == before["registered_models"].keys()
    for name, expected in before["registered_models"].items():
        assert after["registered_models"][name]["model"] == expected["model"], name
        for got, want in zip(after["registered_models"][name]["versions"], expected["versions"]):
            assert got == want, name
        assert len(after["registered_models"][name]["versions"]) == len(expected["versions"])
    # The fixture really exercised what it claims to.
    parent = before["runs"][logged["parent_run_id"]]
    assert len(parent["history"]["loss"]) == 51 and "nan" in parent["history"]["loss"][-1][2]
    assert {p for p, is_dir, _ in parent["artifacts"]} >= {"files/sub/deeper", "files/sub/deeper/b.bin"}
    assert any(r["info"][7] == "deleted" for r in before["runs"].values())
    assert first.stderr.count("imported") >= 6, first.stderr
    c = counts(first.stderr)
    assert c["runs"] == (5, 0) and c["experiments"] == (3, 0) and c["model versions"] == (5, 0), c


def test_artifacts_and_models_load_through_sextant(migration, tmp_path):
    logged, _, server, _, _, _ = migration
    mlflow.set_tracking_uri(server.url)
    local = mlflow.artifacts.download_artifacts(
        run_id=logged["parent_run_id"], artifact_path="files", dst_path=str(tmp_path)
    )
    assert (Path(local) / "a.txt").read_text() == "hello"
    assert (Path(local) / "sub" / "deeper" / "b.bin").read_bytes() == NESTED_BYTES
    expected = logged["model"].predict(logged["X"])
    for uri in ["models:/import-model@champion", "models:/import-model/Production",
                f"models:/{logged['model_ids'][1]}", "models:/import-other@latest-good"]:
        got = mlflow.pyfunc.load_model(uri).predict(logged["X"])
        np.testing.assert_array_equal(np.asarray(got), expected)


def test_registry_details_survive(migration):
    _, _, server, _, _, sextant_dir = migration
    db = sqlite3.connect(sextant_dir / "data" / "sextant.db")
    try:
        rows = db.execute(
            "SELECT version, current_stage, approval_status, approval_comment FROM model_versions "
            "WHERE name = 'import-other' ORDER BY version"
        ).fetchall()
    finally:
        db.close()
    assert [(v, s, a) for v, s, a, _ in rows] == [
        (1, "None", "pending"), (2, "Deleted_Internal", "pending"), (3, "None", "pending")
    ]
    assert all("imported from MLflow" in note for *_, note in rows)
    events = requests.get(f"{server.url}/api/v1/events", params={"after": 0}, timeout=30).json()["events"]
    assert [e["kind"] for e in events] == ["import.completed"]


def test_reimport_skips_everything_and_changes_nothing(migration):
    _, _, server, _, mlflow_dir, sextant_dir = migration
    before = snapshot(server.url)
    again = run_import(mlflow_dir, sextant_dir / "data")
    c = counts(again.stderr)
    assert c["experiments"] == (0, 3) and c["runs"] == (0, 5) and c["logged models"] == (0, 2), again.stderr
    assert c["registered models"] == (0, 2) and c["model versions"] == (0, 5) and c["aliases"] == (0, 2), c
    assert c["artifacts"][0] == 0 and c["artifacts"][1] > 10, c
    assert "nothing new to import" in again.stderr
    assert snapshot(server.url) == before
    events = requests.get(f"{server.url}/api/v1/events", params={"after": 0}, timeout=30).json()["events"]
    assert [e["kind"] for e in events] == ["import.completed"]


def test_sextant_continues_after_the_imported_ids(migration):
    logged, before, server, _, _, _ = migration
    client = MlflowClient(server.url)
    exp_ids = [int(e[0]) for e in before["experiments"]]
    assert int(client.create_experiment("after-import")) > max(exp_ids)
    # Version 2 of import-other was deleted in MLflow; its number stays taken.
    mv = client.create_model_version("import-other", f"models:/{logged['model_ids'][0]}",
                                     model_id=logged["model_ids"][0])
    assert mv.version == "4"
