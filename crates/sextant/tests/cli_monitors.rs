//! `sextant monitors …` against a server, as a user runs it: readable text
//! for create and show, a failed run exits non-zero, mistakes in a file are
//! reported with the file's name, line and column, and data outside the
//! server's data roots is refused.

mod common;

use std::path::Path;

use common::server::Server;

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
