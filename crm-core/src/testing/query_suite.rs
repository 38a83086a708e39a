//! Large-query scenarios: selects whose filters are far bigger than a
//! hand-written query, as the engine builds them for imports and guards.
//!
//! - `And` and `Or` of thousands of terms select the same rows as short
//!   ones (SQLite nests a flat chain one level per term and refuses a tree
//!   deeper than 1000, so the store must group long chains).
//! - `In` and `Not(In)` of tens of thousands of values, more values than
//!   SQLite takes parameters in one statement, select the right rows of
//!   ids, texts, integers, dates, timestamps and custom fields, with SQL's
//!   NULL semantics kept (a NULL in the list leaves `Not(In)` unmatched
//!   where nothing else equals), and so does a scope naming tens of
//!   thousands of owners and departments.
//! - A contact import whose batch holds mobiles of 1 200 distinct customers
//!   passes its duplicate guard (one `Or` term per customer).
//! - Lists sorted by name go in pinyin order, letter case and width aside,
//!   ascending and descending, over page boundaries (offset and keyset);
//!   opportunities and products keep the keys that order them so too,
//!   however written (created, renamed, imported); a row without a sort key
//!   (written before the key column existed) sorts after the keyed ones on
//!   both stores, both ways, until the rebuild gives it its key.
//! - Blanks (NULL) sort last ascending and descending alike, on columns
//!   and custom fields, with several keys of mixed directions; offset and
//!   keyset pages whose boundaries fall among the blanks lose and repeat
//!   no row (compared with the order computed in memory), in the store and
//!   in the engine's record lists.

/// Lists the large-query scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! query_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::query_suite::long_and_and_or_chains_select_the_right_rows,
            query_long_and_and_or_chains_select_the_right_rows,
            $make
        );
        $each!(
            $crate::testing::query_suite::long_search_texts_select_the_right_rows,
            query_long_search_texts_select_the_right_rows,
            $make
        );
        $each!(
            $crate::testing::query_suite::long_in_lists_select_the_right_rows,
            query_long_in_lists_select_the_right_rows,
            $make
        );
        $each!(
            $crate::testing::query_suite::long_scope_lists_select_the_right_rows,
            query_long_scope_lists_select_the_right_rows,
            $make
        );
        $each!(
            $crate::testing::query_suite::contact_import_for_many_customers_passes_its_guard,
            query_contact_import_for_many_customers_passes_its_guard,
            $make
        );
        $each!(
            $crate::testing::query_suite::lists_sorted_by_name_go_in_pinyin_order,
            query_lists_sorted_by_name_go_in_pinyin_order,
            $make
        );
        $each!(
            $crate::testing::query_suite::sales_lists_sorted_by_name_go_in_pinyin_order,
            query_sales_lists_sorted_by_name_go_in_pinyin_order,
            $make
        );
        $each!(
            $crate::testing::query_suite::rows_without_a_sort_key_sort_alike_until_rebuilt,
            query_rows_without_a_sort_key_sort_alike_until_rebuilt,
            $make
        );
        $each!(
            $crate::testing::query_suite::blanks_sort_last_both_ways_across_pages,
            query_blanks_sort_last_both_ways_across_pages,
            $make
        );
        $each!(
            $crate::testing::query_suite::record_lists_put_blanks_last_both_ways,
            query_record_lists_put_blanks_last_both_ways,
            $make
        );
    };
}

use crate::entity::Entity;
use crate::import::{Cell, ImportOptions, SheetRow};
use crate::query::{ListQuery, PageRequest};
use crate::schema::{ColType, Table};
use crate::store::{
    ChangeSet, CmpOp, Col, CustomType, Filter, Op, Paging, Row, Scope, Select, Sort, Store,
};
use crate::testing::service_suite::World;
use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;
use std::cmp::Ordering;
use std::sync::Arc;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Rows of the scenarios' table.
const ROWS: u128 = 40;

/// The company of every row.
fn company() -> Uuid {
    Uuid::from_u128(0xC0_0000)
}

/// A deterministic id; ids sort like their numbers.
fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// When rows are created.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
        .expect("fixed timestamp")
        .with_timezone(&Utc)
}

/// "Now" of every select.
fn now() -> DateTime<Utc> {
    t0() + Duration::days(90)
}

/// The follow-up date of row `n`.
fn day(n: u128) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("fixed date") + Duration::days(n as i64)
}

/// The last follow-up of row `n`, with microseconds.
fn moment(n: u128) -> DateTime<Utc> {
    t0() + Duration::microseconds(n as i64 * 1_000_001)
}

/// The owner of row `n`: four owners in turn.
fn owner(n: u128) -> Uuid {
    uid(0xD0_0000 + n % 4)
}

/// The name of row `n`.
fn name(n: u128) -> String {
    format!("客户{n:05}")
}

/// Inserts customers `1..=ROWS` of [`company`] in one change set. Row `n`
/// has `open_opportunities = n`, an owner of four, a name, a follow-up
/// date and a last follow-up time except every fifth row (NULL there), and
/// custom fields `score` (a number) and `region` (text).
async fn fill(store: &Arc<dyn Store>) {
    let ops = (1..=ROWS)
        .map(|n| {
            let mut values = Vec::new();
            for c in Table::Customers.columns() {
                let v = match c.name {
                    "id" => Value::Id(uid(n)),
                    "company_id" => Value::Id(company()),
                    "version" => Value::Int(1),
                    "created_at" | "updated_at" => Value::Timestamp(t0()),
                    "owner_id" => Value::Id(owner(n)),
                    "name" => Value::Text(name(n)),
                    "open_opportunities" => Value::Int(n as i64),
                    "next_follow_up" if n % 5 != 0 => Value::Date(day(n)),
                    "last_follow_up_at" if n % 5 != 0 => Value::Timestamp(moment(n)),
                    // Row 33's score has no exact decimal text.
                    "custom" => Value::Json(json!({
                        "score": if n == 33 { 0.1 + 0.2 + 33.0 } else { n as f64 + 0.5 },
                        "region": name(n)
                    })),
                    _ if c.nullable => continue,
                    _ => match c.ty {
                        ColType::Id => Value::Id(Uuid::nil()),
                        ColType::Text => Value::Text("-".into()),
                        ColType::Int => Value::Int(0),
                        ColType::Bool => Value::Bool(false),
                        ColType::Date => Value::Date(day(0)),
                        ColType::Timestamp => Value::Timestamp(t0()),
                        ColType::Json => Value::Json(json!([])),
                    },
                };
                values.push((c.name, v));
            }
            Op::Insert {
                table: Table::Customers,
                values,
            }
        })
        .collect();
    let changes = ChangeSet {
        ops,
        ..ChangeSet::default()
    };
    if let Err(e) = store.apply(&changes).await {
        panic!("filling customers failed: {e} ({e:?})");
    }
}

/// A select of the active customers of [`company`] matching `filter`.
fn filtered(filter: Filter) -> Select {
    Select {
        filter,
        ..Select::all(Table::Customers, company(), now())
    }
}

/// The numbers of the rows `s` selects, in id order; the total, when
/// counted, must agree.
async fn numbers(store: &Arc<dyn Store>, s: &Select) -> Vec<u128> {
    let selected = match store.select(s).await {
        Ok(selected) => selected,
        Err(e) => panic!("select failed: {e} ({e:?})"),
    };
    if let Some(total) = selected.total {
        assert_eq!(total as usize, selected.rows.len(), "total of the select");
    }
    selected.rows.iter().map(|r| Row::id(r).as_u128()).collect()
}

/// The numbers of the rows `filter` selects, counted too.
async fn matching(store: &Arc<dyn Store>, filter: Filter) -> Vec<u128> {
    let mut s = filtered(filter);
    s.with_total = true;
    numbers(store, &s).await
}

/// Rows `1..=ROWS` for which `keep` holds.
fn rows_where(keep: impl Fn(u128) -> bool) -> Vec<u128> {
    (1..=ROWS).filter(|n| keep(*n)).collect()
}

fn id_is(n: u128) -> Filter {
    Filter::Cmp(Col::Column("id"), CmpOp::Eq, Value::Id(uid(n)))
}

fn id_is_not(n: u128) -> Filter {
    Filter::Cmp(Col::Column("id"), CmpOp::Ne, Value::Id(uid(n)))
}

/// `count` ids that no row has, from `from` on.
fn missing(from: u128, count: u128) -> impl Iterator<Item = u128> {
    (0..count).map(move |i| 0x1000_0000 + from + i)
}

/// `v` with `f` inserted at `at` (or at the end), to put real terms in the
/// middle of long lists.
fn place<T>(mut v: Vec<T>, at: usize, f: T) -> Vec<T> {
    let at = at.min(v.len());
    v.insert(at, f);
    v
}

fn custom(key: &str, ty: CustomType) -> Col {
    Col::Custom {
        key: key.into(),
        ty,
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// `Or` and `And` of 3 000 terms (alone, nested, negated, and as the
/// import's duplicate guard writes them: one `customer … AND key IN …`
/// term per parent) select the same rows as their meaning.
pub async fn long_and_and_or_chains_select_the_right_rows(store: Arc<dyn Store>) {
    fill(&store).await;
    // Or: 3 000 ids, three of them real, at the start, middle and end.
    let mut terms: Vec<Filter> = missing(0, 2_997).map(id_is).collect();
    terms = place(terms, 0, id_is(3));
    terms = place(terms, 1_500, id_is(17));
    terms.push(id_is(40));
    assert_eq!(terms.len(), 3_000);
    let or = Filter::Or(terms);
    assert_eq!(matching(&store, or.clone()).await, vec![3, 17, 40]);
    assert_eq!(
        matching(&store, Filter::Not(Box::new(or.clone()))).await,
        rows_where(|n| ![3, 17, 40].contains(&n))
    );

    // And: 3 000 conditions, two of them excluding real rows, one bounding
    // a column.
    let mut terms: Vec<Filter> = missing(10_000, 2_997).map(id_is_not).collect();
    terms = place(terms, 700, id_is_not(5));
    terms = place(terms, 2_000, id_is_not(33));
    terms.push(Filter::Cmp(
        Col::Column("open_opportunities"),
        CmpOp::Ge,
        Value::Int(2),
    ));
    let and = Filter::And(terms);
    assert_eq!(
        matching(&store, and.clone()).await,
        rows_where(|n| n >= 2 && n != 5 && n != 33)
    );

    // Both at once, inside each other.
    let both = Filter::And(vec![Filter::Or(vec![or.clone(), id_is(8)]), and.clone()]);
    assert_eq!(matching(&store, both).await, vec![3, 8, 17, 40]);

    // The duplicate guard's shape: per parent, `owner = ? AND name IN (…)`.
    let per_parent: Vec<Filter> = (0..3_000u128)
        .map(|i| {
            let (owner_id, names) = if i % 1_000 == 7 {
                // A real owner with real and missing names.
                let o = 7 + i / 1_000;
                (owner(o), vec![name(o), name(o + 4), name(o + 1)])
            } else {
                (uid(0xE0_0000 + i), vec![name(i % 40 + 1)])
            };
            Filter::And(vec![
                Filter::Cmp(Col::Column("owner_id"), CmpOp::Eq, Value::Id(owner_id)),
                Filter::In(
                    Col::Column("name"),
                    names.into_iter().map(Value::Text).collect(),
                ),
            ])
        })
        .collect();
    // Three terms name a real owner (that of row 7, 8 or 9) with two rows
    // of theirs (`o`, `o + 4`) and one of another owner (`o + 1`): rows 7
    // and 11, 8 and 12, 9 and 13 match; row 10 (named with row 9's owner)
    // does not.
    assert_eq!(
        matching(&store, Filter::Or(per_parent)).await,
        vec![7, 8, 9, 11, 12, 13]
    );

    // Paged, the chains stay right on every page.
    let mut s = filtered(Filter::Or(
        (1..=ROWS)
            .filter(|n| n % 2 == 0)
            .map(id_is)
            .chain(missing(50_000, 2_000).map(id_is))
            .collect(),
    ));
    s.with_total = true;
    s.paging = Paging::Offset {
        offset: 5,
        limit: 5,
    };
    let selected = store.select(&s).await.expect("paged select");
    assert_eq!(selected.total, Some(20));
    assert!(selected.has_more);
    let ids: Vec<u128> = selected.rows.iter().map(|r| r.id().as_u128()).collect();
    assert_eq!(ids, vec![12, 14, 16, 18, 20]);
}

/// `In` and `Not(In)` of 40 000 ids (most of them of no row), and long
/// lists of texts, numbers, dates, timestamps and custom fields (40 000
/// custom numbers), select
/// the right rows; a NULL in a list matches no row and leaves `Not(In)`
/// unmatched where no other value is equal.
pub async fn long_in_lists_select_the_right_rows(store: Arc<dyn Store>) {
    fill(&store).await;
    let real = [2u128, 7, 19, 40];
    let ids = |extra: &[Value]| -> Vec<Value> {
        let mut v: Vec<Value> = missing(0, 39_996)
            .map(|n| Value::Id(uid(n)))
            .collect::<Vec<_>>();
        for (i, n) in real.iter().enumerate() {
            v.insert(i * 13_000, Value::Id(uid(*n)));
        }
        v.extend(extra.iter().cloned());
        v
    };
    let list = ids(&[]);
    assert_eq!(list.len(), 40_000);
    let id = Col::Column("id");
    assert_eq!(
        matching(&store, Filter::In(id.clone(), list.clone())).await,
        real.to_vec()
    );
    let not_in = Filter::Not(Box::new(Filter::In(id.clone(), list.clone())));
    assert_eq!(
        matching(&store, not_in).await,
        rows_where(|n| !real.contains(&n))
    );
    // The engine's own guard helper writes `Not(In)` too.
    let not_among = Filter::not_among(id.clone(), list.iter().filter_map(Value::as_id));
    assert_eq!(
        matching(&store, not_among).await,
        rows_where(|n| !real.contains(&n))
    );
    // A NULL among the values: `In` unchanged, `Not(In)` matches nothing.
    let with_null = ids(&[Value::Null]);
    assert_eq!(
        matching(&store, Filter::In(id.clone(), with_null.clone())).await,
        real.to_vec()
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(id, with_null)))).await,
        Vec::<u128>::new()
    );

    // Texts, with characters JSON escapes.
    let mut names: Vec<Value> = (0..1_200)
        .map(|i| Value::Text(format!("无此客户\"{i}\\\n\t\u{1}")))
        .collect();
    names.insert(600, Value::Text(name(11)));
    names.push(Value::Text(name(12)));
    let text = Col::Column("name");
    assert_eq!(
        matching(&store, Filter::In(text.clone(), names.clone())).await,
        vec![11, 12]
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(text, names)))).await,
        rows_where(|n| n != 11 && n != 12)
    );

    // Integers, negative and large ones included.
    let mut ints: Vec<Value> = (0..1_000i64)
        .map(|i| Value::Int(i64::MIN + i))
        .chain((0..1_000i64).map(|i| Value::Int(i64::MAX - i)))
        .collect();
    ints.extend([3, 4, 38].map(Value::Int));
    let int = Col::Column("open_opportunities");
    assert_eq!(
        matching(&store, Filter::In(int.clone(), ints.clone())).await,
        vec![3, 4, 38]
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(int, ints)))).await,
        rows_where(|n| ![3, 4, 38].contains(&n))
    );

    // Dates and timestamps (microseconds count); rows without one are
    // neither in nor out of the list.
    let days: Vec<Value> = (1..=ROWS)
        .filter(|n| n % 3 == 0)
        .map(day)
        .chain((0..1_000).map(|i| day(10_000 + i)))
        .map(Value::Date)
        .collect();
    let date = Col::Column("next_follow_up");
    assert_eq!(
        matching(&store, Filter::In(date.clone(), days.clone())).await,
        rows_where(|n| n % 3 == 0 && n % 5 != 0)
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(date, days)))).await,
        rows_where(|n| n % 3 != 0 && n % 5 != 0)
    );
    let moments: Vec<Value> = (1..=ROWS)
        .filter(|n| n % 2 == 1)
        .flat_map(|n| {
            [
                moment(n),
                moment(n) + Duration::microseconds(1),
                moment(n) - Duration::microseconds(1),
            ]
        })
        .chain((0..1_000).map(|i| moment(100_000 + i)))
        .map(Value::Timestamp)
        .collect();
    let at = Col::Column("last_follow_up_at");
    assert_eq!(
        matching(&store, Filter::In(at.clone(), moments.clone())).await,
        rows_where(|n| n % 2 == 1 && n % 5 != 0)
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(at, moments)))).await,
        rows_where(|n| n % 2 == 0 && n % 5 != 0)
    );

    // Custom fields: numbers (`9` equals `9.0`) and texts. 40 000 numbers,
    // more than SQLite binds in one statement, with fractions decimal text
    // does not hold exactly, and a NULL.
    let mut scores: Vec<Value> = (0..40_000)
        .map(|i| Value::Float(f64::from(i) * 0.1 + 1e-7))
        .chain([Value::Float(6.5), Value::Float(21.5), Value::Null])
        .collect();
    // Row 33's score, which only the exact number finds.
    scores.insert(20_000, Value::Float(0.1 + 0.2 + 33.0));
    let score = custom("score", CustomType::Number);
    assert_eq!(
        matching(&store, Filter::In(score.clone(), scores.clone())).await,
        vec![6, 21, 33]
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(score, scores)))).await,
        Vec::<u128>::new(),
        "a NULL in the list leaves Not(In) unmatched"
    );
    let regions: Vec<Value> = (0..1_000)
        .map(|i| Value::Text(format!("区域{i}")))
        .chain([Value::Text(name(9)), Value::Null])
        .collect();
    let region = custom("region", CustomType::Text);
    assert_eq!(
        matching(&store, Filter::In(region.clone(), regions.clone())).await,
        vec![9]
    );
    assert_eq!(
        matching(&store, Filter::Not(Box::new(Filter::In(region, regions)))).await,
        Vec::<u128>::new()
    );
}

/// A scope naming 40 000 owners and departments (two of the owners real)
/// selects exactly the rows of those owners, counted alike.
pub async fn long_scope_lists_select_the_right_rows(store: Arc<dyn Store>) {
    fill(&store).await;
    let mut owners: Vec<Uuid> = missing(0, 20_000).map(uid).collect();
    owners.insert(10_000, owner(1));
    owners.push(owner(2));
    let mut s = filtered(Filter::True);
    s.scope = Scope::Restricted {
        owners,
        departments: missing(20_000, 20_000).map(uid).collect(),
        shared_with: Some(uid(0xF0_0000)),
    };
    s.with_total = true;
    assert_eq!(
        numbers(&store, &s).await,
        rows_where(|n| n % 4 == 1 || n % 4 == 2)
    );
}

/// A contact import of one contact with a mobile for each of 1 200
/// customers (one batch, one duplicate guard with a term per customer)
/// creates them all; some of them imported again are skipped.
pub async fn contact_import_for_many_customers_passes_its_guard(store: Arc<dyn Store>) {
    const CUSTOMERS: u32 = 1_200;
    let w = World::new(store.clone()).await;
    let customer = |i: u32| format!("批量查询客户{i:04}有限公司");
    let import = |entity: Entity, header: &[&str], data: Vec<Vec<Cell>>| {
        let w = &w;
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        async move {
            let mut session = w
                .crm
                .begin_import(&w.admin, ImportOptions::new(entity), &header)
                .await
                .unwrap_or_else(|e| panic!("begin import: {e}"));
            let rows: Vec<SheetRow> = data
                .into_iter()
                .enumerate()
                .map(|(i, cells)| SheetRow {
                    number: i as u32 + 2,
                    cells,
                })
                .collect();
            session
                .push(&rows)
                .await
                .unwrap_or_else(|e| panic!("push: {e}"));
            session
                .finish()
                .await
                .unwrap_or_else(|e| panic!("finish: {e}"))
        }
    };
    let r = import(
        Entity::Customer,
        &["客户名称"],
        (0..CUSTOMERS)
            .map(|i| vec![Cell::Text(customer(i))])
            .collect(),
    )
    .await;
    assert_eq!(r.created, CUSTOMERS as u64, "{:#?}", r.issues);
    let contacts = || -> Vec<Vec<Cell>> {
        (0..CUSTOMERS)
            .map(|i| {
                vec![
                    Cell::Text(customer(i)),
                    Cell::Text(format!("联系人{i}")),
                    Cell::Text(format!("1380000{i:04}")),
                ]
            })
            .collect()
    };
    let header = ["所属客户", "姓名", "手机"];
    let r = import(Entity::Contact, &header, contacts()).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (CUSTOMERS as u64, 0, 0),
        "{:#?}",
        r.issues
    );
    let listed = w
        .crm
        .list_records(
            &w.admin,
            Entity::Contact,
            &ListQuery::default()
                .page(PageRequest::Offset {
                    page: 1,
                    per_page: 1,
                })
                .with_total(),
        )
        .await
        .expect("contacts");
    assert_eq!(listed.total, Some(CUSTOMERS as u64));
    // Some of the rows again: their mobiles are taken for their customers.
    let again: Vec<Vec<Cell>> = contacts().into_iter().step_by(300).collect();
    let r = import(Entity::Contact, &header, again).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (0, 4, 0),
        "{:#?}",
        r.issues
    );
}

// ---------------------------------------------------------------------------
// Sorting by name
// ---------------------------------------------------------------------------

/// Customer names in the order a list sorted by name gives them: digits,
/// then letters (case and width aside), then Chinese characters by pinyin;
/// 汪 and 王 read alike (`wang`) and keep one order, by code point.
const CUSTOMERS_BY_NAME: [&str; 10] = [
    "58同城",
    "apple studio",
    "Banana 工作室",
    "ＩＢＭ中国",
    "Zebra Labs",
    "阿里巴巴",
    "李四贸易",
    "汪记",
    "王记",
    "张三科技",
];

/// The names of `entity` that `actor` lists sorted by name (descending
/// with `desc`), read in pages of `per` rows: offset pages, or keyset ones
/// with `keyset`. Every page but the last is full.
async fn names_sorted(
    w: &World,
    entity: Entity,
    desc: bool,
    per: u64,
    keyset: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for page in 1.. {
        let q = ListQuery::default()
            .sort_by("name", desc)
            .page(if keyset {
                PageRequest::Keyset {
                    after: after.clone(),
                    limit: per,
                }
            } else {
                PageRequest::Offset {
                    page,
                    per_page: per,
                }
            })
            .with_total();
        let got = w
            .crm
            .list_records(&w.admin, entity, &q)
            .await
            .unwrap_or_else(|e| panic!("list {entity} sorted by name: {e}"));
        let n = got.items.len() as u64;
        for r in &got.items {
            out.push(r.fields["name"].as_str().unwrap_or_default().to_string());
        }
        if !got.has_more {
            break;
        }
        assert_eq!(n, per, "a page before the last is full");
        after = got.next_cursor.clone();
        assert!(
            !keyset || after.is_some(),
            "a keyset page with more has a cursor"
        );
    }
    out
}

/// `names` as owned strings.
fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_string()).collect()
}

/// `names` reversed.
fn reversed(names: &[&str]) -> Vec<String> {
    names.iter().rev().map(|n| (*n).to_string()).collect()
}

/// Checks the customers' name order every way a list is read: ascending
/// and descending, offset pages of 4 (a boundary inside the Chinese names
/// and one between letters and Chinese) and keyset pages of 3.
async fn assert_customer_order(w: &World, expected: &[&str]) {
    let descending: Vec<&str> = expected.iter().rev().copied().collect();
    assert_customer_orders(w, expected, &descending).await;
}

/// [`assert_customer_order`] with the descending order given apart (it is
/// not the ascending one reversed when some names have no sort key).
async fn assert_customer_orders(w: &World, ascending: &[&str], descending: &[&str]) {
    for (per, keyset) in [(4, false), (3, true), (100, false)] {
        assert_eq!(
            names_sorted(w, Entity::Customer, false, per, keyset).await,
            owned(ascending),
            "ascending, pages of {per}, keyset {keyset}"
        );
        assert_eq!(
            names_sorted(w, Entity::Customer, true, per, keyset).await,
            owned(descending),
            "descending, pages of {per}, keyset {keyset}"
        );
    }
}

/// Creates the customers of [`CUSTOMERS_BY_NAME`], in another order.
async fn create_customers_by_name(w: &World) -> Vec<crate::records::Record> {
    let mut created = Vec::new();
    for i in [3, 8, 0, 6, 4, 9, 1, 7, 5, 2] {
        created.push(w.customer(&w.admin, CUSTOMERS_BY_NAME[i], json!({})).await);
    }
    created
}

/// A list of customers sorted by name goes in pinyin order (张三 after
/// 李四), letter case and full-width letters aside, both ways and across
/// page boundaries; a rename moves the customer to its new place.
pub async fn lists_sorted_by_name_go_in_pinyin_order(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let created = create_customers_by_name(&w).await;
    assert_customer_order(&w, &CUSTOMERS_BY_NAME).await;
    // Renamed, `Zebra Labs` is 安徽建工 (an), between 阿里巴巴 (a) and 李四.
    let zebra = created
        .iter()
        .find(|r| r.fields["name"] == json!("Zebra Labs"))
        .expect("Zebra Labs");
    w.crm
        .update_record(
            &w.admin,
            Entity::Customer,
            zebra.id,
            zebra.version,
            crate::testing::service_suite::fields(json!({"name": "安徽建工"})),
        )
        .await
        .expect("rename");
    let mut renamed: Vec<&str> = CUSTOMERS_BY_NAME
        .iter()
        .copied()
        .filter(|n| *n != "Zebra Labs")
        .collect();
    let at = renamed
        .iter()
        .position(|n| *n == "阿里巴巴")
        .expect("阿里巴巴")
        + 1;
    renamed.insert(at, "安徽建工");
    assert_customer_order(&w, &renamed).await;
}

/// The `text` column of the live rows of `table`, read as a list sorted
/// by it reads them (its sort key, then the text), in offset pages of
/// `per` rows.
async fn texts_by_sort_key(
    w: &World,
    table: Table,
    text: &'static str,
    desc: bool,
    per: u64,
) -> Vec<String> {
    let key = table.sort_key_of(text).expect("a sort key");
    let mut out = Vec::new();
    for page in 0.. {
        let mut sel = Select::all(table, w.admin.company_id.0, w.crm.now());
        sel.sort = [key, text]
            .into_iter()
            .map(|c| Sort {
                col: Col::Column(c),
                desc,
            })
            .collect();
        sel.paging = Paging::Offset {
            offset: page * per,
            limit: per,
        };
        let got = w.crm.store().select(&sel).await.expect("select");
        out.extend(
            got.rows
                .iter()
                .map(|r| r.get(text).as_text().unwrap_or_default().to_string()),
        );
        if !got.has_more {
            break;
        }
    }
    out
}

/// Sales documents and products keep sort keys too, however they are
/// written (created, renamed, imported): opportunities and products read
/// by their keys come in pinyin order both ways across page boundaries.
pub async fn sales_lists_sorted_by_name_go_in_pinyin_order(store: Arc<dyn Store>) {
    use crate::sales::{NewOpportunity, ProductInput};
    let w = World::new(store).await;
    let c = w.customer(&w.admin, "华为技术有限公司", json!({})).await;
    let opportunities = ["ERP升级", "erp运维", "云服务", "张江数据中心", "中台建设"];
    for i in [3, 0, 4, 2, 1] {
        w.crm
            .create_opportunity(
                &w.admin,
                NewOpportunity {
                    name: opportunities[i].into(),
                    customer_id: c.id.0,
                    ..NewOpportunity::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("opportunity {}: {e}", opportunities[i]));
    }
    for per in [2, 100] {
        assert_eq!(
            texts_by_sort_key(&w, Table::Opportunities, "name", false, per).await,
            owned(&opportunities)
        );
        assert_eq!(
            texts_by_sort_key(&w, Table::Opportunities, "name", true, per).await,
            reversed(&opportunities)
        );
    }
    // Products: two created (one renamed), two imported.
    let mut created = Vec::new();
    for name in ["张江服务器", "Zebra 打印机"] {
        created.push(
            w.crm
                .create_product(
                    &w.admin,
                    ProductInput {
                        name: Some(name.into()),
                        list_price: Some(crate::money::Money::cny(100)),
                        ..ProductInput::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("product {name}: {e}")),
        );
    }
    w.crm
        .update_product(
            &w.admin,
            created[0].id,
            created[0].version,
            ProductInput {
                name: Some("安全网关".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("rename product");
    let header: Vec<String> = ["产品名称", "标准价"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut session = w
        .crm
        .begin_import(&w.admin, ImportOptions::new(Entity::Product), &header)
        .await
        .unwrap_or_else(|e| panic!("begin import: {e}"));
    let rows: Vec<SheetRow> = ["ａｐｐｌｅ 服务器", "路由器"]
        .iter()
        .enumerate()
        .map(|(i, name)| SheetRow {
            number: i as u32 + 2,
            cells: vec![Cell::Text((*name).into()), Cell::Text("20".into())],
        })
        .collect();
    session
        .push(&rows)
        .await
        .unwrap_or_else(|e| panic!("push: {e}"));
    let report = session
        .finish()
        .await
        .unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(report.created, 2, "{:#?}", report.issues);
    let products = ["ａｐｐｌｅ 服务器", "Zebra 打印机", "安全网关", "路由器"];
    for per in [3, 100] {
        assert_eq!(
            texts_by_sort_key(&w, Table::Products, "name", false, per).await,
            owned(&products)
        );
        assert_eq!(
            texts_by_sort_key(&w, Table::Products, "name", true, per).await,
            reversed(&products)
        );
    }
}

/// A customer whose sort key is missing (a row written before the key
/// column existed: NULL written through the store) sorts after every
/// customer with a key, ascending and descending alike — the same on both
/// stores —, those without a key by name (in the list's direction); the
/// rebuild of the search keys gives it its key, and its place.
pub async fn rows_without_a_sort_key_sort_alike_until_rebuilt(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let created = create_customers_by_name(&w).await;
    let mut unkeyed = Vec::new();
    for name in ["阿里巴巴", "Zebra Labs"] {
        let r = created
            .iter()
            .find(|r| r.fields["name"] == json!(name))
            .expect("created");
        store
            .apply(&ChangeSet {
                ops: vec![Op::Update {
                    table: Table::Customers,
                    id: r.id.0,
                    expected_version: r.version,
                    values: vec![("name_sort", Value::Null)],
                }],
                ..ChangeSet::default()
            })
            .await
            .expect("clear the key");
        unkeyed.push(r.id.0);
    }
    let keyed: Vec<&str> = CUSTOMERS_BY_NAME
        .iter()
        .copied()
        .filter(|n| !matches!(*n, "阿里巴巴" | "Zebra Labs"))
        .collect();
    // The keyed names in order, then the others by name (`Z` before `阿`
    // in byte order), in both directions.
    let mut ascending = keyed.clone();
    ascending.extend(["Zebra Labs", "阿里巴巴"]);
    let mut descending: Vec<&str> = keyed.iter().rev().copied().collect();
    descending.extend(["阿里巴巴", "Zebra Labs"]);
    assert_customer_orders(&w, &ascending, &descending).await;
    let stats = w.crm.rebuild_search_keys(&w.admin).await.expect("rebuild");
    assert_eq!(stats.updated, 2, "{stats:?}");
    for id in unkeyed {
        let row = store
            .get(Table::Customers, id)
            .await
            .expect("get")
            .expect("row");
        let name = row.get("name").as_text().expect("name").to_string();
        assert_eq!(
            row.get("name_sort"),
            &Value::Text(crate::pinyin::sort_key(&name)),
            "{name}"
        );
    }
    assert_customer_order(&w, &CUSTOMERS_BY_NAME).await;
    let again = w.crm.rebuild_search_keys(&w.admin).await.expect("again");
    assert_eq!(again.updated, 0, "{again:?}");
}

/// A value of a sort key as the stores compare it, for the expected
/// orders computed in memory.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    Text(String),
    Day(NaiveDate),
    Number(f64),
}

impl Key {
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Text(a), Key::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Key::Day(a), Key::Day(b)) => a.cmp(b),
            (Key::Number(a), Key::Number(b)) => a.total_cmp(b),
            _ => panic!("scenario bug: {self:?} compared with {other:?}"),
        }
    }
}

/// The order of the sort contract over one key: blanks after every value in
/// both directions, values ascending or descending.
fn blanks_last(a: &Option<Key>, b: &Option<Key>, desc: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) if desc => y.cmp(x),
        (Some(x), Some(y)) => x.cmp(y),
    }
}

/// One row of [`fill_blanks`]: its number and the values of its sort keys.
struct BlankRow {
    n: u128,
    level: Option<Key>,
    follow_up: Option<Key>,
    score: Option<Key>,
    name: Key,
}

/// The score custom field.
fn score() -> Col {
    custom("score", CustomType::Number)
}

impl BlankRow {
    /// The value of a sort key of [`blanks_sort_last_both_ways_across_pages`].
    fn key(&self, col: &Col) -> Option<Key> {
        match col {
            Col::Column("level") => self.level.clone(),
            Col::Column("next_follow_up") => self.follow_up.clone(),
            Col::Column("name") => Some(self.name.clone()),
            Col::Custom { key, .. } if key == "score" => self.score.clone(),
            other => panic!("scenario bug: no key {other:?}"),
        }
    }
}

/// Inserts 45 customers of [`company`], ids not in insertion order, whose
/// level (three values), next follow-up date (four days) and custom score
/// (numbers, some of another type, some missing) are blank for many rows
/// and tie for the others, and whose names tie in fives; returns them as
/// the sort keys see them.
async fn fill_blanks(store: &Arc<dyn Store>) -> Vec<BlankRow> {
    let levels = [Some("B"), None, Some("A"), None, Some("C")];
    let mut rows = Vec::new();
    let mut ops = Vec::new();
    for i in 0..45u128 {
        let n = 1 + (i * 17) % 45;
        let level = levels[(i % 5) as usize];
        let follow_up = (i % 3 != 0).then(|| day((i * 7) % 4));
        // A number, text (another type: blank to a number sort) or nothing.
        let (score, stored) = match i % 4 {
            0 => (
                Some(Key::Number((i % 6) as f64)),
                json!({"score": (i % 6) as f64}),
            ),
            1 => (None, json!({"score": "7"})),
            2 => (None, json!({})),
            _ => (Some(Key::Number(2.5)), json!({"score": 2.5})),
        };
        let name = format!("客户{}", i % 9);
        let mut values = Vec::new();
        for c in Table::Customers.columns() {
            let v = match c.name {
                "id" => Value::Id(uid(n)),
                "company_id" => Value::Id(company()),
                "version" => Value::Int(1),
                "created_at" | "updated_at" => Value::Timestamp(t0()),
                "name" => Value::Text(name.clone()),
                "level" => match level {
                    Some(l) => Value::Text(l.into()),
                    None => continue,
                },
                "next_follow_up" => match follow_up {
                    Some(d) => Value::Date(d),
                    None => continue,
                },
                "custom" => Value::Json(stored.clone()),
                _ if c.nullable => continue,
                _ => match c.ty {
                    ColType::Id => Value::Id(Uuid::nil()),
                    ColType::Text => Value::Text("-".into()),
                    ColType::Int => Value::Int(0),
                    ColType::Bool => Value::Bool(false),
                    ColType::Date => Value::Date(day(0)),
                    ColType::Timestamp => Value::Timestamp(t0()),
                    ColType::Json => Value::Json(json!([])),
                },
            };
            values.push((c.name, v));
        }
        ops.push(Op::Insert {
            table: Table::Customers,
            values,
        });
        rows.push(BlankRow {
            n,
            level: level.map(|l| Key::Text(l.into())),
            follow_up: follow_up.map(Key::Day),
            score,
            name: Key::Text(name),
        });
    }
    let changes = ChangeSet {
        ops,
        ..ChangeSet::default()
    };
    if let Err(e) = store.apply(&changes).await {
        panic!("filling customers failed: {e} ({e:?})");
    }
    rows
}

/// The keyset cursor after `row` under `sort`: its sort key values as the
/// store compares them, then its id.
fn cursor_after(row: &Row, sort: &[Sort]) -> Vec<Value> {
    let mut after: Vec<Value> = sort
        .iter()
        .map(|s| match &s.col {
            Col::Column(c) => row.get(c).clone(),
            Col::Custom { key, .. } => row
                .get("custom")
                .as_json()
                .and_then(|j| j.get(key))
                .and_then(serde_json::Value::as_f64)
                .map_or(Value::Null, Value::Float),
        })
        .collect();
    after.push(Value::Id(row.id()));
    after
}

/// The rows of `base` read in pages of `per`, by offset or by keyset;
/// every page but the last is full and the total is the same on each.
async fn paged(store: &Arc<dyn Store>, base: &Select, per: u64, keyset: bool) -> Vec<u128> {
    let mut out = Vec::new();
    let mut after = None;
    for page in 0..200u64 {
        let mut s = base.clone();
        s.with_total = true;
        s.paging = if keyset {
            Paging::Keyset {
                after: after.clone(),
                limit: per,
            }
        } else {
            Paging::Offset {
                offset: page * per,
                limit: per,
            }
        };
        let got = store
            .select(&s)
            .await
            .unwrap_or_else(|e| panic!("select page {page} of {per}: {e}"));
        assert_eq!(got.total, Some(45), "total of page {page} of {per}");
        out.extend(got.rows.iter().map(|r| r.id().as_u128()));
        if !got.has_more {
            return out;
        }
        assert_eq!(got.rows.len() as u64, per, "a page before the last is full");
        after = got.rows.last().map(|r| cursor_after(r, &base.sort));
    }
    panic!("paging of {per} did not end");
}

/// Blanks (NULL, and a custom number field missing or holding text) sort
/// after every value ascending and descending alike, on one key and on
/// several of mixed directions, with `id` ascending breaking ties; offset
/// and keyset pages of several sizes, whose boundaries fall among the
/// blanks, read exactly the full order (nothing lost or repeated).
pub async fn blanks_sort_last_both_ways_across_pages(store: Arc<dyn Store>) {
    let rows = fill_blanks(&store).await;
    let asc = |col: Col| Sort { col, desc: false };
    let desc = |col: Col| Sort { col, desc: true };
    let level = || Col::Column("level");
    let follow_up = || Col::Column("next_follow_up");
    let name = || Col::Column("name");
    let sorts = vec![
        vec![desc(level())],
        vec![asc(level())],
        vec![desc(follow_up())],
        vec![desc(score())],
        vec![asc(score())],
        vec![desc(follow_up()), asc(level())],
        vec![asc(level()), desc(follow_up()), desc(name())],
        vec![desc(level()), desc(score()), asc(follow_up())],
        vec![desc(score()), asc(level()), desc(follow_up())],
        vec![desc(name()), desc(level())],
    ];
    for sort in sorts {
        let mut expected: Vec<&BlankRow> = rows.iter().collect();
        expected.sort_by(|a, b| {
            sort.iter()
                .map(|s| blanks_last(&a.key(&s.col), &b.key(&s.col), s.desc))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then(a.n.cmp(&b.n))
        });
        // The first key's blanks close the list, whatever its direction.
        let first = &sort[0].col;
        let blanks = rows.iter().filter(|r| r.key(first).is_none()).count();
        assert!(
            expected[expected.len() - blanks..]
                .iter()
                .all(|r| r.key(first).is_none()),
            "scenario bug: blanks not last in the expected order"
        );
        let expected: Vec<u128> = expected.iter().map(|r| r.n).collect();
        let base = Select {
            sort: sort.clone(),
            ..filtered(Filter::True)
        };
        assert_eq!(numbers(&store, &base).await, expected, "{sort:?}");
        for per in [1, 2, 4, 7, 45] {
            for keyset in [false, true] {
                assert_eq!(
                    paged(&store, &base, per, keyset).await,
                    expected,
                    "{sort:?}, pages of {per}, keyset {keyset}"
                );
            }
        }
    }
    // A keyset page starting right after a blank: the blanks after it by
    // id, then nothing more.
    let base = Select {
        sort: vec![desc(follow_up())],
        ..filtered(Filter::True)
    };
    let blank: Vec<u128> = {
        let mut b: Vec<u128> = rows
            .iter()
            .filter(|r| r.follow_up.is_none())
            .map(|r| r.n)
            .collect();
        b.sort_unstable();
        b
    };
    let s = Select {
        paging: Paging::Keyset {
            after: Some(vec![Value::Null, Value::Id(uid(blank[1]))]),
            limit: 100,
        },
        ..base.clone()
    };
    assert_eq!(numbers(&store, &s).await, blank[2..].to_vec());
    // After the last dated row: every blank.
    let latest = rows
        .iter()
        .filter_map(|r| match &r.follow_up {
            Some(Key::Day(d)) => Some((*d, r.n)),
            _ => None,
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .expect("dated rows");
    let s = Select {
        paging: Paging::Keyset {
            after: Some(vec![Value::Date(latest.0), Value::Id(uid(latest.1))]),
            limit: 100,
        },
        ..base
    };
    assert_eq!(numbers(&store, &s).await, blank);
}

/// The engine's record lists keep the contract: customers without a next
/// follow-up date or a level come after the others whether the list sorts
/// by them ascending or descending, read in offset pages or with the
/// list's own keyset cursors whose boundaries fall among the blanks.
pub async fn record_lists_put_blanks_last_both_ways(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut made = Vec::new();
    for i in 0..11u32 {
        let mut extra = serde_json::Map::new();
        if i % 3 != 0 {
            extra.insert(
                "next_follow_up".into(),
                json!(format!("2026-12-{:02}", 1 + i % 4)),
            );
        }
        if i % 2 == 0 {
            extra.insert("level".into(), json!(if i % 4 == 0 { "A" } else { "B" }));
        }
        let r = w
            .customer(
                &w.admin,
                &format!("客户{i:02}"),
                serde_json::Value::Object(extra),
            )
            .await;
        made.push((
            r.fields["name"].as_str().unwrap_or_default().to_string(),
            r.fields["next_follow_up"].as_str().map(str::to_string),
            r.fields["level"].as_str().map(str::to_string),
            r.id.0,
        ));
    }
    let text = |v: &Option<String>| v.clone().map(Key::Text);
    for (sort, keys) in [
        (vec!["-next_follow_up"], vec![(1, true)]),
        (vec!["next_follow_up"], vec![(1, false)]),
        (
            vec!["-level", "next_follow_up"],
            vec![(2, true), (1, false)],
        ),
        (
            vec!["level", "-next_follow_up"],
            vec![(2, false), (1, true)],
        ),
    ] {
        let mut expected = made.clone();
        expected.sort_by(|a, b| {
            keys.iter()
                .map(|(k, desc)| {
                    let (x, y) = if *k == 1 { (&a.1, &b.1) } else { (&a.2, &b.2) };
                    blanks_last(&text(x), &text(y), *desc)
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then(a.3.cmp(&b.3))
        });
        let expected: Vec<String> = expected.into_iter().map(|r| r.0).collect();
        for (per, keyset) in [(2, false), (2, true), (3, true), (100, false)] {
            let mut got = Vec::new();
            let mut after: Option<String> = None;
            for page in 1..100 {
                let mut q = ListQuery::default().with_total();
                for s in &sort {
                    q.sort.push(crate::query::SortBy::parse(s));
                }
                q = q.page(if keyset {
                    PageRequest::Keyset {
                        after: after.clone(),
                        limit: per,
                    }
                } else {
                    PageRequest::Offset {
                        page,
                        per_page: per,
                    }
                });
                let list = w
                    .crm
                    .list_records(&w.admin, Entity::Customer, &q)
                    .await
                    .unwrap_or_else(|e| panic!("list sorted by {sort:?}: {e}"));
                assert_eq!(list.total, Some(11), "{sort:?}");
                got.extend(
                    list.items
                        .iter()
                        .map(|r| r.fields["name"].as_str().unwrap_or_default().to_string()),
                );
                if !list.has_more {
                    break;
                }
                after = list.next_cursor.clone();
            }
            assert_eq!(got, expected, "{sort:?}, pages of {per}, keyset {keyset}");
        }
    }
}

/// Searching for a text far longer than any name (60 000 bytes and more:
/// a paste gone wrong, or a long note quoted) finds the rows holding it,
/// letter case aside, and nothing else, on both stores alike — SQLite
/// refuses a `LIKE` pattern of more than 50 000 bytes, so it must not be
/// asked one.
pub async fn long_search_texts_select_the_right_rows(store: Arc<dyn Store>) {
    fill(&store).await;
    let long = format!("{}Tail", "长".repeat(25_000));
    for (n, text) in [(7u128, format!("前言{long}后记")), (8, long.clone())] {
        let row = store
            .get(Table::Customers, uid(n))
            .await
            .expect("get")
            .expect("row");
        let changes = ChangeSet {
            ops: vec![Op::Update {
                table: Table::Customers,
                id: uid(n),
                expected_version: row.version(),
                values: vec![("notes", Value::Text(text))],
            }],
            ..ChangeSet::default()
        };
        store.apply(&changes).await.expect("notes");
    }
    let notes = || Col::Column("notes");
    let upper = long.replace("Tail", "TAIL");
    assert_eq!(
        matching(&store, Filter::Contains(notes(), upper.clone())).await,
        vec![7, 8]
    );
    assert_eq!(
        matching(&store, Filter::StartsWith(notes(), upper.clone())).await,
        vec![8]
    );
    let absent = format!("{long}!");
    assert!(
        matching(&store, Filter::Contains(notes(), absent.clone()))
            .await
            .is_empty()
    );
    assert!(
        matching(&store, Filter::Contains(Col::Column("name"), absent))
            .await
            .is_empty()
    );
    // The text-key search (unique custom texts, spelling aside) alike.
    assert_eq!(
        matching(
            &store,
            Filter::TextKeyLike {
                col: notes(),
                needle: upper,
                prefix: false,
            },
        )
        .await,
        vec![7, 8]
    );
}
