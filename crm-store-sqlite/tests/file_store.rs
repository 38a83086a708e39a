//! File-backed behaviour: persistence across reopen, concurrent writers and
//! refusing databases written by a newer build.

use crm_core::schema::Table;
use crm_core::store::{AuditEntry, ChangeSet, NewEvent, Op, Store, StoreError};
use crm_core::value::Value;
use crm_store_sqlite::{OpenError, SCHEMA_VERSION, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

fn at() -> chrono::DateTime<chrono::Utc> {
    "2026-03-01T08:00:00Z".parse().expect("fixed timestamp")
}

fn company() -> Uuid {
    Uuid::from_u128(0xC0)
}

fn counter_id() -> Uuid {
    Uuid::from_u128(0xD1)
}

fn insert_counter() -> ChangeSet {
    ChangeSet {
        ops: vec![Op::Insert {
            table: Table::Departments,
            values: vec![
                ("id", Value::Id(counter_id())),
                ("company_id", Value::Id(company())),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(at())),
                ("updated_at", Value::Timestamp(at())),
                ("name", Value::from("计数器")),
                ("position", Value::Int(0)),
            ],
        }],
        ..ChangeSet::default()
    }
}

/// The one number `sql` answers on the raw file.
fn number(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn user_version(path: &Path) -> i64 {
    number(path, "PRAGMA user_version")
}

fn schema_objects(path: &Path) -> i64 {
    number(path, "SELECT COUNT(*) FROM sqlite_schema")
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    {
        let store = SqliteStore::open(&path).expect("first open");
        store.apply(&insert_counter()).await.expect("insert");
        assert_eq!(
            store
                .next_sequence(company(), "contract")
                .await
                .expect("seq"),
            1
        );
    }
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let objects = schema_objects(&path);
    {
        // 0001_init.sql creates tables without IF NOT EXISTS: running it
        // again would fail this open.
        let store = SqliteStore::open(&path).expect("reopen");
        let row = store
            .get(Table::Departments, counter_id())
            .await
            .expect("get")
            .expect("row kept");
        assert_eq!(row.get("name"), &Value::from("计数器"));
        assert_eq!(
            store
                .next_sequence(company(), "contract")
                .await
                .expect("seq"),
            2
        );
    }
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    assert_eq!(schema_objects(&path), objects);
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn new_databases_get_the_stores_page_size_and_old_ones_keep_theirs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fresh = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh).expect("open"));
    assert_eq!(
        number(&fresh, "PRAGMA page_size"),
        i64::from(crm_store_sqlite::PAGE_SIZE)
    );
    // A file an earlier build created with SQLite's default page size.
    let old = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&old).expect("open raw");
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
        )
        .expect("create");
    }
    {
        let store = SqliteStore::open(&old).expect("opens");
        store.apply(&insert_counter()).await.expect("writes");
        assert!(
            store
                .get(Table::Departments, counter_id())
                .await
                .expect("reads")
                .is_some()
        );
    }
    assert_eq!(number(&old, "PRAGMA page_size"), 4096);
}

#[tokio::test]
async fn database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    drop(SqliteStore::open(&path).expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
    }
    match SqliteStore::open(&path) {
        Err(err @ OpenError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            let message = err.to_string();
            assert!(
                message.contains(&format!("version {}", SCHEMA_VERSION + 1)),
                "{message}"
            );
            assert!(
                message.contains(&format!("at most {SCHEMA_VERSION}")),
                "{message}"
            );
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    // Nothing was touched.
    assert_eq!(user_version(&path), SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn unopenable_path_is_an_open_error_with_a_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-such-dir").join("crm.db");
    match SqliteStore::open(&path) {
        Err(err @ OpenError::Open { .. }) => {
            assert!(err.to_string().contains("no-such-dir"), "{err}");
            assert!(std::error::Error::source(&err).is_some());
        }
        other => panic!("expected Open error, got {other:?}"),
    }
}

/// Increments the counter once as one change set (with an audit entry and
/// an event), re-reading and retrying on `Conflict`. Returns the retries.
async fn increment(store: &dyn Store) -> u32 {
    for retries in 0..10_000 {
        let row = store
            .get(Table::Departments, counter_id())
            .await
            .expect("get")
            .expect("counter");
        let value = row.get("position").as_int().expect("int");
        let changes = ChangeSet {
            guards: Vec::new(),
            ops: vec![Op::Update {
                table: Table::Departments,
                id: counter_id(),
                expected_version: row.version(),
                values: vec![("position", Value::Int(value + 1))],
            }],
            audit: vec![AuditEntry {
                company_id: company(),
                table: Table::Departments,
                record_id: counter_id(),
                actor_id: None,
                at: at(),
                action: "update".into(),
                changes: vec![],
            }],
            events: vec![NewEvent {
                company_id: company(),
                event_type: "counter.incremented".into(),
                table: Table::Departments,
                record_id: counter_id(),
                payload: serde_json::json!({ "value": value + 1 }).into(),
                at: at(),
            }],
        };
        match store.apply(&changes).await {
            Ok(()) => return retries,
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => panic!("increment failed: {other} ({other:?})"),
        }
    }
    panic!("no progress after 10000 retries");
}

const THREADS: usize = 4;
const PER_THREAD: usize = 50;

async fn check_final_state(store: &dyn Store) {
    let total = (THREADS * PER_THREAD) as i64;
    let row = store
        .get(Table::Departments, counter_id())
        .await
        .expect("get")
        .expect("counter");
    assert_eq!(row.get("position"), &Value::Int(total), "no lost update");
    assert_eq!(row.version(), total + 1);
    assert_eq!(
        store
            .history(Table::Departments, counter_id())
            .await
            .expect("history")
            .len(),
        THREADS * PER_THREAD
    );
    // Events are in commit order: their values count up 1, 2, … total.
    let events = store.outbox_pending("test", 1000).await.expect("outbox");
    let values: Vec<i64> = events
        .iter()
        .map(|e| e.event.payload.to_value()["value"].as_i64().expect("value"))
        .collect();
    assert_eq!(values, (1..=total).collect::<Vec<_>>());
}

#[test]
fn concurrent_writers_on_separate_connections_lose_no_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    let setup = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let first = SqliteStore::open(&path).expect("open");
    setup
        .block_on(first.apply(&insert_counter()))
        .expect("insert");
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            // Each thread has its own store (own writer connection), so the
            // writers meet in SQLite's locks, not in one mutex.
            let store = SqliteStore::open(&path).expect("open");
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let mut retries = 0;
                    for _ in 0..PER_THREAD {
                        retries += increment(&store).await;
                    }
                    retries
                })
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread finished");
    }
    setup.block_on(check_final_state(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_sharing_one_store_lose_no_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("crm.db")).expect("open"));
    store.apply(&insert_counter()).await.expect("insert");
    let tasks: Vec<_> = (0..THREADS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..PER_THREAD {
                    increment(store.as_ref()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task finished");
    }
    check_final_state(store.as_ref()).await;
}

/// Committed pages reach the database file through the background
/// checkpoint, long before the writer's own automatic checkpoint would
/// run: 1 500 small rows are some tens of pages of WAL, far below
/// `WRITER_AUTOCHECKPOINT_PAGES`.
#[tokio::test]
async fn writes_are_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    let store = SqliteStore::open(&path).expect("open");
    let size = || std::fs::metadata(&path).expect("db file").len();
    // Let the schema's own pages settle first.
    std::thread::sleep(crm_store_sqlite::IDLE_CHECKPOINT * 3);
    let before = size();
    let mut cs = ChangeSet::default();
    // Big enough to ask for a checkpoint at once.
    let rows = crm_store_sqlite::ROWS_PER_CHECKPOINT as u128 + 500;
    for i in 0..rows {
        cs.ops.push(Op::Insert {
            table: Table::Departments,
            values: vec![
                ("id", Value::Id(Uuid::from_u128(0x1_0000 + i))),
                ("company_id", Value::Id(company())),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(at())),
                ("updated_at", Value::Timestamp(at())),
                ("name", Value::from(format!("部门{i}"))),
                ("position", Value::Int(i as i64)),
            ],
        });
    }
    store.apply(&cs).await.expect("bulk insert");
    let mut grown = false;
    for _ in 0..100 {
        if size() > before {
            grown = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(grown, "the database file did not grow within 5 s");
}

/// Creates at `target` a database at schema 4 — migrations 0001 to 0004 run
/// and recorded as the store runs them — holding every row of `source`.
fn schema_4_copy(source: &Path, target: &Path) {
    let conn = rusqlite::Connection::open(target).expect("open target");
    for sql in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_pools.sql"),
        include_str!("../migrations/0003_imports.sql"),
        include_str!("../migrations/0004_sales.sql"),
    ] {
        conn.execute_batch(sql).expect("old migration");
    }
    conn.execute_batch(
        "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY) STRICT; \
         INSERT INTO schema_migrations (number) VALUES (1), (2), (3), (4); \
         PRAGMA user_version = 4; \
         PRAGMA foreign_keys = OFF;",
    )
    .expect("record schema 4");
    conn.execute(
        "ATTACH DATABASE ?1 AS src",
        [source.to_str().expect("utf-8 path")],
    )
    .expect("attach");
    let tables: Vec<String> = conn
        .prepare(
            // The tables schema 4 has: later ones have nothing to copy into.
            "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'",
        )
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    for table in tables {
        // The columns schema 4 has: later ones (0009's e-mail key) stay behind.
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}', 'main')"
            ))
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
            .expect("columns");
        let columns = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        conn.execute(
            &format!(
                "INSERT INTO main.\"{table}\" ({columns}) SELECT {columns} FROM src.\"{table}\""
            ),
            [],
        )
        .expect("copy rows");
    }
    conn.execute_batch("DETACH DATABASE src").expect("detach");
}

#[tokio::test]
async fn keys_of_a_schema_4_database_survive_migration_and_the_report_finds_them() {
    use crm_core::dedupe::DuplicateQuery;
    use crm_core::testing::pool_suite::two_sharing_a_phone;
    use crm_core::testing::service_suite::World;

    let dir = tempfile::tempdir().expect("temp dir");
    let (source, old) = (dir.path().join("source.db"), dir.path().join("old.db"));
    let store = Arc::new(SqliteStore::open(&source).expect("open source"));
    let w = World::new(store.clone()).await;
    let report = two_sharing_a_phone(&w).await;
    let admin = w.admin.user_id;
    let clock = w.clock.clone();
    drop(w);
    drop(store);

    schema_4_copy(&source, &old);
    assert_eq!(user_version(&old), 4);
    let keys = |path: &Path| -> i64 {
        rusqlite::Connection::open(path)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM customer_keys", [], |r| r.get(0)))
            .expect("count keys")
    };
    let shared = keys(&old);
    assert!(shared >= 2, "the rows of the phone two customers share");
    // Schema 4 kept a row per customer and key: unshared name (0008) and
    // e-mail (0009) rows go. A live customer's e-mail key comes from its
    // e-mail row, the engine's lowercasing (SQLite's lower() would leave the
    // Ö); a deleted one, which has no row, gets lower(), which a restore
    // puts right.
    rusqlite::Connection::open(&old)
        .and_then(|c| {
            c.execute_batch(
                "UPDATE customers SET email = 'ÖB@X.cn' WHERE name = '华信智联北京分公司'; \
                 UPDATE customers SET email = 'ÖLD@example.cn', deleted_at = created_at \
                 WHERE name = '上海申通物流有限公司'; \
                 INSERT INTO customer_keys \
                     (id, company_id, version, created_at, updated_at, customer_id, kind, key, \
                      duplicate) \
                 SELECT id || k.kind, company_id, 1, created_at, created_at, id, k.kind, k.key, 0 \
                 FROM customers, \
                      (SELECT 'name' AS kind, 'old-unshared-name' AS key \
                       UNION ALL SELECT 'email', 'öb@x.cn') AS k \
                 WHERE name = '华信智联北京分公司'",
            )
        })
        .expect("schema 4 rows");
    let before = keys(&old);
    assert_eq!(before, shared + 2);

    let migrated: Arc<dyn Store> = Arc::new(SqliteStore::open(&old).expect("migrate"));
    assert_eq!(user_version(&old), SCHEMA_VERSION);
    assert_eq!(keys(&old), shared, "the unshared name and e-mail rows went");
    let email_keys = || -> Vec<Option<String>> {
        rusqlite::Connection::open(&old)
            .and_then(|c| {
                c.prepare("SELECT email_key FROM customers ORDER BY name")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .expect("e-mail keys")
    };
    // 上海申通…, 北京华信…, 华信智联… in text order.
    assert_eq!(
        email_keys(),
        [
            Some("Öld@example.cn".to_string()),
            None,
            Some("öb@x.cn".to_string())
        ]
    );
    let crm = crm_core::Crm::new(migrated, clock);
    let actor = crm.actor(admin).await.expect("admin");
    let again = crm
        .duplicate_report(&actor, &DuplicateQuery::default())
        .await
        .expect("report after migration");
    assert_eq!(again, report);
    let deleted: Uuid = rusqlite::Connection::open(&old)
        .and_then(|c| {
            c.query_row(
                "SELECT id FROM customers WHERE deleted_at IS NOT NULL",
                [],
                |r| r.get::<_, String>(0),
            )
        })
        .map(|id| Uuid::parse_str(&id).expect("uuid"))
        .expect("the deleted customer");
    let r = crm
        .restore_records(
            &actor,
            crm_core::Entity::Customer,
            &[crm_core::ids::RecordId(deleted)],
        )
        .await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert_eq!(
        email_keys()[0].as_deref(),
        Some("öld@example.cn"),
        "rederived"
    );
}

/// The pools' caps against concurrent claims on a file store, whose reads
/// go through the pool of reader connections while the writer thread writes
/// (the conformance suite's in-memory store has one connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_caps_hold_against_concurrent_claims_on_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("crm.db")).expect("open");
    crm_core::testing::pool_suite::pool_caps_hold_against_concurrent_claims(std::sync::Arc::new(
        store,
    ))
    .await;
}

/// Closing the store leaves everything in the database file: the `-wal`
/// file is checkpointed and removed, so a plain copy of the `.db` file (the
/// usual backup) holds every change.
#[tokio::test]
async fn closing_the_store_leaves_everything_in_the_database_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        store.apply(&insert_counter()).await.expect("insert");
        // Readers have been used too.
        assert!(
            store
                .get(Table::Departments, counter_id())
                .await
                .expect("get")
                .is_some()
        );
    }
    let wal = dir.path().join("crm.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).expect("wal").len() == 0,
        "changes left in the -wal file"
    );
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).expect("copy the file alone");
    assert_eq!(
        number(
            &copy,
            "SELECT COUNT(*) FROM departments WHERE name = '计数器'"
        ),
        1
    );
}

/// Opening an up-to-date database takes no write lock: it opens at once
/// while another process holds a long write (a bulk import's batch),
/// instead of waiting behind it and failing as a migration.
#[tokio::test]
async fn opening_does_not_wait_on_another_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crm.db");
    drop(SqliteStore::open(&path).expect("create"));
    let other = rusqlite::Connection::open(&path).expect("open raw");
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE sequences SET value = value;")
        .expect("hold the write lock");
    let started = std::time::Instant::now();
    let store = SqliteStore::open(&path).expect("open beside a write");
    // Within the busy timeout: it did not wait for the lock to be let go.
    assert!(
        started.elapsed() < crm_store_sqlite::BUSY_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert!(
        store
            .get(Table::Departments, counter_id())
            .await
            .expect("read beside a write")
            .is_none()
    );
    other.execute_batch("ROLLBACK").expect("let go");
}
