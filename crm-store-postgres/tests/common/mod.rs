//! What the PostgreSQL integration tests share: where the server is, one
//! fresh schema per test, and the clean-up of schemas left by earlier runs.
//!
//! A missing server fails the tests with a clear message; they never skip,
//! because a silently skipped PostgreSQL suite looks green in CI.

#![allow(dead_code)]

use crm_core::store::Store;
use crm_store_postgres::{PgOptions, PgStore};
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The server the tests use: `CRM_TEST_PG_URL`, else the local default.
pub fn url() -> String {
    std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The prefix of every test schema: `crm_test_<pid>_<counter>`.
const PREFIX: &str = "crm_test_";

/// The advisory lock class under which each test process holds a session
/// lock keyed by its pid for as long as it runs.
const LIVE_LOCK_CLASS: i32 = 0x4352_4d54; // "CRMT"

static COUNTER: AtomicU64 = AtomicU64::new(0);
static GUARD: OnceLock<()> = OnceLock::new();

/// A schema name no other test (of this or another process) uses.
pub fn unique_schema() -> String {
    format!(
        "{PREFIX}{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn unreachable(e: impl std::fmt::Display) -> String {
    format!(
        "PostgreSQL test server unreachable at {} ({e}). Start it (e.g. \
         `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point \
         CRM_TEST_PG_URL at one; these tests never skip.",
        url()
    )
}

/// Once per process: takes this process's liveness lock, then drops the test
/// schemas of processes that no longer run.
///
/// A process is alive exactly when it holds its session lock
/// `(LIVE_LOCK_CLASS, pid)`; the lock is taken before the process creates any
/// schema and is held by a dedicated connection until the process exits. The
/// clean-up drops the schemas of a pid only while holding that pid's lock
/// itself, so schemas of a concurrently running test binary are never
/// touched, and a new process reusing the pid waits until the clean-up is done.
fn ensure_guard() {
    GUARD.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let spawned = std::thread::Builder::new()
            .name("pg-test-liveness".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot start a runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    match liveness_session().await {
                        Ok(conn) => {
                            let _ = tx.send(Ok(()));
                            // Hold the connection, and with it the lock, until
                            // the process exits.
                            std::future::pending::<()>().await;
                            drop(conn);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            });
        if let Err(e) = spawned {
            panic!("cannot start the liveness thread: {e}");
        }
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => panic!("{msg}"),
            Err(_) => panic!("the liveness thread ended without reporting"),
        }
    });
}

async fn liveness_session() -> Result<PgConnection, String> {
    let mut conn = PgConnection::connect(&url()).await.map_err(unreachable)?;
    let own = std::process::id();
    let own_key = i32::try_from(own).map_err(|e| format!("pid {own} too large: {e}"))?;
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(LIVE_LOCK_CLASS)
        .bind(own_key)
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot take the liveness lock: {e}"))?;

    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| format!("cannot list test schemas: {e}"))?;
    let mut by_pid: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for name in names {
        let pid = name[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p != own_key) {
            by_pid.entry(pid).or_default().push(name);
        }
    }
    for (pid, schemas) in by_pid {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LIVE_LOCK_CLASS)
            .bind(pid)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("cannot probe process {pid}: {e}"))?;
        if !free {
            continue; // that test process still runs
        }
        for schema in schemas {
            // Names come from pg_namespace and match the test prefix; quoted.
            let sql = format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                schema.replace('"', "\"\"")
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .map_err(|e| format!("cannot drop stale test schema {schema}: {e}"))?;
        }
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(LIVE_LOCK_CLASS)
            .bind(pid)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot release the probe of process {pid}: {e}"))?;
    }
    Ok(conn)
}

/// Opens a store on `schema` (panicking with a clear message on failure).
pub async fn open(schema: &str) -> PgStore {
    try_open(schema)
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable(error_chain(&e))))
}

/// Opens a store on `schema`, reporting failures.
pub async fn try_open(schema: &str) -> Result<PgStore, crm_store_postgres::OpenError> {
    if let Err(e) = tokio::task::spawn_blocking(ensure_guard).await {
        std::panic::resume_unwind(e.into_panic());
    }
    PgStore::connect(
        &url(),
        PgOptions {
            schema: schema.to_string(),
            max_connections: 4,
            acquire_timeout: std::time::Duration::from_secs(10),
            ..PgOptions::default()
        },
    )
    .await
}

/// A store on a fresh, empty schema of its own.
pub async fn fresh_pg() -> PgStore {
    open(&unique_schema()).await
}

/// A store on a fresh, empty schema, as the conformance suite wants it.
pub async fn fresh_store() -> Arc<dyn Store> {
    Arc::new(fresh_pg().await)
}

/// An error with its sources, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
