//! Golden files: the `statistics.json` and `constraints.json` written for a
//! fixed CSV, and the `constraint_violations.json` of a fixed broken window,
//! in SageMaker Model Monitor's schema (reference §1.2–1.4), byte for byte
//! as JSON values. `SEXTANT_BLESS=1` rewrites them after a deliberate change;
//! the diff is then the review.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sextant_monitor::profile::ProfileOptions;
use sextant_monitor::read::profile_csv;
use sextant_monitor::sagemaker::{Constraints, Statistics, check, write_baseline};

/// The golden files of the checkout the test runs in: cargo and nextest set
/// `CARGO_MANIFEST_DIR` when they run a test too, which stays right when one target
/// directory serves several checkouts (the compile-time value names the one it was
/// built in).
fn golden_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    Path::new(&dir).join("tests/golden")
}

/// 200 rows: an integral id-like count, a fractional price, a category with
/// three values and a missing cell in every 20th row.
fn baseline_csv() -> String {
    let mut csv = String::from("calls,price,plan\n");
    for i in 0..200u32 {
        let price = f64::from(i % 37) * 1.25 + 10.0;
        let plan = ["basic", "plus", "pro"][(i % 7 % 3) as usize];
        let calls = if i % 20 == 0 {
            String::new()
        } else {
            (i % 9).to_string()
        };
        csv.push_str(&format!("{calls},{price},{plan}\n"));
    }
    csv
}

/// Compares `actual` with the golden file `name`, or writes it when blessing.
fn golden(name: &str, actual: &Value) {
    let path = golden_dir().join(name);
    if std::env::var_os("SEXTANT_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SEXTANT_BLESS=1 writes it)", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        actual,
        &expected,
        "{name} differs from {}; actual:\n{}",
        path.display(),
        serde_json::to_string_pretty(actual).unwrap()
    );
}

#[test]
fn baseline_files_match_the_golden_sagemaker_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.csv");
    std::fs::write(&data, baseline_csv()).unwrap();
    let out = dir.path().join("baseline");
    let written = write_baseline(&data, &out, &[]).unwrap();
    assert_eq!(
        (written["rows"].as_u64(), written["features"].as_u64()),
        (Some(200), Some(3))
    );
    for file in ["statistics.json", "constraints.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap();
        golden(file, &v);
    }

    // The schema's landmarks, so a blessed file cannot drift away from SageMaker's.
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("statistics.json")).unwrap())
            .unwrap();
    assert_eq!(stats["dataset"]["item_count"], 200);
    let calls = &stats["features"][0];
    assert_eq!(
        (calls["name"].as_str(), calls["inferred_type"].as_str()),
        (Some("calls"), Some("Integral"))
    );
    let common = &calls["numerical_statistics"]["common"];
    assert_eq!(
        (
            common["num_present"].as_u64(),
            common["num_missing"].as_u64()
        ),
        (Some(190), Some(10))
    );
    let kll = &calls["numerical_statistics"]["distribution"]["kll"];
    assert!(kll["buckets"].as_array().is_some_and(|b| !b.is_empty()));
    assert!(kll["sketch"]["parameters"]["k"].is_number() && kll["sketch"]["data"].is_array());
    assert_eq!(stats["features"][2]["inferred_type"], "String");
    assert!(stats["features"][2]["string_statistics"]["distinct_count"].is_number());
    let constraints: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("constraints.json")).unwrap())
            .unwrap();
    assert!(constraints["monitoring_config"]["distribution_constraints"].is_object());
    assert_eq!(constraints["features"][0]["inferred_type"], "Integral");

    // Excluding the label leaves it out of both files.
    let without = dir.path().join("without");
    write_baseline(&data, &without, &["plan"]).unwrap();
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(without.join("statistics.json")).unwrap())
            .unwrap();
    assert_eq!(stats["features"].as_array().unwrap().len(), 2);
    let err = write_baseline(&data, &without, &["nope"]).unwrap_err();
    assert!(err.contains("no column named \"nope\""), "{err}");
}

#[test]
fn violations_of_a_broken_window_match_the_golden_file() {
    let opts = ProfileOptions::default();
    let base = profile_csv(baseline_csv().as_bytes(), "train.csv", opts).unwrap();
    let stats = Statistics::from_profile(&base);
    let constraints = Constraints::suggest(&stats);
    // Calls turn negative and fractional, a plan appears that was never seen,
    // prices go missing half the time, and a column arrives unannounced.
    let mut window = String::from("calls,price,plan,extra\n");
    for i in 0..100u32 {
        let price = if i % 2 == 0 {
            String::new()
        } else {
            format!("{}", 50 + i)
        };
        let plan = if i % 4 == 0 { "enterprise" } else { "basic" };
        window.push_str(&format!("{},{price},{plan},x\n", -1.5 * f64::from(i % 5)));
    }
    let current = profile_csv(window.as_bytes(), "window.csv", opts).unwrap();
    let found = check(&stats, &constraints, &current);
    let v = serde_json::to_value(&found).unwrap();
    golden("constraint_violations.json", &v);
    let kinds: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["constraint_check_type"].as_str().unwrap())
        .collect();
    for want in [
        "data_type_check",
        "completeness_check",
        "baseline_drift_check",
        "categorical_values_check",
        "extra_column_check",
    ] {
        assert!(kinds.contains(&want), "{want} not in {kinds:?}");
    }
}
