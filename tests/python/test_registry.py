"""The model registry: registration by log_model, loading by name/stage/alias, aliases, stages,
search, rename, tags, deletes, error cases and source validation, through the real client."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from helpers import api, assert_error, get, post, unique


@pytest.fixture(scope="module")
def logged(server_url):
    """One sklearn model logged in a fresh run: (model, X, model_id, run_id)."""
    from mlflow import MlflowClient

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    y = (X["a"] - X["c"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    mlflow.set_tracking_uri(server_url)
    exp_id = MlflowClient(server_url).create_experiment(unique("registry"))
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = mlflow.sklearn.log_model(model, name="model")
    return model, X, info.model_id, run.info.run_id


def new_model(client, logged, versions: int = 1, **tags) -> str:
    """A fresh registered model with `versions` versions of the logged model."""
    _, _, model_id, _ = logged
    name = unique("rm")
    client.create_registered_model(name, tags=tags or None)
    for _ in range(versions):
        client.create_model_version(name, f"models:/{model_id}", model_id=model_id)
    return name


def predict(uri: str, X) -> np.ndarray:
    return np.asarray(mlflow.pyfunc.load_model(uri).predict(X))


def test_log_model_registers_versions_loaded_by_alias_and_stage(client, experiment_id, logged):
    model, X, _, _ = logged
    expected = model.predict(X)
    name = unique("registered")
    infos = []
    for _ in range(2):
        with mlflow.start_run():
            infos.append(mlflow.sklearn.log_model(model, name="model", registered_model_name=name))
    assert [str(i.registered_model_version) for i in infos] == ["1", "2"]
    mv = client.get_model_version(name, "2")
    assert mv.version == "2" and mv.status == "READY" and mv.current_stage == "None"
    assert mv.source == f"models:/{infos[1].model_id}"
    assert mv.run_id == infos[1].run_id

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    assert client.get_model_version(name, "1").aliases == ["champion"]
    # Searches answer versions without their aliases, as MLflow's SQL store does.
    assert [v.aliases for v in client.search_model_versions(f"name = '{name}' and version_number = 1")] == [[]]
    np.testing.assert_array_equal(predict(f"models:/{name}@champion", X), expected)

    client.transition_model_version_stage(name, "1", "Production")
    moved = client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Production": "2", "Archived": "1"}
    np.testing.assert_array_equal(predict(f"models:/{name}/Production", X), expected)
    np.testing.assert_array_equal(predict(f"models:/{name}/1", X), expected)
    np.testing.assert_array_equal(predict(f"models:/{name}@latest", X), expected)

    uri = client.get_model_version_download_uri(name, "1")
    assert uri == client.get_logged_model(infos[0].model_id).artifact_location

    tag = json.loads(client.get_logged_model(infos[0].model_id).tags["mlflow.modelVersions"])
    assert {"name": name, "version": 1} in tag

    client.delete_registered_model_alias(name, "champion")
    assert client.get_registered_model(name).aliases == {}
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "champion")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_registered_models_filters_orders_and_pages(client, logged):
    prefix = unique("search")
    names = [f"{prefix}-{c}" for c in "cab"]
    for n in names:
        client.create_registered_model(n, tags={"team": "red" if n.endswith("a") else "blue"})
    _, _, model_id, _ = logged
    client.create_model_version(names[1], f"models:/{model_id}", model_id=model_id)

    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(m.name for m in found) == sorted(names)
    ordered = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in ordered] == sorted(names, reverse=True)
    red = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%' AND tags.team = 'red'")
    assert [m.name for m in red] == [f"{prefix}-a"]
    assert [v.version for v in red[0].latest_versions] == ["1"]
    assert client.search_registered_models(filter_string=f"name = '{prefix}-zzz'") == []

    seen, token = [], None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"], max_results=2, page_token=token
        )
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == sorted(names)

    with pytest.raises(MlflowException) as e:
        client.search_registered_models(max_results=1001)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_model_versions_filters_orders_and_pages(client, logged):
    _, _, _, run_id = logged
    name = new_model(client, logged, versions=3)
    other = new_model(client, logged, versions=1)

    found = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"])
    assert [v.version for v in found] == ["3", "2", "1"]
    assert all(v.name == name and v.run_id == run_id for v in found)
    both = client.search_model_versions(f"name IN ('{name}', '{other}')")
    assert len(both) == 4
    assert [v.version for v in client.search_model_versions(f"name = '{name}' AND version_number > 1",
                                                             order_by=["version_number ASC"])] == ["2", "3"]
    client.set_model_version_tag(name, "2", "stage", "candidate")
    tagged = client.search_model_versions(f"name = '{name}' AND tags.stage = 'candidate'")
    assert [v.version for v in tagged] == ["2"]

    page = client.search_model_versions(f"name = '{name}'", max_results=2, order_by=["version_number ASC"])
    assert [v.version for v in page] == ["1", "2"] and page.token
    rest = client.search_model_versions(
        f"name = '{name}'", max_results=2, order_by=["version_number ASC"], page_token=page.token
    )
    assert [v.version for v in rest] == ["3"] and not rest.token


def test_rename_descriptions_tags_and_deletes(client, logged):
    name = new_model(client, logged, versions=2, owner="me")
    client.update_registered_model(name, description="the model")
    assert client.get_registered_model(name).description == "the model"
    client.update_model_version(name, "1", description="first")
    assert client.get_model_version(name, "1").description == "first"
    assert client.get_model_version(name, "2").description in ("", None)

    client.set_registered_model_tag(name, "k", "v")
    assert client.get_registered_model(name).tags == {"owner": "me", "k": "v"}
    client.delete_registered_model_tag(name, "owner")
    assert client.get_registered_model(name).tags == {"k": "v"}
    client.set_model_version_tag(name, "1", "vk", "vv")
    assert client.get_model_version(name, "1").tags == {"vk": "vv"}
    client.delete_model_version_tag(name, "1", "vk")
    assert client.get_model_version(name, "1").tags == {}

    new_name = unique("renamed")
    client.set_registered_model_alias(name, "best", "2")
    client.rename_registered_model(name, new_name)
    assert client.get_registered_model(new_name).name == new_name
    assert [v.name for v in client.search_model_versions(f"name = '{new_name}'")] == [new_name] * 2
    assert client.get_model_version_by_alias(new_name, "best").version == "2"
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.delete_model_version(new_name, "2")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(new_name, "2")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model(new_name).aliases == {}, "the alias went with its version"
    assert [v.version for v in client.get_registered_model(new_name).latest_versions] == ["1"]

    client.delete_registered_model(new_name)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(new_name)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_model_versions(f"name = '{new_name}'") == []


def test_registry_errors(client, server_url, logged):
    name = new_model(client, logged)
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert f"Registered Model (name={name}) already exists." in e.value.message

    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "99")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Model Version (name={name}, version=99) not found" in e.value.message

    for alias in ("latest", "LATEST", "v1", "V12"):
        with pytest.raises(MlflowException) as e:
            client.set_registered_model_alias(name, alias, "1")
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", alias
        assert "reserved" in e.value.message, alias

    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "1", "Prod")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: Prod." in e.value.message

    with pytest.raises(MlflowException) as e:
        client.create_registered_model("a/b")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    body = assert_error(get(server_url, "model-versions/get", {"name": name, "version": "x"}), 400,
                        "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Parameter 'version' must be an integer, got 'x'."
    assert_error(get(server_url, "registered-models/get", {"name": unique("missing")}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_wire_shapes(server_url, logged):
    """Raw JSON: string versions, always-present description/run_link, no model_id echo,
    GET searches, JSON bodies on DELETE, and get-latest-versions on both POST and GET."""
    _, _, model_id, run_id = logged
    name = unique("wire")
    created = post(server_url, "registered-models/create", {"name": name}).json()["registered_model"]
    assert set(created) == {"name", "creation_timestamp", "last_updated_timestamp"}
    assert isinstance(created["creation_timestamp"], int)

    resp = post(server_url, "model-versions/create",
                {"name": name, "source": f"models:/{model_id}", "model_id": model_id})
    assert resp.status_code == 200, resp.text
    mv = resp.json()["model_version"]
    assert set(mv) == {"name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage",
                       "description", "source", "run_id", "status", "run_link"}
    assert (mv["version"], mv["description"], mv["run_link"], mv["run_id"]) == ("1", "", "", run_id)
    assert (mv["current_stage"], mv["status"]) == ("None", "READY")

    for method in (requests.post, requests.get):
        kwargs = {"json": {"name": name}} if method is requests.post else {"params": {"name": name}}
        r = method(api(server_url, "registered-models/get-latest-versions"), timeout=60, **kwargs)
        assert r.status_code == 200, r.text
        assert [v["version"] for v in r.json()["model_versions"]] == ["1"]

    r = get(server_url, "registered-models/search", {"filter": f"name = '{name}'", "max_results": 5})
    assert [m["name"] for m in r.json()["registered_models"]] == [name]
    assert_error(get(server_url, "registered-models/search", {"max_results": 1001}), 400, "INVALID_PARAMETER_VALUE")
    r = get(server_url, "model-versions/search", {"filter": f"name = '{name}'"})
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]

    r = post(server_url, "registered-models/alias", {"name": name, "alias": "a1", "version": "1"})
    assert (r.status_code, r.json()) == (200, {})
    r = get(server_url, "registered-models/alias", {"name": name, "alias": "a1"})
    assert r.json()["model_version"]["aliases"] == ["a1"]
    r = requests.delete(api(server_url, "registered-models/alias"), json={"name": name, "alias": "a1"}, timeout=60)
    assert (r.status_code, r.json()) == (200, {})
    r = get(server_url, "model-versions/get-download-uri", {"name": name, "version": "1"})
    assert r.json()["artifact_uri"].endswith(f"/models/{model_id}/artifacts")

    r = requests.delete(api(server_url, "model-versions/delete"), json={"name": name, "version": "1"}, timeout=60)
    assert (r.status_code, r.json()) == (200, {})
    r = requests.delete(api(server_url, "registered-models/delete"), json={"name": name}, timeout=60)
    assert (r.status_code, r.json()) == (200, {})
    assert_error(get(server_url, "registered-models/get", {"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("source", [
    "/etc/passwd",
    "file:///etc/passwd",
    "runs:/{run_id}/../../../etc/passwd",
    "mlflow-artifacts:/0/../../../etc/passwd",
    "mlflow-artifacts:/0/%2E%2E/%2E%2E/etc/passwd",
])
def test_model_version_sources_outside_the_run_are_refused(server_url, logged, source):
    _, _, _, run_id = logged
    name = unique("src")
    assert post(server_url, "registered-models/create", {"name": name}).status_code == 200
    resp = post(server_url, "model-versions/create",
                {"name": name, "source": source.format(run_id=run_id), "run_id": run_id})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    r = get(server_url, "model-versions/search", {"filter": f"name = '{name}'"})
    assert "model_versions" not in r.json()


def test_create_model_version_ignores_unknown_fields(server_url, logged):
    """Sextant reads an extra `approval_status`; MLflow ignores it; neither echoes it."""
    _, _, model_id, _ = logged
    name = unique("approval")
    post(server_url, "registered-models/create", {"name": name})
    resp = post(server_url, "model-versions/create",
                {"name": name, "source": f"models:/{model_id}", "model_id": model_id,
                 "approval_status": "approved"})
    assert resp.status_code == 200, resp.text
    assert "approval_status" not in resp.json()["model_version"]


@pytest.mark.sextant_only
def test_create_model_version_rejects_a_bad_approval_status(server_url, logged):
    _, _, model_id, _ = logged
    name = unique("approval")
    post(server_url, "registered-models/create", {"name": name})
    resp = post(server_url, "model-versions/create",
                {"name": name, "source": f"models:/{model_id}", "model_id": model_id,
                 "approval_status": "maybe"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
