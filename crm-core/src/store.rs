//! The storage traits and the plain data that crosses them.
//!
//! A store knows nothing of permissions or workflows: the core resolves those
//! and hands the store a [`Select`] whose filter already contains the actor's
//! data scope, or a [`ChangeSet`] that must be applied atomically or not at
//! all. Stores compile both into SQL with bound parameters, except boolean
//! equality, written as a literal so partial indexes can serve it.

use crate::schema::Table;
use crate::value::Value;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A row read from a table, with values in [`Table::columns`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The table the row came from.
    pub table: Table,
    /// One value per column, in [`Table::columns`] order.
    pub values: Vec<Value>,
}

impl Row {
    /// The value of a column; `Null` when the column does not exist.
    pub fn get(&self, column: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.table
            .columns()
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&NULL)
    }

    /// Replaces the value of a column (used for masking); ignored when the
    /// column does not exist.
    pub fn set(&mut self, column: &str, value: Value) {
        if let Some(i) = self.table.columns().iter().position(|c| c.name == column) {
            self.values[i] = value;
        }
    }

    /// The record's id.
    pub fn id(&self) -> Uuid {
        self.values
            .first()
            .and_then(Value::as_id)
            .unwrap_or_default()
    }

    /// The record's version.
    pub fn version(&self) -> i64 {
        self.get("version").as_int().unwrap_or(0)
    }
}

/// A column expression a filter or sort can refer to.
#[derive(Clone, Debug, PartialEq)]
pub enum Col {
    /// A physical column of the table.
    Column(&'static str),
    /// A custom field, stored inside the `custom` JSON column.
    Custom {
        /// The custom field key (validated: `[a-z][a-z0-9_]*`).
        key: String,
        /// How to compare its values.
        ty: CustomType,
    },
}

/// How a custom field's JSON value compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomType {
    /// As text (also dates in `YYYY-MM-DD` form).
    Text,
    /// As a number.
    Number,
    /// As a boolean.
    Bool,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// Equal.
    Eq,
    /// Not equal; NULL counts as different from any value.
    Ne,
    /// Less than.
    Lt,
    /// Less or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
}

/// The most terms and values a filter given by a caller may hold, by
/// [`Filter::weight`]: far more than any list or search needs, and within
/// what one statement binds on every store (SQLite 32 766 parameters,
/// PostgreSQL 65 535), so that a larger filter is refused alike, naming the
/// problem, rather than run on one store and fail on the other.
pub const MAX_FILTER_WEIGHT: usize = 10_000;

/// A resolved filter: column names are checked by the core, values typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Matches everything.
    True,
    /// `col op value`. Text compares byte-wise (UTF-8 order) on both backends.
    Cmp(Col, CmpOp, Value),
    /// `col IN (values)`; an empty list matches nothing.
    In(Col, Vec<Value>),
    /// Case-insensitive (ASCII) substring match; `%` and `_` are literal.
    Contains(Col, String),
    /// Case-insensitive (ASCII) prefix match; `%` and `_` are literal.
    StartsWith(Col, String),
    /// The column's text, folded as [`text_key`](crate::validate::text_key)
    /// folds it, is the folded text of one of these keys (an empty list
    /// matches nothing): full-width ASCII (U+FF01–U+FF5E) read as ASCII and the
    /// ideographic space (U+3000) as a space, every run of whitespace (as
    /// Rust's [`char::is_whitespace`] tells it) one space, trimmed, lower
    /// case. `ERP-001`, `erp-001`, `ＥＲＰ－００１` and `ＥＲＰ-001` have the
    /// key `erp-001`. How unique custom text fields find a value held in
    /// another spelling.
    ///
    /// SQLite folds with the Rust function itself; PostgreSQL with SQL
    /// (`translate`, `regexp_replace`, `lower`), whose `lower` follows the
    /// database's collation: the same for ASCII and full-width letters
    /// everywhere, and for other letters where the collation knows their
    /// case (a `C.UTF-8` or language locale); in a `"C"` database they
    /// match only when stored in the lower case the key has.
    TextKeyIn(Col, Vec<String>),
    /// The column's text, folded as
    /// [`search_key`](crate::validate::search_key) folds it, holds the
    /// folded needle (anywhere, or at its start with `prefix`); `%` and `_`
    /// are literal. A condition typed in either width, letter case, with or
    /// without accents, in traditional or simplified Chinese finds every
    /// spelling (`ａｐｐ` finds `Apple`, `ＡＰＰＬＥ`, `appＬe`; `muller`
    /// finds `Müller`; `華為` finds `华为`). SQLite folds with the Rust
    /// function itself, PostgreSQL with plain string functions folding the
    /// characters that can match
    /// ([`search_translation`](crate::validate::search_translation)):
    /// both alike, whatever the database's collation.
    TextKeyLike {
        /// The column.
        col: Col,
        /// What the text holds.
        needle: String,
        /// At its start only.
        prefix: bool,
    },
    /// `col IS NULL`.
    IsNull(Col),
    /// `col IS NOT NULL`.
    NotNull(Col),
    /// All must match; empty matches everything.
    And(Vec<Filter>),
    /// Any must match; empty matches nothing.
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
    /// A JSON column holds this id as a string anywhere inside it: as an
    /// element of an array of ids (a user's roles, a group's members) or
    /// deeper (an approval flow's steps). Finds what still refers to a
    /// record before it is deleted.
    HoldsId(Col, Uuid),
    /// There is a live (not deleted) row in `table` whose column `fk` equals
    /// this row's id and that matches the filter.
    Related {
        /// The related table.
        table: Table,
        /// The column of the related table that references this table's id.
        fk: &'static str,
        /// The condition on the related row.
        filter: Box<Filter>,
    },
    /// This row's reference column `fk` holds the id of a row of `table`
    /// (deleted or not) that matches the filter: the other direction of
    /// [`Filter::Related`]. Lists a follow-up with its customer.
    Refers {
        /// This table's column that holds the referenced id.
        fk: &'static str,
        /// The referenced table.
        table: Table,
        /// The condition on the referenced row.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// An upper bound of the parameters a store binds for the filter: a
    /// condition counts one, three on a custom field (its path is bound
    /// too); an `In` list its values up to 500, one above (both stores bind
    /// a longer list as one array); nested filters the sum of their parts.
    /// Compared with [`MAX_FILTER_WEIGHT`].
    pub fn weight(&self) -> usize {
        let col = |c: &Col| match c {
            Col::Column(_) => 0,
            Col::Custom { .. } => 2,
        };
        match self {
            Filter::True => 0,
            Filter::Cmp(c, ..)
            | Filter::Contains(c, _)
            | Filter::StartsWith(c, _)
            | Filter::IsNull(c)
            | Filter::NotNull(c)
            | Filter::HoldsId(c, _) => 1 + col(c),
            Filter::In(c, values) => col(c) + if values.len() > 500 { 1 } else { values.len() },
            Filter::TextKeyIn(c, keys) => col(c) + if keys.len() > 500 { 1 } else { keys.len() },
            // PostgreSQL binds the folding's maps too (see
            // `validate::SEARCH_TRANSLATION_PARAMS`).
            Filter::TextKeyLike { col: c, .. } => {
                1 + col(c) + crate::validate::SEARCH_TRANSLATION_PARAMS
            }
            Filter::And(parts) | Filter::Or(parts) => parts.iter().map(Filter::weight).sum(),
            Filter::Not(inner) => inner.weight(),
            Filter::Related { filter, .. } | Filter::Refers { filter, .. } => 1 + filter.weight(),
        }
    }

    /// The message both stores refuse a filter with when a value it
    /// compares with holds a NUL character ([`nul_message`]), naming the
    /// column of `table` (or of a related table) it is compared with.
    pub fn nul_refusal(&self, table: Table) -> Option<String> {
        let name = |c: &Col| match c {
            Col::Column(n) => (*n).to_string(),
            Col::Custom { key, .. } => format!("custom.{key}"),
        };
        match self {
            Filter::Cmp(c, _, v) if v.holds_nul() => Some(nul_message(table, &name(c))),
            Filter::In(c, vs) if vs.iter().any(Value::holds_nul) => {
                Some(nul_message(table, &name(c)))
            }
            Filter::Contains(c, t) | Filter::StartsWith(c, t) if t.contains('\0') => {
                Some(nul_message(table, &name(c)))
            }
            Filter::TextKeyIn(c, keys) if keys.iter().any(|k| k.contains('\0')) => {
                Some(nul_message(table, &name(c)))
            }
            Filter::TextKeyLike { col: c, needle, .. } if needle.contains('\0') => {
                Some(nul_message(table, &name(c)))
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().find_map(|f| f.nul_refusal(table)),
            Filter::Not(f) => f.nul_refusal(table),
            Filter::Related { table, filter, .. } | Filter::Refers { table, filter, .. } => {
                filter.nul_refusal(*table)
            }
            _ => None,
        }
    }

    /// Rows whose `col` is none of `ids` (a guard leaving out the records
    /// its own change set handles): everything when there are none, `Ne`
    /// for one, `NOT IN` for more.
    pub fn not_among(col: Col, ids: impl IntoIterator<Item = Uuid>) -> Filter {
        let mut ids: Vec<Value> = ids.into_iter().map(Value::Id).collect();
        match ids.len() {
            0 => Filter::True,
            1 => Filter::Cmp(col, CmpOp::Ne, ids.remove(0)),
            _ => Filter::Not(Box::new(Filter::In(col, ids))),
        }
    }
}

/// Which rows of an owned table the actor may see, as resolved by the core.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Every row of the company.
    All,
    /// Only rows matching one of these grants.
    Restricted {
        /// Rows owned by one of these users.
        owners: Vec<Uuid>,
        /// Rows whose department is one of these.
        departments: Vec<Uuid>,
        /// Rows shared with this user by a live, unexpired share.
        shared_with: Option<Uuid>,
    },
}

impl Scope {
    /// The scope as a filter on rows of `table` (an owned table), for where
    /// a scope must hold besides the select's own: the rows of a
    /// related-record filter, or a second grant that narrows the first.
    /// Shares count while live and unexpired at `now`.
    pub fn as_filter(&self, table: Table, now: DateTime<Utc>) -> Filter {
        let Scope::Restricted {
            owners,
            departments,
            shared_with,
        } = self
        else {
            return Filter::True;
        };
        let mut any = Vec::new();
        for (column, ids) in [("owner_id", owners), ("department_id", departments)] {
            if !ids.is_empty() {
                any.push(Filter::In(
                    Col::Column(column),
                    ids.iter().map(|u| Value::Id(*u)).collect(),
                ));
            }
        }
        if let Some(user) = shared_with {
            any.push(Filter::Related {
                table: Table::Shares,
                fk: "record_id",
                filter: Box::new(Filter::And(vec![
                    Filter::Cmp(Col::Column("user_id"), CmpOp::Eq, Value::Id(*user)),
                    Filter::Cmp(
                        Col::Column("entity"),
                        CmpOp::Eq,
                        Value::Text(table.name().to_string()),
                    ),
                    Filter::Or(vec![
                        Filter::IsNull(Col::Column("expires_at")),
                        Filter::Cmp(Col::Column("expires_at"), CmpOp::Gt, Value::Timestamp(now)),
                    ]),
                ])),
            });
        }
        Filter::Or(any)
    }
}
/// A sort key; the store always appends `id` ascending as the final tie-breaker.
///
/// NULL (a blank: a missing value, or a custom field missing or of another
/// type) sorts after every value in both directions — ascending and
/// descending lists alike end with their blanks, as spreadsheets and CRMs
/// show them (SQL's `NULLS LAST` on both keys). Keyset cursors
/// ([`Paging::Keyset`]) follow the same order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    /// The column.
    pub col: Col,
    /// Descending when true.
    pub desc: bool,
}

/// Paging of a select.
#[derive(Clone, Debug, PartialEq)]
pub enum Paging {
    /// Every matching row.
    All,
    /// Skip `offset` rows, then at most `limit`. With `limit` 0 and
    /// [`Select::with_total`] the store only counts (no rows are read, so no
    /// sort runs); `has_more` then says whether rows lie past `offset`.
    Offset {
        /// Rows to skip.
        offset: u64,
        /// Rows to return at most.
        limit: u64,
    },
    /// Rows strictly after the given position in sort order, at most `limit`.
    /// `after` holds the sort key values of the last row seen followed by
    /// its id; `None` starts from the beginning.
    Keyset {
        /// The position after which to continue.
        after: Option<Vec<Value>>,
        /// Rows to return at most.
        limit: u64,
    },
}

/// Which rows by lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Not deleted and not archived (the working set).
    #[default]
    Active,
    /// Logically deleted (the recycle bin).
    Deleted,
    /// Archived to history, not deleted.
    Archived,
    /// Everything.
    Any,
}

/// A fully resolved read.
#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    /// The table.
    pub table: Table,
    /// The company whose rows to read.
    pub company: Uuid,
    /// Lifecycle state (archived applies to owned tables only).
    pub lifecycle: Lifecycle,
    /// The data scope (owned tables only; ignored for others).
    pub scope: Scope,
    /// The filter.
    pub filter: Filter,
    /// Sort keys.
    pub sort: Vec<Sort>,
    /// Paging.
    pub paging: Paging,
    /// Whether to count all matching rows too.
    pub with_total: bool,
    /// "Now", for share expiry.
    pub now: DateTime<Utc>,
}

impl Select {
    /// Whether this select only counts: a total of an empty offset page.
    pub fn counts_only(&self) -> bool {
        self.with_total && matches!(self.paging, Paging::Offset { limit: 0, .. })
    }

    /// A select of every active row of `table` in `company`, unscoped.
    pub fn all(table: Table, company: Uuid, now: DateTime<Utc>) -> Self {
        Select {
            table,
            company,
            lifecycle: Lifecycle::Active,
            scope: Scope::All,
            filter: Filter::True,
            sort: Vec::new(),
            paging: Paging::All,
            with_total: false,
            now,
        }
    }
}

/// What a select returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    /// The rows of the page.
    pub rows: Vec<Row>,
    /// Whether more rows follow the page.
    pub has_more: bool,
    /// The number of all matching rows, when asked for.
    pub total: Option<u64>,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Inserts a row; `values` name the columns to set, others take NULL
    /// (the core always sets every non-nullable column).
    Insert {
        /// The table.
        table: Table,
        /// Column values, including `id`, `company_id`, `version`, timestamps.
        values: Vec<(&'static str, Value)>,
    },
    /// Updates a row if its version is still `expected_version`, setting
    /// `version = expected_version + 1` besides the given columns.
    Update {
        /// The table.
        table: Table,
        /// The row.
        id: Uuid,
        /// The version the core read; a different stored version is a conflict.
        expected_version: i64,
        /// Columns to set.
        values: Vec<(&'static str, Value)>,
    },
    /// Physically deletes a row (purge).
    Delete {
        /// The table.
        table: Table,
        /// The row.
        id: Uuid,
    },
}

/// One audit entry: who changed what, with before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The company.
    pub company_id: Uuid,
    /// The table of the record.
    pub table: Table,
    /// The record.
    pub record_id: Uuid,
    /// Who did it (`None` for the system, e.g. bootstrap).
    pub actor_id: Option<Uuid>,
    /// When.
    pub at: DateTime<Utc>,
    /// What was done: `create`, `update`, `delete`, `restore`, `purge`,
    /// `transfer`, `share`, `archive` …
    pub action: String,
    /// Field changes.
    pub changes: Vec<FieldChange>,
}

/// One field's change within an audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field (column or `custom.key`).
    pub field: String,
    /// The value before (JSON null when absent).
    pub before: serde_json::Value,
    /// The value after.
    pub after: serde_json::Value,
}

/// What both stores say when a value to write holds a NUL character
/// ([`Value::holds_nul`]), which PostgreSQL cannot store.
pub fn nul_message(table: Table, column: &str) -> String {
    format!("{table}.{column}: text cannot hold a NUL character (\\0)")
}

/// The refusal of a value holding a NUL character, compared with or
/// written to `column` of `table` ([`StoreError::Invalid`]).
pub fn nul_refused(table: Table, column: &str) -> StoreError {
    StoreError::Invalid {
        table,
        detail: nul_message(table, column),
    }
}

/// How many ops from the start of `ops` insert into the same table and set
/// the same columns in the same order (0 when the first is no insert).
/// Stores write such a run with one statement (PostgreSQL) or one prepared
/// statement (SQLite): the customers of an import batch, when the file's
/// rows fill the same columns and nothing comes between them.
pub fn insert_run_len(ops: &[Op]) -> usize {
    let Some(Op::Insert { table, values }) = ops.first() else {
        return 0;
    };
    let same = |op: &Op| match op {
        Op::Insert {
            table: t,
            values: v,
        } => {
            t == table
                && v.len() == values.len()
                && v.iter().zip(values).all(|((a, _), (b, _))| a == b)
        }
        _ => false,
    };
    1 + ops[1..].iter().take_while(|op| same(op)).count()
}

/// An event for the host application, written in the same transaction as the
/// change it describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The company.
    pub company_id: Uuid,
    /// The event type, e.g. `customer.created`.
    pub event_type: String,
    /// The table of the record concerned.
    pub table: Table,
    /// The record concerned.
    pub record_id: Uuid,
    /// The event's data.
    pub payload: Payload,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// An event's data: a JSON document, kept as its JSON text.
///
/// The text is valid JSON by construction (every constructor serialises or
/// parses). Stores write it as it is and a host can forward it to a queue
/// or webhook without serialising it again; [`Payload::to_value`] parses it
/// for reading. The text is not canonical: the order of an object's keys
/// and the whitespace are the writer's, and PostgreSQL (which keeps
/// payloads as `jsonb`) returns its own; read the payload as JSON, not as
/// text to compare. Two payloads are equal when their JSON values are.
#[derive(Clone)]
pub struct Payload(String);

impl Payload {
    /// Parses `text`, refusing anything that is not JSON.
    pub fn parse(text: String) -> Result<Payload, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(Payload(text))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        // Valid JSON by construction; `Null` cannot occur in practice.
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// A payload written entry by entry: see [`PayloadWriter`].
    pub(crate) fn writer(capacity: usize) -> PayloadWriter {
        let mut text = Vec::with_capacity(capacity);
        text.push(b'{');
        PayloadWriter {
            text,
            #[cfg(debug_assertions)]
            keys: Vec::new(),
        }
    }

    /// Replaces the `null` at byte `at` (as [`PayloadWriter::null_at`]
    /// reported it) with `text` as a JSON string; `false`, changing
    /// nothing, when there is no `null` token at `at`. Only one null of a
    /// payload can be filled: the first fill moves the bytes after it.
    #[must_use]
    pub(crate) fn fill_null(&mut self, at: usize, text: &str) -> bool {
        let is_null_token = self.0.get(at..at + 4) == Some("null")
            && at > 0
            && self.0.get(at - 1..at) == Some(":")
            && self.0[at + 4..].starts_with([',', '}']);
        if is_null_token {
            let quoted = serde_json::Value::from(text).to_string();
            self.0.replace_range(at..at + 4, &quoted);
        }
        is_null_token
    }
}

impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Payload {
        Payload::from(&v)
    }
}

impl From<&serde_json::Value> for Payload {
    fn from(v: &serde_json::Value) -> Payload {
        // `Value`'s serialisation cannot fail: its map keys are strings.
        Payload(v.to_string())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        serde_json::Value::deserialize(d).map(Payload::from)
    }
}

/// Writes a JSON object's text entry by entry, without building a
/// `serde_json::Map` first (a bulk import writes one per created record).
/// The caller writes each key once.
pub(crate) struct PayloadWriter {
    text: Vec<u8>,
    /// The keys written, to catch a key written twice (debug builds).
    #[cfg(debug_assertions)]
    keys: Vec<String>,
}

impl PayloadWriter {
    fn key(&mut self, key: &str) {
        #[cfg(debug_assertions)]
        {
            debug_assert!(
                !self.keys.iter().any(|k| k == key),
                "payload key {key} written twice"
            );
            self.keys.push(key.to_owned());
        }
        if self.text.len() > 1 {
            self.text.push(b',');
        }
        self.put(key);
        self.text.push(b':');
    }

    /// An entry holding text.
    pub(crate) fn text(&mut self, key: &str, v: &str) {
        self.key(key);
        self.put(v);
    }

    /// Appends `v`'s JSON (serde_json quotes and escapes).
    fn put<T: Serialize + ?Sized>(&mut self, v: &T) {
        // Writing into a `Vec` cannot fail, and these values (strings,
        // numbers, `serde_json::Value`s) always serialise.
        let _ = serde_json::to_writer(&mut self.text, v);
    }

    /// An entry holding a column value, as [`Value::to_json`] shows it.
    pub(crate) fn value(&mut self, key: &str, v: &Value) {
        self.key(key);
        match v {
            Value::Null => self.text.extend_from_slice(b"null"),
            Value::Bool(b) => self.put(b),
            Value::Int(i) => self.put(i),
            Value::Text(s) => self.put(s.as_str()),
            Value::Id(u) => self.put(u.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            // Dates, instants, floats and JSON are rare in payloads: shown
            // through their JSON value.
            other => self.put(&other.to_json()),
        }
    }

    /// An entry holding a JSON value.
    pub(crate) fn json(&mut self, key: &str, v: &serde_json::Value) {
        self.key(key);
        self.put(v);
    }

    /// An entry holding `null`, to be filled later: the byte offset of the
    /// `null` in the finished text (see [`Payload::fill_null`]).
    pub(crate) fn null_at(&mut self, key: &str) -> usize {
        self.key(key);
        let at = self.text.len();
        self.text.extend_from_slice(b"null");
        at
    }

    /// The finished payload.
    pub(crate) fn finish(mut self) -> Payload {
        self.text.push(b'}');
        // serde_json writes UTF-8 only, so the check cannot fail.
        Payload(
            String::from_utf8(self.text)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }
}

/// A stored event with its position in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// The position: strictly increasing in commit order.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: NewEvent,
}

/// A condition a store checks inside the write transaction, before any op:
/// `select` must find no row, else the whole change set is refused with
/// [`Guard::refusal`] carrying `message`. Writers guarding a common key
/// are serialised (SQLite has one writer; PostgreSQL takes
/// transaction-scoped advisory locks on the keys, hashed into a bounded
/// set of locks), so two change sets that each checked, before writing,
/// that a value is free cannot both take it.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    /// What is guarded: one key per value the select looks for, e.g.
    /// `<company>:customer_keys:phone:<value>`. A guard of one value has
    /// one key; a bulk import's guard of a thousand names has a thousand.
    pub keys: Vec<String>,
    /// The rows that must not exist.
    pub select: Select,
    /// What a refusal says (which field matched, and the value).
    pub message: String,
    /// What a refusal means.
    pub kind: GuardKind,
}

/// What a guard's refusal means, and so how the store reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// A value the write takes is held by another record meanwhile
    /// ([`StoreError::Unique`]).
    Duplicate,
    /// Something the write relies on changed meanwhile: what it refers to
    /// was deleted, or something it must not leave behind was added
    /// ([`StoreError::Refused`]).
    State,
}

impl Guard {
    /// The error a store reports when this guard's select finds rows.
    pub fn refusal(&self) -> StoreError {
        match self.kind {
            GuardKind::Duplicate => StoreError::Unique {
                table: self.select.table,
                detail: self.message.clone(),
            },
            GuardKind::State => StoreError::Refused {
                table: self.select.table,
                detail: self.message.clone(),
            },
        }
    }
}

/// Everything one operation writes; applied in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeSet {
    /// Checked first, inside the transaction: see [`Guard`].
    pub guards: Vec<Guard>,
    /// Row writes, applied in order.
    pub ops: Vec<Op>,
    /// Audit entries.
    pub audit: Vec<AuditEntry>,
    /// Outbox events.
    pub events: Vec<NewEvent>,
}

impl ChangeSet {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.audit.is_empty() && self.events.is_empty()
    }
}

/// Errors a store reports. Backends keep the driver error as the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An update expected a version that is no longer the stored one.
    #[error(
        "{table} {id} was changed by someone else (expected version {expected}, found {actual})"
    )]
    Conflict {
        /// The table.
        table: Table,
        /// The row.
        id: Uuid,
        /// The version the writer expected.
        expected: i64,
        /// The version found.
        actual: i64,
    },
    /// An update or delete addressed a row that does not exist.
    #[error("{table} {id} does not exist")]
    NotFound {
        /// The table.
        table: Table,
        /// The row.
        id: Uuid,
    },
    /// A uniqueness constraint refused the write.
    #[error("duplicate value in {table}: {detail}")]
    Unique {
        /// The table.
        table: Table,
        /// What the backend said (constraint or columns).
        detail: String,
    },
    /// A state guard refused the write: something it relies on changed
    /// meanwhile (see [`GuardKind::State`]).
    #[error("{detail}")]
    Refused {
        /// The table the guard looked at.
        table: Table,
        /// The guard's message.
        detail: String,
    },
    /// A value no store keeps was given (text holding a NUL character), in
    /// a write or in a filter: the caller's input, not a failure of the
    /// backend.
    #[error("{detail}")]
    Invalid {
        /// The table.
        table: Table,
        /// What was refused, naming the column.
        detail: String,
    },
    /// Any other backend failure.
    #[error("{backend} store error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The storage trait every backend implements. Used as `dyn Store`.
#[async_trait]
pub trait Store: Send + Sync {
    /// A short name of the backend (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Applies a change set atomically: all of it or nothing.
    async fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError>;

    /// [`Store::apply`] of a change set the store may keep: a backend whose
    /// driver blocks (SQLite) hands it to a writer thread of its own, so the
    /// caller's task can go on with other work (a bulk import prepares its
    /// next batch) until the write is done. The engine writes through this.
    /// A write handed over may still complete (as a whole) after the
    /// returned future is dropped, e.g. by a host's timeout.
    async fn apply_owned(&self, changes: ChangeSet) -> Result<(), StoreError> {
        self.apply(&changes).await
    }

    /// Reads one row by id regardless of company or lifecycle.
    async fn get(&self, table: Table, id: Uuid) -> Result<Option<Row>, StoreError>;

    /// Runs a select.
    async fn select(&self, select: &Select) -> Result<Selected, StoreError>;

    /// Atomically increments and returns the counter `key` of `company`
    /// (starting at 1). Committed on its own, so numbers are never reused.
    async fn next_sequence(&self, company: Uuid, key: &str) -> Result<i64, StoreError>;

    /// Atomically advances the counter `key` of `company` by `count` and
    /// returns the numbers taken, in increasing order. Committed on its own,
    /// so numbers are never reused. Used by bulk imports; backends answer it
    /// with one statement, the default takes the numbers one by one.
    async fn reserve_sequence(
        &self,
        company: Uuid,
        key: &str,
        count: u32,
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            out.push(self.next_sequence(company, key).await?);
        }
        Ok(out)
    }

    /// The audit entries of one record, oldest first.
    async fn history(&self, table: Table, record_id: Uuid) -> Result<Vec<AuditEntry>, StoreError>;

    /// Up to `limit` outbox events after the consumer's acknowledged position,
    /// in order.
    async fn outbox_pending(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Up to `limit` outbox events of one company after the consumer's
    /// acknowledged position, in order; other companies' events are passed
    /// over (and stay pending). Stores override this with one query; the
    /// default reads windows of [`Store::outbox_pending`], growing fourfold
    /// a round, until it has `limit` of the company's events or the queue
    /// ends.
    async fn outbox_pending_of(
        &self,
        consumer: &str,
        company_id: Uuid,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let want = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut window = limit.max(1);
        loop {
            let events = self.outbox_pending(consumer, window).await?;
            let last_page = (events.len() as u64) < window;
            let found: Vec<_> = events
                .into_iter()
                .filter(|e| e.event.company_id == company_id)
                .take(want)
                .collect();
            if found.len() >= want || last_page || window == u64::MAX {
                return Ok(found);
            }
            window = window.saturating_mul(4);
        }
    }

    /// Records that the consumer has processed every event up to `seq`.
    /// Acknowledging backwards is ignored.
    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError>;

    /// The sequence number of the newest outbox event (0 when there is
    /// none).
    async fn outbox_last_seq(&self) -> Result<i64, StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_payloads_are_the_json_of_their_values() {
        let id = Uuid::now_v7();
        let mut w = Payload::writer(16);
        w.value("id", &Value::Id(id));
        let code_at = w.null_at("code");
        w.value("name", &Value::Text("华为 \"HQ\"\\\n\t\u{1}".into()));
        w.value("size", &Value::Int(-42));
        w.value("vip", &Value::Bool(true));
        w.value("owner_id", &Value::Null);
        w.value(
            "since",
            &Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        );
        w.json("custom.tags", &json!(["a", {"b": 1.5}]));
        w.value("score", &Value::Float(f64::NAN));
        w.value("ratio", &Value::Float(0.25));
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        w.value("at", &Value::Timestamp(at));
        w.value("doc", &Value::Json(json!({"k": [1, null]})));
        let mut p = w.finish();
        assert_eq!(
            p.to_value(),
            json!({
                "id": id.to_string(),
                "code": null,
                "name": "华为 \"HQ\"\\\n\t\u{1}",
                "size": -42,
                "vip": true,
                "owner_id": null,
                "since": "2026-03-01",
                "custom.tags": ["a", {"b": 1.5}],
                "score": null,
                "ratio": 0.25,
                "at": "2026-03-01T08:00:00.500000Z",
                "doc": {"k": [1, null]},
            })
        );
        // Not at a null token: refused, nothing changed.
        let before = p.as_str().to_owned();
        assert!(!p.fill_null(code_at + 1, "x"));
        assert!(!p.fill_null(0, "x"));
        assert!(!p.fill_null(before.len(), "x"));
        assert_eq!(p.as_str(), before);
        assert!(p.fill_null(code_at, "KH-20260301-0001 \"x\""));
        assert_eq!(p.to_value()["code"], json!("KH-20260301-0001 \"x\""));
        assert_eq!(p.to_value()["name"], json!("华为 \"HQ\"\\\n\t\u{1}"));
        assert!(Payload::parse(p.as_str().to_owned()).is_ok());
    }

    /// Runs of inserts end where the table, the columns or their order
    /// change, or at another op.
    #[test]
    fn insert_runs_share_table_and_columns() {
        let ins = |table, cols: &[&'static str]| Op::Insert {
            table,
            values: cols.iter().map(|c| (*c, Value::Null)).collect(),
        };
        let ops = vec![
            ins(Table::Customers, &["id", "name"]),
            ins(Table::Customers, &["id", "name"]),
            ins(Table::Customers, &["id", "name"]),
            ins(Table::Customers, &["name", "id"]),
            ins(Table::Customers, &["id", "name", "code"]),
            ins(Table::Contacts, &["id", "name", "code"]),
            Op::Delete {
                table: Table::Contacts,
                id: Uuid::nil(),
            },
            ins(Table::Contacts, &["id", "name", "code"]),
        ];
        let mut lens = Vec::new();
        let mut rest = ops.as_slice();
        while !rest.is_empty() {
            let n = insert_run_len(rest);
            lens.push(n);
            rest = &rest[n.max(1)..];
        }
        assert_eq!(lens, vec![3, 1, 1, 1, 0, 1]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn a_payload_key_written_twice_is_caught() {
        let mut w = Payload::writer(8);
        w.value("owner_id", &Value::Null);
        w.text("owner_id", "x");
    }

    #[test]
    fn payloads_compare_as_json_and_refuse_other_text() {
        let a = Payload::parse(r#"{"a":1,"b":[true]}"#.to_owned()).unwrap();
        let b = Payload::from(json!({"b": [true], "a": 1}));
        assert_eq!(a, b);
        assert_ne!(a, Payload::from(json!({"a": 2, "b": [true]})));
        assert!(Payload::parse("{\"a\":".to_owned()).is_err());
        assert!(Payload::parse("not json".to_owned()).is_err());
        // Serialised as the JSON value it holds, not as a string.
        let e = serde_json::to_value(&a).unwrap();
        assert_eq!(e, json!({"a": 1, "b": [true]}));
        let back: Payload = serde_json::from_value(e).unwrap();
        assert_eq!(back, a);
    }
}
