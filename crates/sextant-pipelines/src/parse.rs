//! Builds the spec from the YAML tree by hand, so that unknown keys, wrong
//! types and missing fields are reported at their line and column (a serde
//! derive would stop at the first error and lose positions).

use std::collections::BTreeSet;
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use crate::Diagnostic;
use crate::condition;
use crate::spec::*;

type Node = MarkedYamlOwned;

/// The outcome of parsing: a pipeline when the file's shape allowed one
/// (possibly missing broken steps), and every problem met.
pub(crate) struct Parsed {
    pub pipeline: Option<Pipeline>,
    /// Steps left out of `pipeline` because they could not be parsed; other
    /// checks do not report references to them as dangling.
    pub broken_steps: BTreeSet<String>,
    pub diagnostics: Vec<Diagnostic>,
}

const TOP_KEYS: &[&str] = &["name", "params", "schedule", "on", "steps"];
const PARAM_KEYS: &[&str] = &["type", "default"];
const TRIGGER_KEYS: &[&str] = &["event", "where", "params"];
const KIND_KEYS: &[&str] = &[
    "run",
    "uses",
    "condition",
    "fail",
    "register_model",
    "deploy",
];
const COMMON_KEYS: &[&str] = &[
    "needs", "outputs", "inputs", "retry", "cache", "timeout", "env",
];
/// Keys other tools use for what Sextant calls otherwise (GitHub Actions,
/// Argo, Airflow, Kubeflow…), too far from ours for a spelling hint.
const ALIASES: &[(&str, &str)] = &[
    ("depends_on", "needs"),
    ("dependsOn", "needs"),
    ("depends", "needs"),
    ("dependencies", "needs"),
    ("requires", "needs"),
    ("after", "needs"),
    ("upstream", "needs"),
    ("command", "run"),
    ("cmd", "run"),
    ("script", "run"),
    ("shell", "run"),
    ("args", "with"),
    ("arguments", "with"),
    ("parameters", "with"),
    ("environment", "env"),
    ("retries", "retry"),
    ("if", "condition"),
    ("when", "condition"),
    ("artifacts", "outputs"),
    ("timeout_seconds", "timeout"),
];

/// The keys of a step besides its kind and the common ones.
const STEP_EXTRA_KEYS: &[&str] = &["with", "then", "else", "tune"];

pub(crate) fn parse(text: &str) -> Parsed {
    let mut p = Parser {
        source: text.chars().collect(),
        diagnostics: Vec::new(),
        broken_steps: BTreeSet::new(),
    };
    let pipeline = match Node::load_from_str(text) {
        Err(e) => {
            let m = e.marker();
            p.error(
                Pos {
                    line: m.line().max(1),
                    col: m.col() + 1,
                },
                format!("invalid YAML: {}", e.info()),
            );
            None
        }
        Ok(docs) => match docs.as_slice() {
            [] => {
                p.error(
                    Pos { line: 1, col: 1 },
                    "empty file: expected a pipeline mapping",
                );
                None
            }
            [doc] => p.pipeline(doc),
            [_, second, ..] => {
                p.error(pos(second), "a pipeline file holds one YAML document");
                None
            }
        },
    };
    Parsed {
        pipeline,
        broken_steps: p.broken_steps,
        diagnostics: p.diagnostics,
    }
}

pub(crate) fn pos(node: &Node) -> Pos {
    Pos {
        line: node.span.start.line().max(1),
        col: node.span.start.col() + 1,
    }
}

pub(crate) fn describe(node: &Node) -> &'static str {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::Null) => "nothing",
        YamlDataOwned::Value(ScalarOwned::Boolean(_)) => "a bool",
        YamlDataOwned::Value(ScalarOwned::Integer(_)) => "an int",
        YamlDataOwned::Value(ScalarOwned::FloatingPoint(_)) => "a float",
        YamlDataOwned::Value(ScalarOwned::String(_)) | YamlDataOwned::Representation(..) => {
            "a string"
        }
        YamlDataOwned::Sequence(_) => "a list",
        YamlDataOwned::Mapping(_) => "a mapping",
        YamlDataOwned::Tagged(..) => "a tagged value",
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => "an unreadable value",
    }
}

/// ` (did you mean 'x'?)` for the allowed word closest to `word`, when one is close.
pub(crate) fn did_you_mean(allowed: &[&str], word: &str) -> String {
    // Other tools' spellings of our keys (`depends_on` → `needs`) first: they
    // are too far apart to be caught as typos.
    if let Some((_, ours)) = ALIASES
        .iter()
        .find(|(other, ours)| *other == word && allowed.contains(ours))
    {
        return format!(" (did you mean '{ours}'?)");
    }
    let best = allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(a, word), *a))
        .min();
    match best {
        Some((d, a)) if d <= 2 && d < word.chars().count() => format!(" (did you mean '{a}'?)"),
        _ => String::new(),
    }
}

struct Parser {
    source: Vec<char>,
    diagnostics: Vec<Diagnostic>,
    broken_steps: BTreeSet<String>,
}

/// The entries of a mapping with string keys.
type Map<'n> = Vec<(Spanned<String>, &'n Node)>;

/// The value under `key` of a mapping.
fn field<'n>(fields: &Map<'n>, key: &str) -> Option<&'n Node> {
    fields.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v)
}

impl Parser {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(pos, message));
    }

    fn expected(&mut self, node: &Node, what: &str, context: &str) {
        self.error(
            pos(node),
            format!("expected {what} for {context}, found {}", describe(node)),
        );
    }

    /// Where the characters of a string scalar start: after its opening
    /// quote, if it has one.
    fn content_pos(&self, node: &Node) -> Pos {
        let p = pos(node);
        match self.source.get(node.span.start.index()) {
            Some('"' | '\'') => p.right(1),
            _ => p,
        }
    }

    fn map<'n>(&mut self, node: &'n Node, context: &str) -> Option<Map<'n>> {
        let YamlDataOwned::Mapping(m) = &node.data else {
            self.expected(node, "a mapping", context);
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in m.iter() {
            match &k.data {
                YamlDataOwned::Value(ScalarOwned::String(s)) => {
                    out.push((Spanned::new(s.clone(), pos(k)), v));
                }
                _ => self.expected(k, "a string key", context),
            }
        }
        Some(out)
    }

    /// Reports keys not in `allowed`, suggesting the closest allowed one.
    fn check_keys(&mut self, map: &Map<'_>, allowed: &[&str], context: &str) {
        for (k, _) in map {
            if allowed.contains(&k.value.as_str()) {
                continue;
            }
            let hint = did_you_mean(allowed, &k.value);
            self.error(
                k.pos,
                format!("unknown key '{}' in {context}{hint}", k.value),
            );
        }
    }

    fn string(&mut self, node: &Node, context: &str) -> Option<Spanned<String>> {
        match &node.data {
            YamlDataOwned::Value(ScalarOwned::String(s)) => {
                Some(Spanned::new(s.clone(), self.content_pos(node)))
            }
            _ => {
                self.expected(node, "a string", context);
                None
            }
        }
    }

    /// A scalar of any type as text (for env values and the like).
    fn text(&mut self, node: &Node, context: &str) -> Option<Spanned<String>> {
        let text = match &node.data {
            YamlDataOwned::Value(ScalarOwned::String(s)) => s.clone(),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => f.to_string(),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => b.to_string(),
            _ => {
                self.expected(node, "a string", context);
                return None;
            }
        };
        Some(Spanned::new(text, self.content_pos(node)))
    }

    fn uint(&mut self, node: &Node, min: u32, context: &str) -> Option<Spanned<u32>> {
        match &node.data {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => match u32::try_from(*i) {
                Ok(n) if n >= min => Some(Spanned::new(n, pos(node))),
                _ => {
                    self.error(
                        pos(node),
                        format!("{context} must be an integer of at least {min}"),
                    );
                    None
                }
            },
            _ => {
                self.expected(node, "an integer", context);
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, context: &str) -> Option<Spanned<Duration>> {
        let s = self.text(node, context)?;
        match parse_duration(&s.value) {
            Ok(d) => Some(Spanned::new(d, pos(node))),
            Err(e) => {
                self.error(pos(node), format!("{e} in {context}"));
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, context: &str) -> Vec<Spanned<String>> {
        let YamlDataOwned::Sequence(items) = &node.data else {
            self.expected(node, "a list of names", context);
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| self.string(n, context))
            .collect()
    }

    fn string_map(&mut self, node: &Node, context: &str) -> Entries<String> {
        let Some(map) = self.map(node, context) else {
            return Vec::new();
        };
        map.into_iter()
            .filter_map(|(k, v)| {
                let ctx = format!("'{}' in {context}", k.value);
                self.text(v, &ctx).map(|v| (k, v))
            })
            .collect()
    }

    fn value(&mut self, node: &Node, context: &str) -> Spanned<Value> {
        let value = match &node.data {
            YamlDataOwned::Value(ScalarOwned::Null) => Value::Null,
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Value::Bool(*b),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => Value::Int(*i),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Value::Float(f.into_inner()),
            YamlDataOwned::Value(ScalarOwned::String(s)) => {
                return Spanned::new(Value::String(s.clone()), self.content_pos(node));
            }
            YamlDataOwned::Sequence(items) => {
                Value::List(items.iter().map(|n| self.value(n, context)).collect())
            }
            YamlDataOwned::Mapping(_) => {
                let map = self.map(node, context).unwrap_or_default();
                Value::Map(
                    map.into_iter()
                        .map(|(k, v)| (k, self.value(v, context)))
                        .collect(),
                )
            }
            _ => {
                self.expected(
                    node,
                    "a plain value (tags and aliases are not supported)",
                    context,
                );
                Value::Null
            }
        };
        Spanned::new(value, pos(node))
    }

    fn value_map(&mut self, node: &Node, context: &str) -> Entries<Value> {
        let Some(map) = self.map(node, context) else {
            return Vec::new();
        };
        map.into_iter()
            .map(|(k, v)| {
                let v = self.value(v, context);
                (k, v)
            })
            .collect()
    }

    fn pipeline(&mut self, doc: &Node) -> Option<Pipeline> {
        let map = self.map(doc, "the pipeline")?;
        self.check_keys(&map, TOP_KEYS, "the pipeline");
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let name = match get("name") {
            Some(n) => self.string(n, "'name'"),
            None => {
                self.error(pos(doc), "missing key 'name' in the pipeline");
                None
            }
        };
        let params = get("params").map(|n| self.params(n)).unwrap_or_default();
        let schedule = get("schedule").and_then(|n| self.string(n, "'schedule'"));
        let on = get("on").map(|n| self.triggers(n)).unwrap_or_default();
        let steps = match get("steps") {
            Some(n) => self.steps(n),
            None => {
                self.error(pos(doc), "missing key 'steps' in the pipeline");
                Vec::new()
            }
        };
        Some(Pipeline {
            name: name.unwrap_or_else(|| Spanned::new(String::new(), pos(doc))),
            params,
            schedule,
            on,
            steps,
        })
    }

    fn params(&mut self, node: &Node) -> Vec<Param> {
        let Some(map) = self.map(node, "'params'") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, spec) in map {
            let context = format!("parameter '{}'", name.value);
            let Some(fields) = self.map(spec, &context) else {
                continue;
            };
            self.check_keys(&fields, PARAM_KEYS, &context);
            let get = |key: &str| fields.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
            let ty = match get("type") {
                None => {
                    self.error(
                        pos(spec),
                        format!(
                            "missing key 'type' in {context} (one of string, int, float, bool)"
                        ),
                    );
                    continue;
                }
                Some(t) => match self.string(t, &format!("'type' of {context}")) {
                    None => continue,
                    Some(t) => match t.value.as_str() {
                        "string" => ParamType::String,
                        "int" => ParamType::Int,
                        "float" => ParamType::Float,
                        "bool" => ParamType::Bool,
                        other => {
                            self.error(
                                t.pos,
                                format!("unknown type '{other}' of {context}: expected string, int, float or bool"),
                            );
                            continue;
                        }
                    },
                },
            };
            let default = get("default").map(|d| self.value(d, &context));
            out.push(Param { name, ty, default });
        }
        out
    }

    fn triggers(&mut self, node: &Node) -> Vec<Trigger> {
        let YamlDataOwned::Sequence(items) = &node.data else {
            self.expected(node, "a list of triggers", "'on'");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(map) = self.map(item, "a trigger in 'on'") else {
                continue;
            };
            self.check_keys(&map, TRIGGER_KEYS, "a trigger in 'on'");
            let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
            let event = match get("event") {
                Some(e) => self.string(e, "'event'"),
                None => {
                    self.error(pos(item), "missing key 'event' in a trigger in 'on'");
                    None
                }
            };
            let filter = get("where")
                .map(|w| self.value_map(w, "'where'"))
                .unwrap_or_default();
            let params = get("params")
                .map(|w| self.string_map(w, "'params' of a trigger"))
                .unwrap_or_default();
            if let Some(event) = event {
                out.push(Trigger {
                    event,
                    filter,
                    params,
                    pos: pos(item),
                });
            }
        }
        out
    }

    fn steps(&mut self, node: &Node) -> Vec<Step> {
        let Some(map) = self.map(node, "'steps'") else {
            return Vec::new();
        };
        if map.is_empty() {
            self.error(pos(node), "a pipeline needs at least one step");
        }
        let mut out = Vec::new();
        for (name, body) in map {
            match self.step(name.clone(), body) {
                Some(step) => out.push(step),
                None => {
                    self.broken_steps.insert(name.value);
                }
            }
        }
        out
    }

    fn step(&mut self, name: Spanned<String>, body: &Node) -> Option<Step> {
        let context = format!("step '{}'", name.value);
        let map = self.map(body, &context)?;
        let allowed: Vec<&str> = KIND_KEYS
            .iter()
            .chain(STEP_EXTRA_KEYS)
            .chain(COMMON_KEYS)
            .copied()
            .collect();
        self.check_keys(&map, &allowed, &context);
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let kinds: Vec<&Spanned<String>> = map
            .iter()
            .filter(|(k, _)| KIND_KEYS.contains(&k.value.as_str()))
            .map(|(k, _)| k)
            .collect();
        let kind_key = match kinds.as_slice() {
            [] => {
                self.error(
                    name.pos,
                    format!("{context} has no kind: expected one of run, uses, condition, fail, register_model, deploy"),
                );
                return None;
            }
            [k] => k.value.clone(),
            [a, b, ..] => {
                self.error(
                    b.pos,
                    format!(
                        "{context} has both '{}' and '{}': a step has exactly one kind",
                        a.value, b.value
                    ),
                );
                return None;
            }
        };
        for (k, _) in &map {
            let only = match k.value.as_str() {
                "with" | "tune" => "uses",
                "then" | "else" => "condition",
                _ => continue,
            };
            if kind_key != only {
                self.error(
                    k.pos,
                    format!("'{}' is only allowed on '{only}' steps, and {context} is a '{kind_key}' step", k.value),
                );
            }
        }
        let kind_node = get(&kind_key).expect("kind key is in the map");
        let kind = self.kind(&kind_key, kind_node, &map, &context)?;
        let mut step = Step {
            name,
            kind,
            needs: Vec::new(),
            outputs: Vec::new(),
            inputs: Vec::new(),
            retry: None,
            cache: None,
            timeout: None,
            env: Vec::new(),
            tune: None,
        };
        for (k, v) in &map {
            let ctx = format!("'{}' of {context}", k.value);
            match k.value.as_str() {
                "needs" => step.needs = self.string_list(v, &ctx),
                "outputs" => step.outputs = self.string_list(v, &ctx),
                "inputs" => step.inputs = self.string_map(v, &ctx),
                "env" => step.env = self.string_map(v, &ctx),
                "timeout" => step.timeout = self.duration(v, &ctx),
                "retry" => step.retry = self.retry(v, &ctx),
                "cache" => step.cache = self.cache(v, &ctx),
                "tune" if kind_key == "uses" => step.tune = self.tune(v, &ctx),
                _ => debug_assert!(
                    !COMMON_KEYS.contains(&k.value.as_str()),
                    "common key {} not handled",
                    k.value
                ),
            }
        }
        Some(step)
    }

    fn kind(&mut self, key: &str, node: &Node, map: &Map<'_>, context: &str) -> Option<StepKind> {
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let ctx = format!("'{key}' of {context}");
        match key {
            "run" => {
                let command = match &node.data {
                    YamlDataOwned::Sequence(items) => {
                        if items.is_empty() {
                            self.error(
                                pos(node),
                                format!(
                                    "{ctx} is an empty list: expected the program and its arguments"
                                ),
                            );
                            return None;
                        }
                        let args: Vec<_> = items
                            .iter()
                            .filter_map(|n| self.text(n, &format!("an argument in {ctx}")))
                            .collect();
                        if args.len() < items.len() {
                            return None;
                        }
                        RunCommand::Argv(args)
                    }
                    YamlDataOwned::Value(ScalarOwned::String(_)) => {
                        RunCommand::Shell(self.string(node, &ctx)?)
                    }
                    _ => {
                        self.expected(node, "a command line or a list of arguments", &ctx);
                        return None;
                    }
                };
                Some(StepKind::Run { command })
            }
            "uses" => {
                let uses = self.string(node, &ctx)?;
                let builtin = uses
                    .value
                    .strip_prefix("builtin/")
                    .and_then(|b| Builtin::ALL.into_iter().find(|x| x.as_str() == b));
                let Some(builtin) = builtin else {
                    let names: Vec<String> = Builtin::ALL
                        .iter()
                        .map(|b| format!("builtin/{}", b.as_str()))
                        .collect();
                    self.error(
                        uses.pos,
                        format!(
                            "unknown step '{}' in {ctx}: expected one of {}",
                            uses.value,
                            names.join(", ")
                        ),
                    );
                    return None;
                };
                let with = get("with")
                    .map(|w| self.value_map(w, &format!("'with' of {context}")))
                    .unwrap_or_default();
                Some(StepKind::Uses {
                    builtin: Spanned::new(builtin, uses.pos),
                    with,
                })
            }
            "condition" => {
                let source = self.string(node, &ctx)?;
                let expr = match condition::parse(&source.value) {
                    Ok(e) => e,
                    Err(e) => {
                        let at = if source.value.contains('\n') {
                            source.pos
                        } else {
                            source.pos.right(e.offset)
                        };
                        self.error(at, format!("{} in {ctx}", e.message));
                        return None;
                    }
                };
                let then =
                    get("then").and_then(|n| self.branch(n, &format!("'then' of {context}")));
                let otherwise =
                    get("else").and_then(|n| self.branch(n, &format!("'else' of {context}")));
                if get("then").is_none() && get("else").is_none() {
                    self.error(pos(node), format!("{context} needs 'then', 'else' or both"));
                }
                Some(StepKind::Condition {
                    source,
                    expr,
                    then,
                    otherwise,
                })
            }
            "fail" => Some(StepKind::Fail {
                message: self.text(node, &ctx)?,
            }),
            "register_model" => {
                let fields = self.map(node, &ctx)?;
                self.check_keys(&fields, &["name", "model", "approval"], &ctx);
                let f = |key: &str| field(&fields, key);
                let required =
                    |p: &mut Parser, key: &str| p.required_string(&fields, key, node, &ctx);
                let name = required(self, "name");
                let model = required(self, "model");
                let approval = match f("approval") {
                    None => Some(Approval::Pending),
                    Some(a) => {
                        let a = self.string(a, &format!("'approval' of {ctx}"))?;
                        match a.value.as_str() {
                            "pending" => Some(Approval::Pending),
                            "approved" => Some(Approval::Approved),
                            "rejected" => Some(Approval::Rejected),
                            other => {
                                self.error(
                                    a.pos,
                                    format!("unknown approval '{other}' in {ctx}: expected pending, approved or rejected"),
                                );
                                None
                            }
                        }
                    }
                };
                Some(StepKind::RegisterModel {
                    name: name?,
                    model: model?,
                    approval: approval?,
                })
            }
            "deploy" => {
                let fields = self.map(node, &ctx)?;
                self.check_keys(
                    &fields,
                    &["endpoint", "model", "strategy", "percent", "bake", "wait"],
                    &ctx,
                );
                let f = |key: &str| field(&fields, key);
                let required =
                    |p: &mut Parser, key: &str| p.required_string(&fields, key, node, &ctx);
                let endpoint = required(self, "endpoint");
                let model = required(self, "model");
                let mut ok = true;
                let strategy = match f("strategy") {
                    None => None,
                    Some(n) => {
                        let s = self.string(n, &format!("'strategy' of {ctx}"))?;
                        if !matches!(
                            s.value.as_str(),
                            "all_at_once" | "canary" | "linear" | "blue_green"
                        ) {
                            self.error(
                                s.pos,
                                format!("unknown strategy '{}' in {ctx}: expected all_at_once, canary, linear or blue_green", s.value),
                            );
                            ok = false;
                        }
                        Some(s)
                    }
                };
                let percent = match f("percent") {
                    None => None,
                    Some(n) => {
                        let p = self.uint(n, 1, &format!("'percent' of {ctx}"))?;
                        if p.value > 100 {
                            self.error(p.pos, format!("'percent' of {ctx} is above 100"));
                            ok = false;
                        }
                        Some(p)
                    }
                };
                let bake = match f("bake") {
                    None => None,
                    Some(n) => Some(self.duration(n, &format!("'bake' of {ctx}"))?),
                };
                let wait = match f("wait") {
                    None => false,
                    Some(n) => match &n.data {
                        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => *b,
                        _ => {
                            self.expected(n, "true or false", &format!("'wait' of {ctx}"));
                            ok = false;
                            false
                        }
                    },
                };
                ok.then_some(())?;
                Some(StepKind::Deploy {
                    endpoint: endpoint?,
                    model: model?,
                    strategy,
                    percent,
                    bake,
                    wait,
                })
            }
            _ => unreachable!("kind keys are checked against KIND_KEYS"),
        }
    }

    /// The string under `key` of a kind's mapping; missing is an error at `node`.
    fn required_string(
        &mut self,
        fields: &Map<'_>,
        key: &str,
        node: &Node,
        context: &str,
    ) -> Option<Spanned<String>> {
        match field(fields, key) {
            Some(n) => self.string(n, &format!("'{key}' of {context}")),
            None => {
                self.error(pos(node), format!("missing key '{key}' in {context}"));
                None
            }
        }
    }

    fn branch(&mut self, node: &Node, context: &str) -> Option<Branch> {
        match &node.data {
            YamlDataOwned::Value(ScalarOwned::String(s)) if s == "fail" => {
                Some(Branch::Fail(pos(node)))
            }
            YamlDataOwned::Sequence(_) => Some(Branch::Steps(self.string_list(node, context))),
            _ => {
                self.expected(node, "a list of step names or 'fail'", context);
                None
            }
        }
    }

    fn retry(&mut self, node: &Node, context: &str) -> Option<Retry> {
        let map = self.map(node, context)?;
        self.check_keys(&map, &["attempts", "backoff"], context);
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let Some(attempts) = get("attempts") else {
            self.error(pos(node), format!("missing key 'attempts' in {context}"));
            return None;
        };
        let attempts = self.uint(attempts, 1, &format!("'attempts' of {context}"))?;
        let backoff = match get("backoff") {
            Some(b) => Some(self.duration(b, &format!("'backoff' of {context}"))?),
            None => None,
        };
        Some(Retry { attempts, backoff })
    }

    fn cache(&mut self, node: &Node, context: &str) -> Option<Cache> {
        let map = self.map(node, context)?;
        self.check_keys(&map, &["expire_after", "code"], context);
        let expire_after = match map.iter().find(|(k, _)| k.value == "expire_after") {
            Some((_, e)) => Some(self.duration(e, &format!("'expire_after' of {context}"))?),
            None => None,
        };
        let code = match map.iter().find(|(k, _)| k.value == "code") {
            Some((_, c)) => self.string_list(c, &format!("'code' of {context}")),
            None => Vec::new(),
        };
        Some(Cache {
            expire_after,
            code,
            pos: pos(node),
        })
    }

    fn tune(&mut self, node: &Node, context: &str) -> Option<Tune> {
        let map = self.map(node, context)?;
        self.check_keys(
            &map,
            &["params", "strategy", "trials", "parallel", "metric", "goal"],
            context,
        );
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let mut ok = true;
        let params = match get("params") {
            Some(p) => {
                let entries = self
                    .map(p, &format!("'params' of {context}"))
                    .unwrap_or_default();
                let mut out = Vec::new();
                for (k, v) in entries {
                    match self.search_space(v, &format!("'{}' in {context}", k.value)) {
                        Some(space) => out.push((k, Spanned::new(space, pos(v)))),
                        None => ok = false,
                    }
                }
                if out.is_empty() && ok {
                    self.error(pos(p), format!("'params' of {context} is empty"));
                    ok = false;
                }
                out
            }
            None => {
                self.error(pos(node), format!("missing key 'params' in {context}"));
                ok = false;
                Vec::new()
            }
        };
        let keyword =
            |p: &mut Parser, key: &str, choices: &[&str], default: &str| -> Option<String> {
                match get(key) {
                    None => Some(default.to_string()),
                    Some(n) => {
                        let s = p.string(n, &format!("'{key}' of {context}"))?;
                        if choices.contains(&s.value.as_str()) {
                            Some(s.value)
                        } else {
                            p.error(
                                s.pos,
                                format!(
                                    "unknown {key} '{}' in {context}: expected {}",
                                    s.value,
                                    choices.join(", ")
                                ),
                            );
                            None
                        }
                    }
                }
            };
        let strategy =
            match keyword(self, "strategy", &["grid", "random", "halving"], "random")?.as_str() {
                "grid" => Strategy::Grid,
                "halving" => Strategy::Halving,
                _ => Strategy::Random,
            };
        let goal = match keyword(self, "goal", &["minimize", "maximize"], "minimize")?.as_str() {
            "maximize" => Goal::Maximize,
            _ => Goal::Minimize,
        };
        let trials = match get("trials") {
            Some(t) => Some(self.uint(t, 1, &format!("'trials' of {context}"))?),
            None => None,
        };
        let parallel = match get("parallel") {
            Some(t) => self.uint(t, 1, &format!("'parallel' of {context}"))?.value,
            None => 1,
        };
        let metric = match get("metric") {
            Some(m) => self.string(m, &format!("'metric' of {context}"))?,
            None => {
                self.error(pos(node), format!("missing key 'metric' in {context}"));
                return None;
            }
        };
        if strategy == Strategy::Grid {
            for (k, space) in &params {
                if matches!(
                    space.value,
                    SearchSpace::Uniform(..) | SearchSpace::LogUniform(..)
                ) {
                    self.error(
                        space.pos,
                        format!("'{}' in {context} is a continuous range, but the grid strategy needs a list of values or an int range", k.value),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(Tune {
            params,
            strategy,
            trials,
            parallel,
            metric,
            goal,
            pos: pos(node),
        })
    }

    fn search_space(&mut self, node: &Node, context: &str) -> Option<SearchSpace> {
        if let YamlDataOwned::Sequence(items) = &node.data {
            if items.is_empty() {
                self.error(pos(node), format!("{context} has no values to try"));
                return None;
            }
            let values = items.iter().map(|n| self.value(n, context).value).collect();
            return Some(SearchSpace::Choice(values));
        }
        let map = self.map(node, context)?;
        let kinds = ["uniform", "log_uniform", "int"];
        self.check_keys(&map, &kinds, context);
        let [(k, bounds)] = map.as_slice() else {
            self.error(
                pos(node),
                format!("{context} needs a list of values or one of {{uniform: [lo, hi]}}, {{log_uniform: [lo, hi]}}, {{int: [lo, hi]}}"),
            );
            return None;
        };
        let ctx = format!("'{}' of {context}", k.value);
        let nums: Vec<Value> = match &bounds.data {
            YamlDataOwned::Sequence(items) => {
                items.iter().map(|n| self.value(n, &ctx).value).collect()
            }
            _ => Vec::new(),
        };
        let bad = |p: &mut Parser, what: &str| {
            p.error(pos(bounds), format!("{ctx} needs {what}"));
            None
        };
        match (k.value.as_str(), nums.as_slice()) {
            ("int", [Value::Int(lo), Value::Int(hi)]) if lo <= hi => {
                Some(SearchSpace::IntRange(*lo, *hi))
            }
            ("int", _) => bad(self, "two integers [lo, hi] with lo <= hi"),
            (kind, [lo, hi]) => {
                let num = |v: &Value| match v {
                    Value::Int(i) => Some(*i as f64),
                    Value::Float(f) if f.is_finite() => Some(*f),
                    _ => None,
                };
                match (num(lo), num(hi)) {
                    (Some(lo), Some(hi)) if lo < hi && (kind == "uniform" || lo > 0.0) => {
                        Some(if kind == "uniform" {
                            SearchSpace::Uniform(lo, hi)
                        } else {
                            SearchSpace::LogUniform(lo, hi)
                        })
                    }
                    _ if kind == "uniform" => bad(self, "two numbers [lo, hi] with lo < hi"),
                    _ => bad(self, "two positive numbers [lo, hi] with lo < hi"),
                }
            }
            _ => bad(self, "two numbers [lo, hi]"),
        }
    }
}
