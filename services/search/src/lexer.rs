//! Hand-written lexer for the MLflow search language.
//!
//! The lexer does not know whether a bare word is a keyword, an identifier or a
//! number; the parser decides that from the position of the word. Quoted tokens
//! keep the kind of quote they used, because a double-quoted token is an
//! identifier part in identifier position and a string value in value position.

use crate::{SearchError, snippet};

/// The kind and content of one token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A run of identifier characters (letters, digits, `_`, `.`), which also
    /// covers keywords (`AND`, `IN`, `ASC`, ...) and unquoted numbers
    /// (`-1.5e-3`).
    Word(String),
    /// A backtick-quoted identifier part, unescaped.
    Backtick(String),
    /// A double-quoted token, unescaped.
    DoubleQuoted(String),
    /// A single-quoted string literal, unescaped.
    SingleQuoted(String),
    /// A run of comparison characters (`=`, `!`, `<`, `>`), e.g. `>=` or `<>`.
    Symbol(String),
    LParen,
    RParen,
    Comma,
}

/// A token with its byte span in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

fn is_symbol_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>')
}

/// Splits `input` into tokens. `what` names the input in error messages
/// ("filter string", "order_by clause").
pub(crate) fn tokenize(input: &str, what: &str) -> Result<Vec<Token>, SearchError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = match c {
            '(' => {
                chars.next();
                Tok::LParen
            }
            ')' => {
                chars.next();
                Tok::RParen
            }
            ',' => {
                chars.next();
                Tok::Comma
            }
            '\'' | '"' | '`' => {
                chars.next();
                let content = lex_quoted(input, start, c, &mut chars, what)?;
                match c {
                    '\'' => Tok::SingleQuoted(content),
                    '"' => Tok::DoubleQuoted(content),
                    _ => Tok::Backtick(content),
                }
            }
            c if is_symbol_char(c) => {
                let mut symbol = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_symbol_char(c) {
                        break;
                    }
                    symbol.push(c);
                    chars.next();
                }
                Tok::Symbol(symbol)
            }
            c if is_word_char(c) || starts_signed_number(input, start, c) => {
                Tok::Word(lex_word(&mut chars))
            }
            other => {
                return Err(SearchError::new(format!(
                    "Invalid character '{other}' at position {start} in {what} '{}'. \
                     Quote keys containing special characters with backticks or double quotes",
                    snippet(input)
                )));
            }
        };
        let end = chars.peek().map_or(input.len(), |&(i, _)| i);
        tokens.push(Token { tok, start, end });
    }
    Ok(tokens)
}

/// Reports whether a `+` or `-` at `start` begins a number (`-1`, `+.5`).
fn starts_signed_number(input: &str, start: usize, c: char) -> bool {
    if c != '+' && c != '-' {
        return false;
    }
    let rest = &input[start + c.len_utf8()..];
    let mut rest_chars = rest.chars();
    match rest_chars.next() {
        Some(d) if d.is_ascii_digit() => true,
        Some('.') => rest_chars.next().is_some_and(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// Lexes a bare word. A leading sign is accepted (the caller checked that a
/// number follows), and so is a sign right after the exponent marker of a word
/// that looks numeric (`1e-5`).
fn lex_word(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> String {
    let mut word = String::new();
    if let Some(&(_, c)) = chars.peek()
        && (c == '+' || c == '-')
    {
        word.push(c);
        chars.next();
    }
    while let Some(&(_, c)) = chars.peek() {
        let numeric_exponent_sign = (c == '+' || c == '-')
            && word.ends_with(['e', 'E'])
            && word
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_digit() || matches!(first, '.' | '+' | '-'));
        if !is_word_char(c) && !numeric_exponent_sign {
            break;
        }
        word.push(c);
        chars.next();
    }
    word
}

/// Lexes the rest of a quoted token whose opening `quote` was already consumed.
///
/// A doubled quote stands for one quote character. In single- and
/// double-quoted strings a backslash escapes the quote and the backslash
/// itself; any other backslash sequence is kept verbatim (so LIKE escapes such
/// as `\%` survive). Backticks only support doubling.
fn lex_quoted(
    input: &str,
    start: usize,
    quote: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    what: &str,
) -> Result<String, SearchError> {
    let mut content = String::new();
    loop {
        let Some((_, c)) = chars.next() else {
            let kind = if quote == '`' {
                "quoted identifier"
            } else {
                "string literal"
            };
            return Err(SearchError::new(format!(
                "Unterminated {kind} starting at position {start} in {what}: '{}'",
                snippet(&input[start..])
            )));
        };
        if c == quote {
            if chars.peek().is_some_and(|&(_, next)| next == quote) {
                chars.next();
                content.push(quote);
                continue;
            }
            return Ok(content);
        }
        if c == '\\' && quote != '`' {
            match chars.peek() {
                Some(&(_, next)) if next == quote || next == '\\' => {
                    content.push(next);
                    chars.next();
                }
                _ => content.push('\\'),
            }
            continue;
        }
        content.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Tok> {
        tokenize(input, "filter string")
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn word(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn lexes_a_simple_comparison() {
        assert_eq!(
            kinds("metrics.acc >= 0.5"),
            vec![word("metrics.acc"), Tok::Symbol(">=".into()), word("0.5")]
        );
    }

    #[test]
    fn lexes_signed_numbers_and_exponents() {
        assert_eq!(
            kinds("x>-1e-5"),
            vec![word("x"), Tok::Symbol(">".into()), word("-1e-5")]
        );
        assert_eq!(kinds("+.5E+3"), vec![word("+.5E+3")]);
        assert_eq!(kinds("2.5e10"), vec![word("2.5e10")]);
    }

    #[test]
    fn does_not_glue_signs_to_identifiers() {
        assert!(tokenize("tags.a-b", "filter string").is_err());
        assert_eq!(kinds("namee-5"), vec![word("namee"), word("-5")]);
    }

    #[test]
    fn unescapes_quotes() {
        assert_eq!(kinds(r"'it\'s'"), vec![Tok::SingleQuoted("it's".into())]);
        assert_eq!(kinds("'it''s'"), vec![Tok::SingleQuoted("it's".into())]);
        assert_eq!(kinds(r#""a\"b""#), vec![Tok::DoubleQuoted("a\"b".into())]);
        assert_eq!(kinds(r"'a\\b'"), vec![Tok::SingleQuoted(r"a\b".into())]);
        assert_eq!(kinds(r"'50\%'"), vec![Tok::SingleQuoted(r"50\%".into())]);
        assert_eq!(kinds("`a``b`"), vec![Tok::Backtick("a`b".into())]);
        assert_eq!(kinds(r"`a\b`"), vec![Tok::Backtick(r"a\b".into())]);
    }

    #[test]
    fn records_spans() {
        let tokens = tokenize("params.`a b`='x'", "filter string").unwrap();
        let spans: Vec<_> = tokens.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, vec![(0, 7), (7, 12), (12, 13), (13, 16)]);
    }

    #[test]
    fn lexes_lists() {
        assert_eq!(
            kinds("('a', \"b\")"),
            vec![
                Tok::LParen,
                Tok::SingleQuoted("a".into()),
                Tok::Comma,
                Tok::DoubleQuoted("b".into()),
                Tok::RParen
            ]
        );
    }

    #[test]
    fn rejects_unterminated_and_unknown() {
        let err = tokenize("name = 'abc", "filter string").unwrap_err();
        assert!(err.0.contains("Unterminated string literal"), "{err}");
        let err = tokenize("`abc", "filter string").unwrap_err();
        assert!(err.0.contains("Unterminated quoted identifier"), "{err}");
        let err = tokenize("name = 'a'; drop", "filter string").unwrap_err();
        assert!(err.0.contains("Invalid character ';'"), "{err}");
    }

    #[test]
    fn handles_unicode() {
        assert_eq!(
            kinds("tags.über = 'ß'"),
            vec![
                word("tags.über"),
                Tok::Symbol("=".into()),
                Tok::SingleQuoted("ß".into())
            ]
        );
    }
}
