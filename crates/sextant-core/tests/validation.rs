//! MLflow's validation rules, with the messages the real server sends
//! (see `validation_probe.out` in the reference traces).

use proptest::prelude::*;
use sextant_core::Error;
use sextant_core::entities::Dataset;
use sextant_core::validation::*;

fn msg(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::InvalidParameter(m)) => m,
        other => panic!("expected INVALID_PARAMETER_VALUE, got {other:?}"),
    }
}

#[test]
fn keys_accept_mlflow_names() {
    for key in [
        "loss",
        "train/loss",
        "a.b-c_d e",
        "epoch:1",
        "a/b/c",
        "métrique",
        "损失",
        "x²",
        ".hidden",
        "a..b",
        "loss\n", // Python's `$` matches before a final newline
    ] {
        for what in ["metric", "param", "tag"] {
            assert_eq!(validate_key(what, key), Ok(()), "{what} {key:?}");
        }
    }
    assert_eq!(validate_key("param", &"k".repeat(250)), Ok(()));
    assert_eq!(validate_key("param", &"é".repeat(250)), Ok(()));
}

#[test]
fn bad_characters_are_refused_with_mlflow_message() {
    assert_eq!(
        msg(validate_key("param", "a$b")),
        "Invalid value \"a$b\" for parameter 'key' supplied: Names may only contain alphanumerics, \
         underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
    );
    assert!(
        msg(validate_key("metric", "a(b)"))
            .starts_with("Invalid value \"a(b)\" for parameter 'name' supplied: ")
    );
    for key in ["a\\b", "a\tb", "a\n\n", "x@y", "a,b", "\nb"] {
        assert!(validate_key("tag", key).is_err(), "{key:?}");
    }
    // Non-ASCII is rendered as json.dumps renders it.
    assert!(
        msg(validate_key("tag", "é$"))
            .starts_with("Invalid value \"\\u00e9$\" for parameter 'key'")
    );
}

#[test]
fn names_that_resolve_to_other_files_are_refused() {
    assert_eq!(
        msg(validate_key("param", "../x")),
        "Invalid value \"../x\" for parameter 'key' supplied: Names may be treated as files in \
         certain cases, and must not resolve to other names when treated as such. This name would \
         resolve to '../x'"
    );
    assert!(msg(validate_key("metric", "a/../b")).ends_with("This name would resolve to 'b'"));
    assert!(msg(validate_key("metric", "a//b")).ends_with("This name would resolve to 'a/b'"));
    assert!(msg(validate_key("metric", "./a")).ends_with("This name would resolve to 'a'"));
    assert!(msg(validate_key("metric", "a/")).ends_with("This name would resolve to 'a'"));
    assert!(msg(validate_key("metric", "/abs")).ends_with("This name would resolve to '/abs'"));
    assert!(msg(validate_key("metric", "//abs")).ends_with("This name would resolve to '//abs'"));
    for key in ["../bad", ".", "..", "...", "a/.", "a/./b", "/", "../"] {
        for what in ["metric", "param", "tag"] {
            assert!(validate_key(what, key).is_err(), "{what} {key:?}");
        }
    }
}

#[test]
fn normpath_matches_python() {
    for (input, want) in [
        ("", "."),
        ("a", "a"),
        ("a/b/", "a/b"),
        ("a/../..", ".."),
        ("../a/../b", "../b"),
        ("/../a", "/a"),
        ("///a//b", "/a/b"),
        ("//a", "//a"),
        ("a/./b/.", "a/b"),
        ("..", ".."),
        ("a/..", "."),
    ] {
        assert_eq!(posix_normpath(input), want, "{input:?}");
    }
}

#[test]
fn empty_key_is_a_missing_value() {
    assert_eq!(
        msg(validate_key("param", "")),
        "Missing value for required parameter 'key'. See the API docs for more information about \
         request parameters."
    );
    assert!(
        msg(validate_key("metric", "")).starts_with("Missing value for required parameter 'key'.")
    );
    assert!(
        msg(validate_key_at("metric", "", "metrics[2].name"))
            .starts_with("Missing value for required parameter 'metrics[2].key'.")
    );
}

#[test]
fn key_length_limit_names_the_entity() {
    let long = "k".repeat(251);
    assert_eq!(
        msg(validate_key("param", &long)),
        "'Param key' exceeds the maximum length of 250 characters"
    );
    assert_eq!(
        msg(validate_key("metric", &long)),
        "'Metric name' exceeds the maximum length of 250 characters"
    );
    assert_eq!(
        msg(validate_key("tag", &long)),
        "'key' exceeds the maximum length of 250 characters"
    );
    assert_eq!(
        msg(validate_key_at("tag", &long, "tags[0].key")),
        "'tags[0].key' exceeds the maximum length of 250 characters"
    );
    assert!(
        msg(validate_key_at("param", "a$", "params[4].key"))
            .contains("for parameter 'params[4].key'")
    );
}

#[test]
fn metric_timestamp_must_be_nonnegative() {
    assert_eq!(validate_metric_timestamp("m", 1.0, 0), Ok(()));
    assert_eq!(
        msg(validate_metric_timestamp("m", 1.0, -1)),
        "Invalid value -1 for parameter 'timestamp' supplied: metric 'm' (value=1.0). Timestamp \
         must be a nonnegative long (64-bit integer) "
    );
    assert!(
        msg(validate_metric_timestamp_at(
            "m",
            0.5,
            -2,
            "metrics[1].timestamp"
        ))
        .contains("'metrics[1].timestamp'")
    );
}

#[test]
fn float_repr_matches_python() {
    for (v, want) in [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (123456789012345.0, "123456789012345.0"),
        (1e15, "1000000000000000.0"),
        (f64::NAN, "nan"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (0.0, "0.0"),
        (1.23e-7, "1.23e-07"),
        (1e300, "1e+300"),
    ] {
        assert_eq!(python_float_repr(v), want, "{v}");
    }
}

#[test]
fn batch_limits() {
    assert_eq!(validate_batch_limits(1000, 0, 0), Ok(()));
    assert_eq!(validate_batch_limits(800, 100, 100), Ok(()));
    assert_eq!(
        msg(validate_batch_limits(1001, 0, 0)),
        "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please split \
         up metrics across multiple requests and try again."
    );
    assert_eq!(
        msg(validate_batch_limits(0, 101, 0)),
        "A batch logging request can contain at most 100 params. Got 101 params. Please split up \
         params across multiple requests and try again."
    );
    assert!(msg(validate_batch_limits(0, 0, 101)).contains("at most 100 tags. Got 101 tags."));
    assert_eq!(
        msg(validate_batch_limits(900, 100, 1)),
        "A batch logging request can contain at most 1000 metrics, params, and tags. Got 1001 \
         metrics, params, and tags. Please split up metrics, params, and tags across multiple \
         requests and try again."
    );
    assert_eq!(validate_batch_request_size(1_000_000), Ok(()));
    assert!(validate_batch_request_size(1_000_001).is_err());
}

#[test]
fn truncation_counts_characters_and_respects_boundaries() {
    assert_eq!(truncate_param_value("short"), "short");
    assert_eq!(truncate_param_value(&"a".repeat(7000)).len(), 6000);
    assert_eq!(truncate_tag_value(&"a".repeat(9000)).len(), 8000);

    let multi = "é".repeat(7000); // 2 bytes each
    let cut = truncate_param_value(&multi);
    assert_eq!(cut.chars().count(), 6000);
    assert_eq!(cut.len(), 12000);

    let emoji = "🦀".repeat(8001); // 4 bytes each
    let cut = truncate_tag_value(&emoji);
    assert_eq!(cut.chars().count(), 8000);
    assert!(cut.chars().all(|c| c == '🦀'));

    // Exactly at the limit in characters but over it in bytes: untouched.
    let at_limit = "日".repeat(6000);
    assert_eq!(truncate_param_value(&at_limit), at_limit);

    // A mix whose byte offset 6000 would fall inside a character.
    let mixed = format!("{}{}", "a".repeat(5999), "€€€");
    assert_eq!(
        truncate_param_value(&mixed),
        format!("{}€", "a".repeat(5999))
    );
}

proptest! {
    #[test]
    fn truncation_is_a_char_prefix(s in "\\PC{0,40}", limit_hint in 0usize..3) {
        let long = s.repeat(300 + limit_hint * 100);
        let cut = truncate_param_value(&long);
        prop_assert!(long.starts_with(&cut));
        prop_assert_eq!(cut.chars().count(), long.chars().count().min(6000));
    }
}

#[test]
fn run_ids() {
    for ok in ["0123456789abcdef0123456789abcdef", "a", "A-b_c", "r_ü"] {
        assert_eq!(validate_run_id(ok), Ok(()), "{ok}");
    }
    assert_eq!(validate_run_id(&format!("a{}", "b".repeat(255))), Ok(()));
    assert!(validate_run_id(&format!("a{}", "b".repeat(256))).is_err());
    assert_eq!(
        msg(validate_run_id("../etc")),
        "Invalid value \"../etc\" for parameter 'run_id' supplied."
    );
    for bad in ["", "_a", "-a", "a/b", "a.b", "a b", "ü"] {
        assert!(validate_run_id(bad).is_err(), "{bad:?}");
    }
    assert_eq!(validate_experiment_id("123"), Ok(()));
    assert_eq!(
        msg(validate_experiment_id("a b")),
        "Invalid experiment ID: 'a b'"
    );
}

#[test]
fn experiment_ids_parse_like_python_int() {
    assert_eq!(parse_experiment_id("0"), Ok(0));
    assert_eq!(parse_experiment_id("42"), Ok(42));
    assert_eq!(parse_experiment_id(" 7 "), Ok(7));
    assert_eq!(parse_experiment_id("+3"), Ok(3));
    assert_eq!(parse_experiment_id("1_000"), Ok(1000));
    assert_eq!(parse_experiment_id("-1"), Ok(-1));
    assert_eq!(
        msg(parse_experiment_id("abc")),
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    );
    for bad in [
        "",
        " ",
        "1.0",
        "1e3",
        "_1",
        "1_",
        "1__0",
        "0x10",
        "99999999999999999999",
        "+",
    ] {
        assert!(parse_experiment_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn experiment_names() {
    assert_eq!(validate_experiment_name("exp"), Ok(()));
    assert_eq!(validate_experiment_name(&"é".repeat(500)), Ok(()));
    assert_eq!(
        msg(validate_experiment_name("")),
        "Invalid experiment name: ''"
    );
    assert_eq!(
        msg(validate_experiment_name(&"n".repeat(501))),
        "'name' exceeds the maximum length of 500 characters"
    );
}

#[test]
fn experiment_tags() {
    assert_eq!(
        validate_experiment_tag("mlflow.note.content", &"v".repeat(5000)),
        Ok(())
    );
    assert_eq!(
        msg(validate_experiment_tag("k", &"v".repeat(5001))),
        "'value' exceeds the maximum length of 5000 characters"
    );
    assert_eq!(
        msg(validate_experiment_tag(&"k".repeat(251), "v")),
        "'key' exceeds the maximum length of 250 characters"
    );
    assert!(msg(validate_experiment_tag("../k", "v")).contains("must not resolve to other names"));
    assert!(msg(validate_experiment_tag("k!", "v")).contains("Names may only contain"));
    assert!(validate_experiment_tag("", "v").is_err());
}

#[test]
fn artifact_locations() {
    for ok in [
        "s3://bucket/path",
        "/tmp/artifacts",
        "file:///tmp/x",
        "mlflow-artifacts:/1",
        "http://host/a?b=c",
        "",
    ] {
        assert_eq!(validate_artifact_location(ok), Ok(()), "{ok}");
    }
    assert_eq!(
        msg(validate_artifact_location("runs:/abc/model")),
        "Artifact location cannot be a runs:/ URI. Given: 'runs:/abc/model'"
    );
    for frag in [
        "http://host#/abc/etc/",
        "http://host/;..%2F..%2Fetc",
        "/tmp/x#frag",
        "/tmp/a;b",
    ] {
        assert_eq!(
            msg(validate_artifact_location(frag)),
            "'artifact_location' URL can't include fragments or params.",
            "{frag}"
        );
    }
    assert_eq!(
        msg(validate_artifact_location("http://host/p?x=..")),
        "Invalid query string"
    );
    assert_eq!(
        msg(validate_artifact_location("http://host/p?x=%252E%252E")),
        "Invalid query string"
    );
    assert_eq!(
        validate_artifact_location(&format!("s3://b/{}", "a".repeat(2041))),
        Ok(())
    );
    assert!(
        msg(validate_artifact_location(&format!(
            "s3://b/{}",
            "a".repeat(2042)
        )))
        .starts_with("Invalid artifact path length.")
    );
}

#[test]
fn datasets() {
    let ok = Dataset {
        name: "d".repeat(500),
        digest: "x".repeat(36),
        source_type: "local".into(),
        source: "{}".into(),
        schema: Some("s".into()),
        profile: None,
    };
    assert_eq!(validate_dataset(&ok), Ok(()));
    let with = |f: &dyn Fn(&mut Dataset)| {
        let mut d = ok.clone();
        f(&mut d);
        msg(validate_dataset(&d))
    };
    assert_eq!(
        with(&|d| d.name.push('d')),
        "'name' exceeds the maximum length of 500 characters"
    );
    assert_eq!(
        with(&|d| d.digest.push('x')),
        "'digest' exceeds the maximum length of 36 characters"
    );
    assert_eq!(
        with(&|d| d.source = "s".repeat(65536)),
        "'source' exceeds the maximum length of 65535 characters"
    );
    assert_eq!(
        with(&|d| d.schema = Some("s".repeat(1_048_576))),
        "'schema' exceeds the maximum length of 1048575 characters"
    );
    assert_eq!(
        with(&|d| d.profile = Some("p".repeat(16_777_216))),
        "'profile' exceeds the maximum length of 16777215 characters"
    );
    assert_eq!(
        validate_input_tag(&"k".repeat(255), &"v".repeat(500)),
        Ok(())
    );
    assert_eq!(
        msg(validate_input_tag(&"k".repeat(256), "v")),
        "'key' exceeds the maximum length of 255 characters"
    );
    assert_eq!(
        msg(validate_input_tag("k", &"v".repeat(501))),
        "'value' exceeds the maximum length of 500 characters"
    );
}

#[test]
fn registry_rules() {
    assert_eq!(validate_model_name("iris-model"), Ok(()));
    assert_eq!(
        msg(validate_model_name("a/b")),
        "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
    );
    assert_eq!(
        msg(validate_model_name(" ")),
        "Missing value for required parameter 'name'."
    );
    assert_eq!(
        msg(validate_model_new_name("")),
        "Missing value for required parameter 'new_name'."
    );
    assert!(msg(validate_model_name("..")).contains("This name would resolve to '..'"));

    assert_eq!(parse_model_version("3"), Ok(3));
    assert_eq!(
        msg(parse_model_version("x")),
        "Parameter 'version' must be an integer, got 'x'."
    );

    assert_eq!(validate_model_alias("champion"), Ok(()));
    assert_eq!(validate_model_alias("v1a"), Ok(()));
    assert_eq!(
        msg(validate_model_alias("latest")),
        "'latest' alias name (case insensitive) is reserved."
    );
    assert_eq!(
        msg(validate_model_alias("LaTeSt")),
        "'latest' alias name (case insensitive) is reserved."
    );
    assert_eq!(
        msg(validate_model_alias("v1")),
        "Version alias name 'v1' is reserved."
    );
    assert_eq!(
        msg(validate_model_alias("V22")),
        "Version alias name 'V22' is reserved."
    );
    assert_eq!(
        msg(validate_model_alias("")),
        "Registered model alias name cannot be empty."
    );
    assert_eq!(
        msg(validate_model_alias("a.b")),
        "Invalid alias name: 'a.b'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
    );
    assert_eq!(
        msg(validate_model_alias(&"a".repeat(256))),
        "'Registered model alias name' exceeds the maximum length of 255 characters"
    );

    assert_eq!(
        validate_registered_model_tag("k", &"v".repeat(100_000)),
        Ok(())
    );
    assert_eq!(
        msg(validate_registered_model_tag("k", &"v".repeat(100_001))),
        "'value' exceeds the maximum length of 100000 characters"
    );
    assert_eq!(
        msg(validate_model_version_tag(
            "mlflow.prompt.text",
            &"v".repeat(100_001)
        )),
        "Prompt text exceeds max length of 100000 characters."
    );
    assert!(validate_model_version_tag("a$", "v").is_err());
}

#[test]
fn json_rendering_matches_python_json_dumps() {
    assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(json_string("tab\tnl\n"), r#""tab\tnl\n""#);
    assert_eq!(json_string("\u{1}"), r#""\u0001""#);
    assert_eq!(json_string("\u{7f}"), r#""\u007f""#);
    assert_eq!(json_string("🦀"), r#""\ud83e\udd80""#);
}

#[test]
fn model_version_sources_refuse_relative_paths() {
    use sextant_core::validation::{
        is_local_uri, validate_prompt_source, validate_source_has_no_relative_paths,
    };
    for ok in [
        "mlflow-artifacts:/0/abc/artifacts/model",
        "s3://bucket/path/to/model",
        "runs:/abc/model",
        "models:/m-123",
        "https://host/api/2.0/mlflow-artifacts/artifacts/0/x",
    ] {
        validate_source_has_no_relative_paths(ok).unwrap();
    }
    for bad in [
        "mlflow-artifacts:/0/abc/artifacts/../../../../etc",
        "mlflow-artifacts:/0/abc/artifacts/%2e%2e/%2e%2e/etc",
        "mlflow-artifacts:/0/abc/artifacts/%252e%252e/x",
        "mlflow-artifacts://host:5000/..%2f..%2fetc",
        "http://host/api/2.0/mlflow-artifacts/artifacts%00",
        "s3:/my_bucket/models/path/../../other/path",
        "s3://bucket/a/./b",
        "s3://bucket/a\\..\\b",
        "dummy-source",
        "relative/path",
        "runs:/abc/../../x",
    ] {
        assert!(
            validate_source_has_no_relative_paths(bad).is_err(),
            "{bad} should be refused"
        );
    }
    assert!(is_local_uri("/etc/passwd").unwrap());
    assert!(is_local_uri("file:///etc/passwd").unwrap());
    assert!(is_local_uri("file://localhost/etc").unwrap());
    assert!(!is_local_uri("s3://b/k").unwrap());
    let err = is_local_uri("file://evil.example/etc/passwd").unwrap_err();
    assert!(err.to_string().contains("is not a valid remote uri"));
    validate_prompt_source("dummy-source").unwrap();
    for bad in ["/etc/passwd", "file:///etc", "..", "a/b", "%2fetc"] {
        assert!(validate_prompt_source(bad).is_err(), "{bad}");
    }
}
