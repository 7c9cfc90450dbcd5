//! How `${…}` references meet the shell in a `run:` command written as a
//! string.
//!
//! A value is inserted as one single-quoted word part ([`quote`]), so it never
//! splits, globs or expands: `${params.code}/prepare.py` with `code` = `a b`
//! runs `'a b'/prepare.py`. That only holds where the reference stands
//! unquoted in the command, so [`misplaced_references`] finds the places where
//! quoting cannot work: inside `'…'` or `"…"`, after a backslash, inside
//! `$(( ))`, a shell `${…}` or a here-document. [`words`] splits a command
//! into its words the way `sh` would, for the cache key's file names.

use std::collections::BTreeMap;

use crate::refs;

/// `value` as one POSIX shell word: single-quoted, each `'` written `'\''`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Where a part of the command stands, as `sh` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// Unquoted command text.
    Top,
    /// `'…'`.
    Single,
    /// `"…"`.
    Double,
    /// `$( … )`: a fresh command, unquoted inside.
    Subst,
    /// `( … )`: a subshell or a parenthesis inside arithmetic.
    Paren,
    /// `` `…` ``: a fresh command.
    Backtick,
    /// `$(( … ))`.
    Arith,
    /// A shell parameter expansion `${…}` (written `$${…}` in a pipeline).
    Brace,
}

impl Ctx {
    /// Whether a single-quoted word inserted here is exactly one word.
    fn takes_a_reference(self) -> bool {
        matches!(self, Ctx::Top | Ctx::Subst | Ctx::Paren | Ctx::Backtick)
    }
}

/// A reference where automatic quoting cannot make it one word, at `offset`
/// characters into the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misplaced {
    /// Characters from the start of the command to the reference's `$`.
    pub offset: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Every reference of a `run:` command string that stands where it cannot be
/// inserted as one quoted word.
pub fn misplaced_references(command: &str) -> Vec<Misplaced> {
    let chars: Vec<char> = command.chars().collect();
    // Reference start → the offset just past its `}`.
    let refs: BTreeMap<usize, (usize, String)> = refs::scan(command)
        .into_iter()
        .flatten()
        .map(|f| {
            let end = chars[f.offset..]
                .iter()
                .position(|&c| c == '}')
                .map_or(chars.len(), |i| f.offset + i + 1);
            (f.offset, (end, f.reference.to_string()))
        })
        .collect();
    let mut out = Vec::new();
    let mut report = |offset: usize, r: &str, why: &str| {
        out.push(Misplaced {
            offset,
            message: format!("'{r}' {why}"),
        });
    };
    const QUOTED: &str = "is inside quotes in a run: command; references are quoted automatically now (each one becomes exactly one word, never split, globbed or expanded): remove the quotes around it";
    let mut stack = vec![Ctx::Top];
    // Here-documents whose bodies start at the next newline: (delimiter, strip tabs).
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ctx = *stack.last().expect("the stack keeps its bottom");
        if let Some((end, r)) = refs.get(&i) {
            match ctx {
                c if c.takes_a_reference() => {}
                Ctx::Single | Ctx::Double => report(i, r, QUOTED),
                Ctx::Arith => report(
                    i,
                    r,
                    "is inside $(( )), where a quoted word is not a number: read the value from the environment instead (e.g. $SEXTANT_PARAM_<NAME>)",
                ),
                _ => report(
                    i,
                    r,
                    "is inside a shell ${…} expansion, where it cannot be inserted as one quoted word: pass it as its own word or through env:",
                ),
            }
            i = *end;
            continue;
        }
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let starts = |s: &str| {
            s.chars()
                .enumerate()
                .all(|(k, x)| chars.get(i + k) == Some(&x))
        };
        match ctx {
            Ctx::Single => {
                if c == '\'' {
                    stack.pop();
                }
                i += 1;
            }
            Ctx::Double => {
                if c == '\\' {
                    if let Some((_, r)) = refs.get(&(i + 1)) {
                        report(i + 1, r, QUOTED);
                    }
                    i += if matches!(next, Some('$' | '`' | '"' | '\\' | '\n')) {
                        2
                    } else {
                        1
                    };
                    continue;
                }
                i += open(&mut stack, &starts, c);
                if c == '"' {
                    stack.pop();
                }
            }
            _ => {
                if c == '\\' {
                    if let Some((_, r)) = refs.get(&(i + 1)) {
                        report(
                            i + 1,
                            r,
                            "follows a backslash, which would escape its opening quote: remove the backslash (references are quoted automatically now)",
                        );
                    }
                    i += 2;
                    continue;
                }
                if c == '#' && (i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == ';') {
                    // A comment: nothing in it runs, but a value with a line
                    // break would end it and run the rest.
                    while i < chars.len() && chars[i] != '\n' {
                        if let Some((end, r)) = refs.get(&i) {
                            report(
                                i,
                                r,
                                "is inside a comment, which a value holding a line break would end: remove it from the comment",
                            );
                            i = *end;
                        } else {
                            i += 1;
                        }
                    }
                    continue;
                }
                if ctx != Ctx::Arith && starts("<<") && !starts("<<<") {
                    let (delimiter, strip, len) = heredoc_delimiter(&chars[i + 2..]);
                    if !delimiter.is_empty() {
                        heredocs.push((delimiter, strip));
                    }
                    i += 2 + len;
                    continue;
                }
                if c == '\n' && !heredocs.is_empty() {
                    i += 1;
                    for (delimiter, strip) in std::mem::take(&mut heredocs) {
                        // The body: whole lines up to the delimiter's.
                        loop {
                            let end = chars[i..]
                                .iter()
                                .position(|&c| c == '\n')
                                .map_or(chars.len(), |k| i + k);
                            let line: String = chars[i..end].iter().collect();
                            let line = if strip {
                                line.trim_start_matches('\t')
                            } else {
                                &line
                            };
                            let done = line == delimiter || end == chars.len();
                            if line != delimiter {
                                for (&at, (_, r)) in refs.range(i..end) {
                                    report(
                                        at,
                                        r,
                                        "is inside a here-document, where quotes are not removed: pass it as an argument or through env:",
                                    );
                                }
                            }
                            i = (end + 1).min(chars.len());
                            if done {
                                break;
                            }
                        }
                    }
                    continue;
                }
                match c {
                    '\'' => {
                        stack.push(Ctx::Single);
                        i += 1;
                    }
                    '"' => {
                        stack.push(Ctx::Double);
                        i += 1;
                    }
                    '(' => {
                        stack.push(Ctx::Paren);
                        i += 1;
                    }
                    ')' if ctx == Ctx::Arith && next == Some(')') => {
                        stack.pop();
                        i += 2;
                    }
                    ')' if matches!(ctx, Ctx::Subst | Ctx::Paren) => {
                        stack.pop();
                        i += 1;
                    }
                    '}' if ctx == Ctx::Brace => {
                        stack.pop();
                        i += 1;
                    }
                    '`' if ctx == Ctx::Backtick => {
                        stack.pop();
                        i += 1;
                    }
                    _ => i += open(&mut stack, &starts, c),
                }
            }
        }
    }
    out
}

/// Opens `$((`, `$(`, `$${` or `` ` `` at the current character, pushing its
/// context; returns how many characters to move on.
fn open(stack: &mut Vec<Ctx>, starts: &dyn Fn(&str) -> bool, c: char) -> usize {
    if starts("$((") {
        stack.push(Ctx::Arith);
        3
    } else if starts("$(") {
        stack.push(Ctx::Subst);
        2
    } else if starts("$${") {
        // `$${` is a literal `${` in a pipeline string: a shell expansion.
        stack.push(Ctx::Brace);
        3
    } else if starts("$$") {
        2
    } else if c == '`' {
        stack.push(Ctx::Backtick);
        1
    } else {
        1
    }
}

/// The delimiter of a here-document after `<<`: quotes removed, whether `<<-`
/// strips leading tabs, and the characters read.
fn heredoc_delimiter(rest: &[char]) -> (String, bool, usize) {
    let mut i = 0;
    let strip = rest.first() == Some(&'-');
    if strip {
        i += 1;
    }
    while rest.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
        i += 1;
    }
    let mut word = String::new();
    let mut quote: Option<char> = None;
    while let Some(&c) = rest.get(i) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '\\' => {}
            None if c.is_whitespace() || ";&|<>()".contains(c) => break,
            None => word.push(c),
        }
        i += 1;
    }
    (word, strip, i)
}

/// The words of a command as `sh` splits them, quotes removed; operators
/// such as `>` or `;` stay inside the words they touch.
pub fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('$' | '`' | '"' | '\\')) => {
                            word.extend(chars.next());
                        }
                        '\\' if chars.peek() == Some(&'\n') => {
                            chars.next();
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(e) => word.push(e),
                }
            }
            c if c.is_whitespace() => {
                if std::mem::take(&mut in_word) {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(command: &str) -> Vec<usize> {
        misplaced_references(command)
            .into_iter()
            .map(|m| m.offset)
            .collect()
    }

    #[test]
    fn quoting_round_trips_through_words() {
        for v in ["", "a b", "it's", "'", "$(id) `id` *", "a\nb", "\\"] {
            assert_eq!(words(&quote(v)), vec![v.to_string()], "{v:?}");
        }
        assert_eq!(
            words(&format!("python {}/prepare.py x", quote("a b"))),
            ["python", "a b/prepare.py", "x"]
        );
    }

    #[test]
    fn unquoted_references_are_fine() {
        for ok in [
            "python ${params.code}/prepare.py ${params.data}",
            "echo $(basename ${params.x}) `cat ${params.x}` \"$(cat ${params.x})\"",
            "(cd ${params.dir} && ls) > ${outputs.o}/x",
            "FOO=${params.x} env",
            "echo '$${HOME}' \"$${HOME}\" # $${HOME}",
            "echo \"$$\" ${params.x}",
        ] {
            assert_eq!(misplaced_references(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn quoted_references_are_found_where_they_are() {
        let m = misplaced_references("echo \"${params.x}\"");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].offset, 6);
        assert!(
            m[0].message.starts_with("'${params.x}' is inside quotes"),
            "{}",
            m[0].message
        );
        assert!(m[0].message.contains("quoted automatically"));
        assert_eq!(offsets("echo 'a ${params.x} b' ${params.y}"), [8]);
        assert_eq!(offsets("echo \"a $(echo \"${params.x}\") b\""), [16]);
        assert_eq!(offsets("echo \\${params.x}"), [6]);
        assert_eq!(offsets("echo # ${params.x}"), [7]);
        assert_eq!(offsets("echo $((${params.n} * 2))"), [8]);
        assert_eq!(offsets("echo $${A:-${params.n}}"), [11]);
        assert_eq!(
            offsets("cat <<EOF > f\n${params.x}\nEOF\necho ${params.y}"),
            [14]
        );
        assert_eq!(offsets("cat <<-'E'\n\t${params.x}\n\tE\n${params.y}"), [12]);
    }
}
