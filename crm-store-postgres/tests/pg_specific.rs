//! Behaviour only the PostgreSQL backend has: schemas, migrations under
//! concurrent starts, retries and the commit-ordered outbox.

mod common;

use chrono::{DateTime, Utc};
use common::{fresh_pg, open, try_open, unique_schema, url};
use crm_core::clock::new_uuid;
use crm_core::schema::{ColType, Table};
use crm_core::store::{ChangeSet, NewEvent, Op, Select, Store, StoreError};
use crm_core::value::Value;
use crm_store_postgres::{OpenError, PgOptions, PgStore};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Values for every non-nullable column of `table`, plus `extra`.
fn row_values(
    table: Table,
    company: Uuid,
    id: Uuid,
    extra: &[(&'static str, Value)],
) -> Vec<(&'static str, Value)> {
    let t = now();
    let mut values: Vec<(&'static str, Value)> = Vec::new();
    for c in table.columns() {
        if let Some((_, v)) = extra.iter().find(|(n, _)| *n == c.name) {
            values.push((c.name, v.clone()));
            continue;
        }
        let v = match (c.name, c.ty, c.nullable) {
            ("id", _, _) => Value::Id(id),
            ("company_id", _, _) => Value::Id(company),
            ("version", _, _) => Value::Int(1),
            (_, _, true) => continue,
            (_, ColType::Id, _) => Value::Id(Uuid::nil()),
            (_, ColType::Text, _) => Value::Text(format!("{} {}", c.name, id.simple())),
            (_, ColType::Int, _) => Value::Int(0),
            (_, ColType::Bool, _) => Value::Bool(false),
            (_, ColType::Date, _) => Value::Date(t.date_naive()),
            (_, ColType::Timestamp, _) => Value::Timestamp(t),
            (_, ColType::Json, _) => Value::Json(serde_json::json!({})),
        };
        values.push((c.name, v));
    }
    values
}

fn insert(table: Table, company: Uuid, id: Uuid, extra: &[(&'static str, Value)]) -> ChangeSet {
    ChangeSet {
        ops: vec![Op::Insert {
            table,
            values: row_values(table, company, id, extra),
        }],
        ..ChangeSet::default()
    }
}

async fn count_rows(store: &PgStore, schema: &str, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{schema}\".\"{table}\""
    )))
    .fetch_one(store.pool())
    .await
    .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_schema_name_is_honoured_and_other_schemas_untouched() {
    let a = fresh_pg().await;
    let b = fresh_pg().await;
    let company = Uuid::now_v7();
    a.apply(&insert(Table::Companies, company, company, &[]))
        .await
        .expect("insert");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(a.schema())
    .fetch_all(a.pool())
    .await
    .expect("tables");
    for t in Table::ALL {
        assert!(
            tables.contains(&t.name().to_string()),
            "{t} missing in {tables:?}"
        );
    }
    for t in [
        "audit_log",
        "outbox",
        "outbox_cursors",
        "sequences",
        "schema_migrations",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} missing in {tables:?}");
    }
    assert_eq!(count_rows(&a, a.schema(), "companies").await, 1);
    assert_eq!(count_rows(&a, b.schema(), "companies").await, 0);
    assert!(
        b.get(Table::Companies, company)
            .await
            .expect("get")
            .is_none(),
        "a row written in one schema is visible through another"
    );

    // Pooled connections of `connect` use the schema as search_path.
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(a.pool())
        .await
        .expect("search_path");
    assert_eq!(path.trim_matches('"'), a.schema());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_pool_works_whatever_the_search_path() {
    let first = fresh_pg().await;
    // A host pool with the default search_path.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url())
        .await
        .expect("host pool");
    let schema = unique_schema();
    let store = PgStore::from_pool(
        pool,
        PgOptions {
            schema: schema.clone(),
            ..PgOptions::default()
        },
    )
    .await
    .expect("open on host pool");
    let company = Uuid::now_v7();
    store
        .apply(&insert(Table::Companies, company, company, &[]))
        .await
        .expect("insert");
    assert_eq!(count_rows(&first, &schema, "companies").await, 1);
    let rows = store
        .select(&Select::all(Table::Companies, company, now()))
        .await
        .expect("select");
    assert_eq!(rows.rows.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schema_names_are_refused_before_connecting() {
    for bad in [
        "",
        "Crm",
        "1crm",
        "crm-x",
        "crm\"; DROP SCHEMA public; --",
        "pg_crm",
        &"a".repeat(64),
    ] {
        // Unreachable URL: the name must be refused before any connection.
        let err = PgStore::connect(
            "postgres://nobody@127.0.0.1:1/none",
            PgOptions {
                schema: bad.to_string(),
                ..PgOptions::default()
            },
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(&err, OpenError::InvalidSchemaName { name } if name == bad),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_connect_error() {
    let options = PgOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PgOptions::default()
    };
    let err = PgStore::connect("postgres://nobody@127.0.0.1:1/none", options)
        .await
        .expect_err("refused");
    assert!(matches!(err, OpenError::Connect(_)), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the driver error is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_on_reconnect() {
    let schema = unique_schema();
    let first = open(&schema).await;
    let company = Uuid::now_v7();
    first
        .apply(&insert(Table::Companies, company, company, &[]))
        .await
        .expect("insert");
    drop(first);

    let again = open(&schema).await;
    let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"
    )))
    .fetch_all(again.pool())
    .await
    .expect("versions");
    let expected: Vec<i64> = (1..=PgStore::latest_migration()).collect();
    assert_eq!(versions, expected);
    assert!(
        again
            .get(Table::Companies, company)
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    let schema = unique_schema();
    let opens = (0..4).map(|_| {
        let schema = schema.clone();
        tokio::spawn(async move { try_open(&schema).await })
    });
    for handle in opens.collect::<Vec<_>>() {
        handle.await.expect("task").expect("open");
    }
    let store = open(&schema).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{schema}\".schema_migrations"
    )))
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(n, PgStore::latest_migration());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_newer_than_the_build_is_refused() {
    let store = fresh_pg().await;
    let schema = store.schema().to_string();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".schema_migrations (version) VALUES (9999)"
    )))
    .execute(store.pool())
    .await
    .expect("fake a newer migration");
    let err = try_open(&schema).await.expect_err("refused");
    assert!(
        matches!(err, OpenError::DatabaseTooNew { found: 9999, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_have_exactly_the_core_columns() {
    let store = fresh_pg().await;
    for table in Table::ALL {
        let cols: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             ORDER BY ordinal_position",
        )
        .bind(store.schema())
        .bind(table.name())
        .fetch_all(store.pool())
        .await
        .expect("columns");
        let expected: Vec<(String, String, String)> = table
            .columns()
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    ColType::Id => "uuid",
                    ColType::Text => "text",
                    ColType::Int => "bigint",
                    ColType::Bool => "boolean",
                    ColType::Date => "date",
                    ColType::Timestamp => "timestamp with time zone",
                    ColType::Json => "jsonb",
                };
                let nullable = if c.nullable { "YES" } else { "NO" };
                (c.name.to_string(), ty.to_string(), nullable.to_string())
            })
            .collect();
        assert_eq!(cols, expected, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_violation_names_the_constraint() {
    let store = fresh_pg().await;
    let company = Uuid::now_v7();
    let user = |id: Uuid| {
        insert(
            Table::Users,
            company,
            id,
            &[("username", Value::from("alice"))],
        )
    };
    store.apply(&user(new_uuid(now()))).await.expect("first");
    let err = store
        .apply(&user(new_uuid(now())))
        .await
        .expect_err("duplicate");
    match err {
        StoreError::Unique { table, detail } => {
            assert_eq!(table, Table::Users);
            assert_eq!(detail, "users_username_key");
        }
        other => panic!("expected Unique, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_column_is_an_error_naming_table_and_column() {
    let store = fresh_pg().await;
    let company = Uuid::now_v7();
    store
        .apply(&insert(Table::Companies, company, company, &[]))
        .await
        .expect("insert");
    // Someone altered the schema behind the store's back.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE \"{}\".companies ALTER COLUMN version TYPE text",
        store.schema()
    )))
    .execute(store.pool())
    .await
    .expect("alter");
    let err = store
        .get(Table::Companies, company)
        .await
        .expect_err("undecodable");
    let text = common::error_chain(&err);
    assert!(text.contains("companies.version"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_increments_reach_the_exact_count() {
    const TASKS: usize = 6;
    const EACH: i64 = 8;
    let store: Arc<dyn Store> = Arc::new(fresh_pg().await);
    let company = Uuid::now_v7();
    let id = new_uuid(now());
    store
        .apply(&insert(
            Table::Departments,
            company,
            id,
            &[("position", Value::Int(0))],
        ))
        .await
        .expect("insert");

    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..EACH {
                loop {
                    let row = store
                        .get(Table::Departments, id)
                        .await
                        .expect("get")
                        .expect("exists");
                    let position = row.get("position").as_int().expect("position");
                    let change = ChangeSet {
                        ops: vec![Op::Update {
                            table: Table::Departments,
                            id,
                            expected_version: row.version(),
                            values: vec![("position", Value::Int(position + 1))],
                        }],
                        ..ChangeSet::default()
                    };
                    match store.apply(&change).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict {
                            expected, actual, ..
                        }) => {
                            assert!(actual > expected);
                            conflicts += 1;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let row = store
        .get(Table::Departments, id)
        .await
        .expect("get")
        .expect("exists");
    let total = TASKS as i64 * EACH;
    assert_eq!(row.get("position"), &Value::Int(total));
    assert_eq!(row.version(), 1 + total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_is_gap_free_in_commit_order_under_concurrent_writers() {
    const WRITERS: usize = 6;
    const CHANGES: usize = 20;
    const PER_CHANGE: usize = 3;
    const EACH: usize = CHANGES * PER_CHANGE;
    let pg = fresh_pg().await;
    // Widen the window between a writer taking its seqs and committing: each
    // outbox insert sleeps up to 4 ms, so that late commits are common.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION \"{s}\".slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(random() * 0.004); RETURN NEW; END $$; \
         CREATE TRIGGER slow_insert AFTER INSERT ON \"{s}\".outbox \
         FOR EACH ROW EXECUTE FUNCTION \"{s}\".slow_insert();",
        s = pg.schema()
    )))
    .execute(pg.pool())
    .await
    .expect("slow trigger");
    let store: Arc<dyn Store> = Arc::new(pg);
    let company = Uuid::now_v7();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..CHANGES {
                // Several events per change set, so that without the outbox
                // lock the seqs of concurrent transactions interleave and a
                // consumer acknowledging the later ones skips the earlier.
                let id = new_uuid(now());
                let mut change = insert(Table::Departments, company, id, &[]);
                for k in 0..PER_CHANGE {
                    change.events.push(NewEvent {
                        company_id: company,
                        event_type: "department.created".into(),
                        table: Table::Departments,
                        record_id: id,
                        payload: serde_json::json!({ "writer": w, "n": n * PER_CHANGE + k }).into(),
                        at: now(),
                    });
                }
                store.apply(&change).await.expect("apply");
            }
        }));
    }

    // A consumer polling while the writers write, until they are done and
    // nothing is pending: every event exactly once, in increasing seq order,
    // each writer's events in its own order.
    let total = WRITERS * EACH;
    let mut seen: Vec<(i64, usize, usize)> = Vec::new();
    let mut last = 0i64;
    loop {
        let done = writers.iter().all(|h| h.is_finished());
        let batch = store.outbox_pending("consumer", 7).await.expect("pending");
        if batch.is_empty() {
            if done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        for e in &batch {
            assert!(e.seq > last, "seq {} after {last}", e.seq);
            last = e.seq;
            let payload = e.event.payload.to_value();
            let w = payload["writer"].as_u64().expect("writer") as usize;
            let n = payload["n"].as_u64().expect("n") as usize;
            seen.push((e.seq, w, n));
        }
        store.outbox_ack("consumer", last).await.expect("ack");
    }
    for h in writers {
        h.await.expect("writer");
    }
    assert_eq!(
        seen.len(),
        total,
        "the consumer skipped events that committed late"
    );

    let distinct: BTreeSet<(usize, usize)> = seen.iter().map(|(_, w, n)| (*w, *n)).collect();
    assert_eq!(distinct.len(), total, "an event was missed or seen twice");
    for w in 0..WRITERS {
        let ns: Vec<usize> = seen
            .iter()
            .filter(|(_, x, _)| *x == w)
            .map(|(_, _, n)| *n)
            .collect();
        assert_eq!(ns, (0..EACH).collect::<Vec<_>>(), "writer {w} out of order");
    }
    // Nothing rolled back, so the seqs are contiguous too.
    let first = seen[0].0;
    for (i, (seq, _, _)) in seen.iter().enumerate() {
        assert_eq!(*seq, first + i as i64, "gap in outbox seqs");
    }
    // A second consumer starts from the beginning; acknowledging backwards is ignored.
    assert_eq!(
        store
            .outbox_pending("other", 1000)
            .await
            .expect("pending")
            .len(),
        total
    );
    store
        .outbox_ack("consumer", 1)
        .await
        .expect("ack backwards");
    assert!(
        store
            .outbox_pending("consumer", 100)
            .await
            .expect("pending")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_count_per_company_and_key_under_concurrency() {
    let store: Arc<dyn Store> = Arc::new(fresh_pg().await);
    let company = Uuid::now_v7();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..10 {
                got.push(
                    store
                        .next_sequence(company, "contract")
                        .await
                        .expect("next"),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<i64>>());
    assert_eq!(
        store.next_sequence(company, "quote").await.expect("next"),
        1
    );
    assert_eq!(
        store
            .next_sequence(Uuid::now_v7(), "contract")
            .await
            .expect("next"),
        1
    );
}

/// Makes the store's change set deadlock with a host transaction: the host
/// holds row `b`, the store updates `a` then waits for `b`, the host then
/// waits for `a`. PostgreSQL aborts the store's transaction (its deadlock
/// check fires first) with `40P01`. Returns the outcome of the change set
/// and the store.
async fn deadlock_with_host(max_retries: u32) -> (Result<(), StoreError>, PgStore) {
    let schema = unique_schema();
    common::open(&schema).await; // create and migrate
    let store = PgStore::connect(
        &url(),
        PgOptions {
            schema: schema.clone(),
            max_connections: 2,
            max_retries,
            ..PgOptions::default()
        },
    )
    .await
    .expect("open");
    let company = Uuid::now_v7();
    let (a, b) = (new_uuid(now()), new_uuid(now()));
    for id in [a, b] {
        store
            .apply(&insert(Table::Departments, company, id, &[]))
            .await
            .expect("insert");
    }

    let mut host = store.pool().begin().await.expect("host tx");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM \"{schema}\".departments WHERE id = $1 FOR UPDATE"
    )))
    .bind(b)
    .execute(&mut *host)
    .await
    .expect("lock b");

    let update = |id| Op::Update {
        table: Table::Departments,
        id,
        expected_version: 1,
        values: vec![("position", Value::Int(7))],
    };
    let change = ChangeSet {
        ops: vec![update(a), update(b)],
        ..ChangeSet::default()
    };
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.apply(&change).await })
    };
    // Let the store lock `a` and start waiting for `b`.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".departments SET name = name WHERE id = $1"
    )))
    .bind(a)
    .execute(&mut *host)
    .await
    .expect("host update of a (the store's transaction is the deadlock victim)");
    host.commit().await.expect("host commit");
    (writer.await.expect("writer"), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocked_change_set_is_retried_and_succeeds() {
    let (outcome, store) = deadlock_with_host(3).await;
    outcome.expect("retried after the deadlock");
    let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{}\".departments ORDER BY id",
        store.schema()
    )))
    .fetch_all(store.pool())
    .await
    .expect("versions");
    assert_eq!(versions, vec![2, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlock_without_retries_left_is_a_backend_error() {
    let (outcome, _store) = deadlock_with_host(0).await;
    let err = outcome.expect_err("no retries allowed");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{err}"
    );
    let text = common::error_chain(&err);
    assert!(text.contains("deadlock"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_in_lists_match_like_short_ones() {
    use crm_core::store::{Col, CustomType, Filter};
    let store = fresh_pg().await;
    let company = Uuid::now_v7();
    let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
    for (n, id) in ids.iter().enumerate() {
        let extra = [
            ("name", Value::from(format!("name {n}"))),
            ("custom", Value::Json(serde_json::json!({ "score": n }))),
        ];
        store
            .apply(&insert(Table::Customers, company, *id, &extra))
            .await
            .expect("insert");
    }
    let select = |filter: Filter| {
        let mut s = Select::all(Table::Customers, company, now());
        s.filter = filter;
        s
    };
    let found =
        |sel: crm_core::store::Selected| sel.rows.iter().map(|r| r.id()).collect::<Vec<_>>();

    // More values than PostgreSQL takes as parameters.
    let mut many: Vec<Value> = (1000..71_000u128)
        .map(|n| Value::Id(Uuid::from_u128(n)))
        .collect();
    many.push(Value::Id(ids[2]));
    many.push(Value::Null);
    many.push(Value::Id(ids[0]));
    let got = store
        .select(&select(Filter::In(Col::Column("id"), many)))
        .await
        .expect("ids");
    assert_eq!(found(got), vec![ids[0], ids[2]]);

    let mut names: Vec<Value> = (0..100)
        .map(|n| Value::from(format!("other {n}")))
        .collect();
    names.push(Value::from("name 1"));
    let got = store
        .select(&select(Filter::In(Col::Column("name"), names)))
        .await
        .expect("names");
    assert_eq!(found(got), vec![ids[1]]);

    let mut scores: Vec<Value> = (10..100).map(Value::Int).collect();
    scores.push(Value::Float(1.0));
    scores.push(Value::Int(2));
    let score = Col::Custom {
        key: "score".into(),
        ty: CustomType::Number,
    };
    let got = store
        .select(&select(Filter::In(score.clone(), scores.clone())))
        .await
        .expect("scores");
    assert_eq!(found(got), vec![ids[1], ids[2]]);
    // Under NOT, the list behaves as SQL's IN does (no NULLs here).
    let got = store
        .select(&select(Filter::Not(Box::new(Filter::In(score, scores)))))
        .await
        .expect("not scores");
    assert_eq!(found(got), vec![ids[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_schema_removes_the_schema_only() {
    let keep = fresh_pg().await;
    let gone = fresh_pg().await;
    gone.drop_schema().await.expect("drop");
    let exists = |schema: String| {
        let pool = keep.pool().clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            )
            .bind(schema)
            .fetch_one(&pool)
            .await
            .expect("exists")
        }
    };
    assert!(!exists(gone.schema().to_string()).await);
    assert!(exists(keep.schema().to_string()).await);
}

/// An index whose key columns (in the same collations) begin another index's
/// only costs writes: every plan probing through it probes the same way
/// through the longer one. Unique and partial indexes are not redundant that
/// way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_index_is_a_prefix_of_another() {
    let store = fresh_pg().await;
    let redundant: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s (%s) begins %s (%s)', \
                       a.indexrelid::regclass, a.indkey, b.indexrelid::regclass, b.indkey) \
         FROM pg_index a \
         JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid \
         JOIN pg_class t ON t.oid = a.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND NOT a.indisunique \
           AND a.indpred IS NULL AND b.indpred IS NULL \
           AND a.indexprs IS NULL AND b.indexprs IS NULL \
           AND a.indnkeyatts <= b.indnkeyatts \
           AND (a.indkey::int2[])[0:a.indnkeyatts - 1] \
               = (b.indkey::int2[])[0:a.indnkeyatts - 1] \
           AND (a.indcollation::oid[])[0:a.indnkeyatts - 1] \
               = (b.indcollation::oid[])[0:a.indnkeyatts - 1]",
    )
    .bind(store.schema())
    .fetch_all(store.pool())
    .await
    .expect("indexes");
    assert!(redundant.is_empty(), "{redundant:#?}");
}

/// A schema at version 4 (0001 to 0004 run and recorded as the store runs
/// them) holding every row of the store `source`, which this build created.
async fn schema_4_copy(source: &PgStore, target: &str) {
    let from = source.schema();
    let mut tx = source.pool().begin().await.expect("begin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA \"{target}\"; \
         SET LOCAL search_path TO \"{target}\"; \
         CREATE TABLE schema_migrations ( \
             version bigint PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO schema_migrations (version) VALUES (1), (2), (3), (4)"
    )))
    .execute(&mut *tx)
    .await
    .expect("schema");
    for sql in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_pools.sql"),
        include_str!("../migrations/0003_imports.sql"),
        include_str!("../migrations/0004_sales.sql"),
    ] {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .expect("old migration");
    }
    let mut pending: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 AND table_type = 'BASE TABLE' \
           AND table_name <> 'schema_migrations'",
    )
    // The tables schema 4 has: later ones have nothing to copy into.
    .bind(target)
    .fetch_all(&mut *tx)
    .await
    .expect("tables");
    // Referenced tables first: retry what a foreign key refused until every
    // table is copied.
    while !pending.is_empty() {
        let before = pending.len();
        let mut refused = Vec::new();
        for table in std::mem::take(&mut pending) {
            // The columns schema 4 has: later ones (0009's e-mail key) stay behind.
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            )
            .bind(target)
            .bind(&table)
            .fetch_all(&mut *tx)
            .await
            .expect("columns");
            let columns = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let copied = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SAVEPOINT copy; \
                 INSERT INTO \"{target}\".\"{table}\" ({columns}) \
                 SELECT {columns} FROM \"{from}\".\"{table}\"; \
                 RELEASE SAVEPOINT copy"
            )))
            .execute(&mut *tx)
            .await;
            if copied.is_err() {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT copy")
                    .execute(&mut *tx)
                    .await
                    .expect("rollback to savepoint");
                refused.push(table);
            }
        }
        assert!(refused.len() < before, "cannot copy {refused:?}");
        pending = refused;
    }
    tx.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_a_schema_4_database_survive_migration_and_the_report_finds_them() {
    use crm_core::dedupe::DuplicateQuery;
    use crm_core::testing::pool_suite::two_sharing_a_phone;
    use crm_core::testing::service_suite::World;

    let source = Arc::new(fresh_pg().await);
    let w = World::new(source.clone()).await;
    let report = two_sharing_a_phone(&w).await;

    let old = unique_schema();
    schema_4_copy(&source, &old).await;
    let keys = count_rows(&source, &old, "customer_keys").await;
    assert!(keys >= 2, "the rows of the phone two customers share");
    // Schema 4 kept a row per customer and key: unshared name (0008) and
    // e-mail (0009) rows go. A customer's e-mail key comes from its e-mail
    // row (here deliberately not lower() of the address, to tell the two
    // apart); a customer without one (as a deleted customer) gets lower().
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{old}\".customers SET email = 'OLD@example.cn' \
         WHERE name = '上海申通物流有限公司'; \
         UPDATE \"{old}\".customers SET email = 'B@X.cn' WHERE name = '华信智联北京分公司'; \
         INSERT INTO \"{old}\".customer_keys \
             (id, company_id, version, created_at, updated_at, customer_id, kind, key, duplicate) \
         SELECT gen_random_uuid(), company_id, 1, now(), now(), id, k.kind, k.key, false \
         FROM \"{old}\".customers, \
              (VALUES ('name', 'old-unshared-name'), ('email', 'old@example.cn ')) AS k (kind, key) \
         WHERE name = '上海申通物流有限公司'"
    )))
    .execute(source.pool())
    .await
    .expect("schema 4 rows");

    let migrated = open(&old).await;
    let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{old}\".schema_migrations ORDER BY version"
    )))
    .fetch_all(migrated.pool())
    .await
    .expect("versions");
    let expected: Vec<i64> = (1..=PgStore::latest_migration()).collect();
    assert_eq!(versions, expected);
    assert_eq!(count_rows(&migrated, &old, "customer_keys").await, keys);
    let kinds: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT kind FROM \"{old}\".customer_keys WHERE NOT duplicate ORDER BY kind"
    )))
    .fetch_all(migrated.pool())
    .await
    .expect("unshared rows");
    assert!(kinds.is_empty(), "{kinds:?}");
    let email_keys: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT email_key FROM \"{old}\".customers ORDER BY name COLLATE \"C\""
    )))
    .fetch_all(migrated.pool())
    .await
    .expect("e-mail keys");
    // 上海申通…, 北京华信…, 华信智联… in code-point order.
    assert_eq!(
        email_keys,
        [
            Some("old@example.cn ".to_string()),
            None,
            Some("b@x.cn".to_string())
        ]
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'customer_keys'",
    )
    .bind(&old)
    .fetch_all(migrated.pool())
    .await
    .expect("indexes");
    assert!(
        !indexes
            .iter()
            .any(|d| d.contains("customer_keys_duplicates_idx")),
        "{indexes:#?}"
    );
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("customer_keys_duplicate_rows_idx")
                && d.ends_with("WHERE duplicate")),
        "{indexes:#?}"
    );

    let crm = crm_core::Crm::new(Arc::new(migrated), w.clock.clone());
    let actor = crm.actor(w.admin.user_id).await.expect("admin");
    let again = crm
        .duplicate_report(&actor, &DuplicateQuery::default())
        .await
        .expect("report after migration");
    assert_eq!(again, report);
}
