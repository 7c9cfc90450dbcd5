"""Artifacts through the proxied mlflow-artifacts API: nested directories, listing, a >100 MB file."""

import hashlib
import os
from pathlib import Path

import mlflow
import pytest
import requests

from helpers import assert_error, get

CHUNK = 4 * 1024 * 1024


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def artifact_rel(run) -> str:
    """The run's artifact root as a path under /api/2.0/mlflow-artifacts/artifacts/."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri[len("mlflow-artifacts:/") :].lstrip("/")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    files = {
        "a.txt": b"a",
        "empty.bin": b"",
        "dir/b.json": b'{"b": 1}\n',
        "dir/sub/c.csv": b"x,y\n1,2\n",
        "dir/sub/deeper/d.bin": os.urandom(70_000),
        "with space/e f.txt": "unicode ✓ é".encode(),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root, files


def test_nested_directories_round_trip(client, experiment_id, tree, tmp_path):
    root, files = tree
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(root))
        mlflow.log_artifact(str(root / "a.txt"), artifact_path="copies/x")
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "notes/d.json")
    run_id = run.info.run_id

    top = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert top == {
        "a.txt": (False, 1),
        # MLflow omits file_size when it is 0 (proto default), so the client sees None.
        "empty.bin": (False, None),
        "dir": (True, None),
        "with space": (True, None),
        "copies": (True, None),
        "notes": (True, None),
    }
    sub = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "dir/sub")}
    assert sub == {"dir/sub/c.csv": (False, 8), "dir/sub/deeper": (True, None)}
    assert [f.path for f in client.list_artifacts(run_id, "copies/x")] == ["copies/x/a.txt"]
    assert client.list_artifacts(run_id, "no/such/dir") == []

    out = Path(client.download_artifacts(run_id, "", str(tmp_path / "out")))
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data, rel
    assert (out / "copies/x/a.txt").read_bytes() == b"a"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/notes/d.json") == {"k": [1, 2]}

    one = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir/sub/deeper/d.bin", dst_path=str(tmp_path / "one")))
    assert one.read_bytes() == files["dir/sub/deeper/d.bin"]


def test_raw_artifact_api(server_url, client, experiment_id):
    run = client.create_run(experiment_id)
    rel = artifact_rel(run)
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts"

    put = requests.put(f"{base}/{rel}/raw/one.txt", data=b"1", headers={"Content-Type": "text/plain"}, timeout=60)
    assert put.status_code == 200, put.text
    put = requests.put(f"{base}/{rel}/raw/dir/two.bin", data=b"22", timeout=60)
    assert put.status_code == 200, put.text

    listing = requests.get(base, params={"path": f"{rel}/raw"}, timeout=60)
    assert listing.status_code == 200
    assert sorted(listing.json()["files"], key=lambda f: f["path"]) == [
        {"path": "dir", "is_dir": True},
        {"path": "one.txt", "is_dir": False, "file_size": 1},
    ]
    assert requests.get(base, params={"path": f"{rel}/nothing-here"}, timeout=60).json() == {}

    got = requests.get(f"{base}/{rel}/raw/dir/two.bin", timeout=60)
    assert got.status_code == 200 and got.content == b"22"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers.get("X-Content-Type-Options") == "nosniff"

    missing = requests.get(f"{base}/{rel}/raw/absent.txt", timeout=60)
    assert_error(missing, 404, "RESOURCE_DOES_NOT_EXIST")

    # The tracking API's own listing is relative to the run root.
    resp = get(server_url, "artifacts/list", {"run_id": run.info.run_id, "path": "raw"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["root_uri"] == run.info.artifact_uri
    assert sorted(body["files"], key=lambda f: f["path"]) == [
        {"path": "raw/dir", "is_dir": True},
        {"path": "raw/one.txt", "is_dir": False, "file_size": 1},
    ]

    deleted = requests.delete(f"{base}/{rel}/raw/dir", timeout=60)
    assert deleted.status_code == 200
    assert [f["path"] for f in requests.get(base, params={"path": f"{rel}/raw"}, timeout=60).json()["files"]] == ["one.txt"]


def test_large_file_round_trips_byte_exact(client, experiment_id, tmp_path):
    size = 100 * 1024 * 1024 + 12_345  # just over 100 MB, not a multiple of any chunk size
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n
    digest = sha256(src)

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src), artifact_path="blobs")
    run_id = run.info.run_id
    listing = client.list_artifacts(run_id, "blobs")
    assert [(f.path, f.is_dir, f.file_size) for f in listing] == [("blobs/big.bin", False, size)]
    src.unlink()  # keep the disk footprint at one copy

    out = Path(client.download_artifacts(run_id, "blobs/big.bin", str(tmp_path / "dl")))
    assert out.stat().st_size == size
    assert sha256(out) == digest
