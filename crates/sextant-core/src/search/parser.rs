//! Parser for filter strings and order_by clauses.
//!
//! MLflow tokenizes filters with `sqlparse` and then walks the tokens; we
//! parse the same language directly, by recursive descent over the input's
//! characters, in two passes: syntax first (so that `a = 'x' OR b` reports
//! the `OR`, as MLflow does), then the per-kind rules on identifiers,
//! comparators and value types. Error messages follow MLflow's wording,
//! since clients and upstream tests match on them.
//!
//! Quoting: string values take `'…'` or `"…"`; inside, a doubled quote or a
//! backslash-escaped quote stands for the quote and `\\` for one backslash;
//! any other backslash is kept as is (Windows paths read naturally). Keys
//! may also be quoted with backticks, where only a doubled backtick escapes.

use super::ast::{
    Comparator, Comparison, Entity, Filter, Identifier, OrderBy, SearchKind, Value, is_word_char,
};
use crate::Error;

use Comparator::{Eq, Ge, Gt, ILike, In, IsNotNull, IsNull, Le, Like, Lt, Ne, NotIn};

/// Parses a filter string for `kind`; an empty or blank string is the empty filter.
pub fn parse_filter(kind: SearchKind, input: &str) -> Result<Filter, Error> {
    let mut cur = Cursor::new(input);
    let mut raw = Vec::new();
    let mut need_and = false;
    loop {
        cur.skip_ws();
        if cur.eof() {
            break;
        }
        // Like sqlparse-based MLflow, stray ANDs (leading, trailing, doubled)
        // are tolerated; only a missing AND between two clauses is an error.
        if cur.at_keyword("AND") {
            cur.pos = cur.word_end(cur.pos);
            need_and = false;
            continue;
        }
        if cur.peek() == Some(';') {
            return Err(semicolon(&cur, input));
        }
        if need_and {
            return Err(invalid_clause(&cur.token_text()));
        }
        raw.push(cur.clause()?);
        need_and = true;
    }
    let clauses = raw
        .into_iter()
        .map(|c| check_clause(kind, c))
        .collect::<Result<_, _>>()?;
    Ok(Filter { clauses })
}

/// Parses one order_by clause for `kind`: `identifier [ASC|DESC]`, ascending by default.
pub fn parse_order_by(kind: SearchKind, input: &str) -> Result<OrderBy, Error> {
    let unparsable = || {
        Error::invalid(format!(
            "Invalid order_by clause '{input}'. Could not be parsed."
        ))
    };
    let mut cur = Cursor::new(input);
    cur.skip_ws();
    if cur.eof() {
        return Err(unparsable());
    }
    let raw = cur.ident().map_err(|_| unparsable())?;
    cur.skip_ws();
    let mut ascending = true;
    if !cur.eof() {
        let end = cur.word_end(cur.pos);
        if end == cur.pos {
            return Err(unparsable());
        }
        ascending = match cur.slice(cur.pos, end).to_ascii_lowercase().as_str() {
            "asc" => true,
            "desc" => false,
            _ => {
                return Err(Error::invalid(format!(
                    "Invalid ordering key in order_by clause '{input}'."
                )));
            }
        };
        cur.pos = end;
        cur.skip_ws();
        if !cur.eof() {
            return Err(unparsable());
        }
    }
    let ident = resolve(kind, &raw, Ctx::OrderBy)?;
    Ok(OrderBy { ident, ascending })
}

/// Parses a request's order_by clauses, rejecting a field named twice.
pub fn parse_order_by_list(kind: SearchKind, inputs: &[String]) -> Result<Vec<OrderBy>, Error> {
    let parsed = inputs
        .iter()
        .map(|s| parse_order_by(kind, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut dups: Vec<&Identifier> = Vec::new();
    for (i, o) in parsed.iter().enumerate() {
        if parsed[..i].iter().any(|p| p.ident == o.ident) && !dups.contains(&&o.ident) {
            dups.push(&o.ident);
        }
    }
    if !dups.is_empty() {
        let names: Vec<String> = dups.iter().map(|d| d.to_string()).collect();
        return Err(Error::invalid(format!(
            "`order_by` contains duplicate fields: {}",
            names.join(", ")
        )));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------
// Syntax

/// An identifier as written: optional entity prefix and unquoted key.
struct RawIdent {
    entity: Option<String>,
    key: String,
    text: String,
}

/// The right-hand side as written, before the kind's rules give it a type.
enum Tok {
    /// A quoted string: decoded value and source text.
    Str(String, String),
    Num {
        raw: String,
        value: f64,
        int: Option<i64>,
    },
    /// An unquoted word or backticked name where a value belongs.
    Bare(String),
    /// A parenthesized group where a scalar belongs.
    Paren(String),
    List(Vec<String>, String),
    None,
}

struct RawClause {
    ident: RawIdent,
    op: Comparator,
    value: Tok,
}

struct Cursor<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Self {
        Cursor {
            input,
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn eof(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn slice(&self, from: usize, to: usize) -> String {
        let to = to.min(self.chars.len());
        self.chars
            .get(from..to)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// The end of the run of word characters starting at `from`.
    fn word_end(&self, from: usize) -> usize {
        let mut i = from;
        while self.peek_at(i).is_some_and(is_word_char) {
            i += 1;
        }
        i
    }

    /// Whether the word at the cursor is the keyword `kw` (any case) and not an entity prefix.
    fn at_keyword(&self, kw: &str) -> bool {
        let end = self.word_end(self.pos);
        end > self.pos
            && self.slice(self.pos, end).eq_ignore_ascii_case(kw)
            && self.peek_at(end) != Some('.')
    }

    /// Reads the word at the cursor, upper-cased, if there is one.
    fn keyword(&mut self) -> Option<String> {
        let end = self.word_end(self.pos);
        if end == self.pos {
            return None;
        }
        let word = self.slice(self.pos, end).to_ascii_uppercase();
        self.pos = end;
        Some(word)
    }

    fn unterminated(&self) -> Error {
        Error::invalid(format!(
            "Invalid filter '{}'. Unterminated quoted string.",
            self.input
        ))
    }

    /// Reads a quoted string or name starting at the cursor's quote character.
    fn quoted(&mut self) -> Result<String, Error> {
        let Some(q) = self.peek() else {
            return Err(self.unterminated());
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.unterminated());
            };
            self.pos += 1;
            if c == q {
                if self.peek() == Some(q) {
                    out.push(q);
                    self.pos += 1;
                    continue;
                }
                return Ok(out);
            }
            if c == '\\' && q != '`' {
                match self.peek() {
                    Some(n) if n == q || n == '\\' => {
                        out.push(n);
                        self.pos += 1;
                    }
                    _ => out.push('\\'),
                }
                continue;
            }
            out.push(c);
        }
    }

    /// `[entity.]key`, where each part may be quoted and the key of a
    /// prefixed identifier may contain dots (`tags.mlflow.runName`).
    fn ident(&mut self) -> Result<RawIdent, Error> {
        let start = self.pos;
        let first = match self.peek() {
            Some('`' | '"') => self.quoted()?,
            Some(c) if c.is_alphabetic() || c == '_' => {
                let end = self.word_end(self.pos);
                let word = self.slice(self.pos, end);
                self.pos = end;
                word
            }
            _ => return Err(invalid_clause(&self.token_text())),
        };
        if self.peek() != Some('.') {
            return Ok(RawIdent {
                entity: None,
                key: first,
                text: self.slice(start, self.pos),
            });
        }
        self.pos += 1;
        let key = match self.peek() {
            Some('`' | '"' | '\'') => self.quoted()?,
            _ => {
                let key_start = self.pos;
                loop {
                    let end = self.word_end(self.pos);
                    if end == self.pos {
                        break;
                    }
                    self.pos = end;
                    if self.peek() == Some('.') && self.peek_at(end + 1).is_some_and(is_word_char) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.slice(key_start, self.pos)
            }
        };
        let text = self.slice(start, self.pos);
        if key.is_empty() {
            return Err(Error::invalid(format!(
                "Invalid identifier '{text}'. Columns should be specified as 'attribute.<key>', \
                 'metric.<key>', 'tag.<key>', 'dataset.<key>', or 'param.<key>'."
            )));
        }
        Ok(RawIdent {
            entity: Some(first),
            key,
            text,
        })
    }

    /// One `identifier operator [value]` clause.
    fn clause(&mut self) -> Result<RawClause, Error> {
        let ident = self.ident()?;
        self.skip_ws();
        let op = self.op(&ident)?;
        let value = match op {
            In | NotIn => self.list(op)?,
            IsNull | IsNotNull => Tok::None,
            _ => self.scalar(&ident, op)?,
        };
        Ok(RawClause { ident, op, value })
    }

    fn op(&mut self, ident: &RawIdent) -> Result<Comparator, Error> {
        let expected = |found: &str| {
            Error::invalid(format!(
                "Invalid comparison clause. Expected comparison found '{found}'"
            ))
        };
        let Some(c) = self.peek() else {
            return Err(invalid_clause(&ident.text));
        };
        if "<>=!~".contains(c) {
            let start = self.pos;
            while self.peek().is_some_and(|c| "<>=!~".contains(c)) {
                self.pos += 1;
            }
            let text = self.slice(start, self.pos);
            return match text.as_str() {
                "=" => Ok(Eq),
                "!=" => Ok(Ne),
                ">" => Ok(Gt),
                ">=" => Ok(Ge),
                "<" => Ok(Lt),
                "<=" => Ok(Le),
                _ => Err(Error::invalid(format!("Invalid comparator '{text}'"))),
            };
        }
        let start = self.pos;
        let Some(word) = self.keyword() else {
            return Err(expected(&self.token_text()));
        };
        let op = match word.as_str() {
            "LIKE" => Like,
            "ILIKE" => ILike,
            "IN" => In,
            "NOT" => {
                self.skip_ws();
                match self.keyword().as_deref() {
                    Some("IN") => NotIn,
                    _ => return Err(expected(&self.slice(start, self.pos))),
                }
            }
            "IS" => {
                self.skip_ws();
                match self.keyword().as_deref() {
                    Some("NULL") => IsNull,
                    Some("NOT") => {
                        self.skip_ws();
                        match self.keyword().as_deref() {
                            Some("NULL") => IsNotNull,
                            _ => return Err(expected(&self.slice(start, self.pos))),
                        }
                    }
                    _ => return Err(expected(&self.slice(start, self.pos))),
                }
            }
            _ => return Err(expected(&self.slice(start, self.pos))),
        };
        Ok(op)
    }

    /// The value of a binary comparison.
    fn scalar(&mut self, ident: &RawIdent, op: Comparator) -> Result<Tok, Error> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(Error::invalid(format!(
                "Invalid comparison clause. Expected a value after '{} {op}'",
                ident.text
            ))),
            Some('\'' | '"') => {
                let value = self.quoted()?;
                Ok(Tok::Str(value, self.slice(start, self.pos)))
            }
            Some('`') => {
                self.quoted()?;
                Ok(Tok::Bare(self.slice(start, self.pos)))
            }
            Some('(') => {
                let text = self.token_text();
                self.pos += text.chars().count();
                Ok(Tok::Paren(text))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => Ok(self.number()),
            Some(c) if is_word_char(c) => {
                let text = self.token_text();
                self.pos += text.chars().count();
                Ok(Tok::Bare(text))
            }
            Some(_) => Err(invalid_clause(&self.token_text())),
        }
    }

    /// A number like `-1.5e3`; malformed ones (`1abc`, `1.2.3`) become bare words.
    fn number(&mut self) -> Tok {
        let start = self.pos;
        let digits = |cur: &mut Self| {
            let from = cur.pos;
            while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                cur.pos += 1;
            }
            cur.pos - from
        };
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let mut n = digits(self);
        let mut int = true;
        if self.peek() == Some('.') {
            self.pos += 1;
            n += digits(self);
            int = false;
        }
        if n > 0 && matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = save;
            } else {
                int = false;
            }
        }
        // Anything glued on makes the whole thing one malformed token.
        let mut glued = false;
        while self.peek().is_some_and(|c| is_word_char(c) || c == '.') {
            self.pos += 1;
            glued = true;
        }
        let raw = self.slice(start, self.pos);
        match raw.parse::<f64>() {
            Ok(value) if n > 0 && !glued => {
                let int = if int { raw.parse::<i64>().ok() } else { None };
                Tok::Num { raw, value, int }
            }
            _ => Tok::Bare(raw),
        }
    }

    /// A parenthesized, comma-separated, non-empty list of quoted strings.
    fn list(&mut self, op: Comparator) -> Result<Tok, Error> {
        self.skip_ws();
        let text = self.token_text();
        if self.peek() != Some('(') {
            return Err(Error::invalid(format!(
                "Expected a parenthesized list of quoted string values after '{op}'. Got value {text}"
            )));
        }
        let ill_formed = || {
            Error::invalid(
                "While parsing a list in the query, expected a non-empty list of string values, \
                 but got ill-formed list.",
            )
        };
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(Error::invalid(
                "While parsing a list in the query, expected a non-empty list of string values, \
                 but got empty list",
            ));
        }
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some('\'' | '"') => items.push(self.quoted()?),
                None | Some(',' | ')') => return Err(ill_formed()),
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "While parsing a list in the query, expected string value, punctuation, \
                         or whitespace, but got different type in list: {text}"
                    )));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Tok::List(items, text));
                }
                _ => return Err(ill_formed()),
            }
        }
    }

    /// The source text of the token at the cursor, for error messages.
    fn token_text(&self) -> String {
        let Some(c) = self.peek() else {
            return String::new();
        };
        let mut end = self.pos + 1;
        match c {
            '(' => {
                let (mut depth, mut quote) = (0usize, None);
                for (i, &ch) in self.chars.iter().enumerate().skip(self.pos) {
                    end = i + 1;
                    match (quote, ch) {
                        (Some(q), ch) if ch == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"' | '`') => quote = Some(ch),
                        (None, '(') => depth += 1,
                        (None, ')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '\'' | '"' | '`' => {
                end = self.chars.len();
                if let Some(i) = self.chars.iter().skip(self.pos + 1).position(|&ch| ch == c) {
                    end = self.pos + i + 2;
                }
            }
            c if is_word_char(c) || c == '-' => {
                while self
                    .peek_at(end)
                    .is_some_and(|c| is_word_char(c) || c == '.')
                {
                    end += 1;
                }
            }
            c if "<>=!~".contains(c) => {
                while self.peek_at(end).is_some_and(|c| "<>=!~".contains(c)) {
                    end += 1;
                }
            }
            _ => {}
        }
        self.slice(self.pos, end)
    }
}

fn invalid_clause(text: &str) -> Error {
    Error::invalid(format!("Invalid clause(s) in filter string: '{text}'"))
}

fn semicolon(cur: &Cursor<'_>, input: &str) -> Error {
    if cur.chars[cur.pos + 1..].iter().all(|c| c.is_whitespace()) {
        invalid_clause(";")
    } else {
        Error::invalid(format!(
            "Search filter contained multiple expression '{input}'. Provide AND-ed expression list."
        ))
    }
}

// ---------------------------------------------------------------------------
// Per-kind rules

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
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
fn resolve(kind: SearchKind, raw: &RawIdent, ctx: Ctx) -> Result<Identifier, Error> {
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
    Ok(Identifier { entity, key })
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
            let r = rule(
                kind,
                &Identifier {
                    entity: Entity::Attribute,
                    key: canonical.to_string(),
                },
            );
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
fn check_clause(kind: SearchKind, clause: RawClause) -> Result<Comparison, Error> {
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
