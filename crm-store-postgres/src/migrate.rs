//! Numbered migrations, embedded in the binary and tracked per schema in
//! `schema_migrations(version, applied_at)`. See `migrations/NOTES.md`.

use crate::OpenError;
use sqlx::{AssertSqlSafe, PgPool};

/// One migration file.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// Every migration of this build, in increasing order. Append only. Versions
/// may have gaps while parallel changes land (0002 may arrive after 0003):
/// each version is recorded in `schema_migrations` and applied once,
/// whenever it shows up.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/0002_pools.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/0003_imports.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/0004_sales.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/0005_partial_duplicate_index.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/0006_pool_holders.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/0007_scope_indexes.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/0008_column_keys_only_while_shared.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/0009_email_key_column.sql"),
    },
    Migration {
        version: 10,
        sql: include_str!("../migrations/0010_import_item_issues.sql"),
    },
    Migration {
        version: 11,
        sql: include_str!("../migrations/0011_import_unchanged.sql"),
    },
    Migration {
        version: 12,
        sql: include_str!("../migrations/0012_invoice_void.sql"),
    },
    Migration {
        version: 13,
        sql: include_str!("../migrations/0013_name_sort_keys.sql"),
    },
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock class of migrations; the second key is the schema's hash,
/// so different schemas migrate independently.
const MIGRATE_LOCK_CLASS: i32 = 0x4352_4d31; // "CRM1"

/// Creates the schema when missing and applies every pending migration, each
/// in its own transaction under an advisory lock, so that processes starting
/// at the same time apply each migration exactly once.
pub(crate) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), OpenError> {
    let quoted = crate::sql::ident(schema);
    for m in MIGRATIONS {
        let fail = |source: sqlx::Error| OpenError::Migrate {
            version: m.version,
            schema: schema.to_string(),
            source,
        };
        let mut tx = pool.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(MIGRATE_LOCK_CLASS)
            .bind(schema)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        // The schema name is validated as `[a-z_][a-z0-9_]*` and quoted.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; \
             SET LOCAL search_path TO {quoted}; \
             CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations ( \
                 version bigint PRIMARY KEY, \
                 applied_at timestamptz NOT NULL DEFAULT now())"
        )))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let found: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT max(version) FROM {quoted}.schema_migrations"
        )))
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        let found = found.unwrap_or(0);
        if found > LATEST {
            return Err(OpenError::DatabaseTooNew {
                schema: schema.to_string(),
                found,
                supported: LATEST,
            });
        }
        let applied: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {quoted}.schema_migrations WHERE version = $1)"
        )))
        .bind(m.version)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        if !applied {
            sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(fail)?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {quoted}.schema_migrations (version) VALUES ($1)"
            )))
            .bind(m.version)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_increasingly_from_one() {
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[1].version > pair[0].version);
        }
    }
}
