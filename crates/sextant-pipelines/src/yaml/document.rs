//! Serde types read from YAML with the pipeline parser's quality: every
//! problem, each at its line and column, unknown keys with the closest known
//! one. Endpoint and monitor definitions are read this way.
//!
//! A serde derive stops at its first error. To report them all, unknown keys
//! are reported and skipped as they are met, and a value that fails is
//! reported and left out before deserializing again: the struct holding a
//! value left out fails next as missing it, and is itself left out (that
//! "missing" is not reported). Each pass leaves out one more node, so it ends.

use std::cell::RefCell;
use std::collections::HashSet;

use saphyr::{ScalarOwned, YamlDataOwned};
use serde::de::DeserializeOwned;

use super::de::{De, Kind};
use super::{Node, NotOneDocument, pos, read_one};
use crate::Diagnostic;
use crate::spec::Pos;

/// One step of the path from the document's root to a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A parsed YAML document, kept with its positions.
pub struct Document {
    pub(super) root: Node,
    /// What the document is, for messages: "the monitor definition".
    noun: String,
}

impl Document {
    /// Parses one YAML document; `noun` names it in messages ("monitor definition").
    pub fn parse(text: &str, noun: &str) -> Result<Document, Vec<Diagnostic>> {
        let root = read_one(text).map_err(|e| {
            let message = match &e {
                NotOneDocument::Syntax { info, .. } => {
                    format!("the {noun} is not valid YAML: {info}")
                }
                NotOneDocument::Empty => format!("the {noun} is empty"),
                NotOneDocument::Several { .. } => format!("a {noun} is one YAML document"),
            };
            vec![Diagnostic::new(e.at(), message)]
        })?;
        Ok(Document {
            root,
            noun: format!("the {noun}"),
        })
    }

    /// The document as a `T`, or every problem found, sorted by position.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Vec<Diagnostic>> {
        let mut left_out: HashSet<Vec<Seg>> = HashSet::new();
        let mut found = Vec::new();
        // Each failed pass leaves out one more node; the bound only guards a bug.
        for _ in 0..1000 {
            let sink = RefCell::new(Vec::new());
            let de = De {
                node: &self.root,
                path: Vec::new(),
                doc: self,
                sink: &sink,
                left_out: &left_out,
            };
            let outcome = T::deserialize(de);
            found.extend(sink.into_inner());
            match outcome {
                Ok(value) if found.is_empty() => return Ok(value),
                Ok(_) => break,
                Err(e) => {
                    let (at, path) = e.at.unwrap_or((pos(&self.root), Vec::new()));
                    let caused_by_us = matches!(&e.kind, Kind::Missing(f)
                        if left_out.contains(&[path.clone(), vec![Seg::Key(f.to_string())]].concat()));
                    if !caused_by_us {
                        found.push(Diagnostic::new(at, e.kind.message(&self.place(&path))));
                    }
                    if path.is_empty() {
                        break;
                    }
                    left_out.insert(path);
                }
            }
        }
        found.sort();
        found.dedup();
        Err(found)
    }

    /// Where the node at a dotted path (`variants.1.weight`) is written, or the
    /// nearest node above it that is: for a check that names a field.
    pub fn locate(&self, path: &str) -> Pos {
        let mut node = &self.root;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let next = match &node.data {
                YamlDataOwned::Mapping(m) => m
                    .iter()
                    .find(|(k, _)| matches!(&k.data, YamlDataOwned::Value(ScalarOwned::String(s)) if s == part))
                    .map(|(_, v)| v),
                YamlDataOwned::Sequence(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        pos(node)
    }

    /// A path as messages show it: `variants[1].weight`, or the document's noun.
    pub(super) fn place(&self, path: &[Seg]) -> String {
        if path.is_empty() {
            return self.noun.clone();
        }
        let mut out = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Top {
        name: String,
        #[serde(default)]
        parts: Vec<Part>,
        #[serde(default)]
        kind: Option<Kind2>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Part {
        model: String,
        #[serde(default)]
        weight: f64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind2 {
        Canary,
        BlueGreen,
    }

    fn read(text: &str) -> Result<Top, Vec<String>> {
        Document::parse(text, "test file")
            .and_then(|d| d.deserialize::<Top>())
            .map_err(|ds| ds.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let errors = read(
            "name: x\nnaem: y\nparts:\n  - model: a\n    wieght: 2\n  - weight: heavy\n  - model: c\n    weight: [1]\nkind: canery\n",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "2:1: unknown key 'naem' in the test file (did you mean 'name'?)",
                "5:5: unknown key 'wieght' in parts[0] (did you mean 'weight'?)",
                "6:5: missing key 'model' in parts[1]",
                "6:13: parts[1].weight: expected a number, found string \"heavy\"",
                "8:13: parts[2].weight: expected a number, found a list",
                "9:7: kind: unknown value 'canery': expected one of canary, blue_green (did you mean 'canary'?)",
            ]
        );
    }

    #[test]
    fn json_is_yaml_and_good_documents_read() {
        let top =
            read(r#"{"name": 1, "parts": [{"model": "m", "weight": 2}], "kind": "blue_green"}"#)
                .unwrap();
        assert_eq!(
            top,
            Top {
                name: "1".into(),
                parts: vec![Part {
                    model: "m".into(),
                    weight: 2.0
                }],
                kind: Some(Kind2::BlueGreen),
            }
        );
        assert_eq!(read("").unwrap_err(), ["1:1: the test file is empty"]);
        assert!(read("name: [\n").unwrap_err()[0].contains("the test file is not valid YAML"));
        assert_eq!(
            read("parts: []\n").unwrap_err(),
            ["1:1: missing key 'name' in the test file"]
        );
        assert_eq!(
            read("- a\n").unwrap_err(),
            ["1:1: the test file: expected a mapping, found a list"]
        );
    }

    #[test]
    fn locate_finds_the_nearest_written_node() {
        let d = Document::parse("name: x\nparts:\n  - model: a\n    weight: 2\n", "f").unwrap();
        assert_eq!(d.locate("parts.0.weight"), Pos { line: 4, col: 13 });
        assert_eq!(d.locate("parts.0.nope"), Pos { line: 3, col: 5 });
        assert_eq!(d.locate(""), Pos { line: 1, col: 1 });
    }
}
