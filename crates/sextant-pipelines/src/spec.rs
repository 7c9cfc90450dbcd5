//! The pipeline spec types: what a pipeline YAML file says, with the
//! position of each name and value so later checks can point at it.

use std::time::Duration;

use crate::condition::Expr;

/// A 1-based line and column in the pipeline file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

impl Pos {
    /// The position `chars` characters further on the same line.
    pub fn right(self, chars: usize) -> Pos {
        Pos {
            line: self.line,
            col: self.col + chars,
        }
    }
}

/// A value with the position where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the file.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// Pairs `value` with `pos`.
    pub fn new(value: T, pos: Pos) -> Spanned<T> {
        Spanned { value, pos }
    }
}

/// Key/value pairs in the order they were written.
pub type Entries<V> = Vec<(Spanned<String>, Spanned<V>)>;

/// A whole pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// Unique name; `pipelines apply` stores the pipeline under it.
    pub name: Spanned<String>,
    /// Declared parameters, in file order.
    pub params: Vec<Param>,
    /// Cron schedule in UTC (5 fields), if any.
    pub schedule: Option<Spanned<String>>,
    /// Event triggers.
    pub on: Vec<Trigger>,
    /// Steps in file order; the DAG decides the run order.
    pub steps: Vec<Step>,
}

impl Pipeline {
    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name.value == name)
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name.value == name)
    }
}

/// A declared parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Its name, as used in `${params.NAME}`.
    pub name: Spanned<String>,
    /// Its type.
    pub ty: ParamType,
    /// Its default; a parameter without one must be given at run time.
    pub default: Option<Spanned<Value>>,
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// Any text.
    String,
    /// A 64-bit integer.
    Int,
    /// A number; integers are accepted.
    Float,
    /// `true` or `false`.
    Bool,
}

impl ParamType {
    /// The name used in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
        }
    }

    /// Whether `value` is a valid value of this type.
    pub fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ParamType::String, Value::String(_))
                | (ParamType::Int, Value::Int(_))
                | (ParamType::Float, Value::Int(_) | Value::Float(_))
                | (ParamType::Bool, Value::Bool(_))
        )
    }
}

/// A YAML value kept as written (for `with:` and defaults).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string; may hold `${…}` references.
    String(String),
    /// A sequence.
    List(Vec<Spanned<Value>>),
    /// A mapping, in file order.
    Map(Entries<Value>),
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => Json::from(*f),
            Value::String(s) => Json::String(s.clone()),
            Value::List(items) => Json::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// An event trigger under `on:`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The event kind, e.g. `model_version.approved`.
    pub event: Spanned<String>,
    /// Payload fields the event must match.
    pub filter: Entries<Value>,
    /// Parameters set from the event, e.g. `data: "${event.payload.uri}"`.
    pub params: Entries<String>,
    /// Where the trigger starts.
    pub pos: Pos,
}

/// One step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its name, the key under `steps:`.
    pub name: Spanned<String>,
    /// What it does.
    pub kind: StepKind,
    /// Steps that must finish first, besides those implied by references.
    pub needs: Vec<Spanned<String>>,
    /// Declared outputs; each is a directory.
    pub outputs: Vec<Spanned<String>>,
    /// Named inputs (`SEXTANT_INPUT_<NAME>`), usually `${steps.S.outputs.O}`.
    pub inputs: Entries<String>,
    /// Retry policy.
    pub retry: Option<Retry>,
    /// Cache policy.
    pub cache: Option<Cache>,
    /// Wall-clock limit of one attempt.
    pub timeout: Option<Spanned<Duration>>,
    /// Extra environment variables.
    pub env: Entries<String>,
    /// A hyperparameter search over the step's `with` keys (`uses:` steps only).
    pub tune: Option<Tune>,
}

impl Step {
    /// Every string of the step that may hold `${…}` references: inputs, env,
    /// and its kind's command, `with` values, message or model fields.
    pub fn strings(&self) -> Vec<Spanned<String>> {
        let mut out: Vec<Spanned<String>> = Vec::new();
        out.extend(self.inputs.iter().map(|(_, v)| v.clone()));
        out.extend(self.env.iter().map(|(_, v)| v.clone()));
        if let Some(c) = &self.cache {
            out.extend(c.code.iter().cloned());
        }
        match &self.kind {
            StepKind::Run { command } => match command {
                RunCommand::Shell(line) => out.push(line.clone()),
                RunCommand::Argv(args) => out.extend(args.iter().cloned()),
            },
            StepKind::Uses { with, .. } => {
                for (_, v) in with {
                    collect_strings(v, &mut out);
                }
            }
            StepKind::Fail { message } => out.push(message.clone()),
            StepKind::RegisterModel { name, model, .. } => {
                out.push(name.clone());
                out.push(model.clone());
            }
            StepKind::Deploy {
                endpoint, model, ..
            } => {
                out.push(endpoint.clone());
                out.push(model.clone());
            }
            StepKind::Condition { .. } => {}
        }
        out
    }
}

/// Every string inside a `with` value.
fn collect_strings(v: &Spanned<Value>, out: &mut Vec<Spanned<String>>) {
    match &v.value {
        Value::String(s) => out.push(Spanned::new(s.clone(), v.pos)),
        Value::List(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, i)| collect_strings(i, out)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// The kind of a step: exactly one of `run`, `uses`, `condition`, `fail`,
/// `register_model`, `deploy`.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// Any command: a shell line or an argument list.
    Run {
        /// What to run; may hold references.
        command: RunCommand,
    },
    /// A built-in step.
    Uses {
        /// Which one.
        builtin: Spanned<Builtin>,
        /// Its arguments.
        with: Entries<Value>,
    },
    /// A branch on an expression.
    Condition {
        /// The expression, as written.
        source: Spanned<String>,
        /// The parsed expression.
        expr: Expr,
        /// What runs when it is true.
        then: Option<Branch>,
        /// What runs when it is false.
        otherwise: Option<Branch>,
    },
    /// Fails the run.
    Fail {
        /// Why; may hold references.
        message: Spanned<String>,
    },
    /// Registers a model version.
    RegisterModel {
        /// Registered model name.
        name: Spanned<String>,
        /// The model directory, usually `${steps.S.outputs.O}`.
        model: Spanned<String>,
        /// Approval status of the new version.
        approval: Approval,
    },
    /// Deploys a model to a serving endpoint (creating it, or rolling the
    /// model out to its first variant by the endpoint's policy).
    Deploy {
        /// The endpoint's name; may hold references.
        endpoint: Spanned<String>,
        /// `models:/name/N`, `models:/name@alias` or a model directory; may hold references.
        model: Spanned<String>,
        /// Overrides of the endpoint's rollout policy: `all_at_once`,
        /// `canary`, `linear` or `blue_green`.
        strategy: Option<Spanned<String>>,
        /// Canary share or linear step, in percent.
        percent: Option<Spanned<u32>>,
        /// Canary or blue/green bake time.
        bake: Option<Spanned<Duration>>,
        /// Wait for the rollout to end, failing the step if it is rolled back.
        wait: bool,
    },
}

impl StepKind {
    /// The YAML key that names this kind.
    pub fn key(&self) -> &'static str {
        match self {
            StepKind::Run { .. } => "run",
            StepKind::Uses { .. } => "uses",
            StepKind::Condition { .. } => "condition",
            StepKind::Fail { .. } => "fail",
            StepKind::RegisterModel { .. } => "register_model",
            StepKind::Deploy { .. } => "deploy",
        }
    }
}

/// The command of a `run:` step.
#[derive(Clone, Debug, PartialEq)]
pub enum RunCommand {
    /// `run: python ${params.code}/x.py`: run by `sh -c`, each `${…}` inserted as
    /// one single-quoted word part (never split, globbed or expanded).
    Shell(Spanned<String>),
    /// `run: [python, "${params.code}/x.py"]`: executed without a shell, each
    /// element (references substituted) exactly one argument.
    Argv(Vec<Spanned<String>>),
}

/// The built-in steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Train/test split of a CSV.
    Split,
    /// Linear regression.
    Linear,
    /// Logistic regression.
    Logistic,
    /// Gradient-boosted trees.
    Gbdt,
    /// A model's metrics on a CSV.
    Evaluate,
    /// A SageMaker Model Monitor baseline of a CSV, optionally put into a model directory.
    Baseline,
}

impl Builtin {
    /// Every built-in, in the order of the docs.
    pub const ALL: [Builtin; 6] = [
        Builtin::Split,
        Builtin::Linear,
        Builtin::Logistic,
        Builtin::Gbdt,
        Builtin::Evaluate,
        Builtin::Baseline,
    ];

    /// The name after `builtin/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Split => "split",
            Builtin::Linear => "linear",
            Builtin::Logistic => "logistic",
            Builtin::Gbdt => "gbdt",
            Builtin::Evaluate => "evaluate",
            Builtin::Baseline => "baseline",
        }
    }
}

/// What a condition branch does.
#[derive(Clone, Debug, PartialEq)]
pub enum Branch {
    /// Lets these steps run (they are skipped on the other branch).
    Steps(Vec<Spanned<String>>),
    /// Fails the run.
    Fail(Pos),
}

/// Approval status of a registered model version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Waits for a person (the default).
    Pending,
    /// Approved on registration.
    Approved,
    /// Rejected on registration.
    Rejected,
}

/// `retry: {attempts, backoff}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Total attempts, at least 1.
    pub attempts: Spanned<u32>,
    /// Wait before the first retry (doubling after).
    pub backoff: Option<Spanned<Duration>>,
}

/// `cache: {expire_after, code}`: the step may reuse the result of an
/// earlier execution with the same cache key.
#[derive(Clone, Debug, PartialEq)]
pub struct Cache {
    /// How long a cached result stays usable; forever when absent.
    pub expire_after: Option<Spanned<Duration>>,
    /// Files and directories whose contents are part of the key besides the
    /// files the step names itself (e.g. a source tree the command imports).
    pub code: Vec<Spanned<String>>,
    /// Where `cache:` starts.
    pub pos: Pos,
}

/// `tune:` on a step.
#[derive(Clone, Debug, PartialEq)]
pub struct Tune {
    /// The search space per `with` key.
    pub params: Entries<SearchSpace>,
    /// How trials are chosen.
    pub strategy: Strategy,
    /// How many trials (random and adaptive strategies).
    pub trials: Option<Spanned<u32>>,
    /// Trials run at once.
    pub parallel: u32,
    /// The metric that picks the best trial.
    pub metric: Spanned<String>,
    /// Whether lower or higher is better.
    pub goal: Goal,
    /// Where `tune:` starts.
    pub pos: Pos,
}

/// The values a tuned key may take.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchSpace {
    /// One of these values.
    Choice(Vec<Value>),
    /// Uniform between the bounds.
    Uniform(f64, f64),
    /// Log-uniform between the bounds (both positive).
    LogUniform(f64, f64),
    /// An integer between the bounds, inclusive.
    IntRange(i64, i64),
}

/// Tuning strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every combination of the choices.
    Grid,
    /// Independent random samples.
    Random,
    /// Successive halving: many cheap trials, the best continue.
    Halving,
}

/// Direction of the tuning metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Lower is better.
    Minimize,
    /// Higher is better.
    Maximize,
}

/// Parses a duration such as `500ms`, `5s`, `10m`, `2h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{text}': expected a number and a unit (ms, s, m, h, d), like 5s, 10m or 7d"
        )
    };
    let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration '{text}' is too long"))
}

/// Whether `name` is a valid step, param or output name: a letter or `_`,
/// then letters, digits, `_` or `-`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
