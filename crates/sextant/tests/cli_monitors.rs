//! `sextant monitors …` against a server, as a user runs it: readable text
//! for create and show, a failed run exits non-zero, mistakes in a file are
//! reported with the file's name, line and column, data outside the
//! server's data roots is refused, and a run that judged model quality
//! prints its metrics.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::server::Server;
use sextant_train::data::Matrix;
use sextant_train::linear::LinearModel;
use sextant_train::mlflow_model;

fn data_set(path: &Path, rows: usize) {
    let mut csv = String::from("x,c\n");
    for i in 0..rows {
        csv.push_str(&format!("{},{}\n", i % 13, ["a", "b", "c"][i % 3]));
    }
    std::fs::write(path, csv).unwrap();
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn monitors_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (base, window) = (dir.path().join("base.csv"), dir.path().join("window.csv"));
    data_set(&base, 300);
    data_set(&window, 200);
    let baseline = dir.path().join("baseline");
    let out = server.sextant(&[
        "monitors",
        "baseline",
        "--data",
        base.to_str().unwrap(),
        "--out",
        baseline.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = server.sextant(&[
        "monitors",
        "create",
        "nightly",
        "--data",
        window.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--min-rows",
        "1000",
        "--drift-share",
        "0.3",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(stdout.starts_with("monitor nightly\n"), "{stdout}");
    assert!(stdout.contains("at least 1000 rows"), "{stdout}");
    assert!(stdout.contains("share 0.3"), "{stdout}");
    assert!(!stdout.contains("{\""), "a JSON blob: {stdout}");

    // 200 rows, fewer than min_rows: the run fails, and so does the command.
    let out = server.sextant(&["monitors", "run", "nightly"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(": Failed (window "), "{stdout}");
    assert!(!stdout.contains("null"), "{stdout}");
    assert!(stderr.contains("fewer than min_rows 1000"), "{stderr}");

    let out = server.sextant(&["monitors", "show", "nightly"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("watches:   data set") && stdout.contains("last run:"),
        "{stdout}"
    );

    // Every mistake of a file, at its line and column, named as a monitor's.
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nendpoint: x\nwindoww: 1h\nmin_rows: many\n",
    )
    .unwrap();
    let out = server.sextant(&["monitors", "apply", file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    let label = file.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{label}:3:1: unknown key 'windoww' in the monitor definition (did you mean 'window'?)"
        )) && stderr.contains(&format!("{label}:4:11: min_rows: expected")),
        "{stderr}"
    );
    std::fs::write(&file, "name: bad\nendpoint: [x\n").unwrap();
    let out = server.sextant(&["monitors", "apply", file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("the monitor definition is not valid YAML"),
        "{stderr}"
    );

    // Model quality needs its label column.
    let out = server.sextant(&[
        "monitors",
        "create",
        "q",
        "--endpoint",
        "e",
        "--problem-type",
        "Regression",
    ]);
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("--label"),
        "{stderr}"
    );

    // A file outside the server's data roots is refused, naming the rule.
    let elsewhere = tempfile::tempdir().unwrap();
    let secret = elsewhere.path().join("secret.csv");
    data_set(&secret, 10);
    let out = server.sextant(&[
        "monitors",
        "create",
        "leak",
        "--data",
        secret.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("outside the directories the server reads from")
            && stderr.contains("--data-root"),
        "{stderr}"
    );
}

/// The features of request `i` of the model-quality test: small integers,
/// so the model's predictions (their sum) are exact.
fn features(i: usize) -> [usize; 3] {
    [i % 5, i % 4, i % 3]
}

/// One prediction of endpoint `churn` for `row`, sent with inference id `id`.
fn invoke(port: u16, id: &str, row: [usize; 3]) {
    let body = format!(
        r#"{{"dataframe_split": {{"columns": ["a", "b", "c"], "data": [[{}, {}, {}]]}}}}"#,
        row[0], row[1], row[2]
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /endpoints/churn/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nx-inference-id: {id}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}

#[test]
fn a_run_that_judged_model_quality_prints_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    const N: usize = 20;

    // A `y = a + b + c` model, its baseline from the rows it will be sent,
    // and an endpoint capturing every request.
    let model = d.join("model");
    mlflow_model::save_linear(
        &model,
        &LinearModel {
            coefficients: vec![1.0, 1.0, 1.0],
            intercept: 0.0,
        },
        &["a", "b", "c"].map(String::from),
        &Matrix::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap(),
    )
    .unwrap();
    let mut csv = String::from("a,b,c\n");
    for i in 0..N {
        let [a, b, c] = features(i);
        csv.push_str(&format!("{a},{b},{c}\n"));
    }
    let data = d.join("train.csv");
    std::fs::write(&data, csv).unwrap();
    let baseline = d.join("baseline");
    let out = server.sextant(&[
        "monitors",
        "baseline",
        "--data",
        data.to_str().unwrap(),
        "--out",
        baseline.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let file = d.join("churn.yaml");
    std::fs::write(
        &file,
        format!(
            "name: churn\nvariants:\n  - model: {}\ncapture: {{sampling_percent: 100}}\n",
            model.display()
        ),
    )
    .unwrap();
    let out = server.sextant(&["endpoints", "apply", file.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = server.sextant(&[
        "monitors",
        "create",
        "churn-watch",
        "--endpoint",
        "churn",
        "--baseline",
        baseline.to_str().unwrap(),
        "--problem-type",
        "Regression",
        "--label",
        "y",
        "--fail-above",
        "mae=0.5",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(
        stdout.contains("model quality (Regression, label y; mae > 0.5 fails)"),
        "{stdout}"
    );

    for i in 0..N {
        invoke(server.port, &format!("id-{i}"), features(i));
    }
    // Before any label arrives the run says so, and is not a failure.
    let out = server.sextant(&["monitors", "run", "churn-watch"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l == "  model quality: no captured prediction has an uploaded label yet"),
        "{stdout}"
    );

    // Every label off by exactly one, alternately up and down.
    let labels: String = (0..N)
        .map(|i| {
            let y = features(i).iter().sum::<usize>() as f64 + if i % 2 == 0 { 1.0 } else { -1.0 };
            format!("{{\"inference_id\": \"id-{i}\", \"label\": {y}}}\n")
        })
        .collect();
    let truth = d.join("truth.jsonl");
    std::fs::write(&truth, labels).unwrap();
    let out = server.sextant(&[
        "endpoints",
        "ground-truth",
        "churn",
        truth.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "20 labels stored for endpoint 'churn'\n");

    // mae = mse = rmse = 1; the labels' sum of squares about their mean is
    // 76.95, so r2 = 1 - 20 / 76.95. A violation, not a failure: exit 0.
    let out = server.sextant(&["monitors", "run", "churn-watch"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains(": CompletedWithViolations (20 rows, window "),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l
            == "  model quality (20 labelled predictions): mae 1.0000, mse 1.0000, r2 0.7401, rmse 1.0000"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  model_quality_check mae: ")),
        "{stdout}"
    );
    // Nothing drifted: said without an empty list.
    assert!(
        stdout.lines().any(|l| l == "  drift: 0 of 3 features"),
        "{stdout}"
    );

    // The same numbers at full precision in --json.
    let out = server.sextant(&["monitors", "show", "churn-watch", "--json"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let quality = &shown["last_run"]["summary"]["model_quality"];
    assert_eq!(quality["joined"], 20, "{shown}");
    let r2 = quality["metrics"]["regression_metrics"]["r2"]["value"]
        .as_f64()
        .unwrap();
    assert!((r2 - (1.0 - 20.0 / 76.95)).abs() < 1e-9, "{r2}");
}
