//! Store-level scenarios: change sets, selects, filters, paging, conflicts,
//! sequences, audit and outbox, checked identically on every backend.
//!
//! Every scenario gets a fresh, empty store, uses fixed timestamps and
//! deterministic ids (`Uuid::from_u128(n)`, whose text order is numeric
//! order), and asserts exact results. The semantics pinned down here are the
//! contract between the core and its backends:
//!
//! - Timestamps keep microseconds; text compares byte-wise (UTF-8 order,
//!   `COLLATE "C"`); ascending sorts put NULL last, descending first; `id`
//!   ascending breaks ties.
//! - `Ne` is "is distinct from" (NULL rows match `Ne`); `Not` follows SQL's
//!   three-valued logic (a NULL comparison stays unmatched under `Not`).
//! - `Contains`/`StartsWith` ignore ASCII case and treat `%`, `_` and `\`
//!   literally; they never match NULL.
//! - A custom field whose JSON value is missing, JSON `null` or of another
//!   JSON type than the requested [`CustomType`] compares as NULL; numbers
//!   compare numerically (`9` equals `9.0`).
//! - `Related` sees only live (not deleted) related rows; it nests.
//! - Shares grant visibility while `deleted_at IS NULL` and
//!   (`expires_at IS NULL OR expires_at > now`), for the same entity only.
//! - `with_total` counts every matching row, ignoring paging; an offset
//!   page of no rows with a total only counts.
//! - A change set is all or nothing, audit and outbox included.
//! - Purging a customer cascades to its contacts and follow-ups; purging a
//!   contact sets `follow_ups.contact_id` to NULL.

/// Lists the store-level scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! store_scenarios {
    ($each:path; $make:expr) => {
        $each!($crate::testing::store_suite::every_column_of_every_table_round_trips, store_every_column_of_every_table_round_trips, $make);
        $each!($crate::testing::store_suite::nullable_columns_round_trip_null_and_minimal_values, store_nullable_columns_round_trip_null_and_minimal_values, $make);
        $each!($crate::testing::store_suite::get_of_unknown_id_is_none, store_get_of_unknown_id_is_none, $make);
        $each!($crate::testing::store_suite::timestamps_keep_microseconds_and_order_by_time, store_timestamps_keep_microseconds_and_order_by_time, $make);
        $each!($crate::testing::store_suite::values_holding_nul_are_refused_alike, store_values_holding_nul_are_refused_alike, $make);
        $each!($crate::testing::store_suite::filter_comparisons_on_every_type, store_filter_comparisons_on_every_type, $make);
        $each!($crate::testing::store_suite::filter_ne_matches_null_and_not_follows_sql, store_filter_ne_matches_null_and_not_follows_sql, $make);
        $each!($crate::testing::store_suite::filter_in_lists_and_empty_in, store_filter_in_lists_and_empty_in, $make);
        $each!($crate::testing::store_suite::filter_contains_is_ascii_case_insensitive_with_literal_wildcards, store_filter_contains_is_ascii_case_insensitive_with_literal_wildcards, $make);
        $each!($crate::testing::store_suite::filter_starts_with_is_a_literal_prefix, store_filter_starts_with_is_a_literal_prefix, $make);
        $each!($crate::testing::store_suite::filter_is_null_and_not_null, store_filter_is_null_and_not_null, $make);
        $each!($crate::testing::store_suite::filter_and_or_not_including_empty_lists, store_filter_and_or_not_including_empty_lists, $make);
        $each!($crate::testing::store_suite::filter_holds_id_looks_inside_json_at_any_depth, store_filter_holds_id_looks_inside_json_at_any_depth, $make);
        $each!($crate::testing::store_suite::filter_related_sees_live_children_and_nests, store_filter_related_sees_live_children_and_nests, $make);
        $each!($crate::testing::store_suite::filter_custom_text_number_bool, store_filter_custom_text_number_bool, $make);
        $each!($crate::testing::store_suite::sort_by_custom_fields, store_sort_by_custom_fields, $make);
        $each!($crate::testing::store_suite::companies_are_isolated, store_companies_are_isolated, $make);
        $each!($crate::testing::store_suite::scope_restricts_by_owner_department_and_share, store_scope_restricts_by_owner_department_and_share, $make);
        $each!($crate::testing::store_suite::lifecycle_selects_active_deleted_archived_any, store_lifecycle_selects_active_deleted_archived_any, $make);
        $each!($crate::testing::store_suite::sort_puts_nulls_last_both_ways, store_sort_puts_nulls_last_both_ways, $make);
        $each!($crate::testing::store_suite::sort_text_is_byte_order, store_sort_text_is_byte_order, $make);
        $each!($crate::testing::store_suite::offset_paging_pages_and_has_more, store_offset_paging_pages_and_has_more, $make);
        $each!($crate::testing::store_suite::keyset_paging_with_mixed_directions_equals_full_list, store_keyset_paging_with_mixed_directions_equals_full_list, $make);
        $each!($crate::testing::store_suite::keyset_paging_over_a_custom_field, store_keyset_paging_over_a_custom_field, $make);
        $each!($crate::testing::store_suite::with_total_counts_all_matches_regardless_of_paging, store_with_total_counts_all_matches_regardless_of_paging, $make);
        $each!($crate::testing::store_suite::update_bumps_version_and_sets_only_given_columns, store_update_bumps_version_and_sets_only_given_columns, $make);
        $each!($crate::testing::store_suite::stale_update_conflicts_and_nothing_of_the_change_set_is_applied, store_stale_update_conflicts_and_nothing_of_the_change_set_is_applied, $make);
        $each!($crate::testing::store_suite::update_or_delete_of_missing_row_is_not_found, store_update_or_delete_of_missing_row_is_not_found, $make);
        $each!($crate::testing::store_suite::ops_apply_in_order_within_a_change_set, store_ops_apply_in_order_within_a_change_set, $make);
        $each!($crate::testing::store_suite::delete_purges_and_cascades_to_children, store_delete_purges_and_cascades_to_children, $make);
        $each!($crate::testing::store_suite::unique_violations_are_reported_and_roll_back, store_unique_violations_are_reported_and_roll_back, $make);
        $each!($crate::testing::store_suite::guards_refuse_a_change_set_whose_select_finds_rows, store_guards_refuse_a_change_set_whose_select_finds_rows, $make);
        $each!($crate::testing::store_suite::unique_codes_ignore_deleted_rows_and_nulls, store_unique_codes_ignore_deleted_rows_and_nulls, $make);
        $each!($crate::testing::store_suite::sequences_start_at_one_per_company_and_key, store_sequences_start_at_one_per_company_and_key, $make);
        $each!($crate::testing::store_suite::history_is_oldest_first_with_changes_preserved, store_history_is_oldest_first_with_changes_preserved, $make);
        $each!($crate::testing::store_suite::outbox_redelivers_until_acked_in_order_per_consumer, store_outbox_redelivers_until_acked_in_order_per_consumer, $make);
        $each!($crate::testing::store_suite::outbox_pending_of_one_company_passes_over_the_others, store_outbox_pending_of_one_company_passes_over_the_others, $make);
        $each!($crate::testing::store_suite::bulk_change_sets_apply_whole_in_order_or_not_at_all, store_bulk_change_sets_apply_whole_in_order_or_not_at_all, $make);
        $each!($crate::testing::store_suite::text_key_like_folds_width_case_accents_and_script_alike, store_text_key_like_folds_width_case_accents_and_script_alike, $make);
        $each!($crate::testing::store_suite::searches_and_filters_fold_as_the_duplicate_key, store_searches_and_filters_fold_as_the_duplicate_key, $make);
        $each!($crate::testing::store_suite::date_time_filters_take_whole_days_and_seconds, store_date_time_filters_take_whole_days_and_seconds, $make);
    };
}

use crate::schema::{ColType, ColumnDef, Table};
use crate::store::{
    AuditEntry, ChangeSet, CmpOp, Col, CustomType, FieldChange, Filter, Guard, Lifecycle, NewEvent,
    Op, OutboxEvent, Paging, Row, Scope, Select, Selected, Sort, Store, StoreError,
};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use std::cmp::Ordering;
use std::sync::Arc;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fixed instant.
fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad fixed timestamp {s}: {e}"))
        .with_timezone(&Utc)
}

/// A fixed date.
fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("bad fixed date {y}-{m}-{d}"))
}

/// When rows are created.
fn t0() -> DateTime<Utc> {
    ts("2026-03-01T08:00:00Z")
}

/// "Now" of every select.
fn now() -> DateTime<Utc> {
    ts("2026-06-01T12:00:00Z")
}

/// A deterministic id; ids sort like their numbers.
fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const CO_A: u128 = 0xA0_0000;
const CO_B: u128 = 0xB0_0000;

fn co_a() -> Uuid {
    uid(CO_A)
}

fn co_b() -> Uuid {
    uid(CO_B)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn column(name: &'static str) -> Col {
    Col::Column(name)
}

fn custom(key: &str, ty: CustomType) -> Col {
    Col::Custom {
        key: key.to_owned(),
        ty,
    }
}

fn cmp(col: Col, op: CmpOp, v: impl Into<Value>) -> Filter {
    Filter::Cmp(col, op, v.into())
}

fn eq(name: &'static str, v: impl Into<Value>) -> Filter {
    cmp(column(name), CmpOp::Eq, v)
}

fn asc(col: Col) -> Sort {
    Sort { col, desc: false }
}

fn desc(col: Col) -> Sort {
    Sort { col, desc: true }
}

/// A placeholder value for a non-nullable column the scenario does not care
/// about.
fn placeholder(c: &ColumnDef) -> Value {
    match c.ty {
        ColType::Id => Value::Id(Uuid::nil()),
        ColType::Text => text("-"),
        ColType::Int => Value::Int(0),
        ColType::Bool => Value::Bool(false),
        ColType::Date => Value::Date(date(2026, 1, 1)),
        ColType::Timestamp => Value::Timestamp(t0()),
        ColType::Json if c.name == "custom" => Value::Json(json!({})),
        ColType::Json => Value::Json(json!([])),
    }
}

/// Values for every non-nullable column of `table` (common columns filled
/// in, version 1), then `overrides`; nullable columns not overridden are
/// left out (and so stored as NULL).
fn values(
    table: Table,
    id: Uuid,
    company: Uuid,
    overrides: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    for (name, _) in &overrides {
        assert!(
            table.column(name).is_some(),
            "scenario bug: {table} has no column {name}"
        );
    }
    let mut out = Vec::new();
    for c in table.columns() {
        if let Some((_, v)) = overrides.iter().find(|(n, _)| *n == c.name) {
            out.push((c.name, v.clone()));
            continue;
        }
        let v = match c.name {
            "id" => Value::Id(id),
            "company_id" => Value::Id(company),
            "version" => Value::Int(1),
            "created_at" | "updated_at" => Value::Timestamp(t0()),
            _ if c.nullable => continue,
            _ => placeholder(&c),
        };
        out.push((c.name, v));
    }
    out
}

fn insert(table: Table, id: Uuid, company: Uuid, overrides: Vec<(&'static str, Value)>) -> Op {
    Op::Insert {
        table,
        values: values(table, id, company, overrides),
    }
}

fn ops(ops: Vec<Op>) -> ChangeSet {
    ChangeSet {
        ops,
        ..ChangeSet::default()
    }
}

async fn apply_ok(store: &Arc<dyn Store>, changes: ChangeSet) {
    if let Err(e) = store.apply(&changes).await {
        panic!("apply failed: {e} ({e:?})");
    }
}

async fn apply_err(store: &Arc<dyn Store>, changes: ChangeSet) -> StoreError {
    match store.apply(&changes).await {
        Ok(()) => panic!("apply succeeded but should have failed: {changes:?}"),
        Err(e) => e,
    }
}

async fn add(
    store: &Arc<dyn Store>,
    table: Table,
    id: Uuid,
    company: Uuid,
    overrides: Vec<(&'static str, Value)>,
) {
    apply_ok(store, ops(vec![insert(table, id, company, overrides)])).await;
}

/// Inserts a customer of company A named `name`.
async fn add_customer(
    store: &Arc<dyn Store>,
    n: u128,
    name: &str,
    mut overrides: Vec<(&'static str, Value)>,
) {
    overrides.push(("name", text(name)));
    add(store, Table::Customers, uid(n), co_a(), overrides).await;
}

async fn get(store: &Arc<dyn Store>, table: Table, id: Uuid) -> Row {
    match store.get(table, id).await {
        Ok(Some(row)) => row,
        Ok(None) => panic!("{table} {id} not found"),
        Err(e) => panic!("get {table} {id} failed: {e} ({e:?})"),
    }
}

async fn select(store: &Arc<dyn Store>, s: &Select) -> crate::store::Selected {
    match store.select(s).await {
        Ok(selected) => selected,
        Err(e) => panic!("select failed: {e} ({e:?}) for {s:?}"),
    }
}

async fn ids(store: &Arc<dyn Store>, s: &Select) -> Vec<Uuid> {
    select(store, s).await.rows.iter().map(Row::id).collect()
}

fn sel(table: Table, company: Uuid) -> Select {
    Select::all(table, company, now())
}

fn filtered(table: Table, filter: Filter) -> Select {
    Select {
        filter,
        ..sel(table, co_a())
    }
}

fn sorted(table: Table, sort: Vec<Sort>) -> Select {
    Select {
        sort,
        ..sel(table, co_a())
    }
}

/// Ids of active rows of company A of `table` matching `filter`, by id.
async fn matching(store: &Arc<dyn Store>, table: Table, filter: Filter) -> Vec<Uuid> {
    ids(store, &filtered(table, filter)).await
}

fn uids(ns: &[u128]) -> Vec<Uuid> {
    ns.iter().copied().map(uid).collect()
}

/// The value a keyset cursor needs for a sort key of `row`.
fn sort_value(row: &Row, col: &Col) -> Value {
    match col {
        Col::Column(name) => row.get(name).clone(),
        Col::Custom { key, ty } => {
            let v = row.get("custom").as_json().and_then(|c| c.get(key));
            match (ty, v) {
                (CustomType::Number, Some(serde_json::Value::Number(n))) => {
                    n.as_f64().map_or(Value::Null, Value::Float)
                }
                (CustomType::Text, Some(serde_json::Value::String(s))) => text(s),
                (CustomType::Bool, Some(serde_json::Value::Bool(b))) => Value::Bool(*b),
                _ => Value::Null,
            }
        }
    }
}

/// The keyset cursor after `row`: its sort key values, then its id.
fn cursor(row: &Row, sort: &[Sort]) -> Vec<Value> {
    let mut after: Vec<Value> = sort.iter().map(|s| sort_value(row, &s.col)).collect();
    after.push(Value::Id(row.id()));
    after
}

/// Reads `base` page by page with keyset paging, checking every page.
async fn walk_keyset(store: &Arc<dyn Store>, base: &Select, limit: u64, total: u64) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let s = Select {
            paging: Paging::Keyset {
                after: after.clone(),
                limit,
            },
            with_total: true,
            ..base.clone()
        };
        let page = select(store, &s).await;
        assert_eq!(
            page.total,
            Some(total),
            "total of a keyset page (limit {limit})"
        );
        assert!(
            page.rows.len() as u64 <= limit,
            "page longer than its limit {limit}"
        );
        out.extend(page.rows.iter().map(Row::id));
        if !page.has_more {
            return out;
        }
        assert_eq!(
            page.rows.len() as u64,
            limit,
            "a page with more after it is full"
        );
        let last = page
            .rows
            .last()
            .unwrap_or_else(|| panic!("has_more on an empty page"));
        after = Some(cursor(last, &base.sort));
    }
    panic!("keyset paging did not end");
}

/// NULL sorts after every value, ascending.
fn nulls_last<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

/// NULL sorts after every value, descending too.
fn nulls_last_desc<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.cmp(x),
        _ => nulls_last(a, b),
    }
}

fn audit(
    record: Uuid,
    table: Table,
    action: &str,
    at: &str,
    changes: Vec<FieldChange>,
) -> AuditEntry {
    AuditEntry {
        company_id: co_a(),
        table,
        record_id: record,
        actor_id: Some(uid(0xAC70)),
        at: ts(at),
        action: action.to_owned(),
        changes,
    }
}

fn change(field: &str, before: serde_json::Value, after: serde_json::Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        before,
        after,
    }
}

fn event(record: Uuid, event_type: &str, payload: serde_json::Value, at: &str) -> NewEvent {
    NewEvent {
        company_id: co_a(),
        event_type: event_type.to_owned(),
        table: Table::Customers,
        record_id: record,
        payload: payload.into(),
        at: ts(at),
    }
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

/// A sample value of a column's type, different per column, exercising the
/// encodings: Chinese and quote characters, integers beyond 2^53, booleans
/// `true`, microsecond timestamps and nested JSON objects.
fn sample(table: Table, c: &ColumnDef, n: usize) -> Value {
    match c.ty {
        ColType::Id => Value::Id(uid(0x5A_0000 + n as u128)),
        ColType::Text => text(&format!(
            "{}.{}：华为技术 'q' \"dq\" 100%_\\ ✓",
            table.name(),
            c.name
        )),
        ColType::Int => Value::Int(9_007_199_254_740_993 + n as i64),
        ColType::Bool => Value::Bool(true),
        ColType::Date => Value::Date(date(2024, 2, 29)),
        ColType::Timestamp => Value::Timestamp(
            ts("2026-03-04T05:06:07.123456Z") + chrono::Duration::seconds(n as i64),
        ),
        ColType::Json => Value::Json(json!({
            "名称": "华为",
            "n": 42,
            "neg": -7,
            "flag": false,
            "nested": {"list": [1, "二", true, null], "empty": {}},
            "column": c.name,
        })),
    }
}

/// Every column of every table stores and reads back exactly the value
/// written (catches schema and encoding mismatches between backends).
pub async fn every_column_of_every_table_round_trips(store: Arc<dyn Store>) {
    let customer = uid(0xC1);
    let contact = uid(0xC2);
    let mut expected = Vec::new();
    let mut changes = ChangeSet::default();
    for (i, table) in Table::ALL.into_iter().enumerate() {
        let id = uid(0x1000 + i as u128);
        let row: Vec<Value> = table
            .columns()
            .iter()
            .enumerate()
            .map(|(n, c)| match c.name {
                "id" => Value::Id(match table {
                    Table::Customers => customer,
                    Table::Contacts => contact,
                    _ => id,
                }),
                "company_id" => Value::Id(co_a()),
                "customer_id" => Value::Id(customer),
                "contact_id" => Value::Id(contact),
                _ => sample(table, c, n),
            })
            .collect();
        changes.ops.push(Op::Insert {
            table,
            values: table
                .columns()
                .iter()
                .map(|c| c.name)
                .zip(row.iter().cloned())
                .collect(),
        });
        expected.push(Row { table, values: row });
    }
    apply_ok(&store, changes).await;
    for row in expected {
        let id = row.id();
        assert_eq!(
            get(&store, row.table, id).await,
            row,
            "get of {}",
            row.table
        );
        // The sample rows are deleted (deleted_at is set): only `Any` sees them.
        let s = Select {
            lifecycle: Lifecycle::Any,
            filter: eq("id", id),
            ..sel(row.table, co_a())
        };
        assert_eq!(
            select(&store, &s).await.rows,
            vec![row.clone()],
            "select of {}",
            row.table
        );
    }
}

/// Nullable columns left out or set to NULL read back as NULL; empty text,
/// `i64::MIN`, `false`, epoch dates and empty JSON are kept as such.
pub async fn nullable_columns_round_trip_null_and_minimal_values(store: Arc<dyn Store>) {
    let customer = uid(0xC1);
    let mut expected = Vec::new();
    let mut changes = ChangeSet::default();
    for (i, table) in Table::ALL.into_iter().enumerate() {
        for explicit_nulls in [false, true] {
            let id = if table == Table::Customers && !explicit_nulls {
                customer
            } else {
                uid(0x2000 + 2 * i as u128 + u128::from(explicit_nulls))
            };
            let mut row = Vec::new();
            let mut written = Vec::new();
            for c in table.columns() {
                let v = match c.name {
                    "id" => Value::Id(id),
                    "company_id" => Value::Id(co_a()),
                    "customer_id" => Value::Id(customer),
                    _ if c.nullable => Value::Null,
                    _ => match c.ty {
                        ColType::Id => Value::Id(Uuid::nil()),
                        // Two rows per table: keep unique keys apart.
                        ColType::Text => text(if explicit_nulls { " " } else { "" }),
                        ColType::Int => Value::Int(i64::MIN),
                        ColType::Bool => Value::Bool(false),
                        ColType::Date => Value::Date(date(1970, 1, 1)),
                        ColType::Timestamp => Value::Timestamp(ts("1970-01-01T00:00:00Z")),
                        ColType::Json if c.name == "custom" => Value::Json(json!({})),
                        ColType::Json => Value::Json(json!([])),
                    },
                };
                if !v.is_null() || explicit_nulls {
                    written.push((c.name, v.clone()));
                }
                row.push(v);
            }
            changes.ops.push(Op::Insert {
                table,
                values: written,
            });
            expected.push(Row { table, values: row });
        }
    }
    apply_ok(&store, changes).await;
    for row in expected {
        assert_eq!(get(&store, row.table, row.id()).await, row, "{}", row.table);
    }
}

/// `get` of an id that does not exist (in this table) is `None`.
pub async fn get_of_unknown_id_is_none(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![]).await;
    for table in Table::ALL {
        let found = store
            .get(table, uid(999))
            .await
            .unwrap_or_else(|e| panic!("get failed: {e}"));
        assert_eq!(found, None, "{table}");
    }
    let found = store
        .get(Table::Contacts, uid(1))
        .await
        .unwrap_or_else(|e| panic!("get failed: {e}"));
    assert_eq!(found, None, "a customer id is not a contact");
}

/// A value holding a NUL character — text, or a string or key inside
/// JSON — is refused by every store with the same message (PostgreSQL
/// cannot store one), in a lone insert and within a run of inserts alike,
/// and nothing of the change set is written.
pub async fn values_holding_nul_are_refused_alike(store: Arc<dyn Store>) {
    let refused = |e: StoreError, column: &str| {
        let m = e.to_string();
        assert!(m.contains("NUL") && m.contains(column), "{m}");
    };
    refused(
        apply_err(
            &store,
            ops(vec![insert(
                Table::Customers,
                uid(1),
                co_a(),
                vec![("name", text("甲\0乙"))],
            )]),
        )
        .await,
        "customers.name",
    );
    refused(
        apply_err(
            &store,
            ops(vec![insert(
                Table::Customers,
                uid(2),
                co_a(),
                vec![
                    ("name", text("丙")),
                    ("custom", Value::Json(serde_json::json!({"备注": ["a\0b"]}))),
                ],
            )]),
        )
        .await,
        "customers.custom",
    );
    // The second insert of a run of like inserts.
    refused(
        apply_err(
            &store,
            ops(vec![
                insert(Table::Customers, uid(3), co_a(), vec![("name", text("丁"))]),
                insert(
                    Table::Customers,
                    uid(4),
                    co_a(),
                    vec![("name", text("戊\0"))],
                ),
            ]),
        )
        .await,
        "customers.name",
    );
    for n in 1..=4 {
        assert_eq!(store.get(Table::Customers, uid(n)).await.ok(), Some(None));
    }
    // Filters comparing with such a value, however they compare, and
    // inside a related-record condition (naming the related table).
    let filters = [
        (
            Filter::Cmp(column("name"), CmpOp::Eq, text("甲\0")),
            "customers.name",
        ),
        (
            Filter::In(
                column("name"),
                (0..100).map(|i| text(&format!("乙{i}\0"))).collect(),
            ),
            "customers.name",
        ),
        (
            Filter::Contains(column("email"), "a\0b".into()),
            "customers.email",
        ),
        (
            Filter::Not(Box::new(Filter::StartsWith(column("name"), "\0".into()))),
            "customers.name",
        ),
        (
            Filter::Related {
                table: Table::Contacts,
                fk: "customer_id",
                filter: Box::new(Filter::Cmp(column("name"), CmpOp::Eq, text("丙\0"))),
            },
            "contacts.name",
        ),
    ];
    for (f, column) in filters {
        match store.select(&filtered(Table::Customers, f.clone())).await {
            Err(e) => refused(e, column),
            Ok(found) => panic!("{f:?} selected {found:?}"),
        }
    }
}

/// Timestamps keep microseconds and compare and sort in time order, also
/// across a year boundary and with a zero fraction.
pub async fn timestamps_keep_microseconds_and_order_by_time(store: Arc<dyn Store>) {
    let times = [
        (1, "2026-01-01T00:00:00.500000Z"),
        (2, "2025-12-31T23:59:59.999999Z"),
        (3, "2026-01-01T00:00:01Z"),
        (4, "2026-01-01T00:00:00Z"),
        (5, "2026-01-01T00:00:00.000001Z"),
    ];
    for (n, t) in times {
        add_customer(
            &store,
            n,
            "甲",
            vec![("last_follow_up_at", Value::Timestamp(ts(t)))],
        )
        .await;
    }
    for (n, t) in times {
        let row = get(&store, Table::Customers, uid(n)).await;
        assert_eq!(
            row.get("last_follow_up_at"),
            &Value::Timestamp(ts(t)),
            "{t}"
        );
    }
    let s = sorted(Table::Customers, vec![asc(column("last_follow_up_at"))]);
    assert_eq!(ids(&store, &s).await, uids(&[2, 4, 5, 1, 3]));
    let at = |op, t: &str| cmp(column("last_follow_up_at"), op, Value::Timestamp(ts(t)));
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Gt, "2026-01-01T00:00:00Z")
        )
        .await,
        uids(&[1, 3, 5])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Le, "2026-01-01T00:00:00Z")
        )
        .await,
        uids(&[2, 4])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Eq, "2026-01-01T00:00:00.000001Z")
        )
        .await,
        uids(&[5])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Lt, "2025-12-31T23:59:59.999999Z")
        )
        .await,
        uids(&[])
    );
    // Finer than a microsecond is floored, before 2000 too (not rounded
    // up into the next day), in values and in filters alike.
    add_customer(
        &store,
        6,
        "甲",
        vec![(
            "last_follow_up_at",
            Value::Timestamp(ts("1999-12-31T23:59:59.9999995Z")),
        )],
    )
    .await;
    assert_eq!(
        get(&store, Table::Customers, uid(6))
            .await
            .get("last_follow_up_at"),
        &Value::Timestamp(ts("1999-12-31T23:59:59.999999Z"))
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Lt, "2000-01-01T00:00:00Z")
        )
        .await,
        uids(&[6])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Eq, "1999-12-31T23:59:59.9999998Z")
        )
        .await,
        uids(&[6])
    );
    // Audit entries and events are floored alike.
    apply_ok(
        &store,
        ChangeSet {
            audit: vec![audit(
                uid(6),
                Table::Customers,
                "update",
                "1999-12-31T23:59:59.9999995Z",
                vec![],
            )],
            events: vec![event(
                uid(6),
                "customer.updated",
                json!({}),
                "1999-12-31T23:59:59.9999995Z",
            )],
            ..ChangeSet::default()
        },
    )
    .await;
    let floored = ts("1999-12-31T23:59:59.999999Z");
    let history = store
        .history(Table::Customers, uid(6))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(
        history.iter().map(|a| a.at).collect::<Vec<_>>(),
        vec![floored]
    );
    let pending = store
        .outbox_pending("floored", 100)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"));
    assert_eq!(
        pending.iter().map(|e| e.event.at).collect::<Vec<_>>(),
        vec![floored]
    );
    // A leap second is the last microsecond of its minute, in values and in
    // filters alike: after every earlier instant, before the next minute.
    add_customer(
        &store,
        7,
        "甲",
        vec![(
            "last_follow_up_at",
            Value::Timestamp(ts("2026-06-30T23:59:60.5Z")),
        )],
    )
    .await;
    add_customer(
        &store,
        8,
        "甲",
        vec![(
            "last_follow_up_at",
            Value::Timestamp(ts("2026-07-01T00:00:00.2Z")),
        )],
    )
    .await;
    assert_eq!(
        get(&store, Table::Customers, uid(7))
            .await
            .get("last_follow_up_at"),
        &Value::Timestamp(ts("2026-06-30T23:59:59.999999Z"))
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Ge, "2026-06-30T23:59:60.5Z")
        )
        .await,
        uids(&[7, 8])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Eq, "2026-06-30T23:59:60Z")
        )
        .await,
        uids(&[7])
    );
    assert_eq!(
        matching(
            &store,
            Table::Customers,
            at(CmpOp::Gt, "2026-06-30T23:59:60Z")
        )
        .await,
        uids(&[8])
    );
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// `Eq`, `Lt`, `Le`, `Gt`, `Ge` on text (case-sensitive, byte order), ints,
/// dates, ids and booleans.
pub async fn filter_comparisons_on_every_type(store: Arc<dyn Store>) {
    add_customer(
        &store,
        1,
        "Apple",
        vec![
            ("next_follow_up", Value::Date(date(2026, 5, 1))),
            ("owner_id", Value::Id(uid(0x01))),
        ],
    )
    .await;
    add_customer(
        &store,
        2,
        "apple",
        vec![
            ("next_follow_up", Value::Date(date(2026, 5, 2))),
            ("owner_id", Value::Id(uid(0x02))),
        ],
    )
    .await;
    add_customer(
        &store,
        3,
        "Banana",
        vec![("next_follow_up", Value::Date(date(2026, 5, 3)))],
    )
    .await;
    let c = Table::Customers;
    let name = |op, v: &str| cmp(column("name"), op, text(v));
    assert_eq!(
        matching(&store, c, name(CmpOp::Eq, "Apple")).await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, name(CmpOp::Eq, "APPLE")).await,
        uids(&[])
    );
    // Byte order: "Apple" < "Banana" < "apple".
    assert_eq!(
        matching(&store, c, name(CmpOp::Lt, "Banana")).await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, name(CmpOp::Le, "Banana")).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, name(CmpOp::Gt, "Banana")).await,
        uids(&[2])
    );
    assert_eq!(
        matching(&store, c, name(CmpOp::Ge, "Banana")).await,
        uids(&[2, 3])
    );
    let day = |op, d| cmp(column("next_follow_up"), op, Value::Date(d));
    assert_eq!(
        matching(&store, c, day(CmpOp::Lt, date(2026, 5, 2))).await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, day(CmpOp::Ge, date(2026, 5, 2))).await,
        uids(&[2, 3])
    );
    assert_eq!(
        matching(&store, c, day(CmpOp::Eq, date(2026, 5, 3))).await,
        uids(&[3])
    );
    assert_eq!(
        matching(&store, c, eq("owner_id", uid(0x02))).await,
        uids(&[2])
    );
    assert_eq!(
        matching(&store, c, cmp(column("version"), CmpOp::Ge, 1i64)).await,
        uids(&[1, 2, 3])
    );
    assert_eq!(
        matching(&store, c, cmp(column("version"), CmpOp::Gt, 1i64)).await,
        uids(&[])
    );

    let user = |n: u128, active: bool, failed: i64| {
        insert(
            Table::Users,
            uid(n),
            co_a(),
            vec![
                ("username", text(&format!("u{n}"))),
                ("active", Value::Bool(active)),
                ("failed_logins", Value::Int(failed)),
            ],
        )
    };
    apply_ok(
        &store,
        ops(vec![
            user(11, true, 0),
            user(12, false, 3),
            user(13, true, -2),
        ]),
    )
    .await;
    let u = Table::Users;
    assert_eq!(
        matching(&store, u, eq("active", true)).await,
        uids(&[11, 13])
    );
    assert_eq!(matching(&store, u, eq("active", false)).await, uids(&[12]));
    let failed = |op, n: i64| cmp(column("failed_logins"), op, n);
    assert_eq!(matching(&store, u, failed(CmpOp::Gt, 0)).await, uids(&[12]));
    assert_eq!(
        matching(&store, u, failed(CmpOp::Le, 0)).await,
        uids(&[11, 13])
    );
    assert_eq!(
        matching(&store, u, failed(CmpOp::Lt, -1)).await,
        uids(&[13])
    );
}

/// `Ne` is "is distinct from": rows whose column is NULL match it, and
/// `Ne NULL` matches the non-NULL rows. `Not` keeps SQL's three-valued
/// logic: `Not(Eq)` does not match NULL rows.
pub async fn filter_ne_matches_null_and_not_follows_sql(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![("level", text("A"))]).await;
    add_customer(&store, 2, "乙", vec![("level", text("B"))]).await;
    add_customer(&store, 3, "丙", vec![]).await;
    let c = Table::Customers;
    let level = |op, v: Value| cmp(column("level"), op, v);
    assert_eq!(
        matching(&store, c, level(CmpOp::Ne, text("A"))).await,
        uids(&[2, 3])
    );
    assert_eq!(
        matching(&store, c, level(CmpOp::Ne, Value::Null)).await,
        uids(&[1, 2])
    );
    assert_eq!(
        matching(&store, c, level(CmpOp::Eq, text("A"))).await,
        uids(&[1])
    );
    assert_eq!(
        matching(
            &store,
            c,
            Filter::Not(Box::new(level(CmpOp::Eq, text("A"))))
        )
        .await,
        uids(&[2])
    );
    assert_eq!(
        matching(
            &store,
            c,
            Filter::Not(Box::new(level(CmpOp::Ne, text("A"))))
        )
        .await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, cmp(column("owner_id"), CmpOp::Ne, uid(7))).await,
        uids(&[1, 2, 3])
    );
}

/// `In` matches any listed value; an empty list matches nothing and its
/// negation everything.
pub async fn filter_in_lists_and_empty_in(store: Arc<dyn Store>) {
    add_customer(
        &store,
        1,
        "甲",
        vec![("level", text("A")), ("owner_id", Value::Id(uid(0x01)))],
    )
    .await;
    add_customer(
        &store,
        2,
        "乙",
        vec![("level", text("B")), ("owner_id", Value::Id(uid(0x02)))],
    )
    .await;
    add_customer(&store, 3, "丙", vec![("level", text("C"))]).await;
    add_customer(&store, 4, "丁", vec![]).await;
    let c = Table::Customers;
    let is_in = |name, vs: Vec<Value>| Filter::In(column(name), vs);
    assert_eq!(
        matching(
            &store,
            c,
            is_in("level", vec![text("A"), text("C"), text("Z")])
        )
        .await,
        uids(&[1, 3])
    );
    assert_eq!(matching(&store, c, is_in("level", vec![])).await, uids(&[]));
    assert_eq!(
        matching(&store, c, Filter::Not(Box::new(is_in("level", vec![])))).await,
        uids(&[1, 2, 3, 4])
    );
    assert_eq!(
        matching(
            &store,
            c,
            is_in("owner_id", vec![Value::Id(uid(0x02)), Value::Id(uid(0x09))])
        )
        .await,
        uids(&[2])
    );
    assert_eq!(
        matching(&store, c, is_in("name", vec![text("丁"), text("甲")])).await,
        uids(&[1, 4])
    );
}

/// `Contains` ignores ASCII case (only: `É`, `Ä` and Cyrillic `Д` match
/// themselves, not their lower-case letters), treats `%`, `_` and `\`
/// literally, finds Chinese substrings and never matches NULL.
pub async fn filter_contains_is_ascii_case_insensitive_with_literal_wildcards(
    store: Arc<dyn Store>,
) {
    add_customer(&store, 1, "100% Pure", vec![("notes", text("note"))]).await;
    add_customer(&store, 2, "100 Pure", vec![]).await;
    add_customer(&store, 3, "a_b Co", vec![]).await;
    add_customer(&store, 4, "axb Co", vec![]).await;
    add_customer(&store, 5, r"back\slash", vec![]).await;
    add_customer(&store, 6, "HuaWei 华为技术", vec![]).await;
    add_customer(&store, 7, "École Ärger Дом", vec![]).await;
    add_customer(&store, 8, "école ärger дом", vec![]).await;
    let c = Table::Customers;
    let has = |needle: &str| Filter::Contains(column("name"), needle.to_owned());
    // Non-ASCII letters are compared as they are on both backends.
    assert_eq!(matching(&store, c, has("É")).await, uids(&[7]));
    assert_eq!(matching(&store, c, has("é")).await, uids(&[8]));
    assert_eq!(matching(&store, c, has("Är")).await, uids(&[7]));
    assert_eq!(matching(&store, c, has("äR")).await, uids(&[8]));
    assert_eq!(matching(&store, c, has("Д")).await, uids(&[7]));
    assert_eq!(matching(&store, c, has("д")).await, uids(&[8]));
    // ASCII letters next to them still fold.
    assert_eq!(matching(&store, c, has("éCOLE")).await, uids(&[8]));
    assert_eq!(matching(&store, c, has("%")).await, uids(&[1]));
    assert_eq!(matching(&store, c, has("0% p")).await, uids(&[1]));
    assert_eq!(matching(&store, c, has("_")).await, uids(&[3]));
    assert_eq!(matching(&store, c, has("A_B")).await, uids(&[3]));
    assert_eq!(matching(&store, c, has("\\")).await, uids(&[5]));
    assert_eq!(matching(&store, c, has("k\\S")).await, uids(&[5]));
    assert_eq!(matching(&store, c, has("PURE")).await, uids(&[1, 2]));
    assert_eq!(matching(&store, c, has("huawei")).await, uids(&[6]));
    assert_eq!(matching(&store, c, has("为技")).await, uids(&[6]));
    assert_eq!(matching(&store, c, has("华为 ")).await, uids(&[]));
    assert_eq!(
        matching(&store, c, has("")).await,
        uids(&[1, 2, 3, 4, 5, 6, 7, 8])
    );
    let notes = |needle: &str| Filter::Contains(column("notes"), needle.to_owned());
    assert_eq!(matching(&store, c, notes("")).await, uids(&[1]));
    assert_eq!(
        matching(&store, c, Filter::Not(Box::new(notes("x")))).await,
        uids(&[1])
    );
}

/// `StartsWith` is a literal, ASCII-case-insensitive prefix match:
/// non-ASCII letters (`É`, `Ä`, Cyrillic `Д`) match only themselves.
pub async fn filter_starts_with_is_a_literal_prefix(store: Arc<dyn Store>) {
    add_customer(&store, 1, "100% Pure", vec![]).await;
    add_customer(&store, 2, "100 Pure", vec![]).await;
    add_customer(&store, 3, "a_b Co", vec![]).await;
    add_customer(&store, 4, "axb Co", vec![]).await;
    add_customer(&store, 5, r"back\slash", vec![]).await;
    add_customer(&store, 6, "华为技术", vec![]).await;
    add_customer(&store, 7, "Éa", vec![]).await;
    add_customer(&store, 8, "éa", vec![]).await;
    add_customer(&store, 9, "Äb", vec![]).await;
    add_customer(&store, 10, "äb", vec![]).await;
    add_customer(&store, 11, "Дc", vec![]).await;
    add_customer(&store, 12, "дc", vec![]).await;
    let c = Table::Customers;
    let starts = |needle: &str| Filter::StartsWith(column("name"), needle.to_owned());
    assert_eq!(matching(&store, c, starts("É")).await, uids(&[7]));
    assert_eq!(matching(&store, c, starts("éA")).await, uids(&[8]));
    assert_eq!(matching(&store, c, starts("Ä")).await, uids(&[9]));
    assert_eq!(matching(&store, c, starts("äB")).await, uids(&[10]));
    assert_eq!(matching(&store, c, starts("Д")).await, uids(&[11]));
    assert_eq!(matching(&store, c, starts("дC")).await, uids(&[12]));
    assert_eq!(matching(&store, c, starts("100")).await, uids(&[1, 2]));
    assert_eq!(matching(&store, c, starts("100%")).await, uids(&[1]));
    assert_eq!(matching(&store, c, starts("pure")).await, uids(&[]));
    assert_eq!(matching(&store, c, starts("A_")).await, uids(&[3]));
    assert_eq!(matching(&store, c, starts("BACK\\")).await, uids(&[5]));
    assert_eq!(matching(&store, c, starts("华为")).await, uids(&[6]));
    assert_eq!(matching(&store, c, starts("为")).await, uids(&[]));
}

/// `IsNull` / `NotNull` on text and id columns.
pub async fn filter_is_null_and_not_null(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![("level", text("A"))]).await;
    add_customer(&store, 2, "乙", vec![("owner_id", Value::Id(uid(0x01)))]).await;
    add_customer(&store, 3, "丙", vec![("level", text(""))]).await;
    let c = Table::Customers;
    assert_eq!(
        matching(&store, c, Filter::IsNull(column("level"))).await,
        uids(&[2])
    );
    assert_eq!(
        matching(&store, c, Filter::NotNull(column("level"))).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, Filter::IsNull(column("owner_id"))).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, Filter::NotNull(column("owner_id"))).await,
        uids(&[2])
    );
}

/// `HoldsId` finds an id as a string inside a JSON column: an element of
/// an array (nested arrays too), a bare string, or a value nested in
/// objects; not a prefix of a string, not a key, not a number; it combines
/// with `Not`; a column that is not JSON (a text column, a custom field)
/// is refused.
pub async fn filter_holds_id_looks_inside_json_at_any_depth(store: Arc<dyn Store>) {
    let (r1, r2, r3) = (uid(0x71), uid(0x72), uid(0x73));
    let users = [
        (1, json!([r1.to_string(), r2.to_string()]), co_a()),
        (2, json!([r2.to_string()]), co_a()),
        (3, json!([]), co_a()),
        (4, json!([r1.to_string()]), co_b()),
        // The id as an object key or as part of a longer string is no hold.
        (5, json!([{ r1.to_string(): 1 }, format!("{r1}x")]), co_a()),
        // Numbers, booleans and null are not ids; nested arrays are looked into.
        (7, json!([1, true, null, [[r3.to_string()]]]), co_a()),
        // A bare string at the root.
        (8, json!(r3.to_string()), co_a()),
    ];
    for (n, roles, company) in users {
        add(
            &store,
            Table::Users,
            uid(n),
            company,
            vec![
                ("username", text(&format!("u{n}"))),
                ("role_ids", Value::Json(roles)),
            ],
        )
        .await;
    }
    let holds = |id: Uuid| Filter::HoldsId(column("role_ids"), id);
    let u = Table::Users;
    assert_eq!(matching(&store, u, holds(r1)).await, uids(&[1]));
    assert_eq!(matching(&store, u, holds(r2)).await, uids(&[1, 2]));
    assert_eq!(matching(&store, u, holds(r3)).await, uids(&[7, 8]));
    assert_eq!(
        matching(&store, u, Filter::Not(Box::new(holds(r2)))).await,
        uids(&[3, 5, 7, 8])
    );
    // Deep inside a document: an approval flow's steps.
    let definition = json!({"steps": [
        {"name": "a", "approvers": {"kind": "users", "users": [r3.to_string()]}},
        {"name": "b", "approvers": {"kind": "role", "role_id": r2.to_string()}},
    ]});
    add(
        &store,
        Table::ApprovalFlows,
        uid(6),
        co_a(),
        vec![("definition", Value::Json(definition))],
    )
    .await;
    let flows = |id: Uuid| Filter::HoldsId(column("definition"), id);
    let f = Table::ApprovalFlows;
    assert_eq!(matching(&store, f, flows(r2)).await, uids(&[6]));
    assert_eq!(matching(&store, f, flows(r3)).await, uids(&[6]));
    assert_eq!(matching(&store, f, flows(r1)).await, uids(&[]));
    // Only JSON columns hold ids (a custom field is not one).
    for col in [column("name"), custom("tags", CustomType::Text)] {
        let err = store
            .select(&filtered(
                Table::Customers,
                Filter::HoldsId(col.clone(), r1),
            ))
            .await
            .expect_err("no JSON column of ids");
        assert!(
            err.to_string().contains("JSON column"),
            "{col:?}: {err} ({err:?})"
        );
    }
}

/// `And([])` matches everything, `Or([])` nothing; combinations nest.
pub async fn filter_and_or_not_including_empty_lists(store: Arc<dyn Store>) {
    add_customer(
        &store,
        1,
        "甲",
        vec![("level", text("A")), ("city", text("北京"))],
    )
    .await;
    add_customer(
        &store,
        2,
        "乙",
        vec![("level", text("A")), ("city", text("上海"))],
    )
    .await;
    add_customer(
        &store,
        3,
        "丙",
        vec![("level", text("B")), ("city", text("北京"))],
    )
    .await;
    add_customer(
        &store,
        4,
        "丁",
        vec![("level", text("B")), ("city", text("广州"))],
    )
    .await;
    let c = Table::Customers;
    let not = |f| Filter::Not(Box::new(f));
    assert_eq!(matching(&store, c, Filter::True).await, uids(&[1, 2, 3, 4]));
    assert_eq!(
        matching(&store, c, Filter::And(vec![])).await,
        uids(&[1, 2, 3, 4])
    );
    assert_eq!(matching(&store, c, Filter::Or(vec![])).await, uids(&[]));
    assert_eq!(
        matching(&store, c, not(Filter::Or(vec![]))).await,
        uids(&[1, 2, 3, 4])
    );
    assert_eq!(
        matching(&store, c, not(Filter::And(vec![]))).await,
        uids(&[])
    );
    assert_eq!(matching(&store, c, not(Filter::True)).await, uids(&[]));
    let a = eq("level", "A");
    let beijing = eq("city", "北京");
    assert_eq!(
        matching(&store, c, Filter::And(vec![a.clone(), beijing.clone()])).await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, Filter::Or(vec![a.clone(), beijing.clone()])).await,
        uids(&[1, 2, 3])
    );
    assert_eq!(
        matching(&store, c, not(Filter::Or(vec![a.clone(), beijing.clone()]))).await,
        uids(&[4])
    );
    // (A and not 北京) or (B and 广州): operator precedence must not leak.
    let f = Filter::Or(vec![
        Filter::And(vec![a.clone(), not(beijing.clone())]),
        Filter::And(vec![eq("level", "B"), eq("city", "广州")]),
    ]);
    assert_eq!(matching(&store, c, f).await, uids(&[2, 4]));
    let f = Filter::And(vec![
        Filter::Or(vec![a, eq("city", "广州")]),
        Filter::Or(vec![beijing, eq("level", "B")]),
    ]);
    assert_eq!(matching(&store, c, f).await, uids(&[1, 4]));
}

/// `Related` matches rows with a live related row matching its filter
/// (deleted related rows do not count) and nests.
pub async fn filter_related_sees_live_children_and_nests(store: Arc<dyn Store>) {
    for (n, name) in [(1, "甲公司"), (2, "乙公司"), (3, "丙公司"), (4, "丁公司")] {
        add_customer(&store, n, name, vec![]).await;
    }
    let contact = |n: u128, customer: u128, name: &str, title: &str, deleted: bool| {
        let mut o = vec![
            ("customer_id", Value::Id(uid(customer))),
            ("name", text(name)),
            ("title", text(title)),
        ];
        if deleted {
            o.push(("deleted_at", Value::Timestamp(t0())));
        }
        insert(Table::Contacts, uid(n), co_a(), o)
    };
    let follow_up = |n: u128, customer: u128, contact: Option<u128>, channel: &str| {
        insert(
            Table::FollowUps,
            uid(n),
            co_a(),
            vec![
                ("customer_id", Value::Id(uid(customer))),
                ("contact_id", contact.map(uid).into()),
                ("channel", text(channel)),
            ],
        )
    };
    apply_ok(
        &store,
        ops(vec![
            contact(11, 1, "张三", "CEO", false),
            contact(12, 1, "李四", "CTO", false),
            contact(13, 2, "王五", "CEO", true),
            contact(14, 2, "赵六", "Sales", false),
            contact(15, 4, "张伟", "CFO", false),
            follow_up(21, 1, Some(12), "visit"),
            follow_up(22, 2, Some(14), "call"),
            follow_up(23, 4, None, "visit"),
            follow_up(24, 2, Some(13), "visit"),
        ]),
    )
    .await;
    let c = Table::Customers;
    let contacts = |f| Filter::Related {
        table: Table::Contacts,
        fk: "customer_id",
        filter: Box::new(f),
    };
    let follow_ups_of_contact = |f| Filter::Related {
        table: Table::FollowUps,
        fk: "contact_id",
        filter: Box::new(f),
    };
    assert_eq!(
        matching(&store, c, contacts(Filter::True)).await,
        uids(&[1, 2, 4])
    );
    assert_eq!(
        matching(&store, c, Filter::Not(Box::new(contacts(Filter::True)))).await,
        uids(&[3])
    );
    assert_eq!(
        matching(
            &store,
            c,
            contacts(Filter::StartsWith(column("name"), "张".into()))
        )
        .await,
        uids(&[1, 4])
    );
    // 王五 (CEO of 乙) is deleted.
    assert_eq!(
        matching(&store, c, contacts(eq("title", "CEO"))).await,
        uids(&[1])
    );
    // Two conditions on the same related row, not on any two rows.
    let same_row = contacts(Filter::And(vec![eq("name", "张三"), eq("title", "CTO")]));
    assert_eq!(matching(&store, c, same_row).await, uids(&[]));
    let two_rows = Filter::And(vec![
        contacts(eq("name", "张三")),
        contacts(eq("title", "CTO")),
    ]);
    assert_eq!(matching(&store, c, two_rows).await, uids(&[1]));
    // Nested: customers with a contact that has a visit follow-up; 乙's visit
    // belongs to the deleted 王五, 丁's visit has no contact.
    let nested = contacts(follow_ups_of_contact(eq("channel", "visit")));
    assert_eq!(matching(&store, c, nested).await, uids(&[1]));
    let nested = contacts(follow_ups_of_contact(Filter::In(
        column("channel"),
        vec![text("visit"), text("call")],
    )));
    assert_eq!(matching(&store, c, nested).await, uids(&[1, 2]));
    let direct = Filter::Related {
        table: Table::FollowUps,
        fk: "customer_id",
        filter: Box::new(eq("channel", "visit")),
    };
    assert_eq!(matching(&store, c, direct).await, uids(&[1, 2, 4]));
    let combined = Filter::And(vec![
        contacts(Filter::True),
        Filter::Contains(column("name"), "丁".into()),
    ]);
    assert_eq!(matching(&store, c, combined).await, uids(&[4]));
}

fn custom_rows() -> Vec<(u128, serde_json::Value)> {
    vec![
        (
            1,
            json!({"region": "华东", "score": 12.5, "vip": true, "since": "2024-05-01"}),
        ),
        (
            2,
            json!({"region": "华北", "score": 9, "vip": false, "since": "2023-01-15"}),
        ),
        (3, json!({"region": "华东", "score": 100})),
        (4, json!({})),
        (5, json!({"region": 7, "score": "high", "vip": "yes"})),
        (6, json!({"region": null, "score": 9.0})),
    ]
}

async fn add_custom_rows(store: &Arc<dyn Store>) {
    for (n, custom) in custom_rows() {
        add_customer(
            store,
            n,
            &format!("客户{n}"),
            vec![("custom", Value::Json(custom))],
        )
        .await;
    }
}

/// Custom fields compare by their declared type; missing keys, JSON null
/// and values of another JSON type compare as NULL.
pub async fn filter_custom_text_number_bool(store: Arc<dyn Store>) {
    add_custom_rows(&store).await;
    let c = Table::Customers;
    let region = || custom("region", CustomType::Text);
    let score = || custom("score", CustomType::Number);
    let vip = || custom("vip", CustomType::Bool);
    assert_eq!(
        matching(&store, c, cmp(region(), CmpOp::Eq, "华东")).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, cmp(region(), CmpOp::Ne, "华东")).await,
        uids(&[2, 4, 5, 6])
    );
    assert_eq!(
        matching(&store, c, Filter::IsNull(region())).await,
        uids(&[4, 5, 6])
    );
    assert_eq!(
        matching(&store, c, Filter::NotNull(region())).await,
        uids(&[1, 2, 3])
    );
    assert_eq!(
        matching(&store, c, Filter::Contains(region(), "东".into())).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, Filter::StartsWith(region(), "华".into())).await,
        uids(&[1, 2, 3])
    );
    // Numeric, not textual: 100 > 10 and 9 < 10.
    assert_eq!(
        matching(&store, c, cmp(score(), CmpOp::Gt, 10i64)).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, cmp(score(), CmpOp::Lt, Value::Float(10.0))).await,
        uids(&[2, 6])
    );
    assert_eq!(
        matching(&store, c, cmp(score(), CmpOp::Ge, Value::Float(12.5))).await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, cmp(score(), CmpOp::Eq, 9i64)).await,
        uids(&[2, 6])
    );
    assert_eq!(
        matching(&store, c, cmp(score(), CmpOp::Ne, Value::Float(9.0))).await,
        uids(&[1, 3, 4, 5])
    );
    assert_eq!(
        matching(&store, c, Filter::IsNull(score())).await,
        uids(&[4, 5])
    );
    assert_eq!(
        matching(
            &store,
            c,
            Filter::In(score(), vec![Value::Int(100), Value::Float(12.5)])
        )
        .await,
        uids(&[1, 3])
    );
    assert_eq!(
        matching(&store, c, cmp(vip(), CmpOp::Eq, true)).await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, cmp(vip(), CmpOp::Eq, false)).await,
        uids(&[2])
    );
    assert_eq!(
        matching(&store, c, cmp(vip(), CmpOp::Ne, true)).await,
        uids(&[2, 3, 4, 5, 6])
    );
    assert_eq!(
        matching(&store, c, Filter::IsNull(vip())).await,
        uids(&[3, 4, 5, 6])
    );
    // Dates kept as `YYYY-MM-DD` text compare as text.
    let since = || custom("since", CustomType::Text);
    assert_eq!(
        matching(
            &store,
            c,
            cmp(since(), CmpOp::Ge, Value::Date(date(2024, 1, 1)))
        )
        .await,
        uids(&[1])
    );
    assert_eq!(
        matching(&store, c, cmp(since(), CmpOp::Lt, text("2024-01-01"))).await,
        uids(&[2])
    );
    // A key nobody has.
    assert_eq!(
        matching(
            &store,
            c,
            Filter::NotNull(custom("nobody", CustomType::Text))
        )
        .await,
        uids(&[])
    );
}

/// Sorting by custom fields: numbers numerically, text byte-wise, NULLs
/// (missing, JSON null, other type) last, ascending and descending alike.
pub async fn sort_by_custom_fields(store: Arc<dyn Store>) {
    add_custom_rows(&store).await;
    let c = Table::Customers;
    let score = || custom("score", CustomType::Number);
    assert_eq!(
        ids(&store, &sorted(c, vec![asc(score())])).await,
        uids(&[2, 6, 1, 3, 4, 5])
    );
    assert_eq!(
        ids(&store, &sorted(c, vec![desc(score())])).await,
        uids(&[3, 1, 2, 6, 4, 5])
    );
    // 华东 (E4 B8 9C) < 华北 (E5 8C 97) in byte order.
    let region = || custom("region", CustomType::Text);
    assert_eq!(
        ids(&store, &sorted(c, vec![asc(region())])).await,
        uids(&[1, 3, 2, 4, 5, 6])
    );
    assert_eq!(
        ids(&store, &sorted(c, vec![asc(region()), desc(score())])).await,
        uids(&[3, 1, 2, 6, 4, 5])
    );
    let vip = || custom("vip", CustomType::Bool);
    assert_eq!(
        ids(&store, &sorted(c, vec![desc(vip())])).await,
        uids(&[1, 2, 3, 4, 5, 6])
    );
}

// ---------------------------------------------------------------------------
// Company, scope, lifecycle
// ---------------------------------------------------------------------------

/// A select sees only its company's rows; `get` reads by id regardless.
pub async fn companies_are_isolated(store: Arc<dyn Store>) {
    add(
        &store,
        Table::Customers,
        uid(1),
        co_a(),
        vec![("name", text("甲"))],
    )
    .await;
    add(
        &store,
        Table::Customers,
        uid(2),
        co_b(),
        vec![("name", text("甲"))],
    )
    .await;
    add(
        &store,
        Table::Customers,
        uid(3),
        co_a(),
        vec![("name", text("乙"))],
    )
    .await;
    add(&store, Table::Departments, uid(4), co_b(), vec![]).await;
    assert_eq!(
        ids(&store, &sel(Table::Customers, co_a())).await,
        uids(&[1, 3])
    );
    assert_eq!(
        ids(&store, &sel(Table::Customers, co_b())).await,
        uids(&[2])
    );
    let any_b = Select {
        lifecycle: Lifecycle::Any,
        filter: eq("name", "甲"),
        with_total: true,
        ..sel(Table::Customers, co_b())
    };
    let page = select(&store, &any_b).await;
    assert_eq!(
        page.rows.iter().map(Row::id).collect::<Vec<_>>(),
        uids(&[2])
    );
    assert_eq!(page.total, Some(1));
    assert_eq!(
        ids(&store, &sel(Table::Departments, co_a())).await,
        uids(&[])
    );
    assert_eq!(
        ids(&store, &sel(Table::Customers, uid(0xDEAD))).await,
        uids(&[])
    );
    assert_eq!(
        get(&store, Table::Customers, uid(2))
            .await
            .get("company_id"),
        &Value::Id(co_b())
    );
}

/// `Scope::Restricted` grants rows by owner, department or live unexpired
/// share (of the same entity, to the same user); no grants see nothing;
/// scope is ignored on tables that are not owned.
pub async fn scope_restricts_by_owner_department_and_share(store: Arc<dyn Store>) {
    let (u1, u2, u3) = (uid(0x0101), uid(0x0102), uid(0x0103));
    let (d1, d2) = (uid(0x0D01), uid(0x0D02));
    let customer = |n: u128, owner: Option<Uuid>, dept: Option<Uuid>| {
        insert(
            Table::Customers,
            uid(n),
            co_a(),
            vec![
                ("name", text(&format!("c{n}"))),
                ("owner_id", owner.into()),
                ("department_id", dept.into()),
            ],
        )
    };
    let share =
        |n: u128, entity: &str, record: u128, user: Uuid, expires: Option<&str>, deleted: bool| {
            let mut o = vec![
                ("entity", text(entity)),
                ("record_id", Value::Id(uid(record))),
                ("user_id", Value::Id(user)),
                ("access", text("read")),
                ("granted_by", Value::Id(u3)),
                ("expires_at", expires.map(ts).into()),
            ];
            if deleted {
                o.push(("deleted_at", Value::Timestamp(t0())));
            }
            insert(Table::Shares, uid(n), co_a(), o)
        };
    apply_ok(
        &store,
        ops(vec![
            customer(1, Some(u1), Some(d1)),
            customer(2, Some(u2), Some(d2)),
            customer(3, None, Some(d1)),
            customer(4, Some(u3), None),
            customer(5, Some(u3), None),
            customer(6, Some(u3), None),
            customer(7, Some(u3), None),
            customer(8, Some(u3), None),
            customer(9, Some(u3), None),
            customer(10, Some(u3), None),
            share(0x51, "customers", 4, u1, None, false),
            share(
                0x52,
                "customers",
                5,
                u1,
                Some("2026-05-31T12:00:00Z"),
                false,
            ),
            share(
                0x53,
                "customers",
                6,
                u1,
                Some("2026-06-01T12:00:00.000001Z"),
                false,
            ),
            share(0x54, "customers", 7, u1, None, true),
            share(0x55, "customers", 8, u2, None, false),
            share(0x56, "contacts", 9, u1, None, false),
            // Expiring exactly now is expired.
            share(
                0x57,
                "customers",
                10,
                u1,
                Some("2026-06-01T12:00:00Z"),
                false,
            ),
        ]),
    )
    .await;
    let scoped = |owners: Vec<Uuid>,
                  departments: Vec<Uuid>,
                  shared_with: Option<Uuid>,
                  filter: Filter| Select {
        scope: Scope::Restricted {
            owners,
            departments,
            shared_with,
        },
        filter,
        with_total: true,
        ..sel(Table::Customers, co_a())
    };
    let check = |s: Select, expected: Vec<Uuid>| {
        let store = store.clone();
        async move {
            let page = select(&store, &s).await;
            assert_eq!(
                page.rows.iter().map(Row::id).collect::<Vec<_>>(),
                expected,
                "{:?}",
                s.scope
            );
            assert_eq!(
                page.total,
                Some(expected.len() as u64),
                "total under {:?}",
                s.scope
            );
        }
    };
    let all = Select {
        scope: Scope::All,
        with_total: true,
        ..sel(Table::Customers, co_a())
    };
    check(all, uids(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).await;
    check(scoped(vec![u1], vec![], None, Filter::True), uids(&[1])).await;
    check(scoped(vec![], vec![d1], None, Filter::True), uids(&[1, 3])).await;
    check(
        scoped(vec![u2], vec![d1], None, Filter::True),
        uids(&[1, 2, 3]),
    )
    .await;
    check(
        scoped(vec![], vec![], Some(u1), Filter::True),
        uids(&[4, 6]),
    )
    .await;
    check(scoped(vec![], vec![], Some(u2), Filter::True), uids(&[8])).await;
    check(
        scoped(vec![u1], vec![], Some(u1), Filter::True),
        uids(&[1, 4, 6]),
    )
    .await;
    check(scoped(vec![], vec![], None, Filter::True), uids(&[])).await;
    check(
        scoped(vec![u3], vec![d1, d2], Some(u1), Filter::True),
        uids(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    )
    .await;
    // The grants are one group: the filter applies to all of them.
    check(
        scoped(vec![u1], vec![d1], Some(u1), eq("name", "c3")),
        uids(&[3]),
    )
    .await;
    check(
        scoped(vec![u1], vec![d1], Some(u1), eq("name", "c2")),
        uids(&[]),
    )
    .await;
    // Not an owned table: the scope is ignored.
    let users = Select {
        scope: Scope::Restricted {
            owners: vec![],
            departments: vec![],
            shared_with: None,
        },
        ..sel(Table::Shares, co_a())
    };
    assert_eq!(
        ids(&store, &users).await,
        uids(&[0x51, 0x52, 0x53, 0x55, 0x56, 0x57])
    );
}

/// Active = not deleted and not archived; Deleted = deleted (archived or
/// not); Archived = archived and not deleted; Any = all. Tables that are
/// not owned have no archive.
pub async fn lifecycle_selects_active_deleted_archived_any(store: Arc<dyn Store>) {
    let deleted = ("deleted_at", Value::Timestamp(ts("2026-04-01T00:00:00Z")));
    let archived = ("archived_at", Value::Timestamp(ts("2026-04-02T00:00:00Z")));
    add_customer(&store, 1, "live", vec![]).await;
    add_customer(&store, 2, "deleted", vec![deleted.clone()]).await;
    add_customer(&store, 3, "archived", vec![archived.clone()]).await;
    add_customer(&store, 4, "both", vec![deleted.clone(), archived]).await;
    add(&store, Table::Departments, uid(11), co_a(), vec![]).await;
    add(&store, Table::Departments, uid(12), co_a(), vec![deleted]).await;
    let with = |table, lifecycle| Select {
        lifecycle,
        with_total: true,
        ..sel(table, co_a())
    };
    for (table, lifecycle, expected) in [
        (Table::Customers, Lifecycle::Active, uids(&[1])),
        (Table::Customers, Lifecycle::Deleted, uids(&[2, 4])),
        (Table::Customers, Lifecycle::Archived, uids(&[3])),
        (Table::Customers, Lifecycle::Any, uids(&[1, 2, 3, 4])),
        (Table::Departments, Lifecycle::Active, uids(&[11])),
        (Table::Departments, Lifecycle::Deleted, uids(&[12])),
        (Table::Departments, Lifecycle::Archived, uids(&[])),
        (Table::Departments, Lifecycle::Any, uids(&[11, 12])),
    ] {
        let page = select(&store, &with(table, lifecycle)).await;
        assert_eq!(
            page.rows.iter().map(Row::id).collect::<Vec<_>>(),
            expected,
            "{table} {lifecycle:?}"
        );
        assert_eq!(
            page.total,
            Some(expected.len() as u64),
            "{table} {lifecycle:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Sorting and paging
// ---------------------------------------------------------------------------

/// NULL sorts last, ascending and descending alike (blanks after every
/// value, as spreadsheets show them); `id` ascending breaks ties in both
/// directions.
pub async fn sort_puts_nulls_last_both_ways(store: Arc<dyn Store>) {
    for (n, level, name) in [
        (5, Some("B"), "x"),
        (2, None, "y"),
        (3, Some("A"), "z"),
        (4, None, "x"),
        (1, Some("B"), "y"),
    ] {
        let mut o = vec![];
        if let Some(l) = level {
            o.push(("level", text(l)));
        }
        add_customer(&store, n, name, o).await;
    }
    let c = Table::Customers;
    assert_eq!(
        ids(&store, &sorted(c, vec![])).await,
        uids(&[1, 2, 3, 4, 5])
    );
    assert_eq!(
        ids(&store, &sorted(c, vec![asc(column("level"))])).await,
        uids(&[3, 1, 5, 2, 4])
    );
    assert_eq!(
        ids(&store, &sorted(c, vec![desc(column("level"))])).await,
        uids(&[1, 5, 3, 2, 4])
    );
    assert_eq!(
        ids(
            &store,
            &sorted(c, vec![asc(column("level")), desc(column("name"))])
        )
        .await,
        uids(&[3, 1, 5, 2, 4])
    );
    assert_eq!(
        ids(
            &store,
            &sorted(c, vec![desc(column("level")), desc(column("name"))])
        )
        .await,
        uids(&[1, 5, 3, 2, 4])
    );
    assert_eq!(
        ids(
            &store,
            &sorted(c, vec![asc(column("name")), asc(column("level"))])
        )
        .await,
        uids(&[5, 4, 1, 2, 3])
    );
    assert_eq!(
        ids(&store, &sorted(c, vec![desc(column("id"))])).await,
        uids(&[5, 4, 3, 2, 1])
    );
}

/// Text sorts by UTF-8 bytes: digits, upper case, `_`, lower case, Latin-1,
/// then CJK by code point.
pub async fn sort_text_is_byte_order(store: Arc<dyn Store>) {
    let names = [
        "北京", "上海", "广州", "Apple", "apple", "Zebra", "Ärger", "_x", "10", "9", "华为", "华东",
    ];
    for (i, name) in names.iter().enumerate() {
        add_customer(&store, i as u128 + 1, name, vec![]).await;
    }
    let expected = [
        "10", "9", "Apple", "Zebra", "_x", "apple", "Ärger", "上海", "北京", "华东", "华为", "广州",
    ];
    let mut by_bytes = names.to_vec();
    by_bytes.sort_unstable();
    assert_eq!(
        by_bytes, expected,
        "scenario bug: expected list not in byte order"
    );
    let read = |rows: Vec<Row>| {
        rows.iter()
            .map(|r| r.get("name").as_text().unwrap_or("?").to_owned())
            .collect::<Vec<_>>()
    };
    let s = sorted(Table::Customers, vec![asc(column("name"))]);
    assert_eq!(read(select(&store, &s).await.rows), expected);
    let s = sorted(Table::Customers, vec![desc(column("name"))]);
    let mut reversed = expected.to_vec();
    reversed.reverse();
    assert_eq!(read(select(&store, &s).await.rows), reversed);
    let between = Filter::And(vec![
        cmp(column("name"), CmpOp::Gt, "Zebra"),
        cmp(column("name"), CmpOp::Lt, "北京"),
    ]);
    let s = Select {
        filter: between,
        ..sorted(Table::Customers, vec![asc(column("name"))])
    };
    assert_eq!(
        read(select(&store, &s).await.rows),
        ["_x", "apple", "Ärger", "上海"]
    );
}

/// Offset paging returns the right slices; `has_more` tells whether rows
/// follow the page.
pub async fn offset_paging_pages_and_has_more(store: Arc<dyn Store>) {
    for n in 1..=10u128 {
        add_customer(&store, n, &format!("客户{:02}", 11 - n), vec![]).await;
    }
    let page = |offset, limit| Select {
        paging: Paging::Offset { offset, limit },
        ..sorted(Table::Customers, vec![asc(column("name"))])
    };
    for (offset, limit, expected, more) in [
        (0, 4, uids(&[10, 9, 8, 7]), true),
        (4, 4, uids(&[6, 5, 4, 3]), true),
        (8, 4, uids(&[2, 1]), false),
        (10, 4, uids(&[]), false),
        (25, 4, uids(&[]), false),
        (0, 10, uids(&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]), false),
        (9, 1, uids(&[1]), false),
        (3, 2, uids(&[7, 6]), true),
    ] {
        let got = select(&store, &page(offset, limit)).await;
        assert_eq!(
            got.rows.iter().map(Row::id).collect::<Vec<_>>(),
            expected,
            "offset {offset} limit {limit}"
        );
        assert_eq!(
            got.has_more, more,
            "has_more at offset {offset} limit {limit}"
        );
        assert_eq!(got.total, None, "no total unless asked");
    }
    let all = select(&store, &sorted(Table::Customers, vec![])).await;
    assert!(!all.has_more, "Paging::All never has more");
}

/// Keyset paging with a multi-key, mixed-direction sort over keys with ties
/// and NULLs, at several page sizes, reproduces the full sorted list.
pub async fn keyset_paging_with_mixed_directions_equals_full_list(store: Arc<dyn Store>) {
    let levels = [Some("A"), Some("B"), None, Some("C")];
    let mut rows = Vec::new();
    let mut changes = ChangeSet::default();
    for i in 0..23u128 {
        let n = 100 + (i * 37) % 23; // ids not in insertion order
        let level = levels[(i as usize * 7) % 4];
        let day = (i % 5 != 0).then(|| date(2026, 1, 1 + ((i * 3) % 4) as u32));
        let name = format!("客户{}", (i * 11) % 6);
        changes.ops.push(insert(
            Table::Customers,
            uid(n),
            co_a(),
            vec![
                ("name", text(&name)),
                ("level", level.map(text).unwrap_or(Value::Null)),
                ("next_follow_up", day.into()),
            ],
        ));
        rows.push((level, day, name, uid(n)));
    }
    // One deleted row and one of another company that must never show up.
    changes.ops.push(insert(
        Table::Customers,
        uid(999),
        co_a(),
        vec![("deleted_at", Value::Timestamp(t0()))],
    ));
    changes
        .ops
        .push(insert(Table::Customers, uid(998), co_b(), vec![]));
    apply_ok(&store, changes).await;

    rows.sort_by(|a, b| {
        nulls_last(&a.0, &b.0)
            .then_with(|| nulls_last_desc(&a.1, &b.1))
            .then_with(|| a.2.as_bytes().cmp(b.2.as_bytes()))
            .then_with(|| a.3.cmp(&b.3))
    });
    let expected: Vec<Uuid> = rows.iter().map(|r| r.3).collect();
    let sort = vec![
        asc(column("level")),
        desc(column("next_follow_up")),
        asc(column("name")),
    ];
    let base = sorted(Table::Customers, sort);
    assert_eq!(ids(&store, &base).await, expected, "Paging::All order");
    for limit in [1, 2, 3, 5, 22, 23, 50] {
        assert_eq!(
            walk_keyset(&store, &base, limit, 23).await,
            expected,
            "keyset pages of {limit}"
        );
    }
    // With a filter, the keyset condition and the filter combine.
    let filtered = Select {
        filter: cmp(column("level"), CmpOp::Ne, "C"),
        ..base.clone()
    };
    let expected: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.0 != Some("C"))
        .map(|r| r.3)
        .collect();
    assert_eq!(ids(&store, &filtered).await, expected);
    for limit in [1, 4] {
        assert_eq!(
            walk_keyset(&store, &filtered, limit, expected.len() as u64).await,
            expected,
            "filtered pages of {limit}"
        );
    }
    // Descending on every key, too, NULLs still last.
    let all_desc = sorted(
        Table::Customers,
        vec![desc(column("level")), desc(column("name"))],
    );
    rows.sort_by(|a, b| {
        nulls_last_desc(&a.0, &b.0)
            .then_with(|| b.2.as_bytes().cmp(a.2.as_bytes()))
            .then_with(|| a.3.cmp(&b.3))
    });
    let full: Vec<Uuid> = rows.iter().map(|r| r.3).collect();
    assert_eq!(ids(&store, &all_desc).await, full);
    for limit in [1, 4] {
        assert_eq!(walk_keyset(&store, &all_desc, limit, 23).await, full);
    }
}

/// Keyset paging over a custom number field (with ties between `9` and
/// `9.0` and NULLs) reproduces the full list.
pub async fn keyset_paging_over_a_custom_field(store: Arc<dyn Store>) {
    add_custom_rows(&store).await;
    add_customer(
        &store,
        7,
        "客户7",
        vec![("custom", Value::Json(json!({"score": 12.5})))],
    )
    .await;
    let base = sorted(
        Table::Customers,
        vec![desc(custom("score", CustomType::Number))],
    );
    let expected = uids(&[3, 1, 7, 2, 6, 4, 5]);
    assert_eq!(ids(&store, &base).await, expected);
    for limit in [1, 2, 3] {
        assert_eq!(
            walk_keyset(&store, &base, limit, 7).await,
            expected,
            "pages of {limit}"
        );
    }
    let base = sorted(
        Table::Customers,
        vec![
            asc(custom("region", CustomType::Text)),
            asc(custom("score", CustomType::Number)),
        ],
    );
    let expected = uids(&[1, 3, 2, 6, 7, 4, 5]);
    assert_eq!(ids(&store, &base).await, expected);
    assert_eq!(walk_keyset(&store, &base, 2, 7).await, expected);
}

/// `total` counts every row matching company, lifecycle, scope and filter,
/// whatever page is read.
pub async fn with_total_counts_all_matches_regardless_of_paging(store: Arc<dyn Store>) {
    for n in 1..=10u128 {
        let level = if n % 3 == 0 { "B" } else { "A" };
        add_customer(
            &store,
            n,
            &format!("客户{n:02}"),
            vec![("level", text(level))],
        )
        .await;
    }
    add_customer(
        &store,
        11,
        "deleted",
        vec![("level", text("A")), ("deleted_at", Value::Timestamp(t0()))],
    )
    .await;
    let base = Select {
        filter: eq("level", "A"),
        with_total: true,
        ..sorted(Table::Customers, vec![asc(column("name"))])
    };
    let all = select(&store, &base).await;
    assert_eq!(all.rows.len(), 7);
    assert_eq!(all.total, Some(7));
    let offset = select(
        &store,
        &Select {
            paging: Paging::Offset {
                offset: 2,
                limit: 3,
            },
            ..base.clone()
        },
    )
    .await;
    assert_eq!(
        offset.rows.iter().map(Row::id).collect::<Vec<_>>(),
        uids(&[4, 5, 7])
    );
    assert_eq!(offset.total, Some(7));
    let beyond = select(
        &store,
        &Select {
            paging: Paging::Offset {
                offset: 50,
                limit: 3,
            },
            ..base.clone()
        },
    )
    .await;
    assert_eq!((beyond.rows.len(), beyond.total), (0, Some(7)));
    // A page of no rows is a count alone; it says whether rows lie past
    // its offset.
    for (offset, more) in [(0, true), (6, true), (7, false)] {
        let count = Select {
            paging: Paging::Offset { offset, limit: 0 },
            ..base.clone()
        };
        assert!(count.counts_only());
        let counted = select(&store, &count).await;
        assert_eq!(
            (counted.rows.len(), counted.total, counted.has_more),
            (0, Some(7), more),
            "offset {offset}"
        );
    }
    let third = &all.rows[2];
    let keyset = Select {
        paging: Paging::Keyset {
            after: Some(cursor(third, &base.sort)),
            limit: 2,
        },
        ..base.clone()
    };
    let page = select(&store, &keyset).await;
    assert_eq!(
        page.rows.iter().map(Row::id).collect::<Vec<_>>(),
        uids(&[5, 7])
    );
    assert_eq!((page.has_more, page.total), (true, Some(7)));
    let none = select(
        &store,
        &Select {
            with_total: false,
            ..base.clone()
        },
    )
    .await;
    assert_eq!(none.total, None);
    let nothing = select(
        &store,
        &Select {
            filter: eq("level", "Z"),
            ..base
        },
    )
    .await;
    assert_eq!((nothing.rows.len(), nothing.total), (0, Some(0)));
}

// ---------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------

/// An update sets the given columns and `version = expected + 1`, leaving
/// every other column as it was.
pub async fn update_bumps_version_and_sets_only_given_columns(store: Arc<dyn Store>) {
    add_customer(
        &store,
        1,
        "旧名",
        vec![
            ("level", text("A")),
            ("city", text("北京")),
            ("custom", Value::Json(json!({"k": 1}))),
        ],
    )
    .await;
    let before = get(&store, Table::Customers, uid(1)).await;
    assert_eq!(before.version(), 1);
    let later = ts("2026-03-02T09:30:00.250000Z");
    let update = |expected_version, values| Op::Update {
        table: Table::Customers,
        id: uid(1),
        expected_version,
        values,
    };
    apply_ok(
        &store,
        ops(vec![update(
            1,
            vec![
                ("name", text("新名")),
                ("level", Value::Null),
                ("updated_at", Value::Timestamp(later)),
                ("custom", Value::Json(json!({"k": 2, "区域": "华南"}))),
            ],
        )]),
    )
    .await;
    let after = get(&store, Table::Customers, uid(1)).await;
    let mut expected = before.clone();
    expected.set("version", Value::Int(2));
    expected.set("name", text("新名"));
    expected.set("level", Value::Null);
    expected.set("updated_at", Value::Timestamp(later));
    expected.set("custom", Value::Json(json!({"k": 2, "区域": "华南"})));
    assert_eq!(after, expected);
    apply_ok(&store, ops(vec![update(2, vec![])])).await;
    let bumped = get(&store, Table::Customers, uid(1)).await;
    expected.set("version", Value::Int(3));
    assert_eq!(
        bumped, expected,
        "an update with no values only bumps the version"
    );
}

/// A stale expected version fails with `Conflict` carrying both versions,
/// and nothing of the change set is applied: not an earlier insert, not the
/// audit entries, not the outbox events.
pub async fn stale_update_conflicts_and_nothing_of_the_change_set_is_applied(
    store: Arc<dyn Store>,
) {
    add_customer(&store, 1, "甲", vec![]).await;
    apply_ok(
        &store,
        ChangeSet {
            guards: Vec::new(),
            ops: vec![Op::Update {
                table: Table::Customers,
                id: uid(1),
                expected_version: 1,
                values: vec![("name", text("甲2"))],
            }],
            audit: vec![audit(
                uid(1),
                Table::Customers,
                "update",
                "2026-03-01T09:00:00Z",
                vec![],
            )],
            events: vec![event(
                uid(1),
                "customer.updated",
                json!({"n": 1}),
                "2026-03-01T09:00:00Z",
            )],
        },
    )
    .await;
    let stale = ChangeSet {
        guards: Vec::new(),
        ops: vec![
            insert(Table::Customers, uid(2), co_a(), vec![("name", text("乙"))]),
            Op::Update {
                table: Table::Customers,
                id: uid(1),
                expected_version: 1,
                values: vec![("name", text("甲3"))],
            },
        ],
        audit: vec![
            audit(
                uid(2),
                Table::Customers,
                "create",
                "2026-03-01T10:00:00Z",
                vec![],
            ),
            audit(
                uid(1),
                Table::Customers,
                "update",
                "2026-03-01T10:00:00Z",
                vec![],
            ),
        ],
        events: vec![
            event(
                uid(2),
                "customer.created",
                json!({}),
                "2026-03-01T10:00:00Z",
            ),
            event(
                uid(1),
                "customer.updated",
                json!({"n": 2}),
                "2026-03-01T10:00:00Z",
            ),
        ],
    };
    match apply_err(&store, stale).await {
        StoreError::Conflict {
            table,
            id,
            expected,
            actual,
        } => assert_eq!(
            (table, id, expected, actual),
            (Table::Customers, uid(1), 1, 2)
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.get(Table::Customers, uid(2)).await.ok().flatten(),
        None,
        "the insert was rolled back"
    );
    let row = get(&store, Table::Customers, uid(1)).await;
    assert_eq!((row.get("name"), row.version()), (&text("甲2"), 2));
    let history = store
        .history(Table::Customers, uid(1))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history.len(), 1, "only the first change set's audit entry");
    let history = store
        .history(Table::Customers, uid(2))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history, vec![]);
    let pending = store
        .outbox_pending("c", 100)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"));
    assert_eq!(
        pending
            .iter()
            .map(|e| e.event.payload.to_value())
            .collect::<Vec<_>>(),
        vec![json!({"n": 1})]
    );
}

/// Updating or deleting a row that does not exist is `NotFound`, and the
/// change set is rolled back.
pub async fn update_or_delete_of_missing_row_is_not_found(store: Arc<dyn Store>) {
    let update = ChangeSet {
        ops: vec![
            insert(Table::Customers, uid(1), co_a(), vec![]),
            Op::Update {
                table: Table::Customers,
                id: uid(42),
                expected_version: 1,
                values: vec![("name", text("x"))],
            },
        ],
        events: vec![event(
            uid(1),
            "customer.created",
            json!({}),
            "2026-03-01T10:00:00Z",
        )],
        ..ChangeSet::default()
    };
    match apply_err(&store, update).await {
        StoreError::NotFound { table, id } => assert_eq!((table, id), (Table::Customers, uid(42))),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let delete = ops(vec![
        insert(Table::Customers, uid(1), co_a(), vec![]),
        Op::Delete {
            table: Table::Contacts,
            id: uid(43),
        },
    ]);
    match apply_err(&store, delete).await {
        StoreError::NotFound { table, id } => assert_eq!((table, id), (Table::Contacts, uid(43))),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        store.get(Table::Customers, uid(1)).await.ok().flatten(),
        None
    );
    let pending = store
        .outbox_pending("c", 100)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"));
    assert_eq!(pending, vec![]);
    // The same id in another table is another row.
    add_customer(&store, 5, "甲", vec![]).await;
    let wrong_table = ops(vec![Op::Update {
        table: Table::Departments,
        id: uid(5),
        expected_version: 1,
        values: vec![],
    }]);
    assert!(matches!(
        apply_err(&store, wrong_table).await,
        StoreError::NotFound {
            table: Table::Departments,
            ..
        }
    ));
}

/// Ops apply in order: a row inserted earlier in the change set can be
/// updated, referenced and deleted later in it. An empty change set is fine.
pub async fn ops_apply_in_order_within_a_change_set(store: Arc<dyn Store>) {
    apply_ok(&store, ChangeSet::default()).await;
    apply_ok(
        &store,
        ops(vec![
            insert(Table::Customers, uid(1), co_a(), vec![("name", text("v1"))]),
            Op::Update {
                table: Table::Customers,
                id: uid(1),
                expected_version: 1,
                values: vec![("name", text("v2"))],
            },
            Op::Update {
                table: Table::Customers,
                id: uid(1),
                expected_version: 2,
                values: vec![("name", text("v3"))],
            },
            insert(
                Table::Contacts,
                uid(2),
                co_a(),
                vec![("customer_id", Value::Id(uid(1)))],
            ),
            insert(Table::Departments, uid(3), co_a(), vec![]),
            Op::Delete {
                table: Table::Departments,
                id: uid(3),
            },
        ]),
    )
    .await;
    let row = get(&store, Table::Customers, uid(1)).await;
    assert_eq!((row.get("name"), row.version()), (&text("v3"), 3));
    assert_eq!(
        get(&store, Table::Contacts, uid(2))
            .await
            .get("customer_id"),
        &Value::Id(uid(1))
    );
    assert_eq!(
        store.get(Table::Departments, uid(3)).await.ok().flatten(),
        None
    );
}

/// `Delete` removes the row physically; purging a customer removes its
/// contacts and follow-ups, purging a contact clears `follow_ups.contact_id`.
pub async fn delete_purges_and_cascades_to_children(store: Arc<dyn Store>) {
    let contact = |n: u128, customer: u128| {
        insert(
            Table::Contacts,
            uid(n),
            co_a(),
            vec![("customer_id", Value::Id(uid(customer)))],
        )
    };
    let follow_up = |n: u128, customer: u128, contact: u128| {
        insert(
            Table::FollowUps,
            uid(n),
            co_a(),
            vec![
                ("customer_id", Value::Id(uid(customer))),
                ("contact_id", Value::Id(uid(contact))),
            ],
        )
    };
    apply_ok(
        &store,
        ops(vec![
            insert(Table::Customers, uid(1), co_a(), vec![]),
            insert(Table::Customers, uid(2), co_a(), vec![]),
            contact(11, 1),
            contact(12, 1),
            contact(21, 2),
            follow_up(31, 1, 11),
            follow_up(32, 1, 12),
            follow_up(41, 2, 21),
        ]),
    )
    .await;
    apply_ok(
        &store,
        ops(vec![Op::Delete {
            table: Table::Contacts,
            id: uid(12),
        }]),
    )
    .await;
    assert_eq!(
        store.get(Table::Contacts, uid(12)).await.ok().flatten(),
        None
    );
    let f = get(&store, Table::FollowUps, uid(32)).await;
    assert_eq!(
        (f.get("contact_id"), f.get("customer_id")),
        (&Value::Null, &Value::Id(uid(1)))
    );
    apply_ok(
        &store,
        ops(vec![Op::Delete {
            table: Table::Customers,
            id: uid(1),
        }]),
    )
    .await;
    for (table, n) in [
        (Table::Customers, 1),
        (Table::Contacts, 11),
        (Table::FollowUps, 31),
        (Table::FollowUps, 32),
    ] {
        assert_eq!(
            store.get(table, uid(n)).await.ok().flatten(),
            None,
            "{table} {n} purged"
        );
    }
    for (table, n) in [
        (Table::Customers, 2),
        (Table::Contacts, 21),
        (Table::FollowUps, 41),
    ] {
        assert_eq!(
            get(&store, table, uid(n)).await.id(),
            uid(n),
            "{table} {n} kept"
        );
    }
    let again = apply_err(
        &store,
        ops(vec![Op::Delete {
            table: Table::Customers,
            id: uid(1),
        }]),
    )
    .await;
    assert!(
        matches!(
            again,
            StoreError::NotFound {
                table: Table::Customers,
                ..
            }
        ),
        "{again:?}"
    );
}

fn expect_unique(err: StoreError, expected: Table) {
    match err {
        StoreError::Unique { table, detail } => {
            assert_eq!(table, expected);
            assert!(!detail.is_empty(), "the detail says what was duplicated");
        }
        other => panic!("expected Unique on {expected}, got {other:?}"),
    }
}

/// A guard's select is checked inside the write transaction: when it finds
/// a row the whole change set is refused as a uniqueness violation carrying
/// the guard's message, and nothing of it is written; when it finds none
/// the change set is applied.
pub async fn guards_refuse_a_change_set_whose_select_finds_rows(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![("uscc", text("91440300708461136T"))]).await;
    let guard = |uscc: &str| Guard {
        kind: crate::store::GuardKind::Duplicate,
        keys: vec![format!("uscc:{uscc}")],
        select: Select {
            filter: eq("uscc", uscc),
            ..sorted(Table::Customers, Vec::new())
        },
        message: format!("credit code {uscc} is taken"),
    };
    let taken = ChangeSet {
        guards: vec![guard("91440300708461136T")],
        ops: vec![insert(
            Table::Customers,
            uid(2),
            co_a(),
            vec![("name", text("乙")), ("uscc", text("91440300708461136T"))],
        )],
        events: vec![event(
            uid(2),
            "customer.created",
            json!({}),
            "2026-03-01T10:00:00Z",
        )],
        ..ChangeSet::default()
    };
    match apply_err(&store, taken).await {
        StoreError::Unique { table, detail } => {
            assert_eq!(table, Table::Customers);
            assert_eq!(detail, "credit code 91440300708461136T is taken");
        }
        other => panic!("expected a uniqueness refusal, got {other:?}"),
    }
    assert!(
        store
            .get(Table::Customers, uid(2))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .outbox_pending("guards", 10)
            .await
            .expect("outbox")
            .is_empty(),
        "an event of the refused change set was written"
    );
    let free = ChangeSet {
        guards: vec![guard("914403001922038216")],
        ops: vec![insert(
            Table::Customers,
            uid(3),
            co_a(),
            vec![("name", text("丙")), ("uscc", text("914403001922038216"))],
        )],
        ..ChangeSet::default()
    };
    apply_ok(&store, free).await;
    assert_eq!(get(&store, Table::Customers, uid(3)).await.id(), uid(3));
    // A guard of a state is refused as what it is, with its message.
    let state = ChangeSet {
        guards: vec![Guard {
            kind: crate::store::GuardKind::State,
            message: "customer 丙 was there meanwhile".into(),
            ..guard("914403001922038216")
        }],
        ops: vec![insert(
            Table::Customers,
            uid(4),
            co_a(),
            vec![("name", text("丁"))],
        )],
        ..ChangeSet::default()
    };
    match apply_err(&store, state).await {
        StoreError::Refused { table, detail } => {
            assert_eq!(table, Table::Customers);
            assert_eq!(detail, "customer 丙 was there meanwhile");
        }
        other => panic!("expected a state refusal, got {other:?}"),
    }
    assert!(
        store
            .get(Table::Customers, uid(4))
            .await
            .expect("get")
            .is_none()
    );
}

/// Duplicate ids and duplicate live business keys are `Unique` errors of
/// the table written, and roll the whole change set back.
pub async fn unique_violations_are_reported_and_roll_back(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![("code", text("C-001"))]).await;
    let dup_id = ChangeSet {
        ops: vec![
            insert(Table::Departments, uid(50), co_a(), vec![]),
            insert(
                Table::Customers,
                uid(1),
                co_a(),
                vec![("name", text("again"))],
            ),
        ],
        events: vec![event(
            uid(1),
            "customer.created",
            json!({}),
            "2026-03-01T10:00:00Z",
        )],
        ..ChangeSet::default()
    };
    expect_unique(apply_err(&store, dup_id).await, Table::Customers);
    assert_eq!(
        store.get(Table::Departments, uid(50)).await.ok().flatten(),
        None,
        "rolled back"
    );
    assert_eq!(
        store
            .outbox_pending("c", 10)
            .await
            .unwrap_or_else(|e| panic!("outbox: {e}")),
        vec![]
    );
    assert_eq!(
        get(&store, Table::Customers, uid(1)).await.get("name"),
        &text("甲")
    );

    let dup = |table, n: u128, overrides: Vec<(&'static str, Value)>| {
        ops(vec![insert(table, uid(n), co_a(), overrides)])
    };
    expect_unique(
        apply_err(
            &store,
            dup(Table::Customers, 2, vec![("code", text("C-001"))]),
        )
        .await,
        Table::Customers,
    );

    apply_ok(
        &store,
        dup(Table::Companies, 10, vec![("code", text("ACME"))]),
    )
    .await;
    expect_unique(
        apply_err(
            &store,
            dup(Table::Companies, 11, vec![("code", text("ACME"))]),
        )
        .await,
        Table::Companies,
    );

    apply_ok(
        &store,
        dup(Table::Users, 20, vec![("username", text("zhang.san"))]),
    )
    .await;
    expect_unique(
        apply_err(
            &store,
            dup(Table::Users, 21, vec![("username", text("zhang.san"))]),
        )
        .await,
        Table::Users,
    );
    apply_ok(
        &store,
        dup(Table::Users, 22, vec![("username", text("Zhang.San"))]),
    )
    .await;

    let field = |entity: &str, key: &str| vec![("entity", text(entity)), ("key", text(key))];
    apply_ok(
        &store,
        dup(Table::CustomFields, 30, field("customers", "region")),
    )
    .await;
    expect_unique(
        apply_err(
            &store,
            dup(Table::CustomFields, 31, field("customers", "region")),
        )
        .await,
        Table::CustomFields,
    );
    apply_ok(
        &store,
        dup(Table::CustomFields, 32, field("contacts", "region")),
    )
    .await;

    let list = |entity: &str, f: &str| vec![("entity", text(entity)), ("field", text(f))];
    apply_ok(
        &store,
        dup(Table::Picklists, 40, list("customers", "level")),
    )
    .await;
    expect_unique(
        apply_err(
            &store,
            dup(Table::Picklists, 41, list("customers", "level")),
        )
        .await,
        Table::Picklists,
    );

    let contact = |code: &str| vec![("customer_id", Value::Id(uid(1))), ("code", text(code))];
    apply_ok(&store, dup(Table::Contacts, 60, contact("K-1"))).await;
    expect_unique(
        apply_err(&store, dup(Table::Contacts, 61, contact("K-1"))).await,
        Table::Contacts,
    );
}

/// Business keys are unique per company among live rows only; NULL codes
/// never clash.
pub async fn unique_codes_ignore_deleted_rows_and_nulls(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![("code", text("C-001"))]).await;
    add(
        &store,
        Table::Customers,
        uid(2),
        co_b(),
        vec![("code", text("C-001"))],
    )
    .await;
    add_customer(&store, 3, "丙", vec![]).await;
    add_customer(&store, 4, "丁", vec![]).await;
    apply_ok(
        &store,
        ops(vec![Op::Update {
            table: Table::Customers,
            id: uid(1),
            expected_version: 1,
            values: vec![("deleted_at", Value::Timestamp(t0()))],
        }]),
    )
    .await;
    add_customer(&store, 5, "戊", vec![("code", text("C-001"))]).await;
    // Restoring the deleted one now clashes with the live one.
    let restore = ops(vec![Op::Update {
        table: Table::Customers,
        id: uid(1),
        expected_version: 2,
        values: vec![("deleted_at", Value::Null)],
    }]);
    expect_unique(apply_err(&store, restore).await, Table::Customers);
    add(
        &store,
        Table::Users,
        uid(10),
        co_a(),
        vec![
            ("username", text("li")),
            ("deleted_at", Value::Timestamp(t0())),
        ],
    )
    .await;
    add(
        &store,
        Table::Users,
        uid(11),
        co_a(),
        vec![("username", text("li"))],
    )
    .await;
    add(
        &store,
        Table::Users,
        uid(12),
        co_b(),
        vec![("username", text("li"))],
    )
    .await;
    let s = Select {
        lifecycle: Lifecycle::Any,
        ..sel(Table::Customers, co_a())
    };
    assert_eq!(ids(&store, &s).await, uids(&[1, 3, 4, 5]));
}

/// Sequences count from 1 separately per company and key.
pub async fn sequences_start_at_one_per_company_and_key(store: Arc<dyn Store>) {
    let next = |company: Uuid, key: &'static str| {
        let store = store.clone();
        async move {
            store
                .next_sequence(company, key)
                .await
                .unwrap_or_else(|e| panic!("next_sequence: {e}"))
        }
    };
    assert_eq!(next(co_a(), "contract").await, 1);
    assert_eq!(next(co_a(), "contract").await, 2);
    assert_eq!(next(co_a(), "contract").await, 3);
    assert_eq!(next(co_a(), "order").await, 1);
    assert_eq!(next(co_b(), "contract").await, 1);
    assert_eq!(next(co_a(), "contract").await, 4);
    assert_eq!(next(co_b(), "contract").await, 2);
    assert_eq!(next(co_a(), "合同").await, 1);
}

/// History returns one record's audit entries oldest first (commit order,
/// and order within a change set), with every field preserved.
pub async fn history_is_oldest_first_with_changes_preserved(store: Arc<dyn Store>) {
    add_customer(&store, 1, "甲", vec![]).await;
    let first = AuditEntry {
        actor_id: None,
        ..audit(
            uid(1),
            Table::Customers,
            "create",
            "2026-03-01T08:00:00.000001Z",
            vec![change("name", json!(null), json!("甲"))],
        )
    };
    let second = audit(
        uid(1),
        Table::Customers,
        "update",
        "2026-03-01T09:00:00Z",
        vec![
            change("name", json!("甲"), json!("甲公司")),
            change(
                "custom.region",
                json!(null),
                json!({"省": "广东", "list": [1, 2.5, true]}),
            ),
        ],
    );
    let third = audit(
        uid(1),
        Table::Customers,
        "transfer",
        "2026-03-01T09:00:00Z",
        vec![],
    );
    let other_record = audit(
        uid(2),
        Table::Customers,
        "create",
        "2026-03-01T09:00:00Z",
        vec![],
    );
    let other_table = audit(
        uid(1),
        Table::Contacts,
        "create",
        "2026-03-01T09:00:00Z",
        vec![],
    );
    let audit_only = |audit| ChangeSet {
        audit,
        ..ChangeSet::default()
    };
    apply_ok(&store, audit_only(vec![first.clone()])).await;
    apply_ok(
        &store,
        audit_only(vec![
            other_record.clone(),
            second.clone(),
            other_table.clone(),
            third.clone(),
        ]),
    )
    .await;
    let history = store
        .history(Table::Customers, uid(1))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history, vec![first, second, third]);
    let history = store
        .history(Table::Contacts, uid(1))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history, vec![other_table]);
    let history = store
        .history(Table::Customers, uid(3))
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history, vec![]);
}

/// The outbox hands each consumer the events after its acknowledged
/// position, in commit order, again and again until acknowledged;
/// acknowledging backwards changes nothing.
pub async fn outbox_redelivers_until_acked_in_order_per_consumer(store: Arc<dyn Store>) {
    let pending = |consumer: &'static str, limit: u64| {
        let store = store.clone();
        async move {
            store
                .outbox_pending(consumer, limit)
                .await
                .unwrap_or_else(|e| panic!("outbox_pending: {e}"))
        }
    };
    let ack = |consumer: &'static str, seq: i64| {
        let store = store.clone();
        async move {
            store
                .outbox_ack(consumer, seq)
                .await
                .unwrap_or_else(|e| panic!("outbox_ack: {e}"))
        }
    };
    assert_eq!(pending("mailer", 10).await, vec![]);
    let e1 = event(
        uid(1),
        "customer.created",
        json!({"name": "甲", "n": 1}),
        "2026-03-01T08:00:00Z",
    );
    let e2 = NewEvent {
        table: Table::Contacts,
        company_id: co_b(),
        ..event(
            uid(2),
            "contact.created",
            json!({"nested": {"a": [1, 2]}}),
            "2026-03-01T08:00:00.000001Z",
        )
    };
    let e3 = event(
        uid(1),
        "customer.updated",
        json!(null),
        "2026-03-01T07:00:00Z",
    );
    let events = |events| ChangeSet {
        events,
        ..ChangeSet::default()
    };
    apply_ok(&store, events(vec![e1.clone(), e2.clone()])).await;
    apply_ok(&store, events(vec![e3.clone()])).await;

    let all = pending("mailer", 10).await;
    assert_eq!(
        all.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        vec![e1.clone(), e2.clone(), e3.clone()]
    );
    assert!(
        all[0].seq > 0 && all[0].seq < all[1].seq && all[1].seq < all[2].seq,
        "seq strictly increasing: {all:?}"
    );
    let (s1, s2, s3) = (all[0].seq, all[1].seq, all[2].seq);
    assert_eq!(pending("mailer", 2).await, all[..2].to_vec());
    assert_eq!(pending("mailer", 0).await, vec![]);
    assert_eq!(pending("mailer", 10).await, all, "redelivered until acked");

    ack("mailer", s2).await;
    assert_eq!(pending("mailer", 10).await, all[2..].to_vec());
    ack("mailer", s1).await;
    assert_eq!(
        pending("mailer", 10).await,
        all[2..].to_vec(),
        "acking backwards is ignored"
    );
    assert_eq!(pending("search", 10).await, all, "cursors are per consumer");

    ack("mailer", s3).await;
    assert_eq!(pending("mailer", 10).await, vec![]);
    let e4 = event(
        uid(3),
        "customer.deleted",
        json!({}),
        "2026-03-01T10:00:00Z",
    );
    apply_ok(&store, events(vec![e4.clone()])).await;
    let next = pending("mailer", 10).await;
    assert_eq!(
        next.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        vec![e4]
    );
    assert!(next[0].seq > s3);
    ack("search", s1).await;
    assert_eq!(pending("search", 10).await.len(), 3);
}

/// Forwards what a store must implement and nothing else, so the trait's
/// default methods run over the store under test.
struct Defaults(Arc<dyn Store>);

#[async_trait::async_trait]
impl Store for Defaults {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.0.apply(changes).await
    }
    async fn get(&self, table: Table, id: Uuid) -> Result<Option<Row>, StoreError> {
        self.0.get(table, id).await
    }
    async fn select(&self, select: &Select) -> Result<Selected, StoreError> {
        self.0.select(select).await
    }
    async fn next_sequence(&self, company: Uuid, key: &str) -> Result<i64, StoreError> {
        self.0.next_sequence(company, key).await
    }
    async fn history(&self, table: Table, record_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        self.0.history(table, record_id).await
    }
    async fn outbox_pending(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.0.outbox_pending(consumer, limit).await
    }
    async fn outbox_ack(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        self.0.outbox_ack(consumer, seq).await
    }
    async fn outbox_last_seq(&self) -> Result<i64, StoreError> {
        self.0.outbox_last_seq().await
    }
}

/// A company's pending events, read from the consumer's position, skip
/// other companies' events without acknowledging them, in order and up to
/// the limit, however many of the others come first; the store's own query
/// and the trait's default agree.
pub async fn outbox_pending_of_one_company_passes_over_the_others(store: Arc<dyn Store>) {
    let mut events = Vec::new();
    // Many of company B's events first, then A's between B's.
    for i in 0..40u128 {
        events.push(NewEvent {
            company_id: co_b(),
            ..event(
                uid(100 + i),
                "customer.created",
                json!({"b": i as u64}),
                "2026-03-01T08:00:00Z",
            )
        });
    }
    for i in 0..5u128 {
        events.push(event(
            uid(200 + i),
            "customer.created",
            json!({"a": i as u64}),
            "2026-03-01T09:00:00Z",
        ));
        events.push(NewEvent {
            company_id: co_b(),
            ..event(
                uid(300 + i),
                "customer.updated",
                json!({}),
                "2026-03-01T09:00:00Z",
            )
        });
    }
    apply_ok(
        &store,
        ChangeSet {
            events,
            ..ChangeSet::default()
        },
    )
    .await;
    let defaults: Arc<dyn Store> = Arc::new(Defaults(store.clone()));
    let all = store
        .outbox_pending("erp", 1000)
        .await
        .unwrap_or_else(|e| panic!("outbox_pending: {e}"));
    assert_eq!(all.len(), 50);
    let of_a: Vec<OutboxEvent> = all
        .iter()
        .filter(|e| e.event.company_id == co_a())
        .cloned()
        .collect();
    assert_eq!(of_a.len(), 5);
    for s in [&store, &defaults] {
        let of = |limit: u64| {
            let s = s.clone();
            async move {
                s.outbox_pending_of("erp", co_a(), limit)
                    .await
                    .unwrap_or_else(|e| panic!("outbox_pending_of: {e}"))
            }
        };
        assert_eq!(of(3).await, of_a[..3].to_vec(), "{}", s.backend());
        assert_eq!(of(100).await, of_a, "{}", s.backend());
        assert_eq!(of(0).await, vec![], "{}", s.backend());
        let none = s
            .outbox_pending_of("erp", uid(999), 10)
            .await
            .unwrap_or_else(|e| panic!("outbox_pending_of: {e}"));
        assert_eq!(none, vec![], "a company without events");
    }
    // Reading passes over B's events without acknowledging them.
    assert_eq!(
        store
            .outbox_pending("erp", 1000)
            .await
            .unwrap_or_else(|e| panic!("outbox_pending: {e}")),
        all
    );
    // From the consumer's position on.
    store
        .outbox_ack("erp", of_a[2].seq)
        .await
        .unwrap_or_else(|e| panic!("outbox_ack: {e}"));
    for s in [&store, &defaults] {
        let rest = s
            .outbox_pending_of("erp", co_a(), 10)
            .await
            .unwrap_or_else(|e| panic!("outbox_pending_of: {e}"));
        assert_eq!(rest, of_a[3..].to_vec());
    }
}

/// A change set of many rows of one table (what bulk writes such as an
/// import produce) applies every row with its own values, keeps the order
/// of its events, and is refused whole when one row breaks a constraint.
pub async fn bulk_change_sets_apply_whole_in_order_or_not_at_all(store: Arc<dyn Store>) {
    let names: Vec<String> = (0..250).map(|i| format!("批量客户{i:03}")).collect();
    let mut bulk = ChangeSet::default();
    for (i, name) in names.iter().enumerate() {
        let n = 1000 + i as u128;
        bulk.ops.push(insert(
            Table::Customers,
            uid(n),
            co_a(),
            vec![("name", text(name)), ("code", text(&format!("B-{i:03}")))],
        ));
        bulk.events.push(event(
            uid(n),
            &format!("customer.created.{i:03}"),
            json!({ "i": i }),
            "2026-03-01T10:00:00Z",
        ));
    }
    apply_ok(&store, bulk).await;
    let rows = select(
        &store,
        &sorted(
            Table::Customers,
            vec![Sort {
                col: column("name"),
                desc: false,
            }],
        ),
    )
    .await
    .rows;
    let got: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get("name").as_text())
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        get(&store, Table::Customers, uid(1007)).await.get("code"),
        &text("B-007")
    );
    let events = store
        .outbox_pending("bulk", 1000)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"));
    let kinds: Vec<String> = events.iter().map(|e| e.event.event_type.clone()).collect();
    let expected: Vec<String> = (0..250)
        .map(|i| format!("customer.created.{i:03}"))
        .collect();
    assert_eq!(kinds, expected, "events keep the change set's order");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));

    // The 40th of 60 new rows reuses a live code: nothing of it is applied.
    let mut broken = ChangeSet::default();
    for i in 0..60u128 {
        let code = if i == 39 {
            "B-001".to_string()
        } else {
            format!("N-{i:03}")
        };
        broken.ops.push(insert(
            Table::Customers,
            uid(5000 + i),
            co_a(),
            vec![("name", text(&format!("新客户{i}"))), ("code", text(&code))],
        ));
    }
    expect_unique(apply_err(&store, broken).await, Table::Customers);
    assert_eq!(
        store.get(Table::Customers, uid(5000)).await.ok().flatten(),
        None,
        "rolled back"
    );
    // The 40th of 60 carries a number for a text column: refused as bad
    // input, naming the column, and nothing of it is applied either.
    let mut mistyped = ChangeSet::default();
    for i in 0..60u128 {
        let name = if i == 39 {
            Value::Int(39)
        } else {
            text(&format!("又一客户{i}"))
        };
        mistyped.ops.push(insert(
            Table::Customers,
            uid(6000 + i),
            co_a(),
            vec![("name", name), ("code", text(&format!("M-{i:03}")))],
        ));
    }
    let e = apply_err(&store, mistyped).await;
    assert!(
        matches!(e, StoreError::Backend { .. }) && e.to_string().contains("name"),
        "{e}"
    );
    assert_eq!(
        store.get(Table::Customers, uid(6000)).await.ok().flatten(),
        None,
        "rolled back"
    );
    assert_eq!(
        select(&store, &sel(Table::Customers, co_a()))
            .await
            .rows
            .len(),
        250
    );
}

/// `TextKeyLike` folds a column's text as [`crate::validate::search_key`]
/// does, on every backend alike: full width, letter case, accents (also as
/// combining marks), ligatures and traditional Chinese aside, anywhere or
/// at the start, on columns and custom text fields; each match is exactly
/// the one the Rust folding gives.
pub async fn text_key_like_folds_width_case_accents_and_script_alike(store: Arc<dyn Store>) {
    let names: [&str; 12] = [
        "Müller GmbH",
        "MULLER AG",
        "Mu\u{0308}ller  KG",
        "华为技术有限公司",
        "華為電子有限公司",
        "阿里巴巴（中国）网络技术有限公司",
        "ＩＢＭ中国有限公司",
        "Straße Bau",
        "Société Générale",
        "JÜRGEN Œuvre",
        "Apple Inc.",
        "ǅemal Ωmega \u{212a}elvin",
    ];
    for (i, name) in names.iter().enumerate() {
        let n = i as u128 + 1;
        let custom = serde_json::json!({ "note": name.to_uppercase() });
        add_customer(&store, n, name, vec![("custom", Value::Json(custom))]).await;
    }
    let note = Col::Custom {
        key: "note".into(),
        ty: CustomType::Text,
    };
    let needles = [
        "muller",
        "MÜLLER",
        "mu\u{0308}ller",
        "ｍｕｌｌｅｒ",
        "ller kg",
        "華為",
        "华为",
        "為電",
        "华为电子",
        "阿里巴巴(中国)",
        "ibm中国",
        "ＩＢＭ",
        "strasse",
        "STRASSE",
        "ß",
        "societe",
        "GÉNÉRALE",
        "jurgen",
        "oeuvre",
        "œ",
        "apple inc.",
        "Ａｐｐｌｅ Ｉｎｃ．",
        "dzemal",
        "ǆ",
        "ωmega",
        "kelvin",
        "%",
        "_",
        "有限公司",
        "x",
    ];
    for needle in needles {
        let key = crate::validate::search_key(needle);
        for prefix in [false, true] {
            let expected = |fold: &dyn Fn(&str) -> String| -> Vec<Uuid> {
                names
                    .iter()
                    .enumerate()
                    .filter(|(_, name)| {
                        let folded = crate::validate::search_key(&fold(name));
                        if prefix {
                            folded.starts_with(&key)
                        } else {
                            folded.contains(&key)
                        }
                    })
                    .map(|(i, _)| uid(i as u128 + 1))
                    .collect()
            };
            for (col, fold) in [
                (
                    Col::Column("name"),
                    &(|s: &str| s.to_string()) as &dyn Fn(&str) -> String,
                ),
                (note.clone(), &|s: &str| s.to_uppercase()),
            ] {
                let found = matching(
                    &store,
                    Table::Customers,
                    Filter::TextKeyLike {
                        col: col.clone(),
                        needle: needle.to_string(),
                        prefix,
                    },
                )
                .await;
                assert_eq!(
                    found,
                    expected(fold),
                    "{needle:?} prefix {prefix} on {col:?}"
                );
            }
        }
    }
    // The cases the folding is for.
    let like = |needle: &str| Filter::TextKeyLike {
        col: Col::Column("name"),
        needle: needle.into(),
        prefix: false,
    };
    assert_eq!(
        matching(&store, Table::Customers, like("muller")).await,
        uids(&[1, 2, 3])
    );
    assert_eq!(
        matching(&store, Table::Customers, like("華為")).await,
        uids(&[4, 5])
    );
    assert_eq!(
        matching(&store, Table::Customers, like("阿里巴巴(中国)")).await,
        uids(&[6])
    );
}

/// A search and a `~` filter find a name typed in either width, letter
/// case, with or without accents, in traditional or simplified Chinese
/// (as the name duplicate key folds it); `=` on an e-mail address ignores
/// letter case (customers, contacts, and customers by their contacts);
/// whole-number filters take thousands separators.
pub async fn searches_and_filters_fold_as_the_duplicate_key(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::query::{Cond, ListQuery, PageRequest};
    use crate::testing::service_suite::{World, fields};
    use serde_json::json;
    let w = World::new(store).await;
    for (name, extra) in [
        ("阿里巴巴（中国）网络技术有限公司", json!({})),
        ("IBM中国有限公司", json!({})),
        ("Apple Inc.", json!({"email": "Foo@Bar.com"})),
        ("华为技术有限公司", json!({})),
        ("華為電子有限公司", json!({})),
        ("Müller GmbH", json!({})),
        ("Société Générale", json!({})),
    ] {
        w.customer(&w.admin, name, extra).await;
    }
    let apple = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().search("Apple"),
        )
        .await
        .expect("search")
        .items
        .remove(0);
    let mut contact = fields(json!({"name": "Jürgen Weber", "email": "Jurgen.W@Bar.com"}));
    contact.insert("customer_id".into(), json!(apple.id.0.to_string()));
    w.crm
        .create_record(&w.admin, Entity::Contact, contact)
        .await
        .expect("contact");
    let code = apple.code.clone().expect("a code");
    let wide_code: String = code.chars().map(crate::validate::fullwidth).collect();
    let names = |entity: Entity, conds: &[&str], search: Option<&str>| {
        let mut q = ListQuery {
            conditions: conds
                .iter()
                .map(|c| Cond::parse(c).unwrap_or_else(|e| panic!("{c}: {e}")))
                .collect(),
            ..ListQuery::default()
        }
        .page(PageRequest::Offset {
            page: 1,
            per_page: 100,
        });
        if let Some(s) = search {
            q = q.search(s);
        }
        let crm = &w.crm;
        let admin = &w.admin;
        let label = format!("{conds:?} {search:?}");
        async move {
            let mut found: Vec<String> = crm
                .list_records(admin, entity, &q)
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"))
                .items
                .iter()
                .map(|r| r.text("name").unwrap_or_default().to_string())
                .collect();
            found.sort();
            found
        }
    };
    for (typed, expected) in [
        ("阿里巴巴(中国)", vec!["阿里巴巴（中国）网络技术有限公司"]),
        ("ＩＢＭ中国", vec!["IBM中国有限公司"]),
        ("Ａｐｐｌｅ Ｉｎｃ．", vec!["Apple Inc."]),
        (wide_code.as_str(), vec!["Apple Inc."]),
        ("華為技術", vec!["华为技术有限公司"]),
        ("华为", vec!["华为技术有限公司", "華為電子有限公司"]),
        ("MULLER", vec!["Müller GmbH"]),
    ] {
        let expected: Vec<String> = expected.into_iter().map(String::from).collect();
        assert_eq!(
            names(Entity::Customer, &[], Some(typed)).await,
            expected,
            "search {typed}"
        );
        let cond = format!("name~{typed}");
        if typed != wide_code {
            assert_eq!(
                names(Entity::Customer, &[&cond], None).await,
                expected,
                "{cond}"
            );
        }
    }
    for cond in ["name~societe", "name~SOCIÉTÉ GÉN", "name^société"] {
        assert_eq!(
            names(Entity::Customer, &[cond], None).await,
            vec!["Société Générale".to_string()],
            "{cond}"
        );
    }
    assert_eq!(
        names(Entity::Contact, &["name~JURGEN"], None).await,
        vec!["Jürgen Weber".to_string()]
    );
    // E-mail equality ignores letter case.
    let apple_only = vec!["Apple Inc.".to_string()];
    for cond in [
        "email=foo@bar.com",
        "email=FOO@BAR.COM",
        "email:in:x@y.com,foo@bar.com",
        "contacts.email=jurgen.w@bar.com",
    ] {
        assert_eq!(
            names(Entity::Customer, &[cond], None).await,
            apple_only,
            "{cond}"
        );
    }
    assert_eq!(
        names(Entity::Customer, &["email!=foo@bar.com"], None)
            .await
            .len(),
        6
    );
    assert_eq!(
        names(Entity::Contact, &["email=JURGEN.W@BAR.COM"], None).await,
        vec!["Jürgen Weber".to_string()]
    );
    // Thousands separators in whole-number fields.
    assert_eq!(
        names(Entity::Customer, &["open_opportunities<1,000"], None)
            .await
            .len(),
        7
    );
    assert!(
        names(Entity::Customer, &["open_opportunities>=1,000"], None)
            .await
            .is_empty()
    );
    let refused = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().filter(Cond::parse("open_opportunities<1,00").expect("parse")),
        )
        .await
        .expect_err("1,00 is no number");
    assert!(refused.to_string().contains("1,00"), "{refused}");
}

/// A date given for a date-time field means that whole day in the
/// company's time zone, a time to the second that whole second (stored
/// instants carry microseconds), for `=`, `!=`, `in`, and consistently for
/// `<`, `<=`, `>`, `>=`.
pub async fn date_time_filters_take_whole_days_and_seconds(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::query::{Cond, ListQuery, PageRequest};
    use crate::testing::service_suite::World;
    use chrono::TimeZone;
    use serde_json::json;
    let w = World::new(store).await;
    let local = |y, m, d, h, mi, s, micro| {
        w.crm
            .config
            .utc_offset
            .with_ymd_and_hms(y, m, d, h, mi, s)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
            + chrono::Duration::microseconds(micro)
    };
    for (name, at) in [
        ("before", local(2026, 12, 7, 23, 59, 59, 999_999)),
        ("morning", local(2026, 12, 8, 7, 28, 38, 123_456)),
        ("midnight", local(2026, 12, 8, 0, 0, 0, 0)),
        ("after", local(2026, 12, 9, 0, 0, 0, 0)),
    ] {
        w.clock.set(at);
        w.customer(&w.admin, name, json!({})).await;
    }
    let names = |cond: &str| {
        let q = ListQuery::default()
            .filter(Cond::parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}")))
            .page(PageRequest::Offset {
                page: 1,
                per_page: 100,
            });
        let crm = &w.crm;
        let admin = &w.admin;
        let cond = cond.to_string();
        async move {
            let mut found: Vec<String> = crm
                .list_records(admin, Entity::Customer, &q)
                .await
                .unwrap_or_else(|e| panic!("{cond}: {e}"))
                .items
                .iter()
                .map(|r| r.text("name").unwrap_or_default().to_string())
                .collect();
            found.sort();
            found.join(",")
        }
    };
    for (cond, expected) in [
        ("created_at=2026-12-08", "midnight,morning"),
        ("created_at=2026年12月8日", "midnight,morning"),
        ("created_at!=2026-12-08", "after,before"),
        ("created_at:in:2026-12-07,2026-12-09", "after,before"),
        ("created_at:in:2026-12-08", "midnight,morning"),
        ("created_at=2026-12-08 07:28:38", "morning"),
        ("created_at=2026-12-08 07:28", "morning"),
        ("created_at=2026-12-08 07:28:39", ""),
        ("created_at<2026-12-08", "before"),
        ("created_at<=2026-12-08", "before,midnight,morning"),
        ("created_at>2026-12-08", "after"),
        ("created_at>=2026-12-08", "after,midnight,morning"),
        ("created_at<=2026-12-08 07:28:38", "before,midnight,morning"),
        ("created_at>2026-12-08 07:28:38", "after"),
        ("created_at>=2026-12-08T07:28:38+08:00", "after,morning"),
    ] {
        assert_eq!(names(cond).await, expected, "{cond}");
    }
}
