"""search_runs: filters, ordering (NULL/NaN placement, tie-breaks), pagination, DataFrames, errors."""

import math

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from helpers import assert_error, post, unique

NAN = float("nan")
BASE_TS = 1_700_000_000_000

# name: (status, params, metrics, tags); run i starts at BASE_TS + i * 1000.
ROWS = {
    "r0": ("FINISHED", {"model": "tree", "my param": "x"}, {"acc": 0.9, "my metric": 1.0}, {"team": "red", "a.b": "v1"}),
    "r1": ("FAILED", {"model": "linear"}, {"acc": 0.5}, {"team": "Red", "a.b": "v2"}),
    "r2": ("RUNNING", {"model": "svm"}, {"acc": NAN}, {"team": "blue"}),
    "r3": ("RUNNING", {"model": "tree", "my param": "y"}, {}, {}),
    "r4": ("RUNNING", {"model": "linear"}, {"acc": 0.7, "loss": 0.1}, {"team": "red", "a.b": "v1"}),
    "r5": ("RUNNING", {}, {"acc": 0.1}, {"team": "green"}),
    "r6": ("RUNNING", {"model": "tree"}, {"acc": 0.9}, {"team": "RED"}),
    "r7": ("RUNNING", {"model": "svm"}, {"acc": -1.0}, {"team": "blue"}),
}


@pytest.fixture(scope="module")
def runs(server_url):
    """One experiment holding the eight runs of ROWS; returns (experiment_id, {name: run_id})."""
    from mlflow import MlflowClient

    client = MlflowClient(server_url)
    exp_id = client.create_experiment(unique("search"))
    ids = {}
    for i, (name, (status, params, metrics, tags)) in enumerate(ROWS.items()):
        run = client.create_run(exp_id, run_name=name, start_time=BASE_TS + i * 1000)
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, BASE_TS, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            client.set_terminated(rid, status=status, end_time=BASE_TS + i * 1000 + 500)
        ids[name] = rid
    return exp_id, ids


def names_of(result, ids):
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r.info.run_id] for r in result]


def search(client, runs, flt="", order_by=None, **kw):
    exp_id, ids = runs
    return names_of(client.search_runs([exp_id], filter_string=flt, order_by=order_by, **kw), ids)


def test_default_order_is_start_time_desc(client, runs):
    assert search(client, runs) == ["r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"]


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("params.model = 'tree'", {"r0", "r3", "r6"}),
        ("params.model != 'tree'", {"r1", "r2", "r4", "r7"}),
        ('params.model = "tree"', {"r0", "r3", "r6"}),
        ("params.`my param` = 'x'", {"r0"}),
        ("params.`my param` IS NOT NULL", {"r0", "r3"}),
        ("params.model IS NULL", {"r5"}),
        ("param.model LIKE 't%'", {"r0", "r3", "r6"}),
        ("parameters.model LIKE 'T%'", set()),
        ("params.model ILIKE 'T%E'", {"r0", "r3", "r6"}),
        ("params.model LIKE '_vm'", {"r2", "r7"}),
        ("tags.team = 'red'", {"r0", "r4"}),
        ("tags.team LIKE 'R%'", {"r1", "r6"}),
        ("tags.team ILIKE 'red'", {"r0", "r1", "r4", "r6"}),
        ("tags.team IS NULL", {"r3"}),
        ("tag.team IS NOT NULL AND tags.team != 'blue'", {"r0", "r1", "r4", "r5", "r6"}),
        ("tags.`a.b` = 'v1'", {"r0", "r4"}),
        ('tags."a.b" = \'v2\'', {"r1"}),
        ("tags.`a.b` != 'v1'", {"r1"}),
        ("tags.mlflow.runName = 'r3'", {"r3"}),
        ("metrics.acc > 0.5", {"r0", "r4", "r6"}),
        ("metrics.acc >= 0.5", {"r0", "r1", "r4", "r6"}),
        ("metrics.acc = 0.9", {"r0", "r6"}),
        ("metrics.acc < 0", {"r7"}),
        ("metrics.acc <= -1", {"r7"}),
        ("metrics.acc > -1e3", {"r0", "r1", "r4", "r5", "r6", "r7"}),
        ("metrics.`my metric` = 1", {"r0"}),
        ("metric.loss < 1 AND params.model = 'linear'", {"r4"}),
        ("metrics.acc > 0.05 and params.model = 'tree' and tags.team ILIKE 'RED'", {"r0", "r6"}),
        ("attributes.status = 'FINISHED'", {"r0"}),
        ("attributes.status != 'RUNNING'", {"r0", "r1"}),
        ("status LIKE 'F%'", {"r0", "r1"}),
        (f"attributes.start_time >= {BASE_TS + 6000}", {"r6", "r7"}),
        (f"attributes.start_time < {BASE_TS + 1000}", {"r0"}),
        (f"created = {BASE_TS + 2000}", {"r2"}),
        (f"attributes.end_time > {BASE_TS}", {"r0", "r1"}),
        ("attributes.run_name = 'r3'", {"r3"}),
        ("run_name ILIKE 'R1'", {"r1"}),
        ("`Run name` LIKE 'r%'", set(ROWS)),
        ("attributes.user_id != 'nobody-at-all'", set(ROWS)),
    ],
)
def test_filters(client, runs, flt, expected):
    assert set(search(client, runs, flt)) == expected


def test_nan_metrics(client, runs):
    # NaN matches no ordering comparison; MLflow's SQL store does match it with '!='.
    assert "r2" not in search(client, runs, "metrics.acc > 0")
    assert "r2" not in search(client, runs, "metrics.acc < 1")
    assert "r2" not in search(client, runs, "metrics.acc = 0.5")
    assert set(search(client, runs, "metrics.acc != 0.5")) == {"r0", "r2", "r4", "r5", "r6", "r7"}


def test_run_id_in_and_not_in(client, runs):
    exp_id, ids = runs
    flt = f"attributes.run_id IN ('{ids['r0']}', '{ids['r2']}', '{'f' * 32}')"
    assert set(search(client, runs, flt)) == {"r0", "r2"}
    flt = f"attributes.run_id NOT IN ('{ids['r0']}', '{ids['r2']}')"
    assert set(search(client, runs, flt)) == set(ROWS) - {"r0", "r2"}
    assert search(client, runs, f"run_id = '{ids['r5']}'") == ["r5"]


@pytest.mark.parametrize(
    "order_by,expected",
    [
        # NaN after numbers, NULL (no value) last, in both directions; ties by start_time DESC.
        (["metrics.acc DESC"], ["r6", "r0", "r4", "r1", "r5", "r7", "r2", "r3"]),
        (["metrics.acc ASC"], ["r7", "r5", "r1", "r4", "r6", "r0", "r2", "r3"]),
        (["metrics.acc"], ["r7", "r5", "r1", "r4", "r6", "r0", "r2", "r3"]),
        (["params.model ASC", "metrics.acc DESC"], ["r4", "r1", "r7", "r2", "r6", "r0", "r3", "r5"]),
        (["params.model DESC", "attributes.start_time ASC"], ["r0", "r3", "r6", "r2", "r7", "r1", "r4", "r5"]),
        (["tags.team ASC", "attributes.run_name DESC"], ["r6", "r1", "r7", "r2", "r5", "r4", "r0", "r3"]),
        (["attributes.start_time ASC"], ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]),
        (["start_time DESC"], ["r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"]),
        (["metrics.`my metric` DESC", "run_name ASC"], ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]),
        (["attributes.status ASC", "created ASC"], ["r1", "r0", "r2", "r3", "r4", "r5", "r6", "r7"]),
    ],
)
def test_order_by(client, runs, order_by, expected):
    assert search(client, runs, order_by=order_by) == expected


@pytest.mark.parametrize("order_by", [None, ["metrics.acc DESC"], ["params.model ASC", "metrics.acc DESC"]])
@pytest.mark.parametrize("page_size", [1, 3, 8])
def test_pagination_covers_every_run_once(client, runs, order_by, page_size):
    exp_id, ids = runs
    full = search(client, runs, order_by=order_by)
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs([exp_id], order_by=order_by, max_results=page_size, page_token=token)
        assert len(page) <= page_size
        seen += names_of(page, ids)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages <= len(ROWS)
    assert seen == full
    assert sorted(seen) == sorted(ROWS)
    assert pages == math.ceil(len(ROWS) / page_size)


def test_pagination_with_filter(client, runs):
    exp_id, ids = runs
    flt = "metrics.acc > -5"
    first = client.search_runs([exp_id], flt, max_results=4, order_by=["metrics.acc DESC"])
    assert names_of(first, ids) == ["r6", "r0", "r4", "r1"] and first.token
    second = client.search_runs([exp_id], flt, max_results=4, order_by=["metrics.acc DESC"], page_token=first.token)
    assert names_of(second, ids) == ["r5", "r7"] and not second.token


def test_search_several_experiments(client, runs):
    exp_id, ids = runs
    other = client.create_experiment(unique("search-other"))
    extra = client.create_run(other, start_time=BASE_TS + 100_000).info.run_id
    client.log_param(extra, "model", "tree")
    found = client.search_runs([exp_id, other], "params.model = 'tree'")
    assert [r.info.run_id for r in found] == [extra, ids["r6"], ids["r3"], ids["r0"]]


def test_fluent_search_runs_returns_dataframe(runs):
    exp_id, ids = runs
    df = mlflow.search_runs(experiment_ids=[exp_id], filter_string="params.model = 'tree'", order_by=["metrics.acc DESC"])
    assert isinstance(df, pd.DataFrame)
    assert df["run_id"].tolist() == [ids["r6"], ids["r0"], ids["r3"]]
    for col in ["experiment_id", "status", "artifact_uri", "start_time", "end_time",
                "metrics.acc", "params.model", "params.my param", "tags.team", "tags.mlflow.runName"]:
        assert col in df.columns, col
    acc = df["metrics.acc"].tolist()
    assert acc[:2] == [0.9, 0.9] and math.isnan(acc[2])
    assert df["tags.mlflow.runName"].tolist() == ["r6", "r0", "r3"]
    assert df["status"].tolist() == ["RUNNING", "FINISHED", "RUNNING"]
    assert (df["experiment_id"] == exp_id).all()

    everything = mlflow.search_runs(experiment_ids=[exp_id])
    assert len(everything) == len(ROWS)
    as_list = mlflow.search_runs(experiment_ids=[exp_id], output_format="list", max_results=3)
    assert len(as_list) == 3 and all(isinstance(r, mlflow.entities.Run) for r in as_list)


def test_fluent_search_runs_by_experiment_name(client, runs):
    exp_id, _ = runs
    name = client.get_experiment(exp_id).name
    df = mlflow.search_runs(experiment_names=[name], filter_string="tags.team = 'blue'")
    assert sorted(df["tags.mlflow.runName"]) == ["r2", "r7"]


def test_empty_search_is_empty(client, runs):
    exp_id, _ = runs
    page = client.search_runs([exp_id], "params.model = 'none-such'")
    assert list(page) == [] and not page.token


@pytest.mark.parametrize(
    "flt",
    [
        "metrics.acc > 0.5 OR params.model = 'tree'",
        "(metrics.acc > 0.5)",
        "metrics.acc = '0.5'",
        "params.model = tree",
        "metrics.acc IS NULL",
        "attributes.experiment_id = '0'",
        "attributes.start_time LIKE '1'",
        "tags.team IN ('red')",
        "foo.bar = 'x'",
        "params.model",
    ],
)
def test_invalid_filters(client, runs, flt):
    exp_id, _ = runs
    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], flt)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("order_by", [["metrics.acc NULLS LAST"], ["attributes.bogus"], ["metrics.acc UP"]])
def test_invalid_order_by(client, runs, order_by):
    exp_id, _ = runs
    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], order_by=order_by)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.sextant_only
def test_repeated_order_by_key_is_400(server_url, runs):
    # MLflow answers this with a 500 (which its client retries for minutes); Sextant with a 400.
    exp_id, _ = runs
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id], "order_by": ["metrics.acc", "metrics.acc DESC"]})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id], "order_by": ["start_time", "attributes.start_time DESC"]})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_repeated_order_by_key_is_an_error(server_url, runs):
    # MLflow: 500 {"error_code": "INTERNAL_ERROR", "message": "`order_by` contains duplicate fields: [...]"}.
    exp_id, _ = runs
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id], "order_by": ["metrics.acc", "metrics.acc DESC"]})
    assert resp.status_code >= 400
    assert "duplicate" in resp.json()["message"]


def test_max_results_limits(server_url, runs):
    exp_id, _ = runs
    too_many = post(server_url, "runs/search", {"experiment_ids": [exp_id], "max_results": 50001})
    assert_error(too_many, 400, "INVALID_PARAMETER_VALUE")
    ok = post(server_url, "runs/search", {"experiment_ids": [exp_id], "max_results": 50000})
    assert ok.status_code == 200 and len(ok.json()["runs"]) == len(ROWS)


def test_bad_page_token(server_url, runs):
    exp_id, _ = runs
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id], "page_token": "not a token!"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
