"""Webhooks with the real mlflow client and a real local receiver: MLflow's webhook API, signed
deliveries, retries with backoff, the delivery log, and the SSRF guard.

Deliveries go to a loopback receiver, so these tests use their own Sextant server started with
`--webhook-allow-private` and a fast retry schedule; the session server (no flag) shows the guard.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
from collections import deque

import pytest
import requests

from conftest import AGAINST_MLFLOW, start_sextant
from helpers import api, unique

pytestmark = pytest.mark.sextant_only

WAIT_S = 30.0


class Receiver:
    """An HTTP server in a thread that records POSTs and answers with scripted statuses."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []  # headers with lowercase names
        self.statuses: deque[int] = deque()
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._cond:
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver._cond.notify_all()
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"nope")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = WAIT_S):
        """Blocks until `predicate(requests)` holds; fails the test after `timeout` seconds."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.requests), timeout=timeout)
            assert ok, f"receiver did not get the expected requests: {self.requests!r}"
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    if AGAINST_MLFLOW:
        pytest.skip("Sextant's delivery settings")
    srv = start_sextant(
        tmp_path_factory.mktemp("webhooks"),
        "--webhook-allow-private", "--webhook-backoff-ms", "50", "--webhook-max-attempts", "5",
    )
    yield srv
    srv.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hook_client(hook_server):
    from mlflow import MlflowClient

    return MlflowClient(hook_server.url)


def verify(headers: dict, body: bytes, secret: str) -> dict:
    """Checks MLflow's signature headers and returns the JSON body."""
    delivery_id = headers["x-mlflow-delivery-id"]
    timestamp = headers["x-mlflow-timestamp"]
    signed = f"{delivery_id}.{timestamp}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert headers["x-mlflow-signature"] == f"v1,{expected}"
    return json.loads(body)


def new_version(client, name: str) -> str:
    exp = client.create_experiment(unique("hooks"))
    run = client.create_run(exp)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return mv.version


def test_webhook_crud_with_the_mlflow_client(hook_client):
    created = hook_client.create_webhook(
        name=unique("hook"), url="https://example.com/hook",
        events=["model_version.created", "model_version_alias.created"],
        description="d", secret="s3cret",
    )
    assert created.webhook_id and created.status == "ACTIVE"
    assert {str(e) for e in created.events} == {"model_version.created", "model_version_alias.created"}
    got = hook_client.get_webhook(created.webhook_id)
    assert got.name == created.name and got.description == "d" and got.secret is None
    updated = hook_client.update_webhook(created.webhook_id, status="DISABLED", events=["registered_model.created"])
    assert updated.status == "DISABLED"
    assert [str(e) for e in updated.events] == ["registered_model.created"]
    names = set()
    token = None
    while True:
        page = hook_client.list_webhooks(max_results=1, page_token=token)
        names.update(w.name for w in page)
        token = page.token
        if not token:
            break
    assert created.name in names
    hook_client.delete_webhook(created.webhook_id)
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="not found"):
        hook_client.get_webhook(created.webhook_id)


def test_registered_version_reaches_the_receiver_signed(hook_client, receiver):
    secret = "s3cret-" + unique("k")
    hook = hook_client.create_webhook(
        name=unique("hook"), url=receiver.url, events=["model_version.created"], secret=secret,
    )
    name = unique("rm")
    hook_client.create_registered_model(name)
    version = new_version(hook_client, name)
    reqs = receiver.wait_for(lambda rs: len(rs) >= 1)
    headers, body = reqs[0]
    payload = verify(headers, body, secret)
    assert payload["entity"] == "model_version" and payload["action"] == "created"
    assert payload["data"]["name"] == name and payload["data"]["version"] == version
    result = hook_client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200
    test_req = receiver.wait_for(lambda rs: len(rs) >= 2)[1]
    assert verify(*test_req, secret)["data"]["name"] == "example_model"
    hook_client.delete_webhook(hook.webhook_id)


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(hook_server, hook_client, receiver):
    receiver.statuses.extend([503, 500])
    hook = hook_client.create_webhook(
        name=unique("hook"), url=receiver.url, events=["registered_model.created"], secret="k",
    )
    name = unique("rm")
    hook_client.create_registered_model(name, tags={"team": "a"}, description="desc")
    reqs = receiver.wait_for(lambda rs: len(rs) >= 3)
    ids = {h["x-mlflow-delivery-id"] for h, _ in reqs}
    assert len(ids) == 1, "retries keep the delivery id"
    data = verify(*reqs[2], "k")["data"]
    assert data == {"name": name, "tags": {"team": "a"}, "description": "desc"}

    url = api(hook_server.url, f"webhooks/{hook.webhook_id}/deliveries")
    log = requests.get(url, timeout=30).json()["deliveries"]
    # The last attempt is logged right after the receiver answers it.
    deadline_reached = threading.Event()
    timer = threading.Timer(WAIT_S, deadline_reached.set)
    timer.start()
    try:
        while len(log) < 3 and not deadline_reached.is_set():
            deadline_reached.wait(0.05)
            log = requests.get(url, timeout=30).json()["deliveries"]
    finally:
        timer.cancel()
    assert [a["attempt"] for a in log] == [1, 2, 3]
    assert [a.get("status_code") for a in log] == [503, 500, 200]
    assert "error" in log[0] and "error" not in log[2]
    hook_client.delete_webhook(hook.webhook_id)


def test_sextant_kinds_get_the_event_envelope(hook_server, receiver):
    resp = requests.post(
        api(hook_server.url, "webhooks"),
        json={"name": unique("hook"), "url": receiver.url, "sextant_events": ["experiment.*"]},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["webhook"]["sextant_events"] == ["experiment.*"]
    requests.post(api(hook_server.url, "experiments/create"), json={"name": unique("exp")}, timeout=30)
    headers, body = receiver.wait_for(lambda rs: len(rs) >= 1)[0]
    envelope = json.loads(body)
    assert envelope["kind"] == "experiment.created" and headers["x-sextant-event"] == "experiment.created"
    assert "x-mlflow-signature" not in headers


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x",
                                 "http://169.254.169.254/latest", "ftp://example.com/x"])
def test_server_without_the_flag_refuses_private_targets(client, url):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as e:
        client.create_webhook(name=unique("hook"), url=url, events=["model_version.created"])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_secrets_need_the_servers_key(tmp_path):
    """Secrets are stored encrypted under SEXTANT_SECRET_KEY; a server without one refuses them
    (MLflow instead makes up a key at each start, losing every secret on restart)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    srv = start_sextant(tmp_path, "--webhook-allow-private", env={"SEXTANT_SECRET_KEY": ""})
    try:
        client = MlflowClient(srv.url)
        with pytest.raises(MlflowException) as e:
            client.create_webhook(
                name=unique("hook"), url="http://127.0.0.1:9/hook",
                events=["model_version.created"], secret="s3cret",
            )
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "SEXTANT_SECRET_KEY" in e.value.message
        hook = client.create_webhook(
            name=unique("hook"), url="http://127.0.0.1:9/hook", events=["model_version.created"],
        )
        assert hook.status == "ACTIVE"
    finally:
        srv.stop()
