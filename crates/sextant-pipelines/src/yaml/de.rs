//! A serde deserializer over a YAML node that keeps going past problems: it
//! reports unknown keys and leaves them out as it meets them, and places every
//! other error at the innermost node it concerns, so that [`Document`] can
//! leave that node out and try again.
//!
//! [`Document`]: super::Document

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use saphyr::{ScalarOwned, YamlDataOwned};
use serde::de::{self, IntoDeserializer, Visitor};

use super::document::{Document, Seg};
use super::{Node, describe, did_you_mean, pos};
use crate::Diagnostic;
use crate::spec::Pos;

/// Why a value could not be read; placed at the innermost node it concerns.
#[derive(Debug)]
pub struct Error {
    pub(super) kind: Kind,
    pub(super) at: Option<(Pos, Vec<Seg>)>,
}

#[derive(Debug)]
pub(super) enum Kind {
    Custom(String),
    InvalidType { found: String, expected: String },
    Missing(&'static str),
}

impl Kind {
    pub(super) fn message(&self, place: &str) -> String {
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
pub(super) struct De<'de> {
    pub(super) node: &'de Node,
    pub(super) path: Vec<Seg>,
    pub(super) doc: &'de Document,
    pub(super) sink: &'de RefCell<Vec<Diagnostic>>,
    pub(super) left_out: &'de HashSet<Vec<Seg>>,
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
