//! Errors: [`OpenError`] for opening and migrating, and the mapping of
//! SQLite failures onto [`StoreError`].

use crm_core::schema::Table;
use crm_core::store::StoreError;
use rusqlite::ErrorCode;

/// The boxed cause of an [`OpenError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database file could not be opened or configured (WAL, busy
    /// timeout, foreign keys).
    #[error("cannot open SQLite database {path}")]
    Open {
        /// The path, or `:memory:`.
        path: String,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },
    /// A migration failed; it was rolled back and the schema is still at the
    /// version before it.
    #[error("SQLite migration {number} ({name}) failed")]
    Migrate {
        /// The migration's number (`0001_init.sql` is 1).
        number: u32,
        /// The migration's file name.
        name: &'static str,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },
    /// The database was written by a newer build with migrations this build
    /// does not know; opening it could corrupt it.
    #[error(
        "SQLite database schema version {found} is newer than this build supports (at most {supported}); upgrade the application"
    )]
    NewerSchema {
        /// The version found in the database (`PRAGMA user_version`).
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

/// Wraps any SQLite failure as [`StoreError::Backend`].
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        backend: crate::BACKEND,
        source: Box::new(e),
    }
}

/// Maps a failure while writing `table`: unique and primary-key violations
/// become [`StoreError::Unique`] with SQLite's message, the rest
/// [`StoreError::Backend`].
pub(crate) fn write(table: Table, e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            let detail = msg.clone().unwrap_or_else(|| e.to_string());
            StoreError::Unique { table, detail }
        }
        _ => backend(e),
    }
}
