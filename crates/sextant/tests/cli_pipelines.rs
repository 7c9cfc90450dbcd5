//! `sextant pipelines validate` driven as a process.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sextant");

fn validate(file: &Path, json: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["pipelines", "validate"])
        .arg(file)
        .env_remove("SEXTANT_LOG");
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn the_example_is_ok() {
    let file = Path::new(&manifest_dir()).join("../../examples/pipelines/housing.yml");
    let out = validate(&file, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: pipeline 'housing', 6 steps\n");
    let out = validate(&file, true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["steps"], 6);
}

#[test]
fn errors_have_file_line_and_column_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "name: p\nsteps:\n  a:\n    run: echo ${params.x}\n    retyr: {attempts: 2}\n",
    )
    .unwrap();
    let out = validate(&file, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let f = file.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:4:15: unknown parameter 'x' in '${{params.x}}'\n\
             {f}:5:5: unknown key 'retyr' in step 'a' (did you mean 'retry'?)\n\
             error: {f}: 2 error(s)\n"
        )
    );
    let out = validate(&file, true);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"][1]["line"], 5);
    assert_eq!(v["errors"][1]["col"], 5);
}

#[test]
fn garbage_and_missing_files_fail_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junk.yml");
    std::fs::write(&file, "{[: \u{0}\t- ]").unwrap();
    let out = validate(&file, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid YAML"),
        "{}",
        text(&out.stderr)
    );
    let out = validate(&dir.path().join("missing.yml"), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).contains("panicked"));
}

/// This crate's directory, read when the test runs (cargo and nextest set it):
/// a binary built from another checkout of the same sources is reused by
/// cargo, and the compile-time value would point at that checkout.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
