//! Condition expressions: `steps.evaluate.metrics.rmse <= params.threshold`.
//!
//! Grammar (lowest precedence first):
//! `or := and ("or" and)*`, `and := not ("and" not)*`, `not := "not" not | cmp`,
//! `cmp := atom (op atom)?`, `atom := number | string | true | false | path | "(" or ")"`,
//! where a path is `params.NAME` or `steps.STEP.metrics.NAME`.

use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A parsed expression; `offset` fields count characters from the start of
/// the expression, so errors can point into it.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number literal.
    Num(f64),
    /// A string literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// `params.NAME`.
    Param {
        /// The parameter.
        name: String,
        /// Where the path starts.
        offset: usize,
    },
    /// `steps.STEP.metrics.NAME`.
    Metric {
        /// The step.
        step: String,
        /// The metric.
        metric: String,
        /// Where the path starts.
        offset: usize,
    },
    /// `not e`.
    Not(Box<Expr>, usize),
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `a op b`; the offset is the operator's.
    Cmp(Box<Expr>, CmpOp, Box<Expr>, usize),
}

/// A runtime value inside an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// A bool.
    Bool(bool),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::Bool(_) => "a bool",
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Num(n) => write!(f, "{n}"),
            Val::Str(s) => write!(f, "'{s}'"),
            Val::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A parse or evaluation error at `offset` characters into the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    /// Characters from the start of the expression.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        offset,
        message: message.into(),
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Word(String),
    Op(CmpOp),
    Open,
    Close,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = |a: char, b: char| c == a && chars.get(i + 1) == Some(&b);
        let (tok, len) = if two('<', '=') {
            (Tok::Op(CmpOp::Le), 2)
        } else if two('>', '=') {
            (Tok::Op(CmpOp::Ge), 2)
        } else if two('=', '=') {
            (Tok::Op(CmpOp::Eq), 2)
        } else if two('!', '=') {
            (Tok::Op(CmpOp::Ne), 2)
        } else if c == '<' {
            (Tok::Op(CmpOp::Lt), 1)
        } else if c == '>' {
            (Tok::Op(CmpOp::Gt), 1)
        } else if c == '(' {
            (Tok::Open, 1)
        } else if c == ')' {
            (Tok::Close, 1)
        } else if c == '"' || c == '\'' {
            let Some(len) = chars[i + 1..].iter().position(|&q| q == c) else {
                return err(i, "unclosed string literal");
            };
            (
                Tok::Str(chars[i + 1..i + 1 + len].iter().collect()),
                len + 2,
            )
        } else if c.is_ascii_digit()
            || (c == '-' || c == '.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
        {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric()
                    || chars[j] == '.'
                    || (chars[j] == '-' || chars[j] == '+') && matches!(chars[j - 1], 'e' | 'E'))
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            match text.parse::<f64>() {
                Ok(n) if n.is_finite() => (Tok::Num(n), j - i),
                _ => return err(i, format!("invalid number '{text}'")),
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '-' | '.'))
            {
                j += 1;
            }
            (Tok::Word(chars[i..j].iter().collect()), j - i)
        } else {
            return err(i, format!("unexpected character '{c}'"));
        };
        toks.push((tok, start));
        i += len;
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, o)| *o)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.is_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.not()?;
        while self.is_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.is_word("not") {
            let offset = self.offset();
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?), offset));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let left = self.atom()?;
        if let Some(Tok::Op(op)) = self.peek() {
            let (op, offset) = (*op, self.offset());
            self.at += 1;
            let right = self.atom()?;
            return Ok(Expr::Cmp(Box::new(left), op, Box::new(right), offset));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let offset = self.offset();
        let Some(tok) = self.peek().cloned() else {
            return err(offset, "expected a value, found the end of the condition");
        };
        self.at += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Open => {
                let inner = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return err(self.offset(), "expected ')'");
                }
                self.at += 1;
                Ok(inner)
            }
            Tok::Close => err(offset, "unexpected ')'"),
            Tok::Op(_) => err(offset, "expected a value before the comparison"),
            Tok::Word(w) => path(&w, offset),
        }
    }
}

fn path(word: &str, offset: usize) -> Result<Expr, ExprError> {
    let parts: Vec<&str> = word.split('.').collect();
    match parts.as_slice() {
        ["true"] => Ok(Expr::Bool(true)),
        ["false"] => Ok(Expr::Bool(false)),
        ["and" | "or" | "not"] => err(offset, format!("expected a value, found '{word}'")),
        ["params", p] if !p.is_empty() => Ok(Expr::Param {
            name: p.to_string(),
            offset,
        }),
        ["steps", s, "metrics", m] if !s.is_empty() && !m.is_empty() => Ok(Expr::Metric {
            step: s.to_string(),
            metric: m.to_string(),
            offset,
        }),
        _ => err(
            offset,
            format!(
                "unknown name '{word}': expected params.<name>, steps.<step>.metrics.<name>, a number, a quoted string, true or false"
            ),
        ),
    }
}

/// Parses a condition expression.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let end = src.chars().count();
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
        end,
    };
    let expr = p.or()?;
    if p.at < p.toks.len() {
        let what = match &p.toks[p.at].0 {
            Tok::Op(_) => "comparisons do not chain; use 'and'".to_string(),
            Tok::Close => "unexpected ')'".to_string(),
            _ => "expected 'and', 'or' or the end of the condition".to_string(),
        };
        return err(p.offset(), what);
    }
    Ok(expr)
}

/// Where evaluation gets parameter and metric values.
pub trait Env {
    /// The value of parameter `name`, if set.
    fn param(&self, name: &str) -> Option<Val>;
    /// Metric `metric` of step `step`, if logged.
    fn metric(&self, step: &str, metric: &str) -> Option<Val>;
}

impl Expr {
    /// Every `params.NAME` and `steps.S.metrics.M` in the expression.
    pub fn paths(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Expr::Param { .. } | Expr::Metric { .. } => out.push(self),
            Expr::Num(_) | Expr::Str(_) | Expr::Bool(_) => {}
            Expr::Not(e, _) => e.collect_paths(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(a, _, b, _) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
        }
    }

    /// Each `params.NAME` and `steps.S.metrics.M` of the expression, once, in
    /// order, as written, with its value in `env` (`None` when it has none):
    /// what the expression compared, for messages.
    pub fn values(&self, env: &dyn Env) -> Vec<(String, Option<Val>)> {
        let mut out: Vec<(String, Option<Val>)> = Vec::new();
        for path in self.paths() {
            let (name, value) = match path {
                Expr::Param { name, .. } => (format!("params.{name}"), env.param(name)),
                Expr::Metric { step, metric, .. } => (
                    format!("steps.{step}.metrics.{metric}"),
                    env.metric(step, metric),
                ),
                _ => continue,
            };
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, value));
            }
        }
        out
    }

    /// Evaluates the expression to a bool.
    pub fn eval(&self, env: &dyn Env) -> Result<bool, ExprError> {
        match self.value(env)? {
            Val::Bool(b) => Ok(b),
            other => err(
                0,
                format!("condition is {}, not true or false", other.kind()),
            ),
        }
    }

    fn value(&self, env: &dyn Env) -> Result<Val, ExprError> {
        Ok(match self {
            Expr::Num(n) => Val::Num(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Param { name, offset } => match env.param(name) {
                Some(v) => v,
                None => return err(*offset, format!("parameter '{name}' has no value")),
            },
            Expr::Metric {
                step,
                metric,
                offset,
            } => match env.metric(step, metric) {
                Some(v) => v,
                None => {
                    return err(
                        *offset,
                        format!("step '{step}' logged no metric '{metric}'"),
                    );
                }
            },
            Expr::Not(e, offset) => Val::Bool(!bool_of(e.value(env)?, *offset, "not")?),
            Expr::And(a, b) => {
                Val::Bool(bool_of(a.value(env)?, 0, "and")? && bool_of(b.value(env)?, 0, "and")?)
            }
            Expr::Or(a, b) => {
                Val::Bool(bool_of(a.value(env)?, 0, "or")? || bool_of(b.value(env)?, 0, "or")?)
            }
            Expr::Cmp(a, op, b, offset) => {
                Val::Bool(compare(a.value(env)?, *op, b.value(env)?, *offset)?)
            }
        })
    }
}

fn bool_of(v: Val, offset: usize, op: &str) -> Result<bool, ExprError> {
    match v {
        Val::Bool(b) => Ok(b),
        other => err(
            offset,
            format!("'{op}' needs true or false, found {}", other.kind()),
        ),
    }
}

fn compare(a: Val, op: CmpOp, b: Val, offset: usize) -> Result<bool, ExprError> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (&a, &b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(x.cmp(y)),
        _ => {
            return err(
                offset,
                format!("cannot compare {} with {}", a.kind(), b.kind()),
            );
        }
    };
    // NaN compares unequal to everything, as in IEEE 754.
    Ok(match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o.is_lt(),
        (CmpOp::Le, Some(o)) => o.is_le(),
        (CmpOp::Gt, Some(o)) => o.is_gt(),
        (CmpOp::Ge, Some(o)) => o.is_ge(),
        (CmpOp::Eq, Some(o)) => o.is_eq(),
        (CmpOp::Ne, Some(o)) => o.is_ne(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Env for Fixed {
        fn param(&self, name: &str) -> Option<Val> {
            match name {
                "threshold" => Some(Val::Num(0.35)),
                "mode" => Some(Val::Str("fast".into())),
                "flag" => Some(Val::Bool(true)),
                _ => None,
            }
        }
        fn metric(&self, step: &str, metric: &str) -> Option<Val> {
            (step == "evaluate" && metric == "rmse").then_some(Val::Num(0.3))
        }
    }

    fn eval(src: &str) -> Result<bool, ExprError> {
        parse(src)?.eval(&Fixed)
    }

    #[test]
    fn evaluates() {
        assert_eq!(
            eval("steps.evaluate.metrics.rmse <= params.threshold"),
            Ok(true)
        );
        assert_eq!(
            eval("steps.evaluate.metrics.rmse > 0.5 or params.mode == 'fast'"),
            Ok(true)
        );
        assert_eq!(eval("not (params.flag and 1 < 2)"), Ok(false));
        assert_eq!(
            eval("params.flag and not params.mode != \"fast\""),
            Ok(true)
        );
        assert_eq!(eval("-1.5e1 < -14"), Ok(true));
    }

    #[test]
    fn values_name_what_was_compared() {
        let e = parse("steps.evaluate.metrics.rmse <= params.threshold and params.threshold > 0 or params.nope == 'x'").unwrap();
        let shown: Vec<String> = e
            .values(&Fixed)
            .into_iter()
            .map(|(n, v)| format!("{n} = {}", v.map_or("(none)".into(), |v| v.to_string())))
            .collect();
        assert_eq!(
            shown,
            [
                "steps.evaluate.metrics.rmse = 0.3",
                "params.threshold = 0.35",
                "params.nope = (none)"
            ]
        );
    }

    #[test]
    fn errors_point_into_the_expression() {
        let e = |src: &str| eval(src).unwrap_err();
        assert_eq!(e("params.threshold < ").offset, 19);
        assert_eq!(e("(1 < 2").message, "expected ')'");
        assert_eq!(
            e("1 < 2 < 3").message,
            "comparisons do not chain; use 'and'"
        );
        assert_eq!(
            e("1 < 'a'").message,
            "cannot compare a number with a string"
        );
        assert_eq!(
            e("params.nope == 1").message,
            "parameter 'nope' has no value"
        );
        assert_eq!(e("steps.x.outputs.y == 1").offset, 0);
        assert_eq!(e("1 + 2").offset, 2);
        assert_eq!(
            e("params.threshold").message,
            "condition is a number, not true or false"
        );
    }
}
