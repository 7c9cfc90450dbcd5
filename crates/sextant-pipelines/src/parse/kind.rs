//! A step's kind: the one key of `run`, `uses`, `condition`, `fail`,
//! `register_model` or `deploy` that says what the step does.

use saphyr::{ScalarOwned, YamlDataOwned};

use super::{Map, Parser, field};
use crate::condition;
use crate::spec::*;
use crate::yaml::{Node, pos};

impl Parser {
    /// The step's kind under `key` (one of `KIND_KEYS`); `map` is the whole step.
    pub(super) fn kind(
        &mut self,
        key: &str,
        node: &Node,
        map: &Map<'_>,
        context: &str,
    ) -> Option<StepKind> {
        let ctx = format!("'{key}' of {context}");
        match key {
            "run" => self.run(node, &ctx),
            "uses" => self.uses(node, map, &ctx, context),
            "condition" => self.condition(node, map, &ctx, context),
            "fail" => Some(StepKind::Fail {
                message: self.text(node, &ctx)?,
            }),
            "register_model" => self.register_model(node, &ctx),
            "deploy" => self.deploy(node, &ctx),
            _ => unreachable!("kind keys are checked against KIND_KEYS"),
        }
    }

    /// `run:` a command line for the shell, or the program and its arguments.
    fn run(&mut self, node: &Node, ctx: &str) -> Option<StepKind> {
        let command = match &node.data {
            YamlDataOwned::Sequence(items) => {
                if items.is_empty() {
                    self.error(
                        pos(node),
                        format!("{ctx} is an empty list: expected the program and its arguments"),
                    );
                    return None;
                }
                let args: Vec<_> = items
                    .iter()
                    .filter_map(|n| self.text(n, &format!("an argument in {ctx}")))
                    .collect();
                if args.len() < items.len() {
                    return None;
                }
                RunCommand::Argv(args)
            }
            YamlDataOwned::Value(ScalarOwned::String(_)) => {
                RunCommand::Shell(self.string(node, ctx)?)
            }
            _ => {
                self.expected(node, "a command line or a list of arguments", ctx);
                return None;
            }
        };
        Some(StepKind::Run { command })
    }

    /// `uses: builtin/…`, with its `with:` arguments.
    fn uses(&mut self, node: &Node, map: &Map<'_>, ctx: &str, context: &str) -> Option<StepKind> {
        let get = |key: &str| field(map, key);
        let uses = self.string(node, ctx)?;
        let builtin = uses
            .value
            .strip_prefix("builtin/")
            .and_then(|b| Builtin::ALL.into_iter().find(|x| x.as_str() == b));
        let Some(builtin) = builtin else {
            let names: Vec<String> = Builtin::ALL
                .iter()
                .map(|b| format!("builtin/{}", b.as_str()))
                .collect();
            self.error(
                uses.pos,
                format!(
                    "unknown step '{}' in {ctx}: expected one of {}",
                    uses.value,
                    names.join(", ")
                ),
            );
            return None;
        };
        let with = get("with")
            .map(|w| self.value_map(w, &format!("'with' of {context}")))
            .unwrap_or_default();
        Some(StepKind::Uses {
            builtin: Spanned::new(builtin, uses.pos),
            with,
        })
    }

    /// `condition:` an expression, with the steps to run when it holds (`then`) or not (`else`).
    fn condition(
        &mut self,
        node: &Node,
        map: &Map<'_>,
        ctx: &str,
        context: &str,
    ) -> Option<StepKind> {
        let get = |key: &str| field(map, key);
        let source = self.string(node, ctx)?;
        let expr = match condition::parse(&source.value) {
            Ok(e) => e,
            Err(e) => {
                let at = if source.value.contains('\n') {
                    source.pos
                } else {
                    source.pos.right(e.offset)
                };
                self.error(at, format!("{} in {ctx}", e.message));
                return None;
            }
        };
        let then = get("then").and_then(|n| self.branch(n, &format!("'then' of {context}")));
        let otherwise = get("else").and_then(|n| self.branch(n, &format!("'else' of {context}")));
        if get("then").is_none() && get("else").is_none() {
            self.error(pos(node), format!("{context} needs 'then', 'else' or both"));
        }
        Some(StepKind::Condition {
            source,
            expr,
            then,
            otherwise,
        })
    }

    /// `register_model:` a model directory registered as a version, with its approval.
    fn register_model(&mut self, node: &Node, ctx: &str) -> Option<StepKind> {
        let fields = self.map(node, ctx)?;
        self.check_keys(&fields, &["name", "model", "approval"], ctx);
        let f = |key: &str| field(&fields, key);
        let required = |p: &mut Parser, key: &str| p.required_string(&fields, key, node, ctx);
        let name = required(self, "name");
        let model = required(self, "model");
        let approval = match f("approval") {
            None => Some(Approval::Pending),
            Some(a) => {
                let a = self.string(a, &format!("'approval' of {ctx}"))?;
                match a.value.as_str() {
                    "pending" => Some(Approval::Pending),
                    "approved" => Some(Approval::Approved),
                    "rejected" => Some(Approval::Rejected),
                    other => {
                        self.error(
                            a.pos,
                            format!("unknown approval '{other}' in {ctx}: expected pending, approved or rejected"),
                        );
                        None
                    }
                }
            }
        };
        Some(StepKind::RegisterModel {
            name: name?,
            model: model?,
            approval: approval?,
        })
    }

    /// `deploy:` a model rolled out to an endpoint.
    fn deploy(&mut self, node: &Node, ctx: &str) -> Option<StepKind> {
        let fields = self.map(node, ctx)?;
        self.check_keys(
            &fields,
            &["endpoint", "model", "strategy", "percent", "bake", "wait"],
            ctx,
        );
        let f = |key: &str| field(&fields, key);
        let required = |p: &mut Parser, key: &str| p.required_string(&fields, key, node, ctx);
        let endpoint = required(self, "endpoint");
        let model = required(self, "model");
        let mut ok = true;
        let strategy = match f("strategy") {
            None => None,
            Some(n) => {
                let s = self.string(n, &format!("'strategy' of {ctx}"))?;
                if !matches!(
                    s.value.as_str(),
                    "all_at_once" | "canary" | "linear" | "blue_green"
                ) {
                    self.error(
                        s.pos,
                        format!("unknown strategy '{}' in {ctx}: expected all_at_once, canary, linear or blue_green", s.value),
                    );
                    ok = false;
                }
                Some(s)
            }
        };
        let percent = match f("percent") {
            None => None,
            Some(n) => {
                let p = self.uint(n, 1, &format!("'percent' of {ctx}"))?;
                if p.value > 100 {
                    self.error(p.pos, format!("'percent' of {ctx} is above 100"));
                    ok = false;
                }
                Some(p)
            }
        };
        let bake = match f("bake") {
            None => None,
            Some(n) => Some(self.duration(n, &format!("'bake' of {ctx}"))?),
        };
        let wait = match f("wait") {
            None => false,
            Some(n) => match &n.data {
                YamlDataOwned::Value(ScalarOwned::Boolean(b)) => *b,
                _ => {
                    self.expected(n, "true or false", &format!("'wait' of {ctx}"));
                    ok = false;
                    false
                }
            },
        };
        ok.then_some(())?;
        Some(StepKind::Deploy {
            endpoint: endpoint?,
            model: model?,
            strategy,
            percent,
            bake,
            wait,
        })
    }

    /// The string under `key` of a kind's mapping; missing is an error at `node`.
    fn required_string(
        &mut self,
        fields: &Map<'_>,
        key: &str,
        node: &Node,
        context: &str,
    ) -> Option<Spanned<String>> {
        match field(fields, key) {
            Some(n) => self.string(n, &format!("'{key}' of {context}")),
            None => {
                self.error(pos(node), format!("missing key '{key}' in {context}"));
                None
            }
        }
    }

    fn branch(&mut self, node: &Node, context: &str) -> Option<Branch> {
        match &node.data {
            YamlDataOwned::Value(ScalarOwned::String(s)) if s == "fail" => {
                Some(Branch::Fail(pos(node)))
            }
            YamlDataOwned::Sequence(_) => Some(Branch::Steps(self.string_list(node, context))),
            _ => {
                self.expected(node, "a list of step names or 'fail'", context);
                None
            }
        }
    }
}
