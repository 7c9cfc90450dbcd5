//! The server process under load: SIGTERM exits 0 with every request it
//! accepted answered, on SQLite and on PostgreSQL (whose synchronous client
//! used to abort the process when dropped on a runtime thread: exit 134),
//! and a PostgreSQL backend killed server-side costs at most the request
//! running on it, never the process.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BIN, eventually, free_port, http, wait_healthy};

fn admin_url() -> String {
    std::env::var("SEXTANT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database on the test PostgreSQL server, dropped with the value.
struct PgDatabase {
    name: String,
    uri: String,
}

impl PgDatabase {
    fn new() -> Self {
        let admin = admin_url();
        let name = format!("sextant_shutdown_{}_{}", std::process::id(), free_port());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let uri = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("no database name in {admin}"),
        };
        PgDatabase { name, uri }
    }

    /// Terminates every session on this database; returns how many.
    fn terminate_backends(&self) -> i64 {
        let mut c = postgres::Client::connect(&admin_url(), postgres::NoTls).unwrap();
        c.query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&self.name],
        )
        .unwrap()
        .get(0)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Server {
    fn start(dir: &Path, store_uri: Option<&str>) -> Server {
        let port = free_port();
        let log = dir.join("server.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["server", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .env_remove("SEXTANT_LOG")
            .env("SEXTANT_PIPELINE_CONCURRENCY", "0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(uri) = store_uri {
            cmd.args(["--backend-store-uri", uri]);
        }
        let child = cmd.spawn().unwrap();
        wait_healthy(port);
        Server { child, port, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn post(&self, path: &str, body: &str) -> String {
        let (status, body) = http(self.port, "POST", path, body).unwrap();
        assert_eq!(status, 200, "{path}: {body}\n{}", self.log());
        body
    }

    /// Waits for the process to exit (at most a minute).
    fn wait(&mut self) -> ExitStatus {
        eventually(Duration::from_secs(60), "the server to stop", || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An experiment with a run to log into; returns (experiment id, run id).
fn seed(server: &Server) -> (String, String) {
    let body = server.post("/api/2.0/mlflow/experiments/create", r#"{"name": "load"}"#);
    let exp = serde_json::from_str::<serde_json::Value>(&body).unwrap()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = server.post(
        "/api/2.0/mlflow/runs/create",
        &format!(r#"{{"experiment_id": "{exp}"}}"#),
    );
    let run = serde_json::from_str::<serde_json::Value>(&body).unwrap()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    (exp, run)
}

/// What the load threads saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    server_errors: AtomicUsize,
    /// No connection, or closed before an answer: only allowed once the
    /// server is stopping (or the backend under the request was killed).
    dropped: AtomicUsize,
}

/// Threads that alternate writes and searches until `stop`.
fn load(
    port: u16,
    exp: &str,
    run: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (stop, tally) = (stop.clone(), tally.clone());
            let (exp, run) = (exp.to_string(), run.to_string());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let answer = if i.is_multiple_of(2) {
                        let body = format!(
                            r#"{{"run_id": "{run}", "metrics": [{{"key": "t{t}", "value": {i}, "timestamp": {i}, "step": {i}}}]}}"#
                        );
                        http(port, "POST", "/api/2.0/mlflow/runs/log-batch", &body)
                    } else {
                        let body = format!(
                            r#"{{"experiment_ids": ["{exp}"], "filter": "metrics.t{t} > 0 and metrics.t0 >= 0 and attributes.status != 'X' and params.p IS NULL"}}"#
                        );
                        http(port, "POST", "/api/2.0/mlflow/runs/search", &body)
                    };
                    let counter = match answer {
                        Ok((200, _)) => &tally.ok,
                        Ok((0, _)) | Err(_) => &tally.dropped,
                        Ok(_) => &tally.server_errors,
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

/// Waits until the load threads have had `n` more answers.
fn wait_for_answers(tally: &Tally, n: usize) {
    let target = tally.ok.load(Ordering::SeqCst) + n;
    eventually(Duration::from_secs(60), "the load to make progress", || {
        (tally.ok.load(Ordering::SeqCst) >= target).then_some(())
    });
}

/// A log-batch the server has provably started handling: its headers ask
/// for `100 Continue`, which the server sends only once the handler reads
/// the body. The body follows in [`finish`].
fn start_request(port: u16, run: &str) -> (TcpStream, String) {
    let body = format!(
        r#"{{"run_id": "{run}", "metrics": [{{"key": "inflight", "value": 1, "timestamp": 1, "step": 1}}]}}"#
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        seen.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&seen);
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    (s, body)
}

/// Sends the body of a started request; returns the answer's status line.
fn finish((mut s, body): (TcpStream, String)) -> String {
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.lines().next().unwrap_or_default().to_string()
}

fn sigterm_under_load(store_uri: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), store_uri);
    let (exp, run) = seed(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads = load(server.port, &exp, &run, 4, &stop, &tally);
    // Enough traffic that the store's pool holds several connections.
    wait_for_answers(&tally, 40);
    let in_flight: Vec<_> = (0..3).map(|_| start_request(server.port, &run)).collect();
    let server_errors = tally.server_errors.load(Ordering::SeqCst);

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for request in in_flight {
        let status = finish(request);
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "an accepted request was not answered: {status:?}\n{}",
            server.log()
        );
    }
    let exit = server.wait();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        exit.success(),
        "exit status {exit:?}\nserver log:\n{}",
        server.log()
    );
    assert!(server.log().contains("server stopped"), "{}", server.log());
    assert_eq!(
        tally.server_errors.load(Ordering::SeqCst),
        server_errors,
        "5xx answers during shutdown\n{}",
        server.log()
    );
    assert_eq!(server_errors, 0, "5xx answers under load\n{}", server.log());
}

#[test]
fn sigterm_under_load_exits_0_with_every_accepted_request_answered_on_sqlite() {
    sigterm_under_load(None);
}

#[test]
fn sigterm_under_load_exits_0_with_every_accepted_request_answered_on_postgres() {
    let db = PgDatabase::new();
    sigterm_under_load(Some(&db.uri));
}

#[test]
fn a_postgres_backend_killed_mid_load_costs_at_most_its_request() {
    let db = PgDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), Some(&db.uri));
    let (exp, run) = seed(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads = load(server.port, &exp, &run, 4, &stop, &tally);
    let mut terminated = 0;
    for _ in 0..3 {
        wait_for_answers(&tally, 30);
        terminated += db.terminate_backends();
    }
    wait_for_answers(&tally, 30);
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(terminated > 0, "no backend was terminated");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died\n{}",
        server.log()
    );
    // Each killed backend can fail the one request running on it; idle
    // pooled connections that died are replaced without failing anyone.
    let failed = tally.server_errors.load(Ordering::SeqCst) + tally.dropped.load(Ordering::SeqCst);
    assert!(
        failed as i64 <= terminated,
        "{failed} failed requests for {terminated} terminated backends\n{}",
        server.log()
    );
    // And the server goes on answering.
    server.post(
        "/api/2.0/mlflow/runs/search",
        &format!(r#"{{"experiment_ids": ["{exp}"]}}"#),
    );
    let exit = server.wait_or_kill();
    assert!(exit.success(), "exit status {exit:?}\n{}", server.log());
}

impl Server {
    /// Stops the server with SIGTERM; its exit status.
    fn wait_or_kill(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait()
    }
}

/// Single log-metric calls from several threads (grouped into shared
/// commits by the store) are each acknowledged only once durable: after a
/// `kill -9` in the middle of the load, every acknowledged value is there.
fn acknowledged_single_writes_survive_kill_9(store_uri: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), store_uri);
    let (_, run) = seed(&server);
    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let (port, run) = (server.port, run.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let step = t * 1_000_000 + i;
                    let body = format!(
                        r#"{{"run_id": "{run}", "key": "m", "value": {i}, "timestamp": 1, "step": {step}}}"#
                    );
                    match http(port, "POST", "/api/2.0/mlflow/runs/log-metric", &body) {
                        Ok((200, _)) => acknowledged.lock().unwrap().push(step),
                        // Killed: this call and the ones after it may be lost.
                        _ => break,
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(60), "200 acknowledged writes", || {
        (acknowledged.lock().unwrap().len() >= 200).then_some(())
    });
    server.child.kill().unwrap(); // SIGKILL, with calls in flight
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let server = Server::start(dir.path(), store_uri);
    let (status, body) = http(
        server.port,
        "GET",
        &format!("/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=m&max_results=25000"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stored: std::collections::HashSet<u64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["step"]
                .as_str()
                .map_or_else(|| m["step"].as_u64().unwrap(), |s| s.parse().unwrap())
        })
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|s| !stored.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
}

#[test]
fn acknowledged_single_writes_survive_kill_9_on_sqlite() {
    acknowledged_single_writes_survive_kill_9(None);
}

#[test]
fn acknowledged_single_writes_survive_kill_9_on_postgres() {
    let db = PgDatabase::new();
    acknowledged_single_writes_survive_kill_9(Some(&db.uri));
}
