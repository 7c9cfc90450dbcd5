"""Raw HTTP: wire details the Python client does not look at but other clients and the UI do."""

import json

import pytest
import requests
from packaging.version import Version

from helpers import api, assert_error, get, post, unique


def test_health(server_url):
    resp = requests.get(f"{server_url}/health", timeout=30)
    assert resp.status_code == 200
    assert resp.text == "OK"


def test_version_is_pep440(server_url):
    resp = requests.get(f"{server_url}/version", timeout=30)
    assert resp.status_code == 200
    assert Version(resp.text) >= Version("3.17")


def test_server_info(server_url):
    for prefix in ("api", "ajax-api"):
        resp = requests.get(f"{server_url}/{prefix}/3.0/mlflow/server-info", timeout=30)
        assert resp.status_code == 200, prefix
        info = resp.json()
        assert isinstance(info["store_type"], str)
        assert isinstance(info["multipart_uploads_enabled"], bool)
        assert isinstance(info["multipart_downloads_enabled"], bool)


def test_int64_fields_are_json_numbers(server_url):
    exp_id = post(server_url, "experiments/create", {"name": unique("wire")}).json()["experiment_id"]
    assert isinstance(exp_id, str)
    exp = get(server_url, "experiments/get", {"experiment_id": exp_id}).json()["experiment"]
    assert isinstance(exp["creation_time"], int) and isinstance(exp["last_update_time"], int)
    assert exp["lifecycle_stage"] == "active"

    created = post(server_url, "runs/create", {"experiment_id": exp_id, "start_time": 1_700_000_000_123})
    assert created.status_code == 200
    info = created.json()["run"]["info"]
    assert info["start_time"] == 1_700_000_000_123
    assert info["status"] == "RUNNING"  # enums by name
    assert info["run_id"] == info["run_uuid"]
    assert "end_time" not in info
    run_id = info["run_id"]

    big_ts = 2**53 + 1  # beyond a double's exact range: must survive as an integer
    resp = post(server_url, "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": big_ts, "step": 2**40})
    assert resp.status_code == 200 and resp.json() == {}
    hist = get(server_url, "metrics/get-history", {"run_id": run_id, "metric_key": "m"}).json()["metrics"]
    assert hist == [{"key": "m", "value": 1.5, "timestamp": big_ts, "step": 2**40}] or (
        len(hist) == 1 and hist[0]["timestamp"] == big_ts and hist[0]["step"] == 2**40 and hist[0]["value"] == 1.5
    )
    raw = get(server_url, "metrics/get-history", {"run_id": run_id, "metric_key": "m"}).text
    assert str(big_ts) in raw and f'"{big_ts}"' not in raw

    post(server_url, "runs/log-metric", {"run_id": run_id, "key": "n", "value": "NaN", "timestamp": 1})
    run = get(server_url, "runs/get", {"run_id": run_id}).json()["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics == {"m": 1.5, "n": "NaN"}

    updated = post(server_url, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1_700_000_000_999})
    assert updated.json()["run_info"]["end_time"] == 1_700_000_000_999
    assert updated.json()["run_info"]["status"] == "FINISHED"


def test_empty_results_are_empty_objects(server_url):
    exp_id = post(server_url, "experiments/create", {"name": unique("empty")}).json()["experiment_id"]
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id]})
    assert resp.status_code == 200 and resp.json() == {}
    resp = post(server_url, "experiments/search", {"max_results": 10, "filter": f"name = '{unique('none')}'"})
    assert resp.status_code == 200 and resp.json() == {}
    resp = post(server_url, "runs/search", {"experiment_ids": [exp_id], "filter": "metrics.x > 1"})
    assert resp.json() == {}


def test_get_requests_take_query_parameters(server_url):
    exp = get(server_url, "experiments/get", {"experiment_id": "0"})
    assert exp.status_code == 200 and exp.json()["experiment"]["name"] == "Default"
    # GET search with repeated keys.
    resp = requests.get(api(server_url, "experiments/search"), params={"max_results": 5, "view_type": "ALL"}, timeout=30)
    assert resp.status_code == 200
    assert len(resp.json()["experiments"]) <= 5


def test_ajax_api_alias(server_url):
    a = requests.get(f"{server_url}/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, timeout=30)
    b = requests.get(f"{server_url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, timeout=30)
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    name = unique("ajax")
    created = requests.post(f"{server_url}/ajax-api/2.0/mlflow/experiments/create", json={"name": name}, timeout=30)
    assert created.status_code == 200
    got = get(server_url, "experiments/get-by-name", {"experiment_name": name}).json()
    assert got["experiment"]["experiment_id"] == created.json()["experiment_id"]


def test_error_body_shape(server_url):
    resp = get(server_url, "experiments/get", {"experiment_id": "987654321"})
    body = assert_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "987654321" in body["message"]


def test_missing_required_parameter(server_url):
    assert_error(post(server_url, "experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(get(server_url, "runs/get", {}), 400, "INVALID_PARAMETER_VALUE")


def test_invalid_json_types(server_url):
    resp = post(server_url, "runs/search", {"experiment_ids": ["0"], "max_results": "lots"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    exp_id = post(server_url, "experiments/create", {"name": unique("types")}).json()["experiment_id"]
    run_id = post(server_url, "runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    resp = post(server_url, "runs/log-metric", {"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1})
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert "'value'" in body["message"]
    resp = post(server_url, "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": "yesterday"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_non_json_post_is_rejected(server_url):
    resp = requests.post(api(server_url, "experiments/create"), data="name=x", headers={"Content-Type": "text/plain"}, timeout=30)
    assert resp.status_code == 400
    resp = requests.post(api(server_url, "experiments/create"), data="{not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400


def test_unknown_route_is_404(server_url):
    resp = requests.get(f"{server_url}/api/2.0/mlflow/no-such-endpoint", timeout=30)
    assert resp.status_code == 404


def test_get_with_repeated_query_keys(server_url):
    prefix = unique("getq")
    ids = [post(server_url, "experiments/create", {"name": f"{prefix}-{n}"}).json()["experiment_id"] for n in "ab"]
    resp = requests.get(
        api(server_url, "experiments/search"),
        params=[("max_results", "10"), ("filter", f"name LIKE '{prefix}-%'"),
                ("order_by", "name DESC"), ("order_by", "experiment_id ASC")],
        timeout=30,
    )
    assert resp.status_code == 200
    assert [e["experiment_id"] for e in resp.json()["experiments"]] == ids[::-1]


@pytest.mark.sextant_only
@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/api/3.0/mlflow/traces", {"trace": {"trace_info": {"trace_id": "tr-" + "0" * 32}}}),
        ("POST", "/api/3.0/mlflow/traces/search", {"locations": []}),
        ("POST", "/v1/traces", None),
        ("POST", "/api/2.0/mlflow/traces", {"experiment_id": "0"}),
    ],
)
def test_out_of_scope_features_answer_501(server_url, method, path, body):
    resp = requests.request(method, f"{server_url}{path}", json=body, timeout=30)
    assert_error(resp, 501, "NOT_IMPLEMENTED")


@pytest.mark.sextant_only
def test_invalid_state_is_a_client_error(server_url):
    # MLflow answers INVALID_STATE with a 500; Sextant with a 400 and the same code.
    exp_id = post(server_url, "experiments/create", {"name": unique("state")}).json()["experiment_id"]
    post(server_url, "experiments/delete", {"experiment_id": exp_id})
    resp = post(server_url, "experiments/update", {"experiment_id": exp_id, "new_name": unique("renamed")})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_STATE"


def test_rename_deleted_experiment_is_invalid_state(server_url):
    exp_id = post(server_url, "experiments/create", {"name": unique("state")}).json()["experiment_id"]
    post(server_url, "experiments/delete", {"experiment_id": exp_id})
    resp = post(server_url, "experiments/update", {"experiment_id": exp_id, "new_name": unique("renamed")})
    assert resp.status_code >= 400
    assert resp.json()["error_code"] == "INVALID_STATE"


def test_json_is_parseable_with_strict_parser(server_url):
    # NaN must be the string "NaN", never a bare NaN token.
    exp_id = post(server_url, "experiments/create", {"name": unique("strict")}).json()["experiment_id"]
    run_id = post(server_url, "runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    post(server_url, "runs/log-metric", {"run_id": run_id, "key": "n", "value": "NaN", "timestamp": 1})

    def reject(token):
        raise ValueError(token)

    text = post(server_url, "runs/search", {"experiment_ids": [exp_id]}).text
    json.loads(text, parse_constant=reject)
