//! The pipeline spec through the crate's public surface: the normative
//! example validates clean, broken specs report exact messages and positions,
//! and no input makes the parser panic.

use proptest::prelude::*;
use sextant_pipelines::{Error, load};

const HOUSING: &str = include_str!("../../../examples/pipelines/housing.yml");

fn errors(text: &str) -> Vec<String> {
    match load("p.yml", text) {
        Ok(_) => Vec::new(),
        Err(Error::Invalid { diagnostics, .. }) => {
            diagnostics.iter().map(|d| d.to_string()).collect()
        }
    }
}

#[test]
fn the_design_tune_line_validates_clean() {
    let text = housing_with(
        "    outputs: [model]",
        "    outputs: [model]\n    tune: {params: {n_trees: [100, 200, 400], learning_rate: {uniform: [0.01, 0.3]}}, strategy: random, trials: 12, parallel: 2, metric: rmse, goal: minimize}",
    );
    let v = load("housing.yml", &text).unwrap();
    let tune = v.pipeline.step("train").unwrap().tune.clone().unwrap();
    assert_eq!((tune.parallel, tune.metric.value.as_str()), (2, "rmse"));
    // The README's example.
    let text = housing_with(
        "    outputs: [model]",
        "    outputs: [model]\n    tune:\n      params: {learning_rate: {log_uniform: [0.01, 0.3]}, max_leaf_nodes: {int: [8, 64]}}\n      strategy: halving\n      trials: 12\n      parallel: 2\n      metric: rmse",
    );
    assert!(load("housing.yml", &text).is_ok(), "{:?}", errors(&text));
}

#[test]
fn the_design_example_validates_clean() {
    let v = load("housing.yml", HOUSING).unwrap();
    assert_eq!(v.pipeline.name.value, "housing");
    let order: Vec<&str> = v
        .dag
        .order()
        .iter()
        .map(|&i| v.pipeline.steps[i].name.value.as_str())
        .collect();
    assert_eq!(
        order,
        ["split", "train", "evaluate", "gate", "register", "report"]
    );
}

/// Replaces the first `from` in the example by `to`.
fn housing_with(from: &str, to: &str) -> String {
    assert!(HOUSING.contains(from), "{from} not in the example");
    HOUSING.replacen(from, to, 1)
}

#[test]
fn broken_specs_report_message_and_position() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            housing_with("    register_model:", "    cache: {}\n    register_model:"),
            vec!["30:12: 'cache' on step 'register': only run: and uses: steps can be cached, not register_model:"],
        ),
        (
            housing_with("cache: {expire_after: 7d}", "cache: {expire_after: 7d, code: [\"${params.dta}\"]}"),
            vec!["21:39: unknown parameter 'dta' in '${params.dta}' (did you mean 'data'?)"],
        ),
        (
            housing_with("retry:", "retyr:"),
            vec!["20:5: unknown key 'retyr' in step 'train' (did you mean 'retry'?)"],
        ),
        (
            housing_with("${params.data}", "${params.dat}"),
            vec!["14:19: unknown parameter 'dat' in '${params.dat}' (did you mean 'data'?)"],
        ),
        (
            housing_with("outputs.test}", "outputs.tst}"),
            vec![
                "24:58: step 'split' has no output 'tst' in '${steps.split.outputs.tst}' (it declares train, test)",
            ],
        ),
        (
            housing_with("then: [register]", "then: [registr]"),
            vec![
                "27:12: 'then' of step 'gate' names unknown step 'registr' (did you mean 'register'?)",
            ],
        ),
        (
            housing_with("\"0 3 * * *\"", "\"0 3 * *\""),
            vec![
                "6:12: invalid cron schedule '0 3 * *': Invalid pattern: Pattern must have 5 fields when seconds are disallowed.",
            ],
        ),
        (
            housing_with("backoff: 5s", "backoff: 5 s"),
            vec![
                "20:35: invalid duration '5 s': expected a number and a unit (ms, s, m, h, d), like 5s, 10m or 7d in 'backoff' of 'retry' of step 'train'",
            ],
        ),
        (
            housing_with("default: 200", "default: 2.5"),
            vec!["5:33: default of parameter 'n_trees' is a float, but its type is int"],
        ),
        (
            housing_with("<= params.threshold", "<= params.threshold)"),
            vec!["26:64: unexpected ')' in 'condition' of step 'gate'"],
        ),
        (
            housing_with("${outputs.report}", "${outputs.rep}"),
            vec![
                "32:70: step 'report' does not declare output 'rep' used in '${outputs.rep}' (add it to 'outputs')",
            ],
        ),
        (
            housing_with(
                "${event.payload.window_path}",
                "${steps.split.outputs.train}",
            ),
            vec![
                "10:21: '${steps.split.outputs.train}' is not available in a trigger: use '${event.payload.<field>}'",
            ],
        ),
        (
            housing_with(
                "    uses: builtin/split",
                "    uses: builtin/split\n    needs: [evaluate]",
            ),
            vec![
                "12:3: dependency cycle: 'split' needs 'evaluate', 'evaluate' uses '${steps.split.outputs.test}'",
            ],
        ),
        (
            housing_with("    run: python", "    fail: x\n    run: python"),
            vec!["33:5: step 'report' has both 'fail' and 'run': a step has exactly one kind"],
        ),
        (
            "name: x\nsteps:\n  a: {run: hi}\n  a: {run: ho}\n".to_string(),
            vec!["4:3: invalid YAML: duplicated key in mapping"],
        ),
        (
            "name: x\nsteps:\n  a: {run: 'echo ${params.p}', timeout: 5}\n  b: {needs: [a, c]}\n"
                .to_string(),
            vec![
                "3:18: unknown parameter 'p' in '${params.p}'",
                "3:41: invalid duration '5': expected a number and a unit (ms, s, m, h, d), like 5s, 10m or 7d in 'timeout' of step 'a'",
                "4:3: step 'b' has no kind: expected one of run, uses, condition, fail, register_model, deploy",
            ],
        ),
        (
            housing_with("n_trees: \"${params", "n_tress: \"${params"),
            vec![
                "18:66: unknown key 'n_tress' for builtin/gbdt (accepted: train, target, task, n_trees, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2, early_stopping, validation_fraction, n_iter_no_change, seed, valid, holdout, train_fraction; did you mean 'n_trees'?)",
            ],
        ),
        (
            housing_with("seed: 7}", "seed: 7, shuffle: true}"),
            vec![
                "14:65: unknown key 'shuffle' for builtin/split (accepted: data, test_fraction, seed)",
            ],
        ),
        (
            housing_with(
                "\"${steps.split.outputs.test}\", target: price}",
                "\"${steps.split.outputs.test}\"}",
            ),
            vec![
                "23:11: step 'evaluate' lacks 'target' in 'with': builtin/evaluate requires model, data, target",
            ],
        ),
        (
            "name: x\nsteps:\n  s: {uses: builtin/split}\n  t:\n    uses: builtin/gbdt\n    with: {trian: a}\n"
                .to_string(),
            vec![
                "3:13: step 's' lacks 'data' in 'with': builtin/split requires data",
                "5:11: step 't' lacks 'train', 'target' in 'with': builtin/gbdt requires train, target",
                "6:12: unknown key 'trian' for builtin/gbdt (accepted: train, target, task, n_trees, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2, early_stopping, validation_fraction, n_iter_no_change, seed, valid, holdout, train_fraction; did you mean 'train'?)",
            ],
        ),
        (
            housing_with("uses: builtin/gbdt", "uses: builtin/gbdtt"),
            vec![
                "17:11: unknown step 'builtin/gbdtt' in 'uses' of step 'train': expected one of builtin/split, builtin/linear, builtin/logistic, builtin/gbdt, builtin/evaluate, builtin/baseline",
            ],
        ),
        (
            housing_with(
                "    outputs: [model]",
                "    outputs: [model]\n    tune: {params: {n_trees: {uniform: [10, 90]}, seed: [1, 2], depth: [2]}, metric: training_rmse}",
            ),
            vec![
                "20:30: 'n_trees' takes integers: use {int: [lo, hi]} or a list of integers",
                "20:51: 'seed' cannot be tuned: every trial must fit the same data and be scored on the same held-out rows",
                "20:65: unknown key 'depth' in tune params: builtin/gbdt takes n_trees, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, l2, early_stopping, validation_fraction, n_iter_no_change",
                "20:86: trials are scored on held-out rows, not on the rows they fit: use metric 'rmse' (the held-out valid_rmse)",
            ],
        ),
        (
            housing_with(
                "    outputs: [model]",
                "    outputs: [model]\n    tune: {params: {l2: [0.1, 1], max_depth: {int: [2, 4]}}, strategy: grid, trials: 4, metric: logloss}",
            ),
            vec![
                "20:86: a grid runs every combination of its values (6 here): 'trials' is for the random and halving strategies",
                "20:97: builtin/gbdt logs no metric 'logloss' on held-out rows (known: rmse, mae, r2, accuracy, f1, auc)",
            ],
        ),
        (
            housing_with(
                "    outputs: [model]",
                "    outputs: [model]\n    tune: {params: {l2: [0, 1]}, metric: valid_r2}",
            ),
            vec!["20:42: a higher 'r2' is better: the search needs goal: maximize"],
        ),
        (
            housing_with(
                "    outputs: [train, test]",
                "    outputs: [train, test]\n    tune: {params: {seed: [1, 2]}, metric: rmse}",
            ),
            vec![
                "16:11: step 'split': tune searches over the trainers (builtin/linear, builtin/logistic, builtin/gbdt), not builtin/split",
            ],
        ),
        (
            housing_with(
                "    outputs: [model]",
                "    outputs: [model]\n    tune: {params: {learning_rate: {uniform: [0.01, 0.3]}}, strategy: grid, metric: rmse}",
            ),
            vec![
                "20:36: 'learning_rate' in 'tune' of step 'train' is a continuous range, but the grid strategy needs a list of values or an int range",
            ],
        ),
        (
            "steps: []\n".to_string(),
            vec![
                "1:1: missing key 'name' in the pipeline",
                "1:8: expected a mapping for 'steps', found a list",
            ],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(errors(&text), expected, "for:\n{text}");
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = load("p.yml", &text);
    }

    #[test]
    fn mutated_example_never_panics(at in 0usize..1200, len in 0usize..8, insert in "[ -~\\n]{0,6}") {
        let chars: Vec<char> = HOUSING.chars().collect();
        let at = at.min(chars.len());
        let end = (at + len).min(chars.len());
        let mutated: String = chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
        let _ = load("p.yml", &mutated);
    }
}

#[test]
fn a_reference_inside_quotes_in_a_run_line_is_refused_where_it_is() {
    let text = "name: q\nparams:\n  x: {type: string}\nsteps:\n  a:\n    run: echo \"${params.x}\" '${params.x}' ok-${params.x}\n  b:\n    run: [echo, \"${params.x}\"]\n";
    let got = errors(text);
    let quoting = "is inside quotes in a run: command; references are quoted automatically now (each one becomes exactly one word, never split, globbed or expanded): remove the quotes around it";
    assert_eq!(
        got,
        [
            format!("6:16: '${{params.x}}' {quoting}"),
            format!("6:30: '${{params.x}}' {quoting}"),
        ]
    );
    // Inside a shell word without quotes it is fine, and so is a list.
    assert!(load("q.yml", "name: q\nparams:\n  x: {type: string}\nsteps:\n  a:\n    run: python ${params.x}/prepare.py\n  b:\n    run: [python, \"${params.x}/prepare.py\"]\n").is_ok());
}

#[test]
fn run_takes_a_line_or_a_list_of_arguments() {
    use sextant_pipelines::spec::{RunCommand, StepKind};
    let v = load(
        "l.yml",
        "name: l\nparams:\n  n: {type: int, default: 3}\nsteps:\n  a:\n    run: [sleep, 5, \"${params.n}\"]\n",
    )
    .unwrap();
    let StepKind::Run {
        command: RunCommand::Argv(args),
    } = &v.pipeline.step("a").unwrap().kind
    else {
        panic!("not a list");
    };
    let args: Vec<&str> = args.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(args, ["sleep", "5", "${params.n}"]);
    assert_eq!(
        errors("name: l\nsteps:\n  a:\n    run: []\n"),
        ["4:10: 'run' of step 'a' is an empty list: expected the program and its arguments"]
    );
    assert_eq!(
        errors("name: l\nsteps:\n  a:\n    run: {x: 1}\n"),
        [
            "4:10: expected a command line or a list of arguments for 'run' of step 'a', found a mapping"
        ]
    );
    assert_eq!(
        errors("name: l\nsteps:\n  a:\n    run: [echo, [x]]\n"),
        ["4:17: expected a string for an argument in 'run' of step 'a', found a list"]
    );
    // A reference in a list is checked like any other.
    assert_eq!(
        errors("name: l\nsteps:\n  a:\n    run: [echo, \"${params.nope}\"]\n"),
        ["4:18: unknown parameter 'nope' in '${params.nope}'"]
    );
}

#[test]
fn keys_of_other_tools_suggest_ours() {
    assert_eq!(
        errors("name: d\nsteps:\n  a: {run: 'true'}\n  b:\n    run: 'true'\n    depends_on: [a]\n"),
        ["6:5: unknown key 'depends_on' in step 'b' (did you mean 'needs'?)"]
    );
    assert_eq!(
        errors("name: d\nsteps:\n  b:\n    command: 'true'\n    retries: {attempts: 2}\n"),
        [
            "3:3: step 'b' has no kind: expected one of run, uses, condition, fail, register_model, deploy",
            "4:5: unknown key 'command' in step 'b' (did you mean 'run'?)",
            "5:5: unknown key 'retries' in step 'b' (did you mean 'retry'?)",
        ]
    );
    // Only where the suggested key belongs: `after` at the top is not `needs`.
    assert_eq!(
        errors("name: d\nafter: x\nsteps:\n  a: {run: 'true'}\n"),
        ["2:1: unknown key 'after' in the pipeline"]
    );
}
