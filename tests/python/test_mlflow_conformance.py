"""What MLflow's own server tests found Sextant answering differently from MLflow 3.17.2 (issue 20).

Each test states MLflow's answer on the same input; run with `SEXTANT_TEST_AGAINST_MLFLOW=1` they pass
against `mlflow server` too, except where marked `sextant_only`.
"""

import uuid
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
import requests

from helpers import assert_error, get, post, unique

INVALID_PATH = "Invalid path"


def artifact_root(run) -> str:
    """The run's artifact root as a path under /api/2.0/mlflow-artifacts/artifacts/."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri[len("mlflow-artifacts:/") :].lstrip("/")


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def run_with_files(experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "a.txt")
        mlflow.log_text("deep", "d/b.txt")
    return run


# --- item 2: `.` and the empty path are the artifact root ------------------------------------------


@pytest.mark.parametrize("path", [".", "", "./"])
def test_download_artifacts_dot_is_the_run_root(run_with_files, tmp_path, path):
    out = mlflow.artifacts.download_artifacts(
        run_id=run_with_files.info.run_id, artifact_path=path, dst_path=str(tmp_path)
    )
    assert files_under(Path(out)) == {"a.txt", "d/b.txt"}
    assert (Path(out) / "d/b.txt").read_text() == "deep"


def test_download_artifacts_dot_prefixed_directory(run_with_files, tmp_path):
    out = mlflow.artifacts.download_artifacts(
        run_id=run_with_files.info.run_id, artifact_path="./d", dst_path=str(tmp_path)
    )
    assert files_under(Path(out)) == {"b.txt"}


def test_listings_read_dot_segments_as_mlflow_does(server_url, run_with_files):
    root = artifact_root(run_with_files)
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts"
    for path in (f"{root}/.", f"{root}/./", root):
        resp = requests.get(base, params={"path": path}, timeout=30)
        assert resp.status_code == 200, (path, resp.text)
        assert {f["path"] for f in resp.json()["files"]} == {"a.txt", "d"}, path
    resp = requests.get(base, params={"path": f"{root}/./d/."}, timeout=30)
    assert [f["path"] for f in resp.json()["files"]] == ["b.txt"]

    # The run listing joins the directory as written with each name (`posixpath.join`).
    run_id = run_with_files.info.run_id
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": "."}).json()
    assert {f["path"] for f in listed["files"]} == {"./a.txt", "./d"}
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": "./d"}).json()
    assert [f["path"] for f in listed["files"]] == ["./d/b.txt"]
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": ""}).json()
    assert {f["path"] for f in listed["files"]} == {"a.txt", "d"}


@pytest.mark.parametrize(
    "suffix",
    ["..", "./..", "./../..", "d/../..", "%2e%2e", "./%2e%2e/x"],
)
def test_traversal_is_still_refused(server_url, run_with_files, suffix):
    root = artifact_root(run_with_files)
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts"
    resp = requests.get(f"{base}?path={root}/{suffix}", timeout=30)
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == INVALID_PATH
    resp = get(server_url, "artifacts/list", {"run_id": run_with_files.info.run_id, "path": suffix})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


# --- item 3: fields typed as MLflow's message parser types them ------------------------------------

API_DOCS = "See the API docs for more information about request parameters."


def invalid_value_message(field: str, shown: str, py_type: str) -> str:
    return f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type '{py_type}'. {API_DOCS}"


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


@pytest.mark.parametrize(
    "path,body,field,shown,py_type",
    [
        ("experiments/create", {"name": 123}, "name", "123", "int"),
        ("experiments/create", {"name": True}, "name", "true", "bool"),
        ("runs/create", {"experiment_id": 12345678}, "experiment_id", "12345678", "int"),
        ("runs/log-metric", {"run_id": 31, "key": "m", "value": 1, "timestamp": 1}, "run_id", "31", "int"),
        ("runs/delete", {"run_id": 31}, "run_id", "31", "int"),
        ("registered-models/create", {"name": 5}, "name", "5", "int"),
    ],
)
def test_numbers_are_refused_where_mlflow_wants_strings(server_url, path, body, field, shown, py_type):
    body = assert_error(post(server_url, path, body), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == invalid_value_message(field, shown, py_type)


def test_numeric_name_creates_nothing(server_url):
    name = 900_000_000 + uuid.uuid4().int % 100_000_000
    assert_error(post(server_url, "experiments/create", {"name": name}), 400, "INVALID_PARAMETER_VALUE")
    resp = get(server_url, "experiments/get-by-name", {"experiment_name": str(name)})
    assert_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    "path,extra,field,shown,py_type",
    [
        ("runs/set-tag", {"key": "t", "value": 1}, "value", "1", "int"),
        ("runs/set-tag", {"key": "t", "value": 1.5}, "value", "1.5", "float"),
        ("runs/log-parameter", {"key": "p", "value": 1}, "value", "1", "int"),
        ("runs/log-metric", {"key": 5, "value": 1, "timestamp": 1}, "key", "5", "int"),
        ("runs/update", {"run_name": 3}, "run_name", "3", "int"),
        ("runs/update", {"end_time": "x"}, "end_time", '"x"', "str"),
    ],
)
def test_run_fields_are_typed(server_url, client, run_id, path, extra, field, shown, py_type):
    resp = post(server_url, path, {"run_id": run_id, **extra})
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == invalid_value_message(field, shown, py_type)
    run = client.get_run(run_id)
    assert "t" not in run.data.tags and "p" not in run.data.params and not run.data.metrics


def test_lists_and_messages_are_typed(server_url, experiment_id):
    resp = post(server_url, "runs/search", {"experiment_ids": experiment_id})
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == invalid_value_message("experiment_ids", f'"{experiment_id}"', "str")
    resp = post(server_url, "runs/log-batch", {"run_id": "r", "metrics": {"key": "m"}})
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == invalid_value_message("metrics", '{"key":"m"}', "dict")


def test_what_protobuf_reads_leniently_still_works(server_url, client, run_id, experiment_id):
    # int64 from a string, a double from a string, enums by number: proto-JSON allows each.
    resp = post(server_url, "runs/log-metric", {"run_id": run_id, "key": "m", "value": "1.5", "timestamp": "7", "step": "2"})
    assert resp.status_code == 200, resp.text
    assert [(m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, "m")] == [(1.5, 7, 2)]
    resp = post(server_url, "runs/update", {"run_id": run_id, "status": 3})
    assert resp.status_code == 200 and resp.json()["run_info"]["status"] == "FINISHED"
    resp = post(server_url, "runs/search", {"experiment_ids": [experiment_id], "run_view_type": 3})
    assert [r["info"]["run_id"] for r in resp.json()["runs"]] == [run_id]
    resp = post(server_url, "experiments/search", {"view_type": 3, "max_results": "5"})
    assert resp.status_code == 200, resp.text


# --- item 5: MLflow's error texts and field paths ---------------------------------------------------


@pytest.mark.parametrize(
    "batch,path",
    [
        ({"metrics": [{"key": "m", "value": 1}]}, "metrics[0].timestamp"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 1}, {"key": "m", "timestamp": 1}]}, "metrics[1].value"),
        ({"metrics": [{"value": 1, "timestamp": 1}]}, "metrics[0].key"),
        ({"params": [{"value": "1"}]}, "params[0].key"),
        ({"tags": [{"key": "a", "value": "1"}, {"key": "", "value": "1"}]}, "tags[1].key"),
    ],
)
def test_log_batch_names_the_field_path(server_url, run_id, batch, path):
    body = assert_error(post(server_url, "runs/log-batch", {"run_id": run_id, **batch}), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == f"Missing value for required parameter '{path}'. {API_DOCS}"


def ajax_get(url: str, path: str, params) -> requests.Response:
    return requests.get(f"{url}/ajax-api/2.0/mlflow/{path}", params=params, timeout=30)


@pytest.mark.parametrize(
    "path,params,message",
    [
        ("metrics/get-history-bulk", {"metric_key": "m"}, "GetMetricHistoryBulk request must specify at least one run_id."),
        ("metrics/get-history-bulk", {"run_id": "a"}, "GetMetricHistoryBulk request must specify a metric_key."),
        (
            "metrics/get-history-bulk",
            {"run_id": [f"r{i}" for i in range(101)], "metric_key": "m"},
            "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.",
        ),
        ("metrics/get-history-bulk-interval", {"metric_key": "m"}, f"Missing value for required parameter 'run_ids'. {API_DOCS}"),
        ("metrics/get-history-bulk-interval", {"run_ids": "a"}, f"Missing value for required parameter 'metric_key'. {API_DOCS}"),
        (
            "metrics/get-history-bulk-interval",
            {"run_ids": [f"r{i}" for i in range(101)], "metric_key": "m"},
            f"GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids. {API_DOCS}",
        ),
        (
            "metrics/get-history-bulk-interval",
            {"run_ids": "a", "metric_key": "m", "max_results": 0},
            f"max_results must be between 1 and 2500. {API_DOCS}",
        ),
        (
            "metrics/get-history-bulk-interval",
            {"run_ids": "a", "metric_key": "m", "max_results": "x"},
            invalid_value_message("max_results", '"x"', "str"),
        ),
    ],
)
def test_bulk_history_messages(server_url, path, params, message):
    body = assert_error(ajax_get(server_url, path, params), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == message


def test_bulk_history_caps_max_results(server_url, run_id):
    post(server_url, "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1})
    resp = ajax_get(server_url, "metrics/get-history-bulk", {"run_id": run_id, "metric_key": "m", "max_results": 10**6})
    assert resp.status_code == 200, resp.text
    assert [(m["run_id"], m["value"]) for m in resp.json()["metrics"]] == [(run_id, 1.0)]


def test_bulk_interval_samples_as_a_live_mlflow_server_does(tmp_path):
    """Same runs logged to `mlflow server` 3.17.2 and to Sextant: every sampled history the
    compare page asks for (several sizes, with and without a step range) is the same, row for
    row and in order: runs on different step grids, several values at one step and time, a
    negative step, a thousand values at step 0."""
    from conftest import start_mlflow, start_sextant

    grids = {
        "dense": [(s, 1000 + s, s / 7) for s in range(1000)],
        "sparse": [(s, 5000 + s, s / 3) for s in range(0, 501, 5)],
        "odd": [(0, 1, 1.0), (3, 2, 2.0), (3, 3, 2.5), (3, 3, 0.5), (1000, 4, 3.0), (1500, 5, 4.0), (-2, 0, 9.0)],
        "zeros": [(0, 100 + i, float(i % 17)) for i in range(1000)],
    }
    answers = {}
    for name, start in (("mlflow", start_mlflow), ("sextant", start_sextant)):
        (tmp_path / name).mkdir()
        srv = start(tmp_path / name)
        try:
            exp = post(srv.url, "experiments/create", {"name": "bulk"}).json()["experiment_id"]
            names = {}
            for run, rows in grids.items():
                rid = post(srv.url, "runs/create", {"experiment_id": exp, "run_name": run}).json()["run"]["info"]["run_id"]
                names[rid] = run
                for i in range(0, len(rows), 1000):
                    metrics = [{"key": "m", "step": s, "timestamp": t, "value": v} for s, t, v in rows[i : i + 1000]]
                    assert post(srv.url, "runs/log-batch", {"run_id": rid, "metrics": metrics}).status_code == 200
            got = {}
            for most in (1, 5, 37, 100, 2500):
                for steps in (None, (0, 700), (3, 3)):
                    params = {"run_ids": list(names), "metric_key": "m", "max_results": most}
                    if steps:
                        params["start_step"], params["end_step"] = steps
                    resp = ajax_get(srv.url, "metrics/get-history-bulk-interval", params)
                    assert resp.status_code == 200, resp.text
                    got[(most, steps)] = [
                        (names[m["run_id"]], m["step"], m["timestamp"], m["value"]) for m in resp.json().get("metrics", [])
                    ]
            answers[name] = got
        finally:
            srv.stop()
    assert answers["mlflow"][(5, None)], "MLflow answered nothing to compare with"
    for asked, expected in answers["mlflow"].items():
        assert answers["sextant"][asked] == expected, asked


# --- item 1: model-version sources as MLflow 3.17.2 takes them -------------------------------------


@pytest.fixture
def model_name(client):
    name = unique("conf-model")
    client.create_registered_model(name)
    return name


def create_version(url: str, name: str, source: str, run_id: str | None = None) -> requests.Response:
    body = {"name": name, "source": source}
    if run_id is not None:
        body["run_id"] = run_id
    return post(url, "model-versions/create", body)


@pytest.mark.parametrize(
    "source,with_run",
    [
        ("s3://bucket/model", True),
        ("s3://bucket/path/to/model", False),
        ("gs://bucket/model", True),
        ("gs://bucket/model", False),
        ("wasbs://container@account.blob.core.windows.net/model", False),
    ],
)
def test_object_store_sources_are_accepted(server_url, client, model_name, run_id, source, with_run):
    resp = create_version(server_url, model_name, source, run_id if with_run else None)
    assert resp.status_code == 200, resp.text
    mv = resp.json()["model_version"]
    assert mv["source"] == source
    assert mv.get("run_id", "") == (run_id if with_run else "")
    assert client.get_model_version_download_uri(model_name, mv["version"]) == source


def test_object_store_source_needs_no_run_here(server_url, client, model_name):
    # MLflow records the run id of a remote source without looking the run up.
    resp = create_version(server_url, model_name, "s3://bucket/model", "run-elsewhere")
    assert resp.status_code == 200, resp.text
    assert resp.json()["model_version"]["run_id"] == "run-elsewhere"
    # A `runs:/` source whose run_id matches is recorded the same way.
    resp = create_version(server_url, model_name, "runs:/run-elsewhere/model", "run-elsewhere")
    assert resp.status_code == 200, resp.text
    assert client.get_model_version_download_uri(model_name, resp.json()["model_version"]["version"]) == (
        "runs:/run-elsewhere/model"
    )


def test_registering_from_object_storage_with_the_client(client, model_name, run_id):
    mv = client.create_model_version(model_name, "s3://bucket/models/m1", run_id=run_id, tags={"k": "v"})
    assert mv.source == "s3://bucket/models/m1"
    assert mv.run_id == run_id
    assert client.get_model_version(model_name, mv.version).tags == {"k": "v"}


@pytest.mark.parametrize(
    "source,with_run",
    [
        ("/etc/passwd", False),
        ("/etc/passwd", True),
        ("file:///etc/passwd", True),
        ("file:///etc/passwd", False),
        ("s3://bucket/model/../../../etc", True),
        ("s3://bucket/model/%2e%2e/%2e%2e/x", False),
        ("http://example.com/model", True),
        ("ftp://example.com/model", False),
    ],
)
def test_dangerous_sources_are_still_refused(server_url, model_name, run_id, source, with_run):
    resp = create_version(server_url, model_name, source, run_id if with_run else None)
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    if source.startswith(("http:", "ftp:")):
        scheme = source.split(":")[0]
        assert body["message"].startswith(f"'source' cannot use the '{scheme}' scheme"), body
    else:
        assert "Invalid model version source" in body["message"], body


def test_proxied_sources_must_lie_in_the_named_run(server_url, client, experiment_id, model_name, run_id):
    other = client.create_run(experiment_id).info
    root = client.get_run(run_id).info.artifact_uri
    resp = create_version(server_url, model_name, f"{root}/model", run_id)
    assert resp.status_code == 200, resp.text
    for source, rid in [(f"{other.artifact_uri}/model", run_id), (f"{root}/model", "no-such-run")]:
        body = assert_error(create_version(server_url, model_name, source, rid), 400, "INVALID_PARAMETER_VALUE")
        assert body["message"] == (
            f"Invalid model version source: '{source}'. The run_id request parameter must identify the "
            "resource that contains the source."
        )


def test_local_sources_are_resolved_before_they_are_confined(server_url, client, model_name, tmp_path):
    # A run whose root is a local directory (a direct root, as with --default-artifact-root).
    exp_id = client.create_experiment(unique("local-root"), artifact_location=str(tmp_path / "direct"))
    run = client.create_run(exp_id).info
    for source in (f"{run.artifact_uri}/.", f"{run.artifact_uri}/model/..", f"file://{run.artifact_uri}/model"):
        resp = create_version(server_url, model_name, source, run.run_id)
        assert resp.status_code == 200, (source, resp.text)
    for source, rid in [(f"{run.artifact_uri}/../../other", run.run_id), (f"{run.artifact_uri}/.", None)]:
        body = assert_error(create_version(server_url, model_name, source, rid), 400, "INVALID_PARAMETER_VALUE")
        assert "To use a local path as a model version source" in body["message"], body


# --- item 4: the UI routes MLflow 3.17 serves ------------------------------------------------------


def test_model_version_artifact_for_the_ui(server_url, client, model_name, run_with_files, sextant):
    run_id = run_with_files.info.run_id
    sources = [f"{run_with_files.info.artifact_uri}/d"]
    if sextant:
        # MLflow answers 500 here: it keeps `runs:/` as the location and cannot read it server-side.
        sources.append(f"runs:/{run_id}/d")
    url = f"{server_url}/model-versions/get-artifact"
    for source in sources:
        mv = client.create_model_version(model_name, source, run_id=run_id)
        resp = requests.get(url, params={"name": model_name, "version": mv.version, "path": "b.txt"}, timeout=30)
        assert resp.status_code == 200, (source, resp.text)
        assert resp.content == b"deep"
        for path in ("../a.txt", "%2e%2e/a.txt"):
            resp = requests.get(url, params={"name": model_name, "version": mv.version, "path": path}, timeout=30)
            assert resp.status_code == 400, (path, resp.text)


def upload(url: str, params: dict, data: bytes) -> requests.Response:
    return requests.post(
        f"{url}/ajax-api/2.0/mlflow/upload-artifact",
        params=params,
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )


def test_ui_upload_artifact(server_url, client, run_id):
    resp = upload(server_url, {"run_uuid": run_id, "path": "uploads/notes.txt"}, b"from the ui")
    assert resp.status_code == 200, resp.text
    assert [f.path for f in client.list_artifacts(run_id, "uploads")] == ["uploads/notes.txt"]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/uploads/notes.txt") == "from the ui"

    for params, data, message in [
        ({"path": "x.txt"}, b"x", "Request must specify run_uuid."),
        ({"run_uuid": run_id}, b"x", "Request must specify path."),
        ({"run_uuid": run_id, "path": "x.txt"}, b"", "Request must specify data."),
        ({"run_uuid": run_id, "path": "../../x.txt"}, b"x", INVALID_PATH),
    ]:
        body = assert_error(upload(server_url, params, data), 400, "INVALID_PARAMETER_VALUE")
        assert body["message"] == message, params


def test_ui_upload_refuses_more_than_10_mb(server_url, run_id):
    resp = upload(server_url, {"run_uuid": run_id, "path": "big.bin"}, b"\0" * (10 * 1024 * 1024 + 1))
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Artifact size is too large. Max size is 10MB."


def search_datasets(url: str, body: dict) -> requests.Response:
    return requests.post(f"{url}/ajax-api/2.0/mlflow/experiments/search-datasets", json=body, timeout=30)


def test_search_datasets(server_url, client, experiment_id, run_id):
    def dataset(name):
        return {"name": name, "digest": "abc", "source_type": "local", "source": '{"uri": "/data"}'}

    resp = post(server_url, "runs/log-inputs", {
        "run_id": run_id,
        "datasets": [
            {"dataset": dataset("train"), "tags": [{"key": "mlflow.data.context", "value": "training"}]},
            {"dataset": dataset("holdout")},
        ],
    })
    assert resp.status_code == 200, resp.text
    resp = search_datasets(server_url, {"experiment_ids": [experiment_id]})
    assert resp.status_code == 200, resp.text
    got = sorted(resp.json()["dataset_summaries"], key=lambda d: d["name"])
    assert got == [
        {"experiment_id": experiment_id, "name": "holdout", "digest": "abc"},
        {"experiment_id": experiment_id, "name": "train", "digest": "abc", "context": "training"},
    ]
    other = client.create_experiment(unique("no-datasets"))
    assert search_datasets(server_url, {"experiment_ids": [other]}).json() == {}

    body = assert_error(search_datasets(server_url, {}), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "SearchDatasets request must specify at least one experiment_id."
    body = assert_error(search_datasets(server_url, {"experiment_ids": [str(i) for i in range(21)]}), 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."


@pytest.mark.sextant_only
@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run"),
        ("GET", "/ajax-api/2.0/mlflow/get-trace-artifact"),
        ("GET", "/ajax-api/3.0/mlflow/get-trace-artifact"),
        ("POST", "/api/3.0/mlflow/issues"),
        ("POST", "/api/3.0/mlflow/issues/search"),
        ("GET", "/ajax-api/3.0/mlflow/issues/iss-1"),
    ],
)
def test_genai_routes_answer_501_not_404(server_url, method, path):
    resp = requests.request(method, f"{server_url}{path}", json={} if method == "POST" else None, timeout=30)
    assert_error(resp, 501, "NOT_IMPLEMENTED")


# --- item 6: server options and download headers as `mlflow server` gives them ---------------------


def test_relative_artifact_location_is_resolved_against_the_servers_directory(client):
    # Both servers run in this process's working directory (conftest starts them so).
    exp_id = client.create_experiment(unique("relative"), artifact_location="my_location")
    assert client.get_experiment(exp_id).artifact_location == str(Path.cwd() / "my_location")
    exp_id = client.create_experiment(unique("absolute"), artifact_location="s3://bucket/x")
    assert client.get_experiment(exp_id).artifact_location == "s3://bucket/x"


@pytest.mark.parametrize(
    "name,content_type,disposition",
    [
        ("mlproject", "text/plain", "attachment; filename=mlproject"),
        ("MLmodel", "text/plain", "attachment; filename=MLmodel"),
        ("dog+step+20.png", "image/png", "attachment; filename=dog+step+20.png"),
        ("a b.txt", "text/plain", 'attachment; filename="a b.txt"'),
        ("café.pkl", "application/octet-stream", "attachment; filename=cafe.pkl; filename*=UTF-8''caf%C3%A9.pkl"),
    ],
)
def test_download_headers_as_mlflow_writes_them(server_url, run_id, client, name, content_type, disposition):
    root = artifact_root(client.get_run(run_id))
    url = f"{server_url}/api/2.0/mlflow-artifacts/artifacts/{root}/{quote(name)}"
    assert requests.put(url, data=b"x", timeout=30).status_code == 200
    for resp in (
        requests.get(url, timeout=30),
        requests.get(f"{server_url}/get-artifact", params={"run_id": run_id, "path": name}, timeout=30),
    ):
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["Content-Disposition"] == disposition
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.sextant_only
@pytest.mark.parametrize("root", ["s3://bucket/mlruns", "file:///srv/mlruns", "relative-mlruns"])
def test_default_artifact_root_gives_runs_a_direct_root(tmp_path, root):
    from mlflow import MlflowClient

    from conftest import start_sextant

    srv = start_sextant(tmp_path, "--default-artifact-root", root)
    try:
        expected = root if ":" in root else str(Path.cwd() / root)
        client = MlflowClient(srv.url)
        assert client.get_experiment("0").artifact_location == f"{expected}/0"
        exp_id = client.create_experiment(unique("direct"))
        run = client.create_run(exp_id)
        assert run.info.artifact_uri == f"{expected}/{exp_id}/{run.info.run_id}/artifacts"
    finally:
        srv.stop()


@pytest.mark.sextant_only
def test_no_serve_artifacts_gives_clients_the_root_directly(tmp_path):
    from mlflow import MlflowClient

    from conftest import start_sextant

    direct = tmp_path / "direct"
    srv = start_sextant(tmp_path, "--no-serve-artifacts", "--default-artifact-root", str(direct))
    try:
        resp = requests.get(f"{srv.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "0"}, timeout=30)
        body = assert_error(resp, 503, "TEMPORARILY_UNAVAILABLE")
        assert "--no-serve-artifacts" in body["message"]
        client = MlflowClient(srv.url)
        exp_id = client.create_experiment(unique("direct"))
        run = client.create_run(exp_id)
        assert run.info.artifact_uri == f"{direct}/{exp_id}/{run.info.run_id}/artifacts"
        # The client writes the file itself, under the root it was given.
        client.log_text(run.info.run_id, "hello", "notes/a.txt")
        assert (direct / exp_id / run.info.run_id / "artifacts/notes/a.txt").read_text() == "hello"
        assert [f.path for f in client.list_artifacts(run.info.run_id, "notes")] == ["notes/a.txt"]
    finally:
        srv.stop()


@pytest.mark.sextant_only
def test_no_serve_artifacts_defaults_to_mlruns(tmp_path):
    from mlflow import MlflowClient

    from conftest import start_sextant

    srv = start_sextant(tmp_path, "--no-serve-artifacts")
    try:
        assert MlflowClient(srv.url).get_experiment("0").artifact_location == str(Path.cwd() / "mlruns/0")
    finally:
        srv.stop()
