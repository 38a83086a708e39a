//! Newtype identifiers. Every entity has its own ID type so that a contact ID
//! can never be passed where a customer ID is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The raw UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    )*};
}

id_type!(
    /// A company (tenant); every record belongs to exactly one.
    CompanyId,
    /// A department in a company's department tree.
    DepartmentId,
    /// A role granting permissions.
    RoleId,
    /// A user group.
    GroupId,
    /// A user (actor).
    UserId,
    /// A business record (customer, contact, follow-up …) of any entity.
    RecordId,
    /// A custom field definition.
    FieldId,
);
