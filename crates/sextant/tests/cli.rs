//! The binary driven as a process: settings, migrations, graceful shutdown
//! and durability of acknowledged writes across `kill -9`.

mod common;

use common::{BIN, free_port, http, wait_healthy};

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn sextant(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SEXTANT_LOG")
        .output()
        .unwrap()
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["server", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server = Server { child, port };
        wait_healthy(port);
        server
    }

    fn post(&self, path: &str, body: &str) -> String {
        let (status, body) = http(self.port, "POST", path, body).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_field<'a>(body: &'a str, field: &str) -> &'a str {
    let start = body
        .find(&format!("\"{field}\""))
        .unwrap_or_else(|| panic!("{field} in {body}"));
    let rest = &body[start + field.len() + 2..];
    let rest = rest[rest.find('"').unwrap() + 1..].trim_start();
    &rest[..rest.find('"').unwrap()]
}

#[test]
fn refuses_a_public_address_without_authentication() {
    let out = sextant(&["server", "--host", "0.0.0.0", "--port", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--auth") && err.contains("--insecure-no-auth"),
        "{err}"
    );
    // The old flag alone no longer opens a server, and says so.
    let out = sextant(&[
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "1",
        "--allow-remote",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-remote alone no longer"), "{err}");
}

#[test]
fn auth_without_any_user_says_how_to_make_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = sextant(&[
        "server",
        "--auth",
        "--port",
        "0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sextant users create NAME --admin"), "{err}");
    assert!(err.contains("SEXTANT_ADMIN_PASSWORD"), "{err}");
}

#[test]
fn db_upgrade_is_explicit_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("s.db").display());
    let first = sextant(&["db", "upgrade", "--backend-store-uri", &uri]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stderr)
            .contains("applied migrations: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    );
    let second = sextant(&["db", "upgrade", "--backend-store-uri", &uri]);
    assert!(String::from_utf8_lossy(&second.stderr).contains("up to date"));
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let run = server.post("/api/2.0/mlflow/runs/create", r#"{"experiment_id": "0"}"#);
    let run_id = json_field(&run, "run_id").to_string();
    let mut acknowledged = 0;
    for batch in 0..40 {
        let metrics: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    r#"{{"key": "m", "value": {i}, "timestamp": 1, "step": {}}}"#,
                    batch * 100 + i
                )
            })
            .collect();
        let body = format!(
            r#"{{"run_id": "{run_id}", "metrics": [{}]}}"#,
            metrics.join(",")
        );
        server.post("/api/2.0/mlflow/runs/log-batch", &body);
        acknowledged += 100;
    }
    drop(server); // SIGKILL: no chance to flush anything.

    let server = Server::start(dir.path());
    let (status, body) = http(
        server.port,
        "GET",
        &format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=m&max_results=25000"
        ),
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.matches("\"step\"").count(), acknowledged);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("server stopped"), "{err}");
}
