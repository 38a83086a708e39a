//! The query model callers use: conditions over field names (built-in,
//! standard, custom, and related records), free-text and pinyin search,
//! sorting, offset or keyset paging, optional totals. The core resolves a
//! [`ListQuery`] into a store [`Select`](crate::store::Select) that also
//! carries the actor's data scope, so pages and counts only ever contain what
//! the actor may see.

use crate::store::{CmpOp, Col, Filter, Lifecycle};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A condition over a record's fields. Field names are API names, Chinese
/// labels, standard columns (`owner_id`, `created_at` …) or `custom.key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    /// Equal.
    Eq(String, Json),
    /// Not equal (records without a value match).
    Ne(String, Json),
    /// Less than.
    Lt(String, Json),
    /// Less or equal.
    Le(String, Json),
    /// Greater than.
    Gt(String, Json),
    /// Greater or equal.
    Ge(String, Json),
    /// One of.
    In(String, Vec<Json>),
    /// Contains the text (fuzzy, case-insensitive for ASCII).
    Contains(String, String),
    /// Starts with the text.
    StartsWith(String, String),
    /// Has no value.
    IsNull(String),
    /// Has a value.
    NotNull(String),
    /// All of.
    And(Vec<Cond>),
    /// Any of.
    Or(Vec<Cond>),
    /// Not.
    Not(Box<Cond>),
    /// Some related record (e.g. `contacts`) matches.
    Related(String, Box<Cond>),
}

impl Cond {
    /// Parses one condition in the compact form the CLI uses:
    /// `field=value`, `field!=value`, `field<value`, `field<=value`,
    /// `field>value`, `field>=value`, `field~text` (contains),
    /// `field^text` (starts with), `field:in:a,b,c`, `field:null`,
    /// `field:notnull`; a `relation.` prefix (e.g. `contacts.mobile^138`)
    /// makes it a condition on related records.
    pub fn parse(input: &str) -> Result<Cond, String> {
        let s = input.trim();
        let bad = || {
            format!(
                "cannot read the condition '{input}': use field=value, field!=value, field<value, field<=value, field>value, field>=value, field~text, field^text, field:in:a,b, field:null or field:notnull"
            )
        };
        let (field, cond): (String, Box<dyn Fn(String) -> Cond>) =
            if let Some(f) = s.strip_suffix(":notnull") {
                (f.to_string(), Box::new(Cond::NotNull))
            } else if let Some(f) = s.strip_suffix(":null") {
                (f.to_string(), Box::new(Cond::IsNull))
            } else if let Some((f, list)) = s.split_once(":in:") {
                let values: Vec<Json> = list
                    .split(',')
                    .map(|v| Json::String(v.trim().to_string()))
                    .collect();
                (
                    f.to_string(),
                    Box::new(move |f| Cond::In(f, values.clone())),
                )
            } else {
                type Make = fn(String, String) -> Cond;
                let ops: [(&str, Make); 8] = [
                    ("!=", |f, v| Cond::Ne(f, Json::String(v))),
                    ("<=", |f, v| Cond::Le(f, Json::String(v))),
                    (">=", |f, v| Cond::Ge(f, Json::String(v))),
                    ("=", |f, v| Cond::Eq(f, Json::String(v))),
                    ("<", |f, v| Cond::Lt(f, Json::String(v))),
                    (">", |f, v| Cond::Gt(f, Json::String(v))),
                    ("~", Cond::Contains),
                    ("^", Cond::StartsWith),
                ];
                let found = ops
                    .iter()
                    .filter_map(|(op, make)| s.find(op).map(|i| (i, *op, *make)))
                    .min_by_key(|(i, op, _)| (*i, std::cmp::Reverse(op.len())));
                let (i, op, make) = found.ok_or_else(bad)?;
                let field = s[..i].trim().to_string();
                let value = s[i + op.len()..].trim().to_string();
                (field.clone(), Box::new(move |f| make(f, value.clone())))
            };
        let field = field.trim();
        if field.is_empty() {
            return Err(bad());
        }
        let relations = ["contacts", "follow_ups"];
        if let Some((rel, rest)) = field.split_once('.')
            && relations.contains(&rel)
        {
            return Ok(Cond::Related(
                rel.to_string(),
                Box::new(cond(rest.to_string())),
            ));
        }
        Ok(cond(field.to_string()))
    }
}

/// How deeply a caller's conditions may nest (`And`, `Or`, `Not` and
/// `Related` inside each other): far more than a person or a form builds,
/// and little enough that resolving and compiling them stays within any
/// thread's stack.
pub const MAX_COND_DEPTH: usize = 32;

impl Cond {
    /// How deeply this condition nests (a comparison is 1), counted without
    /// recursion, so that any depth is measured safely.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((c, d)) = stack.pop() {
            deepest = deepest.max(d);
            match c {
                Cond::And(cs) | Cond::Or(cs) => stack.extend(cs.iter().map(|c| (c, d + 1))),
                Cond::Not(c) | Cond::Related(_, c) => stack.push((c, d + 1)),
                _ => {}
            }
        }
        deepest
    }

    /// The same condition with each `Not` taken into what it negates, so
    /// that `Not(c)` matches exactly the records `c` does not — those
    /// without a value in the field included, as [`Cond::Ne`] does: `Not`
    /// of `level=A` is `level!=A`, of `amount<5` is `amount>=5` or blank, of
    /// `And` the `Or` of the negations (and the other way round); `Not` of
    /// a text match (`Contains`, `StartsWith`) keeps the blanks with an
    /// `IsNull`, and `Not` of a related records' condition (no such
    /// record) stays as it is. A comparison in a store is neither true nor
    /// false on a blank, so a plain negation would leave blanks out of both.
    /// The caller checks [`Cond::depth`] first (this recurses).
    pub fn without_not(self) -> Cond {
        match self {
            Cond::Not(c) => c.negated(),
            Cond::And(cs) => Cond::And(cs.into_iter().map(Cond::without_not).collect()),
            Cond::Or(cs) => Cond::Or(cs.into_iter().map(Cond::without_not).collect()),
            Cond::Related(r, c) => Cond::Related(r, Box::new(c.without_not())),
            c => c,
        }
    }

    /// The complement of this condition (see [`Cond::without_not`]).
    fn negated(self) -> Cond {
        let or_blank = |c: Cond, f: String| Cond::Or(vec![c, Cond::IsNull(f)]);
        match self {
            Cond::Eq(f, v) => Cond::Ne(f, v),
            Cond::Ne(f, v) => Cond::Eq(f, v),
            Cond::Lt(f, v) => or_blank(Cond::Ge(f.clone(), v), f),
            Cond::Le(f, v) => or_blank(Cond::Gt(f.clone(), v), f),
            Cond::Gt(f, v) => or_blank(Cond::Le(f.clone(), v), f),
            Cond::Ge(f, v) => or_blank(Cond::Lt(f.clone(), v), f),
            Cond::In(f, vs) => Cond::And(vs.into_iter().map(|v| Cond::Ne(f.clone(), v)).collect()),
            Cond::IsNull(f) => Cond::NotNull(f),
            Cond::NotNull(f) => Cond::IsNull(f),
            c @ (Cond::Contains(..) | Cond::StartsWith(..)) => {
                let f = match &c {
                    Cond::Contains(f, _) | Cond::StartsWith(f, _) => f.clone(),
                    _ => String::new(),
                };
                or_blank(Cond::Not(Box::new(c)), f)
            }
            Cond::And(cs) => Cond::Or(cs.into_iter().map(Cond::negated).collect()),
            Cond::Or(cs) => Cond::And(cs.into_iter().map(Cond::negated).collect()),
            Cond::Not(c) => c.without_not(),
            Cond::Related(r, c) => Cond::Not(Box::new(Cond::Related(r, Box::new(c.without_not())))),
        }
    }
}

/// A caller's conditions made ready to resolve: each no deeper than
/// [`MAX_COND_DEPTH`] (else refused, naming the depth), with `Not` taken
/// into what it negates ([`Cond::without_not`]).
pub(crate) fn prepared_conditions(conditions: &[Cond]) -> crate::error::Result<Vec<Cond>> {
    conditions
        .iter()
        .map(|c| {
            let depth = c.depth();
            if depth > MAX_COND_DEPTH {
                return Err(crate::error::Error::invalid(
                    "filter",
                    format!(
                        "a condition nests {depth} levels deep, more than the {MAX_COND_DEPTH} a query may (条件嵌套过深)"
                    ),
                ));
            }
            Ok(c.clone().without_not())
        })
        .collect()
}

/// How much time a date-time filter value typed as `text` stands for: a
/// whole day for a date (`2026-12-08`, `2026年12月8日`), a whole minute
/// for a time to the minute, a whole second for one to the second; `None`
/// (the instant itself) for a time with a fraction of a second. Stored
/// instants carry microseconds, so `created_at=2026-12-08` or
/// `created_at=2026-12-08 07:28:38` means every instant of that day or
/// second.
fn instant_unit(text: &str) -> Option<chrono::Duration> {
    let t: String = text
        .trim()
        .chars()
        .map(crate::validate::halfwidth)
        .collect();
    if chrono::DateTime::parse_from_rfc3339(&t).is_ok() {
        // RFC 3339 always has seconds (and an offset with a colon).
        return (!t.contains(['.', ','])).then(|| chrono::Duration::seconds(1));
    }
    match t.matches(':').count() {
        0 => Some(chrono::Duration::days(1)),
        1 => Some(chrono::Duration::minutes(1)),
        _ if t.contains(['.', ',']) && t.rfind(':') < t.rfind(['.', ',']) => None,
        _ => Some(chrono::Duration::seconds(1)),
    }
}

/// A span of time: from its start (included) to its end (excluded).
type Span = (DateTime<Utc>, DateTime<Utc>);

impl crate::Crm {
    /// The instants `[start, end)` a filter value of a date-time field
    /// stands for ([`instant_unit`]): a date the whole day in the company's
    /// time zone (as [`Crm::parse_datetime`](crate::Crm::parse_datetime)
    /// reads it), a time to the second that whole second. `None` for an
    /// exact instant. An error when the text is no date and time.
    pub(crate) fn instant_span(&self, text: &str) -> std::result::Result<Option<Span>, String> {
        let start = self.parse_datetime(text)?;
        Ok(instant_unit(text).map(|unit| (start, start + unit)))
    }
}

/// A date-time field compared with every instant of `[start, end)` (a day
/// or a second typed, see [`crate::Crm::instant_span`]): equal means within
/// it, not equal outside it (or blank, as `!=` always includes blanks),
/// `<` before it, `<=` before its end, `>` from its end on, `>=` from its
/// start on. So `created_at<=2026-12-08` includes that whole day and
/// `created_at>2026-12-08` starts the next day.
pub(crate) fn span_filter(col: Col, op: CmpOp, start: DateTime<Utc>, end: DateTime<Utc>) -> Filter {
    let cmp = |op, at: DateTime<Utc>| Filter::Cmp(col.clone(), op, Value::Timestamp(at));
    match op {
        CmpOp::Eq => Filter::And(vec![cmp(CmpOp::Ge, start), cmp(CmpOp::Lt, end)]),
        CmpOp::Ne => Filter::Or(vec![
            Filter::IsNull(col.clone()),
            cmp(CmpOp::Lt, start),
            cmp(CmpOp::Ge, end),
        ]),
        CmpOp::Lt => cmp(CmpOp::Lt, start),
        CmpOp::Le => cmp(CmpOp::Lt, end),
        CmpOp::Gt => cmp(CmpOp::Ge, end),
        CmpOp::Ge => cmp(CmpOp::Ge, start),
    }
}

/// An e-mail field compared for equality (`=`, `!=`, `in`) with addresses
/// (validated, or as typed), whatever the letter case of either, as the
/// duplicate key compares them ([`crate::validate::email_key`] lowercases
/// the whole address): `email=foo@bar.com` finds `Foo@bar.com`. A `None`
/// among `values` is a blank; `!=` (`negate`) also matches blanks. Other
/// comparisons stay byte-wise.
pub(crate) fn email_filter(col: Col, values: Vec<Option<String>>, negate: bool) -> Filter {
    let blank = values.iter().any(Option::is_none);
    let keys: Vec<String> = values.into_iter().flatten().collect();
    let mut any = Vec::new();
    if !keys.is_empty() {
        any.push(Filter::TextKeyIn(col.clone(), keys));
    }
    if blank {
        any.push(Filter::IsNull(col.clone()));
    }
    let matches = match any.len() {
        1 => any.remove(0),
        _ => Filter::Or(any),
    };
    if negate {
        Filter::Or(vec![Filter::IsNull(col), Filter::Not(Box::new(matches))])
    } else {
        matches
    }
}

/// A sort key. Records with the field blank come last whether it sorts
/// ascending or descending, then `id` ascending breaks ties (see
/// [`Sort`](crate::store::Sort)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortBy {
    /// The field.
    pub field: String,
    /// Descending when true.
    pub desc: bool,
}

impl SortBy {
    /// Parses `field` or `-field` (descending).
    pub fn parse(s: &str) -> SortBy {
        let s = s.trim();
        match s.strip_prefix('-') {
            Some(f) => SortBy {
                field: f.to_string(),
                desc: true,
            },
            None => SortBy {
                field: s.to_string(),
                desc: false,
            },
        }
    }
}

/// Which page to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageRequest {
    /// Page number `page` (from 1) of `per_page` rows.
    Offset {
        /// The page, from 1.
        page: u64,
        /// Rows per page.
        per_page: u64,
    },
    /// `limit` rows after the opaque cursor of the previous page.
    Keyset {
        /// The previous page's `next_cursor`, none for the first page.
        after: Option<String>,
        /// Rows per page.
        limit: u64,
    },
}

impl Default for PageRequest {
    /// The first page of 10 rows, as the planning documents specify.
    fn default() -> Self {
        PageRequest::Offset {
            page: 1,
            per_page: 10,
        }
    }
}

/// Rows per page at most.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A list request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Conditions, all of which must hold.
    pub conditions: Vec<Cond>,
    /// Fuzzy search over names, codes, phone numbers and pinyin keys.
    pub search: Option<String>,
    /// Sort keys; default newest first (`-created_at`). A name or title
    /// sorts in pinyin order, letter case aside (its stored
    /// [`sort_key`](crate::pinyin::sort_key)). Blanks come last in both
    /// directions.
    pub sort: Vec<SortBy>,
    /// Paging.
    pub page: PageRequest,
    /// Whether to count every matching record.
    pub with_total: bool,
    /// Working set, recycle bin, history or everything.
    pub lifecycle: Lifecycle,
}

impl ListQuery {
    /// A query with one condition added.
    pub fn filter(mut self, cond: Cond) -> Self {
        self.conditions.push(cond);
        self
    }

    /// A query with a search text.
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// A query with a sort key added.
    pub fn sort_by(mut self, field: &str, desc: bool) -> Self {
        self.sort.push(SortBy {
            field: field.to_string(),
            desc,
        });
        self
    }

    /// A query with paging set.
    pub fn page(mut self, page: PageRequest) -> Self {
        self.page = page;
        self
    }

    /// A query counting the total too.
    pub fn with_total(mut self) -> Self {
        self.with_total = true;
        self
    }

    /// A query over another lifecycle state.
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// All matching items, when asked for.
    pub total: Option<u64>,
    /// Whether more items follow.
    pub has_more: bool,
    /// For keyset paging: the cursor of the next page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compact_conditions() {
        assert_eq!(
            Cond::parse("name~华为").expect("parse"),
            Cond::Contains("name".into(), "华为".into())
        );
        assert_eq!(
            Cond::parse("level>=B").expect("parse"),
            Cond::Ge("level".into(), Json::String("B".into()))
        );
        assert_eq!(
            Cond::parse("level!=B").expect("parse"),
            Cond::Ne("level".into(), Json::String("B".into()))
        );
        assert_eq!(
            Cond::parse("contacts.mobile^138").expect("parse"),
            Cond::Related(
                "contacts".into(),
                Box::new(Cond::StartsWith("mobile".into(), "138".into()))
            )
        );
        assert_eq!(
            Cond::parse("email:null").expect("parse"),
            Cond::IsNull("email".into())
        );
        assert_eq!(
            Cond::parse("category:in:VIP,普通").expect("parse"),
            Cond::In(
                "category".into(),
                vec![Json::from("VIP"), Json::from("普通")]
            )
        );
        assert!(Cond::parse("nonsense").is_err());
        assert!(Cond::parse("=x").is_err());
    }
}
