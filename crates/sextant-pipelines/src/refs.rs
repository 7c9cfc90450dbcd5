//! `${…}` references inside pipeline strings.
//!
//! `$${` is a literal `${`, so shell commands can still say `$${HOME}`.

use std::fmt;

/// What a `${…}` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    /// `${params.X}`.
    Param(String),
    /// `${steps.S.outputs.O}`: the local path of another step's output.
    StepOutput {
        /// The producing step.
        step: String,
        /// Its output.
        output: String,
    },
    /// `${steps.S.metrics.M}`.
    StepMetric {
        /// The step that logged the metric.
        step: String,
        /// The metric.
        metric: String,
    },
    /// `${outputs.O}`: this step's own output directory.
    Output(String),
    /// `${event.payload.A.B}`: a field of the triggering event (only in `on`).
    EventPayload(Vec<String>),
    /// `${event.subject}`: the triggering event's subject (only in `on`).
    EventSubject,
    /// `${event.kind}`: the triggering event's kind (only in `on`).
    EventKind,
    /// `${run.id}`: the pipeline run's id.
    RunId,
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Param(p) => write!(f, "${{params.{p}}}"),
            Ref::StepOutput { step, output } => write!(f, "${{steps.{step}.outputs.{output}}}"),
            Ref::StepMetric { step, metric } => write!(f, "${{steps.{step}.metrics.{metric}}}"),
            Ref::Output(o) => write!(f, "${{outputs.{o}}}"),
            Ref::EventPayload(path) => write!(f, "${{event.payload.{}}}", path.join(".")),
            Ref::EventSubject => write!(f, "${{event.subject}}"),
            Ref::EventKind => write!(f, "${{event.kind}}"),
            Ref::RunId => write!(f, "${{run.id}}"),
        }
    }
}

/// A reference found in a string, at `offset` characters from its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// What it names.
    pub reference: Ref,
    /// Characters from the start of the string to its `$`.
    pub offset: usize,
}

/// A malformed `${…}`, at `offset` characters from the start of the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefError {
    /// Characters from the start of the string to the `$`.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Every `${…}` in `text`, in order, each parsed or reported as malformed.
pub fn scan(text: &str) -> Vec<Result<Found, RefError>> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'$') {
            i += 2;
            continue;
        }
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let Some(len) = chars[i + 2..].iter().position(|&c| c == '}') else {
                found.push(Err(RefError {
                    offset: i,
                    message: "unclosed '${': expected '}'".to_string(),
                }));
                return found;
            };
            let inner: String = chars[i + 2..i + 2 + len].iter().collect();
            found.push(parse_ref(&inner).map_or_else(
                |message| Err(RefError { offset: i, message }),
                |reference| {
                    Ok(Found {
                        reference,
                        offset: i,
                    })
                },
            ));
            i += len + 3;
        } else {
            i += 1;
        }
    }
    found
}

/// Parses the inside of `${…}`.
fn parse_ref(inner: &str) -> Result<Ref, String> {
    let parts: Vec<&str> = inner.trim().split('.').collect();
    let bad = |expected: &str| format!("bad reference '${{{inner}}}': expected {expected}");
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(
            "params.<name>, steps.<step>.outputs.<name>, steps.<step>.metrics.<name>, outputs.<name>, event.payload.<field> or run.id",
        ));
    }
    match parts.as_slice() {
        ["params", p] => Ok(Ref::Param(p.to_string())),
        ["params", ..] => Err(bad("params.<name>")),
        ["steps", s, "outputs", o] => Ok(Ref::StepOutput {
            step: s.to_string(),
            output: o.to_string(),
        }),
        ["steps", s, "metrics", m] => Ok(Ref::StepMetric {
            step: s.to_string(),
            metric: m.to_string(),
        }),
        ["steps", ..] => Err(bad(
            "steps.<step>.outputs.<name> or steps.<step>.metrics.<name>",
        )),
        ["outputs", o] => Ok(Ref::Output(o.to_string())),
        ["outputs", ..] => Err(bad("outputs.<name>")),
        ["event", "payload", rest @ ..] if !rest.is_empty() => Ok(Ref::EventPayload(
            rest.iter().map(|s| s.to_string()).collect(),
        )),
        ["event", "subject"] => Ok(Ref::EventSubject),
        ["event", "kind"] => Ok(Ref::EventKind),
        ["event", ..] => Err(bad("event.payload.<field>, event.subject or event.kind")),
        ["run", "id"] => Ok(Ref::RunId),
        ["run", ..] => Err(bad("run.id")),
        [root, ..] => Err(format!(
            "unknown reference '${{{inner}}}': '{root}' is not one of params, steps, outputs, event, run"
        )),
        [] => Err(bad("a reference")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_with_offsets() {
        let found =
            scan("python r.py --model ${steps.train.outputs.model} --out ${outputs.report}");
        assert_eq!(
            found,
            vec![
                Ok(Found {
                    reference: Ref::StepOutput {
                        step: "train".into(),
                        output: "model".into()
                    },
                    offset: 20
                }),
                Ok(Found {
                    reference: Ref::Output("report".into()),
                    offset: 55
                }),
            ]
        );
    }

    #[test]
    fn dollar_dollar_is_literal() {
        assert!(scan("echo $${HOME} $PATH").is_empty());
    }

    #[test]
    fn malformed_references() {
        assert_eq!(
            scan("a ${steps.x}")[0].as_ref().unwrap_err().message,
            "bad reference '${steps.x}': expected steps.<step>.outputs.<name> or steps.<step>.metrics.<name>"
        );
        assert_eq!(
            scan("${oops")[0].as_ref().unwrap_err().message,
            "unclosed '${': expected '}'"
        );
        assert_eq!(
            scan("${HOME}")[0].as_ref().unwrap_err().message,
            "unknown reference '${HOME}': 'HOME' is not one of params, steps, outputs, event, run"
        );
    }
}
