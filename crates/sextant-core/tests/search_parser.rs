//! The search grammar through its public surface: MLflow's documented and
//! tricky examples, error messages clients match on, and properties (no
//! input panics; `Display` output parses back to the same AST).

use proptest::prelude::*;
use sextant_core::Error;
use sextant_core::search::{
    Aggregate, Comparator, Comparison, Entity, Filter, Identifier, OrderBy, SearchKind, Value,
    parse_filter, parse_filter_located, parse_order_by, parse_order_by_list,
};

use SearchKind::{Experiments, LoggedModels, ModelVersions, RegisteredModels, Runs};

fn ident(entity: Entity, key: &str) -> Identifier {
    Identifier::new(entity, key)
}

fn cmp(entity: Entity, key: &str, op: Comparator, value: Value) -> Comparison {
    Comparison {
        ident: ident(entity, key),
        op,
        value,
    }
}

fn ok(kind: SearchKind, input: &str) -> Vec<Comparison> {
    match parse_filter(kind, input) {
        Ok(f) => f.clauses,
        Err(e) => panic!("{input:?} should parse for {kind:?}: {e}"),
    }
}

/// The error message for an input that must be rejected.
fn err(kind: SearchKind, input: &str) -> String {
    match parse_filter(kind, input) {
        Err(Error::InvalidParameter(m)) => m,
        other => panic!("{input:?} should be rejected for {kind:?}, got {other:?}"),
    }
}

fn order_err(kind: SearchKind, input: &str) -> String {
    match parse_order_by(kind, input) {
        Err(Error::InvalidParameter(m)) => m,
        other => panic!("order_by {input:?} should be rejected for {kind:?}, got {other:?}"),
    }
}

fn assert_contains(msg: &str, needle: &str) {
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

#[test]
fn blank_filters_are_empty() {
    for input in ["", "   ", "\n\t "] {
        assert_eq!(parse_filter(Runs, input).unwrap(), Filter::default());
    }
}

#[test]
fn runs_tricky_examples() {
    assert_eq!(
        ok(
            Runs,
            "metrics.acc > 0.9 and params.`my param` = \"x\" and tags.\"a.b\" LIKE '%x%'"
        ),
        [
            cmp(Entity::Metric, "acc", Comparator::Gt, Value::Number(0.9)),
            cmp(
                Entity::Param,
                "my param",
                Comparator::Eq,
                Value::Str("x".into())
            ),
            cmp(
                Entity::Tag,
                "a.b",
                Comparator::Like,
                Value::Str("%x%".into())
            ),
        ]
    );
    assert_eq!(
        ok(Runs, "attributes.run_id IN ('a','b')"),
        [cmp(
            Entity::Attribute,
            "run_id",
            Comparator::In,
            Value::List(vec!["a".into(), "b".into()])
        )]
    );
    assert_contains(
        &err(Runs, "tags.t IN ('a')"),
        "Expected a quoted string value for tag",
    );
    assert_contains(&err(Runs, "run_id = abc"), "not quoted");
    assert_eq!(
        err(Runs, "metrics.a = '1'"),
        "Expected numeric value type for metric. Found '1'"
    );
    assert_contains(
        &err(Runs, "attributes.start_time LIKE '1'"),
        "numeric attribute: start_time",
    );
    assert_contains(
        &err(Runs, "attributes.experiment_id = '0'"),
        "Invalid attribute key 'experiment_id' specified",
    );
    assert_eq!(
        err(Runs, "metrics.a > 1 OR metrics.b > 1"),
        "Invalid clause(s) in filter string: 'OR'"
    );
    assert_contains(
        &err(Runs, "(metrics.a > 1)"),
        "Invalid clause(s) in filter string: '(metrics.a > 1)'",
    );
    assert_contains(
        &err(Runs, "metrics.a IS NULL"),
        "Invalid comparator 'IS NULL'",
    );
    assert_eq!(
        ok(Runs, "`Run name` = 'x'"),
        [cmp(
            Entity::Attribute,
            "run_name",
            Comparator::Eq,
            Value::Str("x".into())
        )]
    );
    assert_eq!(
        ok(Runs, "created > 5"),
        [cmp(
            Entity::Attribute,
            "start_time",
            Comparator::Gt,
            Value::Int(5)
        )]
    );
}

#[test]
fn runs_entities_aliases_and_keys() {
    let one = |input: &str| ok(Runs, input).remove(0);
    for prefix in ["metric", "metrics"] {
        assert_eq!(
            one(&format!("{prefix}.m < 1")).ident,
            ident(Entity::Metric, "m")
        );
    }
    for prefix in ["param", "params", "parameter", "parameters"] {
        assert_eq!(
            one(&format!("{prefix}.p = 'v'")).ident,
            ident(Entity::Param, "p")
        );
    }
    for prefix in ["tag", "tags"] {
        assert_eq!(
            one(&format!("{prefix}.t = 'v'")).ident,
            ident(Entity::Tag, "t")
        );
    }
    for prefix in [
        "attr.",
        "attribute.",
        "attributes.",
        "run.",
        "`attributes`.",
        "",
    ] {
        assert_eq!(
            one(&format!("{prefix}status = 'RUNNING'")).ident,
            ident(Entity::Attribute, "status")
        );
    }
    for name in ["run_name", "`run name`", "`Run name`", "\"Run Name\""] {
        assert_eq!(
            one(&format!("{name} = 'r'")).ident,
            ident(Entity::Attribute, "run_name")
        );
    }
    for name in ["created", "Created", "start_time"] {
        assert_eq!(
            one(&format!("{name} >= 1")).ident,
            ident(Entity::Attribute, "start_time")
        );
    }
    assert_eq!(one("end_time <= -3").value, Value::Int(-3));
    assert_eq!(
        one("tags.mlflow.runName = 'x'").ident,
        ident(Entity::Tag, "mlflow.runName")
    );
    assert_eq!(
        one("metrics.`my metric` = 1").ident,
        ident(Entity::Metric, "my metric")
    );
    assert_eq!(
        one("tags.'quoted key' = 'x'").ident,
        ident(Entity::Tag, "quoted key")
    );
    assert_eq!(one("tags.`a``b` = 'x'").ident, ident(Entity::Tag, "a`b"));
    assert_eq!(
        one("datasets.context IN ('train', \"eval\")"),
        cmp(
            Entity::Dataset,
            "context",
            Comparator::In,
            Value::List(vec!["train".into(), "eval".into()])
        )
    );
    assert_contains(
        &err(Runs, "datasets.size = 'x'"),
        "Invalid dataset key 'size'",
    );
    assert_contains(&err(Runs, "metricz.a > 1"), "Invalid entity type 'metricz'");
    assert_contains(
        &err(Runs, "status IN ('A')"),
        "Only the 'run_id' attribute supports",
    );
    assert_contains(
        &err(Runs, "start_time > '1'"),
        "Expected numeric value type for numeric attribute: start_time",
    );
    assert_contains(&err(Runs, "start_time > 1.5"), "Expected an integer value");
    assert_contains(&err(Runs, "params.p > 'x'"), "Invalid comparator '>'");
    assert_contains(
        &err(Runs, "params.p = 1"),
        "Expected a quoted string value for parameter",
    );
    assert_contains(
        &err(Runs, "status = 1"),
        "Expected a quoted string value for attributes",
    );
}

#[test]
fn operators_and_values() {
    let one = |input: &str| ok(Runs, input).remove(0);
    for (text, op) in [
        ("=", Comparator::Eq),
        ("!=", Comparator::Ne),
        (">", Comparator::Gt),
        (">=", Comparator::Ge),
        ("<", Comparator::Lt),
        ("<=", Comparator::Le),
    ] {
        assert_eq!(one(&format!("metrics.m{text}2")).op, op);
    }
    assert_eq!(one("params.p like 'a%'").op, Comparator::Like);
    assert_eq!(one("params.p ILike 'a%'").op, Comparator::ILike);
    assert_eq!(one("tags.t is null").op, Comparator::IsNull);
    assert_eq!(one("tags.t Is  Not\tNull").op, Comparator::IsNotNull);
    assert_eq!(one("tags.t is null").value, Value::Null);
    assert_eq!(one("run_id not in ('a')").op, Comparator::NotIn);
    assert_eq!(one("run_id IN('a')").op, Comparator::In);
    for (text, value) in [
        ("-1.5e3", -1500.0),
        ("1e10", 1e10),
        ("1E-2", 0.01),
        ("3", 3.0),
        (".5", 0.5),
        ("2.", 2.0),
        ("1e+2", 100.0),
    ] {
        assert_eq!(
            one(&format!("metrics.m = {text}")).value,
            Value::Number(value),
            "{text}"
        );
    }
    assert_eq!(one("params.p = 'it''s'").value, Value::Str("it's".into()));
    assert_eq!(one(r"params.p = 'it\'s'").value, Value::Str("it's".into()));
    assert_eq!(
        one(r"params.p = 'C:\Users\x'").value,
        Value::Str(r"C:\Users\x".into())
    );
    assert_eq!(
        one(r#"params.p = "say ""hi""""#).value,
        Value::Str(r#"say "hi""#.into())
    );
    assert_eq!(one("params.p = ''").value, Value::Str(String::new()));
    assert_eq!(
        ok(Runs, "  metrics.a>1\n AND\tparams.b='x'  ").len(),
        2,
        "whitespace is free around every token"
    );
    assert_contains(&err(Runs, "metrics.m <> 1"), "Invalid comparator '<>'");
    assert_contains(&err(Runs, "metrics.m == 1"), "Invalid comparator '=='");
    assert_contains(
        &err(Runs, "params.p NOT LIKE 'x'"),
        "Expected comparison found 'NOT LIKE'",
    );
}

#[test]
fn syntax_errors() {
    assert_contains(
        &err(Runs, "metrics.a > 1 metrics.b > 2"),
        "Invalid clause(s) in filter string: 'metrics.b'",
    );
    assert_contains(&err(Runs, "metrics.a > 1 garbage"), "Invalid clause(s)");
    assert_contains(&err(Runs, "metrics.a > 1)"), "Invalid clause(s)");
    assert_contains(
        &err(Runs, "metrics.a"),
        "Invalid clause(s) in filter string: 'metrics.a'",
    );
    assert_contains(&err(Runs, "metrics.a >"), "Expected a value");
    assert_contains(&err(Runs, "params.p = 'open"), "Unterminated");
    assert_contains(
        &err(Runs, "params.p = 'a'; params.q = 'b'"),
        "multiple expression",
    );
    assert_contains(&err(Runs, "params.p = 'a';"), "Invalid clause(s)");
    assert_contains(&err(Runs, "NOT params.p = 'a'"), "Invalid");
    assert_contains(&err(Runs, "run_id IN ()"), "empty list");
    assert_contains(&err(Runs, "run_id IN ('a',)"), "ill-formed list");
    assert_contains(&err(Runs, "run_id IN ('a' 'b')"), "ill-formed list");
    assert_contains(&err(Runs, "run_id IN (1, 2)"), "different type in list");
    assert_contains(&err(Runs, "run_id IN 'a'"), "parenthesized list");
    assert_contains(
        &err(Runs, "run_id = ('a')"),
        "Expected a quoted string value for attributes",
    );
    assert_contains(&err(Runs, "tags. = 'x'"), "Invalid identifier");
    assert_contains(
        &err(Runs, "metrics.m > 1abc"),
        "Expected numeric value type for metric. Found 1abc",
    );
    assert_contains(
        &err(Runs, "start_time > 99999999999999999999"),
        "Expected an integer value",
    );
    // MLflow (sqlparse) ignores stray ANDs; so do we.
    assert_eq!(
        ok(Runs, "and metrics.a > 1 and and metrics.b > 2 AND").len(),
        2
    );
}

#[test]
fn experiments_examples() {
    assert_eq!(
        ok(Experiments, "name LIKE 'exp-%'"),
        [cmp(
            Entity::Attribute,
            "name",
            Comparator::Like,
            Value::Str("exp-%".into())
        )]
    );
    assert_eq!(
        ok(Experiments, "tags.k ILIKE '%alu%'"),
        [cmp(
            Entity::Tag,
            "k",
            Comparator::ILike,
            Value::Str("%alu%".into())
        )]
    );
    assert_eq!(
        ok(Experiments, "experiment_id IN ('1','2')"),
        [cmp(
            Entity::Attribute,
            "experiment_id",
            Comparator::In,
            Value::List(vec!["1".into(), "2".into()])
        )]
    );
    assert_eq!(
        ok(
            Experiments,
            "attribute.creation_time > 1 and tag.k IS NOT NULL and last_update_time <= 9"
        ),
        [
            cmp(
                Entity::Attribute,
                "creation_time",
                Comparator::Gt,
                Value::Int(1)
            ),
            cmp(Entity::Tag, "k", Comparator::IsNotNull, Value::Null),
            cmp(
                Entity::Attribute,
                "last_update_time",
                Comparator::Le,
                Value::Int(9)
            ),
        ]
    );
    assert_eq!(
        ok(Experiments, "experiment_id = '3'"),
        [cmp(
            Entity::Attribute,
            "experiment_id",
            Comparator::Eq,
            Value::Str("3".into())
        )]
    );
    assert_contains(
        &err(Experiments, "name IN ('a')"),
        "Only the 'experiment_id' attribute supports",
    );
    assert_contains(
        &err(Experiments, "params.p = 'x'"),
        "Invalid entity type 'params'",
    );
    assert_contains(
        &err(Experiments, "attributes.name = 'x'"),
        "Invalid entity type 'attributes'",
    );
    assert_contains(&err(Experiments, "name > 'x'"), "Invalid comparator '>'");
    assert_contains(
        &err(Experiments, "creation_time = '1'"),
        "numeric attribute: creation_time",
    );
    assert_contains(
        &err(Experiments, "experiment_id LIKE '1'"),
        "Invalid comparator 'LIKE'",
    );
    assert_contains(
        &err(Experiments, "lifecycle_stage = 'active'"),
        "Invalid attribute key 'lifecycle_stage'",
    );
}

#[test]
fn registry_and_logged_model_filters() {
    assert_eq!(
        ok(
            RegisteredModels,
            "name IN ('a') and tags.`mlflow.prompt.is_prompt` != 'true'"
        ),
        [
            cmp(
                Entity::Attribute,
                "name",
                Comparator::In,
                Value::List(vec!["a".into()])
            ),
            cmp(
                Entity::Tag,
                "mlflow.prompt.is_prompt",
                Comparator::Ne,
                Value::Str("true".into())
            ),
        ]
    );
    assert_contains(
        &err(RegisteredModels, "tags.t IS NULL"),
        "Invalid comparator 'IS NULL'",
    );
    assert_contains(
        &err(RegisteredModels, "run_id = 'x'"),
        "Invalid attribute key 'run_id'",
    );
    assert_eq!(
        ok(
            ModelVersions,
            "source_path LIKE 's3://%' and version_number >= 2 and run_id NOT IN ('r')"
        ),
        [
            cmp(
                Entity::Attribute,
                "source",
                Comparator::Like,
                Value::Str("s3://%".into())
            ),
            cmp(
                Entity::Attribute,
                "version_number",
                Comparator::Ge,
                Value::Int(2)
            ),
            cmp(
                Entity::Attribute,
                "run_id",
                Comparator::NotIn,
                Value::List(vec!["r".into()])
            ),
        ]
    );
    assert_eq!(
        ok(ModelVersions, "version_number = '3'")[0].value,
        Value::Int(3)
    );
    assert_contains(
        &err(ModelVersions, "current_stage = 'None'"),
        "Invalid attribute key 'current_stage'",
    );
    assert_contains(
        &err(ModelVersions, "source_path IN ('x')"),
        "Only the 'name', 'run_id' attributes support",
    );
    assert_eq!(
        ok(
            LoggedModels,
            "metrics.rmse < 0.5 and creation_time > 10 and model_type IN ('a') and params.p = 'x'"
        ),
        [
            cmp(Entity::Metric, "rmse", Comparator::Lt, Value::Number(0.5)),
            cmp(
                Entity::Attribute,
                "creation_timestamp",
                Comparator::Gt,
                Value::Int(10)
            ),
            cmp(
                Entity::Attribute,
                "model_type",
                Comparator::In,
                Value::List(vec!["a".into()])
            ),
            cmp(Entity::Param, "p", Comparator::Eq, Value::Str("x".into())),
        ]
    );
    assert_contains(
        &err(LoggedModels, "datasets.name = 'x'"),
        "Invalid entity type 'datasets'",
    );
    assert_contains(&err(LoggedModels, "tags.t IS NULL"), "Invalid comparator");
}

#[test]
fn order_by_clauses() {
    let ob = |kind, input: &str| {
        parse_order_by(kind, input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    };
    assert_eq!(
        ob(Runs, "metrics.`my metric` DESC"),
        OrderBy {
            ident: ident(Entity::Metric, "my metric"),
            ascending: false
        }
    );
    assert_eq!(
        ob(Runs, "  created  "),
        OrderBy {
            ident: ident(Entity::Attribute, "start_time"),
            ascending: true
        }
    );
    assert_eq!(
        ob(Runs, "`Run name` asc").ident,
        ident(Entity::Attribute, "run_name")
    );
    assert_eq!(ob(Runs, "params.p desc").ident, ident(Entity::Param, "p"));
    assert_eq!(
        ob(Runs, "tags.mlflow.runName").ident,
        ident(Entity::Tag, "mlflow.runName")
    );
    assert_eq!(
        ob(Experiments, "last_update_time DESC").ident,
        ident(Entity::Attribute, "last_update_time")
    );
    assert_eq!(
        ob(RegisteredModels, "timestamp DESC").ident,
        ident(Entity::Attribute, "last_updated_timestamp")
    );
    assert_eq!(
        ob(ModelVersions, "version_number").ident,
        ident(Entity::Attribute, "version_number")
    );
    assert_eq!(
        ob(LoggedModels, "creation_time").ident,
        ident(Entity::Attribute, "creation_timestamp")
    );
    assert_eq!(
        ob(LoggedModels, "metrics.acc DESC").ident,
        ident(Entity::Metric, "acc")
    );

    assert_contains(
        &order_err(Runs, "start_time ASC NULLS LAST"),
        "Could not be parsed",
    );
    assert_contains(&order_err(Runs, ""), "Could not be parsed");
    assert_contains(&order_err(Runs, "start_time UP"), "Invalid ordering key");
    assert_contains(
        &order_err(Runs, "experiment_id"),
        "Invalid attribute key 'experiment_id'",
    );
    assert_contains(&order_err(Runs, "datasets.name"), "Invalid order_by entity");
    assert_contains(
        &order_err(Experiments, "tags.k"),
        "Invalid order_by entity: tag",
    );
    assert_contains(
        &order_err(Experiments, "attributes.name"),
        "Invalid entity type",
    );
    assert_contains(
        &order_err(RegisteredModels, "creation_timestamp"),
        "Invalid attribute key",
    );
    assert_contains(&order_err(ModelVersions, "run_id"), "Invalid attribute key");
    assert_contains(
        &order_err(LoggedModels, "params.p"),
        "only `metrics.<name>` is allowed",
    );
    assert_contains(
        &order_err(LoggedModels, "nope"),
        "Invalid order by field name: nope.",
    );
}

#[test]
fn order_by_lists_reject_duplicates() {
    let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        parse_order_by_list(Runs, &list(&["metrics.a", "params.a", "tags.a"]))
            .unwrap()
            .len(),
        3
    );
    match parse_order_by_list(
        Runs,
        &list(&["start_time DESC", "metrics.a", "created ASC"]),
    ) {
        Err(Error::InvalidParameter(m)) => {
            assert_eq!(m, "`order_by` contains duplicate fields: start_time")
        }
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    assert!(parse_order_by_list(Experiments, &list(&["name", "nope"])).is_err());
    assert!(parse_order_by_list(Experiments, &[]).unwrap().is_empty());
}

#[test]
fn display_writes_parsable_filters() {
    let f = parse_filter(Runs, "metrics.`a b` >= -1.5e3 and tags.mlflow.runName = 'it''s' and run_id IN ('x','y') and tags.t IS NULL")
        .unwrap();
    assert_eq!(
        f.to_string(),
        "metrics.`a b` >= -1500.0 AND tags.mlflow.runName = 'it''s' AND run_id IN ('x', 'y') AND tags.t IS NULL"
    );
    let mv = parse_filter(ModelVersions, "source_path = 'x'").unwrap();
    assert_eq!(mv.to_string(), "source_path = 'x'");
    assert_eq!(parse_filter(ModelVersions, &mv.to_string()).unwrap(), mv);
    assert_eq!(
        parse_order_by(Runs, "metrics.m").unwrap().to_string(),
        "metrics.m ASC"
    );
}

// ---------------------------------------------------------------------------
// Properties

const ALL_KINDS: [SearchKind; 5] = [
    Runs,
    Experiments,
    RegisteredModels,
    ModelVersions,
    LoggedModels,
];

/// Strings biased towards the grammar's own vocabulary, so that random
/// inputs get deep into the parser rather than failing on the first char.
fn grammar_soup() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "metrics.",
        "params.",
        "tags.",
        "attributes.",
        "datasets.",
        "run_id",
        "start_time",
        "name",
        "`",
        "'",
        "\"",
        "(",
        ")",
        ",",
        " ",
        "AND",
        "and",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "ILIKE",
        "=",
        "!=",
        "<",
        ">=",
        "1",
        "-1.5e3",
        ".",
        "\\",
        ";",
        "é",
        "\u{0}",
        "x y",
        "ASC",
        "DESC",
        "min(",
        "MAX(",
        "avg(",
        ")",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|parts| parts.concat())
}

fn aggregated(aggregate: Aggregate, key: &str) -> Identifier {
    Identifier {
        aggregate,
        ..ident(Entity::Metric, key)
    }
}

/// Sextant's extension of the runs grammar: `min(metrics.k)` and
/// `max(metrics.k)` wherever `metrics.k` may stand, in any case, with
/// quoted keys and spaces inside the parentheses.
#[test]
fn min_and_max_of_metrics_parse_in_run_searches() {
    assert_eq!(
        ok(
            Runs,
            "min(metrics.loss) < 0.2 and max( metrics.`my key` ) >= 1 and metrics.acc > 0"
        ),
        vec![
            Comparison {
                ident: aggregated(Aggregate::Min, "loss"),
                op: Comparator::Lt,
                value: Value::Number(0.2),
            },
            Comparison {
                ident: aggregated(Aggregate::Max, "my key"),
                op: Comparator::Ge,
                value: Value::Number(1.0),
            },
            cmp(Entity::Metric, "acc", Comparator::Gt, Value::Number(0.0)),
        ]
    );
    assert_eq!(
        parse_order_by(Runs, "MAX(metric.\"a b\") DESC").unwrap(),
        OrderBy {
            ident: aggregated(Aggregate::Max, "a b"),
            ascending: false,
        }
    );
    assert_eq!(
        parse_order_by(Runs, "min(metrics.loss)")
            .unwrap()
            .to_string(),
        "min(metrics.loss) ASC"
    );
    // The latest value and an aggregate of one key are different fields.
    assert_eq!(
        parse_order_by_list(Runs, &["metrics.m".into(), "min(metrics.m)".into()])
            .unwrap()
            .len(),
        2
    );
    assert_contains(
        &parse_order_by_list(
            Runs,
            &["max(metrics.m)".into(), "MAX(metrics.m) DESC".into()],
        )
        .unwrap_err()
        .to_string(),
        "duplicate fields: max(metrics.m)",
    );
}

#[test]
fn malformed_aggregates_say_where() {
    for (input, needle) in [
        (
            "avg(metrics.loss) < 1",
            "Invalid function 'avg' at position 1",
        ),
        (
            "metrics.a > 1 and sum(metrics.b) < 2",
            "Invalid function 'sum' at position 19",
        ),
        (
            "min(metrics.loss < 1",
            "Invalid identifier 'min(metrics.loss ' at position 18: expected ')' after 'metrics.loss', found '<'",
        ),
        (
            "min() < 1",
            "Invalid identifier 'min(' at position 5: expected metrics.<key> inside min(), found ')'",
        ),
        ("min(", "found the end"),
        (
            "min(min(metrics.a)) < 1",
            "expected metrics.<key> inside min(), found 'min'",
        ),
        (
            "min(params.lr) = '1'",
            "Invalid identifier 'min(params.lr)' at position 1: min() takes a metric",
        ),
        ("max(run_name) = 'x'", "max() takes a metric"),
        (
            "min(metrics.loss) = 'x'",
            "Expected numeric value type for metric",
        ),
        ("min(metrics.loss) LIKE 1", "Invalid comparator"),
    ] {
        assert_contains(&err(Runs, input), needle);
    }
    for kind in [Experiments, RegisteredModels, ModelVersions, LoggedModels] {
        assert_contains(
            &err(kind, "min(metrics.loss) < 1"),
            "is only allowed in run searches",
        );
    }
    assert_contains(
        &order_err(Runs, "avg(metrics.loss) DESC"),
        "Invalid function 'avg'",
    );
    assert_contains(&order_err(Runs, "min(metrics.loss DESC"), "expected ')'");
    assert_contains(&order_err(Runs, "min(params.p)"), "min() takes a metric");
    assert_contains(
        &order_err(LoggedModels, "min(metrics.m)"),
        "only allowed in run searches",
    );
    // Not a call: MLflow's own message.
    assert_contains(
        &order_err(Runs, "min (metrics.loss)"),
        "Could not be parsed",
    );
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![".+", "[a-z_][a-z0-9_.]{0,8}", "[ -~]{1,8}"]
        .prop_filter("non-empty", |k: &String| !k.is_empty())
}

fn one_of(ops: &'static [Comparator]) -> impl Strategy<Value = Comparator> {
    prop::sample::select(ops)
}

/// Clauses that a run search accepts, covering every entity and value type.
fn run_clause() -> impl Strategy<Value = Comparison> {
    use Comparator::*;
    let metric = (
        key(),
        aggregate(),
        one_of(&[Eq, Ne, Gt, Ge, Lt, Le]),
        number(),
    )
        .prop_map(|(k, aggregate, op, n)| Comparison {
            ident: Identifier {
                aggregate,
                ..ident(Entity::Metric, &k)
            },
            op,
            value: Value::Number(n),
        });
    let kv = (
        prop::bool::ANY,
        key(),
        one_of(&[Eq, Ne, Like, ILike, IsNull, IsNotNull]),
        any::<String>(),
    )
        .prop_map(|(param, k, op, s)| {
            let entity = if param { Entity::Param } else { Entity::Tag };
            let value = if op.is_unary() {
                Value::Null
            } else {
                Value::Str(s)
            };
            cmp(entity, &k, op, value)
        });
    let string_attr = (
        prop::sample::select(vec!["run_name", "status", "user_id", "artifact_uri"]),
        one_of(&[Eq, Ne, Like, ILike]),
        any::<String>(),
    )
        .prop_map(|(k, op, s)| cmp(Entity::Attribute, k, op, Value::Str(s)));
    let run_ids = (
        one_of(&[In, NotIn]),
        prop::collection::vec(any::<String>(), 1..4),
    )
        .prop_map(|(op, ids)| cmp(Entity::Attribute, "run_id", op, Value::List(ids)));
    let times = (
        prop::sample::select(vec!["start_time", "end_time"]),
        one_of(&[Eq, Ne, Gt, Ge, Lt, Le]),
        any::<i64>(),
    )
        .prop_map(|(k, op, i)| cmp(Entity::Attribute, k, op, Value::Int(i)));
    let dataset = (
        prop::sample::select(vec!["name", "digest", "context"]),
        one_of(&[In, NotIn]),
        prop::collection::vec(any::<String>(), 1..3),
    )
        .prop_map(|(k, op, items)| cmp(Entity::Dataset, k, op, Value::List(items)));
    prop_oneof![metric, kv, string_attr, run_ids, times, dataset]
}

fn aggregate() -> impl Strategy<Value = Aggregate> {
    prop::sample::select(vec![Aggregate::Last, Aggregate::Min, Aggregate::Max])
}

fn run_order() -> impl Strategy<Value = OrderBy> {
    let entity = prop::sample::select(vec![Entity::Metric, Entity::Param, Entity::Tag]);
    let attr = prop::sample::select(vec![
        "run_id",
        "run_name",
        "status",
        "user_id",
        "artifact_uri",
        "start_time",
        "end_time",
    ]);
    prop_oneof![
        (entity, key()).prop_map(|(e, k)| ident(e, &k)),
        (key(), aggregate()).prop_map(|(k, aggregate)| Identifier {
            aggregate,
            ..ident(Entity::Metric, &k)
        }),
        attr.prop_map(|k| ident(Entity::Attribute, k)),
    ]
    .prop_flat_map(|ident| {
        prop::bool::ANY.prop_map(move |ascending| OrderBy {
            ident: ident.clone(),
            ascending,
        })
    })
}

/// The part of `input` an error is located at.
fn located(kind: SearchKind, input: &str) -> String {
    let e = parse_filter_located(kind, input).expect_err(input);
    input.chars().skip(e.start).take(e.end - e.start).collect()
}

#[test]
fn errors_point_at_the_part_of_the_filter_they_are_about() {
    // A token the grammar cannot read: the operator, the value, a stray word.
    assert_eq!(located(Runs, "metrics.a > 1 and params.b == 'x'"), "==");
    assert_eq!(
        located(Runs, "params.b = x and metrics.a > 1"),
        "params.b = x"
    );
    assert_eq!(located(Runs, "metrics.a > 1 or params.b = 'x'"), "or");
    assert_eq!(located(Runs, "metrics.a > 1; drop"), ";");
    // A clause that reads but breaks a rule of the entity: the whole clause,
    // even when its text also appears earlier in the filter.
    assert_eq!(
        located(Runs, "metrics.a > 1 and metrics.a LIKE '1'"),
        "metrics.a LIKE '1'"
    );
    assert_eq!(
        located(Runs, "params.m = 'x' and params.m > 'x'"),
        "params.m > 'x'"
    );
    assert_eq!(
        located(Experiments, "name = 'a' and metrics.x > 1"),
        "metrics.x > 1"
    );
    // Cut short: the clause that the end of the input interrupted.
    assert_eq!(located(Runs, "metrics.a > 1 and params.b ="), "params.b =");
    assert_eq!(located(Runs, "params.b = 'open"), "'open");
    // Positions count characters, not bytes.
    let e = parse_filter_located(Runs, "tags.é = 'ü' and params.b == 'x'").unwrap_err();
    assert_eq!((e.start, e.end), (26, 28));
    // The message is parse_filter's.
    assert_eq!(
        e.error.to_string(),
        parse_filter(Runs, "tags.é = 'ü' and params.b == 'x'")
            .unwrap_err()
            .to_string()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>(), soup in grammar_soup()) {
        for kind in ALL_KINDS {
            let _ = parse_filter(kind, &s);
            let _ = parse_filter(kind, &soup);
            for text in [&s, &soup] {
                if let Err(e) = parse_filter_located(kind, text) {
                    let n = text.chars().count();
                    prop_assert!(e.start <= e.end && e.end <= n, "{:?} in {:?}", (e.start, e.end), text);
                    prop_assert!(n == 0 || e.start < e.end, "{:?} in {:?}", (e.start, e.end), text);
                }
            }
            let _ = parse_order_by(kind, &s);
            let _ = parse_order_by(kind, &soup);
        }
    }

    #[test]
    fn run_filters_round_trip_through_display(clauses in prop::collection::vec(run_clause(), 0..5)) {
        let filter = Filter { clauses };
        let text = filter.to_string();
        let parsed = parse_filter(Runs, &text);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&filter), "text: {:?}, parsed: {:?}", text, parsed);
    }

    #[test]
    fn run_order_by_round_trips_through_display(order in run_order()) {
        let text = order.to_string();
        prop_assert_eq!(parse_order_by(Runs, &text).ok(), Some(order), "text: {:?}", text);
    }

    #[test]
    fn experiment_filters_round_trip_through_display(
        name in any::<String>(),
        ids in prop::collection::vec("[0-9]{1,4}", 1..4),
        tag_key in key(),
        t in any::<i64>(),
    ) {
        let filter = Filter { clauses: vec![
            cmp(Entity::Attribute, "name", Comparator::ILike, Value::Str(name)),
            cmp(Entity::Attribute, "experiment_id", Comparator::NotIn, Value::List(ids)),
            cmp(Entity::Tag, &tag_key, Comparator::IsNull, Value::Null),
            cmp(Entity::Attribute, "creation_time", Comparator::Lt, Value::Int(t)),
        ]};
        let text = filter.to_string();
        prop_assert_eq!(parse_filter(Experiments, &text).ok(), Some(filter), "text: {:?}", text);
    }
}

/// `n` metric clauses joined by AND.
fn metric_clauses(n: usize) -> String {
    (0..n)
        .map(|k| format!("metrics.m{k} > 0"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[test]
fn a_filter_at_the_clause_limit_parses_and_one_more_clause_is_refused_with_the_limit() {
    use sextant_core::search::MAX_FILTER_CLAUSES;
    let at = ok(Runs, &metric_clauses(MAX_FILTER_CLAUSES));
    assert_eq!(at.len(), MAX_FILTER_CLAUSES);
    let msg = err(Runs, &metric_clauses(MAX_FILTER_CLAUSES + 1));
    assert!(
        msg.contains(&format!("more than {MAX_FILTER_CLAUSES} clauses")),
        "{msg}"
    );
    // Stray ANDs are not clauses, and every searched entity has the limit.
    ok(
        Runs,
        &format!("AND {} AND", metric_clauses(MAX_FILTER_CLAUSES)),
    );
    let tags = (0..=MAX_FILTER_CLAUSES)
        .map(|k| format!("tags.t{k} = 'x'"))
        .collect::<Vec<_>>()
        .join(" and ");
    for kind in [Experiments, RegisteredModels, ModelVersions, LoggedModels] {
        assert!(err(kind, &tags).contains("clauses"), "{kind:?}");
    }
    // The count that made SQLite fail with a 500 before the limit.
    assert!(err(Runs, &metric_clauses(990)).contains("clauses"));
}

#[test]
fn a_filter_longer_than_the_length_limit_is_refused_naming_its_length() {
    use sextant_core::search::MAX_FILTER_LENGTH;
    // One IN list of quoted ids, a few characters over the limit.
    let ids: Vec<String> = (0..MAX_FILTER_LENGTH / 8)
        .map(|i| format!("'{i:05}'"))
        .collect();
    let long = format!("attributes.run_id IN ({})", ids.join(","));
    assert!(long.chars().count() > MAX_FILTER_LENGTH);
    let msg = err(Runs, &long);
    assert!(
        msg.contains(&format!("{} characters long", long.chars().count()))
            && msg.contains(&MAX_FILTER_LENGTH.to_string()),
        "{msg}"
    );
    // Characters, not bytes: a filter of multi-byte text at the limit parses.
    let value = "é".repeat(MAX_FILTER_LENGTH - "tags.t = ''".len());
    let at = format!("tags.t = '{value}'");
    assert_eq!(at.chars().count(), MAX_FILTER_LENGTH);
    assert_eq!(ok(Runs, &at).len(), 1);
}
