//! `sextant server --tls-cert/--tls-key` as a user runs it: HTTPS with HSTS,
//! plain HTTP on the TLS port refused, the CLI trusting a self-signed
//! certificate through `SSL_CERT_FILE`, a clean stop on SIGTERM, and every
//! bad setting refused before anything is bound or created. Certificates
//! are made with the `openssl` command.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use common::{BIN, eventually, free_port, http};

/// `sextant` with no `SEXTANT_*` setting from the caller's shell.
fn sextant(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEXTANT_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // rustls clients refuse a CA certificate as a server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("this test needs the openssl command");
    assert!(made.status.success(), "{made:?}");
    (cert, key)
}

/// A server process, killed when dropped unless it was stopped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn https_client(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_hsts_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let port = free_port();
    let log = dir.path().join("server.log");
    let child = sextant(&["server", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("SEXTANT_TLS_CERT", &cert)
        .env("SEXTANT_TLS_KEY", &key)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Running { child, log };
    let client = https_client(&cert);
    let health = format!("https://localhost:{port}/health");
    let resp = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let last = match client.get(&health).send().await {
                Ok(r) if r.status() == 200 => break r,
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => format!("{e:?}"),
            };
            assert!(
                std::time::Instant::now() < deadline,
                "no healthy HTTPS server: {last}\n{}",
                server.log()
            );
            // A poll interval while the process starts; the deadline bounds it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // Plain HTTP to the same port is answered with a refusal, not served.
    let (status, body) = tokio::task::spawn_blocking(move || http(port, "GET", "/health", ""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HTTPS"), "{body}");

    // The CLI trusts the certificate through SSL_CERT_FILE, as any rustls
    // or OpenSSL client does.
    let url = format!("https://localhost:{port}");
    let cli = sextant(&["models", "list", "--server", &url])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", stderr(&cli));
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let (other, _) = self_signed(&elsewhere);
    let untrusted = sextant(&["models", "list", "--server", &url])
        .env("SSL_CERT_FILE", &other)
        .output()
        .unwrap();
    let e = stderr(&untrusted);
    assert!(
        !untrusted.status.success(),
        "another certificate is not trusted"
    );
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // SIGTERM stops it cleanly, as without TLS.
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = eventually(Duration::from_secs(60), "the server to exit", || {
        server.child.try_wait().unwrap()
    });
    assert!(exit.success(), "{exit:?}\n{}", server.log());
}

/// Runs `sextant server` with `env` and expects it to refuse to start,
/// before creating its data directory; returns its stderr.
fn refused(dir: &Path, env: &[(&str, &Path)]) -> String {
    let data = dir.join("data");
    let mut cmd = sextant(&["server", "--port", &free_port().to_string(), "--data-dir"]);
    cmd.arg(&data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{env:?} started");
    assert!(!data.exists(), "{env:?}: the data directory was created");
    stderr(&out)
}

#[test]
fn bad_tls_or_secret_key_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();

    let e = refused(dir.path(), &[("SEXTANT_TLS_CERT", &cert)]);
    assert!(
        e.contains("--tls-cert needs --tls-key (SEXTANT_TLS_KEY)"),
        "{e}"
    );
    let e = refused(dir.path(), &[("SEXTANT_TLS_KEY", &key)]);
    assert!(
        e.contains("--tls-key needs --tls-cert (SEXTANT_TLS_CERT)"),
        "{e}"
    );
    let e = refused(
        dir.path(),
        &[("SEXTANT_TLS_CERT", &junk), ("SEXTANT_TLS_KEY", &key)],
    );
    assert!(e.contains("--tls-cert") && e.contains("junk.pem"), "{e}");
    let missing = dir.path().join("missing-key.pem");
    let e = refused(
        dir.path(),
        &[("SEXTANT_TLS_CERT", &cert), ("SEXTANT_TLS_KEY", &missing)],
    );
    assert!(
        e.contains("--tls-key: cannot read") && e.contains("missing-key.pem"),
        "{e}"
    );

    let e = refused(dir.path(), &[("SEXTANT_SECRET_KEY", Path::new("c2hvcnQ="))]);
    assert!(
        e.contains("SEXTANT_SECRET_KEY: the key is 5 bytes long, and must be 32"),
        "{e}"
    );
    assert!(!e.contains("c2hvcnQ="), "the key is not repeated: {e}");
}

/// Runs `openssl` with `args`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("this test needs the openssl command");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A private CA and a server certificate for `localhost` and 127.0.0.1 it
/// signed: (CA certificate, server certificate, server key).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-days", "2", "-subj", "/CN=Sextant test CA"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A server whose certificate a private CA signed: the CLI trusts it given
/// `--ca-cert` (or MLflow's `MLFLOW_TRACKING_SERVER_CERT_PATH`), not
/// without, and an unreadable file is refused naming it.
#[test]
fn the_cli_trusts_a_private_ca_given_with_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path());
    let port = free_port();
    let log = dir.path().join("server.log");
    let child = sextant(&["server", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("SEXTANT_TLS_CERT", &cert)
        .env("SEXTANT_TLS_KEY", &key)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Running { child, log };
    let url = format!("https://localhost:{port}");
    // Nothing else is trusted to sign for it: SSL_CERT_FILE names a file
    // without the CA.
    let nothing = dir.path().join("no-roots.pem");
    std::fs::write(&nothing, "").unwrap();
    let ca_arg = ca.to_str().unwrap();
    let listed = eventually(
        Duration::from_secs(60),
        "the CLI to reach the server",
        || {
            let out = sextant(&["models", "list", "--server", &url, "--ca-cert", ca_arg])
                .env("SSL_CERT_FILE", &nothing)
                .output()
                .unwrap();
            if out.status.success() {
                Ok(out)
            } else {
                Err(format!("{}\n{}", stderr(&out), server.log()))
            }
        },
    );
    assert!(listed.status.success());
    let by_env = sextant(&["models", "list", "--server", &url])
        .env("SSL_CERT_FILE", &nothing)
        .env("MLFLOW_TRACKING_SERVER_CERT_PATH", &ca)
        .output()
        .unwrap();
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    let without = sextant(&["models", "list", "--server", &url])
        .env("SSL_CERT_FILE", &nothing)
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "the private CA is not trusted by default"
    );
    assert!(
        stderr(&without).to_lowercase().contains("certificate"),
        "{}",
        stderr(&without)
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let bad = sextant(&["models", "list", "--server", &url, "--ca-cert"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let e = stderr(&bad);
    assert!(
        e.contains("cannot use") && e.contains("junk.pem") && e.contains("--ca-cert"),
        "{e}"
    );
}
