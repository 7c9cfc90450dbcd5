"""Security: artifact path traversal payloads (MLflow CVE-2023-1177, CVE-2024-1560, CVE-2024-1593)
and the Host-header guard against DNS rebinding (CVE-2025-14279)."""

import http.client
import json
import urllib.parse

import pytest
import requests
from conftest import sextant_bin, start_sextant
from helpers import unique

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

# Raw query strings / paths, sent exactly as written (no re-encoding by the HTTP library).
TRAVERSALS = {
    "dotdot": "../../../../../../etc/passwd",
    "encoded": "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "double-encoded": "%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "semicolon": "..;/..;/..;/..;/..;/..;/etc/passwd",
    "absolute": "/etc/passwd",
    "encoded-absolute": "%2fetc%2fpasswd",
    "backslash": "..%5C..%5C..%5C..%5C..%5C..%5Cetc%5Cpasswd",
    "nul": "0/a%00/../../../../../etc/passwd",
    "nested-dotdot": "0/../../../../../../etc/passwd",
    "windows-drive": "C:%5CWindows%5Cwin.ini",
}

PASSWD_MARKERS = ("root:x:0:0", "root:*:0:0", "/bin/bash", "/bin/sh", "nologin")


def raw_request(url: str, method: str, target: str, headers=None):
    """Send `target` verbatim as the request target (requests/urllib3 would normalise it)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        headers = dict(headers or {})
        conn.putrequest(method, target, skip_host="Host" in headers, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def assert_refused(status, body, sextant):
    """Sextant: 400 INVALID_PARAMETER_VALUE. MLflow: never file content, never a 5xx (it answers
    some payloads, e.g. `..;/` and backslashes, with 200 `{}`: legal names on POSIX)."""
    text = body.decode("utf-8", "replace")
    assert not any(m in text for m in PASSWD_MARKERS), text[:300]
    assert status < 500, (status, text[:300])
    if sextant:
        assert status == 400, (status, text[:300])
        assert json.loads(text)["error_code"] == "INVALID_PARAMETER_VALUE", text[:300]


@pytest.mark.parametrize("payload", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_traversal_in_list_path(server_url, sextant, payload):
    status, body, _ = raw_request(server_url, "GET", f"{ARTIFACTS}?path={payload}")
    assert_refused(status, body, sextant)


@pytest.mark.parametrize(
    "payload",
    [p for k, p in TRAVERSALS.items() if k not in ("absolute", "dotdot", "nested-dotdot", "semicolon")],
    ids=[k for k in TRAVERSALS if k not in ("absolute", "dotdot", "nested-dotdot", "semicolon")],
)
def test_traversal_in_download_path(server_url, sextant, payload):
    # Unencoded `../` in a URL path is resolved by HTTP clients before sending, so the download
    # route is probed with the encoded forms (and the raw ones below, sent verbatim).
    status, body, _ = raw_request(server_url, "GET", f"{ARTIFACTS}/{payload}")
    text = body.decode("utf-8", "replace")
    assert not any(m in text for m in PASSWD_MARKERS), text[:300]
    assert 400 <= status < 500, (status, text[:300])
    if sextant:
        assert status == 400, (status, text[:300])
        assert json.loads(text)["error_code"] == "INVALID_PARAMETER_VALUE", text[:300]


@pytest.mark.parametrize("target", [
    f"{ARTIFACTS}/0/../../../../../../etc/passwd",
    f"{ARTIFACTS}/..;/..;/..;/..;/etc/passwd",
    f"{ARTIFACTS}/0/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
])
def test_verbatim_traversal_download(server_url, sextant, target):
    status, body, _ = raw_request(server_url, "GET", target)
    text = body.decode("utf-8", "replace")
    assert not any(m in text for m in PASSWD_MARKERS), text[:300]
    assert 400 <= status < 500, (status, text[:300])
    if sextant:
        # A router that normalises the path first would answer 404 (no such route); either way
        # nothing outside the artifact root is read.
        assert status in (400, 404), (status, text[:300])


@pytest.mark.parametrize("payload", ["%2e%2e%2fescape.txt", "..%5Cescape.txt", "a%00b.txt", "..;/escape.txt"])
def test_traversal_in_upload_path(server_url, sextant, payload):
    u = urllib.parse.urlsplit(server_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest("PUT", f"{ARTIFACTS}/0/{payload}")
        conn.putheader("Content-Length", "4")
        conn.endheaders()
        conn.send(b"evil")
        resp = conn.getresponse()
        status, body = resp.status, resp.read()
    finally:
        conn.close()
    # MLflow stores these under literal names inside the root (`..\\escape.txt`, `a%00b.txt`, a
    # directory named `..;`); Sextant refuses them outright.
    assert status < 500, (status, body[:300])
    if sextant:
        assert status == 400, (status, body[:300])


def test_delete_traversal(server_url):
    status, body, _ = raw_request(server_url, "DELETE", f"{ARTIFACTS}/%2e%2e%2f%2e%2e%2fsomething")
    assert 400 <= status < 500, (status, body[:300])


def test_list_artifacts_api_rejects_traversal(server_url, client, experiment_id, sextant):
    run_id = client.create_run(experiment_id).info.run_id
    resp = requests.get(
        f"{server_url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "../../../../etc"}, timeout=60
    )
    assert 400 <= resp.status_code < 500
    assert "passwd" not in resp.text
    if sextant:
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:80", "127.0.0.1.evil.example.com"])
def test_foreign_host_header_is_refused(server_url, sextant, host):
    status, body, _ = raw_request(server_url, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", {"Host": host})
    assert status == 403, body[:300]
    assert b"experiment" not in body
    if sextant:
        # MLflow answers with plain text "Invalid Host header - possible DNS rebinding attack
        # detected"; Sextant with its JSON error body.
        assert json.loads(body)["error_code"] == "PERMISSION_DENIED"


def test_loopback_host_headers_are_accepted(server_url):
    port = urllib.parse.urlsplit(server_url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        status, body, _ = raw_request(server_url, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", {"Host": host})
        assert status == 200, (host, body[:300])


def test_health_is_exempt_from_host_check(server_url):
    status, body, _ = raw_request(server_url, "GET", "/health", {"Host": "evil.example.com"})
    assert status == 200 and body == b"OK"


def test_downloads_are_attachments(server_url, client, experiment_id):
    run = client.create_run(experiment_id)
    rel = run.info.artifact_uri[len("mlflow-artifacts:/"):].lstrip("/")
    html = b"<html><script>alert(1)</script></html>"
    assert requests.put(f"{server_url}{ARTIFACTS}/{rel}/x.html", data=html, timeout=60).status_code == 200
    resp = requests.get(f"{server_url}{ARTIFACTS}/{rel}/x.html", timeout=60)
    assert resp.status_code == 200 and resp.content == html
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


# Cross-site request forgery: a page on another site makes the user's browser post to a
# loopback server. Browsers send such a POST without asking first only as a "simple" request
# (text/plain, a form type, or no Content-Type), and always with an `Origin`.
EVIL_ORIGIN = "https://evil.example.com"


def _version(client, experiment_id):
    """A registered model with version 1, pending approval."""
    run = client.create_run(experiment_id)
    name = unique("csrf-model")
    client.create_registered_model(name)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return name


@pytest.mark.sextant_only
def test_cross_site_approval_is_refused(server_url, client, experiment_id):
    name = _version(client, experiment_id)
    url = f"{server_url}/api/v1/models/{name}/versions/1/approval"
    body = json.dumps({"status": "approved", "actor": "attacker"})
    # The reproduced attack: text/plain from another site's page.
    resp = requests.post(url, data=body, headers={"Content-Type": "text/plain", "Origin": EVIL_ORIGIN}, timeout=60)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error_code"] == "PERMISSION_DENIED"
    # Without an Origin (a plain form post from an old browser), the type alone refuses it.
    resp = requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=60)
    assert resp.status_code == 415, resp.text
    assert resp.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    version = requests.get(f"{server_url}/api/v1/models/{name}/versions/1", timeout=60).json()
    assert version["approval"]["status"] == "pending", version
    # JSON from a non-browser client (no Origin) is served.
    resp = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["approval"]["status"] == "approved"


def test_untyped_cross_site_experiment_delete_is_refused(server_url, client):
    exp_id = client.create_experiment(unique("csrf"))
    url = f"{server_url}/api/2.0/mlflow/experiments/delete"
    body = json.dumps({"experiment_id": exp_id})
    # The reproduced attack: no Content-Type at all, from another site's page.
    resp = requests.post(url, data=body, headers={"Origin": EVIL_ORIGIN}, timeout=60)
    assert resp.status_code == 403, resp.text
    assert resp.text == "Cross-origin request blocked"
    # MLflow's answers to a body of no or the wrong type.
    resp = requests.post(url, data=body, timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert resp.json()["message"] == "Bad Request. Content-Type header is missing."
    resp = requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "Bad Request. Content-Type must be one of ['application/json']."
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    # The mlflow client's own request (JSON, no Origin) is served.
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"


@pytest.mark.sextant_only
def test_allowed_origins_may_change_state(tmp_path):
    srv = start_sextant(tmp_path, "--allowed-origins", "https://app.example.com,http://localhost:3000")
    try:
        url = f"{srv.url}/api/2.0/mlflow/experiments/create"
        for origin, status in [
            ("https://app.example.com", 200),
            ("http://localhost:3000", 200),
            (srv.url, 200),
            (EVIL_ORIGIN, 403),
            ("http://localhost:3001", 403),
        ]:
            resp = requests.post(url, json={"name": unique("origin")}, headers={"Origin": origin}, timeout=60)
            assert resp.status_code == status, (origin, resp.text)
        # A listed origin's preflight is answered, so its pages can send JSON.
        resp = requests.options(
            url,
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"},
            timeout=60,
        )
        assert resp.status_code == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    finally:
        srv.stop()


@pytest.mark.sextant_only
def test_a_malformed_allowed_origin_is_refused_at_start(tmp_path):
    import subprocess

    out = subprocess.run(
        [sextant_bin(), "server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--allowed-origins", "app.example.com"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0
    assert "invalid allowed origin 'app.example.com'" in out.stderr, out.stderr
    # Refused before the store is created or migrated.
    assert not (tmp_path / "d").exists()


@pytest.mark.sextant_only
@pytest.mark.parametrize("root", ["file:///etc", "/etc", "http://example.com/etc"])
def test_artifact_roots_outside_the_store_are_refused_with_a_reason(server_url, client, root):
    exp_id = client.create_experiment(unique("foreign-root"), artifact_location=root)
    run_id = client.create_run(exp_id).info.run_id
    for path, params in [
        ("/api/2.0/mlflow/artifacts/list", {"run_id": run_id}),
        ("/get-artifact", {"run_id": run_id, "path": "passwd"}),
    ]:
        resp = requests.get(f"{server_url}{path}", params=params, timeout=60)
        assert resp.status_code == 400, (path, resp.status_code, resp.text)
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert root in resp.json()["message"] and "not served by this server" in resp.json()["message"]
        assert "root:" not in resp.text
