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

/// A sort key; the store always appends `id` ascending as the final tie-breaker.
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
    pub payload: serde_json::Value,
    /// When it happened.
    pub at: DateTime<Utc>,
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
/// [`StoreError::Unique`] carrying `message`. Writers guarding a common key
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

    /// Records that the consumer has processed every event up to `seq`.
    /// Acknowledging backwards is ignored.
    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError>;
}
