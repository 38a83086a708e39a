//! Bulk import (导入) of spreadsheet rows.
//!
//! `crm-io` reads a workbook and hands rows of [`Cell`]s to an
//! [`ImportSession`]. This module maps the header row to fields (Chinese or
//! English labels, aliases, custom fields, repeated contact column groups),
//! validates every row with the same rules as the API (`prepare` and
//! `derive`, with picklists, users and referenced records looked up once per
//! import or batch instead of once per value), detects duplicates within the
//! file and against the store with the engine's duplicate keys — one query
//! per key per batch, also finding records the actor cannot see; a customer
//! or contact row naming a live record's code (the `编号` column of an
//! export) meets that record too (see [`ColumnRole::Code`]) — applies
//! the import's [`DuplicatePolicy`], allocates codes per batch and writes
//! each batch as one change set together with its checkpoint. An import is
//! either one change set ([`CommitMode::Atomic`]) or checkpointed batches
//! ([`CommitMode::Batches`]) that a re-run of the same file resumes; either
//! can be undone with [`Crm::undo_import`].
//!
//! Exports live in [`crate::export`]; their types are re-exported here.
//!
//! Architecture invariant: nothing here reads files or names a backend; the
//! store is reached only through [`crate::store::Store`].

use crate::auth::{Action, Actor, FieldAccess};
use crate::crm::Crm;
use crate::custom::{CustomFieldDef, CustomFieldType};
use crate::dedupe::{holder_column, holders_select, key_guard_key};
use crate::entity::{Entity, FieldDef, FieldKind};
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::{DepartmentId, RoleId, UserId};
use crate::org::{User, UserState};
use crate::records::{
    Fields, Lookups, Target, custom_key_value, field_label, guard_key, is_derived, json_text,
    output_json,
};
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Lifecycle, Op, Payload, Row, Select, Sort,
};
use crate::value::Value;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

pub use crate::export::{ExportColumn, ExportCursor, ExportValue};

/// Rows per batch unless the options say otherwise: the checkpoint unit of
/// a batched import and one write transaction. On the 100 000-row
/// benchmark, 2 000 rows were about 10 % faster than 1 000 for 35 MiB more
/// peak memory (still under calamine's own for the sheet).
pub const DEFAULT_BATCH_SIZE: usize = 2000;

/// Rows per batch at most (and per [`ImportSession::push`]): a batch is
/// one transaction, and its checkpoint keeps the batch's rejected and
/// skipped rows with their reasons.
pub const MAX_BATCH_SIZE: usize = 10_000;

/// Contact column groups a customer row may have at most.
pub const MAX_CONTACT_GROUPS: u32 = 20;

/// Values per `IN (…)` list of a duplicate or reference query.
const IN_CHUNK: usize = 1000;

// ---------------------------------------------------------------------------
// Cells and rows
// ---------------------------------------------------------------------------

/// One cell as read from a spreadsheet.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value.
    Empty,
    /// Text (also numbers and dates stored as text).
    Text(String),
    /// A number (Excel keeps phone numbers typed as numbers this way).
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A date-formatted cell without a time of day.
    Date(NaiveDate),
    /// A date-formatted cell with a time of day.
    DateTime(NaiveDateTime),
    /// A spreadsheet error such as `#N/A`.
    Error(String),
}

impl Cell {
    /// Whether the cell holds nothing (or only whitespace).
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            // Whitespace and invisible characters only (a zero-width space
            // pasted from a web page) is nothing typed either: it neither
            // sets nor clears a field.
            Cell::Text(s) => s
                .chars()
                .all(|c| c.is_whitespace() || crate::validate::is_invisible_format(c)),
            _ => false,
        }
    }

    /// The cell as the text a person would have typed: whole numbers without
    /// `.0` or exponent (`13812345678`), dates as `2026-11-27`.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Cell::Empty => None,
            Cell::Text(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
            Cell::Number(f) => Some(number_text(*f)),
            Cell::Bool(b) => Some(if *b { "是" } else { "否" }.to_string()),
            Cell::Date(d) => Some(ymd(*d)),
            Cell::DateTime(dt) if dt.time() == NaiveTime::MIN => Some(ymd(dt.date())),
            Cell::DateTime(dt) => {
                use chrono::Timelike;
                Some(format!(
                    "{} {:02}:{:02}:{:02}",
                    ymd(dt.date()),
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                ))
            }
            Cell::Error(e) => Some(e.clone()),
        }
    }
}

/// `2026-11-27`, without interpreting a format string for every cell.
fn ymd(d: NaiveDate) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

/// A number as text: whole numbers without fraction or exponent.
pub fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A number cell of a money field as the amount's text. A spreadsheet
/// shows (and computes with) 15 significant digits, so the binary noise of
/// a formula (`=B2*1.13` giving 112.99999999999999) goes first; what is
/// then within a billionth (relative) of a whole 分 is that amount
/// (`113.00`). Anything else keeps its digits (`1.005`), which the amount's
/// parser refuses as more decimals than the currency has, naming the value.
pub fn money_number_text(f: f64) -> String {
    if !f.is_finite() {
        return number_text(f);
    }
    // From ten trillion up, 15 significant digits no longer reach the 分:
    // rounding to them would change the amount (12345678901234.56 would
    // become …234.60). The number's own shortest digits are kept, and what
    // is not a whole 分 is refused by the amount's parser.
    if f.abs() >= 1e13 {
        return number_text(f);
    }
    // 15 significant digits, as the spreadsheet shows the value.
    let shown: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    let fen = shown * 100.0;
    let whole = fen.round();
    // Within a few units in the last place of the shown value: binary
    // noise, not a third decimal (`1234567.891` keeps its third decimal).
    if whole.abs() < 9e15 && (fen - whole).abs() <= 1e-13 * fen.abs().max(1.0) {
        let minor = whole as i64;
        let sign = if minor < 0 { "-" } else { "" };
        let minor = minor.unsigned_abs();
        format!("{sign}{}.{:02}", minor / 100, minor % 100)
    } else {
        number_text(shown)
    }
}

/// The date of an Excel serial day number (1900 date system, as Excel
/// counts it, including its phantom 1900-02-29); `None` outside 1900–9999
/// and for that phantom day itself (serial 60), which is no date.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDateTime> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_time(NaiveTime::MIN);
    let days = serial.trunc() as i64;
    if days == 60 {
        return None;
    }
    // Serials 1..=60 count the non-existent 1900-02-29.
    let days = if days < 61 { days + 1 } else { days };
    let secs = ((serial.fract()) * 86_400.0).round() as i64;
    base.checked_add_signed(chrono::Duration::days(days) + chrono::Duration::seconds(secs))
}

/// One data row: its 1-based row number in the sheet, cells in column order.
#[derive(Clone, Debug, PartialEq)]
pub struct SheetRow {
    /// The row number as a spreadsheet shows it (the header is row 1).
    pub number: u32,
    /// The cells, in the order of the header's columns.
    pub cells: Vec<Cell>,
}

// ---------------------------------------------------------------------------
// Options and reports
// ---------------------------------------------------------------------------

/// What to do with a row that duplicates an existing record (by the
/// engine's duplicate keys, or by the record code a customer or contact row
/// names: see [`ColumnRole::Code`]) or an earlier row of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Leave the existing record alone and report the row as skipped.
    #[default]
    Skip,
    /// Update the existing record with the row's non-empty values (if the
    /// actor may edit it); a duplicate of an earlier row is rejected.
    Update,
    /// Fail the whole import: nothing is written.
    Fail,
}

impl DuplicatePolicy {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            DuplicatePolicy::Skip => "skip",
            DuplicatePolicy::Update => "update",
            DuplicatePolicy::Fail => "fail",
        }
    }
}

impl FromStr for DuplicatePolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "skip" | "跳过" => Ok(DuplicatePolicy::Skip),
            "update" | "更新" | "覆盖" => Ok(DuplicatePolicy::Update),
            "fail" | "失败" | "报错" => Ok(DuplicatePolicy::Fail),
            other => Err(format!(
                "unknown duplicate policy '{other}'; expected skip, update or fail"
            )),
        }
    }
}

/// How an import commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Everything in one change set at the end: all or nothing. Memory grows
    /// with the file, so it takes at most
    /// [`ImportOptions::atomic_max_rows`] rows.
    #[default]
    Atomic,
    /// Each batch is one change set with its checkpoint; a failed or
    /// interrupted import is resumed by importing the same file again.
    Batches,
}

/// Where imported records go and how duplicates are handled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// What is imported: customers (with contact column groups), contacts
    /// or users.
    pub entity: Entity,
    /// What to do with duplicates.
    pub policy: DuplicatePolicy,
    /// All at once or in checkpointed batches.
    pub commit: CommitMode,
    /// Report what would happen without writing anything.
    pub dry_run: bool,
    /// Rows per batch (duplicate queries, code allocation, change sets),
    /// 1 to [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    /// The owner of created records (username or id) unless a row names
    /// one; default the actor. Another owner needs the transfer permission.
    pub owner: Option<String>,
    /// The department of created records (name or id); default the owner's.
    pub department: Option<String>,
    /// A customer pool to import into (name or id; pool administrators):
    /// created customers go to the pool's public area without an owner,
    /// like `Crm::import_into_pool`. Not with `owner` or `department`.
    pub pool: Option<String>,
    /// The file's name, for the import record.
    pub file_name: String,
    /// A digest of the file's content: an unfinished batched import of the
    /// same digest, sheet and options (entity, policy, owner, department,
    /// pool) is resumed. Empty disables resuming.
    pub file_hash: String,
    /// The sheet the rows come from (crm-io names it): with the digest, it
    /// tells which interrupted import a run continues, so another sheet of
    /// the same file is a new import.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Rows an all-or-nothing import may hold: it keeps everything it
    /// writes until its end, so a larger file is refused and imported in
    /// checkpointed batches instead. Default [`ATOMIC_MAX_ROWS`].
    #[serde(default = "atomic_max_rows")]
    pub atomic_max_rows: u64,
    /// Under [`DuplicatePolicy::Update`], a blank cell of a column the
    /// sheet gives clears the value stored in the record it updates (清空):
    /// a field that is not required, that the actor may change (not a
    /// masked or read-only column) and that is not a contact group's. By
    /// default a blank cell leaves the stored value as it is.
    #[serde(default)]
    pub blanks_clear: bool,
}

/// The default of [`ImportOptions::atomic_max_rows`].
pub const ATOMIC_MAX_ROWS: u64 = 100_000;

fn atomic_max_rows() -> u64 {
    ATOMIC_MAX_ROWS
}

impl ImportOptions {
    /// Defaults for an entity: skip duplicates, atomic, batches of
    /// [`DEFAULT_BATCH_SIZE`], into the actor.
    pub fn new(entity: Entity) -> ImportOptions {
        ImportOptions {
            entity,
            policy: DuplicatePolicy::Skip,
            commit: CommitMode::Atomic,
            dry_run: false,
            batch_size: DEFAULT_BATCH_SIZE,
            owner: None,
            department: None,
            pool: None,
            file_name: String::new(),
            file_hash: String::new(),
            sheet: None,
            atomic_max_rows: ATOMIC_MAX_ROWS,
            blanks_clear: false,
        }
    }
}

/// The state of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Batches are being committed (or the import was interrupted).
    Running,
    /// Every row was handled.
    Done,
    /// Stopped by a duplicate under [`DuplicatePolicy::Fail`].
    Failed,
    /// Undone.
    Undone,
}

impl ImportStatus {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Failed => "failed",
            ImportStatus::Undone => "undone",
        }
    }

    fn parse(s: &str) -> ImportStatus {
        match s {
            "done" => ImportStatus::Done,
            "failed" => ImportStatus::Failed,
            "undone" => ImportStatus::Undone,
            _ => ImportStatus::Running,
        }
    }
}

/// Why a row was not imported as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A value is missing or invalid.
    Invalid,
    /// The actor may not do what the row asks (another owner, an update of a
    /// record they cannot edit).
    Forbidden,
    /// The row duplicates an existing record.
    Duplicate,
    /// The row duplicates an earlier row of the file.
    DuplicateInFile,
    /// The row was imported, but shares a key the company's duplicate
    /// settings only warn of (a phone, an e-mail) with another customer or
    /// an earlier row: a possible duplicate (疑似重复).
    PossibleDuplicate,
}

/// What happened to a row with an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    /// Not imported; fix and import again.
    Rejected,
    /// Left out on purpose (a duplicate under [`DuplicatePolicy::Skip`]).
    Skipped,
    /// Imported, with a warning ([`IssueKind::PossibleDuplicate`]); listed
    /// in [`ImportReport::warnings`], never in the error workbook.
    Warned,
}

/// A row that was rejected or skipped, with the reason in English and
/// Chinese (for the error workbook).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowIssue {
    /// The sheet row number.
    pub row: u32,
    /// Rejected or skipped.
    pub outcome: RowOutcome,
    /// Why.
    pub kind: IssueKind,
    /// Every problem of the row, in English.
    pub message_en: String,
    /// Every problem of the row, in Chinese.
    pub message_zh: String,
}

/// What an import did (or, for a dry run, would do).
///
/// A resumed import reports as if it had run uninterrupted: the records
/// written (`created`, `contacts_created`, `updated`, `contacts_updated`)
/// and the rows (`rows`, `unchanged`, `skipped`, `rejected`, `issues`)
/// count the whole import,
/// earlier runs included — each committed batch keeps the rows it rejected
/// or skipped, with their reasons, and the run that resumes lists them with
/// its own, so its error workbook holds every row not imported (an import
/// whose earlier batches were committed by a build that did not keep them
/// reports this run's rows only, those after the checkpoint). A failed
/// import counts only what stays written (nothing for an all-or-nothing
/// import or a dry run; a batched one's committed batches).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportReport {
    /// The import's id; pass it to [`Crm::undo_import`]. A dry run has
    /// none, unless it would continue an interrupted import: then that
    /// import's.
    pub import_id: Option<Uuid>,
    /// The entity.
    pub entity: Entity,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Done, or failed by a duplicate under the fail policy.
    pub status: ImportStatus,
    /// Non-empty data rows.
    pub rows: u64,
    /// Records created (customers with contact groups count once).
    pub created: u64,
    /// Contacts created from contact column groups.
    pub contacts_created: u64,
    /// Existing records updated.
    pub updated: u64,
    /// Existing contacts of updated customers that contact column groups
    /// changed (a contact whose values were all the same already is not
    /// written, nor counted).
    pub contacts_updated: u64,
    /// Duplicates whose values were all the same already.
    pub unchanged: u64,
    /// Duplicates skipped (one issue each).
    pub skipped: u64,
    /// Rows rejected (one issue each).
    pub rejected: u64,
    /// The checkpoint a resumed import continued after; `None` for a new
    /// import (also when an interrupted import of the same file read
    /// another sheet or had other options: it is not continued).
    pub resumed_after: Option<u32>,
    /// Header cells that map to no field (extra columns are ignored).
    pub ignored_columns: Vec<String>,
    /// Every rejected or skipped row, in sheet order.
    pub issues: Vec<RowIssue>,
    /// The customers created that may duplicate another customer or an
    /// earlier row by a key the duplicate settings only warn of (phone and
    /// e-mail by default), in sheet order: created all the same, as a
    /// single create is, and told here (and by the duplicate report and a
    /// `customer.possible_duplicate` event) rather than left silent.
    pub warnings: Vec<RowIssue>,
}

/// What undoing an import did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UndoReport {
    /// The import.
    pub import_id: Uuid,
    /// Records removed (customers, contacts; users are deactivated and deleted).
    pub removed: u64,
    /// Records restored to their values before the import.
    pub restored: u64,
}

/// A stored import, for listing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportInfo {
    /// The id.
    pub id: Uuid,
    /// The entity.
    pub entity: String,
    /// The file name.
    pub file_name: String,
    /// The state.
    pub status: ImportStatus,
    /// The checkpoint: the sheet row number of the last row of the last
    /// committed batch (a row number, not a count of rows: header rows and
    /// empty rows are among the rows before it).
    pub rows_done: i64,
    /// Records created, with the contacts created from a customer
    /// import's contact column groups: the report's `created` plus its
    /// `contacts_created`.
    pub created: i64,
    /// Records updated, as the report's `updated`, with the contacts a
    /// customer import's contact column groups changed (its
    /// `contacts_updated`).
    pub updated: i64,
    /// Duplicates whose values were all the same already, as the report's
    /// `unchanged`. Imports stored before the stores kept this count apart
    /// have 0 here and count their unchanged rows in `skipped`.
    pub unchanged: i64,
    /// Duplicates skipped, as the report's `skipped`.
    pub skipped: i64,
    /// Rows rejected, as the report's `rejected`.
    pub rejected: i64,
    /// Who ran it.
    pub actor_id: Uuid,
    /// When it started.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

// ---------------------------------------------------------------------------
// Fields of importable entities and header mapping
// ---------------------------------------------------------------------------

const fn static_field(
    name: &'static str,
    zh: &'static str,
    en: &'static str,
    aliases: &'static [&'static str],
    kind: FieldKind,
    required: bool,
) -> FieldDef {
    FieldDef {
        name,
        zh,
        en,
        aliases,
        kind,
        required,
        writable: true,
    }
}

/// The importable fields of users (用户导入).
const USER_FIELDS: &[FieldDef] = &[
    static_field(
        "username",
        "用户名",
        "Username",
        &["账号", "登录名", "login"],
        FieldKind::Text(64),
        true,
    ),
    static_field(
        "display_name",
        "姓名",
        "Display name",
        &["名字", "name"],
        FieldKind::Text(64),
        true,
    ),
    static_field(
        "department_id",
        "部门",
        "Department",
        &["所属部门"],
        FieldKind::Text(64),
        false,
    ),
    static_field(
        "superior_id",
        "上级",
        "Superior",
        &["直属上级"],
        FieldKind::Text(64),
        false,
    ),
    static_field(
        "role_ids",
        "角色",
        "Roles",
        &[],
        FieldKind::Text(256),
        false,
    ),
    static_field(
        "email",
        "邮箱",
        "Email",
        &["电子邮箱"],
        FieldKind::Email,
        false,
    ),
    static_field(
        "mobile",
        "手机",
        "Mobile",
        &["手机号", "手机号码"],
        FieldKind::Mobile("mobile"),
        false,
    ),
];

/// The product statuses an import accepts (API value, Chinese label).
pub(crate) const PRODUCT_STATUSES: &[(&str, &str)] =
    &[("on_sale", "在售"), ("discontinued", "停售")];

/// The importable fields of products (产品导入).
pub(crate) const PRODUCT_FIELDS: &[FieldDef] = &[
    static_field(
        "code",
        "产品编号",
        "Code",
        &["编号", "产品代码", "货号", "SKU", "sku"],
        FieldKind::Text(40),
        false,
    ),
    static_field(
        "name",
        "产品名称",
        "Name",
        &["名称", "品名", "product"],
        FieldKind::Text(128),
        true,
    ),
    static_field(
        "category_id",
        "产品类别",
        "Category",
        &["类别", "分类", "产品分类"],
        FieldKind::Text(128),
        false,
    ),
    static_field(
        "unit",
        "单位",
        "Unit",
        &["计量单位"],
        FieldKind::Text(16),
        false,
    ),
    static_field(
        "list_price",
        "标准价",
        "List price",
        &["价格", "单价", "售价", "标准价格", "price"],
        FieldKind::Text(32),
        true,
    ),
    static_field(
        "cost",
        "成本",
        "Cost",
        &["成本价"],
        FieldKind::Text(32),
        false,
    ),
    static_field(
        "tax_rate",
        "税率",
        "Tax rate",
        &["增值税率"],
        FieldKind::Text(16),
        false,
    ),
    static_field(
        "spec",
        "规格",
        "Specification",
        &["规格型号", "型号", "spec"],
        FieldKind::Text(200),
        false,
    ),
    static_field(
        "description",
        "描述",
        "Description",
        &["说明", "产品描述"],
        FieldKind::Text(2000),
        false,
    ),
    static_field(
        "status",
        "状态",
        "Status",
        &["销售状态"],
        FieldKind::Enum(PRODUCT_STATUSES),
        false,
    ),
];

/// The fields of an importable entity that is not an owned business record
/// (users, products): a fixed list instead of the entity's field table.
fn static_fields(entity: Entity) -> Option<&'static [FieldDef]> {
    match entity {
        Entity::User => Some(USER_FIELDS),
        Entity::Product => Some(PRODUCT_FIELDS),
        _ => None,
    }
}

/// Whether an entity can be imported.
pub fn importable(entity: Entity) -> bool {
    matches!(
        entity,
        Entity::Customer | Entity::Contact | Entity::User | Entity::Product
    )
}

/// The fields an import of the entity can set: the writable built-in
/// fields of business records, the user fields for users, the catalogue
/// fields for products. Later modules plug in by returning theirs.
pub fn import_fields(entity: Entity) -> Vec<&'static FieldDef> {
    if let Some(fields) = static_fields(entity) {
        return fields.iter().collect();
    }
    match entity {
        e if importable(e) => e
            .fields()
            .iter()
            .filter(|f| f.writable && f.kind != FieldKind::Attachments)
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn find_field(entity: Entity, name: &str) -> Option<&'static FieldDef> {
    let n = name.trim();
    match static_fields(entity) {
        Some(fields) => fields.iter().find(|f| {
            f.name == n || f.zh == n || f.en.eq_ignore_ascii_case(n) || f.aliases.contains(&n)
        }),
        None => entity.field(n),
    }
}

/// Header text as plain as it reads: full-width ASCII (`Ｅｍａｉｌ`,
/// `联系人１`, `（`) as ASCII, every run of whitespace (ideographic spaces,
/// tabs, line breaks) as one space, trimmed.
fn fold_header(h: &str) -> String {
    let mut t = String::with_capacity(h.len());
    let mut space = false;
    for c in h.chars() {
        let c = match c {
            // U+FF01–U+FF5E mirror ASCII 0x21–0x7E.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            space = true;
            continue;
        }
        if space && !t.is_empty() {
            t.push(' ');
        }
        space = false;
        t.push(c);
    }
    t
}

/// A header cell without the decorations templates and people add:
/// surrounding spaces, a `*` marking a required column, `(必填)`; full-width
/// letters, digits and punctuation read as their ASCII twins and runs of
/// whitespace as one space (see `fold_header`).
pub fn clean_header(h: &str) -> String {
    let mut t = fold_header(h);
    for suffix in ["(必填)", "(选填)", "(required)", "(optional)"] {
        if let Some(s) = t.trim_end().strip_suffix(suffix) {
            t = s.to_string();
        }
    }
    t.trim().trim_matches('*').trim().to_string()
}

/// Splits a contact group header: `联系人1姓名`, `联系人2 手机`, `Contact 1
/// Mobile`, `联系人手机` (group 1), `联系人` (group 1's name).
fn contact_group(h: &str) -> Option<(u32, String)> {
    let lower = h.to_lowercase();
    let rest = if let Some(r) = h.strip_prefix("联系人") {
        r.to_string()
    } else if lower.starts_with("contact") {
        h.get("contact".len()..)?.to_string()
    } else {
        return None;
    };
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let group = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    let field = rest[digits.len()..]
        .trim_start_matches([' ', '-', '_', '.', ':', '：', '·'])
        .trim()
        .to_string();
    let field = if field.is_empty() {
        "name".to_string()
    } else {
        field
    };
    Some((group, field))
}

/// Where one column goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    /// A field of the imported entity: its API name, `custom.key`, or
    /// `owner_id`. A contact import's customer column holding
    /// [`crate::export::NOT_SHOWN`] (how an export writes a customer the
    /// exporter may not see) keeps the customer of the contact the row's
    /// code names, and refuses a row naming no contact.
    Field(String),
    /// A field of the n-th contact (from 1) of a customer row.
    Contact {
        /// The group number.
        group: u32,
        /// The contact field's API name or `custom.key`.
        field: String,
    },
    /// The record's code (`编号`, `Code`; for customers also `客户编号`,
    /// for contacts `联系人编号`) in a customer or contact import, as its
    /// export writes it. Never written (codes are the engine's): a code
    /// naming a live record of the company makes the row a duplicate of
    /// it, as its other duplicate keys do; a code naming none (a sheet's
    /// own numbering) leaves the row to its other keys.
    Code,
    /// The code of the n-th contact of a customer row (`联系人1编号`,
    /// `Contact 1 Code`: the group's number written out). Never written:
    /// under [`DuplicatePolicy::Update`] it names the contact of the
    /// customer that the group updates (see [`Crm::begin_import`]); one
    /// naming a contact in the recycle bin or another customer's refuses
    /// its row, one naming no contact is the sheet's own numbering.
    ContactCode {
        /// The group number.
        group: u32,
    },
    /// The code of a contact's customer (`客户编号`, `Customer code`) in a
    /// contact import, as a contact export writes it beside the customer's
    /// name: a row giving one names its customer by that code (among the
    /// customers the actor may read), whatever its customer column says —
    /// a renamed customer is still found. It stands for the customer
    /// column where a sheet has no other.
    CustomerCode,
    /// The record's version as its export wrote it (`版本`, `Version`: see
    /// [`crate::export::VERSION_HEADERS`]) in a customer or contact import.
    /// Never written: under [`DuplicatePolicy::Update`] a row of a version
    /// older than the stored record's is refused (the record was changed
    /// since the sheet was exported, and the row would undo that change);
    /// a row without one updates as before.
    Version,
    /// Not imported (an extra column).
    Ignored,
}

/// The columns of a sheet mapped to fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeaderMap {
    /// One role per column, in column order.
    pub roles: Vec<ColumnRole>,
    /// Header cells that map to nothing.
    pub ignored: Vec<String>,
}

/// How one target field is interpreted, for coercing cells.
#[derive(Clone, Copy, Debug)]
enum CellKind {
    Builtin(FieldKind),
    Custom(CustomFieldType),
    /// An amount kept as text by its field (a product's list price, cost).
    Money,
    /// A field the actor sees masked (an export writes it so), or one
    /// read-only for them (a `read_only` field rule): read as
    /// text and never written, only compared with what the actor is shown
    /// of the stored value (see `ImportSession::masked_mismatch`).
    Masked,
    Other,
}

/// The smallest number a spreadsheet may already have rounded: Excel keeps
/// 15 significant digits, so a number cell of 16 or more digits (a card
/// number, an ID number, a credit code) no longer holds what was typed.
const MAX_EXACT_NUMBER: f64 = 1e15;

impl CellKind {
    /// Whether the field takes text (where a number cell is read as its
    /// digits), not a number, a date or a yes/no value.
    fn is_text_like(self) -> bool {
        !matches!(
            self,
            CellKind::Builtin(FieldKind::Date | FieldKind::DateTime | FieldKind::Attachments)
                | CellKind::Money
                | CellKind::Custom(
                    CustomFieldType::Number
                        | CustomFieldType::Money
                        | CustomFieldType::Date
                        | CustomFieldType::Boolean
                )
        )
    }
}

impl Crm {
    /// Maps a header row to fields: API names, Chinese and English labels,
    /// aliases and custom field labels, in any order, extra columns ignored;
    /// for customers also contact column groups (`联系人1姓名`, `联系人1手机`,
    /// `联系人2姓名` …); for customers and contacts the record code column
    /// an export writes (`编号`, `Code`: [`ColumnRole::Code`]). Refuses a
    /// header that lacks a required field, names a field twice, or names a
    /// field the actor may not set.
    pub async fn map_headers(
        &self,
        actor: &Actor,
        entity: Entity,
        headers: &[String],
    ) -> Result<HeaderMap> {
        let customs = if entity.is_record() {
            self.custom_fields(actor, entity).await?
        } else {
            Vec::new()
        };
        let contact_customs = if entity == Entity::Customer {
            self.custom_fields(actor, Entity::Contact).await?
        } else {
            Vec::new()
        };
        map_headers_with(actor, entity, headers, &customs, &contact_customs, true)
    }
}

fn map_headers_with(
    actor: &Actor,
    entity: Entity,
    headers: &[String],
    customs: &[CustomFieldDef],
    contact_customs: &[CustomFieldDef],
    need_required: bool,
) -> Result<HeaderMap> {
    if !importable(entity) {
        return Err(Error::invalid(
            "entity",
            format!("{entity} cannot be imported (customers, contacts, users and products can)"),
        ));
    }
    // Custom field labels are compared as headers are read (full-width
    // characters and doubled spaces folded).
    let fold = |defs: &[CustomFieldDef]| -> Vec<CustomFieldDef> {
        defs.iter()
            .cloned()
            .map(|mut d| {
                d.label = fold_header(&d.label);
                d.label_en = d.label_en.as_deref().map(fold_header);
                d
            })
            .collect()
    };
    let (customs, contact_customs) = (&fold(customs)[..], &fold(contact_customs)[..]);
    let mut errors = ValidationErrors::default();
    let mut roles = Vec::with_capacity(headers.len());
    let mut ignored = Vec::new();
    let mut seen: HashMap<ColumnRole, String> = HashMap::new();
    let resolve = |e: Entity, name: &str, customs: &[CustomFieldDef]| -> Option<String> {
        if static_fields(e).is_some() {
            return find_field(e, name).map(|d| d.name.to_string());
        }
        match Crm::resolve_target(e, name, customs)? {
            Target::Owner => Some("owner_id".to_string()),
            Target::Builtin(def) if def.writable && def.kind != FieldKind::Attachments => {
                Some(def.name.to_string())
            }
            Target::Builtin(_) => None,
            Target::Custom(def) => Some(format!("custom.{}", def.key)),
        }
    };
    for (i, raw) in headers.iter().enumerate() {
        let h = clean_header(raw);
        if h.is_empty() {
            roles.push(ColumnRole::Ignored);
            continue;
        }
        let mut role = resolve(entity, &h, customs).map(ColumnRole::Field);
        if role.is_none()
            && entity == Entity::Customer
            && let Some((group, field)) = contact_group(&h)
            && (1..=MAX_CONTACT_GROUPS).contains(&group)
        {
            role = resolve(Entity::Contact, &field, contact_customs)
                .filter(|f| f != "customer_id" && f != "owner_id")
                .map(|field| ColumnRole::Contact { group, field });
            // A group's code only with its number written out (`联系人1编号`):
            // `联系人编号` alone reads as a contact import's own code column.
            if role.is_none()
                && is_code_header(Entity::Contact, &field)
                && h.chars().any(|c| c.is_ascii_digit())
            {
                role = Some(ColumnRole::ContactCode { group });
            }
        }
        if role.is_none() && entity == Entity::Contact && is_customer_code_header(&h) {
            role = Some(ColumnRole::CustomerCode);
        }
        // A field (built-in or custom) of that name comes first: a
        // company's custom field labelled 编号 keeps its column.
        if role.is_none() && is_code_header(entity, &h) {
            role = Some(ColumnRole::Code);
        }
        if role.is_none() && is_version_header(entity, &h) {
            role = Some(ColumnRole::Version);
        }
        let Some(role) = role else {
            ignored.push(h);
            roles.push(ColumnRole::Ignored);
            continue;
        };
        // (The code column is only read, never written: no field rule.)
        let written = match &role {
            ColumnRole::Field(f) => Some((entity, f.as_str())),
            ColumnRole::Contact { field, .. } => Some((Entity::Contact, field.as_str())),
            // It sets the contact's customer.
            ColumnRole::CustomerCode => Some((Entity::Contact, "customer_id")),
            ColumnRole::Code
            | ColumnRole::ContactCode { .. }
            | ColumnRole::Version
            | ColumnRole::Ignored => None,
        };
        // A column of the record's own that the actor sees masked, as an
        // export gave it to them, is read back but never written (a value
        // other than the one shown refuses its row) — unless rows need it
        // (a required field), which they then could never give.
        let required = |f: &str| match f.strip_prefix("custom.") {
            Some(key) => customs.iter().any(|d| d.key == key && d.required),
            None => find_field(entity, f).is_some_and(|d| d.required),
        };
        // So is a customer row's contact group column (联系人1手机) the actor
        // sees masked: read back against the contact the group names.
        let contact_required = |f: &str| match f.strip_prefix("custom.") {
            Some(key) => contact_customs.iter().any(|d| d.key == key && d.required),
            None => find_field(Entity::Contact, f).is_some_and(|d| d.required),
        };
        // So is a product's cost the actor sees masked (`***`): a value
        // other than the one shown refuses its row.
        let masked_own = (matches!(entity, Entity::Customer | Entity::Contact)
            && matches!(&role, ColumnRole::Field(f) if !required(f))
            || entity == Entity::Customer
                && matches!(&role, ColumnRole::Contact { field, .. }
                    if field != "name" && !contact_required(field))
            || entity == Entity::Product
                && matches!(&role, ColumnRole::Field(f)
                    if f == crate::sales::product::COST_FIELD
                        && actor.field_access(entity, f) == FieldAccess::Masked))
            && written.is_some_and(|(e, f)| {
                matches!(
                    actor.field_access(e, f),
                    FieldAccess::Masked | FieldAccess::ReadOnly
                )
            });
        if let Some((e, field)) = written
            && (e.is_record() || e == Entity::Product)
            && field != "owner_id"
            && !masked_own
            && actor.field_access(e, field) != FieldAccess::Full
        {
            return Err(Error::Forbidden(format!(
                "{} may not set {e}.{field} (column {} '{h}')",
                actor.display_name,
                column_name(i)
            )));
        }
        if let Some(prev) = seen.insert(role.clone(), h.clone()) {
            errors.push(
                h.clone(),
                format!(
                    "column {} '{h}' names the same field as '{prev}' (列重复)",
                    column_name(i)
                ),
            );
        }
        roles.push(role);
    }
    for def in import_fields(entity).into_iter().filter(|_| need_required) {
        // A contact's customer may be named by its code alone.
        let by_code = def.name == "customer_id" && seen.contains_key(&ColumnRole::CustomerCode);
        if def.required && !by_code && !seen.contains_key(&ColumnRole::Field(def.name.to_string()))
        {
            errors.push(
                field_label(def),
                format!(
                    "the required column {} ({}) is missing (缺少必填列)",
                    def.zh, def.en
                ),
            );
        }
    }
    for def in customs.iter().filter(|d| d.required) {
        if !seen.contains_key(&ColumnRole::Field(format!("custom.{}", def.key))) {
            errors.push(
                format!("custom.{}", def.key),
                format!("the required column {} is missing (缺少必填列)", def.label),
            );
        }
    }
    let groups: HashSet<u32> = roles
        .iter()
        .filter_map(|r| match r {
            ColumnRole::Contact { group, .. } | ColumnRole::ContactCode { group } => Some(*group),
            _ => None,
        })
        .collect();
    for g in groups {
        if !seen.contains_key(&ColumnRole::Contact {
            group: g,
            field: "name".into(),
        }) {
            errors.push(
                format!("联系人{g}姓名"),
                format!("contact {g} has columns but no name column (联系人{g}缺少姓名列)"),
            );
        }
    }
    errors.into_result()?;
    Ok(HeaderMap { roles, ignored })
}

/// Whether a (cleaned) header names the record code of a customer or
/// contact import: `编号`, `code` in any case, and the entity's own name
/// for it (`客户编号`, `Customer code`; `联系人编号`, `Contact code`).
/// Only these two imports match rows by code; a product's code is one of
/// its fields.
fn is_code_header(entity: Entity, h: &str) -> bool {
    let own = match entity {
        Entity::Customer => ("客户编号", "customer code"),
        Entity::Contact => ("联系人编号", "contact code"),
        _ => return false,
    };
    h == "编号" || h.eq_ignore_ascii_case("code") || h == own.0 || h.eq_ignore_ascii_case(own.1)
}

/// Whether a (cleaned) header of a customer or contact import names the
/// record's version column of an export (`版本`, `Version` in any case).
pub(crate) fn is_version_header(entity: Entity, h: &str) -> bool {
    matches!(entity, Entity::Customer | Entity::Contact | Entity::Product)
        && (h == crate::export::VERSION_HEADERS.0
            || h.eq_ignore_ascii_case(crate::export::VERSION_HEADERS.1))
}

/// The refusal of a row exported at version `was` of record `name`, now
/// at version `now`: writing it would undo the changes made since (or,
/// for a version the record never had, the row is not of this record as
/// exported).
fn stale_row(name: &str, was: i64, now: i64) -> (String, String) {
    if was > now {
        return (
            format!(
                "Version: {name} has no version {was} (it is at version {now}): keep the \
                 version the export wrote, or clear it"
            ),
            format!("版本：{name} 没有版本 {was}（现为 {now}），请保留导出时的版本或清空"),
        );
    }
    (
        format!(
            "{name} was changed since this file was exported (version {was}, now {now}): \
             export it again and redo the change"
        ),
        format!("{name} 在导出后已被修改（导出时版本 {was}，现为 {now}）：请重新导出后再修改"),
    )
}

/// The Chinese and English headers of the customer's code in a contact
/// export (beside its 所属客户), read back by a contact import
/// ([`ColumnRole::CustomerCode`]).
pub const CUSTOMER_CODE_HEADERS: (&str, &str) = ("客户编号", "Customer code");

/// Whether a (cleaned) header of a contact import names the contact's
/// customer by code (see [`CUSTOMER_CODE_HEADERS`]).
fn is_customer_code_header(h: &str) -> bool {
    h == CUSTOMER_CODE_HEADERS.0 || h.eq_ignore_ascii_case(CUSTOMER_CODE_HEADERS.1)
}

/// The spreadsheet name of a 0-based column: A, B, …, Z, AA, …
pub fn column_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Messages in Chinese
// ---------------------------------------------------------------------------

/// The Chinese twin of a validation message produced by `prepare`/`derive`.
/// A message without the Chinese hint in parentheses that ends it, and
/// that hint: `'王' is the name of several customers; give the code
/// (多条记录同名，请填写编号)` → the English part and `多条记录同名，请填写编号`.
/// A hint is a phrase (three Chinese characters or more): a value's
/// Chinese spelling (`is not yes/no (是/否)`) stays. A message without one
/// comes back whole, with `None`.
fn split_zh_tail(message: &str) -> (&str, Option<&str>) {
    let split = message
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once(" ("))
        .filter(|(_, tail)| {
            tail.chars()
                .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
                .count()
                >= 3
        });
    match split {
        Some((text, tail)) => (text, Some(tail)),
        None => (message, None),
    }
}

/// A message for English-only output: every Chinese hint in parentheses
/// (` (缺少必填列)`, ` (多条记录同名，请填写编号)`: a phrase of three
/// Chinese characters or more) left out, wherever it stands; the engine's
/// messages carry them for Chinese readers of the one message.
pub fn english_only(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        match from[2..].find(')') {
            Some(end)
                if from[2..2 + end]
                    .chars()
                    .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
                    .count()
                    >= 3 =>
            {
                rest = &from[2 + end + 1..];
            }
            _ => {
                out.push_str(" (");
                rest = &from[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a user row naming the user itself as superior is refused, as
/// `update_user` says it.
const OWN_SUPERIOR: &str = "a user cannot be their own superior";

fn zh_message(kind: Option<CellKind>, raw: Option<&str>, en: &str) -> String {
    if let (Some(CellKind::Builtin(k)), Some(raw)) = (kind, raw) {
        let invalid = match k {
            FieldKind::Phone(_) => crate::validate::phone(raw).err(),
            FieldKind::Mobile(_) => crate::validate::mobile(raw).err(),
            FieldKind::Email => crate::validate::email(raw).err(),
            FieldKind::Url => crate::validate::url(raw).err(),
            FieldKind::Uscc => crate::validate::uscc(raw).err(),
            FieldKind::ResidentId => crate::validate::resident_id(raw).err(),
            FieldKind::PersonName => crate::validate::person_name(raw).err(),
            _ => None,
        };
        if let Some(inv) = invalid {
            return inv.message_zh();
        }
    }
    if en == "is required" {
        return "必填".into();
    }
    if en == OWN_SUPERIOR {
        return "用户不能是自己的上级".into();
    }
    if let Some(n) = en
        .strip_prefix("is longer than ")
        .and_then(|r| r.strip_suffix(" characters"))
    {
        return format!("超过 {n} 个字符");
    }
    if en == "is computed and cannot be set" {
        return "为系统计算字段，不能导入".into();
    }
    if let Some((value, options)) = en
        .split_once("' is not one of the options: ")
        .or_else(|| en.split_once("' is not one of: "))
    {
        return format!(
            "「{}」不是可选值之一，可选：{options}",
            value.trim_start_matches('\'')
        );
    }
    if let Some(v) = en.strip_suffix("' is not a date (expected e.g. 2026-11-27)") {
        return format!(
            "「{}」不是日期（例如 2026-11-27）",
            v.trim_start_matches('\'')
        );
    }
    if let Some((v, rest)) = en.split_once("': there is no day ") {
        let v = v.trim_start_matches('\'');
        let mut parts = rest.split([' ']).filter_map(|p| p.parse::<u32>().ok());
        if let (Some(d), Some(m), Some(y)) = (parts.next(), parts.next(), parts.next()) {
            return if (1..=12).contains(&m) {
                format!("「{v}」：{y} 年 {m} 月没有 {d} 日")
            } else {
                format!("「{v}」：没有 {m} 月")
            };
        }
    }
    if let Some((v, m)) = en.split_once("': there is no month ") {
        return format!("「{}」：没有 {m} 月", v.trim_start_matches('\''));
    }
    if let Some((v, y)) = en
        .strip_suffix(" is out of range (years 1000 to 9999 are accepted)")
        .and_then(|rest| rest.split_once("': the year "))
    {
        return format!(
            "「{}」：年份 {y} 超出范围（须在 1000 到 9999 之间）",
            v.trim_start_matches('\'')
        );
    }
    if let Some(v) = en.strip_suffix("' is not a date and time (expected e.g. 2026-11-27 14:30)") {
        return format!(
            "「{}」不是日期时间（例如 2026-11-27 14:30）",
            v.trim_start_matches('\'')
        );
    }
    if let Some(v) = en.strip_suffix("' is not a number") {
        return format!("「{}」不是数字", v.trim_start_matches('\''));
    }
    if let Some(v) = en.strip_suffix("' is not yes/no (是/否)") {
        return format!("「{}」不是 是/否", v.trim_start_matches('\''));
    }
    if let Some(v) = en.strip_suffix("' is not an amount") {
        return format!("「{}」不是金额", v.trim_start_matches('\''));
    }
    if let Some(v) = en.strip_suffix("' is not a tax rate") {
        return format!("「{}」不是税率", v.trim_start_matches('\''));
    }
    if let Some(v) = en.strip_suffix(&format!(
        " is not one of {}",
        crate::sales::product::TAX_RATES_TEXT
    )) {
        return format!("{v} 不是 13%、9%、6%、5%、3%、1%、0% 之一");
    }
    if let Some(v) = en.strip_suffix(" is negative") {
        return format!("{v} 为负数");
    }
    if en == "must have 1 to 40 characters" {
        return "须为 1 到 40 个字符".into();
    }
    if let Some(v) = en.strip_prefix("no user '") {
        return format!("找不到用户「{}」", v.trim_end_matches('\''));
    }
    if let Some(v) = en.strip_suffix("' is the name of several users; give the username") {
        return format!(
            "「{}」是多个用户的姓名，请填写用户名",
            v.trim_start_matches('\'')
        );
    }
    if let Some((v, what)) = en
        .split_once("' is the name of several ")
        .and_then(|(v, r)| {
            Some((
                v,
                r.strip_suffix("s; give the code (多条记录同名，请填写编号)")?,
            ))
        })
    {
        let what = match what {
            "customer" => "客户",
            "contact" => "联系人",
            _ => "记录",
        };
        return format!(
            "「{}」是多个{what}的名称，请填写编号",
            v.trim_start_matches('\'')
        );
    }
    if let Some(d) = en
        .strip_prefix("several departments are named ")
        .and_then(|r| r.strip_suffix("; give the department's id (部门名称重复，请填写部门ID)"))
    {
        return format!("有多个部门名为「{d}」，请填写部门ID");
    }
    if let Some(r) = en
        .strip_prefix("several roles are named ")
        .and_then(|r| r.strip_suffix("; give the role's id (角色名称重复，请填写角色ID)"))
    {
        return format!("有多个角色名为「{r}」，请填写角色ID");
    }
    if let Some(v) = en
        .strip_prefix("user ")
        .and_then(|r| r.strip_suffix(" is deactivated"))
    {
        return format!("用户 {v} 已停用");
    }
    if en.contains("has a birth date") && en.contains("in the future") {
        return "出生日期晚于今天".into();
    }
    if let Some(d) = en.strip_suffix(" is in the future") {
        return format!("{d} 晚于今天");
    }
    if let Some(d) = en.strip_suffix(" is before 1900") {
        return format!("{d} 早于 1900 年");
    }
    if let Some(v) = en.strip_suffix("' is not a finite number") {
        return format!("「{}」不是有限的数字", v.trim_start_matches('\''));
    }
    if let Some(v) = en.strip_suffix("' is not a valid local time") {
        return format!("「{}」不是有效的本地时间", v.trim_start_matches('\''));
    }
    if let Some((v, why)) = en
        .strip_suffix(" (money fields are kept in 元)")
        .and_then(|r| r.split_once("': "))
    {
        return format!(
            "「{}」不是人民币金额（金额字段以元计）：{why}",
            v.trim_start_matches('\'')
        );
    }
    if en.starts_with("holds a NUL character") {
        return "含有空字符（\\0）".into();
    }
    if en == "only enterprise customers have a unified social credit code" {
        return "个人客户不能填写统一社会信用代码".into();
    }
    if let Some(rest) = en.strip_suffix(" not found") {
        let what = rest.split_once(' ').map(|(_, k)| k).unwrap_or(rest);
        return format!("找不到「{what}」");
    }
    en.to_string()
}

// ---------------------------------------------------------------------------
// The import session
// ---------------------------------------------------------------------------

/// One duplicate key of a validated row.
#[derive(Clone, Debug)]
struct DupKey {
    /// Which key: `uscc`, `name_key`, `mobile_key`, `username`, `custom.x`,
    /// a contact's name without a mobile ([`CONTACT_NAME_KEY`]), an
    /// individual's name with a phone or e-mail (`person.phone`,
    /// `person.email`: see [`person_keys`]).
    kind: String,
    /// The value as compared (for contacts prefixed by the customer id).
    text: String,
    /// The value to query.
    value: Value,
    /// The query column.
    col: Col,
    /// The column and value the key is paired with: the customer a
    /// contact's mobile (or, without a mobile, its name) is compared
    /// within, an individual's name key its phone or e-mail goes with
    /// (see [`shared_key`]). The key's `text` is then the pair's,
    /// `{parent}:{value}`.
    parent: Option<(&'static str, Value)>,
    /// The records the guard of this key leaves out: for a created record,
    /// those the store still shows holding the key that rows of this import
    /// move away from it (see `rekeyed`); for an updated one, the record
    /// and those the probe found holding the key.
    moving: Vec<Uuid>,
    /// How messages name the key, in English and Chinese, and what follows
    /// the value in English: see [`DupKey::what_en`] and [`DupKey::label`].
    words: (Cow<'static, str>, Cow<'static, str>, &'static str),
    /// The value messages show, when it is not `text` (a name rather than
    /// its key; a mobile without its customer; a unique custom text as
    /// typed rather than its key).
    shown: Option<String>,
    /// Whether the key is a unique custom text's
    /// [`text_key`](crate::validate::text_key) (`text` and `value`), found
    /// in the store with [`Filter::TextKeyIn`] rather than `In`.
    by_text_key: bool,
}

impl DupKey {
    /// What the key is, for a message about many values of it, e.g.
    /// `mobile for the same customer`.
    fn label(&self) -> String {
        format!("{}{}", self.words.0, self.words.2)
    }

    /// The key and its value, for messages in English, e.g. `name 华为`.
    /// (Made when a message needs it: most rows never do.)
    fn what_en(&self) -> String {
        let (en, _, tail) = &self.words;
        format!("{en} {}{tail}", self.shown.as_deref().unwrap_or(&self.text))
    }

    /// The key and its value, for messages in Chinese.
    fn what_zh(&self) -> String {
        format!(
            "{} {}",
            self.words.1,
            self.shown.as_deref().unwrap_or(&self.text)
        )
    }
}

/// The kind of the duplicate key a record code gives a row (see
/// [`ColumnRole::Code`]). It only finds records: the guards of a batch's
/// writes leave it out (a created record takes a new code of its own,
/// perhaps the very code of the row; an updated one keeps its code), and a
/// row updating a record does not move it to another code (see `rekeyed`).
const CODE_KEY: &str = "code";

/// The duplicate key of a record code a row names.
fn code_key(code: String) -> DupKey {
    DupKey {
        kind: CODE_KEY.into(),
        value: Value::Text(code.clone()),
        text: code,
        col: Col::Column("code"),
        parent: None,
        moving: Vec::new(),
        words: ("code".into(), "编号".into(), ""),
        shown: None,
        by_text_key: false,
    }
}

/// The kind of a contact's name within its customer as a duplicate key of
/// a contact row without a mobile (see [`contact_name_key`]).
const CONTACT_NAME_KEY: &str = "contact_name";

/// Whether several stored records may hold a duplicate key of `kind` (a
/// contact's name within its customer, an individual's name with a phone
/// or e-mail): nothing unique in the store, so a row meets the record
/// holding it only when one does — live records before archived ones —
/// and is refused as ambiguous when several do (see
/// [`ImportSession::matched`]). Such a key does not make a row matching
/// one record by another key a match of two.
fn shared_key(kind: &str) -> bool {
    kind == CONTACT_NAME_KEY || kind.starts_with("person.")
}

/// The key a contact's name is compared by where it is the contact's only
/// key (a row or contact group without a mobile): spelling aside, as
/// customer names and search compare names — full-width forms as ASCII,
/// whitespace trimmed and collapsed, lower case
/// ([`text_key`](crate::validate::text_key)), traditional Chinese
/// characters as simplified ones ([`crate::validate::simplified`]),
/// accents, decomposed marks and ligatures folded as search folds them
/// ([`crate::pinyin::push_folded`]: `JÜRGEN WEISS` and `jürgen weiß` have
/// one key), and every apostrophe as `'` (`O’Neil`, `O'Neil`). Word
/// boundaries count (`Ann A Lee` is not `Anna Lee`).
fn contact_name_fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in crate::validate::text_key(name).chars() {
        match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{00B4}' | '`' => out.push('\''),
            c => crate::pinyin::push_folded(&mut out, crate::validate::simplified(c)),
        }
    }
    out
}

/// The duplicate key of a contact without a mobile: its name within its
/// customer `customer`, compared by [`contact_name_fold`] (as
/// [`match_contact`] compares it; the key's value, which guards lock, is
/// the name as given). `None` without a name.
fn contact_name_key(customer: &Value, set: &BTreeMap<&'static str, Value>) -> Option<DupKey> {
    let name = set.get("name").filter(|v| !v.is_null())?.clone();
    let shown = key_text(&name);
    Some(DupKey {
        kind: CONTACT_NAME_KEY.into(),
        text: format!("{}:{}", key_text(customer), contact_name_fold(&shown)),
        col: Col::Column("name"),
        value: name,
        parent: Some(("customer_id", customer.clone())),
        moving: Vec::new(),
        words: (
            "name".into(),
            "同一客户的联系人姓名".into(),
            " for the same customer",
        ),
        shown: Some(shown),
        by_text_key: false,
    })
}

/// The duplicate keys of an individual customer (个人客户): its name key
/// with its phone key, and with its e-mail key. An individual's name alone
/// is no duplicate key (two people may share a name: see
/// [`crate::dedupe::customer_name_key`]), and a phone or e-mail alone only
/// warns by default; the same name with the same phone or e-mail is the
/// same person. None for an enterprise customer (its name is a key of its
/// own).
fn person_keys(set: &BTreeMap<&'static str, Value>) -> Vec<DupKey> {
    let text = |k: &str| {
        set.get(k)
            .and_then(Value::as_text)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let Some(name_key) = text("name_key").filter(|k| !crate::dedupe::is_name_duplicate_key(k))
    else {
        return Vec::new();
    };
    let name = text("name").unwrap_or_default();
    let mut out = Vec::new();
    for (field, column, en, zh) in [
        ("phone", "phone_key", "name and phone", "姓名及电话"),
        ("email", "email_key", "name and e-mail", "姓名及邮箱"),
    ] {
        let Some(key) = text(column) else {
            continue;
        };
        let shown = text(field).unwrap_or(key);
        out.push(DupKey {
            kind: format!("person.{field}"),
            text: format!("{name_key}:{key}"),
            col: Col::Column(column),
            value: Value::Text(key.to_string()),
            parent: Some(("name_key", Value::Text(name_key.to_string()))),
            moving: Vec::new(),
            words: (en.into(), zh.into(), ""),
            shown: Some(format!("{name}, {shown}")),
            by_text_key: false,
        });
    }
    out
}

/// The refusal of a row whose key `k`, one several records may hold (see
/// [`shared_key`]), `n` records hold, in English and Chinese: it asks for
/// what tells them apart, as a customer row's contact group naming several
/// contacts is asked.
fn ambiguous_match(entity: Entity, k: &DupKey, n: usize) -> (String, String) {
    if entity == Entity::Contact {
        let name = k.shown.as_deref().unwrap_or(&k.text);
        (
            format!(
                "contact {name} matches {n} contacts of the customer: give its code (编号) or \
                 mobile to tell which"
            ),
            format!("联系人 {name} 对应该客户的 {n} 个联系人，请填写联系人编号或手机以区分"),
        )
    } else {
        (
            format!(
                "{} matches {n} individual customers: give the customer's code (编号) to tell \
                 which",
                k.what_en()
            ),
            format!("{} 对应 {n} 个个人客户，请填写客户编号以区分", k.what_zh()),
        )
    }
}

/// A contact of a customer row, validated.
#[derive(Clone, Debug)]
struct ContactDraft {
    /// The contact group of the row (1 for 联系人1).
    group: usize,
    /// The contact's code the group gives (see [`ColumnRole::ContactCode`]).
    code: Option<String>,
    set: BTreeMap<&'static str, Value>,
    custom: BTreeMap<String, Json>,
}

/// A contact of an updated customer that a contact group of its row
/// updates: the stored contact and its values with the group's merged in.
#[derive(Clone, Debug)]
struct ContactUpdate {
    group: usize,
    row: Row,
    merged: BTreeMap<&'static str, Value>,
    /// The group's custom values, those holding masks of the stored ones
    /// left out (see [`ImportSession::unmask_contact`]).
    custom: BTreeMap<String, Json>,
}

/// A row updating a stored record: the row, the record, its values with
/// the row's merged in, and the contacts its groups update.
type PlannedUpdate = (
    Candidate,
    Row,
    BTreeMap<&'static str, Value>,
    Vec<ContactUpdate>,
);

/// A validated row.
#[derive(Clone, Debug)]
struct Candidate {
    number: u32,
    set: BTreeMap<&'static str, Value>,
    /// The fields of `set` that `derive` filled in (defaults such as a
    /// customer's kind, and derived keys) rather than the row: an update
    /// leaves the stored values of these alone.
    filled: Vec<&'static str>,
    custom: BTreeMap<String, Json>,
    owner: Option<Uuid>,
    contacts: Vec<ContactDraft>,
    keys: Vec<DupKey>,
    /// The record version the row gives (see [`ColumnRole::Version`]).
    version: Option<i64>,
    /// The non-empty cells of masked columns, by column (see
    /// [`CellKind::Masked`]).
    masked: Vec<(usize, String)>,
    /// The cells of the other columns of maskable fields that hold a `*`,
    /// by column: one that is what a masked export shows of the stored
    /// value (an administrator re-importing a sheet a masked colleague
    /// exported) changes nothing (see `ImportSession::unmask`).
    starred: Vec<(usize, String)>,
    /// Those of `starred` that are no valid value of their field (a masked
    /// phone `138****5678`), left out of the row's values, with why, in
    /// English and Chinese: the row is refused unless each is what a masked
    /// export shows of the record it updates.
    held: Vec<(usize, (String, String))>,
    /// Whether its customer is the one kept from the contact its code names
    /// (a contact row whose customer column is
    /// [`crate::export::NOT_SHOWN`]): it may update that contact, never
    /// create one.
    kept_customer: bool,
    /// What the row lacks of the required custom fields, under the update
    /// policy (see [`RowValidator::required_customs`]): it refuses the row
    /// only if it would create a record.
    unmet: Vec<(String, String)>,
    /// The keys the company's duplicate settings only warn of (customers):
    /// a row creating a customer that shares one is created, with a
    /// warning.
    warn_keys: Vec<DupKey>,
    /// The deactivated users the row names: they refuse a row creating a
    /// record, and one updating a record that does not hold them there
    /// already (an exported sheet of a colleague who left reads back).
    inactive: Vec<InactiveNamed>,
}

/// A deactivated user an import row names (see `Candidate::inactive`).
#[derive(Clone, Debug)]
struct InactiveNamed {
    /// The user-type custom field, `None` for the owner.
    key: Option<String>,
    /// The user.
    id: Uuid,
    /// Why it is refused, in English and Chinese.
    why: (String, String),
}

impl InactiveNamed {
    /// Whether the stored `row` holds the user there already.
    fn held_by(&self, row: &Row) -> bool {
        match &self.key {
            None => row.get("owner_id").as_id() == Some(self.id),
            Some(k) => {
                row.get("custom")
                    .to_json()
                    .get(k)
                    .and_then(Json::as_str)
                    .and_then(|t| Uuid::parse_str(t).ok())
                    == Some(self.id)
            }
        }
    }
}

/// What a batch creates and updates, kept per batch for undo.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct BatchItems {
    /// Created rows: `[table, id]`, children after parents.
    created: Vec<(Table, Uuid)>,
    /// Updated rows with the version after the update and the values before.
    updated: Vec<UpdatedItem>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct UpdatedItem {
    table: Table,
    id: Uuid,
    version: i64,
    before: Vec<(String, Value)>,
    /// The sheet row that made the update (0 in items stored before it was
    /// kept): a resumed import rejects a later row updating it again.
    #[serde(default)]
    row: u32,
}

/// Counters of an import.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    rows: u64,
    created: u64,
    contacts: u64,
    updated: u64,
    contacts_updated: u64,
    unchanged: u64,
    skipped: u64,
    rejected: u64,
}

/// An import in progress: feed it rows with [`ImportSession::push`] (one
/// call per batch) and close it with [`ImportSession::finish`]. Or split
/// each push: [`ImportSession::prepare`] a batch, then commit its
/// [`BatchWrite`] while preparing the next one (in order, one commit at a
/// time), as crm-io does.
pub struct ImportSession<'a> {
    crm: &'a Crm,
    actor: Actor,
    opts: ImportOptions,
    v: RowValidator,
    users: HashMap<Uuid, User>,
    /// The company's administrator roles, read when a user import first
    /// changes someone's roles.
    admin_roles: Option<HashSet<RoleId>>,
    /// The roles rows of this user import gave users (see
    /// [`ImportSession::leaves_no_admin`]).
    role_changes: HashMap<Uuid, Vec<RoleId>>,
    /// Whether the batch being prepared (an all-or-nothing import: any
    /// batch) changes a user's roles: its write then checks, with what the
    /// store holds at that moment, that an active administrator remains,
    /// and bumps the administrator roles (see [`Crm::admins_kept_by`]).
    roles_written: bool,
    /// The users by username in lower case only (a user import's duplicate
    /// key: a username differing from a taken one only in letter case is
    /// taken, as `create_user` has it; the lookups of owner columns also
    /// know display names and ids).
    usernames: HashMap<String, Uuid>,
    /// Departments by id and by name (user imports, `--department`); a
    /// name several departments share maps to `None`: a row naming it is
    /// refused as ambiguous rather than put into one of them by chance.
    departments: HashMap<String, Option<Uuid>>,
    /// Roles by id and by name, as departments (`None`: shared name).
    roles: HashMap<String, Option<RoleId>>,
    /// Superiors as this import's earlier rows left them (user imports),
    /// over the stored ones in `users`: for the check that no row closes a
    /// cycle of superiors.
    superiors: HashMap<Uuid, Option<Uuid>>,
    /// Whether the actor may create this import's records for another
    /// owner (an owner column), as a create through the API checks it
    /// (`Crm::check_owner_for_create`), once per owner: `Some(refusal)`
    /// when not.
    owner_checks: HashMap<Uuid, Option<String>>,
    /// Product categories by id, code, name (when unambiguous) and
    /// `parent/child` path (product imports).
    categories: HashMap<String, Uuid>,
    /// The company's live products by duplicate key (product imports).
    products: HashMap<(String, String), Row>,
    /// The codes of products in the recycle bin, with their names: such a
    /// product keeps its code (product imports).
    binned_products: HashMap<String, String>,
    owner: Option<Uuid>,
    department: Option<Uuid>,
    /// The customer pool created customers go to, with its name.
    pool: Option<(Uuid, String)>,
    import_id: Uuid,
    import_version: i64,
    resume_after: Option<u32>,
    /// The first row of each duplicate key (kind and text) seen in the
    /// file, by [`seen_key`].
    seen: HashMap<u128, u32>,
    /// The same for the keys the duplicate settings only warn of, of the
    /// customers the import creates (see [`Candidate::warn_keys`]).
    warn_seen: HashMap<u128, u32>,
    /// The possible duplicates created so far (earlier runs' too), for
    /// [`ImportReport::warnings`].
    warnings: Vec<RowIssue>,
    /// Those of the batch being prepared.
    batch_warnings: Vec<RowIssue>,
    touched: HashMap<Uuid, u32>,
    /// The duplicate keys (kind, text) that rows of this import give the
    /// records they update: a record's older key of such a kind no longer
    /// names it, whatever a probe read before the update was written.
    rekeyed: HashMap<Uuid, Vec<(String, String)>>,
    counts: Counts,
    /// What the runs before a resumed import's checkpoint counted (the
    /// unchanged rows apart from the skipped ones, also for an import
    /// stored when they were counted together, when its batches kept
    /// their issues).
    earlier: Counts,
    /// Whether this run continues a stored import (see
    /// [`ImportSession::find_resumable`]).
    resuming: bool,
    /// Whether the report lists the rows earlier runs rejected or skipped:
    /// true unless this run continues an import whose batches were
    /// committed by a build that did not keep them with its items.
    earlier_listed: bool,
    /// The rows the committed batches of earlier runs rejected or skipped,
    /// in sheet order, handed out with the replayed batch holding each.
    earlier_issues: std::collections::VecDeque<RowIssue>,
    /// Non-empty rows before a resumed import's checkpoint, read again.
    replayed_rows: u64,
    batch_no: i64,
    atomic: ChangeSet,
    failed: bool,
    issues: Vec<RowIssue>,
    /// Rows of the customers referenced by a contact import's batch.
    ref_rows: HashMap<Uuid, Row>,
    /// The records of the batch being built whose codes are taken when it
    /// is written (customer and contact imports).
    slots: Vec<CodeSlot>,
    /// The duplicate keys and customers the previous batch's writes touch
    /// (customer imports): that batch may still be being written while the
    /// next one is prepared.
    last_keys: Option<crate::dedupe::KeysTouched>,
    /// What this batch's duplicate probes found for the customers' column
    /// keys, for the key upkeep right after them (see `existing`).
    known: Option<crate::dedupe::KnownHolders>,
    /// Prepared batches whose writes are not yet committed (or dropped).
    outstanding: Arc<AtomicUsize>,
    /// The duplicate keys of the records the batch being built creates or
    /// updates: its change set guards them (see [`ImportSession::key_guards`]).
    batch_keys: Vec<DupKey>,
    /// An all-or-nothing import's created keys and first row, guarded when
    /// it is written.
    atomic_keys: Vec<DupKey>,
    atomic_first: Option<u32>,
    /// The records an all-or-nothing import updates: table, id, version
    /// read, sheet row (see [`changed_meanwhile`]).
    atomic_updated: Vec<(Table, Uuid, i64, u32)>,
    /// What a dry run of a customer import would have created so far, per
    /// owner and department: held to the pools' caps as the writes would
    /// be (see `dry_run_caps`).
    dry_creations: crate::pool::CreatedPerOwner,
    dry_first: Option<u32>,
    /// The columns the actor sees masked (see [`CellKind::Masked`]) and
    /// what an export shows them of a stored record in those columns, in
    /// that order; `None` without such columns.
    masked_view: Option<(Vec<usize>, crate::export::ExportConverter)>,
    /// As `masked_view`, for a customer import's contact group columns
    /// the actor sees masked (联系人1手机), of the contacts the groups name.
    contact_masked_view: Option<(Vec<usize>, crate::export::ExportConverter)>,
    /// The other columns of maskable fields (see `Candidate::starred`) and
    /// what an export shows of them to a role masking them all: a cell
    /// holding that of the stored value changes nothing, whoever imports
    /// it (see [`ImportSession::unmask`]).
    starred_view: Option<(Vec<usize>, crate::export::ExportConverter)>,
    /// As `starred_view`, for a customer import's contact group columns.
    contact_starred_view: Option<(Vec<usize>, crate::export::ExportConverter)>,
    /// Guards a batch's writes carry besides its duplicate keys': the
    /// unique custom values of contacts that customer rows create (see
    /// [`ImportSession::contact_uniques_free`]), and that the roles,
    /// departments and stored customers rows refer to are still live. The
    /// batch's in batched imports, all of them in an all-or-nothing one.
    batch_guards: Vec<Guard>,
}

/// A unique custom value of a contact that a customer row carries.
struct ContactKey {
    /// The contact group (1 for 联系人1).
    group: usize,
    key: String,
    label: String,
    /// What the store is asked for and the guard locks (a text field's
    /// [`text_key`](crate::validate::text_key)).
    value: Value,
    /// What it is compared by.
    text: String,
    /// The value as messages show it (as typed).
    shown: String,
    /// Whether `text` is a text field's key, found in the store with
    /// [`Filter::TextKeyIn`].
    by_text_key: bool,
}

impl ContactKey {
    fn kind(&self) -> String {
        format!("contact.custom.{}", self.key)
    }
}

/// Counts a prepared batch as outstanding until its write is committed or
/// dropped.
struct Outstanding(Arc<AtomicUsize>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A created record whose code is taken when its batch is written: the
/// code's prefix, and where the record's insert and its `created` event
/// sit in the batch's change set.
#[derive(Debug, Clone, Copy)]
struct CodeSlot {
    prefix: &'static str,
    op: usize,
    event: usize,
    /// Where the event's payload holds `null` for the code.
    payload_at: Option<usize>,
}

/// A batch checked and built by [`ImportSession::prepare`] and not yet
/// written.
#[derive(Debug)]
pub struct PreparedBatch<'a> {
    /// The rows of the batch that were rejected or skipped, as
    /// [`ImportSession::push`] returns them.
    pub issues: Vec<RowIssue>,
    /// The batch's writes: nothing is written until they are committed.
    pub write: BatchWrite<'a>,
}

/// The writes of a prepared batch (nothing in a dry run, a replayed batch
/// or an import that failed; in an all-or-nothing import they wait for
/// [`ImportSession::finish`]).
#[must_use = "a prepared batch is written only when committed"]
pub struct BatchWrite<'a> {
    crm: &'a Crm,
    actor: Actor,
    changes: Option<ChangeSet>,
    slots: Vec<CodeSlot>,
    index_keys: bool,
    /// Whether the batch changes users' roles: its commit checks that an
    /// active administrator remains and bumps the administrator roles
    /// ([`Crm::admins_kept_by`]).
    keep_admin: bool,
    /// The sheet rows of the batch, first and last (for its refusal by a
    /// pool's cap: see [`cap_refusal`]).
    rows: (u32, u32),
    /// The records the batch updates: table, id, version read, sheet row
    /// (to name the rows of records changed meanwhile: see
    /// [`changed_meanwhile`]).
    updated: Vec<(Table, Uuid, i64, u32)>,
    /// Held until the write is committed or dropped.
    _outstanding: Option<Outstanding>,
}

impl std::fmt::Debug for BatchWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWrite")
            .field("ops", &self.changes.as_ref().map_or(0, |c| c.ops.len()))
            .field("codes", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl BatchWrite<'_> {
    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.changes.is_none()
    }

    /// Writes the batch: takes the codes of its created records (reserved
    /// on their own, committed first, so a failed batch leaves a gap in the
    /// numbering and never reuses a number), keeps the duplicate keys of its
    /// customers when preparing left that for now (they meet keys the batch
    /// before writes), and applies the batch
    /// with its checkpoint in one transaction. Batches must be committed in
    /// the order they were prepared, each once the one before has finished;
    /// the next batch may be prepared meanwhile — one, not more: preparing
    /// while two prepared batches wait is refused. After a failure the
    /// import stops (drop the session); running it again resumes after the
    /// last committed batch. A record another user saved meanwhile with a
    /// refusing duplicate key of a record the batch creates or updates fails
    /// the batch
    /// ([`Error::Duplicate`]; nothing of it is written; running the import
    /// again meets that record like any other: under the skip policy the
    /// row is reported as a duplicate). Another user's write
    /// sharing a key that is only reported (a phone, an e-mail) between
    /// preparing and committing can leave that key's duplicate rows
    /// unflagged or missing (the import itself is unaffected);
    /// [`Crm::rebuild_duplicate_keys`] repairs them.
    pub async fn commit(self) -> Result<()> {
        let Some(mut cs) = self.changes else {
            return Ok(());
        };
        assign_codes(self.crm, &self.actor, &mut cs, &self.slots).await?;
        if self.index_keys {
            self.crm.index_customer_keys(&mut cs).await?;
        }
        // The pools' caps on what owners hold, counted as the batches
        // before this one left them (so here, once they are written).
        self.crm
            .creation_caps(&self.actor, &mut cs)
            .await
            .map_err(|e| cap_refusal(e, Some(self.rows)))?;
        if self.keep_admin {
            keep_an_admin(self.crm, &self.actor, &mut cs, Some(self.rows)).await?;
        }
        match self.crm.apply(cs).await {
            Err(e @ Error::Conflict { .. }) => {
                Err(changed_meanwhile(self.crm, e, &self.updated, Some(self.rows)).await)
            }
            other => other,
        }
    }
}

/// The refusal of an import's write (`rows`: a batch's sheet rows; `None`,
/// an all-or-nothing import) that failed as a conflict `e`: a record it
/// updates (`updated`: table, id, version read, sheet row) was changed by
/// someone else between the import's read and its write. Names the rows of
/// the records changed meanwhile (read again now) and says that nothing of
/// the write was written; `e` is kept when it is not a conflict or no
/// record the write updates changed.
async fn changed_meanwhile(
    crm: &Crm,
    e: Error,
    updated: &[(Table, Uuid, i64, u32)],
    rows: Option<(u32, u32)>,
) -> Error {
    if !matches!(e, Error::Conflict { .. }) {
        return e;
    }
    let mut named = Vec::new();
    for (table, rid, version, number) in updated {
        if named.len() == 5 {
            break;
        }
        let now = match crm.store.get(*table, *rid).await {
            Ok(Some(r)) if r.version() != *version => r,
            _ => continue,
        };
        let what = Entity::of_table(*table).map_or("record", |e| e.name());
        named.push(format!(
            "row {number}: {what} {} was changed by someone else meanwhile (read at version \
             {version}, now {}; 已被他人修改)",
            row_label(&now),
            now.version()
        ));
    }
    // Another record changed meanwhile (a role, a user's): the conflict
    // as it is.
    if named.is_empty() {
        return e;
    }
    let written = match rows {
        None => "nothing of the import was written".to_string(),
        Some((first, last)) if first == last => {
            format!("nothing of row {first} was written (earlier rows stay written)")
        }
        Some((first, last)) => {
            format!("nothing of rows {first}–{last} was written (earlier rows stay written)")
        }
    };
    Error::InvalidState(format!(
        "{}; {written}: import the file again to apply these rows to the records as they are \
         now",
        named.join("; ")
    ))
}

/// For a user import's write that changes users' roles (`rows`: a batch's
/// sheet rows; `None`, an all-or-nothing import): refused when, with what
/// the store holds now, the company would be left without an active
/// administrator (another administrator demoted since the rows were
/// checked); else, when it takes someone's administrator rights away, the
/// administrator roles are bumped in `cs`, as `update_user` bumps them, so
/// that a demotion through the API at the same moment conflicts with it.
async fn keep_an_admin(
    crm: &Crm,
    actor: &Actor,
    cs: &mut ChangeSet,
    rows: Option<(u32, u32)>,
) -> Result<()> {
    match crm.admins_kept_by(actor, cs).await {
        Ok(Some(ops)) => {
            cs.ops.extend(ops);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(Error::InvalidState(m)) => Err(Error::InvalidState(match rows {
            None => format!("nothing of the import was written: {m}"),
            Some((first, last)) => format!(
                "nothing of {} was written (earlier rows stay written): {m}",
                if first == last {
                    format!("row {first}")
                } else {
                    format!("rows {first}–{last}")
                }
            ),
        })),
        Err(e) => Err(e),
    }
}

/// An import's refusal by a pool's cap on the customers an owner holds
/// ([`Crm::creation_caps`], which names the owner, the pool, its cap, what
/// the owner holds and how many more would pass it): said of the whole
/// import (`rows` `None`: an all-or-nothing import, which writes nothing)
/// or of a batch's rows (the batches before it stay written).
fn cap_refusal(e: Error, rows: Option<(u32, u32)>) -> Error {
    let Error::Forbidden(m) = e else {
        return e;
    };
    Error::Forbidden(match rows {
        None => format!(
            "nothing of the import was written: the customers it creates would take an owner \
             past a pool's cap — {m}; free places in the pool or give its rows another owner \
             (负责人), then import the file again"
        ),
        Some((first, last)) => {
            let rows = if first == last {
                format!("row {first}")
            } else {
                format!("rows {first}–{last}")
            };
            format!(
                "nothing of {rows} was written (earlier rows stay written): the customers they \
                 create would take an owner past a pool's cap — {m}; free places in the pool or \
                 give these rows another owner (负责人), then import the file again"
            )
        }
    })
}

/// Takes the codes of a batch's created records (one reservation per
/// prefix, numbered in row order) and writes them into their inserts and
/// `created` events.
async fn assign_codes(
    crm: &Crm,
    actor: &Actor,
    cs: &mut ChangeSet,
    slots: &[CodeSlot],
) -> Result<()> {
    let mut prefixes: Vec<&'static str> = slots.iter().map(|s| s.prefix).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    for prefix in prefixes {
        let mine: Vec<&CodeSlot> = slots.iter().filter(|s| s.prefix == prefix).collect();
        let codes = crm.next_codes(actor, prefix, mine.len()).await?;
        for (slot, code) in mine.into_iter().zip(codes) {
            if let Some(Op::Insert { values, .. }) = cs.ops.get_mut(slot.op) {
                match values.iter_mut().find(|(k, _)| *k == "code") {
                    Some((_, v)) => *v = Value::Text(code.clone()),
                    None => values.push(("code", Value::Text(code.clone()))),
                }
            }
            if let (Some(e), Some(at)) = (cs.events.get_mut(slot.event), slot.payload_at)
                && !e.payload.fill_null(at, &code)
            {
                return Err(Error::InvalidState(format!(
                    "the import could not put code {code} into the event of its record \
                     (nothing of the batch was written); please report this"
                )));
            }
        }
    }
    Ok(())
}

impl std::fmt::Debug for ImportSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSession")
            .field("options", &self.opts)
            .field("import_id", &self.import_id)
            .field("resume_after", &self.resume_after)
            .finish_non_exhaustive()
    }
}

impl Crm {
    /// Starts an import: checks the permission (`import` on the entity;
    /// `user:manage` for users), maps the header row, resolves the target
    /// owner and department, loads picklists, users and custom fields once,
    /// and — for a batched import of a file seen before — finds the
    /// checkpoint to resume after.
    pub async fn begin_import(
        &self,
        actor: &Actor,
        options: ImportOptions,
        headers: &[String],
    ) -> Result<ImportSession<'_>> {
        let entity = options.entity;
        if !actor.can(entity, import_right(entity)) {
            return Err(Error::Forbidden(format!(
                "{} may not import {} records",
                actor.display_name, entity
            )));
        }
        // Products: creating needs `product:create`; a price list (update
        // policy) may also be run with `product:update` alone, its rows
        // that would create a product then being refused one by one.
        if entity == Entity::Product
            && !actor.can(entity, Action::Create)
            && !(options.policy == DuplicatePolicy::Update && actor.can(entity, Action::Update))
        {
            return Err(Error::Forbidden(format!(
                "{} may not create products",
                actor.display_name
            )));
        }
        if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "must be 1 to {MAX_BATCH_SIZE} rows, not {} (每批 1 至 {MAX_BATCH_SIZE} 行)",
                    options.batch_size
                ),
            ));
        }
        if entity == Entity::Product && (options.owner.is_some() || options.department.is_some()) {
            return Err(Error::invalid(
                "owner",
                "products have no owner or department (产品无负责人)",
            ));
        }
        let mut customs = if entity.is_record() {
            self.custom_fields(actor, entity).await?
        } else {
            Vec::new()
        };
        // Under the update policy a required custom field is required of
        // the rows that create a record only: a field made required after
        // the file was exported leaves its rows updating what they match
        // (the column missing, or blank), as `update_record` would.
        let mut required_customs = Vec::new();
        if options.policy == DuplicatePolicy::Update {
            for def in customs.iter_mut().filter(|d| d.required) {
                required_customs.push(def.clone());
                def.required = false;
            }
        }
        let contact_customs = if entity == Entity::Customer {
            self.custom_fields(actor, Entity::Contact).await?
        } else {
            Vec::new()
        };
        // A product update by code (a price list, say) needs no other
        // column; rows that would create a product still need them all.
        let need_required =
            !(entity == Entity::Product && options.policy == DuplicatePolicy::Update);
        let map = map_headers_with(
            actor,
            entity,
            headers,
            &customs,
            &contact_customs,
            need_required,
        )?;
        let now = self.now();
        let user_rows = self
            .store
            .select(&Select::all(Table::Users, actor.company_id.0, now))
            .await?
            .rows;
        let mut users = HashMap::new();
        let mut usernames = HashMap::new();
        let mut by_key = HashMap::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for r in &user_rows {
            let u = crate::org::user_from_row(r);
            by_key.insert(u.id.to_string(), u.clone());
            by_key.insert(u.username.clone(), u.clone());
            by_key.insert(folded_username_key(&u.username), u.clone());
            *names.entry(u.display_name.clone()).or_default() += 1;
            usernames.insert(u.username.to_lowercase(), u.id.0);
            users.insert(u.id.0, u);
        }
        // Display names (as exports show owners) when they are unambiguous,
        // and `name (username)` (as exports show a shared name) always.
        for u in users.values() {
            if names.get(&u.display_name) == Some(&1) {
                by_key
                    .entry(u.display_name.clone())
                    .or_insert_with(|| u.clone());
            }
            by_key
                .entry(crate::org::user_label(&u.display_name, &u.username))
                .or_insert_with(|| u.clone());
        }
        let mut lookups = Lookups {
            users: Some(by_key),
            shared_user_names: names
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(name, _)| name)
                .collect(),
            ..Lookups::default()
        };
        for e in [entity, Entity::Contact] {
            if !e.is_record() || (e == Entity::Contact && entity == Entity::User) {
                continue;
            }
            for def in e.fields() {
                if matches!(def.kind, FieldKind::Choice(_))
                    && !lookups.picklists.contains_key(def.name)
                    && (e == entity || entity == Entity::Customer)
                {
                    let list = self.picklist_with_version(actor, e, def.name).await?;
                    lookups.picklists.insert(def.name, list.options);
                    lookups
                        .picklist_versions
                        .insert(def.name, (e, list.version));
                }
            }
        }
        // Both entities share field names with choice lists only for
        // fields they do not have in common, so one map serves both.
        let mut departments = HashMap::new();
        let mut roles = HashMap::new();
        if entity == Entity::User || options.department.is_some() {
            for d in self.list_departments(actor).await? {
                departments.insert(d.id.to_string(), Some(d.id.0));
                departments
                    .entry(d.name.clone())
                    .and_modify(|e| *e = None)
                    .or_insert(Some(d.id.0));
                // Letter case aside, as the resolvers find names.
                departments
                    .entry(folded_name_key(&d.name))
                    .and_modify(|e| *e = None)
                    .or_insert(Some(d.id.0));
            }
        }
        if entity == Entity::User {
            for r in self.list_roles(actor).await? {
                roles.insert(r.id.to_string(), Some(r.id));
                roles
                    .entry(r.name.clone())
                    .and_modify(|e| *e = None)
                    .or_insert(Some(r.id));
                roles
                    .entry(folded_name_key(&r.name))
                    .and_modify(|e| *e = None)
                    .or_insert(Some(r.id));
            }
        }
        let mut categories = HashMap::new();
        let mut products = HashMap::new();
        let mut binned_products = HashMap::new();
        if entity == Entity::Product {
            categories = self.category_keys(actor).await?;
            let mut sel = Select::all(Table::Products, actor.company_id.0, now);
            sel.sort = vec![Sort {
                col: Col::Column("code"),
                desc: false,
            }];
            for r in self.store.select(&sel).await?.rows {
                for k in product_keys(&r) {
                    products.entry(k).or_insert_with(|| r.clone());
                }
            }
            let mut binned = Select::all(Table::Products, actor.company_id.0, now);
            binned.lifecycle = Lifecycle::Deleted;
            for r in self.store.select(&binned).await?.rows {
                if let Some(c) = r.get("code").as_text() {
                    binned_products.insert(
                        crate::org::fold_name(c),
                        r.get("name").as_text().unwrap_or_default().to_string(),
                    );
                }
            }
        }
        let pool = match &options.pool {
            Some(_) if entity != Entity::Customer => {
                return Err(Error::invalid(
                    "pool",
                    "only customers can be imported into a customer pool",
                ));
            }
            Some(_) if options.owner.is_some() || options.department.is_some() => {
                return Err(Error::invalid(
                    "pool",
                    "customers imported into a pool have no owner or department (公海客户无负责人)",
                ));
            }
            Some(key) => {
                let p = self.resolve_pool(actor, key).await?;
                // As `import_into_pool`: pool administrators only.
                if !actor.is_admin() && !p.admins.contains(&actor.user_id) {
                    return Err(Error::Forbidden(format!(
                        "{} does not administer pool {}",
                        actor.display_name, p.name
                    )));
                }
                if !actor.can(Entity::Customer, Action::Create) && !actor.is_admin() {
                    return Err(Error::Forbidden(format!(
                        "{} may not create customers",
                        actor.display_name
                    )));
                }
                Some((p.id.0, p.name))
            }
            None => None,
        };
        let mut owner_department = None;
        let owner = match &options.owner {
            Some(key) if entity != Entity::User => {
                let u = lookups
                    .user(key)
                    .cloned()
                    .ok_or_else(|| Error::invalid("owner", format!("no user '{key}'")))?;
                if !u.active {
                    return Err(Error::invalid(
                        "owner",
                        format!("user {} is deactivated", u.username),
                    ));
                }
                // As a create through the API: within the create scope,
                // readable afterwards.
                if u.id != actor.user_id {
                    self.check_owner_for_create(actor, entity, u.id.0, None)
                        .await?;
                }
                owner_department = u.department_id;
                Some(u.id.0)
            }
            _ => None,
        };
        let department = match &options.department {
            Some(key) if entity != Entity::User => {
                // (A name several departments share is refused as such.)
                let dept = self.resolve_department(actor, key.trim()).await?;
                let d = dept.id.0;
                if Some(DepartmentId(d)) != actor.department_id
                    && !actor.can(entity, Action::Transfer)
                {
                    return Err(Error::Forbidden(format!(
                        "{} may not import {} records into another department",
                        actor.display_name, entity
                    )));
                }
                // As owners are (`check_owner_for_create`): a department
                // other than the importer's or the owner's must lie within
                // the importer's create and read scopes by itself, or the
                // records would leave the view of those who should see them.
                let mut probe = Row {
                    table: entity.table(),
                    values: vec![Value::Null; entity.table().columns().len()],
                };
                probe.set("department_id", Value::Id(d));
                if entity.is_record()
                    && Some(DepartmentId(d)) != actor.department_id
                    && Some(DepartmentId(d)) != owner_department
                    && !(actor.covers(entity, Action::Create, &probe)
                        && actor.covers(entity, Action::Read, &probe))
                {
                    let scope = actor
                        .scope_for(entity, Action::Create)
                        .map_or(("none", "无"), |s| (s.name(), s.name_zh()));
                    return Err(Error::Forbidden(format!(
                        "{} may not import {} records into department {}: it lies outside their \
                         create scope '{}' ({}无权将{}导入部门{}：超出新建范围「{}」)",
                        actor.display_name,
                        entity,
                        dept.name,
                        scope.0,
                        actor.display_name,
                        entity.name_zh(),
                        dept.name,
                        scope.1
                    )));
                }
                Some(d)
            }
            _ => None,
        };
        if options.blanks_clear && options.policy != DuplicatePolicy::Update {
            return Err(Error::invalid(
                "blanks_clear",
                "blank cells clear stored values only when the import updates records \
                 (--policy update) (仅在更新模式下清空)",
            ));
        }
        let mut session = ImportSession {
            crm: self,
            actor: actor.clone(),
            v: RowValidator {
                crm: self.clone(),
                actor: actor.clone(),
                entity,
                map: Arc::new(map),
                blanks_clear: options.blanks_clear && options.policy == DuplicatePolicy::Update,
                update: options.policy == DuplicatePolicy::Update,
                customs: Arc::new(customs),
                required_customs: Arc::new(required_customs),
                contact_customs: Arc::new(contact_customs),
                lookups: Arc::new(lookups),
                modes: if entity == Entity::Customer {
                    Some(Arc::new(self.dedupe_modes(actor.company_id.0).await?))
                } else {
                    None
                },
                kinds: Arc::new(Vec::new()),
                customer_codes: Arc::new(HashMap::new()),
                shared_customer_names: Arc::new(HashMap::new()),
                kept_customers: Arc::new(HashMap::new()),
                group_codes: Arc::new(Vec::new()),
            },
            users,
            admin_roles: None,
            role_changes: HashMap::new(),
            roles_written: false,
            usernames,
            departments,
            roles,
            superiors: HashMap::new(),
            owner_checks: HashMap::new(),
            categories,
            products,
            binned_products,
            owner,
            department,
            pool,
            import_id: self.new_id(),
            import_version: 0,
            resume_after: None,
            seen: HashMap::new(),
            touched: HashMap::new(),
            rekeyed: HashMap::new(),
            counts: Counts::default(),
            earlier: Counts::default(),
            resuming: false,
            earlier_listed: true,
            earlier_issues: std::collections::VecDeque::new(),
            warn_seen: HashMap::new(),
            warnings: Vec::new(),
            batch_warnings: Vec::new(),
            replayed_rows: 0,
            batch_no: 0,
            atomic: ChangeSet::default(),
            failed: false,
            issues: Vec::new(),
            ref_rows: HashMap::new(),
            slots: Vec::new(),
            last_keys: None,
            known: None,
            outstanding: Arc::new(AtomicUsize::new(0)),
            batch_keys: Vec::new(),
            atomic_keys: Vec::new(),
            batch_guards: Vec::new(),
            atomic_first: None,
            atomic_updated: Vec::new(),
            dry_creations: crate::pool::CreatedPerOwner::new(),
            dry_first: None,
            masked_view: None,
            contact_masked_view: None,
            starred_view: None,
            contact_starred_view: None,
            opts: options,
        };
        let kinds = session
            .v
            .map
            .roles
            .iter()
            .map(|role| match role {
                ColumnRole::Ignored
                | ColumnRole::Code
                | ColumnRole::ContactCode { .. }
                | ColumnRole::Version
                | ColumnRole::CustomerCode => CellKind::Other,
                // (A required field the actor sees masked refused the header.)
                ColumnRole::Field(f)
                    if f != "owner_id"
                        && (matches!(entity, Entity::Customer | Entity::Contact)
                            || entity == Entity::Product
                                && f == crate::sales::product::COST_FIELD
                                && actor.field_access(entity, f) == FieldAccess::Masked)
                        && matches!(
                            actor.field_access(entity, f),
                            FieldAccess::Masked | FieldAccess::ReadOnly
                        ) =>
                {
                    CellKind::Masked
                }
                ColumnRole::Field(f) => session.v.kind_of(entity, f),
                // (As its customer's: see `map_headers_with`.)
                ColumnRole::Contact { field, .. }
                    if entity == Entity::Customer
                        && matches!(
                            actor.field_access(Entity::Contact, field),
                            FieldAccess::Masked | FieldAccess::ReadOnly
                        ) =>
                {
                    CellKind::Masked
                }
                ColumnRole::Contact { field, .. } => session.v.kind_of(Entity::Contact, field),
            })
            .collect();
        session.v.kinds = Arc::new(kinds);
        session.v.group_codes = Arc::new(
            session
                .v
                .map
                .roles
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    ColumnRole::ContactCode { group } => Some((*group, i)),
                    _ => None,
                })
                .collect(),
        );
        let masked: Vec<(usize, String)> = session
            .v
            .kinds
            .iter()
            .zip(&session.v.map.roles)
            .enumerate()
            .filter_map(|(i, (kind, role))| match (kind, role) {
                (CellKind::Masked, ColumnRole::Field(f)) => Some((i, f.clone())),
                _ => None,
            })
            .collect();
        // (A product's masked cost is compared in `product_batch`.)
        if !masked.is_empty() && entity != Entity::Product {
            let keys: Vec<String> = masked.iter().map(|(_, f)| f.clone()).collect();
            let view = self.masked_view(actor, entity, &keys, &session.v.customs);
            session.masked_view = Some((masked.into_iter().map(|(i, _)| i).collect(), view));
        }
        let contact_masked: Vec<(usize, String)> = session
            .v
            .kinds
            .iter()
            .zip(&session.v.map.roles)
            .enumerate()
            .filter_map(|(i, (kind, role))| match (kind, role) {
                (CellKind::Masked, ColumnRole::Contact { field, .. }) => Some((i, field.clone())),
                _ => None,
            })
            .collect();
        if !contact_masked.is_empty() {
            let keys: Vec<String> = contact_masked.iter().map(|(_, f)| f.clone()).collect();
            let view = self.masked_view(actor, Entity::Contact, &keys, &session.v.contact_customs);
            session.contact_masked_view =
                Some((contact_masked.into_iter().map(|(i, _)| i).collect(), view));
        }
        for contact in [false, true] {
            let cols: Vec<(usize, String)> = session
                .v
                .kinds
                .iter()
                .zip(&session.v.map.roles)
                .enumerate()
                .filter(|(_, (kind, role))| {
                    !matches!(kind, CellKind::Masked)
                        && maskable(entity, role, &session.v.customs, &session.v.contact_customs)
                })
                .filter_map(|(i, (_, role))| match role {
                    ColumnRole::Field(f) if !contact => Some((i, f.clone())),
                    ColumnRole::Contact { field, .. } if contact => Some((i, field.clone())),
                    _ => None,
                })
                .collect();
            if cols.is_empty() {
                continue;
            }
            let (on, customs) = if contact {
                (Entity::Contact, &session.v.contact_customs)
            } else {
                (entity, &session.v.customs)
            };
            let keys: Vec<String> = cols.iter().map(|(_, f)| f.clone()).collect();
            let view = self.masked_view(&masking_actor(actor, on, &keys), on, &keys, customs);
            let view = Some((cols.into_iter().map(|(i, _)| i).collect(), view));
            if contact {
                session.contact_starred_view = view;
            } else {
                session.starred_view = view;
            }
        }
        if session.opts.commit == CommitMode::Batches {
            // A dry run finds the checkpoint too (writing nothing), so it
            // tells what running the file again would do.
            if !session.find_resumable().await? && !session.opts.dry_run {
                session.start().await?;
            }
        }
        Ok(session)
    }

    /// The imports of the actor's company, newest first.
    pub async fn list_imports(&self, actor: &Actor) -> Result<Vec<ImportInfo>> {
        let mut sel = Select::all(Table::Imports, actor.company_id.0, self.now());
        sel.sort = vec![Sort {
            col: Col::Column("created_at"),
            desc: true,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .filter(|r| actor.is_admin() || r.get("actor_id").as_id() == Some(actor.user_id.0))
            .map(import_info)
            .collect())
    }

    /// Undoes an import: records it created are removed (users deactivated
    /// and deleted), records it updated get their earlier values back — all
    /// in one change set, audited. Refused when any of them changed since
    /// (the import's own changes excepted), when records saved since refer
    /// to what it created (named when the actor may read them, else
    /// counted), or when a value it gives back is held since by another
    /// record under a refusing duplicate rule. Allowed to the actor who ran
    /// the import and to administrators.
    pub async fn undo_import(&self, actor: &Actor, import_id: Uuid) -> Result<UndoReport> {
        let row = self.live_row(actor, Table::Imports, import_id).await?;
        if !actor.is_admin() && row.get("actor_id").as_id() != Some(actor.user_id.0) {
            return Err(Error::Forbidden(format!(
                "{} may not undo an import someone else ran",
                actor.display_name
            )));
        }
        let status = ImportStatus::parse(row.get("status").as_text().unwrap_or_default());
        if status == ImportStatus::Undone {
            return Err(Error::InvalidState(format!(
                "import {import_id} is already undone"
            )));
        }
        let now = self.now();
        let mut sel = Select::all(Table::ImportItems, actor.company_id.0, now);
        sel.filter = Filter::Cmp(Col::Column("import_id"), CmpOp::Eq, Value::Id(import_id));
        sel.sort = vec![Sort {
            col: Col::Column("batch"),
            desc: false,
        }];
        let items = self.store.select(&sel).await?.rows;
        let mut created: Vec<(Table, Uuid)> = Vec::new();
        let mut updated: Vec<UpdatedItem> = Vec::new();
        for it in &items {
            if let Some(j) = it.get("created_ids").as_json() {
                let c: Vec<(Table, Uuid)> = serde_json::from_value(j.clone()).map_err(|e| {
                    Error::InvalidState(format!("import item {} is unreadable: {e}", it.id()))
                })?;
                created.extend(c);
            }
            if let Some(j) = it.get("updated").as_json() {
                let u: Vec<UpdatedItem> = serde_json::from_value(j.clone()).map_err(|e| {
                    Error::InvalidState(format!("import item {} is unreadable: {e}", it.id()))
                })?;
                updated.extend(u);
            }
        }
        // The current rows, read in chunks per table.
        let mut wanted: BTreeMap<Table, Vec<Uuid>> = BTreeMap::new();
        for (t, id) in &created {
            wanted.entry(*t).or_default().push(*id);
        }
        for u in &updated {
            wanted.entry(u.table).or_default().push(u.id);
        }
        let mut current: HashMap<Uuid, Row> = HashMap::new();
        for (table, ids) in wanted {
            for chunk in ids.chunks(IN_CHUNK) {
                let mut sel = Select::all(table, actor.company_id.0, now);
                sel.lifecycle = Lifecycle::Any;
                sel.filter = Filter::In(
                    Col::Column("id"),
                    chunk.iter().map(|i| Value::Id(*i)).collect(),
                );
                for r in self.store.select(&sel).await?.rows {
                    current.insert(r.id(), r);
                }
            }
        }
        // An undo needs the rights the import needed, as the actor holds
        // them now, and the rights to remove what it created and to change
        // back what it updated: a user demoted since undoes nothing they
        // may no longer do.
        if let Ok(entity) = row
            .get("entity")
            .as_text()
            .unwrap_or_default()
            .parse::<Entity>()
            && !actor.can(entity, import_right(entity))
        {
            return Err(Error::Forbidden(format!(
                "{} may not undo import {import_id}: they may no longer import {entity} \
                 records; nothing was undone",
                actor.display_name
            )));
        }
        for (t, id) in &created {
            if let (Some(e), Some(r)) = (Entity::of_table(*t), current.get(id))
                && e.is_record()
                && !actor.covers(e, Action::Delete, r)
            {
                return Err(Error::Forbidden(format!(
                    "{} may not undo import {import_id}: they may not delete {e} {}; nothing \
                     was undone",
                    actor.display_name,
                    row_label(r)
                )));
            }
        }
        for u in &updated {
            if let (Some(e), Some(r)) = (Entity::of_table(u.table), current.get(&u.id))
                && e.is_record()
                && !actor.covers(e, Action::Update, r)
            {
                return Err(Error::Forbidden(format!(
                    "{} may not undo import {import_id}: they may not edit {e} {}; nothing was \
                     undone",
                    actor.display_name,
                    row_label(r)
                )));
            }
        }
        let mut changed = Vec::new();
        for (t, id) in &created {
            if let Some(r) = current.get(id)
                && (r.version() != 1 || !r.get("deleted_at").is_null())
            {
                changed.push(format!("{t} {}", row_label(r)));
            }
        }
        for u in &updated {
            match current.get(&u.id) {
                Some(r) if r.version() == u.version => {}
                Some(r) => changed.push(format!("{} {}", u.table, row_label(r))),
                None => changed.push(format!("{} {}", u.table, u.id)),
            }
        }
        if !changed.is_empty() {
            let n = changed.len();
            changed.truncate(5);
            return Err(Error::InvalidState(format!(
                "cannot undo import {import_id}: {n} record(s) changed since it ran ({}{}); undo is refused so that no later change is lost",
                changed.join(", "),
                if n > 5 { ", …" } else { "" }
            )));
        }
        // Records saved since that point at what the import created (a
        // contact added to an imported customer, a customer given to an
        // imported user) do not change the created records' versions: they
        // are looked for on their own, and guarded while the undo is
        // written.
        let (refs, unseen, ref_guards, on_record) =
            self.undo_references(actor, &created, &current, now).await?;
        // Approvals a created user acted on stay on record: nothing can be
        // moved away, so the undo is refused for good (the user can be
        // deactivated instead).
        if let Some(acted) = on_record {
            return Err(Error::InvalidState(format!(
                "cannot undo import {import_id}: {acted}, which stay on record; a user with \
                 approvals cannot be removed — deactivate the user instead; nothing was undone"
            )));
        }
        if !refs.is_empty() || unseen > 0 {
            let n = refs.len();
            let mut refs = refs;
            refs.truncate(5);
            let mut what = refs.join(", ");
            if n > 5 {
                what.push_str(&format!(" and {} more", n - 5));
            }
            // Records the actor may not read are counted, not named.
            let unseen_words = match unseen {
                0 => String::new(),
                1 => "1 record you cannot see refers to a record it created".to_string(),
                u => format!("{u} records you cannot see refer to records it created"),
            };
            match (what.is_empty(), unseen_words.is_empty()) {
                (true, _) => what = unseen_words,
                (false, false) => what = format!("{what}, and {unseen_words}"),
                (false, true) => {}
            }
            return Err(Error::InvalidState(format!(
                "cannot undo import {import_id}: {what}; delete, move or reassign {} first \
                 (a record in the recycle bin must be purged){}, then undo again; nothing was undone",
                if n + unseen == 1 { "it" } else { "them" },
                if unseen > 0 {
                    "; records you cannot see, an administrator can"
                } else {
                    ""
                }
            )));
        }
        // The values given back must not duplicate a record saved since
        // (nor one saved while the undo is written): each restored customer
        // or contact is checked as a restore from the recycle bin checks it.
        let dup_guards = self
            .undo_duplicates(actor, import_id, &created, &updated, &current)
            .await?;
        let company = actor.company_id.0;
        let mut cs = ChangeSet {
            guards: ref_guards,
            ..ChangeSet::default()
        };
        cs.guards.extend(dup_guards);
        let mut removed = 0;
        // Children first: contacts before their customers.
        let mut order: Vec<&(Table, Uuid)> = created.iter().collect();
        order.sort_by_key(|(t, _)| match t {
            Table::Contacts => 0,
            _ => 1,
        });
        for (table, id) in order {
            let Some(r) = current.get(id) else { continue };
            if *table == Table::Users {
                cs.ops.push(Op::Update {
                    table: Table::Users,
                    id: *id,
                    expected_version: r.version(),
                    values: vec![
                        ("deleted_at", Value::Timestamp(now)),
                        ("active", Value::Bool(false)),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
            } else if *table == Table::Products {
                // Into the recycle bin: documents may already name it.
                cs.ops.push(Op::Update {
                    table: Table::Products,
                    id: *id,
                    expected_version: r.version(),
                    values: vec![
                        ("deleted_at", Value::Timestamp(now)),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
            } else {
                // A delete carries no version: the update before it does, so
                // a record changed since it was read here (an edit, a
                // follow-up or deal recorded on it) is not removed — the
                // undo fails as a conflict instead.
                cs.ops.push(Op::Update {
                    table: *table,
                    id: *id,
                    expected_version: r.version(),
                    values: vec![("updated_at", Value::Timestamp(now))],
                });
                cs.ops.push(Op::Delete {
                    table: *table,
                    id: *id,
                });
            }
            removed += 1;
            cs.audit.push(self.audit(
                Some(actor),
                company,
                *table,
                *id,
                "import_undo",
                vec![FieldChange {
                    field: "record".into(),
                    before: Json::String(row_label(r)),
                    after: Json::Null,
                }],
            ));
            let entity = Entity::of_table(*table)
                .map(|e| e.name())
                .unwrap_or("record");
            cs.events.push(self.event(
                company,
                *table,
                *id,
                if matches!(*table, Table::Users | Table::Products) {
                    // Kept, deactivated or in the recycle bin.
                    format!("{entity}.deleted")
                } else {
                    format!("{entity}.purged")
                },
                // Like every other purge or delete event, it names the
                // record by its code (users have none: their username).
                json!({
                    "import_id": import_id,
                    "code": r.get("code").as_text().or_else(|| r.get("username").as_text()),
                }),
            ));
        }
        let mut restored = 0;
        for u in updated.iter().rev() {
            let Some(r) = current.get(&u.id) else {
                continue;
            };
            let mut values: Vec<(&'static str, Value)> = Vec::new();
            let mut changes = Vec::new();
            for (col, before) in &u.before {
                let Some(c) = u.table.column(col).filter(|c| c.name != "updated_at") else {
                    continue;
                };
                if !is_derived(c.name) {
                    changes.push(FieldChange {
                        field: c.name.to_string(),
                        before: r.get(c.name).to_json(),
                        after: before.to_json(),
                    });
                }
                values.push((c.name, before.clone()));
            }
            values.push(("updated_at", Value::Timestamp(now)));
            cs.ops.push(Op::Update {
                table: u.table,
                id: u.id,
                expected_version: u.version,
                values,
            });
            restored += 1;
            let entity = Entity::of_table(u.table)
                .map(|e| e.name())
                .unwrap_or("record");
            cs.events.push(self.event(
                company,
                u.table,
                u.id,
                format!("{entity}.updated"),
                json!({ "version": u.version + 1, "import_id": import_id, "changes": &changes }),
            ));
            cs.audit
                .push(self.audit(Some(actor), company, u.table, u.id, "import_undo", changes));
        }
        // A user given back their department takes the records they own
        // back with them, as the import moved them (`update_user`).
        for u in updated.iter().filter(|u| u.table == Table::Users) {
            let Some(r) = current.get(&u.id) else {
                continue;
            };
            if let Some((_, before)) = u.before.iter().find(|(c, _)| c == "department_id")
                && before != r.get("department_id")
            {
                let department = before.as_id().map(DepartmentId);
                self.restamp_departments(actor, UserId(u.id), department, &mut cs)
                    .await?;
            }
        }
        // Users removed (deactivated) or given back their roles: the last
        // active administrator keeps their rights, as through the API.
        let writes_users = cs.ops.iter().any(|op| {
            matches!(
                op,
                Op::Update {
                    table: Table::Users,
                    ..
                }
            )
        });
        if writes_users {
            match self.admins_kept_by(actor, &cs).await {
                Ok(Some(ops)) => cs.ops.extend(ops),
                Ok(None) => {}
                Err(Error::InvalidState(m)) => {
                    return Err(Error::InvalidState(format!(
                        "cannot undo import {import_id}: {m}; nothing was undone"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        self.index_customer_keys(&mut cs).await?;
        cs.ops.push(Op::Update {
            table: Table::Imports,
            id: import_id,
            expected_version: row.version(),
            values: vec![
                ("status", ImportStatus::Undone.name().into()),
                ("updated_at", Value::Timestamp(now)),
            ],
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Imports,
            import_id,
            "undo",
            vec![FieldChange {
                field: "status".into(),
                before: row.get("status").to_json(),
                after: Json::String(ImportStatus::Undone.name().into()),
            }],
        ));
        match self.apply(cs).await {
            Ok(()) => {}
            // The reference and duplicate guards are all that guard an undo.
            Err(Error::Duplicate { message, .. } | Error::InvalidState(message)) => {
                return Err(Error::InvalidState(format!(
                    "cannot undo import {import_id}: {message}; nothing was undone"
                )));
            }
            Err(e) => return Err(e),
        }
        // Users removed, or given back their roles, superior or activity,
        // move role and superior steps of pending approvals.
        let users_touched = created.iter().any(|(t, _)| *t == Table::Users)
            || updated.iter().any(|u| u.table == Table::Users);
        if users_touched {
            self.refresh_approvals_waiting_for(actor, None).await;
        }
        Ok(UndoReport {
            import_id,
            removed,
            restored,
        })
    }

    /// Refuses the undo of an import when a customer or contact it updated
    /// would get back a value that a record saved since holds under a
    /// refusing duplicate rule or unique custom field (checked as
    /// [`Crm::check_duplicates`] checks a restore from the recycle bin), and
    /// returns the guards that repeat the checks inside the undo's write.
    /// Records giving nothing back that a rule compares are not checked.
    /// A record of the import that holds such a value now but not once the
    /// undo is written (it removes it, or gives it its own earlier value)
    /// is left out of the check, so that an import that moved a value from
    /// one record to another can be undone.
    async fn undo_duplicates(
        &self,
        actor: &Actor,
        import_id: Uuid,
        created: &[(Table, Uuid)],
        updated: &[UpdatedItem],
        current: &HashMap<Uuid, Row>,
    ) -> Result<Vec<Guard>> {
        let checked = |t: Table| matches!(t, Table::Customers | Table::Contacts);
        // Each updated record as the undo leaves it, and what its rules
        // compare then.
        let mut after: Vec<(&UpdatedItem, &Row, BTreeMap<&'static str, Value>)> = Vec::new();
        let mut finals: HashMap<Uuid, BTreeSet<(String, String)>> = HashMap::new();
        for u in updated.iter().filter(|u| checked(u.table)) {
            let (Some(entity), Some(r)) = (Entity::of_table(u.table), current.get(&u.id)) else {
                continue;
            };
            let mut merged: BTreeMap<&'static str, Value> = u
                .table
                .columns()
                .iter()
                .map(|c| (c.name, r.get(c.name).clone()))
                .collect();
            for (col, before) in &u.before {
                if let Some(c) = u.table.column(col) {
                    merged.insert(c.name, before.clone());
                }
            }
            // As a restore does: keys derived, a stored record failing the
            // checks across its values still comes back.
            let _ = self.derive(entity, &mut merged);
            finals.insert(
                u.id,
                compared_values(|c| merged.get(c).cloned().unwrap_or(Value::Null)),
            );
            after.push((u, r, merged));
        }
        // Who of the import holds each compared value now.
        let mut holders: HashMap<(Table, (String, String)), Vec<Uuid>> = HashMap::new();
        let ours = created
            .iter()
            .copied()
            .chain(updated.iter().map(|u| (u.table, u.id)));
        for (t, id) in ours.filter(|(t, _)| checked(*t)) {
            if let Some(r) = current.get(&id) {
                for kv in compared_values(|c| r.get(c).clone()) {
                    holders.entry((t, kv)).or_default().push(id);
                }
            }
        }
        let mut customs: HashMap<Table, Vec<CustomFieldDef>> = HashMap::new();
        let mut guards = Vec::new();
        for (u, r, merged) in after {
            let fin = &finals[&u.id];
            if fin.is_subset(&compared_values(|c| r.get(c).clone())) {
                continue;
            }
            let mut exclude = vec![u.id];
            for kv in fin {
                for h in holders.get(&(u.table, kv.clone())).into_iter().flatten() {
                    let keeps = finals.get(h).is_some_and(|f| f.contains(kv));
                    if *h != u.id && !keeps && !exclude.contains(h) {
                        exclude.push(*h);
                    }
                }
            }
            let entity = Entity::of_table(u.table).unwrap_or(Entity::Customer);
            let defs = match customs.entry(u.table) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.custom_fields(actor, entity).await?)
                }
            };
            let custom: BTreeMap<String, Json> = merged
                .get("custom")
                .and_then(Value::as_json)
                .and_then(Json::as_object)
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default();
            match self
                .check_duplicates_except(actor, entity, &merged, &custom, defs, &exclude)
                .await
            {
                Ok(g) => guards.extend(g),
                Err(Error::Duplicate { message, .. }) => {
                    return Err(Error::InvalidState(format!(
                        "cannot undo import {import_id}: {entity} {} would get its earlier \
                         values back, and {message}; change or remove that value on one of \
                         them, then undo again; nothing was undone",
                        row_label(r)
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(guards)
    }

    /// The records outside an import that refer to records it created
    /// (`created`, whose rows `current` holds), described for the refusal
    /// of its undo — those the actor may read named, the others only
    /// counted — and guards that refuse the undo's change set should
    /// such a record be saved before it is written. Records the import
    /// created itself (contacts imported with their customer) do not
    /// count; records in the recycle bin or archived do, as they may come
    /// back. Pool moves (history, and written by an import into a pool
    /// itself) and payments and invoices (which belong to a contract of
    /// the customer) are not looked at.
    async fn undo_references(
        &self,
        actor: &Actor,
        created: &[(Table, Uuid)],
        current: &HashMap<Uuid, Row>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<String>, usize, Vec<Guard>, Option<String>)> {
        let company = actor.company_id.0;
        let mut unseen = 0;
        // The first approval a created user acted on or applied for: it
        // stays on record, so nothing can be moved away to undo.
        let mut on_record = None;
        let own: HashSet<Uuid> = created.iter().map(|(_, id)| *id).collect();
        let mut by_table: BTreeMap<Table, Vec<Uuid>> = BTreeMap::new();
        for (t, id) in created {
            if current.contains_key(id) {
                by_table.entry(*t).or_default().push(*id);
            }
        }
        let kind = |t: Table| {
            Entity::of_table(t)
                .map(|e| e.name().replace('_', "-"))
                .unwrap_or_else(|| t.name().to_string())
        };
        let mut found = Vec::new();
        let mut guards = Vec::new();
        for (table, ids) in by_table {
            // A JSON column (a sales record's lines) is searched id by id:
            // fewer ids per query.
            let lines = table == Table::Products;
            for chunk in ids.chunks(if lines { 100 } else { IN_CHUNK }) {
                for &(rt, col) in undo_referrers(table) {
                    let mut sel = Select::all(rt, company, now);
                    if rt.is_owned() {
                        // The recycle bin and the archive too.
                        sel.lifecycle = Lifecycle::Any;
                    }
                    sel.filter = if lines {
                        Filter::Or(
                            chunk
                                .iter()
                                .map(|i| Filter::HoldsId(Col::Column(col), *i))
                                .collect(),
                        )
                    } else {
                        Filter::In(
                            Col::Column(col),
                            chunk.iter().map(|i| Value::Id(*i)).collect(),
                        )
                    };
                    let mut mine = Vec::new();
                    for r in self.store.select(&sel).await?.rows {
                        if own.contains(&r.id()) {
                            mine.push(Value::Id(r.id()));
                            continue;
                        }
                        let targets: Vec<&Row> = if lines {
                            // Every product of the chunk its lines name.
                            let text = r.get(col).to_json().to_string();
                            chunk
                                .iter()
                                .filter(|i| text.contains(&i.to_string()))
                                .filter_map(|i| current.get(i))
                                .collect()
                        } else {
                            r.get(col)
                                .as_id()
                                .and_then(|i| current.get(&i))
                                .into_iter()
                                .collect()
                        };
                        if targets.is_empty() {
                            continue;
                        }
                        // A business record the actor may not read is not
                        // named (users and departments are the company's
                        // directory; a share names no one).
                        let readable = match Entity::of_table(rt) {
                            Some(e) if rt.is_owned() => {
                                self.can_on_row(actor, e, Action::Read, &r).await?
                            }
                            _ => true,
                        };
                        if !readable {
                            unseen += 1;
                            continue;
                        }
                        let (rk, rl) = (kind(rt), row_label(&r));
                        let state = if !r.get("deleted_at").is_null() {
                            " (in the recycle bin)"
                        } else if rt.is_owned() && !r.get("archived_at").is_null() {
                            " (archived)"
                        } else {
                            ""
                        };
                        for target in targets {
                            let (what, whose) = (kind(table), row_label(target));
                            let said = match col {
                                "owner_id" => format!("user {whose} owns {rk} {rl}{state}"),
                                "superior_id" => {
                                    format!("user {whose} is the superior of user {rl}")
                                }
                                "manager_id" => format!("user {whose} manages department {rl}"),
                                "actor_id" => format!("user {whose} has acted on approvals"),
                                "applicant_id" => {
                                    format!("user {whose} has applied for approvals")
                                }
                                "record_id" => {
                                    format!("{what} {whose} has been shared with a user")
                                }
                                "products" | "lines" => {
                                    format!("{what} {whose} is used by {rk} {rl}{state}")
                                }
                                _ => format!(
                                    "{what} {whose} has {rk} {rl}{state} added after the import"
                                ),
                            };
                            if matches!(col, "actor_id" | "applicant_id") {
                                on_record.get_or_insert_with(|| said.clone());
                            }
                            found.push(said);
                        }
                    }
                    // The same look inside the undo's write, the records
                    // of the import left out.
                    if !mine.is_empty() {
                        sel.filter = Filter::And(vec![
                            sel.filter,
                            Filter::Not(Box::new(Filter::In(Col::Column("id"), mine))),
                        ]);
                    }
                    // Under the key a contact, quote or contract created
                    // for one of the customers takes (those have no other
                    // hold on it: a follow-up or an opportunity updates the
                    // customer, whose version the undo's delete carries).
                    let keys = if table == Table::Customers && col == "customer_id" {
                        chunk
                            .iter()
                            .map(|c| crate::records::customer_contacts_key(company, *c))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    guards.push(Guard {
                        kind: crate::store::GuardKind::State,
                        keys,
                        select: sel,
                        message: format!(
                            "while the undo ran, a {} referring to a {} the import created was \
                             saved; nothing was undone: undo again to see which",
                            kind(rt),
                            kind(table)
                        ),
                    });
                }
            }
        }
        // (A user who decided several approvals is named once.)
        let mut seen = HashSet::new();
        found.retain(|f| seen.insert(f.clone()));
        Ok((found, unseen, guards, on_record))
    }

    /// Allocates `n` consecutive human codes of a document type at once.
    async fn next_codes(&self, actor: &Actor, prefix: &str, n: usize) -> Result<Vec<String>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let day = self.today().format("%Y%m%d").to_string();
        let key = format!("{prefix}-{day}");
        let count = u32::try_from(n).map_err(|_| Error::invalid("rows", "too many rows"))?;
        Ok(self
            .store
            .reserve_sequence(actor.company_id.0, &key, count)
            .await?
            .into_iter()
            .map(|k| format!("{key}-{k:04}"))
            .collect())
    }
}

/// The tables and columns that refer to records of `table` an import can
/// create, as an undo checks them (see `Crm::undo_references`).
fn undo_referrers(table: Table) -> &'static [(Table, &'static str)] {
    match table {
        Table::Customers => &[
            (Table::Contacts, "customer_id"),
            (Table::FollowUps, "customer_id"),
            (Table::Opportunities, "customer_id"),
            (Table::Quotes, "customer_id"),
            (Table::Contracts, "customer_id"),
            (Table::Shares, "record_id"),
        ],
        Table::Contacts => &[
            (Table::FollowUps, "contact_id"),
            (Table::Shares, "record_id"),
        ],
        Table::Users => &[
            (Table::Customers, "owner_id"),
            (Table::Contacts, "owner_id"),
            (Table::FollowUps, "owner_id"),
            (Table::Opportunities, "owner_id"),
            (Table::Quotes, "owner_id"),
            (Table::Contracts, "owner_id"),
            (Table::Users, "superior_id"),
            (Table::Departments, "manager_id"),
            // Their decisions and submissions are the approvals' record.
            (Table::ApprovalActions, "actor_id"),
            (Table::ApprovalInstances, "applicant_id"),
        ],
        // Products are named inside the lines (JSON) of sales records.
        Table::Products => &[
            (Table::Opportunities, "products"),
            (Table::Quotes, "lines"),
            (Table::Contracts, "lines"),
        ],
        _ => &[],
    }
}

fn import_info(r: &Row) -> ImportInfo {
    let int = |c: &str| r.get(c).as_int().unwrap_or(0);
    ImportInfo {
        id: r.id(),
        entity: r.get("entity").as_text().unwrap_or_default().to_string(),
        file_name: r.get("file_name").as_text().unwrap_or_default().to_string(),
        status: ImportStatus::parse(r.get("status").as_text().unwrap_or_default()),
        rows_done: int("rows_done"),
        created: int("created"),
        updated: int("updated"),
        unchanged: int("unchanged"),
        skipped: int("skipped"),
        rejected: int("rejected"),
        actor_id: r.get("actor_id").as_id().unwrap_or_default(),
        created_at: r.get("created_at").as_timestamp().unwrap_or_default(),
    }
}

/// Whether a stored record `row` with `merged` (its values with a row's
/// merged in) and the row's custom values differs from what is stored, in
/// what an update writes (see `ImportSession::update_entries`).
fn differs(
    row: &Row,
    merged: &BTreeMap<&'static str, Value>,
    custom: &BTreeMap<String, Json>,
) -> bool {
    let fields = merged.iter().any(|(k, v)| {
        !matches!(
            *k,
            "version" | "custom" | "id" | "company_id" | "created_at" | "updated_at"
        ) && !is_derived(k)
            && row.get(k) != v
    });
    let stored = row.get("custom").as_json().and_then(Json::as_object);
    fields
        || custom
            .iter()
            .any(|(k, v)| !same_custom(stored.and_then(|o| o.get(k)).unwrap_or(&Json::Null), v))
}

/// Whether a stored custom value and an imported one are the same: numbers
/// by their value, as every store gives them back (PostgreSQL's `jsonb`
/// gives `12345678901234568` for the `1.2345678901234568e16` saved), the
/// rest as they are.
fn same_custom(stored: &Json, imported: &Json) -> bool {
    match (stored, imported) {
        (Json::Number(a), Json::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => stored == imported,
    }
}

/// Whether a row updating the stored record `row` changes anything: the
/// record itself, a contact one of its groups names, or a contact a group
/// adds.
fn changes_anything(
    row: &Row,
    merged: &BTreeMap<&'static str, Value>,
    c: &Candidate,
    contact_updates: &[ContactUpdate],
) -> bool {
    differs(row, merged, &c.custom)
        || c.contacts.iter().any(
            |k| match contact_updates.iter().find(|u| u.group == k.group) {
                Some(u) => differs(&u.row, &u.merged, &u.custom),
                None => true,
            },
        )
}

/// The values of a customer's or contact's row that its duplicate rules
/// compare, as (column or `custom.<key>`, text; custom text by its
/// [`text_key`](crate::validate::text_key)), empty ones left out; a
/// contact's mobile with its customer, as they are compared together.
fn compared_values(get: impl Fn(&str) -> Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for c in ["uscc", "name_key", "phone_key", "email_key", "mobile_key"] {
        let v = get(c);
        let mut text = key_text(&v);
        if v.is_null() || text.is_empty() {
            continue;
        }
        if c == "mobile_key" {
            text = format!("{text}@{}", key_text(&get("customer_id")));
        }
        out.insert((c.to_string(), text));
    }
    if let Some(o) = get("custom").as_json().and_then(Json::as_object) {
        for (k, v) in o.iter().filter(|(_, v)| !v.is_null()) {
            // Text spelling aside, as unique fields and rules compare it.
            let text = match v.as_str() {
                Some(t) => crate::validate::text_key(t),
                None => key_text(&custom_key_value(v)),
            };
            out.insert((format!("custom.{k}"), text));
        }
    }
    out
}

/// The right an import of `entity` needs (and its undo): `user:manage` for
/// users, the entity's `import` right otherwise.
fn import_right(entity: Entity) -> Action {
    if entity == Entity::User {
        Action::Manage
    } else {
        Action::Import
    }
}

/// The key a department or role name is also found by, letter case and
/// full-width letters aside (see `org::fold_name`), apart from the names
/// as spelled.
fn folded_name_key(name: &str) -> String {
    format!("\u{1}{}", crate::org::fold_name(name))
}

fn row_label(r: &Row) -> String {
    r.get("code")
        .as_text()
        .or_else(|| r.get("username").as_text())
        .or_else(|| r.get("name").as_text())
        .map(str::to_string)
        .unwrap_or_else(|| r.id().to_string())
}

/// The records the probe found holding `k`.
fn found_holding(existing: &HashMap<(String, String), Vec<Row>>, k: &DupKey) -> Vec<Uuid> {
    existing
        .get(&(k.kind.clone(), k.text.clone()))
        .map(|rows| rows.iter().map(Row::id).collect())
        .unwrap_or_default()
}

/// A unique custom field's value as a duplicate key (see
/// [`unique_custom_key`]).
struct UniqueCustomKey {
    /// What it is compared by.
    text: String,
    /// What the store is asked for, and the guard locks.
    value: Value,
    /// The value as typed, when `text` is not.
    shown: Option<String>,
    /// Whether `text` is a [`text_key`](crate::validate::text_key).
    by_text_key: bool,
}

/// The key of a unique custom field's value: a text field's compares by
/// its [`text_key`](crate::validate::text_key), as a single record's create
/// does (`ERP-001`, `erp-001` and `ＥＲＰ－００１` are one value, found in the
/// store with [`Filter::TextKeyIn`] and locked under the key, as
/// `check_unique_text` locks it); other fields' by their value. `None` for
/// text that is only whitespace (no value to compare).
fn unique_custom_key(def: &CustomFieldDef, v: &Json) -> Option<UniqueCustomKey> {
    let value = custom_key_value(v);
    if def.field_type == CustomFieldType::Text
        && let Some(typed) = v.as_str()
    {
        let key = crate::validate::text_key(typed);
        if key.is_empty() {
            return None;
        }
        return Some(UniqueCustomKey {
            shown: (key != typed).then(|| typed.to_string()),
            value: Value::Text(key.clone()),
            text: key,
            by_text_key: true,
        });
    }
    Some(UniqueCustomKey {
        text: key_text(&value),
        value,
        shown: None,
        by_text_key: false,
    })
}

/// The text a key value is compared by.
fn key_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Float(f) => number_text(*f),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Id(u) => u.to_string(),
        other => other.to_json().to_string(),
    }
}

impl<'a> ImportSession<'a> {
    /// The header mapping.
    pub fn header_map(&self) -> &HeaderMap {
        &self.v.map
    }

    /// The import's id (also for a dry run, where nothing is stored).
    pub fn import_id(&self) -> Uuid {
        self.import_id
    }

    /// The checkpoint a resumed import continues after: rows up to it were
    /// committed by an earlier run and are only checked, not written again.
    /// Push them all the same, from the first row of the sheet: their
    /// checks find the file's repeated keys, and the earlier runs' issues
    /// come back with the batch holding their rows.
    pub fn resume_after(&self) -> Option<u32> {
        self.resume_after
    }

    /// Whether a duplicate under [`DuplicatePolicy::Fail`] has failed the
    /// import (later rows are only checked).
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// What identifies an import for resuming besides the file's digest:
    /// the sheet and the options that change what a row writes (the
    /// entity, the duplicate policy, and the owner, department and pool as
    /// resolved). Stored in the import record's options.
    fn resume_key(&self) -> Json {
        let mut key = json!({
            "entity": self.opts.entity.name(),
            "sheet": self.opts.sheet,
            "policy": self.opts.policy.name(),
            "owner": self.owner.map(|u| u.to_string()),
            "department": self.department.map(|d| d.to_string()),
            "pool": self.pool.as_ref().map(|(p, _)| p.to_string()),
        });
        // Only when set: imports stored before the option still match.
        if self.opts.blanks_clear {
            key["blanks_clear"] = Json::Bool(true);
        }
        key
    }

    /// Finds the interrupted batched import this run continues — the
    /// actor's newest running import of the same file digest, sheet and
    /// options — and takes over its checkpoint, counts and the records its
    /// batches updated. Writes nothing. `false` when there is none (an
    /// import of another sheet or with other options is not continued:
    /// this run is a new import).
    async fn find_resumable(&mut self) -> Result<bool> {
        let crm = self.crm;
        let company = self.actor.company_id.0;
        let now = crm.now();
        let key = self.resume_key();
        if !self.opts.file_hash.is_empty() {
            let mut sel = Select::all(Table::Imports, company, now);
            sel.filter = Filter::And(vec![
                Filter::Cmp(
                    Col::Column("file_hash"),
                    CmpOp::Eq,
                    self.opts.file_hash.clone().into(),
                ),
                Filter::Cmp(
                    Col::Column("entity"),
                    CmpOp::Eq,
                    self.opts.entity.name().into(),
                ),
                Filter::Cmp(
                    Col::Column("status"),
                    CmpOp::Eq,
                    ImportStatus::Running.name().into(),
                ),
                Filter::Cmp(
                    Col::Column("actor_id"),
                    CmpOp::Eq,
                    Value::Id(self.actor.user_id.0),
                ),
            ]);
            sel.sort = vec![Sort {
                col: Col::Column("created_at"),
                desc: true,
            }];
            // An import recorded before resume keys were stored matched on
            // the file, the entity and the actor alone, and still does.
            let found = crm.store.select(&sel).await?.rows.into_iter().find(|r| {
                match r.get("options").as_json().and_then(|o| o.get("resume")) {
                    Some(stored) => stored == &key,
                    None => true,
                }
            });
            if let Some(r) = found {
                let int = |c: &str| r.get(c).as_int().unwrap_or(0);
                self.import_id = r.id();
                self.import_version = r.version();
                self.resume_after = u32::try_from(int("rows_done")).ok().filter(|n| *n > 0);
                self.counts = Counts {
                    rows: 0,
                    created: int("created") as u64,
                    contacts: 0,
                    updated: int("updated") as u64,
                    contacts_updated: 0,
                    unchanged: int("unchanged") as u64,
                    skipped: int("skipped") as u64,
                    rejected: int("rejected") as u64,
                };
                // What the committed batches did: the records they updated
                // (a later row updating one again is rejected, as it is in
                // an uninterrupted run, else undo could never restore it),
                // and the contacts they created, which the report counts
                // apart from the records.
                let mut items = Select::all(Table::ImportItems, company, now);
                items.filter = Filter::Cmp(
                    Col::Column("import_id"),
                    CmpOp::Eq,
                    Value::Id(self.import_id),
                );
                items.sort = vec![Sort {
                    col: Col::Column("batch"),
                    desc: false,
                }];
                let mut contacts = 0u64;
                let mut contacts_updated = 0u64;
                self.earlier_listed = r
                    .get("options")
                    .as_json()
                    .and_then(|o| o.get("items_keep_issues"))
                    .and_then(Json::as_bool)
                    .unwrap_or(false);
                // The record details earlier duplicate messages gave, shown
                // again only to the same rights.
                let same_rights = r
                    .get("options")
                    .as_json()
                    .and_then(|o| o.get("rights"))
                    .and_then(Json::as_str)
                    == Some(self.rights_print().as_str());
                let mut earlier_issues = Vec::new();
                for it in crm.store.select(&items).await?.rows {
                    self.batch_no = self.batch_no.max(it.get("batch").as_int().unwrap_or(0));
                    let unreadable = |e: serde_json::Error| {
                        Error::InvalidState(format!(
                            "import item {} of import {} is unreadable ({e}); the import cannot \
                             be resumed",
                            it.id(),
                            self.import_id
                        ))
                    };
                    if let Some(j) = it.get("updated").as_json() {
                        let updated: Vec<UpdatedItem> =
                            serde_json::from_value(j.clone()).map_err(unreadable)?;
                        for u in updated {
                            if self.opts.entity == Entity::Customer && u.table == Table::Contacts {
                                contacts_updated += 1;
                            }
                            self.touched.entry(u.id).or_insert(u.row);
                        }
                    }
                    if self.earlier_listed
                        && let Some(j) = it.get("issues").as_json()
                    {
                        // Unreadable issues only cost the listing: this
                        // run then reports its own rows, as for an import
                        // of a build that kept none.
                        match serde_json::from_value::<Vec<RowIssue>>(j.clone()) {
                            Ok(issues) => earlier_issues.extend(issues),
                            Err(_) => self.earlier_listed = false,
                        }
                    }
                    if self.opts.entity == Entity::Customer
                        && let Some(j) = it.get("created_ids").as_json()
                    {
                        let created: Vec<(Table, Uuid)> =
                            serde_json::from_value(j.clone()).map_err(unreadable)?;
                        contacts += created
                            .iter()
                            .filter(|(t, _)| *t == Table::Contacts)
                            .count() as u64;
                    }
                }
                if !self.earlier_listed {
                    earlier_issues.clear();
                }
                if !same_rights {
                    for i in &mut earlier_issues {
                        if matches!(i.kind, IssueKind::Duplicate | IssueKind::PossibleDuplicate) {
                            withhold_details(i);
                        }
                    }
                }
                earlier_issues.sort_by_key(|i| i.row);
                // The possible duplicates earlier runs created are warnings
                // of the report, not rows of the error workbook.
                let (warned, earlier_issues): (Vec<RowIssue>, Vec<RowIssue>) = earlier_issues
                    .into_iter()
                    .partition(|i| i.outcome == RowOutcome::Warned);
                self.warnings = warned;
                let earlier_skipped = earlier_issues
                    .iter()
                    .filter(|i| i.outcome == RowOutcome::Skipped)
                    .count() as u64;
                if self.earlier_listed {
                    // An import stored before the unchanged rows were
                    // counted apart counts them among the skipped ones:
                    // the skipped rows are those with an issue, the rest
                    // were unchanged (nothing moves for one stored since).
                    let unchanged = self.counts.skipped.saturating_sub(earlier_skipped);
                    self.counts.unchanged += unchanged;
                    self.counts.skipped -= unchanged;
                }
                self.earlier_issues = earlier_issues.into();
                // The stored count of created records includes the contacts.
                self.counts.created = self.counts.created.saturating_sub(contacts);
                self.counts.contacts = contacts;
                // So does the count of updated ones.
                self.counts.updated = self.counts.updated.saturating_sub(contacts_updated);
                self.counts.contacts_updated = contacts_updated;
                self.earlier = self.counts;
                self.resuming = true;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stores a new batched import, running, before its first batch.
    async fn start(&mut self) -> Result<()> {
        let crm = self.crm;
        let company = self.actor.company_id.0;
        let mut cs = ChangeSet::default();
        cs.ops.push(self.import_insert(ImportStatus::Running, 0));
        cs.audit.push(crm.audit(
            Some(&self.actor),
            company,
            Table::Imports,
            self.import_id,
            "create",
            vec![FieldChange {
                field: "file_name".into(),
                before: Json::Null,
                after: Json::String(self.opts.file_name.clone()),
            }],
        ));
        crm.apply(cs).await?;
        self.import_version = 1;
        Ok(())
    }

    /// The options as the import record stores them, with the key a
    /// resumed run must match (see [`ImportSession::resume_key`]).
    fn stored_options(&self) -> Json {
        let mut o = serde_json::to_value(&self.opts).unwrap_or_default();
        if let Some(m) = o.as_object_mut() {
            m.insert("resume".into(), self.resume_key());
            // Its batches keep their rejected and skipped rows (a resumed
            // run lists them; see `find_resumable`).
            m.insert("items_keep_issues".into(), Json::Bool(true));
            m.insert("rights".into(), Json::String(self.rights_print()));
        }
        o
    }

    /// A digest of what decides which records the actor sees and how
    /// (roles with their grants and field rules, department tree,
    /// subordinates, the company's setting on revealing duplicates' owners):
    /// a resumed import whose actor's digest changed does not show again
    /// what earlier runs' duplicate messages told of the records found.
    fn rights_print(&self) -> String {
        use std::hash::{Hash, Hasher};
        let a = &self.actor;
        let mut roles: Vec<String> = a
            .roles
            .iter()
            .map(|r| {
                format!(
                    "{}|{}|{:?}|{:?}",
                    r.id.0, r.is_admin, r.permissions, r.field_rules
                )
            })
            .collect();
        roles.sort();
        let mut tree: Vec<Uuid> = a.department_tree.iter().map(|d| d.0).collect();
        tree.sort();
        let mut below: Vec<Uuid> = a.subordinates.iter().map(|u| u.0).collect();
        below.sort();
        let mut h = std::hash::DefaultHasher::new();
        roles.hash(&mut h);
        tree.hash(&mut h);
        below.hash(&mut h);
        format!("{:?}", a.company_rules).hash(&mut h);
        self.crm.config.reveal_duplicate_owner.hash(&mut h);
        format!("{:016x}", h.finish())
    }

    fn import_insert(&self, status: ImportStatus, rows_done: i64) -> Op {
        let now = self.crm.now();
        let c = &self.counts;
        Op::Insert {
            table: Table::Imports,
            values: vec![
                ("id", Value::Id(self.import_id)),
                ("company_id", Value::Id(self.actor.company_id.0)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("entity", self.opts.entity.name().into()),
                ("actor_id", Value::Id(self.actor.user_id.0)),
                ("file_name", self.opts.file_name.clone().into()),
                ("file_hash", self.opts.file_hash.clone().into()),
                ("options", Value::Json(self.stored_options())),
                ("status", status.name().into()),
                ("rows_done", Value::Int(rows_done)),
                ("created", Value::Int((c.created + c.contacts) as i64)),
                (
                    "updated",
                    Value::Int((c.updated + c.contacts_updated) as i64),
                ),
                ("skipped", Value::Int(c.skipped as i64)),
                ("unchanged", Value::Int(c.unchanged as i64)),
                ("rejected", Value::Int(c.rejected as i64)),
                (
                    "finished_at",
                    if status == ImportStatus::Running {
                        Value::Null
                    } else {
                        Value::Timestamp(now)
                    },
                ),
            ],
        }
    }

    fn import_update(&mut self, status: ImportStatus, rows_done: i64) -> Op {
        let now = self.crm.now();
        let c = self.counts;
        let op = Op::Update {
            table: Table::Imports,
            id: self.import_id,
            expected_version: self.import_version,
            values: vec![
                ("updated_at", Value::Timestamp(now)),
                ("status", status.name().into()),
                ("rows_done", Value::Int(rows_done)),
                ("created", Value::Int((c.created + c.contacts) as i64)),
                (
                    "updated",
                    Value::Int((c.updated + c.contacts_updated) as i64),
                ),
                ("skipped", Value::Int(c.skipped as i64)),
                ("unchanged", Value::Int(c.unchanged as i64)),
                ("rejected", Value::Int(c.rejected as i64)),
                (
                    "finished_at",
                    if status == ImportStatus::Running {
                        Value::Null
                    } else {
                        Value::Timestamp(now)
                    },
                ),
            ],
        };
        self.import_version += 1;
        op
    }

    fn item_insert(
        &mut self,
        first: u32,
        last: u32,
        items: &BatchItems,
        issues: &[RowIssue],
    ) -> Op {
        self.batch_no += 1;
        let now = self.crm.now();
        Op::Insert {
            table: Table::ImportItems,
            values: vec![
                ("id", Value::Id(self.crm.new_id())),
                ("company_id", Value::Id(self.actor.company_id.0)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("import_id", Value::Id(self.import_id)),
                ("batch", Value::Int(self.batch_no)),
                ("first_row", Value::Int(i64::from(first))),
                ("last_row", Value::Int(i64::from(last))),
                (
                    "created_ids",
                    Value::Json(serde_json::to_value(&items.created).unwrap_or_default()),
                ),
                (
                    "updated",
                    Value::Json(serde_json::to_value(&items.updated).unwrap_or_default()),
                ),
                (
                    "issues",
                    Value::Json(serde_json::to_value(issues).unwrap_or_default()),
                ),
            ],
        }
    }

    /// Imports one batch of rows (in sheet order). Returns the rows of the
    /// batch that were rejected or skipped. In a batched import the batch is
    /// committed, with its checkpoint, before this returns.
    pub async fn push(&mut self, rows: &[SheetRow]) -> Result<Vec<RowIssue>> {
        self.push_inner(rows, None).await
    }

    /// A validator that can check the rows of a later batch on another
    /// thread while this session writes (customer imports, whose lookups
    /// are complete; `None` for the others). Pass its results to
    /// [`ImportSession::push_checked`].
    pub fn validator(&self) -> Option<RowValidator> {
        (self.opts.entity == Entity::Customer).then(|| self.v.clone())
    }

    /// [`ImportSession::push`] with rows already validated by
    /// [`RowValidator::check`] (one result per row, in order).
    pub async fn push_checked(
        &mut self,
        rows: &[SheetRow],
        checked: Vec<Checked>,
    ) -> Result<Vec<RowIssue>> {
        self.push_inner(rows, Some(checked)).await
    }

    async fn push_inner(
        &mut self,
        rows: &[SheetRow],
        checked: Option<Vec<Checked>>,
    ) -> Result<Vec<RowIssue>> {
        let batch = self.prepare(rows, checked).await?;
        let checkpoint = !batch.write.is_empty() && self.opts.commit == CommitMode::Batches;
        if let Err(e) = batch.write.commit().await {
            if checkpoint {
                self.import_version -= 1;
            }
            return Err(e);
        }
        Ok(batch.issues)
    }

    /// The first half of [`ImportSession::push`]: checks a batch of rows
    /// (in sheet order) and builds its writes without writing them, so the
    /// caller can commit them (see [`BatchWrite::commit`]) while it
    /// prepares the next batch. `checked` holds [`RowValidator::check`]'s
    /// results for the rows, one per row, when the caller has them.
    pub async fn prepare(
        &mut self,
        rows: &[SheetRow],
        checked: Option<Vec<Checked>>,
    ) -> Result<PreparedBatch<'a>> {
        if checked.as_ref().is_some_and(|c| c.len() != rows.len()) {
            return Err(Error::invalid(
                "checked",
                "one validation result per row is needed",
            ));
        }
        if rows.len() > MAX_BATCH_SIZE {
            return Err(Error::invalid(
                "rows",
                format!(
                    "a batch takes at most {MAX_BATCH_SIZE} rows, not {}: push them in smaller \
                     batches",
                    rows.len()
                ),
            ));
        }
        // One batch ahead at most: what is prepared now may read what the
        // batch before writes (see `last_keys`), not what one further back
        // does.
        if self.outstanding.load(Ordering::Acquire) > 1 {
            return Err(Error::InvalidState(
                "two prepared batches of this import are not committed yet: commit the older \
                 one before preparing another"
                    .into(),
            ));
        }
        let mut write = BatchWrite {
            crm: self.crm,
            actor: self.actor.clone(),
            changes: None,
            slots: Vec::new(),
            index_keys: false,
            keep_admin: false,
            rows: (0, 0),
            updated: Vec::new(),
            _outstanding: None,
        };
        let Some(first) = rows.first().map(|r| r.number) else {
            return Ok(PreparedBatch {
                issues: Vec::new(),
                write,
            });
        };
        let last = rows.last().map(|r| r.number).unwrap_or(first);
        if self.opts.commit == CommitMode::Atomic
            && !self.opts.dry_run
            && self.counts.rows + rows.len() as u64 > self.opts.atomic_max_rows
        {
            return Err(Error::InvalidState(format!(
                "an all-or-nothing import holds all it writes until its end, so it takes at \
                 most {} rows: import this file in checkpointed batches (the CLI's --batches), \
                 which commit as they go and resume; nothing was written",
                self.opts.atomic_max_rows
            )));
        }
        let mut issues = Vec::new();
        self.slots.clear();
        self.known = None;
        self.batch_keys.clear();
        if self.opts.commit == CommitMode::Batches {
            self.batch_guards.clear();
            self.roles_written = false;
        }
        let before = self.counts;
        self.batch_warnings.clear();
        let (cs, items) = if self.opts.entity == Entity::User {
            self.user_batch(rows, &mut issues).await?
        } else if self.opts.entity == Entity::Product {
            self.product_batch(rows, &mut issues).await?
        } else {
            self.record_batch(rows, checked, &mut issues).await?
        };
        if self.failed {
            // Nothing of this batch is written: what its rows before the
            // failing one would have created or updated does not count.
            self.counts.created = before.created;
            self.counts.contacts = before.contacts;
            self.counts.updated = before.updated;
            self.counts.contacts_updated = before.contacts_updated;
        }
        let slots = std::mem::take(&mut self.slots);
        // The rows of this batch that earlier runs of a resumed import
        // rejected or skipped (replayed rows are not reported again): the
        // caller sees them with the batch, as an uninterrupted run would.
        while let Some(i) = self.earlier_issues.front() {
            if i.row > last {
                break;
            }
            if let Some(i) = self.earlier_issues.pop_front() {
                issues.push(i);
            }
        }
        // In sheet order (the checks find a batch's issues step by step).
        issues.sort_by_key(|i| i.row);
        self.issues.extend(issues.iter().cloned());
        // Nothing of a failed import is created: nothing to warn of.
        let mut warned = std::mem::take(&mut self.batch_warnings);
        if self.failed {
            warned.clear();
        }
        warned.sort_by_key(|i| i.row);
        self.warnings.extend(warned.iter().cloned());
        let replay = self.resume_after.is_some_and(|r| last <= r);
        if self.opts.dry_run && !self.failed && !replay {
            // What the batch would create counts toward the pools' caps as
            // its write would count it: a batch's write is refused over a
            // cap (counting what the batches before it wrote), so is its
            // dry run (counting what they would have written).
            let first_row = *self.dry_first.get_or_insert(first);
            if crate::pool::count_created_customers(&cs.ops, &mut self.dry_creations)
                && self.opts.commit == CommitMode::Batches
            {
                self.dry_run_caps(Some((first_row, last))).await?;
            }
        }
        if self.failed || self.opts.dry_run || replay {
            return Ok(PreparedBatch { issues, write });
        }
        let mut cs = cs;
        self.batch_guards.append(&mut cs.guards);
        // What the batch's item keeps of its issues, for a run resuming the
        // import: its own rows, after the checkpoint (the earlier runs' are
        // stored with their batches). An all-or-nothing import is never
        // resumed: its report alone has them.
        let kept: Vec<RowIssue> = if self.opts.commit == CommitMode::Batches {
            issues
                .iter()
                .chain(&warned)
                .filter(|i| !self.is_replay(i.row))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if !items.created.is_empty() || !items.updated.is_empty() || !kept.is_empty() {
            let item = self.item_insert(first, last, &items, &kept);
            cs.ops.push(item);
        }
        let keys = std::mem::take(&mut self.batch_keys);
        match self.opts.commit {
            CommitMode::Atomic => {
                self.atomic_keys.extend(keys);
                self.atomic_first.get_or_insert(first);
                self.atomic_updated.extend(
                    items
                        .updated
                        .iter()
                        .map(|u| (u.table, u.id, u.version - 1, u.row)),
                );
                // Codes now: the batch's indexes change once merged.
                assign_codes(self.crm, &self.actor, &mut cs, &slots).await?;
                self.atomic.ops.extend(cs.ops);
                self.atomic.audit.extend(cs.audit);
                self.atomic.events.extend(cs.events);
            }
            CommitMode::Batches => {
                cs.guards = self.key_guards(&keys, (first, last), false);
                cs.guards.extend(self.pool_guard());
                cs.guards.extend(self.option_list_guards());
                cs.guards.append(&mut self.batch_guards);
                if self.opts.entity == Entity::Customer {
                    // The duplicate keys now, while the batch before may
                    // still be written — unless they meet what that batch
                    // writes: then at commit, once it is written.
                    let (ops, events) = (cs.ops.len(), cs.events.len());
                    let known = self.known.take();
                    let touched = self
                        .crm
                        .index_customer_keys_noting(&mut cs, known.as_ref())
                        .await?;
                    if self.last_keys.as_ref().is_some_and(|t| t.meets(&touched)) {
                        cs.ops.truncate(ops);
                        cs.events.truncate(events);
                        write.index_keys = true;
                    }
                    self.last_keys = Some(touched);
                }
                let op = self.import_update(ImportStatus::Running, i64::from(last));
                cs.ops.push(op);
                write.changes = Some(cs);
                write.slots = slots;
                write.keep_admin = self.roles_written;
                write.rows = (first, last);
                write.updated = items
                    .updated
                    .iter()
                    .map(|u| (u.table, u.id, u.version - 1, u.row))
                    .collect();
                self.outstanding.fetch_add(1, Ordering::AcqRel);
                write._outstanding = Some(Outstanding(self.outstanding.clone()));
            }
        }
        Ok(PreparedBatch { issues, write })
    }

    /// Holds what a dry run would have created so far to the pools' caps,
    /// as writing it would (see [`Crm::creation_caps`]): refused in the
    /// words of the write's refusal (for `rows`, a batch of a batched
    /// import: the dry run's rows up to its last), nothing written.
    async fn dry_run_caps(&self, rows: Option<(u32, u32)>) -> Result<()> {
        // The bumps and guards a write would take are not written.
        let mut cs = ChangeSet::default();
        self.crm
            .creation_caps_of(&self.actor, &self.dry_creations, &mut cs)
            .await
            .map_err(|e| cap_refusal(e, rows))
    }

    /// Guards that the option lists of the select fields the sheet's
    /// columns write are still those the import read when it began (see
    /// [`crate::custom::option_list_guards`]): an option removed while the
    /// import runs fails the batch instead of being written (one guard per
    /// such field and batch).
    fn option_list_guards(&self) -> Vec<Guard> {
        let keys: Vec<String> = self
            .v
            .map
            .roles
            .iter()
            .filter_map(|r| match r {
                ColumnRole::Field(f) => f.strip_prefix("custom.").map(str::to_string),
                _ => None,
            })
            .collect();
        let mut guards = crate::custom::option_list_guards(
            self.actor.company_id.0,
            &self.v.customs,
            keys.iter(),
            self.crm.now(),
        );
        // The built-in choice fields' lists, as read when the import began
        // (the rows were checked against them).
        let mut choices: Vec<(Entity, &str)> = self
            .v
            .map
            .roles
            .iter()
            .filter_map(|r| match r {
                ColumnRole::Field(f) => Some((self.opts.entity, f.as_str())),
                ColumnRole::Contact { field, .. } => Some((Entity::Contact, field.as_str())),
                _ => None,
            })
            .collect();
        choices.sort_unstable_by_key(|(e, f)| (e.name(), *f));
        choices.dedup();
        for (on, f) in choices {
            if let Some(&(entity, version)) = self.v.lookups.picklist_versions.get(f)
                && entity == on
            {
                guards.push(crate::custom::picklist_guard(
                    self.actor.company_id.0,
                    entity,
                    f,
                    version,
                    self.crm.now(),
                ));
            }
        }
        guards
    }

    /// For an import into a pool, the guard refusing its writes once the
    /// pool is deleted (a deletion re-counts the pool's customers under the
    /// same lock).
    fn pool_guard(&self) -> Option<Guard> {
        let (pool, name) = self.pool.as_ref()?;
        Some(
            self.crm
                .pool_alive_guard_of(self.actor.company_id.0, *pool, name),
        )
    }

    /// Ends the import: an atomic import commits everything now (nothing if
    /// a duplicate failed it), a batched one records that it is done.
    pub async fn finish(mut self) -> Result<ImportReport> {
        let status = if self.failed {
            ImportStatus::Failed
        } else {
            ImportStatus::Done
        };
        // A dry run names only the stored import it would continue.
        let mut import_id = (!self.opts.dry_run || self.resuming).then_some(self.import_id);
        // An all-or-nothing import is held to the pools' caps as a whole
        // when it is written: its dry run too.
        if self.opts.dry_run && self.opts.commit == CommitMode::Atomic && !self.failed {
            self.dry_run_caps(None).await?;
        }
        if !self.opts.dry_run {
            match self.opts.commit {
                CommitMode::Atomic if self.failed => import_id = None,
                CommitMode::Atomic => {
                    let mut cs = std::mem::take(&mut self.atomic);
                    let rows = (self.atomic_first.unwrap_or_default(), self.last_row_seen());
                    cs.guards = self.key_guards(&self.atomic_keys, rows, true);
                    cs.guards.extend(self.pool_guard());
                    cs.guards.extend(self.option_list_guards());
                    cs.guards.append(&mut self.batch_guards);
                    if self.opts.entity == Entity::Customer {
                        self.crm.index_customer_keys(&mut cs).await?;
                        self.crm
                            .creation_caps(&self.actor, &mut cs)
                            .await
                            .map_err(|e| cap_refusal(e, None))?;
                    }
                    if self.roles_written {
                        keep_an_admin(self.crm, &self.actor, &mut cs, None).await?;
                    }
                    let rows_done = i64::from(self.last_row_seen());
                    cs.ops.insert(0, self.import_insert(status, rows_done));
                    cs.audit.push(self.crm.audit(
                        Some(&self.actor),
                        self.actor.company_id.0,
                        Table::Imports,
                        self.import_id,
                        "create",
                        vec![FieldChange {
                            field: "file_name".into(),
                            before: Json::Null,
                            after: Json::String(self.opts.file_name.clone()),
                        }],
                    ));
                    if let Err(e) = self.crm.apply(cs).await {
                        return Err(
                            changed_meanwhile(self.crm, e, &self.atomic_updated, None).await
                        );
                    }
                }
                CommitMode::Batches => {
                    let rows_done = i64::from(self.last_row_seen());
                    let op = self.import_update(status, rows_done);
                    self.crm
                        .apply(ChangeSet {
                            ops: vec![op],
                            ..ChangeSet::default()
                        })
                        .await?;
                }
            }
            // Users created with roles, or whose roles, superior or
            // activity changed, move role and superior steps of pending
            // approvals, as `create_user` and `update_user` have it.
            let written = self.counts.created + self.counts.updated > 0;
            if self.opts.entity == Entity::User
                && written
                && !(self.failed && self.opts.commit == CommitMode::Atomic)
            {
                self.crm
                    .refresh_approvals_waiting_for(&self.actor, None)
                    .await;
            }
        }
        let mut c = self.counts;
        let e = self.earlier;
        // Earlier runs' rows are left to their left-over issues (the rows
        // of a file that ends before them, which a resume never sees).
        self.issues.extend(self.earlier_issues.drain(..));
        if self.failed && (self.opts.dry_run || self.opts.commit == CommitMode::Atomic) {
            // Nothing of this run is written (a dry run: nothing would be
            // once the file's duplicates are known up front): only what
            // earlier runs of a resumed import committed is there.
            c.created = e.created;
            c.contacts = e.contacts;
            c.updated = e.updated;
            c.contacts_updated = e.contacts_updated;
            // Nor is any of its possible duplicates created: only those
            // earlier runs committed stay.
            let after = self.resume_after.unwrap_or(0);
            self.warnings.retain(|w| w.row <= after);
        }
        let (rows, unchanged, skipped, rejected) = if self.earlier_listed {
            // The whole import, as an uninterrupted run would report it:
            // the earlier runs' issues are listed too.
            let count =
                |o: RowOutcome| self.issues.iter().filter(|i| i.outcome == o).count() as u64;
            (
                c.rows + self.replayed_rows,
                c.unchanged,
                count(RowOutcome::Skipped),
                count(RowOutcome::Rejected),
            )
        } else {
            // An import whose earlier batches did not keep their issues:
            // this run's rows, as the issues list them.
            (
                c.rows,
                c.unchanged.saturating_sub(e.unchanged),
                c.skipped.saturating_sub(e.skipped),
                c.rejected.saturating_sub(e.rejected),
            )
        };
        Ok(ImportReport {
            import_id,
            entity: self.opts.entity,
            dry_run: self.opts.dry_run,
            status,
            rows,
            created: c.created,
            contacts_created: c.contacts,
            updated: c.updated,
            contacts_updated: c.contacts_updated,
            unchanged,
            skipped,
            rejected,
            resumed_after: self.resume_after,
            ignored_columns: self.v.map.ignored.clone(),
            issues: std::mem::take(&mut self.issues),
            warnings: {
                let mut w = std::mem::take(&mut self.warnings);
                w.sort_by_key(|i| i.row);
                w
            },
        })
    }

    fn last_row_seen(&self) -> u32 {
        self.seen
            .values()
            .copied()
            .chain(self.issues.iter().map(|i| i.row))
            .chain(self.resume_after)
            .max()
            .unwrap_or(0)
    }

    /// Whether a row's duplicate key (kind, text) appeared on an earlier
    /// row of the file — then reported (unless the row is replayed by a
    /// resume) — else remembers it for the rows after.
    fn repeated_in_file(
        &mut self,
        issues: &mut Vec<RowIssue>,
        number: u32,
        key: (&str, &str),
        what_en: &str,
        what_zh: &str,
    ) -> bool {
        let k = seen_key(key.0, key.1);
        let Some(first) = self.seen.get(&k).copied() else {
            self.seen.insert(k, number);
            return false;
        };
        if !self.is_replay(number) {
            self.duplicate(
                issues,
                number,
                IssueKind::DuplicateInFile,
                format!("{what_en} repeats row {first} of this file"),
                format!("{what_zh} 与本文件第 {first} 行重复"),
            );
        }
        true
    }

    /// The unique custom values of the contacts a customer row carries.
    fn contact_keys(&self, c: &Candidate) -> Vec<ContactKey> {
        self.contact_keys_where(c, |_| true)
    }

    /// The unique custom values of the contacts of a customer row that
    /// `adds` picks.
    fn contact_keys_where(
        &self,
        c: &Candidate,
        adds: impl Fn(&ContactDraft) -> bool,
    ) -> Vec<ContactKey> {
        if c.contacts.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for def in self.v.contact_customs.iter().filter(|d| d.unique) {
            for contact in c.contacts.iter().filter(|k| adds(k)) {
                if let Some(v) = contact.custom.get(&def.key).filter(|v| !v.is_null())
                    && let Some(u) = unique_custom_key(def, v)
                {
                    out.push(ContactKey {
                        group: contact.group,
                        key: def.key.clone(),
                        label: def.label.clone(),
                        shown: u.shown.unwrap_or_else(|| u.text.clone()),
                        text: u.text,
                        value: u.value,
                        by_text_key: u.by_text_key,
                    });
                }
            }
        }
        out
    }

    /// The customer a row would update under the update policy (the
    /// record it meets by its keys: see [`ImportSession::matched`]).
    fn meets(&self, c: &Candidate, existing: &HashMap<(String, String), Vec<Row>>) -> Option<Uuid> {
        if self.opts.policy != DuplicatePolicy::Update {
            return None;
        }
        self.matched(existing, c)
            .ok()
            .flatten()
            .map(|(_, r)| r.id())
    }

    /// The contacts (live or archived, not in the recycle bin) of the
    /// customers that rows with contact groups would update (update policy
    /// only; one query per [`IN_CHUNK`] customers), by customer: a group
    /// matching a live one updates it, one matching an archived one fails
    /// its row (see [`match_contact`]), the others are added.
    async fn contacts_of_updated(
        &self,
        cands: &[Candidate],
        existing: &HashMap<(String, String), Vec<Row>>,
    ) -> Result<HashMap<Uuid, Vec<Row>>> {
        let mut out: HashMap<Uuid, Vec<Row>> = HashMap::new();
        if self.opts.policy != DuplicatePolicy::Update {
            return Ok(out);
        }
        let mut parents: Vec<Value> = cands
            .iter()
            .filter(|c| !c.contacts.is_empty())
            .filter_map(|c| self.meets(c, existing))
            .map(Value::Id)
            .collect();
        parents.sort_by_key(key_text);
        parents.dedup();
        for chunk in parents.chunks(IN_CHUNK) {
            // Archived contacts too: a group naming one is refused (it is
            // unarchived first), not made into a second contact beside it.
            let mut sel = Select::all(Table::Contacts, self.actor.company_id.0, self.crm.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::In(Col::Column("customer_id"), chunk.to_vec()),
                Filter::IsNull(Col::Column("deleted_at")),
            ]);
            sel.sort = vec![Sort {
                col: Col::Column("customer_id"),
                desc: false,
            }];
            for r in self.crm.store.select(&sel).await?.rows {
                let cid = r.get("customer_id").as_id().unwrap_or_default();
                out.entry(cid).or_default().push(r);
            }
        }
        // In creation order (ids are time-ordered), whatever the store's.
        for rows in out.values_mut() {
            rows.sort_by_key(Row::id);
        }
        Ok(out)
    }

    /// The contacts (in any state) the contact groups' code columns
    /// (联系人1编号) of `cands` name, by code: one query per [`IN_CHUNK`]
    /// codes, none when no group gives a code.
    async fn group_code_contacts(&self, cands: &[Candidate]) -> Result<HashMap<String, Row>> {
        let codes = cands
            .iter()
            .flat_map(|c| c.contacts.iter())
            .filter_map(|k| k.code.clone())
            .collect();
        self.contacts_by_code(codes).await
    }

    /// The company's contacts (archived and binned ones too) by code, for
    /// the codes given: one query per [`IN_CHUNK`] codes, whoever may see
    /// them (the callers tell only of what the actor may read).
    async fn contacts_by_code(&self, mut codes: Vec<String>) -> Result<HashMap<String, Row>> {
        let mut out = HashMap::new();
        codes.sort();
        codes.dedup();
        for chunk in codes.chunks(IN_CHUNK) {
            let mut sel = Select::all(Table::Contacts, self.actor.company_id.0, self.crm.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::In(
                Col::Column("code"),
                chunk.iter().map(|t| Value::Text(t.clone())).collect(),
            );
            for r in self.crm.store.select(&sel).await?.rows {
                if let Some(code) = r.get("code").as_text() {
                    out.insert(code.to_string(), r);
                }
            }
        }
        Ok(out)
    }

    /// Why a contact group of row `c` cannot name the contact its code
    /// column gives (`found`, see [`Self::group_code_contacts`]), the row
    /// creating a customer (`customer` is `None`) or updating `customer`:
    /// the contact is in the recycle bin, or another customer's. Only a
    /// contact the actor may read is told of; another is "no contact of
    /// this customer". A code naming no contact (a sheet's own numbering)
    /// is no problem.
    async fn group_code_problem(
        &self,
        c: &Candidate,
        customer: Option<Uuid>,
        found: &HashMap<String, Row>,
    ) -> Result<Option<(String, String)>> {
        for k in &c.contacts {
            let g = k.group;
            let Some(code) = k.code.as_deref() else {
                continue;
            };
            let Some(r) = found.get(code) else {
                continue;
            };
            let binned = !r.get("deleted_at").is_null();
            let theirs = r.get("customer_id").as_id() == customer && customer.is_some();
            if !binned && theirs {
                continue;
            }
            let readable = self
                .crm
                .can_on_row(&self.actor, Entity::Contact, Action::Read, r)
                .await?;
            let name = row_label_name(r);
            return Ok(Some(if !readable {
                (
                    format!("contact {g}: no contact {code} of this customer (联系人{g}编号)"),
                    format!("联系人{g}：该客户没有编号为 {code} 的联系人（联系人{g}编号）"),
                )
            } else if binned {
                (
                    format!(
                        "contact {g}: contact {code} ({name}) is in the recycle bin; restore it \
                         first, or clear the code (联系人{g}编号) to import the contact as a new one"
                    ),
                    format!(
                        "联系人{g}：编号 {code}（{name}）对应的联系人在回收站中，请先恢复，或清空联系人{g}编号作为新联系人导入"
                    ),
                )
            } else {
                (
                    format!(
                        "contact {g}: contact {code} ({name}) is another customer's contact, not \
                         this customer's: clear the code (联系人{g}编号) or correct it"
                    ),
                    format!(
                        "联系人{g}：编号 {code}（{name}）是其他客户的联系人，不属于该客户；请清空或更正联系人{g}编号"
                    ),
                )
            }));
        }
        Ok(None)
    }

    /// The rows of `cands` whose contacts to add hold unique custom values
    /// no live contact of the company holds (one query per field and
    /// [`IN_CHUNK`] values); the others are duplicates, reported without
    /// naming the contact (the importing user may not see it). With the
    /// update policy, a row meeting a customer (as `existing` found it)
    /// adds only the contacts that match none of that customer's (`stored`,
    /// see [`match_contact`]); those matching one update it, checked as
    /// such when the row is.
    async fn contact_uniques_free(
        &mut self,
        cands: Vec<Candidate>,
        existing: &HashMap<(String, String), Vec<Row>>,
        stored: &HashMap<Uuid, Vec<Row>>,
        issues: &mut Vec<RowIssue>,
    ) -> Result<Vec<Candidate>> {
        if !self.v.contact_customs.iter().any(|d| d.unique)
            || cands.iter().all(|c| c.contacts.is_empty())
        {
            return Ok(cands);
        }
        // The customer each row would update.
        let meets: Vec<Option<Uuid>> = cands.iter().map(|c| self.meets(c, existing)).collect();
        let keys: Vec<Vec<ContactKey>> = cands
            .iter()
            .zip(&meets)
            .map(|(c, to)| self.contact_keys_where(c, |k| adds_contact(stored, *to, k)))
            .collect();
        let mut by_field: BTreeMap<&str, (Col, bool, Vec<Value>)> = BTreeMap::new();
        for ck in keys.iter().flatten() {
            let Some(def) = self.v.contact_customs.iter().find(|d| d.key == ck.key) else {
                continue;
            };
            by_field
                .entry(ck.key.as_str())
                .or_insert_with(|| (def.col(), ck.by_text_key, Vec::new()))
                .2
                .push(ck.value.clone());
        }
        let mut taken: HashSet<(String, String)> = HashSet::new();
        for (key, (col, by_text_key, mut values)) in by_field {
            values.sort_by_key(key_text);
            values.dedup();
            for chunk in values.chunks(IN_CHUNK) {
                let mut sel = Select::all(Table::Contacts, self.actor.company_id.0, self.crm.now());
                sel.lifecycle = Lifecycle::Any;
                let found = if by_text_key {
                    Filter::TextKeyIn(col.clone(), chunk.iter().map(key_text).collect())
                } else {
                    Filter::In(col.clone(), chunk.to_vec())
                };
                sel.filter = Filter::And(vec![found, Filter::IsNull(Col::Column("deleted_at"))]);
                for r in self.crm.store.select(&sel).await?.rows {
                    if let Some(v) = r.get("custom").as_json().and_then(|j| j.get(key)) {
                        let text = match v.as_str() {
                            Some(t) if by_text_key => crate::validate::text_key(t),
                            _ => key_text(&crate::records::custom_key_value(v)),
                        };
                        taken.insert((key.to_string(), text));
                    }
                }
            }
        }
        let mut free = Vec::with_capacity(cands.len());
        for (c, ks) in cands.into_iter().zip(keys) {
            match ks
                .iter()
                .find(|k| taken.contains(&(k.key.clone(), k.text.clone())))
            {
                Some(k) => self.duplicate(
                    issues,
                    c.number,
                    IssueKind::Duplicate,
                    format!(
                        "contact {} {} {} already belongs to another contact",
                        k.group, k.label, k.shown
                    ),
                    format!(
                        "联系人{}的{} {} 已被其他联系人使用",
                        k.group, k.label, k.shown
                    ),
                ),
                None => free.push(c),
            }
        }
        Ok(free)
    }

    /// Guards of contacts' unique custom values, as a contact's create
    /// guards its value (the same lock keys), [`IN_CHUNK`] values a guard.
    fn contact_key_guards(&self, keys: Vec<ContactKey>, rows: (u32, u32)) -> Vec<Guard> {
        let company = self.actor.company_id.0;
        let mut by_field: BTreeMap<String, Vec<ContactKey>> = BTreeMap::new();
        for k in keys {
            by_field.entry(k.key.clone()).or_default().push(k);
        }
        let mut guards = Vec::new();
        for (key, ks) in by_field {
            let Some(def) = self.v.contact_customs.iter().find(|d| d.key == key) else {
                continue;
            };
            let col = def.col();
            for chunk in ks.chunks(IN_CHUNK) {
                let keys = chunk
                    .iter()
                    .map(|k| {
                        guard_key(
                            company,
                            Table::Contacts,
                            &Filter::Cmp(col.clone(), CmpOp::Eq, k.value.clone()),
                        )
                    })
                    .collect();
                let found = if chunk[0].by_text_key {
                    // A unique custom text, in any spelling of its key.
                    Filter::TextKeyIn(col.clone(), chunk.iter().map(|k| k.text.clone()).collect())
                } else {
                    Filter::In(col.clone(), chunk.iter().map(|k| k.value.clone()).collect())
                };
                let mut select = Select::all(Table::Contacts, company, self.crm.now());
                select.lifecycle = Lifecycle::Any;
                select.filter = Filter::And(vec![found, Filter::IsNull(Col::Column("deleted_at"))]);
                guards.push(Guard {
                    kind: crate::store::GuardKind::Duplicate,
                    keys,
                    select,
                    message: format!(
                        "while this import ran, another user saved a contact with the {} of a contact of rows {}–{}; import the file again: that row then meets the contact like any duplicate",
                        def.label, rows.0, rows.1
                    ),
                });
            }
        }
        guards
    }

    /// The guards of a change set that creates or updates records with
    /// `keys` (as the probes of [`ImportSession::existing`] found them):
    /// the same probes, run again inside the write transaction, one select
    /// per kind and [`IN_CHUNK`] values, locking each value the way a single
    /// create's guard does. The records of `DupKey::moving` are left out.
    /// `rows` (first and last) and `atomic` are for the refusal's message.
    fn key_guards(&self, keys: &[DupKey], rows: (u32, u32), atomic: bool) -> Vec<Guard> {
        let company = self.actor.company_id.0;
        let table = self.opts.entity.table();
        let now = self.crm.now();
        let not_moving = |chunk: &[&DupKey], col: &'static str| {
            let moving: BTreeSet<Uuid> = chunk.iter().flat_map(|k| k.moving.clone()).collect();
            if moving.is_empty() {
                Filter::True
            } else {
                Filter::Not(Box::new(Filter::In(
                    Col::Column(col),
                    moving.into_iter().map(Value::Id).collect(),
                )))
            }
        };
        let again = if atomic {
            "import the file again"
        } else {
            "import the file again to resume"
        };
        let mut by_kind: BTreeMap<&str, Vec<&DupKey>> = BTreeMap::new();
        for k in keys {
            by_kind.entry(k.kind.as_str()).or_default().push(k);
        }
        let mut guards = Vec::new();
        for (kind, ks) in by_kind {
            let message = format!(
                "while this import ran, another user saved a record with the {} of one of \
                 rows {}–{}; {again}: that row then meets the record like any duplicate",
                ks[0].label(),
                rows.0,
                rows.1
            );
            for chunk in ks.chunks(IN_CHUNK) {
                let mut lock_keys = Vec::with_capacity(chunk.len());
                let select = if let Some(key_kind) = kind.strip_prefix("keys.") {
                    // Refusing phone, e-mail and custom keys, as
                    // `check_customer_keys` probes and locks them.
                    for k in chunk {
                        lock_keys.push(key_guard_key(company, key_kind, &k.text));
                    }
                    let mut sel = holders_select(
                        company,
                        key_kind,
                        chunk.iter().map(|k| k.value.clone()).collect(),
                        now,
                    );
                    sel.filter =
                        Filter::And(vec![sel.filter, not_moving(chunk, holder_column(key_kind))]);
                    sel
                } else {
                    let mut values = Vec::with_capacity(chunk.len());
                    // A contact's mobile is unique within its customer (a
                    // key paired with another column's value: see
                    // `DupKey::parent`).
                    let mut per_parent: BTreeMap<String, (&'static str, Value, Vec<Value>)> =
                        BTreeMap::new();
                    for k in chunk {
                        let same = Filter::Cmp(k.col.clone(), CmpOp::Eq, k.value.clone());
                        match &k.parent {
                            Some((parent_col, parent)) => {
                                lock_keys.push(guard_key(
                                    company,
                                    table,
                                    &Filter::And(vec![
                                        same,
                                        Filter::Cmp(
                                            Col::Column(parent_col),
                                            CmpOp::Eq,
                                            parent.clone(),
                                        ),
                                    ]),
                                ));
                                per_parent
                                    .entry(key_text(parent))
                                    .or_insert_with(|| (parent_col, parent.clone(), Vec::new()))
                                    .2
                                    .push(k.value.clone());
                            }
                            None => {
                                lock_keys.push(guard_key(company, table, &same));
                                values.push(k.value.clone());
                            }
                        }
                    }
                    let found = if chunk[0].by_text_key {
                        // A unique custom text, in any spelling of its key.
                        Filter::TextKeyIn(
                            chunk[0].col.clone(),
                            values.iter().map(key_text).collect(),
                        )
                    } else if per_parent.is_empty() {
                        Filter::In(chunk[0].col.clone(), values)
                    } else {
                        Filter::Or(
                            per_parent
                                .into_values()
                                .map(|(parent_col, parent, values)| {
                                    Filter::And(vec![
                                        Filter::Cmp(Col::Column(parent_col), CmpOp::Eq, parent),
                                        Filter::In(chunk[0].col.clone(), values),
                                    ])
                                })
                                .collect(),
                        )
                    };
                    let mut sel = Select::all(table, company, now);
                    sel.lifecycle = Lifecycle::Any;
                    sel.filter = Filter::And(vec![
                        found,
                        Filter::IsNull(Col::Column("deleted_at")),
                        not_moving(chunk, "id"),
                    ]);
                    sel
                };
                guards.push(Guard {
                    kind: crate::store::GuardKind::Duplicate,
                    keys: lock_keys,
                    select,
                    message: message.clone(),
                });
            }
        }
        guards
    }

    /// The first record the probe found holding `k` that still holds it
    /// (no row of this import moved it away), other than `except`.
    fn holder<'r>(
        &self,
        existing: &'r HashMap<(String, String), Vec<Row>>,
        k: &DupKey,
        except: Option<Uuid>,
    ) -> Option<&'r Row> {
        existing
            .get(&(k.kind.clone(), k.text.clone()))?
            .iter()
            .find(|r| Some(r.id()) != except && !self.rekeyed_away(r.id(), k))
    }

    /// The record a row meets by its keys, tried in their order: the first
    /// record found holding a key (see [`ImportSession::holder`]); by a
    /// key several records may hold (see [`shared_key`]), the one live
    /// record holding it, else the one archived record. `Err` with the key
    /// and how many records hold it when several do: the row cannot tell
    /// which it names.
    #[allow(clippy::type_complexity)]
    fn matched<'r, 'c>(
        &self,
        existing: &'r HashMap<(String, String), Vec<Row>>,
        c: &'c Candidate,
    ) -> std::result::Result<Option<(&'c DupKey, &'r Row)>, (&'c DupKey, usize)> {
        for k in &c.keys {
            if !shared_key(&k.kind) {
                if let Some(r) = self.holder(existing, k, None) {
                    return Ok(Some((k, r)));
                }
                continue;
            }
            let holding = existing
                .get(&(k.kind.clone(), k.text.clone()))
                .map_or(&[][..], Vec::as_slice);
            for archived in [false, true] {
                let mut same = holding.iter().filter(|r| {
                    r.get("archived_at").is_null() != archived && !self.rekeyed_away(r.id(), k)
                });
                match (same.next(), same.count()) {
                    (None, _) => {}
                    (Some(r), 0) => return Ok(Some((k, r))),
                    (Some(_), more) => return Err((k, more + 1)),
                }
            }
        }
        Ok(None)
    }

    /// Whether a row of this import gave record `id` another key of `k`'s
    /// kind, so that `k` (read from the store before that update was
    /// written, perhaps in a batch still being written) no longer names it.
    fn rekeyed_away(&self, id: Uuid, k: &DupKey) -> bool {
        self.rekeyed.get(&id).is_some_and(|keys| {
            keys.iter()
                .any(|(kind, text)| *kind == k.kind && *text != k.text)
        })
    }

    /// The row of this import that already updates record `id`, for
    /// messages in English and Chinese (`row 4 of this file`), if any.
    fn updated_by(&self, id: Uuid) -> Option<(String, String)> {
        Some(match *self.touched.get(&id)? {
            // Stored by an earlier run without its row number.
            0 => (
                "a row of this file imported before the import was resumed".to_string(),
                "本文件中续传前已导入的一行".to_string(),
            ),
            first => (
                format!("row {first} of this file"),
                format!("本文件第 {first} 行"),
            ),
        })
    }

    /// Whether a row is before the checkpoint of a resumed import (checked
    /// for duplicates within the file, not written again).
    fn is_replay(&self, number: u32) -> bool {
        self.resume_after.is_some_and(|r| number <= r)
    }

    /// A role's name as the user import knows it (its id when several
    /// roles share the name).
    fn role_name(&self, id: RoleId) -> String {
        self.roles
            .iter()
            .find(|(k, r)| **r == Some(id) && k.parse::<Uuid>().is_err() && !k.starts_with('\u{1}'))
            .map_or_else(|| id.to_string(), |(k, _)| k.clone())
    }

    /// Why giving `user` the superior `superior` would close a cycle of
    /// superiors (the superior reports to the user, directly or through
    /// others, as the store and this import's earlier rows have it), or
    /// `None`.
    fn superior_cycle(&self, user: Uuid, superior: Uuid) -> Option<String> {
        let label = |id: Uuid| {
            self.users.get(&id).map_or_else(
                || id.to_string(),
                |u| crate::org::user_label(&u.display_name, &u.username),
            )
        };
        if user == superior {
            return Some(format!("{} cannot be their own superior", label(user)));
        }
        let mut seen = HashSet::new();
        let mut at = Some(superior);
        while let Some(c) = at {
            if c == user {
                return Some(format!(
                    "{} already reports to {} (directly or through others)",
                    label(superior),
                    label(user)
                ));
            }
            if !seen.insert(c) {
                break;
            }
            at = match self.superiors.get(&c) {
                Some(s) => *s,
                None => self.users.get(&c).and_then(|u| u.superior_id.map(|s| s.0)),
            };
        }
        None
    }

    /// [`Self::reject`] for a row that names a record it cannot update:
    /// what it matched (`(en, zh)`, from `describe`) and why not
    /// (`(pe, pz)`).
    fn reject_update(
        &mut self,
        issues: &mut Vec<RowIssue>,
        number: u32,
        kind: IssueKind,
        (en, zh): (&str, &str),
        (pe, pz): (String, String),
    ) {
        self.reject(
            issues,
            number,
            kind,
            format!("{en}; this row cannot update it: {pe}"),
            format!("{zh}；该行不能更新该记录：{pz}"),
        );
    }

    fn reject(
        &mut self,
        issues: &mut Vec<RowIssue>,
        number: u32,
        kind: IssueKind,
        en: String,
        zh: String,
    ) {
        // A row before a resumed import's checkpoint was reported (and
        // counted) by the run that committed its batch: it is checked
        // again, not reported again, as its duplicates are not.
        if self.is_replay(number) {
            return;
        }
        self.counts.rejected += 1;
        issues.push(RowIssue {
            row: number,
            outcome: RowOutcome::Rejected,
            kind,
            message_en: cut_message(en),
            message_zh: cut_message(zh),
        });
    }

    /// A duplicate under the import's policy: skipped, rejected, or failing.
    fn duplicate(
        &mut self,
        issues: &mut Vec<RowIssue>,
        number: u32,
        kind: IssueKind,
        en: String,
        zh: String,
    ) {
        match self.opts.policy {
            DuplicatePolicy::Skip => {
                self.counts.skipped += 1;
                issues.push(RowIssue {
                    row: number,
                    outcome: RowOutcome::Skipped,
                    kind,
                    message_en: cut_message(format!("skipped: {en}")),
                    message_zh: cut_message(format!("已跳过：{zh}")),
                });
            }
            DuplicatePolicy::Fail => {
                self.failed = true;
                self.reject(issues, number, kind, en, zh);
            }
            DuplicatePolicy::Update => self.reject(issues, number, kind, en, zh),
        }
    }
}

/// Validates the rows of an import with the same rules as the API. Cheap to
/// clone and `Send`: a reader thread can validate the next batch of a
/// customer import while the session writes the previous one (see
/// [`ImportSession::validator`]).
#[derive(Clone)]
pub struct RowValidator {
    crm: Crm,
    actor: Actor,
    entity: Entity,
    map: Arc<HeaderMap>,
    /// Whether a blank cell clears the field (see
    /// [`ImportOptions::blanks_clear`]).
    blanks_clear: bool,
    /// Whether rows matching a stored record update it
    /// ([`DuplicatePolicy::Update`]): a blank required cell then leaves
    /// the stored value (see `Candidate::unmet`).
    update: bool,
    /// The entity's custom fields; under the update policy none required.
    customs: Arc<Vec<CustomFieldDef>>,
    /// Under the update policy, the required custom fields: checked when a
    /// row would create a record (see `Candidate::unmet`).
    required_customs: Arc<Vec<CustomFieldDef>>,
    contact_customs: Arc<Vec<CustomFieldDef>>,
    lookups: Arc<Lookups>,
    /// The company's duplicate-key settings (customer imports).
    modes: Option<Arc<crate::dedupe::Modes>>,
    /// How each column's cells are read, worked out once from the header.
    kinds: Arc<Vec<CellKind>>,
    /// The customers a contact import's customer code column names, by
    /// code (see `resolve_customers`).
    customer_codes: Arc<HashMap<String, Uuid>>,
    /// The customer names of a contact import's customer column that
    /// several customers answer to, with those customers (see
    /// `resolve_customers`): a row naming one of them by code as well
    /// names that one, any other code names another customer.
    shared_customer_names: Arc<HashMap<String, BTreeSet<Uuid>>>,
    /// The customers of the contacts that a contact import's rows name by
    /// code where their customer column is [`crate::export::NOT_SHOWN`],
    /// by the contact's code (see `resolve_kept_customers`).
    kept_customers: Arc<HashMap<String, Uuid>>,
    /// The contact groups' code columns (group, column), worked out once
    /// from the header: none in most sheets.
    group_codes: Arc<Vec<(u32, usize)>>,
}

impl std::fmt::Debug for RowValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowValidator")
            .field("entity", &self.entity)
            .finish_non_exhaustive()
    }
}

/// A row validated ahead of [`ImportSession::push_checked`].
#[derive(Clone, Debug)]
pub struct Checked(CheckedRow);

#[derive(Clone, Debug)]
enum CheckedRow {
    Valid(Box<Candidate>),
    Invalid(IssueKind, Vec<(String, String)>),
    /// Needs the store (or failed on it): validated again by the session.
    Later,
}

/// Polls a future once; `None` when it is not ready. Validation with
/// complete lookups never waits for the store, so it completes on the
/// first poll; anything that would wait is left to the async path.
fn poll_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

impl RowValidator {
    /// Validates rows without waiting for the store: one result per row.
    /// Rows that would need the store are left for the session.
    pub fn check(&self, rows: &[SheetRow]) -> Vec<Checked> {
        rows.iter()
            .map(|row| {
                if row.cells.iter().all(Cell::is_empty) {
                    return Checked(CheckedRow::Later);
                }
                Checked(match poll_now(self.validate_record(row)) {
                    Some(Ok(Ok(c))) => CheckedRow::Valid(Box::new(c)),
                    Some(Ok(Err((kind, problems)))) => CheckedRow::Invalid(kind, problems),
                    Some(Err(_)) | None => CheckedRow::Later,
                })
            })
            .collect()
    }

    /// The JSON value a cell gives a field of the given kind.
    fn cell_json(cell: &Cell, kind: CellKind) -> Option<Json> {
        match (cell, kind) {
            (Cell::Empty, _) => None,
            (
                Cell::Number(f),
                CellKind::Builtin(FieldKind::Date | FieldKind::DateTime)
                | CellKind::Custom(CustomFieldType::Date),
            ) => excel_serial_date(*f)
                .map(|d| Json::String(Cell::DateTime(d).to_text().unwrap_or_default()))
                .or_else(|| Some(Json::String(number_text(*f)))),
            (Cell::Number(f), CellKind::Custom(CustomFieldType::Number)) => {
                serde_json::Number::from_f64(*f).map(Json::Number)
            }
            (Cell::Number(f), CellKind::Custom(CustomFieldType::Money) | CellKind::Money) => {
                Some(Json::String(money_number_text(*f)))
            }
            (Cell::Bool(b), CellKind::Custom(CustomFieldType::Boolean)) => Some(Json::Bool(*b)),
            (c, _) => c.to_text().map(Json::String),
        }
    }

    fn kind_of(&self, entity: Entity, field: &str) -> CellKind {
        let customs = if entity == self.entity {
            &self.customs
        } else {
            &self.contact_customs
        };
        if let Some(key) = field.strip_prefix("custom.") {
            return customs
                .iter()
                .find(|d| d.key == key)
                .map(|d| CellKind::Custom(d.field_type))
                .unwrap_or(CellKind::Other);
        }
        if entity == Entity::Product && matches!(field, "list_price" | "cost") {
            return CellKind::Money;
        }
        find_field(entity, field)
            .map(|d| CellKind::Builtin(d.kind))
            .unwrap_or(CellKind::Other)
    }

    /// The main fields and the contact groups of a row, the cells of
    /// masked columns (by column, as text: see [`CellKind::Masked`]) and
    /// the cells of other columns of maskable fields holding a `*` (see
    /// `Candidate::starred`); error cells are reported as problems.
    #[allow(clippy::type_complexity)]
    fn row_fields(
        &self,
        row: &SheetRow,
        errors: &mut Vec<(String, String)>,
    ) -> (
        Fields,
        BTreeMap<u32, Fields>,
        Vec<(usize, String)>,
        Vec<(usize, String)>,
    ) {
        let mut main = Fields::new();
        let mut groups: BTreeMap<u32, Fields> = BTreeMap::new();
        let mut masked = Vec::new();
        let mut starred = Vec::new();
        let mut customer_code = None;
        for (i, role) in self.map.roles.iter().enumerate() {
            let Some(cell) = row.cells.get(i) else {
                continue;
            };
            if cell.is_empty() || *role == ColumnRole::Ignored {
                if self.blanks_clear
                    && cell.is_empty()
                    && let ColumnRole::Field(f) = role
                    && self.clears(f, self.kinds.get(i).copied())
                {
                    main.insert(f.clone(), Json::Null);
                }
                continue;
            }
            if let Cell::Error(e) = cell {
                errors.push((
                    format!(
                        "column {} contains the spreadsheet error {e}",
                        column_name(i)
                    ),
                    format!("{} 列的单元格是错误值 {e}", column_name(i)),
                ));
                continue;
            }
            let (field, target) = match role {
                // The code is read by `row_code`, a contact's by
                // `group_code`, the version by `row_version`.
                ColumnRole::Ignored
                | ColumnRole::Code
                | ColumnRole::ContactCode { .. }
                | ColumnRole::Version => {
                    continue;
                }
                // Applied after the customer column (it wins over a name
                // that names no customer; one naming another customer
                // refuses the row).
                ColumnRole::CustomerCode => {
                    customer_code = cell.to_text().map(|t| crate::validate::record_code(&t));
                    continue;
                }
                ColumnRole::Field(f) => (f, &mut main),
                ColumnRole::Contact { group, field } => (field, groups.entry(*group).or_default()),
            };
            // A customer not shown to whoever exported the sheet: kept
            // (see `kept_customer`).
            if self.entity == Entity::Contact
                && field == "customer_id"
                && cell.to_text().as_deref() == Some(crate::export::NOT_SHOWN)
            {
                continue;
            }
            let kind = self.kinds.get(i).copied().unwrap_or(CellKind::Other);
            if let CellKind::Masked = kind {
                masked.extend(cell.to_text().map(|t| (i, t)));
                continue;
            }
            if maskable(self.entity, role, &self.customs, &self.contact_customs)
                && let Some(t) = cell.to_text().filter(|t| t.contains('*'))
            {
                starred.push((i, t));
            }
            if let Cell::Number(f) = cell
                && f.abs() >= MAX_EXACT_NUMBER
                && kind.is_text_like()
            {
                errors.push((
                    format!(
                        "column {}: the number has more digits than a spreadsheet keeps (15); \
                         store the cell as text",
                        column_name(i)
                    ),
                    format!(
                        "{} 列：数字超过表格可保存的 15 位有效数字，请将该单元格设为文本格式",
                        column_name(i)
                    ),
                ));
                continue;
            }
            // A number cell a number field would not keep as typed is
            // refused as the API refuses the typed number.
            if let (Cell::Number(f), CellKind::Custom(CustomFieldType::Number)) = (cell, kind)
                && let Some(reason) = crate::custom::inexact_cell_number(*f)
            {
                let (entity, group) = match role {
                    ColumnRole::Contact { group, .. } => (Entity::Contact, Some(*group)),
                    _ => (self.entity, None),
                };
                let mut invalid = ValidationErrors::default();
                invalid.push(field.clone(), reason);
                errors.extend(self.messages(entity, &Fields::new(), &invalid, group));
                continue;
            }
            if let Some(v) = Self::cell_json(cell, kind) {
                target.insert(field.clone(), v);
            }
        }
        if let Some(code) = customer_code {
            // The customer by its code, unless the row's customer column
            // names another one (a name that names none, as a renamed
            // customer's, gives way to the code).
            match self.customer_codes.get(&code) {
                Some(id) => match main.get("customer_id") {
                    Some(Json::String(named)) if self.names_another_customer(named, *id) => {
                        errors.push(another_customer_named(named, &code));
                    }
                    _ => {
                        main.insert("customer_id".into(), Json::String(id.to_string()));
                    }
                },
                None => {
                    let (zh, en) = CUSTOMER_CODE_HEADERS;
                    errors.push((
                        format!(
                            "{en}: customer {code} not found (no customer you may see has this \
                             code)"
                        ),
                        format!("{zh}：找不到编号为 {code} 的客户"),
                    ));
                }
            }
        }
        (main, groups, masked, starred)
    }

    /// Whether the text of a contact row's customer column names a
    /// customer (by id, code or name, as `resolve_customers` found it)
    /// other than `id`, the customer its customer code column names: a
    /// name several customers answer to when `id` is none of them. A text
    /// naming no customer (one renamed since the sheet was written) does
    /// not: the code names the customer.
    fn names_another_customer(&self, named: &str, id: Uuid) -> bool {
        let key = (Entity::Customer, named.to_string());
        if let Some(found) = self.lookups.refs.get(&key) {
            return *found != id;
        }
        self.shared_customer_names
            .get(named)
            .is_some_and(|ids| !ids.contains(&id))
    }

    /// Whether a blank cell of the record's field `f` clears it (see
    /// [`ImportOptions::blanks_clear`]): a built-in field the import
    /// writes (tags too), neither required nor attachments, or a custom
    /// field not required; never a column the actor sees masked or
    /// read-only.
    fn clears(&self, f: &str, kind: Option<CellKind>) -> bool {
        if matches!(kind, Some(CellKind::Masked)) {
            return false;
        }
        match f.strip_prefix("custom.") {
            Some(key) => {
                self.customs.iter().any(|d| d.key == key && !d.required)
                    && !self.required_customs.iter().any(|d| d.key == key)
            }
            None => find_field(self.entity, f).is_some_and(|d| {
                !d.required
                    && d.kind != FieldKind::Attachments
                    && self.entity.fields().iter().any(|e| e.name == d.name)
            }),
        }
    }

    /// The code a customer row gives its contact group `group` (see
    /// [`ColumnRole::ContactCode`]), if any.
    fn group_code(&self, row: &SheetRow, group: u32) -> Option<String> {
        let &(_, i) = self.group_codes.iter().find(|(g, _)| *g == group)?;
        match row.cells.get(i)? {
            Cell::Error(_) => None,
            cell => cell.to_text(),
        }
    }

    /// Turns `prepare`'s validation errors into one English and one
    /// Chinese message.
    fn messages(
        &self,
        entity: Entity,
        fields: &Fields,
        errors: &ValidationErrors,
        prefix: Option<u32>,
    ) -> Vec<(String, String)> {
        let customs = if entity == self.entity {
            &self.customs
        } else {
            &self.contact_customs
        };
        errors
            .0
            .iter()
            .map(|e| {
                let def = import_fields(entity)
                    .into_iter()
                    .find(|d| field_label(d) == e.field || d.name == e.field);
                let custom = e
                    .field
                    .strip_prefix("custom.")
                    .and_then(|k| customs.iter().find(|d| d.key == k));
                let (label_en, label_zh, key) = match (def, custom) {
                    (Some(d), _) => (d.en.to_string(), d.zh.to_string(), d.name.to_string()),
                    (None, Some(c)) => (
                        c.label_en.clone().unwrap_or_else(|| c.label.clone()),
                        c.label.clone(),
                        format!("custom.{}", c.key),
                    ),
                    (None, None) if e.field == "owner_id" => {
                        ("Owner".into(), "负责人".into(), "owner_id".into())
                    }
                    (None, None) => (e.field.clone(), e.field.clone(), e.field.clone()),
                };
                let raw = fields.get(&key).and_then(json_text);
                let kind = def
                    .map(|d| CellKind::Builtin(d.kind))
                    .or(custom.map(|c| CellKind::Custom(c.field_type)));
                // A Chinese hint the engine gives its English message
                // (`… (多条记录同名，请填写编号)`) is for the Chinese one.
                let (en_text, zh_tail) = split_zh_tail(&e.message);
                let mut zh = zh_message(kind, raw.as_deref(), &e.message);
                if zh == e.message
                    && let Some(tail) = zh_tail
                {
                    zh = format!("{en_text}（{tail}）");
                }
                let mut en = en_text.to_string();
                // Who may not read customers' names names them by id or code
                // only (see `resolve_customers`): the error says so.
                if entity == Entity::Contact
                    && key == "customer_id"
                    && en.ends_with(" not found")
                    && !reads_customer_names(&self.actor)
                {
                    en.push_str(
                        " (customers' names are not shown to you: \
                         give the customer's code or id)",
                    );
                    zh.push_str("（您无权查看客户名称，请填写客户编号或 ID）");
                }
                let (pe, pz) = match prefix {
                    Some(g) => (format!("contact {g} "), format!("联系人{g}")),
                    None => (String::new(), String::new()),
                };
                (
                    format!("{pe}{label_en}: {en}"),
                    format!("{pz}{label_zh}：{zh}"),
                )
            })
            .collect()
    }

    /// Validates a row of a record import.
    async fn validate_record(
        &self,
        row: &SheetRow,
    ) -> Result<std::result::Result<Candidate, (IssueKind, Vec<(String, String)>)>> {
        let crm = &self.crm;
        let entity = self.entity;
        let mut problems = Vec::new();
        let (mut fields, mut groups, masked, starred) = self.row_fields(row, &mut problems);
        let held = self
            .hold_starred(&starred, &mut fields, &mut groups)
            .await?;
        let version = match self.row_version(row) {
            Ok(v) => v,
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let kept = self.kept_customer(row);
        // Under the update policy a blank required cell leaves the stored
        // value of a record the row updates: it is required only of a row
        // creating one (see `Candidate::unmet`). (Not where the row gives
        // a required reference, which only a creating row may give: a
        // contact's customer.)
        let lenient = self.update
            && kept.is_none()
            && !entity.fields().iter().any(|d| {
                d.required && matches!(d.kind, FieldKind::Ref(_)) && fields.contains_key(d.name)
            });
        let mut unmet = ValidationErrors::default();
        // Where it does (a contact row naming its customer), the other
        // blank required fields pass the check as a stand-in value, taken
        // out again below.
        let stand_ins: Vec<&'static FieldDef> = if self.update && kept.is_none() && !lenient {
            entity
                .fields()
                .iter()
                .filter(|d| {
                    d.required
                        && matches!(
                            d.kind,
                            FieldKind::PersonName | FieldKind::CompanyName | FieldKind::Text(_)
                        )
                        && !fields.contains_key(d.name)
                })
                .collect()
        } else {
            Vec::new()
        };
        let checked = if stand_ins.is_empty() {
            Cow::Borrowed(&fields)
        } else {
            let mut with = fields.clone();
            for d in &stand_ins {
                with.insert(d.name.to_string(), Json::String("-".into()));
            }
            Cow::Owned(with)
        };
        // A kept customer is not the row's to give: the rest of the row is
        // checked as an update's fields are, its required fields but the
        // customer below.
        // Deactivated users are taken here and told apart below: a row
        // may keep one its record holds (see `Candidate::inactive`).
        let prepared = crm
            .prepare_keeping(
                &self.actor,
                entity,
                &checked,
                &self.customs,
                kept.is_none() && !lenient,
                &self.lookups,
                crate::records::Inactive::Allowed,
            )
            .await;
        drop(checked);
        let (mut set, custom, owner) = match prepared {
            Ok((mut set, custom, owner)) => {
                if lenient {
                    for def in entity.fields() {
                        if def.required && !set.contains_key(def.name) {
                            unmet.push(field_label(def), "is required");
                        }
                    }
                }
                for def in &stand_ins {
                    set.remove(def.name);
                    unmet.push(field_label(def), "is required");
                }
                match kept {
                    Some(Some(customer)) => {
                        let mut missing = ValidationErrors::default();
                        for def in entity.fields() {
                            if def.required
                                && def.name != "customer_id"
                                && !set.contains_key(def.name)
                            {
                                missing.push(field_label(def), "is required");
                            }
                        }
                        for def in self.customs.iter() {
                            if def.required && !custom.contains_key(&def.key) {
                                missing.push(format!("custom.{}", def.key), "is required");
                            }
                        }
                        problems.extend(self.messages(entity, &fields, &missing, None));
                        set.insert("customer_id", Value::Id(customer));
                    }
                    Some(None) => problems.push(not_shown_customer_problem()),
                    None => {}
                }
                (set, custom, owner)
            }
            Err(Error::Validation(v)) => {
                if kept == Some(None) {
                    problems.push(not_shown_customer_problem());
                }
                problems.extend(self.messages(entity, &fields, &v, None));
                (BTreeMap::new(), BTreeMap::new(), None)
            }
            Err(Error::Forbidden(m)) => {
                return Ok(Err((
                    IssueKind::Forbidden,
                    vec![(m.clone(), crate::forbidden_zh::forbidden_zh(&m))],
                )));
            }
            Err(e) => return Err(e),
        };
        let mut filled = Vec::new();
        if problems.is_empty() {
            let given: Vec<(&'static str, bool)> =
                set.iter().map(|(k, v)| (*k, v.is_null())).collect();
            if let Err(e) = crm.derive(entity, &mut set) {
                match e {
                    Error::Validation(v) => {
                        problems.extend(self.messages(entity, &fields, &v, None))
                    }
                    other => return Err(other),
                }
            }
            // What `derive` added or put in place of an empty value is not
            // the row's: defaults and keys (an update derives them again
            // from the merged record).
            // Both are in key order: one walk, not a search per field
            // (this runs for every row of a sheet).
            let mut given = given.into_iter().peekable();
            filled = set
                .iter()
                .filter_map(|(k, v)| {
                    while given.next_if(|(g, _)| g < k).is_some() {}
                    let from_row = given
                        .next_if(|(g, _)| g == k)
                        .is_some_and(|(_, null)| !null || v.is_null());
                    (!from_row).then_some(*k)
                })
                .collect();
        }
        // (Whether the row may name another owner is decided once it is
        // known to create a record or to update one: see `record_batch`.)
        let inactive = self.inactive_named(entity, &fields, owner, &custom);
        let mut contacts = Vec::new();
        for (g, cf) in &groups {
            // The contact's required custom fields, as a contact import
            // checks them (`prepare_with` checks them only when creating,
            // which would also ask for the customer this row creates).
            let given: HashSet<&str> = cf
                .iter()
                .filter(|(_, v)| !v.is_null())
                .filter_map(|(n, _)| {
                    match Crm::resolve_target(Entity::Contact, n, &self.contact_customs) {
                        Some(Target::Custom(d)) => Some(d.key.as_str()),
                        _ => None,
                    }
                })
                .collect();
            let mut missing = ValidationErrors::default();
            for def in self.contact_customs.iter() {
                if def.required && !given.contains(def.key.as_str()) {
                    missing.push(format!("custom.{}", def.key), "is required");
                }
            }
            problems.extend(self.messages(Entity::Contact, cf, &missing, Some(*g)));
            match crm
                .prepare_with(
                    &self.actor,
                    Entity::Contact,
                    cf,
                    &self.contact_customs,
                    false,
                    &self.lookups,
                )
                .await
            {
                Ok((mut cset, ccustom, _)) => {
                    if cset.get("name").is_none_or(Value::is_null) {
                        problems.push((
                            format!("contact {g} Name: is required"),
                            format!("联系人{g}姓名：必填"),
                        ));
                        continue;
                    }
                    if let Err(Error::Validation(v)) = crm.derive(Entity::Contact, &mut cset) {
                        problems.extend(self.messages(Entity::Contact, cf, &v, Some(*g)));
                    }
                    contacts.push(ContactDraft {
                        group: *g as usize,
                        code: self.group_code(row, *g),
                        set: cset,
                        custom: ccustom,
                    });
                }
                Err(Error::Validation(v)) => {
                    problems.extend(self.messages(Entity::Contact, cf, &v, Some(*g)))
                }
                Err(Error::Forbidden(m)) => {
                    return Ok(Err((
                        IssueKind::Forbidden,
                        vec![(m.clone(), crate::forbidden_zh::forbidden_zh(&m))],
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        if !problems.is_empty() {
            return Ok(Err((IssueKind::Invalid, problems)));
        }
        // Contacts of one row must not share a mobile number.
        let mut mobiles = HashSet::new();
        for c in &contacts {
            if let Some(m) = c.set.get("mobile_key").and_then(Value::as_text)
                && !mobiles.insert(m.to_string())
            {
                return Ok(Err((
                    IssueKind::DuplicateInFile,
                    vec![(
                        format!("two contacts of the row have the mobile {m}"),
                        format!("同一行的两个联系人手机号相同：{m}"),
                    )],
                )));
            }
        }
        let (mut keys, warn_keys) = self.record_keys(entity, &set, &custom);
        if let Some(code) = self.row_code(row) {
            // First: a row naming a record by its code meets that record
            // (its other keys then only tell of a second one).
            keys.insert(0, code_key(code));
        }
        for def in self.required_customs.iter() {
            if custom.get(&def.key).is_none_or(Json::is_null) {
                unmet.push(format!("custom.{}", def.key), "is required");
            }
        }
        let unmet = if unmet.0.is_empty() {
            Vec::new()
        } else {
            self.messages(entity, &fields, &unmet, None)
        };
        Ok(Ok(Candidate {
            number: row.number,
            set,
            filled,
            custom,
            owner: owner.map(|o| o.0),
            contacts,
            keys,
            version,
            masked,
            starred,
            held,
            kept_customer: kept.is_some(),
            unmet,
            warn_keys,
            inactive,
        }))
    }

    /// The deactivated users the row names — as owner, or in user-type
    /// custom fields — with why each is refused where it is new (see
    /// `Candidate::inactive`).
    fn inactive_named(
        &self,
        entity: Entity,
        fields: &Fields,
        owner: Option<crate::ids::UserId>,
        custom: &BTreeMap<String, Json>,
    ) -> Vec<InactiveNamed> {
        let Some(users) = &self.lookups.users else {
            return Vec::new();
        };
        let deactivated = |id: Uuid| {
            users
                .get(&id.to_string())
                .filter(|u| !u.active)
                .map(|u| u.username.clone())
        };
        let mut out = Vec::new();
        let mut push = |field: String, key: Option<String>, id: Uuid, username: String| {
            let mut v = ValidationErrors::default();
            v.push(field, format!("user {username} is deactivated"));
            if let Some(why) = self.messages(entity, fields, &v, None).into_iter().next() {
                out.push(InactiveNamed { key, id, why });
            }
        };
        if let Some(o) = owner
            && let Some(name) = deactivated(o.0)
        {
            push("owner_id".into(), None, o.0, name);
        }
        for def in self.customs.iter() {
            if def.field_type != CustomFieldType::User {
                continue;
            }
            if let Some(id) = custom
                .get(&def.key)
                .and_then(Json::as_str)
                .and_then(|t| Uuid::parse_str(t).ok())
                && let Some(name) = deactivated(id)
            {
                push(
                    format!("custom.{}", def.key),
                    Some(def.key.clone()),
                    id,
                    name,
                );
            }
        }
        out
    }

    /// Takes out of the row's values (`fields`, its contact groups'
    /// `groups`) the `starred` cells that are no valid value of their field
    /// (as a masked export writes a phone, `138****5678`), each with why it
    /// is not, in English and Chinese (see `Candidate::held`).
    async fn hold_starred(
        &self,
        starred: &[(usize, String)],
        fields: &mut Fields,
        groups: &mut BTreeMap<u32, Fields>,
    ) -> Result<Vec<(usize, (String, String))>> {
        let mut held = Vec::new();
        for (i, _) in starred {
            let (entity, customs, field, group) = match self.map.roles.get(*i) {
                Some(ColumnRole::Field(f)) => (self.entity, &self.customs, f, None),
                Some(ColumnRole::Contact { group, field }) => {
                    (Entity::Contact, &self.contact_customs, field, Some(*group))
                }
                _ => continue,
            };
            let values = match group {
                Some(g) => match groups.get_mut(&g) {
                    Some(v) => v,
                    None => continue,
                },
                None => &mut *fields,
            };
            let Some(value) = values.get(field) else {
                continue;
            };
            let one: Fields = [(field.clone(), value.clone())].into_iter().collect();
            match self
                .crm
                .prepare_with(&self.actor, entity, &one, customs, false, &self.lookups)
                .await
            {
                Err(Error::Validation(v)) => {
                    values.remove(field);
                    let problems = self.messages(entity, &one, &v, group);
                    held.push((*i, join_problems(&problems)));
                }
                Ok(_) | Err(Error::Forbidden(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(held)
    }

    /// Whether a contact row's customer column holds
    /// [`crate::export::NOT_SHOWN`] (and no customer code names the
    /// customer instead): then `Some` customer of the contact that the
    /// row's code names, `None` inside when it names none.
    fn kept_customer(&self, row: &SheetRow) -> Option<Option<Uuid>> {
        if self.entity != Entity::Contact {
            return None;
        }
        let text_at = |role: &dyn Fn(&ColumnRole) -> bool| {
            let i = self.map.roles.iter().position(role)?;
            row.cells.get(i).and_then(Cell::to_text)
        };
        let customer = text_at(&|r| matches!(r, ColumnRole::Field(f) if f == "customer_id"));
        if customer.as_deref() != Some(crate::export::NOT_SHOWN)
            || text_at(&|r| *r == ColumnRole::CustomerCode).is_some()
        {
            return None;
        }
        Some(
            self.row_code(row)
                .and_then(|code| self.kept_customers.get(&code).copied()),
        )
    }

    /// The record version a row of a customer, contact or product import gives in
    /// its version column (see [`ColumnRole::Version`]): `None` without
    /// one, `Err` with the problem for a cell that is no whole number.
    fn row_version(&self, row: &SheetRow) -> std::result::Result<Option<i64>, (String, String)> {
        let Some(i) = self
            .map
            .roles
            .iter()
            .position(|r| *r == ColumnRole::Version)
        else {
            return Ok(None);
        };
        let cell = match row.cells.get(i) {
            // Reported by `row_fields`.
            None | Some(Cell::Error(_)) => return Ok(None),
            Some(c) if c.is_empty() => return Ok(None),
            Some(c) => c,
        };
        let parsed = match cell {
            Cell::Number(f) if f.fract() == 0.0 && *f >= 1.0 && *f < MAX_EXACT_NUMBER => {
                Some(*f as i64)
            }
            Cell::Text(s) => s.trim().parse::<i64>().ok().filter(|v| *v >= 1),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            let text = cell.to_text().unwrap_or_default();
            (
                format!(
                    "Version (column {}): '{text}' is not a record version; keep the version \
                     the export wrote, or clear it",
                    column_name(i)
                ),
                format!(
                    "版本（{} 列）：“{text}”不是有效的记录版本，请保留导出时的版本或清空",
                    column_name(i)
                ),
            )
        })
    }

    /// The record code a row of a customer or contact import names in its
    /// code column (see [`ColumnRole::Code`]), if any.
    fn row_code(&self, row: &SheetRow) -> Option<String> {
        let i = self.map.roles.iter().position(|r| *r == ColumnRole::Code)?;
        match row.cells.get(i)? {
            // Reported by `row_fields`.
            Cell::Error(_) => None,
            cell => cell.to_text().map(|t| crate::validate::record_code(&t)),
        }
    }

    /// The duplicate keys of a validated record (the same as
    /// `check_duplicates` uses), and apart the keys the company's duplicate
    /// settings only warn of.
    fn record_keys(
        &self,
        entity: Entity,
        set: &BTreeMap<&'static str, Value>,
        custom: &BTreeMap<String, Json>,
    ) -> (Vec<DupKey>, Vec<DupKey>) {
        let mut keys = Vec::new();
        let mut warn_keys = Vec::new();
        let get = |k: &str| set.get(k).filter(|v| !v.is_null()).cloned();
        match entity {
            Entity::Customer => {
                if let Some(v) = get("uscc") {
                    let t = key_text(&v);
                    keys.push(DupKey {
                        kind: "uscc".into(),
                        text: t,
                        col: Col::Column("uscc"),
                        value: v,
                        parent: None,
                        moving: Vec::new(),
                        words: (
                            "unified social credit code".into(),
                            "统一社会信用代码".into(),
                            "",
                        ),
                        shown: None,
                        by_text_key: false,
                    });
                }
                if let Some(v) = get("name_key").filter(|v| {
                    v.as_text()
                        .is_some_and(crate::dedupe::is_name_duplicate_key)
                }) {
                    let name = get("name").map(|n| key_text(&n)).unwrap_or_default();
                    keys.push(DupKey {
                        kind: "name_key".into(),
                        text: key_text(&v),
                        col: Col::Column("name_key"),
                        value: v,
                        parent: None,
                        moving: Vec::new(),
                        words: ("name".into(), "客户名称".into(), ""),
                        shown: Some(name),
                        by_text_key: false,
                    });
                }
                keys.extend(person_keys(set));
            }
            Entity::Contact => {
                if let (Some(m), Some(c)) = (get("mobile_key"), get("customer_id")) {
                    let t = key_text(&m);
                    keys.push(DupKey {
                        kind: "mobile_key".into(),
                        text: format!("{}:{t}", key_text(&c)),
                        col: Col::Column("mobile_key"),
                        value: m,
                        parent: Some(("customer_id", c)),
                        moving: Vec::new(),
                        words: (
                            "mobile".into(),
                            "同一客户的手机号".into(),
                            " for the same customer",
                        ),
                        shown: Some(t),
                        by_text_key: false,
                    });
                } else if let Some(c) = get("customer_id") {
                    // Without a mobile a contact is its customer's contact
                    // of that name, as a customer row's contact group is
                    // (see `match_contact`).
                    keys.extend(contact_name_key(&c, set));
                }
            }
            _ => {}
        }
        if let Some(modes) = self.modes.as_deref().filter(|_| entity == Entity::Customer) {
            // Phone, e-mail and custom keys the company's duplicate settings
            // refuse: phones and e-mails through the customers' columns,
            // custom keys through `customer_keys`.
            let custom_keys: Vec<String> = self
                .customs
                .iter()
                .filter(|d| {
                    modes.mode(&format!("custom.{}", d.key)) != crate::dedupe::DedupeMode::Off
                })
                .map(|d| d.key.clone())
                .collect();
            // `keys_of` reads `custom` only when there are custom keys.
            let custom_json = if custom_keys.is_empty() {
                Value::Null
            } else {
                Value::Json(Json::Object(custom.clone().into_iter().collect()))
            };
            let get = |k: &str| match k {
                "custom" => custom_json.clone(),
                k => set.get(k).cloned().unwrap_or(Value::Null),
            };
            for (kind, key) in crate::dedupe::keys_of(&get, &custom_keys) {
                if kind == "name" || kind == "uscc" {
                    continue;
                }
                let into = match modes.mode(&kind) {
                    crate::dedupe::DedupeMode::Block => &mut keys,
                    crate::dedupe::DedupeMode::Warn => &mut warn_keys,
                    crate::dedupe::DedupeMode::Off => continue,
                };
                let (en, zh): (Cow<'static, str>, Cow<'static, str>) = match kind.as_str() {
                    "phone" => ("phone".into(), "电话".into()),
                    "email" => ("e-mail".into(), "邮箱".into()),
                    k => {
                        let key = k.trim_start_matches("custom.");
                        let label = self
                            .customs
                            .iter()
                            .find(|d| d.key == key)
                            .map(|d| d.label.clone())
                            .unwrap_or_else(|| k.to_string());
                        (label.clone().into(), label.into())
                    }
                };
                into.push(DupKey {
                    // Phones and e-mails through the customers' own columns.
                    col: Col::Column(crate::dedupe::key_column(&kind).unwrap_or("key")),
                    kind: format!("keys.{kind}"),
                    text: key.clone(),
                    value: Value::Text(key.clone()),
                    parent: None,
                    moving: Vec::new(),
                    words: (en, zh, ""),
                    shown: None,
                    by_text_key: false,
                });
            }
        }
        for def in self.customs.iter().filter(|d| d.unique) {
            if let Some(v) = custom.get(&def.key).filter(|v| !v.is_null()) {
                let Some(u) = unique_custom_key(def, v) else {
                    continue;
                };
                keys.push(DupKey {
                    kind: format!("custom.{}", def.key),
                    text: u.text,
                    col: def.col(),
                    value: u.value,
                    parent: None,
                    moving: Vec::new(),
                    words: (def.label.clone().into(), def.label.clone().into(), ""),
                    shown: u.shown,
                    by_text_key: u.by_text_key,
                });
            }
        }
        (keys, warn_keys)
    }
}

/// The refusal of a contact row whose customer column holds
/// [`crate::export::NOT_SHOWN`] but whose code names no contact the row
/// could update (a new contact needs its customer named).
/// Whether the column `role` of an `entity` import is a field a role may
/// show masked, which a masked export writes as a mask of the value (see
/// `Candidate::starred`): a writable built-in field of the record (a
/// customer row's contact group's: of the contact) other than a reference,
/// the owner and attachments, or a custom field.
fn maskable(
    entity: Entity,
    role: &ColumnRole,
    customs: &[CustomFieldDef],
    contact_customs: &[CustomFieldDef],
) -> bool {
    let (entity, field, customs) = match role {
        ColumnRole::Field(f) => (entity, f, customs),
        ColumnRole::Contact { field, .. } => (Entity::Contact, field, contact_customs),
        _ => return false,
    };
    if !matches!(entity, Entity::Customer | Entity::Contact) {
        return false;
    }
    match field.strip_prefix("custom.") {
        Some(key) => customs.iter().any(|d| d.key == key),
        None => entity.fields().iter().any(|d| {
            d.name == field
                && d.writable
                && !matches!(d.kind, FieldKind::Ref(_) | FieldKind::Attachments)
        }),
    }
}

/// Leaves the field `f` (an API name or `custom.key`) out of a row's values:
/// a built-in field with its key column (`phone_key`), a custom field.
fn drop_field(
    f: &str,
    set: &mut BTreeMap<&'static str, Value>,
    custom: &mut BTreeMap<String, Json>,
) {
    match f.strip_prefix("custom.") {
        Some(key) => {
            custom.remove(key);
        }
        None => {
            let key = format!("{f}_key");
            set.retain(|k, _| *k != f && *k != key);
        }
    }
}

/// The kinds of the duplicate keys (see `DupKey::kind`) the field `f`
/// gives a row.
fn key_kinds(f: &str) -> Vec<String> {
    match f {
        "name" => vec!["name_key".into()],
        "uscc" => vec!["uscc".into()],
        f => vec![f.to_string(), format!("keys.{f}"), format!("person.{f}")],
    }
}

/// `actor` as a role masking the fields `keys` of `entity` (and granting
/// nothing) would have them see those fields: for
/// [`ImportSession::unmask`], which compares cells with what such a role's
/// export shows.
fn masking_actor(actor: &Actor, entity: Entity, keys: &[String]) -> Actor {
    let mut masked = actor.clone();
    masked.roles = vec![crate::auth::Role {
        id: RoleId(Uuid::nil()),
        name: String::new(),
        is_admin: false,
        permissions: Vec::new(),
        field_rules: keys
            .iter()
            .map(|k| crate::auth::FieldRule {
                entity,
                field: k.clone(),
                access: FieldAccess::Masked,
            })
            .collect(),
        version: 0,
    }];
    masked.company_rules = Vec::new();
    masked
}

fn not_shown_customer_problem() -> (String, String) {
    let marker = crate::export::NOT_SHOWN;
    (
        format!(
            "Customer: '{marker}' stands for a customer not shown to whoever exported the \
             sheet; it keeps the customer of the contact the row's code (编号) names, and the \
             row names no such contact: give the customer's name, code or id"
        ),
        format!(
            "所属客户：「{marker}」表示导出人无权查看的客户，只能保留该行编号所指联系人的客户，\
             而该行未指向已有联系人；请填写客户名称、编号或 ID"
        ),
    )
}

/// Whether the actor may read customers' names in full (not masked or
/// hidden), and so name a contact's customer by its name in an import.
/// The refusal of a contact row whose customer column names `named`, a
/// customer other than the one its customer code column names (`code`),
/// in English and Chinese: the row names two customers, and attaching the
/// contact to either could be wrong (codes are given anew when customers
/// move between databases).
fn another_customer_named(named: &str, code: &str) -> (String, String) {
    let (zh, en) = CUSTOMER_CODE_HEADERS;
    (
        format!(
            "the customer '{named}' is not the customer of {en} {code}: the row names two \
             customers; correct the customer or its code (or leave one of them blank)"
        ),
        format!(
            "客户「{named}」与{zh} {code} 对应的不是同一个客户：该行指向两个客户，\
             请更正客户或客户编号（或清空其中之一）"
        ),
    )
}

/// Why no contact is added to the customer `crow` when it is archived
/// (已归档), in English and Chinese; `None` when it is not.
fn archived_customer_problem(crow: &Row) -> Option<(String, String)> {
    if crow.get("archived_at").is_null() {
        return None;
    }
    let code = crow.get("code").as_text().unwrap_or_default();
    Some((
        format!(
            "Customer (所属客户): customer {code} is archived; unarchive it before adding \
             contacts to it"
        ),
        format!("所属客户：客户 {code} 已归档，请先取消归档再添加联系人"),
    ))
}

fn reads_customer_names(actor: &Actor) -> bool {
    crate::records::filterable(actor, Entity::Customer, "name")
}

impl ImportSession<'_> {
    /// Resolves the customers a contact import's batch refers to (by id,
    /// code or name), with one scoped query per way of naming them. An
    /// actor who may not read customers' names in full (see
    /// [`reads_customer_names`]) names them by id or code only, as the API
    /// does: matching the name would confirm a guess of a name they cannot
    /// see.
    async fn resolve_customers(&mut self, rows: &[SheetRow]) -> Result<()> {
        self.resolve_customer_codes(rows).await?;
        self.resolve_kept_customers(rows).await?;
        let Some(col) = self
            .v
            .map
            .roles
            .iter()
            .position(|r| *r == ColumnRole::Field("customer_id".into()))
        else {
            return Ok(());
        };
        let mut texts: Vec<String> = rows
            .iter()
            .filter_map(|r| r.cells.get(col).and_then(Cell::to_text))
            .filter(|t| {
                let key = (Entity::Customer, t.clone());
                !self.v.lookups.refs.contains_key(&key)
                    && !self.v.lookups.shared_ref_names.contains(&key)
            })
            .collect();
        texts.sort();
        texts.dedup();
        if texts.is_empty() {
            return Ok(());
        }
        let crm = self.crm;
        let scope = self
            .actor
            .store_scope(Entity::Customer, Action::Read)
            .unwrap_or(crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: None,
            });
        let by_name = reads_customer_names(&self.actor);
        for chunk in texts.chunks(IN_CHUNK) {
            let ids: Vec<Value> = chunk
                .iter()
                .filter_map(|t| Uuid::parse_str(t).ok().map(Value::Id))
                .collect();
            // The texts of the chunk by what they may be: an id or code as
            // typed, a name by its key (each worked out once).
            let as_typed: HashMap<&str, &String> = chunk.iter().map(|t| (t.as_str(), t)).collect();
            let mut by_name_key: HashMap<String, Vec<&String>> = HashMap::new();
            if by_name {
                // A company's key or an individual's.
                for t in chunk {
                    let [company, individual] = crate::dedupe::customer_name_keys(t);
                    if individual != company {
                        by_name_key.entry(individual).or_default().push(t);
                    }
                    by_name_key.entry(company).or_default().push(t);
                }
            }
            let name_keys: Vec<Value> = by_name_key.keys().map(|k| k.as_str().into()).collect();
            // One query per way of naming a customer, each sorted by its
            // column so that its index is used.
            let mut found = Vec::new();
            for (column, values) in [
                ("id", ids),
                (
                    "code",
                    chunk.iter().map(|t| Value::Text(t.clone())).collect(),
                ),
                ("name_key", name_keys),
            ] {
                if values.is_empty() {
                    continue;
                }
                // Archived customers too: a row of one's contacts may
                // update them (see `archived_customer_problem`).
                let mut sel = Select::all(Table::Customers, self.actor.company_id.0, crm.now());
                sel.scope = scope.clone();
                sel.lifecycle = Lifecycle::Any;
                sel.filter = Filter::And(vec![
                    Filter::In(Col::Column(column), values),
                    Filter::IsNull(Col::Column("deleted_at")),
                ]);
                sel.sort = vec![Sort {
                    col: Col::Column(column),
                    desc: false,
                }];
                found.extend(crm.store.select(&sel).await?.rows);
            }
            // A text naming a customer by id or code names that one; by
            // name, only the one customer of that name (two individuals
            // may share one: then it names no one, as ambiguous).
            let mut exact: HashSet<&String> = HashSet::new();
            let mut named_ids: HashMap<&String, BTreeSet<Uuid>> = HashMap::new();
            for r in found {
                let id = r.id();
                let id_text = id.to_string();
                let mut hits: Vec<&String> = Vec::new();
                hits.extend(as_typed.get(id_text.as_str()));
                hits.extend(r.get("code").as_text().and_then(|c| as_typed.get(c)));
                exact.extend(hits.iter().copied());
                if let Some(named) = r.get("name_key").as_text().and_then(|k| by_name_key.get(k)) {
                    for t in named {
                        named_ids.entry(t).or_default().insert(id);
                    }
                    hits.extend(named);
                }
                for t in hits {
                    Arc::make_mut(&mut self.v.lookups)
                        .refs
                        .insert((Entity::Customer, t.clone()), id);
                }
                self.ref_rows.insert(id, r);
            }
            for (t, ids) in named_ids {
                if ids.len() > 1 && !exact.contains(t) {
                    let lookups = Arc::make_mut(&mut self.v.lookups);
                    lookups.refs.remove(&(Entity::Customer, t.clone()));
                    lookups
                        .shared_ref_names
                        .insert((Entity::Customer, t.clone()));
                    Arc::make_mut(&mut self.v.shared_customer_names).insert(t.clone(), ids);
                }
            }
        }
        Ok(())
    }

    /// Finds the customers of the contacts that a contact import's batch
    /// names by code in rows whose customer column is
    /// [`crate::export::NOT_SHOWN`] (see `RowValidator::kept_customer`):
    /// one query per [`IN_CHUNK`] codes, whoever may see the contacts — a
    /// row naming one the actor may not update is refused as any update
    /// of it is, and a row that would create a contact is refused.
    async fn resolve_kept_customers(&mut self, rows: &[SheetRow]) -> Result<()> {
        let codes = rows
            .iter()
            .filter(|r| self.v.kept_customer(r) == Some(None))
            .filter_map(|r| self.v.row_code(r))
            .collect();
        for (code, r) in self.contacts_by_code(codes).await? {
            if let Some(customer) = r.get("customer_id").as_id() {
                Arc::make_mut(&mut self.v.kept_customers).insert(code, customer);
            }
        }
        Ok(())
    }

    /// Resolves the customer codes of a contact import's batch (its
    /// [`ColumnRole::CustomerCode`] column) among the customers the actor
    /// may read, one scoped query per [`IN_CHUNK`] codes, for `row_fields`.
    async fn resolve_customer_codes(&mut self, rows: &[SheetRow]) -> Result<()> {
        let Some(col) = self
            .v
            .map
            .roles
            .iter()
            .position(|r| *r == ColumnRole::CustomerCode)
        else {
            return Ok(());
        };
        let mut codes: Vec<String> = rows
            .iter()
            .filter_map(|r| r.cells.get(col).and_then(Cell::to_text))
            .map(|t| crate::validate::record_code(&t))
            .filter(|t| !self.v.customer_codes.contains_key(t))
            .collect();
        codes.sort();
        codes.dedup();
        let Some(scope) = self.actor.store_scope(Entity::Customer, Action::Read) else {
            return Ok(());
        };
        for chunk in codes.chunks(IN_CHUNK) {
            let mut sel = Select::all(Table::Customers, self.actor.company_id.0, self.crm.now());
            sel.scope = scope.clone();
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::In(
                    Col::Column("code"),
                    chunk.iter().map(|t| Value::Text(t.clone())).collect(),
                ),
                Filter::IsNull(Col::Column("deleted_at")),
            ]);
            for r in self.crm.store.select(&sel).await?.rows {
                let Some(code) = r.get("code").as_text().map(str::to_string) else {
                    continue;
                };
                let id = r.id();
                Arc::make_mut(&mut self.v.customer_codes).insert(code, id);
                // `row_fields` names it by id: found without a query.
                Arc::make_mut(&mut self.v.lookups)
                    .refs
                    .insert((Entity::Customer, id.to_string()), id);
                self.ref_rows.insert(id, r);
            }
        }
        Ok(())
    }

    /// Existing live records matching any of the candidates' keys, all of
    /// them for each key (in id order): one query per key kind (and chunk),
    /// whatever the actor's scope.
    ///
    /// For customers it also tells what it found for their column keys
    /// (name, credit code, and phone and e-mail when refused), so that the
    /// batch's key upkeep need not probe them again.
    async fn existing(
        &self,
        table: Table,
        cands: &[Candidate],
    ) -> Result<(
        HashMap<(String, String), Vec<Row>>,
        Option<crate::dedupe::KnownHolders>,
    )> {
        self.existing_keys(table, cands.iter().flat_map(|c| c.keys.iter()))
            .await
    }

    /// [`ImportSession::existing`] for any keys (the warn-only keys of
    /// [`ImportSession::note_possible_duplicates`]).
    async fn existing_keys(
        &self,
        table: Table,
        keys: impl Iterator<Item = &DupKey>,
    ) -> Result<(
        HashMap<(String, String), Vec<Row>>,
        Option<crate::dedupe::KnownHolders>,
    )> {
        // Per kind: the column, whether by text key, the values, and the
        // column of the values they are paired with and those values (see
        // `DupKey::parent`).
        type Probe = (Col, bool, Vec<Value>, Option<&'static str>, Vec<Value>);
        let mut by_kind: BTreeMap<String, Probe> = BTreeMap::new();
        // The contact names sought, as compared (see `contact_name_key`).
        let mut contact_names: HashSet<String> = HashSet::new();
        for k in keys {
            if k.kind == CONTACT_NAME_KEY {
                contact_names.insert(k.text.clone());
            }
            let probe = by_kind.entry(k.kind.clone()).or_insert_with(|| {
                (
                    k.col.clone(),
                    k.by_text_key,
                    Vec::new(),
                    k.parent.as_ref().map(|(c, _)| *c),
                    Vec::new(),
                )
            });
            probe.2.push(k.value.clone());
            if let Some((_, p)) = &k.parent {
                probe.4.push(p.clone());
            }
        }
        let crm = self.crm;
        let mut found = HashMap::new();
        let mut known = crate::dedupe::KnownHolders {
            company: self.actor.company_id.0,
            ..Default::default()
        };
        for (kind, (col, by_text_key, mut values, parent_col, mut parents)) in by_kind {
            values.sort_by_key(key_text);
            values.dedup();
            parents.sort_by_key(key_text);
            parents.dedup();
            if kind == CONTACT_NAME_KEY
                && let Some(p) = parent_col
            {
                // Names compare folded (`contact_name_fold`), which no
                // index holds: the contacts of the customers named, folded
                // here (a customer's contacts, not the company's).
                for chunk in parents.chunks(IN_CHUNK) {
                    let mut sel = Select::all(table, self.actor.company_id.0, crm.now());
                    sel.lifecycle = Lifecycle::Any;
                    sel.filter = Filter::And(vec![
                        Filter::In(Col::Column(p), chunk.to_vec()),
                        Filter::IsNull(Col::Column("deleted_at")),
                    ]);
                    sel.sort = vec![Sort {
                        col: Col::Column(p),
                        desc: false,
                    }];
                    for r in crm.store.select(&sel).await?.rows {
                        let text = format!(
                            "{}:{}",
                            key_text(r.get(p)),
                            contact_name_fold(r.get("name").as_text().unwrap_or_default())
                        );
                        if contact_names.contains(&text) {
                            found
                                .entry((kind.clone(), text))
                                .or_insert_with(Vec::new)
                                .push(r);
                        }
                    }
                }
                // In creation order (ids are time-ordered).
                for ((k, _), rows) in found.iter_mut() {
                    if *k == kind {
                        rows.sort_by_key(Row::id);
                    }
                }
                continue;
            }
            // The pairs of a shared key are probed by both their values (a
            // common name is held by many contacts of other customers).
            let paired = match parent_col {
                Some(p) if shared_key(&kind) && parents.len() <= IN_CHUNK => {
                    Filter::In(Col::Column(p), parents)
                }
                _ => Filter::True,
            };
            // The key upkeep's kind of a customers' column key.
            let column = if table == Table::Customers {
                match kind.as_str() {
                    "uscc" => Some("uscc"),
                    "name_key" => Some("name"),
                    k => k.strip_prefix("keys.").and_then(crate::dedupe::column_kind),
                }
            } else {
                None
            };
            let mut holders: Option<HashMap<String, Vec<Uuid>>> =
                column.map(|_| values.iter().map(|v| (key_text(v), Vec::new())).collect());
            if let Some(key_kind) = kind
                .strip_prefix("keys.")
                .filter(|k| crate::dedupe::key_column(k).is_none())
            {
                // Through the duplicate keys: key rows, then their customers.
                for chunk in values.chunks(IN_CHUNK) {
                    let mut sel =
                        Select::all(Table::CustomerKeys, self.actor.company_id.0, crm.now());
                    sel.filter = Filter::And(vec![
                        Filter::Cmp(Col::Column("kind"), CmpOp::Eq, key_kind.into()),
                        Filter::In(Col::Column("key"), chunk.to_vec()),
                    ]);
                    let mut owners: HashMap<Uuid, String> = HashMap::new();
                    for r in crm.store.select(&sel).await?.rows {
                        if let Some(c) = r.get("customer_id").as_id() {
                            owners.insert(c, key_text(r.get("key")));
                        }
                    }
                    if owners.is_empty() {
                        continue;
                    }
                    let mut sel = Select::all(table, self.actor.company_id.0, crm.now());
                    sel.lifecycle = Lifecycle::Any;
                    sel.filter = Filter::And(vec![
                        Filter::In(
                            Col::Column("id"),
                            owners.keys().map(|u| Value::Id(*u)).collect(),
                        ),
                        Filter::IsNull(Col::Column("deleted_at")),
                    ]);
                    for r in crm.store.select(&sel).await?.rows {
                        if let Some(key) = owners.get(&r.id()) {
                            found
                                .entry((kind.clone(), key.clone()))
                                .or_insert_with(Vec::new)
                                .push(r);
                        }
                    }
                }
                continue;
            }
            for chunk in values.chunks(IN_CHUNK) {
                let mut sel = Select::all(table, self.actor.company_id.0, crm.now());
                sel.lifecycle = Lifecycle::Any;
                let holding = if by_text_key {
                    // A unique custom text, in any spelling of its key.
                    Filter::TextKeyIn(col.clone(), chunk.iter().map(key_text).collect())
                } else {
                    // Sorted by the key, so that SQLite probes the key's
                    // index instead of walking the table in id order.
                    sel.sort = vec![Sort {
                        col: col.clone(),
                        desc: false,
                    }];
                    Filter::In(col.clone(), chunk.to_vec())
                };
                sel.filter = Filter::And(vec![
                    holding,
                    paired.clone(),
                    Filter::IsNull(Col::Column("deleted_at")),
                ]);
                for r in crm.store.select(&sel).await?.rows {
                    let text = match (&col, parent_col) {
                        (Col::Column(c), Some(p)) => {
                            format!("{}:{}", key_text(r.get(p)), key_text(r.get(c)))
                        }
                        (Col::Column(c), None) => key_text(r.get(c)),
                        (Col::Custom { key, .. }, _) => r
                            .get("custom")
                            .as_json()
                            .and_then(|j| j.get(key))
                            .map(|v| match v.as_str() {
                                Some(t) if by_text_key => crate::validate::text_key(t),
                                _ => key_text(&custom_key_value(v)),
                            })
                            .unwrap_or_default(),
                    };
                    if let Some(h) = holders.as_mut().and_then(|h| h.get_mut(&text)) {
                        h.push(r.id());
                    }
                    found
                        .entry((kind.clone(), text))
                        .or_insert_with(Vec::new)
                        .push(r);
                }
            }
            if let (Some(c), Some(h)) = (column, holders) {
                known.by_kind.entry(c).or_default().extend(h);
            }
        }
        let known = (!known.by_kind.is_empty()).then_some(known);
        Ok((found, known))
    }

    /// The codes rows give (as their code column) that no live record
    /// holds but a record in the recycle bin the actor may read does.
    async fn binned_codes(
        &self,
        entity: Entity,
        cands: &[Candidate],
        existing: &HashMap<(String, String), Vec<Row>>,
    ) -> Result<HashSet<String>> {
        let codes: Vec<Value> = cands
            .iter()
            .flat_map(|c| c.keys.iter())
            .filter(|k| {
                k.kind == CODE_KEY && !existing.contains_key(&(k.kind.clone(), k.text.clone()))
            })
            .map(|k| Value::Text(k.text.clone()))
            .collect();
        let mut out = HashSet::new();
        for chunk in codes.chunks(IN_CHUNK) {
            let mut sel = Select::all(entity.table(), self.actor.company_id.0, self.crm.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::In(Col::Column("code"), chunk.to_vec()),
                Filter::NotNull(Col::Column("deleted_at")),
            ]);
            for r in self.crm.store.select(&sel).await?.rows {
                // One the actor may not read is told of no more than a
                // code nobody has.
                if let Some(code) = r.get("code").as_text()
                    && self
                        .crm
                        .can_on_row(&self.actor, entity, Action::Read, &r)
                        .await?
                {
                    out.insert(code.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Warns of the customers a batch creates that share a key the
    /// company's duplicate settings only warn of (a phone, an e-mail) with
    /// a live customer — named as a refused duplicate would be, so one the
    /// actor may not see is not named — or with an earlier row of the file
    /// that creates one: [`ImportReport::warnings`]. One query per key kind
    /// of the batch, none when the rows give no such key.
    async fn note_possible_duplicates(&mut self, creates: &[Candidate]) -> Result<()> {
        if creates.iter().all(|c| c.warn_keys.is_empty()) {
            return Ok(());
        }
        let (found, known) = self
            .existing_keys(
                Table::Customers,
                creates.iter().flat_map(|c| c.warn_keys.iter()),
            )
            .await?;
        // What the probe found, the batch's key upkeep need not probe again
        // (it reads the holders of the phones and e-mails it flags).
        if let Some(k) = known {
            match &mut self.known {
                Some(mine) => {
                    for (kind, holders) in k.by_kind {
                        mine.by_kind.entry(kind).or_default().extend(holders);
                    }
                }
                None => self.known = Some(k),
            }
        }
        for c in creates {
            let mut note = None;
            for k in &c.warn_keys {
                if let Some(row) = found
                    .get(&(k.kind.clone(), k.text.clone()))
                    .and_then(|rows| rows.first())
                {
                    note = Some(self.describe(k, row).await?);
                    break;
                }
                if let Some(first) = self.warn_seen.get(&seen_key(&k.kind, &k.text)) {
                    note = Some((
                        format!("{} is also in row {first} of this file", k.what_en()),
                        format!("{} 与本文件第 {first} 行相同", k.what_zh()),
                    ));
                    break;
                }
            }
            for k in &c.warn_keys {
                self.warn_seen
                    .entry(seen_key(&k.kind, &k.text))
                    .or_insert(c.number);
            }
            if let Some((en, zh)) = note {
                self.batch_warnings.push(RowIssue {
                    row: c.number,
                    outcome: RowOutcome::Warned,
                    kind: IssueKind::PossibleDuplicate,
                    message_en: cut_message(format!("created; possible duplicate: {en}")),
                    message_zh: cut_message(format!("已导入，疑似重复：{zh}")),
                });
            }
        }
        Ok(())
    }

    /// Describes an existing duplicate the way `check_duplicates` does: by
    /// name and code when the actor may see it, else only that it exists.
    async fn describe(&self, key: &DupKey, existing: &Row) -> Result<(String, String)> {
        let entity = self.opts.entity;
        let visible = self
            .crm
            .can_on_row(&self.actor, entity, Action::Read, existing)
            .await?
            || self.crm.config.reveal_duplicate_owner;
        // The name as the actor's field rule for it says (left out when
        // hidden), as `check_duplicates` shows it.
        let label = existing
            .get("name")
            .as_text()
            .and_then(|n| crate::dedupe::shown_value(&self.actor, entity, "name", n));
        let code = existing
            .get("code")
            .as_text()
            .unwrap_or_default()
            .to_string();
        let owner = existing
            .get("owner_id")
            .as_id()
            .and_then(|o| self.users.get(&o))
            .map(|u| u.display_name.clone());
        Ok(if visible {
            let (oe, oz) = match owner {
                Some(n) => (format!("owned by {n}"), format!("负责人 {n}")),
                None => ("without an owner".into(), "无负责人".into()),
            };
            match label {
                Some(label) => (
                    format!(
                        "{} already belongs to {label} ({code}), {oe}",
                        key.what_en()
                    ),
                    format!("{} 已存在：{label}（{code}），{oz}", key.what_zh()),
                ),
                None => (
                    format!("{} already belongs to {entity} {code}, {oe}", key.what_en()),
                    format!("{} 已存在：{}{code}，{oz}", key.what_zh(), entity.name_zh()),
                ),
            }
        } else {
            (
                format!(
                    "{} already belongs to another {entity}, owned by someone else",
                    key.what_en()
                ),
                format!(
                    "{} 已属于另一个{}（负责人为其他人）",
                    key.what_zh(),
                    entity.name_zh()
                ),
            )
        })
    }

    async fn record_batch(
        &mut self,
        rows: &[SheetRow],
        checked: Option<Vec<Checked>>,
        issues: &mut Vec<RowIssue>,
    ) -> Result<(ChangeSet, BatchItems)> {
        let entity = self.opts.entity;
        let crm = self.crm;
        if entity == Entity::Contact {
            self.resolve_customers(rows).await?;
        }
        // 1. Validate every row. (Candidates are large: their vectors are
        // sized once rather than grown and copied.)
        let mut cands = Vec::with_capacity(rows.len());
        let mut checked = checked.map(Vec::into_iter);
        for row in rows {
            let pre = checked.as_mut().and_then(Iterator::next).map(|c| c.0);
            if row.cells.iter().all(Cell::is_empty) {
                continue;
            }
            if self.is_replay(row.number) {
                self.replayed_rows += 1;
            } else {
                self.counts.rows += 1;
            }
            let result = match pre {
                Some(CheckedRow::Valid(c)) => Ok(*c),
                Some(CheckedRow::Invalid(kind, problems)) => Err((kind, problems)),
                Some(CheckedRow::Later) | None => self.v.validate_record(row).await?,
            };
            match result {
                Ok(c) => cands.push(c),
                Err((kind, problems)) => {
                    let (en, zh) = join_problems(&problems);
                    self.reject(issues, row.number, kind, en, zh);
                }
            }
        }
        // 2. Duplicates within the file (the first row wins).
        let mut unique = Vec::with_capacity(cands.len());
        let mut seen: Vec<u128> = Vec::new();
        let mut dup_contact: Option<(u32, ContactKey)> = None;
        for c in cands {
            let mut dup = None;
            seen.clear();
            seen.extend(c.keys.iter().map(|k| seen_key(&k.kind, &k.text)));
            for (k, s) in c.keys.iter().zip(&seen) {
                if let Some(first) = self.seen.get(s) {
                    dup = Some((*first, k.clone()));
                    break;
                }
            }
            for s in &seen {
                self.seen.entry(*s).or_insert(c.number);
            }
            // A contact row with a mobile gives its name too: a later row
            // naming the customer's contact by that name alone (without a
            // mobile) names this one.
            if entity == Entity::Contact
                && c.keys.iter().any(|k| k.kind == "mobile_key")
                && let Some(k) = c
                    .set
                    .get("customer_id")
                    .filter(|p| !p.is_null())
                    .and_then(|p| contact_name_key(p, &c.set))
            {
                self.seen
                    .entry(seen_key(&k.kind, &k.text))
                    .or_insert(c.number);
            }
            // The unique custom values of its contacts, within the file
            // (two contacts of one row included).
            for ck in self.contact_keys(&c) {
                let s = seen_key(&ck.kind(), &ck.text);
                match self.seen.get(&s) {
                    Some(first) if dup.is_none() => {
                        let first = *first;
                        dup_contact = Some((first, ck));
                    }
                    Some(_) => {}
                    None => {
                        self.seen.insert(s, c.number);
                    }
                }
            }
            if let (None, Some((first, ck))) = (&dup, dup_contact.take()) {
                if !self.is_replay(c.number) {
                    let (en, zh) = if first == c.number {
                        (
                            "another contact of the row".to_string(),
                            "同一行的另一联系人".to_string(),
                        )
                    } else {
                        (
                            format!("row {first} of this file"),
                            format!("本文件第 {first} 行"),
                        )
                    };
                    self.duplicate(
                        issues,
                        c.number,
                        IssueKind::DuplicateInFile,
                        format!(
                            "contact {} {} {} repeats {en}",
                            ck.group, ck.label, ck.shown
                        ),
                        format!("联系人{}的{} {} 与{zh}重复", ck.group, ck.label, ck.shown),
                    );
                }
                continue;
            }
            if c.keys.is_empty() {
                self.seen
                    .insert(seen_key("row", &c.number.to_string()), c.number);
            }
            match dup {
                Some((first, k)) if !self.is_replay(c.number) => self.duplicate(
                    issues,
                    c.number,
                    IssueKind::DuplicateInFile,
                    format!("{} repeats row {first} of this file", k.what_en()),
                    format!("{} 与本文件第 {first} 行重复", k.what_zh()),
                ),
                Some(_) => {}
                None if self.is_replay(c.number) => {}
                None => unique.push(c),
            }
        }
        // An import a duplicate failed still looks for the rest in the
        // store: every duplicate row comes back, for one pass of fixes.
        if unique.is_empty() {
            return Ok((ChangeSet::default(), BatchItems::default()));
        }
        // 3. Duplicates in the store: one query per key kind.
        let (existing, known) = self.existing(entity.table(), &unique).await?;
        self.known = known;
        // The unique custom values of the contacts the rows would add, in
        // the store (a contact an update row's customer already has is not
        // added again, so not checked).
        let stored_contacts = self.contacts_of_updated(&unique, &existing).await?;
        let unique = self
            .contact_uniques_free(unique, &existing, &stored_contacts, issues)
            .await?;
        if unique.is_empty() {
            return Ok((ChangeSet::default(), BatchItems::default()));
        }
        let binned = self.binned_codes(entity, &unique, &existing).await?;
        let group_codes = self.group_code_contacts(&unique).await?;
        let mut creates = Vec::with_capacity(unique.len());
        let mut updates: Vec<PlannedUpdate> = Vec::new();
        let mut update_keys: Vec<DupKey> = Vec::new();
        for c in unique {
            // A code of a record in the recycle bin names that record: the
            // row is not made into a new one beside it.
            if let Some(code) = c
                .keys
                .iter()
                .find(|k| k.kind == CODE_KEY && binned.contains(&k.text))
                .map(|k| k.text.clone())
            {
                let (en, zh) = (entity.name(), entity.name_zh());
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Invalid,
                    format!(
                        "Code: {code} is a {en} in the recycle bin; restore it first, or clear \
                         the code (编号) to import the row as a new {en}"
                    ),
                    format!(
                        "编号：{code} 对应的{zh}在回收站中，请先恢复，或清空编号作为新记录导入"
                    ),
                );
                continue;
            }
            // Every record holding the key counts, but one a row of this
            // import moved away from it.
            let hit = match self.matched(&existing, &c) {
                Ok(hit) => hit.map(|(k, r)| (k.clone(), r)),
                Err((k, n)) => {
                    let (en, zh) = ambiguous_match(entity, k, n);
                    self.reject(issues, c.number, IssueKind::Invalid, en, zh);
                    continue;
                }
            };
            let Some((k, row)) = hit else {
                // A customer kept from a contact is not a new contact's.
                if c.kept_customer {
                    let (pe, pz) = not_shown_customer_problem();
                    self.reject(issues, c.number, IssueKind::Invalid, pe, pz);
                    continue;
                }
                // A new record is given no deactivated user.
                if let Some(i) = c.inactive.first() {
                    let (en, zh) = i.why.clone();
                    self.reject(issues, c.number, IssueKind::Invalid, en, zh);
                    continue;
                }
                // A new record needs the required fields an update may lack.
                if !c.unmet.is_empty() {
                    let (en, zh) = join_problems(&c.unmet);
                    self.reject(issues, c.number, IssueKind::Invalid, en, zh);
                    continue;
                }
                // A customer imported into a pool has no owner: a row naming
                // one is refused, not imported without it.
                if let (Some(_), Some((_, pool))) = (c.owner, &self.pool) {
                    self.reject(
                        issues,
                        c.number,
                        IssueKind::Invalid,
                        format!(
                            "Owner: customers imported into pool {pool} have no owner: leave \
                             the owner (负责人) empty, or import the row outside the pool"
                        ),
                        format!(
                            "负责人：导入公海 {pool} 的客户没有负责人，请将负责人留空，或不导入公海"
                        ),
                    );
                    continue;
                }
                // A cell no valid value (a mask) gives a new record nothing.
                if let Some((_, (pe, pz))) = c.held.first() {
                    let (pe, pz) = (pe.clone(), pz.clone());
                    self.reject(issues, c.number, IssueKind::Invalid, pe, pz);
                    continue;
                }
                // A masked value is not the actor's to give a new record.
                if let Some(&(i, _)) = c.masked.first() {
                    let (le, lz) = self.column_label(i);
                    let (we, wz) = self.kept_words(i);
                    self.reject(
                        issues,
                        c.number,
                        IssueKind::Forbidden,
                        format!(
                            "{le} (column {}): the field is {we} {}, so an import \
                             cannot set it; leave it empty for a new {entity}",
                            column_name(i),
                            self.actor.display_name
                        ),
                        format!(
                            "{lz}（{} 列）：该字段{wz}，导入不能填写；新建{}时请留空",
                            column_name(i),
                            entity.name_zh()
                        ),
                    );
                    continue;
                }
                if let Some(o) = c.owner
                    && o != self.actor.user_id.0
                {
                    let refusal = match self.owner_checks.get(&o) {
                        Some(r) => r.clone(),
                        None => {
                            let r = match self
                                .crm
                                .check_owner_for_create(&self.actor, entity, o, None)
                                .await
                            {
                                Ok(()) => None,
                                Err(Error::Forbidden(m)) => Some(m),
                                Err(e) => return Err(e),
                            };
                            self.owner_checks.insert(o, r.clone());
                            r
                        }
                    };
                    if let Some(m) = refusal {
                        let zh = crate::forbidden_zh::forbidden_zh(&m);
                        self.reject(issues, c.number, IssueKind::Forbidden, m, zh);
                        continue;
                    }
                }
                // No contact is added to an archived customer (as through
                // the API); its contacts may still be updated.
                if entity == Entity::Contact
                    && let Some((pe, pz)) = c
                        .set
                        .get("customer_id")
                        .and_then(Value::as_id)
                        .and_then(|p| self.ref_rows.get(&p))
                        .and_then(archived_customer_problem)
                {
                    self.reject(issues, c.number, IssueKind::Invalid, pe, pz);
                    continue;
                }
                // A contact is its customer's owner's: none is added to a
                // customer only shared with the actor (as `create_record`).
                if entity == Entity::Contact
                    && let Some((pe, pz)) = c
                        .set
                        .get("customer_id")
                        .and_then(Value::as_id)
                        .and_then(|p| self.ref_rows.get(&p))
                        .and_then(|crow| self.only_shared(crow))
                {
                    self.reject(issues, c.number, IssueKind::Forbidden, pe, pz);
                    continue;
                }
                // A contact code naming a stored contact names one of
                // another customer (or in the recycle bin): not a new one.
                if let Some((pe, pz)) = self.group_code_problem(&c, None, &group_codes).await? {
                    self.reject(issues, c.number, IssueKind::Invalid, pe, pz);
                    continue;
                }
                // The records still holding its keys are moving away from
                // them (rows of this import): its guards leave them out.
                let mut c = c;
                for k in &mut c.keys {
                    k.moving = found_holding(&existing, k);
                }
                creates.push(c);
                continue;
            };
            let k = &k;
            let (en, zh) = self.describe(k, row).await?;
            if self.opts.policy != DuplicatePolicy::Update {
                self.duplicate(issues, c.number, IssueKind::Duplicate, en, zh);
                continue;
            }
            // A cell holding what a masked export shows of the stored value
            // changes nothing; another one that is no valid value refuses
            // the row.
            let mut c = c;
            if let Some((pe, pz)) = self.unmask(&mut c, row) {
                self.reject_update(issues, c.number, IssueKind::Invalid, (&en, &zh), (pe, pz));
                continue;
            }
            // A row matching two records (its credit code one, its name
            // another) would give one of them the other's refusing key: it
            // updates neither.
            let refusing = |kind: &str| match (kind, self.v.modes.as_deref()) {
                ("name_key", Some(m)) => m.blocks("name"),
                ("uscc", Some(m)) => m.blocks("uscc"),
                // Several records may hold it: no other record's key.
                (k, _) if shared_key(k) => false,
                _ => true,
            };
            let other = c
                .keys
                .iter()
                .filter(|k| refusing(&k.kind))
                .find_map(|k| self.holder(&existing, k, Some(row.id())).map(|r| (k, r)));
            if let Some((k2, other)) = other {
                let (en2, zh2) = self.describe(k2, other).await?;
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Duplicate,
                    format!("{en}, and {en2}: the row matches two records and updates neither"),
                    format!("{zh}；且{zh2}：该行对应两条记录，均不更新"),
                );
                continue;
            }
            if let Some((first_en, first_zh)) = self.updated_by(row.id()) {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::DuplicateInFile,
                    format!("{en}; {first_en} already updates it"),
                    format!("{zh}；{first_zh}已更新该记录"),
                );
                continue;
            }
            if !crm
                .can_on_row(&self.actor, entity, Action::Update, row)
                .await?
            {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Forbidden,
                    format!("{en}; {} may not update it", self.actor.display_name),
                    format!("{zh}；你无权更新该记录"),
                );
                continue;
            }
            // A customer found by a phone or an e-mail under another name is
            // not renamed by the match: the row names the customer it means
            // by its code, or by its name.
            if let Some((pe, pz)) = self.renames_by_other_key(&c, k, row) {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Duplicate,
                    format!("{en}; {pe}"),
                    format!("{zh}；{pz}"),
                );
                continue;
            }
            // A deactivated user the record holds there already is kept;
            // none is given anew.
            if let Some(i) = c.inactive.iter().find(|i| !i.held_by(row)) {
                let (pe, pz) = i.why.clone();
                self.reject_update(issues, c.number, IssueKind::Invalid, (&en, &zh), (pe, pz));
                continue;
            }
            // An update keeps the record's owner (as the API's does): an
            // exported sheet's owner column reads back unchanged, another
            // owner is a transfer's business.
            if let Some(o) = c.owner
                && row.get("owner_id").as_id() != Some(o)
            {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Invalid,
                    format!(
                        "{en}; an import does not change the owner (负责人) of a record it \
                         updates: transfer it instead"
                    ),
                    format!("{zh}；导入更新记录时不更改负责人，请使用转移"),
                );
                continue;
            }
            // A contact stays with its customer (as `update_record` has it):
            // a row naming another customer moves nothing.
            if entity == Entity::Contact
                && let Some(to) = c.set.get("customer_id").and_then(Value::as_id)
                && row.get("customer_id").as_id() != Some(to)
            {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Invalid,
                    format!(
                        "{en}; Customer (所属客户): cannot be changed after creation — the row \
                         names another customer than the contact's"
                    ),
                    format!("{zh}；所属客户：创建后不能更改，该行填写的客户不是该联系人的客户"),
                );
                continue;
            }
            // A masked cell as the actor was shown it is no change; any
            // other value would change what they may not.
            if let Some((me, mz)) = self.masked_mismatch(&c, row) {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Forbidden,
                    format!("{en}; {me}"),
                    format!("{zh}；{mz}"),
                );
                continue;
            }
            // The record as the row would leave it must pass the rules
            // that span fields, as an update through the API must.
            let merged = match self.merge_update(entity, row, &c) {
                Ok(m) => m,
                Err(problems) => {
                    let (pe, pz) = join_problems(&problems);
                    self.reject(
                        issues,
                        c.number,
                        IssueKind::Invalid,
                        format!(
                            "{en}; this row cannot update it: together with the record's stored \
                             values it would break a rule ({pe})"
                        ),
                        format!(
                            "{zh}；该行不能更新该记录：与记录中已有的值合并后不符合规则（{pz}）"
                        ),
                    );
                    continue;
                }
            };
            // The contacts its groups name among the customer's, updated as
            // a contact's update would be (the others are added).
            // (Their guards join the batch's once the row is taken.)
            let (contact_updates, contact_guards) = if c.contacts.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                if let Some((pe, pz)) = self
                    .group_code_problem(&c, Some(row.id()), &group_codes)
                    .await?
                {
                    self.reject_update(issues, c.number, IssueKind::Invalid, (&en, &zh), (pe, pz));
                    continue;
                }
                match self.contact_updates(&c, row, &stored_contacts).await? {
                    Ok(planned) => planned,
                    Err((kind, pe, pz)) => {
                        self.reject_update(issues, c.number, kind, (&en, &zh), (pe, pz));
                        continue;
                    }
                }
            };
            // A row exported before the record's latest change would undo
            // that change: the sheet is exported again instead. (One that
            // changes nothing, such as the same sheet imported twice, undoes
            // nothing.)
            if let Some(v) = c.version
                && v != row.version()
                && (v > row.version() || changes_anything(row, &merged, &c, &contact_updates))
            {
                let name = row
                    .get("code")
                    .as_text()
                    .map(str::to_string)
                    .unwrap_or_else(|| row_label(row));
                let (en, zh) = stale_row(&name, v, row.version());
                self.reject(issues, c.number, IssueKind::Invalid, en, zh);
                continue;
            }
            // An archived record is changed after it is unarchived, as
            // through the API; a row leaving it as it is (an exported sheet
            // imported back) is unchanged.
            if !row.get("archived_at").is_null()
                && changes_anything(row, &merged, &c, &contact_updates)
            {
                self.reject(
                    issues,
                    c.number,
                    IssueKind::Invalid,
                    format!("{en}; it is archived: unarchive it before updating it"),
                    format!("{zh}；该记录已归档，请先取消归档再更新"),
                );
                continue;
            }
            // The contacts its groups add are the customer's owner's: not
            // added to a customer only shared with the actor.
            if c.contacts
                .iter()
                .any(|k| !contact_updates.iter().any(|u| u.group == k.group))
                && let Some((pe, pz)) = self.only_shared(row)
            {
                self.reject_update(issues, c.number, IssueKind::Forbidden, (&en, &zh), (pe, pz));
                continue;
            }
            if !self.opts.dry_run {
                self.batch_guards.extend(contact_guards);
            }
            self.touched.insert(row.id(), c.number);
            for u in &contact_updates {
                self.touched.insert(u.row.id(), c.number);
            }
            // (The record keeps its code, whatever code the row names.)
            let mut rekeyed: Vec<(String, String)> = c
                .keys
                .iter()
                .filter(|k| k.kind != CODE_KEY)
                .map(|k| (k.kind.clone(), k.text.clone()))
                .collect();
            // A contact's name names it as the update leaves it, whichever
            // key the row met it by (a row without a mobile finds it by
            // that name).
            if entity == Entity::Contact
                && !rekeyed.iter().any(|(kind, _)| kind == CONTACT_NAME_KEY)
                && let Some(k) = contact_name_key(row.get("customer_id"), &merged)
            {
                rekeyed.push((k.kind, k.text));
            }
            self.rekeyed.insert(row.id(), rekeyed);
            // The keys it gives the record are guarded too: the record
            // itself and whoever the probe found holding them do not count,
            // a record saved meanwhile does.
            for k in c.keys.iter().filter(|k| k.kind != CODE_KEY) {
                let mut k = k.clone();
                k.moving = found_holding(&existing, &k);
                k.moving.push(row.id());
                update_keys.push(k);
            }
            updates.push((c, row.clone(), merged, contact_updates));
        }
        if self.failed {
            return Ok((ChangeSet::default(), BatchItems::default()));
        }
        if entity == Entity::Customer {
            self.note_possible_duplicates(&creates).await?;
        }
        // What the probes found free is guarded when the batch is written:
        // another user saving a record with one of these keys meanwhile
        // fails it.
        let n = creates.iter().map(|c| c.keys.len()).sum::<usize>() + update_keys.len();
        let mut batch_keys = Vec::with_capacity(n);
        for c in &mut creates {
            // A created record takes its own code, not the row's.
            batch_keys.extend(c.keys.drain(..).filter(|k| k.kind != CODE_KEY));
        }
        batch_keys.extend(update_keys);
        self.batch_keys = batch_keys;
        let mut written: Vec<ContactKey> = Vec::new();
        let mut span: Option<(u32, u32)> = None;
        let adds = creates
            .iter()
            .map(|c| (c, None))
            .chain(updates.iter().map(|(c, r, _, _)| (c, Some(r.id()))));
        for (c, to) in adds {
            let ks = self.contact_keys_where(c, |k| adds_contact(&stored_contacts, to, k));
            if !ks.is_empty() {
                span = Some(span.map_or((c.number, c.number), |(a, b)| {
                    (a.min(c.number), b.max(c.number))
                }));
                written.extend(ks);
            }
        }
        if !self.opts.dry_run {
            let guards = self.contact_key_guards(written, span.unwrap_or_default());
            self.batch_guards.extend(guards);
        }
        // 4. Build the writes (an insert, audit entry and event per record).
        let mut cs = ChangeSet::default();
        cs.ops.reserve(creates.len() + updates.len() + 1);
        cs.audit.reserve(creates.len() + updates.len());
        cs.events.reserve(creates.len() + updates.len());
        let mut items = BatchItems::default();
        items.created.reserve(creates.len());
        self.slots.reserve(creates.len());
        // Codes are taken when the batch is written (not in a dry run).
        let prefix = entity.code_prefix().unwrap_or("NO");
        let company = self.actor.company_id.0;
        // Stored customers the batch adds contacts to: none may be merged
        // away or deleted before it is written.
        let mut parents_written: BTreeSet<Uuid> = BTreeSet::new();
        // Stored customers whose owner the batch's contacts take, with the
        // owner read: none may change hands before it is written.
        let mut owners_read: BTreeMap<Uuid, Option<Uuid>> = BTreeMap::new();
        for c in creates {
            if entity == Entity::Contact {
                let parent = c.set.get("customer_id").and_then(Value::as_id);
                parents_written.extend(parent);
                if c.owner.or(self.owner).is_none()
                    && let Some(row) = parent.and_then(|p| self.ref_rows.get(&p))
                {
                    owners_read.insert(row.id(), row.get("owner_id").as_id());
                }
            }
            let (owner, dept) = self.owner_of(&c)?;
            let pool = self.pool.as_ref().map(|(p, _)| *p);
            let ins = crm.insert_op(
                &self.actor,
                entity,
                c.set,
                c.custom,
                owner,
                dept,
                None,
                pool,
            );
            let id = ins.id;
            self.code_slot(&cs, prefix, ins.code_at);
            cs.ops.push(ins.op);
            if let Some((pool, name)) = &self.pool {
                // Into the pool's public area, without an owner.
                cs.ops.push(crm.move_insert(
                    company,
                    (id, 1),
                    "import",
                    None,
                    crate::pool::Place::Public,
                    Some(*pool),
                    None,
                    None,
                    Some(self.actor.user_id.0),
                    None,
                    Some(format!("imported into pool {name}")),
                ));
            }
            self.created_entries(&mut cs, entity, id, ins.payload);
            items.created.push((entity.table(), id));
            self.counts.created += 1;
            for k in c.contacts {
                self.add_contact(&mut cs, &mut items, id, owner, dept, k);
            }
        }
        // Contacts of updated customers: those a group names (see
        // `match_contact`) are updated, the others added — once each (two
        // groups of a row naming one contact by name without a mobile add
        // it once).
        let mut added: HashSet<String> = HashSet::new();
        for (c, row, merged, contact_updates) in updates {
            let number = c.number;
            if self.update_entries(&mut cs, &mut items, entity, &row, &c.custom, number, merged) {
                self.counts.updated += 1;
            } else {
                self.counts.unchanged += 1;
            }
            let owner = row.get("owner_id").as_id().unwrap_or(self.actor.user_id.0);
            let dept = row.get("department_id").as_id();
            added.clear();
            for k in c.contacts {
                match contact_updates.iter().find(|u| u.group == k.group) {
                    Some(u) => {
                        let (contact, merged) = (&u.row, u.merged.clone());
                        if self.update_entries(
                            &mut cs,
                            &mut items,
                            Entity::Contact,
                            contact,
                            &u.custom,
                            number,
                            merged,
                        ) {
                            self.counts.contacts_updated += 1;
                            parents_written.insert(row.id());
                        }
                    }
                    None if added.insert(contact_identity(&k.set)) => {
                        parents_written.insert(row.id());
                        self.add_contact(&mut cs, &mut items, row.id(), owner, dept, k);
                    }
                    None => {}
                }
            }
        }
        if !parents_written.is_empty() && !self.opts.dry_run {
            cs.guards.push(self.parents_live_guard(&parents_written));
        }
        if !owners_read.is_empty() && !self.opts.dry_run {
            cs.guards.push(
                self.crm.owners_unchanged_guard(
                    company,
                    &owners_read,
                    "a customer this batch adds contacts to changed hands meanwhile; import the \
                 file again"
                        .into(),
                ),
            );
        }
        Ok((cs, items))
    }

    /// A guard that the stored customers a batch adds contacts to are still
    /// live when it is written, under the keys a merge or delete of them
    /// takes (see [`Crm::customer_live_guard`]).
    fn parents_live_guard(&self, customers: &BTreeSet<Uuid>) -> Guard {
        let company = self.actor.company_id.0;
        let ids: Vec<Uuid> = customers.iter().copied().collect();
        self.crm.deleted_meanwhile_guard(
            Table::Customers,
            company,
            &ids,
            ids.iter()
                .map(|id| crate::records::customer_contacts_key(company, *id))
                .collect(),
            "a customer this batch adds contacts to was deleted or merged into \
             another meanwhile; import the file again"
                .into(),
        )
    }

    /// The owner and department of a created record.
    fn owner_of(&self, c: &Candidate) -> Result<(Uuid, Option<Uuid>)> {
        let mut owner = c.owner.or(self.owner);
        if self.opts.entity == Entity::Contact && owner.is_none() {
            owner = c
                .set
                .get("customer_id")
                .and_then(Value::as_id)
                .and_then(|id| self.ref_rows.get(&id))
                .and_then(|r| r.get("owner_id").as_id());
        }
        let owner = owner.unwrap_or(self.actor.user_id.0);
        let dept = match self.department {
            Some(d) => Some(d),
            None if owner == self.actor.user_id.0 => self.actor.department_id.map(|d| d.0),
            None => self
                .users
                .get(&owner)
                .and_then(|u| u.department_id)
                .map(|d| d.0),
        };
        Ok((owner, dept))
    }

    fn created_entries(&self, cs: &mut ChangeSet, entity: Entity, id: Uuid, payload: Payload) {
        let company = self.actor.company_id.0;
        // The audit entry names the import; the values are the record's own
        // and travel in the event. (Imports also keep their own record.)
        let changes = vec![FieldChange {
            field: "import".into(),
            before: Json::Null,
            after: Json::String(self.import_id.to_string()),
        }];
        cs.audit.push(self.crm.audit(
            Some(&self.actor),
            company,
            entity.table(),
            id,
            "create",
            changes,
        ));
        cs.events.push(self.crm.event(
            company,
            entity.table(),
            id,
            format!("{entity}.created"),
            payload,
        ));
    }

    /// Notes that the insert pushed next onto `cs`, and the `created` event
    /// after it, get a code with `prefix` when the batch is written (not in
    /// a dry run, which takes no codes).
    fn code_slot(&mut self, cs: &ChangeSet, prefix: &'static str, payload_at: Option<usize>) {
        if !self.opts.dry_run {
            self.slots.push(CodeSlot {
                prefix,
                op: cs.ops.len(),
                event: cs.events.len(),
                payload_at,
            });
        }
    }

    fn add_contact(
        &mut self,
        cs: &mut ChangeSet,
        items: &mut BatchItems,
        customer: Uuid,
        owner: Uuid,
        dept: Option<Uuid>,
        mut k: ContactDraft,
    ) {
        k.set.insert("customer_id", Value::Id(customer));
        // Contacts follow their customer into a pool: no owner.
        let pool = self.pool.as_ref().map(|(p, _)| *p);
        let ins = self.crm.insert_op(
            &self.actor,
            Entity::Contact,
            k.set,
            k.custom,
            owner,
            dept,
            None,
            pool,
        );
        let cid = ins.id;
        self.code_slot(
            cs,
            Entity::Contact.code_prefix().unwrap_or("LXR"),
            ins.code_at,
        );
        cs.ops.push(ins.op);
        self.created_entries(cs, Entity::Contact, cid, ins.payload);
        items.created.push((Table::Contacts, cid));
        self.counts.contacts += 1;
    }

    /// How messages name the field of column `i`, in English and Chinese.
    /// The refusal of a masked cell (column `i`) holding `text` where the
    /// actor is shown `now` of the stored value, in English and Chinese.
    fn masked_changed(&self, i: usize, text: &str, now: Option<&str>) -> (String, String) {
        let (le, lz) = self.column_label(i);
        let (we, wz) = self.kept_words(i);
        let (now_en, now_zh) = match now {
            Some(v) => (format!("'{v}'"), format!("「{v}」")),
            None => ("nothing".to_string(), "空值".to_string()),
        };
        (
            format!(
                "{le} (column {}): '{text}' is not the value shown to {} ({now_en}); the \
                 field is {we} them, so an import cannot change it",
                column_name(i),
                self.actor.display_name
            ),
            format!(
                "{lz}（{} 列）：「{text}」与你看到的值（{now_zh}）不同；该字段{wz}，导入不能修改",
                column_name(i)
            ),
        )
    }

    /// How a column read back but never written (see [`CellKind::Masked`])
    /// is shown to the actor, for messages: masked, or read-only (a field
    /// rule `read_only`: shown as stored, never changed by them).
    fn kept_words(&self, i: usize) -> (&'static str, &'static str) {
        let access = match self.v.map.roles.get(i) {
            Some(ColumnRole::Field(f)) => self.actor.field_access(self.opts.entity, f),
            Some(ColumnRole::Contact { field, .. }) => {
                self.actor.field_access(Entity::Contact, field)
            }
            _ => FieldAccess::Masked,
        };
        if access == FieldAccess::ReadOnly {
            ("read-only for", "对你只读")
        } else {
            ("shown masked to", "对你脱敏显示")
        }
    }

    fn column_label(&self, i: usize) -> (String, String) {
        let entity = self.opts.entity;
        match self.v.map.roles.get(i) {
            Some(ColumnRole::Field(f)) => match f.strip_prefix("custom.") {
                Some(key) => self
                    .v
                    .customs
                    .iter()
                    .find(|d| d.key == key)
                    .map(|d| {
                        (
                            d.label_en.clone().unwrap_or_else(|| d.label.clone()),
                            d.label.clone(),
                        )
                    })
                    .unwrap_or_else(|| (f.clone(), f.clone())),
                None => find_field(entity, f)
                    .map(|d| (d.en.to_string(), d.zh.to_string()))
                    .unwrap_or_else(|| (f.clone(), f.clone())),
            },
            Some(ColumnRole::Contact { group, field }) => match field.strip_prefix("custom.") {
                Some(key) => self
                    .v
                    .contact_customs
                    .iter()
                    .find(|d| d.key == key)
                    .map(|d| {
                        (
                            format!(
                                "Contact {group} {}",
                                d.label_en.clone().unwrap_or_else(|| d.label.clone())
                            ),
                            format!("联系人{group}{}", d.label),
                        )
                    })
                    .unwrap_or_else(|| (field.clone(), field.clone())),
                None => find_field(Entity::Contact, field)
                    .map(|d| {
                        (
                            format!("Contact {group} {}", d.en),
                            format!("联系人{group}{}", d.zh),
                        )
                    })
                    .unwrap_or_else(|| (field.clone(), field.clone())),
            },
            _ => (column_name(i), column_name(i)),
        }
    }

    /// The first masked cell of contact group `group` of row `c` that is
    /// not what an export shows the actor of the stored contact `contact`
    /// (any, for a group adding a contact: `None`), as messages in English
    /// and Chinese; `None` when every one is (they then change nothing).
    fn contact_masked_mismatch(
        &self,
        c: &Candidate,
        group: usize,
        contact: Option<&Row>,
    ) -> Option<(String, String)> {
        let (cols, view) = self.contact_masked_view.as_ref()?;
        let mut shown = None;
        for (i, text) in &c.masked {
            let Some(at) = cols.iter().position(|c| c == i) else {
                continue;
            };
            if !matches!(self.v.map.roles.get(*i),
                Some(ColumnRole::Contact { group: g, .. }) if *g as usize == group)
            {
                continue;
            }
            let (le, lz) = self.column_label(*i);
            let (we, wz) = self.kept_words(*i);
            let Some(contact) = contact else {
                return Some((
                    format!(
                        "{le} (column {}): the field is {we} {}, so an import cannot \
                         set it; leave it empty for a new contact",
                        column_name(*i),
                        self.actor.display_name
                    ),
                    format!(
                        "{lz}（{} 列）：该字段{wz}，导入不能填写；新建联系人时请留空",
                        column_name(*i)
                    ),
                ));
            };
            let shown = shown.get_or_insert_with(|| view.stored_cells(contact.clone()));
            let now = shown.get(at).and_then(export_text);
            if now.as_deref() == Some(text.as_str()) {
                continue;
            }
            return Some(self.masked_changed(*i, text, now.as_deref()));
        }
        None
    }

    /// Leaves out of row `c`, which updates the stored record `row`, the
    /// cells of its `starred` columns (see `Candidate::starred`) that hold
    /// what an export masking the field shows of the stored value (北***号
    /// for the stored address): they change nothing, whoever imports them.
    /// A `held` cell of the record that is not such a mask refuses the
    /// row: why, in English and Chinese.
    fn unmask(&self, c: &mut Candidate, row: &Row) -> Option<(String, String)> {
        if let Some((cols, view)) = self.starred_view.as_ref()
            && !c.starred.is_empty()
        {
            let mut shown = None;
            let mut same = Vec::new();
            for (i, text) in &c.starred {
                let Some(at) = cols.iter().position(|x| x == i) else {
                    continue;
                };
                let shown = shown.get_or_insert_with(|| view.stored_cells(row.clone()));
                if shown.get(at).and_then(export_text).as_deref() == Some(text.as_str()) {
                    same.push(*i);
                }
            }
            for i in same {
                if let Some(ColumnRole::Field(f)) = self.v.map.roles.get(i) {
                    drop_field(f, &mut c.set, &mut c.custom);
                    let kinds = key_kinds(f);
                    c.keys.retain(|k| !kinds.contains(&k.kind));
                }
                c.held.retain(|(h, _)| *h != i);
            }
        }
        c.held
            .iter()
            .find(|(i, _)| matches!(self.v.map.roles.get(*i), Some(ColumnRole::Field(_))))
            .map(|(_, p)| p.clone())
    }

    /// As [`ImportSession::unmask`], for contact group `group` of row `c`
    /// updating the stored contact `contact` (`None`: adding one, which
    /// no held cell may): the group's values with the cells holding masks
    /// of the stored ones left out, or why the row is refused.
    #[allow(clippy::type_complexity)]
    fn unmask_contact(
        &self,
        c: &Candidate,
        k: &ContactDraft,
        contact: Option<&Row>,
    ) -> std::result::Result<
        (BTreeMap<&'static str, Value>, BTreeMap<String, Json>),
        (String, String),
    > {
        let in_group = |i: usize| {
            matches!(self.v.map.roles.get(i),
                Some(ColumnRole::Contact { group, .. }) if *group as usize == k.group)
        };
        let (mut set, mut custom) = (k.set.clone(), k.custom.clone());
        let mut held: Vec<&(usize, (String, String))> =
            c.held.iter().filter(|(i, _)| in_group(*i)).collect();
        if let (Some((cols, view)), Some(contact)) = (self.contact_starred_view.as_ref(), contact) {
            let mut shown = None;
            for (i, text) in c.starred.iter().filter(|(i, _)| in_group(*i)) {
                let Some(at) = cols.iter().position(|x| x == i) else {
                    continue;
                };
                let shown = shown.get_or_insert_with(|| view.stored_cells(contact.clone()));
                if shown.get(at).and_then(export_text).as_deref() == Some(text.as_str()) {
                    if let Some(ColumnRole::Contact { field, .. }) = self.v.map.roles.get(*i) {
                        drop_field(field, &mut set, &mut custom);
                    }
                    held.retain(|(h, _)| h != i);
                }
            }
        }
        match held.first() {
            Some((_, p)) => Err(p.clone()),
            None => Ok((set, custom)),
        }
    }

    /// Why a customer row must not update the stored customer `row` that
    /// its key `k` found: `k` is a phone or an e-mail (which colleagues and
    /// branches share, unlike the code, the credit code or a custom key
    /// naming the customer), and the row names the customer otherwise
    /// (its name's duplicate key is not the stored one's), which would
    /// rename it silently. In English and Chinese; `None` when the update
    /// may go ahead.
    fn renames_by_other_key(
        &self,
        c: &Candidate,
        k: &DupKey,
        row: &Row,
    ) -> Option<(String, String)> {
        if self.opts.entity != Entity::Customer
            || !matches!(k.kind.as_str(), "keys.phone" | "keys.email")
        {
            return None;
        }
        let name = c.set.get("name").and_then(Value::as_text)?;
        // (Compared as names whatever kind of customer either says.)
        let stored = row.get("name").as_text().unwrap_or_default();
        if crate::dedupe::customer_name_key(name, false)
            == crate::dedupe::customer_name_key(stored, false)
        {
            return None;
        }
        Some((
            format!(
                "the row's name {name} is not that customer's, and a match by {} alone does \
                 not rename it: give the customer's code (编号) to rename it on purpose, or its \
                 own name to update it",
                k.label()
            ),
            format!(
                "该行的客户名称「{name}」与该客户不同，仅凭{}匹配不会改名：如需改名请填写该客户的编号，\
                 如需更新请填写该客户的名称",
                k.words.1
            ),
        ))
    }

    /// The first masked cell of a row updating the stored record `row`
    /// that is not what an export shows the actor of the stored value
    /// (`138****5678` for 13812345678), as messages in English and
    /// Chinese; `None` when every one is (they then change nothing).
    fn masked_mismatch(&self, c: &Candidate, row: &Row) -> Option<(String, String)> {
        let (cols, view) = self.masked_view.as_ref()?;
        if c.masked.is_empty() {
            return None;
        }
        let shown = view.stored_cells(row.clone());
        for (i, text) in &c.masked {
            // (A contact group's column is the contact's: `contact_updates`.)
            let Some(at) = cols.iter().position(|c| c == i) else {
                continue;
            };
            let now = shown.get(at).and_then(export_text);
            if now.as_deref() == Some(text.as_str()) {
                continue;
            }
            return Some(self.masked_changed(*i, text, now.as_deref()));
        }
        None
    }

    /// The contacts of `customer` (an existing customer row `c` updates;
    /// `stored` holds its contacts, archived too) that the row's contact groups
    /// name (see [`match_contact`]), each checked as an update of the
    /// contact through the API is: the actor may update it, it is not
    /// archived, the merged contact passes the rules, and a mobile or
    /// unique custom value it takes is no other live contact's (with the
    /// guards repeating that check in the batch's write). A group naming
    /// several contacts, or one another group of the row names too, fails
    /// the row: the kind of issue and why, in English and Chinese.
    #[allow(clippy::type_complexity)]
    async fn contact_updates(
        &self,
        c: &Candidate,
        customer: &Row,
        stored: &HashMap<Uuid, Vec<Row>>,
    ) -> Result<std::result::Result<(Vec<ContactUpdate>, Vec<Guard>), (IssueKind, String, String)>>
    {
        let contacts = stored.get(&customer.id()).map_or(&[][..], Vec::as_slice);
        let mut out: Vec<ContactUpdate> = Vec::new();
        let mut guards = Vec::new();
        for k in &c.contacts {
            let g = k.group;
            let name = k
                .set
                .get("name")
                .and_then(Value::as_text)
                .unwrap_or_default();
            let contact = match match_contact(k, contacts) {
                ContactMatch::New => {
                    // A masked value is not the actor's to give a new contact.
                    if let Some((pe, pz)) = self.contact_masked_mismatch(c, g, None) {
                        return Ok(Err((IssueKind::Forbidden, pe, pz)));
                    }
                    if let Err((pe, pz)) = self.unmask_contact(c, k, None) {
                        return Ok(Err((IssueKind::Invalid, pe, pz)));
                    }
                    continue;
                }
                ContactMatch::One(r) => r,
                ContactMatch::Many(n) => {
                    return Ok(Err((
                        IssueKind::Invalid,
                        format!(
                            "contact {g} {name} matches {n} contacts of the customer: give its \
                             code (联系人{g}编号) or mobile to tell which"
                        ),
                        format!(
                            "联系人{g} {name} 对应该客户的 {n} 个联系人，请填写联系人{g}编号或手机以区分"
                        ),
                    )));
                }
            };
            let code = contact
                .get("code")
                .as_text()
                .unwrap_or_default()
                .to_string();
            if let Some(first) = out.iter().find(|u| u.row.id() == contact.id()) {
                return Ok(Err((
                    IssueKind::DuplicateInFile,
                    format!(
                        "contacts {} and {g} of the row are both contact {code} ({name})",
                        first.group
                    ),
                    format!(
                        "联系人{}与联系人{g}是同一联系人 {code}（{name}）",
                        first.group
                    ),
                )));
            }
            if !self
                .crm
                .can_on_row(&self.actor, Entity::Contact, Action::Update, contact)
                .await?
            {
                return Ok(Err((
                    IssueKind::Forbidden,
                    format!(
                        "contact {g}: {} may not update contact {code} ({name})",
                        self.actor.display_name
                    ),
                    format!("联系人{g}：你无权更新联系人 {code}（{name}）"),
                )));
            }
            // A masked cell as the actor was shown it is no change.
            if let Some((pe, pz)) = self.contact_masked_mismatch(c, g, Some(contact)) {
                return Ok(Err((IssueKind::Forbidden, pe, pz)));
            }
            // So is a cell holding what a masked export shows of it.
            let (set, custom) = match self.unmask_contact(c, k, Some(contact)) {
                Ok(v) => v,
                Err((pe, pz)) => return Ok(Err((IssueKind::Invalid, pe, pz))),
            };
            if !contact.get("archived_at").is_null() {
                return Ok(Err((
                    IssueKind::Invalid,
                    format!(
                        "contact {g}: contact {code} ({name}) is archived: unarchive it before \
                         updating it"
                    ),
                    format!("联系人{g}：联系人 {code}（{name}）已归档，请先取消归档再更新"),
                )));
            }
            let mut merged: BTreeMap<&'static str, Value> = Entity::Contact
                .table()
                .columns()
                .iter()
                .map(|col| (col.name, contact.get(col.name).clone()))
                .collect();
            for (f, v) in &set {
                merged.insert(*f, v.clone());
            }
            if let Err(e) = self.crm.derive(Entity::Contact, &mut merged) {
                let problems = match e {
                    Error::Validation(v) => {
                        self.v
                            .messages(Entity::Contact, &Fields::new(), &v, Some(g as u32))
                    }
                    other => {
                        let m = other.to_string();
                        vec![(m.clone(), m)]
                    }
                };
                let (pe, pz) = join_problems(&problems);
                return Ok(Err((IssueKind::Invalid, pe, pz)));
            }
            // As `update_record`: the keys the group changes are checked,
            // the contact itself left out.
            let stored_custom = contact.get("custom").as_json().and_then(Json::as_object);
            let changed_custom: BTreeMap<String, Json> = custom
                .iter()
                .filter(|(key, v)| {
                    self.v
                        .contact_customs
                        .iter()
                        .any(|d| d.unique && d.key == **key)
                        && stored_custom.and_then(|o| o.get(*key)) != Some(*v)
                })
                .map(|(key, v)| (key.clone(), v.clone()))
                .collect();
            let mut check = merged.clone();
            let mobile_changed = merged.get("mobile_key").is_some_and(|m| !m.is_null())
                && merged.get("mobile_key") != Some(contact.get("mobile_key"));
            if !mobile_changed {
                check.remove("mobile_key");
            }
            if mobile_changed || !changed_custom.is_empty() {
                match self
                    .crm
                    .check_duplicates_except(
                        &self.actor,
                        Entity::Contact,
                        &check,
                        &changed_custom,
                        &self.v.contact_customs,
                        &[contact.id()],
                    )
                    .await
                {
                    Ok(g) => guards.extend(g),
                    Err(Error::Duplicate { message, .. }) => {
                        return Ok(Err((
                            IssueKind::Duplicate,
                            format!("contact {g} ({name}): {message}"),
                            format!("联系人{g}（{name}）：该值已被其他联系人使用（{message}）"),
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            out.push(ContactUpdate {
                group: g,
                row: contact.clone(),
                merged,
                custom,
            });
        }
        Ok(Ok((out, guards)))
    }

    /// The stored record `row` with the values the row itself gives
    /// (non-empty cells; not the defaults `derive` filled into the row's
    /// values, such as a customer's kind), its keys derived again, like
    /// `update_record` merges. A merged record that breaks a rule spanning
    /// fields (an individual customer with a credit code) gives the
    /// problems, in English and Chinese.
    fn merge_update(
        &self,
        entity: Entity,
        row: &Row,
        c: &Candidate,
    ) -> std::result::Result<BTreeMap<&'static str, Value>, Vec<(String, String)>> {
        let mut merged: BTreeMap<&'static str, Value> = BTreeMap::new();
        for col in entity.table().columns() {
            merged.insert(col.name, row.get(col.name).clone());
        }
        for (k, v) in &c.set {
            if !c.filled.contains(k) {
                merged.insert(*k, v.clone());
            }
        }
        match self.crm.derive(entity, &mut merged) {
            Ok(()) => Ok(merged),
            Err(Error::Validation(v)) => Err(self.v.messages(entity, &Fields::new(), &v, None)),
            Err(other) => {
                let m = other.to_string();
                Err(vec![(m.clone(), m)])
            }
        }
    }

    /// The update of an existing record with a row's values merged into it
    /// by [`ImportSession::merge_update`], like `update_record` does it.
    /// Whether anything changed (a record whose values are all the same
    /// already is not written); the caller counts it.
    #[allow(clippy::too_many_arguments)]
    fn update_entries(
        &mut self,
        cs: &mut ChangeSet,
        items: &mut BatchItems,
        entity: Entity,
        row: &Row,
        custom: &BTreeMap<String, Json>,
        number: u32,
        merged: BTreeMap<&'static str, Value>,
    ) -> bool {
        let crm = self.crm;
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut before: Vec<(String, Value)> = Vec::new();
        let mut changes = Vec::new();
        for (k, v) in &merged {
            if matches!(
                *k,
                "version" | "custom" | "id" | "company_id" | "created_at"
            ) {
                continue;
            }
            let old = row.get(k);
            if old != v {
                values.push((*k, v.clone()));
                before.push((k.to_string(), old.clone()));
                if !is_derived(k) {
                    changes.push(FieldChange {
                        field: k.to_string(),
                        before: output_json(entity, k, old),
                        after: output_json(entity, k, v),
                    });
                }
            }
        }
        let old_custom = row
            .get("custom")
            .as_json()
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let mut new_custom = old_custom.clone();
        for (k, v) in custom {
            let was = old_custom.get(k).cloned().unwrap_or(Json::Null);
            if !same_custom(&was, v) {
                changes.push(FieldChange {
                    field: format!("custom.{k}"),
                    before: was,
                    after: v.clone(),
                });
                new_custom.insert(k.clone(), v.clone());
            }
        }
        if new_custom != old_custom {
            values.push(("custom", Value::Json(Json::Object(new_custom))));
            before.push(("custom".into(), row.get("custom").clone()));
        }
        if changes.is_empty() {
            return false;
        }
        let now = crm.now();
        values.push(("updated_at", Value::Timestamp(now)));
        let version = row.version();
        cs.ops.push(Op::Update {
            table: entity.table(),
            id: row.id(),
            expected_version: version,
            values,
        });
        let company = self.actor.company_id.0;
        cs.events.push(crm.event(
            company,
            entity.table(),
            row.id(),
            format!("{entity}.updated"),
            json!({ "version": version + 1, "import_id": self.import_id, "changes": &changes }),
        ));
        changes.push(FieldChange {
            field: "import".into(),
            before: Json::Null,
            after: Json::String(self.import_id.to_string()),
        });
        cs.audit.push(crm.audit(
            Some(&self.actor),
            company,
            entity.table(),
            row.id(),
            "update",
            changes,
        ));
        items.updated.push(UpdatedItem {
            table: entity.table(),
            id: row.id(),
            version: version + 1,
            before,
            row: number,
        });
        true
    }

    /// Why no contact may be added to the stored customer `crow` by the
    /// actor, in English and Chinese: it has an owner and is only shared
    /// with them (as `create_record` refuses it), or `None`.
    fn only_shared(&self, crow: &Row) -> Option<(String, String)> {
        if crow.get("owner_id").as_id().is_none()
            || self.actor.covers(Entity::Customer, Action::Read, crow)
        {
            return None;
        }
        let code = crow.get("code").as_text().unwrap_or_default();
        Some((
            format!(
                "{} may not add contacts to customer {code}: it is only shared with them, and \
                 its contacts are its owner's; ask the owner to add the contact",
                self.actor.display_name
            ),
            format!("客户 {code} 仅共享给你，其联系人归负责人所有，不能添加联系人；请让负责人添加"),
        ))
    }

    // -- users ---------------------------------------------------------------

    /// Whether giving `user` the roles `roles` takes the last active
    /// administrator's administrator role away (as `update_user` refuses
    /// it), counting the roles earlier rows of this import gave users.
    async fn leaves_no_admin(&mut self, user: &User, roles: &[RoleId]) -> Result<bool> {
        let admin = match &self.admin_roles {
            Some(a) => a,
            None => {
                let ids = self
                    .crm
                    .list_roles(&self.actor)
                    .await?
                    .into_iter()
                    .filter(|r| r.is_admin)
                    .map(|r| r.id)
                    .collect();
                self.admin_roles.insert(ids)
            }
        };
        let holds = |ids: &[RoleId]| ids.iter().any(|r| admin.contains(r));
        let changes = &self.role_changes;
        let is_admin = |u: &User| match changes.get(&u.id.0) {
            Some(r) => holds(r),
            None => holds(&u.role_ids),
        };
        if !user.active || !is_admin(user) || holds(roles) {
            return Ok(false);
        }
        Ok(!self
            .users
            .values()
            .any(|o| o.active && o.id != user.id && is_admin(o)))
    }

    /// Makes a user a row of this import creates nameable by the rows
    /// after it (as their superior), as `begin_import` keys the stored
    /// users: by id, username (letter case aside too), `name (username)`,
    /// and display name unless another user has it (then that name names
    /// no one, as two stored users sharing it). Its superior counts in the
    /// cycle checks of later rows.
    fn name_created_user(&mut self, u: crate::org::User) {
        self.superiors.insert(u.id.0, u.superior_id.map(|s| s.0));
        let lookups = Arc::make_mut(&mut self.v.lookups);
        let Some(users) = lookups.users.as_mut() else {
            return;
        };
        let display = u.display_name.clone();
        match users.get(&display) {
            None if !lookups.shared_user_names.contains(&display) => {
                users.insert(display, u.clone());
            }
            // Another user's display name (not a username or an id).
            Some(other) if other.display_name == display && other.username != display => {
                users.remove(&display);
                lookups.shared_user_names.insert(display);
            }
            _ => {}
        }
        users
            .entry(crate::org::user_label(&u.display_name, &u.username))
            .or_insert_with(|| u.clone());
        users.insert(u.id.to_string(), u.clone());
        users.insert(folded_username_key(&u.username), u.clone());
        users.insert(u.username.clone(), u);
    }

    async fn user_batch(
        &mut self,
        rows: &[SheetRow],
        issues: &mut Vec<RowIssue>,
    ) -> Result<(ChangeSet, BatchItems)> {
        let crm = self.crm;
        let company = self.actor.company_id.0;
        let mut cs = ChangeSet::default();
        let mut items = BatchItems::default();
        // The roles and departments the batch gives users: each must still
        // be live when it commits.
        let mut referred: BTreeSet<(bool, Uuid)> = BTreeSet::new();
        // The usernames the batch creates: none may be taken meanwhile,
        // in any letter case.
        let mut created: Vec<String> = Vec::new();
        for row in rows {
            if row.cells.iter().all(Cell::is_empty) {
                continue;
            }
            let replay = self.is_replay(row.number);
            if replay {
                self.replayed_rows += 1;
            } else {
                self.counts.rows += 1;
            }
            let mut problems = Vec::new();
            let (fields, ..) = self.v.row_fields(row, &mut problems);
            let text = |k: &str| fields.get(k).and_then(json_text);
            let mut errors = ValidationErrors::default();
            for def in USER_FIELDS {
                let v = text(def.name);
                match (v, def.kind) {
                    (None, _) if def.required => errors.push(field_label(def), "is required"),
                    (Some(v), FieldKind::Text(max)) if v.chars().count() > max => {
                        errors.push(field_label(def), format!("is longer than {max} characters"))
                    }
                    _ => {}
                }
            }
            let email = text("email").and_then(|e| {
                crate::validate::email(&e)
                    .map_err(|m| errors.push(field_label(&USER_FIELDS[5]), m))
                    .ok()
            });
            let mobile = text("mobile").and_then(|m| {
                crate::validate::mobile(&m)
                    .map_err(|msg| errors.push(field_label(&USER_FIELDS[6]), msg))
                    .ok()
            });
            let department = text("department_id").and_then(|d| {
                match self
                    .departments
                    .get(&d)
                    .or_else(|| self.departments.get(&folded_name_key(&d)))
                {
                    Some(Some(id)) => Some(*id),
                    Some(None) => {
                        errors.push(
                            field_label(&USER_FIELDS[2]),
                            format!(
                                "several departments are named {d}; give the department's id \
                             (部门名称重复，请填写部门ID)"
                            ),
                        );
                        None
                    }
                    None => {
                        errors.push(
                            field_label(&USER_FIELDS[2]),
                            format!("department {d} not found"),
                        );
                        None
                    }
                }
            });
            // The user the row names, letter case aside (see `usernames`).
            let existing = text("username")
                .and_then(|n| self.usernames.get(&n.to_lowercase()))
                .and_then(|id| self.users.get(id))
                .cloned();
            let superior = text("superior_id").and_then(|s| {
                match self.v.lookups.user(&s) {
                    // As `update_user`: a superior kept as it is stays,
                    // deactivated since or not; a new one must be active.
                    Some(u)
                        if !u.active
                            && existing.as_ref().and_then(|e| e.superior_id) != Some(u.id) =>
                    {
                        errors.push(
                            field_label(&USER_FIELDS[3]),
                            format!(
                                "{} is deactivated (已停用); a deactivated user cannot be a superior",
                                crate::org::user_label(&u.display_name, &u.username)
                            ),
                        );
                        None
                    }
                    Some(u) => Some(u.id.0),
                    // A new user's row naming the user itself (who is not
                    // there yet to be found): refused as `update_user`
                    // refuses it.
                    None if text("username").is_some_and(|n| {
                        crate::org::fold_name(&n) == crate::org::fold_name(&s)
                    }) =>
                    {
                        errors.push(field_label(&USER_FIELDS[3]), OWN_SUPERIOR);
                        None
                    }
                    None => {
                        errors.push(field_label(&USER_FIELDS[3]), self.v.lookups.missing_user(&s));
                        None
                    }
                }
            });
            let mut roles = Vec::new();
            if let Some(r) = text("role_ids") {
                for name in r
                    .split([',', '，', ';', '；', '、'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    match self
                        .roles
                        .get(name)
                        .or_else(|| self.roles.get(&folded_name_key(name)))
                    {
                        Some(Some(id)) => roles.push(*id),
                        Some(None) => errors.push(
                            field_label(&USER_FIELDS[4]),
                            format!(
                                "several roles are named {name}; give the role's id \
                                 (角色名称重复，请填写角色ID)"
                            ),
                        ),
                        None => errors.push(
                            field_label(&USER_FIELDS[4]),
                            format!("role {name} not found"),
                        ),
                    }
                }
            }
            // A new user's login name holds no space, as `create_user`'s.
            if existing.is_none()
                && let Some(problem) = text("username")
                    .as_deref()
                    .and_then(crate::org::login_name_problem)
            {
                errors.push(field_label(&USER_FIELDS[0]), problem);
            }
            problems.extend(self.v.messages(Entity::User, &fields, &errors, None));
            if !problems.is_empty() {
                let (en, zh) = join_problems(&problems);
                self.reject(issues, row.number, IssueKind::Invalid, en, zh);
                continue;
            }
            let username = text("username").unwrap_or_default();
            let display = text("display_name").unwrap_or_default();
            // Letter case aside, as against the store: a person types
            // both the same.
            if self.repeated_in_file(
                issues,
                row.number,
                ("username", &username.to_lowercase()),
                &format!("username {username}"),
                &format!("用户名 {username}"),
            ) {
                continue;
            }
            // A failed import still reports the usernames already taken.
            if replay {
                continue;
            }
            // By username only (found above): another user's display name
            // or id that reads like this username is not this user.
            if let Some(u) = existing {
                let (also, also_zh) = if u.username == username {
                    (String::new(), String::new())
                } else {
                    (
                        format!(" (as {})", u.username),
                        format!("（为 {}，仅大小写不同）", u.username),
                    )
                };
                let en = format!("username {username} is already taken{also}");
                let zh = format!("用户名 {username} 已存在{also_zh}");
                if self.opts.policy != DuplicatePolicy::Update {
                    self.duplicate(issues, row.number, IssueKind::Duplicate, en, zh);
                    continue;
                }
                // No cycle of superiors, counting what earlier rows set.
                if let Some(s) = superior
                    && Some(s) != u.superior_id.map(|x| x.0)
                    && let Some(why) = self.superior_cycle(u.id.0, s)
                {
                    self.reject(
                        issues,
                        row.number,
                        IssueKind::Invalid,
                        format!("Superior: {why}; superiors cannot form a cycle"),
                        format!("上级：{why}；上下级不能形成循环"),
                    );
                    continue;
                }
                // As through the API: no user beyond the importer's rights.
                let after = UserState {
                    id: Some(u.id),
                    department_id: department.map(DepartmentId).or(u.department_id),
                    superior_id: superior.map(UserId).or(u.superior_id),
                    role_ids: if text("role_ids").is_some() {
                        &roles
                    } else {
                        &u.role_ids
                    },
                };
                match crm.check_user_change(&self.actor, Some(&u), after).await {
                    Ok(()) => {}
                    Err(Error::Forbidden(m)) => {
                        let zh = crate::forbidden_zh::forbidden_zh(&m);
                        self.reject(issues, row.number, IssueKind::Forbidden, m, zh);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                // As `update_user`: the last active administrator keeps
                // an administrator role.
                if text("role_ids").is_some() && self.leaves_no_admin(&u, &roles).await? {
                    self.reject(
                        issues,
                        row.number,
                        IssueKind::Invalid,
                        format!(
                            "Roles: changing user '{}' would leave the company without an active \
                             administrator; make another user an administrator first",
                            u.username
                        ),
                        format!(
                            "角色：修改用户 {} 后公司将没有启用的管理员，请先让其他用户成为管理员",
                            u.username
                        ),
                    );
                    continue;
                }
                let Some(urow) = crm.store.get(Table::Users, u.id.0).await? else {
                    continue;
                };
                let mut values: Vec<(&'static str, Value)> = Vec::new();
                let mut put = |col: &'static str, v: Value| {
                    if urow.get(col) != &v {
                        values.push((col, v));
                    }
                };
                put("display_name", display.clone().into());
                put("pinyin_keys", crate::pinyin::search_keys(&display).into());
                if let Some(d) = department {
                    put("department_id", Value::Id(d));
                }
                if let Some(s) = superior {
                    put("superior_id", Value::Id(s));
                }
                if text("role_ids").is_some() {
                    put(
                        "role_ids",
                        Value::Json(Json::Array(
                            roles
                                .iter()
                                .map(|r| Json::String(r.0.to_string()))
                                .collect(),
                        )),
                    );
                }
                if let Some(e) = email.clone() {
                    put("email", e.into());
                }
                if let Some(m) = mobile.clone() {
                    put("mobile", m.into());
                }
                if values.is_empty() {
                    self.counts.unchanged += 1;
                    continue;
                }
                let before: Vec<(String, Value)> = values
                    .iter()
                    .map(|(c, _)| (c.to_string(), urow.get(c).clone()))
                    .collect();
                let changes: Vec<FieldChange> = values
                    .iter()
                    .filter(|(c, _)| *c != "pinyin_keys")
                    .map(|(c, v)| FieldChange {
                        field: c.to_string(),
                        before: urow.get(c).to_json(),
                        after: v.to_json(),
                    })
                    .collect();
                if values.iter().any(|(c, _)| *c == "role_ids") {
                    referred.extend(roles.iter().map(|r| (true, r.0)));
                }
                if values.iter().any(|(c, _)| *c == "department_id") {
                    referred.extend(department.map(|d| (false, d)));
                }
                let moves = values.iter().any(|(c, _)| *c == "department_id");
                if values.iter().any(|(c, _)| *c == "role_ids") {
                    self.roles_written = true;
                }
                values.push(("updated_at", Value::Timestamp(crm.now())));
                cs.ops.push(Op::Update {
                    table: Table::Users,
                    id: u.id.0,
                    expected_version: urow.version(),
                    values,
                });
                // As `update_user`: the records the user owns go with them
                // into their new department (the undo brings them back).
                if moves {
                    crm.restamp_departments(
                        &self.actor,
                        u.id,
                        department.map(DepartmentId),
                        &mut cs,
                    )
                    .await?;
                }
                if let Some(s) = superior {
                    self.superiors.insert(u.id.0, Some(s));
                }
                if text("role_ids").is_some() {
                    self.role_changes.insert(u.id.0, roles.clone());
                }
                // As `update_user` announces a change, and the undo too.
                cs.events.push(crm.event(
                    company,
                    Table::Users,
                    u.id.0,
                    "user.updated".into(),
                    json!({
                        "username": u.username,
                        "display_name": display,
                        "version": urow.version() + 1,
                        "import_id": self.import_id,
                        "changes": &changes,
                    }),
                ));
                cs.audit.push(crm.audit(
                    Some(&self.actor),
                    company,
                    Table::Users,
                    u.id.0,
                    "update",
                    changes,
                ));
                items.updated.push(UpdatedItem {
                    table: Table::Users,
                    id: u.id.0,
                    version: urow.version() + 1,
                    before,
                    row: row.number,
                });
                self.counts.updated += 1;
                continue;
            }
            if self.failed {
                continue;
            }
            // A new user without a department joins the importer's, as
            // `user add` without `--dept` does: a user of no department,
            // and the customers they own, would drop out of every
            // department-scoped view.
            let department = department.or(self.actor.department_id.map(|d| d.0));
            let after = UserState {
                id: None,
                department_id: department.map(DepartmentId),
                superior_id: superior.map(UserId),
                role_ids: &roles,
            };
            match crm.check_user_change(&self.actor, None, after).await {
                Ok(()) => {}
                Err(Error::Forbidden(m)) => {
                    let zh = crate::forbidden_zh::forbidden_zh(&m);
                    self.reject(issues, row.number, IssueKind::Forbidden, m, zh);
                    continue;
                }
                Err(e) => return Err(e),
            }
            referred.extend(roles.iter().map(|r| (true, r.0)));
            referred.extend(department.map(|d| (false, d)));
            let id = crm.new_id();
            let now = crm.now();
            let mut values = vec![
                ("id", Value::Id(id)),
                ("company_id", Value::Id(company)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
            ];
            values.extend(crm.user_values(
                &username, &display, department, superior, &roles, email, mobile,
            ));
            values.push(("active", true.into()));
            values.push(("password_hash", Value::Null));
            values.push(("failed_logins", Value::Int(0)));
            values.push(("locked_until", Value::Null));
            cs.ops.push(Op::Insert {
                table: Table::Users,
                values,
            });
            cs.audit.push(crm.audit(
                Some(&self.actor),
                company,
                Table::Users,
                id,
                "create",
                vec![
                    FieldChange {
                        field: "username".into(),
                        before: Json::Null,
                        after: username.clone().into(),
                    },
                    FieldChange {
                        field: "import".into(),
                        before: Json::Null,
                        after: Json::String(self.import_id.to_string()),
                    },
                ],
            ));
            cs.events.push(crm.event(
                company,
                Table::Users,
                id,
                "user.created".into(),
                json!({
                    "username": username,
                    "display_name": display,
                    "version": 1,
                    "department_id": department,
                    "superior_id": superior,
                    "role_ids": &roles,
                    "roles": roles
                        .iter()
                        .map(|r| self.role_name(*r))
                        .collect::<Vec<_>>(),
                    "import_id": self.import_id,
                }),
            ));
            items.created.push((Table::Users, id));
            self.name_created_user(crate::org::User {
                id: UserId(id),
                company_id: self.actor.company_id,
                username: username.clone(),
                display_name: display.clone(),
                department_id: department.map(DepartmentId),
                superior_id: superior.map(UserId),
                role_ids: roles.clone(),
                email: None,
                mobile: None,
                active: true,
                has_password: false,
                locked_until: None,
                version: 1,
            });
            created.push(username);
            self.counts.created += 1;
        }
        if self.failed {
            return Ok((ChangeSet::default(), BatchItems::default()));
        }
        if !created.is_empty() {
            let names: Vec<&str> = created.iter().map(String::as_str).collect();
            cs.guards.push(crm.usernames_free_guard(company, &names));
        }
        for (is_role, id) in referred {
            cs.guards.push(if is_role {
                // The file names roles by name (or id); say the name.
                let name = self.role_name(RoleId(id));
                crm.role_live_guard(company, RoleId(id), &name)
            } else {
                crm.department_live_guard(&self.actor, DepartmentId(id))
            });
        }
        Ok((cs, items))
    }
}

// -- products ------------------------------------------------------------

/// The duplicate keys of a stored product: its code, and its name with its
/// specification.
fn product_keys(r: &Row) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Codes are unique letter case (and full-width letters) aside.
    if let Some(c) = r.get("code").as_text() {
        out.push(("code".to_string(), crate::org::fold_name(c)));
    }
    if let Some(n) = r.get("name").as_text() {
        out.push((
            "name_spec".to_string(),
            name_spec_key(n, r.get("spec").as_text().unwrap_or_default()),
        ));
    }
    out
}

/// Name and specification as one key: case and spaces do not count.
fn name_spec_key(name: &str, spec: &str) -> String {
    let norm = |s: &str| -> String {
        s.chars()
            .map(crate::validate::halfwidth)
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    format!("{}\u{1}{}", norm(name), norm(spec))
}

/// A tax rate as typed: `13%`, `13`, `0.13` (a fraction, as a cell
/// formatted as a percentage holds it), in basis points. A bare number
/// below 1 is a fraction, from 1 up a percentage: of the rates a product
/// may carry (13 %, 9 %, 6 %, 5 %, 3 %, 1 %, 0 %) none reads as another under either
/// reading, so an ambiguous value is refused by the rate check rather
/// than taken as a different valid rate.
fn parse_tax_rate(text: &str) -> Option<i64> {
    let t: String = text
        .chars()
        .map(crate::validate::halfwidth)
        .filter(|c| !c.is_whitespace())
        .collect();
    let (num, percent) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t.as_str(), false),
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let percent_value = if percent || v >= 1.0 { v } else { v * 100.0 };
    let bp = (percent_value * 100.0).round();
    ((bp - percent_value * 100.0).abs() < 1e-6 && bp <= 10_000.0).then_some(bp as i64)
}

impl Crm {
    /// Product categories by id, code, `parent/child` path, and name when
    /// no other category has the same name.
    async fn category_keys(&self, actor: &Actor) -> Result<HashMap<String, Uuid>> {
        let cats = self.list_product_categories(actor).await?;
        let by_id: HashMap<Uuid, &crate::sales::product::Category> =
            cats.iter().map(|c| (c.id, c)).collect();
        let mut names: HashMap<&str, usize> = HashMap::new();
        for c in &cats {
            *names.entry(c.name.as_str()).or_default() += 1;
        }
        let mut out = HashMap::new();
        for c in &cats {
            out.insert(c.id.to_string(), c.id);
            out.insert(c.code.clone(), c.id);
            if let Some(parent) = c.parent_id.and_then(|p| by_id.get(&p)) {
                out.insert(format!("{}/{}", parent.name, c.name), c.id);
            }
            if names.get(c.name.as_str()) == Some(&1) {
                out.entry(c.name.clone()).or_insert(c.id);
            }
        }
        // A bare name names the top-level category when one has it (a
        // sub-category is reachable as `parent/child`), which is also how
        // exports write top-level categories.
        for c in cats.iter().filter(|c| c.parent_id.is_none()) {
            out.insert(c.name.clone(), c.id);
        }
        Ok(out)
    }
}

impl ImportSession<'_> {
    async fn product_batch(
        &mut self,
        rows: &[SheetRow],
        issues: &mut Vec<RowIssue>,
    ) -> Result<(ChangeSet, BatchItems)> {
        use crate::sales::product::{ProductInput, ProductStatus};
        let crm = self.crm;
        let mut cs = ChangeSet::default();
        let mut items = BatchItems::default();
        let mut creates: Vec<ProductInput> = Vec::new();
        for row in rows {
            if row.cells.iter().all(Cell::is_empty) {
                continue;
            }
            let replay = self.is_replay(row.number);
            if replay {
                self.replayed_rows += 1;
            } else {
                self.counts.rows += 1;
            }
            let mut problems = Vec::new();
            let (fields, _, masked, _) = self.v.row_fields(row, &mut problems);
            let version = self.v.row_version(row).unwrap_or_else(|p| {
                problems.push(p);
                None
            });
            let text = |k: &str| {
                fields
                    .get(k)
                    .and_then(json_text)
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            };
            let mut errors = ValidationErrors::default();
            let label = |name: &str| {
                find_field(Entity::Product, name)
                    .map(field_label)
                    .unwrap_or_else(|| name.to_string())
            };
            for def in PRODUCT_FIELDS {
                if let (Some(v), FieldKind::Text(max)) = (text(def.name), def.kind)
                    && v.chars().count() > max
                {
                    errors.push(field_label(def), format!("is longer than {max} characters"));
                }
            }
            // Amounts that do not parse, with why, in both languages.
            let mut bad_money: Vec<(&'static str, String, String)> = Vec::new();
            let mut money = |name: &'static str| {
                text(name).and_then(|t| match crate::money::Money::parse(&t) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        let (en, zh) = find_field(Entity::Product, name)
                            .map_or((name, name), |d| (d.en, d.zh));
                        bad_money.push((
                            name,
                            format!("{en}: '{t}' is not an amount: {e}"),
                            format!("{zh}：「{t}」不是金额：{}", e.message_zh()),
                        ));
                        None
                    }
                })
            };
            let list_price = money("list_price");
            let cost = money("cost");
            let tax_rate = text("tax_rate").and_then(|t| match parse_tax_rate(&t) {
                Some(r) => Some(r),
                None => {
                    errors.push(label("tax_rate"), format!("'{t}' is not a tax rate"));
                    None
                }
            });
            let status = text("status").and_then(|t| match ProductStatus::parse(&t) {
                Some(s) => Some(s),
                None => {
                    errors.push(label("status"), format!("'{t}' is not one of: 在售, 停售"));
                    None
                }
            });
            let category_id = text("category_id").and_then(|c| {
                let key = c.replace(['／', '>', '＞'], "/");
                let key = key.split('/').map(str::trim).collect::<Vec<_>>().join("/");
                match self.categories.get(&key) {
                    Some(id) => Some(*id),
                    None => {
                        errors.push(label("category_id"), format!("category {c} not found"));
                        None
                    }
                }
            });
            let input = ProductInput {
                code: text("code"),
                name: text("name"),
                category_id,
                unit: text("unit"),
                list_price,
                cost,
                tax_rate,
                spec: text("spec"),
                description: text("description"),
                status,
            };
            let mut input = input.without_nul();
            // The duplicate key: the code when given, else name and spec.
            let key = match &input.code {
                Some(c) => ("code".to_string(), crate::org::fold_name(c)),
                None => (
                    "name_spec".to_string(),
                    name_spec_key(
                        input.name.as_deref().unwrap_or_default(),
                        input.spec.as_deref().unwrap_or_default(),
                    ),
                ),
            };
            let existing = self.products.get(&key).cloned();
            // A code the file spells in another letter case names the
            // product as stored: it is not recoded.
            if let (Some(r), Some(c)) = (&existing, &mut input.code)
                && key.0 == "code"
                && let Some(stored) = r.get("code").as_text()
            {
                *c = stored.to_string();
            }
            // A product in the recycle bin keeps its code: the row does not
            // make another product with it.
            if existing.is_none()
                && let Some(name) = input
                    .code
                    .as_ref()
                    .and_then(|c| self.binned_products.get(&crate::org::fold_name(c)))
            {
                let c = input.code.as_deref().unwrap_or_default();
                problems.push((
                    format!(
                        "Code: product code {c} is held by {name} in the recycle bin; restore \
                         that product, or give this row another code"
                    ),
                    format!(
                        "产品编号：{c} 属于回收站中的产品「{name}」，请先恢复该产品，或换一个编号"
                    ),
                ));
            }
            let creating = existing.is_none() || self.opts.policy != DuplicatePolicy::Update;
            errors.0.extend(Crm::product_errors(&input, creating).0);
            // A filled amount that does not parse is not also missing.
            errors.0.retain(|e| {
                let field = e.field.split_once(' ').map_or(e.field.as_str(), |(f, _)| f);
                e.message != "is required" || !bad_money.iter().any(|(n, ..)| *n == field)
            });
            problems.extend(bad_money.into_iter().map(|(_, en, zh)| (en, zh)));
            problems.extend(self.v.messages(Entity::Product, &fields, &errors, None));
            if !problems.is_empty() {
                let (en, zh) = join_problems(&problems);
                self.reject(issues, row.number, IssueKind::Invalid, en, zh);
                continue;
            }
            let what_en = match &input.code {
                Some(c) => format!("product code {c}"),
                None => format!(
                    "product {}{}",
                    input.name.as_deref().unwrap_or_default(),
                    input
                        .spec
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            };
            let what_zh = match &input.code {
                Some(c) => format!("产品编号 {c}"),
                None => format!(
                    "产品 {}{}",
                    input.name.as_deref().unwrap_or_default(),
                    input
                        .spec
                        .as_deref()
                        .map(|s| format!("（{s}）"))
                        .unwrap_or_default()
                ),
            };
            if self.repeated_in_file(issues, row.number, (&key.0, &key.1), &what_en, &what_zh) {
                continue;
            }
            // A coded row's name and spec too, so that a later row without a
            // code naming the same product is a repeat (coded rows are told
            // apart by their codes only: two SKUs may share a name).
            if let (Some(_), Some(name)) = (&input.code, &input.name) {
                let ns = name_spec_key(name, input.spec.as_deref().unwrap_or_default());
                self.seen
                    .entry(seen_key("name_spec", &ns))
                    .or_insert(row.number);
            }
            // A failed import still reports the products already in the
            // catalogue (what it would create is dropped: see below).
            if replay {
                continue;
            }
            let Some(prow) = existing else {
                if !self.actor.can(Entity::Product, Action::Create) {
                    self.reject(
                        issues,
                        row.number,
                        IssueKind::Forbidden,
                        format!(
                            "{what_en} is not in the catalogue; {} may not create products",
                            self.actor.display_name
                        ),
                        format!("{what_zh} 不在产品目录中；你无权新建产品"),
                    );
                    continue;
                }
                // A cost the actor sees masked is not theirs to give a new
                // product.
                if let Some(&(i, _)) = masked.first() {
                    let (we, wz) = self.kept_words(i);
                    self.reject(
                        issues,
                        row.number,
                        IssueKind::Forbidden,
                        format!(
                            "{what_en}: Cost (column {}): the field is {we} {}, so an import \
                             cannot set it; leave it empty for a new product",
                            column_name(i),
                            self.actor.display_name
                        ),
                        format!(
                            "{what_zh}：成本（{} 列）：该字段{wz}，导入不能填写；新建产品时请留空",
                            column_name(i)
                        ),
                    );
                    continue;
                }
                creates.push(input);
                continue;
            };
            if let Some((first_en, first_zh)) = self.updated_by(prow.id()) {
                self.reject(
                    issues,
                    row.number,
                    IssueKind::DuplicateInFile,
                    format!("{what_en}: {first_en} already updates this product"),
                    format!("{what_zh}：{first_zh}已更新该产品"),
                );
                continue;
            }
            let code = prow.get("code").as_text().unwrap_or_default().to_string();
            let en = format!("{what_en} already exists ({code})");
            let zh = format!("{what_zh} 已存在（{code}）");
            if self.opts.policy != DuplicatePolicy::Update {
                self.duplicate(issues, row.number, IssueKind::Duplicate, en, zh);
                continue;
            }
            if !self.actor.can(Entity::Product, Action::Update) {
                self.reject(
                    issues,
                    row.number,
                    IssueKind::Forbidden,
                    format!("{en}; {} may not update products", self.actor.display_name),
                    format!("{zh}；你无权更新产品"),
                );
                continue;
            }
            // A masked cost as the actor was shown it (`***`, as an export
            // shows it) is no change; another value would change what they
            // may not.
            if let Some((i, text)) = masked.first() {
                const SHOWN: &str = "***";
                if text != SHOWN {
                    let (me, mz) = self.masked_changed(*i, text, Some(SHOWN));
                    self.reject(
                        issues,
                        row.number,
                        IssueKind::Forbidden,
                        format!("{en}; {me}"),
                        format!("{zh}；{mz}"),
                    );
                    continue;
                }
            }
            let (values, changes) = crate::sales::product::product_changes(&prow, &input);
            if changes.is_empty() {
                self.counts.unchanged += 1;
                continue;
            }
            // A row exported before the product's latest change (a price
            // a colleague set since) would undo it.
            if let Some(v) = version.filter(|v| *v != prow.version()) {
                let (en, zh) = stale_row(&code, v, prow.version());
                self.reject(issues, row.number, IssueKind::Invalid, en, zh);
                continue;
            }
            // The search keys follow the name, and only when it changes.
            let renamed = changes.iter().any(|c| c.field == "name");
            let mut values: Vec<(&'static str, Value)> = values
                .into_iter()
                .filter(|(k, v)| {
                    if *k == "pinyin_keys" {
                        renamed
                    } else {
                        prow.get(k) != v
                    }
                })
                .collect();
            self.touched.insert(prow.id(), row.number);
            let before: Vec<(String, Value)> = values
                .iter()
                .map(|(c, _)| (c.to_string(), prow.get(c).clone()))
                .collect();
            values.push(("updated_at", Value::Timestamp(crm.now())));
            cs.ops.push(Op::Update {
                table: Table::Products,
                id: prow.id(),
                expected_version: prow.version(),
                values,
            });
            cs.events.push(crm.event(
                self.actor.company_id.0,
                Table::Products,
                prow.id(),
                "product.updated".into(),
                json!({
                    "version": prow.version() + 1,
                    "import_id": self.import_id,
                    "changes": &changes,
                }),
            ));
            cs.audit.push(crm.audit(
                Some(&self.actor),
                self.actor.company_id.0,
                Table::Products,
                prow.id(),
                "update",
                changes,
            ));
            items.updated.push(UpdatedItem {
                table: Table::Products,
                id: prow.id(),
                version: prow.version() + 1,
                before,
                row: row.number,
            });
            self.counts.updated += 1;
        }
        if self.failed {
            return Ok((ChangeSet::default(), BatchItems::default()));
        }
        let auto = creates.iter().filter(|p| p.code.is_none()).count();
        let mut codes = if self.opts.dry_run {
            Vec::new()
        } else {
            crm.next_codes(&self.actor, "CP", auto).await?
        };
        codes.reverse();
        let mut given = Vec::with_capacity(creates.len());
        for input in creates {
            let id = crm.new_id();
            let code = input
                .code
                .clone()
                .or_else(|| codes.pop())
                .unwrap_or_default();
            given.push(code.clone());
            let (op, mut audit) = crm.product_insert(&self.actor, id, code.clone(), &input);
            audit.changes.push(FieldChange {
                field: "import".into(),
                before: Json::Null,
                after: Json::String(self.import_id.to_string()),
            });
            let mut payload = crate::sales::product::product_created_payload(&op);
            payload["import_id"] = json!(self.import_id);
            cs.ops.push(op);
            cs.audit.push(audit);
            cs.events.push(crm.event(
                self.actor.company_id.0,
                Table::Products,
                id,
                "product.created".into(),
                payload,
            ));
            items.created.push((Table::Products, id));
            self.counts.created += 1;
        }
        let span = (
            rows.first().map_or(0, |r| r.number),
            rows.last().map_or(0, |r| r.number),
        );
        cs.guards.extend(self.product_code_guards(&given, span));
        Ok((cs, items))
    }

    /// Guards of the codes a batch gives its new products, as a single
    /// create guards its code (the same lock keys, [`IN_CHUNK`] codes a
    /// guard): a product another user creates, recodes or restores with
    /// one of them meanwhile fails the batch by name instead of by the
    /// stores' unique index. `rows` (first and last) are for the message.
    fn product_code_guards(&self, codes: &[String], rows: (u32, u32)) -> Vec<Guard> {
        let company = self.actor.company_id.0;
        codes
            .chunks(IN_CHUNK)
            .map(|chunk| {
                let mut select = Select::all(Table::Products, company, self.crm.now());
                // As a single create guards a code: any spelling of it,
                // under its key.
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|c| crate::sales::product::code_key(c))
                    .collect();
                select.filter = crate::sales::product::codes_keyed(keys.clone());
                Guard {
                    kind: crate::store::GuardKind::Duplicate,
                    keys: keys
                        .iter()
                        .map(|k| crate::sales::product::code_lock(company, k))
                        .collect(),
                    select,
                    message: format!(
                        "while this import ran, another user saved a product with the product code (产品编号) of a product of rows {}–{}; import the file again: that row then meets the product like any duplicate",
                        rows.0, rows.1
                    ),
                }
            })
            .collect()
    }
}

/// Characters a row's message keeps: messages quote the values they
/// refuse, and a report keeps every rejected row's message, so a sheet of
/// long values must not make the report hold them all again.
pub const MESSAGE_MAX_CHARS: usize = 1_000;

/// An earlier run's duplicate issue told to rights that have changed since:
/// what it said of the record found (name, code, owner) is left out.
fn withhold_details(i: &mut RowIssue) {
    let (en, zh) = (
        "duplicates an existing record (not described again: your access has changed since \
         this row was checked; import the row again to see it)",
        "与已有记录重复（此行检查后您的权限已变更，不再显示详情；重新导入该行可查看）",
    );
    (i.message_en, i.message_zh) = match i.outcome {
        RowOutcome::Skipped => (format!("skipped: {en}"), format!("已跳过：{zh}")),
        RowOutcome::Rejected => (en.to_string(), zh.to_string()),
        RowOutcome::Warned => (
            format!("imported; it may duplicate an existing record: {en}"),
            format!("已导入，疑似重复：{zh}"),
        ),
    };
}

/// `message` cut to [`MESSAGE_MAX_CHARS`] characters, marked with "…".
fn cut_message(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MESSAGE_MAX_CHARS) {
        message.truncate(at);
        message.push('…');
    }
    message
}

/// A duplicate key as 128 bits: an import of 100 000 rows remembers some
/// 400 000 keys, which as pairs of strings would be most of its memory. Two
/// SipHash digests with different prefixes; a false match needs both 64-bit
/// halves to collide (about one in 10^29 for that many keys).
fn seen_key(kind: &str, text: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        kind.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

pub(crate) fn row_label_name(r: &Row) -> String {
    r.get("name")
        .as_text()
        .map(str::to_string)
        .unwrap_or_else(|| r.id().to_string())
}

/// An exported value as the text its cell reads back as (see
/// [`Cell::to_text`]).
fn export_text(v: &ExportValue) -> Option<String> {
    match v {
        ExportValue::Empty => None,
        ExportValue::Text(s) => Cell::Text(s.clone()).to_text(),
        ExportValue::Number(n) => Some(number_text(*n)),
        ExportValue::Money(m) => Some(number_text(*m as f64 / 100.0)),
        ExportValue::Date(d) => Some(ymd(*d)),
        ExportValue::DateTime(t) => Cell::DateTime(*t).to_text(),
        ExportValue::Bool(b) => Cell::Bool(*b).to_text(),
    }
}

/// The key under which [`Lookups::users`] holds a user by its username
/// with letter case (and full-width forms) folded: usernames are unique
/// letter case aside, so an import matches them so (display names only as
/// written). The prefix keeps these keys apart from display names.
pub(crate) fn folded_username_key(username: &str) -> String {
    format!("\u{0}username:{}", crate::org::fold_name(username))
}

impl Lookups {
    /// The user `key` names among the resolved users: its username letter
    /// case aside, else its id, exact username or display name (as
    /// `begin_import` keys them). `None` when none does or the users were
    /// not resolved.
    pub(crate) fn user(&self, key: &str) -> Option<&crate::org::User> {
        let users = self.users.as_ref()?;
        users
            .get(&folded_username_key(key))
            .or_else(|| users.get(key.trim()))
    }
}

/// Which of a customer's contacts a contact group of its row names.
enum ContactMatch<'r> {
    /// None: the group adds a contact.
    New,
    /// This one: the group updates it.
    One(&'r Row),
    /// Several (by name): the row cannot tell which.
    Many(usize),
}

/// The contact of a customer (`stored`: its contacts, archived ones too)
/// that a contact group names, as a contact import matches contacts: by
/// the group's code column (联系人1编号) when it names one of them, else
/// by mobile, else — a group without a mobile — by name within the
/// customer (live contacts before archived ones).
fn match_contact<'r>(k: &ContactDraft, stored: &'r [Row]) -> ContactMatch<'r> {
    if let Some(code) = k.code.as_deref()
        && let Some(r) = stored
            .iter()
            .find(|r| r.get("code").as_text() == Some(code))
    {
        return ContactMatch::One(r);
    }
    if let Some(m) = k.set.get("mobile_key").and_then(Value::as_text) {
        return stored
            .iter()
            .find(|r| r.get("mobile_key").as_text() == Some(m))
            .map_or(ContactMatch::New, ContactMatch::One);
    }
    // By name the live contacts first: an archived namesake is named only
    // when no live contact has the name.
    let name = k
        .set
        .get("name")
        .and_then(Value::as_text)
        .map(contact_name_fold);
    for archived in [false, true] {
        let mut same = stored.iter().filter(|r| {
            r.get("archived_at").is_null() != archived
                && r.get("name").as_text().map(contact_name_fold) == name
        });
        match (same.next(), same.count()) {
            (None, _) => {}
            (Some(r), 0) => return ContactMatch::One(r),
            (Some(_), more) => return ContactMatch::Many(more + 1),
        }
    }
    ContactMatch::New
}

/// Whether a contact group adds a contact: its row creates a customer
/// (`to` is `None`), or matches none of the contacts of the customer it
/// updates.
fn adds_contact(stored: &HashMap<Uuid, Vec<Row>>, to: Option<Uuid>, k: &ContactDraft) -> bool {
    to.is_none_or(|id| {
        matches!(
            match_contact(k, stored.get(&id).map_or(&[][..], Vec::as_slice)),
            ContactMatch::New
        )
    })
}

/// How a contact is recognised among a customer's contacts: its mobile, or
/// its name ([`contact_name_fold`]) when it has none.
fn contact_identity(set: &BTreeMap<&'static str, Value>) -> String {
    match set.get("mobile_key").and_then(Value::as_text) {
        Some(m) => format!("m:{m}"),
        None => format!(
            "n:{}",
            contact_name_fold(set.get("name").and_then(Value::as_text).unwrap_or_default())
        ),
    }
}

fn join_problems(problems: &[(String, String)]) -> (String, String) {
    (
        problems
            .iter()
            .map(|(e, _)| e.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        problems
            .iter()
            .map(|(_, z)| z.as_str())
            .collect::<Vec<_>>()
            .join("；"),
    )
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

/// How a template or export column holds its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Text.
    Text,
    /// A calendar date.
    Date,
    /// A date and time.
    DateTime,
    /// A number.
    Number,
    /// Money in minor units (分), shown as a number with two decimals.
    Money,
    /// Yes or no.
    Bool,
}

/// One column of an import template.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TemplateColumn {
    /// The field (API name, `custom.key`, `owner_id`), for contact groups
    /// prefixed `contactN.`.
    pub key: String,
    /// The Chinese header.
    pub header_zh: String,
    /// The English header.
    pub header_en: String,
    /// Whether a value is required.
    pub required: bool,
    /// The allowed values of choice fields.
    pub options: Vec<String>,
    /// How the values are held.
    pub kind: ValueKind,
    /// A sample value.
    pub sample: String,
    /// What to enter, in Chinese.
    pub hint_zh: String,
    /// What to enter, in English.
    pub hint_en: String,
}

fn sample_for(entity: Entity, name: &str) -> &'static str {
    match (entity, name) {
        (Entity::Customer, "name") => "华为技术有限公司",
        (Entity::Customer, "short_name") => "华为",
        (Entity::Customer, "kind") => "企业客户",
        (Entity::Customer, "category") => "VIP",
        (Entity::Customer, "level") => "A",
        (Entity::Customer, "source") => "展会",
        (Entity::Customer, "industry") => "通信设备",
        (Entity::Customer, "province") => "广东省",
        (Entity::Customer, "city") => "深圳市",
        (Entity::Customer, "district") => "龙岗区",
        (Entity::Customer, "address") => "坂田华为基地",
        (Entity::Customer, "phone") => "0755-28780808",
        (Entity::Customer, "email") => "contact@huawei.com",
        (Entity::Customer, "website") => "https://www.huawei.com",
        (Entity::Customer, "uscc") => "914403001922038216",
        (Entity::Customer, "tags") => "重点,华南",
        (Entity::Customer, "next_follow_up") => "2026-12-01",
        (Entity::Contact, "customer_id") => "KH-20261127-0001",
        (Entity::Contact, "name") => "张伟",
        (Entity::Contact, "title") => "采购经理",
        (Entity::Contact, "department_name") => "采购部",
        (Entity::Contact, "mobile") => "13812345678",
        (Entity::Contact, "phone") => "010-62345678",
        (Entity::Contact, "email") => "zhangwei@example.com",
        (Entity::Contact, "wechat") => "zhangwei_2026",
        (Entity::Contact, "birthday") => "1985-06-18",
        (Entity::Contact, "decision_role") => "决策者",
        (Entity::User, "username") => "zhangwei",
        (Entity::User, "display_name") => "张伟",
        (Entity::User, "department_id") => "销售部",
        (Entity::User, "role_ids") => "销售",
        (Entity::User, "email") => "zhangwei@example.com",
        (Entity::User, "mobile") => "13812345678",
        (Entity::Product, "code") => "CP-0001",
        (Entity::Product, "name") => "激光打印机",
        (Entity::Product, "category_id") => "办公设备/打印机",
        (Entity::Product, "unit") => "台",
        (Entity::Product, "list_price") => "2999.00",
        (Entity::Product, "cost") => "2100.00",
        (Entity::Product, "tax_rate") => "13%",
        (Entity::Product, "spec") => "A4 黑白 30页/分",
        (Entity::Product, "description") => "含一年上门保修",
        (Entity::Product, "status") => "在售",
        _ => "",
    }
}

fn hint_for(kind: FieldKind) -> (&'static str, &'static str) {
    match kind {
        FieldKind::Phone(_) => (
            "手机、座机或服务号码，如 0755-28780808、95555；国外号码带区号，如 +1 415 555 0100",
            "mobile, landline or service number, e.g. 0755-28780808, 95555; abroad with the \
             country code, e.g. +1 415 555 0100",
        ),
        FieldKind::Mobile(_) => (
            "11 位手机号码，或带国际区号，如 +852 9123 4567",
            "11-digit mainland mobile, or with a country code, e.g. +852 9123 4567",
        ),
        FieldKind::Email => ("电子邮箱", "e-mail address"),
        FieldKind::Url => ("网址", "web address"),
        FieldKind::Uscc => (
            "18 位统一社会信用代码",
            "18-character unified social credit code",
        ),
        FieldKind::ResidentId => ("18 位居民身份证号码", "18-character resident ID number"),
        FieldKind::Date => ("日期，如 2026-11-27", "date, e.g. 2026-11-27"),
        FieldKind::DateTime => (
            "日期时间，如 2026-11-27 14:30",
            "date and time, e.g. 2026-11-27 14:30",
        ),
        FieldKind::Enum(_) | FieldKind::Choice(_) => ("从下拉列表选择", "pick from the list"),
        FieldKind::Tags => ("多个标签用逗号分隔", "tags separated by commas"),
        FieldKind::Ref(_) => ("客户编号或客户名称", "customer code or name"),
        FieldKind::Text(_) | FieldKind::CompanyName | FieldKind::PersonName => ("", ""),
        FieldKind::Attachments => ("", ""),
    }
}

/// How a template or export column of a built-in field holds its values
/// (product prices are money though typed as text on import).
pub(crate) fn field_value_kind(entity: Entity, def: &FieldDef) -> ValueKind {
    match (entity, def.name) {
        (Entity::Product, "list_price" | "cost") => ValueKind::Money,
        _ => kind_value(def.kind),
    }
}

pub(crate) fn kind_value(kind: FieldKind) -> ValueKind {
    match kind {
        FieldKind::Date => ValueKind::Date,
        FieldKind::DateTime => ValueKind::DateTime,
        _ => ValueKind::Text,
    }
}

pub(crate) fn custom_value_kind(t: CustomFieldType) -> ValueKind {
    match t {
        CustomFieldType::Number => ValueKind::Number,
        CustomFieldType::Money => ValueKind::Money,
        CustomFieldType::Date => ValueKind::Date,
        CustomFieldType::Boolean => ValueKind::Bool,
        _ => ValueKind::Text,
    }
}

impl Crm {
    /// The columns of an import template for an entity: every importable
    /// field with Chinese and English headers, required marks, options of
    /// choice fields (the company's picklists), custom fields, a sample
    /// value and a hint; customers get `contact_groups` contact column
    /// groups (联系人1姓名, 联系人1手机 …). Fields the actor may not set are
    /// left out.
    pub async fn template_columns(
        &self,
        actor: &Actor,
        entity: Entity,
        contact_groups: u32,
    ) -> Result<Vec<TemplateColumn>> {
        if !importable(entity) {
            return Err(Error::invalid(
                "entity",
                format!(
                    "{entity} cannot be imported (customers, contacts, users and products can)"
                ),
            ));
        }
        let mut out = Vec::new();
        self.template_fields(actor, entity, None, &mut out).await?;
        if entity == Entity::Customer {
            for g in 1..=contact_groups.min(MAX_CONTACT_GROUPS) {
                self.template_fields(actor, Entity::Contact, Some(g), &mut out)
                    .await?;
            }
        }
        Ok(out)
    }

    async fn template_fields(
        &self,
        actor: &Actor,
        entity: Entity,
        group: Option<u32>,
        out: &mut Vec<TemplateColumn>,
    ) -> Result<()> {
        let (pz, pe, pk) = match group {
            Some(g) => (
                format!("联系人{g}"),
                format!("Contact {g} "),
                format!("contact{g}."),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        for def in import_fields(entity) {
            if group.is_some() && def.name == "customer_id" {
                continue;
            }
            if (entity.is_record() || entity == Entity::Product)
                && actor.field_access(entity, def.name) != FieldAccess::Full
            {
                continue;
            }
            let options = match def.kind {
                FieldKind::Enum(o) => o.iter().map(|(_, zh)| zh.to_string()).collect(),
                FieldKind::Choice(_) => self.picklist(actor, entity, def.name).await?,
                _ if entity == Entity::Product && def.name == "category_id" => {
                    let mut paths: Vec<String> = self
                        .category_keys(actor)
                        .await?
                        .into_keys()
                        .filter(|k| k.contains('/'))
                        .collect();
                    paths.sort();
                    paths
                }
                _ => Vec::new(),
            };
            let (hz, he) = match (entity, def.name) {
                (Entity::Product, "code") => ("留空则自动编号", "empty for an automatic code"),
                (Entity::Product, "category_id") => (
                    "类别编号、名称或 一级/二级",
                    "category code, name or parent/child",
                ),
                (Entity::Product, "list_price" | "cost") => {
                    ("金额（元），如 2999.00", "amount in yuan, e.g. 2999.00")
                }
                (Entity::Product, "tax_rate") => (
                    "13%、9%、6%、5%、3%、1% 或 0%",
                    "13%, 9%, 6%, 5%, 3%, 1% or 0%",
                ),
                _ => hint_for(def.kind),
            };
            let zh_label = if group.is_some() && def.name == "name" {
                "姓名"
            } else {
                def.zh
            };
            out.push(TemplateColumn {
                key: format!("{pk}{}", def.name),
                header_zh: format!("{pz}{zh_label}"),
                header_en: format!("{pe}{}", def.en),
                required: def.required && (group.is_none() || def.name == "name")
                    || (group.is_some() && def.name == "name"),
                options,
                kind: field_value_kind(entity, def),
                sample: if group.is_some_and(|g| g > 1) {
                    String::new()
                } else {
                    sample_for(entity, def.name).to_string()
                },
                hint_zh: hz.to_string(),
                hint_en: he.to_string(),
            });
        }
        if entity.is_record() {
            if group.is_none() {
                out.push(TemplateColumn {
                    key: "owner_id".into(),
                    header_zh: "负责人".into(),
                    header_en: "Owner".into(),
                    required: false,
                    options: Vec::new(),
                    kind: ValueKind::Text,
                    sample: String::new(),
                    hint_zh: "用户名，留空为导入人".into(),
                    hint_en: "username; empty for the importing user".into(),
                });
            }
            for def in self.custom_fields(actor, entity).await? {
                if actor.field_access(entity, &format!("custom.{}", def.key)) != FieldAccess::Full {
                    continue;
                }
                // A list validation takes one option per cell: a multi-select
                // gets none (it would refuse several options) and names its
                // options in the hint instead.
                let multi = def.field_type == CustomFieldType::MultiSelect;
                let (hint_zh, hint_en) = if multi && !def.options.is_empty() {
                    (
                        format!(
                            "自定义字段（多选，可选：{}；多个用逗号或顿号分隔）",
                            def.options.join("、")
                        ),
                        format!(
                            "custom field (several of: {}; separated by commas)",
                            def.options.join(", ")
                        ),
                    )
                } else {
                    ("自定义字段".into(), "custom field".into())
                };
                out.push(TemplateColumn {
                    key: format!("{pk}custom.{}", def.key),
                    header_zh: format!("{pz}{}", def.label),
                    // Without an English label, the label (which the
                    // import reads as well), never the internal key.
                    header_en: format!(
                        "{pe}{}",
                        def.label_en.clone().unwrap_or_else(|| def.label.clone())
                    ),
                    required: def.required,
                    options: if multi {
                        Vec::new()
                    } else {
                        def.options.clone()
                    },
                    kind: custom_value_kind(def.field_type),
                    sample: String::new(),
                    hint_zh,
                    hint_en,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ImportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_cells_read_as_typed() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).expect("date");
        assert_eq!(Cell::Date(d).to_text().as_deref(), Some("2026-03-07"));
        let dt = d.and_hms_opt(9, 5, 3).expect("time");
        assert_eq!(
            Cell::DateTime(dt).to_text().as_deref(),
            Some("2026-03-07 09:05:03")
        );
        assert_eq!(
            Cell::DateTime(d.and_time(NaiveTime::MIN))
                .to_text()
                .as_deref(),
            Some("2026-03-07")
        );
    }

    #[test]
    fn seen_keys_tell_kinds_and_boundaries_apart() {
        assert_eq!(seen_key("uscc", "91440300"), seen_key("uscc", "91440300"));
        assert_ne!(seen_key("uscc", "x"), seen_key("name_key", "x"));
        assert_ne!(seen_key("ab", "c"), seen_key("a", "bc"));
        let keys: HashSet<u128> = (0..10_000)
            .map(|i| seen_key("phone", &format!("138{i:08}")))
            .collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn headers_lose_required_marks_and_hints() {
        assert_eq!(clean_header(" *客户名称 "), "客户名称");
        assert_eq!(clean_header("客户名称*"), "客户名称");
        assert_eq!(clean_header("客户名称（必填）"), "客户名称");
        assert_eq!(clean_header("Name (required)"), "Name");
    }

    #[test]
    fn headers_fold_full_width_characters_and_spaces() {
        assert_eq!(clean_header("Ｅｍａｉｌ"), "Email");
        assert_eq!(clean_header("＊联系人１姓名（必填）"), "联系人1姓名");
        assert_eq!(clean_header(" Short \u{3000}\t name\n"), "Short name");
        assert_eq!(
            contact_group(&clean_header("联系人１２ 手机")),
            Some((12, "手机".into()))
        );
    }

    #[test]
    fn money_cells_read_as_the_spreadsheet_shows_them() {
        assert_eq!(money_number_text(100.0 * 1.13), "113.00");
        assert_eq!(money_number_text(0.1 + 0.2), "0.30");
        assert_eq!(money_number_text(-1234.5), "-1234.50");
        assert_eq!(money_number_text(2999.0), "2999.00");
        // More decimals than 分: kept, for the parser to refuse.
        assert_eq!(money_number_text(1.005), "1.005");
        assert_eq!(money_number_text(0.001), "0.001");
        assert!(crate::money::Money::parse(&money_number_text(1.005)).is_err());
        // Large amounts are not rounded to the 分 either.
        for f in [1_234_567.891, 10_000_000.005, 89_999_999.999] {
            let text = money_number_text(f);
            assert!(
                crate::money::Money::parse(&text).is_err(),
                "{f} read as {text}"
            );
        }
        assert_eq!(money_number_text(123_456.78 * 3.0), "370370.34");
        assert_eq!(money_number_text(0.07 * 3.0 * 1_000_000.0), "210000.00");
        assert_eq!(money_number_text(99_999_999.99), "99999999.99");
        // Past 15 significant digits of 分: the digits as written, never
        // rounded to another amount.
        assert_eq!(
            money_number_text(12_345_678_901_234.56),
            "12345678901234.56"
        );
        assert_eq!(money_number_text(12_345_678_901_234.0), "12345678901234");
    }

    #[test]
    fn contact_groups_are_recognised_in_both_languages() {
        assert_eq!(contact_group("联系人1姓名"), Some((1, "姓名".into())));
        assert_eq!(contact_group("联系人2 手机"), Some((2, "手机".into())));
        assert_eq!(contact_group("联系人手机"), Some((1, "手机".into())));
        assert_eq!(contact_group("联系人"), Some((1, "name".into())));
        assert_eq!(
            contact_group("Contact 3 Mobile"),
            Some((3, "Mobile".into()))
        );
        assert_eq!(contact_group("客户名称"), None);
    }

    #[test]
    fn the_customer_code_header_is_no_other_contact_header() {
        let (zh, en) = CUSTOMER_CODE_HEADERS;
        assert!(is_customer_code_header(zh) && is_customer_code_header("customer CODE"));
        for h in [zh, en] {
            assert!(Entity::Contact.field(h).is_none(), "{h}");
            assert!(!is_code_header(Entity::Contact, h), "{h}");
            assert_eq!(contact_group(h), None, "{h}");
        }
        // Nor does any header of a contact read as it, in either language.
        for f in Entity::Contact.fields() {
            for h in [f.name, f.zh, f.en].iter().chain(f.aliases) {
                assert!(!is_customer_code_header(h), "{h}");
            }
        }
        for h in [
            "编号",
            "Code",
            "负责人",
            "Owner",
            "所属部门",
            "Owning department",
        ] {
            assert!(!is_customer_code_header(h), "{h}");
        }
    }

    #[test]
    fn numbers_read_as_typed_and_serials_as_dates() {
        assert_eq!(number_text(13812345678.0), "13812345678");
        assert_eq!(number_text(1.5), "1.5");
        let d = excel_serial_date(46353.0).map(|d| d.date());
        assert_eq!(d, NaiveDate::from_ymd_opt(2026, 11, 27));
        assert_eq!(
            excel_serial_date(1.0).map(|d| d.date()),
            NaiveDate::from_ymd_opt(1900, 1, 1)
        );
        assert_eq!(excel_serial_date(-3.0), None);
        // Excel's 1900-02-29 is no date; the days around it are.
        let day = |s: f64| excel_serial_date(s).map(|d| d.date());
        assert_eq!(day(59.0), NaiveDate::from_ymd_opt(1900, 2, 28));
        assert_eq!(day(60.0), None);
        assert_eq!(day(61.0), NaiveDate::from_ymd_opt(1900, 3, 1));
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16383), "XFD");
    }

    #[test]
    fn english_output_leaves_out_chinese_hints_only() {
        assert_eq!(
            english_only(
                "invalid input: 客户名称: the required column 客户名称 (Customer name) is \
                 missing (缺少必填列); x: 'a' is not yes/no (是/否)"
            ),
            "invalid input: 客户名称: the required column 客户名称 (Customer name) is \
             missing; x: 'a' is not yes/no (是/否)"
        );
        assert_eq!(
            split_zh_tail(
                "'王' is the name of several customers; give the code (多条记录同名，请填写编号)"
            ),
            (
                "'王' is the name of several customers; give the code",
                Some("多条记录同名，请填写编号")
            )
        );
        assert_eq!(split_zh_tail("'a' is not yes/no (是/否)").1, None);
    }

    #[test]
    fn messages_have_chinese_twins() {
        assert_eq!(zh_message(None, None, "is required"), "必填");
        assert_eq!(
            zh_message(None, None, "is longer than 64 characters"),
            "超过 64 个字符"
        );
        assert!(
            zh_message(
                Some(CellKind::Builtin(FieldKind::Mobile("mobile_key"))),
                Some("123"),
                "x"
            )
            .contains("手机")
        );
        assert_eq!(
            zh_message(None, None, "'Z' is not one of: A, B"),
            "「Z」不是可选值之一，可选：A, B"
        );
        assert_eq!(
            zh_message(None, None, "2030-01-01 is in the future"),
            "2030-01-01 晚于今天"
        );
        assert_eq!(
            zh_message(None, None, "1899-12-31 is before 1900"),
            "1899-12-31 早于 1900 年"
        );
        assert_eq!(
            zh_message(None, None, "'1e999' is not a finite number"),
            "「1e999」不是有限的数字"
        );
        assert!(
            zh_message(
                None,
                None,
                "'2.675': has more than two decimals (money fields are kept in 元)"
            )
            .starts_with("「2.675」不是人民币金额")
        );
        assert_eq!(
            zh_message(
                None,
                None,
                "'2026-02-30': there is no day 30 in month 2 of 2026"
            ),
            "「2026-02-30」：2026 年 2 月没有 30 日"
        );
        assert_eq!(
            zh_message(
                None,
                None,
                "'2026-13-01': there is no day 1 in month 13 of 2026"
            ),
            "「2026-13-01」：没有 13 月"
        );
        assert_eq!(
            zh_message(None, None, "'2026-13-01': there is no month 13"),
            "「2026-13-01」：没有 13 月"
        );
        assert_eq!(
            zh_message(
                None,
                None,
                "'0999-01-01': the year 999 is out of range (years 1000 to 9999 are accepted)"
            ),
            "「0999-01-01」：年份 999 超出范围（须在 1000 到 9999 之间）"
        );
    }
}
