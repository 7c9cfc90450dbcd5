//! Checks across the whole spec: names, references, branches, schedule,
//! parameter defaults, the `with` keys of built-in steps and cycles. Every
//! problem is collected.

use std::collections::{BTreeSet, HashMap};

use crate::Diagnostic;
use crate::builtins;
use crate::condition::Expr;
use crate::dag::Dag;
use crate::refs::{self, Ref};
use crate::spec::*;

/// Why one step waits for another, for cycle messages.
#[derive(Clone)]
enum Why {
    Needs,
    Reference(String),
    Branch(&'static str),
}

struct Checker<'p> {
    pipeline: &'p Pipeline,
    broken: &'p BTreeSet<String>,
    index: HashMap<&'p str, usize>,
    diagnostics: &'p mut Vec<Diagnostic>,
    /// (before, after, why)
    edges: Vec<(usize, usize, Why)>,
}

/// Validates `p`, appending problems to `diagnostics`; returns the DAG when
/// the steps form one.
pub(crate) fn validate(
    p: &Pipeline,
    broken: &BTreeSet<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Dag> {
    let index = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.value.as_str(), i))
        .collect();
    let mut c = Checker {
        pipeline: p,
        broken,
        index,
        diagnostics,
        edges: Vec::new(),
    };
    c.top();
    for (i, step) in p.steps.iter().enumerate() {
        c.step(i, step);
    }
    let plain: Vec<(usize, usize)> = c.edges.iter().map(|(a, b, _)| (*a, *b)).collect();
    match Dag::new(p.steps.len(), &plain) {
        Ok(dag) => Some(dag),
        Err(cycles) => {
            for cycle in cycles {
                c.cycle(&cycle);
            }
            None
        }
    }
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(pos, message));
    }

    fn top(&mut self) {
        let p = self.pipeline;
        if !p.name.value.is_empty() && !is_valid_name(&p.name.value) {
            self.error(
                p.name.pos,
                format!(
                    "invalid pipeline name '{}': use letters, digits, '_' and '-'",
                    p.name.value
                ),
            );
        }
        for param in &p.params {
            if !is_valid_name(&param.name.value) {
                self.error(
                    param.name.pos,
                    format!(
                        "invalid parameter name '{}': use letters, digits, '_' and '-'",
                        param.name.value
                    ),
                );
            }
            if let Some(d) = &param.default
                && !param.ty.accepts(&d.value)
            {
                self.error(
                    d.pos,
                    format!(
                        "default of parameter '{}' is {}, but its type is {}",
                        param.name.value,
                        d.value.kind(),
                        param.ty.as_str()
                    ),
                );
            }
        }
        if let Some(s) = &p.schedule
            && let Err(e) = crate::cron::parse_cron(&s.value)
        {
            self.error(s.pos, e.to_string());
        }
        for trigger in &p.on {
            if trigger.event.value.trim().is_empty() {
                self.error(trigger.event.pos, "empty event name in a trigger");
            }
            for (name, value) in &trigger.params {
                if p.param(&name.value).is_none() {
                    self.error(
                        name.pos,
                        format!(
                            "trigger sets unknown parameter '{}'{}",
                            name.value,
                            self.suggest_param(&name.value)
                        ),
                    );
                }
                for found in refs::scan(&value.value) {
                    match found {
                        Err(e) => self.error(at(value, e.offset), e.message),
                        Ok(f)
                            if matches!(
                                f.reference,
                                Ref::EventPayload(_) | Ref::EventSubject | Ref::EventKind
                            ) => {}
                        Ok(f) => self.error(
                            at(value, f.offset),
                            format!("'{}' is not available in a trigger: use '${{event.payload.<field>}}'", f.reference),
                        ),
                    }
                }
            }
        }
    }

    fn suggest_param(&self, name: &str) -> String {
        suggest(
            name,
            self.pipeline.params.iter().map(|p| p.name.value.as_str()),
        )
    }

    fn suggest_step(&self, name: &str) -> String {
        suggest(
            name,
            self.pipeline.steps.iter().map(|s| s.name.value.as_str()),
        )
    }

    /// The index of step `name`, reporting it if unknown; `None` also for
    /// broken steps, which were reported already.
    fn step_ref(&mut self, name: &Spanned<String>, what: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(name.value.as_str()) {
            return Some(i);
        }
        if !self.broken.contains(&name.value) {
            let hint = self.suggest_step(&name.value);
            self.error(
                name.pos,
                format!("{what} unknown step '{}'{hint}", name.value),
            );
        }
        None
    }

    fn step(&mut self, i: usize, step: &Step) {
        let name = &step.name.value;
        if !is_valid_name(name) {
            self.error(
                step.name.pos,
                format!("invalid step name '{name}': use letters, digits, '_' and '-'"),
            );
        }
        let mut seen = BTreeSet::new();
        for o in &step.outputs {
            if !is_valid_name(&o.value) {
                self.error(o.pos, format!("invalid output name '{}' in step '{name}': use letters, digits, '_' and '-'", o.value));
            }
            if !seen.insert(o.value.as_str()) {
                self.error(
                    o.pos,
                    format!("duplicate output '{}' in step '{name}'", o.value),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for n in &step.needs {
            if !seen.insert(n.value.as_str()) {
                self.error(
                    n.pos,
                    format!("duplicate '{}' in 'needs' of step '{name}'", n.value),
                );
            } else if let Some(j) = self.step_ref(n, &format!("step '{name}' needs")) {
                self.edges.push((j, i, Why::Needs));
            }
        }
        match &step.kind {
            StepKind::Uses { builtin, with } => {
                self.builtin_with(step, builtin, with);
                if let Some(t) = &step.tune {
                    self.diagnostics
                        .extend(crate::tune::check(step, builtin, t));
                }
            }
            StepKind::Condition {
                source,
                expr,
                then,
                otherwise,
            } => self.condition(i, step, source, expr, [("then", then), ("else", otherwise)]),
            StepKind::Run {
                command: RunCommand::Shell(line),
            } => {
                for m in crate::shell::misplaced_references(&line.value) {
                    self.error(at(line, m.offset), m.message);
                }
            }
            StepKind::Run {
                command: RunCommand::Argv(_),
            }
            | StepKind::Fail { .. }
            | StepKind::RegisterModel { .. }
            | StepKind::Deploy { .. } => {}
        }
        if let Some(c) = &step.cache
            && !matches!(step.kind, StepKind::Run { .. } | StepKind::Uses { .. })
        {
            self.error(
                c.pos,
                format!(
                    "'cache' on step '{name}': only run: and uses: steps can be cached, not {}:",
                    step.kind.key()
                ),
            );
        }
        for s in &step.strings() {
            self.references(i, step, s);
        }
    }

    /// Unknown keys in the `with` of a built-in step, at the key, and missing required ones,
    /// at the `uses:` value.
    fn builtin_with(&mut self, step: &Step, builtin: &Spanned<Builtin>, with: &Entries<Value>) {
        let name = format!("builtin/{}", builtin.value.as_str());
        let (Some(accepted), Some(required)) = (
            builtins::builtin_keys(&name),
            builtins::builtin_required_keys(&name),
        ) else {
            self.error(
                builtin.pos,
                format!("{name} cannot run yet: no built-in step implements it"),
            );
            return;
        };
        for (key, _) in with {
            if accepted.contains(&key.value.as_str()) {
                continue;
            }
            let hint = closest(&key.value, accepted.iter().copied())
                .map(|k| format!("; did you mean '{k}'?"))
                .unwrap_or_default();
            self.error(
                key.pos,
                format!(
                    "unknown key '{}' for {name} (accepted: {}{hint})",
                    key.value,
                    accepted.join(", ")
                ),
            );
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| !with.iter().any(|(k, _)| k.value == *r))
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(|k| format!("'{k}'")).collect();
            self.error(
                builtin.pos,
                format!(
                    "step '{}' lacks {} in 'with': {name} requires {}",
                    step.name.value,
                    keys.join(", "),
                    required.join(", ")
                ),
            );
        }
    }

    fn references(&mut self, i: usize, step: &Step, s: &Spanned<String>) {
        let name = &step.name.value;
        for found in refs::scan(&s.value) {
            let f = match found {
                Ok(f) => f,
                Err(e) => {
                    self.error(at(s, e.offset), e.message);
                    continue;
                }
            };
            let pos = at(s, f.offset);
            let r = f.reference.to_string();
            match &f.reference {
                Ref::Param(x) => {
                    if self.pipeline.param(x).is_none() {
                        let hint = self.suggest_param(x);
                        self.error(pos, format!("unknown parameter '{x}' in '{r}'{hint}"));
                    }
                }
                Ref::StepOutput { step: s2, output }
                | Ref::StepMetric {
                    step: s2,
                    metric: output,
                } => {
                    let is_output = matches!(f.reference, Ref::StepOutput { .. });
                    if s2 == name {
                        let what = if is_output {
                            "use '${outputs.<name>}' for its own outputs"
                        } else {
                            "a step cannot read its own metrics"
                        };
                        self.error(
                            pos,
                            format!("step '{name}' refers to itself in '{r}': {what}"),
                        );
                        continue;
                    }
                    let Some(j) =
                        self.step_ref(&Spanned::new(s2.clone(), pos), &format!("'{r}' refers to"))
                    else {
                        continue;
                    };
                    let producer = &self.pipeline.steps[j];
                    if is_output && !producer.outputs.iter().any(|o| &o.value == output) {
                        let declared: Vec<&str> =
                            producer.outputs.iter().map(|o| o.value.as_str()).collect();
                        let has = if declared.is_empty() {
                            "it declares none".to_string()
                        } else {
                            format!("it declares {}", declared.join(", "))
                        };
                        self.error(
                            pos,
                            format!("step '{s2}' has no output '{output}' in '{r}' ({has})"),
                        );
                    }
                    self.edges.push((j, i, Why::Reference(r)));
                }
                Ref::Output(o) => {
                    if !step.outputs.iter().any(|x| &x.value == o) {
                        self.error(pos, format!("step '{name}' does not declare output '{o}' used in '{r}' (add it to 'outputs')"));
                    }
                }
                Ref::EventPayload(_) | Ref::EventSubject | Ref::EventKind => {
                    self.error(pos, format!("'{r}' is only available in 'on' triggers"));
                }
                Ref::RunId => {}
            }
        }
    }

    fn condition(
        &mut self,
        i: usize,
        step: &Step,
        source: &Spanned<String>,
        expr: &Expr,
        branches: [(&'static str, &Option<Branch>); 2],
    ) {
        let name = &step.name.value;
        let at_offset = |offset: usize| {
            if source.value.contains('\n') {
                source.pos
            } else {
                source.pos.right(offset)
            }
        };
        for path in expr.paths() {
            match path {
                Expr::Param { name: x, offset } if self.pipeline.param(x).is_none() => {
                    let hint = self.suggest_param(x);
                    self.error(
                        at_offset(*offset),
                        format!("unknown parameter '{x}' in the condition of step '{name}'{hint}"),
                    );
                }
                Expr::Metric {
                    step: s2,
                    metric,
                    offset,
                } => {
                    let pos = at_offset(*offset);
                    if s2 == name {
                        self.error(
                            pos,
                            format!("the condition of step '{name}' reads its own metrics"),
                        );
                    } else if let Some(j) = self.step_ref(
                        &Spanned::new(s2.clone(), pos),
                        &format!("the condition of step '{name}' reads"),
                    ) {
                        self.edges.push((
                            j,
                            i,
                            Why::Reference(format!("steps.{s2}.metrics.{metric}")),
                        ));
                    }
                }
                _ => {}
            }
        }
        let mut seen: HashMap<&str, &'static str> = HashMap::new();
        for (which, branch) in branches {
            let Some(Branch::Steps(targets)) = branch else {
                continue;
            };
            for t in targets {
                if t.value == *name {
                    self.error(t.pos, format!("step '{name}' lists itself in '{which}'"));
                    continue;
                }
                if let Some(prev) = seen.insert(t.value.as_str(), which) {
                    let msg = if prev == which {
                        format!("duplicate step '{}' in '{which}' of step '{name}'", t.value)
                    } else {
                        format!(
                            "step '{}' is in both 'then' and 'else' of step '{name}'",
                            t.value
                        )
                    };
                    self.error(t.pos, msg);
                    continue;
                }
                if let Some(j) = self.step_ref(t, &format!("'{which}' of step '{name}' names")) {
                    self.edges.push((i, j, Why::Branch(which)));
                }
            }
        }
    }

    fn cycle(&mut self, cycle: &[usize]) {
        let steps = &self.pipeline.steps;
        let mut parts = Vec::new();
        for (k, &a) in cycle.iter().enumerate() {
            let b = cycle[(k + 1) % cycle.len()];
            let why = self
                .edges
                .iter()
                .find(|(before, after, _)| *before == b && *after == a)
                .map(|(_, _, w)| w.clone())
                .unwrap_or(Why::Needs);
            let (an, bn) = (&steps[a].name.value, &steps[b].name.value);
            parts.push(match why {
                Why::Needs => format!("'{an}' needs '{bn}'"),
                Why::Reference(r) => format!("'{an}' uses '{r}'"),
                Why::Branch(which) => format!("'{an}' is in '{which}' of '{bn}'"),
            });
        }
        let pos = steps[cycle[0]].name.pos;
        self.error(pos, format!("dependency cycle: {}", parts.join(", ")));
    }
}

/// The position `offset` characters into a string value, if it is on one line.
fn at(s: &Spanned<String>, offset: usize) -> Pos {
    let before: String = s.value.chars().take(offset).collect();
    if before.contains('\n') {
        s.pos
    } else {
        s.pos.right(offset)
    }
}

/// ` (did you mean 'x'?)` when a known name is close to `name`.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    closest(name, known)
        .map(|k| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// The known name closest to `name`, if it is a likely typo of it.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (strsim::damerau_levenshtein(k, name), k))
        .filter(|(d, _)| *d <= 2 && *d < name.chars().count())
        .min()
        .map(|(_, k)| k)
}
