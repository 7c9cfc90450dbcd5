//! The one way Sextant reads YAML (or JSON, which is YAML) that people write:
//! [`read_one`] takes a text to one document whose every node knows its line
//! and column, or says why the text is not one document. Pipelines are then
//! read node by node (`parse.rs`); endpoint and monitor definitions through
//! serde ([`Document`]). Both report every problem as a [`Diagnostic`] at its
//! line and column, an unknown key with the closest known one, and print them
//! as `file:line:col: message` lines ([`render`]).

mod de;
mod document;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use crate::Diagnostic;
use crate::spec::Pos;

pub use de::Error;
pub use document::Document;

/// A YAML node with its place in the text.
pub type Node = MarkedYamlOwned;

/// Why a text is not one YAML document; each format words it its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotOneDocument {
    /// Not YAML: the scanner's complaint, where it stopped.
    Syntax { at: Pos, info: String },
    /// No document at all.
    Empty,
    /// More than one document; the second starts at `at`.
    Several { at: Pos },
}

impl NotOneDocument {
    /// Where the problem is (an empty text's is its start).
    pub fn at(&self) -> Pos {
        match self {
            NotOneDocument::Syntax { at, .. } | NotOneDocument::Several { at } => *at,
            NotOneDocument::Empty => Pos { line: 1, col: 1 },
        }
    }
}

/// Reads a text that holds one YAML document.
pub fn read_one(text: &str) -> Result<Node, NotOneDocument> {
    let docs = Node::load_from_str(text).map_err(|e| {
        let m = e.marker();
        NotOneDocument::Syntax {
            at: Pos {
                line: m.line().max(1),
                col: m.col() + 1,
            },
            info: e.info().to_string(),
        }
    })?;
    let mut docs = docs.into_iter();
    match (docs.next(), docs.next()) {
        (None, _) => Err(NotOneDocument::Empty),
        (Some(root), None) => Ok(root),
        (Some(_), Some(second)) => Err(NotOneDocument::Several { at: pos(&second) }),
    }
}

/// A definition (an endpoint's, a monitor's) refused, with every problem
/// found at its line and column; shown as `file:line:col: message` lines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct DefinitionError {
    /// How the caller names the text (`churn.yaml`).
    pub file: String,
    /// Every problem, sorted by position.
    pub problems: Vec<Diagnostic>,
}

/// Reads a definition (YAML, or JSON, which is YAML) named `noun` in
/// messages ("endpoint definition") as a `T`, with every problem —
/// structural ones first, then, once the structure is right, those
/// `problems` finds (each with the dotted path of the field at fault) — at
/// its place in `file`.
pub fn read_definition<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    noun: &str,
    problems: impl Fn(&T) -> Vec<(String, String)>,
) -> Result<T, DefinitionError> {
    let refused = |problems| DefinitionError {
        file: file.to_string(),
        problems,
    };
    let doc = Document::parse(text, noun).map_err(refused)?;
    let value: T = doc.deserialize().map_err(refused)?;
    let mut found: Vec<Diagnostic> = problems(&value)
        .into_iter()
        .map(|(at, message)| Diagnostic::new(doc.locate(&at), message))
        .collect();
    if found.is_empty() {
        return Ok(value);
    }
    found.sort();
    Err(refused(found))
}

/// Every problem of a document, as `file:line:col: message` lines.
pub fn render(file: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{file}:{d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a node is written (1-based line and column).
pub(crate) fn pos(node: &Node) -> Pos {
    Pos {
        line: node.span.start.line().max(1),
        col: node.span.start.col() + 1,
    }
}

/// A node's kind as messages name it: "a list", "a string"…
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_or_why_not() {
        let root = read_one("a: 1\nb: [2]\n").unwrap();
        assert_eq!(describe(&root), "a mapping");
        assert_eq!(read_one("").unwrap_err(), NotOneDocument::Empty);
        assert_eq!(
            read_one("# only a comment\n").unwrap_err().at(),
            Pos { line: 1, col: 1 }
        );
        let several = read_one("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(
            several,
            NotOneDocument::Several {
                at: Pos { line: 3, col: 1 }
            }
        );
        let NotOneDocument::Syntax { at, info } = read_one("a: [1,\n").unwrap_err() else {
            panic!("a syntax error expected");
        };
        assert!(at.line >= 1 && !info.is_empty(), "{at:?} {info}");
    }

    #[test]
    fn hints_come_from_aliases_then_spelling() {
        assert_eq!(
            did_you_mean(&["needs", "run"], "depends_on"),
            " (did you mean 'needs'?)"
        );
        assert_eq!(
            did_you_mean(&["weight"], "wieght"),
            " (did you mean 'weight'?)"
        );
        assert_eq!(did_you_mean(&["weight"], "colour"), "");
        // An alias only for a key the place has.
        assert_eq!(did_you_mean(&["weight"], "depends_on"), "");
    }
}
