//! The per-kind rules of the search grammar: which identifiers, comparators
//! and value types each searched entity admits, with MLflow's messages.

use super::ast::{Aggregate, Comparator, Comparison, Entity, Identifier, SearchKind, Value};
use super::parser::{RawClause, RawIdent, Tok};
use crate::Error;

use Comparator::{Eq, Ge, Gt, ILike, In, IsNotNull, IsNull, Le, Like, Lt, Ne, NotIn};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    Filter,
    OrderBy,
}

/// How a key's values are typed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// An unquoted number, compared as a double (metrics).
    Number,
    /// An unquoted integer (times).
    Int,
    /// An integer, quoted or not (`version_number`, as MLflow's registry allows).
    IntOrStr,
    /// A quoted string.
    Str,
}

/// The comparators and value type a key admits.
struct Rule {
    ty: Ty,
    ops: &'static [Comparator],
    /// Whether `IN`/`NOT IN` lists are allowed.
    list: bool,
}

const NUMERIC_OPS: &[Comparator] = &[Eq, Ne, Gt, Ge, Lt, Le];
const LIKE_OPS: &[Comparator] = &[Eq, Ne, Like, ILike];
const NULLABLE_OPS: &[Comparator] = &[Eq, Ne, Like, ILike, IsNull, IsNotNull];
const LIST_OPS: &[Comparator] = &[Eq, Ne, Like, ILike, In, NotIn];
const ID_OPS: &[Comparator] = &[Eq, Ne, In, NotIn];

/// Accepted attribute spellings and their canonical keys.
type Attrs = &'static [(&'static str, &'static str)];

const RUN_ATTRS: Attrs = &[
    ("run_id", "run_id"),
    ("run_name", "run_name"),
    ("status", "status"),
    ("user_id", "user_id"),
    ("artifact_uri", "artifact_uri"),
    ("start_time", "start_time"),
    ("end_time", "end_time"),
    ("created", "start_time"),
    ("Created", "start_time"),
    ("run name", "run_name"),
    ("Run name", "run_name"),
    ("Run Name", "run_name"),
];
const EXPERIMENT_ATTRS: Attrs = &[
    ("name", "name"),
    ("experiment_id", "experiment_id"),
    ("creation_time", "creation_time"),
    ("last_update_time", "last_update_time"),
];
const MODEL_FILTER_ATTRS: Attrs = &[("name", "name")];
const MODEL_ORDER_ATTRS: Attrs = &[
    ("name", "name"),
    ("timestamp", "last_updated_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
];
const VERSION_FILTER_ATTRS: Attrs = &[
    ("name", "name"),
    ("run_id", "run_id"),
    ("source_path", "source"),
    ("version_number", "version_number"),
];
const VERSION_ORDER_ATTRS: Attrs = &[
    ("name", "name"),
    ("version_number", "version_number"),
    ("creation_timestamp", "creation_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
];
const LOGGED_MODEL_ATTRS: Attrs = &[
    ("name", "name"),
    ("model_id", "model_id"),
    ("model_type", "model_type"),
    ("status", "status"),
    ("source_run_id", "source_run_id"),
    ("creation_timestamp", "creation_timestamp"),
    ("creation_time", "creation_timestamp"),
    ("last_updated_timestamp", "last_updated_timestamp"),
    ("last_updated_time", "last_updated_timestamp"),
];
const DATASET_KEYS: &[&str] = &["name", "digest", "context"];

fn attrs(kind: SearchKind, ctx: Ctx) -> Attrs {
    match (kind, ctx) {
        (SearchKind::Runs, _) => RUN_ATTRS,
        (SearchKind::Experiments, _) => EXPERIMENT_ATTRS,
        (SearchKind::RegisteredModels, Ctx::Filter) => MODEL_FILTER_ATTRS,
        (SearchKind::RegisteredModels, Ctx::OrderBy) => MODEL_ORDER_ATTRS,
        (SearchKind::ModelVersions, Ctx::Filter) => VERSION_FILTER_ATTRS,
        (SearchKind::ModelVersions, Ctx::OrderBy) => VERSION_ORDER_ATTRS,
        (SearchKind::LoggedModels, _) => LOGGED_MODEL_ATTRS,
    }
}

/// Renders names the way Python prints a set: `{'a', 'b'}`.
fn py_set<'s>(names: impl IntoIterator<Item = &'s str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    format!("{{{}}}", quoted.join(", "))
}

/// The entity a prefix names, with MLflow's aliases for run-style searches.
fn run_entity(prefix: &str) -> Option<Entity> {
    Some(match prefix {
        "metric" | "metrics" => Entity::Metric,
        "parameter" | "parameters" | "param" | "params" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attr" | "attributes" | "run" => Entity::Attribute,
        "dataset" | "datasets" => Entity::Dataset,
        _ => return None,
    })
}

fn resolve_entity(kind: SearchKind, prefix: Option<&str>, ctx: Ctx) -> Result<Entity, Error> {
    let Some(prefix) = prefix else {
        return Ok(Entity::Attribute);
    };
    let run_like = |datasets: bool| {
        run_entity(prefix)
            .filter(|e| datasets || *e != Entity::Dataset)
            .ok_or_else(|| {
                let valid = if datasets {
                    "'metric', 'parameter', 'tag', 'attribute', 'dataset'"
                } else {
                    "'metric', 'parameter', 'tag', 'attribute'"
                };
                Error::invalid(format!(
                    "Invalid entity type '{prefix}'. Valid values are [{valid}]"
                ))
            })
    };
    match (kind, ctx) {
        (SearchKind::Runs, Ctx::Filter) => run_like(true),
        (SearchKind::Runs, Ctx::OrderBy) => match run_like(true)? {
            Entity::Dataset => Err(Error::invalid("Invalid order_by entity type 'dataset'")),
            e => Ok(e),
        },
        (SearchKind::LoggedModels, Ctx::Filter) => run_like(false),
        (SearchKind::LoggedModels, Ctx::OrderBy) => match prefix {
            "metric" | "metrics" => Ok(Entity::Metric),
            _ => Err(Error::invalid(format!(
                "Invalid order by field name: {prefix}, only `metrics.<name>` is allowed."
            ))),
        },
        (SearchKind::Experiments | SearchKind::RegisteredModels | SearchKind::ModelVersions, _) => {
            let entity = match prefix {
                "attribute" => Entity::Attribute,
                "tag" | "tags" => Entity::Tag,
                _ => {
                    return Err(Error::invalid(format!(
                        "Invalid entity type '{prefix}'. Valid entity types are ('attribute', 'tag', 'tags')"
                    )));
                }
            };
            if ctx == Ctx::OrderBy && entity == Entity::Tag {
                return Err(Error::invalid("Invalid order_by entity: tag"));
            }
            Ok(entity)
        }
    }
}

/// Validates a written identifier for `kind` and canonicalizes its key.
pub(super) fn resolve(kind: SearchKind, raw: &RawIdent, ctx: Ctx) -> Result<Identifier, Error> {
    if let (Some((aggregate, at)), false) = (raw.aggregate, kind == SearchKind::Runs) {
        return Err(Error::invalid(format!(
            "Invalid identifier '{}' at position {}: {}() is only allowed in run searches",
            raw.text,
            at + 1,
            aggregate.function().unwrap_or_default()
        )));
    }
    let entity = resolve_entity(kind, raw.entity.as_deref(), ctx)?;
    let key = match entity {
        Entity::Attribute => {
            let table = attrs(kind, ctx);
            match table.iter().find(|(name, _)| *name == raw.key) {
                Some((_, canonical)) => canonical.to_string(),
                None if kind == SearchKind::LoggedModels && ctx == Ctx::OrderBy => {
                    return Err(Error::invalid(format!(
                        "Invalid order by field name: {}.",
                        raw.key
                    )));
                }
                None => {
                    return Err(Error::invalid(format!(
                        "Invalid attribute key '{}' specified. Valid keys are '{}'",
                        raw.key,
                        py_set(table.iter().map(|(name, _)| *name))
                    )));
                }
            }
        }
        Entity::Dataset if !DATASET_KEYS.contains(&raw.key.as_str()) => {
            return Err(Error::invalid(format!(
                "Invalid dataset key '{}' specified. Valid keys are '{}'",
                raw.key,
                py_set(DATASET_KEYS.iter().copied())
            )));
        }
        _ => raw.key.clone(),
    };
    let aggregate = match raw.aggregate {
        None => Aggregate::Last,
        Some((aggregate, _)) if entity == Entity::Metric => aggregate,
        Some((aggregate, at)) => {
            let function = aggregate.function().unwrap_or_default();
            return Err(Error::invalid(format!(
                "Invalid identifier '{}' at position {}: {function}() takes a metric, \
                 as in {function}(metrics.<key>)",
                raw.text,
                at + 1
            )));
        }
    };
    Ok(Identifier {
        entity,
        key,
        aggregate,
    })
}

/// The comparators and value type of a resolved (canonical) identifier.
fn rule(kind: SearchKind, ident: &Identifier) -> Rule {
    let rule = |ty, ops, list| Rule { ty, ops, list };
    let key = ident.key.as_str();
    match (kind, ident.entity) {
        (_, Entity::Metric) => rule(Ty::Number, NUMERIC_OPS, false),
        (SearchKind::Runs | SearchKind::Experiments, Entity::Param | Entity::Tag) => {
            rule(Ty::Str, NULLABLE_OPS, false)
        }
        (_, Entity::Param | Entity::Tag) => rule(Ty::Str, LIKE_OPS, false),
        (_, Entity::Dataset) => rule(Ty::Str, LIST_OPS, true),
        (SearchKind::Runs, Entity::Attribute) => match key {
            "start_time" | "end_time" => rule(Ty::Int, NUMERIC_OPS, false),
            _ => rule(Ty::Str, LIST_OPS, key == "run_id"),
        },
        (SearchKind::Experiments, Entity::Attribute) => match key {
            "name" => rule(Ty::Str, LIKE_OPS, false),
            "experiment_id" => rule(Ty::Str, ID_OPS, true),
            _ => rule(Ty::Int, NUMERIC_OPS, false),
        },
        (SearchKind::RegisteredModels, Entity::Attribute) => rule(Ty::Str, LIST_OPS, true),
        (SearchKind::ModelVersions, Entity::Attribute) => match key {
            "version_number" => rule(Ty::IntOrStr, NUMERIC_OPS, false),
            "source" => rule(Ty::Str, LIKE_OPS, false),
            _ => rule(Ty::Str, LIST_OPS, true),
        },
        (SearchKind::LoggedModels, Entity::Attribute) => match key {
            "creation_timestamp" | "last_updated_timestamp" => rule(Ty::Int, NUMERIC_OPS, false),
            _ => rule(Ty::Str, LIST_OPS, true),
        },
    }
}

/// The attribute keys of `kind` that take `IN` lists, as written.
fn list_keys(kind: SearchKind) -> Vec<&'static str> {
    attrs(kind, Ctx::Filter)
        .iter()
        .filter(|(name, canonical)| {
            let r = rule(kind, &Identifier::new(Entity::Attribute, *canonical));
            r.list && *name == *canonical
        })
        .map(|(name, _)| *name)
        .collect()
}

/// The error for a value of the wrong type; `raw_key` is the key as written.
fn wrong_type(kind: SearchKind, ident: &Identifier, raw_key: &str, ty: Ty, tok: &Tok) -> Error {
    let text = match tok {
        Tok::Str(_, raw)
        | Tok::Num { raw, .. }
        | Tok::Bare(raw)
        | Tok::Paren(raw)
        | Tok::List(_, raw) => raw,
        Tok::None => "",
    };
    let msg = match (ident.entity, ty, tok) {
        (Entity::Metric, ..) => format!("Expected numeric value type for metric. Found {text}"),
        (_, Ty::Int | Ty::IntOrStr, Tok::Num { .. }) | (_, Ty::IntOrStr, Tok::Str(..)) => {
            format!("Expected an integer value for numeric attribute: {raw_key}. Found {text}")
        }
        (_, Ty::Int | Ty::IntOrStr, _) => {
            format!("Expected numeric value type for numeric attribute: {raw_key}. Found {text}")
        }
        (_, _, Tok::Bare(_)) => format!(
            "Parameter value is either not quoted or unidentified quote types used for string value {text}. \
             Use either single or double quotes."
        ),
        (Entity::Param, ..) => {
            format!(
                "Expected a quoted string value for parameter (e.g. 'my-value'). Got value {text}"
            )
        }
        (Entity::Tag, ..) => {
            format!("Expected a quoted string value for tag (e.g. 'my-value'). Got value {text}")
        }
        (Entity::Dataset, ..) => {
            format!("Expected a quoted string value for dataset attributes. Got value {text}")
        }
        (Entity::Attribute, _, Tok::List(..)) => {
            let keys: Vec<String> = list_keys(kind).iter().map(|k| format!("'{k}'")).collect();
            let (keys, verb) = match keys.len() {
                1 => (format!("{} attribute", keys[0]), "supports"),
                _ => (format!("{} attributes", keys.join(", ")), "support"),
            };
            format!("Only the {keys} {verb} comparison with a list of quoted string values.")
        }
        (Entity::Attribute, ..) => {
            format!("Expected a quoted string value for attributes. Got value {text}")
        }
    };
    Error::invalid(msg)
}

/// Applies `kind`'s rules to one parsed clause.
pub(super) fn check_clause(kind: SearchKind, clause: RawClause) -> Result<Comparison, Error> {
    let RawClause {
        ident: raw,
        op,
        value: tok,
    } = clause;
    let ident = resolve(kind, &raw, Ctx::Filter)?;
    let rule = rule(kind, &ident);
    let as_int = |raw_int: Option<i64>, value: f64| {
        raw_int.or_else(|| (value.fract() == 0.0 && value.abs() < 9.2e18).then_some(value as i64))
    };
    let value = match (&tok, rule.ty) {
        (Tok::None, _) => Some(Value::Null),
        (Tok::List(items, _), Ty::Str) if rule.list => Some(Value::List(items.clone())),
        (Tok::List(..), _) => None,
        (Tok::Num { value, .. }, Ty::Number) => Some(Value::Number(*value)),
        (Tok::Num { value, int, .. }, Ty::Int | Ty::IntOrStr) => {
            as_int(*int, *value).map(Value::Int)
        }
        (Tok::Str(s, _), Ty::IntOrStr) => s.trim().parse::<i64>().ok().map(Value::Int),
        (Tok::Str(s, _), Ty::Str) => Some(Value::Str(s.clone())),
        _ => None,
    };
    let value = value.ok_or_else(|| wrong_type(kind, &ident, &raw.key, rule.ty, &tok))?;
    if !rule.ops.contains(&op) {
        return Err(Error::invalid(format!(
            "Invalid comparator '{op}' not one of '{}'",
            py_set(rule.ops.iter().map(|o| o.as_str()))
        )));
    }
    Ok(Comparison { ident, op, value })
}
