//! The search AST. `Display` prints a form that parses back to the same AST.

use std::fmt;

/// Which entity a filter or order_by clause searches; decides the legal
/// identifiers, comparators and value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Runs,
    Experiments,
    RegisteredModels,
    ModelVersions,
    LoggedModels,
}

/// The entity part of an identifier (`metrics.`, `params.`, …), normalized
/// from its aliases (`metric`, `parameter`, `attr`, no prefix, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

/// Which of a run's values of a metric a clause reads: the latest one
/// (MLflow's `metrics.loss`), or, in Sextant's extension of the runs
/// grammar, the smallest or largest ever logged (`min(metrics.loss)`,
/// `max(metrics.loss)`: not valid MLflow, so no MLflow client sends it).
/// Both skip NaN; a metric whose every value is NaN has NaN for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    #[default]
    Last,
    Min,
    Max,
}

impl Aggregate {
    /// The function name as written (`min`, `max`); none for the latest value.
    pub fn function(self) -> Option<&'static str> {
        match self {
            Aggregate::Last => None,
            Aggregate::Min => Some("min"),
            Aggregate::Max => Some("max"),
        }
    }
}

/// `entity.key`; attribute keys are canonical (`run name` → `run_name`,
/// `created` → `start_time`, `source_path` → `source`, logged models'
/// `creation_time` → `creation_timestamp`, registered models' order_by
/// `timestamp` → `last_updated_timestamp`). `aggregate` is other than
/// [`Aggregate::Last`] only for metrics of a run search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub entity: Entity,
    pub key: String,
    pub aggregate: Aggregate,
}

impl Identifier {
    /// An identifier reading the latest value (no aggregate).
    pub fn new(entity: Entity, key: impl Into<String>) -> Self {
        Identifier {
            entity,
            key: key.into(),
            aggregate: Aggregate::Last,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    Str(String),
    /// A number compared as a double (metrics).
    Number(f64),
    /// An integer (times, `version_number`).
    Int(i64),
    /// A parenthesized list of quoted strings (`IN`, `NOT IN`).
    List(Vec<String>),
    /// No value (`IS NULL`, `IS NOT NULL`).
    Null,
}

/// One `identifier comparator value` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub ident: Identifier,
    pub op: Comparator,
    pub value: Value,
}

/// A whole filter: clauses joined by AND. Empty matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Comparison>,
}

/// One `identifier [ASC|DESC]` order_by clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub ident: Identifier,
    pub ascending: bool,
}

impl Comparator {
    /// The operator as written in a filter string (`=`, `NOT IN`, `IS NULL`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "!=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Like => "LIKE",
            Comparator::ILike => "ILIKE",
            Comparator::In => "IN",
            Comparator::NotIn => "NOT IN",
            Comparator::IsNull => "IS NULL",
            Comparator::IsNotNull => "IS NOT NULL",
        }
    }

    /// Whether the comparator takes no right-hand side (`IS [NOT] NULL`).
    pub fn is_unary(self) -> bool {
        matches!(self, Comparator::IsNull | Comparator::IsNotNull)
    }
}

impl Entity {
    /// The prefix `Display` writes: `metrics`, `params`, `tags`, `datasets`;
    /// none for attributes, because experiment and registry searches reject
    /// `attributes.` while every kind accepts a bare attribute key.
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Entity::Metric => Some("metrics"),
            Entity::Param => Some("params"),
            Entity::Tag => Some("tags"),
            Entity::Dataset => Some("datasets"),
            Entity::Attribute => None,
        }
    }
}

/// A character of an unquoted identifier word.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `key` can be written without quotes; `after_dot` when it follows
/// an entity prefix (where digits may lead and dots join words).
fn is_bare_key(key: &str, after_dot: bool) -> bool {
    if after_dot {
        return key
            .split('.')
            .all(|w| !w.is_empty() && w.chars().all(is_word_char));
    }
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(is_word_char)
        && !key.eq_ignore_ascii_case("and")
}

fn write_key(f: &mut fmt::Formatter<'_>, key: &str, after_dot: bool) -> fmt::Result {
    if is_bare_key(key, after_dot) {
        f.write_str(key)
    } else {
        write!(f, "`{}`", key.replace('`', "``"))
    }
}

/// Writes `s` single-quoted, doubling quotes and backslashes so that the
/// parser reads back exactly `s`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(function) = self.aggregate.function() {
            let plain = Identifier::new(self.entity, self.key.clone());
            return write!(f, "{function}({plain})");
        }
        match self.entity.prefix() {
            Some(prefix) => {
                write!(f, "{prefix}.")?;
                write_key(f, &self.key, true)
            }
            // `source` is the canonical form of the model-version key
            // `source_path`, which is the only spelling the parser accepts.
            None if self.key == "source" => f.write_str("source_path"),
            None => write_key(f, &self.key, false),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write_quoted(f, s),
            // Rust prints the shortest form that reads back to the same
            // double; infinities come from literals like `1e400`.
            Value::Number(n) if n.is_infinite() => {
                f.write_str(if *n > 0.0 { "1e999" } else { "-1e999" })
            }
            Value::Number(n) => write!(f, "{n:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, item)?;
                }
                f.write_str(")")
            }
            Value::Null => f.write_str("NULL"),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.is_unary() {
            write!(f, "{} {}", self.ident, self.op)
        } else {
            write!(f, "{} {} {}", self.ident, self.op, self.value)
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.ident,
            if self.ascending { "ASC" } else { "DESC" }
        )
    }
}
