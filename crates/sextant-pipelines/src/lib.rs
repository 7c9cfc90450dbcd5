//! Sextant pipelines: the YAML spec (DESIGN.md §5), its validation with a
//! line and column for every error, the step DAG, condition expressions, the
//! step [`executor`]s and the in-process [`builtins`].
//!
//! Spec, validation, DAG, conditions and [`tune`] planning do no IO: callers hand
//! them the text of a pipeline file and get back either a [`Validated`] pipeline or
//! every [`Diagnostic`] found. Only `executor` and `builtins` touch processes and files.

pub mod builtins;
pub mod cachekey;
pub mod condition;
pub mod cron;
pub mod dag;
pub mod executor;
pub mod outputs;
mod parse;
pub mod refs;
pub mod shell;
pub mod spec;
pub mod tune;
mod validate;
pub mod yaml;

use std::fmt;

pub use dag::Dag;
pub use spec::{Pipeline, Pos, Spanned};

/// One problem in a pipeline file, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
    }
}

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file has one or more problems, sorted by position.
    #[error("invalid pipeline {file}: {} error(s)", diagnostics.len())]
    Invalid {
        /// The file name the caller gave, used as the prefix of each diagnostic.
        file: String,
        /// Every problem found, not only the first.
        diagnostics: Vec<Diagnostic>,
    },
}

/// A pipeline that passed validation, with its step graph.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The spec as written.
    pub pipeline: Pipeline,
    /// Step dependencies from `needs`, references and condition branches;
    /// node `i` is `pipeline.steps[i]`.
    pub dag: Dag,
}

/// Parses and validates the text of a pipeline file named `file` (the name
/// only labels errors).
pub fn load(file: &str, text: &str) -> Result<Validated, Error> {
    let parsed = parse::parse(text);
    let mut diagnostics = parsed.diagnostics;
    let dag = parsed
        .pipeline
        .as_ref()
        .map(|p| validate::validate(p, &parsed.broken_steps, &mut diagnostics));
    diagnostics.sort();
    diagnostics.dedup();
    match (parsed.pipeline, dag) {
        (Some(pipeline), Some(Some(dag))) if diagnostics.is_empty() => {
            Ok(Validated { pipeline, dag })
        }
        _ => Err(Error::Invalid {
            file: file.to_string(),
            diagnostics,
        }),
    }
}
