//! Builds the spec from the YAML tree by hand, so that unknown keys, wrong
//! types and missing fields are reported at their line and column (a serde
//! derive would stop at the first error and lose positions). The text is read
//! by the one YAML reader ([`crate::yaml::read_one`]); [`reader`] turns nodes
//! into values, [`pipeline`] reads the top level and the steps, [`kind`] each
//! step's kind and [`options`] its retry, cache and tuning.

mod kind;
mod options;
mod pipeline;
mod reader;

use std::collections::BTreeSet;

use crate::Diagnostic;
use crate::spec::*;
use crate::yaml::{self, Node, NotOneDocument};

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
/// The keys of a step besides its kind and the common ones.
const STEP_EXTRA_KEYS: &[&str] = &["with", "then", "else", "tune"];

/// Reads the text of a pipeline file.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut p = Parser {
        source: text.chars().collect(),
        diagnostics: Vec::new(),
        broken_steps: BTreeSet::new(),
    };
    let pipeline = match yaml::read_one(text) {
        Ok(doc) => p.pipeline(&doc),
        Err(e) => {
            let message = match &e {
                NotOneDocument::Syntax { info, .. } => format!("invalid YAML: {info}"),
                NotOneDocument::Empty => "empty file: expected a pipeline mapping".into(),
                NotOneDocument::Several { .. } => "a pipeline file holds one YAML document".into(),
            };
            p.error(e.at(), message);
            None
        }
    };
    Parsed {
        pipeline,
        broken_steps: p.broken_steps,
        diagnostics: p.diagnostics,
    }
}

/// What reading a pipeline gathers as it goes.
struct Parser {
    /// The text, to see whether a string scalar is quoted.
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
