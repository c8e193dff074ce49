//! Syntax layer: turns tokens into unvalidated clauses.
//!
//! Parsing is iterative (the grammar is flat: a conjunction of comparisons), so
//! hostile input cannot exhaust the stack. Entity names, keys, comparators and
//! value types are checked afterwards by `validate`.

use crate::lexer::{Tok, Token};
use crate::{MAX_CLAUSES, Op, SearchError, snippet};

/// An identifier as written: an optional entity part and a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawIdent {
    /// The entity part before the first unquoted dot, unquoted; `None` when the
    /// identifier has no dot (an attribute).
    pub(crate) entity: Option<String>,
    pub(crate) key: String,
    /// The identifier's source text, for error messages.
    pub(crate) text: String,
}

/// A value as written, before type checking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue {
    /// A single- or double-quoted string.
    Str(String),
    /// An unquoted word that is a valid number.
    Num(f64),
    /// An unquoted word that is not a number, or a backticked token.
    Unquoted,
    /// A parenthesised list of quoted strings (IN / NOT IN).
    List(Vec<String>),
    /// No value (IS NULL / IS NOT NULL).
    Null,
}

/// One `<identifier> <comparator> <value>` clause before validation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawClause {
    pub(crate) ident: RawIdent,
    pub(crate) op: Op,
    pub(crate) value: RawValue,
    /// The value's source text, for error messages.
    pub(crate) value_text: String,
}

struct Cursor<'a> {
    input: &'a str,
    tokens: &'a [Token],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.pos);
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'a str {
        &self.input[token.start..token.end]
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }
}

fn is_ident_part(tok: &Tok) -> bool {
    matches!(tok, Tok::Word(_) | Tok::Backtick(_) | Tok::DoubleQuoted(_))
}

/// Parses a whole filter string into clauses joined by `AND`.
pub(crate) fn parse_clauses(input: &str, tokens: &[Token]) -> Result<Vec<RawClause>, SearchError> {
    let mut cursor = Cursor {
        input,
        tokens,
        pos: 0,
    };
    let mut clauses = Vec::new();
    loop {
        if clauses.len() >= MAX_CLAUSES {
            return Err(SearchError::new(format!(
                "Filter string has too many clauses: at most {MAX_CLAUSES} clauses joined by AND \
                 are allowed"
            )));
        }
        clauses.push(parse_clause(&mut cursor)?);
        let Some(token) = cursor.next() else {
            return Ok(clauses);
        };
        let is_and = matches!(&token.tok, Tok::Word(w) if w.eq_ignore_ascii_case("and"));
        if !is_and {
            return Err(invalid_clause(cursor.text(token)));
        }
        if cursor.peek().is_none() {
            return Err(SearchError::new(format!(
                "Invalid filter string '{}': expected a clause after the trailing 'AND'",
                snippet(input)
            )));
        }
    }
}

fn invalid_clause(text: &str) -> SearchError {
    SearchError::new(format!(
        "Invalid clause(s) in filter string: '{}'",
        snippet(text)
    ))
}

fn parse_clause(cursor: &mut Cursor<'_>) -> Result<RawClause, SearchError> {
    let Some(first) = cursor.peek() else {
        return Err(SearchError::new(
            "Invalid comparison clause: expected an identifier, found the end of the filter",
        ));
    };
    match &first.tok {
        Tok::LParen => {
            return Err(SearchError::new(
                "Invalid clause(s) in filter string: '('. Parentheses are only supported \
                 around the value list of IN and NOT IN",
            ));
        }
        Tok::Word(w) if w.eq_ignore_ascii_case("or") || w.eq_ignore_ascii_case("and") => {
            return Err(invalid_clause(cursor.text(first)));
        }
        tok if !is_ident_part(tok) => {
            return Err(SearchError::new(format!(
                "Invalid comparison clause: expected an identifier, found '{}'",
                snippet(cursor.text(first))
            )));
        }
        _ => {}
    }
    let ident = parse_ident(cursor)?;
    let op = parse_comparator(cursor, &ident)?;
    let (value, value_text) = match op {
        Op::IsNull | Op::IsNotNull => (RawValue::Null, String::new()),
        Op::In | Op::NotIn => parse_list(cursor, &ident, op)?,
        _ => parse_scalar(cursor, &ident, op)?,
    };
    Ok(RawClause {
        ident,
        op,
        value,
        value_text,
    })
}

/// Collects the adjacent (no whitespace between) identifier parts at the
/// cursor and splits them into entity and key.
fn parse_ident(cursor: &mut Cursor<'_>) -> Result<RawIdent, SearchError> {
    let mut parts: Vec<&Token> = Vec::new();
    while let Some(token) = cursor.peek() {
        let adjacent = parts.last().is_none_or(|prev| prev.end == token.start);
        if !adjacent || !is_ident_part(&token.tok) {
            break;
        }
        parts.push(token);
        cursor.next();
    }
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return Err(SearchError::new(
            "Invalid identifier: expected an identifier",
        ));
    };
    let text = cursor.input[first.start..last.end].to_string();
    let invalid = || {
        SearchError::new(format!(
            "Invalid identifier '{}'. Identifiers are written as '<entity>.<key>' or '<key>', \
             with keys containing special characters quoted in backticks or double quotes",
            snippet(&text)
        ))
    };
    let (entity, key) = match parts.as_slice() {
        [only] => match &only.tok {
            Tok::Word(w) => match w.split_once('.') {
                Some((entity, key)) => (Some(entity.to_string()), key.to_string()),
                None => (None, w.clone()),
            },
            Tok::Backtick(q) | Tok::DoubleQuoted(q) => (None, q.clone()),
            _ => return Err(invalid()),
        },
        [entity_part, key_part] => {
            let key = match &key_part.tok {
                Tok::Backtick(q) | Tok::DoubleQuoted(q) => q.clone(),
                Tok::Word(w) => match w.strip_prefix('.') {
                    Some(rest) => rest.to_string(),
                    None => return Err(invalid()),
                },
                _ => return Err(invalid()),
            };
            let entity = match (&entity_part.tok, &key_part.tok) {
                // `params.`a b``
                (Tok::Word(w), Tok::Backtick(_) | Tok::DoubleQuoted(_)) => {
                    match w.strip_suffix('.') {
                        Some(entity) if !entity.contains('.') => entity.to_string(),
                        _ => return Err(invalid()),
                    }
                }
                // `` `params`.key ``
                (Tok::Backtick(q) | Tok::DoubleQuoted(q), Tok::Word(_)) => q.clone(),
                _ => return Err(invalid()),
            };
            (Some(entity), key)
        }
        // `` `params`.`a b` ``
        [entity_part, dot, key_part] => match (&entity_part.tok, &dot.tok, &key_part.tok) {
            (
                Tok::Backtick(entity) | Tok::DoubleQuoted(entity),
                Tok::Word(d),
                Tok::Backtick(key) | Tok::DoubleQuoted(key),
            ) if d == "." => (Some(entity.clone()), key.clone()),
            _ => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    if key.is_empty() || entity.as_deref().is_some_and(str::is_empty) {
        return Err(invalid());
    }
    Ok(RawIdent { entity, key, text })
}

fn parse_comparator(cursor: &mut Cursor<'_>, ident: &RawIdent) -> Result<Op, SearchError> {
    let Some(token) = cursor.next() else {
        return Err(SearchError::new(format!(
            "Invalid comparison clause: expected a comparator after '{}', found the end of the \
             filter",
            snippet(&ident.text)
        )));
    };
    let unexpected = || {
        SearchError::new(format!(
            "Invalid comparison clause: expected a comparator after '{}', found '{}'",
            snippet(&ident.text),
            snippet(cursor.text(token))
        ))
    };
    match &token.tok {
        Tok::Symbol(s) => match s.as_str() {
            "=" => Ok(Op::Eq),
            "!=" => Ok(Op::Ne),
            ">" => Ok(Op::Gt),
            ">=" => Ok(Op::Ge),
            "<" => Ok(Op::Lt),
            "<=" => Ok(Op::Le),
            other => Err(SearchError::new(format!(
                "Invalid comparator '{}'. Valid comparators are =, !=, >, >=, <, <=, LIKE, ILIKE, \
                 IN, NOT IN, IS NULL and IS NOT NULL",
                snippet(other)
            ))),
        },
        Tok::Word(w) if w.eq_ignore_ascii_case("like") => Ok(Op::Like),
        Tok::Word(w) if w.eq_ignore_ascii_case("ilike") => Ok(Op::ILike),
        Tok::Word(w) if w.eq_ignore_ascii_case("in") => Ok(Op::In),
        Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
            if cursor.peek_keyword("in") {
                cursor.next();
                Ok(Op::NotIn)
            } else {
                Err(SearchError::new(format!(
                    "Invalid comparator after '{}': 'NOT' must be followed by 'IN'",
                    snippet(&ident.text)
                )))
            }
        }
        Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
            let negated = cursor.peek_keyword("not");
            if negated {
                cursor.next();
            }
            if cursor.peek_keyword("null") {
                cursor.next();
                Ok(if negated { Op::IsNotNull } else { Op::IsNull })
            } else {
                Err(SearchError::new(format!(
                    "Invalid comparator after '{}': expected 'IS NULL' or 'IS NOT NULL'",
                    snippet(&ident.text)
                )))
            }
        }
        _ => Err(unexpected()),
    }
}

fn parse_scalar(
    cursor: &mut Cursor<'_>,
    ident: &RawIdent,
    op: Op,
) -> Result<(RawValue, String), SearchError> {
    let Some(token) = cursor.next() else {
        return Err(SearchError::new(format!(
            "Invalid comparison clause '{} {op}': expected a value, found the end of the filter",
            snippet(&ident.text)
        )));
    };
    let text = cursor.text(token).to_string();
    let value = match &token.tok {
        Tok::SingleQuoted(s) | Tok::DoubleQuoted(s) => RawValue::Str(s.clone()),
        Tok::Word(w) => parse_number(w).map_or(RawValue::Unquoted, RawValue::Num),
        Tok::Backtick(_) => RawValue::Unquoted,
        Tok::LParen => {
            return Err(SearchError::new(format!(
                "Invalid comparison clause '{} {op} (...)': a parenthesised list of values is \
                 only supported with IN and NOT IN",
                snippet(&ident.text)
            )));
        }
        _ => {
            return Err(SearchError::new(format!(
                "Invalid comparison clause '{} {op}': expected a value, found '{}'",
                snippet(&ident.text),
                snippet(&text)
            )));
        }
    };
    Ok((value, text))
}

fn parse_list(
    cursor: &mut Cursor<'_>,
    ident: &RawIdent,
    op: Op,
) -> Result<(RawValue, String), SearchError> {
    let open = match cursor.next() {
        Some(
            token @ Token {
                tok: Tok::LParen, ..
            },
        ) => token,
        other => {
            let found = other.map_or("the end of the filter".to_string(), |t| {
                format!("'{}'", snippet(cursor.text(t)))
            });
            return Err(SearchError::new(format!(
                "Invalid comparison clause '{} {op}': expected a parenthesised list of quoted \
                 strings such as ('a', 'b'), found {found}",
                snippet(&ident.text)
            )));
        }
    };
    let ill_formed = |detail: String| {
        SearchError::new(format!(
            "While parsing a list in the query, expected a non-empty list of string values, but \
             got ill-formed list: {detail}"
        ))
    };
    let mut values = Vec::new();
    loop {
        let Some(token) = cursor.next() else {
            return Err(ill_formed("missing closing ')'".to_string()));
        };
        match &token.tok {
            Tok::RParen if values.is_empty() => {
                return Err(SearchError::new(
                    "While parsing a list in the query, expected a non-empty list of string \
                     values, but got empty list",
                ));
            }
            Tok::SingleQuoted(s) | Tok::DoubleQuoted(s) => values.push(s.clone()),
            _ => {
                return Err(ill_formed(format!(
                    "expected a quoted string, found '{}'",
                    snippet(cursor.text(token))
                )));
            }
        }
        match cursor.next() {
            Some(Token {
                tok: Tok::Comma, ..
            }) => continue,
            Some(
                close @ Token {
                    tok: Tok::RParen, ..
                },
            ) => {
                let text = cursor.input[open.start..close.end].to_string();
                return Ok((RawValue::List(values), text));
            }
            Some(token) => {
                return Err(ill_formed(format!(
                    "expected ',' or ')', found '{}'",
                    snippet(cursor.text(token))
                )));
            }
            None => return Err(ill_formed("missing closing ')'".to_string())),
        }
    }
}

/// Parses an unquoted numeric literal: `[+-]? (digits [. digits?] | . digits)
/// ([eE] [+-]? digits)?`. Returns `None` for anything else, including values
/// that overflow to infinity.
pub(crate) fn parse_number(word: &str) -> Option<f64> {
    let bytes = word.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    word.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses one order_by clause: `<identifier> [ASC|DESC]`. Returns the
/// identifier and whether the order is ascending.
pub(crate) fn parse_order(input: &str, tokens: &[Token]) -> Result<(RawIdent, bool), SearchError> {
    let mut cursor = Cursor {
        input,
        tokens,
        pos: 0,
    };
    let unparsable = |detail: String| {
        SearchError::new(format!(
            "Invalid order_by clause '{}'. Could not be parsed: {detail}",
            snippet(input)
        ))
    };
    match cursor.peek() {
        None => return Err(unparsable("expected an identifier".to_string())),
        Some(token) if !is_ident_part(&token.tok) => {
            return Err(unparsable(format!(
                "expected an identifier, found '{}'",
                snippet(cursor.text(token))
            )));
        }
        Some(_) => {}
    }
    let ident = parse_ident(&mut cursor)?;
    let ascending = match cursor.next() {
        None => true,
        Some(Token {
            tok: Tok::Word(w), ..
        }) if w.eq_ignore_ascii_case("asc") => true,
        Some(Token {
            tok: Tok::Word(w), ..
        }) if w.eq_ignore_ascii_case("desc") => false,
        Some(token) => {
            return Err(SearchError::new(format!(
                "Invalid ordering key in order_by clause '{}': expected ASC or DESC, found '{}'",
                snippet(input),
                snippet(cursor.text(token))
            )));
        }
    };
    if let Some(token) = cursor.next() {
        return Err(unparsable(format!(
            "unexpected '{}' after the sort direction",
            snippet(cursor.text(token))
        )));
    }
    Ok((ident, ascending))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn clauses(input: &str) -> Result<Vec<RawClause>, SearchError> {
        parse_clauses(input, &tokenize(input, "filter string")?)
    }

    fn ident(input: &str) -> (Option<String>, String) {
        let clause = clauses(&format!("{input} = 'x'")).unwrap().remove(0);
        (clause.ident.entity, clause.ident.key)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn splits_identifiers_on_the_first_dot_only() {
        assert_eq!(
            ident("tags.mlflow.parentRunId"),
            (some("tags"), "mlflow.parentRunId".into())
        );
        assert_eq!(ident("run_id"), (None, "run_id".into()));
        assert_eq!(ident("params.`a b`"), (some("params"), "a b".into()));
        assert_eq!(
            ident("tags.\"mlflow.source.type\""),
            (some("tags"), "mlflow.source.type".into())
        );
        assert_eq!(ident("`params`.`a.b`"), (some("params"), "a.b".into()));
        assert_eq!(ident("`metrics`.acc"), (some("metrics"), "acc".into()));
        assert_eq!(ident("\"tags\".x.y"), (some("tags"), "x.y".into()));
        assert_eq!(ident("`run name`"), (None, "run name".into()));
    }

    #[test]
    fn rejects_malformed_identifiers() {
        for bad in [
            "metrics.",
            ".acc",
            "tags.a.`b`",
            "`a``b`c",
            "`` ",
            "params.``",
            "a`b`",
        ] {
            let result = clauses(&format!("{bad} = 'x'"));
            assert!(result.is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn parses_numbers_strictly() {
        for (text, expected) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("-2.5E-2", -0.025),
        ] {
            assert_eq!(parse_number(text), Some(expected), "{text}");
        }
        for text in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "inf", "NaN", "1e999", "1_000",
        ] {
            assert_eq!(parse_number(text), None, "{text}");
        }
    }

    #[test]
    fn parses_comparators_case_insensitively() {
        let ops: Vec<Op> = clauses(
            "a = 1 and b != 1 AND c > 1 And d >= 1 and e < 1 and f <= 1 and g like 'x' and \
             h ILIKE 'x' and i in ('x') and j not IN ('x') and k is null and l IS NOT NULL",
        )
        .unwrap()
        .into_iter()
        .map(|c| c.op)
        .collect();
        use Op::*;
        assert_eq!(
            ops,
            vec![
                Eq, Ne, Gt, Ge, Lt, Le, Like, ILike, In, NotIn, IsNull, IsNotNull
            ]
        );
    }

    #[test]
    fn reports_or_and_stray_tokens() {
        let err = clauses("metrics.acc > 1 OR metrics.acc < 0").unwrap_err();
        assert_eq!(err.0, "Invalid clause(s) in filter string: 'OR'");
        let err = clauses("a = 'x' b = 'y'").unwrap_err();
        assert_eq!(err.0, "Invalid clause(s) in filter string: 'b'");
        assert!(clauses("OR a = 'x'").unwrap_err().0.contains("'OR'"));
        assert!(
            clauses("a = 'x' AND")
                .unwrap_err()
                .0
                .contains("trailing 'AND'")
        );
        assert!(clauses("(a = 'x')").unwrap_err().0.contains("Parentheses"));
    }

    #[test]
    fn parses_lists() {
        let clause = clauses("run_id IN ('a', \"b\",'c')").unwrap().remove(0);
        assert_eq!(
            clause.value,
            RawValue::List(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(clause.value_text, "('a', \"b\",'c')");
        assert!(
            clauses("run_id IN ()")
                .unwrap_err()
                .0
                .contains("empty list")
        );
        for bad in [
            "run_id IN ('a',)",
            "run_id IN ('a' 'b')",
            "run_id IN ('a'",
            "run_id IN (1)",
            "run_id IN 'a'",
            "run_id IN",
        ] {
            assert!(clauses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_missing_or_bad_comparators_and_values() {
        for bad in [
            "a",
            "a 'x'",
            "a <> 'x'",
            "a == 'x'",
            "a NOT LIKE 'x'",
            "a IS 'x'",
            "a IS NOT 'x'",
            "a =",
            "a = ('x')",
            "a = ,",
            "'a' = 'x'",
            "= 'x'",
        ] {
            assert!(clauses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_order_clauses() {
        let order = |s: &str| parse_order(s, &tokenize(s, "order_by clause")?);
        let (ident, asc) = order("metrics.acc DESC").unwrap();
        assert_eq!(
            (ident.entity.as_deref(), ident.key.as_str(), asc),
            (Some("metrics"), "acc", false)
        );
        assert!(order("name").unwrap().1);
        assert!(order("name asc").unwrap().1);
        assert!(!order("name dEsC").unwrap().1);
        assert!(
            order("name up")
                .unwrap_err()
                .0
                .contains("Invalid ordering key")
        );
        assert!(
            order("name ASC x")
                .unwrap_err()
                .0
                .contains("Could not be parsed")
        );
        assert!(order("").is_err());
        assert!(order("= name").is_err());
    }
}
