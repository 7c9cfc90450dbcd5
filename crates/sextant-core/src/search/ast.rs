//! The search AST. `Display` prints a form that parses back to the same AST.

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

/// `entity.key`; attribute keys are canonical (`run name` → `run_name`,
/// `created` → `start_time`, `source_path` → `source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub entity: Entity,
    pub key: String,
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
