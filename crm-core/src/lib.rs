#![doc = include_str!("../README.md")]

pub mod approval;
pub mod auth;
pub mod clock;
pub mod crm;
pub mod custom;
pub mod dedupe;
pub mod entity;
pub mod error;
pub mod export;
mod forbidden_zh;
pub mod ids;
pub mod import;
pub mod lifecycle;
pub mod maintenance;
pub mod money;
pub mod org;
pub mod pinyin;
pub mod pool;
pub mod query;
pub mod records;
pub mod sales;
pub mod schema;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod value;
pub mod view;

pub use auth::{Action, Actor, DataScope, FieldAccess, FieldRule, Permission, Role};
pub use clock::{Clock, ManualClock};
pub use crm::{Crm, CrmConfig};
pub use entity::Entity;
pub use error::{Error, Result};
pub use query::{Cond, ListQuery, Page, PageRequest};
pub use records::{BatchReport, Fields, Record, ShareAccess};
/// The id type of every record, re-exported for hosts.
pub use uuid::Uuid;
