//! The pipeline's top level and its steps: name, parameters, schedule,
//! triggers, and each step's common keys.

use saphyr::YamlDataOwned;

use super::{COMMON_KEYS, KIND_KEYS, PARAM_KEYS, Parser, STEP_EXTRA_KEYS, TOP_KEYS, TRIGGER_KEYS};
use crate::spec::*;
use crate::yaml::{Node, pos};

impl Parser {
    /// The whole pipeline document.
    pub(super) fn pipeline(&mut self, doc: &Node) -> Option<Pipeline> {
        let map = self.map(doc, "the pipeline")?;
        self.check_keys(&map, TOP_KEYS, "the pipeline");
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let name = match get("name") {
            Some(n) => self.string(n, "'name'"),
            None => {
                self.error(pos(doc), "missing key 'name' in the pipeline");
                None
            }
        };
        let params = get("params").map(|n| self.params(n)).unwrap_or_default();
        let schedule = get("schedule").and_then(|n| self.string(n, "'schedule'"));
        let on = get("on").map(|n| self.triggers(n)).unwrap_or_default();
        let steps = match get("steps") {
            Some(n) => self.steps(n),
            None => {
                self.error(pos(doc), "missing key 'steps' in the pipeline");
                Vec::new()
            }
        };
        Some(Pipeline {
            name: name.unwrap_or_else(|| Spanned::new(String::new(), pos(doc))),
            params,
            schedule,
            on,
            steps,
        })
    }

    fn params(&mut self, node: &Node) -> Vec<Param> {
        let Some(map) = self.map(node, "'params'") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, spec) in map {
            let context = format!("parameter '{}'", name.value);
            let Some(fields) = self.map(spec, &context) else {
                continue;
            };
            self.check_keys(&fields, PARAM_KEYS, &context);
            let get = |key: &str| fields.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
            let ty = match get("type") {
                None => {
                    self.error(
                        pos(spec),
                        format!(
                            "missing key 'type' in {context} (one of string, int, float, bool)"
                        ),
                    );
                    continue;
                }
                Some(t) => match self.string(t, &format!("'type' of {context}")) {
                    None => continue,
                    Some(t) => match t.value.as_str() {
                        "string" => ParamType::String,
                        "int" => ParamType::Int,
                        "float" => ParamType::Float,
                        "bool" => ParamType::Bool,
                        other => {
                            self.error(
                                t.pos,
                                format!("unknown type '{other}' of {context}: expected string, int, float or bool"),
                            );
                            continue;
                        }
                    },
                },
            };
            let default = get("default").map(|d| self.value(d, &context));
            out.push(Param { name, ty, default });
        }
        out
    }

    fn triggers(&mut self, node: &Node) -> Vec<Trigger> {
        let YamlDataOwned::Sequence(items) = &node.data else {
            self.expected(node, "a list of triggers", "'on'");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(map) = self.map(item, "a trigger in 'on'") else {
                continue;
            };
            self.check_keys(&map, TRIGGER_KEYS, "a trigger in 'on'");
            let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
            let event = match get("event") {
                Some(e) => self.string(e, "'event'"),
                None => {
                    self.error(pos(item), "missing key 'event' in a trigger in 'on'");
                    None
                }
            };
            let filter = get("where")
                .map(|w| self.value_map(w, "'where'"))
                .unwrap_or_default();
            let params = get("params")
                .map(|w| self.string_map(w, "'params' of a trigger"))
                .unwrap_or_default();
            if let Some(event) = event {
                out.push(Trigger {
                    event,
                    filter,
                    params,
                    pos: pos(item),
                });
            }
        }
        out
    }

    fn steps(&mut self, node: &Node) -> Vec<Step> {
        let Some(map) = self.map(node, "'steps'") else {
            return Vec::new();
        };
        if map.is_empty() {
            self.error(pos(node), "a pipeline needs at least one step");
        }
        let mut out = Vec::new();
        for (name, body) in map {
            match self.step(name.clone(), body) {
                Some(step) => out.push(step),
                None => {
                    self.broken_steps.insert(name.value);
                }
            }
        }
        out
    }

    fn step(&mut self, name: Spanned<String>, body: &Node) -> Option<Step> {
        let context = format!("step '{}'", name.value);
        let map = self.map(body, &context)?;
        let allowed: Vec<&str> = KIND_KEYS
            .iter()
            .chain(STEP_EXTRA_KEYS)
            .chain(COMMON_KEYS)
            .copied()
            .collect();
        self.check_keys(&map, &allowed, &context);
        let get = |key: &str| map.iter().find(|(k, _)| k.value == key).map(|(_, v)| *v);
        let kinds: Vec<&Spanned<String>> = map
            .iter()
            .filter(|(k, _)| KIND_KEYS.contains(&k.value.as_str()))
            .map(|(k, _)| k)
            .collect();
        let kind_key = match kinds.as_slice() {
            [] => {
                self.error(
                    name.pos,
                    format!("{context} has no kind: expected one of run, uses, condition, fail, register_model, deploy"),
                );
                return None;
            }
            [k] => k.value.clone(),
            [a, b, ..] => {
                self.error(
                    b.pos,
                    format!(
                        "{context} has both '{}' and '{}': a step has exactly one kind",
                        a.value, b.value
                    ),
                );
                return None;
            }
        };
        for (k, _) in &map {
            let only = match k.value.as_str() {
                "with" | "tune" => "uses",
                "then" | "else" => "condition",
                _ => continue,
            };
            if kind_key != only {
                self.error(
                    k.pos,
                    format!("'{}' is only allowed on '{only}' steps, and {context} is a '{kind_key}' step", k.value),
                );
            }
        }
        let kind_node = get(&kind_key).expect("kind key is in the map");
        let kind = self.kind(&kind_key, kind_node, &map, &context)?;
        let mut step = Step {
            name,
            kind,
            needs: Vec::new(),
            outputs: Vec::new(),
            inputs: Vec::new(),
            retry: None,
            cache: None,
            timeout: None,
            env: Vec::new(),
            tune: None,
        };
        for (k, v) in &map {
            let ctx = format!("'{}' of {context}", k.value);
            match k.value.as_str() {
                "needs" => step.needs = self.string_list(v, &ctx),
                "outputs" => step.outputs = self.string_list(v, &ctx),
                "inputs" => step.inputs = self.string_map(v, &ctx),
                "env" => step.env = self.string_map(v, &ctx),
                "timeout" => step.timeout = self.duration(v, &ctx),
                "retry" => step.retry = self.retry(v, &ctx),
                "cache" => step.cache = self.cache(v, &ctx),
                "tune" if kind_key == "uses" => step.tune = self.tune(v, &ctx),
                _ => debug_assert!(
                    !COMMON_KEYS.contains(&k.value.as_str()),
                    "common key {} not handled",
                    k.value
                ),
            }
        }
        Some(step)
    }
}
