//! Parser and validator for MLflow's search filter language and `order_by`
//! clauses.
//!
//! The filter language is a conjunction of comparisons joined by `AND`, for
//! example `metrics.acc > 0.9 AND tags."mlflow.source.type" = 'LOCAL'`. This
//! crate turns such strings into a validated, normalised AST ([`Comparison`],
//! [`OrderBy`]) for one [`Target`] (runs, experiments, registered models,
//! model versions or logged models). Generating SQL from the AST is left to
//! the stores.
//!
//! Every error is a [`SearchError`] whose message is meant to be returned to
//! the client as a 400 `INVALID_PARAMETER_VALUE`. Parsing never panics and
//! never recurses, and input size is bounded by [`MAX_FILTER_LEN`] and
//! [`MAX_CLAUSES`].

mod lexer;
mod parser;
mod validate;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;

/// Maximum length, in characters, of a filter string or an order_by clause.
pub const MAX_FILTER_LEN: usize = 10_000;

/// Maximum number of `AND`-joined clauses in one filter string.
pub const MAX_CLAUSES: usize = 100;

/// The search endpoint a filter or order_by clause belongs to; each has its
/// own set of entities, attributes and comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `search_runs`.
    Runs,
    /// `search_experiments`.
    Experiments,
    /// `search_registered_models`.
    RegisteredModels,
    /// `search_model_versions`.
    ModelVersions,
    /// `search_logged_models`.
    LoggedModels,
}

/// The kind of value an identifier refers to (the part before the first dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    /// `metric.<key>` / `metrics.<key>`: the latest value of a metric.
    Metric,
    /// `param.<key>` (also `params`, `parameter`, `parameters`).
    Param,
    /// `tag.<key>` / `tags.<key>`.
    Tag,
    /// A built-in field of the searched object (`attribute.<key>`, `attributes`,
    /// `attr`, `run`, or a key with no entity prefix).
    Attribute,
    /// `dataset.<key>` / `datasets.<key>`: a run's dataset inputs (runs only).
    Dataset,
}

impl Entity {
    /// Returns MLflow's canonical singular name (`metric`, `parameter`, `tag`,
    /// `attribute`, `dataset`), as used in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Metric => "metric",
            Entity::Param => "parameter",
            Entity::Tag => "tag",
            Entity::Attribute => "attribute",
            Entity::Dataset => "dataset",
        }
    }

    /// Returns the plural prefix used when rendering identifiers (`metrics`,
    /// `params`, `tags`, `attributes`, `datasets`).
    pub fn prefix(self) -> &'static str {
        match self {
            Entity::Metric => "metrics",
            Entity::Param => "params",
            Entity::Tag => "tags",
            Entity::Attribute => "attributes",
            Entity::Dataset => "datasets",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `LIKE` (case-sensitive SQL pattern with `%` and `_`).
    Like,
    /// `ILIKE` (case-insensitive SQL pattern).
    ILike,
    /// `IN (...)`
    In,
    /// `NOT IN (...)`
    NotIn,
    /// `IS NULL` (the key is absent).
    IsNull,
    /// `IS NOT NULL` (the key is present).
    IsNotNull,
}

impl Op {
    /// Returns the operator as written in a filter string (`>=`, `NOT IN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string, unescaped.
    String(String),
    /// An unquoted finite number (metrics and numeric attributes).
    Number(f64),
    /// The non-empty list of an `IN` / `NOT IN` comparison.
    List(Vec<String>),
    /// No value: the comparison is `IS NULL` or `IS NOT NULL`.
    Null,
}

/// Writes `s` as a single-quoted filter literal, escaping quotes and
/// backslashes so that the lexer reads back exactly `s`.
fn write_string_literal(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            other => write!(f, "{other}")?,
        }
    }
    f.write_str("'")
}

impl fmt::Display for Value {
    /// Renders the value in filter syntax; numbers use the shortest exact
    /// representation (`1e-7`, `0.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write_string_literal(f, s),
            Value::Number(n) => write!(f, "{n:?}"),
            Value::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_string_literal(f, item)?;
                }
                f.write_str(")")
            }
            Value::Null => f.write_str("NULL"),
        }
    }
}

/// Writes `<prefix>.`<key>`` with backticks in the key doubled.
fn write_identifier(f: &mut fmt::Formatter<'_>, entity: Entity, key: &str) -> fmt::Result {
    write!(f, "{}.`{}`", entity.prefix(), key.replace('`', "``"))
}

/// One validated clause of a filter, with aliases normalised (`created` is
/// `start_time`, `run name` is `run_name`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What the key refers to.
    pub entity: Entity,
    /// The metric/param/tag name, or the canonical attribute or dataset field.
    pub key: String,
    /// The comparator.
    pub op: Op,
    /// The value; [`Value::Null`] exactly when `op` is `IS [NOT] NULL`.
    pub value: Value,
}

impl fmt::Display for Comparison {
    /// Renders the comparison as a filter clause that parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_identifier(f, self.entity, &self.key)?;
        match self.op {
            Op::IsNull | Op::IsNotNull => write!(f, " {}", self.op),
            op => write!(f, " {op} {}", self.value),
        }
    }
}

/// One validated order_by clause, with aliases normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderBy {
    /// What the key refers to.
    pub entity: Entity,
    /// The metric/param/tag name or the canonical attribute.
    pub key: String,
    /// `true` for ASC (the default), `false` for DESC.
    pub ascending: bool,
}

impl fmt::Display for OrderBy {
    /// Renders the clause as `<identifier> ASC|DESC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_identifier(f, self.entity, &self.key)?;
        f.write_str(if self.ascending { " ASC" } else { " DESC" })
    }
}

/// A rejected filter or order_by clause. The message is meant for the client
/// and becomes a 400 `INVALID_PARAMETER_VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(pub String);

impl SearchError {
    /// Creates an error with the given client-facing message.
    pub fn new(message: impl Into<String>) -> Self {
        SearchError(message.into())
    }

    /// Returns the client-facing message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Shortens user text quoted in error messages so that a huge input is not
/// echoed back in full.
pub(crate) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

fn check_length(input: &str, what: &str) -> Result<(), SearchError> {
    // A UTF-8 char is at most 4 bytes, so short inputs skip the count.
    if input.len() > MAX_FILTER_LEN && input.chars().count() > MAX_FILTER_LEN {
        return Err(SearchError::new(format!(
            "The {what} is too long: {} characters, the limit is {MAX_FILTER_LEN}",
            input.chars().count()
        )));
    }
    Ok(())
}

/// Parses and validates a search filter for `target`.
///
/// Returns the clauses in their written order; an empty or blank filter gives
/// no clauses.
///
/// # Errors
///
/// Returns a [`SearchError`] naming the offending token when the filter is
/// malformed (e.g. uses `OR`), names an unknown entity or attribute, uses a
/// comparator the key does not support, has a value of the wrong type, is
/// longer than [`MAX_FILTER_LEN`] characters or has more than [`MAX_CLAUSES`]
/// clauses.
pub fn parse_filter(filter: &str, target: Target) -> Result<Vec<Comparison>, SearchError> {
    check_length(filter, "filter string")?;
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let tokens = lexer::tokenize(filter, "filter string")?;
    parser::parse_clauses(filter, &tokens)?
        .into_iter()
        .map(|clause| validate::comparison(clause, target))
        .collect()
}

/// Parses and validates one order_by clause (`<identifier> [ASC|DESC]`) for
/// `target`.
///
/// # Errors
///
/// Returns a [`SearchError`] when the clause is empty or malformed, names an
/// entity or attribute the target cannot order by, has a direction other than
/// ASC/DESC, or is longer than [`MAX_FILTER_LEN`] characters.
pub fn parse_order_by(clause: &str, target: Target) -> Result<OrderBy, SearchError> {
    check_length(clause, "order_by clause")?;
    let tokens = lexer::tokenize(clause, "order_by clause")?;
    let (ident, ascending) = parser::parse_order(clause, &tokens)?;
    validate::order_by(ident, ascending, target)
}

/// Renders clauses as a filter string joined by ` AND ` that
/// [`parse_filter`] reads back to the same clauses.
pub fn render_filter(clauses: &[Comparison]) -> String {
    clauses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" AND ")
}
