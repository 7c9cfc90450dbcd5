//! What a step may refer to while it runs, and `${…}` resolution against it:
//! parameters, upstream outputs and metrics, the run id. Pure: no IO.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};
use sextant_artifacts::data_roots::{DataRoots, OutsideRoots};
use sextant_pipelines::condition::{Env, Val};
use sextant_pipelines::executor::StepCommand;
use sextant_pipelines::refs::{self, Ref};
use sextant_pipelines::shell;
use sextant_pipelines::spec::{self, RunCommand, StepKind, Value};

use super::PipelineError;
use super::failure::StepFailure;

/// What a step may refer to while it runs.
pub(super) struct Context {
    pub(super) run_id: String,
    pub(super) pipeline: String,
    /// The run was started with `--no-cache`.
    pub(super) no_cache: bool,
    /// The user the run acts for (`PipelineRun::started_by`).
    pub(super) started_by: Option<String>,
    pub(super) params: Map<String, Json>,
    pub(super) metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// The digest of each published output of each succeeded step.
    pub(super) outputs: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) run_dir: PathBuf,
    pub(super) step: String,
}

impl Context {
    pub(super) fn output_root(&self, step: &str) -> PathBuf {
        self.run_dir.join(step)
    }

    /// `text` with every `${…}` replaced; `$${` stays a literal `${`.
    pub(super) fn resolve(&self, text: &str) -> Result<String, StepFailure> {
        self.substitute(text, false)
    }

    /// A `run:` command line with every `${…}` replaced by its value as one
    /// single-quoted shell word part, so that no value splits, globs or
    /// expands (validation refused references where that cannot hold).
    pub(super) fn resolve_shell(&self, text: &str) -> Result<String, StepFailure> {
        self.substitute(text, true)
    }

    /// What to execute for a `run:` step.
    pub(super) fn resolve_command(&self, command: &RunCommand) -> Result<StepCommand, StepFailure> {
        Ok(match command {
            RunCommand::Shell(line) => StepCommand::Shell(self.resolve_shell(&line.value)?),
            RunCommand::Argv(args) => StepCommand::Argv(
                args.iter()
                    .map(|a| self.resolve(&a.value))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn substitute(&self, text: &str, quoted: bool) -> Result<String, StepFailure> {
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        for found in refs::scan(text) {
            let found = found.map_err(|e| StepFailure::permanent(e.message))?;
            out.push_str(&literal(&chars[at..found.offset]));
            let value = match &found.reference {
                Ref::Param(p) => match self.params.get(p) {
                    Some(Json::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return Err(StepFailure::permanent(format!("no parameter '{p}'"))),
                },
                Ref::StepOutput { step, output } => {
                    self.output_root(step).join(output).display().to_string()
                }
                Ref::StepMetric { step, metric } => {
                    match self.metrics.get(step).and_then(|m| m.get(metric)) {
                        Some(v) => v.to_string(),
                        None => {
                            return Err(StepFailure::permanent(format!(
                                "step '{step}' logged no metric '{metric}'"
                            )));
                        }
                    }
                }
                Ref::Output(o) => self.output_root(&self.step).join(o).display().to_string(),
                Ref::RunId => self.run_id.clone(),
                Ref::EventPayload(_) | Ref::EventSubject | Ref::EventKind => {
                    return Err(StepFailure::permanent(format!(
                        "{} is only available in `on:` triggers",
                        found.reference
                    )));
                }
            };
            if quoted {
                out.push_str(&shell::quote(&value));
            } else {
                out.push_str(&value);
            }
            // Skip the reference itself: `${`, its text, and `}`.
            let close = chars[found.offset..]
                .iter()
                .position(|&c| c == '}')
                .map_or(chars.len(), |i| found.offset + i + 1);
            at = close;
        }
        out.push_str(&literal(&chars[at.min(chars.len())..]));
        Ok(out)
    }
}

/// Text between references, where `$${` stands for `${`.
fn literal(chars: &[char]) -> String {
    chars.iter().collect::<String>().replace("$${", "${")
}

impl Env for Context {
    fn param(&self, name: &str) -> Option<Val> {
        match self.params.get(name)? {
            Json::String(s) => Some(Val::Str(s.clone())),
            Json::Bool(b) => Some(Val::Bool(*b)),
            v => v.as_f64().map(Val::Num),
        }
    }
    fn metric(&self, step: &str, metric: &str) -> Option<Val> {
        self.metrics.get(step)?.get(metric).copied().map(Val::Num)
    }
}

/// The string arguments of a `uses:` step, references resolved.
pub(super) fn builtin_args(
    ctx: &Context,
    with: &spec::Entries<Value>,
) -> Result<BTreeMap<String, String>, StepFailure> {
    let mut args = BTreeMap::new();
    for (k, v) in with {
        let text = match &v.value {
            Value::String(s) => ctx.resolve(s)?,
            Value::Null => String::new(),
            other => other.to_json().to_string(),
        };
        args.insert(k.value.clone(), text);
    }
    Ok(args)
}

/// Refuses a built-in step (run in this process) that would read a file outside the
/// server's data roots.
pub(super) fn confine_builtin_paths(
    roots: &DataRoots,
    step: &str,
    args: &BTreeMap<String, String>,
) -> Result<(), OutsideRoots> {
    for (key, path) in sextant_pipelines::builtins::input_paths(args) {
        roots.check_tree(&format!("with.{key} of step '{step}'"), &path)?;
    }
    Ok(())
}

/// [`confine_builtin_paths`] at run start, of the paths already known: literal, or made
/// of parameters only. Others are checked when their step runs.
pub(super) fn confine_known_paths(
    roots: &DataRoots,
    pipeline: &spec::Pipeline,
    params: &Map<String, Json>,
) -> Result<(), PipelineError> {
    let ctx = Context {
        run_id: String::new(),
        pipeline: pipeline.name.value.clone(),
        no_cache: false,
        started_by: None,
        params: params.clone(),
        metrics: BTreeMap::new(),
        outputs: BTreeMap::new(),
        run_dir: PathBuf::new(),
        step: String::new(),
    };
    let known = |v: &Value| match v {
        Value::String(s) => refs::scan(s)
            .iter()
            .all(|r| matches!(r, Ok(f) if matches!(f.reference, Ref::Param(_)))),
        _ => true,
    };
    for step in &pipeline.steps {
        let StepKind::Uses { with, .. } = &step.kind else {
            continue;
        };
        let with: spec::Entries<Value> = with
            .iter()
            .filter(|(_, v)| known(&v.value))
            .cloned()
            .collect();
        let args = builtin_args(&ctx, &with).map_err(|f| PipelineError::Invalid(f.message))?;
        confine_builtin_paths(roots, &step.name.value, &args)
            .map_err(|e| PipelineError::Invalid(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            run_id: "r1".into(),
            pipeline: "p".into(),
            no_cache: false,
            started_by: None,
            params: serde_json::json!({"name": "it's", "n": 3})
                .as_object()
                .cloned()
                .unwrap(),
            metrics: [("train".to_string(), [("rmse".to_string(), 0.5)].into())].into(),
            outputs: BTreeMap::new(),
            run_dir: PathBuf::from("/runs/r1"),
            step: "eval".into(),
        }
    }

    #[test]
    fn resolves_params_metrics_outputs_and_the_run_id() {
        let c = ctx();
        let text = "${params.n} ${steps.train.metrics.rmse} ${steps.train.outputs.model} \
                    ${outputs.report} ${run.id}";
        assert_eq!(
            c.resolve(text).unwrap(),
            "3 0.5 /runs/r1/train/model /runs/r1/eval/report r1"
        );
    }

    #[test]
    fn a_doubled_dollar_stays_literal_and_shell_values_are_one_word() {
        let c = ctx();
        assert_eq!(c.resolve("$${params.n}").unwrap(), "${params.n}");
        assert_eq!(
            c.resolve_shell("echo ${params.name}").unwrap(),
            "echo 'it'\\''s'"
        );
    }

    #[test]
    fn unknown_values_and_event_references_fail_for_good() {
        let c = ctx();
        let missing = c.resolve("${steps.train.metrics.auc}").unwrap_err();
        assert!(missing.permanent);
        assert_eq!(missing.message, "step 'train' logged no metric 'auc'");
        let event = c.resolve("${event.kind}").unwrap_err();
        assert!(event.permanent);
        assert!(
            event.message.contains("only available in `on:` triggers"),
            "{}",
            event.message
        );
    }
}
