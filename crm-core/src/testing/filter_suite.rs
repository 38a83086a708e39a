//! List filter scenarios: a condition's value is read the way a saved value
//! is — custom dates, numbers, amounts, yes/no words, options and users,
//! built-in identifiers (ID numbers, credit codes, e-mail addresses), tags
//! and multi-selects, dates with times, phone numbers in searches — so that
//! a record matches the text that saved it, alike on every backend, and
//! saving names users as filters do (a deactivated user given nothing
//! new); duplicates show custom values as typed; a deleted custom field's
//! duplicate rule goes with it, and its definition still reads the
//! history written under it; custom labels name no column imports and
//! exports give something else; `Not` is the
//! complement of its condition, blanks included, and nesting is bounded;
//! a broken host clock is held to four-digit years.

/// Lists the filter scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! filter_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::filter_suite::custom_date_filters_compare_dates,
            filter_custom_date_filters_compare_dates,
            $make
        );
        $each!(
            $crate::testing::filter_suite::identifier_filters_compare_saved_forms,
            filter_identifier_filters_compare_saved_forms,
            $make
        );
        $each!(
            $crate::testing::filter_suite::text_filters_find_either_width,
            filter_text_filters_find_either_width,
            $make
        );
        $each!(
            $crate::testing::filter_suite::yes_no_filters_read_the_words_saving_reads,
            filter_yes_no_filters_read_the_words_saving_reads,
            $make
        );
        $each!(
            $crate::testing::filter_suite::number_filters_refuse_values_that_are_not_finite,
            filter_number_filters_refuse_values_that_are_not_finite,
            $make
        );
        $each!(
            $crate::testing::filter_suite::numbers_take_commas_only_between_thousands,
            filter_numbers_take_commas_only_between_thousands,
            $make
        );
        $each!(
            $crate::testing::filter_suite::money_filters_read_amounts_in_yuan,
            filter_money_filters_read_amounts_in_yuan,
            $make
        );
        $each!(
            $crate::testing::filter_suite::tag_and_multi_select_filters_match_items,
            filter_tag_and_multi_select_filters_match_items,
            $make
        );
        $each!(
            $crate::testing::filter_suite::select_filters_match_options_whatever_the_case,
            filter_select_filters_match_options_whatever_the_case,
            $make
        );
        $each!(
            $crate::testing::filter_suite::reference_filters_take_codes,
            filter_reference_filters_take_codes,
            $make
        );
        $each!(
            $crate::testing::filter_suite::user_filters_name_users_as_saving_does,
            filter_user_filters_name_users_as_saving_does,
            $make
        );
        $each!(
            $crate::testing::filter_suite::datetimes_keep_their_time_of_day,
            filter_datetimes_keep_their_time_of_day,
            $make
        );
        $each!(
            $crate::testing::filter_suite::search_finds_phone_numbers_as_written,
            filter_search_finds_phone_numbers_as_written,
            $make
        );
        $each!(
            $crate::testing::filter_suite::deleting_a_custom_field_drops_its_duplicate_rule,
            filter_deleting_a_custom_field_drops_its_duplicate_rule,
            $make
        );
        $each!(
            $crate::testing::filter_suite::oversized_filters_are_refused_alike,
            filter_oversized_filters_are_refused_alike,
            $make
        );
        $each!(
            $crate::testing::filter_suite::custom_labels_name_no_other_column,
            filter_custom_labels_name_no_other_column,
            $make
        );
        $each!(
            $crate::testing::filter_suite::option_lists_hold_each_option_once,
            filter_option_lists_hold_each_option_once,
            $make
        );
        $each!(
            $crate::testing::filter_suite::custom_field_changes_are_announced_and_keep_held_options,
            filter_custom_field_changes_are_announced_and_keep_held_options,
            $make
        );
        $each!(
            $crate::testing::filter_suite::not_matches_what_its_condition_does_not,
            filter_not_matches_what_its_condition_does_not,
            $make
        );
        $each!(
            $crate::testing::filter_suite::structured_values_are_no_text,
            filter_structured_values_are_no_text,
            $make
        );
        $each!(
            $crate::testing::filter_suite::nul_characters_are_refused_as_input,
            filter_nul_characters_are_refused_as_input,
            $make
        );
        $each!(
            $crate::testing::filter_suite::a_broken_host_clock_is_held_to_four_digit_years,
            filter_a_broken_host_clock_is_held_to_four_digit_years,
            $make
        );
        $each!(
            $crate::testing::filter_suite::saving_names_users_as_filters_do,
            filter_saving_names_users_as_filters_do,
            $make
        );
        $each!(
            $crate::testing::filter_suite::duplicates_show_values_as_typed,
            filter_duplicates_show_values_as_typed,
            $make
        );
        $each!(
            $crate::testing::filter_suite::deleted_fields_still_read_their_history,
            filter_deleted_fields_still_read_their_history,
            $make
        );
    };
}

use crate::auth::Actor;
use crate::custom::{CustomFieldType, CustomFieldUpdate, NewCustomField};
use crate::dedupe::{DedupeMode, DuplicateQuery};
use crate::entity::Entity;
use crate::error::Error;
use crate::query::{Cond, ListQuery, PageRequest};
use crate::records::Record;
use crate::store::Store;
use crate::testing::service_suite::{World, fields};
use chrono::{TimeZone, Utc};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Defines a customer custom field.
async fn define(w: &World, key: &str, label: &str, field_type: CustomFieldType, options: &[&str]) {
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: key.into(),
                label: label.into(),
                label_en: None,
                field_type,
                options: options.iter().map(|o| o.to_string()).collect(),
                required: false,
                unique: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("define {key}: {e}"));
}

/// The names of the records of `entity` the administrator sees under the
/// conditions (compact form, see [`Cond::parse`]) and the search text.
async fn find(
    w: &World,
    entity: Entity,
    conds: &[&str],
    search: Option<&str>,
) -> Result<BTreeSet<String>, Error> {
    query(
        w,
        &w.admin,
        entity,
        conds.iter().map(|c| parse(c)).collect(),
        search,
    )
    .await
}

fn parse(c: &str) -> Cond {
    Cond::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"))
}

async fn query(
    w: &World,
    actor: &Actor,
    entity: Entity,
    conditions: Vec<Cond>,
    search: Option<&str>,
) -> Result<BTreeSet<String>, Error> {
    let mut q = ListQuery {
        conditions,
        ..ListQuery::default()
    }
    .page(PageRequest::Offset {
        page: 1,
        per_page: 1000,
    });
    if let Some(s) = search {
        q = q.search(s);
    }
    let page = w.crm.list_records(actor, entity, &q).await?;
    Ok(page
        .items
        .iter()
        .map(|r| r.text("name").unwrap_or_default().to_string())
        .collect())
}

/// The customers matching the conditions, which must be accepted.
async fn customers(w: &World, conds: &[&str]) -> BTreeSet<String> {
    find(w, Entity::Customer, conds, None)
        .await
        .unwrap_or_else(|e| panic!("{conds:?}: {e}"))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A condition refused as invalid, naming the field and the value.
async fn refused(w: &World, cond: &str, field: &str, value: &str) {
    match find(w, Entity::Customer, &[cond], None).await {
        Err(Error::Validation(v)) => {
            let text = v.to_string();
            assert!(
                text.contains(field) && text.contains(value),
                "{cond}: {text}"
            );
        }
        other => panic!("{cond} should be refused as invalid, got {other:?}"),
    }
}

async fn customer(w: &World, name: &str, extra: Json) -> Record {
    w.customer(&w.admin, name, extra).await
}

/// Custom date filters read `2026/3/5`, `2026年3月5日` or `20260305` as the
/// saved value was read, and compare as dates; a word that is no date is
/// refused.
pub async fn custom_date_filters_compare_dates(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "signed_on", "签约日期", CustomFieldType::Date, &[]).await;
    customer(&w, "甲公司", json!({"custom.signed_on": "2026/3/5"})).await;
    customer(&w, "乙公司", json!({"custom.signed_on": "2026年2月20日"})).await;
    customer(&w, "丙公司", json!({"custom.signed_on": "20261101"})).await;
    customer(&w, "丁公司", json!({})).await;
    assert_eq!(
        customers(&w, &["custom.signed_on>=2026/3/1"]).await,
        set(&["甲公司", "丙公司"])
    );
    for same in [
        "2026/3/5",
        "2026年3月5日",
        "20260305",
        "２０２６-０３-０５",
        "2026.3.5",
    ] {
        assert_eq!(
            customers(&w, &[&format!("custom.signed_on={same}")]).await,
            set(&["甲公司"]),
            "{same}"
        );
    }
    assert_eq!(
        customers(&w, &["签约日期<2026年3月5日"]).await,
        set(&["乙公司"])
    );
    assert_eq!(
        customers(&w, &["custom.signed_on:in:2026/2/20,2026/11/1"]).await,
        set(&["乙公司", "丙公司"])
    );
    assert_eq!(
        customers(&w, &["custom.signed_on!=2026/3/5"]).await,
        set(&["乙公司", "丙公司", "丁公司"])
    );
    refused(&w, "custom.signed_on>=yesterday", "signed_on", "yesterday").await;
}

/// Equality on a contact's ID number, a customer's credit code and e-mail
/// address normalises the typed text as saving does: a lower-case x, the
/// 15-digit form of an ID, spaces and full-width characters in a credit
/// code, an upper-case e-mail domain all find the stored value; text that
/// does not validate is compared as typed.
pub async fn identifier_filters_compare_saved_forms(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let first17 = "91350100M000100Y4";
    let check = crate::validate::uscc_check_char(first17).expect("check character");
    let uscc = format!("{first17}{check}");
    let c = customer(
        &w,
        "甲公司",
        json!({"uscc": uscc, "email": "Sales.Dept@Example.COM"}),
    )
    .await;
    customer(&w, "乙公司", json!({"email": "other@example.com"})).await;
    let spaced = format!("{} {} {}", &uscc[..6], &uscc[6..12], &uscc[12..]).to_lowercase();
    let wide: String = uscc
        .chars()
        .map(|ch| char::from_u32(ch as u32 + 0xFEE0).unwrap_or(ch))
        .collect();
    for typed in [uscc.to_lowercase(), spaced, wide] {
        assert_eq!(
            customers(&w, &[&format!("uscc={typed}")]).await,
            set(&["甲公司"]),
            "{typed}"
        );
        assert_eq!(
            customers(&w, &[&format!("uscc:in:{typed}")]).await,
            set(&["甲公司"]),
            "{typed}"
        );
    }
    assert_eq!(customers(&w, &["uscc=not-a-code"]).await, set(&[]));
    assert_eq!(
        customers(&w, &["email=Sales.Dept@EXAMPLE.com"]).await,
        set(&["甲公司"])
    );
    assert_eq!(
        customers(&w, &["email= Sales.Dept@example.com "]).await,
        set(&["甲公司"])
    );
    assert_eq!(
        customers(&w, &["email!=Sales.Dept@EXAMPLE.COM"]).await,
        set(&["乙公司"])
    );
    let other = format!(
        "11010519491231003{}",
        crate::validate::resident_id_check_char("11010519491231003").expect("check character")
    );
    for (name, mobile, id) in [
        ("钱七", "13812345678", "11010519491231002X"),
        ("孙八", "13912345678", other.as_str()),
    ] {
        w.crm
            .create_record(
                &w.admin,
                Entity::Contact,
                fields(json!({
                    "customer_id": c.id.to_string(),
                    "name": name,
                    "mobile": mobile,
                    "id_number": id,
                })),
            )
            .await
            .unwrap_or_else(|e| panic!("contact {name}: {e}"));
    }
    // The 15-digit form of 11010519491231002X (born 1949-12-31, number 002).
    for typed in [
        "11010519491231002x",
        "110105491231002",
        " 110105 19491231 002X ",
    ] {
        assert_eq!(
            find(&w, Entity::Contact, &[&format!("id_number={typed}")], None)
                .await
                .unwrap_or_else(|e| panic!("{typed}: {e}")),
            set(&["钱七"]),
            "{typed}"
        );
    }
    assert_eq!(
        find(&w, Entity::Contact, &["id_number=12345"], None)
            .await
            .expect("an ID that does not validate is compared as typed"),
        set(&[])
    );
}

/// Yes/no custom fields are filtered with the words saving takes (`y`,
/// `对`, `n`, `不是` …); any other word is refused naming the field and the
/// word, never read as "no".
pub async fn yes_no_filters_read_the_words_saving_reads(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "vip", "重要客户", CustomFieldType::Boolean, &[]).await;
    customer(&w, "甲公司", json!({"custom.vip": "y"})).await;
    customer(&w, "乙公司", json!({"custom.vip": "不是"})).await;
    customer(&w, "丙公司", json!({})).await;
    for yes in ["y", "Y", "对", "是", "yes", "true", "1"] {
        assert_eq!(
            customers(&w, &[&format!("custom.vip={yes}")]).await,
            set(&["甲公司"]),
            "{yes}"
        );
    }
    for no in ["n", "不是", "否", "no", "false", "0"] {
        assert_eq!(
            customers(&w, &[&format!("custom.vip={no}")]).await,
            set(&["乙公司"]),
            "{no}"
        );
    }
    assert_eq!(
        customers(&w, &["custom.vip!=y"]).await,
        set(&["乙公司", "丙公司"])
    );
    refused(&w, "custom.vip=maybe", "vip", "maybe").await;
    refused(&w, "custom.vip:in:y,perhaps", "vip", "perhaps").await;
}

/// Number filters refuse `nan` and `inf` naming the field and the value:
/// the backends would compare them differently (one as no value, the other
/// above every number).
pub async fn number_filters_refuse_values_that_are_not_finite(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "staff", "员工人数", CustomFieldType::Number, &[]).await;
    customer(&w, "甲公司", json!({"custom.staff": 1200})).await;
    customer(&w, "乙公司", json!({"custom.staff": "15"})).await;
    customer(&w, "丙公司", json!({})).await;
    for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e400"] {
        for op in ["<", ">=", "=", "!="] {
            refused(&w, &format!("custom.staff{op}{bad}"), "staff", bad).await;
        }
    }
    refused(&w, "custom.staff:in:15,nan", "staff", "nan").await;
    assert_eq!(customers(&w, &["custom.staff<100"]).await, set(&["乙公司"]));
    assert_eq!(
        customers(&w, &["custom.staff>=1e3"]).await,
        set(&["甲公司"])
    );
}

/// Number fields take commas only between thousands, when saved and when
/// filtered: `1,5` and `1.234,56` are refused naming the value, not saved
/// as 15 or 1.23456; an amount of money refuses a leading group of 0
/// (`0,500`) rather than reading ¥500.00.
pub async fn numbers_take_commas_only_between_thousands(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "staff", "员工人数", CustomFieldType::Number, &[]).await;
    define(&w, "deal", "成交额", CustomFieldType::Money, &[]).await;
    customer(&w, "甲公司", json!({"custom.staff": "1,234.5"})).await;
    customer(
        &w,
        "乙公司",
        json!({"custom.staff": "15", "custom.deal": "1,000元"}),
    )
    .await;
    for bad in ["1,5", "1.234,56", "12,34", "0,500", "1,2345"] {
        let mut f = fields(json!({"custom.staff": bad}));
        f.insert("name".into(), json!("丁公司"));
        match w.crm.create_record(&w.admin, Entity::Customer, f).await {
            Err(Error::Validation(v)) => {
                assert!(v.to_string().contains(&format!("'{bad}'")), "{bad}: {v}");
            }
            other => panic!("{bad} should be refused, got {other:?}"),
        }
    }
    for bad in ["0,500", "00,500.5"] {
        let mut f = fields(json!({"custom.deal": bad}));
        f.insert("name".into(), json!("丁公司"));
        assert!(
            matches!(
                w.crm.create_record(&w.admin, Entity::Customer, f).await,
                Err(Error::Validation(_))
            ),
            "{bad} is no amount"
        );
    }
    assert_eq!(
        customers(&w, &["custom.staff=1,234.5"]).await,
        set(&["甲公司"])
    );
    assert_eq!(
        customers(&w, &["custom.staff>1,000"]).await,
        set(&["甲公司"])
    );
    refused(&w, "custom.staff>1,5", "staff", "1,5").await;
    refused(&w, "custom.staff<1.234,56", "staff", "1.234,56").await;
    refused(&w, "custom.deal>0,500", "deal", "0,500").await;
}

/// Money filters read an amount in 元 as saving does (kept in 分 of CNY):
/// `100`, `¥100`, `100元` and `1,000.00` compare as saved, and an amount in
/// another currency (`$100`) is refused, not compared as 10 000 分.
pub async fn money_filters_read_amounts_in_yuan(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "deal", "成交额", CustomFieldType::Money, &[]).await;
    customer(&w, "甲公司", json!({"custom.deal": "¥100"})).await;
    customer(&w, "乙公司", json!({"custom.deal": "1,000元"})).await;
    customer(&w, "丙公司", json!({})).await;
    for same in ["100", "¥100", "100元", "100.00", "RMB 100", "100 CNY"] {
        assert_eq!(
            customers(&w, &[&format!("custom.deal={same}")]).await,
            set(&["甲公司"]),
            "{same}"
        );
    }
    assert_eq!(
        customers(&w, &["custom.deal>=¥1,000.00"]).await,
        set(&["乙公司"])
    );
    for other in ["$100", "100 USD", "€100"] {
        refused(&w, &format!("custom.deal={other}"), "deal", other).await;
    }
}

/// Tags and multi-select fields (stored as `,a,b,`): `in` matches records
/// holding any of the items, equal to nothing matches records holding none
/// (never every record), and items are read as stored options.
pub async fn tag_and_multi_select_filters_match_items(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(
        &w,
        "channels",
        "渠道",
        CustomFieldType::MultiSelect,
        &["Online", "展会", "电话"],
    )
    .await;
    customer(
        &w,
        "甲公司",
        json!({"tags": ["VIP", "重点"], "custom.channels": "online,展会"}),
    )
    .await;
    customer(
        &w,
        "乙公司",
        json!({"tags": "普通", "custom.channels": "电话"}),
    )
    .await;
    customer(&w, "丙公司", json!({"tags": [], "custom.channels": ""})).await;
    customer(&w, "丁公司", json!({})).await;
    assert_eq!(customers(&w, &["tags:in:VIP,重点"]).await, set(&["甲公司"]));
    assert_eq!(
        customers(&w, &["tags:in:普通,VIP"]).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(customers(&w, &["tags:in:无此标签"]).await, set(&[]));
    assert_eq!(customers(&w, &["tags=重点"]).await, set(&["甲公司"]));
    assert_eq!(customers(&w, &["tags="]).await, set(&["丙公司", "丁公司"]));
    assert_eq!(customers(&w, &["tags!="]).await, set(&["甲公司", "乙公司"]));
    let none = Cond::Eq("tags".into(), Json::Null);
    assert_eq!(
        query(&w, &w.admin, Entity::Customer, vec![none], None)
            .await
            .expect("tags equal to null"),
        set(&["丙公司", "丁公司"])
    );
    assert_eq!(
        customers(&w, &["custom.channels:in:ONLINE,电话"]).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        customers(&w, &["custom.channels=online"]).await,
        set(&["甲公司"])
    );
    assert_eq!(
        customers(&w, &["custom.channels="]).await,
        set(&["丙公司", "丁公司"])
    );
    assert_eq!(
        customers(&w, &["custom.channels!=展会"]).await,
        set(&["乙公司", "丙公司", "丁公司"])
    );
}

/// Select fields (custom and built-in choices) are filtered by their
/// options as stored whatever the case typed (saving matches options so);
/// a word that is no option matches nothing.
pub async fn select_filters_match_options_whatever_the_case(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(
        &w,
        "grade",
        "等级",
        CustomFieldType::Select,
        &["VIP", "Normal"],
    )
    .await;
    customer(&w, "甲公司", json!({"custom.grade": "vip"})).await;
    customer(&w, "乙公司", json!({"custom.grade": "NORMAL"})).await;
    customer(&w, "丙公司", json!({})).await;
    assert_eq!(customers(&w, &["custom.grade=vip"]).await, set(&["甲公司"]));
    assert_eq!(customers(&w, &["等级=Vip"]).await, set(&["甲公司"]));
    assert_eq!(
        customers(&w, &["custom.grade:in:normal,vIP"]).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        customers(&w, &["custom.grade!=NORMAL"]).await,
        set(&["甲公司", "丙公司"])
    );
    assert_eq!(customers(&w, &["custom.grade=gold"]).await, set(&[]));
    // Built-in choice fields alike.
    customer(&w, "丁公司", json!({"level": "b", "category": "vip"})).await;
    assert_eq!(customers(&w, &["level=b"]).await, set(&["丁公司"]));
    assert_eq!(
        customers(&w, &["客户分类:in:Vip,代理"]).await,
        set(&["丁公司"])
    );
}

/// User fields store the user's id: filters name the user by username,
/// display name or id, and an unknown user is refused as saving refuses
/// it.
pub async fn user_filters_name_users_as_saving_does(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "manager", "客户经理", CustomFieldType::User, &[]).await;
    customer(&w, "甲公司", json!({"custom.manager": "zhangsan"})).await;
    customer(
        &w,
        "乙公司",
        json!({"custom.manager": w.lisi.user_id.to_string()}),
    )
    .await;
    customer(&w, "丙公司", json!({})).await;
    assert_eq!(
        customers(&w, &["custom.manager=zhangsan"]).await,
        set(&["甲公司"])
    );
    assert_eq!(customers(&w, &["客户经理=张三"]).await, set(&["甲公司"]));
    assert_eq!(
        customers(&w, &["custom.manager:in:lisi,张三"]).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        customers(&w, &[&format!("custom.manager={}", w.zhangsan.user_id)]).await,
        set(&["甲公司"])
    );
    assert_eq!(
        customers(&w, &["custom.manager!=李四"]).await,
        set(&["甲公司", "丙公司"])
    );
    refused(&w, "custom.manager=nobody", "manager", "nobody").await;
    refused(&w, "custom.manager:in:lisi,nobody", "manager", "nobody").await;
    // The owner and the creator are named the same way.
    customer(&w, "丁公司", json!({"owner_id": "zhangsan"})).await;
    assert_eq!(
        customers(&w, &["owner_id=zhangsan"]).await,
        set(&["丁公司"])
    );
    assert_eq!(customers(&w, &["负责人=张三"]).await, set(&["丁公司"]));
    assert_eq!(
        customers(&w, &["owner_id:in:zhangsan,lisi"]).await,
        set(&["丁公司"])
    );
    assert_eq!(
        customers(&w, &[&format!("owner_id={}", w.zhangsan.user_id)]).await,
        set(&["丁公司"])
    );
    refused(&w, "负责人=nobody", "负责人", "nobody").await;
}

/// A reference (a contact's customer) is filtered by the record's code as
/// by its id, as saving takes either; a code no record has matches
/// nothing, without an error that would tell it from a hidden one.
pub async fn reference_filters_take_codes(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = customer(&w, "甲公司", json!({})).await;
    let b = customer(&w, "乙公司", json!({})).await;
    for (c, name) in [(&a, "钱七"), (&b, "孙八")] {
        w.crm
            .create_record(
                &w.admin,
                Entity::Contact,
                fields(json!({"customer_id": c.id.to_string(), "name": name})),
            )
            .await
            .expect("contact");
    }
    let contacts = |conds: Vec<String>| {
        let w = &w;
        async move {
            let conds: Vec<&str> = conds.iter().map(String::as_str).collect();
            find(w, Entity::Contact, &conds, None)
                .await
                .unwrap_or_else(|e| panic!("{conds:?}: {e}"))
        }
    };
    let code_a = a.code.clone().expect("code");
    let code_b = b.code.clone().expect("code");
    assert_eq!(
        contacts(vec![format!("customer_id={code_a}")]).await,
        set(&["钱七"])
    );
    assert_eq!(
        contacts(vec![format!("customer_id={}", a.id)]).await,
        set(&["钱七"])
    );
    assert_eq!(
        contacts(vec![format!("所属客户= {code_a} ")]).await,
        set(&["钱七"])
    );
    assert_eq!(
        contacts(vec![format!("customer_id:in:{code_a},{code_b}")]).await,
        set(&["钱七", "孙八"])
    );
    assert_eq!(
        contacts(vec![format!("customer_id!={code_b}")]).await,
        set(&["钱七"])
    );
    assert_eq!(
        contacts(vec!["customer_id=KH-19990101-9999".to_string()]).await,
        set(&[])
    );
}

/// A date and time written `2026年11月27日 14:30`, `2026.11.27 14:30`,
/// `20261127 14:30` or with full-width digits and colon keeps its time of
/// day, when parsed and when filtering timestamps; a time that cannot be
/// read is refused, never dropped.
pub async fn datetimes_keep_their_time_of_day(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // 10:00 in Beijing.
    customer(&w, "甲公司", json!({})).await;
    w.clock.advance(chrono::Duration::hours(5));
    // 15:00 in Beijing.
    customer(&w, "乙公司", json!({})).await;
    let want = Utc
        .with_ymd_and_hms(2026, 11, 27, 6, 30, 0)
        .single()
        .expect("time");
    for t in [
        "2026-11-27 14:30",
        "2026年11月27日 14:30",
        "2026.11.27 14:30",
        "20261127 14:30",
        "2026/11/27 14:30:00",
        "２０２６-１１-２７ １４：３０",
    ] {
        assert_eq!(w.crm.parse_datetime(t), Ok(want), "{t}");
        assert_eq!(
            customers(&w, &[&format!("created_at>={t}")]).await,
            set(&["乙公司"]),
            "{t}"
        );
        assert_eq!(
            customers(&w, &[&format!("created_at<{t}")]).await,
            set(&["甲公司"]),
            "{t}"
        );
    }
    assert_eq!(
        customers(&w, &["created_at>=2026年11月27日"]).await,
        set(&["甲公司", "乙公司"])
    );
    for bad in ["2026年11月27日 14点30分", "2026.11.27 25:00"] {
        assert!(w.crm.parse_datetime(bad).is_err(), "{bad}");
        refused(&w, &format!("created_at>={bad}"), "created_at", bad).await;
    }
}

/// A search text that is a whole phone number, written with a country
/// code, brackets, spaces or full-width digits, finds the customer or
/// contact holding it.
pub async fn search_finds_phone_numbers_as_written(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = customer(&w, "甲公司", json!({"phone": "13800138000"})).await;
    customer(&w, "乙公司", json!({"phone": "0755-87654321"})).await;
    customer(&w, "丙公司", json!({"phone": "010-62345678"})).await;
    w.crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(
                json!({"customer_id": c.id.to_string(), "name": "钱七", "mobile": "13912345678"}),
            ),
        )
        .await
        .expect("contact");
    let search = |q: &'static str, entity: Entity| {
        let w = &w;
        async move {
            find(w, entity, &[], Some(q))
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"))
        }
    };
    for q in [
        "+86 138 0013 8000",
        "+86-13800138000",
        "0086 138 0013 8000",
        "１３８００１３８０００",
        "138 0013 8000",
    ] {
        assert_eq!(search(q, Entity::Customer).await, set(&["甲公司"]), "{q}");
    }
    for q in ["(0755) 8765 4321", "（0755）87654321", "0755 8765 4321"] {
        assert_eq!(search(q, Entity::Customer).await, set(&["乙公司"]), "{q}");
    }
    // Part of a number still matches as typed.
    assert_eq!(search("8765", Entity::Customer).await, set(&["乙公司"]));
    assert_eq!(
        search("+86 139 1234 5678", Entity::Contact).await,
        set(&["钱七"])
    );
    assert_eq!(
        search("１３９１２３４５６７８", Entity::Contact).await,
        set(&["钱七"])
    );
}

/// Deleting a customer custom field switches its duplicate rule off in the
/// same change: a binned customer holding a value another customer took
/// since can be restored, the report shows no groups of the field, and
/// switching the rule off (again) is accepted although the field is gone.
pub async fn deleting_a_custom_field_drops_its_duplicate_rule(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "badge", "工牌号", CustomFieldType::Text, &[]).await;
    define(&w, "code2", "旧编号", CustomFieldType::Text, &[]).await;
    w.crm
        .set_dedupe_rule(&w.admin, "custom.badge", DedupeMode::Block)
        .await
        .expect("badge refuses duplicates");
    w.crm
        .set_dedupe_rule(&w.admin, "custom.code2", DedupeMode::Warn)
        .await
        .expect("code2 reports duplicates");
    let a = customer(
        &w,
        "甲公司",
        json!({"custom.badge": "B-1", "custom.code2": "X"}),
    )
    .await;
    customer(&w, "乙公司", json!({"custom.code2": "X"})).await;
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    assert!(
        report.groups.iter().any(|g| g.field == "custom.code2"),
        "{report:?}"
    );
    let binned = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[a.id])
        .await;
    assert_eq!(binned.done, vec![a.id], "{binned:?}");
    customer(&w, "丙公司", json!({"custom.badge": "B-1"})).await;
    for key in ["badge", "code2"] {
        let def = w
            .crm
            .custom_fields(&w.admin, Entity::Customer)
            .await
            .expect("fields")
            .into_iter()
            .find(|d| d.key == key)
            .expect("field");
        w.crm
            .delete_custom_field(&w.admin, def.id, def.version)
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {e}"));
    }
    let rules = w.crm.dedupe_rules(&w.admin).await.expect("rules");
    assert!(
        rules
            .iter()
            .all(|r| !r.field.starts_with("custom.") || r.mode == DedupeMode::Off),
        "{rules:?}"
    );
    let restored = w
        .crm
        .restore_records(&w.admin, Entity::Customer, &[a.id])
        .await;
    assert_eq!(restored.done, vec![a.id], "{restored:?}");
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    assert!(
        report
            .groups
            .iter()
            .all(|g| !g.field.starts_with("custom.")),
        "{report:?}"
    );
    // Defined again, the field starts without a rule: the old one was
    // switched off when it was deleted, not merely ignored.
    define(&w, "badge", "工牌号", CustomFieldType::Text, &[]).await;
    let rules = w.crm.dedupe_rules(&w.admin).await.expect("rules");
    assert!(
        rules
            .iter()
            .all(|r| r.field != "custom.badge" || r.mode == DedupeMode::Off),
        "{rules:?}"
    );
    customer(&w, "丁公司", json!({"custom.badge": "B-1"})).await;
    // A rule of a field that is gone may be switched off (again), not on.
    for field in ["custom.code2", "code2"] {
        w.crm
            .set_dedupe_rule(&w.admin, field, DedupeMode::Off)
            .await
            .unwrap_or_else(|e| panic!("switching off {field}: {e}"));
    }
    assert!(
        matches!(
            w.crm
                .set_dedupe_rule(&w.admin, "custom.code2", DedupeMode::Warn)
                .await,
            Err(Error::Validation(_))
        ),
        "a rule cannot be switched on for a field that is gone"
    );
    assert!(
        matches!(
            w.crm
                .set_dedupe_rule(&w.admin, "custom.never_was", DedupeMode::Off)
                .await,
            Err(Error::Validation(_))
        ),
        "a field that never had a rule is still unknown"
    );
}

/// A caller's conditions holding more terms and values than every store
/// binds alike are refused, naming the problem, on every store (a chain of
/// 40 000 `or`s used to run on PostgreSQL and fail inside SQLite); large
/// filters below the bound, and `in` lists of any length, run.
pub async fn oversized_filters_are_refused_alike(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "region", "区域", CustomFieldType::Text, &[]).await;
    customer(&w, "甲公司", json!({"custom.region": "华东"})).await;
    customer(&w, "乙公司", json!({"custom.region": "华南"})).await;
    let names = |n: usize, last: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!("无此公司{i}"))
            .chain([last.to_string()])
            .collect()
    };
    let or_of = |field: &str, values: &[String]| {
        Cond::Or(
            values
                .iter()
                .map(|v| Cond::Eq(field.to_string(), json!(v)))
                .collect(),
        )
    };
    for (cond, what) in [
        (or_of("name", &names(40_000, "甲公司")), "40 000 names"),
        (
            or_of("custom.region", &names(4_000, "华东")),
            "4 000 custom values",
        ),
    ] {
        match query(&w, &w.admin, Entity::Customer, vec![cond.clone()], None).await {
            Err(Error::Validation(v)) => {
                let text = v.to_string();
                assert!(
                    text.contains("filter") && text.contains("one `in` condition"),
                    "{what}: {text}"
                );
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        // The export reads the same conditions.
        let refused = w
            .crm
            .export_cursor(
                &w.admin,
                Entity::Customer,
                ListQuery {
                    conditions: vec![cond],
                    ..ListQuery::default()
                },
                Vec::new(),
                100,
            )
            .await;
        assert!(
            matches!(refused, Err(Error::Validation(_))),
            "{what}: export {:?}",
            refused.err()
        );
    }
    // Below the bound, and as one `in` list of any length, they run.
    assert_eq!(
        query(
            &w,
            &w.admin,
            Entity::Customer,
            vec![or_of("name", &names(3_000, "甲公司"))],
            None
        )
        .await
        .unwrap_or_else(|e| panic!("3 000 names: {e}")),
        set(&["甲公司"])
    );
    let list = Cond::In(
        "name".into(),
        names(40_000, "乙公司")
            .into_iter()
            .map(|n| json!(n))
            .collect(),
    );
    assert_eq!(
        query(&w, &w.admin, Entity::Customer, vec![list], None)
            .await
            .unwrap_or_else(|e| panic!("40 000 names in one list: {e}")),
        set(&["乙公司"])
    );
}

/// A custom field of `entity` with these labels and options, as defining
/// it answers.
async fn try_define(
    w: &World,
    entity: Entity,
    key: &str,
    label: &str,
    label_en: Option<&str>,
    field_type: CustomFieldType,
    options: &[&str],
) -> Result<crate::custom::CustomFieldDef, Error> {
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity,
                key: key.into(),
                label: label.into(),
                label_en: label_en.map(str::to_string),
                field_type,
                options: options.iter().map(|o| o.to_string()).collect(),
                required: false,
                unique: false,
            },
        )
        .await
}

/// A custom field's label (Chinese or English, any case, full-width
/// aside), given or changed to, cannot be a built-in field's name, label
/// or alias, a standard column's label (编号, 负责人, 版本 …), a header an
/// import or export gives another column (客户编号 / Customer code,
/// 联系人编号 / Contact code), a header a customer import reads as a
/// contact column (联系人…, Contact…), or another custom field's label of
/// the entity: exports would write two columns of that name, which the
/// import refuses, and a value under it could never reach the custom
/// field (or would be read as the other column). A label that merely
/// contains one is fine.
pub async fn custom_labels_name_no_other_column(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let text = CustomFieldType::Text;
    for (entity, label, label_en, what) in [
        (Entity::Customer, "城市", None, "城市"),
        (Entity::Customer, "城市二", Some("city"), "城市"),
        (Entity::Customer, " ＣＩＴＹ ", None, "城市"),
        (Entity::Customer, "编号", None, "编号"),
        (Entity::Customer, "负责人", None, "负责人"),
        (Entity::Customer, "客户负责人", Some("OWNER"), "负责人"),
        (Entity::Customer, "创建时间", None, "创建时间"),
        (Entity::Customer, "所属部门", None, "所属部门"),
        (Entity::Customer, "联系人1姓名", None, "contact"),
        (
            Entity::Customer,
            "主要联系人",
            Some("Contact 1 Mobile"),
            "contact",
        ),
        (Entity::Contact, "所属客户", None, "所属客户"),
        (Entity::Contact, "客户", None, "所属客户"),
        (Entity::FollowUp, "联系人", None, "联系人"),
        // The columns imports and exports give other things: the record
        // code by the entity's name for it, a contact's customer by code,
        // the version.
        (Entity::Customer, "客户编号", None, "客户编号"),
        (
            Entity::Customer,
            "客户代码",
            Some("customer CODE"),
            "客户编号",
        ),
        (Entity::Contact, "客户编号", None, "客户编号"),
        (
            Entity::Contact,
            "客户代码",
            Some("Customer Code"),
            "客户编号",
        ),
        (
            Entity::Contact,
            "Ｃｕｓｔｏｍｅｒ ｃｏｄｅ",
            None,
            "客户编号",
        ),
        (Entity::Contact, "联系人编号", None, "联系人编号"),
        (
            Entity::Contact,
            "联系人代码",
            Some("contact code"),
            "联系人编号",
        ),
        (Entity::Contact, "版本", None, "版本"),
        (Entity::Customer, "修订", Some("VERSION"), "版本"),
    ] {
        match try_define(&w, entity, "extra", label, label_en, text, &[]).await {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(
                    m.contains(label_en.unwrap_or(label).trim()) && m.contains(what),
                    "{entity} {label}: {m}"
                );
            }
            other => panic!("{entity} {label}: expected a refusal, got {other:?}"),
        }
    }
    // Labels that only contain one are fine, as are other entities' names.
    try_define(
        &w,
        Entity::Customer,
        "city2",
        "所在城市",
        Some("Home city"),
        text,
        &[],
    )
    .await
    .expect("a label holding a built-in one");
    try_define(
        &w,
        Entity::Contact,
        "contact_grade",
        "联系人等级",
        None,
        text,
        &[],
    )
    .await
    .expect("contacts read no contact columns");
    // Nor can a label be changed to one.
    let spare = try_define(&w, Entity::Contact, "spare", "备用", None, text, &[])
        .await
        .expect("a contact field");
    let spare_customer = try_define(&w, Entity::Customer, "spare", "备用", None, text, &[])
        .await
        .expect("a customer field");
    for (def, label, label_en, what) in [
        (&spare, Some("客户编号"), None, "客户编号"),
        (&spare, None, Some("customer code"), "客户编号"),
        (&spare, Some("联系人编号"), None, "联系人编号"),
        (&spare_customer, Some("客户编号"), None, "客户编号"),
        (&spare_customer, None, Some("Version"), "版本"),
    ] {
        let change = CustomFieldUpdate {
            label: label.map(str::to_string),
            label_en: label_en.map(str::to_string),
            ..CustomFieldUpdate::default()
        };
        match w
            .crm
            .update_custom_field(&w.admin, def.id, def.version, change)
            .await
        {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(m.contains(what), "{label:?} {label_en:?}: {m}");
            }
            other => panic!("{label:?} {label_en:?}: expected a refusal, got {other:?}"),
        }
    }
    w.crm
        .delete_custom_field(&w.admin, spare_customer.id, spare_customer.version)
        .await
        .expect("delete the spare customer field");
    // Another custom field's label, in either language and any case.
    for (label, label_en) in [
        ("所在城市", None),
        ("家乡城市", Some("home CITY")),
        ("HOME CITY", None),
    ] {
        match try_define(&w, Entity::Customer, "city3", label, label_en, text, &[]).await {
            Err(Error::Duplicate { message, .. }) => {
                assert!(message.contains("city2"), "{label}: {message}");
            }
            other => panic!("{label}: expected a duplicate, got {other:?}"),
        }
    }
    let defs = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields");
    assert_eq!(
        defs.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
        vec!["city2"]
    );
}

/// Option lists hold each option once (trimmed, any case aside), for
/// custom select fields and built-in choice fields alike, and only select
/// and multi-select fields take options.
pub async fn option_lists_hold_each_option_once(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for (ty, options) in [
        (CustomFieldType::Select, &["a", "b", " A "][..]),
        (CustomFieldType::MultiSelect, &["高", "高"][..]),
    ] {
        match try_define(&w, Entity::Customer, "tier", "档次", None, ty, options).await {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(m.contains("options") && m.contains("twice"), "{m}");
            }
            other => panic!("{options:?}: expected a refusal, got {other:?}"),
        }
    }
    for ty in [CustomFieldType::Text, CustomFieldType::Number] {
        match try_define(&w, Entity::Customer, "tier", "档次", None, ty, &["a", "b"]).await {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(
                    m.contains("options") && m.contains("takes no options"),
                    "{m}"
                );
            }
            other => panic!("{ty:?}: expected a refusal, got {other:?}"),
        }
    }
    let def = try_define(
        &w,
        Entity::Customer,
        "tier",
        "档次",
        None,
        CustomFieldType::Select,
        &["a", "b"],
    )
    .await
    .expect("distinct options");
    assert_eq!(def.options, vec!["a", "b"]);
    let list = w
        .crm
        .picklist_with_version(&w.admin, Entity::Customer, "category")
        .await
        .expect("list");
    let twice: Vec<String> = ["潜在", "普通", "VIP", "vip"]
        .iter()
        .map(|o| o.to_string())
        .collect();
    match w
        .crm
        .set_picklist(&w.admin, Entity::Customer, "category", list.version, &twice)
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(m.contains("vip") && m.contains("twice"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        w.crm
            .picklist_with_version(&w.admin, Entity::Customer, "category")
            .await
            .expect("list"),
        list,
        "unchanged"
    );
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            list.version,
            &["潜在".to_string(), "VIP".to_string()],
        )
        .await
        .expect("distinct options");
}

/// The events announced after `seen` (a consumer's position), as type and
/// payload.
async fn events_after(w: &World, seen: i64) -> Vec<(String, Json)> {
    w.crm
        .pending_events("field-mirror", 100_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.seq > seen)
        .map(|e| (e.event.event_type.clone(), e.event.payload.to_value()))
        .collect()
}

/// Custom fields defined, changed and deleted are announced
/// (`custom_field.created` …) with their entity, key, label and type, a
/// change with what changed (options added and removed); an option still
/// held by a record — live, archived or in the recycle bin — cannot be
/// removed, the refusal naming the option, how many records hold it and
/// their codes, and it can be once no record holds it. Relabelling and
/// adding options stay allowed.
pub async fn custom_field_changes_are_announced_and_keep_held_options(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let seen = w
        .crm
        .pending_events("field-mirror", 100_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    define(
        &w,
        "region",
        "区域",
        CustomFieldType::Select,
        &["华东", "华北", "华南"],
    )
    .await;
    define(
        &w,
        "channels",
        "渠道",
        CustomFieldType::MultiSelect,
        &["线上", "展会", "电话"],
    )
    .await;
    let a = customer(
        &w,
        "甲公司",
        json!({"custom.region": "华东", "custom.channels": "展会"}),
    )
    .await;
    let b = customer(&w, "乙公司", json!({"custom.region": "华北"})).await;
    let c = customer(&w, "丙公司", json!({"custom.channels": "线上,电话"})).await;
    let r = w
        .crm
        .archive_records(&w.admin, Entity::Customer, &[b.id])
        .await;
    assert!(r.refused.is_empty(), "{r:?}");
    let r = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert!(r.refused.is_empty(), "{r:?}");
    let field = |key: &'static str| {
        let w = &w;
        async move {
            w.crm
                .custom_fields(&w.admin, Entity::Customer)
                .await
                .expect("fields")
                .into_iter()
                .find(|d| d.key == key)
                .expect("field")
        }
    };
    let options = |o: &[&str]| CustomFieldUpdate {
        options: Some(o.iter().map(|o| o.to_string()).collect()),
        ..CustomFieldUpdate::default()
    };
    // Relabelling and adding an option.
    let region = field("region").await;
    let region = w
        .crm
        .update_custom_field(
            &w.admin,
            region.id,
            region.version,
            CustomFieldUpdate {
                label: Some("销售区域".into()),
                options: Some(vec![
                    "华东".into(),
                    "华北".into(),
                    "华南".into(),
                    "西南".into(),
                ]),
                ..CustomFieldUpdate::default()
            },
        )
        .await
        .expect("relabelled, an option added");
    assert_eq!(region.label, "销售区域");
    assert_eq!(region.options, vec!["华东", "华北", "华南", "西南"]);
    // Options held by a live, an archived and a binned record stay.
    for (key, keep, gone, code) in [
        ("region", &["华北", "华南", "西南"][..], "华东", &a),
        ("region", &["华东", "华南", "西南"][..], "华北", &b),
        ("channels", &["线上", "展会"][..], "电话", &c),
    ] {
        let d = field(key).await;
        let code = code.code.clone().expect("code");
        match w
            .crm
            .update_custom_field(&w.admin, d.id, d.version, options(keep))
            .await
        {
            Err(Error::Validation(v)) => {
                let text = v.to_string();
                assert!(
                    text.contains(&format!("'{gone}'"))
                        && text.contains("held by 1 ")
                        && text.contains(&code)
                        && text.contains("first"),
                    "{text}"
                );
            }
            other => panic!("removing {gone} should be refused, got {other:?}"),
        }
        assert_eq!(field(key).await.version, d.version, "{key} unchanged");
    }
    // An option nobody holds goes; one held goes once nobody holds it.
    let region = field("region").await;
    let region = w
        .crm
        .update_custom_field(
            &w.admin,
            region.id,
            region.version,
            options(&["华东", "华北", "西南"]),
        )
        .await
        .expect("an option nobody holds removed");
    assert_eq!(region.options, vec!["华东", "华北", "西南"]);
    let a = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"custom.region": "西南"})),
        )
        .await
        .expect("region changed");
    assert_eq!(a.custom.get("region"), Some(&json!("西南")));
    w.crm
        .update_custom_field(
            &w.admin,
            region.id,
            region.version,
            options(&["华北", "西南"]),
        )
        .await
        .expect("an option no longer held removed");
    let channels = field("channels").await;
    w.crm
        .delete_custom_field(&w.admin, channels.id, channels.version)
        .await
        .expect("deleted");
    let got = events_after(&w, seen).await;
    let of = |kind: &str| -> Vec<&Json> {
        got.iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, p)| p)
            .collect()
    };
    let created = of("custom_field.created");
    assert_eq!(created.len(), 2, "{got:?}");
    for p in &created {
        for key in ["entity", "key", "label", "type", "options"] {
            assert!(!p[key].is_null(), "{key} in {p}");
        }
    }
    assert!(created.iter().any(|p| p["key"] == "region"
        && p["entity"] == "customer"
        && p["type"] == "select"
        && p["label"] == "区域"));
    let updated = of("custom_field.updated");
    assert_eq!(updated.len(), 3, "only the changes made: {got:?}");
    let first = updated[0];
    assert_eq!(first["key"], "region");
    assert_eq!(first["label"], "销售区域");
    assert_eq!(first["options_added"], json!(["西南"]));
    assert_eq!(first["options_removed"], json!([]));
    let changed: BTreeSet<&str> = first["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert_eq!(changed, ["label", "options"].into_iter().collect());
    assert_eq!(updated[1]["options_removed"], json!(["华南"]));
    assert_eq!(updated[2]["options_removed"], json!(["华东"]));
    let deleted = of("custom_field.deleted");
    assert_eq!(deleted.len(), 1, "{got:?}");
    assert_eq!(deleted[0]["key"], "channels");
    assert_eq!(deleted[0]["label"], "渠道");
    assert_eq!(deleted[0]["type"], "multi_select");
}

/// A contains or starts-with condition typed in either width and letter
/// case finds every spelling: half width, full width, capitals, a mix;
/// `%` and `_` stay literal.
pub async fn text_filters_find_either_width(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let apple = customer(&w, "Apple科技", json!({})).await;
    customer(&w, "ＡＰＰＬＥ贸易", json!({})).await;
    customer(&w, "appＬe服务", json!({})).await;
    customer(&w, "香蕉公司", json!({})).await;
    customer(&w, "百分之50%公司", json!({})).await;
    let all = set(&["Apple科技", "ＡＰＰＬＥ贸易", "appＬe服务"]);
    for typed in [
        "name~ａｐｐ",
        "name~app",
        "name~APP",
        "name^ａｐｐ",
        "name^App",
    ] {
        assert_eq!(customers(&w, &[typed]).await, all, "{typed}");
    }
    assert_eq!(customers(&w, &["name~ple"]).await, all);
    assert_eq!(customers(&w, &["name~le服务"]).await, set(&["appＬe服务"]));
    assert_eq!(customers(&w, &["name~50%"]).await, set(&["百分之50%公司"]));
    assert_eq!(customers(&w, &["name~5_"]).await, set(&[]));
    // A code typed with a Chinese input method, lower case and full width.
    let typed: String = apple
        .code
        .as_deref()
        .expect("code")
        .to_lowercase()
        .chars()
        .map(crate::validate::fullwidth)
        .collect();
    assert_eq!(
        customers(&w, &[&format!("code={typed}")]).await,
        set(&["Apple科技"])
    );
    let contact = w
        .crm
        .create_record(
            &w.admin,
            crate::entity::Entity::Contact,
            crate::testing::service_suite::fields(
                json!({"customer_id": apple.id.to_string(), "name": "联系人甲"}),
            ),
        )
        .await
        .expect("contact");
    let found = w
        .crm
        .list_records(
            &w.admin,
            crate::entity::Entity::Contact,
            &ListQuery::default()
                .filter(crate::query::Cond::parse(&format!("customer_id={typed}")).expect("cond")),
        )
        .await
        .expect("contacts");
    assert_eq!(
        found.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![contact.id]
    );
}

/// `Not(c)` matches exactly the records `c` does not, blanks included (as
/// `!=` does), through comparisons, lists, text matches, `And`, `Or` and
/// double negation; conditions nested deeper than the engine takes are
/// refused by name, up to the depth a JSON query can hold, instead of
/// running into the end of the stack.
pub async fn not_matches_what_its_condition_does_not(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "headcount", "人数", CustomFieldType::Number, &[]).await;
    customer(
        &w,
        "甲公司",
        json!({"level": "A", "custom.headcount": "10"}),
    )
    .await;
    customer(&w, "乙公司", json!({})).await;
    customer(&w, "丙公司", json!({"level": "B", "custom.headcount": "3"})).await;
    let not = |c: &str| Cond::Not(Box::new(parse(c)));
    let names = |conds: Vec<Cond>| {
        let w = &w;
        async move {
            query(w, &w.admin, Entity::Customer, conds, None)
                .await
                .expect("accepted")
        }
    };
    for (c, want) in [
        ("level=A", &["乙公司", "丙公司"][..]),
        ("level!=A", &["甲公司"][..]),
        ("custom.headcount<5", &["甲公司", "乙公司"][..]),
        ("custom.headcount>=5", &["乙公司", "丙公司"][..]),
        ("level:in:A,B", &["乙公司"][..]),
        ("name~甲", &["乙公司", "丙公司"][..]),
        ("level:null", &["甲公司", "丙公司"][..]),
    ] {
        assert_eq!(names(vec![not(c)]).await, set(want), "not {c}");
        // Whatever a condition and its negation match, together, is all.
        let mut both = names(vec![parse(c)]).await;
        both.extend(names(vec![not(c)]).await);
        assert_eq!(both, set(&["甲公司", "乙公司", "丙公司"]), "{c}");
    }
    let and = Cond::And(vec![parse("level=A"), parse("name~甲")]);
    assert_eq!(
        names(vec![Cond::Not(Box::new(and))]).await,
        set(&["乙公司", "丙公司"])
    );
    let or = Cond::Or(vec![parse("level=A"), parse("level=B")]);
    assert_eq!(names(vec![Cond::Not(Box::new(or))]).await, set(&["乙公司"]));
    assert_eq!(
        names(vec![Cond::Not(Box::new(not("level=A")))]).await,
        set(&["甲公司"])
    );
    // Nested to the limit it runs; one deeper, or far deeper, is refused.
    let nested = |depth: usize| {
        let mut c = parse("level=A");
        for _ in 1..depth {
            c = Cond::Not(Box::new(c));
        }
        c
    };
    let deepest = nested(crate::query::MAX_COND_DEPTH);
    assert_eq!(deepest.depth(), crate::query::MAX_COND_DEPTH);
    names(vec![deepest]).await;
    // (As deep as a JSON query deserialises: serde_json stops at 128.)
    for depth in [crate::query::MAX_COND_DEPTH + 1, 100, 127] {
        match query(&w, &w.admin, Entity::Customer, vec![nested(depth)], None).await {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(m.contains(&format!("{depth} levels")), "{m}");
            }
            other => panic!("depth {depth}: {other:?}"),
        }
    }
}

/// A host clock past the years dates are kept in (a broken one) does not
/// bring the engine down: it is taken as the nearest end of the years
/// 1000 to 9999, and records get four-digit dates in their codes.
pub async fn a_broken_host_clock_is_held_to_four_digit_years(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for (at, year) in [
        (chrono::DateTime::<Utc>::MAX_UTC, "9999"),
        (chrono::DateTime::<Utc>::MIN_UTC, "1000"),
    ] {
        w.clock.set(at);
        let r = customer(&w, &format!("时钟{year}有限公司"), json!({})).await;
        let code = r.code.clone().unwrap_or_default();
        assert!(code.starts_with(&format!("KH-{year}")), "{code}");
        assert_eq!(w.crm.today().format("%Y").to_string(), year);
    }
}

/// A JSON object, or a list where the field takes one value, is refused by
/// the field's name instead of being saved as its JSON text (`{"a":1}` as a
/// customer's name); tags and multi-select fields still take lists.
pub async fn structured_values_are_no_text(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(
        &w,
        "langs",
        "语言",
        CustomFieldType::MultiSelect,
        &["德语", "英语"],
    )
    .await;
    for (field, value) in [
        ("name", json!({"a": 1})),
        ("name", json!(["甲", "乙"])),
        ("notes", json!({"text": "备注"})),
        ("level", json!(["A"])),
    ] {
        let mut f = fields(json!({"name": "结构值有限公司"}));
        f.insert(field.to_string(), value.clone());
        match w.crm.create_record(&w.admin, Entity::Customer, f).await {
            Err(Error::Validation(v)) => {
                let m = v.to_string();
                assert!(
                    m.contains(field) && m.contains("JSON object or list"),
                    "{m}"
                );
            }
            other => panic!("{field}={value}: {other:?}"),
        }
    }
    let r = customer(
        &w,
        "列表值有限公司",
        json!({"tags": ["重点", "华北"], "custom.langs": ["德语", "英语"]}),
    )
    .await;
    assert_eq!(r.fields["name"], json!("列表值有限公司"));
}

/// A NUL character in a lookup, a custom field's definition or a consumer's
/// name is the caller's bad input on every store: a validation error naming
/// the field, never a store failure (which a host would take for its
/// database going away); in a value it is dropped, from custom text as
/// from built-in text.
pub async fn nul_characters_are_refused_as_input(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "erp", "ERP编码", CustomFieldType::Text, &[]).await;
    let invalid = |what: &str, got: Result<(), Error>, field: &str| match got {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(m.contains(field) && m.contains("NUL"), "{what}: {m}");
        }
        other => panic!("{what}: expected a validation error, got {other:?}"),
    };
    invalid(
        "record by code",
        w.crm
            .get_record_by_code(&w.admin, Entity::Customer, "KH\0-1")
            .await
            .map(drop),
        "code",
    );
    invalid(
        "user by username",
        w.crm.user_by_username(&w.admin, "ad\0min").await.map(drop),
        "username",
    );
    // In a value, NUL is dropped, from custom text as from a built-in
    // field's.
    let r = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            fields(json!({"name": "空字符\u{0}有限公司", "custom.erp": "E\u{0}1"})),
        )
        .await
        .expect("saved without the NUL");
    assert_eq!(
        (r.fields["name"].clone(), r.custom["erp"].clone()),
        (json!("空字符有限公司"), json!("E1"))
    );
    for (what, new) in [
        ("label", ("bad1", "标\0签", vec![])),
        ("options", ("bad2", "选项", vec!["甲\0".to_string()])),
    ] {
        let got = w
            .crm
            .define_custom_field(
                &w.admin,
                NewCustomField {
                    entity: Entity::Customer,
                    key: new.0.into(),
                    label: new.1.into(),
                    label_en: None,
                    field_type: CustomFieldType::Select,
                    options: if new.2.is_empty() {
                        vec!["甲".into()]
                    } else {
                        new.2
                    },
                    required: false,
                    unique: false,
                },
            )
            .await
            .map(drop);
        invalid(what, got, what);
    }
    invalid(
        "consumer",
        w.crm.pending_events("erp\0sync", 10).await.map(drop),
        "consumer",
    );
}

/// Adds a user with a display name (another user may have it too).
async fn add_user(w: &World, username: &str, name: &str) -> crate::org::User {
    w.crm
        .create_user(
            &w.admin,
            crate::org::NewUser {
                username: username.into(),
                display_name: name.into(),
                department_id: Some(w.group1),
                ..crate::org::NewUser::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("add {username}: {e}"))
}

/// Deactivates a user.
async fn deactivate(w: &World, id: crate::ids::UserId) {
    let u = w.crm.user(&w.admin, id).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            id,
            u.version,
            crate::org::UserPatch {
                active: Some(false),
                ..crate::org::UserPatch::default()
            },
        )
        .await
        .expect("deactivate");
}

/// The validation message of a refused save.
fn refusal<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) -> String {
    match r {
        Err(Error::Validation(v)) => v.to_string(),
        other => panic!("{what}: expected a validation error, got {other:?}"),
    }
}

/// Saving names users as filters and imports do: the owner and a user
/// field take an id, a username, a display name only one user has, or
/// `name (username)`; a display name two users share is refused naming
/// both usernames. A deactivated user is given nothing new — as owner or
/// in a user field, on create and on edit — while a record keeps the one
/// its field holds, and a duplicate check may still look by them.
pub async fn saving_names_users_as_filters_do(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "am", "客户经理", CustomFieldType::User, &[]).await;
    let a = customer(&w, "甲公司", json!({"客户经理": "张三", "负责人": "李四"})).await;
    assert_eq!(a.owner_id, Some(w.lisi.user_id));
    assert_eq!(
        a.custom.get("am"),
        Some(&json!(w.zhangsan.user_id.to_string()))
    );
    let a = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"custom.am": "王五"})),
        )
        .await
        .expect("edit by display name");
    assert_eq!(
        a.custom.get("am"),
        Some(&json!(w.wangwu.user_id.to_string()))
    );
    // A name two users share names neither.
    let other = add_user(&w, "zhangsan2", "张三").await;
    for (field, value) in [("custom.am", "张三"), ("owner_id", "张三")] {
        let m = refusal(
            w.crm
                .create_record(
                    &w.admin,
                    Entity::Customer,
                    fields(json!({"name": "乙公司", field: value})),
                )
                .await,
            field,
        );
        assert!(
            m.contains(field) && m.contains("zhangsan,") && m.contains("zhangsan2"),
            "{field}: {m}"
        );
    }
    let m = refusal(
        w.crm
            .update_record(
                &w.admin,
                Entity::Customer,
                a.id,
                a.version,
                fields(json!({"custom.am": "张三"})),
            )
            .await,
        "edit",
    );
    assert!(m.contains("zhangsan2"), "{m}");
    // Told apart as exports write them.
    let a = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"custom.am": "张三 (zhangsan2)"})),
        )
        .await
        .expect("name (username)");
    assert_eq!(a.custom.get("am"), Some(&json!(other.id.to_string())));
    refusal(
        w.crm
            .update_record(
                &w.admin,
                Entity::Customer,
                a.id,
                a.version,
                fields(json!({"custom.am": "nobody"})),
            )
            .await,
        "no such user",
    );
    // A deactivated user: kept where held, given to no one else.
    deactivate(&w, other.id).await;
    let a = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"custom.am": "zhangsan2", "city": "苏州"})),
        )
        .await
        .expect("the user the field holds stays");
    assert_eq!(a.custom.get("am"), Some(&json!(other.id.to_string())));
    let b = customer(&w, "丙公司", json!({})).await;
    for value in ["zhangsan2", &other.id.to_string()] {
        let m = refusal(
            w.crm
                .update_record(
                    &w.admin,
                    Entity::Customer,
                    b.id,
                    b.version,
                    fields(json!({"custom.am": value})),
                )
                .await,
            value,
        );
        assert!(
            m.contains("custom.am") && m.contains("zhangsan2 is deactivated"),
            "{value}: {m}"
        );
    }
    let m = refusal(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "丁公司", "客户经理": "zhangsan2"})),
            )
            .await,
        "create",
    );
    assert!(m.contains("zhangsan2 is deactivated"), "{m}");
    let m = refusal(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "丁公司", "owner_id": "zhangsan2"})),
            )
            .await,
        "owner",
    );
    assert!(m.contains("zhangsan2 is deactivated"), "{m}");
    // Looking for the customers a deactivated user is the manager of.
    w.crm
        .set_dedupe_rule(&w.admin, "custom.am", DedupeMode::Warn)
        .await
        .expect("rule");
    let found = w
        .crm
        .find_duplicates(&w.admin, &fields(json!({"custom.am": "zhangsan2"})))
        .await
        .expect("a check by a deactivated user");
    assert!(found.iter().any(|m| m.customer == Some(a.id)), "{found:?}");
}

/// The duplicate report, the matches of a customer and the refusal of a
/// duplicate show a custom key's value as people type it: a money field's
/// in 元 (not the 分 kept), a number's without a needless fraction, a user
/// field's by the user's name; so does a unique field's refusal.
pub async fn duplicates_show_values_as_typed(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "am", "客户经理", CustomFieldType::User, &[]).await;
    define(&w, "budget", "预算", CustomFieldType::Money, &[]).await;
    define(&w, "headcount", "员工数", CustomFieldType::Number, &[]).await;
    for f in ["custom.am", "custom.budget", "custom.headcount"] {
        w.crm
            .set_dedupe_rule(&w.admin, f, DedupeMode::Warn)
            .await
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let values =
        json!({"custom.am": "zhangsan", "custom.budget": "12345.67", "custom.headcount": "120"});
    let a = customer(&w, "甲公司", values.clone()).await;
    customer(&w, "乙公司", values.clone()).await;
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    let shown: BTreeSet<(String, String, String)> = report
        .groups
        .iter()
        .map(|g| (g.field.clone(), g.value.clone(), g.reason.clone()))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        ("custom.am", "张三", "same 客户经理 张三"),
        ("custom.budget", "12345.67", "same 预算 12345.67"),
        ("custom.headcount", "120", "same 员工数 120"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(shown, expected, "{report:?}");
    let matches = w.crm.duplicates_of(&w.admin, a.id).await.expect("matches");
    let shown: BTreeSet<(String, String)> = matches
        .iter()
        .map(|m| (m.field.clone(), m.value.clone()))
        .collect();
    assert_eq!(
        shown,
        expected
            .iter()
            .map(|(f, v, _)| (f.clone(), v.clone()))
            .collect(),
        "{matches:?}"
    );
    // A refusing rule names the value so too.
    for (f, value, typed) in [
        ("custom.budget", json!("12345.67"), "预算 12345.67"),
        ("custom.headcount", json!(120), "员工数 120 "),
        ("custom.am", json!("zhangsan"), "客户经理 张三 "),
    ] {
        w.crm
            .set_dedupe_rule(&w.admin, f, DedupeMode::Block)
            .await
            .expect("block");
        match w
            .crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "丙公司", f: value})),
            )
            .await
        {
            Err(Error::Duplicate { message, .. }) => {
                assert!(message.contains(typed), "{f}: {message}");
            }
            other => panic!("{f}: expected a duplicate, got {other:?}"),
        }
        w.crm
            .set_dedupe_rule(&w.admin, f, DedupeMode::Off)
            .await
            .expect("off");
    }
    // A unique field's refusal names the amount in 元 too.
    let def = w
        .crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "deposit".into(),
                label: "保证金".into(),
                label_en: None,
                field_type: CustomFieldType::Money,
                options: Vec::new(),
                required: false,
                unique: true,
            },
        )
        .await
        .expect("unique money field");
    customer(&w, "丁公司", json!({"custom.deposit": "500"})).await;
    match w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            fields(json!({"name": "戊公司", "custom.deposit": "500.00"})),
        )
        .await
    {
        Err(Error::Duplicate { message, .. }) => {
            assert!(message.contains("保证金 500.00 "), "{message}");
        }
        other => panic!("{}: expected a duplicate, got {other:?}", def.key),
    }
}

/// A custom field deleted (or defined again since) still tells how the
/// values written under it read: [`crate::custom::field_as_of`] finds the
/// definition a key had when a history entry was written.
pub async fn deleted_fields_still_read_their_history(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    define(&w, "budget", "预算", CustomFieldType::Money, &[]).await;
    let a = customer(&w, "甲公司", json!({"custom.budget": "100"})).await;
    w.clock.advance(chrono::Duration::seconds(5));
    w.crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"custom.budget": "12345.67"})),
        )
        .await
        .expect("edit");
    w.clock.advance(chrono::Duration::seconds(5));
    let def = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields")
        .into_iter()
        .find(|d| d.key == "budget")
        .expect("budget");
    w.crm
        .delete_custom_field(&w.admin, def.id, def.version)
        .await
        .expect("delete");
    assert!(
        w.crm
            .custom_fields(&w.admin, Entity::Customer)
            .await
            .expect("fields")
            .is_empty()
    );
    let ever = w
        .crm
        .custom_fields_ever(&w.admin, Entity::Customer)
        .await
        .expect("every field");
    assert_eq!(ever.len(), 1, "{ever:?}");
    assert!(ever[0].deleted_at.is_some(), "{ever:?}");
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, a.id.0)
        .await
        .expect("history");
    let mut read = Vec::new();
    for e in &history {
        for c in e.changes.iter().filter(|c| c.field == "custom.budget") {
            let def = crate::custom::field_as_of(&ever, "budget", e.at).expect("its field");
            read.push(format!(
                "{} → {}",
                def.field_type.display(&c.before),
                def.field_type.display(&c.after)
            ));
        }
    }
    assert_eq!(read, vec![" → 100.00", "100.00 → 12345.67"], "{history:?}");
    // Defined again (as a money field, as the values held require), a key
    // reads old entries by the field they were written under.
    w.clock.advance(chrono::Duration::seconds(5));
    define(&w, "budget", "预算二", CustomFieldType::Money, &[]).await;
    let ever = w
        .crm
        .custom_fields_ever(&w.admin, Entity::Customer)
        .await
        .expect("every field");
    assert_eq!(ever.len(), 2, "{ever:?}");
    let at = |e: &crate::store::AuditEntry| {
        crate::custom::field_as_of(&ever, "budget", e.at)
            .map(|d| d.label.clone())
            .unwrap_or_default()
    };
    assert!(history.iter().all(|e| at(e) == "预算"), "{ever:?}");
    assert_eq!(
        crate::custom::field_as_of(&ever, "budget", w.crm.now()).map(|d| d.label.as_str()),
        Some("预算二")
    );
}
