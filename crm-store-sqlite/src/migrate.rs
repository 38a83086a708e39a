//! Schema migrations: numbered SQL files under `migrations/`, embedded at
//! build time and tracked with `PRAGMA user_version`.

use crate::error::OpenError;
use rusqlite::{Connection, TransactionBehavior};

/// One embedded migration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    /// Its number; `user_version` after it is applied.
    pub(crate) number: u32,
    /// Its file name.
    pub(crate) name: &'static str,
    /// Its SQL.
    pub(crate) sql: &'static str,
}

/// Every migration, in increasing order of number. Append only; never edit a
/// shipped one. Numbers may have gaps while parallel changes land (0002 may
/// arrive after 0003): each number is applied once, whenever it shows up.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        number: 1,
        name: "0001_init.sql",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        number: 2,
        name: "0002_pools.sql",
        sql: include_str!("../migrations/0002_pools.sql"),
    },
    Migration {
        number: 3,
        name: "0003_imports.sql",
        sql: include_str!("../migrations/0003_imports.sql"),
    },
    Migration {
        number: 4,
        name: "0004_sales.sql",
        sql: include_str!("../migrations/0004_sales.sql"),
    },
    Migration {
        number: 5,
        name: "0005_partial_duplicate_index.sql",
        sql: include_str!("../migrations/0005_partial_duplicate_index.sql"),
    },
    Migration {
        number: 6,
        name: "0006_pool_holders.sql",
        sql: include_str!("../migrations/0006_pool_holders.sql"),
    },
    Migration {
        number: 7,
        name: "0007_indexes_for_imports_caps_and_scopes.sql",
        sql: include_str!("../migrations/0007_indexes_for_imports_caps_and_scopes.sql"),
    },
    Migration {
        number: 8,
        name: "0008_column_keys_only_while_shared.sql",
        sql: include_str!("../migrations/0008_column_keys_only_while_shared.sql"),
    },
    Migration {
        number: 9,
        name: "0009_email_key_column.sql",
        sql: include_str!("../migrations/0009_email_key_column.sql"),
    },
    Migration {
        number: 10,
        name: "0010_next_follow_up_without_company.sql",
        sql: include_str!("../migrations/0010_next_follow_up_without_company.sql"),
    },
    Migration {
        number: 11,
        name: "0011_import_item_issues.sql",
        sql: include_str!("../migrations/0011_import_item_issues.sql"),
    },
    Migration {
        number: 12,
        name: "0012_import_unchanged.sql",
        sql: include_str!("../migrations/0012_import_unchanged.sql"),
    },
    Migration {
        number: 13,
        name: "0013_invoice_void.sql",
        sql: include_str!("../migrations/0013_invoice_void.sql"),
    },
    Migration {
        number: 14,
        name: "0014_name_sort_keys.sql",
        sql: include_str!("../migrations/0014_name_sort_keys.sql"),
    },
];

/// The schema version this build creates and understands: the highest
/// migration number.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].number as i64;

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Whether migration `number` has been applied. Applied numbers are kept in
/// `schema_migrations`; a database from before that table gets every number
/// of `migrations` up to its `user_version` recorded first.
/// Whether `schema_migrations` records every one of `migrations` (read
/// only: a file without the table, as one from before it existed, is not).
fn all_recorded(conn: &Connection, migrations: &[Migration]) -> rusqlite::Result<bool> {
    let has_table: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        return Ok(false);
    }
    let mut st = conn.prepare("SELECT 1 FROM schema_migrations WHERE number = ?")?;
    for m in migrations {
        if !st.exists([m.number])? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn is_applied(conn: &Connection, number: u32, migrations: &[Migration]) -> rusqlite::Result<bool> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY) STRICT",
    )?;
    let any: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
    let version = user_version(conn)?;
    if any == 0 && version > 0 {
        for m in migrations.iter().filter(|m| i64::from(m.number) <= version) {
            conn.execute(
                "INSERT INTO schema_migrations (number) VALUES (?)",
                [m.number],
            )?;
        }
    }
    let recorded: i64 = conn.query_row(
        "SELECT COUNT(*) FROM schema_migrations WHERE number = ?",
        [number],
        |r| r.get(0),
    )?;
    Ok(recorded > 0)
}

/// Brings the database up to the newest of `migrations`, each in its own
/// IMMEDIATE transaction (so two processes opening the same new file do not
/// both run it). Refuses a database newer than `migrations`.
pub(crate) fn run(
    conn: &mut Connection,
    path: &str,
    migrations: &[Migration],
) -> Result<(), OpenError> {
    let supported = migrations.last().map_or(0, |m| i64::from(m.number));
    let found = user_version(conn).map_err(|e| OpenError::Open {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    if found > supported {
        return Err(OpenError::NewerSchema { found, supported });
    }
    // Every open but the first after an upgrade finds the schema up to
    // date: that is read without taking the write lock, so opening the
    // file does not wait on (or time out behind) another process's long
    // write, such as a bulk import's batch.
    if found == supported && all_recorded(conn, migrations).unwrap_or(false) {
        return Ok(());
    }
    let failed = |m: &Migration| {
        let (number, name) = (m.number, m.name);
        move |e: rusqlite::Error| OpenError::Migrate {
            number,
            name,
            source: Box::new(e),
        }
    };
    for m in migrations {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(m))?;
        // Read again under the write lock: another process may have migrated.
        let found = user_version(&tx).map_err(failed(m))?;
        if found > supported {
            return Err(OpenError::NewerSchema { found, supported });
        }
        if is_applied(&tx, m.number, migrations).map_err(failed(m))? {
            tx.commit().map_err(failed(m))?;
            continue;
        }
        tx.execute_batch(m.sql).map_err(failed(m))?;
        tx.execute(
            "INSERT INTO schema_migrations (number) VALUES (?)",
            [m.number],
        )
        .map_err(failed(m))?;
        tx.pragma_update(None, "user_version", found.max(i64::from(m.number)))
            .map_err(failed(m))?;
        tx.commit().map_err(failed(m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many schema objects (tables, indexes, …) are named `name`.
    fn objects_named(conn: &Connection, name: &str) -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .expect("query")
    }

    #[test]
    fn migrations_are_numbered_increasingly_from_one() {
        assert_eq!(MIGRATIONS[0].number, 1);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            if i > 0 {
                assert!(m.number > MIGRATIONS[i - 1].number, "{}", m.name);
            }
            assert!(
                m.name.starts_with(&format!("{:04}_", m.number)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn failed_migration_names_its_number_and_rolls_back() {
        let mut conn = Connection::open_in_memory().expect("open");
        let broken = [
            MIGRATIONS[0],
            Migration {
                number: 2,
                name: "0002_broken.sql",
                sql: "CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;",
            },
        ];
        let err = run(&mut conn, ":memory:", &broken).expect_err("fails");
        match &err {
            OpenError::Migrate { number, name, .. } => {
                assert_eq!((*number, *name), (2, "0002_broken.sql"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(user_version(&conn).expect("version"), 1);
        assert_eq!(objects_named(&conn, "half_done"), 0);
        // Running again with the good migrations only is a no-op.
        run(&mut conn, ":memory:", MIGRATIONS).expect("idempotent");
    }

    #[test]
    fn a_migration_filling_a_gap_later_is_applied_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        let m = |number, name, sql| Migration { number, name, sql };
        let first = [
            m(1, "0001_a.sql", "CREATE TABLE a (x INTEGER);"),
            m(3, "0003_c.sql", "CREATE TABLE c (x INTEGER);"),
        ];
        run(&mut conn, ":memory:", &first).expect("first");
        assert_eq!(user_version(&conn).expect("version"), 3);
        let later = [
            first[0],
            m(2, "0002_b.sql", "CREATE TABLE b (x INTEGER);"),
            first[1],
        ];
        run(&mut conn, ":memory:", &later).expect("gap filled");
        run(&mut conn, ":memory:", &later).expect("idempotent");
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('a', 'b', 'c')",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!((tables, user_version(&conn).expect("version")), (3, 3));
    }

    /// Keys carried from schema 4: flagged ones are indexed for the report
    /// (0005); unshared name, credit-code and phone rows go, the customers'
    /// own columns serving them (0008), and so do unshared e-mail rows
    /// (0009).
    #[test]
    fn keys_of_a_schema_4_database_survive_and_flagged_ones_are_indexed() {
        let mut conn = Connection::open_in_memory().expect("open");
        run(&mut conn, ":memory:", &MIGRATIONS[..4]).expect("schema 4");
        assert_eq!(user_version(&conn).expect("version"), 4);
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; \
             INSERT INTO customer_keys \
                 (id, company_id, version, created_at, updated_at, deleted_at, \
                  customer_id, kind, key, duplicate) \
             VALUES ('k1', 'c', 1, 't', 't', NULL, 'a', 'phone', '010', 1), \
                    ('k2', 'c', 1, 't', 't', NULL, 'b', 'phone', '010', 1), \
                    ('k3', 'c', 1, 't', 't', NULL, 'b', 'name', 'hx', 0), \
                    ('k4', 'c', 1, 't', 't', NULL, 'b', 'email', 'b@x.cn', 0); \
             PRAGMA foreign_keys = ON;",
        )
        .expect("keys");
        run(&mut conn, ":memory:", MIGRATIONS).expect("migrate");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
        let all: Vec<String> = conn
            .prepare("SELECT id FROM customer_keys ORDER BY id")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("keys");
        assert_eq!(all, ["k1", "k2"]);
        let mut st = conn
            .prepare(
                "SELECT id FROM customer_keys INDEXED BY customer_keys_duplicate_rows \
                 WHERE company_id = 'c' AND duplicate = 1 ORDER BY kind, key, id",
            )
            .expect("the partial index serves the report's condition");
        let flagged: Vec<String> = st
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(flagged, ["k1", "k2"]);
        assert_eq!(objects_named(&conn, "customer_keys_duplicates"), 0);
    }

    /// An index whose columns begin another index's only costs writes: every
    /// plan seeking through it seeks the same way through the longer one.
    /// Unique and partial indexes are not redundant that way.
    #[test]
    fn no_index_is_a_prefix_of_another() {
        let mut conn = Connection::open_in_memory().expect("open");
        run(&mut conn, ":memory:", MIGRATIONS).expect("migrate");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("tables");
        let mut redundant = Vec::new();
        for table in tables {
            // (name, unique, partial, columns)
            let mut indexes: Vec<(String, bool, bool, Vec<String>)> = Vec::new();
            let list: Vec<(String, bool, bool)> = conn
                .prepare(&format!("PRAGMA index_list(\"{table}\")"))
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(4)?)))?
                        .collect()
                })
                .expect("index list");
            for (name, unique, partial) in list {
                let columns: Vec<String> = conn
                    .prepare(&format!("PRAGMA index_info(\"{name}\")"))
                    .and_then(|mut st| st.query_map([], |r| r.get(2))?.collect())
                    .expect("index info");
                indexes.push((name, unique, partial, columns));
            }
            for (a, a_unique, a_partial, a_cols) in &indexes {
                for (b, _, b_partial, b_cols) in &indexes {
                    if a != b && !a_unique && !a_partial && !b_partial && b_cols.starts_with(a_cols)
                    {
                        redundant.push(format!("{table}: {a} {a_cols:?} begins {b} {b_cols:?}"));
                    }
                }
            }
        }
        assert!(redundant.is_empty(), "{redundant:#?}");
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 3)
            .expect("set");
        match run(&mut conn, ":memory:", MIGRATIONS) {
            Err(OpenError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 3, SCHEMA_VERSION));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
