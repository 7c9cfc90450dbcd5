//! `sextant audit` as a process against the store a real `--auth` server
//! writes: the server's rows show in `tail`, `verify` passes, and after an
//! UPDATE through SQLite it fails naming the row.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::Duration;

use common::eventually;
use common::server::Server;
use serde_json::Value;

const PASSWORD: &str = "audit-admin-password";

fn sextant(args: &[&str]) -> Output {
    std::process::Command::new(common::BIN)
        .args(args)
        .env_remove("SEXTANT_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A POST with the admin's Basic credentials; returns the status.
fn post_as_admin(port: u16, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // base64("admin:audit-admin-password")
    let creds = "YWRtaW46YXVkaXQtYWRtaW4tcGFzc3dvcmQ=";
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {creds}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn audit_verify_passes_then_names_the_row_an_update_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        [
            ("SEXTANT_AUTH", "true"),
            ("SEXTANT_ADMIN_PASSWORD", PASSWORD),
        ],
    );
    for name in ["one", "two", "three"] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let status = post_as_admin(server.port, "/api/2.0/mlflow/experiments/create", &body);
        assert_eq!(status, 200, "{}", server.log());
    }
    // The server's writer appends and seals just after each request, and
    // anchors the first head it sees in the artifact store.
    // The admin's login (its first Basic use), then the three creations
    // (and another login, should the three take longer than the credential
    // cache's five seconds).
    let rows: Vec<Value> = eventually(Duration::from_secs(30), "the rows sealed", || {
        let out = sextant(&["audit", "tail", "--json", "--data-dir", data_dir]);
        let rows: Vec<Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let sealed = rows.iter().filter(|r| !r["hash"].is_null()).count();
        let anchored = std::fs::read_dir(data.join("artifacts/audit/checkpoints"))
            .is_ok_and(|mut d| d.next().is_some());
        let creations = rows.iter().filter(|r| r["action"].is_null()).count();
        if creations == 3 && sealed == rows.len() && anchored {
            Ok(rows)
        } else {
            Err(format!(
                "{sealed} sealed: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            ))
        }
    });
    assert_eq!(
        (&rows[0]["action"], &rows[0]["actor"], &rows[0]["resource"]),
        (
            &Value::from("login"),
            &Value::from("admin"),
            &Value::from("user:admin")
        )
    );
    let n = rows.len();
    let two = rows
        .iter()
        .find(|r| r["resource"] == "experiment:two")
        .unwrap();
    assert_eq!(two["actor"], "admin");
    assert_eq!(two["route"], "/api/2.0/mlflow/experiments/create");
    assert_eq!(two["action"], Value::Null);
    assert_eq!(rows[1]["resource"], "experiment:one");
    // The text form names the action before what it acted on.
    let tail = sextant(&["audit", "tail", "--data-dir", data_dir]);
    let lines = text(&tail.stdout);
    let first = lines.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("1\t")
            && first.contains("\tadmin\t")
            && first.ends_with("\tlogin user:admin"),
        "{lines}"
    );
    drop(server);

    let ok = sextant(&["audit", "verify", "--data-dir", data_dir]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let report = text(&ok.stdout);
    assert!(
        report.contains(&format!("rows: {n} ({n} sealed, 0 waiting to be sealed)")),
        "{report}"
    );
    assert!(report.contains("chain: intact"), "{report}");
    assert!(
        report.contains("matches the checkpoint written"),
        "{report}"
    );

    let export = sextant(&["audit", "export", "--since", "0", "--data-dir", data_dir]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    assert_eq!(text(&export.stdout).lines().count(), n);

    // Retention: the first row goes, its hash anchors the rest.
    let prune = sextant(&["audit", "prune", "--before", "2", "--data-dir", data_dir]);
    assert!(prune.status.success(), "{}", text(&prune.stderr));
    assert!(text(&prune.stderr).contains("pruned 1 rows; the chain now starts after row 1"));
    let ok = sextant(&["audit", "verify", "--data-dir", data_dir]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let report = text(&ok.stdout);
    assert!(
        report.contains(&format!("rows: {} ({} sealed", n - 1, n - 1))
            && report.contains("starts after: row 1"),
        "{report}"
    );

    let db = data.join("sextant.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2",
            [],
        )
        .unwrap();
    let bad = sextant(&["audit", "verify", "--data-dir", data_dir]);
    assert!(!bad.status.success());
    let err = text(&bad.stderr);
    assert!(
        err.contains("the audit log is broken at row 2: edited"),
        "{err}"
    );
    assert!(text(&bad.stdout).contains("chain: broken at row 2"));
    let json = sextant(&["audit", "verify", "--json", "--data-dir", data_dir]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (report["ok"].clone(), report["first_bad"]["seq"].clone()),
        (Value::Bool(false), 2.into())
    );

    // A broken chain is not pruned: that would erase the evidence.
    let prune = sextant(&["audit", "prune", "--before", "3", "--data-dir", data_dir]);
    assert!(!prune.status.success());
    assert!(
        text(&prune.stderr).contains("refusing to prune"),
        "{}",
        text(&prune.stderr)
    );
}

#[test]
fn audit_commands_need_an_existing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = sextant(&["audit", "verify", "--data-dir", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no store at") && err.contains("hint:"),
        "{err}"
    );
    assert!(!missing.exists(), "a check must not create a store");
}

/// Deleting rows from the end leaves a chain that verifies by itself; the
/// server's checkpoint of the head in the artifact store catches it.
#[test]
fn rows_deleted_from_the_end_show_against_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        [
            ("SEXTANT_AUTH", "true"),
            ("SEXTANT_ADMIN_PASSWORD", PASSWORD),
        ],
    );
    let status = post_as_admin(
        server.port,
        "/api/2.0/mlflow/experiments/create",
        r#"{"name":"anchored"}"#,
    );
    assert_eq!(status, 200, "{}", server.log());
    // The server anchors the first head it sees at once.
    let checkpoints = data.join("artifacts/audit/checkpoints");
    let seq: i64 = eventually(Duration::from_secs(30), "a checkpoint", || {
        std::fs::read_dir(&checkpoints)
            .ok()
            .and_then(|d| d.flatten().next())
            .and_then(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .ok_or("none yet")
    });
    drop(server);
    let ok = sextant(&["audit", "verify", "--data-dir", data_dir]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    rusqlite::Connection::open(data.join("sextant.db"))
        .unwrap()
        .execute("DELETE FROM audit_log WHERE seq >= ?1", [seq])
        .unwrap();
    let bad = sextant(&["audit", "verify", "--data-dir", data_dir]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stdout).contains("chain: intact"),
        "by itself it verifies"
    );
    let err = text(&bad.stderr);
    assert!(
        err.contains(&format!("row {seq} is gone")) && err.contains("deleted from the end"),
        "{err}"
    );
}
