"""Small helpers shared by the test modules (conftest.py holds the fixtures)."""

from __future__ import annotations

import uuid

import requests


def unique(prefix: str = "exp") -> str:
    """A name no other test (or earlier session on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def api(url: str, path: str, version: str = "2.0") -> str:
    """The URL of an MLflow REST endpoint, e.g. api(url, "runs/get")."""
    return f"{url}/api/{version}/mlflow/{path}"


def post(url: str, path: str, body: dict) -> requests.Response:
    return requests.post(api(url, path), json=body, timeout=120)


def get(url: str, path: str, params=None) -> requests.Response:
    return requests.get(api(url, path), params=params, timeout=120)


def assert_error(resp: requests.Response, status: int, code: str):
    """An MLflow error answer: the status, a JSON object with error_code and a message."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert body["error_code"] == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body
