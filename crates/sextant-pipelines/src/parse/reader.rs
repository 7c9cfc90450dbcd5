//! Reading YAML nodes as the spec's values: each reader reports what it
//! expected, and where, and returns nothing rather than a guess.

use std::time::Duration;

use saphyr::{ScalarOwned, YamlDataOwned};

use super::{Map, Parser};
use crate::Diagnostic;
use crate::spec::*;
use crate::yaml::{Node, describe, did_you_mean, pos};

impl Parser {
    pub(super) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(pos, message));
    }

    pub(super) fn expected(&mut self, node: &Node, what: &str, context: &str) {
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

    pub(super) fn map<'n>(&mut self, node: &'n Node, context: &str) -> Option<Map<'n>> {
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
    pub(super) fn check_keys(&mut self, map: &Map<'_>, allowed: &[&str], context: &str) {
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

    pub(super) fn string(&mut self, node: &Node, context: &str) -> Option<Spanned<String>> {
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
    pub(super) fn text(&mut self, node: &Node, context: &str) -> Option<Spanned<String>> {
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

    pub(super) fn uint(&mut self, node: &Node, min: u32, context: &str) -> Option<Spanned<u32>> {
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

    pub(super) fn duration(&mut self, node: &Node, context: &str) -> Option<Spanned<Duration>> {
        let s = self.text(node, context)?;
        match parse_duration(&s.value) {
            Ok(d) => Some(Spanned::new(d, pos(node))),
            Err(e) => {
                self.error(pos(node), format!("{e} in {context}"));
                None
            }
        }
    }

    pub(super) fn string_list(&mut self, node: &Node, context: &str) -> Vec<Spanned<String>> {
        let YamlDataOwned::Sequence(items) = &node.data else {
            self.expected(node, "a list of names", context);
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| self.string(n, context))
            .collect()
    }

    pub(super) fn string_map(&mut self, node: &Node, context: &str) -> Entries<String> {
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

    pub(super) fn value(&mut self, node: &Node, context: &str) -> Spanned<Value> {
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

    pub(super) fn value_map(&mut self, node: &Node, context: &str) -> Entries<Value> {
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
}
