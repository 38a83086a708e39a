#![doc = include_str!("../README.md")]

pub use crm_core as core;
pub use crm_core::*;

#[cfg(feature = "xlsx")]
pub use crm_io as io;
#[cfg(feature = "postgres")]
pub use crm_store_postgres as postgres;
#[cfg(feature = "sqlite")]
pub use crm_store_sqlite as sqlite;

use std::sync::Arc;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The SQLite store failed to open or migrate.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Sqlite(#[from] crm_store_sqlite::OpenError),
    /// The PostgreSQL store failed to connect or migrate.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] crm_store_postgres::OpenError),
    /// The location names a backend this build does not include.
    #[error("{0}")]
    Unsupported(String),
    /// The location cannot be read as one store (blank, or a PostgreSQL
    /// URL naming its schema twice).
    #[error("{0}")]
    Location(String),
}

/// Opens a store from a location: a `postgres://` or `postgresql://` URL
/// (feature `postgres`; the schema comes from a `schema` query parameter,
/// default `crm`), `:memory:`, or a SQLite file path (feature `sqlite`).
pub async fn open_store(location: &str) -> Result<Arc<dyn store::Store>, OpenStoreError> {
    no_blank_location(location)?;
    let is_pg = location.starts_with("postgres://") || location.starts_with("postgresql://");
    if is_pg {
        #[cfg(feature = "postgres")]
        {
            let (url, schema) = split_schema(location)?;
            let options = crm_store_postgres::PgOptions {
                schema: schema.unwrap_or_else(|| "crm".to_string()),
                ..Default::default()
            };
            let store = crm_store_postgres::PgStore::connect(&url, options).await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(OpenStoreError::Unsupported(format!(
            "{location} is a PostgreSQL URL but this build has no `postgres` feature"
        )));
    }
    #[cfg(feature = "sqlite")]
    {
        let store = if location == ":memory:" {
            crm_store_sqlite::SqliteStore::open_in_memory()?
        } else {
            crm_store_sqlite::SqliteStore::open(location)?
        };
        Ok(Arc::new(store))
    }
    #[cfg(not(feature = "sqlite"))]
    Err(OpenStoreError::Unsupported(format!(
        "{location} is a SQLite path but this build has no `sqlite` feature"
    )))
}

/// Whether a store is already at `location` (see [`open_store`]), without
/// making one: a SQLite file that exists, a PostgreSQL schema that exists;
/// `:memory:` is always there. Opening a store makes it where it is not,
/// which a mistyped location should not do.
pub async fn store_exists(location: &str) -> Result<bool, OpenStoreError> {
    no_blank_location(location)?;
    let is_pg = location.starts_with("postgres://") || location.starts_with("postgresql://");
    if is_pg {
        #[cfg(feature = "postgres")]
        {
            let (url, schema) = split_schema(location)?;
            let schema = schema.unwrap_or_else(|| "crm".to_string());
            return Ok(crm_store_postgres::PgStore::schema_exists(&url, &schema).await?);
        }
        #[cfg(not(feature = "postgres"))]
        return Err(OpenStoreError::Unsupported(format!(
            "{location} is a PostgreSQL URL but this build has no `postgres` feature"
        )));
    }
    Ok(location == ":memory:" || std::path::Path::new(location).exists())
}

/// Refuses a blank location (an unset variable, say): SQLite would open a
/// private temporary database for each connection, so that the store's
/// writer and readers would each see another, empty, database.
fn no_blank_location(location: &str) -> Result<(), OpenStoreError> {
    if location.trim().is_empty() {
        return Err(OpenStoreError::Location(
            "no store location given: name a SQLite file, `:memory:` or a postgres:// URL"
                .to_string(),
        ));
    }
    Ok(())
}

/// Splits a `schema=` query parameter off a PostgreSQL URL. A URL naming
/// the schema twice is refused: which of the two was meant is not known,
/// and opening the other would show (or create) another database.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn split_schema(url: &str) -> Result<(String, Option<String>), OpenStoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schemas = Vec::new();
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schemas.push(s.to_string());
                false
            }
            None => true,
        })
        .collect();
    if schemas.len() > 1 {
        return Err(OpenStoreError::Location(format!(
            "the PostgreSQL URL names the schema {} times ({}): give `schema=` once",
            schemas.len(),
            schemas.join(", ")
        )));
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schemas.pop()))
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn schema_parameter_is_split_off() {
        assert_eq!(
            split_schema("postgres://u@h/db?schema=erp_crm&sslmode=disable").expect("one schema"),
            (
                "postgres://u@h/db?sslmode=disable".to_string(),
                Some("erp_crm".to_string())
            )
        );
        assert_eq!(
            split_schema("postgres://u@h/db").expect("no schema"),
            ("postgres://u@h/db".to_string(), None)
        );
        let e = split_schema("postgres://u@h/db?schema=a&sslmode=disable&schema=b")
            .expect_err("two schemas")
            .to_string();
        assert!(e.contains("2 times") && e.contains("a, b"), "{e}");
    }

    #[tokio::test]
    async fn a_blank_location_is_refused() {
        for blank in ["", "  "] {
            let e = super::open_store(blank).await.err().expect("refused");
            assert!(e.to_string().contains("no store location"), "{e}");
            let e = super::store_exists(blank).await.expect_err("refused");
            assert!(e.to_string().contains("no store location"), "{e}");
        }
    }
}
