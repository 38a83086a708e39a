//! Permission scenarios at the edges of lists and exports: what a search, a
//! related-record filter, a sort or an exported cell could reveal beyond the
//! actor's data scope and field rules — run against each backend.

/// Lists the permission scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! permission_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::permission_suite::a_read_share_logs_follow_ups_but_plans_nothing,
            perm_a_read_share_logs_follow_ups_but_plans_nothing,
            $make
        );
        $each!(
            $crate::testing::permission_suite::search_and_pinyin_sort_leave_restricted_fields_out,
            perm_search_and_pinyin_sort_leave_restricted_fields_out,
            $make
        );
        $each!(
            $crate::testing::permission_suite::related_filters_see_only_readable_related_records,
            perm_related_filters_see_only_readable_related_records,
            $make
        );
        $each!(
            $crate::testing::permission_suite::exports_hold_to_the_export_grant_and_visible_names,
            perm_exports_hold_to_the_export_grant_and_visible_names,
            $make
        );
        $each!(
            $crate::testing::permission_suite::masking_covers_lists_and_rules_refuse_own_columns,
            perm_masking_covers_lists_and_rules_refuse_own_columns,
            $make
        );
        $each!(
            $crate::testing::permission_suite::history_shows_changes_as_field_rules_allow,
            perm_history_shows_changes_as_field_rules_allow,
            $make
        );
        $each!(
            $crate::testing::permission_suite::shares_pass_on_only_what_the_sharer_may_do,
            perm_shares_pass_on_only_what_the_sharer_may_do,
            $make
        );
        $each!(
            $crate::testing::permission_suite::purge_does_not_remove_a_record_restored_meanwhile,
            perm_purge_does_not_remove_a_record_restored_meanwhile,
            $make
        );
        $each!(
            $crate::testing::permission_suite::undo_does_not_remove_a_record_changed_meanwhile,
            perm_undo_does_not_remove_a_record_changed_meanwhile,
            $make
        );
        $each!(
            $crate::testing::permission_suite::nul_characters_in_queries_get_the_same_answer,
            perm_nul_characters_in_queries_get_the_same_answer,
            $make
        );
        $each!(
            $crate::testing::permission_suite::an_import_into_a_pool_deleted_meanwhile_writes_nothing,
            perm_an_import_into_a_pool_deleted_meanwhile_writes_nothing,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_deleted_custom_fields_key_comes_back_only_as_it_was,
            perm_a_deleted_custom_fields_key_comes_back_only_as_it_was,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_transferred_customers_binned_contacts_follow_it,
            perm_a_transferred_customers_binned_contacts_follow_it,
            $make
        );
        $each!(
            $crate::testing::permission_suite::money_custom_fields_take_only_yuan,
            perm_money_custom_fields_take_only_yuan,
            $make
        );
        $each!(
            $crate::testing::permission_suite::pool_moves_and_views_hold_at_the_edges,
            perm_pool_moves_and_views_hold_at_the_edges,
            $make
        );
        $each!(
            $crate::testing::permission_suite::owners_sharing_a_name_export_and_import_apart,
            perm_owners_sharing_a_name_export_and_import_apart,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_role_holding_an_old_own_column_rule_stays_editable,
            perm_a_role_holding_an_old_own_column_rule_stays_editable,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_user_without_roles_sees_as_the_strictest_role,
            perm_a_user_without_roles_sees_as_the_strictest_role,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_user_group_is_shared_with_member_by_member,
            perm_a_user_group_is_shared_with_member_by_member,
            $make
        );
        $each!(
            $crate::testing::permission_suite::product_cost_follows_field_rules,
            perm_product_cost_follows_field_rules,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_hidden_short_name_is_not_found_by_its_pinyin,
            perm_a_hidden_short_name_is_not_found_by_its_pinyin,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_merge_keeps_protected_fields_and_managers_locks,
            perm_a_merge_keeps_protected_fields_and_managers_locks,
            $make
        );
        $each!(
            $crate::testing::permission_suite::the_duplicate_report_holds_only_fields_read_in_full,
            perm_the_duplicate_report_holds_only_fields_read_in_full,
            $make
        );
        $each!(
            $crate::testing::permission_suite::customers_taking_one_new_phone_at_once_are_both_flagged,
            perm_customers_taking_one_new_phone_at_once_are_both_flagged,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_contact_is_not_stranded_by_a_merge_or_delete_meanwhile,
            perm_a_contact_is_not_stranded_by_a_merge_or_delete_meanwhile,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_record_is_shared_once_with_a_user_at_a_time,
            perm_a_record_is_shared_once_with_a_user_at_a_time,
            $make
        );
        $each!(
            $crate::testing::permission_suite::field_rules_named_by_label_apply_as_by_name,
            perm_field_rules_named_by_label_apply_as_by_name,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_refused_login_tells_nothing_without_the_password,
            perm_a_refused_login_tells_nothing_without_the_password,
            $make
        );
        $each!(
            $crate::testing::permission_suite::option_lists_and_field_deletes_hold_to_the_version_read,
            perm_option_lists_and_field_deletes_hold_to_the_version_read,
            $make
        );
        $each!(
            $crate::testing::permission_suite::an_unrelated_role_lifts_no_field_rule,
            perm_an_unrelated_role_lifts_no_field_rule,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_record_for_another_owner_needs_the_create_scope,
            perm_a_record_for_another_owner_needs_the_create_scope,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_merge_merges_contacts_sharing_a_mobile,
            perm_a_merge_merges_contacts_sharing_a_mobile,
            $make
        );
        $each!(
            $crate::testing::permission_suite::an_edit_keeping_a_shared_key_is_not_a_new_duplicate,
            perm_an_edit_keeping_a_shared_key_is_not_a_new_duplicate,
            $make
        );
        $each!(
            $crate::testing::permission_suite::follow_up_dates_are_checked_on_edit_too,
            perm_follow_up_dates_are_checked_on_edit_too,
            $make
        );
        $each!(
            $crate::testing::permission_suite::unique_text_fields_fold_and_numbers_stay_exact,
            perm_unique_text_fields_fold_and_numbers_stay_exact,
            $make
        );
        $each!(
            $crate::testing::permission_suite::unique_text_fields_hold_across_mixed_spellings,
            perm_unique_text_fields_hold_across_mixed_spellings,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_customer_is_found_by_its_contacts_numbers,
            perm_a_customer_is_found_by_its_contacts_numbers,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_sharee_sees_only_their_own_share,
            perm_a_sharee_sees_only_their_own_share,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_transfer_does_not_land_in_a_department_deleted_meanwhile,
            perm_a_transfer_does_not_land_in_a_department_deleted_meanwhile,
            $make
        );
        $each!(
            $crate::testing::permission_suite::departments_roles_and_groups_are_found_letter_case_aside,
            perm_departments_roles_and_groups_are_found_letter_case_aside,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_host_documents_code_names_one_approval,
            perm_a_host_documents_code_names_one_approval,
            $make
        );
        $each!(
            $crate::testing::permission_suite::approval_events_name_the_step_and_the_document,
            perm_approval_events_name_the_step_and_the_document,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_reader_of_an_approval_is_told_who_may_refresh_it,
            perm_a_reader_of_an_approval_is_told_who_may_refresh_it,
            $make
        );
        $each!(
            $crate::testing::permission_suite::usernames_are_found_as_their_duplicate_check_folds_them,
            perm_usernames_are_found_as_their_duplicate_check_folds_them,
            $make
        );
        $each!(
            $crate::testing::permission_suite::org_names_are_one_line_and_never_none,
            perm_org_names_are_one_line_and_never_none,
            $make
        );
        $each!(
            $crate::testing::permission_suite::user_events_carry_the_name_and_the_version,
            perm_user_events_carry_the_name_and_the_version,
            $make
        );
        $each!(
            $crate::testing::permission_suite::admins_deactivated_at_once_are_checked_again,
            perm_admins_deactivated_at_once_are_checked_again,
            $make
        );
        $each!(
            $crate::testing::permission_suite::a_user_import_row_cannot_be_its_own_superior,
            perm_a_user_import_row_cannot_be_its_own_superior,
            $make
        );
    };
}

use crate::auth::{Action, Actor, DataScope, FieldAccess, FieldRule, Permission};
use crate::clock::Clock;
use crate::crm::Crm;
use crate::entity::Entity;
use crate::error::Error;
use crate::ids::RecordId;
use crate::import::ExportValue;
use crate::org::{NewUser, RoleSpec};
use crate::query::{Cond, ListQuery};
use crate::records::{Record, ShareAccess};
use crate::store::Store;
use crate::testing::pool_suite::Interleave;
use crate::testing::service_suite::{World, fields};
use serde_json::json;
use std::sync::Arc;

/// A user in 销售一组 with one role: `grants` per entity, and field rules.
async fn user_granted(
    w: &World,
    username: &str,
    grants: &[(Entity, Action, DataScope)],
    rules: Vec<FieldRule>,
) -> Actor {
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: format!("{username}的角色"),
                is_admin: false,
                permissions: grants
                    .iter()
                    .map(|&(entity, action, scope)| Permission {
                        entity,
                        action,
                        scope,
                    })
                    .collect(),
                field_rules: rules,
            },
        )
        .await
        .expect("role");
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: username.into(),
                display_name: username.into(),
                department_id: Some(w.group1),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm.actor(u.id).await.expect("actor")
}

fn rule(entity: Entity, field: &str, access: FieldAccess) -> FieldRule {
    FieldRule {
        entity,
        field: field.into(),
        access,
    }
}

async fn create(w: &World, actor: &Actor, entity: Entity, v: serde_json::Value) -> Record {
    w.crm
        .create_record(actor, entity, fields(v))
        .await
        .unwrap_or_else(|e| panic!("create {entity}: {e}"))
}

/// How many records `actor` finds with `q`.
async fn found(w: &World, actor: &Actor, entity: Entity, q: ListQuery) -> usize {
    w.crm
        .list_records(actor, entity, &q)
        .await
        .unwrap_or_else(|e| panic!("list {entity}: {e}"))
        .items
        .len()
}

/// Every exported row of `entity` for `actor` with `q`, with the columns
/// picked (all visible ones when none).
async fn exported(
    w: &World,
    actor: &Actor,
    entity: Entity,
    q: ListQuery,
    picks: &[&str],
) -> (Vec<String>, Vec<Vec<ExportValue>>) {
    let picks: Vec<String> = picks.iter().map(|p| p.to_string()).collect();
    let cols = w
        .crm
        .export_columns(actor, entity, &picks)
        .await
        .expect("columns");
    let keys = cols.iter().map(|c| c.key.clone()).collect();
    let mut cur = w
        .crm
        .export_cursor(actor, entity, q, cols, 2)
        .await
        .expect("cursor");
    let mut rows = Vec::new();
    while let Some(page) = cur.next_page().await.expect("page") {
        rows.extend(page);
    }
    (keys, rows)
}

fn text(v: &ExportValue) -> &str {
    match v {
        ExportValue::Text(s) => s,
        other => panic!("expected text, got {other:?}"),
    }
}

/// A search matches only through fields the actor may filter by: not a
/// masked mobile or a hidden credit code (in lists and in exports with a
/// search text), nor the pinyin of a masked name; sorting by pinyin needs
/// the name.
pub async fn search_and_pinyin_sort_leave_restricted_fields_out(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "华为技术有限公司", "uscc": "914403001922038216"}),
    )
    .await;
    create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "任正", "mobile": "13812345678"}),
    )
    .await;
    let reads = [
        (Entity::Customer, Action::Read, DataScope::All),
        (Entity::Contact, Action::Read, DataScope::All),
        (Entity::Contact, Action::Export, DataScope::All),
    ];
    let kefu = user_granted(
        &w,
        "kefu",
        &reads,
        vec![
            rule(Entity::Contact, "mobile", FieldAccess::Masked),
            rule(Entity::Customer, "uscc", FieldAccess::Hidden),
        ],
    )
    .await;
    let search = |t: &str| ListQuery::default().search(t);
    // The administrator finds them by every field.
    assert_eq!(
        found(&w, &w.admin, Entity::Contact, search("13812345678")).await,
        1
    );
    assert_eq!(
        found(&w, &w.admin, Entity::Contact, search("5678")).await,
        1
    );
    assert_eq!(
        found(&w, &w.admin, Entity::Customer, search("922038216")).await,
        1
    );
    // The masked digits and the hidden code find nothing for kefu …
    assert_eq!(
        found(&w, &kefu, Entity::Contact, search("13812345678")).await,
        0
    );
    assert_eq!(found(&w, &kefu, Entity::Contact, search("5678")).await, 0);
    assert_eq!(
        found(&w, &kefu, Entity::Customer, search("922038216")).await,
        0
    );
    // Nor may kefu look for duplicates by the hidden code: refused as a
    // field kefu may not look by, not one kefu may not change.
    match w
        .crm
        .find_duplicates(
            &kefu,
            &crate::testing::service_suite::fields(json!({"uscc": "914403001922038216"})),
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(
            m.contains("may not look for duplicates by customer.uscc"),
            "{m}"
        ),
        other => panic!("a duplicate check by a hidden field: {other:?}"),
    }
    // … while the fields kefu sees still do.
    assert_eq!(found(&w, &kefu, Entity::Contact, search("任正")).await, 1);
    assert_eq!(found(&w, &kefu, Entity::Customer, search("hwjs")).await, 1);
    // An export with a search text goes through the same search.
    let (_, rows) = exported(&w, &kefu, Entity::Contact, search("5678"), &[]).await;
    assert!(rows.is_empty(), "{rows:?}");
    let (_, rows) = exported(&w, &kefu, Entity::Contact, search("任正"), &[]).await;
    assert_eq!(rows.len(), 1);

    // A masked name: neither its text nor its pinyin is searched, and the
    // list cannot be sorted by its pinyin.
    let anon = user_granted(
        &w,
        "anon",
        &reads,
        vec![rule(Entity::Customer, "name", FieldAccess::Masked)],
    )
    .await;
    assert_eq!(found(&w, &anon, Entity::Customer, search("hwjs")).await, 0);
    assert_eq!(found(&w, &anon, Entity::Customer, search("华为")).await, 0);
    assert_eq!(
        found(&w, &w.admin, Entity::Customer, search("hwjs")).await,
        1
    );
    let by_pinyin = ListQuery::default().sort_by("pinyin", false);
    assert!(matches!(
        w.crm
            .list_records(&anon, Entity::Customer, &by_pinyin)
            .await,
        Err(Error::Forbidden(_))
    ));
    assert_eq!(found(&w, &kefu, Entity::Customer, by_pinyin).await, 1);
}

/// A related-record filter counts only the related records the actor may
/// read: one who reads every customer but only their own follow-ups cannot
/// find customers by what a colleague wrote in a follow-up — until it is
/// shared with them.
pub async fn related_filters_see_only_readable_related_records(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "降价测试有限公司", json!({})).await;
    let f = create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "channel": "电话", "content": "客户要求降价百分之十"}),
    )
    .await;
    let reader = user_granted(
        &w,
        "reader",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::FollowUp, Action::Read, DataScope::Own),
        ],
        Vec::new(),
    )
    .await;
    let q = ListQuery::default().filter(Cond::Related(
        "follow_ups".into(),
        Box::new(Cond::Contains("content".into(), "降价".into())),
    ));
    assert_eq!(found(&w, &w.zhangsan, Entity::Customer, q.clone()).await, 1);
    assert_eq!(found(&w, &w.admin, Entity::Customer, q.clone()).await, 1);
    assert_eq!(found(&w, &reader, Entity::Customer, q.clone()).await, 0);
    // The count agrees with the page.
    let page = w
        .crm
        .list_records(&reader, Entity::Customer, &q.clone().with_total())
        .await
        .expect("list");
    assert_eq!(page.total, Some(0));
    // Shared with the reader, the follow-up counts; an expired share does not.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            reader.user_id,
            ShareAccess::Read,
            Some(w.clock.now() + chrono::Duration::days(1)),
        )
        .await
        .expect("share");
    assert_eq!(found(&w, &reader, Entity::Customer, q.clone()).await, 1);
    w.clock.advance(chrono::Duration::days(2));
    assert_eq!(found(&w, &reader, Entity::Customer, q).await, 0);
}

/// An export holds only what the actor may both read and export, and the
/// names it writes for related records are those the actor may see: a
/// customer outside their scope stays an id, a masked contact name masked.
pub async fn exports_hold_to_the_export_grant_and_visible_names(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let exporter = user_granted(
        &w,
        "exporter",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::Customer, Action::Create, DataScope::Own),
            (Entity::Customer, Action::Export, DataScope::Own),
        ],
        Vec::new(),
    )
    .await;
    w.customer(&w.zhangsan, "张三的客户有限公司", json!({}))
        .await;
    w.customer(&exporter, "自己的客户有限公司", json!({})).await;
    assert_eq!(
        found(&w, &exporter, Entity::Customer, ListQuery::default()).await,
        2,
        "reads both"
    );
    for q in [
        ListQuery::default(),
        ListQuery::default().search("有限公司"),
    ] {
        let (keys, rows) = exported(&w, &exporter, Entity::Customer, q, &[]).await;
        let name = keys.iter().position(|k| k == "name").expect("name");
        let names: Vec<&str> = rows.iter().map(|r| text(&r[name])).collect();
        assert_eq!(names, vec!["自己的客户有限公司"], "exports its own only");
    }

    // Related names.
    let c = w.customer(&w.zhangsan, "远方科技有限公司", json!({})).await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "欧阳明", "mobile": "13912345678"}),
    )
    .await;
    create(
        &w,
        &w.zhangsan,
        Entity::FollowUp,
        json!({"customer_id": c.id.to_string(), "contact_id": contact.id.to_string(), "channel": "电话", "content": "约下周拜访"}),
    )
    .await;
    let auditor = user_granted(
        &w,
        "auditor",
        &[
            (Entity::FollowUp, Action::Read, DataScope::All),
            (Entity::FollowUp, Action::Export, DataScope::All),
            (Entity::Contact, Action::Read, DataScope::All),
            (Entity::Customer, Action::Read, DataScope::Own),
        ],
        vec![rule(Entity::Contact, "name", FieldAccess::Masked)],
    )
    .await;
    let picks = ["customer_id", "contact_id", "content"];
    let (_, rows) = exported(&w, &auditor, Entity::FollowUp, ListQuery::default(), &picks).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        text(&rows[0][0]),
        crate::export::hidden_record(Entity::Customer),
        "no name (nor id) of a customer it cannot read"
    );
    assert_eq!(text(&rows[0][1]), "欧*明", "the contact's name masked");
    let (_, rows) = exported(&w, &w.admin, Entity::FollowUp, ListQuery::default(), &picks).await;
    assert_eq!(
        (text(&rows[0][0]), text(&rows[0][1])),
        ("远方科技有限公司", "欧阳明")
    );
}

/// Masking covers values that are not text (tags, in lists and exports);
/// field rules on a record's own columns are refused; record kinds the
/// export does not cover are refused by name, and searching them works.
pub async fn masking_covers_lists_and_rules_refuse_own_columns(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(
            &w.admin,
            "标签测试有限公司",
            json!({"tags": ["重点客户", "VIP"]}),
        )
        .await;
    let viewer = user_granted(
        &w,
        "viewer",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::Customer, Action::Export, DataScope::All),
        ],
        vec![rule(Entity::Customer, "tags", FieldAccess::Masked)],
    )
    .await;
    let rec = w
        .crm
        .get_record(&viewer, Entity::Customer, c.id)
        .await
        .expect("record");
    assert_eq!(rec.fields.get("tags"), Some(&json!(["V*P", "重**户"])));
    let (_, rows) = exported(
        &w,
        &viewer,
        Entity::Customer,
        ListQuery::default(),
        &["tags"],
    )
    .await;
    assert_eq!(text(&rows[0][0]), "V*P,重**户");
    let (_, rows) = exported(
        &w,
        &w.admin,
        Entity::Customer,
        ListQuery::default(),
        &["tags"],
    )
    .await;
    assert_eq!(text(&rows[0][0]), "VIP,重点客户");

    for field in ["owner_id", "code", "created_at"] {
        let err = w
            .crm
            .create_role(
                &w.admin,
                RoleSpec {
                    name: format!("隐藏{field}"),
                    is_admin: false,
                    permissions: Vec::new(),
                    field_rules: vec![rule(Entity::Customer, field, FieldAccess::Hidden)],
                },
            )
            .await
            .expect_err("a rule on a record's own column");
        assert!(
            matches!(&err, Error::Validation(_)) && err.to_string().contains(field),
            "{err}"
        );
    }

    for entity in [Entity::Opportunity, Entity::Quote, Entity::Contract] {
        // Sales documents export through their own cursor, with their own
        // columns; the record export does not walk them.
        let columns = w
            .crm
            .export_columns(&w.admin, entity, &[])
            .await
            .expect("sales columns");
        assert!(
            columns.iter().any(|c| c.key == "customer_id"),
            "{columns:?}"
        );
        let err = w
            .crm
            .export_cursor(&w.admin, entity, ListQuery::default(), columns, 10)
            .await
            .expect_err("not the record export");
        assert!(err.to_string().contains("sales_export_cursor"), "{err}");
        assert_eq!(
            found(&w, &w.admin, entity, ListQuery::default().search("标签")).await,
            0
        );
    }
}

/// The history of a record shows what the actor's field rules let them see
/// of every change (a masked mobile masked, a hidden ID number left out,
/// also in a merge's custom fields); the history of roles is for who
/// manages them, a user's own for the user.
pub async fn history_shows_changes_as_field_rules_allow(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.admin, "历史测试有限公司", json!({})).await;
    let contact = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "钱七", "mobile": "13812345678", "id_number": "11010519491231002X"}),
    )
    .await;
    let updated = w
        .crm
        .update_record(
            &w.admin,
            Entity::Contact,
            contact.id,
            contact.version,
            fields(json!({"mobile": "13987654321", "title": "经理"})),
        )
        .await
        .expect("update");
    // An edit of the hidden field alone.
    w.crm
        .update_record(
            &w.admin,
            Entity::Contact,
            contact.id,
            updated.version,
            fields(json!({"id_number": "110105194912310038"})),
        )
        .await
        .expect("update the id number");
    let kefu = user_granted(
        &w,
        "kefu",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::Contact, Action::Read, DataScope::All),
        ],
        vec![
            rule(Entity::Contact, "mobile", FieldAccess::Masked),
            rule(Entity::Contact, "id_number", FieldAccess::Hidden),
        ],
    )
    .await;
    let full = w
        .crm
        .history(&w.admin, Entity::Contact, contact.id.0)
        .await
        .expect("history");
    let seen = w
        .crm
        .history(&kefu, Entity::Contact, contact.id.0)
        .await
        .expect("history");
    // The edit of the hidden field alone is left out whole, not shown as
    // an empty change that tells something hidden changed.
    assert_eq!(full.len(), seen.len() + 1);
    assert!(
        seen.iter()
            .all(|e| e.action != "update" || !e.changes.is_empty()),
        "{seen:?}"
    );
    let value = |h: &[crate::store::AuditEntry], action: &str, field: &str| {
        h.iter()
            .find(|e| e.action == action)
            .and_then(|e| e.changes.iter().find(|c| c.field == field))
            .map(|c| (c.before.clone(), c.after.clone()))
    };
    assert_eq!(
        value(&full, "update", "mobile"),
        Some((json!("13812345678"), json!("13987654321")))
    );
    assert_eq!(
        value(&seen, "update", "mobile"),
        Some((json!("138****5678"), json!("139****4321")))
    );
    assert_eq!(
        value(&seen, "update", "title"),
        Some((json!(null), json!("经理")))
    );
    assert!(value(&full, "create", "id_number").is_some());
    assert!(value(&seen, "create", "id_number").is_none(), "{seen:?}");
    assert_eq!(
        value(&seen, "create", "mobile").map(|v| v.1),
        Some(json!("138****5678"))
    );
    let text = format!("{seen:?}");
    assert!(
        !text.contains("13812345678") && !text.contains("1949"),
        "{text}"
    );

    // Roles' history is for who manages roles; one's own history is one's own.
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "访客".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    assert!(matches!(
        w.crm.history(&w.zhangsan, Entity::Role, role.id.0).await,
        Err(Error::Forbidden(_))
    ));
    assert!(
        !w.crm
            .history(&w.admin, Entity::Role, role.id.0)
            .await
            .expect("admin")
            .is_empty()
    );
    assert!(
        w.crm
            .history(&w.zhangsan, Entity::User, w.zhangsan.user_id.0)
            .await
            .is_ok()
    );
    assert!(matches!(
        w.crm
            .history(&w.zhangsan, Entity::User, w.wangwu.user_id.0)
            .await,
        Err(Error::Forbidden(_))
    ));
    // A branch's user manager reads the history of the branch's users only.
    let branch = user_granted(
        &w,
        "branch",
        &[(Entity::User, Action::Manage, DataScope::Department)],
        Vec::new(),
    )
    .await;
    w.crm
        .history(&branch, Entity::User, w.zhangsan.user_id.0)
        .await
        .expect("a user of the branch");
    assert!(matches!(
        w.crm
            .history(&branch, Entity::User, w.wangwu.user_id.0)
            .await,
        Err(Error::Forbidden(_))
    ));
}

/// A share passes on only what the sharer may do with the record: a user
/// who reads and shares the department's customers but edits only their own
/// cannot share a colleague's customer for editing, nor with themselves.
pub async fn shares_pass_on_only_what_the_sharer_may_do(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let theirs = w
        .customer(&w.zhangsan, "同事的客户有限公司", json!({}))
        .await;
    let sharer = user_granted(
        &w,
        "sharer",
        &[
            (Entity::Customer, Action::Read, DataScope::Department),
            (Entity::Customer, Action::Share, DataScope::Department),
            (Entity::Customer, Action::Update, DataScope::Own),
            (Entity::Customer, Action::Create, DataScope::Own),
        ],
        Vec::new(),
    )
    .await;
    let mine = w.customer(&sharer, "自己的客户有限公司", json!({})).await;
    let share = |id: RecordId, with: crate::ids::UserId, access: ShareAccess| {
        let (w, sharer) = (&w, &sharer);
        async move {
            w.crm
                .share_record(sharer, Entity::Customer, id, with, access, None)
                .await
        }
    };
    // Not to themselves, for reading or for editing.
    for access in [ShareAccess::Read, ShareAccess::Write] {
        let err = share(theirs.id, sharer.user_id, access)
            .await
            .expect_err("self-share");
        assert!(matches!(err, Error::Validation(_)), "{err}");
    }
    // A colleague's customer: for reading yes, for editing no.
    share(theirs.id, w.zhaoliu.user_id, ShareAccess::Read)
        .await
        .expect("read share");
    assert!(matches!(
        share(theirs.id, w.zhaoliu.user_id, ShareAccess::Write).await,
        Err(Error::Forbidden(_))
    ));
    // Their own customer: for editing too.
    share(mine.id, w.zhaoliu.user_id, ShareAccess::Write)
        .await
        .expect("write share of their own");
    // And still no edit of the colleague's customer for the sharer.
    let current = w
        .crm
        .get_record(&sharer, Entity::Customer, theirs.id)
        .await
        .expect("reads it");
    assert!(
        w.crm
            .update_record(
                &sharer,
                Entity::Customer,
                theirs.id,
                current.version,
                fields(json!({"level": "A"})),
            )
            .await
            .is_err()
    );
}

/// A purge that read the record in the recycle bin does not remove it when
/// it was restored before the purge is written: the purge fails as a
/// conflict and the restored record stays.
pub async fn purge_does_not_remove_a_record_restored_meanwhile(store: Arc<dyn Store>) {
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w
        .customer(&w.zhangsan, "回收站测试有限公司", json!({}))
        .await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
    let (admin, id) = (w.admin.clone(), c.id);
    hooked.before_customer_write(async move {
        let r = other.restore_records(&admin, Entity::Customer, &[id]).await;
        assert_eq!(r.done, vec![id], "{:?}", r.refused);
    });
    let r = w
        .crm
        .purge_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert!(r.done.is_empty(), "purged a restored record");
    assert_eq!(r.refused.len(), 1);
    let back = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("the restored customer is still there");
    assert!(back.deleted_at.is_none());
    // Purged once it is in the recycle bin again and nobody interferes.
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    let r = w
        .crm
        .purge_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
}

/// An import's undo that checked its records unchanged does not remove one
/// edited before the undo is written: the undo fails as a conflict, nothing
/// is removed, and the edit stays.
pub async fn undo_does_not_remove_a_record_changed_meanwhile(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let mut session = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::Customer),
            &["客户名称".to_string()],
        )
        .await
        .expect("begin");
    let rows: Vec<SheetRow> = ["撤销测试甲有限公司", "撤销测试乙有限公司"]
        .iter()
        .enumerate()
        .map(|(i, name)| SheetRow {
            number: i as u32 + 2,
            cells: vec![Cell::Text(name.to_string())],
        })
        .collect();
    session.push(&rows).await.expect("push");
    let report = session.finish().await.expect("finish");
    assert_eq!(report.created, 2);
    let import_id = report.import_id.expect("an import id");
    let first = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().search("撤销测试甲"),
        )
        .await
        .expect("list")
        .items
        .remove(0);
    let (admin, edited) = (w.admin.clone(), first.clone());
    hooked.before_customer_write(async move {
        other
            .update_record(
                &admin,
                Entity::Customer,
                edited.id,
                edited.version,
                fields(json!({"level": "A"})),
            )
            .await
            .expect("the other edit");
    });
    let err = w
        .crm
        .undo_import(&w.admin, import_id)
        .await
        .expect_err("a record changed while the undo was written");
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let kept = w
        .crm
        .get_record(&w.admin, Entity::Customer, first.id)
        .await
        .expect("still there");
    assert_eq!(kept.fields.get("level"), Some(&json!("A")));
    assert_eq!(
        found(
            &w,
            &w.admin,
            Entity::Customer,
            ListQuery::default().search("撤销测试")
        )
        .await,
        2,
        "nothing removed"
    );
}

/// A NUL character in a search, a condition or a cursor gets the same
/// answer on every backend (PostgreSQL refuses such text in a query): a
/// search or condition ignores it, as values are stored without; a cursor
/// holding one is refused as not the engine's.
pub async fn nul_characters_in_queries_get_the_same_answer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.customer(&w.admin, "华为技术有限公司", json!({})).await;
    assert_eq!(
        found(
            &w,
            &w.admin,
            Entity::Customer,
            ListQuery::default().search("华为\0")
        )
        .await,
        1
    );
    for cond in [
        Cond::Eq("name".into(), json!("华为技术有限公司\0")),
        Cond::Contains("name".into(), "华\0为".into()),
        Cond::StartsWith("name".into(), "\0华为".into()),
        Cond::In("name".into(), vec![json!("华为技术\0有限公司")]),
    ] {
        let q = ListQuery::default().filter(cond);
        assert_eq!(found(&w, &w.admin, Entity::Customer, q).await, 1);
    }
    let forged = ListQuery::default().page(crate::query::PageRequest::Keyset {
        after: Some("[\"\\u0000\", \"\\u0000\"]".into()),
        limit: 10,
    });
    let err = w
        .crm
        .list_records(&w.admin, Entity::Customer, &forged)
        .await
        .expect_err("a forged cursor");
    assert!(matches!(err, Error::Validation(_)), "{err}");
}

/// An import into a pool that is deleted before the import's batch is
/// written writes nothing: no customer is left in the public area of a
/// deleted pool.
pub async fn an_import_into_a_pool_deleted_meanwhile_writes_nothing(store: Arc<dyn Store>) {
    use crate::import::{Cell, CommitMode, ImportOptions, SheetRow};
    use crate::pool::{PoolLimits, PoolSpec};
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    for (commit, name) in [
        (CommitMode::Batches, "华东公海"),
        (CommitMode::Atomic, "华南公海"),
    ] {
        let pool = w
            .crm
            .create_pool(
                &w.admin,
                PoolSpec {
                    name: name.into(),
                    admins: vec![w.admin.user_id],
                    member_users: Vec::new(),
                    member_departments: vec![w.group1],
                    limits: PoolLimits::default(),
                },
            )
            .await
            .expect("pool");
        let mut o = ImportOptions::new(Entity::Customer);
        o.pool = Some(pool.name.clone());
        o.commit = commit;
        let mut session = w
            .crm
            .begin_import(&w.admin, o, &["客户名称".to_string()])
            .await
            .expect("begin");
        let (admin, id) = (w.admin.clone(), pool.id);
        let other = other.clone();
        hooked.before_customer_write(async move {
            other.delete_pool(&admin, id).await.expect("deleted");
        });
        let row = SheetRow {
            number: 2,
            cells: vec![Cell::Text("公海导入测试有限公司".into())],
        };
        let pushed = session.push(&[row]).await;
        let finished = match pushed {
            Ok(_) => session.finish().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let err = finished.expect_err("the pool was deleted");
        assert!(err.to_string().contains("deleted"), "{commit:?}: {err}");
        assert_eq!(
            found(
                &w,
                &w.admin,
                Entity::Customer,
                ListQuery::default().search("公海导入")
            )
            .await,
            0,
            "{commit:?}: nothing written"
        );
    }
}

/// A deleted custom field's values stay in the records, so its key can be
/// defined again only as a field that reads them as they were written (the
/// same type, its options kept); options cannot hold the characters that
/// separate a multi-select's options.
pub async fn a_deleted_custom_fields_key_comes_back_only_as_it_was(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    let w = World::new(store).await;
    let field = |ty: CustomFieldType, options: &[&str]| NewCustomField {
        entity: Entity::Customer,
        key: "grade".into(),
        label: "等级".into(),
        label_en: None,
        field_type: ty,
        options: options.iter().map(|o| o.to_string()).collect(),
        required: false,
        unique: false,
    };
    let grade = w
        .crm
        .define_custom_field(&w.admin, field(CustomFieldType::Select, &["甲", "乙"]))
        .await
        .expect("define");
    w.customer(&w.admin, "旧值测试有限公司", json!({"custom.grade": "乙"}))
        .await;
    w.crm
        .delete_custom_field(&w.admin, grade.id, grade.version)
        .await
        .expect("delete");
    for (ty, options) in [
        (CustomFieldType::Number, &[][..]),
        (CustomFieldType::Select, &["甲", "丙"][..]),
    ] {
        let err = w
            .crm
            .define_custom_field(&w.admin, field(ty, options))
            .await
            .expect_err("the old values would not fit");
        assert!(
            matches!(&err, Error::Validation(_)) && err.to_string().contains("deleted"),
            "{err}"
        );
    }
    w.crm
        .define_custom_field(
            &w.admin,
            field(CustomFieldType::Select, &["甲", "乙", "丙"]),
        )
        .await
        .expect("back as it was, with one more option");
    let err = w
        .crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                key: "skills".into(),
                label: "技能".into(),
                ..field(CustomFieldType::MultiSelect, &["研发、测试", "销售"])
            },
        )
        .await
        .expect_err("an option holding a separator");
    assert!(matches!(err, Error::Validation(_)), "{err}");
}

/// A transferred customer's contacts follow it to the new owner, also those
/// in the recycle bin: restored, they are the new owner's, not left with the
/// old one.
pub async fn a_transferred_customers_binned_contacts_follow_it(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "转移测试有限公司", json!({})).await;
    let binned = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "孙八", "mobile": "13812340000"}),
    )
    .await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Contact, &[binned.id])
        .await;
    assert_eq!(r.done, vec![binned.id], "{:?}", r.refused);
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
    let r = w
        .crm
        .restore_records(&w.admin, Entity::Contact, &[binned.id])
        .await;
    assert_eq!(r.done, vec![binned.id], "{:?}", r.refused);
    let back = w
        .crm
        .get_record(&w.wangwu, Entity::Contact, binned.id)
        .await
        .expect("the new owner's");
    assert_eq!(back.owner_id, Some(w.wangwu.user_id));
}

/// A money custom field is kept in 分 of CNY: `¥1,234.50` and `1234.5元`
/// are 123 450 分, an amount in another currency is refused rather than
/// stored as that many 分.
pub async fn money_custom_fields_take_only_yuan(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "budget".into(),
                label: "预算".into(),
                label_en: None,
                field_type: CustomFieldType::Money,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("define");
    for (i, typed) in ["¥1,234.50", "1234.5元", "RMB 1234.5"].iter().enumerate() {
        let c = w
            .customer(
                &w.admin,
                &format!("预算测试{i}有限公司"),
                json!({"custom.budget": typed}),
            )
            .await;
        assert_eq!(c.custom.get("budget"), Some(&json!(123_450)), "{typed}");
    }
    for typed in ["100 USD", "JPY 100"] {
        let err = w
            .crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": format!("外币{typed}有限公司"), "custom.budget": typed})),
            )
            .await
            .expect_err("another currency");
        assert!(matches!(err, Error::Validation(_)), "{typed}: {err}");
    }
}

/// At the edges of pools and views: a customer's contacts in the recycle
/// bin follow it through a release and a claim; horizons of billions of
/// days do not panic; a field rule on the fields the views sort by does not
/// break them; a customer one took over oneself is not "transferred to me".
pub async fn pool_moves_and_views_hold_at_the_edges(store: Arc<dyn Store>) {
    use crate::pool::{PoolLimits, PoolSpec};
    use crate::query::PageRequest;
    let w = World::new(store).await;
    w.crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "一组公海".into(),
                admins: vec![w.admin.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let c = w.customer(&w.zhangsan, "公海流转有限公司", json!({})).await;
    let binned = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "周九", "mobile": "13812349999"}),
    )
    .await;
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Contact, &[binned.id])
        .await;
    assert_eq!(r.done, vec![binned.id], "{:?}", r.refused);
    let r = w
        .crm
        .release(&w.zhangsan, &[c.id], "不再跟进", None)
        .await
        .expect("release");
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
    let r = w.crm.claim(&w.zhaoliu, &[c.id]).await.expect("claim");
    assert_eq!(r.done, vec![c.id], "{:?}", r.refused);
    let r = w
        .crm
        .restore_records(&w.admin, Entity::Contact, &[binned.id])
        .await;
    assert_eq!(r.done, vec![binned.id], "{:?}", r.refused);
    let back = w
        .crm
        .get_record(&w.admin, Entity::Contact, binned.id)
        .await
        .expect("contact");
    assert_eq!(back.owner_id, Some(w.zhaoliu.user_id), "the claimer's");

    // Horizons far past the calendar's end.
    let page = || PageRequest::Offset {
        page: 1,
        per_page: 50,
    };
    w.crm
        .about_to_be_recycled(&w.admin, u32::MAX)
        .await
        .expect("a huge horizon");
    w.crm
        .recently_transferred_to_me(&w.zhaoliu, u32::MAX, page())
        .await
        .expect("a huge window");

    // A rule on the fields the views sort by.
    let viewer = user_granted(
        &w,
        "viewer",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::FollowUp, Action::Read, DataScope::All),
            (Entity::Contact, Action::Read, DataScope::All),
        ],
        vec![rule(Entity::FollowUp, "occurred_at", FieldAccess::Hidden)],
    )
    .await;
    w.crm
        .customer_view(&viewer, c.id)
        .await
        .expect("the view, sorted otherwise");

    // Taken over by oneself: not "transferred to me"; by another: it is.
    let mine = w.customer(&w.zhangsan, "自转测试有限公司", json!({})).await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[mine.id], w.admin.user_id)
        .await
        .expect("to the admin");
    assert_eq!(r.done, vec![mine.id], "{:?}", r.refused);
    let theirs = w.customer(&w.zhangsan, "他转测试有限公司", json!({})).await;
    let r = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[theirs.id], w.wangwu.user_id)
        .await
        .expect("to wangwu");
    assert_eq!(r.done, vec![theirs.id], "{:?}", r.refused);
    let to_wangwu = w
        .crm
        .recently_transferred_to_me(&w.wangwu, 30, page())
        .await
        .expect("wangwu's");
    assert_eq!(to_wangwu.items.len(), 1);
    let to_admin = w
        .crm
        .recently_transferred_to_me(&w.admin, 30, page())
        .await
        .expect("the admin's");
    assert!(to_admin.items.is_empty(), "{:?}", to_admin.items);
}

/// Two users with the same display name are exported as `name (username)`,
/// and an import finds each by that; the bare shared name is refused as
/// ambiguous rather than given to either.
pub async fn owners_sharing_a_name_export_and_import_apart(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    let w = World::new(store).await;
    let mut ids = Vec::new();
    for username in ["zhangwei1", "zhangwei2"] {
        let u = w
            .crm
            .create_user(
                &w.admin,
                NewUser {
                    username: username.into(),
                    display_name: "张伟".into(),
                    department_id: Some(w.group1),
                    ..NewUser::default()
                },
            )
            .await
            .expect("user");
        ids.push(u.id);
    }
    create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "同名负责人有限公司", "owner_id": ids[1].to_string()}),
    )
    .await;
    let (_, rows) = exported(
        &w,
        &w.admin,
        Entity::Customer,
        ListQuery::default().search("同名负责人"),
        &["name", "owner_id"],
    )
    .await;
    assert_eq!(text(&rows[0][1]), "张伟 (zhangwei2)");
    let mut session = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::Customer),
            &["客户名称".to_string(), "负责人".to_string()],
        )
        .await
        .expect("begin");
    let row = |n: u32, name: &str, owner: &str| SheetRow {
        number: n,
        cells: vec![Cell::Text(name.into()), Cell::Text(owner.into())],
    };
    session
        .push(&[
            row(2, "导回甲有限公司", "张伟 (zhangwei2)"),
            row(3, "导回乙有限公司", "张伟"),
        ])
        .await
        .expect("push");
    let report = session.finish().await.expect("finish");
    assert_eq!(
        (report.created, report.rejected),
        (1, 1),
        "{:#?}",
        report.issues
    );
    let back = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().search("导回甲"),
        )
        .await
        .expect("list")
        .items
        .remove(0);
    assert_eq!(back.owner_id, Some(ids[1]));
}

/// Writes a role's `column` as an older build stored it, past today's
/// checks (the role's version goes up by one).
async fn stored_by_an_older_build<T: serde::Serialize>(
    w: &World,
    role: &crate::auth::Role,
    column: &'static str,
    value: &T,
) {
    use crate::store::{ChangeSet, Op};
    w.crm
        .store()
        .apply(&ChangeSet {
            ops: vec![Op::Update {
                table: crate::schema::Table::Roles,
                id: role.id.0,
                expected_version: role.version,
                values: vec![(
                    column,
                    crate::value::Value::Json(serde_json::to_value(value).expect("json")),
                )],
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("stored");
}

/// A role stored with a rule on a record's own column (accepted before such
/// rules were refused) can still be edited with that rule kept; adding
/// another such rule is refused. Likewise grants on what belongs to the
/// whole company take the scope all.
pub async fn a_role_holding_an_old_own_column_rule_stays_editable(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let spec = |name: &str, rules: Vec<FieldRule>| RoleSpec {
        name: name.into(),
        is_admin: false,
        permissions: vec![Permission {
            entity: Entity::Customer,
            action: Action::Read,
            scope: DataScope::Own,
        }],
        field_rules: rules,
    };
    let role = w
        .crm
        .create_role(&w.admin, spec("旧角色", Vec::new()))
        .await
        .expect("role");
    let old = vec![rule(Entity::Customer, "owner_id", FieldAccess::Hidden)];
    stored_by_an_older_build(&w, &role, "field_rules", &old).await;
    let renamed = w
        .crm
        .update_role(
            &w.admin,
            role.id,
            role.version + 1,
            spec("改名角色", old.clone()),
        )
        .await
        .expect("an edit keeping the old rule");
    assert_eq!(renamed.field_rules, old);
    let mut more = old.clone();
    more.push(rule(Entity::Customer, "code", FieldAccess::Hidden));
    let err = w
        .crm
        .update_role(&w.admin, role.id, renamed.version, spec("改名角色", more))
        .await
        .expect_err("a new own-column rule");
    assert!(matches!(err, Error::Validation(_)), "{err}");

    // Grants on what belongs to the whole company (roles, user groups,
    // custom fields, approval flows, products) take the scope all; users
    // and departments may be managed per branch.
    let grant = |entity, action, scope| Permission {
        entity,
        action,
        scope,
    };
    let with = |name: &str, permissions: Vec<Permission>| RoleSpec {
        name: name.into(),
        is_admin: false,
        permissions,
        field_rules: Vec::new(),
    };
    for p in [
        grant(Entity::Role, Action::Manage, DataScope::Department),
        grant(Entity::Product, Action::Update, DataScope::Own),
        grant(
            Entity::ApprovalFlow,
            Action::Manage,
            DataScope::DepartmentTree,
        ),
    ] {
        let err = w
            .crm
            .create_role(&w.admin, with("窄授权", vec![p]))
            .await
            .expect_err("a narrow company-wide grant");
        let text = format!("{}:{}:{}", p.entity.name(), p.action.name(), p.scope.name());
        assert!(
            matches!(&err, Error::Validation(_))
                && err.to_string().contains(&text)
                && err.to_string().contains("take the scope all"),
            "{err}"
        );
    }
    let branch = w
        .crm
        .create_role(
            &w.admin,
            with(
                "分部管理员",
                vec![
                    grant(Entity::User, Action::Manage, DataScope::DepartmentTree),
                    grant(Entity::Product, Action::Update, DataScope::All),
                ],
            ),
        )
        .await
        .expect("branch managers and catalogue keepers");
    // A narrow grant stored by an older build is kept on edit; a new one
    // is refused.
    let old = vec![grant(Entity::UserGroup, Action::Manage, DataScope::Own)];
    stored_by_an_older_build(&w, &branch, "permissions", &old).await;
    let kept = w
        .crm
        .update_role(
            &w.admin,
            branch.id,
            branch.version + 1,
            with("分部", old.clone()),
        )
        .await
        .expect("an edit keeping the old grant");
    assert_eq!(kept.permissions, old);
    let mut more = old;
    more.push(grant(Entity::CustomField, Action::Manage, DataScope::Own));
    let err = w
        .crm
        .update_role(&w.admin, branch.id, kept.version, with("分部", more))
        .await
        .expect_err("a new narrow grant");
    assert!(err.to_string().contains("custom_field:manage:own"), "{err}");
}

/// The catalogue is read by everyone, its cost only as the roles allow: a
/// role may hide, mask or freeze `product.cost` (and no other product
/// field); a user without roles does not see it. Whom it is kept from gets products without it — one by one, in
/// lists, in history, in exports (masked: `***`) and in import templates —
/// may not set it through the API or an import column, and an edit that
/// leaves it out keeps it.
pub async fn product_cost_follows_field_rules(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    use crate::money::Money;
    use crate::sales::{ProductInput, ProductQuery};
    let w = World::new(store).await;
    let catalogue = |scope| {
        [
            Action::Read,
            Action::Create,
            Action::Update,
            Action::Export,
            Action::Import,
        ]
        .map(|a| (Entity::Product, a, scope))
    };
    let hidden = user_granted(
        &w,
        "cost_hidden",
        &catalogue(DataScope::All),
        vec![rule(Entity::Product, "cost", FieldAccess::Hidden)],
    )
    .await;
    let masked = user_granted(
        &w,
        "cost_masked",
        &catalogue(DataScope::All),
        vec![rule(Entity::Product, "cost", FieldAccess::Masked)],
    )
    .await;
    let frozen = user_granted(
        &w,
        "cost_frozen",
        &catalogue(DataScope::All),
        vec![rule(Entity::Product, "cost", FieldAccess::ReadOnly)],
    )
    .await;
    let err = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "隐藏标准价".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: vec![rule(Entity::Product, "list_price", FieldAccess::Hidden)],
            },
        )
        .await
        .expect_err("only the cost takes a rule");
    assert!(
        matches!(&err, Error::Validation(_)) && err.to_string().contains("cost (成本) only"),
        "{err}"
    );
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("SV-1".into()),
                name: Some("服务器".into()),
                list_price: Some(Money::cny(3_500_000)),
                cost: Some(Money::cny(2_100_000)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    let cost_of = |p: &crate::sales::Product| p.cost.map(|m| m.minor);
    // A product manager's role creates and updates products without
    // reading them (everyone reads the catalogue) and sets no rule: the
    // cost is theirs in full, whatever other roles hide.
    let manager = user_granted(
        &w,
        "product_manager",
        &[
            (Entity::Product, Action::Create, DataScope::All),
            (Entity::Product, Action::Update, DataScope::All),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(
        cost_of(&w.crm.product(&manager, p.id).await.expect("product")),
        Some(2_100_000)
    );
    let roleless = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "no_roles".into(),
                display_name: "无角色".into(),
                ..NewUser::default()
            },
        )
        .await
        .expect("a user without roles");
    let roleless = w.crm.actor(roleless.id).await.expect("actor");
    for (who, sees) in [
        (&hidden, false),
        (&masked, false),
        (&roleless, false),
        (&frozen, true),
        (&w.admin, true),
    ] {
        let one = w.crm.product(who, p.id).await.expect("product");
        let by_code = w.crm.product_by_code(who, "SV-1").await.expect("by code");
        let listed = w
            .crm
            .list_products(who, &ProductQuery::default())
            .await
            .expect("list")
            .items
            .remove(0);
        let want = sees.then_some(2_100_000);
        assert_eq!(
            (cost_of(&one), cost_of(&by_code), cost_of(&listed)),
            (want, want, want),
            "{}",
            who.display_name
        );
    }
    // Setting it: refused unless fully allowed; leaving it out keeps it.
    for who in [&hidden, &masked, &frozen] {
        let err = w
            .crm
            .update_product(
                who,
                p.id,
                p.version,
                ProductInput {
                    cost: Some(Money::cny(1)),
                    ..ProductInput::default()
                },
            )
            .await
            .expect_err("may not set the cost");
        assert!(
            matches!(&err, Error::Forbidden(m) if m.contains("product.cost")),
            "{err}"
        );
        let err = w
            .crm
            .create_product(
                who,
                ProductInput {
                    name: Some("新品".into()),
                    list_price: Some(Money::cny(100)),
                    cost: Some(Money::cny(50)),
                    ..ProductInput::default()
                },
            )
            .await
            .expect_err("may not set the cost");
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
    }
    let renamed = w
        .crm
        .update_product(
            &hidden,
            p.id,
            p.version,
            ProductInput {
                name: Some("机架式服务器".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.cost, None);
    let kept = w.crm.product(&w.admin, p.id).await.expect("product");
    assert_eq!(cost_of(&kept), Some(2_100_000));
    w.crm
        .update_product(
            &w.admin,
            p.id,
            kept.version,
            ProductInput {
                cost: Some(Money::cny(2_000_000)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("admin sets the cost");
    // History: the cost's changes left out, or masked.
    let history = |who: &Actor| {
        let who = who.clone();
        let crm = &w.crm;
        async move {
            crm.history(&who, Entity::Product, p.id)
                .await
                .expect("history")
                .into_iter()
                .flat_map(|e| e.changes)
                .filter(|c| c.field == "cost")
                .map(|c| c.after)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(history(&hidden).await, Vec::<serde_json::Value>::new());
    assert_eq!(history(&masked).await, vec![json!("***"), json!("***")]);
    assert_eq!(
        history(&frozen).await,
        vec![json!(2_100_000), json!(2_000_000)]
    );
    // Exports: no cost column for whom it is hidden (nor may it be picked);
    // masked, it shows as `***`.
    // Without a pick, only who may set the cost gets its column (the
    // default export imports back as a price list).
    for (who, has) in [
        (&hidden, false),
        (&masked, false),
        (&frozen, false),
        (&w.admin, true),
    ] {
        let cols = w
            .crm
            .export_columns(who, Entity::Product, &[])
            .await
            .expect("columns");
        assert_eq!(cols.iter().any(|c| c.key == "cost"), has, "{cols:?}");
    }
    let err = w
        .crm
        .export_columns(&hidden, Entity::Product, &["成本".into()])
        .await
        .expect_err("hidden");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    for (who, want) in [
        (&masked, ExportValue::Text("***".into())),
        (&frozen, ExportValue::Money(2_000_000)),
    ] {
        let cols = w
            .crm
            .export_columns(who, Entity::Product, &["code".into(), "cost".into()])
            .await
            .expect("columns");
        let (rows, _) = w
            .crm
            .product_export_page(who, &cols, &ProductQuery::default())
            .await
            .expect("page");
        assert_eq!(rows, vec![vec![ExportValue::Text("SV-1".into()), want]]);
    }
    // Imports: the template leaves the cost out, a cost column is refused.
    for who in [&hidden, &roleless] {
        let template = w
            .crm
            .template_columns(who, Entity::Product, 0)
            .await
            .expect("template");
        assert!(template.iter().all(|c| c.key != "cost"), "{template:?}");
    }
    for who in [&hidden, &frozen] {
        let err = w
            .crm
            .begin_import(
                who,
                ImportOptions::new(Entity::Product),
                &["产品编号".to_string(), "成本".to_string()],
            )
            .await
            .expect_err("a cost column");
        assert!(
            matches!(&err, Error::Forbidden(m) if m.contains("product.cost")),
            "{err}"
        );
    }
    let mut session = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::Product),
            &[
                "产品编号".to_string(),
                "产品名称".to_string(),
                "标准价".to_string(),
                "成本".to_string(),
            ],
        )
        .await
        .expect("the admin imports costs");
    session
        .push(&[SheetRow {
            number: 2,
            cells: vec![
                Cell::Text("SV-2".into()),
                Cell::Text("存储".into()),
                Cell::Text("100".into()),
                Cell::Text("60".into()),
            ],
        }])
        .await
        .expect("push");
    let report = session.finish().await.expect("finish");
    assert_eq!(report.created, 1, "{:#?}", report.issues);
    let imported = w.crm.product_by_code(&w.admin, "SV-2").await.expect("SV-2");
    assert_eq!(cost_of(&imported), Some(6_000));
}

/// A user without roles holds no grant, but records may be shared with
/// them: they see such a record as the strictest role of the company would
/// (a mobile some role masks is masked, an ID number some role hides is
/// left out, and neither can be searched), while a role's own rules keep
/// the least restrictive over its holder's roles. A user whose roles grant
/// nothing on contacts (an HR role) sees a shared contact the same way: a
/// role about something else lifts no rule.
pub async fn a_user_without_roles_sees_as_the_strictest_role(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // A service role that masks mobiles and hides ID numbers.
    user_granted(
        &w,
        "service",
        &[(Entity::Contact, Action::Read, DataScope::All)],
        vec![
            rule(Entity::Contact, "mobile", FieldAccess::Masked),
            rule(Entity::Contact, "id_number", FieldAccess::Hidden),
        ],
    )
    .await;
    let c = w
        .customer(&w.zhangsan, "共享联系人有限公司", json!({}))
        .await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "周明", "mobile": "13812345678", "id_number": "11010519491231002X"}),
    )
    .await;
    let newcomer = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "newcomer".into(),
                display_name: "新同事".into(),
                department_id: Some(w.group1),
                ..NewUser::default()
            },
        )
        .await
        .expect("a user without roles");
    let newcomer = w.crm.actor(newcomer.id).await.expect("actor");
    assert!(newcomer.roles.is_empty());
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Contact,
            contact.id,
            newcomer.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    let seen = w
        .crm
        .get_record(&newcomer, Entity::Contact, contact.id)
        .await
        .expect("a shared contact");
    assert_eq!(seen.text("name"), Some("周明"));
    assert_eq!(seen.text("mobile"), Some("138****5678"));
    assert!(!seen.fields.contains_key("id_number"), "{:?}", seen.fields);
    assert_eq!(
        found(&w, &newcomer, Entity::Contact, ListQuery::default()).await,
        1
    );
    assert_eq!(
        found(
            &w,
            &newcomer,
            Entity::Contact,
            ListQuery::default().search("13812345678")
        )
        .await,
        0,
        "a masked mobile is not searched"
    );
    let hr = user_granted(
        &w,
        "hr",
        &[(Entity::FollowUp, Action::Read, DataScope::Own)],
        Vec::new(),
    )
    .await;
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Contact,
            contact.id,
            hr.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    let seen = w
        .crm
        .get_record(&hr, Entity::Contact, contact.id)
        .await
        .expect("a shared contact");
    assert_eq!(seen.text("mobile"), Some("138****5678"));
    assert!(!seen.fields.contains_key("id_number"), "{:?}", seen.fields);
    assert_eq!(
        found(
            &w,
            &hr,
            Entity::Contact,
            ListQuery::default().search("13812345678")
        )
        .await,
        0,
        "a masked mobile is not searched"
    );
    // The owner, whose role has no rule, still sees everything.
    let own = w
        .crm
        .get_record(&w.zhangsan, Entity::Contact, contact.id)
        .await
        .expect("own contact");
    assert_eq!(own.text("mobile"), Some("13812345678"));
}

/// Sharing with a user group shares with each of its active members as the
/// group is now (the sharer left out), each share passing the checks of a
/// single share; a group with nobody else to share with is refused, and an
/// unknown group is not found.
pub async fn a_user_group_is_shared_with_member_by_member(store: Arc<dyn Store>) {
    use crate::org::UserPatch;
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "团队共享有限公司", json!({})).await;
    let group = w
        .crm
        .create_group(
            &w.admin,
            "攻坚组",
            &[
                w.zhangsan.user_id,
                w.wangwu.user_id,
                w.zhaoliu.user_id,
                w.lisi.user_id,
            ],
        )
        .await
        .expect("group");
    // lisi is deactivated: no share for him.
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("lisi");
    w.crm
        .update_user(
            &w.admin,
            w.lisi.user_id,
            lisi.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivate");
    assert_eq!(
        found(&w, &w.wangwu, Entity::Customer, ListQuery::default()).await,
        0
    );
    let per_member = w
        .crm
        .share_with_group(
            &w.zhangsan,
            Entity::Customer,
            &[c.id],
            group.id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("group share");
    let members: Vec<crate::ids::UserId> = per_member.iter().map(|(u, _)| *u).collect();
    assert_eq!(members, vec![w.wangwu.user_id, w.zhaoliu.user_id]);
    assert!(per_member.iter().all(|(_, r)| r.done == vec![c.id]));
    assert_eq!(
        found(&w, &w.wangwu, Entity::Customer, ListQuery::default()).await,
        1
    );
    let shares = w
        .crm
        .list_shares(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("shares");
    assert_eq!(shares.len(), 2, "{shares:?}");
    // A write share of a record the sharer may not edit is refused member
    // by member, as a single share would be.
    let theirs = w
        .customer(&w.wangwu, "王五的团队客户有限公司", json!({}))
        .await;
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Customer,
            theirs.id,
            w.zhangsan.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("read share to zhangsan");
    let refused = w
        .crm
        .share_with_group(
            &w.zhangsan,
            Entity::Customer,
            &[theirs.id],
            group.id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("reported");
    assert!(
        refused
            .iter()
            .all(|(_, r)| r.done.is_empty() && r.refused.len() == 1),
        "{refused:?}"
    );
    // Nobody else to share with; no such group.
    let alone = w
        .crm
        .create_group(&w.admin, "独行组", &[w.zhangsan.user_id])
        .await
        .expect("group");
    let err = w
        .crm
        .share_with_group(
            &w.zhangsan,
            Entity::Customer,
            &[c.id],
            alone.id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect_err("nobody to share with");
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    let err = w
        .crm
        .share_with_group(
            &w.zhangsan,
            Entity::Customer,
            &[c.id],
            crate::ids::GroupId(uuid::Uuid::nil()),
            ShareAccess::Read,
            None,
        )
        .await
        .expect_err("no such group");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

/// A customer's pinyin keys hold its short name's readings too: one who may
/// not read the short name does not find or sort customers by pinyin at
/// all (the name's keys cannot be told apart), while the name's own text
/// still matches.
pub async fn a_hidden_short_name_is_not_found_by_its_pinyin(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "华为技术有限公司", "short_name": "华信"}),
    )
    .await;
    let reads = [(Entity::Customer, Action::Read, DataScope::All)];
    let plain = user_granted(&w, "plain", &reads, Vec::new()).await;
    let search = |t: &str| ListQuery::default().search(t);
    for actor in [&w.admin, &plain] {
        for t in ["huaxin", "hx", "hwjs", "华为"] {
            assert_eq!(
                found(&w, actor, Entity::Customer, search(t)).await,
                1,
                "{t}"
            );
        }
    }
    for (name, access) in [
        ("noshort", FieldAccess::Hidden),
        ("maskshort", FieldAccess::Masked),
    ] {
        let actor = user_granted(
            &w,
            name,
            &reads,
            vec![rule(Entity::Customer, "short_name", access)],
        )
        .await;
        for t in ["huaxin", "hx", "华信", "hwjs"] {
            assert_eq!(
                found(&w, &actor, Entity::Customer, search(t)).await,
                0,
                "{name} {t}"
            );
        }
        assert_eq!(found(&w, &actor, Entity::Customer, search("华为")).await, 1);
        // Nor sorts by it: the order and a keyset page's cursor would tell
        // the short name's readings.
        let by_pinyin = ListQuery::default().sort_by("pinyin", false);
        assert!(
            matches!(
                w.crm
                    .list_records(&actor, Entity::Customer, &by_pinyin)
                    .await,
                Err(Error::Forbidden(_))
            ),
            "{name}"
        );
    }
    let by_pinyin = ListQuery::default().sort_by("pinyin", false);
    assert_eq!(found(&w, &plain, Entity::Customer, by_pinyin).await, 1);
}

/// A merge by a sales person whose field rule makes the next follow-up
/// date read-only still carries the merged customer's date into the
/// survivor's blank (the merged customer is not restored), but does not
/// pass on a lock a manager put on it; an administrator's merge does both.
/// A follow-up of theirs leaves the date alone.
pub async fn a_merge_keeps_protected_fields_and_managers_locks(store: Arc<dyn Store>) {
    use crate::dedupe::MergeSpec;
    use crate::schema::Table;
    let raw = store.clone();
    let w = World::new(store).await;
    let own = |action| (Entity::Customer, action, DataScope::Own);
    let rep = user_granted(
        &w,
        "rep",
        &[
            own(Action::Read),
            own(Action::Create),
            own(Action::Update),
            own(Action::Delete),
            own(Action::Transfer),
            (Entity::FollowUp, Action::Create, DataScope::Own),
            (Entity::FollowUp, Action::Read, DataScope::Own),
        ],
        vec![rule(
            Entity::Customer,
            "next_follow_up",
            FieldAccess::ReadOnly,
        )],
    )
    .await;
    let stored = |id: RecordId| {
        let raw = raw.clone();
        async move {
            let r = raw
                .get(Table::Customers, id.0)
                .await
                .expect("get")
                .expect("row");
            (
                r.get("next_follow_up").as_date(),
                r.get("locked").as_bool() == Some(true),
            )
        }
    };
    let pair = |n: u32| {
        let (w, rep) = (&w, &rep);
        async move {
            let s = w
                .customer(rep, &format!("合并保留{n}有限公司"), json!({}))
                .await;
            let d = w
                .customer(rep, &format!("合并锁定{n}有限公司"), json!({}))
                .await;
            let d = w
                .crm
                .update_record(
                    &w.admin,
                    Entity::Customer,
                    d.id,
                    d.version,
                    fields(json!({"next_follow_up": "2026-12-20"})),
                )
                .await
                .expect("admin sets the date");
            let r = w.crm.set_locked(&w.admin, &[d.id], true).await;
            assert_eq!(r.done, vec![d.id], "{:?}", r.refused);
            (s.id, d.id)
        }
    };
    let (s, d) = pair(1).await;
    let spec = |s, d| MergeSpec {
        survivor: s,
        others: vec![d],
        take: Default::default(),
    };
    w.crm
        .merge_customers(&rep, &spec(s, d))
        .await
        .expect("rep merges");
    assert_eq!(
        stored(s).await,
        (chrono::NaiveDate::from_ymd_opt(2026, 12, 20), false)
    );
    let (s, d) = pair(2).await;
    w.crm
        .merge_customers(&w.admin, &spec(s, d))
        .await
        .expect("admin merges");
    assert_eq!(
        stored(s).await,
        (chrono::NaiveDate::from_ymd_opt(2026, 12, 20), true)
    );

    // A follow-up plans the next one only for who may write the date: the
    // rep's leaves it, an administrator's moves it, with an entry in the
    // customer's history.
    let (s, _) = pair(3).await;
    let follow_up = |actor, next: &str| {
        let w = &w;
        let fields = fields(json!({
            "customer_id": s.0.to_string(),
            "channel": "call",
            "content": "跟进",
            "next_follow_up_at": next,
        }));
        async move {
            w.crm
                .create_record(actor, Entity::FollowUp, fields)
                .await
                .expect("follow-up")
        }
    };
    follow_up(&rep, "2027-01-05 10:00").await;
    assert_eq!(stored(s).await.0, None);
    follow_up(&w.admin, "2027-01-06 10:00").await;
    assert_eq!(
        stored(s).await.0,
        chrono::NaiveDate::from_ymd_opt(2027, 1, 6)
    );
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, s.0)
        .await
        .expect("history");
    let moved: Vec<_> = history
        .iter()
        .flat_map(|e| &e.changes)
        .filter(|c| c.field == "next_follow_up")
        .map(|c| c.after.clone())
        .collect();
    assert_eq!(moved, [json!("2027-01-06")], "{history:?}");
}

/// Two customers created at the same moment with one new phone (a
/// warn-mode key), the second between the first's reading of the phone's
/// holders and its write, are both flagged as possible duplicates of each
/// other: the first's write, refused because the phone was taken
/// meanwhile, is indexed again and sees the second. Neither create fails.
pub async fn customers_taking_one_new_phone_at_once_are_both_flagged(store: Arc<dyn Store>) {
    use crate::dedupe::{DedupeMode, DuplicateQuery};
    use crate::schema::Table;
    use crate::store::{Filter, Select};
    use std::collections::BTreeSet;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let (o, actor) = (other.clone(), w.admin.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    hooked.before_customer_write(async move {
        let b = o
            .create_record(
                &actor,
                Entity::Customer,
                fields(json!({"name": "同号乙有限公司", "phone": "010-62345678"})),
            )
            .await
            .expect("the second customer");
        tx.send(b.id).expect("send");
    });
    let a = w
        .customer(
            &w.admin,
            "同号甲有限公司",
            json!({"phone": "010 6234 5678"}),
        )
        .await;
    let b = rx
        .try_recv()
        .expect("the second create ran during the first");
    let both = BTreeSet::from([a.id.0, b.0]);
    // Both hold a key row of the phone, flagged.
    let mut sel = Select::all(Table::CustomerKeys, w.admin.company_id.0, w.crm.now());
    sel.filter = Filter::Cmp(
        crate::store::Col::Column("kind"),
        crate::store::CmpOp::Eq,
        "phone".into(),
    );
    let rows = w.crm.store().select(&sel).await.expect("keys").rows;
    assert_eq!(
        rows.iter()
            .filter_map(|r| r.get("customer_id").as_id())
            .collect::<BTreeSet<_>>(),
        both,
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r.get("duplicate").as_bool() == Some(true)),
        "{rows:?}"
    );
    // The report groups them.
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    let phone = report
        .groups
        .iter()
        .find(|g| g.field == "phone")
        .expect("a phone group");
    assert_eq!(phone.mode, DedupeMode::Warn);
    assert_eq!(
        phone
            .members
            .iter()
            .map(|m| m.id.0)
            .collect::<BTreeSet<_>>(),
        both
    );
    // The later write announces the possible duplicate, naming the other.
    let events = w
        .crm
        .pending_events("permission-suite", 100_000)
        .await
        .expect("events");
    let possible: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == "customer.possible_duplicate")
        .collect();
    assert_eq!(possible.len(), 1, "{possible:?}");
    assert_eq!(possible[0].event.record_id, a.id.0);
    assert_eq!(
        possible[0].event.payload.to_value()["others"],
        json!([b.0.to_string()]),
        "{possible:?}"
    );
}

/// The duplicate report leaves out key fields the actor may not read in
/// full (equal values grouped and in order would tell what a mask hides),
/// refuses them by name, and shows a member's place only to one who may
/// read it.
pub async fn the_duplicate_report_holds_only_fields_read_in_full(store: Arc<dyn Store>) {
    use crate::dedupe::DuplicateQuery;
    let w = World::new(store).await;
    for name in ["重复甲有限公司", "重复乙有限公司"] {
        w.customer(
            &w.admin,
            name,
            json!({"phone": "010-62345678", "email": "same@example.com"}),
        )
        .await;
    }
    let report = |actor: Actor, fields: Vec<&str>| {
        let crm = &w.crm;
        let fields = fields.into_iter().map(str::to_string).collect();
        async move {
            crm.duplicate_report(
                &actor,
                &DuplicateQuery {
                    fields,
                    ..DuplicateQuery::default()
                },
            )
            .await
        }
    };
    let kinds = |r: &crate::dedupe::DuplicateReport| -> Vec<String> {
        r.groups.iter().map(|g| g.field.clone()).collect()
    };
    let all = report(w.admin.clone(), vec![]).await.expect("report");
    assert_eq!(kinds(&all), vec!["email", "phone"]);
    assert!(
        all.groups
            .iter()
            .flat_map(|g| &g.members)
            .all(|m| m.place.is_some())
    );
    let reads = [(Entity::Customer, Action::Read, DataScope::All)];
    for (name, access) in [
        ("nophone", FieldAccess::Hidden),
        ("maskphone", FieldAccess::Masked),
    ] {
        let actor = user_granted(
            &w,
            name,
            &reads,
            vec![
                rule(Entity::Customer, "phone", access),
                rule(Entity::Customer, "place", FieldAccess::Hidden),
            ],
        )
        .await;
        let err = report(actor.clone(), vec!["phone"])
            .await
            .expect_err("the phone kind is refused");
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
        let r = report(actor.clone(), vec![]).await.expect("report");
        assert_eq!(kinds(&r), vec!["email"], "{name}");
        assert_eq!(r.groups[0].members.len(), 2);
        assert!(r.groups[0].members.iter().all(|m| m.place.is_none()));
        let r = report(actor.clone(), vec!["email"]).await.expect("report");
        assert_eq!(kinds(&r), vec!["email"]);
    }
}

/// A contact created while its customer is merged away or deleted is not
/// left behind pointing at a customer in the recycle bin: whichever is
/// written second is refused, and a retry goes through.
pub async fn a_contact_is_not_stranded_by_a_merge_or_delete_meanwhile(store: Arc<dyn Store>) {
    use crate::dedupe::MergeSpec;
    use crate::schema::Table;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Arc::new(Crm::new(store, w.clock.clone()));
    let contact = |customer: RecordId, name: &str| {
        fields(json!({"customer_id": customer.to_string(), "name": name}))
    };
    let contacts_of = |customer: RecordId| {
        let w = &w;
        async move {
            w.crm
                .list_records(
                    &w.admin,
                    Entity::Contact,
                    &ListQuery::default()
                        .filter(Cond::Eq("customer_id".into(), json!(customer.to_string()))),
                )
                .await
                .expect("contacts")
                .items
                .len()
        }
    };
    let spec = |s: RecordId, d: RecordId| MergeSpec {
        survivor: s,
        others: vec![d],
        take: Default::default(),
    };
    // A merge that read D's contacts before one was added is refused.
    let s = w.customer(&w.zhangsan, "幸存客户有限公司", json!({})).await;
    let d = w.customer(&w.zhangsan, "并入客户有限公司", json!({})).await;
    create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": d.id.to_string(), "name": "老联系人"}),
    )
    .await;
    let (o, zs, f) = (other.clone(), w.zhangsan.clone(), contact(d.id, "新联系人"));
    hooked.before_customer_write(async move {
        o.create_record(&zs, Entity::Contact, f)
            .await
            .expect("contact");
    });
    let err = w
        .crm
        .merge_customers(&w.zhangsan, &spec(s.id, d.id))
        .await
        .expect_err("a contact was added meanwhile");
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    assert_eq!(contacts_of(d.id).await, 2);
    w.crm
        .merge_customers(&w.zhangsan, &spec(s.id, d.id))
        .await
        .expect("the retry merges");
    assert_eq!((contacts_of(s.id).await, contacts_of(d.id).await), (2, 0));
    // A contact whose customer was merged away before it is written is
    // refused.
    let d = w
        .customer(&w.zhangsan, "再并入客户有限公司", json!({}))
        .await;
    let (o, zs, sp) = (other.clone(), w.zhangsan.clone(), spec(s.id, d.id));
    hooked.before_write(Table::Contacts, async move {
        o.merge_customers(&zs, &sp).await.expect("merge");
    });
    let err = w
        .crm
        .create_record(&w.zhangsan, Entity::Contact, contact(d.id, "迟到联系人"))
        .await
        .expect_err("the customer was merged away");
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    assert_eq!((contacts_of(s.id).await, contacts_of(d.id).await), (2, 0));
    // The same for deleting the customer.
    let d = w.customer(&w.zhangsan, "删除客户有限公司", json!({})).await;
    let (o, zs, f) = (other.clone(), w.zhangsan.clone(), contact(d.id, "新联系人"));
    hooked.before_customer_write(async move {
        o.create_record(&zs, Entity::Contact, f)
            .await
            .expect("contact");
    });
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[d.id])
        .await;
    assert!(r.done.is_empty(), "deleted with a contact added meanwhile");
    assert_eq!(contacts_of(d.id).await, 1);
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[d.id])
        .await;
    assert_eq!(r.done, vec![d.id], "{:?}", r.refused);
    assert_eq!(contacts_of(d.id).await, 0);
    let d = w
        .customer(&w.zhangsan, "再删除客户有限公司", json!({}))
        .await;
    let (o, zs, id) = (other.clone(), w.zhangsan.clone(), d.id);
    hooked.before_write(Table::Contacts, async move {
        let r = o.delete_records(&zs, Entity::Customer, &[id]).await;
        assert_eq!(r.done, vec![id], "{:?}", r.refused);
    });
    let err = w
        .crm
        .create_record(&w.zhangsan, Entity::Contact, contact(d.id, "迟到联系人"))
        .await
        .expect_err("the customer was deleted");
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
}

/// Two shares of one record to one user written at once leave one live
/// share: the second is refused.
pub async fn a_record_is_shared_once_with_a_user_at_a_time(store: Arc<dyn Store>) {
    use crate::schema::Table;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let c = w.customer(&w.zhangsan, "共享一次有限公司", json!({})).await;
    let (zs, to, id) = (w.zhangsan.clone(), w.wangwu.user_id, c.id);
    hooked.before_write(Table::Shares, async move {
        other
            .share_record(&zs, Entity::Customer, id, to, ShareAccess::Read, None)
            .await
            .expect("first share");
    });
    let err = w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            to,
            ShareAccess::Write,
            None,
        )
        .await
        .expect_err("shared meanwhile");
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    let shares = w
        .crm
        .list_shares(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("shares");
    assert_eq!(shares.len(), 1, "{shares:?}");
    assert_eq!(shares[0].access, ShareAccess::Read);
    // Sharing again replaces it.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            to,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("share again");
    let shares = w
        .crm
        .list_shares(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("shares");
    assert_eq!(
        shares.iter().map(|s| s.access).collect::<Vec<_>>(),
        vec![ShareAccess::Write]
    );
}

/// A field rule may name its field by a label (Chinese, or English in any
/// case), an alias, or a custom field's label: it is stored under the
/// field's name and applies to reads and lists; a rule stored by an older
/// build under a label applies too. A field the entity lacks, and two
/// different rules on one field, are refused by name.
pub async fn field_rules_named_by_label_apply_as_by_name(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    use crate::schema::Table;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    let w = World::new(store.clone()).await;
    let grade = w
        .crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "grade".into(),
                label: "等级".into(),
                label_en: Some("Grade".into()),
                field_type: CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("define");
    let c = w
        .customer(
            &w.admin,
            "规则名称测试有限公司",
            json!({"custom.grade": "甲等客户"}),
        )
        .await;
    create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "孙八", "mobile": "13812345678", "email": "sunba@example.com", "wechat": "sunba88"}),
    )
    .await;
    let grants = [
        (Entity::Customer, Action::Read, DataScope::All),
        (Entity::Contact, Action::Read, DataScope::All),
    ];
    let viewer = user_granted(
        &w,
        "viewer",
        &grants,
        vec![
            rule(Entity::Contact, "手机", FieldAccess::Masked),
            rule(Entity::Contact, "EMAIL", FieldAccess::Hidden),
            rule(Entity::Contact, "微信号", FieldAccess::Hidden),
            rule(Entity::Customer, "custom.等级", FieldAccess::Masked),
        ],
    )
    .await;
    let stored: Vec<&str> = viewer.roles[0]
        .field_rules
        .iter()
        .map(|r| r.field.as_str())
        .collect();
    assert_eq!(stored, ["mobile", "email", "wechat", "custom.grade"]);

    // What a reader sees of the contact and the customer, in a get and a list.
    let seen = |actor: Actor| {
        let w = &w;
        async move {
            let contacts = w
                .crm
                .list_records(&actor, Entity::Contact, &ListQuery::default())
                .await
                .expect("contacts")
                .items;
            assert_eq!(contacts.len(), 1);
            let one = w
                .crm
                .get_record(&actor, Entity::Contact, contacts[0].id)
                .await
                .expect("contact");
            let customers = w
                .crm
                .list_records(&actor, Entity::Customer, &ListQuery::default())
                .await
                .expect("customers")
                .items;
            let customer = w
                .crm
                .get_record(&actor, Entity::Customer, c.id)
                .await
                .expect("customer");
            assert_eq!(
                contacts[0].fields, one.fields,
                "a list shows what a get does"
            );
            assert_eq!(
                customers[0].custom, customer.custom,
                "a list shows what a get does"
            );
            (one, customer)
        }
    };
    let viewer_role = viewer.roles[0].clone();
    let (contact, customer) = seen(viewer).await;
    assert_eq!(contact.fields.get("mobile"), Some(&json!("138****5678")));
    assert_eq!(contact.fields.get("email"), None, "{:?}", contact.fields);
    assert_eq!(contact.fields.get("wechat"), None, "{:?}", contact.fields);
    assert_eq!(customer.custom.get("grade"), Some(&json!("甲**户")));
    let (contact, customer) = seen(w.admin.clone()).await;
    assert_eq!(contact.fields.get("mobile"), Some(&json!("13812345678")));
    assert_eq!(customer.custom.get("grade"), Some(&json!("甲等客户")));

    // Names that are no field of the entity, and two rules on one field.
    for (rules, named) in [
        (
            vec![rule(Entity::Contact, "手机号码二", FieldAccess::Hidden)],
            "手机号码二",
        ),
        (
            vec![rule(Entity::Customer, "custom.nosuch", FieldAccess::Hidden)],
            "nosuch",
        ),
        (
            vec![rule(Entity::Customer, "custom.级别", FieldAccess::Hidden)],
            "级别",
        ),
        (
            vec![
                rule(Entity::Contact, "mobile", FieldAccess::Masked),
                rule(Entity::Contact, "Mobile", FieldAccess::Hidden),
            ],
            "contact.mobile",
        ),
    ] {
        let err = w
            .crm
            .create_role(
                &w.admin,
                RoleSpec {
                    name: format!("错误规则{named}"),
                    is_admin: false,
                    permissions: Vec::new(),
                    field_rules: rules,
                },
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, Error::Validation(_)) && err.to_string().contains(named),
            "{err}"
        );
    }

    // A role whose rules an older build stored under labels.
    let old = user_granted(&w, "oldrole", &grants, Vec::new()).await;
    let role = &old.roles[0];
    let labelled = json!([
        {"entity": "contact", "field": "Mobile", "access": "hidden"},
        {"entity": "customer", "field": "custom.等级", "access": "hidden"},
    ]);
    store
        .apply(&ChangeSet {
            ops: vec![Op::Update {
                table: Table::Roles,
                id: role.id.0,
                expected_version: role.version,
                values: vec![("field_rules", Value::Json(labelled))],
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("stored as an older build did");
    let old = w.crm.actor(old.user_id).await.expect("actor");
    let (contact, customer) = seen(old).await;
    assert_eq!(contact.fields.get("mobile"), None, "{:?}", contact.fields);
    assert_eq!(
        contact.fields.get("email"),
        Some(&json!("sunba@example.com"))
    );
    assert_eq!(customer.custom.get("grade"), None, "{:?}", customer.custom);
    let listed = w
        .crm
        .resolve_role(&w.admin, &role.id.to_string())
        .await
        .expect("role");
    let fields: Vec<&str> = listed
        .field_rules
        .iter()
        .map(|r| r.field.as_str())
        .collect();
    assert_eq!(fields, ["mobile", "custom.grade"]);

    // A rule on a custom field since deleted is kept on an edit of its
    // role (the field may come back), but no new one names it.
    w.crm
        .delete_custom_field(&w.admin, grade.id, grade.version)
        .await
        .expect("field deleted");
    let spec = RoleSpec {
        name: viewer_role.name.clone(),
        is_admin: false,
        permissions: viewer_role.permissions.clone(),
        field_rules: viewer_role.field_rules.clone(),
    };
    let kept = w
        .crm
        .update_role(&w.admin, viewer_role.id, viewer_role.version, spec.clone())
        .await
        .expect("the held rule is kept");
    assert_eq!(kept.field_rules, viewer_role.field_rules);
    let err = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "新角色".into(),
                ..spec
            },
        )
        .await
        .expect_err("no such field now");
    assert!(err.to_string().contains("grade"), "{err}");
}

/// A refused login tells who does not know the password nothing about the
/// account: an unknown company or user, a wrong password, an account
/// without a local password, a deactivated one and a locked one (whatever
/// the password) get one message (an unknown user's password is checked
/// against a stand-in hash: `org`'s unit tests). The right password learns
/// that the account is deactivated; a locked account refuses it until the
/// lockout passes.
pub async fn a_refused_login_tells_nothing_without_the_password(store: Arc<dyn Store>) {
    use crate::org::UserPatch;
    let w = World::new(store).await;
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "qianqi".into(),
                display_name: "钱七".into(),
                department_id: Some(w.group1),
                password: Some("Qianqi#2026".into()),
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm
        .update_user(
            &w.admin,
            u.id,
            u.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivated");
    let refusal = |r: Result<Actor, Error>| match r {
        Err(Error::Unauthenticated(m)) => m,
        other => panic!("expected a refused login, got {other:?}"),
    };
    let generic = refusal(w.crm.authenticate("NOPE", "admin", "Admin#2026").await);
    for (username, password) in [
        ("nobody", "Admin#2026"),
        ("admin", "wrong"),
        ("qianqi", "wrong"),
        ("zhangsan", "anything"),
    ] {
        assert_eq!(
            refusal(w.crm.authenticate("HW", username, password).await),
            generic,
            "{username}"
        );
    }
    let m = refusal(w.crm.authenticate("HW", "qianqi", "Qianqi#2026").await);
    assert!(m.contains("deactivated"), "{m}");

    // Four more wrong passwords lock the account: the one that locks it,
    // and any password after, right or wrong, get the same message.
    for _ in 0..4 {
        assert_eq!(
            refusal(w.crm.authenticate("HW", "admin", "wrong").await),
            generic
        );
    }
    for password in ["Admin#2026", "wrong"] {
        assert_eq!(
            refusal(w.crm.authenticate("HW", "admin", password).await),
            generic,
            "{password}"
        );
    }
    w.clock.advance(chrono::Duration::minutes(16));
    w.crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("login after the lockout");

    // (An unknown user's refusal checks the password against a stand-in
    // hash, taking as long: see the unit tests of `org`, not timed here.)
    for (company, username) in [("HW", "nobody"), ("NOPE", "admin")] {
        assert_eq!(
            refusal(w.crm.authenticate(company, username, "another").await),
            generic
        );
    }
}

/// Setting a choice field's options and deleting a custom field carry the
/// version their screen read: a second edit from the same read is refused as
/// a conflict naming the field, whether the first one committed before it
/// was checked or between its check and its write, and nothing the first
/// one wrote is lost. A custom field deleted and defined again since the
/// read is not deleted by the stale read.
pub async fn option_lists_and_field_deletes_hold_to_the_version_read(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    use crate::schema::Table;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let options = |field: &'static str| {
        let w = &w;
        async move {
            w.crm
                .picklist_with_version(&w.admin, Entity::Customer, field)
                .await
                .expect("options")
        }
    };
    let conflict = |err: Error, named: &str| {
        assert!(
            matches!(&err, Error::Conflict { .. }) && err.to_string().contains(named),
            "{err}"
        );
    };

    // Two edits from one read of the defaults, then of a list set.
    let read = options("category").await;
    assert_eq!(read.version, 0, "{read:?}");
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            read.version,
            &list(&["战略", "普通"]),
        )
        .await
        .expect("first edit");
    let err = w
        .crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            read.version,
            &list(&["潜在"]),
        )
        .await
        .expect_err("a second edit from the same read");
    conflict(err, "customer.category");
    let read = options("category").await;
    assert_eq!(read.options, ["战略", "普通"]);
    assert!(read.version > 0, "{read:?}");
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "分类",
            read.version,
            &list(&["战略", "普通", "重点"]),
        )
        .await
        .expect("an edit of the list as read");
    let err = w
        .crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            read.version,
            &list(&["战略"]),
        )
        .await
        .expect_err("a second edit from the same read");
    conflict(err, "customer.category");
    assert_eq!(options("category").await.options, ["战略", "普通", "重点"]);

    // Another edit commits between the check and the write: of a list set,
    // and of a field's first list.
    for field in ["category", "level"] {
        let read = options(field).await;
        let (o, admin) = (other.clone(), w.admin.clone());
        let version = read.version;
        hooked.before_write(Table::Picklists, async move {
            o.set_picklist(&admin, Entity::Customer, field, version, &["甲".into()])
                .await
                .expect("the edit meanwhile");
        });
        let err = w
            .crm
            .set_picklist(
                &w.admin,
                Entity::Customer,
                field,
                read.version,
                &list(&["乙"]),
            )
            .await
            .expect_err("refused");
        conflict(err, &format!("customer.{field}"));
        assert_eq!(options(field).await.options, ["甲"], "{field}");
    }

    // A custom field deleted and defined again since it was read.
    let grade = |label: &str| NewCustomField {
        entity: Entity::Customer,
        key: "grade".into(),
        label: label.into(),
        label_en: None,
        field_type: CustomFieldType::Text,
        options: Vec::new(),
        required: false,
        unique: false,
    };
    let first = w
        .crm
        .define_custom_field(&w.admin, grade("等级"))
        .await
        .expect("define");
    let read = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields")
        .into_iter()
        .find(|d| d.key == "grade")
        .expect("grade");
    assert_eq!(read, first);
    w.crm
        .delete_custom_field(&w.admin, read.id, read.version)
        .await
        .expect("first delete");
    let again = w
        .crm
        .define_custom_field(&w.admin, grade("客户等级"))
        .await
        .expect("defined again");
    let err = w
        .crm
        .delete_custom_field(&w.admin, read.id, read.version)
        .await
        .expect_err("a second delete from the same read");
    conflict(err, "customer.grade");
    let live = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields");
    assert!(live.contains(&again), "{live:?}");

    // Deleted by another between the check and the write.
    let (o, admin, id, version) = (other.clone(), w.admin.clone(), again.id, again.version);
    hooked.before_write(Table::CustomFields, async move {
        o.delete_custom_field(&admin, id, version)
            .await
            .expect("the delete meanwhile");
    });
    let err = w
        .crm
        .delete_custom_field(&w.admin, again.id, again.version)
        .await
        .expect_err("refused");
    conflict(err, "customer.grade");
}

/// A user holding `roles`, in 销售一组.
async fn user_holding(w: &World, username: &str, roles: &[&crate::auth::Role]) -> Actor {
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: username.into(),
                display_name: username.into(),
                department_id: Some(w.group1),
                role_ids: roles.iter().map(|r| r.id).collect(),
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm.actor(u.id).await.expect("actor")
}

/// Field rules hold across several roles: only the roles granting read on
/// an entity have a say on its fields. A role about something else (here
/// follow-ups only) lifts no rule another role sets — a masked phone stays
/// masked, a hidden custom field and products' cost stay hidden, in a get,
/// a list, a search and an export — and when none of the roles reads the
/// entity (products: the catalogue is read by everyone) the strictest rule
/// of the roles holds. Among roles granting read, grants add up: a second
/// role that reads customers without the rule shows the fields in full,
/// one that reads products without a rule on cost shows the cost.
pub async fn an_unrelated_role_lifts_no_field_rule(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    use crate::money::Money;
    use crate::sales::{ProductInput, ProductQuery};
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "secret".into(),
                label: "机密".into(),
                label_en: Some("Secret".into()),
                field_type: CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("define");
    let c = w
        .customer(
            &w.admin,
            "多角色测试有限公司",
            json!({"phone": "13812345678", "email": "duojuese@example.com", "custom.secret": "底价八折"}),
        )
        .await;
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("MR-1".into()),
                name: Some("多角色服务器".into()),
                list_price: Some(Money::cny(3_500_000)),
                cost: Some(Money::cny(2_100_000)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    let role = |name: &str, grants: &[(Entity, Action)], rules: Vec<FieldRule>| {
        let spec = RoleSpec {
            name: name.into(),
            is_admin: false,
            permissions: grants
                .iter()
                .map(|&(entity, action)| Permission {
                    entity,
                    action,
                    scope: DataScope::All,
                })
                .collect(),
            field_rules: rules,
        };
        let w = &w;
        async move { w.crm.create_role(&w.admin, spec).await.expect("role") }
    };
    let restricted = role(
        "销售受限",
        &[
            (Entity::Customer, Action::Read),
            (Entity::Customer, Action::Export),
        ],
        vec![
            rule(Entity::Customer, "phone", FieldAccess::Masked),
            rule(Entity::Customer, "custom.secret", FieldAccess::Hidden),
            rule(Entity::Product, "cost", FieldAccess::Hidden),
        ],
    )
    .await;
    let follow_ups = role("仅跟进", &[(Entity::FollowUp, Action::Read)], Vec::new()).await;
    let open_customers = role(
        "客户全览",
        &[
            (Entity::Customer, Action::Read),
            (Entity::Customer, Action::Export),
        ],
        Vec::new(),
    )
    .await;
    let catalogue = role(
        "产品维护",
        &[
            (Entity::Product, Action::Read),
            (Entity::Product, Action::Update),
        ],
        Vec::new(),
    )
    .await;
    let alone = user_holding(&w, "restricted_alone", &[&restricted]).await;
    let with_unrelated = user_holding(&w, "with_unrelated", &[&follow_ups, &restricted]).await;
    let with_reader = user_holding(&w, "with_reader", &[&restricted, &open_customers]).await;
    let with_catalogue = user_holding(&w, "with_catalogue", &[&restricted, &catalogue]).await;

    // What each sees of the customer: in a get, a list, a search by phone
    // and an export of every visible column.
    let seen = |actor: Actor| {
        let w = &w;
        async move {
            let one = w
                .crm
                .get_record(&actor, Entity::Customer, c.id)
                .await
                .expect("customer");
            let listed = w
                .crm
                .list_records(&actor, Entity::Customer, &ListQuery::default())
                .await
                .expect("customers")
                .items
                .remove(0);
            assert_eq!(
                (&listed.fields, &listed.custom),
                (&one.fields, &one.custom),
                "a list shows what a get does"
            );
            let by_phone = found(
                w,
                &actor,
                Entity::Customer,
                ListQuery::default().search("13812345678"),
            )
            .await;
            let (keys, rows) =
                exported(w, &actor, Entity::Customer, ListQuery::default(), &[]).await;
            let cell = |key: &str| {
                keys.iter()
                    .position(|k| k == key)
                    .map(|i| rows[0][i].clone())
            };
            let exported_phone = cell("phone");
            let exported_secret = cell("custom.secret");
            (one, by_phone, exported_phone, exported_secret)
        }
    };
    for who in [&alone, &with_unrelated, &with_catalogue] {
        let (one, by_phone, phone, secret) = seen(who.clone()).await;
        let name = &who.display_name;
        assert_eq!(
            one.fields.get("phone"),
            Some(&json!("138****5678")),
            "{name}"
        );
        assert_eq!(one.custom.get("secret"), None, "{name}: {:?}", one.custom);
        assert_eq!(
            one.fields.get("email"),
            Some(&json!("duojuese@example.com")),
            "{name}: a field no rule names"
        );
        assert_eq!(by_phone, 0, "{name}: a masked phone is not searched");
        assert_eq!(
            phone,
            Some(ExportValue::Text("138****5678".into())),
            "{name}"
        );
        assert_eq!(secret, None, "{name}: no column for a hidden field");
        let err = w
            .crm
            .export_columns(who, Entity::Customer, &["custom.secret".into()])
            .await
            .expect_err("a hidden field may not be picked");
        assert!(matches!(err, Error::Forbidden(_)), "{name}: {err}");
        assert_eq!(
            who.restricting_roles(Entity::Customer, "phone"),
            vec!["销售受限"],
            "{name}"
        );
    }
    // A second role reading customers without the rules shows them in full.
    let (one, by_phone, phone, secret) = seen(with_reader.clone()).await;
    assert_eq!(one.fields.get("phone"), Some(&json!("13812345678")));
    assert_eq!(one.custom.get("secret"), Some(&json!("底价八折")));
    assert_eq!(by_phone, 1);
    assert_eq!(phone, Some(ExportValue::Text("13812345678".into())));
    assert_eq!(secret, Some(ExportValue::Text("底价八折".into())));
    assert!(with_reader.restricted_fields(Entity::Customer).is_empty());

    // Products' cost: neither 仅跟进 nor 客户全览 reads products, so the
    // cost 销售受限 hides stays hidden; 产品维护 reads them without a rule on
    // the cost and shows it.
    let cost_of = |p: &crate::sales::Product| p.cost.map(|m| m.minor);
    for (who, sees) in [
        (&alone, false),
        (&with_unrelated, false),
        (&with_reader, false),
        (&with_catalogue, true),
    ] {
        let one = w.crm.product(who, p.id).await.expect("product");
        let listed = w
            .crm
            .list_products(who, &ProductQuery::default())
            .await
            .expect("products")
            .items
            .remove(0);
        let want = sees.then_some(2_100_000);
        assert_eq!(
            (cost_of(&one), cost_of(&listed)),
            (want, want),
            "{}",
            who.display_name
        );
    }
    for who in [&with_unrelated, &with_reader] {
        let err = w
            .crm
            .export_columns(who, Entity::Product, &["cost".into()])
            .await
            .expect_err("a hidden cost may not be picked");
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
    }

    // The same holds when an administrator hands the roles out later.
    let later = user_holding(&w, "later", &[&restricted]).await;
    let user = w.crm.user(&w.admin, later.user_id).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            later.user_id,
            user.version,
            crate::org::UserPatch {
                role_ids: Some(vec![restricted.id, follow_ups.id]),
                ..crate::org::UserPatch::default()
            },
        )
        .await
        .expect("a second role");
    let later = w.crm.actor(later.user_id).await.expect("actor");
    assert_eq!(later.roles.len(), 2);
    let (one, by_phone, _, _) = seen(later.clone()).await;
    assert_eq!(one.fields.get("phone"), Some(&json!("138****5678")));
    assert_eq!(one.custom.get("secret"), None);
    assert_eq!(by_phone, 0);
    let product = w.crm.product(&later, p.id).await.expect("product");
    assert_eq!(product.cost, None);
}

/// Creating a record for another owner is allowed when the actor's create
/// scope covers the record as it would be written (a manager for a
/// subordinate, a department lead for a colleague of the department, a
/// role creating follow-ups for all) and the actor could read it
/// afterwards; it returns the record. Otherwise it is refused before
/// anything is written, naming the owner — the transfer right alone does
/// not do.
pub async fn a_record_for_another_owner_needs_the_create_scope(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mine = create(
        &w,
        &w.zhangsan,
        Entity::Customer,
        json!({"name": "张三的客户公司"}),
    )
    .await;
    // zhangsan (own scope, with the transfer right) for wangwu.
    let err = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "代建客户公司", "owner_id": "wangwu"})),
        )
        .await
        .expect_err("outside the own scope");
    match &err {
        Error::Forbidden(m) => assert!(m.contains("王五") && m.contains("another owner"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        found(
            &w,
            &w.admin,
            Entity::Customer,
            ListQuery::default().search("代建客户")
        )
        .await,
        0,
        "nothing is written"
    );
    for (entity, v) in [
        (
            Entity::Contact,
            json!({"customer_id": mine.id.to_string(), "name": "代建联系人", "owner_id": "wangwu"}),
        ),
        (
            Entity::FollowUp,
            json!({"customer_id": mine.id.to_string(), "channel": "电话", "content": "代写跟进", "owner_id": "wangwu"}),
        ),
    ] {
        match w.crm.create_record(&w.zhangsan, entity, fields(v)).await {
            Err(Error::Forbidden(m)) => assert!(m.contains("王五"), "{m}"),
            other => panic!("{entity}: expected a refusal, got {other:?}"),
        }
        assert_eq!(found(&w, &w.admin, entity, ListQuery::default()).await, 0);
    }
    // The manager (department tree) for a subordinate: created and returned.
    let r = w
        .crm
        .create_record(
            &w.lisi,
            Entity::Customer,
            fields(json!({"name": "经理代建公司", "owner_id": "zhangsan"})),
        )
        .await
        .expect("a manager creates for a subordinate");
    assert_eq!(r.owner_id, Some(w.zhangsan.user_id));
    assert_eq!(r.text("name"), Some("经理代建公司"));
    // A department lead for a colleague of the department, not another's.
    let r = w
        .crm
        .create_record(
            &w.zhaoliu,
            Entity::Contact,
            fields(json!({"customer_id": mine.id.to_string(), "name": "组长代建", "owner_id": "zhangsan"})),
        )
        .await
        .expect("within the department");
    assert_eq!(r.owner_id, Some(w.zhangsan.user_id));
    forbidden_saying(
        w.crm
            .create_record(
                &w.zhaoliu,
                Entity::Customer,
                fields(json!({"name": "组长越界公司", "owner_id": "wangwu"})),
            )
            .await,
        "王五",
    );
    // A role creating follow-ups for all, without the transfer right.
    let service = user_granted(
        &w,
        "kefu",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::FollowUp, Action::Read, DataScope::All),
            (Entity::FollowUp, Action::Create, DataScope::All),
        ],
        Vec::new(),
    )
    .await;
    let f = w
        .crm
        .create_record(
            &service,
            Entity::FollowUp,
            fields(json!({"customer_id": mine.id.to_string(), "channel": "电话", "content": "客服代记", "owner_id": "zhangsan"})),
        )
        .await
        .expect("create scope all");
    assert_eq!(f.owner_id, Some(w.zhangsan.user_id));
    // Who may create for all but read only their own is refused up front
    // rather than told afterwards that the record is not found.
    let blind = user_granted(
        &w,
        "mangqu",
        &[
            (Entity::Customer, Action::Read, DataScope::Own),
            (Entity::Customer, Action::Create, DataScope::All),
        ],
        Vec::new(),
    )
    .await;
    forbidden_saying(
        w.crm
            .create_record(
                &blind,
                Entity::Customer,
                fields(json!({"name": "看不见的公司", "owner_id": "zhangsan"})),
            )
            .await,
        "could not read",
    );
    assert_eq!(
        found(
            &w,
            &w.admin,
            Entity::Customer,
            ListQuery::default().search("看不见")
        )
        .await,
        0
    );
}

#[track_caller]
fn forbidden_saying<T: std::fmt::Debug>(result: Result<T, Error>, says: &str) {
    match result {
        Err(Error::Forbidden(m)) => assert!(m.contains(says), "{m} (expected '{says}')"),
        other => panic!("expected a refusal saying '{says}', got {other:?}"),
    }
}

/// A merge of customers merges contacts that would duplicate one of the
/// survivor's (one mobile per customer): the survivor's contact takes what
/// it lacked, the follow-ups of the duplicate point at it, the duplicate
/// goes to the recycle bin with a `merge` entry in its history, and the
/// survivor keeps one live contact per mobile.
pub async fn a_merge_merges_contacts_sharing_a_mobile(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "合并甲公司"}),
    )
    .await;
    let b = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "合并乙公司"}),
    )
    .await;
    let keep = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": a.id.to_string(), "name": "王经理", "mobile": "13800001111"}),
    )
    .await;
    let dup = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": b.id.to_string(), "name": "王经理", "mobile": "138-0000-1111",
               "email": "wang@example.com", "title": "采购经理"}),
    )
    .await;
    let other = create(
        &w,
        &w.admin,
        Entity::Contact,
        json!({"customer_id": b.id.to_string(), "name": "李会计", "mobile": "13900002222"}),
    )
    .await;
    let f = create(
        &w,
        &w.admin,
        Entity::FollowUp,
        json!({"customer_id": b.id.to_string(), "contact_id": dup.id.to_string(), "channel": "电话", "content": "报价"}),
    )
    .await;
    w.crm
        .merge_customers(
            &w.admin,
            &crate::dedupe::MergeSpec {
                survivor: a.id,
                others: vec![b.id],
                take: Default::default(),
            },
        )
        .await
        .expect("merge");
    let live = w
        .crm
        .list_records(
            &w.admin,
            Entity::Contact,
            &ListQuery::default().filter(Cond::Eq("customer_id".into(), json!(a.id.to_string()))),
        )
        .await
        .expect("contacts");
    let mut ids: Vec<RecordId> = live.items.iter().map(|c| c.id).collect();
    ids.sort();
    let mut expected = vec![keep.id, other.id];
    expected.sort();
    assert_eq!(ids, expected, "one live contact per mobile");
    let kept = w
        .crm
        .get_record(&w.admin, Entity::Contact, keep.id)
        .await
        .expect("kept");
    assert_eq!(
        kept.text("email"),
        Some("wang@example.com"),
        "blanks filled"
    );
    assert_eq!(kept.text("title"), Some("采购经理"));
    assert_eq!(
        kept.text("mobile"),
        keep.text("mobile"),
        "its own value stays"
    );
    let gone = w
        .crm
        .get_record(&w.admin, Entity::Contact, dup.id)
        .await
        .expect("in the recycle bin");
    assert!(gone.deleted_at.is_some());
    let history = w
        .crm
        .history(&w.admin, Entity::Contact, dup.id.0)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.action == "merge" && h.changes.iter().any(|c| c.field == "merged_into")),
        "{history:#?}"
    );
    let f = w
        .crm
        .get_record(&w.admin, Entity::FollowUp, f.id)
        .await
        .expect("follow-up");
    assert_eq!(f.text("contact_id"), Some(keep.id.to_string().as_str()));
    // The duplicate stays a duplicate: restoring it is refused.
    let report = w
        .crm
        .restore_records(&w.admin, Entity::Contact, &[dup.id])
        .await;
    assert!(report.done.is_empty(), "{report:?}");
}

/// An edit checks the duplicate keys whose value it changes only:
/// re-saving a customer's own name or phone, which another customer shares
/// since before the rule blocked, is not refused; changing to a taken one
/// is.
pub async fn an_edit_keeping_a_shared_key_is_not_a_new_duplicate(store: Arc<dyn Store>) {
    use crate::dedupe::DedupeMode;
    let w = World::new(store).await;
    w.crm
        .set_dedupe_rule(&w.admin, "name", DedupeMode::Off)
        .await
        .expect("off");
    let _a = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "重名科技有限公司", "phone": "010-88886666"}),
    )
    .await;
    let b = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "重名科技有限公司", "phone": "010-88886666"}),
    )
    .await;
    let c = create(&w, &w.admin, Entity::Customer, json!({"name": "别家公司"})).await;
    for field in ["name", "phone"] {
        w.crm
            .set_dedupe_rule(&w.admin, field, DedupeMode::Block)
            .await
            .expect("block");
    }
    let b = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            b.id,
            b.version,
            fields(json!({"name": "重名科技有限公司", "phone": "010 8888 6666", "notes": "y"})),
        )
        .await
        .expect("own values re-saved");
    assert_eq!(b.text("notes"), Some("y"));
    for (field, value) in [("name", "重名科技有限公司"), ("phone", "01088886666")] {
        let err = w
            .crm
            .update_record(
                &w.admin,
                Entity::Customer,
                c.id,
                c.version,
                fields(json!({ field: value })),
            )
            .await
            .expect_err("a taken value");
        assert!(matches!(err, Error::Duplicate { .. }), "{field}: {err}");
    }
}

/// A follow-up's dates follow one set of rules on create and edit: dated
/// at most a day ahead, the next follow-up not before it (a bare date of
/// the same day is fine).
pub async fn follow_up_dates_are_checked_on_edit_too(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "跟进日期公司"}),
    )
    .await;
    let base = |extra: serde_json::Value| {
        let mut f =
            fields(json!({"customer_id": c.id.to_string(), "channel": "电话", "content": "沟通"}));
        f.extend(fields(extra));
        f
    };
    assert!(matches!(
        w.crm
            .create_record(
                &w.admin,
                Entity::FollowUp,
                base(json!({"occurred_at": "2099-01-01"}))
            )
            .await,
        Err(Error::Validation(_))
    ));
    let err = w
        .crm
        .create_record(
            &w.admin,
            Entity::FollowUp,
            base(
                json!({"occurred_at": "2026-11-20 10:00", "next_follow_up_at": "2026-11-19 09:00"}),
            ),
        )
        .await
        .expect_err("next before it on add");
    assert!(err.to_string().contains("next_follow_up_at"), "{err}");
    let f = w
        .crm
        .create_record(
            &w.admin,
            Entity::FollowUp,
            base(json!({"occurred_at": "2026-11-20 10:00", "next_follow_up_at": "2026-11-20"})),
        )
        .await
        .expect("a bare date of the same day");
    let err = w
        .crm
        .update_record(
            &w.admin,
            Entity::FollowUp,
            f.id,
            f.version,
            fields(json!({"occurred_at": "2099-01-01 10:00"})),
        )
        .await
        .expect_err("far ahead on edit");
    assert!(err.to_string().contains("occurred_at"), "{err}");
    let err = w
        .crm
        .update_record(
            &w.admin,
            Entity::FollowUp,
            f.id,
            f.version,
            fields(json!({"next_follow_up_at": "2026-11-01 10:00"})),
        )
        .await
        .expect_err("next before it on edit");
    assert!(err.to_string().contains("next_follow_up_at"), "{err}");
    w.crm
        .update_record(
            &w.admin,
            Entity::FollowUp,
            f.id,
            f.version,
            fields(json!({"content": "沟通（补记）"})),
        )
        .await
        .expect("other fields edit as before");
}

/// A unique custom text field compares values as the duplicate keys do:
/// letter case, full-width letters and digits and surrounding spaces
/// aside; a value that only starts alike is another value, and a record
/// re-saving its own value in another spelling is not a duplicate. A
/// number field refuses numbers it would not keep exactly.
pub async fn unique_text_fields_fold_and_numbers_stay_exact(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    let w = World::new(store).await;
    for (key, ty, unique) in [
        ("erp_code", CustomFieldType::Text, true),
        ("staff", CustomFieldType::Number, false),
    ] {
        w.crm
            .define_custom_field(
                &w.admin,
                NewCustomField {
                    entity: Entity::Customer,
                    key: key.into(),
                    label: key.into(),
                    label_en: None,
                    field_type: ty,
                    options: Vec::new(),
                    required: false,
                    unique,
                },
            )
            .await
            .expect("field");
    }
    let first = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "编码一公司", "erp_code": "ERP-001"}),
    )
    .await;
    for (i, spelling) in ["erp-001", "ＥＲＰ－００１", " Erp-001 "]
        .iter()
        .enumerate()
    {
        let err = w
            .crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": format!("编码重复{i}公司"), "erp_code": spelling})),
            )
            .await
            .expect_err("the same code");
        assert!(matches!(err, Error::Duplicate { .. }), "{spelling}: {err}");
    }
    create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "编码二公司", "erp_code": "ERP-0011"}),
    )
    .await;
    let first = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            first.id,
            first.version,
            fields(json!({"erp_code": "erp-001"})),
        )
        .await
        .expect("its own code respelled");
    for bad in [
        "9007199254740993",
        "0.1234567890123456",
        "12345678901234567890.5",
    ] {
        let err = w
            .crm
            .update_record(
                &w.admin,
                Entity::Customer,
                first.id,
                first.version,
                fields(json!({ "staff": bad })),
            )
            .await
            .expect_err("not kept exactly");
        assert!(
            err.to_string().contains("significant digits"),
            "{bad}: {err}"
        );
    }
    let err = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            first.id,
            first.version,
            fields(json!({ "staff": 9_007_199_254_740_993_u64 })),
        )
        .await
        .expect_err("a JSON integer beyond 2^53");
    assert!(err.to_string().contains("significant digits"), "{err}");
    for (good, stored) in [
        ("9007199254740992", json!(9007199254740992.0)),
        ("123456789012.345", json!(123456789012.345)),
        ("1,200", json!(1200.0)),
    ] {
        let r = w
            .crm
            .update_record(
                &w.admin,
                Entity::Customer,
                first.id,
                w.crm
                    .get_record(&w.admin, Entity::Customer, first.id)
                    .await
                    .expect("read")
                    .version,
                fields(json!({ "staff": good })),
            )
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(r.custom.get("staff"), Some(&stored), "{good}");
    }
}

/// A unique custom text field refuses a value a record holds in any mix of
/// spellings — `ＥＲＰ-001` (full-width letters, ASCII digits) and
/// `ERP-001`, either stored first; `erp  001` and `ERP 001` (a run of
/// spaces is one) — on create and on edit. A create of another spelling
/// saved between a create's check and its write is caught by the write's
/// guard: exactly one of `p-1` and `Ｐ-1` is stored. The stores find the
/// values as [`text_key`](crate::validate::text_key) folds them
/// ([`Filter::TextKeyIn`](crate::store::Filter::TextKeyIn)).
pub async fn unique_text_fields_hold_across_mixed_spellings(store: Arc<dyn Store>) {
    use crate::custom::{CustomFieldType, NewCustomField};
    use crate::store::{Col, CustomType, Filter, Select};
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "erp_code".into(),
                label: "ERP编码".into(),
                label_en: None,
                field_type: CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: true,
            },
        )
        .await
        .expect("field");
    let new = |name: String, code: &str| fields(json!({"name": name, "erp_code": code}));
    let pairs = [
        ("ＥＲＰ-001", "ERP-001"),
        ("ERP-002", "ＥＲＰ-002"),
        ("erp  003", "ERP 003"),
        ("Ｅｒｐ\u{3000}004", "erp 004"),
        ("erp\u{a0}\t005", "ＥＲＰ\u{2003}005"),
        ("ｅｒｐ-006", "ERP－006"),
    ];
    for (i, (stored, typed)) in pairs.iter().enumerate() {
        create(
            &w,
            &w.admin,
            Entity::Customer,
            json!({"name": format!("混写{i}甲公司"), "erp_code": stored}),
        )
        .await;
        let err = w
            .crm
            .create_record(
                &w.admin,
                Entity::Customer,
                new(format!("混写{i}乙公司"), typed),
            )
            .await
            .expect_err("another spelling of a stored value");
        assert!(
            matches!(&err, Error::Duplicate { .. }) && err.to_string().contains("ERP编码"),
            "{stored} then {typed}: {err}"
        );
    }
    // An edit to another spelling of a stored value.
    let mine = create(
        &w,
        &w.admin,
        Entity::Customer,
        json!({"name": "混写改公司", "erp_code": "OTHER-1"}),
    )
    .await;
    for typed in ["erp-001", "ＥＲＰ-002", "ERP  003"] {
        let err = w
            .crm
            .update_record(
                &w.admin,
                Entity::Customer,
                mine.id,
                mine.version,
                fields(json!({ "erp_code": typed })),
            )
            .await
            .expect_err("an edit to another spelling");
        assert!(matches!(err, Error::Duplicate { .. }), "{typed}: {err}");
    }

    // The store folds as `text_key` does, on both backends.
    let col = Col::Custom {
        key: "erp_code".into(),
        ty: CustomType::Text,
    };
    let holding = |keys: Vec<&str>| {
        let mut sel = Select::all(
            crate::schema::Table::Customers,
            w.admin.company_id.0,
            w.clock.now(),
        );
        sel.filter = Filter::TextKeyIn(col.clone(), keys.into_iter().map(String::from).collect());
        let store = w.crm.store().clone();
        async move {
            let mut names: Vec<String> = store
                .select(&sel)
                .await
                .expect("select")
                .rows
                .iter()
                .filter_map(|r| r.get("name").as_text().map(str::to_string))
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        holding(vec!["erp-001", "ERP  003", "ｅｒｐ　００５"]).await,
        ["混写0甲公司", "混写2甲公司", "混写4甲公司"]
    );
    assert_eq!(holding(vec!["erp-00"]).await, Vec::<String>::new());
    assert_eq!(holding(Vec::new()).await, Vec::<String>::new());

    // Two creates of two spellings at once: one passes.
    for (first, late) in [("Ｐ-1", "p-1"), ("q-1", "Ｑ-1"), ("r  1", "Ｒ 1")] {
        let (o, actor, code) = (other.clone(), w.wangwu.clone(), first.to_string());
        hooked.before_customer_write(async move {
            o.create_record(
                &actor,
                Entity::Customer,
                fields(json!({"name": format!("并发{code}甲公司"), "erp_code": code})),
            )
            .await
            .expect("the other create");
        });
        let res = w
            .crm
            .create_record(
                &w.zhangsan,
                Entity::Customer,
                new(format!("并发{late}乙公司"), late),
            )
            .await;
        assert!(
            matches!(res, Err(Error::Duplicate { .. })),
            "{first} meanwhile, then {late}: {res:?}"
        );
        assert_eq!(holding(vec![late]).await.len(), 1, "{first} and {late}");
    }
}

/// A customer search by a whole phone number (as typed, in any layout) or a
/// run of its digits also finds the customers whose contacts have it as
/// mobile or phone, as the contact search finds the contacts: only through
/// contacts the searcher may read and filter by that field, and not through
/// a contact in the recycle bin.
pub async fn a_customer_is_found_by_its_contacts_numbers(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "联系人号码有限公司", json!({}))
        .await;
    let contact = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": c.id.to_string(), "name": "钱七", "mobile": "13811112222", "phone": "0755-87651234"}),
    )
    .await;
    let binned = w
        .customer(&w.zhangsan, "回收站联系人有限公司", json!({}))
        .await;
    let gone = create(
        &w,
        &w.zhangsan,
        Entity::Contact,
        json!({"customer_id": binned.id.to_string(), "name": "孙八", "mobile": "13933334444"}),
    )
    .await;
    assert!(
        w.crm
            .delete_records(&w.zhangsan, Entity::Contact, &[gone.id])
            .await
            .refused
            .is_empty()
    );
    let search = |actor: &Actor, text: &str| {
        let q = ListQuery::default().search(text);
        let (w, actor) = (&w, actor.clone());
        async move { w.visible(&actor, q).await }
    };
    let only_c = (vec![c.id], Some(1));
    let none = (Vec::new(), Some(0));
    for text in [
        "13811112222",
        "+86 138 1111 2222",
        "1111222",
        "(0755) 8765 1234",
        "87651234",
    ] {
        assert_eq!(search(&w.admin, text).await, only_c, "{text}");
        assert_eq!(search(&w.zhangsan, text).await, only_c, "{text}");
    }
    // The binned contact's number finds nothing, nor do two digits.
    assert_eq!(search(&w.admin, "13933334444").await, none);
    assert_eq!(search(&w.admin, "3933").await, none);
    assert_eq!(search(&w.admin, "22").await, none);
    // A masked mobile is not searched through; the phone still is.
    let kefu = user_granted(
        &w,
        "kefu",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::Contact, Action::Read, DataScope::All),
        ],
        vec![rule(Entity::Contact, "mobile", FieldAccess::Masked)],
    )
    .await;
    assert_eq!(search(&kefu, "13811112222").await, none);
    assert_eq!(search(&kefu, "1111222").await, none);
    assert_eq!(search(&kefu, "87651234").await, only_c);
    // One who reads every customer but only their own contacts finds
    // nothing through a colleague's contact — until it is shared with them.
    let reader = user_granted(
        &w,
        "reader",
        &[
            (Entity::Customer, Action::Read, DataScope::All),
            (Entity::Contact, Action::Read, DataScope::Own),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(search(&reader, "13811112222").await, none);
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Contact,
            contact.id,
            reader.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    assert_eq!(search(&reader, "13811112222").await, only_c);
    // Restored, the binned contact counts again.
    assert!(
        w.crm
            .restore_records(&w.zhangsan, Entity::Contact, &[gone.id])
            .await
            .refused
            .is_empty()
    );
    assert_eq!(
        search(&w.admin, "13933334444").await,
        (vec![binned.id], Some(1))
    );
}

/// Whom a record is shared with is for those who manage it: its owner, an
/// administrator and whoever may edit, transfer or share it by their own
/// scope list every share; a user it is shared with (for editing too), or
/// one who only reads it, sees their own share alone.
pub async fn a_sharee_sees_only_their_own_share(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "共享名单有限公司", json!({})).await;
    let guest = user_granted(
        &w,
        "guest",
        &[(Entity::Customer, Action::Read, DataScope::Own)],
        Vec::new(),
    )
    .await;
    let reader = user_granted(
        &w,
        "reader",
        &[(Entity::Customer, Action::Read, DataScope::All)],
        Vec::new(),
    )
    .await;
    for (to, access) in [
        (w.wangwu.user_id, ShareAccess::Write),
        (guest.user_id, ShareAccess::Read),
    ] {
        w.crm
            .share_record(&w.zhangsan, Entity::Customer, c.id, to, access, None)
            .await
            .expect("share");
    }
    let shared_with = |actor: &Actor| {
        let (w, actor) = (&w, actor.clone());
        async move {
            let mut users: Vec<_> = w
                .crm
                .list_shares(&actor, Entity::Customer, c.id)
                .await
                .expect("shares")
                .into_iter()
                .map(|s| s.user_id)
                .collect();
            users.sort();
            users
        }
    };
    let mut all = vec![w.wangwu.user_id, guest.user_id];
    all.sort();
    // The owner, an administrator, the manager and the group's lead.
    for actor in [&w.zhangsan, &w.admin, &w.lisi, &w.zhaoliu] {
        assert_eq!(shared_with(actor).await, all, "{}", actor.display_name);
    }
    // Those it is shared with see their own share only.
    assert_eq!(shared_with(&w.wangwu).await, vec![w.wangwu.user_id]);
    assert_eq!(shared_with(&guest).await, vec![guest.user_id]);
    // One who only reads it sees none; one who cannot read it, not it.
    assert_eq!(shared_with(&reader).await, Vec::new());
    // The history alike: a sharee reads their own share's entries, not who
    // else has the record; the owner reads them all.
    let shares_in_history = |actor: &Actor| {
        let (w, actor) = (&w, actor.clone());
        async move {
            let mut fields: Vec<String> = w
                .crm
                .history(&actor, Entity::Customer, c.id.0)
                .await
                .expect("history")
                .into_iter()
                .flat_map(|e| e.changes)
                .map(|ch| ch.field)
                .filter(|f| f.starts_with("share"))
                .collect();
            fields.sort();
            fields
        }
    };
    assert_eq!(
        shares_in_history(&w.zhangsan).await,
        vec!["share:guest".to_string(), "share:wangwu".to_string()]
    );
    assert_eq!(
        shares_in_history(&guest).await,
        vec!["share:guest".to_string()]
    );
    assert_eq!(
        shares_in_history(&w.wangwu).await,
        vec!["share:wangwu".to_string()]
    );
    assert_eq!(shares_in_history(&reader).await, Vec::<String>::new());
    let stranger = user_granted(&w, "stranger", &[], Vec::new()).await;
    assert!(matches!(
        w.crm.list_shares(&stranger, Entity::Customer, c.id).await,
        Err(Error::NotFound { .. })
    ));
}

/// A record transferred to a user takes the user's department: when the
/// user moves out and the department is deleted while the transfer is
/// written, the transfer fails instead of leaving the record in a deleted
/// department, and made again it takes the user's new department.
pub async fn a_transfer_does_not_land_in_a_department_deleted_meanwhile(store: Arc<dyn Store>) {
    use crate::ids::DepartmentId;
    use crate::org::UserPatch;
    use crate::schema::Table;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let d = w
        .crm
        .create_department(&w.admin, "临时项目部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let mover = user_granted(
        &w,
        "mover",
        &[
            (Entity::Customer, Action::Read, DataScope::Own),
            (Entity::Customer, Action::Update, DataScope::Own),
        ],
        Vec::new(),
    )
    .await;
    let into = |d: DepartmentId| UserPatch {
        department_id: Some(Some(d)),
        ..UserPatch::default()
    };
    let u = w.crm.user(&w.admin, mover.user_id).await.expect("user");
    w.crm
        .update_user(&w.admin, u.id, u.version, into(d))
        .await
        .expect("moved into the department");
    let c = w
        .customer(&w.zhangsan, "部门删除转移有限公司", json!({}))
        .await;
    let (o, admin, id, group1) = (other.clone(), w.admin.clone(), mover.user_id, w.group1);
    hooked.before_write(Table::Customers, async move {
        let u = o.user(&admin, id).await.expect("user");
        o.update_user(&admin, u.id, u.version, into(group1))
            .await
            .expect("moved out meanwhile");
        o.delete_department(&admin, d)
            .await
            .expect("deleted meanwhile");
    });
    let report = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], mover.user_id)
        .await
        .expect("transfer");
    assert!(report.done.is_empty(), "{report:?}");
    assert!(
        report
            .refused
            .iter()
            .any(|(_, why)| why.contains("deleted meanwhile")),
        "{report:?}"
    );
    let now = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(now.owner_id, Some(w.zhangsan.user_id));
    assert_eq!(now.department_id, Some(w.group1));
    // Transferred again, it takes the department the user is in now.
    let report = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], mover.user_id)
        .await
        .expect("transfer");
    assert_eq!(report.done, vec![c.id], "{report:?}");
    let now = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(now.department_id, Some(w.group1));
}

/// A colleague with only a read share of a customer logs a follow-up on it:
/// the follow-up is saved and dates the customer's last follow-up (a
/// contact did happen), but planning the customer's next follow-up edits
/// the customer, so a follow-up setting `next_follow_up_at` is refused to
/// them, naming why, and the owner's plan stands.
pub async fn a_read_share_logs_follow_ups_but_plans_nothing(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "只读跟进有限公司", json!({})).await;
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({
                "customer_id": c.id.to_string(), "channel": "call", "content": "首次拜访",
                "next_follow_up_at": "2026-12-20 09:00"
            })),
        )
        .await
        .expect("the owner plans");
    let follow_up = |next: Option<&str>| {
        let mut f =
            json!({"customer_id": c.id.to_string(), "channel": "call", "content": "代为回访"});
        if let Some(n) = next {
            f["next_follow_up_at"] = json!(n);
        }
        fields(f)
    };
    w.clock.advance(chrono::Duration::hours(2));
    match w
        .crm
        .create_record(
            &w.wangwu,
            Entity::FollowUp,
            follow_up(Some("2027-06-01 09:00")),
        )
        .await
    {
        Err(Error::Forbidden(m)) => {
            assert!(
                m.contains("next_follow_up_at") && m.contains("may not edit"),
                "{m}"
            );
        }
        other => panic!("a read share planned the owner's next follow-up: {other:?}"),
    }
    w.crm
        .create_record(&w.wangwu, Entity::FollowUp, follow_up(None))
        .await
        .expect("a follow-up without a plan is saved");
    let r = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(r.fields["next_follow_up"], json!("2026-12-20"), "{r:?}");
    assert_eq!(
        w.crm
            .store()
            .get(crate::schema::Table::Customers, c.id.0)
            .await
            .expect("get")
            .expect("row")
            .get("last_follow_up_at")
            .as_timestamp(),
        Some(w.clock.now()),
        "the sharee's follow-up is the customer's last"
    );
}

/// Departments, roles and user groups are found by their names as typed,
/// else letter case and full-width letters aside (`sales emea` finds
/// `Sales EMEA`); a name spelled exactly wins over one equal but for case,
/// and a name several share but for case is ambiguous.
pub async fn departments_roles_and_groups_are_found_letter_case_aside(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let emea = w
        .crm
        .create_department(&w.admin, "Sales EMEA", None)
        .await
        .expect("department");
    for typed in ["sales emea", " SALES EMEA ", "Ｓales ＥＭＥＡ"] {
        let found = w
            .crm
            .resolve_department(&w.admin, typed)
            .await
            .unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(found.id, emea.id, "{typed}");
    }
    // Under another parent, a name equal but for case: the exact spelling
    // wins, another spelling is ambiguous.
    let other = w
        .crm
        .create_department(&w.admin, "sales emea", Some(emea.id))
        .await
        .expect("a sub-department");
    assert_eq!(
        w.crm
            .resolve_department(&w.admin, "sales emea")
            .await
            .expect("exact")
            .id,
        other.id
    );
    let err = w
        .crm
        .resolve_department(&w.admin, "SALES EMEA")
        .await
        .expect_err("two departments");
    assert!(err.to_string().contains("SALES EMEA"), "{err}");
    let rep = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "Sales Rep".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    assert_eq!(
        w.crm
            .resolve_role(&w.admin, "sales rep")
            .await
            .expect("role")
            .id,
        rep.id
    );
    // A member named twice is a member once.
    let group = w
        .crm
        .create_group(
            &w.admin,
            "Key Accounts",
            &[w.zhangsan.user_id, w.zhangsan.user_id],
        )
        .await
        .expect("group");
    let held = w
        .crm
        .resolve_group(&w.admin, "Key Accounts")
        .await
        .expect("group");
    assert_eq!(held.members, vec![w.zhangsan.user_id]);
    assert_eq!(
        w.crm
            .resolve_group(&w.admin, "KEY accounts")
            .await
            .expect("group")
            .id,
        group.id
    );
    assert!(matches!(
        w.crm.resolve_role(&w.admin, "Sales Reps").await,
        Err(Error::NotFound { .. })
    ));
}

/// A flow of one step, the applicant's direct superior, for `doc_type`.
async fn superior_flow(w: &World, doc_type: &str) {
    use crate::approval::{ApproverRule, Fallback, FlowDef, Restart, SignMode, StepDef};
    w.crm
        .define_approval_flow(
            &w.admin,
            doc_type,
            "主管审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "主管".into(),
                    conditions: Vec::new(),
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
}

/// A leave request (请假条) with a code, as a host submits it.
fn leave(document: u128, code: &str, title: &str) -> crate::approval::SubmitRequest {
    crate::approval::SubmitRequest {
        doc_type: "leave".into(),
        document_id: uuid::Uuid::from_u128(document),
        document_code: Some(code.into()),
        title: Some(title.into()),
        ..crate::approval::SubmitRequest::default()
    }
}

/// The message of an invalid-state refusal.
fn refused_saying<T: std::fmt::Debug>(result: Result<T, Error>, says: &[&str]) {
    match result {
        Err(Error::InvalidState(m)) => {
            for s in says {
                assert!(m.contains(s), "{s:?} in {m}");
            }
        }
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    }
}

/// A host document's code names one document of its type: another user's
/// submission under a code whose approval is pending is refused, naming
/// the code (and the applicant, to who may read that approval), and so is
/// one after that approval was rejected (only its applicant resubmits,
/// the same approval); two first submissions of one code at once do not
/// both get in. An administrator, the applicant and the approvers find
/// the approval by its code; a user not involved does not.
pub async fn a_host_documents_code_names_one_approval(store: Arc<dyn Store>) {
    use crate::approval::{RejectTo, Status};
    let w = World::new(store).await;
    superior_flow(&w, "leave").await;
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, leave(0x1EA1, "QJ-1", "年假"))
        .await
        .expect("zhangsan's leave");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    // Another user's request under the same code: refused, the code named.
    refused_saying(
        w.crm
            .submit_for_approval(&w.wangwu, leave(0x1EA2, "QJ-1", "冒名"))
            .await,
        &["leave QJ-1", "only its applicant may resubmit it"],
    );
    // An administrator submitting it is told whose it is.
    refused_saying(
        w.crm
            .submit_for_approval(&w.admin, leave(0x1EA3, "QJ-1", "冒名"))
            .await,
        &["leave QJ-1", "zhangsan", &a.id.to_string()],
    );
    // Found by its code by whoever may read it: the administrator (who
    // is neither its applicant nor an approver), the applicant, the
    // approver; not by a user it does not involve.
    for (who, n) in [
        (&w.admin, 1),
        (&w.zhangsan, 1),
        (&w.lisi, 1),
        (&w.wangwu, 0),
    ] {
        let found = w
            .crm
            .approvals_with_code(who, "QJ-1")
            .await
            .expect("by code");
        assert_eq!(found.len(), n, "{}: {found:?}", who.display_name);
        assert!(found.iter().all(|f| f.id == a.id), "{found:?}");
    }
    assert!(
        w.crm
            .approvals_with_code(&w.admin, "QJ-")
            .await
            .expect("by code")
            .is_empty(),
        "a code is matched whole"
    );
    // Rejected: still the applicant's code.
    w.crm
        .reject(&w.lisi, a.id, RejectTo::Applicant, Some("请补充"))
        .await
        .expect("rejected");
    refused_saying(
        w.crm
            .submit_for_approval(&w.wangwu, leave(0x1EA2, "QJ-1", "冒名"))
            .await,
        &["leave QJ-1", "only its applicant may resubmit it"],
    );
    let again = w
        .crm
        .submit_for_approval(&w.zhangsan, leave(0x1EA1, "QJ-1", "年假"))
        .await
        .expect("resubmitted by its applicant");
    assert_eq!((again.id, again.status), (a.id, Status::Pending));
    // The applicant's own second document under the code is refused too.
    refused_saying(
        w.crm
            .submit_for_approval(&w.zhangsan, leave(0x1EA4, "QJ-1", "再请"))
            .await,
        &[
            "leave QJ-1",
            "you submitted another document under this code",
        ],
    );
    // Another document type may use the code.
    superior_flow(&w, "trip").await;
    let mut trip = leave(0x7219, "QJ-1", "出差");
    trip.doc_type = "trip".into();
    w.crm
        .submit_for_approval(&w.wangwu, trip)
        .await
        .expect("a trip under the same code");
    // Two first submissions of one new code at once: both are built
    // before either is written; the second to write is refused.
    let first = w
        .crm
        .submission(&w.zhangsan, &leave(0x1EB1, "QJ-2", "病假"))
        .await
        .expect("built");
    let second = w
        .crm
        .submission(&w.wangwu, &leave(0x1EB2, "QJ-2", "调休"))
        .await
        .expect("built");
    w.crm.apply(first.changes).await.expect("first written");
    refused_saying(
        w.crm.apply(second.changes).await,
        &["leave QJ-2", "meanwhile"],
    );
    let held = w
        .crm
        .approvals_with_code(&w.admin, "QJ-2")
        .await
        .expect("by code");
    assert_eq!(
        held.iter().map(|h| h.applicant_id).collect::<Vec<_>>(),
        vec![w.zhangsan.user_id.0]
    );
}

/// Approval events carry what a host acts on: `approval.submitted` the
/// step the approval waits at; a contract's `contract.approved` is about
/// the contract (its table and id), the approval's id in the payload; a
/// host document's `leave.approved` names its approval.
pub async fn approval_events_name_the_step_and_the_document(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::NewContract;
    use crate::schema::Table;
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    superior_flow(&w, "contract").await;
    superior_flow(&w, "leave").await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                contract_type: Some(crate::sales::ContractType::Service),
                amount: Some(Money::cny(1_000_000)),
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 8, 1),
                start_on: chrono::NaiveDate::from_ymd_opt(2026, 8, 1),
                end_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 15),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let all = w.crm.pending_events("erp", 10_000).await.expect("events");
    if let Some(last) = all.last() {
        w.crm.ack_events("erp", last.seq).await.expect("ack");
    }
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submitted");
    let a = a.expect("an approval");
    let l = w
        .crm
        .submit_for_approval(&w.zhangsan, leave(0x1EA1, "QJ-1", "年假"))
        .await
        .expect("leave");
    w.crm.approve(&w.lisi, a.id, None).await.expect("approved");
    w.crm.approve(&w.lisi, l.id, None).await.expect("approved");
    let events = w.crm.pending_events("erp", 10_000).await.expect("events");
    let of = |t: &str, doc: uuid::Uuid| {
        events
            .iter()
            .map(|e| &e.event)
            .find(|e| e.event_type == t && e.payload.to_value()["document_id"] == json!(doc))
            .unwrap_or_else(|| panic!("{t} of {doc} in {events:?}"))
    };
    for doc in [c.id, l.document_id] {
        let submitted = of("approval.submitted", doc);
        assert_eq!(submitted.payload.to_value()["step"], json!("主管"));
        assert_eq!(submitted.table, Table::ApprovalInstances);
    }
    let approved = of("contract.approved", c.id);
    assert_eq!(
        (approved.table, approved.record_id),
        (Table::Contracts, c.id),
        "{approved:?}"
    );
    let p = approved.payload.to_value();
    assert_eq!(p["approval_id"], json!(a.id), "{p}");
    assert_eq!(p["document_code"], json!(c.code), "{p}");
    let approved = of("leave.approved", l.document_id);
    assert_eq!(
        (approved.table, approved.record_id),
        (Table::ApprovalInstances, l.id)
    );
    // The approval's own event names the approval.
    let approval = of("approval.approved", c.id);
    assert_eq!(
        (approval.table, approval.record_id),
        (Table::ApprovalInstances, a.id)
    );
}

/// Who may read a contract reads its approval, but only its applicant,
/// its approvers and administrators refresh it: anybody else who reads it
/// is told who may, not that it does not exist; a user who may not read
/// it is told it is not there.
pub async fn a_reader_of_an_approval_is_told_who_may_refresh_it(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::NewContract;
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    superior_flow(&w, "contract").await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                contract_type: Some(crate::sales::ContractType::Service),
                amount: Some(Money::cny(1_000_000)),
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 8, 1),
                start_on: chrono::NaiveDate::from_ymd_opt(2026, 8, 1),
                end_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 15),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submitted");
    let a = a.expect("an approval");
    // zhaoliu reads group one's contracts, and so the approval, and is
    // neither its applicant nor an approver, nor reads approval flows.
    assert!(!w.zhaoliu.can(Entity::ApprovalFlow, Action::Read));
    w.crm
        .approval(&w.zhaoliu, a.id)
        .await
        .expect("read with the contract");
    assert_eq!(
        w.crm
            .approvals_with_code(&w.zhaoliu, &c.code)
            .await
            .expect("by code")
            .len(),
        1
    );
    forbidden_saying(
        w.crm.refresh_approval(&w.zhaoliu, a.id).await,
        "may not refresh the approval of contract",
    );
    forbidden_saying(
        w.crm.refresh_approval(&w.zhaoliu, a.id).await,
        "only its applicant (",
    );
    match w.crm.refresh_approval(&w.wangwu, a.id).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("wangwu may not read it: {other:?}"),
    }
    for who in [&w.zhangsan, &w.lisi, &w.admin] {
        let r = w.crm.refresh_approval(who, a.id).await.expect("refreshed");
        assert_eq!(r.pending_with, vec![w.lisi.user_id.0]);
    }
}

/// A username is found under every spelling its duplicate check takes for
/// it: letter case beyond ASCII (`émile` for `Émile`) and full-width
/// letters (`abc` for `ＡＢＣ`), by `user_by_username`, `resolve_user`,
/// `user_id_by_login` and a login; a spelling taken exactly wins.
pub async fn usernames_are_found_as_their_duplicate_check_folds_them(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let add = |username: &str, password: Option<&str>| NewUser {
        username: username.into(),
        display_name: format!("{username}的姓名"),
        department_id: Some(w.group1),
        password: password.map(str::to_string),
        ..NewUser::default()
    };
    let emile = w
        .crm
        .create_user(&w.admin, add("Émile", Some("Emile#2026pw")))
        .await
        .expect("Émile");
    let err = w
        .crm
        .create_user(&w.admin, add("émile", None))
        .await
        .expect_err("taken letter case aside");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let abc = w
        .crm
        .create_user(&w.admin, add("ＡＢＣ", None))
        .await
        .expect("ＡＢＣ");
    assert!(w.crm.create_user(&w.admin, add("abc", None)).await.is_err());
    let company = w.admin.company_id;
    for (typed, who) in [
        ("émile", emile.id),
        ("ÉMILE", emile.id),
        (" Émile ", emile.id),
        ("abc", abc.id),
        ("ABC", abc.id),
        ("ａｂｃ", abc.id),
    ] {
        let u = w
            .crm
            .user_by_username(&w.admin, typed)
            .await
            .unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(u.id, who, "{typed}");
        let u = w
            .crm
            .resolve_user(&w.zhangsan, typed)
            .await
            .unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(u.id, who, "{typed}");
        assert_eq!(
            w.crm.user_id_by_login(company, typed).await.expect("login"),
            Some(who),
            "{typed}"
        );
    }
    let code = w.crm.company(company).await.expect("company").code;
    let me = w
        .crm
        .authenticate(&code, "émile", "Emile#2026pw")
        .await
        .expect("a login by another spelling");
    assert_eq!(me.user_id, emile.id);
    assert!(matches!(
        w.crm.user_by_username(&w.admin, "émil").await,
        Err(Error::NotFound { .. })
    ));
}

/// `none` (letter case aside) is no department, role or group name — the
/// command line reads it as "clear" — and none of them holds a line break
/// or another control character (a department `市场部\n财务部` would show
/// a root department that is not there): refused when created and when
/// renamed, saying why. A name kept as it is stays editable.
pub async fn org_names_are_one_line_and_never_none(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let refused = |r: Result<(), Error>, why: &str| {
        let e = r.expect_err(why);
        assert!(matches!(e, Error::Validation(_)), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    };
    let role = |name: &str| RoleSpec {
        name: name.into(),
        is_admin: false,
        permissions: Vec::new(),
        field_rules: Vec::new(),
    };
    for none in ["none", "NONE", " None ", "ｎｏｎｅ"] {
        refused(
            w.crm
                .create_department(&w.admin, none, Some(w.sales))
                .await
                .map(|_| ()),
            "none",
        );
        refused(
            w.crm.create_role(&w.admin, role(none)).await.map(|_| ()),
            "none",
        );
        refused(
            w.crm.create_group(&w.admin, none, &[]).await.map(|_| ()),
            "none",
        );
    }
    for bad in [
        "市场部\n财务部",
        "市场\r部",
        "市\t场",
        "市场部\u{2028}财务部",
    ] {
        refused(
            w.crm
                .create_department(&w.admin, bad, Some(w.sales))
                .await
                .map(|_| ()),
            "control character",
        );
        refused(
            w.crm.create_role(&w.admin, role(bad)).await.map(|_| ()),
            "control character",
        );
        refused(
            w.crm.create_group(&w.admin, bad, &[]).await.map(|_| ()),
            "control character",
        );
    }
    let departments = w.crm.list_departments(&w.admin).await.expect("list");
    assert!(
        departments
            .iter()
            .all(|d| !d.name.contains('\n') && !d.name.eq_ignore_ascii_case("none")),
        "{departments:?}"
    );
    // Renaming: refused the same way.
    let d = w
        .crm
        .create_department(&w.admin, "市场部", Some(w.sales))
        .await
        .expect("department");
    refused(
        w.crm
            .update_department(&w.admin, d.id, d.version, Some("None"), None)
            .await
            .map(|_| ()),
        "none",
    );
    refused(
        w.crm
            .update_department(&w.admin, d.id, d.version, Some("市场\n部"), None)
            .await
            .map(|_| ()),
        "control character",
    );
    let r = w
        .crm
        .create_role(&w.admin, role("市场专员"))
        .await
        .expect("role");
    refused(
        w.crm
            .update_role(&w.admin, r.id, r.version, role("none"))
            .await
            .map(|_| ()),
        "none",
    );
    refused(
        w.crm
            .update_role(&w.admin, r.id, r.version, role("市场\n专员"))
            .await
            .map(|_| ()),
        "control character",
    );
    // Names as they should be pass, `none` inside a longer name too.
    w.crm
        .update_department(&w.admin, d.id, d.version, Some("市场部 none"), None)
        .await
        .expect("a name holding the word");
    w.crm
        .create_group(&w.admin, "nonexistent", &[])
        .await
        .expect("a group whose name starts so");
}

/// The organisation's `user.*` events name the user (username and display
/// name as the change leaves them) and carry the version the change gives
/// the user, as `department.*` and `role.*` events do: a creation (through
/// the API and a user import), an edit, a deactivation.
pub async fn user_events_carry_the_name_and_the_version(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    use crate::org::UserPatch;
    let w = World::new(store).await;
    let seen = w
        .crm
        .pending_events("user-events", 100_000)
        .await
        .expect("events");
    if let Some(last) = seen.last() {
        w.crm
            .ack_events("user-events", last.seq)
            .await
            .expect("ack");
    }
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "shijian".into(),
                display_name: "事件".into(),
                department_id: Some(w.group1),
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let renamed = w
        .crm
        .update_user(
            &w.admin,
            u.id,
            u.version,
            UserPatch {
                display_name: Some(" 事件甲 ".into()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("renamed");
    let off = w
        .crm
        .update_user(
            &w.admin,
            u.id,
            renamed.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivated");
    let mut session = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::User),
            &["用户名".to_string(), "姓名".to_string()],
        )
        .await
        .expect("begin");
    session
        .push(&[SheetRow {
            number: 2,
            cells: vec![
                Cell::Text("daorushijian".into()),
                Cell::Text("导入事件".into()),
            ],
        }])
        .await
        .expect("push");
    let report = session.finish().await.expect("finish");
    assert_eq!(report.created, 1, "{:#?}", report.issues);
    let imported = w
        .crm
        .user_by_username(&w.admin, "daorushijian")
        .await
        .expect("imported");
    let events: Vec<_> = w
        .crm
        .pending_events("user-events", 100_000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event)
        .filter(|e| e.event_type.starts_with("user."))
        .collect();
    let payloads: Vec<(String, serde_json::Value)> = events
        .iter()
        .map(|e| (e.event_type.clone(), e.payload.to_value()))
        .collect();
    assert_eq!(payloads.len(), 4, "{payloads:#?}");
    let expected = [
        ("user.created", "shijian", "事件", u.version),
        ("user.updated", "shijian", "事件甲", renamed.version),
        ("user.updated", "shijian", "事件甲", off.version),
        ("user.created", "daorushijian", "导入事件", imported.version),
    ];
    for ((kind, p), (want, username, display, version)) in payloads.iter().zip(expected) {
        assert_eq!(kind, want, "{p}");
        assert_eq!(p["username"], json!(username), "{kind}: {p}");
        assert_eq!(p["display_name"], json!(display), "{kind}: {p}");
        assert_eq!(p["version"], json!(version), "{kind}: {p}");
    }
    assert_eq!(payloads[2].1["changes"][0]["field"], json!("active"));
}

/// Two administrators' rights taken away at the same moment (each
/// deactivating another administrator) are checked one after the other:
/// with a third administrator left, both pass — the late one is checked
/// again instead of failing as a role "changed by someone else" — and
/// where none would be left the late one is refused as leaving the
/// company without an active administrator, never as a role's conflict.
pub async fn admins_deactivated_at_once_are_checked_again(store: Arc<dyn Store>) {
    use crate::org::{User, UserPatch};
    use crate::schema::Table;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let inner = store.clone();
    let other = Crm::new(store, w.clock.clone());
    let admin_role = w
        .crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.is_admin)
        .expect("administrator role");
    let admin_user = |name: &'static str| NewUser {
        username: name.into(),
        display_name: name.into(),
        department_id: w.admin.department_id,
        role_ids: vec![admin_role.id],
        ..NewUser::default()
    };
    let b = w
        .crm
        .create_user(&w.admin, admin_user("guanli_b"))
        .await
        .expect("b");
    let c = w
        .crm
        .create_user(&w.admin, admin_user("guanli_c"))
        .await
        .expect("c");
    let off = UserPatch {
        active: Some(false),
        ..UserPatch::default()
    };
    // The first administrator deactivates c while b is deactivated by the
    // first one through another engine: the first administrator remains.
    let (admin, b_id, b_version, patch) = (w.admin.clone(), b.id, b.version, off.clone());
    hooked.before_write(Table::Users, async move {
        other
            .update_user(&admin, b_id, b_version, patch)
            .await
            .expect("b deactivated");
    });
    let c_off = w
        .crm
        .update_user(&w.admin, c.id, c.version, off.clone())
        .await
        .expect("checked again: the first administrator remains");
    assert!(!c_off.active);
    // Now the first administrator and d: each deactivates the other at
    // once. The late one is refused as leaving no administrator.
    let d = w
        .crm
        .create_user(&w.admin, admin_user("guanli_d"))
        .await
        .expect("d");
    let d_actor = w.crm.actor(d.id).await.expect("d acts");
    let me: User = w.crm.user(&w.admin, w.admin.user_id).await.expect("me");
    let (me_id, me_version, patch) = (me.id, me.version, off.clone());
    let plain = Crm::new(inner, w.clock.clone());
    hooked.before_write(Table::Users, async move {
        plain
            .update_user(&d_actor, me_id, me_version, patch)
            .await
            .expect("the first administrator deactivated");
    });
    let late = w
        .crm
        .update_user(&w.admin, d.id, d.version, off.clone())
        .await;
    let err = late.expect_err("no administrator would be left");
    assert!(
        matches!(&err, Error::InvalidState(m) if m.contains("without an active administrator")),
        "{err}"
    );
    let admins = w
        .crm
        .list_users(&w.admin, None)
        .await
        .expect("users")
        .into_iter()
        .filter(|u| u.active && u.role_ids.contains(&admin_role.id))
        .map(|u| u.username)
        .collect::<Vec<_>>();
    assert_eq!(admins, vec!["guanli_d".to_string()]);
}

/// A user import row naming the new user itself as its superior is
/// refused for that reason, in English and Chinese, as `update_user`
/// refuses it — not as a superior that is not found.
pub async fn a_user_import_row_cannot_be_its_own_superior(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    let w = World::new(store).await;
    let mut session = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::User),
            &[
                "用户名*".to_string(),
                "姓名*".to_string(),
                "上级".to_string(),
            ],
        )
        .await
        .expect("begin");
    let text = |v: &str| Cell::Text(v.into());
    session
        .push(&[
            SheetRow {
                number: 2,
                cells: vec![text("selfsup"), text("自己"), text("SelfSup")],
            },
            SheetRow {
                number: 3,
                cells: vec![text("nosup"), text("无上级"), text("nobody_here")],
            },
        ])
        .await
        .expect("push");
    let report = session.finish().await.expect("finish");
    assert_eq!(report.rejected, 2, "{:#?}", report.issues);
    let own = report.issues.iter().find(|i| i.row == 2).expect("row 2");
    assert!(
        own.message_en
            .contains("a user cannot be their own superior"),
        "{own:#?}"
    );
    assert!(
        own.message_zh.contains("用户不能是自己的上级") && !own.message_zh.contains("找不到"),
        "{own:#?}"
    );
    // Another name not found is still said so.
    let missing = report.issues.iter().find(|i| i.row == 3).expect("row 3");
    assert!(missing.message_zh.contains("找不到用户"), "{missing:#?}");
    assert!(w.crm.user_by_username(&w.admin, "selfsup").await.is_err());
}
