"""Sextant over HTTPS (`--tls-cert/--tls-key`) with the unchanged `mlflow` client, which trusts a
self-signed certificate through `MLFLOW_TRACKING_SERVER_CERT_PATH`; and a pipeline whose Python
step logs back to the HTTPS server it runs under.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import sextant_bin, start_sextant
from helpers import unique

pytestmark = pytest.mark.sextant_only


def self_signed(dir: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` and 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = dir / "cert.pem", dir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(tmp)
    # The pipeline's step runs `python` from this venv.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    srv = start_sextant(tmp, env={"PATH": path}, tls=(cert, key))
    yield srv, cert
    srv.stop()


@pytest.fixture
def tracking(tls_server, monkeypatch):
    srv, cert = tls_server
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(srv.url)
    yield srv, cert
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def test_the_mlflow_client_logs_a_run_over_https(tracking, monkeypatch):
    srv, cert = tracking
    client = MlflowClient(srv.url)
    exp = client.create_experiment(unique("tls"))
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("loss", 0.25)
        mlflow.log_text("over https", "note.txt")
    got = client.get_run(run.info.run_id)
    assert got.data.params == {"alpha": "0.5"} and got.data.metrics == {"loss": 0.25}
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/note.txt") == "over https"

    health = requests.get(f"{srv.url}/health", verify=str(cert), timeout=30)
    assert health.headers["strict-transport-security"] == "max-age=31536000"

    # Without the certificate the client does not trust the server.
    monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
    with pytest.raises((MlflowException, requests.exceptions.SSLError), match="(?i)certificate"):
        MlflowClient(srv.url).get_run(run.info.run_id)


def test_a_pipeline_step_logs_back_over_https(tracking, tmp_path):
    srv, cert = tracking
    spec = tmp_path / "tls.yaml"
    spec.write_text(
        "name: over-tls\n"
        "steps:\n"
        "  log:\n"
        "    run: [python, -c, \"import mlflow; mlflow.log_metric('over_tls', 1.0)\"]\n"
    )
    out = subprocess.run(
        [sextant_bin(), "pipelines", "run", str(spec), "--wait", "--server", srv.url],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SSL_CERT_FILE": str(cert)},
    )
    assert out.returncode == 0, f"{out.stderr}\n{srv.log_tail()}"
    run_id = out.stdout.strip()
    run = requests.get(f"{srv.url}/api/v1/pipeline-runs/{run_id}", verify=str(cert), timeout=60).json()
    step = run["steps"][0]
    assert step["status"] == "succeeded", run
    logged = MlflowClient(srv.url).get_run(step["tracking_run_id"])
    assert logged.data.metrics == {"over_tls": 1.0}


def test_a_browser_session_over_https_gets_a_secure_cookie(tmp_path):
    cert, key = self_signed(tmp_path)
    srv = start_sextant(tmp_path, "--auth", env={"SEXTANT_ADMIN_PASSWORD": "tls-admin-password-1"}, tls=(cert, key))
    try:
        r = requests.post(
            f"{srv.url}/api/v1/session", json={"username": "admin", "password": "tls-admin-password-1"},
            verify=str(cert), timeout=30,
        )
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        for attr in ("HttpOnly", "SameSite=Strict", "Secure"):
            assert attr in cookie, cookie
        assert r.headers["strict-transport-security"].startswith("max-age=")
        # The UI's shell is served over the same port.
        shell = requests.get(f"{srv.url}/", verify=str(cert), timeout=30)
        assert shell.status_code == 200 and "/static/ui/assets/" in shell.text
    finally:
        srv.stop()
