"""What MLflow's own server tests found Sextant answering differently from MLflow 3.17.2 (issue 20).

Each test states MLflow's answer on the same input; run with `SEXTANT_TEST_AGAINST_MLFLOW=1` they pass
against `mlflow server` too, except where marked `sextant_only`.
"""

import uuid
from pathlib import Path

import mlflow
import pytest
import requests

from helpers import assert_error, get, post, unique

INVALID_PATH = "Invalid path"


def artifact_root(run) -> str:
    """The run's artifact root as a path under /api/2.0/mlflow-artifacts/artifacts/."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri[len("mlflow-artifacts:/") :].lstrip("/")


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def run_with_files(experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "a.txt")
        mlflow.log_text("deep", "d/b.txt")
    return run


# --- item 2: `.` and the empty path are the artifact root ------------------------------------------


@pytest.mark.parametrize("path", [".", "", "./"])
def test_download_artifacts_dot_is_the_run_root(run_with_files, tmp_path, path):
    out = mlflow.artifacts.download_artifacts(
        run_id=run_with_files.info.run_id, artifact_path=path, dst_path=str(tmp_path)
    )
    assert files_under(Path(out)) == {"a.txt", "d/b.txt"}
    assert (Path(out) / "d/b.txt").read_text() == "deep"


def test_download_artifacts_dot_prefixed_directory(run_with_files, tmp_path):
    out = mlflow.artifacts.download_artifacts(
        run_id=run_with_files.info.run_id, artifact_path="./d", dst_path=str(tmp_path)
    )
    assert files_under(Path(out)) == {"b.txt"}


def test_listings_read_dot_segments_as_mlflow_does(server_url, run_with_files):
    root = artifact_root(run_with_files)
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts"
    for path in (f"{root}/.", f"{root}/./", root):
        resp = requests.get(base, params={"path": path}, timeout=30)
        assert resp.status_code == 200, (path, resp.text)
        assert {f["path"] for f in resp.json()["files"]} == {"a.txt", "d"}, path
    resp = requests.get(base, params={"path": f"{root}/./d/."}, timeout=30)
    assert [f["path"] for f in resp.json()["files"]] == ["b.txt"]

    # The run listing joins the directory as written with each name (`posixpath.join`).
    run_id = run_with_files.info.run_id
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": "."}).json()
    assert {f["path"] for f in listed["files"]} == {"./a.txt", "./d"}
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": "./d"}).json()
    assert [f["path"] for f in listed["files"]] == ["./d/b.txt"]
    listed = get(server_url, "artifacts/list", {"run_id": run_id, "path": ""}).json()
    assert {f["path"] for f in listed["files"]} == {"a.txt", "d"}


@pytest.mark.parametrize(
    "suffix",
    ["..", "./..", "./../..", "d/../..", "%2e%2e", "./%2e%2e/x"],
)
def test_traversal_is_still_refused(server_url, run_with_files, suffix):
    root = artifact_root(run_with_files)
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts"
    resp = requests.get(f"{base}?path={root}/{suffix}", timeout=30)
    body = assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == INVALID_PATH
    resp = get(server_url, "artifacts/list", {"run_id": run_with_files.info.run_id, "path": suffix})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
