#![doc = include_str!("../README.md")]

mod checkpoint;
mod codec;
mod error;
mod migrate;
mod query;
mod stats;
mod writer;

pub use checkpoint::{IDLE_CHECKPOINT, ROWS_PER_CHECKPOINT, WRITER_AUTOCHECKPOINT_PAGES};
pub use error::{BoxError, OpenError};
pub use migrate::SCHEMA_VERSION;

use async_trait::async_trait;
use crm_core::schema::{ColType, ColumnDef, Table};
use crm_core::store::{
    AuditEntry, ChangeSet, FieldChange, NewEvent, Op, OutboxEvent, Payload, Row, Select, Selected,
    Store, StoreError,
};
use crm_core::value::Value;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;
use uuid::Uuid;

use codec::{decode, decode_row, id_text, invalid, select_list, timestamp_text};
use writer::lock;

/// The backend name reported by [`Store::backend`] and in errors.
pub(crate) const BACKEND: &str = "sqlite";

/// How long a connection waits for another writer before failing with
/// `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer connection's page cache as SQLite's `cache_size` (negative:
/// KiB, so 32 MiB); readers keep SQLite's default of 2 MiB.
pub const WRITER_CACHE_KIB: i64 = -32 * 1024;

/// The page size of a database this store creates, in bytes (SQLite's
/// default is 4 096). Every customer goes into a table with ten secondary
/// indexes, and a batch of inserts rewrites most of their pages: with pages
/// twice as large, an import of 100 000 customers took about 10 % less time
/// (5 % less CPU), while a single create took about 0.04 ms (8 %) longer and
/// scattered updates (the recycling sweep a day later) 10–20 % longer, on
/// the benchmarks of this repository. Files created with another page size
/// keep it (SQLite changes it only with `VACUUM` outside WAL mode).
pub const PAGE_SIZE: u32 = 8192;

/// How many read-only connections a file-backed store keeps.
pub const READ_CONNECTIONS: usize = 4;

/// A [`Store`] backed by SQLite.
///
/// File-backed stores use WAL, one writer connection behind a mutex (every
/// write is a `BEGIN IMMEDIATE` transaction) and [`READ_CONNECTIONS`]
/// read-only connections, so reads run beside a write. In-memory stores use
/// a single connection for everything. Calls block the calling thread,
/// except [`Store::apply_owned`] (the engine's writes), which runs on a
/// writer thread of the store's own; see the crate documentation.
pub struct SqliteStore {
    location: String,
    /// Closed first (fields drop in this order): the connection closing
    /// last is then the writer, and the last connection to a WAL database
    /// checkpoints it and removes the `-wal` file — a read-only one cannot,
    /// which left every change in the `-wal` file after a process ended,
    /// so that a plain copy of the database file missed them.
    readers: Vec<Mutex<Connection>>,
    /// Runs `apply_owned`; stopped and joined before the writer closes.
    thread: writer::WriterThread,
    writer: Arc<writer::Writer>,
    next_reader: AtomicUsize,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    query::register_functions(conn)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if writer {
        // Only a new, empty database takes it (before WAL is switched on);
        // an existing file keeps the page size it was created with.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // In-memory databases answer "memory"; that is fine.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        // Every write touches the table and up to ten index b-trees; the
        // default 2 MiB page cache re-reads their pages from the file
        // cache at every batch of a bulk import once a table has some
        // 10 000 rows.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
    } else {
        conn.pragma_update(None, "query_only", "ON")?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStore {
    /// The consumer's pending events, of one company or of all.
    async fn pending_events(
        &self,
        consumer: &str,
        company_id: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let company = company_id.map(|c| id_text(&c));
        self.read(|conn| {
            collect(
                conn,
                "SELECT seq, company_id, event_type, table_name, record_id, payload, at FROM outbox \
                 WHERE seq > COALESCE((SELECT seq FROM outbox_cursors WHERE consumer = ?1), 0) \
                 AND (?2 IS NULL OR company_id = ?2) ORDER BY seq LIMIT ?3",
                params![consumer, company, limit],
                decode_event,
            )
        })
    }

    /// Opens (creating it if needed) the database file at `path` and brings
    /// its schema up to [`SCHEMA_VERSION`].
    ///
    /// Fails with [`OpenError::NewerSchema`] when the file was written by a
    /// newer build.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        let path = path.as_ref();
        let location = path.display().to_string();
        let open_err = |e: rusqlite::Error| OpenError::Open {
            path: location.clone(),
            source: Box::new(e),
        };
        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        configure(&writer, true).map_err(open_err)?;
        migrate::run(&mut writer, &location, migrate::MIGRATIONS)?;
        // Before the readers open, so they plan with them. Only a planning
        // aid: a read-only file or a long-busy lock is no reason not to open.
        // The writer reads too (change sets' guards): it loads them now,
        // when some were added (else it read them with the schema).
        if stats::write(&mut writer).is_ok_and(|added| added > 0) {
            let _ = writer.execute_batch("ANALYZE sqlite_schema");
        }
        let readers = (0..READ_CONNECTIONS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn, false)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(open_err)?;
        let checkpointer = checkpoint::Checkpointer::start(path).map_err(open_err)?;
        let thread = writer::WriterThread::start().map_err(|e| open_err(thread_error(e)))?;
        Ok(SqliteStore {
            location,
            thread,
            writer: Arc::new(writer::Writer::new(writer, Some(checkpointer))),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Opens a fresh, private in-memory database (one connection, gone when
    /// the store is dropped). Meant for tests and throw-away sessions.
    pub fn open_in_memory() -> Result<SqliteStore, OpenError> {
        let location = ":memory:".to_owned();
        let open_err = |e: rusqlite::Error| OpenError::Open {
            path: location.clone(),
            source: Box::new(e),
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn, true).map_err(open_err)?;
        migrate::run(&mut conn, &location, migrate::MIGRATIONS)?;
        if stats::write(&mut conn).is_ok() {
            // This connection also reads: it loads the statistics now.
            let _ = conn.execute_batch("ANALYZE sqlite_schema");
        }
        let thread = writer::WriterThread::start().map_err(|e| open_err(thread_error(e)))?;
        Ok(SqliteStore {
            location,
            thread,
            writer: Arc::new(writer::Writer::new(conn, None)),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a read connection: a free one of the pool, else waits for
    /// one; the writer when there is no pool (in-memory).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let n = self.readers.len();
        if n == 0 {
            return f(&self.writer.lock());
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(guard) => return f(&guard),
                Err(TryLockError::Poisoned(p)) => return f(&p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        f(&lock(&self.readers[start]))
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer and commits when
    /// it succeeds; rolls back otherwise.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.writer.write(f)
    }
}

/// A thread that could not be started, as an open failure.
pub(crate) fn thread_error(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// The JSON texts of a change set's audit changes (event payloads are
/// already JSON text).
struct JsonTexts {
    audit: Vec<String>,
}

impl JsonTexts {
    fn of(changes: &ChangeSet) -> Result<JsonTexts, StoreError> {
        Ok(JsonTexts {
            audit: changes
                .audit
                .iter()
                .map(|a| {
                    serde_json::to_string(&a.changes)
                        .map_err(|e| invalid(format!("audit changes: {e}")))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Writes a change set's operations, audit entries and events in `tx`.
fn apply_all(
    tx: &rusqlite::Transaction<'_>,
    changes: &ChangeSet,
    json: JsonTexts,
) -> Result<(), StoreError> {
    // The single writer holds the database: no other change set can take a
    // guarded value between this check and the commit.
    // Each guard is a count of its select's rows: no order, so the filter's
    // index finds them (a bulk import's guard looks for a thousand values).
    for guard in &changes.guards {
        let count = query::compile_count(&guard.select)?;
        let taken: i64 = tx
            .prepare_cached(&count.text)
            .and_then(|mut st| st.query_row(params_from_iter(&count.params), |r| r.get(0)))
            .map_err(error::backend)?;
        if taken > 0 {
            return Err(guard.refusal());
        }
    }
    let mut rest = changes.ops.as_slice();
    while let Some(op) = rest.first() {
        // Inserts go by runs (one insert is a run of one).
        let run = match crm_core::store::insert_run_len(rest) {
            0 => {
                apply_op(tx, op)?;
                1
            }
            n => {
                insert_run(tx, &rest[..n])?;
                n
            }
        };
        rest = &rest[run..];
    }
    for (a, text) in changes.audit.iter().zip(json.audit) {
        insert_audit(tx, a, text)?;
    }
    for e in &changes.events {
        insert_event(tx, e)?;
    }
    Ok(())
}

fn column(table: Table, name: &str) -> Result<ColumnDef, StoreError> {
    table
        .column(name)
        .ok_or_else(|| invalid(format!("{table} has no column {name:?}")))
}

/// The columns an insert sets, checked against the schema, and its SQL.
fn insert_sql(
    table: Table,
    values: &[(&'static str, Value)],
) -> Result<(Vec<ColumnDef>, String), StoreError> {
    if values.is_empty() {
        return Err(invalid(format!("insert into {table} without values")));
    }
    let mut cols: Vec<ColumnDef> = Vec::with_capacity(values.len());
    for (name, _) in values {
        let col = column(table, name)?;
        if cols.iter().any(|c| c.name == col.name) {
            return Err(invalid(format!("insert into {table} sets {name} twice")));
        }
        cols.push(col);
    }
    let mut sql = String::with_capacity(32 + cols.len() * 24);
    sql.push_str("INSERT INTO \"");
    sql.push_str(table.name());
    sql.push_str("\" (");
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('"');
        sql.push_str(c.name);
        sql.push('"');
    }
    sql.push_str(") VALUES (");
    for i in 0..cols.len() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    Ok((cols, sql))
}

/// A run of inserts as [`crm_core::store::insert_run_len`] finds them: the
/// columns checked and the statement prepared once, then each row bound and
/// executed.
fn insert_run(tx: &rusqlite::Transaction<'_>, ops: &[Op]) -> Result<(), StoreError> {
    debug_assert_eq!(
        crm_core::store::insert_run_len(ops),
        ops.len(),
        "not one run of inserts"
    );
    let Some(Op::Insert { table, values }) = ops.first() else {
        return Ok(());
    };
    let table = *table;
    let (cols, sql) = insert_sql(table, values)?;
    let mut st = tx
        .prepare_cached(&sql)
        .map_err(|e| error::write(table, e))?;
    let mut params = Vec::with_capacity(cols.len());
    for op in ops {
        if let Op::Insert { values, .. } = op {
            for (col, (_, v)) in cols.iter().zip(values) {
                params.push(codec::encode_ref(table, col, v)?);
            }
            st.execute(params_from_iter(params.drain(..)))
                .map_err(|e| error::write(table, e))?;
        }
    }
    Ok(())
}

/// An update or delete (inserts go through [`insert_run`]).
fn apply_op(tx: &rusqlite::Transaction<'_>, op: &Op) -> Result<(), StoreError> {
    match op {
        Op::Insert { .. } => insert_run(tx, std::slice::from_ref(op))?,
        Op::Update {
            table,
            id,
            expected_version,
            values,
        } => {
            let table = *table;
            let mut sets = Vec::with_capacity(values.len() + 1);
            let mut params = Vec::with_capacity(values.len() + 3);
            for (name, v) in values {
                let col = column(table, name)?;
                if col.name == "version" {
                    continue;
                }
                sets.push(format!("\"{}\" = ?", col.name));
                params.push(codec::encode(table, &col, v)?);
            }
            sets.push("\"version\" = ?".to_owned());
            params.push(Sql::Integer(expected_version.saturating_add(1)));
            params.push(Sql::Text(id_text(id)));
            params.push(Sql::Integer(*expected_version));
            let sql = format!(
                "UPDATE \"{}\" SET {} WHERE \"id\" = ? AND \"version\" = ?",
                table.name(),
                sets.join(", ")
            );
            let changed = tx
                .prepare_cached(&sql)
                .and_then(|mut st| st.execute(params_from_iter(params)))
                .map_err(|e| error::write(table, e))?;
            if changed == 0 {
                let actual: Option<i64> = tx
                    .prepare_cached(&format!(
                        "SELECT \"version\" FROM \"{}\" WHERE \"id\" = ?",
                        table.name()
                    ))
                    .and_then(|mut st| st.query_row([id_text(id)], |r| r.get(0)).optional())
                    .map_err(error::backend)?;
                return Err(match actual {
                    None => StoreError::NotFound { table, id: *id },
                    Some(actual) => StoreError::Conflict {
                        table,
                        id: *id,
                        expected: *expected_version,
                        actual,
                    },
                });
            }
        }
        Op::Delete { table, id } => {
            let table = *table;
            let changed = tx
                .prepare_cached(&format!(
                    "DELETE FROM \"{}\" WHERE \"id\" = ?",
                    table.name()
                ))
                .and_then(|mut st| st.execute([id_text(id)]))
                .map_err(|e| error::write(table, e))?;
            if changed == 0 {
                return Err(StoreError::NotFound { table, id: *id });
            }
        }
    }
    Ok(())
}

fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    a: &AuditEntry,
    changes: String,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit_log (company_id, table_name, record_id, actor_id, at, action, changes) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut st| {
        st.execute(params![
            id_text(&a.company_id),
            a.table.name(),
            id_text(&a.record_id),
            a.actor_id.as_ref().map(id_text),
            timestamp_text(&a.at),
            a.action,
            changes,
        ])
    })
    .map_err(error::backend)?;
    Ok(())
}

fn insert_event(tx: &rusqlite::Transaction<'_>, e: &NewEvent) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO outbox (company_id, event_type, table_name, record_id, payload, at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut st| {
        st.execute(params![
            id_text(&e.company_id),
            e.event_type,
            e.table.name(),
            id_text(&e.record_id),
            e.payload.as_str(),
            timestamp_text(&e.at),
        ])
    })
    .map_err(error::backend)?;
    Ok(())
}

/// Decodes column `i` of a row of one of the store's own tables (audit log,
/// outbox) with the given type.
fn decode_at(
    table: &str,
    name: &'static str,
    ty: ColType,
    row: &rusqlite::Row<'_>,
    i: usize,
) -> Result<Value, StoreError> {
    let col = ColumnDef {
        name,
        ty,
        nullable: true,
    };
    decode(table, &col, row.get_ref(i).map_err(error::backend)?)
}

fn decode_id(
    table: &str,
    name: &'static str,
    row: &rusqlite::Row<'_>,
    i: usize,
) -> Result<Option<Uuid>, StoreError> {
    Ok(decode_at(table, name, ColType::Id, row, i)?.as_id())
}

fn required<T>(table: &str, name: &str, v: Option<T>) -> Result<T, StoreError> {
    v.ok_or_else(|| invalid(format!("{table}.{name}: unexpected NULL")))
}

fn decode_table(table: &str, row: &rusqlite::Row<'_>, i: usize) -> Result<Table, StoreError> {
    let name = decode_at(table, "table_name", ColType::Text, row, i)?;
    let name = required(table, "table_name", name.as_text().map(str::to_owned))?;
    Table::from_name(&name)
        .ok_or_else(|| invalid(format!("{table}.table_name: unknown table {name:?}")))
}

fn decode_json(
    table: &str,
    name: &'static str,
    row: &rusqlite::Row<'_>,
    i: usize,
) -> Result<serde_json::Value, StoreError> {
    let v = decode_at(table, name, ColType::Json, row, i)?;
    required(table, name, v.as_json().cloned())
}

fn decode_audit(row: &rusqlite::Row<'_>) -> Result<AuditEntry, StoreError> {
    const T: &str = "audit_log";
    let at = decode_at(T, "at", ColType::Timestamp, row, 4)?;
    let action = decode_at(T, "action", ColType::Text, row, 5)?;
    Ok(AuditEntry {
        company_id: required(T, "company_id", decode_id(T, "company_id", row, 0)?)?,
        table: decode_table(T, row, 1)?,
        record_id: required(T, "record_id", decode_id(T, "record_id", row, 2)?)?,
        actor_id: decode_id(T, "actor_id", row, 3)?,
        at: required(T, "at", at.as_timestamp())?,
        action: required(T, "action", action.as_text().map(str::to_owned))?,
        changes: serde_json::from_value::<Vec<FieldChange>>(decode_json(T, "changes", row, 6)?)
            .map_err(|e| invalid(format!("{T}.changes: cannot decode stored value: {e}")))?,
    })
}

fn decode_event(row: &rusqlite::Row<'_>) -> Result<OutboxEvent, StoreError> {
    const T: &str = "outbox";
    let seq = decode_at(T, "seq", ColType::Int, row, 0)?;
    let event_type = decode_at(T, "event_type", ColType::Text, row, 2)?;
    let at = decode_at(T, "at", ColType::Timestamp, row, 6)?;
    Ok(OutboxEvent {
        seq: required(T, "seq", seq.as_int())?,
        event: NewEvent {
            company_id: required(T, "company_id", decode_id(T, "company_id", row, 1)?)?,
            event_type: required(T, "event_type", event_type.as_text().map(str::to_owned))?,
            table: decode_table(T, row, 3)?,
            record_id: required(T, "record_id", decode_id(T, "record_id", row, 4)?)?,
            // Kept as the stored text, checked to be JSON.
            payload: Payload::parse(row.get(5).map_err(error::backend)?)
                .map_err(|e| invalid(format!("{T}.payload: {e}")))?,
            at: required(T, "at", at.as_timestamp())?,
        },
    })
}

/// Runs a prepared query and decodes every row with `f`.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(error::backend)?;
    let mut rows = st.query(params).map_err(error::backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(error::backend)? {
        out.push(f(row)?);
    }
    Ok(out)
}

fn run_select(conn: &Connection, select: &Select) -> Result<Selected, StoreError> {
    let compiled = query::compile_select(select)?;
    // One read transaction, so the page and the total see the same data.
    let tx = conn.unchecked_transaction().map_err(error::backend)?;
    let mut rows = if select.counts_only() {
        Vec::new()
    } else {
        collect(
            &tx,
            &compiled.page.text,
            params_from_iter(&compiled.page.params),
            |r| decode_row(select.table, r),
        )?
    };
    let total = match &compiled.count {
        Some(count) => {
            let n: i64 = tx
                .prepare_cached(&count.text)
                .and_then(|mut st| st.query_row(params_from_iter(&count.params), |r| r.get(0)))
                .map_err(error::backend)?;
            Some(u64::try_from(n).unwrap_or(0))
        }
        None => None,
    };
    tx.finish().map_err(error::backend)?;
    let mut has_more = match (&select.paging, total) {
        (crm_core::store::Paging::Offset { offset, .. }, Some(total)) if select.counts_only() => {
            total > *offset
        }
        _ => false,
    };
    if let Some(limit) = compiled.limit {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if rows.len() > limit {
            rows.truncate(limit);
            has_more = true;
        }
    }
    Ok(Selected {
        rows,
        has_more,
        total,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let json = JsonTexts::of(changes)?;
        self.write(|tx| apply_all(tx, changes, json))
    }

    async fn apply_owned(&self, changes: ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        // The JSON texts are made here and the change set comes back to be
        // dropped here: the writer thread only writes (and freeing memory
        // on the thread that allocated it is the allocator's fast path).
        let json = JsonTexts::of(&changes)?;
        let writer = Arc::clone(&self.writer);
        let (result, changes) = self
            .thread
            .run(move || Ok((writer.write(|tx| apply_all(tx, &changes, json)), changes)))
            .await?;
        drop(changes);
        result
    }

    async fn get(&self, table: Table, id: Uuid) -> Result<Option<Row>, StoreError> {
        let sql = format!(
            "SELECT {} FROM \"{}\" t WHERE t.\"id\" = ?",
            select_list(table, "t"),
            table.name()
        );
        self.read(|conn| {
            let mut rows = collect(conn, &sql, [id_text(&id)], |r| decode_row(table, r))?;
            Ok(rows.pop())
        })
    }

    async fn select(&self, select: &Select) -> Result<Selected, StoreError> {
        self.read(|conn| run_select(conn, select))
    }

    async fn next_sequence(&self, company: Uuid, key: &str) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO sequences (company_id, key, value) VALUES (?, ?, 1) \
                 ON CONFLICT (company_id, key) DO UPDATE SET value = value + 1 RETURNING value",
            )
            .and_then(|mut st| st.query_row(params![id_text(&company), key], |r| r.get(0)))
            .map_err(error::backend)
        })
    }

    async fn reserve_sequence(
        &self,
        company: Uuid,
        key: &str,
        count: u32,
    ) -> Result<Vec<i64>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let n = i64::from(count);
        let last: i64 = self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO sequences (company_id, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (company_id, key) DO UPDATE SET value = value + ?3 RETURNING value",
            )
            .and_then(|mut st| st.query_row(params![id_text(&company), key, n], |r| r.get(0)))
            .map_err(error::backend)
        })?;
        Ok((last - n + 1..=last).collect())
    }

    async fn history(&self, table: Table, record_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|conn| {
            collect(
                conn,
                "SELECT company_id, table_name, record_id, actor_id, at, action, changes \
                 FROM audit_log WHERE table_name = ? AND record_id = ? ORDER BY seq",
                params![table.name(), id_text(&record_id)],
                decode_audit,
            )
        })
    }

    async fn outbox_pending(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.pending_events(consumer, None, limit).await
    }

    async fn outbox_pending_of(
        &self,
        consumer: &str,
        company_id: Uuid,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.pending_events(consumer, Some(company_id), limit).await
    }

    async fn outbox_last_seq(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| r.get(0))
                .map_err(error::backend)
        })
    }

    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO outbox_cursors (consumer, seq) VALUES (?, ?) \
                 ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut st| st.execute(params![consumer, seq]))
            .map_err(error::backend)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migrations create exactly the columns the schema description
    /// lists, with matching types and nullability.
    #[test]
    fn schema_matches_the_core_description() {
        let store = SqliteStore::open_in_memory().expect("open");
        let conn = store.writer.lock();
        for table in Table::ALL {
            let mut st = conn
                .prepare(&format!("PRAGMA table_info(\"{}\")", table.name()))
                .expect("prepare");
            let mut found: Vec<(String, String, bool, bool)> = st
                .query_map([], |r| {
                    Ok((
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, i64>(3)? == 1,
                        r.get::<_, i64>(5)? > 0,
                    ))
                })
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            let mut expected: Vec<(String, String, bool, bool)> = table
                .columns()
                .iter()
                .map(|c| {
                    let ty = match c.ty {
                        ColType::Int | ColType::Bool => "INTEGER",
                        _ => "TEXT",
                    };
                    (
                        c.name.to_owned(),
                        ty.to_owned(),
                        !c.nullable,
                        c.name == "id",
                    )
                })
                .collect();
            found.sort();
            expected.sort();
            assert_eq!(found, expected, "{table}");
        }
    }

    fn company_insert(id: Uuid, code: &str) -> ChangeSet {
        let now: chrono::DateTime<chrono::Utc> = "2026-03-01T08:00:00Z".parse().expect("fixed");
        ChangeSet {
            ops: vec![Op::Insert {
                table: Table::Companies,
                values: vec![
                    ("id", Value::Id(id)),
                    ("company_id", Value::Id(id)),
                    ("version", Value::Int(1)),
                    ("created_at", Value::Timestamp(now)),
                    ("updated_at", Value::Timestamp(now)),
                    ("name", Value::from("甲")),
                    ("code", Value::from(code)),
                ],
            }],
            ..ChangeSet::default()
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// `apply_owned` hands its change set to the writer thread: writes run
    /// in the order they were handed over, one abandoned by its caller
    /// after the hand-over still completes, and a failing one writes
    /// nothing and says why.
    #[test]
    fn owned_writes_run_in_order_on_the_writer_thread() {
        use std::future::Future;
        let store = SqliteStore::open_in_memory().expect("open");
        let mut first = Box::pin(store.apply_owned(company_insert(Uuid::from_u128(1), "A")));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The first poll hands the write over; then its caller gives up.
        let _ = first.as_mut().poll(&mut cx);
        drop(first);
        block_on(store.apply_owned(company_insert(Uuid::from_u128(2), "B"))).expect("second");
        for id in [1, 2] {
            assert!(
                block_on(store.get(Table::Companies, Uuid::from_u128(id)))
                    .expect("get")
                    .is_some(),
                "company {id} written"
            );
        }
        let mut clash = company_insert(Uuid::from_u128(3), "C");
        clash
            .ops
            .extend(company_insert(Uuid::from_u128(1), "A").ops);
        match block_on(store.apply_owned(clash)) {
            Err(StoreError::Unique { .. }) => {}
            other => panic!("expected Unique, got {other:?}"),
        }
        assert!(
            block_on(store.get(Table::Companies, Uuid::from_u128(3)))
                .expect("get")
                .is_none(),
            "nothing of the failed change set is written"
        );
    }

    /// With the store's statistics the planner reads the probes of the
    /// duplicate checks through their own indexes, however few or many rows
    /// there are, and still pages exports in id order.
    #[test]
    fn probes_plan_through_their_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("crm.db")).expect("open");
        let plan = |sql: &str| -> String {
            store
                .read(|c| {
                    c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .and_then(|mut st| {
                            st.query_map([], |r| r.get::<_, String>(3))?
                                .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .map(|rows| rows.join("; "))
                        .map_err(error::backend)
                })
                .expect("plan")
        };
        for (sql, index) in [
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' AND t.name_key = 'n' \
                 AND t.deleted_at IS NULL ORDER BY t.id LIMIT 1",
                "customers_by_name_key (name_key=?)",
            ),
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' AND t.uscc = 'u' \
                 AND t.deleted_at IS NULL ORDER BY t.id LIMIT 1",
                "customers_by_uscc (uscc=?)",
            ),
            // The customers due for a follow-up today (0010).
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' \
                 AND t.next_follow_up = '2026-12-06' AND t.deleted_at IS NULL \
                 ORDER BY t.next_follow_up, t.id LIMIT 50",
                "customers_by_next_follow_up (next_follow_up=?)",
            ),
            // The import's holder probe of e-mail keys (0009).
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' \
                 AND t.email_key IN ('a@x.cn', 'b@x.cn') AND t.deleted_at IS NULL \
                 ORDER BY t.email_key",
                "customers_by_email_key (email_key=?)",
            ),
            (
                "SELECT t.id FROM customer_keys t WHERE t.company_id = 'c' \
                 AND t.customer_id IN ('a', 'b') ORDER BY t.id",
                "customer_keys_customer",
            ),
            (
                "SELECT t.id FROM customer_keys t WHERE t.company_id = 'c' AND t.kind = 'phone' \
                 AND t.key IN ('1', '2') ORDER BY t.id",
                "customer_keys_by_key (key=? AND kind=?)",
            ),
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' AND t.id > 'x' \
                 AND t.deleted_at IS NULL ORDER BY t.id LIMIT 1000",
                "customers_company_id_id",
            ),
            // What a user and a department hold in one place (pool caps).
            (
                "SELECT COUNT(*) FROM customers t WHERE t.company_id = 'c' \
                 AND t.deleted_at IS NULL AND t.archived_at IS NULL \
                 AND (t.owner_id = 'u' AND t.place = 'private')",
                "COVERING INDEX customers_owner_place (company_id=? AND owner_id=? AND place=? \
                 AND deleted_at=? AND archived_at=?)",
            ),
            (
                "SELECT COUNT(*) FROM customers t WHERE t.company_id = 'c' \
                 AND t.deleted_at IS NULL AND t.archived_at IS NULL \
                 AND (t.department_id = 'd' AND t.place = 'deal')",
                "COVERING INDEX customers_department_place (company_id=? AND department_id=? \
                 AND place=? AND deleted_at=? AND archived_at=?)",
            ),
            // A place's customers, newest id first or by id (closed deals
            // are few: read through the place, not the company in id order).
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' \
                 AND t.deleted_at IS NULL AND t.archived_at IS NULL AND t.place = 'deal' \
                 ORDER BY t.id LIMIT 50",
                "customers_place (company_id=? AND place=?)",
            ),
            // One user's share of one record (share, unshare, access).
            (
                "SELECT t.id FROM shares t WHERE t.company_id = 'c' AND t.deleted_at IS NULL \
                 AND t.entity = 'customers' AND t.record_id = 'r' AND t.user_id = 'u' \
                 ORDER BY t.id",
                "shares_user (user_id=? AND entity=? AND record_id=?)",
            ),
            // A pool's public area.
            (
                "SELECT t.id FROM customers t WHERE t.company_id = 'c' AND t.place = 'public' \
                 AND t.pool_id = 'p' AND t.deleted_at IS NULL ORDER BY t.id LIMIT 50",
                "customers_place (company_id=? AND place=? AND pool_id=?)",
            ),
        ] {
            let p = plan(sql);
            assert!(p.contains(index), "{sql}: {p}");
            // The writer plans the same: it runs change sets' guards, the
            // duplicate probes again inside the write transaction.
            let on_writer = {
                let conn = store.writer.lock();
                let mut st = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .expect("prepare");
                st.query_map([], |r| r.get::<_, String>(3))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .expect("plan")
                    .join("; ")
            };
            assert_eq!(on_writer, p, "{sql}");
        }
        // Every index has its row.
        let missing: i64 = store
            .read(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM sqlite_schema s WHERE s.type = 'index' \
                     AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 t WHERE t.idx = s.name)",
                    [],
                    |r| r.get(0),
                )
                .map_err(error::backend)
            })
            .expect("count");
        assert_eq!(missing, 0);
    }

    #[test]
    fn in_memory_stores_are_independent() {
        let (a, b) = (
            SqliteStore::open_in_memory().expect("a"),
            SqliteStore::open_in_memory().expect("b"),
        );
        block_on(a.apply(&company_insert(Uuid::from_u128(1), "A"))).expect("insert");
        assert!(
            block_on(a.get(Table::Companies, Uuid::from_u128(1)))
                .expect("get")
                .is_some()
        );
        assert!(
            block_on(b.get(Table::Companies, Uuid::from_u128(1)))
                .expect("get")
                .is_none()
        );
    }

    #[test]
    fn value_of_the_wrong_type_is_a_backend_error_naming_the_column() {
        let store = SqliteStore::open_in_memory().expect("open");
        let mut changes = company_insert(Uuid::from_u128(1), "A");
        if let Op::Insert { values, .. } = &mut changes.ops[0] {
            values.push(("deleted_at", Value::from("yesterday")));
        }
        match block_on(store.apply(&changes)) {
            Err(e @ StoreError::Backend { .. }) => {
                assert!(e.to_string().contains("companies.deleted_at"), "{e}")
            }
            other => panic!("expected Backend, got {other:?}"),
        }
    }

    #[test]
    fn undecodable_stored_value_is_a_backend_error_not_a_panic() {
        let store = SqliteStore::open_in_memory().expect("open");
        let id = Uuid::from_u128(1);
        block_on(store.apply(&company_insert(id, "A"))).expect("insert");
        store
            .writer
            .lock()
            .execute("UPDATE companies SET updated_at = 'last tuesday'", [])
            .expect("corrupt");
        match block_on(store.get(Table::Companies, id)) {
            Err(e @ StoreError::Backend { .. }) => {
                assert!(e.to_string().contains("companies.updated_at"), "{e}")
            }
            other => panic!("expected Backend, got {other:?}"),
        }
    }
}
