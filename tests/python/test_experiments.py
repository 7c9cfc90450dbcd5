"""Experiments: lifecycle, tags, errors and search_experiments."""

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from helpers import get, post, unique


def test_create_get_and_get_by_name(client):
    name = unique("lifecycle")
    exp_id = client.create_experiment(name, tags={"team": "core", "a.b": "dotted"})
    assert isinstance(exp_id, str) and exp_id.isdigit()

    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.tags == {"team": "core", "a.b": "dotted"}
    assert exp.artifact_location.endswith(f"/{exp_id}")
    assert exp.creation_time > 0 and exp.last_update_time >= exp.creation_time

    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == exp_id
    assert client.get_experiment_by_name(unique("missing")) is None


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_duplicate_name_is_resource_already_exists(client):
    name = unique("dup")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_deleted_experiment_still_owns_its_name(client):
    name = unique("dup-deleted")
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_rename(client):
    exp_id = client.create_experiment(unique("old"))
    new = unique("new")
    client.rename_experiment(exp_id, new)
    assert client.get_experiment(exp_id).name == new
    assert client.get_experiment_by_name(new).experiment_id == exp_id


def test_rename_to_existing_name_fails(client, sextant):
    taken = unique("taken")
    client.create_experiment(taken)
    exp_id = client.create_experiment(unique("other"))
    with pytest.raises(MlflowException) as e:
        client.rename_experiment(exp_id, taken)
    assert e.value.get_http_status_code() == 400
    if sextant:
        # MLflow leaks the database error here: BAD_REQUEST "(sqlite3.IntegrityError) UNIQUE ...".
        assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert client.get_experiment(exp_id).name != taken


def test_delete_and_restore_cascade_to_runs(client):
    exp_id = client.create_experiment(unique("cascade"))
    runs = [client.create_run(exp_id).info.run_id for _ in range(3)]

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    for run_id in runs:
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY) == []
    assert len(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 3

    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    for run_id in runs:
        assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert {r.info.run_id for r in client.search_runs([exp_id])} == set(runs)


def test_cannot_create_run_in_deleted_experiment(client):
    exp_id = client.create_experiment(unique("gone"))
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as e:
        client.create_run(exp_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_tags_set_overwrite_delete(client):
    exp_id = client.create_experiment(unique("tags"))
    client.set_experiment_tag(exp_id, "k", "v1")
    client.set_experiment_tag(exp_id, "k", "v2")
    client.set_experiment_tag(exp_id, "other", "x" * 5000)
    tags = client.get_experiment(exp_id).tags
    assert tags["k"] == "v2" and tags["other"] == "x" * 5000

    client.delete_experiment_tag(exp_id, "k")
    assert "k" not in client.get_experiment(exp_id).tags
    with pytest.raises(MlflowException) as e:
        client.delete_experiment_tag(exp_id, "k")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_unknown_experiment(client):
    with pytest.raises(MlflowException) as e:
        client.get_experiment("987654321")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_fluent_set_experiment_creates_then_reuses(server_url):
    name = unique("fluent")
    exp = mlflow.set_experiment(name)
    again = mlflow.set_experiment(name)
    assert exp.experiment_id == again.experiment_id
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id


# --- search_experiments ---------------------------------------------------------------------


@pytest.fixture
def family(client):
    """Five experiments sharing a unique prefix: three active (tagged), two deleted."""
    prefix = unique("fam")
    ids = {}
    for name, tags in [
        ("alpha", {"team": "red", "stage.env": "prod"}),
        ("beta", {"team": "blue"}),
        ("Gamma", {"team": "Red"}),
        ("delta", {"team": "red"}),
        ("epsilon", {}),
    ]:
        ids[name] = client.create_experiment(f"{prefix}-{name}", tags=tags)
    client.delete_experiment(ids["delta"])
    client.delete_experiment(ids["epsilon"])
    return prefix, ids


def names(exps, prefix):
    return [e.name[len(prefix) + 1 :] for e in exps]


def test_search_by_name_and_view_type(client, family):
    prefix, _ = family
    flt = f"name LIKE '{prefix}-%'"
    active = client.search_experiments(filter_string=flt, order_by=["name ASC"])
    assert names(active, prefix) == ["Gamma", "alpha", "beta"]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=flt, order_by=["name"])
    assert names(deleted, prefix) == ["delta", "epsilon"]
    everything = client.search_experiments(view_type=ViewType.ALL, filter_string=flt, order_by=["name DESC"])
    assert names(everything, prefix) == ["epsilon", "delta", "beta", "alpha", "Gamma"]


def test_search_like_is_case_sensitive_ilike_is_not(client, family):
    prefix, _ = family
    upper = prefix.upper()
    assert client.search_experiments(filter_string=f"name LIKE '{upper}-%'") == []
    found = client.search_experiments(filter_string=f"name ILIKE '{upper}-%'", order_by=["name"])
    assert names(found, prefix) == ["Gamma", "alpha", "beta"]


def test_search_by_tags(client, family):
    prefix, _ = family
    base = f"name LIKE '{prefix}-%'"
    red = client.search_experiments(filter_string=f"{base} AND tags.team = 'red'", view_type=ViewType.ALL, order_by=["name"])
    assert names(red, prefix) == ["alpha", "delta"]
    ired = client.search_experiments(filter_string=f"{base} AND tags.team ILIKE 'red'", order_by=["name"])
    assert names(ired, prefix) == ["Gamma", "alpha"]
    dotted = client.search_experiments(filter_string=f"{base} AND tags.`stage.env` = 'prod'")
    assert names(dotted, prefix) == ["alpha"]
    untagged = client.search_experiments(
        filter_string=f"{base} AND tags.team IS NULL", view_type=ViewType.ALL
    )
    assert names(untagged, prefix) == ["epsilon"]


def test_search_by_experiment_id_in(client, family):
    prefix, ids = family
    flt = f"experiment_id IN ('{ids['alpha']}', '{ids['beta']}', '{ids['delta']}')"
    found = client.search_experiments(filter_string=flt, order_by=["experiment_id ASC"])
    assert [e.experiment_id for e in found] == sorted([ids["alpha"], ids["beta"]], key=int)


def test_search_default_order_is_newest_first(client, family):
    prefix, ids = family
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", view_type=ViewType.ALL)
    # Created in this order, so creation_time DESC with experiment_id ASC as tie-break.
    got = [(e.creation_time, int(e.experiment_id)) for e in found]
    assert got == sorted(got, key=lambda t: (-t[0], t[1]))


def test_search_paginates(client, family):
    prefix, ids = family
    flt = f"name LIKE '{prefix}-%'"
    seen, token, pages = [], None, 0
    while True:
        page = client.search_experiments(
            view_type=ViewType.ALL, filter_string=flt, max_results=2, order_by=["name"], page_token=token
        )
        seen += names(page, prefix)
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 3
    assert seen == ["Gamma", "alpha", "beta", "delta", "epsilon"]


def test_search_rejects_bad_filters(client):
    for flt in ["params.p = 'x'", "name IN ('a')", "name = 'a' OR name = 'b'", "attributes.name = 'x'"]:
        with pytest.raises(MlflowException) as e:
            client.search_experiments(filter_string=flt)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", flt


def test_search_max_results_zero_is_rejected(server_url):
    resp = post(server_url, "experiments/search", {"max_results": 0})
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_get_by_name_missing_is_404(server_url):
    resp = get(server_url, "experiments/get-by-name", {"experiment_name": unique("nope")})
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
