//! Building SQL text and its bound arguments together, binding [`Value`]s with
//! their natural PostgreSQL types, and decoding rows back into [`Value`]s.
//!
//! Architecture invariant: no caller-provided value ever becomes part of the
//! SQL text. Table and column names come only from [`crm_core::schema`], the
//! schema name is validated at open time; everything else is a `$n`
//! parameter, except that a boolean compared for (in)equality is written as
//! one of the fixed literals `TRUE`/`FALSE` (so that a partial index such as
//! `customer_keys_duplicate_rows_idx … WHERE duplicate` can serve it).

use crate::{BACKEND, Failure};
use chrono::{DateTime, NaiveDate, Utc};
use crm_core::schema::{ColType, ColumnDef, Table};
use crm_core::store::{CustomType, Row, StoreError};
use crm_core::value::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Encode, Postgres, Row as _, Type};
use std::fmt::Write as _;
use uuid::Uuid;

/// The PostgreSQL type a parameter or expression has; decides how a NULL is
/// typed and how integers are widened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Uuid,
    Text,
    Int,
    Float,
    Bool,
    Date,
    Timestamp,
    Json,
}

impl Ty {
    pub(crate) fn of_col(ty: ColType) -> Ty {
        match ty {
            ColType::Id => Ty::Uuid,
            ColType::Text => Ty::Text,
            ColType::Int => Ty::Int,
            ColType::Bool => Ty::Bool,
            ColType::Date => Ty::Date,
            ColType::Timestamp => Ty::Timestamp,
            ColType::Json => Ty::Json,
        }
    }

    pub(crate) fn of_custom(ty: CustomType) -> Ty {
        match ty {
            CustomType::Text => Ty::Text,
            CustomType::Number => Ty::Float,
            CustomType::Bool => Ty::Bool,
        }
    }
}

/// A request the store cannot translate (unknown column, malformed keyset …).
/// Reported as [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidRequest(pub(crate) String);

/// A column whose stored value does not decode to its schema type.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {table}.{column} as {ty:?}")]
pub(crate) struct DecodeError {
    table: Table,
    column: &'static str,
    ty: ColType,
    #[source]
    source: sqlx::Error,
}

/// An instant floored to the microsecond, as SQLite's store keeps it:
/// sqlx would truncate toward 2000-01-01, rounding instants before it up. A
/// leap second is the last microsecond of its minute on both stores.
pub(crate) fn floor_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let t = crm_core::clock::without_leap_second(t);
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// An invalid request as a store error.
pub(crate) fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        source: Box::new(InvalidRequest(msg.into())),
    }
}

/// SQL text with its arguments, numbered as they are bound.
pub(crate) struct Sql {
    pub(crate) text: String,
    args: PgArguments,
    count: usize,
    aliases: usize,
    error: Option<String>,
}

impl Sql {
    pub(crate) fn new() -> Self {
        Sql {
            text: String::new(),
            args: PgArguments::default(),
            count: 0,
            aliases: 0,
            error: None,
        }
    }

    /// Appends SQL text (never a value).
    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// A fresh table alias for a subquery (`r1`, `r2` …).
    pub(crate) fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("r{}", self.aliases)
    }

    /// Binds a value and returns its placeholder (`$n`) without appending it.
    pub(crate) fn param<T>(&mut self, value: T) -> String
    where
        T: for<'q> Encode<'q, Postgres> + Type<Postgres>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        self.count += 1;
        format!("${}", self.count)
    }

    /// Binds a value and appends its placeholder.
    pub(crate) fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> Encode<'q, Postgres> + Type<Postgres>,
    {
        let p = self.param(value);
        self.text.push_str(&p);
        self
    }

    /// Binds a NULL of type `ty`.
    fn null_param(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Uuid => self.param(None::<Uuid>),
            Ty::Text => self.param(None::<String>),
            Ty::Int => self.param(None::<i64>),
            Ty::Float => self.param(None::<f64>),
            Ty::Bool => self.param(None::<bool>),
            Ty::Date => self.param(None::<NaiveDate>),
            Ty::Timestamp => self.param(None::<DateTime<Utc>>),
            Ty::Json => self.param(None::<serde_json::Value>),
        }
    }

    /// Binds a value for column `col` of `table` with its natural type (NULL
    /// typed as the column). A value whose variant does not fit the column's
    /// type is refused, as the SQLite backend does.
    pub(crate) fn col_param(
        &mut self,
        table: Table,
        col: &ColumnDef,
        v: &Value,
    ) -> Result<String, StoreError> {
        if v.holds_nul() {
            return Err(crm_core::store::nul_refused(table, col.name));
        }
        Ok(match (col.ty, v) {
            (ty, Value::Null) => self.null_param(Ty::of_col(ty)),
            (ColType::Id, Value::Id(u)) => self.param(*u),
            (ColType::Text, Value::Text(s)) => self.param(s.clone()),
            (ColType::Int, Value::Int(i)) => self.param(*i),
            (ColType::Bool, Value::Bool(b)) => self.param(*b),
            (ColType::Date, Value::Date(d)) => self.param(*d),
            (ColType::Timestamp, Value::Timestamp(t)) => self.param(floor_micros(*t)),
            (ColType::Json, Value::Json(j)) => self.param(j.clone()),
            (ty, v) => {
                return Err(invalid(format!(
                    "{table}.{}: a {} value does not fit a column of type {ty:?}",
                    col.name,
                    variant(v)
                )));
            }
        })
    }

    /// Binds a value compared with custom field `key` of type `ty`: numbers
    /// as `double precision`, dates as `YYYY-MM-DD` text.
    pub(crate) fn custom_param(
        &mut self,
        key: &str,
        ty: CustomType,
        v: &Value,
    ) -> Result<String, StoreError> {
        Ok(match (ty, v) {
            (ty, Value::Null) => self.null_param(Ty::of_custom(ty)),
            (CustomType::Number, Value::Int(i)) => self.param(*i as f64),
            (CustomType::Number, Value::Float(f)) => self.param(*f),
            (CustomType::Text, Value::Text(s)) => self.param(s.clone()),
            (CustomType::Text, Value::Date(d)) => self.param(d.format("%Y-%m-%d").to_string()),
            (CustomType::Bool, Value::Bool(b)) => self.param(*b),
            (ty, v) => {
                return Err(invalid(format!(
                    "custom field {key}: a {} value does not compare with a {ty:?} field",
                    variant(v)
                )));
            }
        })
    }

    /// The finished statement and its arguments.
    pub(crate) fn finish(self) -> Result<(String, PgArguments), Failure> {
        match self.error {
            Some(e) => Err(Failure::Store(invalid(format!(
                "cannot encode a parameter: {e}"
            )))),
            None => Ok((self.text, self.args)),
        }
    }
}

/// The name of a value's variant, for messages.
fn variant(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Date(_) => "date",
        Value::Timestamp(_) => "timestamp",
        Value::Id(_) => "id",
        Value::Json(_) => "json",
    }
}

/// Quotes a schema-provided identifier. Names come from [`crm_core::schema`]
/// and the validated schema name only; quoting keeps words such as `key` or
/// `position` from ever meaning anything but a column.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `alias."col1", alias."col2", …` in [`Table::columns`] order.
pub(crate) fn column_list(table: Table, alias: &str) -> String {
    let mut out = String::new();
    for (i, c) in table.columns().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{alias}.{}", ident(c.name));
    }
    out
}

/// Whether the indexes on text column `column` of `table` are declared
/// `COLLATE "C"` rather than in the column's own collation: the duplicate
/// keys' `customer_keys_lookup_idx` (migration 0002) and the partial
/// `customer_keys_duplicate_rows_idx` (migration 0005, replacing 0002's
/// `customer_keys_duplicates_idx`), which also serve walks in byte order.
/// Every other text index uses its column's collation.
///
/// Equality gives the same answer in either collation (under a deterministic
/// collation, and a database's default always is one, equal means
/// byte-equal), but PostgreSQL probes an index only with a comparison in the
/// index's collation. So equality on these columns is written with
/// `COLLATE "C"` and on all others without: with a mismatch the planner can
/// use at most the columns before the text one — the import's probe
/// `kind = $2 AND key = ANY($3)` then read every key of that kind in the
/// company and compared each with the whole array.
pub(crate) fn indexed_in_c(table: Table, column: &str) -> bool {
    matches!((table, column), (Table::CustomerKeys, "kind" | "key"))
}

/// The column definition of `name`, or an error naming table and column.
pub(crate) fn column(table: Table, name: &str) -> Result<ColumnDef, StoreError> {
    table
        .column(name)
        .ok_or_else(|| invalid(format!("{table} has no column {name:?}")))
}

/// Decodes a row selected with [`column_list`].
pub(crate) fn decode_row(table: Table, row: &PgRow) -> Result<Row, StoreError> {
    let cols = table.columns();
    let mut values = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        let v = decode_col(row, i, c.ty).map_err(|source| StoreError::Backend {
            backend: BACKEND,
            source: Box::new(DecodeError {
                table,
                column: c.name,
                ty: c.ty,
                source,
            }),
        })?;
        values.push(v);
    }
    Ok(Row { table, values })
}

fn decode_col(row: &PgRow, i: usize, ty: ColType) -> Result<Value, sqlx::Error> {
    fn get<T>(row: &PgRow, i: usize, f: impl FnOnce(T) -> Value) -> Result<Value, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, Postgres> + Type<Postgres>,
    {
        Ok(row
            .try_get::<Option<T>, _>(i)?
            .map(f)
            .unwrap_or(Value::Null))
    }
    match ty {
        ColType::Id => get::<Uuid>(row, i, Value::Id),
        ColType::Text => get::<String>(row, i, Value::Text),
        ColType::Int => get::<i64>(row, i, Value::Int),
        ColType::Bool => get::<bool>(row, i, Value::Bool),
        ColType::Date => get::<NaiveDate>(row, i, Value::Date),
        ColType::Timestamp => get::<DateTime<Utc>>(row, i, Value::Timestamp),
        ColType::Json => get::<serde_json::Value>(row, i, Value::Json),
    }
}
