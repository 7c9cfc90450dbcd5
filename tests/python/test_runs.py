"""Runs: the fluent training loop, log_batch limits, lifecycle, nested runs, inputs, errors."""

import math
import time

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from helpers import assert_error, get, post


def test_fluent_training_loop_round_trips(client, experiment_id):
    losses = [1.0 / (step + 1) for step in range(50)]
    with mlflow.start_run(run_name="train-loop") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 50, "optimizer": "adam", "layers": "[64, 32]"})
        for step, loss in enumerate(losses):
            mlflow.log_metric("loss", loss, step=step)
            mlflow.log_metric("acc", 1 - loss, step=step)
        mlflow.log_metrics({"final_loss": losses[-1], "final_acc": 1 - losses[-1]})
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"team": "core", "note.with.dots": "ok"})
        run_id = run.info.run_id
    assert mlflow.active_run() is None

    got = client.get_run(run_id)
    assert got.info.run_id == run_id
    assert got.info.experiment_id == experiment_id
    assert got.info.run_name == "train-loop"
    assert got.info.status == "FINISHED"
    assert got.info.lifecycle_stage == "active"
    assert got.info.end_time >= got.info.start_time > 0
    assert got.info.artifact_uri.endswith(f"/{run_id}/artifacts")
    assert got.data.params == {"lr": "0.01", "epochs": "50", "optimizer": "adam", "layers": "[64, 32]"}
    assert got.data.metrics == {
        "loss": losses[-1],
        "acc": 1 - losses[-1],
        "final_loss": losses[-1],
        "final_acc": 1 - losses[-1],
    }
    tags = got.data.tags
    assert tags["stage"] == "dev" and tags["team"] == "core" and tags["note.with.dots"] == "ok"
    assert tags["mlflow.runName"] == "train-loop"
    assert "mlflow.user" in tags and "mlflow.source.name" in tags

    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert [m.value for m in history] == losses
    assert all(m.key == "loss" and m.timestamp > 0 for m in history)
    acc = client.get_metric_history(run_id, "acc")
    assert [(m.step, m.value) for m in acc] == [(s, 1 - v) for s, v in enumerate(losses)]
    assert client.get_metric_history(run_id, "never-logged") == []


def test_latest_metric_is_max_step_not_last_logged(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    ts = int(time.time() * 1000)
    client.log_metric(run_id, "m", 5.0, timestamp=ts, step=10)
    client.log_metric(run_id, "m", 1.0, timestamp=ts, step=3)
    assert client.get_run(run_id).data.metrics["m"] == 5.0
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == [(3, 1.0), (10, 5.0)]


def test_special_metric_values(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "nan", float("nan"), step=0)
    client.log_metric(run_id, "inf", float("inf"), step=0)
    client.log_metric(run_id, "ninf", float("-inf"), step=0)
    client.log_metric(run_id, "neg", -1.5e-300, step=0)
    client.log_metric(run_id, "big", 1e300, step=0)
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    # MLflow's SQL store stores +-inf as +-DBL_MAX; either spelling is accepted.
    assert metrics["inf"] in (math.inf, 1.7976931348623157e308)
    assert metrics["ninf"] in (-math.inf, -1.7976931348623157e308)
    assert metrics["neg"] == -1.5e-300 and metrics["big"] == 1e300
    assert math.isnan(client.get_metric_history(run_id, "nan")[0].value)


def test_duplicate_metric_is_idempotent(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    m = Metric("dup", 0.5, 1234, 7)
    client.log_batch(run_id, metrics=[m])
    client.log_batch(run_id, metrics=[m])
    assert [(x.value, x.timestamp, x.step) for x in client.get_metric_history(run_id, "dup")] == [(0.5, 1234, 7)]


# --- log_batch limits -------------------------------------------------------------------------


def test_log_batch_at_the_limits(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric(f"m{i % 10}", float(i), 1000 + i, i) for i in range(1000)]
    client.log_batch(run_id, metrics=metrics)
    params = [Param(f"p{i}", f"v{i}") for i in range(99)] + [Param("long", "x" * 6000)]
    client.log_batch(run_id, params=params)
    tags = [RunTag(f"t{i}", f"v{i}") for i in range(99)] + [RunTag("long", "y" * 8000)]
    client.log_batch(run_id, tags=tags)

    run = client.get_run(run_id)
    assert len(run.data.params) == 100
    assert run.data.params["long"] == "x" * 6000 and run.data.params["p42"] == "v42"
    user_tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    assert len(user_tags) == 100
    assert user_tags["long"] == "y" * 8000
    for k in range(10):
        hist = client.get_metric_history(run_id, f"m{k}")
        assert [m.value for m in hist] == [float(i) for i in range(k, 1000, 10)]
        assert [m.step for m in hist] == list(range(k, 1000, 10))
        assert run.data.metrics[f"m{k}"] == float(990 + k)


def test_client_splits_batches_over_the_limits(client, experiment_id):
    # MlflowClient.log_batch chunks into requests of <= 1000 metrics / 100 params / 100 tags.
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("m", float(i), 1, i) for i in range(2500)],
        params=[Param(f"p{i}", "v") for i in range(250)],
        tags=[RunTag(f"t{i}", "v") for i in range(150)],
    )
    run = client.get_run(run_id)
    assert len(run.data.params) == 250
    assert len([k for k in run.data.tags if not k.startswith("mlflow.")]) == 150
    assert len(client.get_metric_history(run_id, "m")) == 2500


def test_long_values_are_truncated_by_the_server(server_url, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    resp = post(server_url, "runs/log-batch", {
        "run_id": run_id,
        "params": [{"key": "p", "value": "a" * 6001}],
        "tags": [{"key": "t", "value": "b" * 9000}],
    })
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}
    assert post(server_url, "runs/log-parameter", {"run_id": run_id, "key": "q", "value": "c" * 7000}).status_code == 200
    assert post(server_url, "runs/set-tag", {"run_id": run_id, "key": "u", "value": "d" * 8001}).status_code == 200
    run = client.get_run(run_id)
    assert run.data.params["p"] == "a" * 6000
    assert run.data.params["q"] == "c" * 6000
    assert run.data.tags["t"] == "b" * 8000
    assert run.data.tags["u"] == "d" * 8000


@pytest.mark.parametrize(
    "field,count",
    [("metrics", 1001), ("params", 101), ("tags", 101)],
)
def test_over_limit_batches_are_rejected(server_url, client, experiment_id, field, count):
    run_id = client.create_run(experiment_id).info.run_id
    if field == "metrics":
        items = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(count)]
    else:
        items = [{"key": f"k{i}", "value": "v"} for i in range(count)]
    resp = post(server_url, "runs/log-batch", {"run_id": run_id, field: items})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    # All or nothing: nothing of the rejected batch was stored.
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {}
    assert all(k.startswith("mlflow.") for k in run.data.tags)


def test_over_limit_total_entities_is_rejected(server_url, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    resp = post(server_url, "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(950)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(51)],
    })
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_log_batch_rejects_duplicate_param_keys_and_bad_metrics(server_url, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    dup = post(server_url, "runs/log-batch", {"run_id": run_id, "params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]})
    assert_error(dup, 400, "INVALID_PARAMETER_VALUE")
    no_ts = post(server_url, "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0}]})
    assert_error(no_ts, 400, "INVALID_PARAMETER_VALUE")
    bad_key = post(server_url, "runs/log-batch", {"run_id": run_id, "params": [{"key": "../evil", "value": "1"}]})
    assert_error(bad_key, 400, "INVALID_PARAMETER_VALUE")
    long_key = post(server_url, "runs/log-batch", {"run_id": run_id, "tags": [{"key": "k" * 251, "value": "1"}]})
    assert_error(long_key, 400, "INVALID_PARAMETER_VALUE")


# --- params ---------------------------------------------------------------------------------


def test_param_overwrite(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "p", "1")
    client.log_param(run_id, "p", "1")  # same value: fine
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "p", "2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.log_batch(run_id, params=[Param("p", "3")])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"p": "1"}


# --- lifecycle ------------------------------------------------------------------------------


def test_run_delete_and_restore(client, experiment_id):
    keep = client.create_run(experiment_id).info.run_id
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [keep]
    assert [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == 2
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "p", "1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.log_param(run_id, "p", "1")
    assert len(client.search_runs([experiment_id])) == 2


def test_update_status_end_time_and_name(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before", start_time=1_000)
    run_id = run.info.run_id
    assert run.info.status == "RUNNING" and run.info.end_time is None
    assert run.info.start_time == 1_000

    client.update_run(run_id, status="KILLED")
    assert client.get_run(run_id).info.status == "KILLED"
    client.set_terminated(run_id, status="FAILED", end_time=5_000)
    info = client.get_run(run_id).info
    assert (info.status, info.end_time) == ("FAILED", 5_000)

    client.update_run(run_id, name="after")
    got = client.get_run(run_id)
    assert got.info.run_name == "after" and got.data.tags["mlflow.runName"] == "after"
    assert got.info.status == "FAILED"

    client.set_tag(run_id, "mlflow.runName", "via-tag")
    assert client.get_run(run_id).info.run_name == "via-tag"

    client.update_run(run_id, status=RunStatus.to_string(RunStatus.FINISHED))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_generated_run_name(client, experiment_id):
    run = client.create_run(experiment_id)
    assert run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    assert len(run.info.run_id) == 32 and int(run.info.run_id, 16) >= 0


def test_set_and_delete_tag(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "k", "v1")
    client.set_tag(run_id, "k", "v2")
    assert client.get_run(run_id).data.tags["k"] == "v2"
    client.delete_tag(run_id, "k")
    assert "k" not in client.get_run(run_id).data.tags
    with pytest.raises(MlflowException) as e:
        client.delete_tag(run_id, "k")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert e.value.get_http_status_code() == 404


def test_delete_missing_tag_is_404_on_the_wire(server_url, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    resp = post(server_url, "runs/delete-tag", {"run_id": run_id, "key": "never"})
    assert_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_run(client, server_url):
    missing = "0" * 32
    with pytest.raises(MlflowException) as e:
        client.get_run(missing)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.log_metric(missing, "m", 1.0)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(get(server_url, "runs/get", {"run_id": missing}), 404, "RESOURCE_DOES_NOT_EXIST")


# --- nested runs, inputs --------------------------------------------------------------------


def test_nested_runs(client, experiment_id):
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as c1:
            with mlflow.start_run(run_name="grandchild", nested=True) as gc:
                pass
        with mlflow.start_run(run_name="child-2", nested=True) as c2:
            pass
    pid = parent.info.run_id
    assert client.get_run(c1.info.run_id).data.tags["mlflow.parentRunId"] == pid
    assert client.get_run(gc.info.run_id).data.tags["mlflow.parentRunId"] == c1.info.run_id
    assert "mlflow.parentRunId" not in client.get_run(pid).data.tags

    children = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{pid}'")
    assert {r.info.run_id for r in children} == {c1.info.run_id, c2.info.run_id}
    top = client.search_runs([experiment_id], filter_string="tags.mlflow.parentRunId IS NULL")
    assert [r.info.run_id for r in top] == [pid]


def test_log_input_dataset(client, experiment_id):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(df, source="s3://bucket/train.csv", name="train-set", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "train"})
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    d = inputs[0].dataset
    assert d.name == "train-set"
    assert d.digest == dataset.digest
    assert d.source_type == "s3"
    assert "train.csv" in d.source
    assert "x" in d.schema and d.profile
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["mlflow.data.context"] == "training" and tags["split"] == "train"

    found = client.search_runs([experiment_id], filter_string="datasets.name = 'train-set' AND datasets.context = 'training'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert client.search_runs([experiment_id], filter_string="datasets.context = 'eval'") == []


def test_writes_to_finished_run_still_allowed(client, experiment_id):
    # A FINISHED run is still "active" (lifecycle); MLflow allows logging to it.
    with mlflow.start_run() as run:
        pass
    client.log_metric(run.info.run_id, "late", 1.0)
    assert client.get_run(run.info.run_id).data.metrics["late"] == 1.0


def test_run_name_tag_mismatch_rejected(server_url, experiment_id):
    resp = post(server_url, "runs/create", {
        "experiment_id": experiment_id,
        "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}],
    })
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_run_names_need_not_be_unique(client, experiment_id):
    # Two runs may share a name.
    a = client.create_run(experiment_id, run_name="same").info.run_id
    b = client.create_run(experiment_id, run_name="same").info.run_id
    assert a != b
    found = client.search_runs([experiment_id], filter_string="attributes.run_name = 'same'")
    assert {r.info.run_id for r in found} == {a, b}
