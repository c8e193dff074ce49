//! SQL shared by the stores: a tiny builder that numbers `$N` placeholders
//! and binds every value (nothing is spliced into the text), the translation
//! of search comparisons into conditions, and the mapping of driver errors.

use quiver_search::{Op, Value};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AssertSqlSafe, Executor};

use crate::ApiError;
use crate::db::{Database, Dialect};

/// Maps a driver error: pool and I/O trouble is retryable (503), anything
/// else is an internal error.
pub fn db_error(error: sqlx::Error) -> ApiError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ApiError::unavailable(error)
        }
        other => ApiError::internal(other),
    }
}

/// Whether the error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    I64(i64),
    F64(f64),
    Str(String),
    OptStr(Option<String>),
    Bytes(Vec<u8>),
}

/// SQL text plus its arguments, numbered as they are bound.
#[derive(Debug, Default)]
pub struct SqlBuilder {
    text: String,
    args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new() -> SqlBuilder {
        SqlBuilder::default()
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Puts the statement so far inside `before` ... `after` (e.g. as a
    /// subquery); placeholders keep their numbers.
    pub fn wrap(&mut self, before: &str, after: &str) {
        self.text.insert_str(0, before);
        self.text.push_str(after);
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Binds several values and returns `$a, $b, ...`.
    pub fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> String {
        let placeholders: Vec<String> = args.into_iter().map(|arg| self.bind(arg)).collect();
        placeholders.join(", ")
    }

    /// Fetches rows as `O` on the typed Postgres pool for lookups by key
    /// (generic plans) when there is one, else on the `Any` reader; see
    /// [`crate::fetch_typed!`].
    pub async fn fetch_as<O>(self, db: &Database) -> Result<Vec<O>, ApiError>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, AnyRow>
            + Send
            + Unpin,
    {
        self.fetch_on(db, db.pg.as_ref()).await
    }

    /// Fetches a search's rows as `O`: on the typed Postgres pool whose
    /// statements are planned for the values bound, else on the `Any` reader.
    pub async fn search_as<O>(self, db: &Database) -> Result<Vec<O>, ApiError>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, AnyRow>
            + Send
            + Unpin,
    {
        self.fetch_on(db, db.pg_search.as_ref()).await
    }

    async fn fetch_on<O>(self, db: &Database, pg: Option<&sqlx::PgPool>) -> Result<Vec<O>, ApiError>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, AnyRow>
            + Send
            + Unpin,
    {
        match pg {
            Some(pg) => bind_all(sqlx::query_as(AssertSqlSafe(self.text)), self.args)
                .fetch_all(pg)
                .await
                .map_err(db_error),
            None => bind_all(sqlx::query_as(AssertSqlSafe(self.text)), self.args)
                .fetch_all(&db.reader)
                .await
                .map_err(db_error),
        }
    }

    fn query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text));
        for arg in self.args {
            query = match arg {
                Arg::I64(value) => query.bind(value),
                Arg::F64(value) => query.bind(value),
                Arg::Str(value) => query.bind(value),
                Arg::OptStr(value) => query.bind(value),
                Arg::Bytes(value) => query.bind(value),
            };
        }
        query
    }

    pub async fn fetch_all<'e, E>(self, executor: E) -> Result<Vec<AnyRow>, ApiError>
    where
        E: Executor<'e, Database = Any>,
    {
        self.query().fetch_all(executor).await.map_err(db_error)
    }

    pub async fn fetch_optional<'e, E>(self, executor: E) -> Result<Option<AnyRow>, ApiError>
    where
        E: Executor<'e, Database = Any>,
    {
        self.query()
            .fetch_optional(executor)
            .await
            .map_err(db_error)
    }

    pub async fn execute<'e, E>(self, executor: E) -> Result<u64, ApiError>
    where
        E: Executor<'e, Database = Any>,
    {
        self.query()
            .execute(executor)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error)
    }
}

/// Binds `args` in order, for any driver (the typed Postgres pool or `Any`).
fn bind_all<'q, DB: sqlx::Database, O>(
    mut query: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments>,
    args: Vec<Arg>,
) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::I64(value) => query.bind(value),
            Arg::F64(value) => query.bind(value),
            Arg::Str(value) => query.bind(value),
            Arg::OptStr(value) => query.bind(value),
            Arg::Bytes(value) => query.bind(value),
        };
    }
    query
}

/// `{column} IN <the key set bound at placeholder p>`: a set of keys bound as
/// ONE value, a Postgres array (`= ANY(CAST($n AS BIGINT[]))`) or, on SQLite,
/// a JSON array walked by `json_each`. One statement text for any number of
/// keys, so it is prepared once and never hits a bind-parameter limit (an
/// `IN ($1..$900)` list is a new statement per size and costs milliseconds of
/// planning on Postgres).
pub fn key_set_condition(dialect: Dialect, column: &str, p: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("{column} = ANY(CAST({p} AS BIGINT[]))"),
        Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({p}))"),
    }
}

/// The one bound value of a key set: `{1,2,3}` (Postgres array literal) or
/// `[1,2,3]` (JSON, SQLite).
pub fn key_set_value(dialect: Dialect, keys: &[i64]) -> String {
    let joined = keys
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    match dialect {
        Dialect::Postgres => format!("{{{joined}}}"),
        Dialect::Sqlite => format!("[{joined}]"),
    }
}

/// The SQL spelling of a comparator (ILIKE is LIKE over lowered sides).
pub fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Like => "LIKE",
        Op::ILike => "LIKE",
        Op::In => "IN",
        Op::NotIn => "NOT IN",
        Op::IsNull => "IS NULL",
        Op::IsNotNull => "IS NOT NULL",
    }
}

/// `column <op> value` for a string comparison (LIKE is case-sensitive on
/// both backends; ILIKE lowers both sides).
pub fn string_condition(
    sql: &mut SqlBuilder,
    column: &str,
    op: Op,
    value: &Value,
) -> Result<String, ApiError> {
    match (op, value) {
        (Op::In | Op::NotIn, Value::List(items)) => {
            let list = sql.bind_list(items.iter().map(|item| Arg::Str(item.clone())));
            Ok(format!("{column} {} ({list})", sql_op(op)))
        }
        (Op::ILike, Value::String(text)) => {
            let p = sql.bind(Arg::Str(text.clone()));
            Ok(format!("LOWER({column}) LIKE LOWER({p})"))
        }
        (_, Value::String(text)) => {
            let p = sql.bind(Arg::Str(text.clone()));
            Ok(format!("{column} {} {p}", sql_op(op)))
        }
        (_, Value::Number(number)) => {
            let p = sql.bind(Arg::Str(format_number(*number)));
            Ok(format!("{column} {} {p}", sql_op(op)))
        }
        _ => Err(ApiError::invalid(format!(
            "Invalid comparison for {column}"
        ))),
    }
}

fn number_arg(number: f64) -> Arg {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        Arg::I64(number as i64)
    } else {
        Arg::F64(number)
    }
}

fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

pub fn numeric_condition(
    sql: &mut SqlBuilder,
    column: &str,
    op: Op,
    value: &Value,
) -> Result<String, ApiError> {
    match value {
        Value::Number(number) => {
            let p = sql.bind(number_arg(*number));
            Ok(format!("{column} {} {p}", sql_op(op)))
        }
        _ => Err(ApiError::invalid(format!(
            "Expected a numeric value for {column}"
        ))),
    }
}

pub fn direction(ascending: bool) -> &'static str {
    if ascending { "ASC" } else { "DESC" }
}
