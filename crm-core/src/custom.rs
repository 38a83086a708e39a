//! Custom fields (自定义字段) added per entity by an administrator, and the
//! option lists of built-in choice fields. Custom values live in the record's
//! `custom` JSON column, are validated like built-in fields and searchable.

use crate::auth::{Action, Actor};
use crate::crm::Crm;
use crate::entity::{Entity, FieldKind};
use crate::error::{Error, Result, ValidationErrors};
use crate::ids::FieldId;
use crate::schema::Table;
use crate::store::{
    ChangeSet, CmpOp, Col, CustomType, FieldChange, Filter, Guard, Lifecycle, Op, Row, Select, Sort,
};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::str::FromStr;

/// The characters that separate the options of a multi-select in text.
const OPTION_SEPARATORS: [char; 5] = [',', '，', ';', '；', '、'];

/// The type of a custom field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomFieldType {
    /// Free text.
    Text,
    /// A number.
    Number,
    /// An amount of money, kept in minor units (分).
    Money,
    /// A calendar date.
    Date,
    /// One of the options.
    Select,
    /// Several of the options.
    MultiSelect,
    /// A user of the company.
    User,
    /// Yes or no.
    Boolean,
}

impl CustomFieldType {
    /// Every type.
    pub const ALL: [CustomFieldType; 8] = [
        CustomFieldType::Text,
        CustomFieldType::Number,
        CustomFieldType::Money,
        CustomFieldType::Date,
        CustomFieldType::Select,
        CustomFieldType::MultiSelect,
        CustomFieldType::User,
        CustomFieldType::Boolean,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            CustomFieldType::Text => "text",
            CustomFieldType::Number => "number",
            CustomFieldType::Money => "money",
            CustomFieldType::Date => "date",
            CustomFieldType::Select => "select",
            CustomFieldType::MultiSelect => "multi_select",
            CustomFieldType::User => "user",
            CustomFieldType::Boolean => "boolean",
        }
    }

    /// How stored values compare in filters and sorting.
    pub fn compare_as(self) -> CustomType {
        match self {
            CustomFieldType::Number | CustomFieldType::Money => CustomType::Number,
            CustomFieldType::Boolean => CustomType::Bool,
            _ => CustomType::Text,
        }
    }

    /// A stored value of a field of this type as people type and read it:
    /// money in 元 with two decimals (kept in 分: `12345.67`), a number
    /// without a needless fraction (`120`, not `120.0`), the options of a
    /// multi-select as a list (`a,b`, kept as `,a,b,`), other text as kept;
    /// no value is empty. A user field keeps the user's id, which the
    /// caller names.
    pub fn display(self, v: &Json) -> String {
        match (self, v) {
            (_, Json::Null) => String::new(),
            (CustomFieldType::Money, Json::Number(n)) if n.is_i64() => {
                crate::money::Money::cny(n.as_i64().unwrap_or_default()).to_decimal_string()
            }
            (CustomFieldType::Number, Json::Number(n)) => match n.as_f64() {
                Some(f) => crate::import::number_text(f),
                None => n.to_string(),
            },
            (CustomFieldType::MultiSelect, Json::String(t)) => t
                .split(',')
                .filter(|o| !o.is_empty())
                .collect::<Vec<_>>()
                .join(","),
            (_, Json::String(t)) => t.clone(),
            (_, other) => other.to_string(),
        }
    }

    /// A duplicate key of a field of this type (the text key of its stored
    /// value, see [`crate::dedupe`]) as people type the value: money in 元
    /// (`12345.67`, not the 分 kept), a number without a needless fraction
    /// (`120`); other keys as they are (a user field's key is the user's
    /// id, which the caller names).
    pub fn key_display(self, key: &str) -> String {
        match self {
            CustomFieldType::Money => match key.parse::<i64>() {
                Ok(fen) => crate::money::Money::cny(fen).to_decimal_string(),
                Err(_) => key.to_string(),
            },
            CustomFieldType::Number => match key.parse::<f64>() {
                Ok(f) if f.is_finite() => crate::import::number_text(f),
                _ => key.to_string(),
            },
            _ => key.to_string(),
        }
    }
}

impl FromStr for CustomFieldType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        CustomFieldType::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown custom field type '{s}'; expected one of {}",
                    CustomFieldType::ALL.map(|t| t.name()).join(", ")
                )
            })
    }
}

/// A custom field definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    /// The id.
    pub id: FieldId,
    /// The entity it extends.
    pub entity: Entity,
    /// The key (`[a-z][a-z0-9_]*`), used as `custom.key` in filters.
    pub key: String,
    /// The label (usually Chinese), also accepted as import header.
    pub label: String,
    /// An English label.
    pub label_en: Option<String>,
    /// The type.
    pub field_type: CustomFieldType,
    /// Options of select fields.
    pub options: Vec<String>,
    /// Whether a value is required.
    pub required: bool,
    /// Whether values must be unique among the company's live records.
    pub unique: bool,
    /// Display order.
    pub position: i64,
    /// The record version.
    pub version: i64,
}

/// The options of a built-in choice field, as [`Crm::picklist_with_version`]
/// reads them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Picklist {
    /// The options, in order.
    pub options: Vec<String>,
    /// The version of the company's list, to pass back to
    /// [`Crm::set_picklist`]; 0 while the field has the default options
    /// (no list was set yet).
    pub version: i64,
}

/// What defining a custom field takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewCustomField {
    /// The entity it extends (a business record entity).
    pub entity: Entity,
    /// The key.
    pub key: String,
    /// The label.
    pub label: String,
    /// An English label.
    pub label_en: Option<String>,
    /// The type.
    pub field_type: CustomFieldType,
    /// Options of select fields.
    pub options: Vec<String>,
    /// Required flag.
    pub required: bool,
    /// Unique flag.
    pub unique: bool,
}

/// What changing a custom field takes ([`Crm::update_custom_field`]):
/// what is `None` stays as it is. The key, the entity, the type and
/// uniqueness stay as defined.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CustomFieldUpdate {
    /// A new label.
    pub label: Option<String>,
    /// A new English label (empty: none).
    pub label_en: Option<String>,
    /// The options of a select field, in order: new ones may be added; one
    /// still held by a record (live, archived or in the recycle bin)
    /// cannot be removed.
    pub options: Option<Vec<String>>,
    /// Whether a value is required.
    pub required: Option<bool>,
}

/// How an event names a custom field: its entity, key, label and type.
fn field_payload(def: &CustomFieldDef) -> serde_json::Map<String, Json> {
    let mut m = serde_json::Map::new();
    m.insert("entity".into(), Json::from(def.entity.name()));
    m.insert("key".into(), Json::from(def.key.clone()));
    m.insert("label".into(), Json::from(def.label.clone()));
    m.insert("type".into(), Json::from(def.field_type.name()));
    m
}

/// The problems of the options given to a field of type `ty`, added to
/// `errors`.
fn check_options(ty: CustomFieldType, options: &[String], errors: &mut ValidationErrors) {
    let needs_options = matches!(ty, CustomFieldType::Select | CustomFieldType::MultiSelect);
    if !needs_options && options.iter().any(|o| !o.trim().is_empty()) {
        errors.push(
            "options",
            format!(
                "a {} field takes no options (only select and multi_select fields have options)",
                ty.name()
            ),
        );
    }
    if let Some(twice) = repeated_option(options) {
        errors.push("options", format!("'{twice}' is given twice"));
    }
    // The characters a multi-select's text is split at (import cells,
    // CLI values): an option holding one could never be chosen.
    if options.iter().any(|o| o.contains(OPTION_SEPARATORS)) {
        errors.push(
            "options",
            "options cannot contain commas, semicolons or 、 (they separate the options of a multi-select)",
        );
    }
    if needs_options && options.iter().all(|o| o.trim().is_empty()) {
        errors.push("options", format!("a {} field needs options", ty.name()));
    }
}

fn def_from_row(r: &Row) -> Result<CustomFieldDef> {
    let entity: Entity = r
        .get("entity")
        .as_text()
        .unwrap_or_default()
        .parse()
        .map_err(Error::InvalidState)?;
    let field_type: CustomFieldType = r
        .get("field_type")
        .as_text()
        .unwrap_or_default()
        .parse()
        .map_err(Error::InvalidState)?;
    Ok(CustomFieldDef {
        id: FieldId(r.id()),
        entity,
        key: r.get("key").as_text().unwrap_or_default().to_string(),
        label: r.get("label").as_text().unwrap_or_default().to_string(),
        label_en: r.get("label_en").as_text().map(str::to_string),
        field_type,
        options: r
            .get("options")
            .as_json()
            .and_then(|j| serde_json::from_value(j.clone()).ok())
            .unwrap_or_default(),
        required: r.get("required").as_bool().unwrap_or(false),
        unique: r.get("is_unique").as_bool().unwrap_or(false),
        position: r.get("position").as_int().unwrap_or(0),
        version: r.version(),
    })
}

/// A custom field as defined from `defined_at` until `deleted_at` (see
/// [`Crm::custom_fields_ever`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PastCustomField {
    /// The definition (the last one it had).
    pub def: CustomFieldDef,
    /// When it was defined.
    pub defined_at: DateTime<Utc>,
    /// When it was deleted; `None` while it lives.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The definition the custom field keyed `key` had at `at`, among
/// `fields` (from [`Crm::custom_fields_ever`]): the one defined then,
/// else the live one, else the one deleted last. A key may be defined
/// again after its field was deleted, with another type: a value written
/// before is read by the field it was written under.
pub fn field_as_of<'a>(
    fields: &'a [PastCustomField],
    key: &str,
    at: DateTime<Utc>,
) -> Option<&'a CustomFieldDef> {
    let keyed = || fields.iter().filter(|f| f.def.key == key);
    keyed()
        .rfind(|f| f.defined_at <= at && f.deleted_at.is_none_or(|d| at < d))
        .or_else(|| keyed().find(|f| f.deleted_at.is_none()))
        .or_else(|| keyed().max_by_key(|f| f.deleted_at))
        .map(|f| &f.def)
}

/// A label as labels are compared: header decorations and full-width forms
/// folded as imports read headers, then in lower case.
fn label_key(label: &str) -> String {
    crate::import::clean_header(label).to_lowercase()
}

/// Whether two labels name the same column (see [`label_key`]).
fn same_label(a: &str, b: &str) -> bool {
    label_key(a) == label_key(b)
}

/// The headers of the columns an import or export of `entity` has beside
/// its fields and standard columns ([`crate::entity::STANDARD_FIELDS`]),
/// as (Chinese, English): the record code by the entity's own name for it
/// (`客户编号`, read by a customer import as the code; `联系人编号`), and a
/// contact's customer by code ([`crate::import::CUSTOMER_CODE_HEADERS`],
/// beside 所属客户 in a contact export, read back by the contact import).
/// The standard columns hold the rest: `编号`/`Code`, `负责人`/`Owner`,
/// `所属部门`, `版本`/`Version` (an export's version column,
/// [`crate::export::VERSION_HEADERS`]) …
fn column_headers(entity: Entity) -> &'static [(&'static str, &'static str)] {
    match entity {
        Entity::Customer => &[crate::import::CUSTOMER_CODE_HEADERS],
        Entity::Contact => &[
            ("联系人编号", "Contact code"),
            crate::import::CUSTOMER_CODE_HEADERS,
        ],
        _ => &[],
    }
}

/// Why `label` cannot label a custom field of `entity`, if it cannot: it
/// is (letter case and full-width forms aside) the name, label or alias of
/// one of the entity's built-in fields, of a standard column (编号, 负责人,
/// 版本, 创建时间 …), a header an import or export of the entity gives
/// another column ([`column_headers`]: 客户编号, Contact code …), or, for
/// customers, a header the import reads as a contact column group
/// (starting with 联系人 or Contact). An import or export would otherwise
/// have two columns of that name, and a value under it could never reach
/// the custom field (or would be read as another column).
pub(crate) fn builtin_label(entity: Entity, label: &str) -> Option<String> {
    let key = label_key(label);
    if key.is_empty() {
        return None;
    }
    let shown = label.trim();
    for f in entity.fields() {
        let names = [f.name, f.zh, f.en]
            .into_iter()
            .chain(f.aliases.iter().copied());
        if names.into_iter().any(|n| label_key(n) == key) {
            return Some(format!(
                "'{shown}' names the built-in field {} ({}) of {entity}; choose another label",
                f.zh, f.name
            ));
        }
    }
    for (name, zh, en) in crate::entity::STANDARD_FIELDS {
        if [*name, *zh, *en].into_iter().any(|n| label_key(n) == key) {
            return Some(format!(
                "'{shown}' names the standard column {zh} ({name}) every {entity} has; choose another label"
            ));
        }
    }
    for (zh, en) in column_headers(entity) {
        if [*zh, *en].into_iter().any(|n| label_key(n) == key) {
            return Some(format!(
                "'{shown}' names the column {zh} ({en}) of {entity} imports and exports; choose another label"
            ));
        }
    }
    if entity == Entity::Customer && (key.starts_with("联系人") || key.starts_with("contact")) {
        return Some(format!(
            "'{shown}' would be read as a contact column (联系人…, Contact…) of a customer import; choose another label"
        ));
    }
    None
}

/// The first option given twice (trimmed, any case), as first given.
fn repeated_option(options: &[String]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    options
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .find(|o| !seen.insert(o.to_lowercase()))
        .map(str::to_string)
}

/// Whether a custom field key is well formed.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && key.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl CustomFieldDef {
    /// The filter column of this field.
    pub fn col(&self) -> Col {
        Col::Custom {
            key: self.key.clone(),
            ty: self.field_type.compare_as(),
        }
    }

    /// Validates and normalises a value (synchronous part: users are
    /// resolved by the caller). `Ok(Json::Null)` means "no value".
    pub fn coerce(&self, value: &Json) -> std::result::Result<Json, String> {
        let text = match value {
            Json::Null => return Ok(Json::Null),
            // One line of text: invisible format characters are dropped
            // (see `validate::strip_invisible`), and NUL, as from a
            // built-in field's text.
            Json::String(s) => {
                let s = crate::validate::strip_invisible(s).replace('\0', "");
                if s.trim().is_empty() {
                    return Ok(Json::Null);
                }
                s.trim().to_string()
            }
            other => other.to_string(),
        };
        match self.field_type {
            CustomFieldType::Text => {
                if text.chars().count() > 1000 {
                    Err("is longer than 1000 characters".into())
                } else {
                    Ok(Json::String(text))
                }
            }
            CustomFieldType::Number => {
                let n: f64 = match value {
                    Json::Number(n) => {
                        // A JSON integer beyond 2^53 would be rounded.
                        let exact = match (n.as_i64(), n.as_u64()) {
                            (Some(i), _) => i.unsigned_abs() <= MAX_EXACT_INTEGER,
                            (None, Some(u)) => u <= MAX_EXACT_INTEGER,
                            _ => true,
                        };
                        if !exact {
                            return Err(inexact_number(&text));
                        }
                        n.as_f64().unwrap_or(f64::NAN)
                    }
                    _ => {
                        let n = parse_number(&text)?;
                        if !stored_exactly(&text) {
                            return Err(inexact_number(&text));
                        }
                        n
                    }
                };
                // Negative zero is zero (PostgreSQL's JSON keeps no sign on
                // it; both stores keep the same value).
                let n = if n == 0.0 { 0.0 } else { n };
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| format!("'{text}' is not a finite number"))
            }
            // Kept as 分 of CNY: an amount in another currency is refused,
            // not stored as that many 分.
            // Held to the cap of the built-in amounts (10万亿元) either
            // way: beyond it sums and sorting lose precision.
            CustomFieldType::Money => {
                let m = crate::money::Money::parse_in(&text, crate::money::Currency::CNY)
                    .map_err(|e| format!("'{text}': {e} (money fields are kept in 元)"))?;
                let cap = crate::sales::MAX_SALES_AMOUNT_MINOR;
                if m.minor.unsigned_abs() > cap.unsigned_abs() {
                    let (side, bound, most) = if m.minor < 0 {
                        ("less than", crate::money::Money::cny(-cap), "the least")
                    } else {
                        ("more than", crate::money::Money::cny(cap), "the most")
                    };
                    return Err(format!(
                        "{m} is {side} {bound} (10万亿元), {most} an amount may be \
                         (金额超出范围)"
                    ));
                }
                Ok(Json::from(m.minor))
            }
            CustomFieldType::Date => crate::records::parse_date(&text)
                .map(|d| Json::String(d.format("%Y-%m-%d").to_string())),
            CustomFieldType::Select => self.option(&text).map(Json::String),
            CustomFieldType::MultiSelect => {
                let items: Vec<String> = match value {
                    Json::Array(a) => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect(),
                    _ => text
                        .split(OPTION_SEPARATORS)
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                };
                let mut out = Vec::new();
                for i in items {
                    let o = self.option(&i)?;
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
                // Stored as `,a,b,` so that "has option a" is a plain text
                // match on every backend; shown as a list.
                Ok(if out.is_empty() {
                    Json::Null
                } else {
                    Json::String(format!(",{},", out.join(",")))
                })
            }
            CustomFieldType::User => Ok(Json::String(text)),
            CustomFieldType::Boolean => parse_bool(&text)
                .map(Json::Bool)
                .ok_or_else(|| format!("'{text}' is not yes/no (是/否)")),
        }
    }

    /// The option `v` names (exactly, or ASCII case aside), as stored.
    pub(crate) fn option(&self, v: &str) -> std::result::Result<String, String> {
        self.options
            .iter()
            .find(|o| o.as_str() == v || o.eq_ignore_ascii_case(v))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "'{v}' is not one of the options: {}",
                    self.options.join(", ")
                )
            })
    }
}

/// Reads a yes/no value as custom fields take it (saved values and filters
/// alike): `true`/`t`/`1`/`yes`/`y`/`on`/`是`/`对`/`真`/`√` or
/// `false`/`f`/`0`/`no`/`n`/`off`/`否`/`不是`/`不`/`假`/`×`, ASCII case
/// aside. `None` for any other word.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" | "是" | "对" | "真" | "√" | "✓" => {
            Some(true)
        }
        "false" | "f" | "0" | "no" | "n" | "off" | "否" | "不是" | "不" | "假" | "×" | "✗" => {
            Some(false)
        }
        _ => None,
    }
}

/// The largest integer a number field (an `f64`) holds exactly, with all
/// those below it: 2^53.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The refusal of a number a number field would not keep as typed.
fn inexact_number(text: &str) -> String {
    format!(
        "'{text}' has more significant digits than a number field keeps exactly (at most 15, \
         or whole numbers up to ±9007199254740992); keep it in a text field \
         (数字字段最多保存15位有效数字，超出会丢失精度，请改用文本字段)"
    )
}

/// The refusal of a number a spreadsheet cell holds (an `f64`: the digits
/// as typed are gone) that a number field would not keep as typed, with
/// the reason a value saved through the API gets
/// ([`CustomFieldDef::coerce`]): more than 15 significant digits, unless a
/// whole number below 2^53 (a cell holding 2^53 or beyond may have rounded
/// what was typed, 9007199254740993 to 9007199254740992). `None` when the
/// number is kept.
pub(crate) fn inexact_cell_number(f: f64) -> Option<String> {
    if !f.is_finite() {
        return Some(format!("'{f}' is not a finite number"));
    }
    if f.fract() == 0.0 && f.abs() < MAX_EXACT_INTEGER as f64 {
        return None;
    }
    // The shortest text that reads back as the same `f64`, no exponent.
    let text = format!("{f}");
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    (significant > 15).then(|| inexact_number(&text))
}

/// Whether `text`, as [`parse_number`] reads it, is kept exactly: at
/// most 15 significant digits (leading and trailing zeros aside), or a
/// whole number within ±2^53.
fn stored_exactly(text: &str) -> bool {
    let t: String = text
        .trim()
        .chars()
        .map(crate::validate::halfwidth)
        .collect();
    let mantissa = t.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    if significant <= 15 {
        return true;
    }
    // A whole number within ±2^53 is exact, digits as typed (its `f64`
    // may already be rounded).
    let mut parts = mantissa.split('.');
    let whole: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let fraction_zero = parts.next().is_none_or(|f| f.chars().all(|c| c == '0'));
    !t.contains(['e', 'E'])
        && fraction_zero
        && whole
            .parse::<u128>()
            .is_ok_and(|w| w <= u128::from(MAX_EXACT_INTEGER))
}

/// Reads a number as custom number fields take it (saved values and
/// filters alike): full-width digits are read as ASCII, commas only
/// separate thousands in groups of three (`1,234.5`, as amounts of money
/// take them), and the number must be finite. `1,5`, `1.234,56`, `0,500`,
/// `nan` and `inf` are refused naming the value.
pub(crate) fn parse_number(text: &str) -> std::result::Result<f64, String> {
    // Full-width digits, and the minus sign (U+2212) spreadsheets and
    // typesetting put for a hyphen, read as amounts read them.
    let t: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '−' => '-',
            c => crate::validate::halfwidth(c),
        })
        .collect();
    let not_a_number = || format!("'{text}' is not a number");
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(&t);
    let plain = if unsigned.contains(',') {
        let int_part = unsigned.split(['.', 'e', 'E']).next().unwrap_or_default();
        let groups: Vec<&str> = int_part.split(',').collect();
        let first_ok = groups
            .first()
            .is_some_and(|g| (1..=3).contains(&g.len()) && !g.starts_with('0'));
        let grouped = first_ok
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && !unsigned[int_part.len()..].contains(',');
        if !grouped {
            return Err(format!(
                "'{text}' is not a number: commas may only separate thousands, in groups of three (e.g. 1,234.5)"
            ));
        }
        t.replace(',', "")
    } else {
        t.clone()
    };
    // Only digits, a point, a sign and an exponent: `f64` would also read
    // `nan`, `inf` and `infinity`.
    if !plain
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        || !plain.bytes().any(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    let n: f64 = plain.parse().map_err(|_| not_a_number())?;
    // `0.1e-400` reads as 0: a value too small to keep is not zero.
    let mantissa = plain.split(['e', 'E']).next().unwrap_or_default();
    if n == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return Err(format!(
            "'{text}' is too small for a number field to keep: it would be stored as 0 \
             (数值过小，无法保存)"
        ));
    }
    if n.is_finite() {
        Ok(n)
    } else {
        Err(format!("'{text}' is not a finite number"))
    }
}

/// A change of a custom field definition read at `expected` that found it
/// at `actual`, naming it `entity.key`.
fn field_conflict(def: &CustomFieldDef, expected: i64, actual: i64) -> Error {
    Error::Conflict {
        entity: "custom field".into(),
        id: format!("{}.{}", def.entity, def.key),
        expected,
        actual,
    }
}

/// Guards that the option lists of the select and multi-select fields a
/// write gives values (`set`: custom keys) are still those `customs` read:
/// under the key a change of the field takes (see
/// [`Crm::update_custom_field`]), so that an option removed at the same
/// moment and a record given it cannot both pass — the later one is
/// refused, the record saved again meets the new list.
pub(crate) fn option_list_guards<'a>(
    company: uuid::Uuid,
    customs: &[CustomFieldDef],
    set: impl IntoIterator<Item = &'a String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Guard> {
    let set: Vec<&String> = set.into_iter().collect();
    customs
        .iter()
        .filter(|d| {
            matches!(
                d.field_type,
                CustomFieldType::Select | CustomFieldType::MultiSelect
            ) && set.iter().any(|k| **k == d.key)
        })
        .map(|d| {
            let mut changed = Select::all(Table::CustomFields, company, now);
            changed.lifecycle = Lifecycle::Any;
            changed.filter = Filter::And(vec![
                Filter::Cmp(Col::Column("id"), CmpOp::Eq, Value::Id(d.id.0)),
                Filter::Cmp(Col::Column("version"), CmpOp::Ne, Value::Int(d.version)),
            ]);
            Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![format!("{company}:custom_field:{}", d.id.0)],
                select: changed,
                message: format!(
                    "the options of {}.{} ({}) were changed meanwhile; save again to meet the new list",
                    d.entity, d.key, d.label
                ),
            }
        })
        .collect()
}

/// The key [`Crm::set_picklist`] takes for the option list of the built-in
/// choice field `entity.field`, and the writes giving the field a value
/// guard under (see [`picklist_guard`]).
fn picklist_key(company: uuid::Uuid, entity: Entity, field: &str) -> String {
    format!("{company}:picklist:{entity}.{field}")
}

/// Guards that the option list of the built-in choice field `entity.field`
/// is still the one read at `version` (0: none was set, the defaults
/// served, and none is set since), under the key
/// [`Crm::set_picklist`] takes: an option removed at the same moment and a
/// record given it cannot both pass — the later one is refused, the record
/// saved again meets the new list. As [`option_list_guards`] for select
/// custom fields.
pub(crate) fn picklist_guard(
    company: uuid::Uuid,
    entity: Entity,
    field: &str,
    version: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Guard {
    let mut changed = Select::all(Table::Picklists, company, now);
    let mut filter = vec![
        Filter::Cmp(Col::Column("entity"), CmpOp::Eq, entity.name().into()),
        Filter::Cmp(Col::Column("field"), CmpOp::Eq, field.into()),
    ];
    if version > 0 {
        filter.push(Filter::Cmp(
            Col::Column("version"),
            CmpOp::Ne,
            Value::Int(version),
        ));
    }
    changed.filter = Filter::And(filter);
    let zh = entity.field(field).map_or("", |d| d.zh);
    Guard {
        kind: crate::store::GuardKind::State,
        keys: vec![picklist_key(company, entity, field)],
        select: changed,
        message: format!(
            "the options of {entity}.{field} ({zh}) were changed meanwhile; save again to meet the new list"
        ),
    }
}

impl Crm {
    fn require_manage_fields(&self, actor: &Actor) -> Result<()> {
        if actor.can(Entity::CustomField, Action::Manage) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} may not manage custom fields",
                actor.display_name
            )))
        }
    }

    /// Defines a custom field on a business entity (needs `custom_field:manage`).
    pub async fn define_custom_field(
        &self,
        actor: &Actor,
        input: NewCustomField,
    ) -> Result<CustomFieldDef> {
        self.require_manage_fields(actor)?;
        crate::validate::refuse_nul("label", [input.label.as_str()])?;
        crate::validate::refuse_nul("label_en", input.label_en.as_deref())?;
        crate::validate::refuse_nul("options", input.options.iter().map(String::as_str))?;
        let mut errors = ValidationErrors::default();
        if !input.entity.is_record() {
            errors.push(
                "entity",
                format!("{} cannot have custom fields", input.entity),
            );
        }
        if !valid_key(&input.key) {
            errors.push(
                "key",
                format!("'{}' must start with a lowercase letter and contain only a-z, 0-9 and _ (at most 40)", input.key),
            );
        } else if input.entity.field(&input.key).is_some()
            || crate::entity::STANDARD_FIELDS
                .iter()
                .any(|(n, _, _)| *n == input.key)
        {
            errors.push(
                "key",
                format!("'{}' is a built-in field of {}", input.key, input.entity),
            );
        }
        if input.label.trim().is_empty() {
            errors.push("label", "is required");
        }
        for (field, label) in [
            ("label", Some(input.label.as_str())),
            ("label_en", input.label_en.as_deref()),
        ] {
            if let Some(taken) = label.and_then(|l| builtin_label(input.entity, l)) {
                errors.push(field, taken);
            }
        }
        check_options(input.field_type, &input.options, &mut errors);
        // A yes/no field holds two values: unique, only two records could
        // ever hold one.
        if input.unique && input.field_type == CustomFieldType::Boolean {
            errors.push(
                "unique",
                "a yes/no field cannot be unique: only two records could hold a value \
                 (是/否字段不能设为唯一)",
            );
        }
        errors.into_result()?;
        let company = actor.company_id.0;
        let existing = self.custom_fields(actor, input.entity).await?;
        if let Some(d) = existing.iter().find(|d| d.key == input.key) {
            return Err(Error::Duplicate {
                entity: "custom_field".into(),
                message: format!(
                    "{} already has a custom field with key '{}' ({})",
                    input.entity, input.key, d.label
                ),
            });
        }
        // A label names the field in imports, exports and conditions,
        // whichever language it is in: none may name two fields.
        let new_labels: Vec<&str> = [Some(input.label.as_str()), input.label_en.as_deref()]
            .into_iter()
            .flatten()
            .filter(|l| !l.trim().is_empty())
            .collect();
        for d in &existing {
            let theirs = [Some(d.label.as_str()), d.label_en.as_deref()];
            if let Some(same) = new_labels
                .iter()
                .find(|l| theirs.into_iter().flatten().any(|t| same_label(l, t)))
            {
                return Err(Error::Duplicate {
                    entity: "custom_field".into(),
                    message: format!(
                        "{} already has a custom field labelled '{}' (key '{}', {}); give the new field another label",
                        input.entity,
                        same.trim(),
                        d.key,
                        d.label
                    ),
                });
            }
            // Keys head the English columns: a label equal to another
            // field's key (or a key equal to another's label) would make
            // one header name two fields, and a template fail to import.
            if let Some(same) = new_labels.iter().find(|l| same_label(l, &d.key)) {
                return Err(Error::Duplicate {
                    entity: "custom_field".into(),
                    message: format!(
                        "'{}' is the key of {}'s custom field {}: a label may not name another \
                         field; give the new field another label (标签与其他字段的键重复)",
                        same.trim(),
                        input.entity,
                        d.label
                    ),
                });
            }
            if theirs
                .into_iter()
                .flatten()
                .any(|t| same_label(&input.key, t))
            {
                return Err(Error::Duplicate {
                    entity: "custom_field".into(),
                    message: format!(
                        "'{}' is a label of {}'s custom field '{}': a key may not name another \
                         field; give the new field another key (键与其他字段的标签重复)",
                        input.key, input.entity, d.key
                    ),
                });
            }
        }
        let options: Vec<String> = input
            .options
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        // A deleted field's values stay in the records: its key comes back
        // only as a field that reads them as they were written.
        let mut gone = Select::all(Table::CustomFields, actor.company_id.0, self.now());
        gone.lifecycle = Lifecycle::Deleted;
        gone.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("entity"), CmpOp::Eq, input.entity.name().into()),
            Filter::Cmp(Col::Column("key"), CmpOp::Eq, input.key.clone().into()),
        ]);
        let gone = self.store.select(&gone).await?.rows;
        for row in &gone {
            let old = def_from_row(row)?;
            let lost: Vec<&String> = old
                .options
                .iter()
                .filter(|o| !options.contains(o))
                .collect();
            if old.field_type != input.field_type || !lost.is_empty() {
                return Err(Error::invalid(
                    "key",
                    format!(
                        "'{}' was the key of a deleted {} field '{}' whose values the records still hold; \
                         define it again as a {} field{} or choose another key",
                        input.key,
                        old.field_type.name(),
                        old.label,
                        old.field_type.name(),
                        if old.options.is_empty() {
                            String::new()
                        } else {
                            format!(" with at least the options {}", old.options.join("/"))
                        }
                    ),
                ));
            }
        }
        if input.unique && !gone.is_empty() {
            self.stored_values_unique(company, &input).await?;
        }
        // Labels name fields in imports, exports and conditions: two fields
        // defined at once under one label would make them ambiguous. The
        // lock keys are the labels as compared (folded, any case), so
        // fields defined at once under `City` and `city` are serialised.
        let guards = self.label_guards(company, input.entity, &new_labels);
        let id = self.new_id();
        let mut cs = ChangeSet {
            guards,
            ..ChangeSet::default()
        };
        cs.ops.push(Op::Insert {
            table: Table::CustomFields,
            values: [
                self.new_row(actor.company_id.0, id),
                vec![
                    ("entity", input.entity.name().into()),
                    ("key", input.key.clone().into()),
                    ("label", input.label.trim().into()),
                    ("label_en", input.label_en.clone().into()),
                    ("field_type", input.field_type.name().into()),
                    ("options", Value::Json(serde_json::json!(options))),
                    ("required", input.required.into()),
                    ("is_unique", input.unique.into()),
                    ("position", Value::Int(existing.len() as i64)),
                ],
            ]
            .concat(),
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::CustomFields,
            id,
            "create",
            vec![FieldChange {
                field: "definition".into(),
                before: Json::Null,
                after: serde_json::to_value(&input).unwrap_or_default(),
            }],
        ));
        let mut payload = field_payload(&CustomFieldDef {
            id: FieldId(id),
            entity: input.entity,
            key: input.key.clone(),
            label: input.label.trim().to_string(),
            label_en: input.label_en.clone(),
            field_type: input.field_type,
            options: options.clone(),
            required: input.required,
            unique: input.unique,
            position: existing.len() as i64,
            version: 1,
        });
        payload.insert("label_en".into(), serde_json::json!(input.label_en));
        payload.insert("options".into(), serde_json::json!(options));
        payload.insert("required".into(), input.required.into());
        payload.insert("unique".into(), input.unique.into());
        cs.events.push(self.event(
            company,
            Table::CustomFields,
            id,
            "custom_field.created".into(),
            Json::Object(payload),
        ));
        self.apply(cs).await?;
        def_from_row(&self.live_row(actor, Table::CustomFields, id).await?)
    }

    /// Guards refusing a write when a field of `entity` labelled one of
    /// `labels` was defined meanwhile. Labels name fields in imports,
    /// exports and conditions: two fields labelled alike at once would make
    /// them ambiguous. The lock keys are the labels as compared (folded,
    /// any case), so fields labelled `City` and `city` at once are
    /// serialised.
    fn label_guards(&self, company: uuid::Uuid, entity: Entity, labels: &[&str]) -> Vec<Guard> {
        labels
            .iter()
            .map(|l| {
                let label = l.trim();
                let mut same_label = Select::all(Table::CustomFields, company, self.now());
                same_label.filter = Filter::And(vec![
                    Filter::Cmp(Col::Column("entity"), CmpOp::Eq, entity.name().into()),
                    Filter::Or(vec![
                        Filter::Cmp(Col::Column("label"), CmpOp::Eq, label.into()),
                        Filter::Cmp(Col::Column("label_en"), CmpOp::Eq, label.into()),
                    ]),
                ]);
                Guard {
                    kind: crate::store::GuardKind::Duplicate,
                    keys: vec![format!(
                        "{company}:custom_field_label:{}:{}",
                        entity.name(),
                        label_key(label)
                    )],
                    select: same_label,
                    message: format!(
                        "{entity} received a custom field labelled '{label}' meanwhile"
                    ),
                }
            })
            .collect()
    }

    /// The records of `def`'s entity (live, archived or in the recycle bin)
    /// holding the option `option` of the select field `def`.
    fn holding_option(&self, company: uuid::Uuid, def: &CustomFieldDef, option: &str) -> Select {
        let col = Col::Custom {
            key: def.key.clone(),
            ty: CustomType::Text,
        };
        let mut sel = Select::all(def.entity.table(), company, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = if def.field_type == CustomFieldType::MultiSelect {
            // Stored as `,a,b,` (see `CustomFieldDef::coerce`).
            Filter::Contains(col, format!(",{option},"))
        } else {
            Filter::Cmp(col, CmpOp::Eq, option.into())
        };
        sel
    }

    /// Refuses removing `option` (of the field named `what`) while records
    /// of `entity` hold it — `holding` selects them, live, archived or in
    /// the recycle bin: the refusal says how many and names a few by code,
    /// only those the actor may read (a field manager need not read every
    /// record); the others are counted.
    async fn option_not_held(
        &self,
        actor: &Actor,
        entity: Entity,
        holding: &Select,
        option: &str,
        what: &str,
    ) -> Result<()> {
        let n = self.count(holding.clone()).await?;
        if n == 0 {
            return Ok(());
        }
        let mut some = holding.clone();
        some.paging = crate::store::Paging::Offset {
            offset: 0,
            limit: 20,
        };
        let mut codes: Vec<String> = Vec::new();
        for r in self.store.select(&some).await?.rows {
            if codes.len() < 3
                && self.can_on_row(actor, entity, Action::Read, &r).await?
                && let Some(code) = r.get("code").as_text()
            {
                codes.push(code.to_string());
            }
        }
        let more = match n - codes.len() as u64 {
            0 => String::new(),
            k if codes.is_empty() => format!("{k} you may not all see"),
            k => format!(", {k} more"),
        };
        Err(Error::invalid(
            "options",
            format!(
                "option '{option}' of {what} is still held by {n} {entity} record{} ({}{more}), \
                 archived and recycle-bin records included; change them to another option first, \
                 then remove it (仍有记录使用该选项，请先修改这些记录)",
                if n == 1 { "" } else { "s" },
                codes.join(", ")
            ),
        ))
    }

    /// Changes the custom field `id` (needs `custom_field:manage`), checking
    /// the version the caller read it at: its label, English label, options
    /// and required flag. Labels are checked as when defining a field.
    /// Options may be added and reordered; an option still held by records
    /// — live, archived or in the recycle bin — cannot be removed (the
    /// records would hold a value the field refuses, and an export of them
    /// would not import): the refusal names the option, how many records
    /// hold it and a few of their codes. Announced as
    /// `custom_field.updated` with the changes.
    pub async fn update_custom_field(
        &self,
        actor: &Actor,
        id: FieldId,
        expected_version: i64,
        change: CustomFieldUpdate,
    ) -> Result<CustomFieldDef> {
        self.require_manage_fields(actor)?;
        crate::validate::refuse_nul("label", change.label.as_deref())?;
        crate::validate::refuse_nul("label_en", change.label_en.as_deref())?;
        crate::validate::refuse_nul(
            "options",
            change.options.iter().flatten().map(String::as_str),
        )?;
        let company = actor.company_id.0;
        let def = self.custom_field_at(actor, id, expected_version).await?;
        let mut errors = ValidationErrors::default();
        let label = match &change.label {
            Some(l) if l.trim().is_empty() => {
                errors.push("label", "is required");
                def.label.clone()
            }
            Some(l) => l.trim().to_string(),
            None => def.label.clone(),
        };
        let label_en = match &change.label_en {
            Some(l) if l.trim().is_empty() => None,
            Some(l) => Some(l.trim().to_string()),
            None => def.label_en.clone(),
        };
        for (field, l) in [
            ("label", Some(label.as_str())),
            ("label_en", label_en.as_deref()),
        ] {
            if let Some(taken) = l.and_then(|l| builtin_label(def.entity, l)) {
                errors.push(field, taken);
            }
        }
        if let Some(options) = &change.options {
            check_options(def.field_type, options, &mut errors);
        }
        errors.into_result()?;
        let options: Vec<String> = match &change.options {
            Some(o) => o
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            None => def.options.clone(),
        };
        let required = change.required.unwrap_or(def.required);
        // The labels this change gives the field (those it had stay its own).
        let own = [Some(def.label.as_str()), def.label_en.as_deref()];
        let new_labels: Vec<&str> = [Some(label.as_str()), label_en.as_deref()]
            .into_iter()
            .flatten()
            .filter(|l| !own.into_iter().flatten().any(|o| same_label(l, o)))
            .collect();
        if !new_labels.is_empty() {
            for d in self.custom_fields(actor, def.entity).await? {
                if d.id == def.id {
                    continue;
                }
                let theirs = [Some(d.label.as_str()), d.label_en.as_deref()];
                if let Some(same) = new_labels
                    .iter()
                    .find(|l| theirs.into_iter().flatten().any(|t| same_label(l, t)))
                {
                    return Err(Error::Duplicate {
                        entity: "custom_field".into(),
                        message: format!(
                            "{} already has a custom field labelled '{}' (key '{}', {}); choose another label",
                            def.entity,
                            same.trim(),
                            d.key,
                            d.label
                        ),
                    });
                }
                // Nor another field's key (see `define_custom_field`).
                if let Some(same) = new_labels.iter().find(|l| same_label(l, &d.key)) {
                    return Err(Error::Duplicate {
                        entity: "custom_field".into(),
                        message: format!(
                            "'{}' is the key of {}'s custom field {}: a label may not name \
                             another field; choose another label (标签与其他字段的键重复)",
                            same.trim(),
                            def.entity,
                            d.label
                        ),
                    });
                }
            }
        }
        // An option kept under another case is the same option: the
        // records hold it as stored, so it is refused as a removal.
        let removed: Vec<&String> = def
            .options
            .iter()
            .filter(|o| !options.contains(o))
            .collect();
        let added: Vec<&String> = options
            .iter()
            .filter(|o| !def.options.contains(o))
            .collect();
        let mut cs = ChangeSet {
            guards: self.label_guards(company, def.entity, &new_labels),
            ..ChangeSet::default()
        };
        for option in &removed {
            let holding = self.holding_option(company, &def, option);
            self.option_not_held(
                actor,
                def.entity,
                &holding,
                option,
                &format!("{}.{} ({})", def.entity, def.key, def.label),
            )
            .await?;
            // A record given the option meanwhile fails the change.
            cs.guards.push(Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![format!("{company}:custom_field:{}", def.id.0)],
                select: holding,
                message: format!(
                    "a {} record was given option '{option}' of {} meanwhile; change it first, then remove the option",
                    def.entity, def.label
                ),
            });
        }
        let mut values = vec![("updated_at", Value::Timestamp(self.now()))];
        let mut changes = Vec::new();
        if label != def.label {
            values.push(("label", label.clone().into()));
            changes.push(FieldChange {
                field: "label".into(),
                before: def.label.clone().into(),
                after: label.clone().into(),
            });
        }
        if label_en != def.label_en {
            values.push(("label_en", label_en.clone().into()));
            changes.push(FieldChange {
                field: "label_en".into(),
                before: serde_json::json!(def.label_en),
                after: serde_json::json!(label_en),
            });
        }
        if options != def.options {
            values.push(("options", Value::Json(serde_json::json!(options))));
            changes.push(FieldChange {
                field: "options".into(),
                before: serde_json::json!(def.options),
                after: serde_json::json!(options),
            });
        }
        if required != def.required {
            values.push(("required", required.into()));
            changes.push(FieldChange {
                field: "required".into(),
                before: def.required.into(),
                after: required.into(),
            });
        }
        if changes.is_empty() {
            return Ok(def);
        }
        cs.ops.push(Op::Update {
            table: Table::CustomFields,
            id: id.0,
            expected_version,
            values,
        });
        let mut payload = field_payload(&CustomFieldDef {
            label: label.clone(),
            ..def.clone()
        });
        payload.insert("changes".into(), serde_json::json!(changes));
        if !added.is_empty() || !removed.is_empty() {
            payload.insert("options_added".into(), serde_json::json!(added));
            payload.insert("options_removed".into(), serde_json::json!(removed));
        }
        cs.events.push(self.event(
            company,
            Table::CustomFields,
            id.0,
            "custom_field.updated".into(),
            Json::Object(payload),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            company,
            Table::CustomFields,
            id.0,
            "update",
            changes,
        ));
        self.apply(cs).await.map_err(|e| match e {
            Error::Conflict { actual, .. } => field_conflict(&def, expected_version, actual),
            e => e,
        })?;
        def_from_row(&self.live_row(actor, Table::CustomFields, id.0).await?)
    }

    /// Refuses a unique field over a deleted field's key while the live
    /// records still hold one value of it twice (values stay when a field is
    /// deleted). Reads the records holding a value page by page.
    async fn stored_values_unique(
        &self,
        company: uuid::Uuid,
        input: &NewCustomField,
    ) -> Result<()> {
        let col = Col::Custom {
            key: input.key.clone(),
            ty: input.field_type.compare_as(),
        };
        // A record is named by its code where it has one.
        let named = |r: &Row| {
            r.get("code")
                .as_text()
                .map_or_else(|| r.id().to_string(), str::to_string)
        };
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        let mut after: Option<Vec<Value>> = None;
        loop {
            let mut sel = Select::all(input.entity.table(), company, self.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::And(vec![
                Filter::IsNull(Col::Column("deleted_at")),
                Filter::NotNull(col.clone()),
            ]);
            sel.paging = crate::store::Paging::Keyset {
                after: after.clone(),
                limit: 2_000,
            };
            let page = self.store.select(&sel).await?;
            let Some(last) = page.rows.last() else {
                return Ok(());
            };
            after = Some(vec![Value::Id(last.id())]);
            for r in &page.rows {
                let Some(v) = r.get("custom").as_json().and_then(|c| c.get(&input.key)) else {
                    continue;
                };
                let shown = crate::records::json_text(v).unwrap_or_else(|| v.to_string());
                // Text as a unique text field compares it (spelling aside).
                let value = match v.as_str() {
                    Some(t) if input.field_type == CustomFieldType::Text => {
                        format!("text:{}", crate::validate::text_key(t))
                    }
                    _ => format!("{:?}", crate::records::custom_key_value(v)),
                };
                if let Some(first) = seen.insert(value, named(r)) {
                    return Err(Error::invalid(
                        "unique",
                        format!(
                            "records {first} and {} both hold '{shown}' under the deleted field '{}'; \
                             a unique field cannot be defined over them: change one, or define the field as not unique",
                            named(r),
                            input.key
                        ),
                    ));
                }
            }
        }
    }

    /// The live definition `id` of the actor's company at the version the
    /// caller read it at: a definition changed or deleted since is a
    /// conflict naming it (`entity.key`).
    async fn custom_field_at(
        &self,
        actor: &Actor,
        id: FieldId,
        expected_version: i64,
    ) -> Result<CustomFieldDef> {
        let row = self
            .store
            .get(Table::CustomFields, id.0)
            .await?
            .filter(|r| r.get("company_id").as_id() == Some(actor.company_id.0))
            .ok_or_else(|| Error::not_found("custom field", id))?;
        let def = def_from_row(&row)?;
        if def.version != expected_version || !row.get("deleted_at").is_null() {
            return Err(field_conflict(&def, expected_version, def.version));
        }
        Ok(def)
    }

    /// Removes the custom field definition `id`, checking the version the
    /// caller read it at ([`CustomFieldDef`] from [`Crm::custom_fields`]):
    /// a definition deleted since (and perhaps defined again under its key,
    /// a field the caller never saw) is a conflict naming it. Stored values
    /// stay in the records but are no longer shown or validated.
    pub async fn delete_custom_field(
        &self,
        actor: &Actor,
        id: FieldId,
        expected_version: i64,
    ) -> Result<()> {
        self.require_manage_fields(actor)?;
        let def = self.custom_field_at(actor, id, expected_version).await?;
        let mut cs = ChangeSet::default();
        cs.ops.push(Op::Update {
            table: Table::CustomFields,
            id: id.0,
            expected_version,
            values: vec![("deleted_at", Value::Timestamp(self.now()))],
        });
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::CustomFields,
            id.0,
            "delete",
            Vec::new(),
        ));
        cs.events.push(self.event(
            actor.company_id.0,
            Table::CustomFields,
            id.0,
            "custom_field.deleted".into(),
            Json::Object(field_payload(&def)),
        ));
        if def.entity == Entity::Customer {
            self.drop_dedupe_rule(actor, &def, &mut cs).await?;
        }
        self.apply(cs).await.map_err(|e| match e {
            Error::Conflict { actual, .. } => field_conflict(&def, expected_version, actual),
            e => e,
        })
    }

    /// Adds to `cs` (deleting the customer custom field `def`) the switching
    /// off of its duplicate rule, so that no check applies a rule on a
    /// field that no longer exists, and the removal of its duplicate keys
    /// (when they are few enough for one change set: otherwise the report
    /// leaves them out and a rebuild removes them).
    async fn drop_dedupe_rule(
        &self,
        actor: &Actor,
        def: &CustomFieldDef,
        cs: &mut ChangeSet,
    ) -> Result<()> {
        const KEYS_AT_ONCE: u64 = 5_000;
        let company = actor.company_id.0;
        let kind = format!("custom.{}", def.key);
        let mut sel = Select::all(Table::DedupeRules, company, self.now());
        sel.filter = Filter::Cmp(Col::Column("field"), CmpOp::Eq, kind.clone().into());
        for rule in self.store.select(&sel).await?.rows {
            let mode = rule.get("mode").as_text().unwrap_or_default().to_string();
            if mode == crate::dedupe::DedupeMode::Off.name() {
                continue;
            }
            cs.ops.push(Op::Update {
                table: Table::DedupeRules,
                id: rule.id(),
                expected_version: rule.version(),
                values: vec![
                    ("mode", crate::dedupe::DedupeMode::Off.name().into()),
                    ("updated_at", Value::Timestamp(self.now())),
                ],
            });
            cs.audit.push(self.audit(
                Some(actor),
                company,
                Table::DedupeRules,
                rule.id(),
                "update",
                vec![FieldChange {
                    field: kind.clone(),
                    before: Json::String(mode),
                    after: Json::String(crate::dedupe::DedupeMode::Off.name().into()),
                }],
            ));
        }
        let mut keys = Select::all(Table::CustomerKeys, company, self.now());
        keys.filter = Filter::Cmp(Col::Column("kind"), CmpOp::Eq, kind.into());
        keys.sort = Vec::new();
        keys.paging = crate::store::Paging::Keyset {
            after: None,
            limit: KEYS_AT_ONCE + 1,
        };
        let rows = self.store.select(&keys).await?.rows;
        if rows.len() as u64 <= KEYS_AT_ONCE {
            cs.ops.extend(rows.iter().map(|r| Op::Delete {
                table: Table::CustomerKeys,
                id: r.id(),
            }));
        }
        Ok(())
    }

    /// Every live custom field of the company, whatever its entity.
    pub(crate) async fn company_custom_fields(
        &self,
        company: uuid::Uuid,
    ) -> Result<Vec<CustomFieldDef>> {
        self.store
            .select(&Select::all(Table::CustomFields, company, self.now()))
            .await?
            .rows
            .iter()
            .map(def_from_row)
            .collect()
    }

    /// The custom fields of an entity, in display order.
    pub async fn custom_fields(
        &self,
        actor: &Actor,
        entity: Entity,
    ) -> Result<Vec<CustomFieldDef>> {
        let mut sel = Select::all(Table::CustomFields, actor.company_id.0, self.now());
        sel.filter = Filter::Cmp(Col::Column("entity"), CmpOp::Eq, entity.name().into());
        sel.sort = vec![Sort {
            col: Col::Column("position"),
            desc: false,
        }];
        self.store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(def_from_row)
            .collect()
    }

    /// Every custom field `entity` has had, deleted ones too, oldest
    /// first, with when each was defined and deleted: what reads values
    /// written under a field deleted since (a record's history: a money
    /// field's 分 in 元, a user field's id by name) reads them by
    /// ([`field_as_of`]).
    pub async fn custom_fields_ever(
        &self,
        actor: &Actor,
        entity: Entity,
    ) -> Result<Vec<PastCustomField>> {
        let mut sel = Select::all(Table::CustomFields, actor.company_id.0, self.now());
        sel.lifecycle = Lifecycle::Any;
        sel.filter = Filter::Cmp(Col::Column("entity"), CmpOp::Eq, entity.name().into());
        sel.sort = vec![
            Sort {
                col: Col::Column("created_at"),
                desc: false,
            },
            Sort {
                col: Col::Column("id"),
                desc: false,
            },
        ];
        self.store
            .select(&sel)
            .await?
            .rows
            .iter()
            .map(|r| {
                Ok(PastCustomField {
                    def: def_from_row(r)?,
                    defined_at: r.get("created_at").as_timestamp().unwrap_or_default(),
                    deleted_at: r.get("deleted_at").as_timestamp(),
                })
            })
            .collect()
    }

    /// Replaces the options of a built-in choice field (e.g. customer
    /// categories), needs `custom_field:manage`. `expected_version` is the
    /// [`Picklist::version`] the caller read ([`Crm::picklist_with_version`]):
    /// a list set by someone else since is a conflict, not overwritten.
    /// Options may be added and reordered; as with a select custom field
    /// ([`Crm::update_custom_field`]), an option still held by records —
    /// live, archived or in the recycle bin — cannot be removed (an option
    /// kept under another case counts as removed: the records hold it as
    /// stored), and a record given it while the list is written fails the
    /// change. The host gets `picklist.updated` with the options added and
    /// removed; the list as it is changes nothing and writes nothing.
    pub async fn set_picklist(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
        expected_version: i64,
        options: &[String],
    ) -> Result<()> {
        self.require_manage_fields(actor)?;
        crate::validate::refuse_nul("options", options.iter().map(String::as_str))?;
        let def = entity
            .field(field)
            .filter(|f| matches!(f.kind, FieldKind::Choice(_)))
            .ok_or_else(|| {
                Error::invalid("field", format!("{entity} has no choice field '{field}'"))
            })?;
        let options: Vec<String> = options
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if options.is_empty() {
            return Err(Error::invalid("options", "at least one option is needed"));
        }
        if let Some(twice) = repeated_option(&options) {
            return Err(Error::invalid(
                "options",
                format!("'{twice}' is given twice"),
            ));
        }
        let existing = self.picklist_row(actor, entity, def.name).await?;
        let conflict = |actual: i64| Error::Conflict {
            entity: "option list".into(),
            id: format!("{entity}.{}", def.name),
            expected: expected_version,
            actual,
        };
        let current = existing.as_ref().map_or(0, Row::version);
        if current != expected_version {
            return Err(conflict(current));
        }
        // The options as read: the company's list, or the defaults.
        let before: Vec<String> = match (&existing, def.kind) {
            (Some(r), _) => r
                .get("options")
                .as_json()
                .and_then(|j| serde_json::from_value(j.clone()).ok())
                .unwrap_or_default(),
            (None, FieldKind::Choice(defaults)) => defaults.iter().map(|o| o.to_string()).collect(),
            (None, _) => Vec::new(),
        };
        // The list as it is changes nothing: nothing is written.
        if options == before {
            return Ok(());
        }
        let company = actor.company_id.0;
        let now = self.now();
        let mut cs = ChangeSet::default();
        for option in before.iter().filter(|o| !options.contains(o)) {
            let mut holding = Select::all(entity.table(), company, now);
            holding.lifecycle = Lifecycle::Any;
            holding.filter = Filter::Cmp(Col::Column(def.name), CmpOp::Eq, option.as_str().into());
            self.option_not_held(
                actor,
                entity,
                &holding,
                option,
                &format!("{entity}.{} ({})", def.name, def.zh),
            )
            .await?;
            // A record given the option meanwhile fails the change.
            cs.guards.push(Guard {
                kind: crate::store::GuardKind::State,
                keys: vec![picklist_key(company, entity, def.name)],
                select: holding,
                message: format!(
                    "a {entity} record was given option '{option}' of {} meanwhile; change it first, then remove the option",
                    def.zh
                ),
            });
        }
        let id = match &existing {
            Some(r) => {
                cs.ops.push(Op::Update {
                    table: Table::Picklists,
                    id: r.id(),
                    expected_version,
                    values: vec![
                        ("updated_at", Value::Timestamp(now)),
                        ("options", Value::Json(serde_json::json!(options))),
                    ],
                });
                r.id()
            }
            None => {
                let id = self.new_id();
                cs.ops.push(Op::Insert {
                    table: Table::Picklists,
                    values: [
                        self.new_row(actor.company_id.0, id),
                        vec![
                            ("entity", entity.name().into()),
                            ("field", def.name.into()),
                            ("options", Value::Json(serde_json::json!(options))),
                        ],
                    ]
                    .concat(),
                });
                id
            }
        };
        let change = FieldChange {
            field: format!("{entity}.{}", def.name),
            before: existing
                .as_ref()
                .map(|r| r.get("options").to_json())
                .unwrap_or(Json::Null),
            after: serde_json::json!(options),
        };
        // Announced as a select custom field's options are
        // (`custom_field.updated`'s `options_added` / `options_removed`).
        let added: Vec<&String> = options.iter().filter(|o| !before.contains(o)).collect();
        let removed: Vec<&String> = before.iter().filter(|o| !options.contains(o)).collect();
        cs.events.push(self.event(
            company,
            Table::Picklists,
            id,
            "picklist.updated".into(),
            serde_json::json!({
                "entity": entity.name(),
                "field": def.name,
                "label": def.zh,
                "options": &options,
                "options_added": added,
                "options_removed": removed,
                "version": current + 1,
                "changes": [&change],
            }),
        ));
        cs.audit.push(self.audit(
            Some(actor),
            actor.company_id.0,
            Table::Picklists,
            id,
            "update",
            vec![change],
        ));
        match self.apply(cs).await {
            Ok(()) => Ok(()),
            Err(Error::Conflict { actual, .. }) => Err(conflict(actual)),
            // The first list of the field, set by someone else meanwhile
            // (one live list per field).
            Err(Error::Duplicate { .. }) if current == 0 => {
                let now = self.picklist_row(actor, entity, def.name).await?;
                Err(conflict(now.as_ref().map_or(0, Row::version)))
            }
            Err(e) => Err(e),
        }
    }

    async fn picklist_row(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
    ) -> Result<Option<Row>> {
        let mut sel = Select::all(Table::Picklists, actor.company_id.0, self.now());
        sel.filter = Filter::And(vec![
            Filter::Cmp(Col::Column("entity"), CmpOp::Eq, entity.name().into()),
            Filter::Cmp(Col::Column("field"), CmpOp::Eq, field.into()),
        ]);
        Ok(self.store.select(&sel).await?.rows.into_iter().next())
    }

    /// The options of a built-in choice field: the company's list, or the
    /// defaults when none was set.
    pub async fn picklist(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
    ) -> Result<Vec<String>> {
        Ok(self
            .picklist_with_version(actor, entity, field)
            .await?
            .options)
    }

    /// The options of a built-in choice field as [`Crm::picklist`] gives
    /// them, with the version to pass to [`Crm::set_picklist`].
    pub async fn picklist_with_version(
        &self,
        actor: &Actor,
        entity: Entity,
        field: &str,
    ) -> Result<Picklist> {
        let def = entity
            .field(field)
            .ok_or_else(|| Error::invalid("field", format!("{entity} has no field '{field}'")))?;
        let FieldKind::Choice(defaults) = def.kind else {
            return Err(Error::invalid(
                "field",
                format!("{entity}.{field} is not a choice field"),
            ));
        };
        Ok(match self.picklist_row(actor, entity, def.name).await? {
            Some(r) => Picklist {
                options: r
                    .get("options")
                    .as_json()
                    .and_then(|j| serde_json::from_value(j.clone()).ok())
                    .unwrap_or_default(),
                version: r.version(),
            },
            None => Picklist {
                options: defaults.iter().map(|s| s.to_string()).collect(),
                version: 0,
            },
        })
    }

    /// Guards that the option lists of the built-in choice fields a write
    /// gives a value (`set`: column values; `Null`s are passed over, and
    /// so are values `before`, the stored row an update changes, holds
    /// already) are still those the value was checked against
    /// ([`picklist_guard`]). The lists are read again here, with their
    /// versions: a value one no longer holds (an option removed since the
    /// write's checks) is refused now.
    pub(crate) async fn picklist_guards(
        &self,
        actor: &Actor,
        entity: Entity,
        set: &std::collections::BTreeMap<&'static str, Value>,
        before: Option<&Row>,
    ) -> Result<Vec<Guard>> {
        let mut guards = Vec::new();
        let mut errors = ValidationErrors::default();
        for (&name, value) in set {
            if before.is_some_and(|r| r.get(name) == value) {
                continue;
            }
            let Some(def) = entity
                .fields()
                .iter()
                .find(|f| f.name == name && matches!(f.kind, FieldKind::Choice(_)))
            else {
                continue;
            };
            let Some(text) = value.as_text() else {
                continue;
            };
            let list = self.picklist_with_version(actor, entity, def.name).await?;
            if !list.options.iter().any(|o| o == text) {
                errors.push(
                    crate::records::field_label(def),
                    format!(
                        "'{text}' is not one of: {} (the options were changed meanwhile)",
                        list.options.join(", ")
                    ),
                );
                continue;
            }
            guards.push(picklist_guard(
                actor.company_id.0,
                entity,
                def.name,
                list.version,
                self.now(),
            ));
        }
        errors.into_result()?;
        Ok(guards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_field() -> CustomFieldDef {
        CustomFieldDef {
            id: FieldId(uuid::Uuid::nil()),
            entity: Entity::Customer,
            key: "capital".into(),
            label: "注册资本".into(),
            label_en: None,
            field_type: CustomFieldType::Number,
            options: Vec::new(),
            required: false,
            unique: false,
            position: 0,
            version: 1,
        }
    }

    #[test]
    fn numbers_take_the_minus_sign_as_amounts_do() {
        for typed in ["−5", "-5", "－5", " −5.0 "] {
            let v = number_field()
                .coerce(&Json::String(typed.into()))
                .unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(v, serde_json::json!(-5.0), "{typed}");
        }
        assert_eq!(
            crate::money::Money::parse_in("−5", crate::money::Currency::CNY)
                .expect("amount")
                .minor,
            -500
        );
    }

    #[test]
    fn negative_zero_is_zero() {
        for typed in [
            Json::String("-0".into()),
            Json::String("-0.0".into()),
            serde_json::json!(-0.0),
        ] {
            let v = number_field().coerce(&typed).expect("zero");
            assert_eq!(v.to_string(), "0.0", "{typed}");
        }
    }

    #[test]
    fn text_loses_its_invisible_characters() {
        let def = CustomFieldDef {
            field_type: CustomFieldType::Text,
            ..number_field()
        };
        assert_eq!(
            def.coerce(&Json::String(" ERP\u{200B}-001\u{FEFF} ".into())),
            Ok(Json::String("ERP-001".into()))
        );
        assert_eq!(def.coerce(&Json::String("\u{200B}".into())), Ok(Json::Null));
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(
            def.coerce(&Json::String(family.into())),
            Ok(Json::String(family.into()))
        );
        // A number typed with one is read without it.
        assert!(
            number_field()
                .coerce(&Json::String("12\u{200B}3".into()))
                .is_ok()
        );
    }

    #[test]
    fn numbers_are_kept_exactly_or_refused() {
        let def = number_field();
        for ok in [
            "9007199254740992",
            "-9007199254740991",
            "123456789012.345",
            "0.000000000000001",
            "1000000000000000000000",
            "9007199254740992.000",
            "１，２３４",
        ] {
            assert!(def.coerce(&Json::String(ok.into())).is_ok(), "{ok}");
        }
        for bad in [
            "9007199254740993",
            "-9007199254740993",
            "0.1234567890123456",
            "9007199254740992.5",
            "1234567890123456e3",
        ] {
            let err = def.coerce(&Json::String(bad.into())).expect_err(bad);
            assert!(err.contains("significant digits"), "{bad}: {err}");
        }
        // A value too small to keep is not stored as 0; zero is zero.
        let err = def
            .coerce(&Json::String("0.1e-400".into()))
            .expect_err("underflow");
        assert!(err.contains("too small"), "{err}");
        assert!(def.coerce(&Json::String("0.0e-400".into())).is_ok());
        assert!(
            def.coerce(&serde_json::json!(9_007_199_254_740_993_u64))
                .is_err()
        );
        assert!(
            def.coerce(&serde_json::json!(9_007_199_254_740_992_u64))
                .is_ok()
        );
    }

    #[test]
    fn money_fields_hold_to_the_cap_of_sales_amounts() {
        let def = CustomFieldDef {
            field_type: CustomFieldType::Money,
            ..number_field()
        };
        assert_eq!(
            def.coerce(&Json::String("10000000000000".into())),
            Ok(Json::from(crate::sales::MAX_SALES_AMOUNT_MINOR))
        );
        assert_eq!(
            def.coerce(&Json::String("-10000000000000".into())),
            Ok(Json::from(-crate::sales::MAX_SALES_AMOUNT_MINOR))
        );
        for (bad, side) in [
            (
                "92233720368547758.07",
                "is more than ¥10,000,000,000,000.00",
            ),
            ("10000000000000.01", "is more than ¥10,000,000,000,000.00"),
            ("-10000000000001", "is less than -¥10,000,000,000,000.00"),
        ] {
            let err = def.coerce(&Json::String(bad.into())).expect_err(bad);
            assert!(
                err.contains(side) && err.contains("an amount may be"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn cell_numbers_are_refused_as_typed_numbers_are() {
        for ok in [
            12.5,
            9_007_199_254_740_991.0,
            -9_007_199_254_740_991.0,
            1e20,
            123_456_789_012.345,
            0.000_000_000_000_001,
            1e308,
        ] {
            assert_eq!(inexact_cell_number(ok), None, "{ok}");
        }
        for bad in [
            12_345_678_901_234_567.0,
            9_007_199_254_740_992.0,
            1.234_567_890_123_456_7,
            0.123_456_789_012_345_6,
        ] {
            let err = inexact_cell_number(bad).expect("refused");
            assert!(err.contains("significant digits"), "{bad}: {err}");
        }
    }

    #[test]
    fn numbers_take_commas_only_between_thousands() {
        for (text, n) in [
            ("1234.5", 1234.5),
            ("1,234.5", 1234.5),
            ("-1,234,567", -1_234_567.0),
            ("１，２３４", 1234.0),
            ("0.5", 0.5),
            ("12e3", 12_000.0),
        ] {
            assert_eq!(parse_number(text), Ok(n), "{text}");
        }
        for text in [
            "1,5",
            "1.234,56",
            "0,500",
            "12,34",
            "1,2345",
            ",123",
            "1,",
            "1,234.5,6",
            "nan",
            "NaN",
            "inf",
            "-infinity",
            "1e400",
            "abc",
            "",
            "-",
        ] {
            let e = parse_number(text).expect_err(text);
            assert!(e.contains(&format!("'{text}'")), "{text}: {e}");
        }
        let f = number_field();
        assert_eq!(f.coerce(&Json::from("1,234.5")), Ok(Json::from(1234.5)));
        let e = f.coerce(&Json::from("1,5")).expect_err("1,5");
        assert!(e.contains("'1,5'") && e.contains("thousands"), "{e}");
        assert!(f.coerce(&Json::from("1.234,56")).is_err());
    }

    #[test]
    fn yes_and_no_are_read_alike_everywhere() {
        for t in ["true", "1", "YES", "y", "是", "对", "On", "T", "真", "√"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for t in ["false", "0", "No", "n", "否", "不是", "off", "F", "假", "×"] {
            assert_eq!(parse_bool(t), Some(false), "{t}");
        }
        for t in ["maybe", "2", ""] {
            assert_eq!(parse_bool(t), None, "{t}");
        }
    }

    #[test]
    fn values_and_keys_read_as_typed() {
        use serde_json::json;
        let t = |ty: CustomFieldType, v: Json| ty.display(&v);
        assert_eq!(t(CustomFieldType::Money, json!(1_234_567)), "12345.67");
        assert_eq!(t(CustomFieldType::Money, json!(-50)), "-0.50");
        assert_eq!(t(CustomFieldType::Number, json!(120.0)), "120");
        assert_eq!(t(CustomFieldType::Number, json!(0.25)), "0.25");
        assert_eq!(t(CustomFieldType::MultiSelect, json!(",甲,乙,")), "甲,乙");
        assert_eq!(t(CustomFieldType::Text, json!("120.0")), "120.0");
        assert_eq!(t(CustomFieldType::Number, Json::Null), "");
        // Duplicate keys: the text key of the stored value.
        let key = |v: Json| crate::dedupe::custom_key(&v).expect("a key");
        assert_eq!(
            CustomFieldType::Money.key_display(&key(json!(1_234_567))),
            "12345.67"
        );
        assert_eq!(
            CustomFieldType::Number.key_display(&key(json!(120.0))),
            "120"
        );
        assert_eq!(CustomFieldType::Number.key_display(&key(json!(1.5))), "1.5");
        assert_eq!(CustomFieldType::Text.key_display("abc"), "abc");
    }

    #[test]
    fn labels_name_no_import_or_export_column() {
        for (entity, label) in [
            (Entity::Customer, "客户编号"),
            (Entity::Customer, "CUSTOMER code"),
            (Entity::Contact, "客户编号"),
            (Entity::Contact, "Ｃｕｓｔｏｍｅｒ Ｃｏｄｅ"),
            (Entity::Contact, "联系人编号"),
            (Entity::Contact, "contact CODE"),
            (Entity::Contact, "版本"),
            (Entity::Contact, "version"),
            (Entity::Customer, "owner"),
            (Entity::Customer, "编号"),
        ] {
            assert!(builtin_label(entity, label).is_some(), "{entity} {label}");
        }
        // Headers of the export's columns are the ones the import reads.
        for (zh, en) in [
            crate::import::CUSTOMER_CODE_HEADERS,
            crate::export::VERSION_HEADERS,
        ] {
            for h in [zh, en] {
                assert!(builtin_label(Entity::Contact, h).is_some(), "{h}");
            }
        }
        assert!(builtin_label(Entity::Customer, "客户编码说明").is_none());
        assert!(builtin_label(Entity::Contact, "客户等级").is_none());
    }

    #[test]
    fn history_reads_a_key_by_the_field_of_its_time() {
        use chrono::TimeZone;
        let at = |s: i64| {
            Utc.timestamp_opt(1_800_000_000 + s, 0)
                .single()
                .expect("time")
        };
        let def = |label: &str, ty| CustomFieldDef {
            label: label.into(),
            key: "budget".into(),
            field_type: ty,
            ..number_field()
        };
        let fields = vec![
            PastCustomField {
                def: def("旧", CustomFieldType::Money),
                defined_at: at(0),
                deleted_at: Some(at(10)),
            },
            PastCustomField {
                def: def("新", CustomFieldType::Money),
                defined_at: at(20),
                deleted_at: None,
            },
        ];
        let label = |s| field_as_of(&fields, "budget", at(s)).map(|d| d.label.as_str());
        assert_eq!(label(5), Some("旧"));
        assert_eq!(label(25), Some("新"));
        // Between the two, and before either: the live one.
        assert_eq!(label(15), Some("新"));
        assert_eq!(label(-5), Some("新"));
        assert_eq!(field_as_of(&fields, "other", at(5)), None);
        // Deleted for good: the one deleted last.
        let gone = vec![fields[0].clone()];
        assert_eq!(
            field_as_of(&gone, "budget", at(50)).map(|d| d.label.as_str()),
            Some("旧")
        );
    }
}
