//! Business records — customers, contacts, follow-ups — through one generic
//! path: input fields are validated and normalised by their kind, checked
//! against the actor's permissions and field rules, written as one change set
//! with audit entries and outbox events, and read back masked.

use crate::auth::{Action, Actor, FieldAccess, mask};
use crate::crm::Crm;
use crate::custom::{CustomFieldDef, CustomFieldType};
use crate::entity::{Entity, FieldDef, FieldKind, STANDARD_FIELDS};
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::{DepartmentId, RecordId, UserId};
use crate::query::{Cond, ListQuery, MAX_PAGE_SIZE, Page, PageRequest};
use crate::schema::{ColType, Table};
use crate::store::{
    AuditEntry, ChangeSet, CmpOp, Col, FieldChange, Filter, Guard, Lifecycle, Op, Paging, Payload,
    Row, Scope, Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Input fields by name: API names, Chinese or English labels, `custom.key`
/// or a custom field's key or label. Values are JSON (mostly strings).
pub type Fields = BTreeMap<String, Json>;

/// A business record as an actor sees it (masked and hidden fields applied).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// The entity.
    pub entity: Entity,
    /// The id.
    pub id: RecordId,
    /// The human code, e.g. `KH-20261127-0001`.
    pub code: Option<String>,
    /// The version, to pass back when updating.
    pub version: i64,
    /// The owner (负责人).
    pub owner_id: Option<UserId>,
    /// The owner's department.
    pub department_id: Option<DepartmentId>,
    /// Who created it.
    pub created_by: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was deleted (in the recycle bin).
    pub deleted_at: Option<DateTime<Utc>>,
    /// When it was archived to history.
    pub archived_at: Option<DateTime<Utc>>,
    /// Built-in fields by API name (hidden fields are absent).
    pub fields: BTreeMap<String, Json>,
    /// Custom fields by key (hidden fields are absent).
    pub custom: BTreeMap<String, Json>,
}

impl Record {
    /// A built-in field as text, if set.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Json::as_str)
    }
}

/// How a share grants access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareAccess {
    /// See the record.
    Read,
    /// See and edit the record.
    Write,
}

impl std::str::FromStr for ShareAccess {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "read" | "r" | "只读" => Ok(ShareAccess::Read),
            "write" | "rw" | "read_write" | "读写" => Ok(ShareAccess::Write),
            other => Err(format!(
                "unknown share access '{other}'; expected read or write"
            )),
        }
    }
}

/// A live share of a record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Share {
    /// The user it is shared with.
    pub user_id: UserId,
    /// The access.
    pub access: ShareAccess,
    /// When it ends, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who shared it.
    pub granted_by: UserId,
}

/// The outcome of a batch operation, record by record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BatchReport {
    /// Records the operation was applied to.
    pub done: Vec<RecordId>,
    /// Records refused, with the reason.
    pub refused: Vec<(RecordId, String)>,
}

/// Parses a date in the forms people type and spreadsheets hold:
/// `2026-11-27`, `2026/11/27`, `2026.11.27`, `20261127`, `2026年11月27日`
/// (full-width digits too), optionally followed by a time (` 14:30`,
/// `T14:30:00`), whose date part is kept. The year has four digits (1000
/// to 9999), the compact form exactly eight: `26/11/27` or `2026111` are
/// refused rather than read as the year 26 or a guessed month.
pub fn parse_date(s: &str) -> std::result::Result<NaiveDate, String> {
    let t = s.trim();
    if let Some(d) = iso_date(t) {
        return Ok(d);
    }
    let not_a_date = || format!("'{t}' is not a date (expected e.g. 2026-11-27)");
    let cleaned: String = t
        .chars()
        .map(crate::validate::halfwidth)
        .collect::<String>()
        .replace(['年', '月'], "-")
        .replace('日', "")
        .replace(['/', '.'], "-")
        .replace('T', " ");
    let cleaned = cleaned.trim();
    let (date, time) = match cleaned.split_once(' ') {
        Some((d, tm)) => (d.trim_end_matches('-'), Some(tm.trim())),
        None => (cleaned.trim_end_matches('-'), None),
    };
    if let Some(tm) = time {
        NaiveTime::parse_from_str(tm, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(tm, "%H:%M"))
            .map_err(|_| not_a_date())?;
    }
    let digits = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let (y, m, d) = if digits(date, 8, 8) {
        (&date[..4], &date[4..6], &date[6..])
    } else {
        let mut parts = date.split('-');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(y), Some(m), Some(d), None)
                if digits(y, 4, 4) && digits(m, 1, 2) && digits(d, 1, 2) =>
            {
                (y, m, d)
            }
            _ => return Err(not_a_date()),
        }
    };
    let num = |p: &str| p.parse::<u32>().map_err(|_| not_a_date());
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if y < 1000 {
        return Err(format!(
            "'{t}': the year {y} is out of range (years 1000 to 9999 are accepted)"
        ));
    }
    if !(1..=12).contains(&m) {
        return Err(format!("'{t}': there is no month {m}"));
    }
    NaiveDate::from_ymd_opt(y as i32, m, d)
        .ok_or_else(|| format!("'{t}': there is no day {d} in month {m} of {y}"))
}

/// A valid date written exactly `YYYY-MM-DD` (what spreadsheet date cells
/// and the API give), read without a format string; anything else is left
/// to the general parser.
fn iso_date(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok().filter(|y| *y >= 1000)?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

/// A local date and time in the forms [`Crm::parse_datetime`] accepts: a
/// date as [`parse_date`] reads it (`2026-11-27`, `2026/11/27`,
/// `2026.11.27`, `20261127`, `2026年11月27日`, full-width digits), optionally
/// followed by a time `14:30` or `14:30:59` (full-width digits and `：`
/// too). A time that cannot be read refuses the whole text: it is never
/// dropped.
fn local_datetime(t: &str) -> std::result::Result<NaiveDateTime, ()> {
    let cleaned: String = t
        .chars()
        .map(crate::validate::halfwidth)
        .map(|c| match c {
            // 日 (or T) ends the date part.
            '日' | 'T' => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim();
    let (date, time) = match cleaned.split_once(char::is_whitespace) {
        Some((d, tm)) => (d, Some(tm.trim())),
        None => (cleaned, None),
    };
    let date = parse_date(date).map_err(|_| ())?;
    let time = match time {
        None => NaiveTime::MIN,
        Some(tm) => NaiveTime::parse_from_str(tm, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(tm, "%H:%M"))
            .map_err(|_| ())?,
    };
    Ok(date.and_time(time))
}

/// A valid local date and time written exactly `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (what spreadsheet cells
/// give), read without format strings; anything else is left to
/// [`local_datetime`].
fn iso_local_datetime(t: &str) -> Option<NaiveDateTime> {
    if !t.is_ascii() || !matches!(t.len(), 10 | 16 | 19) {
        return None;
    }
    let date = iso_date(&t[..10])?;
    let b = t.as_bytes();
    let two = |i: usize| {
        let (h, l) = (b[i], b[i + 1]);
        (h.is_ascii_digit() && l.is_ascii_digit())
            .then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
    };
    let (h, m, sec) = match t.len() {
        10 => (0, 0, 0),
        16 if b[10] == b' ' && b[13] == b':' => (two(11)?, two(14)?, 0),
        19 if b[10] == b' ' && b[13] == b':' && b[16] == b':' => (two(11)?, two(14)?, two(17)?),
        _ => return None,
    };
    date.and_hms_opt(h, m, sec)
}

/// The lock key of a customer's contacts: creating a contact for a stored
/// customer takes it, and so do merging the customer away and deleting it,
/// which move or delete the contacts they have read.
pub(crate) fn customer_contacts_key(company: Uuid, customer: Uuid) -> String {
    format!("{company}:customer_contacts:{customer}")
}

/// Tries of a follow-up's write (create, edit, delete, restore, purge) whose
/// customer someone else changed since it was read: each try reads the
/// customer again and computes its follow-up dates again. Each failed try
/// means another write of that customer committed.
pub(crate) const FOLLOW_UP_TRIES: usize = crate::crm::WRITE_TRIES as usize;

/// Whether an error is a version conflict on a customer (a follow-up's
/// change set writes one customer only: its own).
pub(crate) fn is_customer_conflict(e: &Error) -> bool {
    matches!(e, Error::Conflict { entity, .. } if entity == Entity::Customer.name())
}

/// The refusal of a follow-up's next date (`verb`: set, change) to who may
/// not edit its customer: the date plans the customer's next follow-up.
fn may_not_plan(actor: &Actor, customer: &Row, verb: &str, instead: &str) -> Error {
    Error::Forbidden(format!(
        "{} may not {verb} next_follow_up_at (下次跟进时间): it plans the next follow-up of \
         customer {}, which they may not edit; {instead}, or ask the customer's owner to plan it",
        actor.display_name,
        customer.get("code").as_text().unwrap_or_default()
    ))
}

/// The customer a change set creating a follow-up writes the follow-up
/// dates of.
fn follow_up_customer_of(cs: &ChangeSet) -> Option<Uuid> {
    cs.ops.iter().find_map(|op| match op {
        Op::Insert {
            table: Table::FollowUps,
            values,
        } => values
            .iter()
            .find(|(k, _)| *k == "customer_id")
            .and_then(|(_, v)| v.as_id()),
        _ => None,
    })
}

impl Crm {
    /// A guard that `customer` is still live (not in the recycle bin) when
    /// the change set commits, for a change set creating a contact of it: a
    /// concurrent merge or delete of the customer guards the same key
    /// ([`Crm::no_other_contacts_guard`]).
    pub(crate) fn customer_live_guard(&self, company: Uuid, customer: &Row) -> Guard {
        self.deleted_meanwhile_guard(
            Table::Customers,
            company,
            &[customer.id()],
            vec![customer_contacts_key(company, customer.id())],
            format!(
                "customer {} was deleted or merged into another meanwhile",
                customer.get("code").as_text().unwrap_or_default()
            ),
        )
    }

    /// A guard that the customers of `owners` still have the owner read
    /// (`None`: none) when the change set commits, for a change set
    /// creating contacts of them with those owners (a single create, an
    /// import's batch): a claim, release, recycling, assignment or transfer
    /// meanwhile would leave the contacts with the old owner. Other changes
    /// of a customer (a follow-up, an edit) do not matter. Takes the key
    /// those writers' [`Crm::no_other_contacts_guard`] takes.
    pub(crate) fn owners_unchanged_guard(
        &self,
        company: Uuid,
        owners: &BTreeMap<Uuid, Option<Uuid>>,
        message: String,
    ) -> Guard {
        let mut by_owner: BTreeMap<Option<Uuid>, Vec<Value>> = BTreeMap::new();
        for (customer, owner) in owners {
            by_owner
                .entry(*owner)
                .or_default()
                .push(Value::Id(*customer));
        }
        let owner = || Col::Column("owner_id");
        let moved = by_owner
            .into_iter()
            .map(|(o, ids)| {
                Filter::And(vec![
                    Filter::In(Col::Column("id"), ids),
                    match o {
                        // `Ne` is "is distinct from": a NULL owner matches.
                        Some(o) => Filter::Cmp(owner(), CmpOp::Ne, Value::Id(o)),
                        None => Filter::NotNull(owner()),
                    },
                ])
            })
            .collect();
        let mut select = Select::all(Table::Customers, company, self.now());
        select.lifecycle = Lifecycle::Any;
        select.filter = Filter::Or(moved);
        Guard {
            kind: crate::store::GuardKind::State,
            keys: owners
                .keys()
                .map(|id| customer_contacts_key(company, *id))
                .collect(),
            select,
            message,
        }
    }

    /// A guard that `customers` have no live contacts besides `handled`
    /// (those the change set moves or deletes) when it commits, for a change
    /// set merging the customers away or deleting them: a contact created
    /// meanwhile would be left pointing at a customer in the recycle bin.
    /// Takes the key creating a contact takes ([`Crm::customer_live_guard`]).
    pub(crate) fn no_other_contacts_guard(
        &self,
        company: Uuid,
        customers: &[&Row],
        handled: &[Uuid],
    ) -> Guard {
        let mut sel = Select::all(Table::Contacts, company, self.now());
        sel.filter = Filter::And(vec![
            Filter::In(
                Col::Column("customer_id"),
                customers.iter().map(|c| Value::Id(c.id())).collect(),
            ),
            Filter::IsNull(Col::Column("deleted_at")),
            Filter::not_among(Col::Column("id"), handled.iter().copied()),
        ]);
        let codes: Vec<&str> = customers
            .iter()
            .map(|c| c.get("code").as_text().unwrap_or_default())
            .collect();
        Guard {
            kind: crate::store::GuardKind::State,
            keys: customers
                .iter()
                .map(|c| customer_contacts_key(company, c.id()))
                .collect(),
            select: sel,
            message: format!(
                "a contact was added to customer {} meanwhile; try again",
                codes.join(", ")
            ),
        }
    }
}

impl Crm {
    /// Parses an instant: RFC 3339, or a local `YYYY-MM-DD HH:MM[:SS]` or a
    /// date (midnight) in the companies' time zone.
    pub fn parse_datetime(&self, s: &str) -> std::result::Result<DateTime<Utc>, String> {
        let t = s.trim();
        // Without an offset the text is never RFC 3339.
        let local = match iso_local_datetime(t) {
            Some(local) => local,
            None => {
                if let Ok(d) = DateTime::parse_from_rfc3339(t) {
                    // A leap second as every store keeps it.
                    return Ok(crate::clock::without_leap_second(d.with_timezone(&Utc)));
                }
                local_datetime(t).map_err(|_| {
                    format!("'{t}' is not a date and time (expected e.g. 2026-11-27 14:30)")
                })?
            }
        };
        self.config
            .utc_offset
            .from_local_datetime(&local)
            .single()
            .map(|d| crate::clock::without_leap_second(d.with_timezone(&Utc)))
            .ok_or_else(|| format!("'{t}' is not a valid local time"))
    }
}

/// The scope a list of `entity` reads with, and a filter to hold beside
/// it: the actor's read scope, and for follow-ups also those of customers
/// the actor may read, as a single follow-up is read with its customer
/// (see `Crm::can_on_row`): a customer's new owner lists the follow-ups
/// its former owner logged.
pub(crate) fn read_scope(actor: &Actor, entity: Entity, now: DateTime<Utc>) -> (Scope, Filter) {
    let Some(scope) = actor.store_scope(entity, Action::Read) else {
        return (
            Scope::Restricted {
                owners: Vec::new(),
                departments: Vec::new(),
                shared_with: None,
            },
            Filter::True,
        );
    };
    if entity != Entity::FollowUp || scope == Scope::All || !actor.can(entity, Action::Read) {
        return (scope, Filter::True);
    }
    let customers = actor
        .store_scope(Entity::Customer, Action::Read)
        .map(|s| s.as_filter(Table::Customers, now))
        .unwrap_or(Filter::Or(Vec::new()));
    let widened = Filter::Or(vec![
        scope.as_filter(entity.table(), now),
        Filter::Refers {
            fk: "customer_id",
            table: Table::Customers,
            filter: Box::new(customers),
        },
    ]);
    (Scope::All, widened)
}

/// Refuses the resolved conditions of a caller's query when, together,
/// they hold more terms and values than every store binds alike
/// ([`crate::store::MAX_FILTER_WEIGHT`]).
pub(crate) fn check_filter_weight(conditions: &[Filter]) -> Result<()> {
    let weight: usize = conditions.iter().map(Filter::weight).sum();
    if weight > crate::store::MAX_FILTER_WEIGHT {
        return Err(Error::invalid(
            "filter",
            format!(
                "the conditions hold {weight} terms and values, more than the {} a query may \
                 hold; put long lists of values into one `in` condition (条件过多)",
                crate::store::MAX_FILTER_WEIGHT
            ),
        ));
    }
    Ok(())
}

/// The longest free text kept on one line: an address. Longer free text
/// (notes, a follow-up's content) may hold several lines.
const SINGLE_LINE_MAX: usize = 256;

/// Whether a built-in field holds multi-line free text (notes, a
/// follow-up's content), kept as typed, invisible characters included (a
/// zero-width joiner builds emoji sequences there).
pub(crate) fn is_multiline(def: &FieldDef) -> bool {
    matches!(def.kind, FieldKind::Text(max) if max > SINGLE_LINE_MAX)
}

/// Whether `col` is the generated record code of a business record (not a
/// product's own code, which keeps its letter case).
fn field_is_record_code(entity: Entity, col: &Col) -> bool {
    entity.is_record() && matches!(col, Col::Column("code"))
}

pub(crate) fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => {
            // NUL cannot be stored by every backend and is never meaningful.
            let t = s.trim();
            if t.contains('\0') {
                let t = t.replace('\0', "");
                (!t.is_empty()).then_some(t)
            } else {
                (!t.is_empty()).then(|| t.to_owned())
            }
        }
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn tags_to_column(v: &Json) -> Option<String> {
    let mut tags: Vec<String> = match v {
        Json::Array(a) => a
            .iter()
            .filter_map(json_text)
            .map(|t| crate::validate::strip_invisible(&t).trim().to_string())
            .collect(),
        other => json_text(other)
            .map(|s| {
                s.split([',', '，', ';', '；', '、'])
                    .map(|t| crate::validate::strip_invisible(t).trim().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    };
    tags.retain(|t| !t.is_empty());
    tags.iter_mut().for_each(|t| *t = t.replace(',', ""));
    tags.sort();
    tags.dedup();
    (!tags.is_empty()).then(|| format!(",{},", tags.join(",")))
}

fn tags_from_column(v: &Value) -> Json {
    match v.as_text() {
        Some(s) => Json::Array(
            s.split(',')
                .filter(|t| !t.is_empty())
                .map(|t| Json::String(t.to_string()))
                .collect(),
        ),
        None => Json::Array(Vec::new()),
    }
}

/// What [`Crm::prepare`] yields: column values to set, custom values to
/// merge, and the owner named in the input.
pub(crate) type Prepared = (
    BTreeMap<&'static str, Value>,
    BTreeMap<String, Json>,
    Option<UserId>,
);

/// Values resolved once for many inputs (bulk imports), consulted by
/// [`Crm::prepare_with`] before the store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lookups {
    /// Options of built-in choice fields, by field API name.
    pub(crate) picklists: std::collections::HashMap<&'static str, Vec<String>>,
    /// The entity and version of each list in `picklists` (0: the
    /// defaults, no list set), for the guards of the writes that give a
    /// value from it ([`crate::custom::picklist_guard`]).
    pub(crate) picklist_versions: std::collections::HashMap<&'static str, (Entity, i64)>,
    /// The company's users by id and by username; `None` reads the store.
    pub(crate) users: Option<std::collections::HashMap<String, crate::org::User>>,
    /// Referenced records by entity and the key given (id or code).
    pub(crate) refs: std::collections::HashMap<(Entity, String), Uuid>,
    /// Display names several of the company's users share (with `users`):
    /// such a name names no one, and is refused as ambiguous, not unknown.
    pub(crate) shared_user_names: std::collections::HashSet<String>,
    /// Names (as given) that several referenced records answer to (two
    /// individual customers both called 张伟): such a name names no one,
    /// and is refused as ambiguous, not unknown.
    pub(crate) shared_ref_names: std::collections::HashSet<(Entity, String)>,
}

impl Lookups {
    /// Why `key` names no user: a display name several users share, or
    /// no user at all.
    pub(crate) fn missing_user(&self, key: &str) -> String {
        if self.shared_user_names.contains(key.trim()) {
            format!(
                "'{}' is the name of several users; give the username",
                key.trim()
            )
        } else {
            format!("no user '{key}'")
        }
    }
}

/// Which deactivated users [`Crm::prepare_keeping`] lets a user-type
/// custom field hold: a deactivated user is given nothing new, as an owner
/// is not, but a record keeps the one it holds.
#[derive(Clone, Copy)]
pub(crate) enum Inactive<'a> {
    /// None (a new record, an import row).
    Refused,
    /// The one each field holds in these stored custom values (an edit
    /// naming the value the record has).
    Kept(&'a Json),
    /// Any, the owner too: nothing is written (a duplicate check by the
    /// value), or the caller checks them against the stored record (an
    /// import row, once it is known to update one).
    Allowed,
}

impl Inactive<'_> {
    /// Whether the custom field `key` may be given the deactivated `user`.
    fn allows(self, key: &str, user: UserId) -> bool {
        match self {
            Inactive::Refused => false,
            Inactive::Allowed => true,
            Inactive::Kept(stored) => {
                stored
                    .get(key)
                    .and_then(Json::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
                    == Some(user.0)
            }
        }
    }
}

/// One input field resolved to where it goes.
pub(crate) enum Target<'a> {
    Builtin(&'static FieldDef),
    Custom(&'a CustomFieldDef),
    Owner,
}

/// The column values one built-in field sets: its own column and, for
/// phone numbers, their duplicate key column.
struct Columns {
    main: (&'static str, Value),
    key: Option<(&'static str, Value)>,
}

impl Columns {
    fn one(name: &'static str, value: Value) -> Columns {
        Columns {
            main: (name, value),
            key: None,
        }
    }

    fn two(main: (&'static str, Value), key: (&'static str, Value)) -> Columns {
        Columns {
            main,
            key: Some(key),
        }
    }
}

pub(crate) fn field_label(def: &FieldDef) -> String {
    format!("{} ({})", def.name, def.zh)
}

impl Crm {
    pub(crate) fn resolve_target<'a>(
        entity: Entity,
        name: &str,
        customs: &'a [CustomFieldDef],
    ) -> Option<Target<'a>> {
        let n = name.trim();
        // Headers are matched as `Entity::field` matches English labels:
        // the English template and exports write `Owner`.
        if n == "负责人" || n.eq_ignore_ascii_case("owner_id") || n.eq_ignore_ascii_case("owner")
        {
            return Some(Target::Owner);
        }
        // An API name (what imports pass) is found without comparing labels
        // and aliases; `builtin_api_names_resolve_to_themselves` checks that
        // this finds what `Entity::field` finds.
        if let Some(def) = entity
            .fields()
            .iter()
            .find(|f| f.name == n)
            .or_else(|| entity.field(n))
        {
            return Some(Target::Builtin(def));
        }
        let key = n.strip_prefix("custom.").unwrap_or(n);
        customs
            .iter()
            .find(|d| {
                d.key == key
                    || d.label == key
                    || d.label_en
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(key))
            })
            .map(Target::Custom)
    }

    async fn picklist_for<'l>(
        &self,
        actor: &Actor,
        entity: Entity,
        def: &FieldDef,
        lookups: &'l Lookups,
    ) -> Result<std::borrow::Cow<'l, [String]>> {
        if let Some(options) = lookups.picklists.get(def.name) {
            return Ok(std::borrow::Cow::Borrowed(options.as_slice()));
        }
        Ok(std::borrow::Cow::Owned(
            self.picklist(actor, entity, def.name).await?,
        ))
    }

    /// A stored custom value as a refusal names it: as people type it
    /// ([`CustomFieldType::display`]: money in 元, a number without a
    /// needless fraction), a user by name.
    async fn custom_value_shown(&self, actor: &Actor, def: &CustomFieldDef, v: &Json) -> String {
        if def.field_type == CustomFieldType::User
            && let Some(id) = v.as_str().and_then(|s| Uuid::parse_str(s).ok())
            && let Ok(u) = self.user(actor, UserId(id)).await
        {
            return u.display_name;
        }
        def.field_type.display(v)
    }

    /// The user `key` names: from the lookups when they hold the company's
    /// users, else from the store ([`Crm::user_named_by`]). `Ok(Err(why))`
    /// when it names no one (no such user, or a display name several
    /// users share).
    async fn lookup_user(
        &self,
        actor: &Actor,
        key: &str,
        lookups: &Lookups,
    ) -> Result<std::result::Result<crate::org::User, String>> {
        match &lookups.users {
            Some(_) => Ok(lookups
                .user(key)
                .cloned()
                .ok_or_else(|| lookups.missing_user(key))),
            None => self.user_named_by(actor, key).await,
        }
    }

    /// The user of the company `key` names as a value of the owner or of a
    /// user-type custom field: an id, a username (letter case aside), a
    /// display name only one user has, or `name (username)` as exports
    /// write a name several users share — as imports and filters read
    /// users. `Ok(Err(why))` when it names no one; a display name several
    /// users share is refused naming their usernames.
    pub(crate) async fn user_named_by(
        &self,
        actor: &Actor,
        key: &str,
    ) -> Result<std::result::Result<crate::org::User, String>> {
        let key = key.trim();
        let missing = || Ok(Err(format!("no user '{key}'")));
        if let Ok(id) = key.parse::<UserId>() {
            return match self.user(actor, id).await {
                Ok(u) => Ok(Ok(u)),
                Err(Error::NotFound { .. }) => missing(),
                Err(e) => Err(e),
            };
        }
        match self.user_by_username(actor, key).await {
            Ok(u) => return Ok(Ok(u)),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // `王芳 (wangfang)`: the user of that username, when that is their name.
        if let Some((name, username)) = key.strip_suffix(')').and_then(|k| k.rsplit_once(" (")) {
            match self.user_by_username(actor, username).await {
                Ok(u) if u.display_name == name.trim() => return Ok(Ok(u)),
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let users = self.list_users(actor, Some(key)).await?;
        Ok(user_by_display_name(&users, key).cloned())
    }

    /// Validates one built-in value into the column values it sets.
    async fn coerce_builtin(
        &self,
        actor: &Actor,
        entity: Entity,
        def: &'static FieldDef,
        value: &Json,
        lookups: &Lookups,
    ) -> std::result::Result<Columns, String> {
        let name = def.name;
        if def.kind == FieldKind::Tags {
            return Ok(Columns::one(name, tags_to_column(value).into()));
        }
        if def.kind == FieldKind::Attachments {
            return coerce_attachments(value).map(|j| Columns::one(name, Value::Json(j)));
        }
        // Single-line values lose their invisible format characters (a
        // zero-width space in a name or address would make two equal-looking
        // values differ); multi-line text is kept as typed.
        let text = json_text(value).and_then(|t| {
            if is_multiline(def) {
                return Some(t);
            }
            let t = crate::validate::strip_invisible(&t).trim().to_owned();
            (!t.is_empty()).then_some(t)
        });
        let Some(text) = text else {
            return Ok(match def.kind {
                FieldKind::Phone(k) | FieldKind::Mobile(k) => {
                    Columns::two((name, Value::Null), (k, Value::Null))
                }
                _ => Columns::one(name, Value::Null),
            });
        };
        let out = match def.kind {
            FieldKind::Text(max) => {
                let multiline = is_multiline(def);
                // A line break typed into a one-line value (Alt+Enter in a
                // spreadsheet cell) is a space.
                let text = if multiline {
                    text
                } else {
                    crate::validate::one_line(&text)
                };
                if text.chars().count() > max {
                    return Err(format!("is longer than {max} characters"));
                }
                if let Some(problem) = crate::validate::control_problem(&text, multiline) {
                    return Err(problem);
                }
                Columns::one(name, text.into())
            }
            FieldKind::CompanyName => {
                let text = crate::validate::one_line(&text);
                if text.chars().count() > 128 {
                    return Err("is longer than 128 characters".into());
                }
                if let Some(problem) = crate::validate::control_problem(&text, false) {
                    return Err(problem);
                }
                Columns::one(name, text.into())
            }
            FieldKind::PersonName => {
                Columns::one(name, crate::validate::person_name(&text)?.into())
            }
            FieldKind::Phone(key) => {
                let p = crate::validate::phone(&text)?;
                Columns::two((name, p.canonical.into()), (key, p.key.into()))
            }
            FieldKind::Mobile(key) => {
                let m = crate::validate::mobile(&text)?;
                Columns::two((name, m.clone().into()), (key, m.into()))
            }
            FieldKind::Email => Columns::one(name, crate::validate::email(&text)?.into()),
            FieldKind::Url => Columns::one(name, crate::validate::url(&text)?.into()),
            FieldKind::Uscc => Columns::one(name, crate::validate::uscc(&text)?.into()),
            FieldKind::ResidentId => {
                let id = crate::validate::resident_id(&text)?;
                if id.birth_date > self.today() {
                    return Err(format!(
                        "resident ID {} has a birth date {} in the future",
                        id.number, id.birth_date
                    ));
                }
                Columns::one(name, id.number.into())
            }
            FieldKind::Date => {
                let d = parse_date(&text)?;
                // A birthday lies between 1900 and today, as a resident ID's
                // birth date must.
                if name == "birthday" {
                    if d > self.today() {
                        return Err(format!("{d} is in the future"));
                    }
                    if chrono::Datelike::year(&d) < 1900 {
                        return Err(format!("{d} is before 1900"));
                    }
                }
                Columns::one(name, d.into())
            }
            FieldKind::DateTime => Columns::one(name, self.parse_datetime(&text)?.into()),
            FieldKind::Enum(options) => {
                let v = options
                    .iter()
                    .find(|(api, zh)| api.eq_ignore_ascii_case(&text) || *zh == text)
                    .map(|(api, _)| *api)
                    .ok_or_else(|| {
                        format!(
                            "'{text}' is not one of: {}",
                            options
                                .iter()
                                .map(|(a, z)| format!("{a} ({z})"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                Columns::one(name, v.into())
            }
            FieldKind::Choice(_) => {
                let options = self
                    .picklist_for(actor, entity, def, lookups)
                    .await
                    .map_err(|e| e.to_string())?;
                let v = options
                    .iter()
                    .find(|o| o.as_str() == text || o.eq_ignore_ascii_case(&text))
                    .ok_or_else(|| format!("'{text}' is not one of: {}", options.join(", ")))?;
                Columns::one(name, v.clone().into())
            }
            FieldKind::Ref(target) => {
                if let Some(id) = lookups.refs.get(&(target, text.clone())) {
                    return Ok(Columns::one(name, Value::Id(*id)));
                }
                if lookups.shared_ref_names.contains(&(target, text.clone())) {
                    return Err(format!(
                        "'{text}' is the name of several {target}s; give the code \
                         (多条记录同名，请填写编号)"
                    ));
                }
                let row = match self.resolve_ref(actor, target, &text).await {
                    Ok(row) => row,
                    // A customer is also named by its name, as the sales
                    // documents' `--customer` names it.
                    Err(Error::NotFound { .. })
                        if target == Entity::Customer
                            && let Some(row) = self.customer_named(actor, &text).await? =>
                    {
                        row
                    }
                    // Archived: the state and the way out, as such.
                    Err(Error::InvalidState(why)) => return Err(why),
                    Err(e) => return Err(e.to_string()),
                };
                Columns::one(name, Value::Id(row.id()))
            }
            // Handled before the text conversion above.
            FieldKind::Tags | FieldKind::Attachments => Columns::one(name, Value::Null),
        };
        Ok(out)
    }

    /// Finds a record the actor can see by id or code.
    /// A record that is not archived; one the actor may read that is
    /// archived is refused naming the state ("unarchive it first"), one
    /// they may not read is not found.
    pub(crate) async fn resolve_ref(
        &self,
        actor: &Actor,
        entity: Entity,
        key: &str,
    ) -> Result<Row> {
        let row = self
            .lookup_ref(actor, entity, key)
            .await?
            .filter(|r| r.get("deleted_at").is_null());
        match row {
            Some(r) if self.can_on_row(actor, entity, Action::Read, &r).await? => {
                if !r.get("archived_at").is_null() {
                    return Err(Self::archived_refusal(entity, &r));
                }
                Ok(r)
            }
            _ => Err(Error::not_found(entity, key)),
        }
    }

    /// The customer named `name` as typed among those the actor may read
    /// (not in the recycle bin), for a field pointing at a customer
    /// (`customer_id=华为技术有限公司`): `Ok(None)` when there is none, or
    /// when the actor may not see customers' names (a match would tell a
    /// hidden name); an archived one or a name several share is refused,
    /// naming the problem.
    async fn customer_named(
        &self,
        actor: &Actor,
        name: &str,
    ) -> std::result::Result<Option<Row>, String> {
        let name = name.trim();
        if name.is_empty() || !filterable(actor, Entity::Customer, "name") {
            return Ok(None);
        }
        let mut sel = Select::all(Table::Customers, actor.company_id.0, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("name"), CmpOp::Eq, name.into()),
            Filter::IsNull(Col::Column("deleted_at")),
        ]);
        let rows = self
            .store
            .select(&sel)
            .await
            .map_err(|e| e.to_string())?
            .rows;
        let mut named = Vec::new();
        for r in rows {
            if self
                .can_on_row(actor, Entity::Customer, Action::Read, &r)
                .await
                .map_err(|e| e.to_string())?
            {
                named.push(r);
            }
        }
        match named.len() {
            0 => Ok(None),
            1 => {
                let r = named.remove(0);
                if !r.get("archived_at").is_null() {
                    // The state and the way out, as `resolve_ref` says it.
                    return Err(match Self::archived_refusal(Entity::Customer, &r) {
                        Error::InvalidState(why) => why,
                        e => e.to_string(),
                    });
                }
                Ok(Some(r))
            }
            n => Err(format!(
                "{n} customers are named {name}: give the code ({}) (多条记录同名，请填写编号)",
                named
                    .iter()
                    .map(|r| r.get("code").as_text().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The record of the actor's company with the id or code `key`, in
    /// whatever state (not checking permissions).
    async fn lookup_ref(&self, actor: &Actor, entity: Entity, key: &str) -> Result<Option<Row>> {
        let row = match Uuid::parse_str(key.trim()) {
            Ok(id) => self.store.get(entity.table(), id).await?,
            Err(_) => {
                // A code as typed: `ｋｈ-…` is `KH-…`.
                let code = crate::validate::record_code(key);
                let mut sel = Select::all(entity.table(), actor.company_id.0, self.now());
                sel.lifecycle = Lifecycle::Any;
                sel.filter = Filter::And(vec![
                    Filter::Cmp(Col::Column("code"), CmpOp::Eq, code.into()),
                    Filter::IsNull(Col::Column("deleted_at")),
                ]);
                self.store.select(&sel).await?.rows.into_iter().next()
            }
        };
        Ok(row.filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0)))
    }

    /// The refusal of an action on an archived record (已归档), for an
    /// actor who may read it: it names the state and the way out.
    pub(crate) fn archived_refusal(entity: Entity, row: &Row) -> Error {
        let name = row
            .get("code")
            .as_text()
            .map(str::to_string)
            .unwrap_or_else(|| row.id().to_string());
        Error::InvalidState(format!(
            "{entity} {name} is archived (已归档); unarchive it first"
        ))
    }

    /// Whether a live share for the actor covers the row (`write` needed for
    /// anything but reading).
    pub(crate) async fn shared_with(
        &self,
        actor: &Actor,
        table: Table,
        id: Uuid,
        write: bool,
    ) -> Result<bool> {
        let shares = self.shares_of(actor.company_id.0, table, id).await?;
        Ok(shares
            .iter()
            .any(|s| s.user_id == actor.user_id && (!write || s.access == ShareAccess::Write)))
    }

    async fn shares_of(&self, company: Uuid, table: Table, id: Uuid) -> Result<Vec<Share>> {
        let now = self.now();
        let mut sel = Select::all(Table::Shares, company, now);
        sel.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("entity"), CmpOp::Eq, table.name().into()),
            Filter::Cmp(Col::Column("record_id"), CmpOp::Eq, Value::Id(id)),
            Filter::Or(vec![
                Filter::IsNull(Col::Column("expires_at")),
                Filter::Cmp(Col::Column("expires_at"), CmpOp::Gt, Value::Timestamp(now)),
            ]),
        ]);
        Ok(self
            .store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(|r| Share {
                user_id: UserId(r.get("user_id").as_id().unwrap_or_default()),
                access: if r.get("access").as_text() == Some("write") {
                    ShareAccess::Write
                } else {
                    ShareAccess::Read
                },
                expires_at: r.get("expires_at").as_timestamp(),
                granted_by: UserId(r.get("granted_by").as_id().unwrap_or_default()),
            })
            .collect())
    }

    /// Whether the actor may do `action` on this row: by data scope, or for
    /// read and update by a live share (update only when a role grants the
    /// actor update on some records of the entity).
    pub(crate) async fn can_on_row(
        &self,
        actor: &Actor,
        entity: Entity,
        action: Action,
        row: &Row,
    ) -> Result<bool> {
        if actor.covers(entity, action, row) {
            return Ok(true);
        }
        match action {
            Action::Read => {
                if self
                    .shared_with(actor, entity.table(), row.id(), false)
                    .await?
                {
                    return Ok(true);
                }
                // The approvers of a quote's or contract's approval read
                // what they decide; a follow-up is read with its customer
                // (the customer's timeline, as its 360° view shows it).
                match entity {
                    Entity::FollowUp if actor.can(entity, Action::Read) => {
                        match row.get("customer_id").as_id() {
                            Some(c) => match self.store.get(Table::Customers, c).await? {
                                Some(crow)
                                    if crow.get("company_id").as_id()
                                        == Some(actor.company_id.0) =>
                                {
                                    Box::pin(self.can_on_row(
                                        actor,
                                        Entity::Customer,
                                        Action::Read,
                                        &crow,
                                    ))
                                    .await
                                }
                                _ => Ok(false),
                            },
                            None => Ok(false),
                        }
                    }
                    Entity::Quote | Entity::Contract => {
                        self.approves_document(actor, entity.name(), row.id()).await
                    }
                    _ => Ok(false),
                }
            }
            // A write share widens which records the actor may change, not
            // what: the actor's roles must let them change some records of
            // the entity (a read-only role stays read-only, whatever is
            // shared with it).
            Action::Update if actor.can(entity, Action::Update) => {
                self.shared_with(actor, entity.table(), row.id(), true)
                    .await
            }
            _ => Ok(false),
        }
    }

    /// Refuses creating a record for `owner` (another user than the actor)
    /// unless the actor's create scope covers the record as it would be
    /// written (the owner and the owner's department: a manager creating
    /// for a subordinate, a department head for a colleague) and the actor
    /// could read it afterwards (by scope, or a follow-up through its
    /// `customer`): nothing is written that its author could not see.
    pub(crate) async fn check_owner_for_create(
        &self,
        actor: &Actor,
        entity: Entity,
        owner: Uuid,
        customer: Option<&Row>,
    ) -> Result<()> {
        if owner == actor.user_id.0 {
            return Ok(());
        }
        let user = self.user(actor, UserId(owner)).await?;
        let table = entity.table();
        let mut row = Row {
            table,
            values: vec![Value::Null; table.columns().len()],
        };
        row.set("owner_id", Value::Id(owner));
        row.set("department_id", user.department_id.map(|d| d.0).into());
        let scope = |action| {
            actor
                .scope_for(entity, action)
                .map_or(("none", "无"), |s| (s.name(), s.name_zh()))
        };
        if !actor.covers(entity, Action::Create, &row) {
            return Err(Error::Forbidden(format!(
                "{} may not create {} records for another owner, {} ({}): the owner lies outside \
                 their create scope '{}' ({}无权为{}创建{}：超出新建范围「{}」)",
                actor.display_name,
                entity,
                user.display_name,
                user.username,
                scope(Action::Create).0,
                actor.display_name,
                user.display_name,
                entity.name_zh(),
                scope(Action::Create).1,
            )));
        }
        let readable = actor.covers(entity, Action::Read, &row)
            || match customer {
                Some(c) if entity == Entity::FollowUp && actor.can(entity, Action::Read) => {
                    self.can_on_row(actor, Entity::Customer, Action::Read, c)
                        .await?
                }
                _ => false,
            };
        if !readable {
            return Err(Error::Forbidden(format!(
                "{} may not create {} records for another owner, {} ({}): they could not read \
                 the record afterwards (read scope '{}') ({}无权为{}创建{}：创建后超出查看范围「{}」)",
                actor.display_name,
                entity,
                user.display_name,
                user.username,
                scope(Action::Read).0,
                actor.display_name,
                user.display_name,
                entity.name_zh(),
                scope(Action::Read).1,
            )));
        }
        Ok(())
    }

    fn forbid(actor: &Actor, action: Action, entity: Entity, what: &str) -> Error {
        Error::Forbidden(format!(
            "{} may not {} {} {}",
            actor.display_name,
            action,
            entity.name(),
            what
        ))
    }

    /// Validates input fields. Returns column values to set and the custom
    /// values to merge; every problem is reported at once.
    pub(crate) async fn prepare(
        &self,
        actor: &Actor,
        entity: Entity,
        fields: &Fields,
        customs: &[CustomFieldDef],
        creating: bool,
    ) -> Result<Prepared> {
        self.prepare_with(
            actor,
            entity,
            fields,
            customs,
            creating,
            &Lookups::default(),
        )
        .await
    }

    /// [`Crm::prepare`] with lookups resolved beforehand (bulk imports pass
    /// the picklists, users and referenced records once instead of one query
    /// per value); what the lookups lack is read from the store.
    pub(crate) async fn prepare_with(
        &self,
        actor: &Actor,
        entity: Entity,
        fields: &Fields,
        customs: &[CustomFieldDef],
        creating: bool,
        lookups: &Lookups,
    ) -> Result<Prepared> {
        self.prepare_keeping(
            actor,
            entity,
            fields,
            customs,
            creating,
            lookups,
            Inactive::Refused,
        )
        .await
    }

    /// [`Crm::prepare_with`], told which deactivated users a user-type
    /// custom field may still be given (the owner never is).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn prepare_keeping(
        &self,
        actor: &Actor,
        entity: Entity,
        fields: &Fields,
        customs: &[CustomFieldDef],
        creating: bool,
        lookups: &Lookups,
        inactive: Inactive<'_>,
    ) -> Result<Prepared> {
        let mut errors = ValidationErrors::default();
        let mut set: BTreeMap<&'static str, Value> = BTreeMap::new();
        let mut custom: BTreeMap<String, Json> = BTreeMap::new();
        let mut owner = None;
        // A field named twice (by its key and its label: `level=A 级别=B`)
        // would keep one of the values unsaid: refused, naming both.
        let mut named: BTreeMap<String, &String> = BTreeMap::new();
        for (name, value) in fields {
            let resolved = Self::resolve_target(entity, name, customs);
            let field = match &resolved {
                Some(Target::Builtin(def)) => Some(def.name.to_string()),
                Some(Target::Custom(def)) => Some(format!("custom.{}", def.key)),
                Some(Target::Owner) => Some("owner_id".to_string()),
                None => None,
            };
            if let Some(t) = field {
                if let Some(first) = named.get(&t) {
                    errors.push(
                        name.clone(),
                        format!("'{first}' and '{name}' name the same field ({t}); give it once"),
                    );
                    continue;
                }
                named.insert(t, name);
            }
            // A structured value where the field takes one (an object, or a
            // list where no list is taken) is nothing a person typed: it is
            // refused rather than saved as its JSON text. Attachments check
            // their own shape; tags and multi-selects take lists.
            let (attachments, takes_list) = match &resolved {
                Some(Target::Builtin(d)) => (
                    matches!(d.kind, FieldKind::Attachments),
                    matches!(d.kind, FieldKind::Tags | FieldKind::Attachments),
                ),
                Some(Target::Custom(d)) => (false, d.field_type == CustomFieldType::MultiSelect),
                _ => (false, false),
            };
            if !attachments && (value.is_object() || (value.is_array() && !takes_list)) {
                errors.push(
                    name.clone(),
                    "takes one value (text, a number, a date or yes/no), not a JSON object or list",
                );
                continue;
            }
            match resolved {
                None => errors.push(name.clone(), format!("{entity} has no field '{name}'")),
                Some(Target::Owner) => match json_text(value) {
                    Some(key) => match self.lookup_user(actor, &key, lookups).await? {
                        Ok(u) if u.active || matches!(inactive, Inactive::Allowed) => {
                            owner = Some(u.id)
                        }
                        Ok(u) => {
                            errors.push("owner_id", format!("user {} is deactivated", u.username))
                        }
                        Err(why) => errors.push("owner_id", why),
                    },
                    None => {
                        errors.push("owner_id", "an owner cannot be cleared here; use transfer")
                    }
                },
                Some(Target::Builtin(def)) => {
                    if !def.writable {
                        errors.push(field_label(def), "is computed and cannot be set");
                        continue;
                    }
                    if actor.field_access(entity, def.name) != FieldAccess::Full {
                        return Err(Error::Forbidden(crate::forbidden_zh::may_not_change(
                            &actor.display_name,
                            entity,
                            def.name,
                        )));
                    }
                    if !creating && matches!(def.kind, FieldKind::Ref(_)) && def.required {
                        errors.push(field_label(def), "cannot be changed after creation");
                        continue;
                    }
                    match self
                        .coerce_builtin(actor, entity, def, value, lookups)
                        .await
                    {
                        Ok(cols) => {
                            if def.required && cols.main.1.is_null() {
                                errors.push(field_label(def), "is required");
                            }
                            set.insert(cols.main.0, cols.main.1);
                            if let Some((k, v)) = cols.key {
                                set.insert(k, v);
                            }
                        }
                        Err(m) => errors.push(field_label(def), m),
                    }
                }
                Some(Target::Custom(def)) => {
                    let fname = format!("custom.{}", def.key);
                    if actor.field_access(entity, &fname) != FieldAccess::Full {
                        return Err(Error::Forbidden(crate::forbidden_zh::may_not_change(
                            &actor.display_name,
                            entity,
                            &fname,
                        )));
                    }
                    match def.coerce(value) {
                        Ok(Json::String(u)) if def.field_type == CustomFieldType::User => {
                            match self.lookup_user(actor, &u, lookups).await? {
                                // A deactivated user is given nothing new
                                // (as an owner): only a value kept as it is.
                                Ok(user) if !user.active && !inactive.allows(&def.key, user.id) => {
                                    errors.push(
                                        fname,
                                        format!("user {} is deactivated", user.username),
                                    );
                                }
                                Ok(user) => {
                                    custom
                                        .insert(def.key.clone(), Json::String(user.id.to_string()));
                                }
                                Err(why) => errors.push(fname, why),
                            }
                        }
                        Ok(v) => {
                            if def.required && v.is_null() {
                                errors.push(fname, "is required");
                            } else {
                                custom.insert(def.key.clone(), v);
                            }
                        }
                        Err(m) => errors.push(fname, m),
                    }
                }
            }
        }
        if creating {
            for def in entity.fields() {
                if def.required
                    && !set.contains_key(def.name)
                    && !errors.0.iter().any(|e| e.field == field_label(def))
                {
                    errors.push(field_label(def), "is required");
                }
            }
            for def in customs {
                if def.required && !custom.contains_key(&def.key) {
                    errors.push(format!("custom.{}", def.key), "is required");
                }
            }
        }
        errors.into_result()?;
        Ok((set, custom, owner))
    }

    /// Fills derived columns (normalised keys, pinyin) from the merged values
    /// and checks rules that span fields.
    pub(crate) fn derive(
        &self,
        entity: Entity,
        merged: &mut BTreeMap<&'static str, Value>,
    ) -> Result<()> {
        use chrono::Datelike;
        fn text<'m>(m: &'m BTreeMap<&'static str, Value>, k: &str) -> Option<&'m str> {
            m.get(k).and_then(Value::as_text)
        }
        match entity {
            Entity::Customer => {
                if merged.get("kind").is_none_or(Value::is_null) {
                    merged.insert("kind", "enterprise".into());
                }
                let name = text(merged, "name").unwrap_or_default();
                let short = text(merged, "short_name").unwrap_or_default();
                let name_key = crate::dedupe::customer_name_key(
                    name,
                    text(merged, "kind") == Some("individual"),
                );
                let mut keys = crate::pinyin::search_keys(name);
                if !short.is_empty() {
                    keys.push(' ');
                    keys.push_str(&crate::pinyin::search_keys(short));
                }
                // A company name the duplicate check can compare: `---` or
                // `（）` name nobody, and would each be saved again and
                // again past the name rule.
                if !name.trim().is_empty()
                    && text(merged, "kind") != Some("individual")
                    && name_key.is_empty()
                {
                    return Err(Error::invalid(
                        "name (客户名称)",
                        format!(
                            "'{}' names no company: it holds no letter, digit or Chinese \
                             character (客户名称无效)",
                            name.trim()
                        ),
                    ));
                }
                merged.insert("name_key", name_key.into());
                merged.insert("pinyin_keys", keys.into());
                let email_key = text(merged, "email")
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(crate::validate::email_key);
                merged.insert("email_key", email_key.into());
                if text(merged, "kind") == Some("individual")
                    && merged.get("uscc").is_some_and(|v| !v.is_null())
                {
                    return Err(Error::invalid(
                        "uscc (统一社会信用代码)",
                        "only enterprise customers have a unified social credit code",
                    ));
                }
            }
            Entity::Contact => {
                let keys = crate::pinyin::search_keys(text(merged, "name").unwrap_or_default());
                merged.insert("pinyin_keys", keys.into());
                let md = merged
                    .get("birthday")
                    .and_then(Value::as_date)
                    .map(|d| format!("{:02}-{:02}", d.month(), d.day()));
                merged.insert("birthday_md", md.into());
            }
            Entity::FollowUp if merged.get("occurred_at").is_none_or(Value::is_null) => {
                merged.insert("occurred_at", Value::Timestamp(self.now()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Refuses a record that duplicates a live one of the company, visible to
    /// the actor or not. Returns the guards that repeat each check inside
    /// the write transaction (see [`Guard`]), for the change set that writes
    /// the record: a concurrent writer of the same value cannot slip in
    /// between this check and the write.
    pub(crate) async fn check_duplicates(
        &self,
        actor: &Actor,
        entity: Entity,
        merged: &BTreeMap<&'static str, Value>,
        custom: &BTreeMap<String, Json>,
        customs: &[CustomFieldDef],
        exclude: Option<Uuid>,
    ) -> Result<Vec<Guard>> {
        self.check_duplicates_except(actor, entity, merged, custom, customs, exclude.as_slice())
            .await
    }

    /// [`Crm::check_duplicates`] leaving several records out (and out of its
    /// guards): an import's undo, which removes or restores them in the same
    /// change set, checks what it gives back against the others.
    pub(crate) async fn check_duplicates_except(
        &self,
        actor: &Actor,
        entity: Entity,
        merged: &BTreeMap<&'static str, Value>,
        custom: &BTreeMap<String, Json>,
        customs: &[CustomFieldDef],
        exclude: &[Uuid],
    ) -> Result<Vec<Guard>> {
        let mut guards = Vec::new();
        let mut checks: Vec<(String, Filter)> = Vec::new();
        let get = |k: &str| merged.get(k).filter(|v| !v.is_null()).cloned();
        let modes = match entity {
            Entity::Customer => Some(self.dedupe_modes(actor.company_id.0).await?),
            _ => None,
        };
        let blocks = |f: &str| modes.as_ref().is_some_and(|m| m.blocks(f));
        match entity {
            Entity::Customer => {
                if let Some(v) = get("uscc").filter(|_| blocks("uscc")) {
                    checks.push((
                        format!(
                            "unified social credit code {}",
                            v.as_text().unwrap_or_default()
                        ),
                        Filter::Cmp(Col::Column("uscc"), CmpOp::Eq, v),
                    ));
                }
                if let Some(v) = get("name_key").filter(|v| {
                    v.as_text()
                        .is_some_and(crate::dedupe::is_name_duplicate_key)
                        && blocks("name")
                }) {
                    checks.push((
                        format!(
                            "name {}",
                            get("name")
                                .and_then(|n| n.as_text().map(str::to_string))
                                .unwrap_or_default()
                        ),
                        Filter::Cmp(Col::Column("name_key"), CmpOp::Eq, v),
                    ));
                }
            }
            Entity::Contact => {
                if let (Some(m), Some(c)) = (get("mobile_key"), get("customer_id")) {
                    checks.push((
                        format!(
                            "mobile {} for the same customer",
                            m.as_text().unwrap_or_default()
                        ),
                        Filter::And(vec![
                            Filter::Cmp(Col::Column("mobile_key"), CmpOp::Eq, m),
                            Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, c),
                        ]),
                    ));
                }
            }
            _ => {}
        }
        for def in customs.iter().filter(|d| d.unique) {
            if let Some(v) = custom.get(&def.key).filter(|v| !v.is_null()) {
                if def.field_type == CustomFieldType::Text
                    && let Some(text) = v.as_str()
                {
                    guards.extend(
                        self.check_unique_text(actor, entity, def, text, exclude)
                            .await?,
                    );
                    continue;
                }
                let value = custom_key_value(v);
                checks.push((
                    format!(
                        "{} {}",
                        def.label,
                        self.custom_value_shown(actor, def, v).await
                    ),
                    Filter::Cmp(def.col(), CmpOp::Eq, value),
                ));
            }
        }
        for (what, filter) in checks {
            // The guarded value is what the filter compares (the normalised
            // name, not the name as typed), so writers of two spellings of
            // one name wait for each other.
            let key = guard_key(actor.company_id.0, entity.table(), &filter);
            let mut sel = Select::all(entity.table(), actor.company_id.0, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                filter,
                Filter::IsNull(Col::Column("deleted_at")),
                Filter::not_among(Col::Column("id"), exclude.iter().copied()),
            ]);
            sel.paging = Paging::Offset {
                offset: 0,
                limit: 1,
            };
            if let Some(existing) = self.store.select(&sel).await?.rows.into_iter().next() {
                let e = self
                    .duplicate_refusal(actor, entity, &what, &existing)
                    .await?;
                return Err(archived_holder_noted(e, entity, &existing));
            }
            guards.push(Guard {
                kind: crate::store::GuardKind::Duplicate,
                keys: vec![key],
                message: format!("{what} was just taken by another record"),
                select: sel,
            });
        }
        if entity == Entity::Customer {
            // Phone and e-mail through the customers' columns, configured
            // custom fields through `customer_keys`.
            guards.extend(
                self.check_customer_keys(actor, merged, custom, exclude)
                    .await?,
            );
        }
        Ok(guards)
    }

    /// Refuses a value of a unique custom text field that a live record of
    /// the company holds already, spelling aside as the duplicate keys
    /// compare ([`text_key`](crate::validate::text_key): letter case,
    /// full-width letters and digits, surrounding and repeated spaces),
    /// whatever mix of spellings either value has (`ＥＲＰ-001` holds
    /// `ERP-001`). The store folds the stored values the same way
    /// ([`Filter::TextKeyIn`]); the candidates are confirmed here by their
    /// key. The guard repeats that search without the candidates seen,
    /// under the key's lock, so a writer of another spelling of the same
    /// value waits and is caught.
    async fn check_unique_text(
        &self,
        actor: &Actor,
        entity: Entity,
        def: &CustomFieldDef,
        text: &str,
        exclude: &[Uuid],
    ) -> Result<Option<Guard>> {
        let key = crate::validate::text_key(text);
        if key.is_empty() {
            return Ok(None);
        }
        let same = Filter::TextKeyIn(def.col(), vec![key.clone()]);
        let mut sel = Select::all(entity.table(), actor.company_id.0, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = Filter::And(vec![
            same.clone(),
            Filter::IsNull(Col::Column("deleted_at")),
            Filter::not_among(Col::Column("id"), exclude.iter().copied()),
        ]);
        let stored_key = |r: &Row| {
            r.get("custom")
                .as_json()
                .and_then(|c| c.get(&def.key))
                .and_then(Json::as_str)
                .map(crate::validate::text_key)
        };
        let rows = self.store.select(&sel).await?.rows;
        if let Some(existing) = rows
            .iter()
            .find(|r| stored_key(r).as_deref() == Some(key.as_str()))
        {
            let e = self
                .duplicate_refusal(actor, entity, &format!("{} {text}", def.label), existing)
                .await?;
            return Err(archived_holder_noted(e, entity, existing));
        }
        let seen: Vec<Uuid> = rows
            .iter()
            .map(Row::id)
            .chain(exclude.iter().copied())
            .collect();
        let mut guard_sel = sel.clone();
        guard_sel.filter = Filter::And(vec![
            same,
            Filter::IsNull(Col::Column("deleted_at")),
            Filter::not_among(Col::Column("id"), seen),
        ]);
        guard_sel.paging = Paging::Offset {
            offset: 0,
            limit: 1,
        };
        Ok(Some(Guard {
            kind: crate::store::GuardKind::Duplicate,
            keys: vec![guard_key(
                actor.company_id.0,
                entity.table(),
                &Filter::Cmp(def.col(), CmpOp::Eq, Value::Text(key)),
            )],
            message: format!("{} {text} was just taken by another record", def.label),
            select: guard_sel,
        }))
    }

    /// Creates a record.
    pub async fn create_record(
        &self,
        actor: &Actor,
        entity: Entity,
        fields: Fields,
    ) -> Result<Record> {
        let id = self
            .create_records(actor, entity, vec![fields], None)
            .await?;
        self.get_record(actor, entity, id[0]).await
    }

    /// Creates a customer together with its contacts, in one transaction.
    pub async fn create_customer_with_contacts(
        &self,
        actor: &Actor,
        customer: Fields,
        contacts: Vec<Fields>,
    ) -> Result<Record> {
        let id = self
            .create_records(actor, Entity::Customer, vec![customer], Some(contacts))
            .await?;
        self.get_record(actor, Entity::Customer, id[0]).await
    }

    pub(crate) async fn create_records(
        &self,
        actor: &Actor,
        entity: Entity,
        inputs: Vec<Fields>,
        contacts: Option<Vec<Fields>>,
    ) -> Result<Vec<RecordId>> {
        if !entity.is_record() {
            return Err(Error::invalid(
                "entity",
                format!("{entity} is not a business record"),
            ));
        }
        if !actor.can(entity, Action::Create) {
            return Err(Self::forbid(actor, Action::Create, entity, "records"));
        }
        let customs = self.custom_fields(actor, entity).await?;
        let mut cs = ChangeSet::default();
        let mut ids = Vec::new();
        for fields in inputs {
            let (ops, id, payload, guards, side_audit) = self
                .build_insert(actor, entity, &fields, &customs, None, None)
                .await?;
            let company = actor.company_id.0;
            // The customer a follow-up dates gets its own event.
            let side_events = self.side_customer_events(&ops, &side_audit).await?;
            cs.ops.extend(ops);
            cs.guards.extend(guards);
            cs.audit.extend(side_audit);
            cs.audit.push(self.audit(
                Some(actor),
                company,
                entity.table(),
                id,
                "create",
                created_changes(&payload),
            ));
            cs.events.push(self.event(
                company,
                entity.table(),
                id,
                format!("{entity}.created"),
                payload,
            ));
            cs.events.extend(side_events);
            if let Some(contacts) = &contacts {
                let contact_customs = self.custom_fields(actor, Entity::Contact).await?;
                for c in contacts {
                    let (ops, cid, payload, guards, _) = self
                        .build_insert(
                            actor,
                            Entity::Contact,
                            c,
                            &contact_customs,
                            Some(&cs.ops),
                            None,
                        )
                        .await?;
                    cs.ops.extend(ops);
                    cs.guards.extend(guards);
                    cs.audit.push(self.audit(
                        Some(actor),
                        company,
                        Table::Contacts,
                        cid,
                        "create",
                        created_changes(&payload),
                    ));
                    cs.events.push(self.event(
                        company,
                        Table::Contacts,
                        cid,
                        "contact.created".into(),
                        payload,
                    ));
                }
            }
            ids.push(RecordId(id));
        }
        // A follow-up writes its customer's follow-up dates at the version
        // read: a colleague's follow-up or edit of that customer committed
        // meanwhile is no conflict of the author's, who changed no customer
        // field — the customer is read again and the dates computed again.
        let follow_up_customer = (entity == Entity::FollowUp && ids.len() == 1)
            .then(|| follow_up_customer_of(&cs))
            .flatten();
        // The caps of the pools that govern the new customers' owners,
        // counted again when a claim, assignment or another create for the
        // same owner committed after they were counted (its holder row
        // changed or was just inserted).
        let mut holder_tries = 1;
        let mut customer_tries = 1;
        loop {
            let mut attempt = cs.clone();
            self.creation_caps(actor, &mut attempt).await?;
            match self.apply_indexed(attempt).await {
                Err(e) if crate::pool::is_holder_conflict(&e) => {
                    if holder_tries >= crate::pool::HOLDER_TRIES {
                        return Err(crate::pool::holders_busy(&actor.display_name));
                    }
                    holder_tries += 1;
                }
                Err(e)
                    if follow_up_customer.is_some()
                        && is_customer_conflict(&e)
                        && customer_tries < FOLLOW_UP_TRIES =>
                {
                    customer_tries += 1;
                    if let Some(c) = follow_up_customer {
                        self.refresh_follow_up_customer(actor, &mut cs, c).await?;
                    }
                }
                other => {
                    other?;
                    return Ok(ids);
                }
            }
        }
    }

    /// Writes a follow-up's customer update in `cs` again from the customer
    /// as stored now (see [`Crm::follow_up_customer_update`]): the last
    /// follow-up time and next follow-up date of a customer someone else
    /// changed since it was read.
    async fn refresh_follow_up_customer(
        &self,
        actor: &Actor,
        cs: &mut ChangeSet,
        customer: Uuid,
    ) -> Result<()> {
        let crow = self.live_row(actor, Table::Customers, customer).await?;
        let mut set: BTreeMap<&'static str, Value> = BTreeMap::new();
        for op in &cs.ops {
            if let Op::Insert {
                table: Table::FollowUps,
                values,
            } = op
            {
                for (k, v) in values {
                    if matches!(*k, "occurred_at" | "next_follow_up_at") {
                        set.insert(k, v.clone());
                    }
                }
            }
        }
        let (op, audit) = self.follow_up_customer_update(actor, &crow, &set);
        for o in &mut cs.ops {
            if matches!(o, Op::Update { table: Table::Customers, id, .. } if *id == customer) {
                *o = op.clone();
            }
        }
        cs.audit.retain(|a| {
            !(a.table == Table::Customers && a.record_id == customer && a.action == "update")
        });
        cs.events.retain(|e| {
            !(e.table == Table::Customers
                && e.record_id == customer
                && e.event_type == "customer.updated")
        });
        let audit: Vec<AuditEntry> = audit.into_iter().collect();
        cs.events.extend(
            self.side_customer_events(std::slice::from_ref(&op), &audit)
                .await?,
        );
        cs.audit.extend(audit);
        Ok(())
    }

    /// Builds the insert (and side updates) for one record. `pending` holds
    /// ops of the same change set (a customer created together with its
    /// contacts), whose first insert is the parent customer.
    pub(crate) async fn build_insert(
        &self,
        actor: &Actor,
        entity: Entity,
        fields: &Fields,
        customs: &[CustomFieldDef],
        pending: Option<&[Op]>,
        pool: Option<Uuid>,
    ) -> Result<Built> {
        let mut fields = fields.clone();
        let parent_row = pending.and_then(|ops| {
            ops.iter().rev().find_map(|op| match op {
                Op::Insert {
                    table: Table::Customers,
                    values,
                } => Some(values.clone()),
                _ => None,
            })
        });
        if let Some(values) = &parent_row {
            // A contact created with its customer: point it at that customer.
            fields.retain(|k, _| {
                Entity::Contact
                    .field(k)
                    .is_none_or(|d| d.name != "customer_id")
            });
            let (set, custom, owner) = self.prepare(actor, entity, &fields, customs, false).await?;
            let parent_id = values
                .iter()
                .find(|(k, _)| *k == "id")
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let parent_owner = values
                .iter()
                .find(|(k, _)| *k == "owner_id")
                .and_then(|(_, v)| v.as_id());
            let mut set = set;
            set.insert("customer_id", parent_id);
            if set.get("name").is_none_or(Value::is_null) {
                return Err(Error::invalid("contact name (姓名)", "is required"));
            }
            // The checks of a plain create: required fields (the customer
            // is this one), another owner only within the create scope.
            let mut errors = ValidationErrors::default();
            for def in entity.fields() {
                if def.required && set.get(def.name).is_none_or(Value::is_null) {
                    errors.push(field_label(def), "is required");
                }
            }
            for def in customs {
                if def.required && custom.get(&def.key).is_none_or(Json::is_null) {
                    errors.push(format!("custom.{}", def.key), "is required");
                }
            }
            errors.into_result()?;
            let owner = owner.map(|o| o.0);
            if let Some(o) = owner {
                self.check_owner_for_create(actor, entity, o, None).await?;
            }
            if let Some(ops) = pending {
                pending_contact_duplicate(entity, &set, &custom, customs, ops)?;
            }
            return self
                .finish_insert(
                    actor,
                    entity,
                    set,
                    custom,
                    customs,
                    owner.or(parent_owner),
                    false,
                    pool,
                )
                .await;
        }
        let (set, custom, owner) = self.prepare(actor, entity, &fields, customs, true).await?;
        let mut owner = owner.map(|o| o.0);
        let named_owner = owner;
        let mut side_ops = Vec::new();
        let mut side_audit = Vec::new();
        let mut live_guard = None;
        let mut side_guards = Vec::new();
        if entity != Entity::Customer
            && let Some(cust) = set.get("customer_id").and_then(Value::as_id)
        {
            let crow = self.live_row(actor, Table::Customers, cust).await?;
            // A contact is its customer's owner's: one added through a
            // share would be written where its author can no longer read
            // it. (Follow-ups, and sales records, stay their author's.)
            if entity == Entity::Contact
                && crow.get("owner_id").as_id().is_some()
                && !actor.covers(Entity::Customer, Action::Read, &crow)
            {
                return Err(Error::Forbidden(format!(
                    "{} may not add contacts to customer {}: it is only shared with them, and \
                     its contacts are its owner's; ask the owner to add the contact",
                    actor.display_name,
                    crow.get("code").as_text().unwrap_or_default()
                )));
            }
            if entity == Entity::Contact {
                if owner.is_none() {
                    owner = crow.get("owner_id").as_id();
                }
                // A follow-up updates its customer (with its version); a
                // contact is guarded against a merge or delete instead, and
                // against any change of the customer since it was read: the
                // contact takes the owner read, and a claim, release,
                // recycling or transfer meanwhile moved only the contacts
                // it found. (Pool moves guard the same key against a
                // contact added before they write.) The customer's version
                // stays: adding a contact does not change the customer (an
                // import's undo counts on that).
                live_guard = Some(self.customer_live_guard(actor.company_id.0, &crow));
                side_guards.push(self.owners_unchanged_guard(
                    actor.company_id.0,
                    &BTreeMap::from([(crow.id(), crow.get("owner_id").as_id())]),
                    format!(
                        "customer {} changed hands meanwhile; add the contact again",
                        crow.get("code").as_text().unwrap_or_default()
                    ),
                ));
            }
            if entity == Entity::FollowUp {
                self.check_follow_up_dates(&set, true)?;
                // Planning the customer's next follow-up edits the customer:
                // someone who may only read it (a read share, a role that
                // edits no such customer) records what happened, and the
                // owner plans what comes next.
                if set.get("next_follow_up_at").is_some_and(|v| !v.is_null())
                    && !self
                        .can_on_row(actor, Entity::Customer, Action::Update, &crow)
                        .await?
                {
                    return Err(may_not_plan(actor, &crow, "set", "leave it out"));
                }
                if let Some(contact) = set.get("contact_id").and_then(Value::as_id) {
                    let c = self.live_row(actor, Table::Contacts, contact).await?;
                    if c.get("customer_id").as_id() != Some(cust) {
                        return Err(Error::invalid(
                            "contact_id (联系人)",
                            "the contact belongs to another customer",
                        ));
                    }
                }
                let (op, audit) = self.follow_up_customer_update(actor, &crow, &set);
                side_ops.push(op);
                side_audit.extend(audit);
            }
        }
        if let Some(o) = named_owner {
            let crow = match set.get("customer_id").and_then(Value::as_id) {
                Some(c) if entity == Entity::FollowUp => {
                    Some(self.live_row(actor, Table::Customers, c).await?)
                }
                _ => None,
            };
            self.check_owner_for_create(actor, entity, o, crow.as_ref())
                .await?;
        }
        let (mut ops, id, payload, mut guards, mut audit) = self
            .finish_insert(actor, entity, set, custom, customs, owner, false, pool)
            .await?;
        ops.extend(side_ops);
        guards.extend(live_guard);
        guards.extend(side_guards);
        audit.extend(side_audit);
        Ok((ops, id, payload, guards, audit))
    }

    /// The rules of a follow-up's dates, alike on create and edit (`set`
    /// holds its values after the change; `occurred_changed` whether the
    /// time it occurred is set by this write): it is dated at most one day
    /// ahead — a follow-up dated far ahead would keep its customer from
    /// recycling until then — and its next follow-up is not planned before
    /// it occurred (a date without a time, the same day, is fine).
    pub(crate) fn check_follow_up_dates(
        &self,
        set: &BTreeMap<&'static str, Value>,
        occurred_changed: bool,
    ) -> Result<()> {
        // In the company's local time, to the second: what the user reads.
        let local = |t: DateTime<Utc>| {
            t.with_timezone(&self.config.utc_offset)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let latest = self.now() + chrono::Duration::days(1);
        // Not given on create: it occurs now.
        let occurred = Some(
            set.get("occurred_at")
                .and_then(Value::as_timestamp)
                .unwrap_or_else(|| self.now()),
        );
        if occurred_changed && let Some(at) = occurred.filter(|at| *at > latest) {
            return Err(Error::invalid(
                "occurred_at (跟进时间)",
                format!(
                    "{} is in the future: a follow-up may be dated at most one day ahead \
                     (until {}) ({} 晚于允许的 {})",
                    local(at),
                    local(latest),
                    local(at),
                    local(latest)
                ),
            ));
        }
        if let (Some(at), Some(next)) = (
            occurred,
            set.get("next_follow_up_at").and_then(Value::as_timestamp),
        ) && next < at
        {
            let (at_l, next_l) = (
                at.with_timezone(&self.config.utc_offset),
                next.with_timezone(&self.config.utc_offset),
            );
            let date_only = next_l.time() == NaiveTime::MIN;
            if !(date_only && next_l.date_naive() == at_l.date_naive()) {
                return Err(Error::invalid(
                    "next_follow_up_at (下次跟进时间)",
                    format!(
                        "{} is before the follow-up itself ({}): the next follow-up is planned \
                         after it ({} 早于本次跟进时间 {})",
                        local(next),
                        local(at),
                        local(next),
                        local(at)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The customer update a follow-up implies: last follow-up time and the
    /// next follow-up date — the date only for who has full access to that
    /// field (a field rule that makes it read-only or hidden leaves it
    /// alone, as a merge does), with an audit entry on the customer when it
    /// changes. Only who may edit the customer plans its next follow-up (a
    /// follow-up setting `next_follow_up_at` is refused to anyone else
    /// before this); the last follow-up time moves for every follow-up,
    /// also one logged through a read share: a contact with the customer
    /// did happen, and it is what the recycling rules count (as most CRMs
    /// count any logged activity).
    fn follow_up_customer_update(
        &self,
        actor: &Actor,
        customer: &Row,
        set: &BTreeMap<&'static str, Value>,
    ) -> (Op, Option<AuditEntry>) {
        let occurred = set
            .get("occurred_at")
            .and_then(Value::as_timestamp)
            .unwrap_or_else(|| self.now());
        let last = customer.get("last_follow_up_at").as_timestamp();
        let mut values: Vec<(&'static str, Value)> =
            vec![("updated_at", Value::Timestamp(self.now()))];
        let mut changes = Vec::new();
        if last.is_none_or(|l| occurred > l) {
            changes.push(FieldChange {
                field: "last_follow_up_at".into(),
                before: customer.get("last_follow_up_at").to_json(),
                after: Value::Timestamp(occurred).to_json(),
            });
            values.push(("last_follow_up_at", Value::Timestamp(occurred)));
        }
        // Only the latest follow-up plans the next one: a back-dated entry
        // leaves the customer's next follow-up date alone.
        let latest = last.is_none_or(|l| occurred >= l);
        if latest
            && actor.field_access(Entity::Customer, "next_follow_up") == FieldAccess::Full
            && let Some(next) = set.get("next_follow_up_at").and_then(Value::as_timestamp)
        {
            let next = Value::Date(next.with_timezone(&self.config.utc_offset).date_naive());
            let before = customer.get("next_follow_up");
            if *before != next {
                changes.push(FieldChange {
                    field: "next_follow_up".into(),
                    before: output_json(Entity::Customer, "next_follow_up", before),
                    after: output_json(Entity::Customer, "next_follow_up", &next),
                });
            }
            values.push(("next_follow_up", next));
        }
        let audit = (!changes.is_empty()).then(|| {
            self.audit(
                Some(actor),
                actor.company_id.0,
                Table::Customers,
                customer.id(),
                "update",
                changes,
            )
        });
        let op = Op::Update {
            table: Table::Customers,
            id: customer.id(),
            expected_version: customer.version(),
            values,
        };
        (op, audit)
    }

    /// The `customer.updated` events of the customer updates a change set
    /// makes besides its own record (a follow-up's customer dates): one per
    /// audit entry of such an update in `audit`, with the customer's code,
    /// its changes and the version the change set's update of the customer
    /// gives it.
    pub(crate) async fn side_customer_events(
        &self,
        ops: &[Op],
        audit: &[AuditEntry],
    ) -> Result<Vec<crate::store::NewEvent>> {
        let mut events = Vec::new();
        for a in audit
            .iter()
            .filter(|a| a.table == Table::Customers && a.action == "update")
        {
            let Some(version) = ops.iter().find_map(|op| match op {
                Op::Update {
                    table: Table::Customers,
                    id,
                    expected_version,
                    ..
                } if *id == a.record_id => Some(expected_version + 1),
                _ => None,
            }) else {
                continue;
            };
            let code = self
                .store
                .get(Table::Customers, a.record_id)
                .await?
                .map_or(Json::Null, |r| r.get("code").to_json());
            events.push(self.event(
                a.company_id,
                Table::Customers,
                a.record_id,
                "customer.updated".into(),
                serde_json::json!({"code": code, "version": version, "changes": &a.changes}),
            ));
        }
        Ok(events)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish_insert(
        &self,
        actor: &Actor,
        entity: Entity,
        mut set: BTreeMap<&'static str, Value>,
        custom: BTreeMap<String, Json>,
        customs: &[CustomFieldDef],
        owner: Option<Uuid>,
        skip_duplicates: bool,
        pool: Option<Uuid>,
    ) -> Result<Built> {
        self.derive(entity, &mut set)?;
        let guards = if skip_duplicates {
            Vec::new()
        } else {
            let mut g = self
                .check_duplicates(actor, entity, &set, &custom, customs, None)
                .await?;
            g.extend(crate::custom::option_list_guards(
                actor.company_id.0,
                customs,
                custom.keys(),
                self.now(),
            ));
            // So do the built-in choice fields' values.
            g.extend(self.picklist_guards(actor, entity, &set, None).await?);
            g
        };
        let owner = owner.unwrap_or(actor.user_id.0);
        let owner_dept = if owner == actor.user_id.0 {
            actor.department_id.map(|d| d.0)
        } else {
            self.user(actor, UserId(owner))
                .await?
                .department_id
                .map(|d| d.0)
        };
        let code = match entity.code_prefix() {
            Some(p) => Some(self.next_code(actor.company_id, p).await?),
            None => None,
        };
        let ins = self.insert_op(actor, entity, set, custom, owner, owner_dept, code, pool);
        Ok((vec![ins.op], ins.id, ins.payload, guards, Vec::new()))
    }

    /// The insert of a validated, derived record with its owner, department
    /// and code, or into a customer pool's public area without an owner
    /// (`pool`): the op, the new id, the event payload and where the
    /// payload's code is still to be filled ([`Inserted`]). Shared by
    /// single creates and bulk imports.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_op(
        &self,
        actor: &Actor,
        entity: Entity,
        mut set: BTreeMap<&'static str, Value>,
        custom: BTreeMap<String, Json>,
        owner: Uuid,
        owner_dept: Option<Uuid>,
        code: Option<String>,
        pool: Option<Uuid>,
    ) -> Inserted {
        let now = self.now();
        let id = self.new_id();
        if entity == Entity::Customer && !set.contains_key("attachments") {
            set.insert("attachments", Value::Json(Json::Array(Vec::new())));
        }
        let (owner, owner_dept) = match pool {
            Some(_) => (None, None),
            None => (Some(owner), owner_dept),
        };
        // The payload is written as JSON text in one go (a bulk import
        // writes thousands): the id, code and owner, the fields set, the
        // custom values, then the pool placement.
        let mut payload = Payload::writer(512);
        payload.value("id", &Value::Id(id));
        let code_at = match &code {
            Some(c) => {
                payload.text("code", c);
                None
            }
            None => Some(payload.null_at("code")),
        };
        payload.value("owner_id", &owner.into());
        for (k, v) in &set {
            if !is_derived(k) {
                // `k` is a column name: matched exactly (`Entity::field`
                // also tries labels and aliases).
                match entity
                    .fields()
                    .iter()
                    .find(|d| d.name == *k)
                    .map(|d| d.kind)
                {
                    Some(FieldKind::Tags) => payload.json(k, &tags_from_column(v)),
                    _ => payload.value(k, v),
                }
            }
        }
        for (k, v) in &custom {
            payload.json(&format!("custom.{k}"), v);
        }
        let placed = pool.filter(|_| entity == Entity::Customer);
        if let Some(p) = placed {
            payload.value("place", &crate::pool::Place::Public.name().into());
            payload.value("pool_id", &Value::Id(p));
        }
        // Sized once: a bulk import builds thousands of these.
        let mut values: Vec<(&'static str, Value)> = Vec::with_capacity(10 + set.len() + 5);
        values.extend([
            ("id", Value::Id(id)),
            ("company_id", Value::Id(actor.company_id.0)),
            ("version", Value::Int(1)),
            ("created_at", Value::Timestamp(now)),
            ("updated_at", Value::Timestamp(now)),
            ("owner_id", owner.into()),
            ("department_id", owner_dept.into()),
            ("created_by", Value::Id(actor.user_id.0)),
            (
                "custom",
                Value::Json(Json::Object(custom.into_iter().collect())),
            ),
            ("code", code.into()),
        ]);
        values.extend(set);
        if entity == Entity::Customer {
            match placed {
                // Into the pool's public area: never owned, so no
                // `owned_since`.
                Some(p) => values.extend(
                    crate::pool::new_customer_values(now)
                        .into_iter()
                        .filter(|(k, _)| !matches!(*k, "place" | "owned_since"))
                        .chain([
                            ("place", crate::pool::Place::Public.name().into()),
                            ("pool_id", Value::Id(p)),
                        ]),
                ),
                None => values.extend(crate::pool::new_customer_values(now)),
            }
        }
        Inserted {
            op: Op::Insert {
                table: entity.table(),
                values,
            },
            id,
            payload: payload.finish(),
            code_at,
        }
    }

    /// Loads a live record by its code (or id), masked per the actor's
    /// field rules, however the actor may read it: by data scope, through
    /// a share, as an approver of a document, or a follow-up with its
    /// customer (a list, narrowed by the data scope alone, would not find
    /// the last two). "Not found" when the actor may not read it.
    pub async fn get_record_by_code(
        &self,
        actor: &Actor,
        entity: Entity,
        code: &str,
    ) -> Result<Record> {
        let row = match self.resolve_ref(actor, entity, code).await {
            Ok(row) => row,
            // A customer in the public area of a pool the actor belongs to
            // is read through the pool, as in its 360° view.
            Err(e @ Error::NotFound { .. }) if entity == Entity::Customer => {
                match self.lookup_ref(actor, entity, code).await? {
                    Some(r) if r.get("archived_at").is_null() && r.get("deleted_at").is_null() => r,
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.get_record(actor, entity, RecordId(row.id()))
            .await
            .map_err(|e| e.not_found_as(entity, code))
    }

    /// Loads a record the actor can see (including the recycle bin and
    /// history), masked per the actor's field rules. A customer is seen as
    /// in its 360° view ([`Crm::customer_view`]): readable by data scope or
    /// share, or shown through its pool — in the public area of a pool the
    /// actor belongs to, the invalid area of one they administer. (Reading
    /// it so lets the actor neither list nor change it.)
    pub async fn get_record(&self, actor: &Actor, entity: Entity, id: RecordId) -> Result<Record> {
        let row = if entity == Entity::Customer {
            self.customer_for_pool_view(actor, id).await?
        } else {
            self.readable_row(actor, entity, id).await?
        };
        let customs = self.custom_fields(actor, entity).await?;
        Ok(self.to_record(actor, entity, &row, &customs))
    }

    pub(crate) async fn readable_row(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
    ) -> Result<Row> {
        let row = self
            .store
            .get(entity.table(), id.0)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .ok_or_else(|| Error::not_found(entity, id))?;
        if !self.can_on_row(actor, entity, Action::Read, &row).await? {
            // Not revealing whether it exists.
            return Err(Error::not_found(entity, id));
        }
        Ok(row)
    }

    /// Turns a row into the record the actor sees.
    pub(crate) fn to_record(
        &self,
        actor: &Actor,
        entity: Entity,
        row: &Row,
        customs: &[CustomFieldDef],
    ) -> Record {
        let mut fields = BTreeMap::new();
        for def in entity.fields() {
            let access = actor.field_access(entity, def.name);
            if access == FieldAccess::Hidden {
                continue;
            }
            let mut v = output_json(entity, def.name, row.get(def.name));
            if access == FieldAccess::Masked {
                v = mask_json(def.mask_style(), v);
            }
            fields.insert(def.name.to_string(), v);
        }
        let stored = row
            .get("custom")
            .as_json()
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let mut custom = BTreeMap::new();
        for def in customs {
            let name = format!("custom.{}", def.key);
            let access = actor.field_access(entity, &name);
            if access == FieldAccess::Hidden {
                continue;
            }
            let mut v = stored.get(&def.key).cloned().unwrap_or(Json::Null);
            if def.field_type == CustomFieldType::MultiSelect
                && let Json::String(joined) = &v
            {
                v = tags_from_column(&Value::Text(joined.clone()));
            }
            if access == FieldAccess::Masked {
                // Every kind of value is masked: text and list elements
                // masked, numbers, money and yes/no values as `***`.
                v = mask_json(crate::entity::MaskStyle::Text, v);
            }
            custom.insert(def.key.clone(), v);
        }
        Record {
            entity,
            id: RecordId(row.id()),
            code: row.get("code").as_text().map(str::to_string),
            version: row.version(),
            owner_id: row.get("owner_id").as_id().map(UserId),
            department_id: row.get("department_id").as_id().map(DepartmentId),
            created_by: row.get("created_by").as_id().map(UserId),
            created_at: row.get("created_at").as_timestamp().unwrap_or_default(),
            updated_at: row.get("updated_at").as_timestamp().unwrap_or_default(),
            deleted_at: row.get("deleted_at").as_timestamp(),
            archived_at: row.get("archived_at").as_timestamp(),
            fields,
            custom,
        }
    }

    /// Changes fields of a record. `expected_version` is the version the
    /// caller read: if someone changed the record since, nothing is written
    /// and [`Error::Conflict`] says so.
    pub async fn update_record(
        &self,
        actor: &Actor,
        entity: Entity,
        id: RecordId,
        expected_version: i64,
        fields: Fields,
    ) -> Result<Record> {
        let row = self.readable_row(actor, entity, id).await?;
        // Named by code where it has one (what a user sees and types).
        let name = row
            .get("code")
            .as_text()
            .map(str::to_string)
            .unwrap_or_else(|| id.to_string());
        if !row.get("deleted_at").is_null() {
            return Err(Error::InvalidState(format!(
                "{entity} {name} is in the recycle bin; restore it first"
            )));
        }
        if !row.get("archived_at").is_null() {
            return Err(Self::archived_refusal(entity, &row));
        }
        if !self.can_on_row(actor, entity, Action::Update, &row).await? {
            return Err(Self::forbid(actor, Action::Update, entity, &name));
        }
        if entity == Entity::FollowUp {
            self.follow_up_customer_in_reach(actor, &row, "edit")
                .await?;
        }
        // A version never written was not read: not someone else's change.
        if expected_version > row.version() || expected_version < 1 {
            return Err(Error::invalid(
                "version",
                format!(
                    "{entity} {name} has no version {expected_version} (it is at version {}); \
                     give the version you read",
                    row.version()
                ),
            ));
        }
        if row.version() != expected_version {
            return Err(Error::Conflict {
                entity: entity.name().into(),
                id: name.clone(),
                expected: expected_version,
                actual: row.version(),
            });
        }
        // A sales document's fields (its custom fields, through here)
        // change while its own edits may: a quote as a draft or rejected
        // (an approved one is revised; one awaiting approval, converted or
        // superseded is what it is), a contract as a draft or executing.
        match entity {
            Entity::Quote => {
                let q = crate::sales::quote::quote_from_row(&row);
                if !matches!(
                    q.status,
                    crate::sales::QuoteStatus::Draft | crate::sales::QuoteStatus::Rejected
                ) {
                    return Err(Error::InvalidState(format!(
                        "quote {} v{} is {}; its fields change only while a draft or rejected \
                         (revise it for a new version)",
                        q.code,
                        q.quote_version,
                        q.status.label()
                    )));
                }
            }
            Entity::Contract => {
                let c = crate::sales::contract::contract_from_row(&row);
                if !matches!(
                    c.status,
                    crate::sales::ContractStatus::Draft | crate::sales::ContractStatus::Executing
                ) {
                    return Err(Error::InvalidState(format!(
                        "contract {} is {}; its fields change only while a draft or executing",
                        c.code,
                        c.status.label()
                    )));
                }
            }
            _ => {}
        }
        let customs = self.custom_fields(actor, entity).await?;
        // A user field naming the deactivated user it holds keeps them.
        let stored_custom = row.get("custom").to_json();
        let (set, custom_set, owner) = self
            .prepare_keeping(
                actor,
                entity,
                &fields,
                &customs,
                false,
                &Lookups::default(),
                Inactive::Kept(&stored_custom),
            )
            .await?;
        if owner.is_some() {
            return Err(Error::invalid(
                "owner_id",
                "use transfer to change the owner",
            ));
        }
        // Merge with the stored values to derive keys and check duplicates.
        let mut merged: BTreeMap<&'static str, Value> = BTreeMap::new();
        for c in entity.table().columns() {
            merged.insert(c.name, row.get(c.name).clone());
        }
        merged.extend(set.clone());
        if entity == Entity::FollowUp
            && let Some(contact) = set.get("contact_id").and_then(Value::as_id)
        {
            // As on create: the contact must be one of the follow-up's
            // customer's.
            let c = self.live_row(actor, Table::Contacts, contact).await?;
            if c.get("customer_id").as_id() != merged.get("customer_id").and_then(Value::as_id) {
                return Err(Error::invalid(
                    "contact_id (联系人)",
                    "the contact belongs to another customer",
                ));
            }
        }
        self.derive(entity, &mut merged)?;
        if entity == Entity::FollowUp
            && (set.contains_key("occurred_at") || set.contains_key("next_follow_up_at"))
        {
            let occurred_changed = set
                .get("occurred_at")
                .is_some_and(|v| v != row.get("occurred_at"));
            self.check_follow_up_dates(&merged, occurred_changed)?;
        }
        let mut stored_custom = row
            .get("custom")
            .as_json()
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &custom_set {
            stored_custom.insert(k.clone(), v.clone());
        }
        // Only keys whose value changes are checked: re-saving a value a
        // duplicate already shares (a rule switched to block since, a
        // record kept on purpose) is not a new duplicate.
        let old_custom_values = row
            .get("custom")
            .as_json()
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let only_changed: BTreeMap<String, Json> = custom_set
            .iter()
            .filter(|(k, v)| {
                old_custom_values
                    .get(k.as_str())
                    .map_or(!v.is_null(), |before| {
                        crate::dedupe::custom_key(before) != crate::dedupe::custom_key(v)
                    })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key_changed = |k: &str| merged.get(k).is_some_and(|v| v != row.get(k));
        let changed_dup_keys = ["name_key", "uscc", "mobile_key", "phone_key", "email_key"]
            .iter()
            .any(|k| key_changed(k))
            || !only_changed.is_empty();
        let mut guards = Vec::new();
        if changed_dup_keys {
            let mut check = merged.clone();
            if !key_changed("name_key") {
                check.remove("name_key");
            }
            if !key_changed("uscc") {
                check.remove("uscc");
            }
            if !key_changed("mobile_key") {
                check.remove("mobile_key");
            }
            if !key_changed("phone_key") {
                check.remove("phone_key");
            }
            if !key_changed("email_key") {
                check.remove("email");
                check.remove("email_key");
            }
            guards = self
                .check_duplicates(
                    actor,
                    entity,
                    &check,
                    &only_changed,
                    &customs,
                    Some(row.id()),
                )
                .await?;
        }
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let mut changes = Vec::new();
        for (k, v) in &merged {
            if *k == "version" || *k == "custom" {
                continue;
            }
            let before = row.get(k);
            if before != v {
                values.push((*k, v.clone()));
                if !is_derived(k) {
                    changes.push(FieldChange {
                        field: k.to_string(),
                        before: output_json(entity, k, before),
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
        for (k, v) in &custom_set {
            let before = old_custom.get(k).cloned().unwrap_or(Json::Null);
            if &before != v {
                changes.push(FieldChange {
                    field: format!("custom.{k}"),
                    before,
                    after: v.clone(),
                });
            }
        }
        if changes.is_empty() {
            return Ok(self.to_record(actor, entity, &row, &customs));
        }
        if !custom_set.is_empty() {
            values.push(("custom", Value::Json(Json::Object(stored_custom))));
        }
        values.push(("updated_at", Value::Timestamp(self.now())));
        let mut cs = ChangeSet {
            guards,
            ..ChangeSet::default()
        };
        // A select value given here meets the option list as read.
        cs.guards.extend(crate::custom::option_list_guards(
            actor.company_id.0,
            &customs,
            custom_set
                .iter()
                .filter(|(k, v)| old_custom_values.get(k.as_str()) != Some(*v))
                .map(|(k, _)| k),
            self.now(),
        ));
        // So does a built-in choice field's new value.
        cs.guards.extend(
            self.picklist_guards(actor, entity, &set, Some(&row))
                .await?,
        );
        cs.ops.push(Op::Update {
            table: entity.table(),
            id: id.0,
            expected_version,
            values,
        });
        cs.events.push(self.event(
            actor.company_id.0,
            entity.table(),
            id.0,
            format!("{entity}.updated"),
            serde_json::json!({ "version": expected_version + 1, "changes": &changes }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            entity.table(),
            id.0,
            "update",
            changes,
        ));
        let dates_changed = ["occurred_at", "next_follow_up_at"]
            .iter()
            .any(|k| merged.get(k).is_some_and(|v| v != row.get(k)));
        if entity == Entity::FollowUp && dates_changed {
            let after = Row {
                table: Table::FollowUps,
                values: Table::FollowUps
                    .columns()
                    .iter()
                    .map(|c| merged.get(c.name).cloned().unwrap_or(Value::Null))
                    .collect(),
            };
            self.apply_follow_up_edit(actor, &row, &after, cs).await?;
        } else {
            self.apply_indexed(cs).await?;
        }
        self.get_record(actor, entity, id).await
    }

    /// Refuses `doing` (edit, delete, archive, restore, purge) to a
    /// follow-up whose customer the actor may no longer read: its author
    /// after the customer was transferred, released or unshared. The
    /// follow-ups are the customer's timeline, and they set its follow-up
    /// dates (the due lists, recycling): changed only by who still works
    /// on it.
    pub(crate) async fn follow_up_customer_in_reach(
        &self,
        actor: &Actor,
        row: &Row,
        doing: &str,
    ) -> Result<()> {
        let Some(customer) = row.get("customer_id").as_id() else {
            return Ok(());
        };
        let Some(crow) = self
            .store
            .get(Table::Customers, customer)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
        else {
            return Ok(());
        };
        if self
            .can_on_row(actor, Entity::Customer, Action::Read, &crow)
            .await?
        {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "{} may not {doing} follow-up {}: its customer is no longer theirs to read \
             (transferred, released or no longer shared); the customer's owner keeps its timeline",
            actor.display_name,
            row.get("code").as_text().unwrap_or_default()
        )))
    }

    /// Writes an edit of a follow-up's time or next follow-up date (`cs`,
    /// the follow-up's own update) together with its customer's follow-up
    /// dates, computed again from the live follow-ups as deleting and
    /// restoring one do. Changing the next follow-up date plans the
    /// customer's next follow-up: refused, as on create, to who may not
    /// edit the customer. The customer is written at the version read:
    /// when another write of it committed meanwhile, it is read again and
    /// the dates computed again, at most [`FOLLOW_UP_TRIES`] times.
    async fn apply_follow_up_edit(
        &self,
        actor: &Actor,
        before: &Row,
        after: &Row,
        cs: ChangeSet,
    ) -> Result<()> {
        let Some(customer) = before.get("customer_id").as_id() else {
            return self.apply_indexed(cs).await;
        };
        let next_changed = after.get("next_follow_up_at") != before.get("next_follow_up_at");
        let mut tries = 1;
        loop {
            let mut attempt = cs.clone();
            let crow = self
                .store
                .get(Table::Customers, customer)
                .await?
                .filter(|c| {
                    c.get("company_id").as_id() == Some(actor.company_id.0)
                        && c.get("deleted_at").is_null()
                });
            if let Some(crow) = crow {
                let plans = self
                    .can_on_row(actor, Entity::Customer, Action::Update, &crow)
                    .await?;
                if next_changed && !plans {
                    return Err(may_not_plan(actor, &crow, "change", "leave it as it is"));
                }
                self.follow_up_dates(
                    actor,
                    &crow,
                    before,
                    crate::lifecycle::FollowUpChange::Edited { after, plans },
                    &mut attempt,
                )
                .await?;
            }
            match self.apply_indexed(attempt).await {
                Err(e) if is_customer_conflict(&e) && tries < FOLLOW_UP_TRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Lists records the actor can see. Conditions, search, sort and paging
    /// become one store query that also carries the actor's data scope, so
    /// the page and the total only count visible records.
    pub async fn list_records(
        &self,
        actor: &Actor,
        entity: Entity,
        query: &ListQuery,
    ) -> Result<Page<Record>> {
        self.list_records_with(actor, entity, query, None, Filter::True)
            .await
    }

    /// [`Crm::list_records`] with another scope than the actor's (pools show
    /// ownerless customers to their members) and an extra resolved filter.
    pub(crate) async fn list_records_with(
        &self,
        actor: &Actor,
        entity: Entity,
        query: &ListQuery,
        scope: Option<Scope>,
        extra: Filter,
    ) -> Result<Page<Record>> {
        if !entity.is_record() {
            return Err(Error::invalid(
                "entity",
                format!("{entity} is not a business record"),
            ));
        }
        let customs = self.custom_fields(actor, entity).await?;
        let (scope, widened) = match scope {
            Some(scope) => (scope, Filter::True),
            None => read_scope(actor, entity, self.now()),
        };
        let mut filters = vec![extra, widened];
        for c in &crate::query::prepared_conditions(&query.conditions)? {
            filters.push(self.resolve_cond(actor, entity, c, &customs).await?);
        }
        check_filter_weight(&filters[2..])?;
        if let Some(q) = query.search.as_deref().filter(|q| !q.trim().is_empty()) {
            filters.push(search_filter(actor, entity, q, self.now()));
        }
        let mut sort = Vec::new();
        for s in &query.sort {
            let col = self.sort_col(actor, entity, &s.field, &customs)?;
            // A sort key (name, title) is followed by its text: keys tell
            // texts apart, so the text only orders the rows that have no
            // key yet (written before the key column existed, until
            // `rebuild_search_keys`), which both stores sort after every
            // key in both directions (NULLS LAST).
            let text = match &col {
                Col::Column(c) => crate::schema::SORT_KEYS
                    .iter()
                    .find(|(t, _, key)| *t == entity.table() && key == c)
                    .map(|(_, text, _)| *text),
                Col::Custom { .. } => None,
            };
            sort.push(Sort { col, desc: s.desc });
            if let Some(text) = text {
                sort.push(Sort {
                    col: Col::Column(text),
                    desc: s.desc,
                });
            }
        }
        if sort.is_empty() {
            sort.push(Sort {
                col: Col::Column("created_at"),
                desc: true,
            });
        }
        let paging = match &query.page {
            PageRequest::Offset { page, per_page } => {
                let per = (*per_page).clamp(1, MAX_PAGE_SIZE);
                Paging::Offset {
                    offset: page.saturating_sub(1).saturating_mul(per),
                    limit: per,
                }
            }
            PageRequest::Keyset { after, limit } => {
                let after = match after {
                    Some(c) => Some(decode_cursor(c, sort.len() + 1)?),
                    None => None,
                };
                Paging::Keyset {
                    after,
                    limit: (*limit).clamp(1, MAX_PAGE_SIZE),
                }
            }
        };
        let sel = Select {
            table: entity.table(),
            company: actor.company_id.0,
            lifecycle: query.lifecycle,
            scope,
            filter: Filter::And(filters),
            sort,
            paging: paging.clone(),
            with_total: query.with_total,
            now: self.now(),
        };
        let res = self.store.select(&sel).await?;
        let next_cursor = match (&paging, res.has_more, res.rows.last()) {
            (Paging::Keyset { .. }, true, Some(last)) => {
                let mut vals: Vec<Value> =
                    sel.sort.iter().map(|s| sort_value(last, &s.col)).collect();
                vals.push(Value::Id(last.id()));
                Some(serde_json::to_string(&vals).unwrap_or_default())
            }
            _ => None,
        };
        Ok(Page {
            items: res
                .rows
                .iter()
                .map(|r| self.to_record(actor, entity, r, &customs))
                .collect(),
            total: res.total,
            has_more: res.has_more,
            next_cursor,
        })
    }

    /// Resolves a sort key: a field as [`Crm::field_col`] does — a name
    /// or title as the column of its sort key
    /// ([`SORT_KEYS`](crate::schema::SORT_KEYS): pinyin order, letter
    /// case aside) —, or `pinyin` (the name's pinyin keys, so only when
    /// the name may be sorted by, and for customers the short name too).
    pub(crate) fn sort_col(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
        customs: &[CustomFieldDef],
    ) -> Result<Col> {
        if field.trim().is_empty() {
            return Err(Error::invalid(
                "sort",
                "name a field to sort by, e.g. name, or -created_at for newest first",
            ));
        }
        if matches!(field, "pinyin" | "拼音") {
            if !filterable(actor, entity, "name") {
                return Err(Error::Forbidden(format!(
                    "{} may not filter or sort {} by name",
                    actor.display_name, entity
                )));
            }
            // A customer's keys hold its short name's readings too (see
            // `Crm::derive`): its order, and a keyset page's cursor, would
            // tell them.
            if entity == Entity::Customer && !filterable(actor, entity, "short_name") {
                return Err(Error::Forbidden(format!(
                    "{} may not sort customers by pinyin: the readings include the short name, which they may not read in full",
                    actor.display_name
                )));
            }
            return Ok(Col::Column("pinyin_keys"));
        }
        let (col, ty, _) = self.field_col(actor, entity, field, customs)?;
        if ty == ColType::Json {
            return Err(Error::invalid(
                field,
                format!("{entity} cannot be sorted by {field}"),
            ));
        }
        if let Col::Column(c) = &col
            && let Some(key) = entity.table().sort_key_of(c)
        {
            return Ok(Col::Column(key));
        }
        Ok(col)
    }

    /// Resolves a field name for filtering and sorting; hidden and masked
    /// fields cannot be used, so their values cannot be inferred.
    pub(crate) fn field_col(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
        customs: &[CustomFieldDef],
    ) -> Result<(Col, ColType, Option<&'static FieldDef>)> {
        let f = field.trim();
        let check = |name: &str| -> Result<()> {
            if filterable(actor, entity, name) {
                return Ok(());
            }
            Err(Error::Forbidden(format!(
                "{} may not filter or sort {} by {name}",
                actor.display_name, entity
            )))
        };
        if let Some((name, _, _)) = STANDARD_FIELDS
            .iter()
            .find(|(n, zh, en)| *n == f || *zh == f || en.eq_ignore_ascii_case(f))
        {
            // Rules on these columns are refused now; one stored before
            // still holds here.
            check(name)?;
            let def = entity
                .table()
                .column(name)
                .ok_or_else(|| Error::invalid(f, "unknown field"))?;
            return Ok((Col::Column(def.name), def.ty, None));
        }
        if let Some(def) = entity.field(f) {
            check(def.name)?;
            let col = match def.kind {
                FieldKind::Phone(k) | FieldKind::Mobile(k) => k,
                _ => def.name,
            };
            let ty = entity
                .table()
                .column(col)
                .map(|c| c.ty)
                .unwrap_or(ColType::Text);
            return Ok((Col::Column(col), ty, Some(def)));
        }
        let key = f.strip_prefix("custom.").unwrap_or(f);
        if let Some(def) = customs.iter().find(|d| d.key == key || d.label == key) {
            check(&format!("custom.{}", def.key))?;
            let ty = match def.field_type.compare_as() {
                crate::store::CustomType::Number => ColType::Int,
                crate::store::CustomType::Bool => ColType::Bool,
                crate::store::CustomType::Text => ColType::Text,
            };
            return Ok((def.col(), ty, None));
        }
        Err(Error::invalid(f, format!("{entity} has no field '{f}'")))
    }

    /// A filter value of a built-in or standard field, normalised as a
    /// saved value is: phone keys, enum API names, resident ID numbers,
    /// credit codes and e-mail addresses through the validators that save
    /// them (the text as typed when it does not validate, which then
    /// matches nothing), dates, times, yes/no and numbers parsed.
    pub(crate) fn typed_value(
        &self,
        field: &str,
        col: &Col,
        ty: ColType,
        def: Option<&'static FieldDef>,
        v: &Json,
    ) -> Result<Value> {
        let bad = |m: String| Error::invalid(field, m);
        let Some(text) = json_text(v) else {
            return Ok(Value::Null);
        };
        if let Col::Custom { ty: ct, .. } = col {
            return Ok(match ct {
                crate::store::CustomType::Number => {
                    Value::Float(crate::custom::parse_number(&text).map_err(bad)?)
                }
                crate::store::CustomType::Bool => Value::Bool(filter_bool(field, &text)?),
                crate::store::CustomType::Text => Value::Text(text),
            });
        }
        if let Some(def) = def {
            match def.kind {
                FieldKind::Phone(_) | FieldKind::Mobile(_) => {
                    let key = crate::validate::phone(&text)
                        .map(|p| p.key)
                        .unwrap_or_else(|_| text.chars().filter(char::is_ascii_digit).collect());
                    return Ok(Value::Text(key));
                }
                FieldKind::Enum(opts) => {
                    let api = opts
                        .iter()
                        .find(|(a, z)| a.eq_ignore_ascii_case(&text) || *z == text)
                        .map(|(a, _)| a.to_string())
                        .unwrap_or(text);
                    return Ok(Value::Text(api));
                }
                FieldKind::ResidentId => {
                    let id = crate::validate::resident_id(&text).map(|id| id.number);
                    return Ok(Value::Text(id.unwrap_or(text)));
                }
                FieldKind::Uscc => {
                    return Ok(Value::Text(crate::validate::uscc(&text).unwrap_or(text)));
                }
                FieldKind::Email => {
                    return Ok(Value::Text(crate::validate::email(&text).unwrap_or(text)));
                }
                // Matched inside the stored `,a,b,` list (see `cmp_filter`).
                FieldKind::Tags => return Ok(Value::Text(text)),
                _ => {}
            }
        }
        Ok(match ty {
            ColType::Json => return Err(bad(format!("'{field}' cannot be compared with a value"))),
            ColType::Text => Value::Text(text),
            ColType::Int => Value::Int(crate::validate::whole_number(&text).map_err(bad)?),
            ColType::Bool => Value::Bool(filter_bool(field, &text)?),
            ColType::Date => Value::Date(parse_date(&text).map_err(bad)?),
            ColType::Timestamp => Value::Timestamp(self.parse_datetime(&text).map_err(bad)?),
            ColType::Id => Value::Id(
                Uuid::parse_str(&text).map_err(|_| bad(format!("'{text}' is not an id")))?,
            ),
        })
    }

    /// A filter value of any field, normalised as a saved value is: custom
    /// fields by their type (numbers, amounts in 元, dates, yes/no, options
    /// as stored, users as their ids), built-in choices as their stored
    /// option, other fields by [`Crm::typed_value`].
    #[allow(clippy::too_many_arguments)]
    async fn filter_value(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
        col: &Col,
        ty: ColType,
        def: Option<&'static FieldDef>,
        custom: Option<&CustomFieldDef>,
        v: &Json,
    ) -> Result<Value> {
        // A built-in choice: the company's option as stored, whatever the
        // case typed (as saving matches it); no option matches nothing.
        if let Some(d) = def
            && matches!(d.kind, FieldKind::Choice(_))
        {
            let Some(text) = json_text(v) else {
                return Ok(Value::Null);
            };
            let options = self.picklist(actor, entity, d.name).await?;
            return Ok(Value::Text(stored_option(&options, text)));
        }
        // The owner and the creator: a user named as saving names an owner
        // (username or a display name only one user has), or an id.
        if is_user_column(col)
            && let Some(text) = json_text(v)
        {
            return Ok(Value::Id(self.filter_user(actor, field, &text).await?));
        }
        // A reference named by its code (`customer_id=KH-…`), as saving
        // takes one: the record with that code in the company, whoever may
        // see it (the list stays within the actor's scope, and a code no
        // record has matches nothing, as a hidden one may: neither is told
        // apart).
        if let Some(d) = def
            && let FieldKind::Ref(target) = d.kind
            && let Some(text) = json_text(v)
            && Uuid::parse_str(text.trim()).is_err()
        {
            let mut sel = Select::all(target.table(), actor.company_id.0, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::Cmp(
                Col::Column("code"),
                CmpOp::Eq,
                crate::validate::record_code(&text).into(),
            );
            let found = self.store.select(&sel).await?.rows.into_iter().next();
            return Ok(Value::Id(found.map_or(Uuid::nil(), |r| r.id())));
        }
        // A record's own code, as typed (`kh-…`, full width).
        if field_is_record_code(entity, col)
            && let Some(text) = json_text(v)
        {
            return Ok(Value::Text(crate::validate::record_code(&text)));
        }
        let Some(custom) = custom else {
            return self.typed_value(field, col, ty, def, v);
        };
        let Some(text) = json_text(v) else {
            return Ok(Value::Null);
        };
        let bad = |m: String| Error::invalid(field, m);
        Ok(match custom.field_type {
            CustomFieldType::Number => {
                Value::Float(crate::custom::parse_number(&text).map_err(bad)?)
            }
            // Kept in 分 of CNY, read as saving reads it: an amount in
            // another currency is refused, not compared as that many 分.
            CustomFieldType::Money => {
                crate::money::Money::parse_in(&text, crate::money::Currency::CNY)
                    .map(|m| Value::Float(m.minor as f64))
                    .map_err(|e| bad(format!("'{text}': {e} (money fields are kept in 元)")))?
            }
            // Kept as `YYYY-MM-DD`, which orders as the dates do.
            CustomFieldType::Date => Value::Text(
                parse_date(&text)
                    .map_err(bad)?
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            CustomFieldType::Boolean => Value::Bool(filter_bool(field, &text)?),
            // The option as stored; a word that is no option matches nothing.
            CustomFieldType::Select | CustomFieldType::MultiSelect => {
                Value::Text(custom.option(&text).unwrap_or(text))
            }
            CustomFieldType::User => {
                Value::Text(self.filter_user(actor, field, &text).await?.to_string())
            }
            CustomFieldType::Text => Value::Text(text),
        })
    }

    /// The id a user-type custom field stores for the user `text` names: an
    /// id (kept as given: the user may have left since), a username, or
    /// else the display name of exactly one user. No such user is an error,
    /// as saving refuses one.
    async fn filter_user(&self, actor: &Actor, field: &str, text: &str) -> Result<Uuid> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(id);
        }
        match self.user_by_username(actor, text).await {
            Ok(u) => return Ok(u.id.0),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // Else a display name: among the users a search for it finds.
        user_named(&self.list_users(actor, Some(text)).await?, field, text)
    }

    /// A comparison of one field with one value as a store filter. Tags
    /// and multi-select fields, stored as `,a,b,`, compare one option:
    /// equal means holding it, not equal not holding it (or holding none),
    /// and no value means holding none.
    async fn cmp_filter(
        &self,
        actor: &Actor,
        entity: Entity,
        customs: &[CustomFieldDef],
        f: &str,
        op: CmpOp,
        v: &Json,
    ) -> Result<Filter> {
        let (col, ty, def) = self.field_col(actor, entity, f, customs)?;
        let custom = custom_def(&col, customs);
        let value = self
            .filter_value(actor, entity, f, &col, ty, def, custom, v)
            .await?;
        if is_list(def, custom) {
            let Value::Text(t) = value else {
                return Ok(match op {
                    CmpOp::Ne => Filter::NotNull(col),
                    _ => Filter::IsNull(col),
                });
            };
            let has = Filter::Contains(col.clone(), format!(",{t},"));
            return Ok(match op {
                // Like Ne elsewhere: records without any value match.
                CmpOp::Ne => Filter::Or(vec![Filter::IsNull(col), Filter::Not(Box::new(has))]),
                _ => has,
            });
        }
        Ok(match value {
            Value::Null => match op {
                CmpOp::Ne => Filter::NotNull(col),
                _ => Filter::IsNull(col),
            },
            // A date or a time to the second: every instant of it.
            Value::Timestamp(_) if custom.is_none() => {
                match self
                    .instant_span(&json_text(v).unwrap_or_default())
                    .map_err(|m| Error::invalid(f, m))?
                {
                    Some((start, end)) => crate::query::span_filter(col, op, start, end),
                    None => Filter::Cmp(col, op, value),
                }
            }
            // Whatever the letter case, as the duplicate key compares.
            Value::Text(t)
                if matches!(op, CmpOp::Eq | CmpOp::Ne)
                    && def.is_some_and(|d| d.kind == FieldKind::Email) =>
            {
                crate::query::email_filter(col, vec![Some(t)], op == CmpOp::Ne)
            }
            value => Filter::Cmp(col, op, value),
        })
    }

    /// Resolves a user-facing condition into a store filter.
    pub(crate) fn resolve_cond<'a>(
        &'a self,
        actor: &'a Actor,
        entity: Entity,
        cond: &'a Cond,
        customs: &'a [CustomFieldDef],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Filter>> + Send + 'a>> {
        Box::pin(async move {
            let cmp = |f: &'a str, op: CmpOp, v: &'a Json| {
                self.cmp_filter(actor, entity, customs, f, op, v)
            };
            Ok(match cond {
                Cond::Eq(f, v) => cmp(f, CmpOp::Eq, v).await?,
                Cond::Ne(f, v) => cmp(f, CmpOp::Ne, v).await?,
                Cond::Lt(f, v) => cmp(f, CmpOp::Lt, v).await?,
                Cond::Le(f, v) => cmp(f, CmpOp::Le, v).await?,
                Cond::Gt(f, v) => cmp(f, CmpOp::Gt, v).await?,
                Cond::Ge(f, v) => cmp(f, CmpOp::Ge, v).await?,
                Cond::In(f, vs) => {
                    let (col, ty, def) = self.field_col(actor, entity, f, customs)?;
                    let custom = custom_def(&col, customs);
                    let mut values = Vec::new();
                    // The options or users the values name, read once for
                    // the whole list (not once per value).
                    let choice = def.filter(|d| matches!(d.kind, FieldKind::Choice(_)));
                    let users = custom.is_some_and(|c| c.field_type == CustomFieldType::User)
                        || is_user_column(&col);
                    if let Some(d) = choice {
                        let options = self.picklist(actor, entity, d.name).await?;
                        for v in vs {
                            values.push(match json_text(v) {
                                None => Value::Null,
                                Some(text) => Value::Text(stored_option(&options, text)),
                            });
                        }
                    } else if users && vs.len() > 1 {
                        let all = self.list_users(actor, None).await?;
                        for v in vs {
                            values.push(match json_text(v) {
                                None => Value::Null,
                                Some(text) => {
                                    let id = user_named(&all, f, &text)?;
                                    if is_user_column(&col) {
                                        Value::Id(id)
                                    } else {
                                        Value::Text(id.to_string())
                                    }
                                }
                            });
                        }
                    } else {
                        for v in vs {
                            values.push(
                                self.filter_value(actor, entity, f, &col, ty, def, custom, v)
                                    .await?,
                            );
                        }
                    }
                    if is_list(def, custom) {
                        // Holding any of the options (none: holding none).
                        Filter::Or(
                            values
                                .into_iter()
                                .map(|v| match v {
                                    Value::Text(t) => {
                                        Filter::Contains(col.clone(), format!(",{t},"))
                                    }
                                    _ => Filter::IsNull(col.clone()),
                                })
                                .collect(),
                        )
                    } else if def.is_some_and(|d| d.kind == FieldKind::Email) {
                        // Whatever the letter case, as `=` compares.
                        crate::query::email_filter(
                            col,
                            values
                                .into_iter()
                                .map(|v| v.as_text().map(str::to_string))
                                .collect(),
                            false,
                        )
                    } else if ty == ColType::Timestamp && custom.is_none() {
                        // Each date or time to the second: every instant of it.
                        let mut any = Vec::new();
                        for (v, value) in vs.iter().zip(values) {
                            let span = match json_text(v) {
                                Some(t) if !value.is_null() => {
                                    self.instant_span(&t).map_err(|m| Error::invalid(f, m))?
                                }
                                _ => None,
                            };
                            any.push(match span {
                                Some((start, end)) => {
                                    crate::query::span_filter(col.clone(), CmpOp::Eq, start, end)
                                }
                                None => Filter::In(col.clone(), vec![value]),
                            });
                        }
                        Filter::Or(any)
                    } else {
                        Filter::In(col, values)
                    }
                }
                Cond::Contains(f, t) | Cond::StartsWith(f, t) => {
                    // Without NUL characters, as every value compared (see
                    // `json_text`): none is stored, and PostgreSQL refuses
                    // them in a query.
                    let t = &t.replace('\0', "");
                    let (col, ty, def) = self.field_col(actor, entity, f, customs)?;
                    if ty != ColType::Text {
                        return Err(Error::invalid(
                            f.clone(),
                            format!("'{f}' is not text; use =, <, > or in to compare it"),
                        ));
                    }
                    let needle = match def.map(|d| d.kind) {
                        Some(FieldKind::Phone(_) | FieldKind::Mobile(_)) => {
                            // Phones are compared by their digits: a value
                            // with letters, or none, would match by what is
                            // left (every number, for `abc`).
                            if t.chars().any(char::is_alphabetic)
                                || !t
                                    .chars()
                                    .any(|c| crate::validate::halfwidth(c).is_ascii_digit())
                            {
                                return Err(Error::invalid(
                                    f.clone(),
                                    format!(
                                        "'{}' is no part of a phone number: a phone is searched \
                                         by its digits (e.g. 138, 0755-2878)",
                                        t.trim()
                                    ),
                                ));
                            }
                            phone_needle(t, matches!(cond, Cond::StartsWith(..)))
                        }
                        _ => t.trim().to_string(),
                    };
                    let prefix = matches!(cond, Cond::StartsWith(..));
                    match def.map(|d| d.kind) {
                        // Phone keys are digits already.
                        Some(FieldKind::Phone(_) | FieldKind::Mobile(_)) => {
                            if prefix {
                                Filter::StartsWith(col, needle)
                            } else {
                                Filter::Contains(col, needle)
                            }
                        }
                        // Text in either width and letter case, as typed or
                        // stored (`ａｐｐ` finds `Apple` and `ＡＰＰＬＥ`).
                        _ => Filter::TextKeyLike {
                            col,
                            needle,
                            prefix,
                        },
                    }
                }
                Cond::IsNull(f) => Filter::IsNull(self.field_col(actor, entity, f, customs)?.0),
                Cond::NotNull(f) => Filter::NotNull(self.field_col(actor, entity, f, customs)?.0),
                Cond::And(cs) => {
                    let mut out = Vec::new();
                    for c in cs {
                        out.push(self.resolve_cond(actor, entity, c, customs).await?);
                    }
                    Filter::And(out)
                }
                Cond::Or(cs) => {
                    let mut out = Vec::new();
                    for c in cs {
                        out.push(self.resolve_cond(actor, entity, c, customs).await?);
                    }
                    Filter::Or(out)
                }
                Cond::Not(c) => Filter::Not(Box::new(
                    self.resolve_cond(actor, entity, c, customs).await?,
                )),
                Cond::Related(rel, c) => {
                    let (_, target, fk) = entity
                        .relations()
                        .iter()
                        .find(|(n, e, _)| {
                            *n == rel.as_str()
                                || e.name() == rel.as_str()
                                || e.name_zh() == rel.as_str()
                        })
                        .copied()
                        .ok_or_else(|| {
                            Error::invalid(
                                rel.clone(),
                                format!("{entity} has no related records called '{rel}'"),
                            )
                        })?;
                    if !actor.can(target, Action::Read) {
                        return Err(Self::forbid(actor, Action::Read, target, "records"));
                    }
                    let target_customs = self.custom_fields(actor, target).await?;
                    let inner = self.resolve_cond(actor, target, c, &target_customs).await?;
                    // Only the related records the actor may read count: a
                    // match among the others would reveal what they hold.
                    let scope = actor
                        .store_scope(target, Action::Read)
                        .map(|s| s.as_filter(target.table(), self.now()))
                        .unwrap_or(Filter::Or(Vec::new()));
                    Filter::Related {
                        table: target.table(),
                        fk,
                        filter: Box::new(Filter::And(vec![inner, scope])),
                    }
                }
            })
        })
    }
}

/// The most attachments one record holds.
const MAX_ATTACHMENTS: usize = 200;

fn coerce_attachments(v: &Json) -> std::result::Result<Json, String> {
    let items = match v {
        Json::Null => return Ok(Json::Array(Vec::new())),
        Json::Array(a) => a.clone(),
        Json::String(s) if s.trim().is_empty() => return Ok(Json::Array(Vec::new())),
        Json::String(s) => serde_json::from_str::<Vec<Json>>(s)
            .map_err(|_| "must be a JSON list of {name, kind, uri, size}".to_string())?,
        _ => return Err("must be a list of {name, kind, uri, size}".into()),
    };
    if items.len() > MAX_ATTACHMENTS {
        return Err(format!(
            "holds {} attachments; a record holds at most {MAX_ATTACHMENTS}",
            items.len()
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // Invisible characters are no name, NUL none of anything (no
        // store keeps one); a name or a link is one line.
        let text = |k: &str| {
            let raw = item.get(k).and_then(Json::as_str).unwrap_or_default();
            crate::validate::one_line(&crate::validate::strip_invisible(&raw.replace('\0', "")))
                .trim()
                .to_string()
        };
        let (name, uri) = (text("name"), text("uri"));
        if name.is_empty() || uri.is_empty() {
            return Err(format!("attachment {} needs a name and a uri", i + 1));
        }
        for (what, t, max) in [("name", &name, 255), ("uri", &uri, 2048)] {
            if t.chars().count() > max {
                return Err(format!(
                    "attachment {}'s {what} is longer than {max} characters",
                    i + 1
                ));
            }
        }
        // A link someone clicks: a web address or a storage key, never
        // one that runs script in a browser (`javascript:`, `data:` …).
        let scheme = uri
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .filter(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            });
        if let Some(scheme) = scheme
            && !["http", "https", "oss", "s3", "cos", "obs", "file"].contains(&scheme.as_str())
        {
            return Err(format!(
                "attachment '{name}' links to a '{scheme}:' address; an attachment's uri is an \
                 http(s) address or a storage key"
            ));
        }
        let kind = item.get("kind").and_then(Json::as_str).unwrap_or("file");
        if !["image", "file", "audio", "video"].contains(&kind) {
            return Err(format!(
                "attachment '{name}' has kind '{kind}'; expected image, file, audio or video"
            ));
        }
        let size = match item.get("size") {
            None | Some(Json::Null) => 0,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => n,
                _ => {
                    return Err(format!(
                        "attachment '{name}' has size {v}; a size is a whole number of bytes, \
                         0 or more"
                    ));
                }
            },
        };
        out.push(serde_json::json!({"name": name, "kind": kind, "uri": uri, "size": size}));
    }
    Ok(Json::Array(out))
}

/// The value a unique custom field's duplicate check compares a JSON value
/// as (creates, updates and imports alike: their guards' keys must match).
pub(crate) fn custom_key_value(v: &Json) -> Value {
    match v {
        Json::Number(n) => Value::Float(n.as_f64().unwrap_or_default()),
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// The lock key of a duplicate guard on `filter` (see [`Guard`]): the value
/// the filter compares, normalised as stored, so that a record's create or
/// update and a bulk import guarding the same value wait for each other.
/// The common guard, a text column equal to a value, is written out plainly
/// (an import computes thousands per batch); any other filter as its debug
/// form. Two different filters with one key would only wait for each other.
pub(crate) fn guard_key(company: Uuid, table: Table, filter: &Filter) -> String {
    match filter {
        Filter::Cmp(Col::Column(c), CmpOp::Eq, Value::Text(t)) => {
            format!("{company}:{table}:{c}={t}")
        }
        _ => format!("{company}:{table}:{filter:?}"),
    }
}

pub(crate) fn is_derived(col: &str) -> bool {
    matches!(
        col,
        "name_key"
            | "pinyin_keys"
            | "phone_key"
            | "email_key"
            | "mobile_key"
            | "birthday_md"
            | "name_sort"
            | "title_sort"
    )
}

/// The JSON shown for a stored column value.
pub(crate) fn output_json(entity: Entity, col: &str, v: &Value) -> Json {
    match entity.field(col).map(|d| d.kind) {
        Some(FieldKind::Tags) => tags_from_column(v),
        _ => v.to_json(),
    }
}

/// The value a row has for a sort key, as the store compares it.
fn sort_value(row: &Row, col: &Col) -> Value {
    match col {
        Col::Column(c) => row.get(c).clone(),
        Col::Custom { key, ty } => {
            let v = row
                .get("custom")
                .as_json()
                .and_then(|j| j.get(key))
                .cloned()
                .unwrap_or(Json::Null);
            match (ty, v) {
                (crate::store::CustomType::Number, Json::Number(n)) => {
                    Value::Float(n.as_f64().unwrap_or_default())
                }
                (crate::store::CustomType::Bool, Json::Bool(b)) => Value::Bool(b),
                (crate::store::CustomType::Text, Json::String(s)) => Value::Text(s),
                _ => Value::Null,
            }
        }
    }
}

fn decode_cursor(c: &str, len: usize) -> Result<Vec<Value>> {
    // Never in a cursor this engine made (no stored text holds a NUL);
    // PostgreSQL would refuse one in the query.
    if c.contains('\0') || c.contains("\\u0000") {
        return Err(Error::invalid(
            "cursor",
            "the page cursor is not one this engine produced",
        ));
    }
    let vals: Vec<Value> = serde_json::from_str(c)
        .map_err(|_| Error::invalid("cursor", "the page cursor is not one this engine produced"))?;
    if vals.len() != len {
        return Err(Error::invalid(
            "cursor",
            "the page cursor belongs to a list with another sort order",
        ));
    }
    Ok(vals)
}

/// Fuzzy search: names, codes, contact details and pinyin keys — only
/// through the fields the actor may filter by: a hidden or masked field is
/// not searched (a match would reveal what the mask hides), and neither are
/// pinyin keys built from a hidden or masked field. A customer's keys hold
/// its name's and its short name's readings in one column that cannot be
/// told apart, so an actor who may not filter by the short name is searched
/// without pinyin (the name's own text still matches). A customer is also
/// found by a number (or a run of three digits or more) its contacts have
/// as mobile or phone ([`contact_phone_search`]); `now` decides which
/// shares of contacts still count there.
fn search_filter(actor: &Actor, entity: Entity, q: &str, now: DateTime<Utc>) -> Filter {
    // No stored text holds a NUL (and PostgreSQL refuses one in a query),
    // and no stored name an invisible format character.
    let q = crate::validate::strip_invisible(&q.replace('\0', ""))
        .trim()
        .to_string();
    let py = crate::pinyin::normalise_query(&q);
    // A whole phone number (`+86 138 0013 8000`, `(0755) 8765 4321`,
    // full-width digits) is searched by the key its validator stores;
    // other digits (part of a number) as typed, full-width read as ASCII.
    let (digits, all_digits) = match crate::validate::phone(&q) {
        Ok(p) => (p.key, true),
        Err(_) => {
            let half: String = q.chars().map(crate::validate::halfwidth).collect();
            let digits: String = half.chars().filter(char::is_ascii_digit).collect();
            let all = digits.len() >= 3
                && digits.len()
                    == half
                        .chars()
                        .filter(|ch| !matches!(ch, ' ' | '-' | '+'))
                        .count();
            (digits, all)
        }
    };
    // (column searched, field whose rule governs it, text)
    let mut terms: Vec<(&'static str, &'static str, &str)> = Vec::new();
    match entity {
        Entity::Customer => {
            for f in ["name", "short_name", "code", "email", "uscc"] {
                terms.push((f, f, &q));
            }
            // The keys are built from both names (see `Crm::derive`).
            if !py.is_empty() && filterable(actor, entity, "short_name") {
                terms.push(("pinyin_keys", "name", &py));
            }
            if all_digits {
                terms.push(("phone_key", "phone", &digits));
            }
        }
        Entity::Contact => {
            for f in ["name", "code", "email", "wechat"] {
                terms.push((f, f, &q));
            }
            if !py.is_empty() {
                terms.push(("pinyin_keys", "name", &py));
            }
            if all_digits {
                terms.push(("mobile_key", "mobile", &digits));
                terms.push(("phone_key", "phone", &digits));
            }
        }
        Entity::Opportunity => {
            for f in ["name", "code"] {
                terms.push((f, f, &q));
            }
            if !py.is_empty() {
                terms.push(("pinyin_keys", "name", &py));
            }
        }
        Entity::Quote | Entity::Contract => {
            for f in ["title", "code"] {
                terms.push((f, f, &q));
            }
            if !py.is_empty() {
                terms.push(("pinyin_keys", "title", &py));
            }
        }
        _ => terms.push(("content", "content", &q)),
    }
    let mut any: Vec<Filter> = terms
        .into_iter()
        .filter(|(_, field, _)| filterable(actor, entity, field))
        .map(|(col, _, t)| match col {
            // Keys, folded when made.
            "pinyin_keys" | "phone_key" | "mobile_key" => {
                Filter::Contains(Col::Column(col), t.to_string())
            }
            // Text in either width, letter case, with or without accents,
            // traditional or simplified, as a `~` filter finds it.
            _ => Filter::TextKeyLike {
                col: Col::Column(col),
                needle: t.to_string(),
                prefix: false,
            },
        })
        .collect();
    if entity == Entity::Customer && all_digits {
        any.extend(contact_phone_search(actor, &digits, now));
    }
    Filter::Or(any)
}

/// Customers having a contact whose mobile or phone holds `digits` (a whole
/// number's key, or a run of digits), matched as the contact search
/// matches them: only through the fields the actor may filter contacts by,
/// and only among the contacts the actor may read (a match among the
/// others would reveal what they hold), those in the recycle bin left out.
/// `None` when the actor may filter by neither field.
fn contact_phone_search(actor: &Actor, digits: &str, now: DateTime<Utc>) -> Option<Filter> {
    let keys: Vec<Filter> = [("mobile_key", "mobile"), ("phone_key", "phone")]
        .into_iter()
        .filter(|(_, field)| filterable(actor, Entity::Contact, field))
        .map(|(col, _)| Filter::Contains(Col::Column(col), digits.to_string()))
        .collect();
    if keys.is_empty() {
        return None;
    }
    let readable = actor
        .store_scope(Entity::Contact, Action::Read)
        .map(|s| s.as_filter(Entity::Contact.table(), now))
        .unwrap_or(Filter::Or(Vec::new()));
    Some(Filter::Related {
        table: Entity::Contact.table(),
        fk: "customer_id",
        filter: Box::new(Filter::And(vec![Filter::Or(keys), readable])),
    })
}

/// Refuses a contact that duplicates one created earlier in the same change
/// set (contacts created together with their customer), as
/// [`Crm::check_duplicates`] refuses one that duplicates a stored contact:
/// the same mobile for the same customer, or the value of a unique custom
/// field.
fn pending_contact_duplicate(
    entity: Entity,
    set: &BTreeMap<&'static str, Value>,
    custom: &BTreeMap<String, Json>,
    customs: &[CustomFieldDef],
    pending: &[Op],
) -> Result<()> {
    let get = |values: &[(&'static str, Value)], k: &str| {
        values
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_null())
    };
    let mobile = set.get("mobile_key").filter(|v| !v.is_null());
    let customer = set.get("customer_id").filter(|v| !v.is_null());
    for op in pending {
        let Op::Insert { table, values } = op else {
            continue;
        };
        if *table != entity.table() {
            continue;
        }
        let other_name = get(values, "name")
            .and_then(|v| v.as_text().map(str::to_string))
            .unwrap_or_default();
        let refuse = |what: String| Error::Duplicate {
            entity: entity.name().into(),
            message: format!("{what} already belongs to {other_name}, created together with it"),
        };
        if let (Some(m), Some(c)) = (mobile, customer)
            && get(values, "mobile_key").as_ref() == Some(m)
            && get(values, "customer_id").as_ref() == Some(c)
        {
            return Err(refuse(format!(
                "mobile {} for the same customer",
                m.as_text().unwrap_or_default()
            )));
        }
        let stored = get(values, "custom");
        let stored = stored.as_ref().and_then(Value::as_json);
        for def in customs.iter().filter(|d| d.unique) {
            let same = |a: &Json, b: &Json| match (a.as_str(), b.as_str()) {
                (Some(a), Some(b)) if def.field_type == CustomFieldType::Text => {
                    crate::validate::text_key(a) == crate::validate::text_key(b)
                }
                _ => a == b,
            };
            if let Some(v) = custom.get(&def.key).filter(|v| !v.is_null())
                && stored
                    .and_then(|s| s.get(&def.key))
                    .is_some_and(|s| same(s, v))
            {
                return Err(refuse(format!(
                    "{} {}",
                    def.label,
                    def.field_type.display(v)
                )));
            }
        }
    }
    Ok(())
}

/// The custom field a filter column stands for, if any.
fn custom_def<'c>(col: &Col, customs: &'c [CustomFieldDef]) -> Option<&'c CustomFieldDef> {
    let Col::Custom { key, .. } = col else {
        return None;
    };
    customs.iter().find(|d| &d.key == key)
}

/// Whether a field holds a list stored as `,a,b,` (tags, multi-selects).
fn is_list(def: Option<&'static FieldDef>, custom: Option<&CustomFieldDef>) -> bool {
    def.is_some_and(|d| d.kind == FieldKind::Tags)
        || custom.is_some_and(|d| d.field_type == CustomFieldType::MultiSelect)
}

/// A yes/no filter value read as custom fields take it
/// ([`crate::custom::parse_bool`]); any other word is refused naming the
/// field and the value.
fn filter_bool(field: &str, text: &str) -> Result<bool> {
    crate::custom::parse_bool(text).ok_or_else(|| {
        Error::invalid(
            field,
            format!("'{text}' is neither yes nor no (true/false, 是/否) for {field}"),
        )
    })
}

/// A masked field's value: text masked, each element of a list (tags,
/// attachments) masked, and any other value (a number, an object) shown as
/// `***` — never the value itself.
pub(crate) fn mask_json(style: crate::entity::MaskStyle, v: Json) -> Json {
    match v {
        Json::Null => Json::Null,
        Json::String(s) => Json::String(mask(style, &s)),
        Json::Array(items) => Json::Array(items.into_iter().map(|i| mask_json(style, i)).collect()),
        _ => Json::String("***".into()),
    }
}

/// Whether the actor may filter, search or sort by the field: not when it
/// is hidden or masked from them.
pub(crate) fn filterable(actor: &Actor, entity: Entity, field: &str) -> bool {
    matches!(
        actor.field_access(entity, field),
        FieldAccess::Full | FieldAccess::ReadOnly
    )
}

impl From<crate::validate::Invalid> for String {
    fn from(e: crate::validate::Invalid) -> String {
        e.to_string()
    }
}

/// The audit changes of a record created one by one (the API, a pool's
/// `import_into_pool`): every non-null value of its `created` event's
/// payload, from null, by field name. (Bulk imports name the import
/// instead.)
pub(crate) fn created_changes(payload: &Payload) -> Vec<FieldChange> {
    match payload.to_value() {
        Json::Object(m) => m
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(field, after)| FieldChange {
                field,
                before: Json::Null,
                after,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A record built for insertion: its ops, id, event payload and the guards
/// of its duplicate checks.
pub(crate) type Built = (Vec<Op>, Uuid, Payload, Vec<Guard>, Vec<AuditEntry>);

/// What [`Crm::insert_op`] builds.
pub(crate) struct Inserted {
    /// The insert.
    pub(crate) op: Op,
    /// The new record's id.
    pub(crate) id: Uuid,
    /// Its `created` event's payload.
    pub(crate) payload: Payload,
    /// Where the payload's `code` is `null` (no code given), for the code
    /// taken when the insert is written (see [`Payload::fill_null`]).
    pub(crate) code_at: Option<usize>,
}

/// The company's option `text` names as stored, whatever its case (as
/// saving matches it); a word that is no option stays as typed and matches
/// nothing.
fn stored_option(options: &[String], text: String) -> String {
    options
        .iter()
        .find(|o| **o == text || o.eq_ignore_ascii_case(&text))
        .cloned()
        .unwrap_or(text)
}

/// Whether a column holds a user's id (the owner, the creator): a filter
/// names the user as saving does.
fn is_user_column(col: &Col) -> bool {
    matches!(col, Col::Column("owner_id" | "created_by"))
}

/// The id a user-type custom field stores for the user `text` names,
/// among `users`: an id (kept as given), a username, or the display name of
/// exactly one user (as [`Crm::filter_user`] finds it, from one list).
fn user_named(users: &[crate::org::User], field: &str, text: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(id);
    }
    if let Some(u) = users.iter().find(|u| u.username == text.trim()) {
        return Ok(u.id.0);
    }
    user_by_display_name(users, text)
        .map(|u| u.id.0)
        .map_err(|m| Error::invalid(field, m))
}

/// The one user among `users` whose display name is `text` (trimmed); no
/// one, or a name several users share (refused naming their usernames, so
/// that the user can give one), is an error in words.
fn user_by_display_name<'u>(
    users: &'u [crate::org::User],
    text: &str,
) -> std::result::Result<&'u crate::org::User, String> {
    let text = text.trim();
    let named: Vec<&crate::org::User> = users.iter().filter(|u| u.display_name == text).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no user '{text}'")),
        more => Err(format!(
            "'{text}' is the name of several users ({}); give the username",
            more.iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What a "contains" or "starts with" condition on a phone column looks
/// for in its key: the digits typed; after `+` (or, for "starts with",
/// `00`: in a "contains" it is just digits, `0013` of `138 0013 8000`), the
/// key of a number abroad (`+852…`), or the digits after 86 for a mainland
/// mobile.
fn phone_needle(t: &str, starts: bool) -> String {
    let half: String = t.trim().chars().map(crate::validate::halfwidth).collect();
    let digits: String = half.chars().filter(char::is_ascii_digit).collect();
    let abroad = if half.starts_with('+') {
        Some(digits.as_str())
    } else if starts && half.starts_with("00") {
        digits.get(2..)
    } else {
        None
    };
    match abroad {
        Some(d) => match d.strip_prefix("86") {
            Some(mainland) => mainland.to_string(),
            None => format!("+{d}"),
        },
        None => digits,
    }
}

/// A duplicate refusal `e` naming `holder` (by its code), told that the
/// holder is archived (已归档) when it is: it is in no list of live
/// records, so the user learns why it was not found there. A refusal that
/// does not name the holder (one the actor may not see) is left as it is.
fn archived_holder_noted(e: Error, entity: Entity, holder: &Row) -> Error {
    let code = holder.get("code").as_text().unwrap_or_default();
    match e {
        Error::Duplicate {
            entity: which,
            message,
        } if !holder.get("archived_at").is_null() && !code.is_empty() && message.contains(code) => {
            Error::Duplicate {
                entity: which,
                message: format!(
                    "{message}; {entity} {code} is archived (已归档), so it is not in the \
                     {entity} list: unarchive it to work with it"
                ),
            }
        }
        e => e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn phone_needles_follow_the_stored_keys() {
        assert_eq!(super::phone_needle("138 0013", true), "1380013");
        assert_eq!(super::phone_needle("+852", true), "+852");
        assert_eq!(super::phone_needle("+852", false), "+852");
        assert_eq!(super::phone_needle("00852 2123", true), "+8522123");
        assert_eq!(super::phone_needle("0013", false), "0013");
        assert_eq!(super::phone_needle("+86 138", true), "138");
        assert_eq!(super::phone_needle("０７５５", false), "0755");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_year_before_1000_is_out_of_range() {
        assert_eq!(
            parse_date("0001-01-01").unwrap_err(),
            "'0001-01-01': the year 1 is out of range (years 1000 to 9999 are accepted)"
        );
        assert!(parse_date("1000-01-01").is_ok());
    }

    #[test]
    fn only_long_free_text_is_multiline() {
        let field = |e: Entity, n: &str| e.field(n).unwrap();
        assert!(is_multiline(field(Entity::Customer, "notes")));
        assert!(is_multiline(field(Entity::FollowUp, "content")));
        for (e, n) in [
            (Entity::Customer, "name"),
            (Entity::Customer, "address"),
            (Entity::Customer, "email"),
            (Entity::Contact, "wechat"),
        ] {
            assert!(!is_multiline(field(e, n)), "{e}.{n}");
        }
    }

    #[test]
    fn builtin_api_names_resolve_to_themselves() {
        for entity in Entity::ALL {
            for def in entity.fields() {
                let found = entity.field(def.name).unwrap();
                assert!(std::ptr::eq(found, def), "{entity}.{}", def.name);
                match Crm::resolve_target(entity, def.name, &[]) {
                    Some(Target::Builtin(d)) => assert!(std::ptr::eq(d, def)),
                    Some(Target::Owner) => assert_eq!(def.name, "owner_id"),
                    _ => panic!("{entity}.{} not resolved", def.name),
                }
            }
        }
    }

    /// The general date parser, as it was before the `YYYY-MM-DD` shortcut.
    fn parse_date_general(s: &str) -> std::result::Result<NaiveDate, String> {
        let t = s.trim();
        let cleaned = t
            .replace(['年', '月'], "-")
            .replace('日', "")
            .replace(['/', '.'], "-");
        let cleaned = cleaned.trim_end_matches('-');
        NaiveDate::parse_from_str(cleaned, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(cleaned, "%Y%m%d"))
            .or_else(|_| {
                NaiveDateTime::parse_from_str(cleaned, "%Y-%m-%d %H:%M:%S")
                    .or_else(|_| NaiveDateTime::parse_from_str(cleaned, "%Y-%m-%d %H:%M"))
                    .map(|d| d.date())
            })
            .map_err(|_| format!("'{t}' is not a date (expected e.g. 2026-11-27)"))
    }

    #[test]
    fn iso_dates_parse_as_before() {
        for s in [
            "2026-11-27",
            " 2026-02-29 ",
            "2024-02-29",
            "9999-12-31",
            "2026-13-01",
            "2026-00-10",
            "2026-1-05",
            "2026-01-5 ",
            "2026/11/27",
            "20261127",
            "2026年11月27日",
        ] {
            assert_eq!(parse_date(s).ok(), parse_date_general(s).ok(), "{s}");
        }
    }

    #[test]
    fn dates_need_four_digit_years_and_eight_compact_digits() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        for (s, want) in [
            ("２０２６-１１-２７", d(2026, 11, 27)),
            ("2026-11-27T14:30:00", d(2026, 11, 27)),
            ("2026/11/27 09:05", d(2026, 11, 27)),
            ("2026年1月5日", d(2026, 1, 5)),
            ("2026.1.5", d(2026, 1, 5)),
        ] {
            assert_eq!(parse_date(s), Ok(want), "{s}");
        }
        for s in [
            "26/11/27",
            "5.1.1",
            "2026111",
            "-2026-11-27",
            "+2026-11-27",
            "0026-11-27",
            "2026-11-27 25:00",
            "2026-11-27-01",
        ] {
            assert!(parse_date(s).is_err(), "{s}");
        }
        let e = parse_date("2026-02-30").unwrap_err();
        assert!(e.contains("no day 30 in month 2"), "{e}");
        let e = parse_date("2026-13-01").unwrap_err();
        assert!(e.ends_with("there is no month 13"), "{e}");
    }

    proptest! {
        #[test]
        fn dates_parse_as_before(s in "[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}|[1-9][0-9]{7}") {
            prop_assert_eq!(parse_date(&s).ok(), parse_date_general(&s).ok());
        }
    }

    #[test]
    fn iso_datetimes_parse_as_before() {
        for t in [
            "0000-01-01 00:00",
            "0999-12-31 23:59:59",
            "2026-11-27",
            "2026-11-27 14:30",
            "2026-11-27 14:30:59",
            "2026-11-27 24:00",
            "2026-11-27 23:60",
            "2026-11-27 23:59:60",
            "2026-02-30 10:00",
            "2026-11-27T14:30",
            "2026-11-27 4:30",
            "2026-11-27 14:3",
        ] {
            if let Some(fast) = iso_local_datetime(t) {
                assert_eq!(Ok(fast), local_datetime(t), "{t}");
            }
        }
        assert!(iso_local_datetime("2026-11-27 14:30:59").is_some());
        assert!(iso_local_datetime("2026-11-27 23:59:60").is_none());
        // Years before 1000 are refused by both, as dates refuse them.
        for t in ["0000-01-01 00:00", "0999-12-31 23:59:59", "0999-12-31"] {
            assert!(
                iso_local_datetime(t).is_none() && local_datetime(t).is_err(),
                "{t}"
            );
        }
    }

    proptest! {
        #[test]
        fn datetimes_parse_as_before(
            t in "[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?"
        ) {
            if let Some(fast) = iso_local_datetime(&t) {
                prop_assert_eq!(Ok(fast), local_datetime(&t));
            } else {
                // Only invalid dates and times are left to the general parser.
                prop_assert!(local_datetime(&t).is_err() || t.ends_with(":60"));
            }
        }
    }

    #[test]
    fn datetimes_keep_their_time_in_every_date_form() {
        let want = NaiveDate::from_ymd_opt(2026, 11, 27)
            .unwrap()
            .and_hms_opt(14, 30, 0)
            .unwrap();
        for t in [
            "2026-11-27 14:30",
            "2026/11/27 14:30",
            "2026.11.27 14:30",
            "20261127 14:30",
            "2026年11月27日 14:30",
            "2026年11月27日14:30",
            "２０２６-１１-２７ １４：３０",
            "２０２６年１１月２７日　１４：３０：００",
            "2026-11-27T14:30:00",
        ] {
            assert_eq!(local_datetime(t), Ok(want), "{t}");
        }
        let midnight = want.date().and_hms_opt(0, 0, 0).unwrap();
        for t in ["2026年11月27日", "20261127", "２０２６.１１.２７"] {
            assert_eq!(local_datetime(t), Ok(midnight), "{t}");
        }
        // A time that cannot be read refuses the text, never drops the time.
        for t in [
            "2026年11月27日 14点30分",
            "2026.11.27 25:00",
            "20261127 14:30 下午",
            "2026-11-27 2:30pm",
        ] {
            assert_eq!(local_datetime(t), Err(()), "{t}");
        }
    }

    #[test]
    fn json_text_trims_and_drops_nul() {
        assert_eq!(json_text(&Json::String(" a\0b ".into())), Some("ab".into()));
        assert_eq!(json_text(&Json::String(" \0 ".into())), None);
        assert_eq!(json_text(&Json::String("  ".into())), None);
        assert_eq!(
            json_text(&Json::String(" 华为 ".into())),
            Some("华为".into())
        );
    }
}
