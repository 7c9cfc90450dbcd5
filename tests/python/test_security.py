"""Security: artifact path traversal payloads (MLflow CVE-2023-1177, CVE-2024-1560, CVE-2024-1593)
and the Host-header guard against DNS rebinding (CVE-2025-14279)."""

import http.client
import json
import urllib.parse

import pytest
import requests

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
