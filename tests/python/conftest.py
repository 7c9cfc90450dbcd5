"""Interop tests: the real `mlflow` Python client (3.17.2) against a running server.

By default the server is Sextant: `$SEXTANT_BIN server --host 127.0.0.1 --port N --data-dir TMP`
(SEXTANT_BIN defaults to `$CARGO_TARGET_DIR/debug/sextant`, else `target/debug/sextant`).

With `SEXTANT_TEST_AGAINST_MLFLOW=1` the same tests run against `mlflow server` 3.17.2 on SQLite
(the `mlflow` next to this interpreter, or `$SEXTANT_TEST_MLFLOW_BIN`), which is how the tests
themselves are validated. Where Sextant deliberately differs from MLflow (400 instead of 5xx for
client mistakes, 501 for features out of scope, the Host-header guard) the assertions are marked
`@pytest.mark.sextant_only` or guarded with the `sextant` fixture.

Extra servers: `pg_server` (Sextant on a fresh PostgreSQL database under
`$SEXTANT_TEST_POSTGRES_URL`) and `s3_server` (Sextant with artifacts in S3 at
`$SEXTANT_TEST_S3_ENDPOINT`, e.g. moto); both are skipped against MLflow or when their variable is
unset. `scripts/test` provides both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from helpers import unique

AGAINST_MLFLOW = os.environ.get("SEXTANT_TEST_AGAINST_MLFLOW", "") not in ("", "0")
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 120.0

# The client must not inherit a tracking setup from the caller's shell, and must fail fast instead
# of retrying 5xx answers for minutes (MLflow itself answers 500 to some client mistakes).
for _var in [v for v in os.environ if v.startswith("MLFLOW_")]:
    del os.environ[_var]
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "300"
# No telemetry or background upload threads during tests.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sextant_only: Sextant deliberately differs from MLflow here; skipped against MLflow"
    )


def pytest_collection_modifyitems(config, items):
    if not AGAINST_MLFLOW:
        return
    skip = pytest.mark.skip(reason="Sextant-specific behaviour (SEXTANT_TEST_AGAINST_MLFLOW is set)")
    for item in items:
        if "sextant_only" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sextant_bin() -> str:
    if os.environ.get("SEXTANT_BIN"):
        return os.environ["SEXTANT_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO_ROOT / "target")
    return str(Path(target) / "debug" / "sextant")


def mlflow_bin() -> str:
    return os.environ.get("SEXTANT_TEST_MLFLOW_BIN") or str(Path(sys.executable).parent / "mlflow")


# The key Sextant test servers seal webhook secrets with, unless the caller's environment or the
# test gives another (an empty one leaves the server without a key).
TEST_SECRET_KEY = "c2V4dGFudC10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM="


class Server:
    """A server process on a loopback port, ready once `/health` answers 200. With `tls_cert` it
    serves HTTPS, as `localhost` (the name the certificate must hold), trusting that certificate."""

    def __init__(
        self, argv: list[str], port: int, log_path: Path, env: dict | None = None,
        tls_cert: Path | None = None,
    ):
        self.url = f"https://localhost:{port}" if tls_cert else f"http://127.0.0.1:{port}"
        self.verify = str(tls_cert) if tls_cert else True
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self):
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {' '.join(self.argv)}\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=2, verify=self.verify).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {STARTUP_DEADLINE_S} s\n{self.log_tail()}")
            # Waiting for a process we do not control; the deadline above bounds the loop.
            time.sleep(0.05)

    def log_tail(self, n: int = 60) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_sextant(
    tmp: Path, *extra: str, env: dict | None = None, tls: tuple[Path, Path] | None = None
) -> Server:
    """Sextant on a free port with its data in `tmp`; `tls` is (certificate, key) to serve HTTPS."""
    binary = sextant_bin()
    if not os.path.exists(binary):
        pytest.exit(f"sextant binary not found at {binary}; set SEXTANT_BIN or run scripts/test", 2)
    port = free_port()
    data_dir = tmp / "data"
    argv = [binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), *extra]
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    env = {"SEXTANT_SECRET_KEY": os.environ.get("SEXTANT_SECRET_KEY", TEST_SECRET_KEY), **(env or {})}
    return Server(argv, port, tmp / "server.log", env=env, tls_cert=tls[0] if tls else None)


def start_mlflow(tmp: Path) -> Server:
    port = free_port()
    argv = [
        mlflow_bin(), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
        "--artifacts-destination", str(tmp / "artifacts"),
        "--workers", "1",
    ]
    return Server(argv, port, tmp / "server.log")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The server under test (Sextant on SQLite, or MLflow when validating the tests)."""
    tmp = tmp_path_factory.mktemp("server")
    srv = start_mlflow(tmp) if AGAINST_MLFLOW else start_sextant(tmp)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server_url(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def sextant() -> bool:
    """True when the server under test is Sextant (for Sextant-only assertions inside a test)."""
    return not AGAINST_MLFLOW


@pytest.fixture(autouse=True)
def _tracking_uri(request, monkeypatch):
    """Point the fluent API at the session server, and leave no active run behind."""
    import mlflow

    if "server_url" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    url = request.getfixturevalue("server_url")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def client(server_url):
    from mlflow import MlflowClient

    return MlflowClient(server_url)


@pytest.fixture
def experiment_id(client) -> str:
    """A fresh experiment, also made the fluent API's active experiment."""
    import mlflow

    exp_id = client.create_experiment(unique("pytest"))
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


# --- Sextant on PostgreSQL / with S3 artifacts -------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """Sextant on a fresh PostgreSQL database, created for this session and dropped after it."""
    if AGAINST_MLFLOW:
        pytest.skip("Sextant backend fixture (SEXTANT_TEST_AGAINST_MLFLOW is set)")
    base = os.environ.get("SEXTANT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SEXTANT_TEST_POSTGRES_URL is not set (scripts/test sets it)")
    import psycopg2
    from urllib.parse import urlsplit, urlunsplit

    db = f"sextant_pytest_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    parts = urlsplit(base)
    db_url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))
    tmp = tmp_path_factory.mktemp("pg-server")
    srv = None
    try:
        srv = start_sextant(tmp, "--backend-store-uri", db_url)
        yield srv
    finally:
        if srv is not None:
            srv.stop()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """Sextant whose artifacts live in S3 (`s3://<fresh bucket>/prefix` on the test endpoint)."""
    if AGAINST_MLFLOW:
        pytest.skip("Sextant backend fixture (SEXTANT_TEST_AGAINST_MLFLOW is set)")
    endpoint = os.environ.get("SEXTANT_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("SEXTANT_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)")
    import boto3

    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
    }
    bucket = f"sextant-pytest-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_DEFAULT_REGION"],
    )
    s3.create_bucket(Bucket=bucket)
    tmp = tmp_path_factory.mktemp("s3-server")
    srv = start_sextant(tmp, "--artifacts-destination", f"s3://{bucket}/prefix", env=aws)
    srv.s3 = s3
    srv.bucket = bucket
    yield srv
    srv.stop()
