#![doc = include_str!("../README.md")]

mod migrate;
mod select;
mod sql;
mod stats;

use async_trait::async_trait;
use crm_core::schema::Table;
use crm_core::store::{
    AuditEntry, ChangeSet, FieldChange, NewEvent, Op, OutboxEvent, Paging, Payload, Row, Select,
    Selected, Store, StoreError,
};
use sql::{Sql, column, column_list, decode_row, ident, invalid};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Executor, Row as _};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The name this backend reports in [`Store::backend`] and in errors.
const BACKEND: &str = "postgres";

/// The advisory lock class of guarded values (`Guard::keys`); the second key
/// is the schema's hash with its lowest bits replaced by the key's (see
/// [`GUARD_LOCKS`]), so that schemas do not wait for each other.
const GUARD_LOCK_CLASS: i32 = 0x4352_4d47; // "CRMG"

/// How many advisory locks guarded keys are hashed into (a power of two):
/// a change set holds at most this many, whatever it guards; two writers
/// of different keys that share a lock only wait for each other.
const GUARD_LOCKS: i32 = 512;

/// The advisory lock class that serialises outbox writers; the second key is
/// the schema's hash, so different schemas do not wait for each other.
const OUTBOX_LOCK_CLASS: i32 = 0x4352_4d4f; // "CRMO"

/// How to open a [`PgStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// The PostgreSQL schema the CRM's tables live in, so that the CRM can
    /// share a host application's database. Must match `[a-z_][a-z0-9_]*`,
    /// be at most 63 bytes and not start with `pg_`. Default `crm`.
    pub schema: String,
    /// The maximum number of pooled connections (used by [`PgStore::connect`]
    /// only). Default 10.
    pub max_connections: u32,
    /// How often a change set is retried after a serialization failure
    /// (`40001`) or a deadlock (`40P01`) before the error is reported.
    /// Default 5.
    pub max_retries: u32,
    /// How long to wait for a connection (connecting, or from a busy pool)
    /// before giving up; used by [`PgStore::connect`] only. Default 30 s.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: "crm".to_string(),
            max_connections: 10,
            max_retries: 5,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a [`PgStore`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// The schema name is not a plain lower-case identifier.
    #[error(
        "invalid schema name {name:?}: expected [a-z_][a-z0-9_]*, at most 63 bytes, not starting with pg_"
    )]
    InvalidSchemaName {
        /// The refused name.
        name: String,
    },
    /// A migration failed; nothing of it was applied.
    #[error("migration {version} of schema {schema} failed")]
    Migrate {
        /// The number of the migration.
        version: i64,
        /// The schema.
        schema: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema was migrated by a newer build than this one.
    #[error("schema {schema} is at version {found}, newer than this build supports ({supported})")]
    DatabaseTooNew {
        /// The schema.
        schema: String,
        /// The highest version recorded in the schema.
        found: i64,
        /// The highest version this build knows.
        supported: i64,
    },
}

/// How long the `ANALYZE` after a bulk write waits for a table lock.
pub const ANALYZE_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// A [`Store`] on PostgreSQL (15 or newer), inside one schema of a database.
///
/// Every statement names its tables schema-qualified (`"crm"."customers"`),
/// so the store works on any pool whatever its `search_path`; pools made by
/// [`PgStore::connect`] additionally set `search_path` to the schema on every
/// connection for the host's convenience.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The schema name, validated.
    schema: String,
    /// The schema name quoted for SQL text.
    quoted: String,
    max_retries: u32,
    /// Rows inserted per table since its statistics were taken, shared by
    /// clones; see [`stats`].
    growth: Arc<stats::Growth>,
}

/// Checks a schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes, no `pg_` prefix.
fn validate_schema(name: &str) -> Result<(), OpenError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
        && !name.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(OpenError::InvalidSchemaName {
            name: name.to_string(),
        })
    }
}

impl PgStore {
    /// The consumer's pending events, of one company or of all.
    async fn pending_events(
        &self,
        consumer: &str,
        company_id: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, company_id, event_type, table_name, record_id, payload::text AS payload, at \
             FROM {} \
             WHERE seq > COALESCE((SELECT seq FROM {} WHERE consumer = $1), 0) \
             AND ($3::uuid IS NULL OR company_id = $3) \
             ORDER BY seq LIMIT $2",
            self.table("outbox"),
            self.table("outbox_cursors")
        )))
        .bind(consumer)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEvent {
                    seq: r.try_get("seq").map_err(backend)?,
                    event: NewEvent {
                        company_id: r.try_get("company_id").map_err(backend)?,
                        event_type: r.try_get("event_type").map_err(backend)?,
                        table: stored_table(r)?,
                        record_id: r.try_get("record_id").map_err(backend)?,
                        // jsonb's text: JSON, checked all the same.
                        payload: Payload::parse(r.try_get("payload").map_err(backend)?)
                            .map_err(|e| invalid(format!("outbox.payload: {e}")))?,
                        at: r.try_get("at").map_err(backend)?,
                    },
                })
            })
            .collect()
    }

    /// Connects to `url` (e.g. `postgres://user:pw@host/db`), makes a pool
    /// whose connections use the schema as `search_path`, creates the schema
    /// if needed and applies pending migrations.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, OpenError> {
        validate_schema(&options.schema)?;
        let set_path = format!("SET search_path TO {}", ident(&options.schema));
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(AssertSqlSafe(set_path))).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(OpenError::Connect)?;
        PgStore::from_pool(pool, options).await
    }

    /// Whether `schema` exists in the database at `url` (a store was made
    /// there), without making it: [`PgStore::connect`] creates a schema it
    /// does not find, which a mistyped name should not do.
    pub async fn schema_exists(url: &str, schema: &str) -> Result<bool, OpenError> {
        use sqlx::Connection as _;
        validate_schema(schema)?;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(OpenError::Connect)?;
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut conn)
                .await
                .map_err(OpenError::Connect)?;
        let _ = conn.close().await;
        Ok(found)
    }

    /// Uses a pool the host already has. Statements are schema-qualified, so
    /// the pool's `search_path` does not matter and is left alone;
    /// `max_connections` is ignored. Creates the schema if needed and applies
    /// pending migrations.
    pub async fn from_pool(pool: PgPool, options: PgOptions) -> Result<PgStore, OpenError> {
        validate_schema(&options.schema)?;
        migrate::migrate(&pool, &options.schema).await?;
        Ok(PgStore {
            quoted: ident(&options.schema),
            schema: options.schema,
            pool,
            max_retries: options.max_retries,
            growth: Arc::default(),
        })
    }

    /// The pool, for hosts that want to run their own statements.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema the CRM's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The newest migration version this build knows.
    pub fn latest_migration() -> i64 {
        migrate::LATEST
    }

    /// Drops the schema with everything in it. Meant for tests.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.quoted
        )))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// `"schema"."table"`.
    fn table(&self, table: &str) -> String {
        format!("{}.{}", self.quoted, ident(table))
    }

    /// A transaction at READ COMMITTED, whatever the host database's default
    /// isolation is: an upsert of a counter row (a sequence, a consumer's
    /// cursor) then waits for a concurrent one and adds to its result,
    /// where REPEATABLE READ or SERIALIZABLE would fail it as a
    /// serialisation conflict.
    async fn read_committed(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(tx)
    }

    /// Adds `n` to a company's sequence (created at `n`), returning its new
    /// value, in a transaction of its own at READ COMMITTED.
    async fn bump_sequence(&self, company: Uuid, key: &str, n: i64) -> Result<i64, StoreError> {
        let t = self.table("sequences");
        let mut tx = self.read_committed().await?;
        let last: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {t} AS q (company_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (company_id, key) DO UPDATE SET value = q.value + $3 \
             RETURNING value"
        )))
        .bind(company)
        .bind(key)
        .bind(n)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(last)
    }

    /// One attempt at applying a change set.
    async fn try_apply(&self, changes: &ChangeSet) -> Result<(), Failure> {
        let mut tx = self.pool.begin().await.map_err(|e| classify(e, None))?;
        if !changes.guards.is_empty() {
            // A guard must see what was committed before it, whatever the
            // host database's default isolation is.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, None))?;
            // The guarded keys, hashed into GUARD_LOCKS locks of this
            // schema's own (a bulk import's batch guards thousands of
            // values; PostgreSQL's lock table is shared and bounded), taken
            // in ascending order (no deadlock): a writer guarding a common
            // key waits here until the other commits, and then (each
            // statement sees what was committed before it) finds the value
            // taken. While an import's batch is written, most other guarded
            // writes of the schema wait for it (the length of one batch's
            // transaction).
            let keys: Vec<&str> = changes
                .guards
                .iter()
                .flat_map(|g| &g.keys)
                .map(String::as_str)
                .collect();
            sqlx::query(
                "SELECT pg_advisory_xact_lock($1, b) FROM \
                 (SELECT DISTINCT (hashtext($4) & ~$3) | (hashtext(k) & $3) AS b \
                  FROM unnest($2::text[]) AS k) AS s ORDER BY b",
            )
            .bind(GUARD_LOCK_CLASS)
            .bind(&keys)
            .bind(GUARD_LOCKS - 1)
            .bind(&self.schema)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, None))?;
            // The rows this change set deletes are locked before the guards
            // count: a writer inserting a row that refers to one of them
            // (a contact of a customer an import's undo removes) holds a
            // key-share lock on it until it commits, so the guard then sees
            // that row instead of the delete cascading it away; one that
            // comes later waits for this transaction and finds the row
            // gone. In id order, so two such change sets cannot deadlock.
            let mut deleted: BTreeMap<Table, Vec<Uuid>> = BTreeMap::new();
            for op in &changes.ops {
                if let Op::Delete { table, id } = op {
                    deleted.entry(*table).or_default().push(*id);
                }
            }
            for (table, ids) in deleted {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT 1 FROM {} WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    self.table(table.name())
                )))
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, Some(table)))?;
            }
            // Each guard is a count of its select's rows: without the page's
            // `ORDER BY id LIMIT 1`, which made the planner walk the primary
            // key in search of a value that is not there (a bulk import's
            // guard looks for a thousand), the filter's index finds them.
            for guard in &changes.guards {
                let sel = &guard.select;
                let mut count = Sql::new();
                select::count_query(&mut count, &self.quoted, sel).map_err(Failure::Store)?;
                let (text, args) = count.finish()?;
                let taken: i64 = sqlx::query_scalar_with(AssertSqlSafe(text), args)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| classify(e, Some(sel.table)))?;
                if taken > 0 {
                    return Err(Failure::Store(guard.refusal()));
                }
            }
        }
        let mut i = 0;
        while i < changes.ops.len() {
            // Consecutive inserts into the same table with the same columns
            // (a bulk write, e.g. duplicate keys or an import batch) go out as
            // one multi-row INSERT; everything else one statement per op.
            let run = crm_core::store::insert_run_len(&changes.ops[i..]);
            if run > 1 {
                self.insert_rows(&mut tx, &changes.ops[i..i + run]).await?;
                i += run;
            } else {
                self.apply_op(&mut tx, &changes.ops[i]).await?;
                i += 1;
            }
        }
        if !changes.audit.is_empty() {
            // One statement for all audit entries of the change set: a bulk
            // write (an import) would otherwise pay a round trip per entry.
            let mut company = Vec::with_capacity(changes.audit.len());
            let mut table = Vec::with_capacity(changes.audit.len());
            let mut record = Vec::with_capacity(changes.audit.len());
            let mut actor = Vec::with_capacity(changes.audit.len());
            let mut at = Vec::with_capacity(changes.audit.len());
            let mut action = Vec::with_capacity(changes.audit.len());
            let mut diff = Vec::with_capacity(changes.audit.len());
            for a in &changes.audit {
                company.push(a.company_id);
                table.push(a.table.name());
                record.push(a.record_id);
                actor.push(a.actor_id);
                at.push(crate::sql::floor_micros(a.at));
                action.push(a.action.as_str());
                diff.push(
                    serde_json::to_value(&a.changes).map_err(|e| Failure::Store(backend(e)))?,
                );
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (company_id, table_name, record_id, actor_id, at, action, changes) \
                 SELECT c, t, r, a, w, x, d FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], \
                 $4::uuid[], $5::timestamptz[], $6::text[], $7::jsonb[]) \
                 WITH ORDINALITY AS u(c, t, r, a, w, x, d, n) ORDER BY n",
                self.table("audit_log")
            )))
            .bind(company)
            .bind(table)
            .bind(record)
            .bind(actor)
            .bind(at)
            .bind(action)
            .bind(diff)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, None))?;
        }
        if !changes.events.is_empty() {
            // `outbox.seq` comes from a sequence when the row is inserted, but
            // becomes visible only when the transaction commits. Without this
            // lock, writer A could take seq 10, writer B seq 11, B commit, a
            // consumer read and acknowledge 11, and A commit 10 afterwards: the
            // consumer would never see event 10. The transaction-scoped lock,
            // taken as late as possible, makes writers take seqs one
            // transaction at a time and holds until commit, and PostgreSQL
            // makes a commit visible before releasing its locks: seq order is
            // commit order, and a consumer that has seen seq n has seen every
            // event below it.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(OUTBOX_LOCK_CLASS)
                .bind(&self.schema)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, None))?;
            // One statement for all events, inserted in the change set's
            // order (ORDER BY the ordinality), so their seqs follow it.
            let n = changes.events.len();
            let mut company = Vec::with_capacity(n);
            let mut kind = Vec::with_capacity(n);
            let mut table = Vec::with_capacity(n);
            let mut record = Vec::with_capacity(n);
            let mut payload = Vec::with_capacity(n);
            let mut at = Vec::with_capacity(n);
            for e in &changes.events {
                company.push(e.company_id);
                kind.push(e.event_type.as_str());
                table.push(e.table.name());
                record.push(e.record_id);
                payload.push(e.payload.as_str());
                at.push(crate::sql::floor_micros(e.at));
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (company_id, event_type, table_name, record_id, payload, at) \
                 SELECT c, k, t, r, p::jsonb, w FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
                 $4::uuid[], $5::text[], $6::timestamptz[]) \
                 WITH ORDINALITY AS u(c, k, t, r, p, w, n) ORDER BY n",
                self.table("outbox")
            )))
            .bind(company)
            .bind(kind)
            .bind(table)
            .bind(record)
            .bind(payload)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, None))?;
        }
        tx.commit().await.map_err(|e| classify(e, None))?;
        Ok(())
    }

    /// Inserts a run of `Op::Insert`s that share table and columns (see
    /// [`insert_run`]) with multi-row statements, each under the protocol's
    /// limit of 65,535 bound parameters.
    async fn insert_rows(&self, tx: &mut sqlx::PgConnection, ops: &[Op]) -> Result<(), Failure> {
        let Some(Op::Insert { table, values }) = ops.first() else {
            return Ok(());
        };
        let names = values
            .iter()
            .map(|(name, _)| column(*table, name).map(|d| ident(d.name)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Store)?;
        let per_statement = (60_000 / values.len().max(1)).max(1);
        for chunk in ops.chunks(per_statement) {
            let mut sql = Sql::new();
            let mut rows = Vec::with_capacity(chunk.len());
            for op in chunk {
                let Op::Insert { values, .. } = op else {
                    continue;
                };
                let mut params = Vec::with_capacity(values.len());
                for (name, value) in values {
                    let def = column(*table, name).map_err(Failure::Store)?;
                    params.push(sql.col_param(*table, &def, value).map_err(Failure::Store)?);
                }
                rows.push(format!("({})", params.join(", ")));
            }
            sql.push(&format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.table(table.name()),
                names.join(", "),
                rows.join(", ")
            ));
            let (text, args) = sql.finish()?;
            sqlx::query_with(AssertSqlSafe(text), args)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, Some(*table)))?;
        }
        Ok(())
    }

    async fn apply_op(&self, tx: &mut sqlx::PgConnection, op: &Op) -> Result<(), Failure> {
        match op {
            Op::Insert { table, values } => {
                let mut sql = Sql::new();
                let mut names = Vec::with_capacity(values.len());
                let mut params = Vec::with_capacity(values.len());
                for (name, value) in values {
                    let def = column(*table, name).map_err(Failure::Store)?;
                    names.push(ident(def.name));
                    params.push(sql.col_param(*table, &def, value).map_err(Failure::Store)?);
                }
                sql.push(&format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    self.table(table.name()),
                    names.join(", "),
                    params.join(", ")
                ));
                let (text, args) = sql.finish()?;
                sqlx::query_with(AssertSqlSafe(text), args)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| classify(e, Some(*table)))?;
            }
            Op::Update {
                table,
                id,
                expected_version,
                values,
            } => {
                let mut sql = Sql::new();
                let mut sets = Vec::with_capacity(values.len() + 1);
                for (name, value) in values {
                    let def = column(*table, name).map_err(Failure::Store)?;
                    if def.name == "version" {
                        // Always `expected_version + 1`, set below.
                        continue;
                    }
                    let p = sql.col_param(*table, &def, value).map_err(Failure::Store)?;
                    sets.push(format!("{} = {p}", ident(def.name)));
                }
                let next = sql.param(expected_version.saturating_add(1));
                sets.push(format!("\"version\" = {next}"));
                let id_p = sql.param(*id);
                let expected_p = sql.param(*expected_version);
                sql.push(&format!(
                    "UPDATE {} SET {} WHERE \"id\" = {id_p} AND \"version\" = {expected_p}",
                    self.table(table.name()),
                    sets.join(", ")
                ));
                let (text, args) = sql.finish()?;
                let done = sqlx::query_with(AssertSqlSafe(text), args)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| classify(e, Some(*table)))?;
                if done.rows_affected() == 0 {
                    let actual: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT \"version\" FROM {} WHERE \"id\" = $1",
                        self.table(table.name())
                    )))
                    .bind(*id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| classify(e, Some(*table)))?;
                    return Err(Failure::Store(match actual {
                        None => StoreError::NotFound {
                            table: *table,
                            id: *id,
                        },
                        Some(actual) => StoreError::Conflict {
                            table: *table,
                            id: *id,
                            expected: *expected_version,
                            actual,
                        },
                    }));
                }
            }
            Op::Delete { table, id } => {
                let done = sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {} WHERE \"id\" = $1",
                    self.table(table.name())
                )))
                .bind(*id)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, Some(*table)))?;
                if done.rows_affected() == 0 {
                    return Err(Failure::Store(StoreError::NotFound {
                        table: *table,
                        id: *id,
                    }));
                }
            }
        }
        Ok(())
    }

    /// After a committed change set: `ANALYZE` the tables that have grown
    /// enough since their statistics were taken (see [`stats`]), so that
    /// plans — including the generic plans of prepared statements — stop
    /// assuming the nearly empty tables of a fresh schema. The change set is
    /// committed already: a failure here (say, a host role that does not own
    /// the tables) only leaves the statistics to autovacuum.
    async fn refresh_statistics(&self, changes: &ChangeSet) {
        for (table, rows) in stats::inserts(changes) {
            let mut next = self.growth.record(table, rows);
            if next == stats::Next::LookUp {
                let reltuples: Result<f32, _> = sqlx::query_scalar(
                    "SELECT c.reltuples FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2",
                )
                .bind(&self.schema)
                .bind(table.name())
                .fetch_one(&self.pool)
                .await;
                let Ok(reltuples) = reltuples else {
                    continue;
                };
                next = self.growth.settle(table, f64::from(reltuples));
            }
            if next == stats::Next::Analyze {
                let _ = self.analyze(table.name()).await;
            }
        }
    }

    /// `ANALYZE` of one table, giving up after [`ANALYZE_LOCK_TIMEOUT`] when
    /// a `VACUUM` or another `ANALYZE` holds the table: the caller's change
    /// set is committed already and must not wait on maintenance.
    async fn analyze(&self, table: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{}ms'",
            ANALYZE_LOCK_TIMEOUT.as_millis()
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}", self.table(table))))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn run_select(&self, sel: &Select) -> Result<Selected, StoreError> {
        let mut page = Sql::new();
        select::page_query(&mut page, &self.quoted, sel)?;
        let (text, args) = page.finish().map_err(Failure::into_store)?;
        let query = sqlx::query_with(AssertSqlSafe(text), args);

        let (rows, total): (Vec<PgRow>, Option<i64>) = if sel.with_total {
            let mut count = Sql::new();
            select::count_query(&mut count, &self.quoted, sel)?;
            let (ctext, cargs) = count.finish().map_err(Failure::into_store)?;
            // One snapshot for the page and the count, so they agree.
            let mut tx = self.pool.begin().await.map_err(backend)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let rows = if sel.counts_only() {
                Vec::new()
            } else {
                query.fetch_all(&mut *tx).await.map_err(backend)?
            };
            let total: i64 = sqlx::query_scalar_with(AssertSqlSafe(ctext), cargs)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            (rows, Some(total))
        } else {
            (query.fetch_all(&self.pool).await.map_err(backend)?, None)
        };

        let limit = match &sel.paging {
            Paging::All => None,
            Paging::Offset { limit, .. } | Paging::Keyset { limit, .. } => Some(*limit),
        };
        let mut decoded = rows
            .iter()
            .map(|r| decode_row(sel.table, r))
            .collect::<Result<Vec<Row>, _>>()?;
        let has_more = match limit {
            _ if sel.counts_only() => match (&sel.paging, total) {
                (Paging::Offset { offset, .. }, Some(total)) => {
                    u64::try_from(total).unwrap_or(0) > *offset
                }
                _ => false,
            },
            Some(limit) => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let more = decoded.len() > limit;
                decoded.truncate(limit);
                more
            }
            None => false,
        };
        Ok(Selected {
            rows: decoded,
            has_more,
            total: total.map(|t| u64::try_from(t).unwrap_or(0)),
        })
    }
}

/// How an attempt failed: worth retrying, or final.
pub(crate) enum Failure {
    /// A serialization failure or deadlock: retry the whole change set.
    Retry(sqlx::Error),
    /// Report this.
    Store(StoreError),
}

impl Failure {
    fn into_store(self) -> StoreError {
        match self {
            Failure::Retry(e) => backend(e),
            Failure::Store(e) => e,
        }
    }
}

/// Any driver error as [`StoreError::Backend`], keeping it as the source.
fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        source: Box::new(e),
    }
}

/// Maps a driver error: unique violations to [`StoreError::Unique`] (when the
/// table is known), `40001`/`40P01` to a retry, the rest to `Backend`.
fn classify(e: sqlx::Error, table: Option<Table>) -> Failure {
    if let sqlx::Error::Database(db) = &e {
        if db
            .code()
            .is_some_and(|code| code == "40001" || code == "40P01")
        {
            return Failure::Retry(e);
        }
        if let (true, Some(table)) = (db.is_unique_violation(), table) {
            let detail = db
                .constraint()
                .map(str::to_string)
                .unwrap_or_else(|| db.message().to_string());
            return Failure::Store(StoreError::Unique { table, detail });
        }
    }
    Failure::Store(backend(e))
}

/// The pause before retry number `attempt` (1-based): 5 ms, 10 ms, 20 ms … up
/// to 200 ms, with a little jitter so that colliding writers spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64
        .saturating_mul(1 << attempt.min(6).saturating_sub(1))
        .min(200);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from(nanos) % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            match self.try_apply(changes).await {
                Ok(()) => {
                    self.refresh_statistics(changes).await;
                    return Ok(());
                }
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    if attempt >= self.max_retries {
                        return Err(backend(e));
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
    }

    async fn get(&self, table: Table, id: Uuid) -> Result<Option<Row>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM {} t WHERE t.\"id\" = $1",
            column_list(table, "t"),
            self.table(table.name())
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| decode_row(table, &r)).transpose()
    }

    async fn select(&self, select: &Select) -> Result<Selected, StoreError> {
        self.run_select(select).await
    }

    async fn next_sequence(&self, company: Uuid, key: &str) -> Result<i64, StoreError> {
        self.bump_sequence(company, key, 1).await
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
        let last = self.bump_sequence(company, key, n).await?;
        Ok((last - n + 1..=last).collect())
    }

    async fn history(&self, table: Table, record_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT company_id, table_name, actor_id, at, action, changes FROM {} \
             WHERE table_name = $1 AND record_id = $2 ORDER BY seq",
            self.table("audit_log")
        )))
        .bind(table.name())
        .bind(record_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let changes: serde_json::Value = r.try_get("changes").map_err(backend)?;
                let changes: Vec<FieldChange> = serde_json::from_value(changes).map_err(backend)?;
                Ok(AuditEntry {
                    company_id: r.try_get("company_id").map_err(backend)?,
                    table: stored_table(r)?,
                    record_id,
                    actor_id: r.try_get("actor_id").map_err(backend)?,
                    at: r.try_get("at").map_err(backend)?,
                    action: r.try_get("action").map_err(backend)?,
                    changes,
                })
            })
            .collect()
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
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT COALESCE(MAX(seq), 0)::bigint FROM {}",
            self.table("outbox")
        )))
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        let t = self.table("outbox_cursors");
        let mut tx = self.read_committed().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {t} AS c (consumer, seq) VALUES ($1, $2) \
             ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(c.seq, EXCLUDED.seq)"
        )))
        .bind(consumer)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

/// The `table_name` column of an audit or outbox row as a [`Table`].
fn stored_table(r: &PgRow) -> Result<Table, StoreError> {
    let name: String = r.try_get("table_name").map_err(backend)?;
    Table::from_name(&name)
        .ok_or_else(|| invalid(format!("unknown table {name:?} in a stored row")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::value::Value;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["crm", "_x", "crm_test_1_2", &"a".repeat(63)] {
            assert!(validate_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Crm",
            "1crm",
            "crm-x",
            "crm\"; drop",
            "pg_crm",
            &"a".repeat(64),
            "crm x",
        ] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    /// A store in a fresh schema of its own, named after `tag` and the
    /// process (drop it with `drop_schema` at the end of the test).
    pub(crate) async fn fresh_store(tag: &str) -> PgStore {
        let url = std::env::var("CRM_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let options = PgOptions {
            schema: format!("crm_unit_{tag}_{}", std::process::id()),
            max_connections: 2,
            ..PgOptions::default()
        };
        let store = PgStore::connect(&url, options.clone())
            .await
            .expect("PostgreSQL reachable (CRM_TEST_PG_URL)");
        store.drop_schema().await.expect("drop a leftover schema");
        PgStore::connect(&url, options).await.expect("migrate")
    }

    /// Values for every non-nullable column of `table`, plus `extra`.
    pub(crate) fn row(table: Table, company: Uuid, extra: &[(&'static str, Value)]) -> Op {
        use crm_core::schema::ColType;
        let now = chrono::Utc::now();
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        for c in table.columns() {
            if let Some((_, v)) = extra.iter().find(|(n, _)| *n == c.name) {
                values.push((c.name, v.clone()));
                continue;
            }
            let v = match (c.name, c.ty, c.nullable) {
                ("id", _, _) => Value::Id(Uuid::now_v7()),
                ("company_id", _, _) => Value::Id(company),
                ("version", _, _) => Value::Int(1),
                (_, _, true) => continue,
                (_, ColType::Id, _) => Value::Id(Uuid::nil()),
                (_, ColType::Text, _) => Value::Text(c.name.to_string()),
                (_, ColType::Int, _) => Value::Int(0),
                (_, ColType::Bool, _) => Value::Bool(false),
                (_, ColType::Date, _) => Value::Date(now.date_naive()),
                (_, ColType::Timestamp, _) => Value::Timestamp(now),
                (_, ColType::Json, _) => Value::Json(serde_json::json!({})),
            };
            values.push((c.name, v));
        }
        Op::Insert { table, values }
    }

    /// The import's duplicate probe (`kind = $2 AND key = ANY($3)`), planned
    /// generically as a prepared statement is after five executions, probes
    /// the key index on all three columns once a bulk write has given the
    /// table statistics — instead of reading every key of the kind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_written_keys_are_probed_through_their_index() {
        let store = fresh_store("probe").await;

        let company = Uuid::now_v7();
        let customer = Uuid::now_v7();
        let kinds = ["name", "uscc", "phone", "email"];
        let mut ops = vec![row(
            Table::Customers,
            company,
            &[("id", Value::Id(customer))],
        )];
        for i in 0..2000 {
            ops.push(row(
                Table::CustomerKeys,
                company,
                &[
                    ("customer_id", Value::Id(customer)),
                    ("kind", Value::from(kinds[i % 4])),
                    ("key", Value::from(format!("k{i}"))),
                ],
            ));
        }
        store
            .apply(&ChangeSet {
                ops,
                ..ChangeSet::default()
            })
            .await
            .expect("bulk write");

        let analyzed: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT last_analyze FROM pg_catalog.pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'customer_keys'",
        )
        .bind(store.schema())
        .fetch_one(store.pool())
        .await
        .expect("statistics");
        assert!(analyzed.is_some(), "the bulk write analyzed customer_keys");

        let mut sel = Select::all(Table::CustomerKeys, company, chrono::Utc::now());
        sel.filter = crm_core::store::Filter::And(vec![
            crm_core::store::Filter::Cmp(
                crm_core::store::Col::Column("kind"),
                crm_core::store::CmpOp::Eq,
                Value::from("uscc"),
            ),
            crm_core::store::Filter::In(
                crm_core::store::Col::Column("key"),
                (0..100).map(|i| Value::from(format!("k{i}"))).collect(),
            ),
        ]);
        let mut sql = Sql::new();
        select::page_query(&mut sql, &store.quoted, &sel).expect("compiles");
        let mut conn = store.pool().acquire().await.expect("connection");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET plan_cache_mode = force_generic_plan; \
             PREPARE probe (uuid, text, text[]) AS {}",
            sql.text
        )))
        .execute(&mut *conn)
        .await
        .expect("prepare");
        let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "EXPLAIN EXECUTE probe('{company}', 'uscc', '{{k1,k2,k3}}')"
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        sqlx::raw_sql("DEALLOCATE probe; RESET plan_cache_mode")
            .execute(&mut *conn)
            .await
            .expect("deallocate");
        drop(conn);
        store.drop_schema().await.expect("drop schema");
        let probes_key = plan
            .lines()
            .any(|l| l.contains("Index Cond") && l.contains("key") && l.contains("ANY"));
        assert!(probes_key, "{plan}");
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        assert!(backoff(1) < Duration::from_millis(10));
        assert!(backoff(10) <= Duration::from_millis(300));
    }
}
