//! Encoding of [`Value`]s into SQLite values and decoding of rows.
//!
//! | `ColType`   | stored as                                                |
//! |-------------|----------------------------------------------------------|
//! | `Id`        | TEXT, hyphenated lowercase                               |
//! | `Text`      | TEXT                                                     |
//! | `Int`       | INTEGER                                                  |
//! | `Bool`      | INTEGER 0/1                                              |
//! | `Date`      | TEXT `%Y-%m-%d`                                          |
//! | `Timestamp` | TEXT `%Y-%m-%dT%H:%M:%S%.6fZ` (fixed width: text order = time order) |
//! | `Json`      | TEXT                                                     |
//!
//! A value whose variant does not fit the column's type is refused rather
//! than stored in a shape the decoder (or the other backend) would not read.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use crm_core::schema::{ColType, ColumnDef, Table};
use crm_core::store::{CustomType, Row, StoreError};
use crm_core::value::Value;
use rusqlite::types::{ToSqlOutput, Value as Sql, ValueRef};
use std::fmt;

/// The format of stored timestamps: fixed width, microseconds, UTC.
pub(crate) const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
/// The format of stored dates.
pub(crate) const DATE_FORMAT: &str = "%Y-%m-%d";

/// A request the store refuses before reaching SQLite (unknown column, value
/// of the wrong type, malformed cursor …), or a stored value it cannot read.
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// A [`StoreError::Backend`] with a message.
pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Backend {
        backend: crate::BACKEND,
        source: Box::new(Invalid(message.into())),
    }
}

/// Formats a timestamp the way it is stored ([`TIMESTAMP_FORMAT`]), without
/// interpreting the format string on every call (this runs for every
/// written row).
pub(crate) fn timestamp_text(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    if t.nanosecond() >= 1_000_000_000 {
        // A leap second is the last microsecond of its minute on both stores.
        return timestamp_text(&crm_core::clock::without_leap_second(*t));
    }
    let year = t.year();
    // Years chrono pads differently go the slow way.
    if !(0..=9999).contains(&year) {
        return t.format(TIMESTAMP_FORMAT).to_string();
    }
    let micros = t.timestamp_subsec_micros();
    // Digits written by hand: this runs for every timestamp of every row.
    let mut out = String::with_capacity(27);
    push_digits(&mut out, year as u32, 4);
    out.push('-');
    push_digits(&mut out, t.month(), 2);
    out.push('-');
    push_digits(&mut out, t.day(), 2);
    out.push('T');
    push_digits(&mut out, t.hour(), 2);
    out.push(':');
    push_digits(&mut out, t.minute(), 2);
    out.push(':');
    push_digits(&mut out, t.second(), 2);
    out.push('.');
    push_digits(&mut out, micros, 6);
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut String, n: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    for _ in 0..width {
        out.push(char::from(b'0' + ((n / div) % 10) as u8));
        div /= 10;
    }
}

/// Formats a date the way it is stored ([`DATE_FORMAT`]).
pub(crate) fn date_text(d: &NaiveDate) -> String {
    use chrono::Datelike;
    let year = d.year();
    if !(0..=9999).contains(&year) {
        return d.format(DATE_FORMAT).to_string();
    }
    format!("{year:04}-{:02}-{:02}", d.month(), d.day())
}

/// Formats an id the way it is stored.
pub(crate) fn id_text(u: &uuid::Uuid) -> String {
    u.hyphenated().to_string()
}

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

/// Encodes a value for a physical column of `table`, borrowing text.
pub(crate) fn encode_ref<'a>(
    table: Table,
    col: &ColumnDef,
    v: &'a Value,
) -> Result<ToSqlOutput<'a>, StoreError> {
    Ok(match (col.ty, v) {
        (ColType::Text, Value::Text(s)) if !s.contains('\0') => {
            ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
        }
        _ => ToSqlOutput::Owned(encode(table, col, v)?),
    })
}

/// Encodes a value for a physical column of `table`.
pub(crate) fn encode(table: Table, col: &ColumnDef, v: &Value) -> Result<Sql, StoreError> {
    if v.holds_nul() {
        return Err(crm_core::store::nul_refused(table, col.name));
    }
    Ok(match (col.ty, v) {
        (_, Value::Null) => Sql::Null,
        (ColType::Id, Value::Id(u)) => Sql::Text(id_text(u)),
        (ColType::Text, Value::Text(s)) => Sql::Text(s.clone()),
        (ColType::Int, Value::Int(i)) => Sql::Integer(*i),
        (ColType::Bool, Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        (ColType::Date, Value::Date(d)) => Sql::Text(date_text(d)),
        (ColType::Timestamp, Value::Timestamp(t)) => Sql::Text(timestamp_text(t)),
        (ColType::Json, Value::Json(j)) => Sql::Text(j.to_string()),
        (ty, v) => {
            return Err(invalid(format!(
                "{table}.{}: a {} value does not fit a column of type {ty:?}",
                col.name,
                variant(v)
            )));
        }
    })
}

/// Encodes a value compared against a custom field of type `ty`.
pub(crate) fn encode_custom(key: &str, ty: CustomType, v: &Value) -> Result<Sql, StoreError> {
    Ok(match (ty, v) {
        (_, Value::Null) => Sql::Null,
        (CustomType::Number, Value::Int(i)) => Sql::Real(*i as f64),
        (CustomType::Number, Value::Float(f)) => Sql::Real(*f),
        (CustomType::Text, Value::Text(s)) => Sql::Text(s.clone()),
        (CustomType::Text, Value::Date(d)) => Sql::Text(date_text(d)),
        (CustomType::Bool, Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        (ty, v) => {
            return Err(invalid(format!(
                "custom field {key}: a {} value does not compare with a {ty:?} field",
                variant(v)
            )));
        }
    })
}

/// Decodes one stored value of column `col` of `table`.
pub(crate) fn decode(table: &str, col: &ColumnDef, raw: ValueRef<'_>) -> Result<Value, StoreError> {
    let bad = |why: &str| {
        invalid(format!(
            "{table}.{}: cannot decode stored value: {why}",
            col.name
        ))
    };
    let text = |raw: ValueRef<'_>| -> Result<String, StoreError> {
        match raw {
            ValueRef::Text(b) => std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| bad(&format!("invalid UTF-8 ({e})"))),
            other => Err(bad(&format!(
                "expected TEXT, found {:?}",
                other.data_type()
            ))),
        }
    };
    if let ValueRef::Null = raw {
        return Ok(Value::Null);
    }
    Ok(match col.ty {
        ColType::Id => {
            let s = text(raw)?;
            Value::Id(
                uuid::Uuid::parse_str(&s)
                    .map_err(|e| bad(&format!("{s:?} is not a UUID ({e})")))?,
            )
        }
        ColType::Text => Value::Text(text(raw)?),
        ColType::Int => match raw {
            ValueRef::Integer(i) => Value::Int(i),
            other => {
                return Err(bad(&format!(
                    "expected INTEGER, found {:?}",
                    other.data_type()
                )));
            }
        },
        ColType::Bool => match raw {
            ValueRef::Integer(0) => Value::Bool(false),
            ValueRef::Integer(1) => Value::Bool(true),
            other => return Err(bad(&format!("expected 0 or 1, found {other:?}"))),
        },
        ColType::Date => {
            let s = text(raw)?;
            Value::Date(
                NaiveDate::parse_from_str(&s, DATE_FORMAT)
                    .map_err(|e| bad(&format!("{s:?} is not a date ({e})")))?,
            )
        }
        ColType::Timestamp => {
            let s = text(raw)?;
            Value::Timestamp(
                parse_timestamp(&s).map_err(|e| bad(&format!("{s:?} is not a timestamp ({e})")))?,
            )
        }
        ColType::Json => {
            let s = text(raw)?;
            Value::Json(serde_json::from_str(&s).map_err(|e| bad(&format!("invalid JSON ({e})")))?)
        }
    })
}

/// Parses a stored timestamp.
pub(crate) fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    // A leap second written by an older build reads as the instant it is
    // now written as.
    NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT)
        .map(|n| crm_core::clock::without_leap_second(n.and_utc()))
}

/// The select list of a table: every column in [`Table::columns`] order,
/// qualified with `alias`.
pub(crate) fn select_list(table: Table, alias: &str) -> String {
    table
        .columns()
        .iter()
        .map(|c| format!("{alias}.\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decodes a row selected with [`select_list`].
pub(crate) fn decode_row(table: Table, row: &rusqlite::Row<'_>) -> Result<Row, StoreError> {
    let columns = table.columns();
    let mut values = Vec::with_capacity(columns.len());
    for (i, col) in columns.iter().enumerate() {
        let raw = row.get_ref(i).map_err(crate::error::backend)?;
        values.push(decode(table.name(), col, raw)?);
    }
    Ok(Row { table, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let a = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let b = a + chrono::Duration::microseconds(1);
        let c = a - chrono::Duration::microseconds(1);
        let (ta, tb, tc) = (timestamp_text(&a), timestamp_text(&b), timestamp_text(&c));
        assert_eq!(ta, "2026-01-01T00:00:00.000000Z");
        assert_eq!(tb, "2026-01-01T00:00:00.000001Z");
        assert_eq!(tc, "2025-12-31T23:59:59.999999Z");
        assert!(tc < ta && ta < tb);
        assert_eq!(parse_timestamp(&tb).expect("parses"), b);
    }

    #[test]
    fn mismatched_value_is_refused_with_table_and_column() {
        let table = Table::Customers;
        let col = table.column("next_follow_up").expect("column");
        let err = encode(table, &col, &Value::Text("tomorrow".into())).expect_err("refused");
        assert!(
            err.to_string().contains("customers.next_follow_up"),
            "{err}"
        );
    }

    #[test]
    fn undecodable_value_names_table_and_column() {
        let table = Table::Users;
        let col = table.column("active").expect("column");
        let err = decode(table.name(), &col, ValueRef::Integer(7)).expect_err("refused");
        assert!(err.to_string().contains("users.active"), "{err}");
        let col = table.column("id").expect("column");
        let err = decode(table.name(), &col, ValueRef::Text(b"nope")).expect_err("refused");
        assert!(err.to_string().contains("users.id"), "{err}");
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hand_formatted_timestamps_and_dates_match_the_stored_format() {
        let cases = [
            Utc.with_ymd_and_hms(2026, 11, 27, 5, 41, 14)
                .single()
                .expect("valid")
                + chrono::Duration::microseconds(130_988),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .expect("valid")
                + chrono::Duration::nanoseconds(999_999_999),
        ];
        for t in cases {
            assert_eq!(timestamp_text(&t), t.format(TIMESTAMP_FORMAT).to_string());
            let d = t.date_naive();
            assert_eq!(date_text(&d), d.format(DATE_FORMAT).to_string());
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("leap second")
            .and_utc();
        assert_eq!(timestamp_text(&leap), "2016-12-31T23:59:59.999999Z");
        let far = NaiveDate::from_ymd_opt(12345, 1, 2).expect("valid");
        assert_eq!(date_text(&far), far.format(DATE_FORMAT).to_string());
    }
}
