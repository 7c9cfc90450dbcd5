//! Serde types read from YAML (or JSON, which is YAML) with the pipeline
//! parser's quality: every problem, each at its line and column, unknown keys
//! with the closest known one. Endpoint and monitor definitions are read this
//! way; pipelines have their own hand-written parser (`parse.rs`), whose node
//! positions and suggestions this module shares.
//!
//! A serde derive stops at its first error. To report them all, unknown keys
//! are reported and skipped as they are met, and a value that fails is
//! reported and left out before deserializing again: the struct holding a
//! value left out fails next as missing it, and is itself left out (that
//! "missing" is not reported). Each pass leaves out one more node, so it ends.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::Diagnostic;
use crate::parse::{describe, did_you_mean, pos};
use crate::spec::Pos;

type Node = MarkedYamlOwned;

/// One step of the path from the document's root to a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A parsed YAML document, kept with its positions.
pub struct Document {
    root: Node,
    /// What the document is, for messages: "the monitor definition".
    noun: String,
}

/// Every problem of a document, as `file:line:col: message` lines.
pub fn render(file: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{file}:{d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Document {
    /// Parses one YAML document; `noun` names it in messages ("monitor definition").
    pub fn parse(text: &str, noun: &str) -> Result<Document, Vec<Diagnostic>> {
        let docs = Node::load_from_str(text).map_err(|e| {
            let m = e.marker();
            let at = Pos {
                line: m.line().max(1),
                col: m.col() + 1,
            };
            vec![Diagnostic::new(
                at,
                format!("the {noun} is not valid YAML: {}", e.info()),
            )]
        })?;
        let mut docs = docs.into_iter();
        match (docs.next(), docs.next()) {
            (None, _) => Err(vec![Diagnostic::new(
                Pos { line: 1, col: 1 },
                format!("the {noun} is empty"),
            )]),
            (Some(root), None) => Ok(Document {
                root,
                noun: format!("the {noun}"),
            }),
            (Some(_), Some(second)) => Err(vec![Diagnostic::new(
                pos(&second),
                format!("a {noun} is one YAML document"),
            )]),
        }
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
    fn place(&self, path: &[Seg]) -> String {
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

/// Why a value could not be read; placed at the innermost node it concerns.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    at: Option<(Pos, Vec<Seg>)>,
}

#[derive(Debug)]
enum Kind {
    Custom(String),
    InvalidType { found: String, expected: String },
    Missing(&'static str),
}

impl Kind {
    fn message(&self, place: &str) -> String {
        match self {
            Kind::Custom(m) => format!("{place}: {m}"),
            Kind::InvalidType { found, expected } => {
                format!("{place}: expected {expected}, found {found}")
            }
            Kind::Missing(field) => format!("missing key '{field}' in {place}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.message("value"))
    }
}

impl std::error::Error for Error {}

/// Serde's names of primitive types, as people say them.
fn plain(expected: String) -> String {
    match expected.as_str() {
        "f64" | "f32" => "a number".into(),
        "u64" | "u32" | "usize" | "u16" | "u8" => "a whole number of at least 0".into(),
        "i64" | "i32" | "isize" => "a whole number".into(),
        _ => expected,
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            kind: Kind::Custom(msg.to_string()),
            at: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error {
            kind: Kind::InvalidType {
                // As the pipeline parser says them.
                found: match unexp {
                    de::Unexpected::Seq => "a list".into(),
                    de::Unexpected::Map => "a mapping".into(),
                    de::Unexpected::Unit => "nothing".into(),
                    other => other.to_string(),
                },
                expected: plain(exp.to_string()),
            },
            at: None,
        }
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error {
            kind: Kind::Custom(format!("{unexp} is not {}", plain(exp.to_string()))),
            at: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            kind: Kind::Missing(field),
            at: None,
        }
    }
}

impl Error {
    /// Places an error that has no place yet at `node`.
    fn at(mut self, node: &Node, path: &[Seg]) -> Self {
        if self.at.is_none() {
            self.at = Some((pos(node), path.to_vec()));
        }
        self
    }
}

/// A deserializer of one node.
struct De<'de> {
    node: &'de Node,
    path: Vec<Seg>,
    doc: &'de Document,
    sink: &'de RefCell<Vec<Diagnostic>>,
    left_out: &'de HashSet<Vec<Seg>>,
}

impl<'de> De<'de> {
    fn child(&self, node: &'de Node, seg: Seg) -> De<'de> {
        let mut path = self.path.clone();
        path.push(seg);
        De {
            node,
            path,
            doc: self.doc,
            sink: self.sink,
            left_out: self.left_out,
        }
    }

    fn fail(&self, expected: &str) -> Error {
        Error {
            kind: Kind::InvalidType {
                found: describe(self.node).to_string(),
                expected: expected.to_string(),
            },
            at: Some((pos(self.node), self.path.clone())),
        }
    }

    /// The entries of a mapping node with string keys, other keys reported;
    /// with `fields`, keys not among them are reported and skipped.
    fn entries(&self, fields: Option<&[&str]>) -> Result<Vec<(String, &'de Node)>, Error> {
        let YamlDataOwned::Mapping(m) = &self.node.data else {
            return Err(self.fail("a mapping"));
        };
        let place = self.doc.place(&self.path);
        let mut out = Vec::new();
        for (k, v) in m.iter() {
            let YamlDataOwned::Value(ScalarOwned::String(key)) = &k.data else {
                self.sink.borrow_mut().push(Diagnostic::new(
                    pos(k),
                    format!("expected a string key in {place}, found {}", describe(k)),
                ));
                continue;
            };
            if let Some(fields) = fields
                && !fields.contains(&key.as_str())
            {
                let hint = did_you_mean(fields, key);
                self.sink.borrow_mut().push(Diagnostic::new(
                    pos(k),
                    format!("unknown key '{key}' in {place}{hint}"),
                ));
                continue;
            }
            let mut path = self.path.clone();
            path.push(Seg::Key(key.clone()));
            if !self.left_out.contains(&path) {
                out.push((key.clone(), v));
            }
        }
        Ok(out)
    }

    fn visit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let path = self.path.clone();
        let result = match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Null) => visitor.visit_unit(),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => visitor.visit_bool(*b),
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => visitor.visit_i64(*i),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => {
                visitor.visit_f64(f.into_inner())
            }
            YamlDataOwned::Value(ScalarOwned::String(s)) => visitor.visit_string(s.clone()),
            YamlDataOwned::Representation(s, ..) => visitor.visit_string(s.clone()),
            YamlDataOwned::Sequence(items) => visitor.visit_seq(Seq {
                items: items.iter().enumerate(),
                parent: &self,
            }),
            YamlDataOwned::Mapping(_) => {
                let entries = self.entries(None)?;
                visitor.visit_map(Map {
                    entries: entries.into_iter(),
                    value: None,
                    parent: &self,
                })
            }
            YamlDataOwned::Tagged(..) | YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => {
                Err(self.fail("a plain value (tags and aliases are not supported)"))
            }
        };
        result.map_err(|e| e.at(node, &path))
    }
}

struct Seq<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    parent: &'p De<'de>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        for (i, node) in self.items.by_ref() {
            let child = self.parent.child(node, Seg::Index(i));
            if self.parent.left_out.contains(&child.path) {
                continue;
            }
            let path = child.path.clone();
            return seed
                .deserialize(child)
                .map(Some)
                .map_err(|e| e.at(node, &path));
        }
        Ok(None)
    }
}

struct Map<'de, 'p> {
    entries: std::vec::IntoIter<(String, &'de Node)>,
    value: Option<(String, &'de Node)>,
    parent: &'p De<'de>,
}

impl<'de> de::MapAccess<'de> for Map<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key.clone(), node));
        let key: de::value::StringDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, node) = self.value.take().expect("a value follows its key");
        let child = self.parent.child(node, Seg::Key(key));
        let path = child.path.clone();
        // A `deserialize_with` function fails after the node's own methods returned.
        seed.deserialize(child).map_err(|e| e.at(node, &path))
    }
}

impl<'de> de::Deserializer<'de> for De<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// Any scalar is taken as its text where a string is expected (`label: 1`).
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => f.into_inner().to_string(),
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => b.to_string(),
            _ => return self.visit(visitor),
        };
        let (node, path) = (self.node, self.path.clone());
        visitor
            .visit_string::<Error>(text)
            .map_err(|e| e.at(node, &path))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries = self.entries(Some(fields))?;
        let (node, path) = (self.node, self.path.clone());
        visitor
            .visit_map(Map {
                entries: entries.into_iter(),
                value: None,
                parent: &self,
            })
            .map_err(|e| e.at(node, &path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let YamlDataOwned::Value(ScalarOwned::String(s)) = &self.node.data else {
            return Err(self.fail(&format!("one of {}", variants.join(", "))));
        };
        if !variants.contains(&s.as_str()) {
            let hint = did_you_mean(variants, s);
            return Err(Error {
                kind: Kind::Custom(format!(
                    "unknown value '{s}': expected one of {}{hint}",
                    variants.join(", ")
                )),
                at: Some((pos(self.node), self.path.clone())),
            });
        }
        let value: de::value::StringDeserializer<Error> = s.clone().into_deserializer();
        let (node, path) = (self.node, self.path.clone());
        visitor.visit_enum(value).map_err(|e| e.at(node, &path))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
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
