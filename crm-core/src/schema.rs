//! The physical schema shared by every backend: which tables exist and which
//! columns they have, with their types. Backends create these tables in their
//! migrations and translate queries and change sets using this description;
//! the conformance suite checks that the two agree.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The storage type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// A UUID.
    Id,
    /// UTF-8 text.
    Text,
    /// A 64-bit integer.
    Int,
    /// A boolean.
    Bool,
    /// A calendar date.
    Date,
    /// An instant (UTC).
    Timestamp,
    /// A JSON document.
    Json,
}

/// One column of a table.
#[derive(Clone, Copy, Debug)]
pub struct ColumnDef {
    /// The column name (also the field name in the API for built-in fields).
    pub name: &'static str,
    /// The storage type.
    pub ty: ColType,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

const fn col(name: &'static str, ty: ColType) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        nullable: false,
    }
}

const fn opt(name: &'static str, ty: ColType) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        nullable: true,
    }
}

use ColType::{Bool, Date, Id, Int, Json, Text, Timestamp};

/// Columns every table starts with, in this order.
pub const COMMON_COLUMNS: [ColumnDef; 6] = [
    col("id", Id),
    col("company_id", Id),
    col("version", Int),
    col("created_at", Timestamp),
    col("updated_at", Timestamp),
    opt("deleted_at", Timestamp),
];

/// Columns that owned business records (customers, contacts, follow-ups)
/// have after the common ones, in this order.
pub const OWNED_COLUMNS: [ColumnDef; 6] = [
    opt("owner_id", Id),
    opt("department_id", Id),
    opt("created_by", Id),
    opt("archived_at", Timestamp),
    col("custom", Json),
    opt("code", Text),
];

const COMPANY: &[ColumnDef] = &[col("name", Text), col("code", Text)];
const DEPARTMENT: &[ColumnDef] = &[
    col("name", Text),
    opt("parent_id", Id),
    opt("manager_id", Id),
    col("position", Int),
];
const ROLE: &[ColumnDef] = &[
    col("name", Text),
    col("is_admin", Bool),
    col("permissions", Json),
    col("field_rules", Json),
];
const GROUP: &[ColumnDef] = &[col("name", Text), col("member_ids", Json)];
const USER: &[ColumnDef] = &[
    col("username", Text),
    col("display_name", Text),
    col("pinyin_keys", Text),
    opt("department_id", Id),
    opt("superior_id", Id),
    col("role_ids", Json),
    opt("email", Text),
    opt("mobile", Text),
    col("active", Bool),
    opt("password_hash", Text),
    col("failed_logins", Int),
    opt("locked_until", Timestamp),
];
const CUSTOM_FIELD: &[ColumnDef] = &[
    col("entity", Text),
    col("key", Text),
    col("label", Text),
    opt("label_en", Text),
    col("field_type", Text),
    col("options", Json),
    col("required", Bool),
    col("is_unique", Bool),
    col("position", Int),
];
const PICKLIST: &[ColumnDef] = &[
    col("entity", Text),
    col("field", Text),
    col("options", Json),
];
const SHARE: &[ColumnDef] = &[
    col("entity", Text),
    col("record_id", Id),
    col("user_id", Id),
    col("access", Text),
    opt("expires_at", Timestamp),
    col("granted_by", Id),
];
const CUSTOMER: &[ColumnDef] = &[
    col("name", Text),
    opt("short_name", Text),
    col("kind", Text),
    opt("category", Text),
    opt("level", Text),
    opt("source", Text),
    opt("industry", Text),
    opt("province", Text),
    opt("city", Text),
    opt("district", Text),
    opt("address", Text),
    opt("phone", Text),
    opt("phone_key", Text),
    opt("email", Text),
    opt("website", Text),
    opt("uscc", Text),
    col("name_key", Text),
    col("pinyin_keys", Text),
    opt("tags", Text),
    opt("next_follow_up", Date),
    opt("last_follow_up_at", Timestamp),
    opt("notes", Text),
    col("attachments", Json),
];
const CONTACT: &[ColumnDef] = &[
    col("customer_id", Id),
    col("name", Text),
    col("pinyin_keys", Text),
    opt("title", Text),
    opt("department_name", Text),
    opt("mobile", Text),
    opt("mobile_key", Text),
    opt("phone", Text),
    opt("phone_key", Text),
    opt("email", Text),
    opt("wechat", Text),
    opt("birthday", Date),
    opt("decision_role", Text),
    opt("id_number", Text),
    opt("notes", Text),
];
const FOLLOW_UP: &[ColumnDef] = &[
    col("customer_id", Id),
    opt("contact_id", Id),
    col("channel", Text),
    col("content", Text),
    col("occurred_at", Timestamp),
    opt("next_follow_up_at", Timestamp),
];

/// Every table the engine stores generically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Companies (tenants).
    Companies,
    /// The department tree.
    Departments,
    /// Roles and their permissions.
    Roles,
    /// User groups.
    UserGroups,
    /// Users.
    Users,
    /// Custom field definitions.
    CustomFields,
    /// Option lists for built-in choice fields.
    Picklists,
    /// Record shares.
    Shares,
    /// Customers.
    Customers,
    /// Contacts.
    Contacts,
    /// Follow-up records.
    FollowUps,
}

impl Table {
    /// All tables, in creation order.
    pub const ALL: [Table; 11] = [
        Table::Companies,
        Table::Departments,
        Table::Roles,
        Table::UserGroups,
        Table::Users,
        Table::CustomFields,
        Table::Picklists,
        Table::Shares,
        Table::Customers,
        Table::Contacts,
        Table::FollowUps,
    ];

    /// The SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Companies => "companies",
            Table::Departments => "departments",
            Table::Roles => "roles",
            Table::UserGroups => "user_groups",
            Table::Users => "users",
            Table::CustomFields => "custom_fields",
            Table::Picklists => "picklists",
            Table::Shares => "shares",
            Table::Customers => "customers",
            Table::Contacts => "contacts",
            Table::FollowUps => "follow_ups",
        }
    }

    /// Parses a table name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether records of this table have an owner, a department, custom
    /// fields and can be archived and shared.
    pub fn is_owned(self) -> bool {
        matches!(self, Table::Customers | Table::Contacts | Table::FollowUps)
    }

    fn specific(self) -> &'static [ColumnDef] {
        match self {
            Table::Companies => COMPANY,
            Table::Departments => DEPARTMENT,
            Table::Roles => ROLE,
            Table::UserGroups => GROUP,
            Table::Users => USER,
            Table::CustomFields => CUSTOM_FIELD,
            Table::Picklists => PICKLIST,
            Table::Shares => SHARE,
            Table::Customers => CUSTOMER,
            Table::Contacts => CONTACT,
            Table::FollowUps => FOLLOW_UP,
        }
    }

    /// All columns of the table in storage order: the common columns, the
    /// owned-record columns when [`Table::is_owned`], then the table's own.
    pub fn columns(self) -> Vec<ColumnDef> {
        let mut cols = COMMON_COLUMNS.to_vec();
        if self.is_owned() {
            cols.extend_from_slice(&OWNED_COLUMNS);
        }
        cols.extend_from_slice(self.specific());
        cols
    }

    /// Looks a column up by name.
    pub fn column(self, name: &str) -> Option<ColumnDef> {
        COMMON_COLUMNS
            .iter()
            .chain(if self.is_owned() {
                &OWNED_COLUMNS[..]
            } else {
                &[]
            })
            .chain(self.specific())
            .find(|c| c.name == name)
            .copied()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
