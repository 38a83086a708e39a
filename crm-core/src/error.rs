//! The domain error: what went wrong, in words that name the thing and the
//! value, with store failures kept as the source.

use crate::store::StoreError;
use serde::Serialize;
use std::fmt;

/// One field's validation problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field (API name, or `custom.key`).
    pub field: String,
    /// What is wrong, naming the value.
    pub message: String,
}

/// Every problem found in one input, so a user can fix them all at once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Adds a problem.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the validation error.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self))
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// The engine's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid; every problem is listed.
    #[error("invalid input: {0}")]
    Validation(ValidationErrors),
    /// The actor may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The record is in a state that does not allow this.
    #[error("not allowed in the current state: {0}")]
    InvalidState(String),
    /// Someone else changed the record since it was read.
    #[error(
        "{entity} {id} was changed by someone else meanwhile (已被他人修改): the change was made on version {expected}, it is at version {actual} now; reload it and apply the change again"
    )]
    Conflict {
        /// The entity.
        entity: String,
        /// The record.
        id: String,
        /// The version the caller had.
        expected: i64,
        /// The version stored now.
        actual: i64,
    },
    /// No such record (or not visible to the actor).
    #[error("{entity} {id} not found")]
    NotFound {
        /// The entity.
        entity: String,
        /// What was looked for.
        id: String,
    },
    /// The record would duplicate an existing one.
    #[error("duplicate {entity}: {message}")]
    Duplicate {
        /// The entity.
        entity: String,
        /// Which field matched, the value, and whose record it is when the
        /// actor may know.
        message: String,
    },
    /// Login failed or the account is locked.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl Error {
    /// A single-field validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        let mut v = ValidationErrors::default();
        v.push(field, message);
        Error::Validation(v)
    }

    /// A not-found error.
    pub fn not_found(entity: impl fmt::Display, id: impl fmt::Display) -> Error {
        Error::NotFound {
            entity: entity.to_string(),
            id: id.to_string(),
        }
    }

    /// This error, a not-found one told as `entity` `key` — what the caller
    /// asked for (a code), not the row it was resolved to.
    pub(crate) fn not_found_as(self, entity: impl fmt::Display, key: impl fmt::Display) -> Error {
        match self {
            Error::NotFound { .. } => Error::not_found(entity, key),
            e => e,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                table,
                id,
                expected,
                actual,
            } => Error::Conflict {
                entity: crate::crm::entity_name(table),
                id: id.to_string(),
                expected,
                actual,
            },
            StoreError::NotFound { table, id } => {
                Error::not_found(crate::crm::entity_name(table), id)
            }
            // Named as the engine's own checks name it (`customer`, not
            // the table): a duplicate caught by the store inside a
            // concurrent write is the same error as one caught before.
            StoreError::Unique { table, detail } => Error::Duplicate {
                entity: crate::crm::entity_name(table),
                message: detail,
            },
            StoreError::Refused { detail, .. } => Error::InvalidState(detail),
            // Text holding a NUL, named by its column.
            StoreError::Invalid { detail, .. } => {
                let (field, message) = detail.split_once(": ").unwrap_or(("value", &detail));
                Error::invalid(field, message)
            }
            other => Error::Store(other),
        }
    }
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
