"""Multipart uploads through the proxied artifact service, driven by the real client.

The client uses them when `/api/3.0/mlflow/server-info` says `multipart_uploads_enabled` and a file
is at least `MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE` bytes; it then asks `mpu/create` for part
URLs, PUTs `MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE` bytes to each, and calls `mpu/complete` (or
`mpu/abort` when a part fails). Both variables are read by the client at upload time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mlflow
import pytest
import requests

from helpers import assert_error

MB = 1024 * 1024
FILE_SIZE = 30 * MB + 12345
CHUNK_SIZE = 5 * MB


@pytest.fixture
def calls(monkeypatch):
    """Every HTTP request the client makes, as (method, url, status)."""
    seen: list[tuple[str, str, int]] = []
    original = requests.Session.request

    def recording(self, method, url, *args, **kwargs):
        resp = original(self, method, url, *args, **kwargs)
        seen.append((method.upper(), url, resp.status_code))
        return resp

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


@pytest.fixture
def multipart_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(10 * MB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(CHUNK_SIZE))


@pytest.fixture(params=["server", "s3_server"])
def target(request, monkeypatch):
    """The server to upload to: Sextant on local disk, and Sextant on S3 when available."""
    srv = request.getfixturevalue(request.param)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.url)
    mlflow.set_tracking_uri(srv.url)
    yield srv
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        remaining = FILE_SIZE
        while remaining:
            block = os.urandom(min(remaining, 4 * MB))
            f.write(block)
            remaining -= len(block)
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MB), b""):
            h.update(block)
    return h.hexdigest()


def mpu_calls(calls, action: str):
    return [c for c in calls if f"/mlflow-artifacts/mpu/{action}" in c[1]]


def test_server_info_enables_multipart(target, sextant):
    info = requests.get(f"{target.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_uploads_enabled"] is sextant


def test_large_artifact_goes_through_multipart(target, sextant, multipart_env, calls, big_file, tmp_path):
    mlflow.set_experiment(f"mpu-{os.urandom(6).hex()}")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big_file), artifact_path="data")
    run_id = run.info.run_id

    if sextant:
        creates = mpu_calls(calls, "create")
        assert [c[2] for c in creates] == [200], creates
        parts = mpu_calls(calls, "part")
        expected_parts = -(-FILE_SIZE // CHUNK_SIZE)
        assert len(parts) == expected_parts and all(c[0] == "PUT" and c[2] == 200 for c in parts), parts
        # Part URLs point back at the server the client talks to.
        assert all(c[1].startswith(f"{target.url}/api/2.0/mlflow-artifacts/mpu/part/") for c in parts)
        assert [c[2] for c in mpu_calls(calls, "complete")] == [200]
        assert not mpu_calls(calls, "abort")
        # No plain PUT of the whole file.
        assert not [c for c in calls if c[0] == "PUT" and c[1].endswith("/data/big.bin")]

    infos = mlflow.MlflowClient().list_artifacts(run_id, "data")
    assert [(f.path, f.is_dir, f.file_size) for f in infos] == [("data/big.bin", False, FILE_SIZE)]
    out = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/big.bin", dst_path=str(tmp_path / "out"))
    assert sha256(Path(out)) == sha256(big_file)

    # Nothing staged is left behind, nor visible at the store's root.
    root = requests.get(f"{target.url}/api/2.0/mlflow-artifacts/artifacts", timeout=30).json()
    assert all(not f["path"].startswith(".sextant") for f in root.get("files", []))
    if hasattr(target, "s3"):
        staged = target.s3.list_objects_v2(Bucket=target.bucket, Prefix="prefix/.sextant-mpu/")
        assert staged.get("KeyCount", 0) == 0, staged


@pytest.mark.sextant_only
def test_failed_part_aborts_the_upload(target, multipart_env, calls, big_file, monkeypatch):
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    original = HttpArtifactRepository._upload_part

    def flaky(credential, local_file, size, start_byte):
        if credential.part_number == 3:
            raise RuntimeError("simulated part failure")
        return original(credential=credential, local_file=local_file, size=size, start_byte=start_byte)

    monkeypatch.setattr(HttpArtifactRepository, "_upload_part", staticmethod(flaky))
    mlflow.set_experiment(f"mpu-{os.urandom(6).hex()}")
    with mlflow.start_run() as run:
        with pytest.raises(Exception, match="simulated part failure|Failed to upload"):
            mlflow.log_artifact(str(big_file))
    assert [c[2] for c in mpu_calls(calls, "abort")] == [200]
    assert not mpu_calls(calls, "complete")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []
    if hasattr(target, "s3"):
        staged = target.s3.list_objects_v2(Bucket=target.bucket, Prefix="prefix/.sextant-mpu/")
        assert staged.get("KeyCount", 0) == 0, staged


@pytest.mark.sextant_only
def test_raw_protocol_errors(server_url):
    base = f"{server_url}/api/2.0/mlflow-artifacts/mpu"
    resp = requests.post(f"{base}/create/0/raw", json={"path": "/tmp/x.bin", "num_parts": 2}, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    upload_id = body["upload_id"]
    urls = [c["url"] for c in body["credentials"]]
    assert [c["part_number"] for c in body["credentials"]] == [1, 2]
    etags = []
    for i, url in enumerate(urls):
        r = requests.put(url, data=bytes([i]) * 10, timeout=30)
        assert r.status_code == 200, r.text
        etags.append(r.headers["ETag"])
    parts = [{"part_number": i + 1, "etag": e, "url": u} for i, (e, u) in enumerate(zip(etags, urls))]

    # An ETag that was not issued for the part, a malformed id, an unknown id.
    wrong = [dict(parts[0], etag=etags[1]), parts[1]]
    assert_error(
        requests.post(f"{base}/complete/0/raw", json={"path": "x.bin", "upload_id": upload_id, "parts": wrong}, timeout=30),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        requests.post(f"{base}/complete/0/raw", json={"path": "x.bin", "upload_id": "../x", "parts": parts}, timeout=30),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        requests.post(
            f"{base}/abort/0/raw", json={"path": "x.bin", "upload_id": "0b6a3f0e-8f1c-4b7e-9d2a-5c4e3b2a1f00"}, timeout=30
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert_error(
        requests.post(f"{base}/create/0/..%2f..%2fetc", json={"path": "x.bin", "num_parts": 1}, timeout=30),
        400,
        "INVALID_PARAMETER_VALUE",
    )

    r = requests.post(f"{base}/complete/0/raw", json={"path": "x.bin", "upload_id": upload_id, "parts": parts}, timeout=30)
    assert r.status_code == 200 and r.json() == {}, r.text
    got = requests.get(f"{server_url}/api/2.0/mlflow-artifacts/artifacts/0/raw/x.bin", timeout=30)
    assert got.content == bytes([0]) * 10 + bytes([1]) * 10
