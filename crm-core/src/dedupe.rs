//! Duplicate customers (查重): the keys the engine keeps, checks on create and
//! on demand, the company-wide report, and merging.
//!
//! A customer's keys are normalised values: `name` (the company name without
//! legal-form suffixes, `name_key`; an individual's name is none, see
//! `customer_name_key`), `uscc` (统一社会信用代码), `phone` (the
//! canonical phone key), `email` (lowercased, `email_key`) and
//! `custom.<key>` for each custom field configured as a duplicate key. The
//! first four are columns of the customer with indexes of their own, so the
//! customers holding one are found through those (`key_column`); their rows
//! in `customer_keys` exist only while two or more live customers share the
//! key, one per holder, flagged `duplicate`. Custom keys, which no
//! customers' index serves, have a row per live customer holding them,
//! flagged while shared. The rows are kept by `Crm::index_customer_keys`,
//! which every write path calls on its change set before applying it, so a
//! check is one index probe per key and the report walks only flagged rows
//! — never a scan of the customers. (A bulk import of customers with
//! unshared keys writes no key row, unless custom fields are keys.)
//!
//! Per company, each key field refuses duplicates ([`DedupeMode::Block`]),
//! only reports them ([`DedupeMode::Warn`]: an event
//! `customer.possible_duplicate` and the report) or is ignored. Defaults:
//! name and credit code refuse, phone and e-mail warn.

use crate::auth::{Action, Actor, FieldAccess, mask};
use crate::crm::Crm;
use crate::custom::CustomFieldDef;
use crate::entity::{Entity, FieldKind, MaskStyle};
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::{RecordId, UserId};
use crate::pool::Place;
use crate::records::{Fields, Record};
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, GuardKind, Lifecycle, Op, Paging, Row,
    Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// What a duplicate key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupeMode {
    /// A customer duplicating another on this key is refused.
    Block,
    /// Allowed, but reported (event and report).
    Warn,
    /// Not a duplicate key.
    Off,
}

impl DedupeMode {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            DedupeMode::Block => "block",
            DedupeMode::Warn => "warn",
            DedupeMode::Off => "off",
        }
    }
}

impl fmt::Display for DedupeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DedupeMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "block" | "refuse" | "禁止" => Ok(DedupeMode::Block),
            "warn" | "report" | "提醒" => Ok(DedupeMode::Warn),
            "off" | "none" | "关闭" => Ok(DedupeMode::Off),
            other => Err(format!(
                "unknown duplicate mode '{other}'; expected block, warn or off"
            )),
        }
    }
}

/// The built-in key fields with their labels and default modes.
pub const BUILTIN_KEYS: [(&str, &str, DedupeMode); 4] = [
    ("name", "客户名称", DedupeMode::Block),
    ("uscc", "统一社会信用代码", DedupeMode::Block),
    ("phone", "电话", DedupeMode::Warn),
    ("email", "邮箱", DedupeMode::Warn),
];

/// A company's setting for one key field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeRule {
    /// `name`, `uscc`, `phone`, `email` or `custom.<key>`.
    pub field: String,
    /// What a match does.
    pub mode: DedupeMode,
}

/// The effective modes of a company.
#[derive(Clone, Debug, Default)]
pub(crate) struct Modes(BTreeMap<String, DedupeMode>);

impl Modes {
    pub(crate) fn mode(&self, field: &str) -> DedupeMode {
        self.0.get(field).copied().unwrap_or_else(|| {
            BUILTIN_KEYS
                .iter()
                .find(|(f, _, _)| *f == field)
                .map(|(_, _, m)| *m)
                .unwrap_or(DedupeMode::Off)
        })
    }

    pub(crate) fn blocks(&self, field: &str) -> bool {
        self.mode(field) == DedupeMode::Block
    }

    /// Custom field keys (without `custom.`) that are duplicate keys.
    fn custom_keys(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(f, m)| f.starts_with("custom.") && **m != DedupeMode::Off)
            .map(|(f, _)| f.trim_start_matches("custom.").to_string())
            .collect()
    }
}

/// A live customer matching a key of a candidate or of another customer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateMatch {
    /// The key field (`name`, `uscc`, `phone`, `email`, `custom.<key>`).
    pub field: String,
    /// The normalised value both share, as people type it (a money
    /// field's in 元, a number's without a needless fraction, a user
    /// field's by the user's name), masked when the actor's field rule for
    /// the key field masks it, empty when the rule hides it.
    pub value: String,
    /// What the company's setting does with such a match.
    pub mode: DedupeMode,
    /// Whether the actor can see the matching customer.
    pub visible: bool,
    /// The matching customer (absent when the actor may not know it).
    pub customer: Option<RecordId>,
    /// Its code (same condition).
    pub code: Option<String>,
    /// Its name (same condition; masked or left out as the actor's field
    /// rule for the name says).
    pub name: Option<String>,
    /// Whose it is: a name when the actor may know, else "someone else".
    pub owner: String,
}

/// Which groups the report returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateQuery {
    /// Only these key fields (empty: all).
    pub fields: Vec<String>,
    /// Continue after this cursor (the previous report's `next`, for the
    /// same actor).
    pub after: Option<String>,
    /// Groups at most.
    pub limit: usize,
}

impl Default for DuplicateQuery {
    fn default() -> Self {
        DuplicateQuery {
            fields: Vec::new(),
            after: None,
            limit: 100,
        }
    }
}

/// A customer in a duplicate group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateMember {
    /// The customer.
    pub id: RecordId,
    /// Its code.
    pub code: Option<String>,
    /// Its name, masked when the actor's field rule for the name masks it,
    /// empty when the rule hides it.
    pub name: String,
    /// Its owner.
    pub owner_id: Option<UserId>,
    /// Where it is; `None` when the actor's field rule masks or hides the
    /// place.
    pub place: Option<Place>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Customers sharing one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateGroup {
    /// The key field.
    pub field: String,
    /// The shared normalised value, as people type it: a money field's in
    /// 元, a number's without a needless fraction, a user field's by the
    /// user's name (the report holds only key fields the actor may read in
    /// full).
    pub value: String,
    /// Why they matched, in words (with the value as shown in `value`).
    pub reason: String,
    /// What the company's setting does with such matches.
    pub mode: DedupeMode,
    /// The members the actor can see, oldest first.
    pub members: Vec<DuplicateMember>,
    /// Members the actor cannot see.
    pub hidden: usize,
}

/// One page of the duplicate report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DuplicateReport {
    /// The groups, by field and value.
    pub groups: Vec<DuplicateGroup>,
    /// The cursor of the next page, when there is one: only when a further
    /// group with a member the actor can see follows. It names the last
    /// group's key (of a key field the actor may read in full).
    pub next: Option<String>,
}

/// A merge: the survivor keeps its id, code and history; the others' values
/// fill the survivor's blanks (in every field, those the merging user may
/// not write or see too) unless `take` says otherwise, their contacts,
/// follow-ups, pool history and every other record pointing at them move to
/// the survivor, and they go to the recycle bin marked `merged_into`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSpec {
    /// The customer that stays.
    pub survivor: RecordId,
    /// The customers merged into it.
    pub others: Vec<RecordId>,
    /// Field by field (API name, label or `custom.key`): whose value to keep.
    /// A merged customer with nothing in the field is refused (its blank
    /// would wipe the survivor's value); the survivor itself may be named
    /// to keep its blank rather than have it filled from the others.
    pub take: BTreeMap<String, RecordId>,
}

/// Whether a stored value is blank: none, blank text, or an empty JSON
/// value (no tags, no attachments).
fn blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Text(t) => t.trim().is_empty(),
        Value::Json(j) => blank_json(j),
        _ => false,
    }
}

/// Whether a JSON value (a custom field's) is blank.
fn blank_json(j: &Json) -> bool {
    match j {
        Json::Null => true,
        Json::String(t) => t.trim().is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Notes the refusal of a merge choice naming a merged customer with
/// nothing in the field: taking it would wipe the survivor's value, not
/// keep one.
fn no_value_to_take(errors: &mut ValidationErrors, src: &Row, label: &str, field: &str) {
    errors.push(
        field,
        format!(
            "{} has no {label} ({field}) to take; leave the field out to keep the survivor's value",
            src.get("code").as_text().unwrap_or_default()
        ),
    );
}

/// What a rebuild of the keys did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RebuildStats {
    /// Customers looked at.
    pub customers: u64,
    /// Key rows added.
    pub added: u64,
    /// Key rows removed.
    pub removed: u64,
    /// Key rows whose duplicate flag changed.
    pub flagged: u64,
}

fn col(c: &'static str) -> Col {
    Col::Column(c)
}

fn eq(c: &'static str, v: impl Into<Value>) -> Filter {
    Filter::Cmp(col(c), CmpOp::Eq, v.into())
}

/// The normalised key of a custom field value: full-width letters and
/// digits folded, trimmed, lowercased, inner whitespace collapsed
/// ([`text_key`](crate::validate::text_key)).
pub(crate) fn custom_key(v: &Json) -> Option<String> {
    let s = match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return None,
    };
    let k = crate::validate::text_key(&s);
    (!k.is_empty()).then_some(k)
}

/// The mark ahead of an individual customer's `name_key`: no company name
/// key holds it (those are letters and digits only).
const INDIVIDUAL_NAME_MARK: char = '~';

/// A customer's `name_key`: the company name key
/// ([`crate::validate::company_name_key`]) of its name, marked with
/// [`INDIVIDUAL_NAME_MARK`] for an individual (个人客户). People share
/// names (two customers both called 张伟 are two people), so an individual's
/// name is no duplicate key — it is found by its phone, e-mail or ID — and
/// never collides with a company of the same name; the marked key still
/// finds the customer by name (an import naming the customer of a contact).
pub(crate) fn customer_name_key(name: &str, individual: bool) -> String {
    let key = crate::validate::company_name_key(name);
    if individual && !key.is_empty() {
        format!("{INDIVIDUAL_NAME_MARK}{key}")
    } else {
        key
    }
}

/// The `name_key`s a customer named `name` may have: a company's and an
/// individual's ([`customer_name_key`]).
pub(crate) fn customer_name_keys(name: &str) -> [String; 2] {
    [
        customer_name_key(name, false),
        customer_name_key(name, true),
    ]
}

/// Whether a stored `name_key` is a duplicate key: not empty and not an
/// individual's ([`customer_name_key`]).
pub(crate) fn is_name_duplicate_key(key: &str) -> bool {
    !key.is_empty() && !key.starts_with(INDIVIDUAL_NAME_MARK)
}

/// The keys of a customer, from its column values.
pub(crate) fn keys_of(
    get: &dyn Fn(&str) -> Value,
    custom_keys: &[String],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let text = |c: &str| {
        get(c)
            .as_text()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(k) = text("name_key").filter(|k| is_name_duplicate_key(k)) {
        out.push(("name".to_string(), k));
    }
    if let Some(k) = text("uscc") {
        out.push(("uscc".to_string(), k));
    }
    if let Some(k) = text("phone_key") {
        out.push(("phone".to_string(), k));
    }
    if let Some(k) = text("email_key") {
        out.push(("email".to_string(), k));
    }
    if !custom_keys.is_empty()
        && let Some(obj) = get("custom").as_json().and_then(Json::as_object).cloned()
    {
        for k in custom_keys {
            if let Some(v) = obj.get(k).and_then(custom_key) {
                out.push((format!("custom.{k}"), v));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A field's value as the actor may be shown it (a duplicate key kind is
/// named after the customer field it comes from: `name`, `uscc`, `phone`,
/// `email`, `custom.<key>`): as it is when the actor may read the field,
/// masked in the field's style when it is masked, `None` when it is hidden.
pub(crate) fn shown_value(
    actor: &Actor,
    entity: Entity,
    field: &str,
    value: &str,
) -> Option<String> {
    match actor.field_access(entity, field) {
        FieldAccess::Full | FieldAccess::ReadOnly => Some(value.to_string()),
        FieldAccess::Masked => {
            let style = entity
                .field(field)
                .filter(|d| d.name == field)
                .map_or(MaskStyle::Text, |d| d.mask_style());
            Some(mask(style, value))
        }
        FieldAccess::Hidden => None,
    }
}

/// Why customers matched, in words, with the shared value as the actor may
/// be shown it (left out when the field is hidden from the actor).
fn match_reason(actor: &Actor, field: &str, value: &str, customs: &[CustomFieldDef]) -> String {
    let label = field_label(field, customs);
    match shown_value(actor, Entity::Customer, field, value) {
        Some(v) => format!("same {label} {v}"),
        None => format!("same {label}"),
    }
}

/// Separates the key field from the key in a cursor of the duplicate
/// report. A cursor names the key in the clear: the report holds only key
/// fields the actor may read in full, and takes a cursor only for those
/// (else made-up cursors would tell masked or hidden values apart).
const KEY_CURSOR: char = '\u{1f}';

/// The cursor after a group of the report: its key.
fn report_cursor(key: &str, group: &DuplicateGroup) -> String {
    format!("{}{KEY_CURSOR}{key}", group.field)
}

fn field_label(field: &str, customs: &[CustomFieldDef]) -> String {
    if let Some((_, zh, _)) = BUILTIN_KEYS.iter().find(|(f, _, _)| *f == field) {
        return match field {
            "name" => format!("normalised name ({zh})"),
            "uscc" => format!("unified social credit code ({zh})"),
            "phone" => format!("phone ({zh})"),
            _ => format!("e-mail ({zh})"),
        };
    }
    let key = field.trim_start_matches("custom.");
    customs
        .iter()
        .find(|d| d.key == key)
        .map(|d| d.label.clone())
        .unwrap_or_else(|| field.to_string())
}

/// A duplicate key of the key field `field` as people type its value (see
/// [`crate::custom::CustomFieldType::key_display`]): a money field's in 元
/// (`12345.67`, not the 分 kept), a number's without a needless fraction
/// (`120`), a user field's by the user's name (`王芳`, looked up in `users`
/// and noted there); built-in keys as they are.
async fn key_shown(
    crm: &Crm,
    actor: &Actor,
    field: &str,
    key: &str,
    customs: &[CustomFieldDef],
    users: &mut HashMap<Uuid, Option<String>>,
) -> String {
    let Some(def) = field
        .strip_prefix("custom.")
        .and_then(|k| customs.iter().find(|d| d.key == k))
    else {
        return key.to_string();
    };
    if def.field_type != crate::custom::CustomFieldType::User {
        return def.field_type.key_display(key);
    }
    let Ok(id) = Uuid::parse_str(key) else {
        return key.to_string();
    };
    let name = match users.get(&id) {
        Some(name) => name.clone(),
        None => {
            let name = crm
                .user(actor, UserId(id))
                .await
                .ok()
                .map(|u| u.display_name);
            users.insert(id, name.clone());
            name
        }
    };
    name.unwrap_or_else(|| key.to_string())
}

/// What a run of [`Crm::index_customer_keys_noting`] worked out: the
/// customers of its change set, and the keys (company, kind, key) they take
/// or leave, whose rows — of any holder — it inserts, deletes or re-flags
/// (by their [`touch_hash`]).
#[derive(Debug, Default)]
pub(crate) struct KeysTouched {
    customers: HashSet<Uuid>,
    keys: HashSet<u64>,
}

impl KeysTouched {
    /// Whether the two share a customer or a key.
    pub(crate) fn meets(&self, other: &KeysTouched) -> bool {
        self.customers.iter().any(|c| other.customers.contains(c))
            || self.keys.iter().any(|k| other.keys.contains(k))
    }
}

/// Holders of column keys (see [`key_column`]) that the caller has just
/// probed with the same select as [`Crm::index_customer_keys_noting`]
/// would (a bulk import's duplicate probes): per kind, per key, the live
/// customers of `company` holding it. A key present with no holders was
/// found free. Only to be used in the same breath as the probe.
#[derive(Debug, Default)]
pub(crate) struct KnownHolders {
    pub(crate) company: Uuid,
    pub(crate) by_kind: HashMap<&'static str, HashMap<String, Vec<Uuid>>>,
}

/// The kind of a column key (see [`key_column`]) as a static text.
pub(crate) fn column_kind(kind: &str) -> Option<&'static str> {
    COLUMN_KEYS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(k, _)| *k)
}

/// What [`KeysTouched`] keeps of a key: its hash. Two keys with one hash
/// only make [`KeysTouched::meets`] answer yes once too often, which is safe.
fn touch_hash(company: Uuid, kind: &str, key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (company, kind, key).hash(&mut h);
    h.finish()
}

/// One customer's keys before and after a change set.
struct KeyChange {
    company: Uuid,
    customer: Uuid,
    values: BTreeMap<&'static str, Value>,
    /// The column keys (see [`key_column`]) the stored customer holds.
    held: Vec<(String, String)>,
    existing: bool,
    purged: bool,
}

/// The customers' column that holds the keys of `kind`, for the kinds the
/// customers' own indexes serve: the normalised name, the credit code, the
/// phone key and the lowercased e-mail. Their `customer_keys` rows exist
/// only while a key is shared (flagged rows, for the report); custom-field
/// keys have a row per live customer holding them.
pub(crate) fn key_column(kind: &str) -> Option<&'static str> {
    COLUMN_KEYS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, column)| *column)
}

/// The column keys' kinds and the customers' columns holding them.
const COLUMN_KEYS: [(&str, &str); 4] = [
    ("name", "name_key"),
    ("uscc", "uscc"),
    ("phone", "phone_key"),
    ("email", "email_key"),
];

/// The run of `sorted` (sorted by `of`) whose (company, kind, key) is `k`.
fn key_run<'a, T>(
    sorted: &'a [T],
    k: (Uuid, &str, &str),
    of: impl for<'b> Fn(&'b T) -> (Uuid, &'b str, &'b str),
) -> &'a [T] {
    let from = sorted.partition_point(|t| of(t) < k);
    let len = sorted[from..].partition_point(|t| of(t) == k);
    &sorted[from..from + len]
}

/// The select of the customers holding one of `keys` of `kind`: the live
/// customers with that column value for the column kinds (see
/// [`key_column`]), the key rows (one per live holder) for the others; the
/// holder's id is in [`holder_column`] of the rows found.
pub(crate) fn holders_select(
    company: Uuid,
    kind: &str,
    keys: Vec<Value>,
    now: DateTime<Utc>,
) -> Select {
    match key_column(kind) {
        Some(column) => {
            let mut sel = Select::all(Table::Customers, company, now);
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::In(col(column), keys),
                Filter::IsNull(col("deleted_at")),
            ]);
            sel
        }
        None => {
            let mut sel = Select::all(Table::CustomerKeys, company, now);
            sel.filter = Filter::And(vec![eq("kind", kind), Filter::In(col("key"), keys)]);
            sel
        }
    }
}

/// The column naming the customer in the rows of a [`holders_select`].
pub(crate) fn holder_column(kind: &str) -> &'static str {
    if key_column(kind).is_some() {
        "id"
    } else {
        "customer_id"
    }
}

/// Column values a contact takes in a merge.
type Fill = Vec<(&'static str, Value)>;

/// What a merge of customers does to contacts that duplicate each other
/// ([`Crm::plan_contact_merges`]).
#[derive(Default)]
struct ContactMerges {
    /// Each contact merged away: the contact it is merged into, and that
    /// contact's name.
    absorbed: BTreeMap<Uuid, (Uuid, String)>,
    /// Contacts of the survivor that take fields: their row and the values.
    survivors_targets: BTreeMap<Uuid, (Row, Fill)>,
    /// Contacts of the others (moved anyway) that take fields.
    others_fills: BTreeMap<Uuid, Fill>,
}

/// The audited changes of a contact taking `fill` (key columns aside).
fn contact_fill_changes(row: &Row, fill: &[(&'static str, Value)]) -> Vec<FieldChange> {
    fill.iter()
        .filter(|(k, v)| !crate::records::is_derived(k) && row.get(k) != v)
        .map(|(k, v)| FieldChange {
            field: (*k).to_string(),
            before: row.get(k).to_json(),
            after: v.to_json(),
        })
        .collect()
}

/// A key row of `customer`.
fn key_row(crm: &Crm, company: Uuid, customer: Uuid, kind: &str, key: &str, dup: bool) -> Op {
    let mut values = crm.new_row(company, crm.new_id());
    values.extend([
        ("customer_id", Value::Id(customer)),
        ("kind", kind.into()),
        ("key", key.into()),
        ("duplicate", dup.into()),
    ]);
    Op::Insert {
        table: Table::CustomerKeys,
        values,
    }
}

/// The update that sets a key row's duplicate flag.
fn flag(r: &Row, dup: bool, now: DateTime<Utc>) -> Op {
    Op::Update {
        table: Table::CustomerKeys,
        id: r.id(),
        expected_version: r.version(),
        values: vec![
            ("duplicate", dup.into()),
            ("updated_at", Value::Timestamp(now)),
        ],
    }
}

/// Makes the rows of one column key (see [`key_column`]) match its holders:
/// a flagged row for each while two or more hold it, none otherwise. Returns
/// the ops for the stored `rows` (deletes and flag fixes) and the holders
/// that need a new row.
fn sync_shared_key(
    holders: &BTreeSet<Uuid>,
    rows: &[Row],
    now: DateTime<Utc>,
) -> (Vec<Op>, Vec<Uuid>) {
    let shared = holders.len() > 1;
    let mut ops = Vec::new();
    let mut covered = BTreeSet::new();
    for r in rows {
        let owner = r.get("customer_id").as_id().unwrap_or_default();
        if shared && holders.contains(&owner) && covered.insert(owner) {
            if r.get("duplicate").as_bool() != Some(true) {
                ops.push(flag(r, true, now));
            }
        } else {
            ops.push(Op::Delete {
                table: Table::CustomerKeys,
                id: r.id(),
            });
        }
    }
    let missing = if shared {
        holders.difference(&covered).copied().collect()
    } else {
        Vec::new()
    };
    (ops, missing)
}

/// The store query of one page of the duplicate report
/// ([`Crm::duplicate_report`]): the company's keys flagged as shared, of the
/// given kinds (every kind when empty), by kind and key, after the report's
/// cursor `(kind, key)` and, within the walk, after the keyset position
/// `after`, 500 rows at a time. Public so that each backend can check how it
/// plans the query the engine really sends.
pub fn duplicate_report_page(
    company: Uuid,
    now: DateTime<Utc>,
    kinds: &[String],
    cursor: Option<(&str, &str)>,
    after: Option<Vec<Value>>,
) -> Select {
    let mut filters = vec![eq("duplicate", true)];
    if !kinds.is_empty() {
        filters.push(Filter::In(
            col("kind"),
            kinds.iter().map(|f| Value::Text(f.clone())).collect(),
        ));
    }
    if let Some((k, v)) = cursor {
        filters.push(Filter::Or(vec![
            Filter::Cmp(col("kind"), CmpOp::Gt, k.into()),
            Filter::And(vec![
                eq("kind", k),
                Filter::Cmp(col("key"), CmpOp::Gt, v.into()),
            ]),
        ]));
    }
    let mut sel = Select::all(Table::CustomerKeys, company, now);
    sel.filter = Filter::And(filters);
    sel.sort = ["kind", "key"]
        .into_iter()
        .map(|c| Sort {
            col: col(c),
            desc: false,
        })
        .collect();
    sel.paging = Paging::Keyset { after, limit: 500 };
    sel
}

/// How many times [`Crm::apply_indexed`] writes a change set whose warn-mode
/// keys other customers keep taking at the same moment.
const KEY_TRIES: usize = 5;

/// The lock key of a duplicate guard on the customer key `kind`/`key` (see
/// [`crate::store::Guard`]): creates, updates and bulk imports guarding one
/// key wait for each other.
pub(crate) fn key_guard_key(company: Uuid, kind: &str, key: &str) -> String {
    format!("{company}:customer_keys:{kind}:{key}")
}

impl Crm {
    /// The effective duplicate settings of a company.
    pub(crate) async fn dedupe_modes(&self, company: Uuid) -> Result<Modes> {
        let rows = self
            .store
            .select(&Select::all(Table::DedupeRules, company, self.now()))
            .await?
            .rows;
        let mut m = BTreeMap::new();
        for r in rows {
            if let (Some(f), Some(Ok(mode))) = (
                r.get("field").as_text(),
                r.get("mode").as_text().map(str::parse::<DedupeMode>),
            ) {
                m.insert(f.to_string(), mode);
            }
        }
        // A rule on a custom field deleted since no longer applies (deleting
        // a field switches its rule off; one left on before is ignored).
        if m.iter()
            .any(|(f, mode)| f.starts_with("custom.") && *mode != DedupeMode::Off)
        {
            let live: HashSet<String> = self
                .company_custom_fields(company)
                .await?
                .into_iter()
                .filter(|d| d.entity == Entity::Customer)
                .map(|d| format!("custom.{}", d.key))
                .collect();
            m.retain(|f, _| !f.starts_with("custom.") || live.contains(f));
        }
        Ok(Modes(m))
    }

    /// The stored rule of a key field (`name` … or `custom.<key>`), if any.
    async fn dedupe_rule_row(&self, company: Uuid, field: &str) -> Result<Option<Row>> {
        let mut sel = Select::all(Table::DedupeRules, company, self.now());
        sel.filter = eq("field", field);
        Ok(self.store.select(&sel).await?.rows.into_iter().next())
    }

    /// The company's duplicate settings: every built-in key field and every
    /// configured custom field, with its mode.
    pub async fn dedupe_rules(&self, actor: &Actor) -> Result<Vec<DedupeRule>> {
        let modes = self.dedupe_modes(actor.company_id.0).await?;
        let mut out: Vec<DedupeRule> = BUILTIN_KEYS
            .iter()
            .map(|(f, _, _)| DedupeRule {
                field: f.to_string(),
                mode: modes.mode(f),
            })
            .collect();
        for (f, m) in &modes.0 {
            if f.starts_with("custom.") {
                out.push(DedupeRule {
                    field: f.clone(),
                    mode: *m,
                });
            }
        }
        Ok(out)
    }

    /// Sets what a duplicate on a key field does (administrators). `field`
    /// is `name`, `uscc`, `phone`, `email` or a customer custom field (key,
    /// label or `custom.key`); switching a custom field on or off rebuilds
    /// the keys.
    pub async fn set_dedupe_rule(
        &self,
        actor: &Actor,
        field: &str,
        mode: DedupeMode,
    ) -> Result<()> {
        if !actor.is_admin() {
            return Err(Error::Forbidden(format!(
                "{} may not change the duplicate settings: administrators only",
                actor.display_name
            )));
        }
        let f = field.trim();
        let canonical = if let Some((name, _, _)) =
            BUILTIN_KEYS.iter().find(|(n, zh, _)| *n == f || *zh == f)
        {
            name.to_string()
        } else {
            let key = f.strip_prefix("custom.").unwrap_or(f);
            let customs = self.custom_fields(actor, Entity::Customer).await?;
            match customs.iter().find(|d| d.key == key || d.label == key) {
                Some(def) => format!("custom.{}", def.key),
                // A rule left on a field deleted since may always be
                // switched off (it no longer applies).
                None if mode == DedupeMode::Off
                    && self
                        .dedupe_rule_row(actor.company_id.0, &format!("custom.{key}"))
                        .await?
                        .is_some() =>
                {
                    format!("custom.{key}")
                }
                None => {
                    return Err(Error::invalid(
                        "field",
                        format!(
                            "'{f}' is neither name, uscc, phone, email nor a customer custom field"
                        ),
                    ));
                }
            }
        };
        let company = actor.company_id.0;
        let row = self.dedupe_rule_row(company, &canonical).await?;
        // As stored: the effective modes leave out rules of deleted fields.
        let old = match &row {
            Some(r) => r
                .get("mode")
                .as_text()
                .and_then(|m| m.parse::<DedupeMode>().ok())
                .unwrap_or(DedupeMode::Off),
            None => self.dedupe_modes(company).await?.mode(&canonical),
        };
        if old == mode {
            return Ok(());
        }
        let now = self.now();
        let mut cs = ChangeSet::default();
        let id = match row {
            Some(r) => {
                cs.ops.push(Op::Update {
                    table: Table::DedupeRules,
                    id: r.id(),
                    expected_version: r.version(),
                    values: vec![
                        ("mode", mode.name().into()),
                        ("updated_at", Value::Timestamp(now)),
                    ],
                });
                r.id()
            }
            None => {
                let id = self.new_id();
                let mut values = self.new_row(company, id);
                values.push(("field", canonical.clone().into()));
                values.push(("mode", mode.name().into()));
                cs.ops.push(Op::Insert {
                    table: Table::DedupeRules,
                    values,
                });
                id
            }
        };
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::DedupeRules,
            id,
            "update",
            vec![FieldChange {
                field: canonical.clone(),
                before: json!(old.name()),
                after: json!(mode.name()),
            }],
        ));
        self.apply(cs).await?;
        if canonical.starts_with("custom.") && (old == DedupeMode::Off || mode == DedupeMode::Off) {
            self.rebuild_duplicate_keys(actor).await?;
        }
        Ok(())
    }

    /// Keeps `customer_keys` in step with the customer writes of a change
    /// set: inserted, updated (key columns, custom values, deletion and
    /// restore) and purged customers. Adds key inserts and deletes and fixes
    /// the duplicate flags of the other customers sharing a key; refuses two
    /// new customers of one change set sharing a refusing key. Every path
    /// that writes customers calls it just before applying.
    pub(crate) async fn index_customer_keys(&self, cs: &mut ChangeSet) -> Result<()> {
        self.index_customer_keys_noting(cs, None).await.map(drop)
    }

    /// Applies a change set writing customers with its customer keys
    /// indexed ([`Crm::index_customer_keys`]) and the warn-mode keys its
    /// customers take guarded: when another customer took one of those keys
    /// meanwhile (two creates with one new phone at once, each finding no
    /// other holder), the write is refused inside its transaction, indexed
    /// again — now seeing the other customer, so both are flagged as
    /// possible duplicates — and applied again, at most [`KEY_TRIES`] times
    /// in all, the last one without those guards, so that a warning never
    /// keeps a save from happening. A bulk import indexes its batches itself (its warn keys
    /// unguarded: see [`Crm::index_customer_keys_noting`]).
    pub(crate) async fn apply_indexed(&self, cs: ChangeSet) -> Result<()> {
        let mut tries = 1;
        loop {
            let mut attempt = cs.clone();
            // A warning never stops a save: the last try goes unguarded (a
            // flag it misses, `rebuild_duplicate_keys` sets).
            let guard_warn = tries < KEY_TRIES;
            let (_, refusals) = self.index_keys(&mut attempt, None, guard_warn).await?;
            match self.apply(attempt).await {
                Err(Error::InvalidState(m)) if tries < KEY_TRIES && refusals.contains(&m) => {
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    /// [`Crm::index_customer_keys`], telling which customers and keys it
    /// writes rows of: its result holds only while no other write touches
    /// those (a pipelined import checks that against the batch still being
    /// written; a concurrent writer outside the import can still leave a
    /// duplicate flag unset, which `rebuild_duplicate_keys` repairs). The
    /// rows of a column key no other customer holds are not looked for:
    /// such rows exist only while a key is shared, so a row such a race
    /// left behind stays until the rebuild too. ([`Crm::apply_indexed`]
    /// guards the warn-mode keys against that race.)
    pub(crate) async fn index_customer_keys_noting(
        &self,
        cs: &mut ChangeSet,
        known: Option<&KnownHolders>,
    ) -> Result<KeysTouched> {
        self.index_keys(cs, known, false).await.map(|(t, _)| t)
    }

    /// [`Crm::index_customer_keys_noting`]; with `guard_warn`, also guards
    /// each warn-mode key the change set's customers take (one guard per
    /// kind and 500 keys, under the keys' [`key_guard_key`]s) against a
    /// holder besides those read and the change set's own customers, and
    /// returns the guards' messages (see [`Crm::apply_indexed`]).
    async fn index_keys(
        &self,
        cs: &mut ChangeSet,
        known: Option<&KnownHolders>,
        guard_warn: bool,
    ) -> Result<(KeysTouched, Vec<String>)> {
        const KEY_COLUMNS: [&str; 6] = [
            "name_key",
            "uscc",
            "phone_key",
            "email_key",
            "custom",
            "deleted_at",
        ];
        let mut state: BTreeMap<Uuid, KeyChange> = BTreeMap::new();
        let mut loads = Vec::new();
        for op in &cs.ops {
            match op {
                Op::Insert {
                    table: Table::Customers,
                    values,
                } => {
                    // Only what the keys are made of (a bulk import inserts
                    // thousands of customers here).
                    let map: BTreeMap<&'static str, Value> = values
                        .iter()
                        .filter(|(k, _)| {
                            KEY_COLUMNS.contains(k) || matches!(*k, "id" | "company_id")
                        })
                        .map(|(k, v)| (*k, v.clone()))
                        .collect();
                    let id = map.get("id").and_then(Value::as_id).unwrap_or_default();
                    state.insert(
                        id,
                        KeyChange {
                            company: map
                                .get("company_id")
                                .and_then(Value::as_id)
                                .unwrap_or_default(),
                            customer: id,
                            values: map,
                            held: Vec::new(),
                            existing: false,
                            purged: false,
                        },
                    );
                }
                Op::Update {
                    table: Table::Customers,
                    id,
                    values,
                    ..
                } => {
                    if let Some(c) = state.get_mut(id) {
                        for (k, v) in values {
                            c.values.insert(*k, v.clone());
                        }
                    } else if values.iter().any(|(k, _)| KEY_COLUMNS.contains(k)) {
                        loads.push(*id);
                        state.insert(
                            *id,
                            KeyChange {
                                company: Uuid::nil(),
                                customer: *id,
                                values: values.iter().map(|(k, v)| (*k, v.clone())).collect(),
                                held: Vec::new(),
                                existing: true,
                                purged: false,
                            },
                        );
                    }
                }
                Op::Delete {
                    table: Table::Customers,
                    id,
                } => {
                    let company = state.get(id).map(|c| c.company).unwrap_or_default();
                    state.insert(
                        *id,
                        KeyChange {
                            company,
                            customer: *id,
                            values: BTreeMap::new(),
                            held: Vec::new(),
                            existing: true,
                            purged: true,
                        },
                    );
                    loads.push(*id);
                }
                _ => {}
            }
        }
        if state.is_empty() {
            return Ok((KeysTouched::default(), Vec::new()));
        }
        for id in loads {
            let Some(row) = self.store.get(Table::Customers, id).await? else {
                state.remove(&id);
                continue;
            };
            if let Some(c) = state.get_mut(&id) {
                c.company = row.get("company_id").as_id().unwrap_or_default();
                // The column keys it holds now (none while deleted).
                if row.get("deleted_at").is_null() {
                    c.held = keys_of(&|k: &str| row.get(k).clone(), &[])
                        .into_iter()
                        .filter(|(kind, _)| key_column(kind).is_some())
                        .collect();
                }
                if !c.purged {
                    // The updates of this change set win over the stored values.
                    for def in Table::Customers.columns() {
                        c.values
                            .entry(def.name)
                            .or_insert_with(|| row.get(def.name).clone());
                    }
                }
            }
        }
        let mut modes: HashMap<Uuid, Modes> = HashMap::new();
        for c in state.values() {
            if let std::collections::hash_map::Entry::Vacant(e) = modes.entry(c.company) {
                e.insert(self.dedupe_modes(c.company).await?);
            }
        }
        let now = self.now();
        // Desired keys per customer, and their current rows.
        let mut deletes: Vec<Row> = Vec::new();
        let mut adds: Vec<(Uuid, Uuid, String, String)> = Vec::new();
        // Keys whose rows may change, but the column keys customers take
        // (those are in `col_wants`): custom keys, and column keys a
        // customer leaves.
        let mut affected: BTreeSet<(Uuid, String, String)> = BTreeSet::new();
        // The column keys the customers of this change set hold afterwards:
        // (company, kind, key, customer, whether it takes the key now).
        // Sorted below, so that each key's holders are one run of it: a bulk
        // import has thousands, and no map is built for them.
        let mut col_wants: Vec<(Uuid, &'static str, String, Uuid, bool)> =
            Vec::with_capacity(state.len() * 4);
        let existing: Vec<Uuid> = state
            .values()
            .filter(|c| c.existing)
            .map(|c| c.customer)
            .collect();
        let mut current: HashMap<Uuid, Vec<Row>> = HashMap::new();
        for chunk in existing.chunks(500) {
            let company = state.get(&chunk[0]).map(|c| c.company).unwrap_or_default();
            let mut sel = Select::all(Table::CustomerKeys, company, now);
            sel.filter = Filter::In(
                col("customer_id"),
                chunk.iter().map(|u| Value::Id(*u)).collect(),
            );
            for r in self.store.select(&sel).await?.rows {
                current
                    .entry(r.get("customer_id").as_id().unwrap_or_default())
                    .or_default()
                    .push(r);
            }
        }
        let mut purged: BTreeSet<Uuid> = BTreeSet::new();
        for c in state.values() {
            let custom_keys = modes
                .get(&c.company)
                .map(Modes::custom_keys)
                .unwrap_or_default();
            let deleted = c.purged || c.values.get("deleted_at").is_some_and(|v| !v.is_null());
            let want: Vec<(String, String)> = if deleted {
                Vec::new()
            } else {
                keys_of(
                    &|k: &str| c.values.get(k).cloned().unwrap_or(Value::Null),
                    &custom_keys,
                )
            };
            let have = current.remove(&c.customer).unwrap_or_default();
            for r in &have {
                let k = (
                    r.get("kind").as_text().unwrap_or_default().to_string(),
                    r.get("key").as_text().unwrap_or_default().to_string(),
                );
                if !want.contains(&k) {
                    affected.insert((c.company, k.0, k.1));
                    deletes.push(r.clone());
                }
            }
            for (kind, key) in &want {
                if key_column(kind).is_some() {
                    // Column keys: settled per key below.
                    continue;
                }
                let present = have.iter().any(|r| {
                    r.get("kind").as_text() == Some(kind.as_str())
                        && r.get("key").as_text() == Some(key.as_str())
                });
                if !present {
                    affected.insert((c.company, kind.clone(), key.clone()));
                    adds.push((c.company, c.customer, kind.clone(), key.clone()));
                }
            }
            for (kind, key) in &c.held {
                if !want.contains(&(kind.clone(), key.clone())) {
                    affected.insert((c.company, kind.clone(), key.clone()));
                }
            }
            if c.purged {
                purged.insert(c.customer);
            }
            for (kind, key) in want {
                if let Some(kind) = column_kind(&kind) {
                    let taking = !c.held.iter().any(|h| h.0 == kind && h.1 == key);
                    col_wants.push((c.company, kind, key, c.customer, taking));
                }
            }
        }
        col_wants.sort_unstable_by(|a, b| (a.0, a.1, &a.2, a.3).cmp(&(b.0, b.1, &b.2, b.3)));
        // The customers of this change set holding a column key afterwards,
        // with whether each takes it now (in customer order).
        let wanting = |company: Uuid, kind: &str, key: &str| {
            key_run(&col_wants, (company, kind, key), |w| {
                (w.0, w.1, w.2.as_str())
            })
        };
        // The column keys whose rows may change: those a customer takes now,
        // and those of `affected` (left, or with a row deleted).
        let mut col_keys: Vec<(Uuid, &'static str, &str)> = col_wants
            .iter()
            .filter(|w| w.4)
            .map(|w| (w.0, w.1, w.2.as_str()))
            .chain(
                affected
                    .iter()
                    .filter_map(|(c, kind, key)| Some((*c, column_kind(kind)?, key.as_str()))),
            )
            .collect();
        col_keys.sort_unstable();
        col_keys.dedup();
        // The column keys an existing customer of the change set held: their
        // rows may need deleting or re-flagging whatever the key's holders now.
        let held_before: HashSet<(Uuid, &str, &str)> = state
            .values()
            .flat_map(|c| {
                c.held
                    .iter()
                    .map(|(kind, key)| (c.company, kind.as_str(), key.as_str()))
            })
            .collect();
        let deleted_ids: BTreeSet<Uuid> = deletes.iter().map(Row::id).collect();
        let mut ops = Vec::new();
        for r in &deletes {
            let owner = r.get("customer_id").as_id().unwrap_or_default();
            if !purged.contains(&owner) {
                ops.push(Op::Delete {
                    table: Table::CustomerKeys,
                    id: r.id(),
                });
            }
        }
        // The customers outside this change set holding each column key
        // (one probe per kind and 500 keys), sorted like `col_wants`.
        let mut outside: Vec<(Uuid, &'static str, String, Uuid)> = Vec::new();
        for run in col_keys.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (company, kind) = (run[0].0, run[0].1);
            // What the caller has just probed needs no probe again.
            let known = known
                .filter(|k| k.company == company)
                .and_then(|k| k.by_kind.get(kind));
            let mut keys: Vec<&str> = Vec::with_capacity(run.len());
            for &(_, _, key) in run {
                match known.and_then(|k| k.get(key)) {
                    Some(holders) => outside.extend(
                        holders
                            .iter()
                            .filter(|cid| !state.contains_key(cid))
                            .map(|cid| (company, kind, key.to_string(), *cid)),
                    ),
                    None => keys.push(key),
                }
            }
            for chunk in keys.chunks(500) {
                // The customers this change set writes count as it leaves them.
                for (cid, key) in self.column_key_holders(company, kind, chunk).await? {
                    if !state.contains_key(&cid) {
                        outside.push((company, kind, key, cid));
                    }
                }
            }
        }
        outside.sort_unstable_by(|a, b| (a.0, a.1, &a.2, a.3).cmp(&(b.0, b.1, &b.2, b.3)));
        outside.dedup();
        let outside_of = |company: Uuid, kind: &str, key: &str| {
            key_run(&outside, (company, kind, key), |o| (o.0, o.1, o.2.as_str()))
        };
        // The keys to settle: a column key has rows only while shared, so
        // none to find or write for one that a single customer of this
        // change set alone takes (the common case of a bulk import) — only
        // for those another customer holds too, or that one held before.
        // Every custom key of `affected`.
        let mut settle: Vec<(Uuid, &str, &str)> = col_keys
            .iter()
            .copied()
            .filter(|&(company, kind, key)| {
                !outside_of(company, kind, key).is_empty()
                    || wanting(company, kind, key).len() > 1
                    || held_before.contains(&(company, kind, key))
            })
            .chain(
                affected
                    .iter()
                    .filter(|(_, kind, _)| key_column(kind).is_none())
                    .map(|(c, kind, key)| (*c, kind.as_str(), key.as_str())),
            )
            .collect();
        settle.sort_unstable();
        // The stored rows of the keys to settle: one probe per kind and 500
        // keys.
        let mut stored_rows: HashMap<(Uuid, &str, String), Vec<Row>> = HashMap::new();
        for run in settle.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (company, kind) = (run[0].0, run[0].1);
            for chunk in run.chunks(500) {
                let mut sel = Select::all(Table::CustomerKeys, company, now);
                sel.filter = Filter::And(vec![
                    eq("kind", kind),
                    Filter::In(col("key"), chunk.iter().map(|k| Value::from(k.2)).collect()),
                ]);
                for r in self.store.select(&sel).await?.rows {
                    if deleted_ids.contains(&r.id()) {
                        continue;
                    }
                    let key = r.get("key").as_text().unwrap_or_default().to_string();
                    stored_rows.entry((company, kind, key)).or_default().push(r);
                }
            }
        }
        // Two writers taking one warn-mode key at once would each find no
        // other holder and leave both unflagged: each guards that the key
        // has no holder but those it read and its own customers when it is
        // written, under the key a refusing duplicate guard of the value
        // takes, so that the second sees the first and indexes again.
        let mut refusals = Vec::new();
        if guard_warn {
            let mut taken: Vec<(Uuid, &str, &str)> = col_wants
                .iter()
                .filter(|w| w.4)
                .map(|w| (w.0, w.1, w.2.as_str()))
                .chain(adds.iter().map(|a| (a.0, a.2.as_str(), a.3.as_str())))
                .filter(|&(company, kind, _)| {
                    modes.get(&company).map(|m| m.mode(kind)) == Some(DedupeMode::Warn)
                })
                .collect();
            taken.sort_unstable();
            taken.dedup();
            for run in taken.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
                let (company, kind) = (run[0].0, run[0].1);
                for chunk in run.chunks(500) {
                    let mut read: BTreeSet<Uuid> = state.keys().copied().collect();
                    for &(_, _, key) in chunk {
                        if key_column(kind).is_some() {
                            read.extend(outside_of(company, kind, key).iter().map(|o| o.3));
                        } else if let Some(rows) =
                            stored_rows.get(&(company, kind, key.to_string()))
                        {
                            read.extend(rows.iter().filter_map(|r| r.get("customer_id").as_id()));
                        }
                    }
                    let mut select = holders_select(
                        company,
                        kind,
                        chunk.iter().map(|k| Value::from(k.2)).collect(),
                        now,
                    );
                    select.filter = Filter::And(vec![
                        select.filter,
                        Filter::not_among(col(holder_column(kind)), read),
                    ]);
                    let values: Vec<&str> = chunk.iter().map(|k| k.2).collect();
                    let message = format!(
                        "{} {} was taken by another customer at the same moment, again and \
                         again; nothing was saved: try again",
                        field_label(kind, &[]),
                        values.join(", ")
                    );
                    refusals.push(message.clone());
                    cs.guards.push(Guard {
                        kind: GuardKind::State,
                        keys: chunk
                            .iter()
                            .map(|k| key_guard_key(company, kind, k.2))
                            .collect(),
                        select,
                        message,
                    });
                }
            }
        }
        let mut new_by_key: HashMap<(Uuid, &str, &str), Vec<Uuid>> = HashMap::new();
        for (company, customer, kind, key) in &adds {
            new_by_key
                .entry((*company, kind.as_str(), key.as_str()))
                .or_default()
                .push(*customer);
        }
        for &(company, kind, key) in &settle {
            let stored = stored_rows
                .remove(&(company, kind, key.to_string()))
                .unwrap_or_default();
            let column = key_column(kind).is_some();
            let column_holders: Vec<(Uuid, bool)> = wanting(company, kind, key)
                .iter()
                .map(|w| (w.3, w.4))
                .collect();
            let others: BTreeSet<Uuid> = if column {
                outside_of(company, kind, key).iter().map(|o| o.3).collect()
            } else {
                BTreeSet::new()
            };
            if column && stored.is_empty() && column_holders.len() <= 1 && others.is_empty() {
                // One holder and no rows: nothing to write.
                continue;
            }
            let mode = modes
                .get(&company)
                .map(|m| m.mode(kind))
                .unwrap_or(DedupeMode::Off);
            // The customers that take the key now.
            let takers: Vec<Uuid> = if column {
                column_holders
                    .iter()
                    .filter(|(_, taking)| *taking)
                    .map(|(c, _)| *c)
                    .collect()
            } else {
                new_by_key.remove(&(company, kind, key)).unwrap_or_default()
            };
            let fresh: BTreeSet<Uuid> = takers
                .iter()
                .filter(|c| state.get(*c).is_some_and(|s| !s.existing))
                .copied()
                .collect();
            if mode == DedupeMode::Block && fresh.len() > 1 {
                return Err(Error::Duplicate {
                    entity: Entity::Customer.name().into(),
                    message: format!(
                        "{kind} {key} appears on {} new customers at once",
                        fresh.len()
                    ),
                });
            }
            let all: BTreeSet<Uuid> = if column {
                let mut all = others;
                all.extend(column_holders.iter().map(|(c, _)| *c));
                all
            } else {
                stored
                    .iter()
                    .filter_map(|r| r.get("customer_id").as_id())
                    .chain(takers.iter().copied())
                    .collect()
            };
            let dup = all.len() > 1;
            let new_rows: Vec<Uuid> = if column {
                let (sync, missing) = sync_shared_key(&all, &stored, now);
                ops.extend(sync);
                missing
            } else {
                for r in &stored {
                    if r.get("duplicate").as_bool() != Some(dup) {
                        ops.push(flag(r, dup, now));
                    }
                }
                takers.clone()
            };
            for c in &new_rows {
                ops.push(key_row(self, company, *c, kind, key, dup));
            }
            if dup && mode == DedupeMode::Warn {
                for c in &takers {
                    let others: Vec<String> = all
                        .iter()
                        .filter(|o| *o != c)
                        .map(|o| o.to_string())
                        .collect();
                    cs.events.push(self.event(
                        company,
                        Table::Customers,
                        *c,
                        "customer.possible_duplicate".into(),
                        json!({"field": kind, "value": key, "others": others}),
                    ));
                }
            }
        }
        let touched = KeysTouched {
            customers: state.keys().copied().collect(),
            keys: col_keys
                .iter()
                .copied()
                .chain(
                    affected
                        .iter()
                        .map(|(c, kind, key)| (*c, kind.as_str(), key.as_str())),
                )
                .map(|(company, kind, key)| touch_hash(company, kind, key))
                .collect(),
        };
        cs.ops.extend(ops);
        Ok((touched, refusals))
    }

    /// The customers a [`holders_select`] finds.
    async fn holders(&self, sel: &Select) -> Result<Vec<Uuid>> {
        Ok(self
            .store
            .select(sel)
            .await?
            .rows
            .iter()
            .filter_map(|r| match sel.table {
                Table::Customers => Some(r.id()),
                _ => r.get("customer_id").as_id(),
            })
            .collect())
    }

    /// The live customers holding one of `keys` of the column kind `kind`
    /// (name, credit code, phone, e-mail), through the customers' own index:
    /// `(customer, key)` pairs.
    async fn column_key_holders(
        &self,
        company: Uuid,
        kind: &str,
        keys: &[impl AsRef<str>],
    ) -> Result<Vec<(Uuid, String)>> {
        let Some(column) = key_column(kind) else {
            return Ok(Vec::new());
        };
        let mut sel = holders_select(
            company,
            kind,
            keys.iter().map(|k| Value::from(k.as_ref())).collect(),
            self.now(),
        );
        // By the key, so that SQLite probes the key's index.
        sel.sort = vec![Sort {
            col: col(column),
            desc: false,
        }];
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(|r| {
                (
                    r.id(),
                    r.get(column)
                        .as_text()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                )
            })
            .collect())
    }

    /// The refusal for a record duplicating `existing`: names the record and
    /// its owner when the actor may see it (or the configuration says so),
    /// else only that someone else owns it.
    pub(crate) async fn duplicate_refusal(
        &self,
        actor: &Actor,
        entity: Entity,
        what: &str,
        existing: &Row,
    ) -> Result<Error> {
        let visible = self
            .can_on_row(actor, entity, Action::Read, existing)
            .await?;
        // The name as the actor's field rule for it says (the code when hidden).
        let code = existing
            .get("code")
            .as_text()
            .unwrap_or_default()
            .to_string();
        let label = existing
            .get("name")
            .as_text()
            .and_then(|n| shown_value(actor, entity, "name", n));
        let owner = self.owner_words(actor, existing, visible).await;
        let message = if visible || self.config.reveal_duplicate_owner {
            match label {
                Some(label) => format!("{what} already belongs to {label} ({code}), {owner}"),
                None => format!("{what} already belongs to {entity} {code}, {owner}"),
            }
        } else {
            format!("{what} already belongs to another {entity}, {owner}")
        };
        Ok(Error::Duplicate {
            entity: entity.name().into(),
            message,
        })
    }

    /// "owned by 张三", "without an owner" or "owned by someone else".
    async fn owner_words(&self, actor: &Actor, row: &Row, visible: bool) -> String {
        let owner_name = match row.get("owner_id").as_id() {
            Some(o) => self
                .user(actor, UserId(o))
                .await
                .map(|u| u.display_name)
                .ok(),
            None => None,
        };
        match (visible || self.config.reveal_duplicate_owner, owner_name) {
            (true, Some(n)) => format!("owned by {n}"),
            (true, None) => match Place::of_row(row) {
                Place::Public | Place::Invalid => "in a customer pool".to_string(),
                _ => "without an owner".to_string(),
            },
            (false, _) => "owned by someone else".to_string(),
        }
    }

    /// Refuses a customer whose phone, e-mail or configured custom fields
    /// duplicate another live customer on a refusing key (the name and the
    /// credit code are checked by `check_duplicates` on the customer columns).
    pub(crate) async fn check_customer_keys(
        &self,
        actor: &Actor,
        merged: &BTreeMap<&'static str, Value>,
        custom: &BTreeMap<String, Json>,
        exclude: &[Uuid],
    ) -> Result<Vec<crate::store::Guard>> {
        let company = actor.company_id.0;
        let modes = self.dedupe_modes(company).await?;
        let mut guards = Vec::new();
        let mut values: BTreeMap<String, Value> = BTreeMap::new();
        for f in ["phone_key", "email_key"] {
            if let Some(v) = merged.get(f) {
                values.insert(f.to_string(), v.clone());
            }
        }
        values.insert(
            "custom".into(),
            Value::Json(Json::Object(custom.clone().into_iter().collect())),
        );
        let keys = keys_of(
            &|k: &str| values.get(k).cloned().unwrap_or(Value::Null),
            &modes.custom_keys(),
        );
        for (kind, key) in keys {
            if kind == "name" || kind == "uscc" || !modes.blocks(&kind) {
                continue;
            }
            let mut sel = holders_select(company, &kind, vec![key.as_str().into()], self.now());
            if !exclude.is_empty() {
                sel.filter = Filter::And(vec![
                    sel.filter,
                    Filter::not_among(col(holder_column(&kind)), exclude.iter().copied()),
                ]);
            }
            sel.paging = Paging::Offset {
                offset: 0,
                limit: 20,
            };
            // Name a match the actor can see when there is one.
            let mut first: Option<Row> = None;
            for cid in self.holders(&sel).await? {
                if let Some(existing) = self
                    .store
                    .get(Table::Customers, cid)
                    .await?
                    .filter(|c| c.get("deleted_at").is_null())
                {
                    if self
                        .can_on_row(actor, Entity::Customer, Action::Read, &existing)
                        .await?
                    {
                        first = Some(existing);
                        break;
                    }
                    first.get_or_insert(existing);
                }
            }
            if let Some(existing) = first {
                let customs = self.custom_fields(actor, Entity::Customer).await?;
                let shown =
                    key_shown(self, actor, &kind, &key, &customs, &mut HashMap::new()).await;
                let what = format!("{} {shown}", field_label(&kind, &customs));
                return Err(self
                    .duplicate_refusal(actor, Entity::Customer, &what, &existing)
                    .await?);
            }
            guards.push(crate::store::Guard {
                kind: crate::store::GuardKind::Duplicate,
                keys: vec![key_guard_key(company, &kind, &key)],
                message: format!(
                    "{} {key} was just taken by another customer",
                    field_label(&kind, &[])
                ),
                select: sel,
            });
        }
        Ok(guards)
    }

    async fn matches_for_keys(
        &self,
        actor: &Actor,
        keys: &[(String, String)],
        exclude: Option<Uuid>,
    ) -> Result<Vec<DuplicateMatch>> {
        let company = actor.company_id.0;
        let modes = self.dedupe_modes(company).await?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let customs = if keys.iter().any(|(k, _)| k.starts_with("custom.")) {
            self.custom_fields(actor, Entity::Customer).await?
        } else {
            Vec::new()
        };
        let mut users = HashMap::new();
        for (kind, key) in keys {
            let mode = modes.mode(kind);
            // A key field hidden from the actor tells nothing, not even
            // that two customers hold one value in it (the report leaves
            // such fields out, and a check by one is refused).
            if mode == DedupeMode::Off
                || actor.field_access(Entity::Customer, kind) == FieldAccess::Hidden
            {
                continue;
            }
            let mut sel = holders_select(company, kind, vec![key.as_str().into()], self.now());
            sel.paging = Paging::Offset {
                offset: 0,
                limit: 50,
            };
            let shown = key_shown(self, actor, kind, key, &customs, &mut users).await;
            for cid in self.holders(&sel).await? {
                if Some(cid) == exclude || !seen.insert((kind.clone(), cid)) {
                    continue;
                }
                let Some(row) = self
                    .store
                    .get(Table::Customers, cid)
                    .await?
                    .filter(|c| c.get("deleted_at").is_null())
                else {
                    continue;
                };
                let visible = self
                    .can_on_row(actor, Entity::Customer, Action::Read, &row)
                    .await?;
                let known = visible || self.config.reveal_duplicate_owner;
                out.push(DuplicateMatch {
                    field: kind.clone(),
                    value: shown_value(actor, Entity::Customer, kind, &shown).unwrap_or_default(),
                    mode,
                    visible,
                    customer: known.then_some(RecordId(cid)),
                    code: if known {
                        row.get("code").as_text().map(str::to_string)
                    } else {
                        None
                    },
                    name: if known {
                        row.get("name")
                            .as_text()
                            .and_then(|n| shown_value(actor, Entity::Customer, "name", n))
                    } else {
                        None
                    },
                    owner: self.owner_words(actor, &row, visible).await,
                });
            }
        }
        Ok(out)
    }

    /// Customers that an input (e.g. a customer about to be created) would
    /// duplicate, on every key field not switched off, refusing or not.
    /// Customers the actor cannot see are reported without name or code
    /// (unless `CrmConfig::reveal_duplicate_owner`).
    pub async fn find_duplicates(
        &self,
        actor: &Actor,
        fields: &Fields,
    ) -> Result<Vec<DuplicateMatch>> {
        if !actor.can(Entity::Customer, Action::Create)
            && !actor.can(Entity::Customer, Action::Read)
        {
            return Err(Error::Forbidden(format!(
                "{} may not look for customers",
                actor.display_name
            )));
        }
        let customs = self.custom_fields(actor, Entity::Customer).await?;
        // Nothing is changed here: a field the actor may not set (hidden,
        // masked, read-only) is refused as one they may not look by.
        // A check by a deactivated user finds the customers holding them.
        let (mut set, custom, _) = self
            .prepare_keeping(
                actor,
                Entity::Customer,
                fields,
                &customs,
                false,
                &crate::records::Lookups::default(),
                crate::records::Inactive::Allowed,
            )
            .await
            .map_err(|e| match e {
                Error::Forbidden(m) => {
                    Error::Forbidden(crate::forbidden_zh::may_not_look_by(&m).unwrap_or(m))
                }
                e => e,
            })?;
        self.derive(Entity::Customer, &mut set)?;
        let modes = self.dedupe_modes(actor.company_id.0).await?;
        let mut values: BTreeMap<String, Value> = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        values.insert(
            "custom".into(),
            Value::Json(Json::Object(custom.into_iter().collect())),
        );
        let keys = keys_of(
            &|k: &str| values.get(k).cloned().unwrap_or(Value::Null),
            &modes.custom_keys(),
        );
        self.matches_for_keys(actor, &keys, None).await
    }

    /// Customers that share a key with a customer the actor can see.
    pub async fn duplicates_of(&self, actor: &Actor, id: RecordId) -> Result<Vec<DuplicateMatch>> {
        let row = self.readable_row(actor, Entity::Customer, id).await?;
        let mut sel = Select::all(Table::CustomerKeys, actor.company_id.0, self.now());
        sel.filter = eq("customer_id", Value::Id(row.id()));
        let keys: Vec<(String, String)> = self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .filter(|r| r.get("duplicate").as_bool() == Some(true))
            .map(|r| {
                (
                    r.get("kind").as_text().unwrap_or_default().to_string(),
                    r.get("key").as_text().unwrap_or_default().to_string(),
                )
            })
            .collect();
        self.matches_for_keys(actor, &keys, Some(row.id())).await
    }

    /// The duplicate report of the company (查重报告): groups of live
    /// customers sharing a key, with the reason, page by page. Only members
    /// the actor can see are listed and groups without any are left out —
    /// from the paging too: a page holds up to `limit` groups with a visible
    /// member, and its cursor never names a group the actor cannot see.
    /// Only key fields the actor may read in full (not masked, not hidden)
    /// are reported: groups of equal values, in the values' order, would
    /// tell what the mask hides. Asking for such a field by name is refused;
    /// without `fields`, such fields are left out. Names and places are
    /// shown as the actor's field rules say.
    /// Like a list, it needs no read grant: without one, the actor sees the
    /// customers shared with them.
    pub async fn duplicate_report(
        &self,
        actor: &Actor,
        query: &DuplicateQuery,
    ) -> Result<DuplicateReport> {
        let company = actor.company_id.0;
        let now = self.now();
        let limit = query.limit.clamp(1, 1000);
        let modes = self.dedupe_modes(company).await?;
        let customs = self.custom_fields(actor, Entity::Customer).await?;
        let readable = |kind: &str| crate::records::filterable(actor, Entity::Customer, kind);
        let kinds: Vec<String> = if query.fields.is_empty() {
            let all: Vec<String> = BUILTIN_KEYS
                .iter()
                .map(|(f, _, _)| f.to_string())
                .chain(customs.iter().map(|d| format!("custom.{}", d.key)))
                .collect();
            if all.iter().all(|k| readable(k)) {
                // Every kind, including any left by a deleted custom field.
                Vec::new()
            } else {
                let kinds: Vec<String> = all.into_iter().filter(|k| readable(k)).collect();
                if kinds.is_empty() {
                    return Ok(DuplicateReport {
                        groups: Vec::new(),
                        next: None,
                    });
                }
                kinds
            }
        } else {
            if let Some(f) = query.fields.iter().find(|f| !readable(f)) {
                return Err(Error::Forbidden(format!(
                    "{} may not read customer.{f} in full, so is not shown duplicates by it",
                    actor.display_name
                )));
            }
            query.fields.clone()
        };
        let shows_place = readable("place");
        // The names of the users user-field keys name, as they are met.
        let mut users = HashMap::new();
        let scope = actor.store_scope(Entity::Customer, Action::Read).unwrap_or(
            crate::store::Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: None,
            },
        );
        let cursor = match &query.after {
            Some(c) => Some(Self::report_position(actor, c)?),
            None => None,
        };
        let cursor = cursor.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
        // Groups read from the keys as (kind, key, holders): the one still
        // being read, and the complete ones waiting for the visibility check.
        let mut open: Option<(String, String, Vec<Uuid>)> = None;
        let mut waiting: VecDeque<(String, String, Vec<Uuid>)> = VecDeque::new();
        // Groups with a visible member, with their key: one more than the
        // page holds tells that there is a next page.
        let mut found: Vec<(String, DuplicateGroup)> = Vec::new();
        let mut after: Option<Vec<Value>> = None;
        let mut read_all = false;
        // Groups checked at once; doubled after each check, so that an actor
        // who sees few of them does not cost a query per group.
        let mut batch = limit + 1;
        while found.len() <= limit {
            if waiting.is_empty() {
                if read_all {
                    break;
                }
                let sel = duplicate_report_page(company, now, &kinds, cursor, after.take());
                let page = self.store.select(&sel).await?;
                for r in &page.rows {
                    let kind = r.get("kind").as_text().unwrap_or_default().to_string();
                    let key = r.get("key").as_text().unwrap_or_default().to_string();
                    let cid = r.get("customer_id").as_id().unwrap_or_default();
                    match &mut open {
                        Some((k, v, ids)) if *k == kind && *v == key => ids.push(cid),
                        _ => waiting.extend(open.replace((kind, key, vec![cid]))),
                    }
                }
                match page.rows.last() {
                    Some(last) if page.has_more => {
                        after = Some(vec![
                            last.get("kind").clone(),
                            last.get("key").clone(),
                            Value::Id(last.id()),
                        ]);
                    }
                    _ => {
                        read_all = true;
                        waiting.extend(open.take());
                    }
                }
                continue;
            }
            let mut checked = Vec::new();
            let mut holders = 0;
            while checked.len() < batch && holders < 500 {
                let Some(g) = waiting.pop_front() else {
                    break;
                };
                holders += g.2.len();
                checked.push(g);
            }
            batch = (batch * 2).min(4000);
            let ids: Vec<Uuid> = checked
                .iter()
                .flat_map(|(_, _, ids)| ids.iter().copied())
                .collect();
            let visible = self.visible_customers(company, &scope, &ids).await?;
            for (field, key, ids) in checked {
                let mut members: Vec<DuplicateMember> = ids
                    .iter()
                    .filter_map(|id| visible.get(id))
                    .map(|r| DuplicateMember {
                        id: RecordId(r.id()),
                        code: r.get("code").as_text().map(str::to_string),
                        name: r
                            .get("name")
                            .as_text()
                            .and_then(|n| shown_value(actor, Entity::Customer, "name", n))
                            .unwrap_or_default(),
                        owner_id: r.get("owner_id").as_id().map(UserId),
                        place: shows_place.then(|| Place::of_row(r)),
                        created_at: r.get("created_at").as_timestamp().unwrap_or_default(),
                    })
                    .collect();
                // Keys of a custom field deleted (or no longer a key field)
                // since, which a rebuild removes.
                if members.is_empty()
                    || (field.starts_with("custom.") && modes.mode(&field) == DedupeMode::Off)
                {
                    continue;
                }
                members.sort_by(|x, y| {
                    (x.created_at, &x.code, x.id).cmp(&(y.created_at, &y.code, y.id))
                });
                let hidden = ids.len() - members.len();
                let shown = key_shown(self, actor, &field, &key, &customs, &mut users).await;
                found.push((
                    key.clone(),
                    DuplicateGroup {
                        reason: match_reason(actor, &field, &shown, &customs),
                        mode: modes.mode(&field),
                        value: shown_value(actor, Entity::Customer, &field, &shown)
                            .unwrap_or_default(),
                        field,
                        members,
                        hidden,
                    },
                ));
            }
        }
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(key, g)| report_cursor(key, g))
        } else {
            None
        };
        Ok(DuplicateReport {
            groups: found.into_iter().map(|(_, g)| g).collect(),
            next,
        })
    }

    /// The live customers among `ids` within the scope, by id.
    async fn visible_customers(
        &self,
        company: Uuid,
        scope: &crate::store::Scope,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Row>> {
        let mut visible = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut sel = Select::all(Table::Customers, company, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.scope = scope.clone();
            sel.filter = Filter::And(vec![
                Filter::In(col("id"), chunk.iter().map(|u| Value::Id(*u)).collect()),
                Filter::IsNull(col("deleted_at")),
            ]);
            for r in self.store.select(&sel).await?.rows {
                visible.insert(r.id(), r);
            }
        }
        Ok(visible)
    }

    /// The position `(kind, key)` a report cursor stands for, taken only
    /// for a key field the actor may read in full.
    fn report_position(actor: &Actor, cursor: &str) -> Result<(String, String)> {
        match cursor.split_once(KEY_CURSOR) {
            Some((kind, key)) if crate::records::filterable(actor, Entity::Customer, kind) => {
                Ok((kind.to_string(), key.to_string()))
            }
            _ => Err(Error::invalid(
                "after",
                "the cursor is not one this report produced for you",
            )),
        }
    }

    /// Merges customers into one (合并客户). The actor must be allowed to
    /// edit the survivor and to delete each of the others, and may only
    /// choose fields it has full access to. The survivor's blanks are filled
    /// from the others, and tags and attachments united, in every field —
    /// also those the actor's rules make read-only, masked or hidden: a
    /// merged customer is never restored, so a value not carried over
    /// would be lost, and filling a blank chooses nothing (the actor sees
    /// no more than before); the next follow-up takes the earliest only
    /// where the actor may write it; a merged customer's lock passes to the survivor only
    /// when the actor may lock it (see `set_locked`). One change set: the
    /// survivor's new values, every record pointing at the others moved to
    /// it (contacts also take its owner), the others in the recycle bin with
    /// `merged_into`, audit entries on all of them and a `customer.merged`
    /// event. A moved contact that would share its mobile with a live
    /// contact of the survivor (the contact duplicate rule) is merged into
    /// that contact instead: it fills the contact's blanks, its follow-ups
    /// point at it, and it goes to the recycle bin (audited `merge`, with
    /// `merged_into` naming the contact).
    pub async fn merge_customers(&self, actor: &Actor, spec: &MergeSpec) -> Result<Record> {
        let entity = Entity::Customer;
        if spec.others.is_empty() {
            return Err(Error::invalid(
                "others",
                "name at least one customer to merge into the survivor",
            ));
        }
        if spec.others.contains(&spec.survivor) {
            return Err(Error::invalid(
                "others",
                "the survivor is among the customers to merge into it: a customer is not \
                 merged into itself (客户不能与自身合并)",
            ));
        }
        let mut distinct = BTreeSet::from([spec.survivor]);
        for o in &spec.others {
            if !distinct.insert(*o) {
                return Err(Error::invalid(
                    "others",
                    format!("customer {o} is named twice"),
                ));
            }
        }
        let live = |r: Row| -> Result<Row> {
            if r.get("deleted_at").is_null() {
                Ok(r)
            } else {
                Err(Error::InvalidState(format!(
                    "customer {} is in the recycle bin",
                    r.get("code").as_text().unwrap_or_default()
                )))
            }
        };
        let survivor = live(self.readable_row(actor, entity, spec.survivor).await?)?;
        if !self
            .can_on_row(actor, entity, Action::Update, &survivor)
            .await?
        {
            return Err(Error::Forbidden(format!(
                "{} may not edit customer {}, so may not merge into it",
                actor.display_name,
                survivor.get("code").as_text().unwrap_or_default()
            )));
        }
        let mut others = Vec::new();
        for o in &spec.others {
            let row = live(self.readable_row(actor, entity, *o).await?)?;
            if !actor.covers(entity, Action::Delete, &row) {
                return Err(Error::Forbidden(format!(
                    "{} may not delete customer {}, so may not merge it away",
                    actor.display_name,
                    row.get("code").as_text().unwrap_or_default()
                )));
            }
            others.push(row);
        }
        // A customer someone holds is not merged into a public one: its
        // holder would lose it (and its deals, locks and documents would
        // sit in the pool) without any release. The public one is claimed
        // or assigned first, or merged into the held one.
        if survivor.get("owner_id").is_null()
            && let Some(held) = others.iter().find(|o| !o.get("owner_id").is_null())
        {
            return Err(Error::InvalidState(format!(
                "customer {} is held by someone and customer {} is in a public pool (公海): \
                 merge the public one into the held one, or claim or assign it first \
                 (不能将私有客户合并到公海客户)",
                held.get("code").as_text().unwrap_or_default(),
                survivor.get("code").as_text().unwrap_or_default()
            )));
        }
        let customs = self.custom_fields(actor, entity).await?;
        let all: Vec<&Row> = std::iter::once(&survivor).chain(others.iter()).collect();
        let find = |id: RecordId| all.iter().find(|r| r.id() == id.0).copied();
        // Columns of a built-in field: the field and its key column.
        let cols_of = |kind: FieldKind, name: &'static str| -> Vec<&'static str> {
            match kind {
                FieldKind::Phone(k) | FieldKind::Mobile(k) => vec![name, k],
                _ => vec![name],
            }
        };
        let mut merged: BTreeMap<&'static str, Value> = Table::Customers
            .columns()
            .iter()
            .map(|c| (c.name, survivor.get(c.name).clone()))
            .collect();
        let mut custom: serde_json::Map<String, Json> = survivor
            .get("custom")
            .as_json()
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        // Blanks of the survivor are filled from the others, in order — in
        // every field, those the actor may not write or see too: the merged
        // customers are not restored, so what is not carried over is lost.
        let writes = |field: &str| actor.field_access(entity, field) == FieldAccess::Full;
        for def in entity.fields().iter().filter(|d| d.writable) {
            if matches!(def.kind, FieldKind::Tags | FieldKind::Attachments) {
                continue;
            }
            if merged.get(def.name).is_some_and(Value::is_null)
                && let Some(src) = others.iter().find(|o| !o.get(def.name).is_null())
            {
                for c in cols_of(def.kind, def.name) {
                    merged.insert(c, src.get(c).clone());
                }
            }
        }
        for o in &others {
            if let Some(obj) = o.get("custom").as_json().and_then(Json::as_object) {
                for (k, v) in obj {
                    if custom.get(k).is_none_or(Json::is_null) && !v.is_null() {
                        custom.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        // Explicit choices.
        let mut taken_tags = false;
        let mut blanks = ValidationErrors::default();
        for (field, from) in &spec.take {
            let src = find(*from).ok_or_else(|| {
                Error::invalid(
                    field.clone(),
                    format!("customer {from} is not one of the customers being merged"),
                )
            })?;
            if let Some(def) = entity.field(field) {
                if !def.writable {
                    return Err(Error::invalid(
                        field.clone(),
                        "is computed and cannot be chosen",
                    ));
                }
                if actor.field_access(entity, def.name) != FieldAccess::Full {
                    return Err(Error::Forbidden(format!(
                        "{} may not change customer.{}",
                        actor.display_name, def.name
                    )));
                }
                if src.id() != survivor.id() && blank(src.get(def.name)) {
                    no_value_to_take(&mut blanks, src, def.zh, def.name);
                    continue;
                }
                taken_tags |= def.kind == FieldKind::Tags;
                for c in cols_of(def.kind, def.name) {
                    merged.insert(c, src.get(c).clone());
                }
                continue;
            }
            let key = field.strip_prefix("custom.").unwrap_or(field);
            let def = customs
                .iter()
                .find(|d| d.key == key || d.label == key)
                .ok_or_else(|| {
                    Error::invalid(field.clone(), format!("customer has no field '{field}'"))
                })?;
            if actor.field_access(entity, &format!("custom.{}", def.key)) != FieldAccess::Full {
                return Err(Error::Forbidden(format!(
                    "{} may not change customer.custom.{}",
                    actor.display_name, def.key
                )));
            }
            let v = src
                .get("custom")
                .as_json()
                .and_then(|j| j.get(&def.key))
                .cloned()
                .unwrap_or(Json::Null);
            if src.id() != survivor.id() && blank_json(&v) {
                let field = format!("custom.{}", def.key);
                no_value_to_take(&mut blanks, src, &def.label, &field);
                continue;
            }
            custom.insert(def.key.clone(), v);
        }
        // Every choice of a blank at once.
        blanks.into_result()?;
        // What combines: tags and attachments are united, the activity
        // times take the latest, the next follow-up the earliest (if the
        // actor may write it), open opportunities add up, a lock stays
        // (passed on only by an actor who may lock).
        if !taken_tags {
            let mut tags: BTreeSet<String> = BTreeSet::new();
            for r in &all {
                if let Some(t) = r.get("tags").as_text() {
                    tags.extend(t.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                }
            }
            let joined: Vec<String> = tags.into_iter().collect();
            merged.insert(
                "tags",
                if joined.is_empty() {
                    Value::Null
                } else {
                    Value::Text(format!(",{},", joined.join(",")))
                },
            );
        }
        {
            let mut attachments: Vec<Json> = Vec::new();
            for r in &all {
                if let Some(a) = r.get("attachments").as_json().and_then(Json::as_array) {
                    for item in a {
                        if !attachments.iter().any(|x| x.get("uri") == item.get("uri")) {
                            attachments.push(item.clone());
                        }
                    }
                }
            }
            merged.insert("attachments", Value::Json(Json::Array(attachments)));
        }
        for c in ["last_follow_up_at", "closed_at", "last_opportunity_at"] {
            let latest = all.iter().filter_map(|r| r.get(c).as_timestamp()).max();
            merged.insert(c, latest.into());
        }
        if writes("next_follow_up") {
            let next = all
                .iter()
                .filter_map(|r| r.get("next_follow_up").as_date())
                .min();
            merged.insert("next_follow_up", next.into());
        }
        let open: i64 = all
            .iter()
            .filter_map(|r| r.get("open_opportunities").as_int())
            .sum();
        merged.insert("open_opportunities", Value::Int(open));
        // A lock passes to the survivor only from an actor who may lock it
        // (as `set_locked` decides: a manager of its owner, who may transfer
        // it and does not hold it, or an administrator); a locked survivor
        // stays locked.
        if crate::pool::may_lock(actor, &survivor)
            && others
                .iter()
                .any(|r| r.get("locked").as_bool() == Some(true))
        {
            merged.insert("locked", true.into());
        }
        if Place::of_row(&survivor) == Place::Private
            && merged.get("closed_at").is_some_and(|v| !v.is_null())
        {
            merged.insert("place", Place::Deal.name().into());
        }
        self.derive(entity, &mut merged)?;
        let now = self.now();
        let company = actor.company_id.0;
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut changes = Vec::new();
        for (k, v) in &merged {
            if matches!(
                *k,
                "id" | "company_id" | "version" | "custom" | "updated_at"
            ) {
                continue;
            }
            let before = survivor.get(k);
            if before != v {
                values.push((*k, v.clone()));
                if !crate::records::is_derived(k) {
                    changes.push(FieldChange {
                        field: k.to_string(),
                        before: before.to_json(),
                        after: v.to_json(),
                    });
                }
            }
        }
        let old_custom = survivor
            .get("custom")
            .as_json()
            .cloned()
            .unwrap_or(Json::Null);
        let new_custom = Json::Object(custom);
        if old_custom != new_custom {
            changes.push(FieldChange {
                field: "custom".into(),
                before: old_custom,
                after: new_custom.clone(),
            });
            values.push(("custom", Value::Json(new_custom)));
        }
        // What the survivor's own fields became, for the event.
        let field_changes = changes.clone();
        let codes: Vec<Json> = others.iter().map(|o| o.get("code").to_json()).collect();
        changes.push(FieldChange {
            field: "merged".into(),
            before: Json::Null,
            after: Json::Array(codes.clone()),
        });
        values.push(("updated_at", Value::Timestamp(now)));
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::Customers,
            id: survivor.id(),
            expected_version: survivor.version(),
            values,
        });
        // Contacts of the others that duplicate one the survivor keeps are
        // merged into it (see `ContactMerges`).
        let contact_merges = self.plan_contact_merges(actor, &survivor, &others).await?;
        for (target, (row, fill)) in &contact_merges.survivors_targets {
            let changes = contact_fill_changes(row, fill);
            let mut values = fill.clone();
            values.push(("updated_at", Value::Timestamp(now)));
            cs.ops.push(Op::Update {
                table: Table::Contacts,
                id: *target,
                expected_version: row.version(),
                values,
            });
            cs.events.push(self.event(
                company,
                Table::Contacts,
                *target,
                "contact.updated".into(),
                json!({ "version": row.version() + 1, "changes": &changes }),
            ));
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Contacts,
                *target,
                "merge",
                changes,
            ));
        }
        // Every record pointing at the others moves to the survivor.
        let other_ids: Vec<Value> = others.iter().map(|o| Value::Id(o.id())).collect();
        let mut moved: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut moved_contacts = Vec::new();
        // The rows of each table read (and so moved), for the guards that
        // nothing else points at the others when the merge is written.
        let mut read: Vec<(Table, Vec<Uuid>)> = Vec::new();
        for table in Table::ALL {
            // Pool moves stay with the customer they happened to: the
            // others keep their own pool history.
            if matches!(
                table,
                Table::Customers | Table::CustomerKeys | Table::PoolMoves
            ) || table
                .column("customer_id")
                .is_none_or(|c| c.ty != crate::schema::ColType::Id)
            {
                continue;
            }
            let mut sel = Select::all(table, company, now);
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::In(col("customer_id"), other_ids.clone());
            let rows = self.store.select(&sel).await?.rows;
            read.push((table, rows.iter().map(Row::id).collect()));
            for r in rows {
                let mut v = vec![
                    ("customer_id", Value::Id(survivor.id())),
                    ("updated_at", Value::Timestamp(now)),
                ];
                if table == Table::Contacts {
                    v.push(("owner_id", survivor.get("owner_id").clone()));
                    v.push(("department_id", survivor.get("department_id").clone()));
                    moved_contacts.push(r.id());
                    // A duplicate goes to the recycle bin, merged into the
                    // contact it duplicates; a contact others merge into
                    // takes what it lacked.
                    if contact_merges.absorbed.contains_key(&r.id()) {
                        v.push(("deleted_at", Value::Timestamp(now)));
                    }
                    if let Some(fill) = contact_merges.others_fills.get(&r.id()) {
                        v.extend(fill.iter().cloned());
                    }
                }
                if let Some(target) = r
                    .get("contact_id")
                    .as_id()
                    .and_then(|c| contact_merges.absorbed.get(&c))
                {
                    v.push(("contact_id", Value::Id(target.0)));
                }
                // Each moved business record's history and consumers learn
                // its new customer (and a contact its new owner): contacts
                // and follow-ups as any update of theirs is announced, the
                // sales documents as moved (their updates say other
                // things); payments and invoices go with their contract.
                let mut moved_changes: Vec<FieldChange> = v
                    .iter()
                    .filter(|(k, val)| {
                        !matches!(*k, "updated_at" | "custom")
                            && !crate::records::is_derived(k)
                            && r.get(k) != val
                    })
                    .map(|(k, val)| FieldChange {
                        field: (*k).to_string(),
                        before: r.get(k).to_json(),
                        after: val.to_json(),
                    })
                    .collect();
                if table == Table::Contacts {
                    if let Some((_, fill)) = v.iter().find(|(k, _)| *k == "custom") {
                        moved_changes.push(FieldChange {
                            field: "custom".into(),
                            before: r.get("custom").to_json(),
                            after: fill.to_json(),
                        });
                    }
                    if let Some((_, name)) = contact_merges.absorbed.get(&r.id()) {
                        moved_changes.push(FieldChange {
                            field: "merged_into".into(),
                            before: Json::Null,
                            after: json!(name),
                        });
                    }
                }
                if let Some(e) = Entity::of_table(table).filter(|e| e.is_record()) {
                    let (kind, payload) = match e {
                        Entity::Contact | Entity::FollowUp => (
                            "updated",
                            json!({
                                "version": r.version() + 1,
                                "changes": &moved_changes,
                                "merged_into": survivor.get("code").to_json(),
                            }),
                        ),
                        _ => (
                            "moved",
                            json!({
                                "code": r.get("code").to_json(),
                                "changes": &moved_changes,
                                "merged_into": survivor.get("code").to_json(),
                            }),
                        ),
                    };
                    cs.events.push(self.event(
                        company,
                        table,
                        r.id(),
                        format!("{e}.{kind}"),
                        payload,
                    ));
                    cs.audit.push(self.audit(
                        Some(actor),
                        company,
                        table,
                        r.id(),
                        "merge",
                        moved_changes,
                    ));
                }
                cs.ops.push(Op::Update {
                    table,
                    id: r.id(),
                    expected_version: r.version(),
                    values: v,
                });
                *moved.entry(table.name()).or_default() += 1;
            }
        }
        let shares = self
            .carry_shares(actor, &survivor, &others, &mut cs)
            .await?;
        if shares > 0 {
            moved.insert(Table::Shares.name(), shares);
        }
        for o in &others {
            cs.ops.push(Op::Update {
                table: Table::Customers,
                id: o.id(),
                expected_version: o.version(),
                values: vec![
                    ("deleted_at", Value::Timestamp(now)),
                    ("merged_into", Value::Id(survivor.id())),
                    ("updated_at", Value::Timestamp(now)),
                ],
            });
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Customers,
                o.id(),
                "merge",
                vec![FieldChange {
                    field: "merged_into".into(),
                    before: Json::Null,
                    after: survivor.get("code").to_json(),
                }],
            ));
        }
        changes.push(FieldChange {
            field: "moved".into(),
            before: Json::Null,
            after: json!(moved),
        });
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::Customers,
            survivor.id(),
            "merge",
            changes,
        ));
        cs.events.push(self.event(
            company,
            Table::Customers,
            survivor.id(),
            "customer.merged".into(),
            json!({
                "code": survivor.get("code").to_json(),
                "version": survivor.version() + 1,
                "changes": field_changes,
                "merged": others.iter().map(|o| o.id().to_string()).collect::<Vec<_>>(),
                "merged_codes": codes,
                "moved": moved,
            }),
        ));
        // A record added to one of the others meanwhile would stay behind,
        // pointing at a customer in the recycle bin (merged away, so never
        // restored nor purged) and missing from the survivor. A contact, a
        // quote or a contract added meanwhile leaves the customer's version
        // alone: its create guards the customer under the key these guards
        // take, so one of the two writes sees the other. (A follow-up or an
        // opportunity updates its customer, a payment or an invoice its
        // contract: versions the merge carries catch those too; the guards
        // name what was added.)
        let other_rows: Vec<&Row> = others.iter().collect();
        let guard = self.no_other_contacts_guard(company, &other_rows, &moved_contacts);
        cs.guards.push(guard);
        for (table, ids) in read {
            // Contacts have their guard above; a payment or an invoice
            // bumps its contract, which the merge writes at the version it
            // read (and neither table is indexed by customer).
            if !matches!(table, Table::Contacts | Table::Payments | Table::Invoices) {
                cs.guards.push(self.nothing_added_to_merged_guard(
                    company,
                    table,
                    &other_rows,
                    ids,
                ));
            }
        }
        self.apply_indexed(cs).await?;
        self.get_record(actor, entity, spec.survivor).await
    }

    /// Which contacts of the merged customers duplicate another by the
    /// contact duplicate rule (one mobile per customer, live contacts): each
    /// live contact of the others whose mobile a live contact of the
    /// survivor has — or one of another merged customer met before it (the
    /// others in order, each's contacts oldest first) — is merged into that
    /// contact, which takes the fields it lacks (every field, custom ones
    /// too, those the actor may not write or see as well) from it.
    async fn plan_contact_merges(
        &self,
        actor: &Actor,
        survivor: &Row,
        others: &[Row],
    ) -> Result<ContactMerges> {
        let company = actor.company_id.0;
        let live_contacts = |customer: Uuid| {
            let mut sel = Select::all(Table::Contacts, company, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                eq("customer_id", Value::Id(customer)),
                Filter::IsNull(col("deleted_at")),
                Filter::NotNull(col("mobile_key")),
            ]);
            sel
        };
        let mut plan = ContactMerges::default();
        // The contact holding each mobile key, with its row and what it
        // takes so far.
        let mut holders: BTreeMap<String, Uuid> = BTreeMap::new();
        let mut state: BTreeMap<Uuid, (Row, Fill, bool)> = BTreeMap::new();
        let sorted = |mut rows: Vec<Row>| {
            rows.sort_by_key(|r| (r.get("created_at").as_timestamp(), r.id()));
            rows
        };
        let mut lists = vec![(
            true,
            sorted(self.store.select(&live_contacts(survivor.id())).await?.rows),
        )];
        for o in others {
            lists.push((
                false,
                sorted(self.store.select(&live_contacts(o.id())).await?.rows),
            ));
        }
        for (of_survivor, rows) in lists {
            for r in rows {
                let Some(key) = r.get("mobile_key").as_text().map(str::to_string) else {
                    continue;
                };
                let Some(target) = holders.get(&key).copied() else {
                    holders.insert(key, r.id());
                    state.insert(r.id(), (r, Vec::new(), of_survivor));
                    continue;
                };
                let (trow, fill, _) = state.get_mut(&target).expect("held");
                let current = |fill: &Fill, c: &str| -> Value {
                    fill.iter()
                        .rev()
                        .find(|(k, _)| *k == c)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| trow.get(c).clone())
                };
                for def in Entity::Contact.fields().iter().filter(|d| d.writable) {
                    // Every field, those the actor may not write too: the
                    // merged contact is not restored.
                    if def.name == "customer_id" || matches!(def.kind, FieldKind::Ref(_)) {
                        continue;
                    }
                    if current(fill, def.name).is_null() && !r.get(def.name).is_null() {
                        let mut cols = match def.kind {
                            FieldKind::Phone(k) | FieldKind::Mobile(k) => vec![def.name, k],
                            _ => vec![def.name],
                        };
                        if def.name == "birthday" {
                            cols.push("birthday_md");
                        }
                        for c in cols {
                            fill.push((c, r.get(c).clone()));
                        }
                    }
                }
                let mut custom = match current(fill, "custom").as_json() {
                    Some(Json::Object(m)) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                let mut custom_filled = false;
                if let Some(obj) = r.get("custom").as_json().and_then(Json::as_object) {
                    for (k, v) in obj {
                        if custom.get(k).is_none_or(Json::is_null) && !v.is_null() {
                            custom.insert(k.clone(), v.clone());
                            custom_filled = true;
                        }
                    }
                }
                if custom_filled {
                    fill.retain(|(k, _)| *k != "custom");
                    fill.push(("custom", Value::Json(Json::Object(custom))));
                }
                let name = trow.get("name").as_text().unwrap_or_default().to_string();
                plan.absorbed.insert(r.id(), (target, name));
            }
        }
        for (id, (row, fill, of_survivor)) in state {
            if fill.is_empty() {
                continue;
            }
            if of_survivor {
                plan.survivors_targets.insert(id, (row, fill));
            } else {
                plan.others_fills.insert(id, fill);
            }
        }
        Ok(plan)
    }

    /// A guard that no row of `table` (live or in the recycle bin) points at
    /// one of `others` besides `read` (those the merge read and moves) when
    /// the merge is written: one added meanwhile would be left on a
    /// merged-away customer. Under the key a create of a contact, quote or
    /// contract for the customer takes
    /// ([`customer_live_guard`](Crm::customer_live_guard)).
    fn nothing_added_to_merged_guard(
        &self,
        company: Uuid,
        table: Table,
        others: &[&Row],
        read: Vec<Uuid>,
    ) -> Guard {
        let mut sel = Select::all(table, company, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = Filter::And(vec![
            Filter::In(
                col("customer_id"),
                others.iter().map(|o| Value::Id(o.id())).collect(),
            ),
            Filter::not_among(col("id"), read),
        ]);
        let what = match table {
            Table::FollowUps => "a follow-up".to_string(),
            Table::Opportunities => "an opportunity".to_string(),
            Table::Quotes => "a quote".to_string(),
            Table::Contracts => "a contract".to_string(),
            Table::Payments => "a payment".to_string(),
            Table::Invoices => "an invoice".to_string(),
            t => format!("a record of {}", t.name()),
        };
        let codes: Vec<&str> = others
            .iter()
            .map(|o| o.get("code").as_text().unwrap_or_default())
            .collect();
        Guard {
            kind: GuardKind::State,
            keys: others
                .iter()
                .map(|o| crate::records::customer_contacts_key(company, o.id()))
                .collect(),
            select: sel,
            message: format!(
                "{what} was added to customer {} meanwhile; nothing was merged: try the merge again",
                codes.join(", ")
            ),
        }
    }

    /// Adds to a merge's change set the carrying over of the others' live
    /// shares (shares point at a customer by entity and record id) to the
    /// survivor, with an audit entry and an event on the survivor for each;
    /// returns how many. Only when the actor may share the survivor (a
    /// carried share gives its user the survivor); not for the survivor's
    /// owner, nor for a user who already has a share row on the survivor
    /// (ended or not: one row per record and user); of several shares of the
    /// others for one user, the one giving most (write over read, then the
    /// latest end) is carried. A share of the survivor with such a user
    /// meanwhile makes the merge fail rather than leave two.
    async fn carry_shares(
        &self,
        actor: &Actor,
        survivor: &Row,
        others: &[Row],
        cs: &mut ChangeSet,
    ) -> Result<usize> {
        // Carrying a share gives its user the survivor: only for who may
        // share it.
        if !actor.covers(Entity::Customer, Action::Share, survivor) {
            return Ok(0);
        }
        let company = actor.company_id.0;
        let now = self.now();
        let table = Table::Customers.name();
        // Share rows of customers, ended or not (a record keeps one row per
        // user, as sharing keeps it).
        let any = || {
            let mut sel = Select::all(Table::Shares, company, now);
            sel.filter = Filter::And(vec![Filter::Cmp(col("entity"), CmpOp::Eq, table.into())]);
            sel
        };
        let mut sel = any();
        if let Filter::And(f) = &mut sel.filter {
            f.push(Filter::In(
                col("record_id"),
                std::iter::once(survivor)
                    .chain(others)
                    .map(|r| Value::Id(r.id()))
                    .collect(),
            ));
        }
        let all_rows = self.store.select(&sel).await?.rows;
        let owner = survivor.get("owner_id").as_id();
        // A user with a row on the survivor keeps theirs (one row each).
        let holders: HashSet<Uuid> = all_rows
            .iter()
            .filter(|r| r.get("record_id").as_id() == Some(survivor.id()))
            .filter_map(|r| r.get("user_id").as_id())
            .collect();
        let rows: Vec<Row> = all_rows
            .into_iter()
            .filter(|r| r.get("expires_at").as_timestamp().is_none_or(|e| e > now))
            .collect();
        // What a share gives: write over read, then the latest end.
        let gives = |r: &Row| {
            (
                r.get("access").as_text() == Some("write"),
                r.get("expires_at")
                    .as_timestamp()
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            )
        };
        let mut carried: BTreeMap<Uuid, &Row> = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r.get("record_id").as_id() != Some(survivor.id()))
        {
            let Some(user) = r.get("user_id").as_id() else {
                continue;
            };
            if Some(user) == owner || holders.contains(&user) {
                continue;
            }
            let better = carried.get(&user).is_none_or(|c| gives(r) > gives(c));
            if better {
                carried.insert(user, r);
            }
        }
        let code = survivor.get("code").as_text().unwrap_or_default();
        for (user, r) in &carried {
            cs.ops.push(Op::Update {
                table: Table::Shares,
                id: r.id(),
                expected_version: r.version(),
                values: vec![
                    ("record_id", Value::Id(survivor.id())),
                    ("updated_at", Value::Timestamp(now)),
                ],
            });
            let mut sel = any();
            if let Filter::And(f) = &mut sel.filter {
                f.push(Filter::Cmp(
                    col("record_id"),
                    CmpOp::Eq,
                    Value::Id(survivor.id()),
                ));
                f.push(Filter::Cmp(col("user_id"), CmpOp::Eq, Value::Id(*user)));
            }
            let username = self
                .store
                .get(Table::Users, *user)
                .await?
                .and_then(|u| u.get("username").as_text().map(str::to_string))
                .unwrap_or_else(|| user.to_string());
            // The key sharing the survivor with this user takes.
            cs.guards.push(crate::store::Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![format!("{company}:shares:{table}:{}:{user}", survivor.id())],
                select: sel,
                message: format!(
                    "customer {code} was shared with {username} meanwhile; merge again"
                ),
            });
            let access = r.get("access").as_text().unwrap_or("read").to_string();
            let expires_at = r.get("expires_at").as_timestamp();
            let from = others
                .iter()
                .find(|o| r.get("record_id").as_id() == Some(o.id()))
                .map(|o| o.get("code").to_json())
                .unwrap_or(Json::Null);
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::Customers,
                survivor.id(),
                "share",
                vec![FieldChange {
                    field: format!("share:{username}"),
                    before: Json::Null,
                    after: json!({"access": access, "expires_at": expires_at, "merged_from": from}),
                }],
            ));
            cs.events.push(self.event(
                company,
                Table::Customers,
                survivor.id(),
                "customer.shared".into(),
                json!({"user_id": user, "access": access, "expires_at": expires_at}),
            ));
        }
        Ok(carried.len())
    }

    /// Recomputes every customer's keys and the duplicate flags of the
    /// company (administrators): after changing which custom fields are
    /// keys, or to repair keys written outside the engine. Works page by
    /// page; safe to run again.
    pub async fn rebuild_duplicate_keys(&self, actor: &Actor) -> Result<RebuildStats> {
        if !actor.is_admin() {
            return Err(Error::Forbidden(format!(
                "{} may not rebuild the duplicate keys: administrators only",
                actor.display_name
            )));
        }
        let company = actor.company_id.0;
        let now = self.now();
        let modes = self.dedupe_modes(company).await?;
        let custom_keys = modes.custom_keys();
        let mut stats = RebuildStats::default();
        let mut after: Option<Vec<Value>> = None;
        loop {
            let mut sel = Select::all(Table::Customers, company, now);
            sel.lifecycle = Lifecycle::Any;
            // No sort key: the store orders by id alone, along its primary key.
            sel.sort = Vec::new();
            sel.paging = Paging::Keyset {
                after: after.clone(),
                limit: 1000,
            };
            let page = self.store.select(&sel).await?;
            if page.rows.is_empty() {
                break;
            }
            stats.customers += page.rows.len() as u64;
            let mut ksel = Select::all(Table::CustomerKeys, company, now);
            ksel.filter = Filter::In(
                col("customer_id"),
                page.rows.iter().map(|r| Value::Id(r.id())).collect(),
            );
            let mut have: HashMap<Uuid, Vec<Row>> = HashMap::new();
            for r in self.store.select(&ksel).await?.rows {
                have.entry(r.get("customer_id").as_id().unwrap_or_default())
                    .or_default()
                    .push(r);
            }
            let mut cs = ChangeSet::default();
            // Every key touched on this page is flagged again below, after
            // the page is written: a group is right once its last member's
            // page has run.
            let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
            for c in &page.rows {
                let want = if c.get("deleted_at").is_null() {
                    keys_of(&|k: &str| c.get(k).clone(), &custom_keys)
                } else {
                    Vec::new()
                };
                let rows = have.remove(&c.id()).unwrap_or_default();
                let mut kept = BTreeSet::new();
                for r in rows {
                    let k = (
                        r.get("kind").as_text().unwrap_or_default().to_string(),
                        r.get("key").as_text().unwrap_or_default().to_string(),
                    );
                    touched.insert(k.clone());
                    if want.contains(&k) && kept.insert(k) {
                        continue;
                    }
                    stats.removed += 1;
                    cs.ops.push(Op::Delete {
                        table: Table::CustomerKeys,
                        id: r.id(),
                    });
                }
                for (kind, key) in want.into_iter().filter(|k| !kept.contains(k)) {
                    touched.insert((kind.clone(), key.clone()));
                    if key_column(&kind).is_some() {
                        // A row only while shared: see `reflag`.
                        continue;
                    }
                    stats.added += 1;
                    cs.ops
                        .push(key_row(self, company, c.id(), &kind, &key, false));
                }
            }
            self.apply(cs).await?;
            let flags = self.reflag(company, &touched).await?;
            for op in &flags.ops {
                match op {
                    Op::Insert { .. } => stats.added += 1,
                    Op::Delete { .. } => stats.removed += 1,
                    _ => stats.flagged += 1,
                }
            }
            self.apply(flags).await?;
            match page.rows.last() {
                Some(last) if page.has_more => after = Some(vec![Value::Id(last.id())]),
                _ => break,
            }
        }
        Ok(stats)
    }

    /// Sets the duplicate flag of every stored row of these keys to whether
    /// another live row shares its key, and gives the column keys (see
    /// [`key_column`]) a flagged row per holder while shared and none
    /// otherwise: one probe per kind and 500 keys.
    async fn reflag(&self, company: Uuid, keys: &BTreeSet<(String, String)>) -> Result<ChangeSet> {
        let now = self.now();
        let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (kind, key) in keys {
            by_kind.entry(kind.as_str()).or_default().push(key.clone());
        }
        let mut cs = ChangeSet::default();
        for (kind, keys) in by_kind {
            for chunk in keys.chunks(500) {
                let mut sel = Select::all(Table::CustomerKeys, company, now);
                sel.filter = Filter::And(vec![
                    eq("kind", kind),
                    Filter::In(
                        col("key"),
                        chunk.iter().map(|k| Value::Text(k.clone())).collect(),
                    ),
                ]);
                let mut groups: HashMap<String, Vec<Row>> = HashMap::new();
                for r in self.store.select(&sel).await?.rows {
                    groups
                        .entry(r.get("key").as_text().unwrap_or_default().to_string())
                        .or_default()
                        .push(r);
                }
                if key_column(kind).is_some() {
                    let mut holders: HashMap<String, BTreeSet<Uuid>> = HashMap::new();
                    for (cid, key) in self.column_key_holders(company, kind, chunk).await? {
                        holders.entry(key).or_default().insert(cid);
                    }
                    for key in chunk {
                        let rows = groups.remove(key).unwrap_or_default();
                        let all = holders.remove(key).unwrap_or_default();
                        let (ops, missing) = sync_shared_key(&all, &rows, now);
                        cs.ops.extend(ops);
                        for c in missing {
                            cs.ops.push(key_row(self, company, c, kind, key, true));
                        }
                    }
                    continue;
                }
                for rows in groups.values() {
                    let dup = rows.len() > 1;
                    for r in rows
                        .iter()
                        .filter(|r| r.get("duplicate").as_bool() != Some(dup))
                    {
                        cs.ops.push(flag(r, dup, now));
                    }
                }
            }
        }
        Ok(cs)
    }
}
