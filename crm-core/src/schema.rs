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
    // Customer pools (0002_pools): where the customer is, since when its
    // owner holds it, who held it before, locking and the sales activity the
    // recycling rules read.
    col("place", Text),
    opt("pool_id", Id),
    opt("owned_since", Timestamp),
    opt("previous_owner_id", Id),
    opt("released_at", Timestamp),
    col("locked", Bool),
    opt("closed_at", Timestamp),
    opt("last_opportunity_at", Timestamp),
    col("open_opportunities", Int),
    opt("recycle_warned_due", Timestamp),
    opt("merged_into", Id),
    // The e-mail address lowercased (0009), the key the duplicate checks
    // find e-mail holders by through the customers' own index.
    opt("email_key", Text),
    // The name's sort key (`pinyin::sort_key`, 0014 on SQLite, 0013 on
    // PostgreSQL): lists sorted by name are ordered by it. NULL in rows
    // written before, until `Crm::rebuild_search_keys` fills it.
    opt("name_sort", Text),
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
    // The birthday as `MM-DD`, for "birthdays in the next N days" (0002_pools).
    opt("birthday_md", Text),
    // The name's sort key (see `CUSTOMER`).
    opt("name_sort", Text),
];
const FOLLOW_UP: &[ColumnDef] = &[
    col("customer_id", Id),
    opt("contact_id", Id),
    col("channel", Text),
    col("content", Text),
    col("occurred_at", Timestamp),
    opt("next_follow_up_at", Timestamp),
];
const IMPORT: &[ColumnDef] = &[
    col("entity", Text),
    col("actor_id", Id),
    col("file_name", Text),
    col("file_hash", Text),
    col("options", Json),
    col("status", Text),
    col("rows_done", Int),
    col("created", Int),
    col("updated", Int),
    col("skipped", Int),
    col("rejected", Int),
    opt("finished_at", Timestamp),
    // Added later (SQLite 0012, PostgreSQL 0011), so after the others.
    col("unchanged", Int),
];
const IMPORT_ITEM: &[ColumnDef] = &[
    col("import_id", Id),
    col("batch", Int),
    col("first_row", Int),
    col("last_row", Int),
    col("created_ids", Json),
    col("updated", Json),
    col("issues", Json),
];

const APPROVAL_FLOW: &[ColumnDef] = &[
    col("doc_type", Text),
    col("name", Text),
    col("flow_version", Int),
    col("active", Bool),
    col("definition", Json),
    opt("created_by", Id),
];
const APPROVAL_INSTANCE: &[ColumnDef] = &[
    col("flow_id", Id),
    col("flow_version", Int),
    col("doc_type", Text),
    col("document_id", Id),
    opt("document_code", Text),
    opt("title", Text),
    col("applicant_id", Id),
    col("status", Text),
    col("pending_with", Text),
    opt("amount", Int),
    col("state", Json),
    opt("finished_at", Timestamp),
];
const APPROVAL_ACTION: &[ColumnDef] = &[
    col("instance_id", Id),
    col("seq", Int),
    col("action", Text),
    opt("actor_id", Id),
    opt("step_index", Int),
    opt("step_name", Text),
    opt("to_step", Int),
    opt("comment", Text),
];

const POOL: &[ColumnDef] = &[
    col("name", Text),
    col("admin_ids", Json),
    col("member_user_ids", Json),
    col("member_department_ids", Json),
    col("limits", Json),
    col("position", Int),
];
const POOL_RULE: &[ColumnDef] = &[
    col("pool_id", Id),
    col("kind", Text),
    col("days", Int),
    col("level_days", Json),
    col("exempt_deals", Bool),
    col("exempt_open_opportunities", Bool),
    col("enabled", Bool),
    col("position", Int),
];
const POOL_MOVE: &[ColumnDef] = &[
    col("customer_id", Id),
    col("action", Text),
    col("from_place", Text),
    col("to_place", Text),
    opt("pool_id", Id),
    opt("from_owner", Id),
    opt("to_owner", Id),
    opt("actor_id", Id),
    opt("rule_id", Id),
    opt("reason", Text),
    col("customer_version", Int),
];
const CUSTOMER_KEY: &[ColumnDef] = &[
    col("customer_id", Id),
    col("kind", Text),
    col("key", Text),
    col("duplicate", Bool),
];
const DEDUPE_RULE: &[ColumnDef] = &[col("field", Text), col("mode", Text)];
const POOL_HOLDER: &[ColumnDef] = &[col("kind", Text)];

const PRODUCT_CATEGORY: &[ColumnDef] = &[
    col("name", Text),
    col("code", Text),
    opt("parent_id", Id),
    col("position", Int),
];
const PRODUCT: &[ColumnDef] = &[
    col("code", Text),
    col("name", Text),
    col("pinyin_keys", Text),
    opt("category_id", Id),
    col("unit", Text),
    col("list_price", Int),
    opt("cost", Int),
    col("tax_rate", Int),
    opt("spec", Text),
    opt("description", Text),
    col("status", Text),
    col("custom", Json),
    // The name's sort key (see `CUSTOMER`).
    opt("name_sort", Text),
];
const PIPELINE: &[ColumnDef] = &[
    col("name", Text),
    opt("department_id", Id),
    col("active", Bool),
    col("definition", Json),
];
const OPPORTUNITY: &[ColumnDef] = &[
    col("name", Text),
    col("pinyin_keys", Text),
    col("customer_id", Id),
    opt("pipeline_id", Id),
    col("stage", Text),
    col("status", Text),
    col("probability", Int),
    col("amount", Int),
    opt("expected_close", Date),
    opt("lost_reason", Text),
    opt("source", Text),
    col("products", Json),
    col("competitors", Json),
    col("stage_history", Json),
    col("stage_entered_at", Timestamp),
    opt("closed_at", Timestamp),
    opt("notes", Text),
    // The name's sort key (see `CUSTOMER`).
    opt("name_sort", Text),
];

const QUOTE: &[ColumnDef] = &[
    col("title", Text),
    col("pinyin_keys", Text),
    col("customer_id", Id),
    opt("opportunity_id", Id),
    col("root_id", Id),
    col("quote_version", Int),
    col("status", Text),
    col("lines", Json),
    col("gross", Int),
    col("discount", Int),
    col("amount", Int),
    col("tax", Int),
    col("max_discount_bp", Int),
    opt("valid_until", Date),
    opt("contract_id", Id),
    opt("notes", Text),
    // The title's sort key (see `CUSTOMER`).
    opt("title_sort", Text),
];
const CONTRACT: &[ColumnDef] = &[
    col("title", Text),
    col("pinyin_keys", Text),
    col("customer_id", Id),
    opt("opportunity_id", Id),
    opt("quote_id", Id),
    col("contract_type", Text),
    col("status", Text),
    col("lines", Json),
    col("amount", Int),
    col("tax", Int),
    opt("signed_on", Date),
    opt("start_on", Date),
    opt("end_on", Date),
    col("received", Int),
    col("outstanding", Int),
    col("invoiced", Int),
    opt("terminated_reason", Text),
    opt("notes", Text),
    // The title's sort key (see `CUSTOMER`).
    opt("title_sort", Text),
];
const PAYMENT_PLAN: &[ColumnDef] = &[
    col("contract_id", Id),
    col("instalment", Int),
    col("due_on", Date),
    col("amount", Int),
    opt("notes", Text),
];
const PAYMENT: &[ColumnDef] = &[
    col("contract_id", Id),
    col("customer_id", Id),
    opt("plan_id", Id),
    col("amount", Int),
    col("received_on", Date),
    col("method", Text),
    col("status", Text),
    opt("receipt_no", Text),
    opt("notes", Text),
    col("recorded_by", Id),
];
const INVOICE: &[ColumnDef] = &[
    col("contract_id", Id),
    col("customer_id", Id),
    col("kind", Text),
    col("invoice_type", Text),
    col("amount", Int),
    opt("number", Text),
    opt("invoice_date", Date),
    opt("notes", Text),
    // `planned` (a plan), `issued` or `voided` (作废): a voided invoice
    // stays, with why, when and by whom.
    col("status", Text),
    opt("void_reason", Text),
    opt("voided_at", Timestamp),
    opt("voided_by", Id),
];
const DELIVERY: &[ColumnDef] = &[
    col("contract_id", Id),
    col("delivered_on", Date),
    col("lines", Json),
    opt("notes", Text),
];

/// The stored sort keys: a table, the text column lists are sorted by, and
/// the column holding its [`sort_key`](crate::pinyin::sort_key). The core
/// fills the key whenever a write sets the text (`Crm::apply`), sorts by
/// the key where a list is sorted by the text, and
/// `Crm::rebuild_search_keys` fills the keys rows lack.
pub const SORT_KEYS: &[(Table, &str, &str)] = &[
    (Table::Customers, "name", "name_sort"),
    (Table::Contacts, "name", "name_sort"),
    (Table::Products, "name", "name_sort"),
    (Table::Opportunities, "name", "name_sort"),
    (Table::Quotes, "title", "title_sort"),
    (Table::Contracts, "title", "title_sort"),
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
    /// Spreadsheet imports: options, checkpoint and counts (for resume and undo).
    Imports,
    /// What each committed batch of an import created and updated (for undo).
    ImportItems,
    /// Approval flow definitions, one row per version (审批流定义).
    ApprovalFlows,
    /// Approval instances, one per submitted document (审批单).
    ApprovalInstances,
    /// Every action taken on an approval (审批记录).
    ApprovalActions,
    /// Customer pools (客户池/公海) with their admins, members and limits.
    Pools,
    /// Recycling rules of the pools (回收规则).
    PoolRules,
    /// Every move of a customer between places (pool history).
    PoolMoves,
    /// Normalised duplicate-detection keys of customers (查重索引).
    CustomerKeys,
    /// Per-company duplicate-detection settings: which keys refuse or warn.
    DedupeRules,
    /// One row per user or department that has been given customers from a
    /// pool under a cap; its version orders concurrent claims and
    /// assignments, so that the caps hold (the row's id is the user's or
    /// department's).
    PoolHolders,
    /// Product categories, two levels (产品类别).
    ProductCategories,
    /// Products (产品).
    Products,
    /// Sales pipelines: ordered stages (销售流程).
    Pipelines,
    /// Sales opportunities (销售机会).
    Opportunities,
    /// Quotes, one row per version (报价).
    Quotes,
    /// Contracts and orders (合同).
    Contracts,
    /// Payment plans: instalments with due dates (回款计划).
    PaymentPlans,
    /// Payments received (回款记录).
    Payments,
    /// Invoice plans and issued invoices (开票).
    Invoices,
    /// Deliveries of contract lines (发货).
    Deliveries,
}

impl Table {
    /// All tables, in creation order.
    pub const ALL: [Table; 32] = [
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
        Table::Imports,
        Table::ImportItems,
        Table::ApprovalFlows,
        Table::ApprovalInstances,
        Table::ApprovalActions,
        Table::Pools,
        Table::PoolRules,
        Table::PoolMoves,
        Table::CustomerKeys,
        Table::DedupeRules,
        Table::ProductCategories,
        Table::Products,
        Table::Pipelines,
        Table::Opportunities,
        Table::Quotes,
        Table::Contracts,
        Table::PaymentPlans,
        Table::Payments,
        Table::Invoices,
        Table::Deliveries,
        Table::PoolHolders,
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
            Table::Imports => "imports",
            Table::ImportItems => "import_items",
            Table::ApprovalFlows => "approval_flows",
            Table::ApprovalInstances => "approval_instances",
            Table::ApprovalActions => "approval_actions",
            Table::Pools => "pools",
            Table::PoolRules => "pool_rules",
            Table::PoolMoves => "pool_moves",
            Table::CustomerKeys => "customer_keys",
            Table::DedupeRules => "dedupe_rules",
            Table::PoolHolders => "pool_holders",
            Table::ProductCategories => "product_categories",
            Table::Products => "products",
            Table::Pipelines => "pipelines",
            Table::Opportunities => "opportunities",
            Table::Quotes => "quotes",
            Table::Contracts => "contracts",
            Table::PaymentPlans => "payment_plans",
            Table::Payments => "payments",
            Table::Invoices => "invoices",
            Table::Deliveries => "deliveries",
        }
    }

    /// Parses a table name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether records of this table have an owner, a department, custom
    /// fields and can be archived and shared.
    pub fn is_owned(self) -> bool {
        matches!(
            self,
            Table::Customers
                | Table::Contacts
                | Table::FollowUps
                | Table::Opportunities
                | Table::Quotes
                | Table::Contracts
        )
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
            Table::Imports => IMPORT,
            Table::ImportItems => IMPORT_ITEM,
            Table::ApprovalFlows => APPROVAL_FLOW,
            Table::ApprovalInstances => APPROVAL_INSTANCE,
            Table::ApprovalActions => APPROVAL_ACTION,
            Table::Pools => POOL,
            Table::PoolRules => POOL_RULE,
            Table::PoolMoves => POOL_MOVE,
            Table::CustomerKeys => CUSTOMER_KEY,
            Table::DedupeRules => DEDUPE_RULE,
            Table::PoolHolders => POOL_HOLDER,
            Table::ProductCategories => PRODUCT_CATEGORY,
            Table::Products => PRODUCT,
            Table::Pipelines => PIPELINE,
            Table::Opportunities => OPPORTUNITY,
            Table::Quotes => QUOTE,
            Table::Contracts => CONTRACT,
            Table::PaymentPlans => PAYMENT_PLAN,
            Table::Payments => PAYMENT,
            Table::Invoices => INVOICE,
            Table::Deliveries => DELIVERY,
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

    /// The column holding the sort key of `column`, when lists of this
    /// table sort `column` by one (see [`SORT_KEYS`]).
    pub fn sort_key_of(self, column: &str) -> Option<&'static str> {
        SORT_KEYS
            .iter()
            .find(|(t, source, _)| *t == self && *source == column)
            .map(|(_, _, key)| *key)
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
