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

use super::ast::{Aggregate, Comparator, Filter, Identifier, OrderBy, SearchKind, is_word_char};
use super::rules::{Ctx, check_clause, resolve};
use crate::Error;

use Comparator::{Eq, Ge, Gt, ILike, In, IsNotNull, IsNull, Le, Like, Lt, Ne, NotIn};

/// The most clauses a filter may have. MLflow sets no limit, but every
/// clause is one subquery: past a few hundred, SQLite refuses the statement
/// ("Expression tree is too large", from about 990 clauses) and PostgreSQL
/// spends seconds to minutes on it. 100 is far beyond any hand-written
/// filter and keeps every allowed filter well under both cliffs (the bench in
/// `crates/sextant-store/examples/filter_bench.rs`).
pub const MAX_FILTER_CLAUSES: usize = 100;

/// The longest filter string, in characters. Generous for long `IN` lists
/// (about 1,800 quoted run ids), and it bounds the bound parameters of one
/// statement below SQLite's limit of 32,766.
pub const MAX_FILTER_LENGTH: usize = 65_536;

/// Parses a filter string for `kind`; an empty or blank string is the empty
/// filter. A filter longer than [`MAX_FILTER_LENGTH`] characters or with more
/// than [`MAX_FILTER_CLAUSES`] clauses is refused with the limit it broke.
pub fn parse_filter(kind: SearchKind, input: &str) -> Result<Filter, Error> {
    parse_filter_located(kind, input).map_err(|e| e.error)
}

/// A filter's error and the part of the filter it is about: `start..end`
/// in characters (Unicode code points) from 0.
#[derive(Debug)]
pub struct FilterError {
    pub error: Error,
    pub start: usize,
    pub end: usize,
}

/// [`parse_filter`], telling where the filter is wrong: the token or the
/// clause part that could not be read, or the whole clause that broke a
/// rule of `kind` (an unknown key, a comparator or value its entity does
/// not take).
pub fn parse_filter_located(kind: SearchKind, input: &str) -> Result<Filter, FilterError> {
    let length = input.chars().count();
    let at = |error: Error, start: usize, end: usize| {
        let start = start.min(length);
        FilterError {
            error,
            start,
            end: end.clamp(start, length),
        }
    };
    if length > MAX_FILTER_LENGTH {
        let error = Error::invalid(format!(
            "Invalid filter: it is {length} characters long, more than the limit of \
             {MAX_FILTER_LENGTH}"
        ));
        return Err(at(error, MAX_FILTER_LENGTH, length));
    }
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
            return Err(at(semicolon(&cur, input), cur.pos, cur.pos + 1));
        }
        if need_and {
            let token = cur.token_text();
            let end = cur.pos + token.chars().count();
            return Err(at(invalid_clause(&token), cur.pos, end));
        }
        let start = cur.pos;
        if raw.len() == MAX_FILTER_CLAUSES {
            let error = Error::invalid(format!(
                "Invalid filter: it has more than {MAX_FILTER_CLAUSES} clauses, the limit; \
                 narrow the search with fewer conditions or an IN list"
            ));
            return Err(at(error, start, length));
        }
        match cur.clause() {
            Ok(c) => raw.push((c, start, cur.pos)),
            // Where the part that failed starts, up to where reading it
            // stopped; at the end of the input, the clause it ends.
            Err((error, part)) => {
                let (from, to) = if part >= length {
                    (start, length)
                } else {
                    (part, cur.pos.max(part + 1))
                };
                return Err(at(error, from, to));
            }
        }
        need_and = true;
    }
    let clauses = raw
        .into_iter()
        .map(|(c, start, end)| check_clause(kind, c).map_err(|e| at(e, start, end)))
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
    // A malformed `min(…)` says what is wrong with it; other identifiers
    // keep MLflow's message.
    let call = cur.at_call();
    let raw = cur
        .ident()
        .map_err(|e| if call { e } else { unparsable() })?;
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

/// An identifier as written: optional entity prefix and unquoted key, and
/// the aggregate around it (`min(metrics.loss)`) with the position, from 0,
/// where its function name starts.
pub(super) struct RawIdent {
    pub(super) entity: Option<String>,
    pub(super) key: String,
    pub(super) text: String,
    pub(super) aggregate: Option<(Aggregate, usize)>,
}

/// The right-hand side as written, before the kind's rules give it a type.
pub(super) enum Tok {
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

pub(super) struct RawClause {
    pub(super) ident: RawIdent,
    pub(super) op: Comparator,
    pub(super) value: Tok,
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

    /// Whether the cursor is at a function call (`word(`), which only an
    /// aggregate (`min(metrics.loss)`) may be.
    fn at_call(&self) -> bool {
        let end = self.word_end(self.pos);
        end > self.pos && self.peek_at(end) == Some('(')
    }

    /// An identifier, or an aggregate of one: `min(metrics.loss)`,
    /// `max(metrics.`my key`)` (any case, spaces allowed inside the
    /// parentheses). Errors name the position of the bad token.
    fn ident(&mut self) -> Result<RawIdent, Error> {
        if !self.at_call() {
            return self.plain_ident();
        }
        let start = self.pos;
        let end = self.word_end(start);
        let name = self.slice(start, end);
        let aggregate = match name.to_ascii_lowercase().as_str() {
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            _ => {
                return Err(Error::invalid(format!(
                    "Invalid function '{name}' at position {}: only min(metrics.<key>) and \
                     max(metrics.<key>) are supported",
                    start + 1
                )));
            }
        };
        self.pos = end + 1;
        self.skip_ws();
        if self.eof() || self.peek() == Some(')') || self.at_call() {
            let found = if self.eof() {
                "the end".to_string()
            } else {
                format!("'{}'", self.token_text())
            };
            return Err(Error::invalid(format!(
                "Invalid identifier '{}' at position {}: expected metrics.<key> inside \
                 {name}(), found {found}",
                self.slice(start, self.pos),
                self.pos + 1
            )));
        }
        let inner = self.plain_ident()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            let found = if self.eof() {
                "the end".to_string()
            } else {
                format!("'{}'", self.token_text())
            };
            return Err(Error::invalid(format!(
                "Invalid identifier '{}' at position {}: expected ')' after '{}', found {found}",
                self.slice(start, self.pos),
                self.pos + 1,
                inner.text
            )));
        }
        self.pos += 1;
        Ok(RawIdent {
            entity: inner.entity,
            key: inner.key,
            text: self.slice(start, self.pos),
            aggregate: Some((aggregate, start)),
        })
    }

    /// `[entity.]key`, where each part may be quoted and the key of a
    /// prefixed identifier may contain dots (`tags.mlflow.runName`).
    fn plain_ident(&mut self) -> Result<RawIdent, Error> {
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
                aggregate: None,
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
            aggregate: None,
        })
    }

    /// One `identifier operator [value]` clause; an error comes with the
    /// position where the part that failed (identifier, operator, value)
    /// starts.
    fn clause(&mut self) -> Result<RawClause, (Error, usize)> {
        let at = self.pos;
        let ident = self.ident().map_err(|e| (e, at))?;
        self.skip_ws();
        let at = self.pos;
        let op = self.op(&ident).map_err(|e| (e, at))?;
        self.skip_ws();
        let at = self.pos;
        let value = match op {
            In | NotIn => self.list(op),
            IsNull | IsNotNull => Ok(Tok::None),
            _ => self.scalar(&ident, op),
        }
        .map_err(|e| (e, at))?;
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
