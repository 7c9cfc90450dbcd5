//! `sextant endpoints …` against a real server: apply a YAML definition,
//! predict through `/endpoints/{name}/invocations`, roll a new model out as
//! a canary that promotes itself after its bake, and the error of a bad file.

mod common;

use common::server::Server;
use common::{eventually, http};

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;

fn model(dir: &Path, name: &str, intercept: f64) -> String {
    let dir = dir.join(name);
    let model = LinearModel {
        coefficients: vec![1.0, 1.0, 1.0],
        intercept,
    };
    let names = ["a", "b", "c"].map(String::from).to_vec();
    let example = Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
    mlflow_model::save_linear(&dir, &model, &names, &example).unwrap();
    dir.display().to_string()
}

fn predict(server: &Server) -> f64 {
    let (status, body) = http(
        server.port,
        "POST",
        "/endpoints/churn/invocations",
        r#"{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    first_number(&v["predictions"]).unwrap_or_else(|| panic!("no prediction in {body}"))
}

/// The first number in a prediction, whatever its nesting.
fn first_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(items) => items.iter().find_map(first_number),
        Value::Object(m) => m.values().find_map(first_number),
        _ => None,
    }
}

#[test]
fn apply_predict_and_a_canary_that_promotes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let (v1, v2) = (model(d, "v1", 10.0), model(d, "v2", 20.0));
    let file = d.join("churn.yaml");
    std::fs::write(
        &file,
        format!(
            "name: churn\nvariants:\n  - model: {v1}\nrollout:\n  strategy: canary\n  percent: 20\n  bake: 1h\n"
        ),
    )
    .unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("endpoint churn: in_service"), "{shown}");
    assert_eq!(predict(&server), 16.0);

    let out = server.sextant(&[
        "endpoints",
        "update",
        "churn",
        "--model",
        &v2,
        "--bake",
        "300ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("rollout: canary"), "{shown}");
    let got = eventually(Duration::from_secs(60), "a promotion", || {
        let got = server.get("/api/v1/endpoints/churn");
        if got["rollout"].is_null() {
            return Ok(got);
        }
        predict(&server);
        Err(got)
    });
    assert_eq!(got["past_rollouts"][0]["status"], "succeeded", "{got}");
    assert_eq!(predict(&server), 26.0);
    let out = server.sextant(&["endpoints", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("churn") && listed.contains("v2"),
        "{listed}"
    );

    std::fs::write(&file, "name: churn\nvariants: []\n").unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least one variant"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.sextant(&["endpoints", "delete", "churn"]);
    assert!(out.status.success());
    let (status, _) = http(server.port, "POST", "/endpoints/churn/invocations", "{}").unwrap();
    assert_eq!(status, 404);
}

/// `PUT path` with a binary body; returns the status.
fn put_bytes(port: u16, path: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw[9..12]).parse().unwrap()
}

/// Registers `dir` as a new version of `name` through the server's MLflow API.
fn register(server: &Server, name: &str, dir: &str) -> i64 {
    let (_, run) = http(
        server.port,
        "POST",
        "/api/2.0/mlflow/runs/create",
        r#"{"experiment_id": "0"}"#,
    )
    .unwrap();
    let run: Value = serde_json::from_str(&run).unwrap();
    let root = run["run"]["info"]["artifact_uri"].as_str().unwrap();
    let rel = root.strip_prefix("mlflow-artifacts:/").unwrap();
    for f in ["MLmodel", "model.onnx"] {
        let bytes = std::fs::read(Path::new(dir).join(f)).unwrap();
        let status = put_bytes(
            server.port,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{rel}/model/{f}"),
            &bytes,
        );
        assert_eq!(status, 200);
    }
    http(
        server.port,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        &format!(r#"{{"name": "{name}"}}"#),
    )
    .unwrap();
    let (status, v) = http(
        server.port,
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        &serde_json::json!({"name": name, "source": format!("{root}/model"),
            "run_id": run["run"]["info"]["run_id"]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    v["model_version"]["version"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A `sextant gateway` process, killed when dropped.
struct GatewayProcess(std::process::Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the gateway until it answers `want` (60 s at most).
fn gateway_answers(port: u16, want: f64) {
    eventually(
        Duration::from_secs(60),
        &format!("the gateway to answer {want}"),
        || {
            let answer = http(
                port,
                "POST",
                "/invocations",
                r#"{"inputs": [[1.0, 2.0, 3.0]]}"#,
            );
            match answer {
                Ok((200, body)) => {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    (first_number(&v["predictions"]) == Some(want)).then_some(())
                }
                _ => None,
            }
        },
    )
}

#[test]
fn a_separate_gateway_follows_the_endpoint_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let first = register(&server, "churn", &model(d, "v1", 10.0));
    let out = server.sextant(&[
        "endpoints",
        "create",
        "churn",
        "--model",
        &format!("models:/churn/{first}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = common::free_port();
    let models = d.join("gateway-models");
    let child = std::process::Command::new(common::BIN)
        .args(["gateway", "--server", &server.url(), "--endpoint", "churn"])
        .args([
            "--port",
            &port.to_string(),
            "--poll-ms",
            "100",
            "--model-dir",
        ])
        .arg(&models)
        .env("SEXTANT_LOG", "warn")
        .spawn()
        .unwrap();
    let _gateway = GatewayProcess(child);
    gateway_answers(port, 16.0);

    let second = register(&server, "churn", &model(d, "v2", 20.0));
    let out = server.sextant(&[
        "endpoints",
        "update",
        "churn",
        "--model",
        &format!("models:/churn/{second}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gateway_answers(port, 26.0);
    assert!(models.join("churn/1/MLmodel").is_file());
    assert!(models.join("churn/2/model.onnx").is_file());
    let (status, _) = http(port, "GET", "/ping", "").unwrap();
    assert_eq!(status, 200);

    // A browser origin added to the definition gets CORS answers from the gateway too.
    let origin = "https://app.example.com";
    assert_eq!(allowed_origin(port, origin), None);
    let file = d.join("churn.yaml");
    std::fs::write(
        &file,
        format!(
            "name: churn\nvariants:\n  - model: models:/churn/{second}\nallowed_origins: [{origin}]\n"
        ),
    )
    .unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        Duration::from_secs(60),
        &format!("the gateway to answer CORS for {origin}"),
        || (allowed_origin(port, origin).as_deref() == Some(origin)).then_some(()),
    );
    assert_eq!(allowed_origin(port, "https://evil.example.com"), None);
}

/// The `Access-Control-Allow-Origin` of the gateway's answer to a prediction sent
/// with `Origin: origin`.
fn allowed_origin(port: u16, origin: &str) -> Option<String> {
    use std::io::{Read, Write};
    let body = r#"{"inputs": [[1.0, 2.0, 3.0]]}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let head = raw.split_once("\r\n\r\n").map_or(raw.as_str(), |(h, _)| h);
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("access-control-allow-origin")
            .then(|| value.trim().to_string())
    })
}

/// A model that loads but fails on every request: its weights do not fit its input.
fn broken_model(dir: &Path) -> String {
    use prost::Message;
    let dir = model(dir, "broken", 0.0);
    let path = Path::new(&dir).join("model.onnx");
    let mut m =
        sextant_train::onnx::pb::ModelProto::decode(&*std::fs::read(&path).unwrap()).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let w = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == "coefficients")
        .unwrap();
    w.dims = vec![4, 1];
    w.float_data = vec![1.0; 4];
    w.raw_data.clear();
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    dir
}

fn endpoint_yaml(version: i64) -> String {
    format!(
        "name: churn\nvariants:\n  - model: models:/churn/{version}\ncapture: {{sampling_percent: 100}}\n\
         rollout:\n  strategy: canary\n  percent: 50\n  bake: 10m\n  alarms: {{max_error_rate: 0.2, min_requests: 10}}\n"
    )
}

#[test]
fn a_separate_gateways_traffic_is_captured_and_rolls_a_bad_canary_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let good = register(&server, "churn", &model(d, "v1", 10.0));
    let file = d.join("churn.yaml");
    std::fs::write(&file, endpoint_yaml(good)).unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = common::free_port();
    let child = std::process::Command::new(common::BIN)
        .args(["gateway", "--server", &server.url(), "--endpoint", "churn"])
        .args(["--port", &port.to_string(), "--poll-ms", "100"])
        .args(["--capture-flush-ms", "100", "--model-dir"])
        .arg(d.join("gateway-models"))
        .env("SEXTANT_LOG", "warn")
        .spawn()
        .unwrap();
    let _gateway = GatewayProcess(child);
    gateway_answers(port, 16.0);

    // A broken version as a canary; only the gateway takes traffic, so only its
    // report can show the server's alarm the canary's errors.
    let bad = register(&server, "churn", &broken_model(d));
    std::fs::write(&file, endpoint_yaml(bad)).unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ended = eventually(Duration::from_secs(60), "the canary to roll back", || {
        let _ = http(
            port,
            "POST",
            "/invocations",
            r#"{"inputs": [[1.0, 2.0, 3.0]]}"#,
        );
        let (_, body) = http(server.port, "GET", "/api/v1/endpoints/churn", "").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["rollout"].is_null() && !v["past_rollouts"].as_array().unwrap().is_empty() {
            Ok(v)
        } else {
            Err(v)
        }
    });
    let last = ended["past_rollouts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "rolled_back", "{ended}");
    assert!(
        last["reason"].as_str().unwrap().contains("error rate"),
        "{last}"
    );
    assert_eq!(ended["deployed"]["primary"]["version"], good, "{ended}");
    // The server itself answered nothing: the verdict came from the gateway's counters.
    let served_here: u64 = ended["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(served_here, 0, "{ended}");
    gateway_answers(port, 16.0);

    // Its capture records reached the server's artifact store.
    let capture = d.join("data/artifacts/datacapture/churn");
    let record = eventually(
        Duration::from_secs(30),
        &format!("a capture file under {}", capture.display()),
        || first_capture_line(&capture.join("primary")),
    );
    let v: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(v["captureData"]["endpointInput"]["mode"], "INPUT", "{v}");
    assert!(v["eventMetadata"]["inferenceTime"].is_string(), "{v}");
}

/// The first line of the first capture file under `dir`, if any has been written.
fn first_capture_line(dir: &Path) -> Option<String> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read_to_string(&p).ok()?;
                if let Some(line) = text.lines().next() {
                    return Some(line.to_string());
                }
            }
        }
    }
    None
}

#[test]
fn show_prints_the_rollout_its_counters_and_the_traffic_history_and_apply_warns_of_unapproved_versions()
 {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let first = register(&server, "churn", &model(d, "v1", 10.0));
    let out = server.sextant(&[
        "endpoints",
        "create",
        "churn",
        "--model",
        &format!("models:/churn/{first}"),
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: models:/churn/{first} is not approved (its approval is pending)"
        )),
        "{stderr}"
    );

    // An approved version rolls out without a warning.
    let second = register(&server, "churn", &model(d, "v2", 20.0));
    let (status, body) = http(
        server.port,
        "POST",
        &format!("/api/v1/models/churn/versions/{second}/approval"),
        r#"{"status": "approved"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let out = server.sextant(&[
        "endpoints",
        "update",
        "churn",
        "--model",
        &format!("models:/churn/{second}"),
        "--strategy",
        "canary",
        "--percent",
        "50",
        "--bake",
        "1h",
    ]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..4 {
        predict(&server);
    }

    let out = server.sextant(&["endpoints", "show", "churn"]);
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    // The bake time left, and what each model of the rollout did so far.
    let rollout = shown
        .lines()
        .find(|l| l.starts_with("rollout: canary"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        rollout.starts_with(&format!(
            "rollout: canary models:/churn/{second} at 50%, bake "
        )) && rollout.ends_with(" left")
            && rollout.contains("59m"),
        "{shown}"
    );
    let counted = |prefix: &str| -> u64 {
        let line = shown
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {shown}"));
        let rest = line.trim_start().trim_start_matches(prefix).trim_start();
        assert!(rest.contains(" errors, 0 rejected, p99 "), "{line}");
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        counted("new model:") + counted("stable model:"),
        4,
        "{shown}"
    );
    // The traffic history, oldest first.
    let history: Vec<&str> = shown
        .lines()
        .skip_while(|l| *l != "traffic history:")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(history.len(), 2, "{shown}");
    assert!(
        history[0].contains("primary 100%") && history[0].ends_with("endpoint created"),
        "{shown}"
    );
    assert!(
        history[1].contains("primary 50%, primary-canary 50%")
            && history[1].ends_with(&format!(
                "Canary rollout of models:/churn/{second} into variant primary started"
            )),
        "{shown}"
    );

    // Promoted, the rollout keeps its counters and the canary leaves the variants.
    let out = server.sextant(&["endpoints", "promote", "churn"]);
    assert!(out.status.success());
    let out = server.sextant(&["endpoints", "show", "churn"]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    let past: Vec<&str> = shown
        .lines()
        .skip_while(|l| *l != "past rollouts:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(past.len(), 2, "{shown}");
    assert!(
        past[0].starts_with("STATUS") && past[0].contains("NEW REQ/ERR/REJ"),
        "{shown}"
    );
    assert!(
        past[1].starts_with("succeeded")
            && past[1].contains(&format!("models:/churn/{first}  models:/churn/{second}"))
            && past[1].ends_with("promoted by hand"),
        "{shown}"
    );
    let variants: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("VARIANT"))
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(variants, ["primary"], "{shown}");
}

/// Not a test on its own: when `SEXTANT_PING_STUB_PORT` is set, answers every request
/// on that port 200 (a `/ping` that passes), until the file `SEXTANT_PING_STUB_GO` is
/// gone (the test's directory removed).
#[test]
fn ping_stub_child() {
    let (Ok(port), Ok(go)) = (
        std::env::var("SEXTANT_PING_STUB_PORT"),
        std::env::var("SEXTANT_PING_STUB_GO"),
    ) else {
        return;
    };
    let listener = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    listener.set_nonblocking(true).unwrap();
    while Path::new(&go).exists() {
        match listener.accept() {
            Ok((mut s, _)) => {
                use std::io::{Read, Write};
                s.set_nonblocking(false).unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1\r\nconnection: close\r\n\r\n\n",
                );
            }
            // Nothing to answer: look again shortly (the stub's own pace, not the test's).
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A stand-in for `mlflow models serve -m DIR -p PORT …` on a server's PATH: the child
/// serving model directory `…/NAME` starts answering /ping once [`ProcessStub::go`] is
/// called with NAME, so a test can first see the CLI say it waits for that.
struct ProcessStub {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
}

impl ProcessStub {
    fn new(d: &Path) -> ProcessStub {
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let stub = bin.join("mlflow");
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\ngo=\"{dir}/GO-$(basename \"$4\")\"\n\
                 while [ ! -e \"$go\" ]; do sleep 0.1; done\n\
                 exec env SEXTANT_PING_STUB_PORT=\"$6\" SEXTANT_PING_STUB_GO=\"$go\" '{exe}' ping_stub_child --exact --nocapture\n",
                dir = d.display(),
                exe = std::env::current_exe().unwrap().display(),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        ProcessStub {
            dir: d.to_path_buf(),
            bin,
        }
    }

    /// A server whose PATH finds the stub first.
    fn server(&self) -> Server {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Server::start_with_env(&self.dir, [("PATH", path)])
    }

    /// Lets the child serving model directory `…/name` answer /ping.
    fn go(&self, name: &str) {
        std::fs::write(self.dir.join(format!("GO-{name}")), "").unwrap();
    }
}

/// Runs the CLI with `args` until it says on stderr that it is waiting for `what`, then
/// lets `model`'s child answer and returns the CLI's stdout once it succeeded.
fn says_it_waits(
    server: &Server,
    stub: &ProcessStub,
    args: &[&str],
    what: &str,
    model: &str,
) -> String {
    use std::io::{BufRead, BufReader};
    let mut cli = server
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(cli.stderr.take().unwrap());
    let want = format!("waiting for {what}");
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "the CLI ended without saying what it waits for: {said}"
        );
        said.push_str(&line);
        if line.starts_with(&want) {
            assert!(line.trim_end().ends_with(" s"), "{line}");
            break;
        }
    }
    stub.go(model);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{said}{rest}\nserver log:\n{}",
        server.log()
    );
    // No spinner when stderr is not a terminal: whole lines only.
    assert!(!format!("{said}{rest}").contains('\r'), "{said}{rest}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn create_with_the_process_runtime_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model(d, "v1", 10.0);
    let stub = ProcessStub::new(d);
    let server = stub.server();
    let shown = says_it_waits(
        &server,
        &stub,
        &[
            "endpoints",
            "create",
            "churn",
            "--model",
            &m,
            "--runtime",
            "process",
        ],
        &format!("variant 'primary' (mlflow models serve of {m}) to answer /ping"),
        "v1",
    );
    assert!(shown.contains("endpoint churn: in_service"), "{shown}");
    let out = server.sextant(&["endpoints", "delete", "churn"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn apply_and_update_with_the_process_runtime_say_what_they_wait_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (m1, m2) = (model(d, "v1", 10.0), model(d, "v2", 20.0));
    let stub = ProcessStub::new(d);
    let server = stub.server();
    let file = d.join("churn.yaml");
    std::fs::write(
        &file,
        format!("name: churn\nvariants:\n  - name: blue\n    model: {m1}\n    runtime: process\n"),
    )
    .unwrap();
    let shown = says_it_waits(
        &server,
        &stub,
        &["endpoints", "apply", file.to_str().unwrap()],
        &format!("variant 'blue' (mlflow models serve of {m1}) to answer /ping"),
        "v1",
    );
    assert!(shown.contains("endpoint churn: in_service"), "{shown}");

    let shown = says_it_waits(
        &server,
        &stub,
        &[
            "endpoints",
            "update",
            "churn",
            "--model",
            &m2,
            "--strategy",
            "all_at_once",
        ],
        &format!("variant 'blue' (mlflow models serve of {m2}) to answer /ping"),
        "v2",
    );
    assert!(shown.contains(&format!("blue={m2}")), "{shown}");
    let out = server.sextant(&["endpoints", "delete", "churn"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
