#![doc = "The pure domain of the CRM engine: entities, permission rules, validation, the query model and the storage traits. No I/O happens here."]

pub mod clock;
pub mod ids;
pub mod schema;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod value;
