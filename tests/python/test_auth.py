"""Authentication with the unchanged mlflow client (issue 17): tracking and registry under HTTP
Basic and under a Bearer token, MLflow's AuthServiceClient, and MLflow's plain-text refusals.

With SEXTANT_TEST_AGAINST_MLFLOW=1 the Basic flows run against `mlflow server --app-name
basic-auth` (admin from MLFLOW_AUTH_ADMIN_PASSWORD), which proves the expectations; Bearer tokens
are Sextant's own (MLflow's basic-auth answers them 401).
"""

from __future__ import annotations

import base64

import pytest
import requests

from conftest import AGAINST_MLFLOW, Server, free_port, mlflow_bin, start_sextant
from helpers import unique

ADMIN = ("admin", "admin-password-42")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    if AGAINST_MLFLOW:
        port = free_port()
        argv = [
            mlflow_bin(), "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
            "--port", str(port), "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination", str(tmp / "artifacts"), "--workers", "1",
        ]
        env = {
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
            "MLFLOW_AUTH_CONFIG_PATH": str(_auth_config(tmp)),
        }
        srv = Server(argv, port, tmp / "server.log", env=env)
    else:
        srv = start_sextant(tmp, "--auth", env={"SEXTANT_ADMIN_PASSWORD": ADMIN[1]})
    yield srv
    srv.stop()


def _auth_config(tmp):
    """MLflow's packaged settings, with its user database in the test's directory."""
    path = tmp / "basic_auth.ini"
    path.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp}/basic_auth.db\nadmin_username = admin\n"
    )
    return path


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def as_user(monkeypatch, url: str, user: str, password: str):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)


def test_anonymous_requests_get_mlflows_plain_text_401(auth_server):
    r = requests.get(f"{auth_server.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    assert r.status_code == 401
    assert r.text.startswith("You are not authenticated.")
    assert r.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
    assert requests.get(f"{auth_server.url}/health").status_code == 200


def test_auth_service_client_and_tracking_under_basic(auth_server, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    url = auth_server.url
    as_user(monkeypatch, url, *ADMIN)
    admin = get_app_client("basic-auth", tracking_uri=url)
    alice = unique("alice")
    bob = unique("bob")
    user = admin.create_user(alice, "alice-password-1")
    assert user.username == alice and not user.is_admin
    admin.create_user(bob, "bob-password-001")
    assert admin.get_user(alice).username == alice

    # Alice logs a run with the unchanged fluent API and registers a model.
    as_user(monkeypatch, url, alice, "alice-password-1")
    mlflow.set_tracking_uri(url)
    exp_id = mlflow.create_experiment(unique("alice-exp"))
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 0.5)
    client = mlflow.MlflowClient(url)
    name = unique("alice-model")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)

    # Bob reads (default READ) but may not write to Alice's experiment.
    as_user(monkeypatch, url, bob, "bob-password-001")
    bob_client = mlflow.MlflowClient(url)
    assert bob_client.get_run(run.info.run_id).data.metrics == {"m": 0.5}
    with pytest.raises(MlflowException) as err:
        bob_client.log_metric(run.info.run_id, "m", 1.0)
    assert "403" in str(err.value) and "Permission denied" in str(err.value)

    # Alice, who manages her experiment, lets him edit it.
    as_user(monkeypatch, url, alice, "alice-password-1")
    get_app_client("basic-auth", tracking_uri=url).grant_user_permission(bob, "experiment", exp_id, "EDIT")
    as_user(monkeypatch, url, bob, "bob-password-001")
    mlflow.MlflowClient(url).log_metric(run.info.run_id, "m", 1.0)
    got = get_app_client("basic-auth", tracking_uri=url).get_user_permission(bob, "experiment", exp_id)
    assert got.permission == "EDIT"

    # Roles, through the same client.
    as_user(monkeypatch, url, *ADMIN)
    admin = get_app_client("basic-auth", tracking_uri=url)
    role = admin.create_role("default", unique("readers"), "read everything")
    perm = admin.add_role_permission(role.id, "registered_model", "*", "READ")
    assert perm.permission == "READ"
    admin.assign_role(bob, role.id)
    assert role.id in [r.id for r in admin.list_user_roles(bob)]
    admin.unassign_role(bob, role.id)
    admin.delete_role(role.id)

    # A wrong password is a plain-text 401, which the client reports as such.
    as_user(monkeypatch, url, bob, "not-bobs-password")
    with pytest.raises(MlflowException) as err:
        mlflow.MlflowClient(url).get_run(run.info.run_id)
    assert "401" in str(err.value)


@pytest.mark.sextant_only
def test_tracking_under_a_bearer_token(auth_server, monkeypatch):
    import mlflow

    url = auth_server.url
    r = requests.post(f"{url}/api/v1/tokens", json={"name": "ci"}, headers=basic(*ADMIN))
    assert r.status_code == 200, r.text
    token = r.json()["token"]["token"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mlflow.set_tracking_uri(url)
    exp_id = mlflow.create_experiment(unique("token-exp"))
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_metrics({"a": 1.0, "b": 2.0})
    assert mlflow.get_run(run.info.run_id).data.metrics == {"a": 1.0, "b": 2.0}

    # Revoked, it opens nothing.
    token_id = r.json()["token"]["id"]
    assert requests.delete(f"{url}/api/v1/tokens/{token_id}", json={}, headers=basic(*ADMIN)).status_code == 200
    r = requests.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id},
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
