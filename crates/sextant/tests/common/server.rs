//! A `sextant server` process on a free port with its own data directory,
//! and the CLI pointed at it.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{BIN, eventually, free_port, http, wait_healthy};

/// The checkout the tests run from (CARGO_MANIFEST_DIR at run time: a shared
/// target directory may hold a binary built in another clone).
fn checkout() -> PathBuf {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    crate_dir.join("../..")
}

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts a server whose data directory is `dir/data`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with_env(dir, std::iter::empty::<(&str, &OsStr)>())
    }

    /// Starts a server with extra environment variables, which its step
    /// processes inherit.
    pub fn start_with_env<K, V>(dir: &Path, env: impl IntoIterator<Item = (K, V)>) -> Server
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let port = free_port();
        let log = dir.join("server.log");
        // As a user runs it: from the checkout (where the examples' relative paths
        // point), reading the test's own files under `dir` through a data root.
        let child = Command::new(BIN)
            .current_dir(checkout())
            .args(["server", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .arg("--data-root")
            .arg(dir)
            .env_remove("SEXTANT_LOG")
            .envs(env)
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server { child, port, log };
        wait_healthy(port);
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = http(self.port, "GET", path, "").unwrap();
        assert_eq!(status, 200, "{path}: {body}\nserver log:\n{}", self.log());
        serde_json::from_str(&body).unwrap()
    }

    /// What the server wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The CLI with `args`, against this server.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--server", &self.url()])
            .env("SEXTANT_LOG", "warn");
        cmd
    }

    /// Runs the CLI with `args` against this server to its end.
    pub fn sextant(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Writes `yaml` to `dir/name.yaml`, starts a run of it with `dir` as
    /// the `dir` parameter (without waiting) and returns the run id.
    pub fn start_run(&self, dir: &Path, name: &str, yaml: &str) -> String {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let out = self.sextant(&[
            "pipelines",
            "run",
            file.to_str().unwrap(),
            "--param",
            &format!("dir={}", dir.display()),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until pipeline run `id` ended (two minutes at most); returns it.
    pub fn terminal_run(&self, id: &str) -> Value {
        self.run_until(id, |run| {
            matches!(
                run["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELLED")
            )
        })
    }

    /// Polls pipeline run `id` until `done` holds (two minutes at most).
    pub fn run_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(120), &format!("run {id}"), || {
            let run = self.get(&format!("/api/v1/pipeline-runs/{id}"));
            if done(&run) {
                Ok(run)
            } else {
                Err(format!("{run}\nserver log:\n{}", self.log()))
            }
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
