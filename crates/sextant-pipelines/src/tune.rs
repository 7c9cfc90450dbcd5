//! Planning a `tune:` search: which trials run, with which `with` values and
//! budget, which trials go on to the next rung, and which one wins. No IO and
//! no clock: the orchestrator runs the trials and hands their scores back.
//!
//! - **grid** runs every combination of the keys' values, the last key
//!   varying fastest. A key takes a list, or an `int` range standing for each
//!   of its integers. A continuous range (`uniform`, `log_uniform`) is refused
//!   by the parser, since any grid over it would be an arbitrary choice of
//!   points, and so is `trials` (by [`check`]): a grid's size is the product of
//!   its lists, nothing to choose.
//! - **random** draws `trials` (default [`DEFAULT_TRIALS`]) configurations,
//!   each key independently: a list uniformly, `uniform` and `int` uniformly
//!   between the bounds, `log_uniform` uniformly in log space. The generator
//!   is seeded from the pipeline run id and the step name ([`seed`]), so a
//!   retried attempt tries the same configurations and two runs try different
//!   ones. No configuration is drawn twice; when every key is discrete and
//!   has fewer combinations than `trials`, each combination runs once.
//! - **halving** is successive halving (Jamieson & Talwalkar 2016, as in
//!   scikit-learn's `HalvingRandomSearchCV`) with factor [`ETA`]: `trials`
//!   random configurations (drawn as above) run on a small budget, the best
//!   third of each rung (rounded up) goes on with three times the budget, and
//!   the last rung runs on the full budget; see [`rungs`] and [`Budget`] for
//!   what the budget is per built-in.
//!
//! Trials are scored by the held-out metric the trainers log (`valid_<m>`,
//! see [`metric_key`]), never by a training metric. A trial with no score (it
//! failed, or its metric is missing or NaN) ranks after every scored trial
//! and is never promoted or chosen; equal scores rank by trial order, so the
//! earlier trial wins a tie ([`ranking`]).

use std::collections::BTreeMap;

use crate::Diagnostic;
use crate::builtins::{GBDT_DEFAULT_TREES, VALID_PREFIX, builtin_keys};
use crate::spec::{Builtin, Goal, SearchSpace, Spanned, Step, Strategy, Tune, Value};

/// The factor of successive halving: each rung keeps a third of the trials and triples
/// their budget.
pub const ETA: usize = 3;
/// `trials` of the random and halving strategies when the spec does not say.
pub const DEFAULT_TRIALS: usize = 10;
/// The most trials one search may plan: past this, a spec is a mistake (a grid of five
/// lists of ten is 100,000 trainings).
pub const MAX_TRIALS: usize = 1000;
/// The share of `train` held out to score trials when the step gives neither `valid` nor
/// `holdout`.
pub const DEFAULT_HOLDOUT: f64 = 0.2;

/// `with` keys a search may not vary: the data, the task, and what decides the held-out
/// rows or the budget, since trials scored on different rows cannot be compared.
const FIXED_KEYS: &[&str] = &[
    "train",
    "target",
    "valid",
    "holdout",
    "seed",
    "train_fraction",
    "task",
];

/// `with` keys the built-ins read as integers, which a continuous range cannot feed.
const INTEGER_KEYS: &[&str] = &[
    "n_trees",
    "max_leaf_nodes",
    "max_depth",
    "min_samples_leaf",
    "n_iter_no_change",
    "max_iter",
];

/// The built-ins a search can run, with the metrics each logs on held-out rows (without
/// the `valid_` prefix).
const TRAINERS: &[(Builtin, &[&str])] = &[
    (Builtin::Linear, &["rmse", "mae", "r2"]),
    (Builtin::Logistic, &["accuracy", "f1", "auc"]),
    (
        Builtin::Gbdt,
        &["rmse", "mae", "r2", "accuracy", "f1", "auc"],
    ),
];

/// The held-out metrics for which a higher value is better.
const HIGHER_IS_BETTER: &[&str] = &["r2", "accuracy", "f1", "auc"];

/// One configuration: a value for each tuned key, in the order of `tune.params`.
pub type Config = Vec<(String, Value)>;

/// The trials of a search, as far as they can be known before any runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Every configuration runs once on the full budget (grid, random).
    Fixed(Vec<Config>),
    /// Successive halving: the candidates, and the rungs they climb.
    Halving {
        /// The configurations of the first rung.
        candidates: Vec<Config>,
        /// Rung sizes and budgets, the first rung first.
        rungs: Vec<Rung>,
    },
}

/// One rung of successive halving.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rung {
    /// How many configurations run on it (at most; fewer when trials failed).
    pub trials: usize,
    /// The share of the full budget each gets, in `(0, 1]`; the last rung's is 1.
    pub budget: f64,
}

/// What a trial's budget is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// The number of boosting iterations (`n_trees`, scaled from the step's value or
    /// [`GBDT_DEFAULT_TREES`]): `builtin/gbdt` unless `n_trees` is itself tuned.
    Trees,
    /// The share of training rows fitted (`train_fraction`, a seeded sample that grows
    /// with the rungs; held-out rows stay the same): `builtin/linear`, `builtin/logistic`,
    /// and `builtin/gbdt` when `n_trees` is tuned.
    Rows,
}

/// Why a search cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TuneError {
    /// A grid strategy over a continuous range.
    #[error("'{0}' is a continuous range, but a grid needs a list of values or an int range")]
    Continuous(String),
    /// More trials than [`MAX_TRIALS`].
    #[error("the search plans {0} trials, more than the limit of {MAX_TRIALS}")]
    TooMany(u128),
}

/// The generator's seed for the search of `step` in the pipeline run `run_id`: FNV-1a
/// over both, written out here because a std hasher may change between Rust releases.
pub fn seed(run_id: &str, step: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes().chain([0]).chain(step.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The trials `tune` asks for, drawn with `seed` where random.
pub fn plan(tune: &Tune, seed: u64) -> Result<Plan, TuneError> {
    let spaces: Vec<(&str, &SearchSpace)> = tune
        .params
        .iter()
        .map(|(k, v)| (k.value.as_str(), &v.value))
        .collect();
    let trials = tune
        .trials
        .as_ref()
        .map_or(DEFAULT_TRIALS, |t| t.value as usize);
    match tune.strategy {
        Strategy::Grid => grid(&spaces).map(Plan::Fixed),
        Strategy::Random => random(&spaces, trials, seed).map(Plan::Fixed),
        Strategy::Halving => {
            // A small discrete space may give fewer candidates than `trials`.
            let candidates = random(&spaces, trials, seed)?;
            let rungs = rungs(candidates.len());
            Ok(Plan::Halving { candidates, rungs })
        }
    }
}

/// How many combinations a grid over `spaces` has (`None` for a continuous key).
fn grid_size(spaces: &[(&str, &SearchSpace)]) -> Option<u128> {
    spaces.iter().try_fold(1u128, |n, (_, s)| {
        let k = match s {
            SearchSpace::Choice(values) => values.len() as u128,
            SearchSpace::IntRange(lo, hi) => (i128::from(*hi) - i128::from(*lo) + 1) as u128,
            SearchSpace::Uniform(..) | SearchSpace::LogUniform(..) => return None,
        };
        Some(n.saturating_mul(k))
    })
}

/// Every combination, the last key varying fastest.
fn grid(spaces: &[(&str, &SearchSpace)]) -> Result<Vec<Config>, TuneError> {
    if let Some((key, _)) = spaces
        .iter()
        .find(|(_, s)| matches!(s, SearchSpace::Uniform(..) | SearchSpace::LogUniform(..)))
    {
        return Err(TuneError::Continuous((*key).to_string()));
    }
    let size = grid_size(spaces).unwrap_or(u128::MAX);
    if size > MAX_TRIALS as u128 {
        return Err(TuneError::TooMany(size));
    }
    let mut configs: Vec<Config> = vec![Vec::new()];
    for (key, space) in spaces {
        let values: Vec<Value> = match space {
            SearchSpace::Choice(values) => values.clone(),
            SearchSpace::IntRange(lo, hi) => (*lo..=*hi).map(Value::Int).collect(),
            SearchSpace::Uniform(..) | SearchSpace::LogUniform(..) => unreachable!("refused above"),
        };
        configs = configs
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut next = c.clone();
                    next.push(((*key).to_string(), v.clone()));
                    next
                })
            })
            .collect();
    }
    Ok(configs)
}

/// `n` distinct random configurations (all of them, in grid order, when a discrete space
/// has no more than `n`).
fn random(spaces: &[(&str, &SearchSpace)], n: usize, seed: u64) -> Result<Vec<Config>, TuneError> {
    if n > MAX_TRIALS {
        return Err(TuneError::TooMany(n as u128));
    }
    if grid_size(spaces).is_some_and(|size| size <= n as u128) {
        return grid(spaces);
    }
    let mut rng = SplitMix64(seed);
    let mut configs: Vec<Config> = Vec::with_capacity(n);
    // A discrete space larger than `n` yields `n` distinct draws in a few times `n` tries;
    // the bound only keeps a pathological case from looping.
    for _ in 0..n.saturating_mul(100) {
        if configs.len() == n {
            break;
        }
        let config: Config = spaces
            .iter()
            .map(|(k, s)| ((*k).to_string(), draw(s, &mut rng)))
            .collect();
        if !configs.contains(&config) {
            configs.push(config);
        }
    }
    Ok(configs)
}

/// One value of `space`.
fn draw(space: &SearchSpace, rng: &mut SplitMix64) -> Value {
    match space {
        SearchSpace::Choice(values) => values[rng.below(values.len() as u64) as usize].clone(),
        SearchSpace::Uniform(lo, hi) => Value::Float((lo + rng.unit() * (hi - lo)).min(*hi)),
        SearchSpace::LogUniform(lo, hi) => {
            let (a, b) = (lo.ln(), hi.ln());
            Value::Float((a + rng.unit() * (b - a)).exp().clamp(*lo, *hi))
        }
        SearchSpace::IntRange(lo, hi) => {
            let span = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
            let offset = if span > u128::from(u64::MAX) {
                rng.next()
            } else {
                rng.below(span as u64)
            };
            Value::Int((i128::from(*lo) + i128::from(offset)) as i64)
        }
    }
}

/// The rungs of successive halving over `n` candidates: `1 + ⌊log₃ n⌋` rungs, rung `r`
/// running `⌈n / 3^r⌉` trials on `1 / 3^(last − r)` of the budget. Nine candidates run at
/// 1/9, the best three at 1/3, the best one at the full budget.
pub fn rungs(n: usize) -> Vec<Rung> {
    let n = n.max(1);
    let mut count = 1;
    let mut reach = ETA;
    while reach <= n {
        count += 1;
        reach = reach.saturating_mul(ETA);
    }
    let mut out = Vec::with_capacity(count);
    let mut trials = n;
    for r in 0..count {
        let above = (count - 1 - r) as i32;
        out.push(Rung {
            trials,
            budget: 1.0 / (ETA as f64).powi(above),
        });
        trials = trials.div_ceil(ETA);
    }
    out
}

/// Trial indices best first: scored trials by `goal`, equal scores by index, then every
/// trial without a score (`None` or NaN) by index.
pub fn ranking(scores: &[Option<f64>], goal: Goal) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let key = |i: usize| scores[i].filter(|s| !s.is_nan());
    order.sort_by(|&a, &b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let by_goal = match goal {
                Goal::Minimize => x.total_cmp(&y),
                Goal::Maximize => y.total_cmp(&x),
            };
            by_goal.then(a.cmp(&b))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(&b),
    });
    order
}

/// The best scored trial, if any trial has a score.
pub fn best(scores: &[Option<f64>], goal: Goal) -> Option<usize> {
    ranking(scores, goal)
        .first()
        .copied()
        .filter(|&i| scores[i].is_some_and(|s| !s.is_nan()))
}

/// The (at most) `keep` best scored trials, best first: those that go on to the next rung.
pub fn promote(scores: &[Option<f64>], keep: usize, goal: Goal) -> Vec<usize> {
    ranking(scores, goal)
        .into_iter()
        .filter(|&i| scores[i].is_some_and(|s| !s.is_nan()))
        .take(keep)
        .collect()
}

/// The metric a trial is scored by for `tune.metric`: `rmse` and `valid_rmse` both mean the
/// held-out `valid_rmse`.
pub fn metric_key(metric: &str) -> String {
    if metric.starts_with(VALID_PREFIX) {
        metric.to_string()
    } else {
        format!("{VALID_PREFIX}{metric}")
    }
}

/// What a trial's budget means for `builtin` under `tune`.
pub fn budget_of(builtin: Builtin, tune: &Tune) -> Budget {
    let tunes_trees = tune.params.iter().any(|(k, _)| k.value == "n_trees");
    match builtin {
        Builtin::Gbdt if !tunes_trees => Budget::Trees,
        _ => Budget::Rows,
    }
}

/// A tuned value as the text a built-in reads from `with`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.clone(),
        Value::List(_) | Value::Map(_) => v.to_json().to_string(),
    }
}

/// The `with` of one trial: the step's resolved `base`, then the configuration, then the
/// budget share `budget` applied as `kind` says, and [`DEFAULT_HOLDOUT`] when the step
/// names no held-out rows. Returns it with the keys it set or changed (the trial's params).
pub fn trial_with(
    base: &BTreeMap<String, String>,
    config: &[(String, Value)],
    kind: Budget,
    budget: f64,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut with = base.clone();
    for (k, v) in config {
        with.insert(k.clone(), value_text(v));
    }
    if budget < 1.0 {
        match kind {
            Budget::Trees => {
                let full = with
                    .get("n_trees")
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(GBDT_DEFAULT_TREES);
                let scaled = ((full as f64 * budget).round() as usize).max(1);
                with.insert("n_trees".into(), scaled.to_string());
            }
            Budget::Rows => {
                let full = with
                    .get("train_fraction")
                    .and_then(|f| f.trim().parse::<f64>().ok())
                    .unwrap_or(1.0);
                with.insert("train_fraction".into(), (full * budget).to_string());
            }
        }
    }
    if !with.contains_key("valid") && !with.contains_key("holdout") {
        with.insert("holdout".into(), DEFAULT_HOLDOUT.to_string());
    }
    let changed = with
        .iter()
        .filter(|(k, v)| base.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (with, changed)
}

/// The problems of `tune` on `step`, a `uses: builtin` step: a built-in that is not a
/// trainer, keys it does not take or that a search may not vary, values of the wrong kind,
/// a metric it does not log on held-out rows or a goal the wrong way round for it,
/// `trials` on a grid, too many trials.
pub fn check(step: &Step, builtin: &Spanned<Builtin>, tune: &Tune) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let name = format!("builtin/{}", builtin.value.as_str());
    let Some((_, metrics)) = TRAINERS.iter().find(|(b, _)| *b == builtin.value) else {
        out.push(Diagnostic::new(
            tune.pos,
            format!(
                "step '{}': tune searches over the trainers (builtin/linear, builtin/logistic, builtin/gbdt), not {name}",
                step.name.value
            ),
        ));
        return out;
    };
    let accepted = builtin_keys(&name).unwrap_or_default();
    for (key, space) in &tune.params {
        let k = key.value.as_str();
        if FIXED_KEYS.contains(&k) {
            out.push(Diagnostic::new(
                key.pos,
                format!("'{k}' cannot be tuned: every trial must fit the same data and be scored on the same held-out rows"),
            ));
        } else if !accepted.contains(&k) {
            let tunable: Vec<&str> = accepted
                .iter()
                .copied()
                .filter(|a| !FIXED_KEYS.contains(a))
                .collect();
            out.push(Diagnostic::new(
                key.pos,
                format!(
                    "unknown key '{k}' in tune params: {name} takes {}",
                    tunable.join(", ")
                ),
            ));
        }
        check_space(k, space, &mut out);
    }
    let bare = tune.metric.value.strip_prefix(VALID_PREFIX);
    let bare = bare.unwrap_or(&tune.metric.value);
    if let Some(fitted) = tune.metric.value.strip_prefix("training_") {
        out.push(Diagnostic::new(
            tune.metric.pos,
            format!(
                "trials are scored on held-out rows, not on the rows they fit: use metric '{fitted}' (the held-out valid_{fitted})"
            ),
        ));
    } else if !metrics.contains(&bare) {
        out.push(Diagnostic::new(
            tune.metric.pos,
            format!(
                "{name} logs no metric '{}' on held-out rows (known: {})",
                tune.metric.value,
                metrics.join(", ")
            ),
        ));
    } else {
        // A search the wrong way round would pick the worst trial without a word.
        let (better, wanted) = if HIGHER_IS_BETTER.contains(&bare) {
            ("higher", Goal::Maximize)
        } else {
            ("lower", Goal::Minimize)
        };
        if tune.goal != wanted {
            let goal = if wanted == Goal::Maximize {
                "maximize"
            } else {
                "minimize"
            };
            out.push(Diagnostic::new(
                tune.metric.pos,
                format!("a {better} '{bare}' is better: the search needs goal: {goal}"),
            ));
        }
    }
    check_trials(tune, &mut out);
    out
}

/// Integer keys need integer values; tuned strings are literals, never references.
fn check_space(key: &str, space: &Spanned<SearchSpace>, out: &mut Vec<Diagnostic>) {
    let integers = INTEGER_KEYS.contains(&key);
    match &space.value {
        SearchSpace::Uniform(..) | SearchSpace::LogUniform(..) if integers => {
            out.push(Diagnostic::new(
                space.pos,
                format!("'{key}' takes integers: use {{int: [lo, hi]}} or a list of integers"),
            ));
        }
        SearchSpace::Choice(values) => {
            for v in values {
                let bad = match v {
                    Value::String(s) if s.contains("${") => {
                        Some("tune values are used as written: a reference (${…}) cannot be one")
                    }
                    Value::List(_) | Value::Map(_) => Some("tune values must be single values"),
                    Value::Float(_) if integers => Some("this key takes integers"),
                    _ => None,
                };
                if let Some(why) = bad {
                    out.push(Diagnostic::new(
                        space.pos,
                        format!("'{key}' in tune params: {why}"),
                    ));
                    return;
                }
            }
        }
        _ => {}
    }
}

/// `trials` belongs to random and halving, and no search plans more than [`MAX_TRIALS`].
fn check_trials(tune: &Tune, out: &mut Vec<Diagnostic>) {
    let spaces: Vec<(&str, &SearchSpace)> = tune
        .params
        .iter()
        .map(|(k, v)| (k.value.as_str(), &v.value))
        .collect();
    match (tune.strategy, &tune.trials) {
        (Strategy::Grid, Some(t)) => out.push(Diagnostic::new(
            t.pos,
            format!(
                "a grid runs every combination of its values ({} here): 'trials' is for the random and halving strategies",
                grid_size(&spaces).map_or("?".to_string(), |n| n.to_string())
            ),
        )),
        (Strategy::Grid, None) => {
            if let Some(n) = grid_size(&spaces).filter(|&n| n > MAX_TRIALS as u128) {
                out.push(Diagnostic::new(
                    tune.pos,
                    format!("the grid has {n} combinations, more than the limit of {MAX_TRIALS} trials"),
                ));
            }
        }
        (_, Some(t)) if t.value as usize > MAX_TRIALS => out.push(Diagnostic::new(
            t.pos,
            format!(
                "{} trials are more than the limit of {MAX_TRIALS}",
                t.value
            ),
        )),
        _ => {}
    }
}

/// SplitMix64, written out so that a search's configurations never change with a
/// dependency upgrade (the same reason as `builtin/split`'s shuffle).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`), by rejection so that no value is favoured.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next();
            if v < zone {
                return v % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Pos;

    fn spanned<T>(v: T) -> Spanned<T> {
        Spanned::new(v, Pos::default())
    }

    fn tune(strategy: Strategy, trials: Option<u32>, params: Vec<(&str, SearchSpace)>) -> Tune {
        Tune {
            params: params
                .into_iter()
                .map(|(k, s)| (spanned(k.to_string()), spanned(s)))
                .collect(),
            strategy,
            trials: trials.map(spanned),
            parallel: 1,
            metric: spanned("rmse".to_string()),
            goal: Goal::Minimize,
            pos: Pos::default(),
        }
    }

    fn ints(values: &[i64]) -> SearchSpace {
        SearchSpace::Choice(values.iter().map(|&i| Value::Int(i)).collect())
    }

    fn fixed(p: Plan) -> Vec<Config> {
        match p {
            Plan::Fixed(c) => c,
            Plan::Halving { .. } => panic!("expected a fixed plan"),
        }
    }

    #[test]
    fn a_grid_is_the_cartesian_product_last_key_fastest() {
        let t = tune(
            Strategy::Grid,
            None,
            vec![
                ("n_trees", ints(&[10, 20, 40])),
                ("max_depth", SearchSpace::IntRange(2, 3)),
                ("l2", SearchSpace::Choice(vec![Value::Float(0.5)])),
            ],
        );
        let configs = fixed(plan(&t, 0).unwrap());
        assert_eq!(configs.len(), 3 * 2);
        let first: Vec<Value> = configs[0].iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(first, [Value::Int(10), Value::Int(2), Value::Float(0.5)]);
        assert_eq!(
            configs[1][1].1,
            Value::Int(3),
            "the int range varies fastest"
        );
        assert_eq!(configs[2][0].1, Value::Int(20));
        let keys: Vec<&str> = configs[5].iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["n_trees", "max_depth", "l2"]);
        for (i, a) in configs.iter().enumerate() {
            assert!(!configs[i + 1..].contains(a), "duplicate {a:?}");
        }
    }

    #[test]
    fn a_grid_refuses_continuous_ranges_and_oversized_products() {
        let t = tune(
            Strategy::Grid,
            None,
            vec![("learning_rate", SearchSpace::Uniform(0.0, 1.0))],
        );
        assert_eq!(
            plan(&t, 0),
            Err(TuneError::Continuous("learning_rate".into()))
        );
        let t = tune(
            Strategy::Grid,
            None,
            vec![
                ("n_trees", SearchSpace::IntRange(1, 100)),
                ("max_depth", SearchSpace::IntRange(1, 11)),
            ],
        );
        assert_eq!(plan(&t, 0), Err(TuneError::TooMany(1100)));
    }

    fn random_tune(trials: u32) -> Tune {
        tune(
            Strategy::Random,
            Some(trials),
            vec![
                ("learning_rate", SearchSpace::LogUniform(0.001, 0.5)),
                ("l2", SearchSpace::Uniform(-1.0, 2.0)),
                ("max_leaf_nodes", SearchSpace::IntRange(2, 64)),
                (
                    "task",
                    SearchSpace::Choice(vec![Value::String("a".into()), Value::Bool(true)]),
                ),
            ],
        )
    }

    #[test]
    fn random_draws_are_reproducible_from_the_run_and_stay_in_bounds() {
        let t = random_tune(200);
        let s = seed("run-1", "train");
        let a = fixed(plan(&t, s).unwrap());
        assert_eq!(a, fixed(plan(&t, s).unwrap()), "same run, same trials");
        assert_ne!(a, fixed(plan(&t, seed("run-2", "train")).unwrap()));
        assert_ne!(s, seed("run-1", "evaluate"));
        assert_eq!(a.len(), 200);
        let mut choices = [0; 2];
        let (mut low_lr, mut ints) = (0, std::collections::BTreeSet::new());
        for c in &a {
            let Value::Float(lr) = c[0].1 else { panic!() };
            assert!((0.001..=0.5).contains(&lr), "{lr}");
            // Log-uniform: about half the draws fall below the geometric mean (~0.022).
            low_lr += usize::from(lr < (0.001f64 * 0.5).sqrt());
            let Value::Float(l2) = c[1].1 else { panic!() };
            assert!((-1.0..=2.0).contains(&l2), "{l2}");
            let Value::Int(leaves) = c[2].1 else { panic!() };
            assert!((2..=64).contains(&leaves), "{leaves}");
            ints.insert(leaves);
            choices[usize::from(c[3].1 == Value::Bool(true))] += 1;
        }
        assert!(
            (60..=140).contains(&low_lr),
            "{low_lr} of 200 below the log midpoint"
        );
        assert!(
            ints.contains(&2) && ints.contains(&64),
            "both bounds are reachable"
        );
        assert!(choices[0] > 50 && choices[1] > 50, "{choices:?}");
    }

    #[test]
    fn random_never_repeats_and_runs_a_small_discrete_space_once_each() {
        let t = tune(
            Strategy::Random,
            Some(10),
            vec![
                ("n_trees", ints(&[10, 20])),
                ("max_depth", SearchSpace::IntRange(1, 3)),
            ],
        );
        let configs = fixed(plan(&t, 9).unwrap());
        assert_eq!(configs.len(), 6, "2 × 3 combinations, each once");
        let t = tune(
            Strategy::Random,
            Some(5),
            vec![("max_depth", SearchSpace::IntRange(1, 6))],
        );
        let configs = fixed(plan(&t, 9).unwrap());
        assert_eq!(configs.len(), 5);
        for (i, a) in configs.iter().enumerate() {
            assert!(!configs[i + 1..].contains(a), "duplicate {a:?}");
        }
        let t = tune(
            Strategy::Random,
            Some(2000),
            vec![("l2", SearchSpace::Uniform(0.0, 1.0))],
        );
        assert_eq!(plan(&t, 0), Err(TuneError::TooMany(2000)));
    }

    #[test]
    fn halving_rungs_shrink_by_three_and_end_on_the_full_budget() {
        let shape =
            |n| -> Vec<(usize, f64)> { rungs(n).iter().map(|r| (r.trials, r.budget)).collect() };
        assert_eq!(shape(9), [(9, 1.0 / 9.0), (3, 1.0 / 3.0), (1, 1.0)]);
        assert_eq!(shape(10), [(10, 1.0 / 9.0), (4, 1.0 / 3.0), (2, 1.0)]);
        assert_eq!(
            shape(27),
            [(27, 1.0 / 27.0), (9, 1.0 / 9.0), (3, 1.0 / 3.0), (1, 1.0)]
        );
        assert_eq!(shape(3), [(3, 1.0 / 3.0), (1, 1.0)]);
        assert_eq!(shape(2), [(2, 1.0)]);
        assert_eq!(shape(1), [(1, 1.0)]);
        let t = tune(
            Strategy::Halving,
            Some(9),
            vec![("learning_rate", SearchSpace::Uniform(0.01, 0.3))],
        );
        let Plan::Halving { candidates, rungs } = plan(&t, 4).unwrap() else {
            panic!("expected halving");
        };
        assert_eq!((candidates.len(), rungs.len()), (9, 3));
    }

    #[test]
    fn promotion_keeps_the_best_scored_trials_in_order() {
        let scores = [
            Some(0.5),
            None,
            Some(0.2),
            Some(f64::NAN),
            Some(0.9),
            Some(0.2),
        ];
        assert_eq!(promote(&scores, 3, Goal::Minimize), [2, 5, 0]);
        assert_eq!(promote(&scores, 2, Goal::Maximize), [4, 0]);
        // Failed trials are never promoted, even to fill a rung.
        assert_eq!(promote(&scores, 6, Goal::Minimize), [2, 5, 0, 4]);
        assert_eq!(ranking(&scores, Goal::Minimize), [2, 5, 0, 4, 1, 3]);
    }

    #[test]
    fn the_best_trial_wins_ties_by_order_and_needs_a_score() {
        assert_eq!(
            best(&[Some(3.0), Some(1.0), Some(1.0)], Goal::Minimize),
            Some(1)
        );
        assert_eq!(
            best(&[Some(3.0), Some(1.0), Some(3.0)], Goal::Maximize),
            Some(0)
        );
        assert_eq!(
            best(&[None, Some(f64::NAN), Some(7.0)], Goal::Minimize),
            Some(2)
        );
        assert_eq!(best(&[None, Some(f64::NAN)], Goal::Maximize), None);
        assert_eq!(best(&[], Goal::Maximize), None);
    }

    #[test]
    fn a_trial_with_scales_the_budget_and_holds_rows_out() {
        let base: BTreeMap<String, String> = [("train", "/d"), ("target", "y"), ("n_trees", "27")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = vec![("learning_rate".to_string(), Value::Float(0.25))];
        let (with, changed) = trial_with(&base, &config, Budget::Trees, 1.0 / 9.0);
        assert_eq!(with["n_trees"], "3");
        assert_eq!(with["learning_rate"], "0.25");
        assert_eq!(with["holdout"], "0.2");
        let keys: Vec<&str> = changed.keys().map(String::as_str).collect();
        assert_eq!(keys, ["holdout", "learning_rate", "n_trees"]);

        let (with, changed) = trial_with(&base, &config, Budget::Rows, 1.0 / 3.0);
        assert_eq!(with["n_trees"], "27");
        assert_eq!(with["train_fraction"].parse::<f64>().unwrap(), 1.0 / 3.0);
        assert!(changed.contains_key("train_fraction"));

        let mut given = base.clone();
        given.insert("valid".into(), "/v".into());
        let (with, _) = trial_with(&given, &config, Budget::Trees, 1.0);
        assert_eq!(with["n_trees"], "27", "the full budget is the step's own");
        assert!(!with.contains_key("holdout"), "valid rows were given");
        let (with, _) = trial_with(&given, &[], Budget::Trees, 0.001);
        assert_eq!(with["n_trees"], "1", "at least one tree");
    }

    #[test]
    fn the_metric_is_the_held_out_one() {
        assert_eq!(metric_key("rmse"), "valid_rmse");
        assert_eq!(metric_key("valid_auc"), "valid_auc");
    }
}
