//! The options a step may carry besides its kind: `retry`, `cache` and
//! `tune` (with its search spaces).

use saphyr::YamlDataOwned;

use super::Parser;
use crate::spec::*;
use crate::yaml::{Node, pos};

impl Parser {
    pub(super) fn retry(&mut self, node: &Node, context: &str) -> Option<Retry> {
        let map = self.map(node, context)?;
        self.check_keys(&map, &["attempts", "backoff"], context);
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let Some(attempts) = get("attempts") else {
            self.error(pos(node), format!("missing key 'attempts' in {context}"));
            return None;
        };
        let attempts = self.uint(attempts, 1, &format!("'attempts' of {context}"))?;
        let backoff = match get("backoff") {
            Some(b) => Some(self.duration(b, &format!("'backoff' of {context}"))?),
            None => None,
        };
        Some(Retry { attempts, backoff })
    }

    pub(super) fn cache(&mut self, node: &Node, context: &str) -> Option<Cache> {
        let map = self.map(node, context)?;
        self.check_keys(&map, &["expire_after", "code"], context);
        let expire_after = match map.iter().find(|(k, _)| k.value == "expire_after") {
            Some((_, e)) => Some(self.duration(e, &format!("'expire_after' of {context}"))?),
            None => None,
        };
        let code = match map.iter().find(|(k, _)| k.value == "code") {
            Some((_, c)) => self.string_list(c, &format!("'code' of {context}")),
            None => Vec::new(),
        };
        Some(Cache {
            expire_after,
            code,
            pos: pos(node),
        })
    }

    pub(super) fn tune(&mut self, node: &Node, context: &str) -> Option<Tune> {
        let map = self.map(node, context)?;
        self.check_keys(
            &map,
            &["params", "strategy", "trials", "parallel", "metric", "goal"],
            context,
        );
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let mut ok = true;
        let params = match get("params") {
            Some(p) => {
                let entries = self
                    .map(p, &format!("'params' of {context}"))
                    .unwrap_or_default();
                let mut out = Vec::new();
                for (k, v) in entries {
                    match self.search_space(v, &format!("'{}' in {context}", k.value)) {
                        Some(space) => out.push((k, Spanned::new(space, pos(v)))),
                        None => ok = false,
                    }
                }
                if out.is_empty() && ok {
                    self.error(pos(p), format!("'params' of {context} is empty"));
                    ok = false;
                }
                out
            }
            None => {
                self.error(pos(node), format!("missing key 'params' in {context}"));
                ok = false;
                Vec::new()
            }
        };
        let keyword =
            |p: &mut Parser, key: &str, choices: &[&str], default: &str| -> Option<String> {
                match get(key) {
                    None => Some(default.to_string()),
                    Some(n) => {
                        let s = p.string(n, &format!("'{key}' of {context}"))?;
                        if choices.contains(&s.value.as_str()) {
                            Some(s.value)
                        } else {
                            p.error(
                                s.pos,
                                format!(
                                    "unknown {key} '{}' in {context}: expected {}",
                                    s.value,
                                    choices.join(", ")
                                ),
                            );
                            None
                        }
                    }
                }
            };
        let strategy =
            match keyword(self, "strategy", &["grid", "random", "halving"], "random")?.as_str() {
                "grid" => Strategy::Grid,
                "halving" => Strategy::Halving,
                _ => Strategy::Random,
            };
        let goal = match keyword(self, "goal", &["minimize", "maximize"], "minimize")?.as_str() {
            "maximize" => Goal::Maximize,
            _ => Goal::Minimize,
        };
        let trials = match get("trials") {
            Some(t) => Some(self.uint(t, 1, &format!("'trials' of {context}"))?),
            None => None,
        };
        let parallel = match get("parallel") {
            Some(t) => self.uint(t, 1, &format!("'parallel' of {context}"))?.value,
            None => 1,
        };
        let metric = match get("metric") {
            Some(m) => self.string(m, &format!("'metric' of {context}"))?,
            None => {
                self.error(pos(node), format!("missing key 'metric' in {context}"));
                return None;
            }
        };
        if strategy == Strategy::Grid {
            for (k, space) in &params {
                if matches!(
                    space.value,
                    SearchSpace::Uniform(..) | SearchSpace::LogUniform(..)
                ) {
                    self.error(
                        space.pos,
                        format!("'{}' in {context} is a continuous range, but the grid strategy needs a list of values or an int range", k.value),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(Tune {
            params,
            strategy,
            trials,
            parallel,
            metric,
            goal,
            pos: pos(node),
        })
    }

    fn search_space(&mut self, node: &Node, context: &str) -> Option<SearchSpace> {
        if let YamlDataOwned::Sequence(items) = &node.data {
            if items.is_empty() {
                self.error(pos(node), format!("{context} has no values to try"));
                return None;
            }
            let values = items.iter().map(|n| self.value(n, context).value).collect();
            return Some(SearchSpace::Choice(values));
        }
        let map = self.map(node, context)?;
        let kinds = ["uniform", "log_uniform", "int"];
        self.check_keys(&map, &kinds, context);
        let [(k, bounds)] = map.as_slice() else {
            self.error(
                pos(node),
                format!("{context} needs a list of values or one of {{uniform: [lo, hi]}}, {{log_uniform: [lo, hi]}}, {{int: [lo, hi]}}"),
            );
            return None;
        };
        let ctx = format!("'{}' of {context}", k.value);
        let nums: Vec<Value> = match &bounds.data {
            YamlDataOwned::Sequence(items) => {
                items.iter().map(|n| self.value(n, &ctx).value).collect()
            }
            _ => Vec::new(),
        };
        let bad = |p: &mut Parser, what: &str| {
            p.error(pos(bounds), format!("{ctx} needs {what}"));
            None
        };
        match (k.value.as_str(), nums.as_slice()) {
            ("int", [Value::Int(lo), Value::Int(hi)]) if lo <= hi => {
                Some(SearchSpace::IntRange(*lo, *hi))
            }
            ("int", _) => bad(self, "two integers [lo, hi] with lo <= hi"),
            (kind, [lo, hi]) => {
                let num = |v: &Value| match v {
                    Value::Int(i) => Some(*i as f64),
                    Value::Float(f) if f.is_finite() => Some(*f),
                    _ => None,
                };
                match (num(lo), num(hi)) {
                    (Some(lo), Some(hi)) if lo < hi && (kind == "uniform" || lo > 0.0) => {
                        Some(if kind == "uniform" {
                            SearchSpace::Uniform(lo, hi)
                        } else {
                            SearchSpace::LogUniform(lo, hi)
                        })
                    }
                    _ if kind == "uniform" => bad(self, "two numbers [lo, hi] with lo < hi"),
                    _ => bad(self, "two positive numbers [lo, hi] with lo < hi"),
                }
            }
            _ => bad(self, "two numbers [lo, hi]"),
        }
    }
}
