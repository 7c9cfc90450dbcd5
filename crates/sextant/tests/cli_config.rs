//! How the binary reads its configuration, run the way a user runs it: with
//! defaults, in a fresh working directory, relative paths and URIs.

mod common;

use common::{BIN, free_port, http, wait_healthy};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// `sextant` in `cwd` with no `SEXTANT_*` setting from the caller's shell.
fn sextant_in(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SEXTANT_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A server process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The regular files `pid` holds open (its database, its logs), as paths.
fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|p| p.is_absolute() && !p.starts_with("/dev") && !p.starts_with("/proc"))
        .collect()
}

#[test]
fn a_server_with_defaults_keeps_everything_in_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let root_dir_existed = Path::new("/sextant-data").exists();
    let port = free_port();
    let mut child = sextant_in(cwd.path(), &["server", "--port", &port.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut log = child.stderr.take().unwrap();
    let server = Running(child);
    wait_healthy(port);

    // Some writes: an experiment (the database) and an artifact (the store).
    let (status, body) = http(
        port,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        r#"{"name": "here"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        port,
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/1/a.txt",
        "hello",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    let data = cwd.path().canonicalize().unwrap().join("sextant-data");
    assert!(data.join("sextant.db").is_file());
    assert_eq!(
        std::fs::read_to_string(data.join("artifacts/1/a.txt")).unwrap(),
        "hello"
    );
    let outside: Vec<PathBuf> = open_files(pid)
        .into_iter()
        .filter(|p| !p.starts_with(&data))
        .collect();
    assert!(
        outside.is_empty(),
        "files open outside {data:?}: {outside:?}"
    );
    if !root_dir_existed {
        assert!(!Path::new("/sextant-data").exists());
    }

    // `host:port` is a server URL too.
    let out = sextant_in(
        cwd.path(),
        &[
            "models",
            "list",
            "--json",
            "--server",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    drop(server);
    let mut text = Vec::new();
    log.read_to_end(&mut text).unwrap();
    let text = String::from_utf8_lossy(&text);
    // The data directory is printed, absolute; and a log into a pipe is plain text.
    assert!(
        text.contains(&format!("data_dir={}", data.display())),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "escape codes in a piped log: {text:?}"
    );
}

#[test]
fn a_taken_port_fails_before_touching_the_store() {
    let cwd = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sextant_in(cwd.path(), &["server", "--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("in use"), "{err}");
    assert!(err.contains("hint: pass --port"), "{err}");
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "the failed server created files"
    );
}

#[test]
fn sqlite_uris_read_as_in_sqlalchemy_and_an_old_absolute_one_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    // Three slashes: relative to the working directory.
    let out = sextant_in(
        cwd.path(),
        &["db", "upgrade", "--backend-store-uri", "sqlite:///rel/s.db"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = cwd.path().join("rel/s.db");
    assert!(db.is_file());

    // Four slashes: absolute, from anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let four = format!("sqlite:///{}", db.display());
    assert!(four.starts_with("sqlite:////"));
    let out = sextant_in(
        elsewhere.path(),
        &["db", "upgrade", "--backend-store-uri", &four],
    )
    .output()
    .unwrap();
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));

    // An absolute path written with three slashes (the old reading) names a
    // file that exists only from the root: refused, with the fix.
    let three = format!("sqlite://{}", db.display());
    let out = sextant_in(
        elsewhere.path(),
        &["db", "upgrade", "--backend-store-uri", &three],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("write {four}")), "{err}");
    assert!(err.contains("four slashes"), "{err}");
    assert!(
        !elsewhere
            .path()
            .join(db.strip_prefix("/").unwrap())
            .exists(),
        "an empty database was created beside the real one"
    );
}

#[test]
fn monitors_baseline_offers_no_server_flag() {
    let cwd = tempfile::tempdir().unwrap();
    let out = sextant_in(cwd.path(), &["monitors", "baseline", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.contains("--server"), "{help}");
    assert!(help.contains("--json"), "{help}");
    let out = sextant_in(cwd.path(), &["monitors", "list", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--server"));
}
