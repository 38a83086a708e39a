//! Engine-level scenarios: organisation, permissions, customers, contacts,
//! follow-ups, search, paging, lifecycle, sharing, custom fields, audit and
//! outbox, run through [`Crm`] against each backend.

/// Lists the engine-level scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! service_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::service_suite::customer_lifecycle_events_carry_the_version,
            crm_customer_lifecycle_events_carry_the_version,
            $make
        );
        $each!(
            $crate::testing::service_suite::changes_that_change_nothing_announce_nothing,
            crm_changes_that_change_nothing_announce_nothing,
            $make
        );
        $each!(
            $crate::testing::service_suite::creations_and_org_changes_announce_what_they_hold,
            crm_creations_and_org_changes_announce_what_they_hold,
            $make
        );
        $each!(
            $crate::testing::service_suite::follow_up_dates_announce_the_customer,
            crm_follow_up_dates_announce_the_customer,
            $make
        );
        $each!(
            $crate::testing::service_suite::login_lockout_and_password_change,
            crm_login_lockout_and_password_change,
            $make
        );
        $each!(
            $crate::testing::service_suite::customer_roundtrip_code_and_history,
            crm_customer_roundtrip_code_and_history,
            $make
        );
        $each!(
            $crate::testing::service_suite::validation_names_every_bad_field,
            crm_validation_names_every_bad_field,
            $make
        );
        $each!(
            $crate::testing::service_suite::concurrent_edit_is_a_conflict,
            crm_concurrent_edit_is_a_conflict,
            $make
        );
        $each!(
            $crate::testing::service_suite::data_scopes_limit_lists_counts_and_reads,
            crm_data_scopes_limit_lists_counts_and_reads,
            $make
        );
        $each!(
            $crate::testing::service_suite::sharing_read_write_and_expiry,
            crm_sharing_read_write_and_expiry,
            $make
        );
        $each!(
            $crate::testing::service_suite::field_rules_mask_hide_and_freeze,
            crm_field_rules_mask_hide_and_freeze,
            $make
        );
        $each!(
            $crate::testing::service_suite::filters_every_operator_and_related,
            crm_filters_every_operator_and_related,
            $make
        );
        $each!(
            $crate::testing::service_suite::offset_and_keyset_paging_agree,
            crm_offset_and_keyset_paging_agree,
            $make
        );
        $each!(
            $crate::testing::service_suite::delete_restore_purge_and_archive,
            crm_delete_restore_purge_and_archive,
            $make
        );
        $each!(
            $crate::testing::service_suite::custom_fields_validate_filter_and_unique,
            crm_custom_fields_validate_filter_and_unique,
            $make
        );
        $each!(
            $crate::testing::service_suite::pinyin_search_finds_every_reading,
            crm_pinyin_search_finds_every_reading,
            $make
        );
        $each!(
            $crate::testing::service_suite::search_keys_of_older_rules_are_rebuilt,
            crm_search_keys_of_older_rules_are_rebuilt,
            $make
        );
        $each!(
            $crate::testing::service_suite::duplicates_refused_even_when_invisible,
            crm_duplicates_refused_even_when_invisible,
            $make
        );
        $each!(
            $crate::testing::service_suite::batch_transfer_reports_per_record,
            crm_batch_transfer_reports_per_record,
            $make
        );
        $each!(
            $crate::testing::service_suite::follow_ups_update_the_customer,
            crm_follow_ups_update_the_customer,
            $make
        );
        $each!(
            $crate::testing::service_suite::outbox_delivers_in_order_until_acked,
            crm_outbox_delivers_in_order_until_acked,
            $make
        );
        $each!(
            $crate::testing::service_suite::organisation_admin_rules,
            crm_organisation_admin_rules,
            $make
        );
        $each!(
            $crate::testing::service_suite::companies_are_isolated,
            crm_companies_are_isolated,
            $make
        );
        $each!(
            $crate::testing::service_suite::non_admins_grant_no_rights_beyond_their_own,
            crm_non_admins_grant_no_rights_beyond_their_own,
            $make
        );
        $each!(
            $crate::testing::service_suite::the_last_active_admin_is_kept,
            crm_the_last_active_admin_is_kept,
            $make
        );
        $each!(
            $crate::testing::service_suite::scoped_managers_manage_only_their_branch,
            crm_scoped_managers_manage_only_their_branch,
            $make
        );
        $each!(
            $crate::testing::service_suite::lockout_counts_attempts_made_at_once,
            crm_lockout_counts_attempts_made_at_once,
            $make
        );
        $each!(
            $crate::testing::service_suite::department_edits_and_deletes_hold_against_concurrent_writes,
            crm_department_edits_and_deletes_hold_against_concurrent_writes,
            $make
        );
        $each!(
            $crate::testing::service_suite::roles_and_groups_are_deleted_only_when_nothing_holds_them,
            crm_roles_and_groups_are_deleted_only_when_nothing_holds_them,
            $make
        );
        $each!(
            $crate::testing::service_suite::custom_field_labels_and_unique_keys_hold,
            crm_custom_field_labels_and_unique_keys_hold,
            $make
        );
        $each!(
            $crate::testing::service_suite::visibility_matches_reference_model,
            crm_visibility_matches_reference_model,
            $make
        );
        $each!(
            $crate::testing::service_suite::masked_custom_values_never_show_the_value,
            crm_masked_custom_values_never_show_the_value,
            $make
        );
        $each!(
            $crate::testing::service_suite::money_custom_filters_compare_in_yuan,
            crm_money_custom_filters_compare_in_yuan,
            $make
        );
        $each!(
            $crate::testing::service_suite::contacts_with_their_customer_are_checked,
            crm_contacts_with_their_customer_are_checked,
            $make
        );
        $each!(
            $crate::testing::service_suite::back_dated_follow_ups_keep_the_next_follow_up,
            crm_back_dated_follow_ups_keep_the_next_follow_up,
            $make
        );
        $each!(
            $crate::testing::service_suite::follow_ups_are_dated_at_most_a_day_ahead,
            crm_follow_ups_are_dated_at_most_a_day_ahead,
            $make
        );
        $each!(
            $crate::testing::service_suite::huge_page_numbers_give_empty_pages,
            crm_huge_page_numbers_give_empty_pages,
            $make
        );
        $each!(
            $crate::testing::service_suite::org_names_are_unique_and_resolved_unambiguously,
            crm_org_names_are_unique_and_resolved_unambiguously,
            $make
        );
        $each!(
            $crate::testing::service_suite::departments_holding_records_or_pools_are_not_deleted,
            crm_departments_holding_records_or_pools_are_not_deleted,
            $make
        );
        $each!(
            $crate::testing::service_suite::deactivated_users_lead_nobody_and_cycles_are_named,
            crm_deactivated_users_lead_nobody_and_cycles_are_named,
            $make
        );
        $each!(
            $crate::testing::service_suite::organisation_changes_are_announced,
            crm_organisation_changes_are_announced,
            $make
        );
        $each!(
            $crate::testing::service_suite::user_imports_take_usernames_letter_case_aside_and_announce_updates,
            crm_user_imports_take_usernames_letter_case_aside_and_announce_updates,
            $make
        );
        $each!(
            $crate::testing::service_suite::product_codes_and_category_names_are_compared_as_people_type_them,
            crm_product_codes_and_category_names_are_compared_as_people_type_them,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_quote_of_a_binned_opportunity_is_not_revised,
            crm_a_quote_of_a_binned_opportunity_is_not_revised,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_purge_destroys_no_one_elses_records,
            crm_a_purge_destroys_no_one_elses_records,
            $make
        );
        $each!(
            $crate::testing::service_suite::shares_end_when_a_customer_goes_into_a_pool,
            crm_shares_end_when_a_customer_goes_into_a_pool,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_share_racing_a_release_does_not_outlive_it,
            crm_a_share_racing_a_release_does_not_outlive_it,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_document_transfer_is_announced_by_its_title,
            crm_a_document_transfer_is_announced_by_its_title,
            $make
        );
        $each!(
            $crate::testing::service_suite::an_option_removed_meanwhile_is_not_saved,
            crm_an_option_removed_meanwhile_is_not_saved,
            $make
        );
        $each!(
            $crate::testing::service_suite::an_import_for_another_owner_holds_to_the_create_scope,
            crm_an_import_for_another_owner_holds_to_the_create_scope,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_customer_view_counts_what_it_does_not_show,
            crm_a_customer_view_counts_what_it_does_not_show,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_customer_view_counts_sales_documents_it_does_not_show,
            crm_a_customer_view_counts_sales_documents_it_does_not_show,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_merge_takes_no_blank_from_a_merged_customer,
            crm_a_merge_takes_no_blank_from_a_merged_customer,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_follow_up_export_names_no_hidden_customer_by_id,
            crm_a_follow_up_export_names_no_hidden_customer_by_id,
            $make
        );
        $each!(
            $crate::testing::service_suite::user_imports_refuse_shared_names_and_cycles_of_superiors,
            crm_user_imports_refuse_shared_names_and_cycles_of_superiors,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_choice_option_records_hold_is_not_removed,
            crm_a_choice_option_records_hold_is_not_removed,
            $make
        );
        $each!(
            $crate::testing::service_suite::single_line_values_drop_invisible_characters,
            crm_single_line_values_drop_invisible_characters,
            $make
        );
        $each!(
            $crate::testing::service_suite::individuals_sharing_a_name_are_no_duplicates,
            crm_individuals_sharing_a_name_are_no_duplicates,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_placeholder_credit_code_is_refused,
            crm_a_placeholder_credit_code_is_refused,
            $make
        );
        $each!(
            $crate::testing::service_suite::record_writes_guard_the_built_in_option_lists_they_read,
            crm_record_writes_guard_the_built_in_option_lists_they_read,
            $make
        );
        $each!(
            $crate::testing::service_suite::pools_take_no_deactivated_admins_or_members,
            crm_pools_take_no_deactivated_admins_or_members,
            $make
        );
        $each!(
            $crate::testing::service_suite::grants_on_users_other_than_manage_are_refused,
            crm_grants_on_users_other_than_manage_are_refused,
            $make
        );
        $each!(
            $crate::testing::service_suite::an_administrator_roles_rights_are_not_edited,
            crm_an_administrator_roles_rights_are_not_edited,
            $make
        );
        $each!(
            $crate::testing::service_suite::a_user_edit_changing_nothing_writes_nothing,
            crm_a_user_edit_changing_nothing_writes_nothing,
            $make
        );
    };
}

use crate::auth::{Action, Actor, DataScope, FieldAccess, FieldRule, Permission, Role};
use crate::clock::ManualClock;
use crate::crm::Crm;
use crate::custom::{CustomFieldType, NewCustomField};
use crate::entity::Entity;
use crate::error::Error;
use crate::export::ExportValue;
use crate::ids::{DepartmentId, RecordId, UserId};
use crate::import::{Cell, ImportOptions, IssueKind, SheetRow};
use crate::org::{Department, NewCompany, NewUser, RoleSpec, UserPatch};
use crate::query::{Cond, ListQuery, PageRequest};
use crate::records::{Fields, Record, ShareAccess};
use crate::schema::Table;
use crate::store::{Lifecycle, Store};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

/// 2026-11-27 10:00 in Beijing.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0)
        .single()
        .expect("valid start time")
}

/// A company with departments, roles and users used by most scenarios.
///
/// Departments: 总部 (root) → 销售部 → {销售一组, 销售二组}.
/// Users: `admin` (administrator), `lisi` (manager of 销售部, scope
/// department_tree), `zhangsan` (销售一组, superior lisi, scope own),
/// `wangwu` (销售二组, scope own), `zhaoliu` (销售一组, scope department).
pub struct World {
    /// The engine.
    pub crm: Crm,
    /// The clock the engine uses.
    pub clock: Arc<ManualClock>,
    /// The administrator.
    pub admin: Actor,
    /// The sales manager.
    pub lisi: Actor,
    /// A sales person in group one.
    pub zhangsan: Actor,
    /// A sales person in group two.
    pub wangwu: Actor,
    /// A sales person with department scope in group one.
    pub zhaoliu: Actor,
    /// 销售部.
    pub sales: DepartmentId,
    /// 销售一组.
    pub group1: DepartmentId,
    /// 销售二组.
    pub group2: DepartmentId,
}

fn perms(scope: DataScope) -> Vec<Permission> {
    let mut out = Vec::new();
    for entity in Entity::RECORDS {
        for action in [
            Action::Read,
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Transfer,
            Action::Share,
            Action::Export,
            Action::Import,
        ] {
            out.push(Permission {
                entity,
                action,
                scope,
            });
        }
    }
    out
}

impl World {
    /// Builds the world on a fresh store, in a company with the given code.
    pub async fn new(store: Arc<dyn Store>) -> World {
        World::with_code(store, "HW").await
    }

    /// Builds the world in a company with the given code.
    pub async fn with_code(store: Arc<dyn Store>, code: &str) -> World {
        let clock = Arc::new(ManualClock::new(start()));
        let crm = Crm::new(store, clock.clone());
        let (_, admin_id) = crm
            .bootstrap(NewCompany {
                name: format!("{code}测试科技有限公司"),
                code: code.into(),
                admin_username: "admin".into(),
                admin_display_name: "管理员".into(),
                admin_password: Some("Admin#2026".into()),
            })
            .await
            .expect("bootstrap");
        let admin = crm.actor(admin_id).await.expect("admin actor");
        let root = admin.department_id;
        let sales = crm
            .create_department(&admin, "销售部", root)
            .await
            .expect("sales")
            .id;
        let group1 = crm
            .create_department(&admin, "销售一组", Some(sales))
            .await
            .expect("group1")
            .id;
        let group2 = crm
            .create_department(&admin, "销售二组", Some(sales))
            .await
            .expect("group2")
            .id;
        let role = |name: &str, scope| RoleSpec {
            name: name.into(),
            is_admin: false,
            permissions: perms(scope),
            field_rules: Vec::new(),
        };
        let seller = crm
            .create_role(&admin, role("销售", DataScope::Own))
            .await
            .expect("role");
        let manager = crm
            .create_role(&admin, role("经理", DataScope::DepartmentTree))
            .await
            .expect("role");
        let lead = crm
            .create_role(&admin, role("组长", DataScope::Department))
            .await
            .expect("role");
        let user = |username: &str, name: &str, dept, superior, role: &crate::auth::Role| NewUser {
            username: username.into(),
            display_name: name.into(),
            department_id: Some(dept),
            superior_id: superior,
            role_ids: vec![role.id],
            password: None,
            ..NewUser::default()
        };
        let lisi = crm
            .create_user(&admin, user("lisi", "李四", sales, None, &manager))
            .await
            .expect("lisi");
        let zhangsan = crm
            .create_user(
                &admin,
                user("zhangsan", "张三", group1, Some(lisi.id), &seller),
            )
            .await
            .expect("zhangsan");
        let wangwu = crm
            .create_user(
                &admin,
                user("wangwu", "王五", group2, Some(lisi.id), &seller),
            )
            .await
            .expect("wangwu");
        let zhaoliu = crm
            .create_user(&admin, user("zhaoliu", "赵六", group1, None, &lead))
            .await
            .expect("zhaoliu");
        World {
            lisi: crm.actor(lisi.id).await.expect("actor"),
            zhangsan: crm.actor(zhangsan.id).await.expect("actor"),
            wangwu: crm.actor(wangwu.id).await.expect("actor"),
            zhaoliu: crm.actor(zhaoliu.id).await.expect("actor"),
            admin,
            crm,
            clock,
            sales,
            group1,
            group2,
        }
    }

    /// Creates a customer as `actor` with a name and extra fields.
    pub async fn customer(&self, actor: &Actor, name: &str, extra: Json) -> Record {
        let mut f = fields(extra);
        f.insert("name".into(), json!(name));
        self.crm
            .create_record(actor, Entity::Customer, f)
            .await
            .unwrap_or_else(|e| panic!("create customer {name}: {e}"))
    }

    /// Lists ids of customers `actor` sees with the conditions.
    pub async fn visible(&self, actor: &Actor, q: ListQuery) -> (Vec<RecordId>, Option<u64>) {
        let page = self
            .crm
            .list_records(
                actor,
                Entity::Customer,
                &q.page(PageRequest::Offset {
                    page: 1,
                    per_page: 1000,
                })
                .with_total(),
            )
            .await
            .expect("list");
        (page.items.iter().map(|r| r.id).collect(), page.total)
    }
}

/// The newest outbox event about row `id` of `table` (not acknowledged by
/// the consumer `outbox-check`, which never acknowledges), checked to carry
/// the version the row has now: the change that gave the row its version
/// was announced. Returns the event's type and payload.
pub async fn announced_at_version(w: &World, table: Table, id: uuid::Uuid) -> (String, Json) {
    let row = w
        .crm
        .store()
        .get(table, id)
        .await
        .expect("get")
        .expect("the row exists");
    let events = w
        .crm
        .pending_events("outbox-check", 100_000)
        .await
        .expect("pending");
    let last = events
        .iter()
        .rev()
        .find(|e| e.event.table == table && e.event.record_id == id)
        .unwrap_or_else(|| panic!("no event about {table:?} {id}"));
    let payload = last.event.payload.to_value();
    assert_eq!(
        payload.get("version").and_then(Json::as_i64),
        Some(row.version()),
        "the newest event about {table:?} {id} ({}: {payload}) announces its version {}",
        last.event.event_type,
        row.version()
    );
    (last.event.event_type.clone(), payload)
}

/// The fields named by the `changes` of an event payload.
pub fn changed_fields(payload: &Json) -> BTreeSet<String> {
    payload["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A follow-up created, edited, deleted or restored moves its customer's
/// follow-up dates and version: each time the customer gets its own
/// `customer.updated` event with the changes and the new version.
pub async fn follow_up_dates_announce_the_customer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "北京华信智联科技有限公司", json!({}))
        .await;
    let set = |v: Json| fields(v);
    let f = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            set(json!({
                "customer_id": c.id.0.to_string(),
                "channel": "call",
                "content": "电话沟通",
                "next_follow_up_at": "2026-12-03 10:00",
            })),
        )
        .await
        .expect("follow-up");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c.id.0).await;
    assert_eq!(kind, "customer.updated");
    assert_eq!(
        changed_fields(&payload),
        BTreeSet::from(["last_follow_up_at".into(), "next_follow_up".into()]),
        "{payload}"
    );
    let f = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            f.version,
            set(json!({"next_follow_up_at": "2026-12-05 10:00"})),
        )
        .await
        .expect("edit");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c.id.0).await;
    assert_eq!(kind, "customer.updated");
    assert!(
        changed_fields(&payload).contains("next_follow_up"),
        "{payload}"
    );
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::FollowUp, &[f.id])
        .await;
    assert_eq!(report.done, vec![f.id], "{report:?}");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c.id.0).await;
    assert_eq!(kind, "customer.updated");
    assert_eq!(
        changed_fields(&payload),
        BTreeSet::from(["last_follow_up_at".into(), "next_follow_up".into()]),
        "{payload}"
    );
    let report = w
        .crm
        .restore_records(&w.zhangsan, Entity::FollowUp, &[f.id])
        .await;
    assert_eq!(report.done, vec![f.id], "{report:?}");
    let (kind, _) = announced_at_version(&w, Table::Customers, c.id.0).await;
    assert_eq!(kind, "customer.updated");
}

/// The number of events in the outbox (never acknowledged by `outbox-check`).
pub async fn outbox_len(w: &World) -> usize {
    w.crm
        .pending_events("outbox-check", 100_000)
        .await
        .expect("pending")
        .len()
}

/// The newest event of a type in the outbox, its payload.
pub async fn newest_event(w: &World, kind: &str) -> Json {
    w.crm
        .pending_events("outbox-check", 100_000)
        .await
        .expect("pending")
        .iter()
        .rev()
        .find(|e| e.event.event_type == kind)
        .map(|e| e.event.payload.to_value())
        .unwrap_or_else(|| panic!("no {kind} event"))
}

/// Writes that would change nothing — the same share again, a department
/// renamed to its name or moved to its parent, a role given its
/// definition, a group its members, an option list its options — write
/// nothing: no version, event or history entry.
pub async fn changes_that_change_nothing_announce_nothing(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "北京华信智联科技有限公司", json!({}))
        .await;
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
    let shared = w
        .crm
        .store()
        .get(Table::Customers, c.id.0)
        .await
        .expect("get")
        .expect("row");
    let (kind, _) = announced_at_version(&w, Table::Customers, c.id.0).await;
    assert_eq!(kind, "customer.shared");
    let events = outbox_len(&w).await;
    let history = w
        .crm
        .store()
        .history(Table::Customers, c.id.0)
        .await
        .expect("history")
        .len();
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
        .expect("the same share again");
    let again = w
        .crm
        .store()
        .get(Table::Customers, c.id.0)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        again.version(),
        shared.version(),
        "the same share writes nothing"
    );
    assert_eq!(outbox_len(&w).await, events);
    assert_eq!(
        w.crm
            .store()
            .history(Table::Customers, c.id.0)
            .await
            .expect("history")
            .len(),
        history
    );
    // Departments, roles, groups, option lists.
    let d = w
        .crm
        .create_department(&w.admin, "华南区", Some(w.sales))
        .await
        .expect("department");
    let events = outbox_len(&w).await;
    let same = w
        .crm
        .update_department(&w.admin, d.id, d.version, Some(" 华南区 "), None)
        .await
        .expect("same name");
    assert_eq!(same.version, d.version);
    let same = w
        .crm
        .update_department(&w.admin, d.id, d.version, None, Some(Some(w.sales)))
        .await
        .expect("same parent");
    assert_eq!(same.version, d.version);
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "客服".into(),
                is_admin: false,
                permissions: vec![Permission {
                    entity: Entity::Customer,
                    action: Action::Read,
                    scope: DataScope::All,
                }],
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    let events_after_role = outbox_len(&w).await;
    assert_eq!(events_after_role, events + 1);
    let same = w
        .crm
        .update_role(
            &w.admin,
            role.id,
            role.version,
            RoleSpec {
                name: "客服".into(),
                is_admin: false,
                permissions: role.permissions.clone(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("same role");
    assert_eq!(same.version, role.version);
    let group = w
        .crm
        .create_group(
            &w.admin,
            "华南小组",
            &[w.zhangsan.user_id, w.wangwu.user_id],
        )
        .await
        .expect("group");
    let events = outbox_len(&w).await;
    let same = w
        .crm
        .set_group_members(
            &w.admin,
            group.id,
            group.version,
            &[w.wangwu.user_id, w.zhangsan.user_id],
        )
        .await
        .expect("same members");
    assert_eq!(same.version, group.version);
    let list = w
        .crm
        .picklist_with_version(&w.admin, Entity::Customer, "category")
        .await
        .expect("list");
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            list.version,
            &list.options,
        )
        .await
        .expect("same list");
    assert_eq!(
        w.crm
            .picklist_with_version(&w.admin, Entity::Customer, "category")
            .await
            .expect("list")
            .version,
        list.version
    );
    assert_eq!(outbox_len(&w).await, events, "nothing announced");
}

/// What a creation starts with is in its event (a department's parent, a
/// group's members, a pool's admins and limits, the first department, role
/// and administrator of a new company); every organisation event names
/// its record, also a deletion or a move; an option list changed is
/// announced with the options added and removed.
pub async fn creations_and_org_changes_announce_what_they_hold(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let d = w
        .crm
        .create_department(&w.admin, "华南区", Some(w.sales))
        .await
        .expect("department");
    let created = newest_event(&w, "department.created").await;
    assert_eq!(
        created["parent_id"],
        json!(w.sales.0.to_string()),
        "{created}"
    );
    assert_eq!(created["version"], json!(1), "{created}");
    let moved = w
        .crm
        .update_department(&w.admin, d.id, d.version, None, Some(Some(w.group1)))
        .await
        .expect("moved");
    let updated = newest_event(&w, "department.updated").await;
    assert_eq!(updated["name"], json!("华南区"), "{updated}");
    assert_eq!(updated["version"], json!(moved.version), "{updated}");
    w.crm
        .delete_department(&w.admin, d.id)
        .await
        .expect("delete");
    assert_eq!(
        newest_event(&w, "department.deleted").await["name"],
        json!("华南区")
    );
    let group = w
        .crm
        .create_group(&w.admin, "华南小组", &[w.zhangsan.user_id])
        .await
        .expect("group");
    let created = newest_event(&w, "user_group.created").await;
    assert_eq!(
        created["member_ids"],
        json!([w.zhangsan.user_id.0.to_string()]),
        "{created}"
    );
    let group = w
        .crm
        .set_group_members(&w.admin, group.id, group.version, &[w.wangwu.user_id])
        .await
        .expect("members");
    assert_eq!(
        newest_event(&w, "user_group.updated").await["name"],
        json!("华南小组")
    );
    w.crm
        .delete_group(&w.admin, group.id, group.version)
        .await
        .expect("delete group");
    assert_eq!(
        newest_event(&w, "user_group.deleted").await["name"],
        json!("华南小组")
    );
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "客服".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    w.crm
        .delete_role(&w.admin, role.id, role.version)
        .await
        .expect("delete role");
    assert_eq!(
        newest_event(&w, "role.deleted").await["name"],
        json!("客服")
    );
    // An option list changed.
    let list = w
        .crm
        .picklist_with_version(&w.admin, Entity::Customer, "category")
        .await
        .expect("list");
    let mut options = list.options.clone();
    options.push("战略客户".into());
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            list.version,
            &options,
        )
        .await
        .expect("list set");
    let set = newest_event(&w, "picklist.updated").await;
    assert_eq!(set["options_added"], json!(["战略客户"]), "{set}");
    assert_eq!(set["options_removed"], json!([]), "{set}");
    assert_eq!(set["field"], json!("category"), "{set}");
    // A pool's starting state.
    w.crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "华东公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crate::pool::PoolLimits {
                    max_owned_per_user: Some(3),
                    reclaim_cooldown_days: 7,
                    ..crate::pool::PoolLimits::default()
                },
            },
        )
        .await
        .expect("pool");
    let pool = newest_event(&w, "pool.created").await;
    assert_eq!(
        pool["admins"],
        json!([w.lisi.user_id.0.to_string()]),
        "{pool}"
    );
    assert_eq!(
        pool["member_departments"],
        json!([w.group1.0.to_string()]),
        "{pool}"
    );
    assert_eq!(pool["limits"]["max_owned_per_user"], json!(3), "{pool}");
    assert_eq!(pool["limits"]["reclaim_cooldown_days"], json!(7), "{pool}");
    // A new company: its first department, role and administrator.
    let (company, admin) = w
        .crm
        .bootstrap(NewCompany {
            name: "深圳新创科技有限公司".into(),
            code: "SZXC".into(),
            admin_username: "boss".into(),
            admin_display_name: "老板".into(),
            admin_password: None,
        })
        .await
        .expect("company");
    let events = w
        .crm
        .pending_events("outbox-check", 100_000)
        .await
        .expect("pending");
    let of_company: Vec<(String, Json)> = events
        .iter()
        .filter(|e| e.event.company_id == company.id.0)
        .map(|e| (e.event.event_type.clone(), e.event.payload.to_value()))
        .collect();
    let kinds: BTreeSet<&str> = of_company.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "company.created",
            "department.created",
            "role.created",
            "user.created"
        ]),
        "{of_company:?}"
    );
    let user = &of_company
        .iter()
        .find(|(k, _)| k == "user.created")
        .expect("user")
        .1;
    assert_eq!(user["username"], json!("boss"));
    assert_eq!(
        events
            .iter()
            .find(|e| e.event.event_type == "user.created" && e.event.company_id == company.id.0)
            .map(|e| e.event.record_id),
        Some(admin.0)
    );
}

/// A customer archived, unarchived, deleted, restored, transferred or
/// shared: each event carries the version the customer has now, and so do
/// its contacts' events.
pub async fn customer_lifecycle_events_carry_the_version(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "北京华信智联科技有限公司", json!({}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "吴工"})),
        )
        .await
        .expect("contact");
    let one = |r: crate::records::BatchReport| assert_eq!(r.done.len(), 1, "{r:?}");
    one(w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await);
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.archived"
    );
    one(w
        .crm
        .unarchive_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await);
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.unarchived"
    );
    one(w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await);
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.deleted"
    );
    assert_eq!(
        announced_at_version(&w, Table::Contacts, contact.id.0)
            .await
            .0,
        "contact.deleted"
    );
    one(w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await);
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.restored"
    );
    one(w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer"));
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.transferred"
    );
    assert_eq!(
        announced_at_version(&w, Table::Contacts, contact.id.0)
            .await
            .0,
        "contact.transferred"
    );
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Customer,
            c.id,
            w.zhangsan.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    assert_eq!(
        announced_at_version(&w, Table::Customers, c.id.0).await.0,
        "customer.shared"
    );
}

/// Builds input fields from a JSON object.
pub fn fields(v: Json) -> Fields {
    match v {
        Json::Object(m) => m.into_iter().collect(),
        Json::Null => Fields::new(),
        other => panic!("fields must be an object, got {other}"),
    }
}

fn names(items: &[Record]) -> BTreeSet<String> {
    items
        .iter()
        .map(|r| r.text("name").unwrap_or_default().to_string())
        .collect()
}

async fn names_for(w: &World, actor: &Actor, q: ListQuery) -> BTreeSet<String> {
    let page = w
        .crm
        .list_records(
            actor,
            Entity::Customer,
            &q.page(PageRequest::Offset {
                page: 1,
                per_page: 1000,
            }),
        )
        .await
        .expect("list");
    names(&page.items)
}

/// Walks a list with keyset paging and returns the ids in order.
async fn keyset_ids(w: &World, q: &ListQuery, limit: u64) -> Vec<RecordId> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = w
            .crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &q.clone().page(PageRequest::Keyset { after, limit }),
            )
            .await
            .expect("keyset page");
        ids.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return ids,
        }
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Local login: right password works, wrong ones lock the account after
/// five tries until the lockout passes; a changed password replaces the old.
/// Company codes and usernames are typed letter case aside (they are unique
/// so), the password is not.
pub async fn login_lockout_and_password_change(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("login");
    assert_eq!(a.user_id, w.admin.user_id);
    for (company, username) in [("hw", "Admin"), (" Hw ", "ADMIN"), ("HW", "ａｄｍｉｎ")] {
        let a = w
            .crm
            .authenticate(company, username, "Admin#2026")
            .await
            .unwrap_or_else(|e| panic!("login as {company}/{username}: {e}"));
        assert_eq!(a.user_id, w.admin.user_id);
    }
    assert!(
        w.crm
            .authenticate("HW", "admin", "admin#2026")
            .await
            .is_err()
    );
    let found = w
        .crm
        .user_by_username(&w.admin, "ZhangSan")
        .await
        .expect("a username letter case aside");
    assert_eq!(found.id, w.zhangsan.user_id);
    let company = w.crm.company_by_code("hw").await.expect("company");
    assert_eq!(
        w.crm
            .user_id_by_login(company.id, "ZHANGSAN")
            .await
            .expect("lookup"),
        Some(w.zhangsan.user_id)
    );
    assert_eq!(
        w.crm
            .user_id_by_login(company.id, "zhangsa")
            .await
            .expect("lookup"),
        None,
        "a prefix names nobody"
    );
    // A right password clears the wrong one above: the count starts anew.
    w.crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("login");
    assert!(matches!(
        w.crm.authenticate("HW", "admin", "wrong").await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        w.crm.authenticate("NOPE", "admin", "Admin#2026").await,
        Err(Error::Unauthenticated(_))
    ));
    for _ in 0..4 {
        assert!(w.crm.authenticate("HW", "admin", "wrong").await.is_err());
    }
    // Five failures in a row (one above, four here): locked even for the right password.
    let locked = w.crm.authenticate("HW", "admin", "Admin#2026").await;
    match locked {
        Err(Error::Unauthenticated(m)) => assert!(m.contains("locked"), "{m}"),
        other => panic!("expected a lockout, got {other:?}"),
    }
    w.clock.advance(chrono::Duration::minutes(16));
    let a = w
        .crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("login after lockout");
    w.crm
        .change_password(&a, "Admin#2026", "NewPass#2027")
        .await
        .expect("change password");
    assert!(
        w.crm
            .authenticate("HW", "admin", "Admin#2026")
            .await
            .is_err()
    );
    w.crm
        .authenticate("HW", "admin", "NewPass#2027")
        .await
        .expect("new password");
    assert!(matches!(
        w.crm.change_password(&a, "wrong", "Another#1").await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        w.crm.change_password(&a, "NewPass#2027", "short").await,
        Err(Error::Validation(_))
    ));
    // Users without a local password log in through the host only.
    assert!(
        w.crm
            .authenticate("HW", "zhangsan", "anything")
            .await
            .is_err()
    );
}

/// A customer with every built-in field round-trips; the code is
/// `KH-<local date>-0001`; the history names each changed field.
pub async fn customer_roundtrip_code_and_history(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(
            &w.zhangsan,
            "华为技术有限公司",
            json!({
                "简称": "华为",
                "客户类型": "企业客户",
                "category": "VIP",
                "level": "A",
                "source": "展会",
                "industry": "通信",
                "province": "广东省", "city": "深圳市", "district": "龙岗区",
                "address": "坂田华为基地",
                "phone": "0755-28780808",
                "email": "Contact@Huawei.COM",
                "website": "www.huawei.com",
                "uscc": "914403001922038216",
                "tags": "通信, 重点 ,通信",
                "next_follow_up": "2026/12/01",
                "notes": "战略客户",
                "attachments": [{"name": "营业执照.pdf", "kind": "file", "uri": "files/1", "size": 1024}]
            }),
        )
        .await;
    assert_eq!(c.code.as_deref(), Some("KH-20261127-0001"));
    assert_eq!(c.owner_id, Some(w.zhangsan.user_id));
    assert_eq!(c.department_id, Some(w.group1));
    assert_eq!(c.version, 1);
    assert_eq!(c.text("kind"), Some("enterprise"));
    assert_eq!(c.text("short_name"), Some("华为"));
    assert_eq!(c.text("phone"), Some("0755-28780808"));
    assert_eq!(c.text("uscc"), Some("914403001922038216"));
    assert_eq!(c.text("next_follow_up"), Some("2026-12-01"));
    assert_eq!(c.fields["tags"], json!(["通信", "重点"]));
    assert_eq!(c.fields["attachments"][0]["name"], json!("营业执照.pdf"));
    let again = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("get");
    assert_eq!(again, c);
    let second = w
        .customer(&w.zhangsan, "中兴通讯股份有限公司", json!({}))
        .await;
    assert_eq!(second.code.as_deref(), Some("KH-20261127-0002"));
    // An attachment links to a web address or a storage key, has a visible
    // name and a size of bytes: anything else is refused, naming it.
    for (attachment, says) in [
        (
            json!({"name": "a.pdf", "uri": "javascript:alert(1)"}),
            "'javascript:'",
        ),
        (
            json!({"name": "a.html", "uri": "data:text/html,<b>x</b>"}),
            "'data:'",
        ),
        (
            json!({"name": "a.pdf", "uri": "files/2", "size": -1}),
            "size -1",
        ),
        (
            json!({"name": "a.pdf", "uri": "files/2", "size": 1e30}),
            "a whole number of bytes",
        ),
        (
            json!({"name": "\u{202e}\u{200b}", "uri": "files/2"}),
            "needs a name",
        ),
        (json!({"name": "a\u{0}b.pdf", "uri": "files/2"}), ""),
    ] {
        let got = w
            .crm
            .update_record(
                &w.zhangsan,
                Entity::Customer,
                second.id,
                second.version,
                fields(json!({"attachments": [attachment]})),
            )
            .await;
        match (&got, says) {
            (Ok(r), "") => {
                assert_eq!(r.fields["attachments"][0]["name"], json!("ab.pdf"));
            }
            (Err(Error::Validation(v)), says) if !says.is_empty() => {
                assert!(v.to_string().contains(says), "{attachment}: {v}");
            }
            _ => panic!("{attachment}: {got:?}"),
        }
        if got.is_ok() {
            break;
        }
    }

    let updated = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version,
            fields(json!({"level": "B", "notes": null, "客户分类": "普通"})),
        )
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.text("level"), Some("B"));
    assert_eq!(updated.fields["notes"], Json::Null);
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Customer, c.id.0)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].action, "create");
    assert_eq!(history[1].action, "update");
    assert_eq!(history[1].actor_id, Some(w.zhangsan.user_id.0));
    let changed: BTreeSet<&str> = history[1]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(changed, BTreeSet::from(["category", "level", "notes"]));
    let level = history[1]
        .changes
        .iter()
        .find(|c| c.field == "level")
        .expect("level change");
    assert_eq!(
        (level.before.clone(), level.after.clone()),
        (json!("A"), json!("B"))
    );
    // A field named twice, by its key and by its label, is refused: one
    // value would be dropped unsaid.
    match w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            updated.version,
            fields(json!({"level": "A", "级别": "D"})),
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(
                m.contains("name the same field") && m.contains("级别"),
                "{m}"
            );
        }
        other => panic!("a field named twice: {other:?}"),
    }
    // An update that changes nothing writes nothing.
    let same = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            2,
            fields(json!({"level": "B"})),
        )
        .await
        .expect("noop");
    assert_eq!(same.version, 2);
}

/// Bad input is refused with one message per bad field, naming the value,
/// and nothing is stored.
pub async fn validation_names_every_bad_field(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut f = fields(json!({
        "name": "坏数据有限公司",
        "uscc": "91440300192203821X",
        "phone": "1234",
        "email": "not-an-email",
        "category": "不存在的分类",
        "next_follow_up": "2026-13-45",
        "colour": "red"
    }));
    f.insert("kind".into(), json!("alien"));
    let err = w
        .crm
        .create_record(&w.zhangsan, Entity::Customer, f)
        .await
        .expect_err("invalid");
    let Error::Validation(v) = err else {
        panic!("expected validation, got {err:?}")
    };
    let fields_hit: BTreeSet<String> =
        v.0.iter()
            .map(|e| e.field.split(' ').next().unwrap_or_default().to_string())
            .collect();
    for expected in [
        "uscc",
        "phone",
        "email",
        "category",
        "next_follow_up",
        "colour",
        "kind",
    ] {
        assert!(
            fields_hit.contains(expected),
            "no error for {expected}: {v}"
        );
    }
    let text = v.to_string();
    assert!(text.contains("91440300192203821X"), "{text}");
    assert!(text.contains("2026-13-45"), "{text}");
    let missing = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"city": "北京"})),
        )
        .await
        .expect_err("name required");
    assert!(missing.to_string().contains("name"), "{missing}");
    // Contacts: a bad mobile and a resident ID with a wrong check digit.
    let c = w.customer(&w.zhangsan, "好客户有限公司", json!({})).await;
    let err = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "王小明", "mobile": "2381234567", "id_number": "110105194912310021"})),
        )
        .await
        .expect_err("bad contact");
    let text = err.to_string();
    assert!(
        text.contains("mobile") && text.contains("id_number"),
        "{text}"
    );
    let (ids, total) = w.visible(&w.admin, ListQuery::default()).await;
    assert_eq!((ids.len(), total), (1, Some(1)));
}

/// Two users edit the same record: the second gets a conflict and the first
/// one's change is kept.
pub async fn concurrent_edit_is_a_conflict(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "腾讯科技有限公司", json!({"level": "C"}))
        .await;
    let first = w
        .crm
        .update_record(
            &w.lisi,
            Entity::Customer,
            c.id,
            c.version,
            fields(json!({"level": "A"})),
        )
        .await
        .expect("first edit");
    let second = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version,
            fields(json!({"level": "B"})),
        )
        .await;
    match second {
        Err(Error::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let now = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("get");
    assert_eq!(now.text("level"), Some("A"));
    assert_eq!(now.version, first.version);
}

/// Own, department, department tree, subordinates and all: lists, totals
/// and single reads only show what the scope covers.
pub async fn data_scopes_limit_lists_counts_and_reads(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let z = w.customer(&w.zhangsan, "张三的客户", json!({})).await;
    w.customer(&w.wangwu, "王五的客户", json!({})).await;
    w.customer(&w.zhaoliu, "赵六的客户", json!({})).await;
    w.customer(&w.lisi, "李四的客户", json!({})).await;
    w.customer(&w.admin, "管理员的客户", json!({})).await;
    let all = set(&[
        "张三的客户",
        "王五的客户",
        "赵六的客户",
        "李四的客户",
        "管理员的客户",
    ]);
    assert_eq!(names_for(&w, &w.admin, ListQuery::default()).await, all);
    assert_eq!(
        names_for(&w, &w.zhangsan, ListQuery::default()).await,
        set(&["张三的客户"])
    );
    assert_eq!(
        names_for(&w, &w.wangwu, ListQuery::default()).await,
        set(&["王五的客户"])
    );
    // Department scope: own records and those of 销售一组.
    assert_eq!(
        names_for(&w, &w.zhaoliu, ListQuery::default()).await,
        set(&["张三的客户", "赵六的客户"])
    );
    // Department tree from 销售部: everything below it, not the admin's.
    assert_eq!(
        names_for(&w, &w.lisi, ListQuery::default()).await,
        set(&["张三的客户", "王五的客户", "赵六的客户", "李四的客户"])
    );
    let (ids, total) = w.visible(&w.zhaoliu, ListQuery::default()).await;
    assert_eq!(total, Some(ids.len() as u64));
    // Reading another's record is "not found", not "forbidden": no leak.
    assert!(matches!(
        w.crm.get_record(&w.wangwu, Entity::Customer, z.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        w.crm
            .update_record(
                &w.wangwu,
                Entity::Customer,
                z.id,
                1,
                fields(json!({"level": "A"}))
            )
            .await,
        Err(Error::NotFound { .. })
    ));
    // Subordinates scope: lisi's role changed to own_and_subordinates sees
    // his and his reports' (zhangsan, wangwu) but not zhaoliu's.
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "主管".into(),
                is_admin: false,
                permissions: perms(DataScope::OwnAndSubordinates),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            lisi.id,
            lisi.version,
            UserPatch {
                role_ids: Some(vec![role.id]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("update user");
    let lisi = w.crm.actor(lisi.id).await.expect("actor");
    assert_eq!(
        names_for(&w, &lisi, ListQuery::default()).await,
        set(&["张三的客户", "王五的客户", "李四的客户"])
    );
    // A user without any customer permission sees nothing and cannot create.
    let nobody = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "guest".into(),
                display_name: "访客".into(),
                ..NewUser::default()
            },
        )
        .await
        .expect("guest");
    let nobody = w.crm.actor(nobody.id).await.expect("actor");
    assert!(
        names_for(&w, &nobody, ListQuery::default())
            .await
            .is_empty()
    );
    assert!(matches!(
        w.crm
            .create_record(&nobody, Entity::Customer, fields(json!({"name": "x公司"})))
            .await,
        Err(Error::Forbidden(_))
    ));
}

/// Shares grant read or write, end when they expire, and can be withdrawn.
pub async fn sharing_read_write_and_expiry(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "共享客户有限公司", json!({})).await;
    assert!(
        names_for(&w, &w.wangwu, ListQuery::default())
            .await
            .is_empty()
    );
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
    assert_eq!(
        names_for(&w, &w.wangwu, ListQuery::default()).await,
        set(&["共享客户有限公司"])
    );
    w.crm
        .get_record(&w.wangwu, Entity::Customer, c.id)
        .await
        .expect("read shared");
    assert!(matches!(
        w.crm
            .update_record(
                &w.wangwu,
                Entity::Customer,
                c.id,
                1,
                fields(json!({"level": "A"}))
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    let until = w.crm.now() + chrono::Duration::days(2);
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Write,
            Some(until),
        )
        .await
        .expect("share write");
    let shares = w
        .crm
        .list_shares(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("shares");
    assert_eq!(shares.len(), 1, "sharing again replaces the earlier share");
    assert_eq!(shares[0].access, ShareAccess::Write);
    // (Sharing a customer writes it at the version read: see
    // `share_record`.)
    let now_at = w
        .crm
        .get_record(&w.wangwu, Entity::Customer, c.id)
        .await
        .expect("read through share")
        .version;
    w.crm
        .update_record(
            &w.wangwu,
            Entity::Customer,
            c.id,
            now_at,
            fields(json!({"level": "A"})),
        )
        .await
        .expect("write through share");
    // Others still cannot share what they do not own.
    assert!(matches!(
        w.crm
            .share_record(
                &w.wangwu,
                Entity::Customer,
                c.id,
                w.zhaoliu.user_id,
                ShareAccess::Read,
                None
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    w.clock.advance(chrono::Duration::days(3));
    assert!(
        names_for(&w, &w.wangwu, ListQuery::default())
            .await
            .is_empty(),
        "expired share"
    );
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_err()
    );
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
        .expect("share again");
    w.crm
        .unshare_record(&w.zhangsan, Entity::Customer, c.id, w.wangwu.user_id)
        .await
        .expect("unshare");
    assert!(
        names_for(&w, &w.wangwu, ListQuery::default())
            .await
            .is_empty(),
        "withdrawn share"
    );
    assert!(
        w.crm
            .share_record(
                &w.zhangsan,
                Entity::Customer,
                c.id,
                w.wangwu.user_id,
                ShareAccess::Read,
                Some(w.crm.now())
            )
            .await
            .is_err()
    );
}

/// Field rules: masked values are shown masked and cannot be filtered or
/// changed; hidden fields are absent; read-only fields cannot be changed.
pub async fn field_rules_mask_hide_and_freeze(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "客服".into(),
                is_admin: false,
                permissions: perms(DataScope::All),
                field_rules: vec![
                    FieldRule {
                        entity: Entity::Contact,
                        field: "mobile".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Contact,
                        field: "email".into(),
                        access: FieldAccess::Masked,
                    },
                    FieldRule {
                        entity: Entity::Contact,
                        field: "id_number".into(),
                        access: FieldAccess::Hidden,
                    },
                    FieldRule {
                        entity: Entity::Customer,
                        field: "level".into(),
                        access: FieldAccess::ReadOnly,
                    },
                ],
            },
        )
        .await
        .expect("role");
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "kefu".into(),
                display_name: "客服小王".into(),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let kefu = w.crm.actor(u.id).await.expect("actor");
    let c = w
        .customer(&w.admin, "遮蔽测试有限公司", json!({"level": "A"}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "刘经理", "mobile": "+86 138-1234-5678", "email": "liu@example.com", "id_number": "11010519491231002X"})),
        )
        .await
        .expect("contact");
    assert_eq!(contact.text("mobile"), Some("13812345678"));
    let seen = w
        .crm
        .get_record(&kefu, Entity::Contact, contact.id)
        .await
        .expect("get");
    assert_eq!(seen.text("mobile"), Some("138****5678"));
    assert_eq!(seen.text("email"), Some("l***@example.com"));
    assert!(!seen.fields.contains_key("id_number"));
    let listed = w
        .crm
        .list_records(&kefu, Entity::Contact, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(listed.items[0].text("mobile"), Some("138****5678"));
    assert!(matches!(
        w.crm
            .list_records(
                &kefu,
                Entity::Contact,
                &ListQuery::default().filter(Cond::StartsWith("mobile".into(), "138".into()))
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .list_records(
                &kefu,
                Entity::Customer,
                &ListQuery::default().filter(Cond::Related(
                    "contacts".into(),
                    Box::new(Cond::IsNull("id_number".into()))
                ))
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .update_record(
                &kefu,
                Entity::Contact,
                contact.id,
                1,
                fields(json!({"mobile": "13900000000"}))
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .update_record(
                &kefu,
                Entity::Customer,
                c.id,
                1,
                fields(json!({"level": "B"}))
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    // Read-only fields are visible and other fields stay editable.
    let cust = w
        .crm
        .update_record(
            &kefu,
            Entity::Customer,
            c.id,
            1,
            fields(json!({"notes": "已回访"})),
        )
        .await
        .expect("edit other field");
    assert_eq!(cust.text("level"), Some("A"));
    // The administrator sees everything.
    let full = w
        .crm
        .get_record(&w.admin, Entity::Contact, contact.id)
        .await
        .expect("get");
    assert_eq!(full.text("id_number"), Some("11010519491231002X"));
}

/// Every filter operator, related-record conditions and search.
pub async fn filters_every_operator_and_related(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let a = w
        .customer(&w.admin, "阿尔法科技有限公司", json!({"level": "A", "city": "北京", "tags": "重点,华北", "next_follow_up": "2026-12-01"}))
        .await;
    w.customer(
        &w.admin,
        "贝塔贸易有限公司",
        json!({"level": "B", "city": "上海", "next_follow_up": "2026-12-05"}),
    )
    .await;
    w.customer(
        &w.admin,
        "伽马物流有限公司",
        json!({"level": "C", "tags": "华南"}),
    )
    .await;
    w.crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": a.code.clone(), "name": "陈工", "mobile": "13812345678"})),
        )
        .await
        .expect("contact by customer code");
    let q = |c: Cond| ListQuery::default().filter(c);
    let eq = |f: &str, v: &str| Cond::Eq(f.into(), json!(v));
    assert_eq!(
        names_for(&w, &w.admin, q(eq("level", "A"))).await,
        set(&["阿尔法科技有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(eq("客户级别", "A"))).await,
        set(&["阿尔法科技有限公司"])
    );
    // Ne includes records without a value.
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Ne("city".into(), json!("北京")))).await,
        set(&["贝塔贸易有限公司", "伽马物流有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Ge("level".into(), json!("B")))).await,
        set(&["贝塔贸易有限公司", "伽马物流有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Lt("level".into(), json!("B")))).await,
        set(&["阿尔法科技有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Le("next_follow_up".into(), json!("2026-12-01")))
        )
        .await,
        set(&["阿尔法科技有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Gt("next_follow_up".into(), json!("2026-12-01")))
        )
        .await,
        set(&["贝塔贸易有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::In("level".into(), vec![json!("A"), json!("C")]))
        )
        .await,
        set(&["阿尔法科技有限公司", "伽马物流有限公司"])
    );
    assert!(
        names_for(&w, &w.admin, q(Cond::In("level".into(), vec![])))
            .await
            .is_empty()
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Contains("name".into(), "贸易".into()))
        )
        .await,
        set(&["贝塔贸易有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::StartsWith("name".into(), "伽马".into()))
        )
        .await,
        set(&["伽马物流有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::IsNull("city".into()))).await,
        set(&["伽马物流有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::NotNull("tags".into())))
            .await
            .len(),
        2
    );
    assert_eq!(
        names_for(&w, &w.admin, q(eq("tags", "华南"))).await,
        set(&["伽马物流有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Or(vec![eq("city", "上海"), eq("level", "C")]))
        )
        .await,
        set(&["贝塔贸易有限公司", "伽马物流有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Not(Box::new(Cond::And(vec![
                eq("level", "A"),
                eq("city", "北京")
            ]))))
        )
        .await,
        set(&["贝塔贸易有限公司", "伽马物流有限公司"])
    );
    // Customers with a contact whose mobile starts with 138.
    let related = Cond::parse("contacts.mobile^138").expect("parse");
    assert_eq!(
        names_for(&w, &w.admin, q(related)).await,
        set(&["阿尔法科技有限公司"])
    );
    assert!(
        names_for(
            &w,
            &w.admin,
            q(Cond::parse("contacts.mobile^139").expect("parse"))
        )
        .await
        .is_empty()
    );
    // Several conditions combine with AND.
    let both = ListQuery::default()
        .filter(eq("city", "北京"))
        .filter(eq("level", "B"));
    assert!(names_for(&w, &w.admin, both).await.is_empty());
    // Unknown fields and bad values are named.
    let err = w
        .crm
        .list_records(&w.admin, Entity::Customer, &q(eq("colour", "red")))
        .await
        .expect_err("unknown field");
    assert!(err.to_string().contains("colour"), "{err}");
    // A phone is searched by its digits: a value without any, or with
    // letters, is refused rather than matching every number.
    for typed in ["phone~abc", "phone~0755abc", "contacts.mobile^+", "phone^-"] {
        let err = w
            .crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &q(Cond::parse(typed).expect("parse")),
            )
            .await
            .expect_err(typed);
        assert!(
            err.to_string().contains("no part of a phone number"),
            "{typed}: {err}"
        );
    }
    let err = w
        .crm
        .list_records(&w.admin, Entity::Customer, &q(eq("next_follow_up", "soon")))
        .await
        .expect_err("bad date");
    assert!(err.to_string().contains("soon"), "{err}");
    // Search over name, code and phone.
    assert_eq!(
        names_for(&w, &w.admin, ListQuery::default().search("物流")).await,
        set(&["伽马物流有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            ListQuery::default().search(a.code.clone().unwrap_or_default())
        )
        .await,
        set(&["阿尔法科技有限公司"])
    );
}

/// Offset pages of 10 (the default) and keyset pages walk the same order,
/// and the total counts every matching record.
pub async fn offset_and_keyset_paging_agree(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for i in 0..23 {
        w.clock.advance(chrono::Duration::seconds(1));
        w.customer(
            &w.admin,
            &format!("分页客户{i:02}有限公司"),
            json!({"level": (["A", "B", "C"][i % 3])}),
        )
        .await;
    }
    let first = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().with_total(),
        )
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.total, Some(23));
    assert!(first.has_more);
    assert_eq!(
        first.items[0].text("name"),
        Some("分页客户22有限公司"),
        "newest first by default"
    );
    // A multi-key, mixed-direction order walked by offset and by keyset.
    let sorted = ListQuery::default()
        .sort_by("kind", false)
        .sort_by("name", true);
    let mut by_offset = Vec::new();
    for page in 1..=3 {
        let p = w
            .crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &sorted
                    .clone()
                    .page(PageRequest::Offset { page, per_page: 10 }),
            )
            .await
            .expect("offset page");
        by_offset.extend(p.items.iter().map(|r| r.id));
    }
    let by_keyset = keyset_ids(&w, &sorted, 7).await;
    assert_eq!(by_offset.len(), 23);
    assert_eq!(by_offset, by_keyset);
    let first = w
        .crm
        .get_record(&w.admin, Entity::Customer, by_keyset[0])
        .await
        .expect("first");
    assert_eq!(first.text("name"), Some("分页客户22有限公司"));
    // Sorting by a field that may be empty works with offset paging.
    let by_level = ListQuery::default()
        .sort_by("level", false)
        .sort_by("name", true);
    let all = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &by_level.page(PageRequest::Offset {
                page: 1,
                per_page: 100,
            }),
        )
        .await
        .expect("all");
    let levels: Vec<&str> = all
        .items
        .iter()
        .map(|r| r.text("level").unwrap_or_default())
        .collect();
    let mut expected = levels.clone();
    expected.sort();
    assert_eq!(levels, expected);
    assert_eq!(all.items[0].text("name"), Some("分页客户21有限公司"));
    // Keyset paging over a field that is often empty and a custom field.
    for field in ["next_follow_up", "level"] {
        let q = ListQuery::default().sort_by(field, true);
        let offset = w
            .crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &q.clone().page(PageRequest::Offset {
                    page: 1,
                    per_page: 100,
                }),
            )
            .await
            .expect("offset");
        let keyset = keyset_ids(&w, &q, 4).await;
        assert_eq!(
            offset.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            keyset,
            "{field}"
        );
    }
    // Text-only operators on other types, and bad cursors, are refused.
    assert!(
        w.crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &ListQuery::default().filter(Cond::Contains("next_follow_up".into(), "12".into()))
            )
            .await
            .is_err()
    );
    assert!(
        w.crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &sorted.page(PageRequest::Keyset {
                    after: Some("garbage".into()),
                    limit: 5
                })
            )
            .await
            .is_err()
    );
}

/// Delete sends a customer and its contacts to the recycle bin; restore
/// brings them back; purge needs a deleted record; archive leaves the
/// working set; codes are never reused.
pub async fn delete_restore_purge_and_archive(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "回收站测试有限公司", json!({}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "周工"})),
        )
        .await
        .expect("contact");
    assert_eq!(
        contact.owner_id,
        Some(w.zhangsan.user_id),
        "contacts take the customer's owner"
    );
    // Others cannot delete it.
    let r = w
        .crm
        .delete_records(&w.wangwu, Entity::Customer, &[c.id])
        .await;
    assert_eq!((r.done.len(), r.refused.len()), (0, 1));
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    assert!(
        names_for(&w, &w.zhangsan, ListQuery::default())
            .await
            .is_empty()
    );
    let contacts = w
        .crm
        .list_records(&w.zhangsan, Entity::Contact, &ListQuery::default())
        .await
        .expect("list");
    assert!(
        contacts.items.is_empty(),
        "contacts are deleted with their customer"
    );
    assert_eq!(
        names_for(
            &w,
            &w.zhangsan,
            ListQuery::default().lifecycle(Lifecycle::Deleted)
        )
        .await,
        set(&["回收站测试有限公司"])
    );
    assert!(matches!(
        w.crm
            .update_record(
                &w.zhangsan,
                Entity::Customer,
                c.id,
                2,
                fields(json!({"level": "A"}))
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    let again = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert!(
        again.refused[0].1.contains("recycle bin"),
        "{:?}",
        again.refused
    );
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    let contacts = w
        .crm
        .list_records(&w.zhangsan, Entity::Contact, &ListQuery::default())
        .await
        .expect("list");
    assert_eq!(
        contacts.items.len(),
        1,
        "contacts come back with their customer"
    );
    let r = w
        .crm
        .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert!(r.refused[0].1.contains("deleted"), "{:?}", r.refused);
    w.crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    let r = w
        .crm
        .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(r.done, vec![c.id]);
    assert!(
        w.crm
            .get_record(&w.admin, Entity::Customer, c.id)
            .await
            .is_err()
    );
    assert!(
        w.crm
            .get_record(&w.admin, Entity::Contact, contact.id)
            .await
            .is_err()
    );
    let next = w.customer(&w.zhangsan, "新客户有限公司", json!({})).await;
    assert_eq!(
        next.code.as_deref(),
        Some("KH-20261127-0002"),
        "codes are never reused"
    );
    // Archive to history and back.
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[next.id])
        .await;
    assert_eq!(r.done, vec![next.id]);
    assert!(
        names_for(&w, &w.zhangsan, ListQuery::default())
            .await
            .is_empty()
    );
    assert_eq!(
        names_for(
            &w,
            &w.zhangsan,
            ListQuery::default().lifecycle(Lifecycle::Archived)
        )
        .await,
        set(&["新客户有限公司"])
    );
    w.crm
        .unarchive_records(&w.zhangsan, Entity::Customer, &[next.id])
        .await;
    assert_eq!(
        names_for(&w, &w.zhangsan, ListQuery::default()).await,
        set(&["新客户有限公司"])
    );
    // A new day starts a new series.
    w.clock.advance(chrono::Duration::days(1));
    let tomorrow = w
        .customer(&w.zhangsan, "明天的客户有限公司", json!({}))
        .await;
    assert_eq!(tomorrow.code.as_deref(), Some("KH-20261128-0001"));
}

/// Custom fields: typed validation, required and unique flags, options,
/// filtering and sorting.
pub async fn custom_fields_validate_filter_and_unique(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let def = |key: &str, label: &str, t, options: &[&str], required, unique| NewCustomField {
        entity: Entity::Customer,
        key: key.into(),
        label: label.into(),
        label_en: None,
        field_type: t,
        options: options.iter().map(|s| s.to_string()).collect(),
        required,
        unique,
    };
    w.crm
        .define_custom_field(
            &w.admin,
            def(
                "employees",
                "员工人数",
                CustomFieldType::Number,
                &[],
                false,
                false,
            ),
        )
        .await
        .expect("number");
    w.crm
        .define_custom_field(
            &w.admin,
            def(
                "erp_code",
                "ERP编码",
                CustomFieldType::Text,
                &[],
                true,
                true,
            ),
        )
        .await
        .expect("text");
    w.crm
        .define_custom_field(
            &w.admin,
            def(
                "scale",
                "规模",
                CustomFieldType::Select,
                &["大型", "中型", "小型"],
                false,
                false,
            ),
        )
        .await
        .expect("select");
    w.crm
        .define_custom_field(
            &w.admin,
            def("budget", "预算", CustomFieldType::Money, &[], false, false),
        )
        .await
        .expect("money");
    w.crm
        .define_custom_field(
            &w.admin,
            def(
                "listed",
                "上市",
                CustomFieldType::Boolean,
                &[],
                false,
                false,
            ),
        )
        .await
        .expect("bool");
    w.crm
        .define_custom_field(
            &w.admin,
            def(
                "channels",
                "渠道",
                CustomFieldType::MultiSelect,
                &["线上", "线下", "代理"],
                false,
                false,
            ),
        )
        .await
        .expect("multi select");
    assert!(matches!(
        w.crm
            .define_custom_field(
                &w.zhangsan,
                def("x", "X", CustomFieldType::Text, &[], false, false)
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(
        w.crm
            .define_custom_field(
                &w.admin,
                def("name", "名字", CustomFieldType::Text, &[], false, false)
            )
            .await
            .is_err()
    );
    assert!(
        w.crm
            .define_custom_field(
                &w.admin,
                def("Bad-Key", "坏", CustomFieldType::Text, &[], false, false)
            )
            .await
            .is_err()
    );
    assert!(
        w.crm
            .define_custom_field(
                &w.admin,
                def("opts", "无选项", CustomFieldType::Select, &[], false, false)
            )
            .await
            .is_err()
    );
    let a = w
        .customer(&w.admin, "自定义一有限公司", json!({"custom.employees": "1,200", "ERP编码": "E001", "规模": "大型", "budget": "¥12,345.67", "listed": "是", "渠道": "线上，代理"}))
        .await;
    assert_eq!(a.custom["channels"], json!(["线上", "代理"]));
    assert_eq!(a.custom["employees"], json!(1200.0));
    assert_eq!(a.custom["budget"], json!(1234567));
    assert_eq!(a.custom["listed"], json!(true));
    w.customer(
        &w.admin,
        "自定义二有限公司",
        json!({"employees": 80, "erp_code": "E002", "scale": "小型"}),
    )
    .await;
    let err = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            fields(json!({"name": "缺少编码有限公司"})),
        )
        .await
        .expect_err("required custom");
    assert!(err.to_string().contains("custom.erp_code"), "{err}");
    let err = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            fields(json!({"name": "重复编码有限公司", "erp_code": "E001"})),
        )
        .await
        .expect_err("unique custom");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let err = w
        .crm
        .create_record(&w.admin, Entity::Customer, fields(json!({"name": "坏值有限公司", "erp_code": "E003", "employees": "很多", "scale": "巨型"})))
        .await
        .expect_err("bad custom values");
    let text = err.to_string();
    assert!(text.contains("很多") && text.contains("巨型"), "{text}");
    let q = |c: Cond| ListQuery::default().filter(c);
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Eq("channels".into(), json!("代理")))).await,
        set(&["自定义一有限公司"])
    );
    assert!(
        names_for(&w, &w.admin, q(Cond::Eq("channels".into(), json!("线下"))))
            .await
            .is_empty()
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Ne("channels".into(), json!("代理")))).await,
        set(&["自定义二有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Gt("custom.employees".into(), json!(100)))
        )
        .await,
        set(&["自定义一有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Eq("规模".into(), json!("小型")))).await,
        set(&["自定义二有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Eq("listed".into(), json!(true)))).await,
        set(&["自定义一有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::IsNull("budget".into()))).await,
        set(&["自定义二有限公司"])
    );
    let sorted = w
        .crm
        .list_records(
            &w.admin,
            Entity::Customer,
            &ListQuery::default().sort_by("employees", false),
        )
        .await
        .expect("sort by custom");
    assert_eq!(sorted.items[0].text("name"), Some("自定义二有限公司"));
    // Updating a unique custom field to a taken value is refused too.
    let err = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            a.id,
            a.version,
            fields(json!({"erp_code": "E002"})),
        )
        .await
        .expect_err("unique on update");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    // Built-in choice lists are configurable per company.
    w.crm
        .set_picklist(
            &w.admin,
            Entity::Customer,
            "category",
            0,
            &["战略".into(), "普通".into()],
        )
        .await
        .expect("picklist");
    w.customer(
        &w.admin,
        "战略客户有限公司",
        json!({"erp_code": "E009", "category": "战略"}),
    )
    .await;
    assert!(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "VIP客户有限公司", "erp_code": "E010", "category": "VIP"}))
            )
            .await
            .is_err()
    );
}

/// Pinyin initials and full pinyin find Chinese names; names with several
/// readings are found by each of them.
pub async fn pinyin_search_finds_every_reading(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.customer(&w.admin, "华为技术有限公司", json!({})).await;
    w.customer(&w.admin, "重庆长安汽车股份有限公司", json!({}))
        .await;
    w.customer(&w.admin, "曾氏贸易有限公司", json!({})).await;
    w.customer(&w.admin, "IBM中国有限公司", json!({})).await;
    let find = |q: &str| names_for(&w, &w.admin, ListQuery::default().search(q));
    assert_eq!(find("hwjs").await, set(&["华为技术有限公司"]));
    assert_eq!(find("huaweijishu").await, set(&["华为技术有限公司"]));
    assert_eq!(find("HWJS").await, set(&["华为技术有限公司"]));
    assert_eq!(find("chongqing").await, set(&["重庆长安汽车股份有限公司"]));
    assert_eq!(find("cqca").await, set(&["重庆长安汽车股份有限公司"]));
    assert_eq!(find("zengshi").await, set(&["曾氏贸易有限公司"]));
    assert_eq!(find("cengshi").await, set(&["曾氏贸易有限公司"]));
    assert_eq!(find("ibmzg").await, set(&["IBM中国有限公司"]));
    assert!(find("xyzq").await.is_empty());
    // Contacts and users are found by pinyin too.
    let c = w.customer(&w.admin, "联系人拼音有限公司", json!({})).await;
    w.crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "欧阳娜娜"})),
        )
        .await
        .expect("contact");
    let found = w
        .crm
        .list_records(
            &w.admin,
            Entity::Contact,
            &ListQuery::default().search("oynn"),
        )
        .await
        .expect("search contacts");
    assert_eq!(found.items.len(), 1);
    let users = w.crm.list_users(&w.admin, Some("zs")).await.expect("users");
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        vec!["zhangsan"]
    );
}

/// Search keys left by an older rule (here: overwritten through the store)
/// are brought up to the current rule by an administrator's rebuild, which
/// is audited; a second run changes nothing; others may not run it.
pub async fn search_keys_of_older_rules_are_rebuilt(store: Arc<dyn Store>) {
    use crate::schema::Table;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    let w = World::new(store).await;
    let c = w
        .customer(
            &w.admin,
            "重庆长安汽车股份有限公司",
            json!({"short_name": "长安汽车"}),
        )
        .await;
    let k = w
        .crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "欧阳娜娜"})),
        )
        .await
        .expect("contact");
    for (table, id) in [(Table::Customers, c.id.0), (Table::Contacts, k.id.0)] {
        let row = w
            .crm
            .store()
            .get(table, id)
            .await
            .expect("get")
            .expect("row");
        w.crm
            .store()
            .apply(&ChangeSet {
                ops: vec![Op::Update {
                    table,
                    id,
                    expected_version: row.version(),
                    values: vec![("pinyin_keys", Value::Text("old rule".into()))],
                }],
                ..ChangeSet::default()
            })
            .await
            .expect("old keys");
    }
    let w = &w;
    let customers = |q: &'static str| names_for(w, &w.admin, ListQuery::default().search(q));
    let contacts = |q: &'static str| async move {
        w.crm
            .list_records(&w.admin, Entity::Contact, &ListQuery::default().search(q))
            .await
            .expect("contacts")
            .items
            .len()
    };
    assert!(customers("cqca").await.is_empty());
    assert_eq!(contacts("oynn").await, 0);
    match w.crm.rebuild_search_keys(&w.zhangsan).await {
        Err(Error::Forbidden(_)) => {}
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let stats = w.crm.rebuild_search_keys(&w.admin).await.expect("rebuild");
    assert_eq!(stats.updated, 2, "{stats:?}");
    assert!(stats.rows >= 2, "{stats:?}");
    assert_eq!(customers("cqca").await, set(&["重庆长安汽车股份有限公司"]));
    // The short name's keys follow the name's.
    assert_eq!(customers("caqc").await, set(&["重庆长安汽车股份有限公司"]));
    assert_eq!(contacts("oynn").await, 1);
    let again = w.crm.rebuild_search_keys(&w.admin).await.expect("again");
    assert_eq!((again.rows, again.updated), (stats.rows, 0));
    let company = w.admin.company_id.0;
    let runs = w
        .crm
        .store()
        .history(Table::Companies, company)
        .await
        .expect("history")
        .into_iter()
        .filter(|a| a.action == "rebuild_search_keys")
        .count();
    assert_eq!(runs, 2);
}

/// A duplicate by credit code or normalised name is refused, even when the
/// existing customer belongs to someone the actor cannot see, without
/// naming that owner.
pub async fn duplicates_refused_even_when_invisible(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.customer(
        &w.zhangsan,
        "深圳市腾讯计算机系统有限公司",
        json!({"uscc": "91440300708461136T"}),
    )
    .await;
    let by_code = w
        .crm
        .create_record(
            &w.wangwu,
            Entity::Customer,
            fields(json!({"name": "腾讯深圳", "uscc": "91440300708461136t"})),
        )
        .await
        .expect_err("duplicate credit code");
    match &by_code {
        Error::Duplicate { message, .. } => {
            assert!(message.contains("91440300708461136T"), "{message}");
            assert!(
                !message.contains("张三"),
                "the owner stays private: {message}"
            );
            assert!(message.contains("someone else"), "{message}");
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let by_name = w
        .crm
        .create_record(
            &w.wangwu,
            Entity::Customer,
            fields(json!({"name": " 深圳市腾讯计算机系统 "})),
        )
        .await
        .expect_err("duplicate name");
    assert!(matches!(by_name, Error::Duplicate { .. }), "{by_name}");
    // The owner's manager can see it and is told whose it is.
    let seen = w
        .crm
        .create_record(
            &w.lisi,
            Entity::Customer,
            fields(json!({"name": "深圳市腾讯计算机系统有限责任公司"})),
        )
        .await
        .expect_err("duplicate");
    assert!(seen.to_string().contains("张三"), "{seen}");
    assert_eq!(w.visible(&w.admin, ListQuery::default()).await.1, Some(1));
}

/// Batch transfer moves what the actor may transfer and reports the rest;
/// contacts follow their customer and the new owner's department applies.
pub async fn batch_transfer_reports_per_record(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mine = w.customer(&w.zhangsan, "转移一有限公司", json!({})).await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": mine.id.to_string(), "name": "吴工"})),
        )
        .await
        .expect("contact");
    let other = w.customer(&w.zhaoliu, "转移二有限公司", json!({})).await;
    let report = w
        .crm
        .transfer_records(
            &w.zhangsan,
            Entity::Customer,
            &[mine.id, other.id],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert_eq!(report.done, vec![mine.id]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, other.id);
    let moved = w
        .crm
        .get_record(&w.wangwu, Entity::Customer, mine.id)
        .await
        .expect("new owner sees it");
    assert_eq!(moved.owner_id, Some(w.wangwu.user_id));
    assert_eq!(moved.department_id, Some(w.group2));
    let c = w
        .crm
        .get_record(&w.wangwu, Entity::Contact, contact.id)
        .await
        .expect("contact follows");
    assert_eq!(c.owner_id, Some(w.wangwu.user_id));
    assert!(
        w.crm
            .get_record(&w.zhangsan, Entity::Customer, mine.id)
            .await
            .is_err()
    );
    let h = w
        .crm
        .history(&w.wangwu, Entity::Customer, mine.id.0)
        .await
        .expect("history");
    assert_eq!(h.last().map(|e| e.action.as_str()), Some("transfer"));
}

/// A follow-up records the contact and sets the customer's last and next
/// follow-up; contacts of another customer are refused.
pub async fn follow_ups_update_the_customer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "跟进测试有限公司", json!({})).await;
    let other = w.customer(&w.zhangsan, "另一个有限公司", json!({})).await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "郑经理"})),
        )
        .await
        .expect("contact");
    let f = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": c.id.to_string(), "contact_id": contact.id.to_string(), "channel": "电话", "content": "沟通需求", "occurred_at": "2026-11-27 09:30", "next_follow_up_at": "2026-12-03 10:00"})),
        )
        .await
        .expect("follow-up");
    assert_eq!(f.text("channel"), Some("call"));
    assert_eq!(f.code.as_deref(), Some("GJ-20261127-0001"));
    let c2 = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(c2.text("next_follow_up"), Some("2026-12-03"));
    assert_eq!(
        c2.text("last_follow_up_at"),
        Some("2026-11-27T01:30:00.000000Z")
    );
    let err = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": other.id.to_string(), "contact_id": contact.id.to_string(), "channel": "visit", "content": "x"})),
        )
        .await
        .expect_err("contact of another customer");
    assert!(err.to_string().contains("another customer"), "{err}");
    // Someone who cannot see the customer cannot follow it up.
    assert!(
        w.crm
            .create_record(
                &w.wangwu,
                Entity::FollowUp,
                fields(json!({"customer_id": c.id.to_string(), "channel": "call", "content": "x"}))
            )
            .await
            .is_err()
    );
    let listed = w
        .crm
        .list_records(
            &w.zhangsan,
            Entity::FollowUp,
            &ListQuery::default().filter(Cond::Eq("customer_id".into(), json!(c.id.to_string()))),
        )
        .await
        .expect("list follow-ups");
    assert_eq!(listed.items.len(), 1);
    // The last follow-up time only moves forward.
    w.crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({"customer_id": c.id.to_string(), "channel": "wechat", "content": "补录", "occurred_at": "2026-11-20 09:00"})),
        )
        .await
        .expect("older follow-up");
    let c3 = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(
        c3.text("last_follow_up_at"),
        Some("2026-11-27T01:30:00.000000Z")
    );
}

/// The outbox hands events to a consumer in order and again until they are
/// acknowledged; consumers are independent.
pub async fn outbox_delivers_in_order_until_acked(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let all = w.crm.pending_events("erp", 1000).await.expect("pending");
    let last_setup = all.last().map(|e| e.seq).unwrap_or(0);
    w.crm
        .ack_events("erp", last_setup)
        .await
        .expect("ack setup");
    let c = w
        .customer(
            &w.zhangsan,
            "事件测试有限公司",
            json!({"tags": ["重点", "华南"]}),
        )
        .await;
    w.crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            1,
            fields(json!({"level": "A"})),
        )
        .await
        .expect("update");
    w.crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    let events = w.crm.pending_events("erp", 10).await.expect("pending");
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["customer.created", "customer.updated", "customer.deleted"]
    );
    assert!(events.windows(2).all(|p| p[0].seq < p[1].seq));
    // The created record's values, as the API shows them.
    let created = events[0].event.payload.to_value();
    assert_eq!(created["name"], json!("事件测试有限公司"));
    assert_eq!(created["id"], json!(c.id.to_string()));
    assert_eq!(created["code"], json!(c.code));
    assert_eq!(created["owner_id"], json!(w.zhangsan.user_id.to_string()));
    assert_eq!(created["tags"], c.fields["tags"]);
    assert_eq!(
        created["tags"].as_array().map(Vec::len),
        Some(2),
        "tags as an array"
    );
    assert_eq!(created["attachments"], json!([]));
    assert!(
        created.get("name_key").is_none(),
        "derived keys are not shown"
    );
    let again = w.crm.pending_events("erp", 10).await.expect("redelivered");
    assert_eq!(again, events, "unacknowledged events are delivered again");
    w.crm.ack_events("erp", events[1].seq).await.expect("ack");
    let rest = w.crm.pending_events("erp", 10).await.expect("rest");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event.event_type, "customer.deleted");
    w.crm
        .ack_events("erp", events[0].seq)
        .await
        .expect("ack backwards is ignored");
    // An event not written yet is not acknowledged: it would be skipped.
    assert!(matches!(
        w.crm.ack_events("erp", events[2].seq + 1_000).await,
        Err(Error::Validation(_))
    ));
    assert_eq!(
        w.crm.pending_events("erp", 10).await.expect("rest").len(),
        1
    );
    let other = w
        .crm
        .pending_events("bi", 1000)
        .await
        .expect("other consumer");
    assert!(
        other.len() > 3,
        "another consumer starts from the beginning"
    );
    // A refused operation emits nothing.
    let _ = w
        .crm
        .create_record(&w.zhangsan, Entity::Customer, fields(json!({"name": ""})))
        .await;
    assert_eq!(
        w.crm.pending_events("erp", 10).await.expect("rest").len(),
        1
    );
    // A company's own position: apart from the consumer's, and moved alone.
    let company = w.admin.company_id;
    let mine = w
        .crm
        .pending_events_of("erp", company, 1000)
        .await
        .expect("the company's events");
    assert_eq!(mine.len(), all.len() + 3, "from the start, this company's");
    w.crm
        .ack_events_of("erp", company, events[2].seq)
        .await
        .expect("ack the company's");
    assert_eq!(
        w.crm
            .pending_events_of("erp", company, 10)
            .await
            .expect("none"),
        vec![]
    );
    assert_eq!(
        w.crm.pending_events("erp", 10).await.expect("rest").len(),
        1,
        "the consumer's own position did not move"
    );
    assert!(matches!(
        w.crm
            .ack_events_of("erp", company, events[2].seq + 1_000)
            .await,
        Err(Error::Validation(_))
    ));
    // A name holding '@' could pose as a company's position.
    let posing = crate::crm::company_consumer("erp", company);
    for refused in [
        w.crm.pending_events(&posing, 10).await.err(),
        w.crm.ack_events(&posing, 1).await.err(),
        w.crm.pending_events_of(" ", company, 10).await.err(),
        w.crm.ack_events_of("a@b", company, 1).await.err(),
    ] {
        assert!(
            matches!(&refused, Some(Error::Validation(v)) if v.to_string().contains("consumer")),
            "{refused:?}"
        );
    }
}

/// Organisation rules: only administrators manage users, usernames are
/// unique, superiors and departments cannot form cycles, deactivated users
/// cannot act.
pub async fn organisation_admin_rules(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    assert!(matches!(
        w.crm
            .create_user(
                &w.zhangsan,
                NewUser {
                    username: "x".into(),
                    display_name: "X".into(),
                    ..NewUser::default()
                }
            )
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .create_user(
                &w.admin,
                NewUser {
                    username: "zhangsan".into(),
                    display_name: "另一个张三".into(),
                    ..NewUser::default()
                }
            )
            .await,
        Err(Error::Duplicate { .. })
    ));
    // A username differing only in case is the same to whoever types it,
    // and one with a space inside is refused.
    match w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "ZhangSan".into(),
                display_name: "大写张三".into(),
                ..NewUser::default()
            },
        )
        .await
    {
        Err(Error::Duplicate { message, .. }) => {
            assert!(message.contains("as 'zhangsan'"), "{message}");
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert!(matches!(
        w.crm
            .create_user(
                &w.admin,
                NewUser {
                    username: "zhang san".into(),
                    display_name: "空格".into(),
                    ..NewUser::default()
                }
            )
            .await,
        Err(Error::Validation(v)) if v.to_string().contains("space")
    ));
    // Company codes alike.
    let code = w
        .crm
        .company(w.admin.company_id)
        .await
        .expect("company")
        .code;
    for (bad, what) in [
        (code.to_lowercase(), "already taken"),
        ("X Y".to_string(), "space"),
    ] {
        let refused = w
            .crm
            .bootstrap(crate::org::NewCompany {
                name: "另一公司".into(),
                code: bad.clone(),
                admin_username: "boss".into(),
                admin_display_name: "老板".into(),
                admin_password: None,
            })
            .await;
        assert!(
            matches!(&refused, Err(Error::Duplicate { message, .. }) if message.contains(what))
                || matches!(&refused, Err(Error::Validation(v)) if v.to_string().contains(what)),
            "{bad}: {refused:?}"
        );
    }
    let bad = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "bad".into(),
                display_name: "坏".into(),
                mobile: Some("123".into()),
                email: Some("x@".into()),
                ..NewUser::default()
            },
        )
        .await
        .expect_err("bad contact details");
    assert!(
        bad.to_string().contains("mobile") && bad.to_string().contains("email"),
        "{bad}"
    );
    // lisi is zhangsan's superior: making zhangsan lisi's superior is a cycle.
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("lisi");
    let err = w
        .crm
        .update_user(
            &w.admin,
            lisi.id,
            lisi.version,
            UserPatch {
                superior_id: Some(Some(w.zhangsan.user_id)),
                ..UserPatch::default()
            },
        )
        .await
        .expect_err("cycle");
    assert!(err.to_string().contains("cycle"), "{err}");
    let sales = department(&w, w.sales).await;
    let err = w
        .crm
        .update_department(&w.admin, w.sales, sales.version, None, Some(Some(w.group1)))
        .await
        .expect_err("department cycle");
    assert!(err.to_string().contains("below itself"), "{err}");
    assert!(
        w.crm.delete_department(&w.admin, w.group1).await.is_err(),
        "department with users"
    );
    let d = w
        .crm
        .create_department(&w.admin, "临时部门", Some(w.sales))
        .await
        .expect("dept");
    w.crm
        .delete_department(&w.admin, d.id)
        .await
        .expect("delete empty department");
    assert_eq!(
        w.crm.list_departments(&w.admin).await.expect("list").len(),
        4
    );
    let g = w
        .crm
        .create_group(
            &w.admin,
            "华南项目组",
            &[w.zhangsan.user_id, w.wangwu.user_id],
        )
        .await
        .expect("group");
    let g = w
        .crm
        .set_group_members(&w.admin, g.id, g.version, &[w.zhangsan.user_id])
        .await
        .expect("members");
    assert_eq!(g.members, vec![w.zhangsan.user_id]);
    let wangwu = w.crm.user(&w.admin, w.wangwu.user_id).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            wangwu.id,
            wangwu.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivate");
    assert!(matches!(
        w.crm.actor(wangwu.id).await,
        Err(Error::Forbidden(_))
    ));
    // Nobody can transfer records to a deactivated user.
    let c = w.customer(&w.zhangsan, "停用测试有限公司", json!({})).await;
    assert!(
        w.crm
            .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], wangwu.id)
            .await
            .is_err()
    );
}

/// Two companies in one store never see each other's data; usernames and
/// customer names may repeat across companies.
pub async fn companies_are_isolated(store: Arc<dyn Store>) {
    let a = World::with_code(store.clone(), "AAA").await;
    let b = World::with_code(store, "BBB").await;
    a.customer(
        &a.admin,
        "同名客户有限公司",
        json!({"uscc": "91440300708461136T"}),
    )
    .await;
    b.customer(
        &b.admin,
        "同名客户有限公司",
        json!({"uscc": "91440300708461136T"}),
    )
    .await;
    let (ids_a, total_a) = a.visible(&a.admin, ListQuery::default()).await;
    let (ids_b, _) = b.visible(&b.admin, ListQuery::default()).await;
    assert_eq!(total_a, Some(1));
    assert_ne!(ids_a, ids_b);
    assert!(
        b.crm
            .get_record(&b.admin, Entity::Customer, ids_a[0])
            .await
            .is_err()
    );
    assert!(b.crm.user(&b.admin, a.zhangsan.user_id).await.is_err());
    assert_eq!(a.crm.list_companies().await.expect("companies").len(), 2);
    assert!(
        a.crm
            .bootstrap(NewCompany {
                name: "重复".into(),
                code: "AAA".into(),
                admin_username: "x".into(),
                admin_display_name: "x".into(),
                admin_password: None
            })
            .await
            .is_err()
    );
}

/// Random organisations, roles, owners and shares: what every user lists
/// (and counts) equals what a reference model of the permission rules says.
pub async fn visibility_matches_reference_model(store: Arc<dyn Store>) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    // Per user: department index (0 = 销售部, 1 = 一组, 2 = 二组), superior
    // (an earlier user or none), scope index; per record: owner index;
    // shares: (record, user, expired?).
    let users = prop::collection::vec((0usize..3, prop::option::of(0usize..6), 0usize..5), 2..6);
    let records = prop::collection::vec(0usize..6, 1..10);
    let shares = prop::collection::vec((0usize..10, 0usize..6, any::<bool>()), 0..5);
    let strategy = (users, records, shares);
    let mut runner = TestRunner::deterministic();
    for case in 0..6 {
        let (users, records, shares) = strategy.new_tree(&mut runner).expect("case").current();
        let w = World::with_code(store.clone(), &format!("P{case}")).await;
        let depts = [w.sales, w.group1, w.group2];
        let mut roles = Vec::new();
        for scope in DataScope::ALL {
            roles.push(
                w.crm
                    .create_role(
                        &w.admin,
                        RoleSpec {
                            name: format!("r-{}", scope.name()),
                            is_admin: false,
                            permissions: perms(scope),
                            field_rules: Vec::new(),
                        },
                    )
                    .await
                    .expect("role"),
            );
        }
        let mut ids: Vec<UserId> = Vec::new();
        for (i, (dept, superior, scope)) in users.iter().enumerate() {
            let superior = superior.filter(|s| *s < i).map(|s| ids[s]);
            let u = w
                .crm
                .create_user(
                    &w.admin,
                    NewUser {
                        username: format!("u{i}"),
                        display_name: format!("用户{i}"),
                        department_id: Some(depts[*dept]),
                        superior_id: superior,
                        role_ids: vec![roles[*scope].id],
                        ..NewUser::default()
                    },
                )
                .await
                .expect("user");
            ids.push(u.id);
        }
        let n = ids.len();
        let mut rec_ids = Vec::new();
        let mut owners = Vec::new();
        for (k, owner) in records.iter().enumerate() {
            let owner = owner % n;
            let r = w
                .customer(
                    &w.admin,
                    &format!("模型客户{k}"),
                    json!({"owner_id": ids[owner].to_string()}),
                )
                .await;
            rec_ids.push(r.id);
            owners.push(owner);
        }
        let mut live_shares = BTreeSet::new();
        for (rec, user, expired) in &shares {
            let rec = rec % rec_ids.len();
            let user = user % n;
            let until = if *expired {
                w.crm.now() + chrono::Duration::hours(1)
            } else {
                w.crm.now() + chrono::Duration::days(30)
            };
            w.crm
                .share_record(
                    &w.admin,
                    Entity::Customer,
                    rec_ids[rec],
                    ids[user],
                    ShareAccess::Read,
                    Some(until),
                )
                .await
                .expect("share");
            if !*expired {
                live_shares.insert((rec, user));
            } else {
                live_shares.remove(&(rec, user));
            }
        }
        w.clock.advance(chrono::Duration::hours(2));
        // The model.
        let below = |root: usize| -> BTreeSet<usize> {
            let mut out = BTreeSet::from([root]);
            loop {
                let before = out.len();
                for (i, (_, sup, _)) in users.iter().enumerate() {
                    if let Some(s) = sup.filter(|s| *s < i)
                        && out.contains(&s)
                    {
                        out.insert(i);
                    }
                }
                if out.len() == before {
                    return out;
                }
            }
        };
        let dept_tree = |d: usize| -> BTreeSet<usize> {
            if d == 0 {
                BTreeSet::from([0, 1, 2])
            } else {
                BTreeSet::from([d])
            }
        };
        for (i, (dept, _, scope)) in users.iter().enumerate() {
            let actor = w.crm.actor(ids[i]).await.expect("actor");
            let expected: BTreeSet<RecordId> = (0..rec_ids.len())
                .filter(|&k| {
                    let o = owners[k];
                    let by_scope = match DataScope::ALL[*scope] {
                        DataScope::Own => o == i,
                        DataScope::OwnAndSubordinates => below(i).contains(&o),
                        DataScope::Department => o == i || users[o].0 == *dept,
                        DataScope::DepartmentTree => {
                            o == i || dept_tree(*dept).contains(&users[o].0)
                        }
                        DataScope::All => true,
                    };
                    by_scope || live_shares.contains(&(k, i))
                })
                .map(|k| rec_ids[k])
                .collect();
            let (seen, total) = w.visible(&actor, ListQuery::default()).await;
            let seen_set: BTreeSet<RecordId> = seen.iter().copied().collect();
            assert_eq!(
                seen_set,
                expected,
                "case {case}, user {i} ({:?})",
                DataScope::ALL[*scope]
            );
            assert_eq!(total, Some(expected.len() as u64));
            for (k, id) in rec_ids.iter().enumerate() {
                let readable = w
                    .crm
                    .get_record(&actor, Entity::Customer, *id)
                    .await
                    .is_ok();
                assert_eq!(
                    readable,
                    expected.contains(id),
                    "case {case}, user {i}, record {k}"
                );
            }
        }
    }
}

/// Runs the futures at once (polled in turn on this task) and returns
/// their outputs in order.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = T> + Send + '_>>>> =
        futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, done) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot
                && let Poll::Ready(v) = f.as_mut().poll(cx)
            {
                *done = Some(v);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A department as stored now.
async fn department(w: &World, id: DepartmentId) -> Department {
    w.crm
        .list_departments(&w.admin)
        .await
        .expect("departments")
        .into_iter()
        .find(|d| d.id == id)
        .expect("department")
}

/// The company's administrator role.
async fn admin_role(w: &World) -> Role {
    w.crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.is_admin)
        .expect("administrator role")
}

/// A role spec from `entity:action[:scope]` grants and `entity.field=access` rules.
fn spec(name: &str, is_admin: bool, permissions: &[&str], rules: &[&str]) -> RoleSpec {
    RoleSpec {
        name: name.into(),
        is_admin,
        permissions: permissions
            .iter()
            .map(|p| p.parse().expect("permission"))
            .collect(),
        field_rules: rules.iter().map(|r| r.parse().expect("rule")).collect(),
    }
}

/// A user (made by the administrator) holding one new role with these
/// grants and field rules, as an actor.
async fn staff(
    w: &World,
    username: &str,
    department: Option<DepartmentId>,
    permissions: Vec<Permission>,
    rules: &[&str],
) -> Actor {
    let mut role = spec(&format!("{username}的角色"), false, &[], rules);
    role.permissions = permissions;
    let role = w.crm.create_role(&w.admin, role).await.expect("role");
    let user = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: username.into(),
                display_name: username.into(),
                department_id: department,
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm.actor(user.id).await.expect("actor")
}

fn grants(list: &[&str]) -> Vec<Permission> {
    list.iter()
        .map(|p| p.parse().expect("permission"))
        .collect()
}

#[track_caller]
fn forbidden<T: std::fmt::Debug>(result: Result<T, Error>, says: &str) {
    match result {
        Err(Error::Forbidden(m)) => assert!(m.contains(says), "{m} (expected '{says}')"),
        other => panic!("expected a refusal saying '{says}', got {other:?}"),
    }
}

#[track_caller]
fn invalid_state<T: std::fmt::Debug>(result: Result<T, Error>, says: &str) {
    match result {
        Err(Error::InvalidState(m)) => assert!(m.contains(says), "{m} (expected '{says}')"),
        other => panic!("expected a state error saying '{says}', got {other:?}"),
    }
}

#[track_caller]
fn locked<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Unauthenticated(m)) => assert!(m.contains("locked"), "{m}"),
        other => panic!("expected a lockout, got {other:?}"),
    }
}

/// Nobody but an administrator hands out rights they do not hold: a role
/// manager cannot create or widen a role beyond their own grants (an
/// administrator role, a wider scope, an action they lack, a field shown
/// more openly) nor touch a role above them; a user manager cannot give
/// anyone (themselves included) roles beyond their own rights, nor edit,
/// deactivate or reset the password of a user holding more than they do
/// (an administrator), through the API or a user import. Within their
/// rights both work, and administrators can do everything.
pub async fn non_admins_grant_no_rights_beyond_their_own(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = admin_role(&w).await;
    // A role manager who sees contacts' mobiles masked.
    let rm = staff(
        &w,
        "rm",
        Some(w.sales),
        grants(&["role:manage", "customer:read:own", "contact:read:own"]),
        &["contact.mobile=masked"],
    )
    .await;
    let masked = ["contact.mobile=masked"];
    forbidden(
        w.crm
            .create_role(&rm, spec("提权", true, &[], &masked))
            .await,
        "administrator role",
    );
    forbidden(
        w.crm
            .create_role(&rm, spec("提权", false, &["customer:read:all"], &masked))
            .await,
        "customer:read:all",
    );
    forbidden(
        w.crm
            .create_role(&rm, spec("提权", false, &["customer:delete:own"], &masked))
            .await,
        "no customer:delete grant",
    );
    forbidden(
        w.crm
            .create_role(&rm, spec("提权", false, &["contact:read:own"], &[]))
            .await,
        "contact.mobile",
    );
    let mine = rm.roles[0].clone();
    let widened = spec(
        &mine.name,
        false,
        &["role:manage", "customer:read:all", "contact:read:own"],
        &masked,
    );
    forbidden(
        w.crm.update_role(&rm, mine.id, mine.version, widened).await,
        "customer:read:all",
    );
    let mut made_admin = spec(
        &mine.name,
        true,
        &["role:manage", "customer:read:own", "contact:read:own"],
        &masked,
    );
    forbidden(
        w.crm
            .update_role(&rm, mine.id, mine.version, made_admin.clone())
            .await,
        "administrator role",
    );
    forbidden(
        w.crm
            .update_role(
                &rm,
                admin.id,
                admin.version,
                spec("管理员", false, &[], &masked),
            )
            .await,
        "administrator role",
    );
    let seller = w
        .crm
        .resolve_role(&w.admin, "销售")
        .await
        .expect("seller role");
    forbidden(
        w.crm
            .update_role(
                &rm,
                seller.id,
                seller.version,
                spec("销售", false, &[], &masked),
            )
            .await,
        "may not change role '销售'",
    );
    // Within its own rights the role manager works as before.
    let within = w
        .crm
        .create_role(&rm, spec("客服", false, &["customer:read:own"], &masked))
        .await
        .expect("a role within the maker's rights");
    w.crm
        .update_role(
            &rm,
            within.id,
            within.version,
            spec(
                "客服",
                false,
                &["customer:read:own", "contact:read:own"],
                &masked,
            ),
        )
        .await
        .expect("widened within the maker's rights");
    assert!(!w.crm.actor(rm.user_id).await.expect("actor").is_admin());

    // A user manager holding nothing else.
    let um = staff(&w, "um", Some(w.sales), grants(&["user:manage"]), &[]).await;
    let me = w.crm.user(&w.admin, um.user_id).await.expect("me");
    let with = |extra: crate::ids::RoleId| {
        let mut ids = me.role_ids.clone();
        ids.push(extra);
        UserPatch {
            role_ids: Some(ids),
            ..UserPatch::default()
        }
    };
    forbidden(
        w.crm
            .update_user(&um, um.user_id, me.version, with(admin.id))
            .await,
        "administrator role",
    );
    let manager = w.crm.resolve_role(&w.admin, "经理").await.expect("role");
    forbidden(
        w.crm
            .update_user(&um, um.user_id, me.version, with(manager.id))
            .await,
        "customer:read:department_tree",
    );
    forbidden(
        w.crm
            .set_password(&um, w.admin.user_id, "Hijack#2026")
            .await,
        "administrator role",
    );
    let boss = w.crm.user(&w.admin, w.admin.user_id).await.expect("admin");
    forbidden(
        w.crm
            .update_user(
                &um,
                boss.id,
                boss.version,
                UserPatch {
                    active: Some(false),
                    ..UserPatch::default()
                },
            )
            .await,
        "may not manage user 'admin'",
    );
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("lisi");
    forbidden(
        w.crm
            .update_user(
                &um,
                lisi.id,
                lisi.version,
                UserPatch {
                    display_name: Some("李四四".into()),
                    ..UserPatch::default()
                },
            )
            .await,
        "may not manage user 'lisi'",
    );
    forbidden(
        w.crm
            .create_user(
                &um,
                NewUser {
                    username: "shadow".into(),
                    display_name: "影子".into(),
                    role_ids: vec![admin.id],
                    password: Some("Shadow#2026".into()),
                    ..NewUser::default()
                },
            )
            .await,
        "administrator role",
    );
    // Nothing of that happened.
    w.crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("the administrator's password is unchanged");
    assert!(w.crm.user_by_username(&w.admin, "shadow").await.is_err());
    assert_eq!(
        w.crm.user(&w.admin, um.user_id).await.expect("me").role_ids,
        me.role_ids
    );
    // Within its own rights the user manager works as before.
    let new = w
        .crm
        .create_user(
            &um,
            NewUser {
                username: "xinren".into(),
                display_name: "新人".into(),
                role_ids: me.role_ids.clone(),
                ..NewUser::default()
            },
        )
        .await
        .expect("a user with the manager's own rights");
    w.crm
        .set_password(&um, new.id, "Welcome#2026")
        .await
        .expect("password");
    w.crm
        .update_user(
            &um,
            new.id,
            new.version + 1,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivate");

    // A user import applies the same limits.
    let mut s = w
        .crm
        .begin_import(
            &um,
            ImportOptions::new(Entity::User),
            &["用户名".to_string(), "姓名".to_string(), "角色".to_string()],
        )
        .await
        .expect("begin import");
    let text = |v: &str| Cell::Text(v.into());
    s.push(&[
        SheetRow {
            number: 2,
            cells: vec![text("daoru"), text("导入管理员"), text("管理员")],
        },
        SheetRow {
            number: 3,
            cells: vec![text("daoru2"), text("导入经理"), text("经理")],
        },
        SheetRow {
            number: 4,
            cells: vec![
                text("daoru3"),
                text("导入新人"),
                text(&mine_name(&me, &w).await),
            ],
        },
    ])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.rejected), (1, 2), "{:#?}", r.issues);
    assert!(
        r.issues
            .iter()
            .all(|i| i.kind == IssueKind::Forbidden && i.row != 4),
        "{:#?}",
        r.issues
    );
    // The error workbook's Chinese column says why in Chinese.
    assert!(
        r.issues.iter().all(|i| i.message_zh.contains("无权分配这些角色")
            && !i.message_zh.contains("may not")),
        "{:#?}",
        r.issues
    );
    assert!(w.crm.user_by_username(&w.admin, "daoru").await.is_err());

    // Administrators do everything as before.
    made_admin.name = "第二管理员".into();
    let second = w
        .crm
        .create_role(&w.admin, made_admin)
        .await
        .expect("admin role");
    w.crm
        .update_user(&w.admin, um.user_id, me.version, with(second.id))
        .await
        .expect("the administrator grants anything");
    assert!(w.crm.actor(um.user_id).await.expect("actor").is_admin());
}

/// The name of the (first) role a user holds.
async fn mine_name(user: &crate::org::User, w: &World) -> String {
    let id = user.role_ids[0];
    w.crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.id == id)
        .expect("role")
        .name
}

/// The company keeps an active administrator: the last one cannot lose the
/// administrator role, nor can that role become an ordinary one; with two,
/// one may step down, but two administrators deactivating each other at
/// once do not both succeed (the late one is refused as leaving none).
pub async fn the_last_active_admin_is_kept(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let admin = admin_role(&w).await;
    let me = w.crm.user(&w.admin, w.admin.user_id).await.expect("me");
    invalid_state(
        w.crm
            .update_user(
                &w.admin,
                me.id,
                me.version,
                UserPatch {
                    role_ids: Some(Vec::new()),
                    ..UserPatch::default()
                },
            )
            .await,
        "without an active administrator",
    );
    invalid_state(
        w.crm
            .update_role(
                &w.admin,
                admin.id,
                admin.version,
                spec("管理员", false, &[], &[]),
            )
            .await,
        "without an active administrator",
    );
    let second = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "admin2".into(),
                display_name: "第二管理员".into(),
                role_ids: vec![admin.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("second administrator");
    let second_actor = w.crm.actor(second.id).await.expect("actor");
    // Each deactivates the other at once: the late one, checked again, is
    // refused as leaving no administrator.
    let (boss, admin_actor, second_id, second_version) =
        (me.clone(), w.admin.clone(), second.id, second.version);
    hooked.before_write(Table::Users, async move {
        other
            .update_user(
                &admin_actor,
                second_id,
                second_version,
                UserPatch {
                    active: Some(false),
                    ..UserPatch::default()
                },
            )
            .await
            .expect("the first deactivation");
    });
    let late = w
        .crm
        .update_user(
            &second_actor,
            boss.id,
            boss.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await;
    assert!(
        matches!(&late, Err(Error::InvalidState(m)) if m.contains("without an active administrator")),
        "{late:?}"
    );
    let active_admins = w
        .crm
        .list_users(&w.admin, None)
        .await
        .expect("users")
        .into_iter()
        .filter(|u| u.active && u.role_ids.contains(&admin.id))
        .count();
    assert_eq!(active_admins, 1);
    // With a second active administrator, one may step down.
    let second = w.crm.user(&w.admin, second.id).await.expect("second");
    w.crm
        .update_user(
            &w.admin,
            second.id,
            second.version,
            UserPatch {
                active: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .expect("reactivate");
    let me = w.crm.user(&w.admin, me.id).await.expect("me");
    w.crm
        .update_user(
            &w.admin,
            me.id,
            me.version,
            UserPatch {
                role_ids: Some(Vec::new()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("step down while another administrator remains");
}

/// A `user:manage` or `department:manage` grant scoped to the department
/// tree covers the manager's branch only: users of other departments cannot
/// be edited, given a password or created, nobody can be moved out of the
/// branch (the manager included), and departments can be created, renamed,
/// moved and deleted only within it.
pub async fn scoped_managers_manage_only_their_branch(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let root = w.admin.department_id;
    let mut rights = perms(DataScope::DepartmentTree);
    rights.extend(grants(&[
        "user:manage:department_tree",
        "department:manage:department_tree",
    ]));
    let branch = staff(&w, "branch", Some(w.sales), rights, &[]).await;
    let renamed = |name: &str| UserPatch {
        display_name: Some(name.into()),
        ..UserPatch::default()
    };
    let zs = w.crm.user(&w.admin, w.zhangsan.user_id).await.expect("zs");
    let zs = w
        .crm
        .update_user(&branch, zs.id, zs.version, renamed("张三丰"))
        .await
        .expect("a user of the branch");
    let outsider = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "qianqi".into(),
                display_name: "钱七".into(),
                department_id: root,
                ..NewUser::default()
            },
        )
        .await
        .expect("outsider");
    forbidden(
        w.crm
            .update_user(&branch, outsider.id, outsider.version, renamed("钱"))
            .await,
        "outside",
    );
    forbidden(
        w.crm
            .set_password(&branch, outsider.id, "Outside#2026")
            .await,
        "outside",
    );
    let moved = |d: Option<DepartmentId>| UserPatch {
        department_id: Some(d),
        ..UserPatch::default()
    };
    forbidden(
        w.crm
            .update_user(&branch, zs.id, zs.version, moved(root))
            .await,
        "outside",
    );
    w.crm
        .update_user(&branch, zs.id, zs.version, moved(Some(w.group2)))
        .await
        .expect("moved within the branch");
    let me = w.crm.user(&w.admin, branch.user_id).await.expect("me");
    forbidden(
        w.crm
            .update_user(&branch, me.id, me.version, moved(root))
            .await,
        "outside",
    );
    let newcomer = |username: &str, d: Option<DepartmentId>| NewUser {
        username: username.into(),
        display_name: username.into(),
        department_id: d,
        ..NewUser::default()
    };
    w.crm
        .create_user(&branch, newcomer("fenzu", Some(w.group2)))
        .await
        .expect("a user in the branch");
    forbidden(
        w.crm.create_user(&branch, newcomer("zongbu", root)).await,
        "outside",
    );
    forbidden(
        w.crm.create_user(&branch, newcomer("wubumen", None)).await,
        "outside",
    );

    // Departments.
    let finance = w
        .crm
        .create_department(&w.admin, "财务部", root)
        .await
        .expect("finance");
    let team = w
        .crm
        .create_department(&branch, "销售一组A队", Some(w.group1))
        .await
        .expect("a department in the branch");
    forbidden(
        w.crm.create_department(&branch, "总部新部门", root).await,
        "outside",
    );
    forbidden(
        w.crm.create_department(&branch, "顶层部门", None).await,
        "outside",
    );
    forbidden(
        w.crm
            .update_department(
                &branch,
                finance.id,
                finance.version,
                None,
                Some(Some(w.sales)),
            )
            .await,
        "outside",
    );
    let g2 = department(&w, w.group2).await;
    w.crm
        .update_department(&branch, g2.id, g2.version, None, Some(Some(w.group1)))
        .await
        .expect("moved within the branch");
    let g1 = department(&w, w.group1).await;
    forbidden(
        w.crm
            .update_department(&branch, g1.id, g1.version, None, Some(root))
            .await,
        "outside",
    );
    let sales = department(&w, w.sales).await;
    w.crm
        .update_department(&branch, sales.id, sales.version, Some("销售中心"), None)
        .await
        .expect("renamed the branch");
    let top = department(&w, root.expect("root")).await;
    forbidden(
        w.crm
            .update_department(&branch, top.id, top.version, Some("总公司"), None)
            .await,
        "outside",
    );
    forbidden(
        w.crm.delete_department(&branch, finance.id).await,
        "outside",
    );
    // The actor is a snapshot: the new department is in its tree from the
    // next request on.
    let branch = w.crm.actor(branch.user_id).await.expect("actor");
    w.crm
        .delete_department(&branch, team.id)
        .await
        .expect("deleted within the branch");
    assert_eq!(
        department(&w, finance.id).await.parent_id,
        root,
        "finance stays where it was"
    );
}

/// Wrong passwords tried at once all count: a failure whose write finds the
/// account changed by another attempt reads it again and counts on top, so
/// the account locks after `max_failed_logins` failures however they
/// interleave; a right password checked while the account was being locked
/// is refused; a wrong current password in a password change counts too.
pub async fn lockout_counts_attempts_made_at_once(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let wrong = |crm: Crm, n: usize| async move {
        for _ in 0..n {
            assert!(crm.authenticate("HW", "admin", "wrong").await.is_err());
        }
    };
    // Four failures commit while a fifth is between reading the account and
    // writing its count.
    hooked.before_write(Table::Users, wrong(other.clone(), 4));
    locked(w.crm.authenticate("HW", "admin", "also wrong").await);
    locked(w.crm.authenticate("HW", "admin", "Admin#2026").await);

    // The right password, checked while five failures lock the account.
    w.clock.advance(chrono::Duration::minutes(16));
    hooked.after_select(Table::Users, wrong(other.clone(), 5));
    locked(w.crm.authenticate("HW", "admin", "Admin#2026").await);

    // Five wrong passwords at once.
    w.clock.advance(chrono::Duration::minutes(16));
    let attempts: Vec<Pin<Box<dyn Future<Output = bool> + Send + '_>>> = (0..5)
        .map(|i| {
            let crm = if i % 2 == 0 { &w.crm } else { &other };
            Box::pin(async move { crm.authenticate("HW", "admin", "wrong").await.is_err() })
                as Pin<Box<dyn Future<Output = bool> + Send + '_>>
        })
        .collect();
    assert!(join_all(attempts).await.into_iter().all(|refused| refused));
    locked(w.crm.authenticate("HW", "admin", "Admin#2026").await);

    // Wrong current passwords count as failed logins.
    w.clock.advance(chrono::Duration::minutes(16));
    let a = w
        .crm
        .authenticate("HW", "admin", "Admin#2026")
        .await
        .expect("login after the lockout");
    wrong(w.crm.clone(), 4).await;
    locked(w.crm.change_password(&a, "wrong", "NewPass#2027").await);
    locked(w.crm.authenticate("HW", "admin", "Admin#2026").await);
    locked(
        w.crm
            .change_password(&a, "Admin#2026", "NewPass#2027")
            .await,
    );
}

/// A department edit carries the version its screen read: another admin's
/// rename in between is a conflict, not overwritten. Deleting a department
/// and putting a user or a sub-department into it at once do not both
/// succeed, whichever writes first.
pub async fn department_edits_and_deletes_hold_against_concurrent_writes(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let stale = department(&w, w.sales).await;
    w.crm
        .update_department(&w.admin, w.sales, stale.version, Some("销售中心"), None)
        .await
        .expect("rename");
    let late = w
        .crm
        .update_department(&w.admin, w.sales, stale.version, Some("销售总部"), None)
        .await;
    assert!(matches!(late, Err(Error::Conflict { .. })), "{late:?}");
    assert_eq!(department(&w, w.sales).await.name, "销售中心");

    let newcomer = |username: &str, d: DepartmentId| NewUser {
        username: username.into(),
        display_name: username.into(),
        department_id: Some(d),
        ..NewUser::default()
    };
    let live = |w: &World, id: DepartmentId| {
        let crm = w.crm.clone();
        let admin = w.admin.clone();
        async move {
            crm.list_departments(&admin)
                .await
                .expect("departments")
                .iter()
                .any(|d| d.id == id)
        }
    };
    // A user put into the department while it is deleted.
    let d = w
        .crm
        .create_department(&w.admin, "临时一部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let (o, admin, user) = (other.clone(), w.admin.clone(), newcomer("linshi1", d));
    hooked.before_write(Table::Departments, async move {
        o.create_user(&admin, user).await.expect("user meanwhile");
    });
    invalid_state(
        w.crm.delete_department(&w.admin, d).await,
        "still has users",
    );
    assert!(live(&w, d).await);
    // A sub-department created in it meanwhile.
    let d = w
        .crm
        .create_department(&w.admin, "临时二部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::Departments, async move {
        o.create_department(&admin, "临时二部一组", Some(d))
            .await
            .expect("sub-department meanwhile");
    });
    invalid_state(
        w.crm.delete_department(&w.admin, d).await,
        "still has sub-departments",
    );
    assert!(live(&w, d).await);
    // The department deleted while a user is created in it.
    let d = w
        .crm
        .create_department(&w.admin, "临时三部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::Users, async move {
        o.delete_department(&admin, d)
            .await
            .expect("deleted meanwhile");
    });
    invalid_state(
        w.crm.create_user(&w.admin, newcomer("linshi3", d)).await,
        "deleted meanwhile",
    );
    assert!(w.crm.user_by_username(&w.admin, "linshi3").await.is_err());
    // ... or moved into it, or a sub-department created in it.
    let d = w
        .crm
        .create_department(&w.admin, "临时四部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::Users, async move {
        o.delete_department(&admin, d)
            .await
            .expect("deleted meanwhile");
    });
    let zs = w.crm.user(&w.admin, w.zhangsan.user_id).await.expect("zs");
    invalid_state(
        w.crm
            .update_user(
                &w.admin,
                zs.id,
                zs.version,
                UserPatch {
                    department_id: Some(Some(d)),
                    ..UserPatch::default()
                },
            )
            .await,
        "deleted meanwhile",
    );
    let d = w
        .crm
        .create_department(&w.admin, "临时五部", Some(w.sales))
        .await
        .expect("dept")
        .id;
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::Departments, async move {
        o.delete_department(&admin, d)
            .await
            .expect("deleted meanwhile");
    });
    invalid_state(
        w.crm
            .create_department(&w.admin, "临时五部一组", Some(d))
            .await,
        "deleted meanwhile",
    );
    assert!(
        w.crm
            .list_departments(&w.admin)
            .await
            .expect("departments")
            .iter()
            .all(|x| x.parent_id != Some(d)),
        "nothing below a deleted department"
    );
    // Two departments moved below each other at once: the second is
    // refused, and the tree keeps its root. Moves elsewhere and renames of
    // the departments above do not get in each other's way.
    let a = w
        .crm
        .create_department(&w.admin, "甲部", Some(w.sales))
        .await
        .expect("dept");
    let b = w
        .crm
        .create_department(&w.admin, "乙部", Some(w.sales))
        .await
        .expect("dept");
    let c = w
        .crm
        .create_department(&w.admin, "丙部", Some(b.id))
        .await
        .expect("dept");
    let (o, admin, bv) = (other.clone(), w.admin.clone(), b.version);
    let (a_id, b_id) = (a.id, b.id);
    hooked.before_write(Table::Departments, async move {
        o.update_department(&admin, b_id, bv, None, Some(Some(a_id)))
            .await
            .expect("乙 below 甲 meanwhile");
    });
    // 甲 below 丙, which lies below 乙: a cycle once 乙 is below 甲.
    let cycle = w
        .crm
        .update_department(&w.admin, a.id, a.version, None, Some(Some(c.id)))
        .await;
    invalid_state(cycle, "was moved meanwhile");
    assert_eq!(department(&w, a.id).await.parent_id, Some(w.sales));
    assert_eq!(department(&w, b.id).await.parent_id, Some(a.id));
    // Read again, the move is refused as what it is.
    let a = department(&w, a.id).await;
    let again = w
        .crm
        .update_department(&w.admin, a.id, a.version, None, Some(Some(c.id)))
        .await;
    assert!(
        matches!(&again, Err(Error::Validation(e)) if e.to_string().contains("cannot move below itself")),
        "{again:?}"
    );
    // A move writes nothing above its new parent: the department it moves
    // under is renamed afterwards at the version read before.
    let sales = department(&w, w.sales).await;
    let c = department(&w, c.id).await;
    w.crm
        .update_department(&w.admin, c.id, c.version, None, Some(Some(w.sales)))
        .await
        .expect("move below 销售部");
    w.crm
        .update_department(&w.admin, w.sales, sales.version, Some("销售总部"), None)
        .await
        .expect("rename at the version read before the move");
}

/// A role is deleted only when no user holds it (active or not) and no
/// active approval flow names it; the refusal says who or what. Both hold
/// against a user given the role, or a flow naming it, while it is
/// deleted, and the reverse: a role deleted while given to a user or named
/// in a flow fails that write. Only rights the deleter holds go; versions
/// are checked. A user still holding a role an older build deleted can be
/// edited. User groups delete likewise.
pub async fn roles_and_groups_are_deleted_only_when_nothing_holds_them(store: Arc<dyn Store>) {
    use crate::approval::{ApproverRule, FlowDef, StepDef};
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store.clone(), w.clock.clone());
    let role = w
        .crm
        .create_role(
            &w.admin,
            spec("临时角色", false, &["customer:read:own"], &[]),
        )
        .await
        .expect("role");
    let user = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "linshi".into(),
                display_name: "临时工".into(),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let current = |w: &World, name: &'static str| {
        let (crm, admin) = (w.crm.clone(), w.admin.clone());
        async move { crm.resolve_role(&admin, name).await }
    };
    // Held: refused, naming the holder; a deactivated holder still holds it.
    invalid_state(
        w.crm.delete_role(&w.admin, role.id, role.version).await,
        "still held by 1 user (linshi)",
    );
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .expect("deactivate");
    invalid_state(
        w.crm.delete_role(&w.admin, role.id, role.version).await,
        "take it from them first",
    );
    // Only within the deleter's own rights.
    let manager = staff(&w, "jsgl", None, grants(&["role:manage:all"]), &[]).await;
    forbidden(
        w.crm.delete_role(&manager, role.id, role.version).await,
        "may not delete role '临时角色'",
    );
    forbidden(
        w.crm.delete_role(&w.zhangsan, role.id, role.version).await,
        "may not manage roles",
    );
    // Named by an active approval flow's step (defined while it had an
    // active member): refused, naming the flow.
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                active: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .expect("activate");
    let by = |approvers: ApproverRule| FlowDef {
        steps: vec![StepDef {
            name: "审批".into(),
            conditions: Vec::new(),
            approvers,
            mode: Default::default(),
            fallback: Default::default(),
        }],
        restart: Default::default(),
    };
    let by_role = by(ApproverRule::Role { role_id: role.id.0 });
    w.crm
        .define_approval_flow(&w.admin, "leave_request", "请假审批", by_role.clone())
        .await
        .expect("flow by the role");
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                role_ids: Some(Vec::new()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("take the role");
    invalid_state(
        w.crm.delete_role(&w.admin, role.id, role.version).await,
        "is an approver in the approval flow '请假审批' (leave_request)",
    );
    let by_lisi = by(ApproverRule::Users {
        users: vec![w.lisi.user_id.0],
    });
    w.crm
        .define_approval_flow(&w.admin, "leave_request", "请假审批", by_lisi.clone())
        .await
        .expect("flow by a user; the one by the role is kept inactive");
    // Given to a user while it is deleted: the deletion fails.
    let (o, admin, uid, ver) = (other.clone(), w.admin.clone(), user.id, user.version);
    let rid = role.id;
    hooked.before_write(Table::Roles, async move {
        o.update_user(
            &admin,
            uid,
            ver,
            UserPatch {
                role_ids: Some(vec![rid]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("given meanwhile");
    });
    invalid_state(
        w.crm.delete_role(&w.admin, role.id, role.version).await,
        "given to a user meanwhile",
    );
    assert!(current(&w, "临时角色").await.is_ok(), "kept");
    // Named in a flow while it is deleted (given, named, taken back).
    let user = w.crm.user(&w.admin, user.id).await.expect("user");
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                role_ids: Some(Vec::new()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("taken");
    let (o, admin, uid) = (other.clone(), w.admin.clone(), user.id);
    let flow = by_role.clone();
    hooked.before_write(Table::Roles, async move {
        let set = |roles: Vec<crate::ids::RoleId>| {
            let (o, admin) = (o.clone(), admin.clone());
            async move {
                let u = o.user(&admin, uid).await.expect("user");
                o.update_user(
                    &admin,
                    uid,
                    u.version,
                    UserPatch {
                        role_ids: Some(roles),
                        ..UserPatch::default()
                    },
                )
                .await
                .expect("roles meanwhile");
            }
        };
        set(vec![rid]).await;
        o.define_approval_flow(&admin, "leave_request", "请假审批", flow)
            .await
            .expect("named meanwhile");
        set(Vec::new()).await;
    });
    invalid_state(
        w.crm.delete_role(&w.admin, role.id, role.version).await,
        "named in an approval flow meanwhile",
    );
    // Deleted while a flow names it: the flow fails and the role goes.
    let user = w.crm.user(&w.admin, user.id).await.expect("user");
    assert!(user.role_ids.is_empty());
    w.crm
        .define_approval_flow(&w.admin, "leave_request", "请假审批", by_lisi.clone())
        .await
        .expect("flow by a user again");
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                role_ids: Some(vec![role.id]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("given again");
    let (o, admin, uid, ver, rid) = (
        other.clone(),
        w.admin.clone(),
        user.id,
        user.version,
        role.id,
    );
    hooked.before_write(Table::ApprovalFlows, async move {
        o.update_user(
            &admin,
            uid,
            ver,
            UserPatch {
                role_ids: Some(Vec::new()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("taken meanwhile");
        let r = o
            .resolve_role(&admin, &rid.to_string())
            .await
            .expect("role");
        o.delete_role(&admin, rid, r.version)
            .await
            .expect("deleted meanwhile");
    });
    invalid_state(
        w.crm
            .define_approval_flow(&w.admin, "leave_request", "请假审批", by_role.clone())
            .await,
        "role '临时角色' was deleted meanwhile",
    );
    let flow = w
        .crm
        .approval_flow(&w.admin, "leave_request")
        .await
        .expect("flow")
        .expect("active flow");
    assert_eq!(flow.definition, by_lisi, "the flow by the user stays");
    assert!(matches!(
        current(&w, "临时角色").await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        w.crm
            .list_roles(&w.admin)
            .await
            .expect("roles")
            .iter()
            .all(|r| r.id != role.id)
    );
    // A deleted role cannot be given.
    let user = w.crm.user(&w.admin, user.id).await.expect("user");
    let given = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                role_ids: Some(vec![role.id]),
                ..UserPatch::default()
            },
        )
        .await;
    assert!(matches!(given, Err(Error::NotFound { .. })), "{given:?}");

    // Deleted while given to a new user: the user is not created.
    let doomed = w
        .crm
        .create_role(&w.admin, spec("短命角色", false, &[], &[]))
        .await
        .expect("role");
    let (o, admin, rid, ver) = (other.clone(), w.admin.clone(), doomed.id, doomed.version);
    hooked.before_write(Table::Users, async move {
        o.delete_role(&admin, rid, ver)
            .await
            .expect("deleted meanwhile");
    });
    invalid_state(
        w.crm
            .create_user(
                &w.admin,
                NewUser {
                    username: "duanming".into(),
                    display_name: "短命".into(),
                    role_ids: vec![doomed.id],
                    ..NewUser::default()
                },
            )
            .await,
        "role '短命角色' was deleted meanwhile",
    );
    assert!(w.crm.user_by_username(&w.admin, "duanming").await.is_err());

    // Versions are checked.
    let spare = w
        .crm
        .create_role(&w.admin, spec("备用角色", false, &[], &[]))
        .await
        .expect("role");
    let renamed = w
        .crm
        .update_role(
            &w.admin,
            spare.id,
            spare.version,
            spec("备用角色二", false, &[], &[]),
        )
        .await
        .expect("rename");
    let stale = w.crm.delete_role(&w.admin, spare.id, spare.version).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    w.crm
        .delete_role(&w.admin, renamed.id, renamed.version)
        .await
        .expect("delete");

    // A role an older build deleted while still held grants nothing and
    // does not stop the holder being edited or acting.
    let old = w
        .crm
        .create_role(&w.admin, spec("旧角色", false, &["customer:read:all"], &[]))
        .await
        .expect("role");
    let user = w.crm.user(&w.admin, user.id).await.expect("user");
    let user = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                role_ids: Some(vec![old.id]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("given");
    store
        .apply(&crate::store::ChangeSet {
            ops: vec![crate::store::Op::Update {
                table: Table::Roles,
                id: old.id.0,
                expected_version: old.version,
                values: vec![(
                    "deleted_at",
                    crate::value::Value::Timestamp(crate::clock::Clock::now(&*w.clock)),
                )],
            }],
            ..Default::default()
        })
        .await
        .expect("deleted as an older build did");
    let edited = w
        .crm
        .update_user(
            &w.admin,
            user.id,
            user.version,
            UserPatch {
                display_name: Some("临时工二".into()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("edit past a deleted role");
    assert_eq!(edited.display_name, "临时工二");
    let acting = w.crm.actor(user.id).await.expect("actor");
    assert!(!acting.can(Entity::Customer, Action::Read));

    // User groups.
    let group = w
        .crm
        .create_group(&w.admin, "临时组", &[w.zhangsan.user_id])
        .await
        .expect("group");
    forbidden(
        w.crm
            .delete_group(&w.zhangsan, group.id, group.version)
            .await,
        "may not manage user_groups",
    );
    let moved = w
        .crm
        .set_group_members(&w.admin, group.id, group.version, &[w.lisi.user_id])
        .await
        .expect("members");
    let stale = w.crm.delete_group(&w.admin, group.id, group.version).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    w.crm
        .delete_group(&w.admin, group.id, moved.version)
        .await
        .expect("delete group");
    assert!(
        w.crm
            .list_groups(&w.admin)
            .await
            .expect("groups")
            .iter()
            .all(|g| g.id != group.id)
    );
    let gone = w
        .crm
        .set_group_members(&w.admin, group.id, moved.version + 1, &[])
        .await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    // Who deleted what stays in the history.
    let actions = |h: Vec<crate::store::AuditEntry>| -> Vec<String> {
        h.into_iter().map(|e| e.action).collect()
    };
    let history = w
        .crm
        .history(&w.admin, Entity::UserGroup, group.id.0)
        .await
        .expect("group history");
    assert_eq!(actions(history), ["create", "update", "delete"]);
    let history = w
        .crm
        .history(&w.admin, Entity::Role, role.id.0)
        .await
        .expect("role history");
    let last = history.last().expect("entries");
    assert_eq!(last.action, "delete");
    assert_eq!(last.changes[0].before["name"], "临时角色");
    forbidden(
        w.crm.history(&w.zhangsan, Entity::Role, role.id.0).await,
        "may not read the history",
    );
}

/// A custom field definition of `entity` for the scenarios below.
fn custom_def(
    entity: Entity,
    key: &str,
    field_type: CustomFieldType,
    required: bool,
    unique: bool,
) -> NewCustomField {
    NewCustomField {
        entity,
        key: key.into(),
        label: key.into(),
        label_en: None,
        field_type,
        options: Vec::new(),
        required,
        unique,
    }
}

/// Two custom fields of one entity never share a label, even when defined
/// at once; a unique field over a deleted field's key is refused while live
/// records hold one of its values twice (naming them), and accepted once
/// they do not.
pub async fn custom_field_labels_and_unique_keys_hold(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let labelled = |key: &str, label: &str| NewCustomField {
        label: label.into(),
        ..custom_def(Entity::Customer, key, CustomFieldType::Text, false, false)
    };
    let (o, admin, def) = (other.clone(), w.admin.clone(), labelled("region_a", "区域"));
    hooked.before_write(Table::CustomFields, async move {
        o.define_custom_field(&admin, def)
            .await
            .expect("defined meanwhile");
    });
    let late = w
        .crm
        .define_custom_field(&w.admin, labelled("region_b", "区域"))
        .await;
    match &late {
        Err(Error::Duplicate { message, .. }) => {
            assert!(message.contains("labelled '区域' meanwhile"), "{message}")
        }
        other => panic!("expected a duplicate label, got {other:?}"),
    }
    let defs = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields");
    assert_eq!(
        defs.iter().filter(|d| d.label == "区域").count(),
        1,
        "{defs:?}"
    );
    // A label is no other field's key, nor a key another field's label
    // (keys head the English columns).
    w.crm
        .define_custom_field(&w.admin, labelled("alpha", "beta"))
        .await
        .expect("an ASCII label");
    for (key, label) in [("delta", "region_a"), ("beta", "贝塔")] {
        match w
            .crm
            .define_custom_field(&w.admin, labelled(key, label))
            .await
        {
            Err(Error::Duplicate { message, .. }) => {
                assert!(message.contains("may not name another field"), "{message}")
            }
            other => panic!("{key}/{label}: {other:?}"),
        }
    }
    // A yes/no field is not unique.
    match w
        .crm
        .define_custom_field(
            &w.admin,
            custom_def(
                Entity::Customer,
                "vip_flag",
                CustomFieldType::Boolean,
                false,
                true,
            ),
        )
        .await
    {
        Err(Error::Validation(e)) => assert!(e.to_string().contains("cannot be unique"), "{e}"),
        other => panic!("a unique yes/no field: {other:?}"),
    }
    // Values stay when their field is deleted.
    let badge = w
        .crm
        .define_custom_field(&w.admin, labelled("badge", "工牌号"))
        .await
        .expect("field");
    let first = w
        .customer(&w.admin, "工牌一号有限公司", json!({"badge": "A-001"}))
        .await;
    let second = w
        .customer(&w.admin, "工牌二号有限公司", json!({"badge": "A-001"}))
        .await;
    w.crm
        .delete_custom_field(&w.admin, badge.id, badge.version)
        .await
        .expect("delete field");
    let unique = NewCustomField {
        unique: true,
        ..labelled("badge", "工牌号")
    };
    let refused = w.crm.define_custom_field(&w.admin, unique.clone()).await;
    match &refused {
        Err(Error::Validation(e)) => {
            let m = e.to_string();
            assert!(
                m.contains(first.code.as_deref().expect("code"))
                    && m.contains(second.code.as_deref().expect("code"))
                    && m.contains("'A-001'"),
                "{m}"
            );
        }
        other => panic!("expected a refusal naming both records, got {other:?}"),
    }
    // Not unique, it comes back; once the values differ, unique too.
    let badge = w
        .crm
        .define_custom_field(&w.admin, labelled("badge", "工牌号"))
        .await
        .expect("not unique");
    let r = w
        .crm
        .get_record(&w.admin, Entity::Customer, second.id)
        .await
        .expect("record");
    let mut f = fields(json!({"badge": "A-002"}));
    f.insert("name".into(), json!("工牌二号有限公司"));
    w.crm
        .update_record(&w.admin, Entity::Customer, second.id, r.version, f)
        .await
        .expect("change one");
    w.crm
        .delete_custom_field(&w.admin, badge.id, badge.version)
        .await
        .expect("delete field");
    let def = w
        .crm
        .define_custom_field(&w.admin, unique)
        .await
        .expect("unique now");
    assert!(def.unique);
}

/// Masked custom fields never show their value: yes/no, number and money
/// values read `***`, text is masked, in records and in exports (straight
/// from the store and through a search).
pub async fn masked_custom_values_never_show_the_value(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for (key, t) in [
        ("listed", CustomFieldType::Boolean),
        ("budget", CustomFieldType::Money),
        ("employees", CustomFieldType::Number),
        ("remark", CustomFieldType::Text),
    ] {
        w.crm
            .define_custom_field(&w.admin, custom_def(Entity::Customer, key, t, false, false))
            .await
            .expect("custom field");
    }
    let c = w
        .customer(
            &w.admin,
            "遮蔽自定义有限公司",
            json!({"listed": "是", "budget": "12345.67", "employees": 250, "remark": "重要客户备注"}),
        )
        .await;
    assert_eq!(c.custom["budget"], json!(1234567));
    let rules = [
        "customer.custom.listed=masked",
        "customer.custom.budget=masked",
        "customer.custom.employees=masked",
        "customer.custom.remark=masked",
    ];
    let kefu = staff(&w, "kefu", None, perms(DataScope::All), &rules).await;
    let seen = w
        .crm
        .get_record(&kefu, Entity::Customer, c.id)
        .await
        .expect("get");
    assert_eq!(seen.custom["listed"], json!("***"));
    assert_eq!(seen.custom["budget"], json!("***"));
    assert_eq!(seen.custom["employees"], json!("***"));
    let remark = seen.custom["remark"].as_str().expect("masked text");
    assert!(remark.contains('*') && remark != "重要客户备注", "{remark}");
    let picks: Vec<String> = ["custom.listed", "custom.budget", "custom.employees"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for query in [ListQuery::default(), ListQuery::default().search("遮蔽")] {
        let columns = w
            .crm
            .export_columns(&kefu, Entity::Customer, &picks)
            .await
            .expect("columns");
        let mut cursor = w
            .crm
            .export_cursor(&kefu, Entity::Customer, query, columns, 100)
            .await
            .expect("cursor");
        let mut rows = Vec::new();
        while let Some(page) = cursor.next_page().await.expect("page") {
            rows.extend(page);
        }
        assert_eq!(rows.len(), 1);
        for v in &rows[0] {
            assert_eq!(v, &ExportValue::Text("***".into()));
        }
    }
}

/// Money custom fields are filtered in yuan (stored in fen): `>=`, `=`,
/// `in` and the `¥1,234.56` form all compare amounts.
pub async fn money_custom_filters_compare_in_yuan(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            custom_def(
                Entity::Customer,
                "budget",
                CustomFieldType::Money,
                false,
                false,
            ),
        )
        .await
        .expect("money");
    w.customer(&w.admin, "大预算有限公司", json!({"budget": "¥12,345.67"}))
        .await;
    w.customer(&w.admin, "百元预算有限公司", json!({"budget": "100"}))
        .await;
    w.customer(&w.admin, "五十预算有限公司", json!({"budget": 50}))
        .await;
    let q = |c: Cond| ListQuery::default().filter(c);
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Ge("budget".into(), json!(10000)))).await,
        set(&["大预算有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Ge("budget".into(), json!("100")))).await,
        set(&["大预算有限公司", "百元预算有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Eq("budget".into(), json!("12345.67")))
        )
        .await,
        set(&["大预算有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::Eq("custom.budget".into(), json!("¥12,345.67")))
        )
        .await,
        set(&["大预算有限公司"])
    );
    assert_eq!(
        names_for(&w, &w.admin, q(Cond::Lt("budget".into(), json!(100.5)))).await,
        set(&["百元预算有限公司", "五十预算有限公司"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            q(Cond::In(
                "budget".into(),
                vec![json!("50"), json!("¥100.00")]
            ))
        )
        .await,
        set(&["百元预算有限公司", "五十预算有限公司"])
    );
    assert!(
        w.crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &q(Cond::Eq("budget".into(), json!("很多")))
            )
            .await
            .is_err()
    );
}

/// Contacts created together with their customer get the checks of a
/// plain contact create: required and unique custom fields, one mobile per
/// customer (among each other too) and another owner only with the
/// transfer right. Nothing is created when one contact is refused.
pub async fn contacts_with_their_customer_are_checked(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            custom_def(Entity::Contact, "post", CustomFieldType::Text, true, false),
        )
        .await
        .expect("required");
    w.crm
        .define_custom_field(
            &w.admin,
            custom_def(Entity::Contact, "badge", CustomFieldType::Text, false, true),
        )
        .await
        .expect("unique");
    let old = w.customer(&w.admin, "老客户有限公司", json!({})).await;
    w.crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({"customer_id": old.id.to_string(), "name": "老联系人", "post": "经理", "badge": "B1"})),
        )
        .await
        .expect("plain contact");
    let create = |actor: &Actor, contacts: Vec<Json>| {
        let actor = actor.clone();
        let crm = &w.crm;
        async move {
            crm.create_customer_with_contacts(
                &actor,
                fields(json!({"name": "新客户有限公司"})),
                contacts.into_iter().map(fields).collect(),
            )
            .await
        }
    };
    let err = create(&w.admin, vec![json!({"name": "甲"})])
        .await
        .expect_err("required custom");
    assert!(err.to_string().contains("custom.post"), "{err}");
    let err = create(
        &w.admin,
        vec![json!({"name": "甲", "post": "采购", "badge": "B1"})],
    )
    .await
    .expect_err("unique custom against stored contacts");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let err = create(
        &w.admin,
        vec![
            json!({"name": "甲", "post": "采购", "badge": "B2"}),
            json!({"name": "乙", "post": "财务", "badge": "B2"}),
        ],
    )
    .await
    .expect_err("unique custom among each other");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let err = create(
        &w.admin,
        vec![
            json!({"name": "甲", "post": "采购", "mobile": "13812345678"}),
            json!({"name": "乙", "post": "财务", "mobile": "138-1234-5678"}),
        ],
    )
    .await
    .expect_err("same mobile twice");
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    let seller = staff(
        &w,
        "xiaoshou",
        Some(w.group1),
        grants(&[
            "customer:create:own",
            "customer:read:own",
            "contact:create:own",
            "contact:read:own",
        ]),
        &[],
    )
    .await;
    forbidden(
        create(
            &seller,
            vec![json!({"name": "甲", "post": "采购", "owner": "wangwu"})],
        )
        .await,
        "another owner",
    );
    assert!(
        names_for(&w, &w.admin, ListQuery::default().search("新客户"))
            .await
            .is_empty(),
        "nothing is created when a contact is refused"
    );
    let c = create(
        &seller,
        vec![
            json!({"name": "甲", "post": "采购", "mobile": "13812345678", "badge": "B2"}),
            json!({"name": "乙", "post": "财务", "mobile": "13912345678", "badge": "B3"}),
        ],
    )
    .await
    .expect("valid contacts");
    let contacts = w
        .crm
        .list_records(
            &w.admin,
            Entity::Contact,
            &ListQuery::default().filter(Cond::Eq("customer_id".into(), json!(c.id.to_string()))),
        )
        .await
        .expect("contacts");
    assert_eq!(contacts.items.len(), 2);
    // Each contact's history starts with what it was created with.
    for contact in &contacts.items {
        let history = w
            .crm
            .history(&w.admin, Entity::Contact, contact.id.0)
            .await
            .expect("history");
        assert!(
            history[0].action == "create" && history[0].changes.iter().any(|c| c.field == "name"),
            "{history:#?}"
        );
    }
}

/// Only the latest follow-up sets the customer's next follow-up date; a
/// follow-up's contact cannot be changed to another customer's contact.
pub async fn back_dated_follow_ups_keep_the_next_follow_up(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "回补跟进有限公司", json!({})).await;
    let other = w.customer(&w.zhangsan, "别家有限公司", json!({})).await;
    let contact = |customer: RecordId, name: &str| {
        let crm = &w.crm;
        let actor = w.zhangsan.clone();
        let f = fields(json!({"customer_id": customer.to_string(), "name": name}));
        async move {
            crm.create_record(&actor, Entity::Contact, f)
                .await
                .expect("contact")
        }
    };
    let mine = contact(c.id, "本家联系人").await;
    let mine2 = contact(c.id, "本家二号").await;
    let theirs = contact(other.id, "别家联系人").await;
    let follow = |occurred: &str, next: &str| {
        let crm = &w.crm;
        let actor = w.zhangsan.clone();
        let f = fields(
            json!({"customer_id": c.id.to_string(), "contact_id": mine.id.to_string(), "channel": "call", "content": "沟通", "occurred_at": occurred, "next_follow_up_at": next}),
        );
        async move {
            crm.create_record(&actor, Entity::FollowUp, f)
                .await
                .expect("follow-up")
        }
    };
    let next = || {
        let crm = &w.crm;
        let actor = w.zhangsan.clone();
        let id = c.id;
        async move {
            crm.get_record(&actor, Entity::Customer, id)
                .await
                .expect("customer")
                .text("next_follow_up")
                .map(str::to_string)
        }
    };
    let f = follow("2026-11-27 09:30", "2026-12-03 10:00").await;
    assert_eq!(next().await.as_deref(), Some("2026-12-03"));
    follow("2026-11-20 09:00", "2026-11-22 10:00").await;
    assert_eq!(next().await.as_deref(), Some("2026-12-03"));
    follow("2026-11-27 09:45", "2026-12-10 10:00").await;
    assert_eq!(next().await.as_deref(), Some("2026-12-10"));
    let err = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            f.version,
            fields(json!({"contact_id": theirs.id.to_string()})),
        )
        .await
        .expect_err("contact of another customer");
    assert!(err.to_string().contains("another customer"), "{err}");
    let moved = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::FollowUp,
            f.id,
            f.version,
            fields(json!({"contact_id": mine2.id.to_string()})),
        )
        .await
        .expect("contact of the same customer");
    assert_eq!(
        moved.text("contact_id"),
        Some(mine2.id.to_string().as_str())
    );
}

/// A follow-up may be dated at most a day ahead: one dated years ahead
/// would become the customer's last follow-up and keep it from recycling
/// until then. The refusal names the field and the time; the customer is
/// left alone.
pub async fn follow_ups_are_dated_at_most_a_day_ahead(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w.customer(&w.zhangsan, "远期跟进有限公司", json!({})).await;
    let follow = |occurred: &str| {
        let crm = &w.crm;
        let actor = w.zhangsan.clone();
        let f = fields(json!({
            "customer_id": c.id.to_string(),
            "channel": "call",
            "content": "沟通",
            "occurred_at": occurred,
        }));
        async move { crm.create_record(&actor, Entity::FollowUp, f).await }
    };
    let last = || {
        let store = w.crm.store();
        let id = c.id;
        async move {
            store
                .get(Table::Customers, id.0)
                .await
                .expect("get")
                .expect("customer")
                .get("last_follow_up_at")
                .as_timestamp()
        }
    };
    // The World starts at 2026-11-27T02:00:00Z; refusals show local time
    // (UTC+8).
    for (far, shown) in [
        ("2046-01-01T00:00:00Z", "2046-01-01 08:00:00"),
        ("2026-11-28T02:00:01Z", "2026-11-28 10:00:01"),
    ] {
        let err = follow(far).await.expect_err("too far ahead");
        let Error::Validation(v) = &err else {
            panic!("expected validation, got {err:?}")
        };
        assert_eq!(v.0.len(), 1, "{v:?}");
        assert!(
            v.0[0].field.contains("occurred_at") && v.0[0].field.contains("跟进时间"),
            "{v:?}"
        );
        assert!(v.0[0].message.contains(shown), "{v:?}");
        assert_eq!(last().await, None, "the customer is left alone");
    }
    follow("2026-11-28T02:00:00Z")
        .await
        .expect("a day ahead is allowed");
    assert_eq!(
        last().await,
        Some("2026-11-28T02:00:00Z".parse().expect("time"))
    );
    follow("2020-01-01T00:00:00Z")
        .await
        .expect("back-dated is allowed");
}

/// An offset page far past the end (page numbers up to `u64::MAX`, any page
/// size) is empty, never an overflow.
pub async fn huge_page_numbers_give_empty_pages(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.customer(&w.zhangsan, "翻页有限公司", json!({})).await;
    for (page, per_page) in [(u64::MAX, 1000), (u64::MAX, u64::MAX), (u64::MAX / 2, 3)] {
        let got = w
            .crm
            .list_records(
                &w.admin,
                Entity::Customer,
                &ListQuery::default()
                    .page(PageRequest::Offset { page, per_page })
                    .with_total(),
            )
            .await
            .expect("list");
        assert!(got.items.is_empty(), "page {page}: {:?}", got.items.len());
        assert!(!got.has_more);
        assert_eq!(got.total, Some(1));
    }
}

/// A duplicate refusal saying `says`.
#[track_caller]
fn duplicate<T: std::fmt::Debug>(result: Result<T, Error>, says: &str) {
    match result {
        Err(Error::Duplicate { message, .. }) => {
            assert!(message.contains(says), "{message} (expected '{says}')")
        }
        other => panic!("expected a duplicate refusal saying '{says}', got {other:?}"),
    }
}

/// A validation refusal saying `says`.
#[track_caller]
fn invalid<T: std::fmt::Debug>(result: &Result<T, Error>, says: &str) {
    match result {
        Err(Error::Validation(e)) => {
            let m = e.to_string();
            assert!(m.contains(says), "{m} (expected '{says}')")
        }
        other => panic!("expected a validation refusal saying '{says}', got {other:?}"),
    }
}

/// Roles and user groups are named uniquely in the company, departments
/// among their siblings, letter case and spaces aside, on creation and on
/// renaming (or moving); two creations of one name at once do not both
/// pass. A name several share (two departments under different parents,
/// or roles and groups kept from before names were checked) is refused
/// when resolved, naming each by id, never resolved to the first.
pub async fn org_names_are_unique_and_resolved_unambiguously(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store.clone(), w.clock.clone());
    // Roles.
    let temp = w
        .crm
        .create_role(
            &w.admin,
            spec("临时角色", false, &["customer:read:own"], &[]),
        )
        .await
        .expect("role");
    duplicate(
        w.crm
            .create_role(&w.admin, spec(" 临时角色 ", false, &[], &[]))
            .await,
        "'临时角色' is already taken",
    );
    let intern = w
        .crm
        .create_role(&w.admin, spec("Intern", false, &[], &[]))
        .await
        .expect("role");
    duplicate(
        w.crm
            .create_role(&w.admin, spec("intern", false, &[], &[]))
            .await,
        "(as 'Intern')",
    );
    // Full-width letters are their ASCII twins.
    duplicate(
        w.crm
            .create_role(&w.admin, spec("Ｉｎｔｅｒｎ", false, &[], &[]))
            .await,
        "(as 'Intern')",
    );
    duplicate(
        w.crm
            .update_role(
                &w.admin,
                temp.id,
                temp.version,
                spec("INTERN", false, &["customer:read:own"], &[]),
            )
            .await,
        "already taken",
    );
    // Its own name, kept or recased, is no clash.
    let intern = w
        .crm
        .update_role(
            &w.admin,
            intern.id,
            intern.version,
            spec("Intern", false, &["customer:read:own"], &[]),
        )
        .await
        .expect("kept its name");
    w.crm
        .update_role(
            &w.admin,
            intern.id,
            intern.version,
            spec("INTERN", false, &[], &[]),
        )
        .await
        .expect("recased its own name");
    let roles = w.crm.list_roles(&w.admin).await.expect("roles");
    assert_eq!(roles.iter().filter(|r| r.name == "临时角色").count(), 1);
    // Groups.
    w.crm
        .create_group(&w.admin, "重点客户攻坚组", &[w.zhangsan.user_id])
        .await
        .expect("group");
    duplicate(
        w.crm
            .create_group(&w.admin, "重点客户攻坚组", &[w.wangwu.user_id])
            .await,
        "'重点客户攻坚组' is already taken",
    );
    // Departments: among siblings.
    let north = w
        .crm
        .create_department(&w.admin, "华北大区", Some(w.sales))
        .await
        .expect("dept");
    duplicate(
        w.crm
            .create_department(&w.admin, "华北大区", Some(w.sales))
            .await,
        "department '销售部' already has a sub-department named '华北大区'",
    );
    let north2 = w
        .crm
        .create_department(&w.admin, "华北大区", Some(w.group1))
        .await
        .expect("the same name under another parent");
    duplicate(
        w.crm
            .update_department(
                &w.admin,
                north2.id,
                north2.version,
                None,
                Some(Some(w.sales)),
            )
            .await,
        "already has a sub-department named '华北大区'",
    );
    let g2 = department(&w, w.group2).await;
    duplicate(
        w.crm
            .update_department(&w.admin, g2.id, g2.version, Some("销售一组"), None)
            .await,
        "named '销售一组'",
    );
    let d = department(&w, w.group1).await;
    w.crm
        .update_department(&w.admin, d.id, d.version, Some("销售一组"), None)
        .await
        .expect("its own name is no clash");
    // Two departments of one name: resolving the name is refused, naming
    // both; either is found by id.
    let refusal = w.crm.resolve_department(&w.admin, "华北大区").await;
    invalid(&refusal, "names 2 departments");
    for part in [
        format!("under 销售部 (id {})", north.id),
        format!("under 销售一组 (id {})", north2.id),
    ] {
        invalid(&refusal, &part);
    }
    assert_eq!(
        w.crm
            .resolve_department(&w.admin, &north2.id.to_string())
            .await
            .expect("by id")
            .id,
        north2.id
    );
    // Roles and groups named alike before names were checked.
    let legacy = w
        .crm
        .create_role(&w.admin, spec("旧角色", false, &[], &[]))
        .await
        .expect("role");
    let legacy_group = w
        .crm
        .create_group(&w.admin, "旧组", &[])
        .await
        .expect("group");
    let rename = |table: Table, id: uuid::Uuid, version: i64, name: &str| crate::store::ChangeSet {
        ops: vec![crate::store::Op::Update {
            table,
            id,
            expected_version: version,
            values: vec![("name", name.into())],
        }],
        ..crate::store::ChangeSet::default()
    };
    store
        .apply(&rename(
            Table::Roles,
            legacy.id.0,
            legacy.version,
            "临时角色",
        ))
        .await
        .expect("legacy role");
    store
        .apply(&rename(
            Table::UserGroups,
            legacy_group.id.0,
            legacy_group.version,
            "重点客户攻坚组",
        ))
        .await
        .expect("legacy group");
    let refusal = w.crm.resolve_role(&w.admin, "临时角色").await;
    invalid(&refusal, "names 2 roles");
    invalid(&refusal, &temp.id.to_string());
    invalid(&refusal, &legacy.id.to_string());
    let refusal = w.crm.resolve_group(&w.admin, "重点客户攻坚组").await;
    invalid(&refusal, "names 2 user groups");
    invalid(&refusal, &legacy_group.id.to_string());
    assert_eq!(
        w.crm
            .resolve_group(&w.admin, &legacy_group.id.to_string())
            .await
            .expect("by id")
            .id,
        legacy_group.id
    );
    // A legacy duplicate still takes edits that keep its name.
    let temp = w
        .crm
        .resolve_role(&w.admin, &temp.id.to_string())
        .await
        .expect("role");
    w.crm
        .update_role(
            &w.admin,
            temp.id,
            temp.version,
            spec("临时角色", false, &["customer:read:all"], &[]),
        )
        .await
        .expect("edited, name kept");
    // Two creations of one name at once: the second is refused.
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::Roles, async move {
        o.create_role(&admin, spec("并发角色", false, &[], &[]))
            .await
            .expect("role meanwhile");
    });
    duplicate(
        w.crm
            .create_role(&w.admin, spec("并发角色", false, &[], &[]))
            .await,
        "meanwhile",
    );
    let (o, admin) = (other.clone(), w.admin.clone());
    hooked.before_write(Table::UserGroups, async move {
        o.create_group(&admin, "并发组", &[])
            .await
            .expect("group meanwhile");
    });
    duplicate(
        w.crm.create_group(&w.admin, "并发组", &[]).await,
        "meanwhile",
    );
    let (o, admin, sales) = (other.clone(), w.admin.clone(), w.sales);
    hooked.before_write(Table::Departments, async move {
        o.create_department(&admin, "并发部", Some(sales))
            .await
            .expect("department meanwhile");
    });
    duplicate(
        w.crm
            .create_department(&w.admin, "并发部", Some(w.sales))
            .await,
        "meanwhile",
    );
    let roles = w.crm.list_roles(&w.admin).await.expect("roles");
    assert_eq!(roles.iter().filter(|r| r.name == "并发角色").count(), 1);
    let groups = w.crm.list_groups(&w.admin).await.expect("groups");
    assert_eq!(groups.iter().filter(|g| g.name == "并发组").count(), 1);
    let depts = w.crm.list_departments(&w.admin).await.expect("departments");
    assert_eq!(depts.iter().filter(|d| d.name == "并发部").count(), 1);
}

/// A department is deleted only once nothing carries it: records (live,
/// archived or in the recycle bin) are counted, to be transferred first;
/// pools listing it as a member department are named. A pool made to
/// list it while it is deleted fails the deletion.
pub async fn departments_holding_records_or_pools_are_not_deleted(store: Arc<dyn Store>) {
    use crate::pool::PoolSpec;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store.clone(), w.clock.clone());
    let d = w
        .crm
        .create_department(&w.admin, "临时部", Some(w.sales))
        .await
        .expect("dept");
    // Customers put into it by an import naming the department.
    let mut opts = ImportOptions::new(Entity::Customer);
    opts.department = Some("临时部".into());
    let mut s = w
        .crm
        .begin_import(&w.admin, opts, &["客户名称".to_string()])
        .await
        .expect("begin import");
    s.push(&[
        SheetRow {
            number: 2,
            cells: vec![Cell::Text("临时部甲公司".into())],
        },
        SheetRow {
            number: 3,
            cells: vec![Cell::Text("临时部乙公司".into())],
        },
    ])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!(r.created, 2, "{:#?}", r.issues);
    let mut ids = Vec::new();
    for table in [Table::Customers] {
        let mut sel = crate::store::Select::all(
            table,
            w.admin.company_id.0,
            crate::clock::Clock::now(w.clock.as_ref()),
        );
        sel.filter = crate::store::Filter::Cmp(
            crate::store::Col::Column("department_id"),
            crate::store::CmpOp::Eq,
            crate::value::Value::Id(d.id.0),
        );
        ids.extend(
            store
                .select(&sel)
                .await
                .expect("select")
                .rows
                .iter()
                .map(|r| RecordId(r.id())),
        );
    }
    assert_eq!(ids.len(), 2);
    // One of them in the recycle bin still counts.
    let report = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &ids[..1])
        .await;
    assert_eq!(report.done.len(), 1, "{report:?}");
    invalid_state(
        w.crm.delete_department(&w.admin, d.id).await,
        "department '临时部' still holds 2 customers (客户)",
    );
    assert!(
        w.crm
            .list_departments(&w.admin)
            .await
            .expect("departments")
            .iter()
            .any(|x| x.id == d.id)
    );
    // Transferred to an owner elsewhere, they leave it.
    let report = w
        .crm
        .restore_records(&w.admin, Entity::Customer, &ids[..1])
        .await;
    assert_eq!(report.done.len(), 1, "{report:?}");
    let report = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &ids, w.zhangsan.user_id)
        .await
        .expect("transfer");
    assert_eq!(report.done.len(), 2, "{report:?}");
    // A pool whose member departments include it.
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "临时公海".into(),
                admins: vec![w.admin.user_id],
                member_departments: vec![d.id],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool");
    invalid_state(
        w.crm.delete_department(&w.admin, d.id).await,
        "member department of pool 临时公海",
    );
    w.crm
        .update_pool(
            &w.admin,
            pool.id,
            pool.version,
            PoolSpec {
                name: "临时公海".into(),
                admins: vec![w.admin.user_id],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool without it");
    // A pool made to list it while it is deleted.
    let (o, admin, dept) = (other.clone(), w.admin.clone(), d.id);
    hooked.before_write(Table::Departments, async move {
        o.create_pool(
            &admin,
            PoolSpec {
                name: "并发公海".into(),
                admins: vec![admin.user_id],
                member_departments: vec![dept],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool meanwhile");
    });
    invalid_state(
        w.crm.delete_department(&w.admin, d.id).await,
        "member department of a pool meanwhile",
    );
    let pool = w
        .crm
        .resolve_pool(&w.admin, "并发公海")
        .await
        .expect("pool");
    w.crm
        .update_pool(
            &w.admin,
            pool.id,
            pool.version,
            PoolSpec {
                name: "并发公海".into(),
                admins: vec![w.admin.user_id],
                ..PoolSpec::default()
            },
        )
        .await
        .expect("pool without it");
    w.crm
        .delete_department(&w.admin, d.id)
        .await
        .expect("deleted once empty");
}

/// A deactivated user is refused as a new superior (on creation, on an
/// edit, in a user import) and as a new group member, by name; a superior
/// or member deactivated since is kept on edits that keep them. Cycles of
/// superiors and of departments are refused naming who and which, never
/// by id.
pub async fn deactivated_users_lead_nobody_and_cycles_are_named(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // Cycles, named.
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("lisi");
    let refusal = w
        .crm
        .update_user(
            &w.admin,
            lisi.id,
            lisi.version,
            UserPatch {
                superior_id: Some(Some(w.zhangsan.user_id)),
                ..UserPatch::default()
            },
        )
        .await;
    invalid(&refusal, "张三 (zhangsan) already reports to 李四 (lisi)");
    invalid(&refusal, "cycle");
    let message = format!("{refusal:?}");
    assert!(
        !message.contains(&w.zhangsan.user_id.to_string()),
        "{message}"
    );
    let sales = department(&w, w.sales).await;
    let refusal = w
        .crm
        .update_department(
            &w.admin,
            sales.id,
            sales.version,
            None,
            Some(Some(w.group1)),
        )
        .await;
    invalid(
        &refusal,
        "department '销售一组' lies inside department '销售部'",
    );
    let message = format!("{refusal:?}");
    assert!(!message.contains(&w.group1.to_string()), "{message}");
    // A deactivated superior.
    let deactivate = |id: UserId| {
        let (crm, admin) = (w.crm.clone(), w.admin.clone());
        async move {
            let u = crm.user(&admin, id).await.expect("user");
            crm.update_user(
                &admin,
                id,
                u.version,
                UserPatch {
                    active: Some(false),
                    ..UserPatch::default()
                },
            )
            .await
            .expect("deactivated");
        }
    };
    deactivate(w.wangwu.user_id).await;
    let zl = w
        .crm
        .user(&w.admin, w.zhaoliu.user_id)
        .await
        .expect("zhaoliu");
    invalid(
        &w.crm
            .update_user(
                &w.admin,
                zl.id,
                zl.version,
                UserPatch {
                    superior_id: Some(Some(w.wangwu.user_id)),
                    ..UserPatch::default()
                },
            )
            .await,
        "王五 (wangwu) is deactivated",
    );
    invalid(
        &w.crm
            .create_user(
                &w.admin,
                NewUser {
                    username: "xinren".into(),
                    display_name: "新人".into(),
                    superior_id: Some(w.wangwu.user_id),
                    ..NewUser::default()
                },
            )
            .await,
        "a deactivated user cannot be a superior",
    );
    // A superior deactivated since is kept when named again.
    deactivate(w.lisi.user_id).await;
    let zs = w
        .crm
        .user(&w.admin, w.zhangsan.user_id)
        .await
        .expect("zhangsan");
    assert_eq!(zs.superior_id, Some(w.lisi.user_id));
    w.crm
        .update_user(
            &w.admin,
            zs.id,
            zs.version,
            UserPatch {
                superior_id: Some(Some(w.lisi.user_id)),
                display_name: Some("张三丰".into()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("superior kept");
    // Groups: no new deactivated member; one deactivated since stays.
    invalid(
        &w.crm
            .create_group(&w.admin, "攻坚组", &[w.zhaoliu.user_id, w.wangwu.user_id])
            .await,
        "王五 (wangwu) is deactivated",
    );
    let g = w
        .crm
        .create_group(&w.admin, "攻坚组", &[w.zhaoliu.user_id])
        .await
        .expect("group");
    invalid(
        &w.crm
            .set_group_members(
                &w.admin,
                g.id,
                g.version,
                &[w.zhaoliu.user_id, w.wangwu.user_id],
            )
            .await,
        "cannot join a group",
    );
    deactivate(w.zhaoliu.user_id).await;
    let g = w
        .crm
        .set_group_members(
            &w.admin,
            g.id,
            g.version,
            &[w.zhaoliu.user_id, w.zhangsan.user_id],
        )
        .await
        .expect("a member deactivated since stays");
    assert_eq!(g.members.len(), 2);
    // A user import likewise.
    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::User),
            &["用户名".to_string(), "姓名".to_string(), "上级".to_string()],
        )
        .await
        .expect("begin import");
    s.push(&[SheetRow {
        number: 2,
        cells: vec![
            Cell::Text("xinren2".into()),
            Cell::Text("新人二".into()),
            Cell::Text("wangwu".into()),
        ],
    }])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.rejected), (0, 1), "{:#?}", r.issues);
    assert!(
        r.issues[0]
            .message_en
            .contains("王五 (wangwu) is deactivated"),
        "{:#?}",
        r.issues
    );
}

/// A user import takes usernames as `create_user` does, letter case
/// aside: within the file and against the users stored. A user it
/// updates is announced as `update_user` announces one.
pub async fn user_imports_take_usernames_letter_case_aside_and_announce_updates(
    store: Arc<dyn Store>,
) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let import = |policy: crate::import::DuplicatePolicy,
                  rows: Vec<(&'static str, &'static str)>| {
        let (crm, admin) = (w.crm.clone(), w.admin.clone());
        async move {
            let mut o = ImportOptions::new(Entity::User);
            o.policy = policy;
            let mut s = crm
                .begin_import(&admin, o, &["用户名".to_string(), "姓名".to_string()])
                .await
                .expect("begin import");
            let rows: Vec<SheetRow> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (u, n))| SheetRow {
                    number: i as u32 + 2,
                    cells: vec![Cell::Text(u.into()), Cell::Text(n.into())],
                })
                .collect();
            s.push(&rows).await.expect("push");
            s.finish().await.expect("finish")
        }
    };
    use crate::import::DuplicatePolicy;
    let r = import(
        DuplicatePolicy::Skip,
        vec![("newu1", "新用户一"), ("NewU1", "新用户一（重复）")],
    )
    .await;
    assert_eq!((r.created, r.skipped), (1, 1), "{:#?}", r.issues);
    assert_eq!(r.issues[0].row, 3);
    assert_eq!(r.issues[0].kind, IssueKind::DuplicateInFile);
    let kept = w
        .crm
        .user_by_username(&w.admin, "NewU1")
        .await
        .expect("the one user, letter case aside");
    assert_eq!(
        (kept.username.as_str(), kept.display_name.as_str()),
        ("newu1", "新用户一")
    );
    let r = import(DuplicatePolicy::Skip, vec![("ZhangSan", "另一个张三")]).await;
    assert_eq!((r.created, r.skipped), (0, 1), "{:#?}", r.issues);
    assert_eq!(r.issues[0].kind, IssueKind::Duplicate);
    assert!(
        r.issues[0].message_en.contains("(as zhangsan)"),
        "{:#?}",
        r.issues
    );
    // An update is announced.
    let seen = w
        .crm
        .pending_events("org-test", 100_000)
        .await
        .expect("events");
    let last = seen.last().map_or(0, |e| e.seq);
    w.crm.ack_events("org-test", last).await.expect("ack");
    let r = import(DuplicatePolicy::Update, vec![("zhangsan", "张三（导入）")]).await;
    assert_eq!(r.updated, 1, "{:#?}", r.issues);
    let events = w.crm.pending_events("org-test", 100).await.expect("events");
    let updated: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == "user.updated")
        .collect();
    assert_eq!(updated.len(), 1, "{events:#?}");
    assert_eq!(updated[0].event.record_id, w.zhangsan.user_id.0);
    let payload = updated[0].event.payload.to_value();
    assert_eq!(payload["changes"][0]["field"], json!("display_name"));
    assert_eq!(payload["changes"][0]["after"], json!("张三（导入）"));
    assert!(
        payload["changes"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["field"] != json!("pinyin_keys"))),
        "{payload}"
    );
    // One username created twice at once, in two letter cases: the
    // second is refused, by `create_user` as by an import.
    let newcomer = |username: &str| NewUser {
        username: username.into(),
        display_name: "并发".into(),
        ..NewUser::default()
    };
    let (o, admin, user) = (other.clone(), w.admin.clone(), newcomer("bingfa"));
    hooked.before_write(Table::Users, async move {
        o.create_user(&admin, user).await.expect("user meanwhile");
    });
    duplicate(
        w.crm.create_user(&w.admin, newcomer("BingFa")).await,
        "meanwhile",
    );
    let (o, admin, user) = (other.clone(), w.admin.clone(), newcomer("bingfa2"));
    hooked.before_write(Table::Users, async move {
        o.create_user(&admin, user).await.expect("user meanwhile");
    });
    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::User),
            &["用户名".to_string(), "姓名".to_string()],
        )
        .await
        .expect("begin import");
    let pushed = s
        .push(&[SheetRow {
            number: 2,
            cells: vec![Cell::Text("BINGFA2".into()), Cell::Text("并发二".into())],
        }])
        .await;
    let finished = match pushed {
        Ok(_) => s.finish().await.map(|r| r.created),
        Err(e) => Err(e),
    };
    assert!(finished.is_err(), "{finished:?}");
    let users = w
        .crm
        .list_users(&w.admin, Some("bingfa"))
        .await
        .expect("users");
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, vec!["bingfa", "bingfa2"]);
}

/// Departments, roles and user groups created, changed and deleted are
/// announced (`department.created` …), with their names, so that a host
/// mirroring the organisation follows it.
pub async fn organisation_changes_are_announced(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let seen = w
        .crm
        .pending_events("org-mirror", 100_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    let d = w
        .crm
        .create_department(&w.admin, "临时项目组", Some(w.sales))
        .await
        .expect("department");
    let d = w
        .crm
        .update_department(&w.admin, d.id, d.version, Some("项目一组"), None)
        .await
        .expect("renamed");
    w.crm
        .delete_department(&w.admin, d.id)
        .await
        .expect("deleted");
    w.crm
        .create_group(&w.admin, "攻坚组", &[w.zhangsan.user_id])
        .await
        .expect("group");
    let got: Vec<(String, serde_json::Value)> = w
        .crm
        .pending_events("org-mirror", 100_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.seq > seen)
        .map(|e| {
            (
                e.event.event_type.clone(),
                e.event.payload.to_value()["name"].clone(),
            )
        })
        .collect();
    for (kind, name) in [
        ("department.created", "临时项目组"),
        ("department.updated", "项目一组"),
        ("department.deleted", ""),
        ("user_group.created", "攻坚组"),
    ] {
        assert!(
            got.iter()
                .any(|(k, n)| k == kind && (name.is_empty() || n == name)),
            "{kind} {name} in {got:?}"
        );
    }
}

/// Product codes are found and kept unique letter case aside (`cp-7` finds
/// `CP-7`; a product coded `cp-7` beside it is refused, naming the holder
/// as spelled), an exact spelling wins; sibling categories compare their
/// names with full-width letters as their ASCII twins.
pub async fn product_codes_and_category_names_are_compared_as_people_type_them(
    store: Arc<dyn Store>,
) {
    use crate::money::Money;
    use crate::sales::ProductInput;
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let product = |code: &str, name: &str| ProductInput {
        code: Some(code.into()),
        name: Some(name.into()),
        list_price: Some(Money::cny(10_000)),
        ..ProductInput::default()
    };
    let duplicate = |got: crate::error::Result<crate::sales::Product>| match got {
        Err(Error::Duplicate { message, .. }) => message,
        other => panic!("expected a duplicate, got {other:?}"),
    };
    let p7 = w
        .crm
        .create_product(&w.admin, product("CP-7", "投影仪"))
        .await
        .expect("create");
    let p70 = w
        .crm
        .create_product(&w.admin, product("CP-70", "幕布"))
        .await
        .expect("a code CP-7 begins");
    // Its creation is announced with what a catalogue mirror needs, the
    // cost (which field rules may hide) left out.
    let created = w
        .crm
        .pending_events("catalogue", 100_000)
        .await
        .expect("events")
        .into_iter()
        .find(|e| e.event.event_type == "product.created" && e.event.record_id == p7.id)
        .expect("product.created");
    let payload = created.event.payload.to_value();
    assert_eq!(
        (
            &payload["code"],
            &payload["name"],
            &payload["list_price"],
            &payload["status"]
        ),
        (
            &json!("CP-7"),
            &json!("投影仪"),
            &json!(10_000),
            &json!("on_sale")
        )
    );
    assert!(payload.get("cost").is_none(), "{payload}");
    for typed in ["CP-7", "cp-7", " Cp-7 "] {
        let found = w.crm.product_by_code(&w.admin, typed).await.expect(typed);
        assert_eq!(found.id, p7.id, "{typed}");
    }
    assert_eq!(
        w.crm
            .product_by_code(&w.admin, "cp-70")
            .await
            .expect("cp-70")
            .id,
        p70.id
    );
    assert!(matches!(
        w.crm.product_by_code(&w.admin, "cp-").await,
        Err(Error::NotFound { .. })
    ));
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product("cp-7", "另一台投影仪"))
            .await,
    );
    assert!(m.contains("投影仪 (as CP-7)"), "{m}");
    let m = duplicate(
        w.crm
            .update_product(
                &w.admin,
                p70.id,
                p70.version,
                ProductInput {
                    code: Some("CP-7".into()),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(m.contains("投影仪") && !m.contains("(as"), "{m}");
    // Recoding a product to its own code in another case is no clash.
    let recased = w
        .crm
        .update_product(
            &w.admin,
            p7.id,
            p7.version,
            ProductInput {
                code: Some("cp-7".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("its own code in lower case");
    assert_eq!(recased.code, "cp-7");
    // An import names a product by its code in any letter case: it updates
    // the product as stored, without recoding it.
    let mut o = ImportOptions::new(Entity::Product);
    o.policy = crate::import::DuplicatePolicy::Update;
    let h: Vec<String> = ["产品编号", "产品名称", "标准价"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    s.push(&[SheetRow {
        number: 2,
        cells: vec![
            Cell::Text("Cp-70".into()),
            Cell::Text("幕布（电动）".into()),
            Cell::Text("150".into()),
        ],
    }])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.updated), (0, 1), "{:#?}", r.issues);
    let p = w
        .crm
        .product_by_code(&w.admin, "CP-70")
        .await
        .expect("kept");
    assert_eq!(
        (p.id, p.code.as_str(), p.name.as_str()),
        (p70.id, "CP-70", "幕布（电动）")
    );
    let office = w
        .crm
        .create_product_category(&w.admin, "OA设备", None)
        .await
        .expect("category");
    match w
        .crm
        .create_product_category(&w.admin, "ＯＡ设备", None)
        .await
    {
        Err(Error::Duplicate { message, .. }) => {
            assert!(message.contains(&office.code), "{message}")
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

/// A new version of a quote is a new live quote of its opportunity: not
/// while the opportunity is in the recycle bin (the version would hang on
/// an opportunity no list shows); restored, the quote is revised.
pub async fn a_quote_of_a_binned_opportunity_is_not_revised(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewOpportunity, NewQuote};
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "修订测试有限公司", json!({})).await;
    let opportunity = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "修订机会".into(),
                customer_id: customer.id.0,
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let line = |price: i64| LineInput {
        product_id: None,
        name: "服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(price)),
        discount_bp: 0,
        tax_rate: None,
    };
    let quote = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "修订报价".into(),
                customer_id: customer.id.0,
                opportunity_id: Some(opportunity.id),
                lines: vec![line(10_000)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let report = w
        .crm
        .delete_records(
            &w.zhangsan,
            Entity::Opportunity,
            &[RecordId(opportunity.id)],
        )
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    match w
        .crm
        .revise_quote(&w.zhangsan, quote.id, vec![line(9_000)], None)
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&quote.code) && m.contains("recycle bin") && m.contains("restore"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        w.crm
            .quote_versions(&w.zhangsan, quote.id)
            .await
            .expect("versions")
            .len(),
        1,
        "no version was written"
    );
    let report = w
        .crm
        .restore_records(
            &w.zhangsan,
            Entity::Opportunity,
            &[RecordId(opportunity.id)],
        )
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    let v2 = w
        .crm
        .revise_quote(&w.zhangsan, quote.id, vec![line(9_000)], None)
        .await
        .expect("revised once the opportunity is back");
    assert_eq!(v2.quote_version, 2);
}

/// Purging a customer (彻底删除) takes its contacts and follow-ups with it:
/// refused to a salesperson while that would destroy a manager's
/// follow-up they may not delete (nothing is removed), allowed to who may
/// delete them all, and then every record that goes is in its own history
/// and announced.
pub async fn a_purge_destroys_no_one_elses_records(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "彻底删除测试有限公司", json!({}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "钱经理"})),
        )
        .await
        .expect("contact");
    let visit = w
        .crm
        .create_record(
            &w.lisi,
            Entity::FollowUp,
            fields(
                json!({"customer_id": c.id.to_string(), "channel": "visit", "content": "经理拜访"}),
            ),
        )
        .await
        .expect("the manager's follow-up");
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    let report = w
        .crm
        .purge_records(&w.zhangsan, Entity::Customer, &[c.id])
        .await;
    assert_eq!(report.refused.len(), 1, "{report:?}");
    let m = &report.refused[0].1;
    assert!(
        m.contains("1 follow-up(s)") && !m.contains("contact(s)") && m.contains("administrator"),
        "{m}"
    );
    for (entity, id) in [
        (Entity::Customer, c.id),
        (Entity::Contact, contact.id),
        (Entity::FollowUp, visit.id),
    ] {
        let row = w.crm.store().get(entity.table(), id.0).await.expect("get");
        assert!(row.is_some(), "{entity} was kept");
    }
    let before = w
        .crm
        .pending_events("purge-test", 100_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    w.crm.ack_events("purge-test", before).await.expect("ack");
    let report = w
        .crm
        .purge_records(&w.lisi, Entity::Customer, &[c.id])
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    let events: Vec<String> = w
        .crm
        .pending_events("purge-test", 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event.event_type)
        .collect();
    for kind in ["customer.purged", "contact.purged", "follow_up.purged"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    for (table, id) in [
        (Table::Customers, c.id.0),
        (Table::Contacts, contact.id.0),
        (Table::FollowUps, visit.id.0),
    ] {
        let history = w.crm.store().history(table, id).await.expect("history");
        assert!(
            history.iter().any(|e| e.action == "purge"),
            "{table:?}: {history:#?}"
        );
    }
}

/// A customer released into a pool leaves its owner's hands with the
/// shares granted on it and its contacts: the colleague it was shared with
/// neither reads nor edits it any more (also once someone claims it), and
/// the release says whose shares ended.
pub async fn shares_end_when_a_customer_goes_into_a_pool(store: Arc<dyn Store>) {
    use crate::pool::{PoolLimits, PoolSpec};
    let w = World::new(store).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "一组公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let c = w
        .customer(&w.zhangsan, "共享公海测试有限公司", json!({}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "孙经理"})),
        )
        .await
        .expect("contact");
    for (entity, id) in [(Entity::Customer, c.id), (Entity::Contact, contact.id)] {
        w.crm
            .share_record(
                &w.zhangsan,
                entity,
                id,
                w.wangwu.user_id,
                ShareAccess::Write,
                None,
            )
            .await
            .expect("share");
        w.crm
            .get_record(&w.wangwu, entity, id)
            .await
            .expect("the sharee reads it");
    }
    let seen = w
        .crm
        .pending_events("share-test", 100_000)
        .await
        .expect("events");
    w.crm
        .ack_events("share-test", seen.last().map_or(0, |e| e.seq))
        .await
        .expect("ack");
    let r = w
        .crm
        .release(&w.zhangsan, &[c.id], "暂不跟进", Some(pool.id))
        .await
        .expect("release");
    assert!(r.refused.is_empty(), "{r:?}");
    for (entity, id) in [(Entity::Customer, c.id), (Entity::Contact, contact.id)] {
        assert!(
            w.crm.get_record(&w.wangwu, entity, id).await.is_err(),
            "{entity} still shared"
        );
    }
    let mut patch = Fields::new();
    patch.insert("notes".into(), json!("公海里还能改"));
    assert!(
        w.crm
            .update_record(&w.wangwu, Entity::Customer, c.id, 1, patch)
            .await
            .is_err()
    );
    let events = w
        .crm
        .pending_events("share-test", 100)
        .await
        .expect("events");
    let released = events
        .iter()
        .find(|e| e.event.event_type == "customer.released")
        .expect("released");
    assert_eq!(
        released.event.payload.to_value()["shares_ended"],
        json!([w.wangwu.user_id.0.to_string()])
    );
    assert_eq!(
        released.event.payload.to_value()["shares_ended_usernames"],
        json!(["wangwu"])
    );
    let r = w.crm.claim(&w.zhaoliu, &[c.id]).await.expect("claim");
    assert!(r.refused.is_empty(), "{r:?}");
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_err()
    );
}

/// A share written while its customer is released into a pool does not
/// outlive the release: it conflicts (the owner no longer holds what they
/// were sharing), and the colleague reads nothing.
pub async fn a_share_racing_a_release_does_not_outlive_it(store: Arc<dyn Store>) {
    use crate::pool::{PoolLimits, PoolSpec};
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            PoolSpec {
                name: "一组公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let c = w
        .customer(&w.zhangsan, "共享竞态测试有限公司", json!({}))
        .await;
    let zhangsan = w.zhangsan.clone();
    let id = c.id;
    hooked.before_write(Table::Shares, async move {
        let r = other
            .release(&zhangsan, &[id], "退回", Some(pool.id))
            .await
            .expect("release");
        assert!(r.refused.is_empty(), "{r:?}");
    });
    match w
        .crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
    {
        // Read again after the conflict, the customer is in the pool: no
        // longer the sharer's to share.
        Err(Error::Conflict { .. } | Error::NotFound { .. } | Error::Forbidden(_)) => {}
        other => panic!("expected the share to be refused, got {other:?}"),
    }
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, c.id)
            .await
            .is_err()
    );
}

/// A colleague a customer is shared with sees in its 360° view that it has
/// contacts they may not see (their number only), not a customer without
/// contacts; the owner sees them all and nothing hidden.
pub async fn a_customer_view_counts_what_it_does_not_show(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let c = w
        .customer(&w.zhangsan, "视图计数测试有限公司", json!({}))
        .await;
    for name in ["周经理", "吴总"] {
        w.crm
            .create_record(
                &w.zhangsan,
                Entity::Contact,
                fields(json!({"customer_id": c.id.to_string(), "name": name})),
            )
            .await
            .expect("contact");
    }
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
    let v = w
        .crm
        .customer_view(&w.wangwu, c.id)
        .await
        .expect("the sharee's view");
    assert_eq!((v.contacts.total, v.contacts.hidden), (0, 2));
    assert!(v.contacts.items.is_empty());
    let v = w
        .crm
        .customer_view(&w.zhangsan, c.id)
        .await
        .expect("the owner's view");
    assert_eq!((v.contacts.total, v.contacts.hidden), (2, 0));
}

/// The sales sections of a customer's 360° view count, like its contacts,
/// the documents the reader may not see (their number only): a sharee of
/// the customer is told of the owner's opportunity, quote (its current
/// version once) and contract, and the owner of a colleague's opportunity
/// on the shared customer.
pub async fn a_customer_view_counts_sales_documents_it_does_not_show(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewOpportunity, NewQuote};
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let c = w
        .customer(&w.zhangsan, "视图商机计数有限公司", json!({}))
        .await;
    let opportunity = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c.id.0,
        ..NewOpportunity::default()
    };
    let own = w
        .crm
        .create_opportunity(&w.zhangsan, opportunity("张三的商机"))
        .await
        .expect("opportunity");
    let line = |price: i64| LineInput {
        product_id: None,
        name: "服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(price)),
        discount_bp: 0,
        tax_rate: None,
    };
    let quote = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "计数报价".into(),
                customer_id: c.id.0,
                opportunity_id: Some(own.id),
                lines: vec![line(10_000)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    w.crm
        .revise_quote(&w.zhangsan, quote.id, vec![line(9_000)], None)
        .await
        .expect("a second version");
    w.crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "计数合同".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let share = |access| {
        w.crm.share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            access,
            None,
        )
    };
    share(ShareAccess::Read).await.expect("share");
    let counts = |v: &crate::view::CustomerView| {
        ["opportunities", "quotes", "contracts"].map(|name| {
            let s = v
                .sections
                .get(name)
                .unwrap_or_else(|| panic!("a {name} section: {:?}", v.sections.keys()));
            assert_eq!(s.items.len() as u64, s.total, "{name}: {s:?}");
            (s.total, s.hidden)
        })
    };
    let v = w
        .crm
        .customer_view(&w.wangwu, c.id)
        .await
        .expect("the sharee's view");
    assert_eq!(counts(&v), [(0, 1), (0, 1), (0, 1)]);
    let v = w
        .crm
        .customer_view(&w.zhangsan, c.id)
        .await
        .expect("the owner's view");
    assert_eq!(counts(&v), [(1, 0), (1, 0), (1, 0)]);

    // Shared writable, 王五 adds an opportunity of his own on it.
    share(ShareAccess::Write).await.expect("share writable");
    w.crm
        .create_opportunity(&w.wangwu, opportunity("王五的商机"))
        .await
        .expect("the sharee's opportunity");
    let v = w
        .crm
        .customer_view(&w.wangwu, c.id)
        .await
        .expect("the sharee's view");
    assert_eq!(counts(&v), [(1, 1), (0, 1), (0, 1)]);
    let v = w
        .crm
        .customer_view(&w.zhangsan, c.id)
        .await
        .expect("the owner's view");
    assert_eq!(counts(&v), [(1, 1), (1, 0), (1, 0)]);
    let v = w
        .crm
        .customer_view(&w.admin, c.id)
        .await
        .expect("the administrator's view");
    assert_eq!(counts(&v), [(2, 0), (1, 0), (1, 0)]);
}

/// A merge choice naming a merged customer with nothing in the field is
/// refused, by the customer's code and the field's label, and nothing is
/// merged: its blank would wipe the survivor's value. Naming the survivor
/// keeps its blank (the others' value is not filled in).
pub async fn a_merge_takes_no_blank_from_a_merged_customer(store: Arc<dyn Store>) {
    use crate::dedupe::MergeSpec;
    use std::collections::BTreeMap;
    let w = World::new(store).await;
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
                unique: false,
            },
        )
        .await
        .expect("custom field");
    let a = w
        .customer(
            &w.zhangsan,
            "合并留值甲有限公司",
            json!({"short_name": "合并甲", "city": "北京", "custom.erp_code": "E-1"}),
        )
        .await;
    let b = w
        .customer(
            &w.zhangsan,
            "合并留值乙有限公司",
            json!({"website": "https://b.example.cn"}),
        )
        .await;
    let b_code = b.code.clone().expect("a code");
    let spec = |take: &[(&str, RecordId)]| MergeSpec {
        survivor: a.id,
        others: vec![b.id],
        take: take
            .iter()
            .map(|(f, id)| (f.to_string(), *id))
            .collect::<BTreeMap<_, _>>(),
    };
    for (take, labels) in [
        (
            vec![("short_name", b.id), ("city", b.id)],
            vec!["简称 (short_name)", "城市 (city)"],
        ),
        (vec![("city", a.id), ("城市", b.id)], vec!["城市 (city)"]),
        (
            vec![("custom.erp_code", b.id)],
            vec!["ERP编码 (custom.erp_code)"],
        ),
    ] {
        match w.crm.merge_customers(&w.zhangsan, &spec(&take)).await {
            Err(Error::Validation(v)) => {
                assert_eq!(v.0.len(), labels.len(), "{v}");
                for label in labels {
                    assert!(
                        v.to_string()
                            .contains(&format!("{b_code} has no {label} to take")),
                        "{v}"
                    );
                }
            }
            other => panic!("{take:?}: {other:?}"),
        }
    }
    let still = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, b.id)
        .await
        .expect("not merged away");
    assert!(still.deleted_at.is_none());
    // Nor is a customer merged into itself.
    match w
        .crm
        .merge_customers(
            &w.zhangsan,
            &MergeSpec {
                others: vec![a.id],
                ..spec(&[])
            },
        )
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("into itself"), "{v}"),
        other => panic!("merged into itself: {other:?}"),
    }

    // The survivor's own blank may be kept; its values stay.
    let merged = w
        .crm
        .merge_customers(&w.zhangsan, &spec(&[("website", a.id)]))
        .await
        .expect("merge");
    assert_eq!(merged.text("short_name"), Some("合并甲"));
    assert_eq!(merged.text("city"), Some("北京"));
    assert_eq!(merged.custom.get("erp_code"), Some(&json!("E-1")));
    assert!(
        merged.fields.get("website").is_none_or(Json::is_null),
        "{:?}",
        merged.fields.get("website")
    );
}

/// A follow-up export writes a customer or contact its reader may not
/// read (the customer transferred away from the follow-up's author) as the
/// follow-up list shows it, `（无权查看的客户）(hidden customer)`, never by
/// id; a recycle-bin export names a deleted customer its reader may read,
/// as the list of the recycle bin does. Follow-ups are not imported, so no
/// import reads the placeholder back.
pub async fn a_follow_up_export_names_no_hidden_customer_by_id(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let export = async |actor: &Actor, q: ListQuery| {
        let picks: Vec<String> = ["code", "customer_id", "contact_id", "version"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let cols = w
            .crm
            .export_columns(actor, Entity::FollowUp, &picks)
            .await
            .expect("columns");
        let mut cur = w
            .crm
            .export_cursor(actor, Entity::FollowUp, q, cols, 10)
            .await
            .expect("cursor");
        let mut rows = Vec::new();
        while let Some(page) = cur.next_page().await.expect("page") {
            rows.extend(page.into_iter().map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        ExportValue::Text(t) => t,
                        ExportValue::Number(n) => n.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
            }));
        }
        rows
    };
    let c = w
        .customer(&w.zhangsan, "导出隐藏客户有限公司", json!({}))
        .await;
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            fields(json!({"customer_id": c.id.to_string(), "name": "钱经理"})),
        )
        .await
        .expect("contact");
    let f = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::FollowUp,
            fields(json!({
                "customer_id": c.id.to_string(),
                "contact_id": contact.id.to_string(),
                "channel": "call",
                "content": "首次电话",
            })),
        )
        .await
        .expect("follow-up");
    let code = f.code.clone().expect("a code");
    let rows = export(&w.zhangsan, ListQuery::default()).await;
    assert_eq!(
        rows,
        vec![vec![
            code.clone(),
            "导出隐藏客户有限公司".to_string(),
            "钱经理".to_string(),
            "1".to_string()
        ]]
    );
    w.crm
        .transfer_records(&w.zhangsan, Entity::Customer, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    // The author still reads (and exports) the follow-up, not its customer
    // or contact: neither their names nor their ids are written.
    let rows = export(&w.zhangsan, ListQuery::default()).await;
    assert_eq!(
        rows,
        vec![vec![
            code.clone(),
            "（无权查看的客户）(hidden customer)".to_string(),
            "（无权查看的联系人）(hidden contact)".to_string(),
            "1".to_string()
        ]]
    );
    let text = format!("{rows:?}");
    assert!(
        !text.contains(&c.id.to_string()) && !text.contains(&contact.id.to_string()),
        "{text}"
    );
    // No follow-up import reads the placeholder back.
    assert!(matches!(
        w.crm
            .template_columns(&w.zhangsan, Entity::FollowUp, 0)
            .await,
        Err(Error::Validation(_))
    ));

    // In the recycle bin with its customer: the administrator reads the
    // deleted customer, and its name is written, as the bin's list shows it.
    let report = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[c.id])
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    let binned = ListQuery::default().lifecycle(Lifecycle::Deleted);
    let listed = w
        .crm
        .list_records(&w.admin, Entity::FollowUp, &binned)
        .await
        .expect("the bin");
    assert_eq!(
        listed.items.len(),
        1,
        "the follow-up went with its customer"
    );
    let rows = export(&w.admin, binned).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][..3],
        [
            code,
            "导出隐藏客户有限公司".to_string(),
            "钱经理".to_string()
        ]
    );
}

/// A user import names departments and roles by name: a name several
/// departments share (under different parents) is refused as ambiguous —
/// the user is not put into one of them by chance — while the id works;
/// and no row closes a cycle of superiors, with the store's or with an
/// earlier row's.
pub async fn user_imports_refuse_shared_names_and_cycles_of_superiors(store: Arc<dyn Store>) {
    use crate::import::DuplicatePolicy;
    let w = World::new(store).await;
    let one = w
        .crm
        .create_department(&w.admin, "渠道", Some(w.group1))
        .await
        .expect("渠道 of group one");
    w.crm
        .create_department(&w.admin, "渠道", Some(w.group2))
        .await
        .expect("渠道 of group two");
    let import = |rows: Vec<[&str; 4]>| {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let (crm, admin) = (w.crm.clone(), w.admin.clone());
        async move {
            let mut o = ImportOptions::new(Entity::User);
            o.policy = DuplicatePolicy::Update;
            let h: Vec<String> = ["用户名", "姓名", "部门", "上级"]
                .iter()
                .map(|h| h.to_string())
                .collect();
            let mut s = crm.begin_import(&admin, o, &h).await.expect("begin");
            let rows: Vec<SheetRow> = rows
                .into_iter()
                .enumerate()
                .map(|(i, cells)| SheetRow {
                    number: i as u32 + 2,
                    cells: cells.into_iter().map(Cell::Text).collect(),
                })
                .collect();
            s.push(&rows).await.expect("push");
            s.finish().await.expect("finish")
        }
    };
    let one_id = one.id.to_string();
    let r = import(vec![
        ["qudao1", "渠道一", "渠道", ""],
        ["qudao2", "渠道二", &one_id, ""],
    ])
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(r.issues[0].row, 2);
    assert!(
        r.issues[0]
            .message_en
            .contains("several departments are named 渠道"),
        "{:#?}",
        r.issues
    );
    let made = w
        .crm
        .user_by_username(&w.admin, "qudao2")
        .await
        .expect("by id");
    assert_eq!(made.department_id, Some(one.id));
    let created = w
        .crm
        .pending_events("org-mirror", 100_000)
        .await
        .expect("events")
        .into_iter()
        .find(|e| e.event.event_type == "user.created" && e.event.record_id == made.id.0)
        .expect("user.created");
    assert_eq!(
        created.event.payload.to_value()["department_id"],
        json!(one.id)
    );
    // lisi is zhangsan's superior: the other way round is a cycle; so is a
    // pair of rows each making the other's superior.
    let r = import(vec![
        ["lisi", "李四", "", "zhangsan"],
        ["wangwu", "王五", "", "qudao2"],
        ["qudao2", "渠道二", "", "wangwu"],
    ])
    .await;
    assert_eq!(r.updated, 1, "{:#?}", r.issues);
    let rows: Vec<u32> = r.issues.iter().map(|i| i.row).collect();
    assert_eq!(rows, vec![2, 4], "{:#?}", r.issues);
    assert!(
        r.issues
            .iter()
            .all(|i| i.message_en.contains("cycle") && i.message_zh.contains("循环")),
        "{:#?}",
        r.issues
    );
    let lisi = w
        .crm
        .user_by_username(&w.admin, "lisi")
        .await
        .expect("lisi");
    assert_ne!(lisi.superior_id, Some(w.zhangsan.user_id));
}

/// A quote or contract has a title, not a name: its transfer is announced
/// by it.
pub async fn a_document_transfer_is_announced_by_its_title(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote};
    let w = crate::testing::sales_suite::with_sales_rights(World::new(store).await).await;
    let customer = w
        .customer(&w.zhangsan, "报价转移测试有限公司", json!({}))
        .await;
    let quote = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "年度维保报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "维保".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(10_000)),
                    discount_bp: 0,
                    tax_rate: None,
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let r = w
        .crm
        .transfer_records(
            &w.lisi,
            Entity::Quote,
            &[RecordId(quote.id)],
            w.zhaoliu.user_id,
        )
        .await
        .expect("transfer");
    assert!(r.refused.is_empty(), "{r:?}");
    let e = w
        .crm
        .pending_events("docs", 100_000)
        .await
        .expect("events")
        .into_iter()
        .find(|e| e.event.event_type == "quote.transferred")
        .expect("quote.transferred");
    let p = e.event.payload.to_value();
    assert_eq!(
        (&p["code"], &p["name"]),
        (&json!(quote.code), &json!("年度维保报价"))
    );
}

/// An option removed from a select field while a record is being given it
/// does not end up held by the record: the save meets the new list and is
/// refused; saved again, the removed option is refused as unknown.
pub async fn an_option_removed_meanwhile_is_not_saved(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let def = w
        .crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "region".into(),
                label: "销售区域".into(),
                label_en: None,
                field_type: CustomFieldType::Select,
                options: vec!["华东".into(), "华南".into(), "西北".into()],
                required: false,
                unique: false,
            },
        )
        .await
        .expect("field");
    let c = w
        .customer(&w.zhangsan, "选项竞态测试有限公司", json!({}))
        .await;
    let admin = w.admin.clone();
    hooked.before_write(Table::Customers, async move {
        other
            .update_custom_field(
                &admin,
                def.id,
                def.version,
                crate::custom::CustomFieldUpdate {
                    options: Some(vec!["华东".into(), "华南".into()]),
                    ..Default::default()
                },
            )
            .await
            .expect("removed while no record holds it");
    });
    match w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version,
            fields(json!({"region": "西北"})),
        )
        .await
    {
        Err(Error::Conflict { .. } | Error::InvalidState(_)) => {}
        other => panic!("expected the save refused, got {other:?}"),
    }
    let now = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("read");
    assert_eq!(
        now.fields.get("region").cloned().unwrap_or(Json::Null),
        Json::Null
    );
    assert!(
        w.crm
            .update_record(
                &w.zhangsan,
                Entity::Customer,
                c.id,
                now.version,
                fields(json!({"region": "西北"}))
            )
            .await
            .is_err(),
        "the removed option is unknown now"
    );
    // An import giving an option removed while it runs fails as a whole.
    let fresh = w
        .crm
        .custom_fields(&w.admin, Entity::Customer)
        .await
        .expect("fields")
        .into_iter()
        .find(|d| d.key == "region")
        .expect("region");
    let (other, admin) = (
        Crm::new(w.crm.store().clone(), w.clock.clone()),
        w.admin.clone(),
    );
    hooked.before_write(Table::Customers, async move {
        other
            .update_custom_field(
                &admin,
                fresh.id,
                fresh.version,
                crate::custom::CustomFieldUpdate {
                    options: Some(vec!["华东".into()]),
                    ..Default::default()
                },
            )
            .await
            .expect("华南 removed while no record holds it");
    });
    let mut s = w
        .crm
        .begin_import(
            &w.zhangsan,
            ImportOptions::new(Entity::Customer),
            &["客户名称".to_string(), "销售区域".to_string()],
        )
        .await
        .expect("begin");
    s.push(&[SheetRow {
        number: 2,
        cells: vec![
            Cell::Text("华南导入有限公司".into()),
            Cell::Text("华南".into()),
        ],
    }])
    .await
    .expect("push");
    assert!(s.finish().await.is_err(), "the import met the new list");
    let all = w
        .crm
        .store()
        .select(&crate::store::Select::all(
            Table::Customers,
            w.admin.company_id.0,
            w.crm.now(),
        ))
        .await
        .expect("customers")
        .rows;
    assert!(
        all.iter()
            .all(|r| r.get("name").as_text() != Some("华南导入有限公司")),
        "nothing of the import was written"
    );
}

/// An import creates records for another owner as a create through the API
/// does: within the importer's create scope (a manager for the people of
/// their department), else the row — or, for `--owner`, the import — is
/// refused, whatever transfer right the importer holds.
pub async fn an_import_for_another_owner_holds_to_the_create_scope(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let import = |actor: Actor, owner: Option<&str>, rows: Vec<[&str; 2]>| {
        let crm = w.crm.clone();
        let owner = owner.map(str::to_string);
        let rows: Vec<SheetRow> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| SheetRow {
                number: i as u32 + 2,
                cells: r.iter().map(|c| Cell::Text(c.to_string())).collect(),
            })
            .collect();
        async move {
            let mut o = ImportOptions::new(Entity::Customer);
            o.owner = owner;
            let h = vec!["客户名称".to_string(), "负责人".to_string()];
            let mut s = crm.begin_import(&actor, o, &h).await?;
            s.push(&rows).await?;
            s.finish().await
        }
    };
    // 李四 manages the sales department: 张三 is within his scope.
    let r = import(
        w.lisi.clone(),
        None,
        vec![["经理代导入有限公司", "zhangsan"]],
    )
    .await
    .expect("import");
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    // 张三 (own scope, a transfer right too) may not import for 王五.
    let r = import(
        w.zhangsan.clone(),
        None,
        vec![
            ["代别人导入有限公司", "wangwu"],
            ["自己的有限公司", "zhangsan"],
        ],
    )
    .await
    .expect("import");
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(
        (r.issues[0].row, r.issues[0].kind),
        (2, IssueKind::Forbidden),
        "{:#?}",
        r.issues
    );
    match import(
        w.zhangsan.clone(),
        Some("wangwu"),
        vec![["整批代导入有限公司", ""]],
    )
    .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains("王五") || m.contains("wangwu"), "{m}"),
        other => panic!("expected the import refused, got {other:?}"),
    }
}

/// A built-in choice field's option is removed from the company's list only
/// while no record holds it, as a select custom field's: live, archived and
/// recycle-bin records count, an option kept under another case is a
/// removal, the refusal names the holders the manager may read and counts
/// the others, and a record given the option while the list is written
/// fails the change. Adding and reordering options pass.
pub async fn a_choice_option_records_hold_is_not_removed(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let read = || async {
        w.crm
            .picklist_with_version(&w.admin, Entity::Customer, "category")
            .await
            .expect("options")
    };
    let held = |result: Result<(), Error>, option: &str, named: &str| match result {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(
                m.contains(&format!("option '{option}'"))
                    && m.contains("still held by 1 customer record")
                    && m.contains(named),
                "{m}"
            );
        }
        other => panic!("expected '{option}' refused as held, got {other:?}"),
    };
    let vip = w
        .customer(&w.zhangsan, "选项在用有限公司", json!({"category": "VIP"}))
        .await;
    let archived = w
        .customer(&w.zhangsan, "归档选项有限公司", json!({"category": "代理"}))
        .await;
    assert!(
        w.crm
            .archive_records(&w.zhangsan, Entity::Customer, &[archived.id])
            .await
            .refused
            .is_empty()
    );
    let binned = w
        .customer(
            &w.zhangsan,
            "回收站选项有限公司",
            json!({"category": "合作"}),
        )
        .await;
    assert!(
        w.crm
            .delete_records(&w.zhangsan, Entity::Customer, &[binned.id])
            .await
            .refused
            .is_empty()
    );
    let defaults = read().await;
    assert_eq!(defaults.version, 0);
    let without = |option: &str| -> Vec<String> {
        defaults
            .options
            .iter()
            .filter(|o| o.as_str() != option)
            .cloned()
            .collect()
    };
    for (option, holder) in [("VIP", &vip), ("代理", &archived), ("合作", &binned)] {
        held(
            w.crm
                .set_picklist(&w.admin, Entity::Customer, "category", 0, &without(option))
                .await,
            option,
            holder.code.as_deref().expect("code"),
        );
    }
    // Another case is another stored value.
    let mut lower = without("VIP");
    lower.push("vip".into());
    held(
        w.crm
            .set_picklist(&w.admin, Entity::Customer, "category", 0, &lower)
            .await,
        "VIP",
        vip.code.as_deref().expect("code"),
    );
    // A manager of fields who may not read the holder learns only a count.
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "字段管理".into(),
                is_admin: false,
                permissions: vec![Permission {
                    entity: Entity::CustomField,
                    action: Action::Manage,
                    scope: DataScope::All,
                }],
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    let fields_admin = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "ziduan".into(),
                display_name: "字段管理员".into(),
                department_id: Some(w.group2),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    let fields_admin = w.crm.actor(fields_admin.id).await.expect("actor");
    held(
        w.crm
            .set_picklist(
                &fields_admin,
                Entity::Customer,
                "category",
                0,
                &without("VIP"),
            )
            .await,
        "VIP",
        "1 you may not all see",
    );
    assert_eq!(read().await, defaults, "nothing written");
    // Reordered, with an option added and one nobody holds removed.
    let mut kept: Vec<String> = without("潜在");
    kept.reverse();
    kept.push("战略".into());
    w.crm
        .set_picklist(&w.admin, Entity::Customer, "category", 0, &kept)
        .await
        .expect("held options kept");
    let now = read().await;
    assert_eq!(now.options, kept);
    // A record given an option while its removal is written.
    let c = w.customer(&w.zhangsan, "竞态选项有限公司", json!({})).await;
    let (o, zs, version) = (other.clone(), w.zhangsan.clone(), c.version);
    hooked.before_write(Table::Picklists, async move {
        o.update_record(
            &zs,
            Entity::Customer,
            c.id,
            version,
            fields(json!({"category": "战略"})),
        )
        .await
        .expect("given the option meanwhile");
    });
    let unheld: Vec<String> = kept.iter().filter(|o| *o != "战略").cloned().collect();
    invalid_state(
        w.crm
            .set_picklist(&w.admin, Entity::Customer, "category", now.version, &unheld)
            .await,
        "meanwhile",
    );
    assert_eq!(read().await, now, "the list kept its option");
}

/// Zero-width and other invisible format characters are dropped from
/// single-line values (names, e-mail addresses, phones, short custom text),
/// in forms and in imports alike: the duplicate keys meet, the search finds
/// the name as it looks. Multi-line text (notes) is kept as typed.
pub async fn single_line_values_drop_invisible_characters(store: Arc<dyn Store>) {
    use crate::dedupe::DedupeMode;
    let w = World::new(store).await;
    w.crm
        .set_dedupe_rule(&w.admin, "email", DedupeMode::Block)
        .await
        .expect("e-mail rule");
    w.customer(&w.admin, "邮箱甲", json!({"email": "dup@example.com"}))
        .await;
    duplicate(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "邮箱乙", "email": "dup\u{200B}@example.com"})),
            )
            .await,
        "dup@example.com",
    );
    let c = w
        .customer(
            &w.admin,
            "零宽\u{200B}测试",
            json!({
                "email": "\u{FEFF}zero@example.com",
                "address": "北京市\u{200B}海淀区",
                "notes": "第一行\u{200B}\n👨\u{200D}👩",
            }),
        )
        .await;
    assert_eq!(c.text("name"), Some("零宽测试"));
    assert_eq!(c.text("email"), Some("zero@example.com"));
    assert_eq!(c.text("address"), Some("北京市海淀区"));
    assert_eq!(
        c.text("notes"),
        Some("第一行\u{200B}\n👨\u{200D}👩"),
        "multi-line text is kept as typed"
    );
    assert_eq!(
        names_for(&w, &w.admin, ListQuery::default().search("零宽测试")).await,
        set(&["零宽测试"])
    );
    assert_eq!(
        names_for(
            &w,
            &w.admin,
            ListQuery::default().search("零宽\u{200B}测试")
        )
        .await,
        set(&["零宽测试"])
    );
    // The name key meets the name typed without it.
    duplicate(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "零宽测试"})),
            )
            .await,
        "零宽测试",
    );
    let k = w
        .crm
        .create_record(
            &w.admin,
            Entity::Contact,
            fields(json!({
                "customer_id": c.id.to_string(),
                "name": "张\u{200C}三",
                "mobile": "138\u{200B}0013\u{2060}8000",
            })),
        )
        .await
        .expect("contact");
    assert_eq!(k.text("name"), Some("张三"));
    assert_eq!(k.text("mobile"), Some("13800138000"));
    // Short custom text too.
    w.crm
        .define_custom_field(
            &w.admin,
            NewCustomField {
                entity: Entity::Customer,
                key: "erp".into(),
                label: "ERP 编号".into(),
                label_en: None,
                field_type: CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("custom field");
    let e = w
        .customer(
            &w.admin,
            "自定义甲",
            json!({"custom.erp": "ERP\u{200B}-001"}),
        )
        .await;
    assert_eq!(e.custom.get("erp"), Some(&json!("ERP-001")));

    // An import goes the same way.
    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::Customer),
            &["客户名称".to_string(), "邮箱".to_string()],
        )
        .await
        .expect("begin import");
    let text = |v: &str| Cell::Text(v.into());
    s.push(&[
        SheetRow {
            number: 2,
            cells: vec![text("导入乙"), text("dup\u{200B}@example.com")],
        },
        SheetRow {
            number: 3,
            cells: vec![text("导入\u{200B}丙"), text("c\u{00AD}@example.com")],
        },
    ])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    // The row repeating the e-mail behind a zero-width space is the
    // duplicate it is (skipped, the default for duplicates).
    assert_eq!((r.created, r.skipped), (1, 1), "{:#?}", r.issues);
    assert!(
        r.issues.iter().any(|i| i.row == 2
            && i.kind == IssueKind::Duplicate
            && i.message_en
                .contains("e-mail dup@example.com already belongs to 邮箱甲")),
        "{:#?}",
        r.issues
    );
    assert_eq!(
        names_for(&w, &w.admin, ListQuery::default().search("导入丙")).await,
        set(&["导入丙"])
    );
    // So do the names of users, departments, roles, pools, products and
    // opportunities: one that looks like another is that other.
    let u = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "u\u{200B}ser1".into(),
                display_name: "用\u{200B}户".into(),
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    assert_eq!(
        (u.username.as_str(), u.display_name.as_str()),
        ("user1", "用户")
    );
    let d = w
        .crm
        .create_department(&w.admin, "研\u{200B}发部", None)
        .await
        .expect("department");
    assert_eq!(d.name, "研发部");
    let p = w
        .crm
        .create_product(
            &w.admin,
            crate::sales::ProductInput {
                code: Some("PZ\u{200B}1".into()),
                name: Some("产品\u{200B}甲".into()),
                list_price: Some(crate::money::Money::cny(100)),
                ..crate::sales::ProductInput::default()
            },
        )
        .await
        .expect("product");
    assert_eq!((p.code.as_str(), p.name.as_str()), ("PZ1", "产品甲"));
    assert!(
        w.crm
            .create_product(
                &w.admin,
                crate::sales::ProductInput {
                    code: Some("PZ1".into()),
                    name: Some("产品乙".into()),
                    list_price: Some(crate::money::Money::cny(100)),
                    ..crate::sales::ProductInput::default()
                },
            )
            .await
            .is_err(),
        "the code is taken"
    );
}

/// Individual customers (个人客户) are people: two of them, or an
/// individual and a company, sharing a name are no duplicates, on create,
/// on update and in the report; a company keeps its name rule, also
/// against an individual turned into a company. Keys written under the old
/// rule are rewritten by `rebuild_search_keys`; an import still finds an
/// individual by name.
pub async fn individuals_sharing_a_name_are_no_duplicates(store: Arc<dyn Store>) {
    use crate::dedupe::DuplicateQuery;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    let w = World::new(store).await;
    let one = w
        .customer(
            &w.admin,
            "张伟",
            json!({"kind": "individual", "phone": "13800138001"}),
        )
        .await;
    let two = w
        .customer(
            &w.admin,
            "张伟",
            json!({"kind": "individual", "phone": "13800138002"}),
        )
        .await;
    let company = w
        .customer(&w.admin, "张伟有限公司", json!({"kind": "enterprise"}))
        .await;
    // Another company of that name is still refused.
    duplicate(
        w.crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "张伟公司"})),
            )
            .await,
        "张伟",
    );
    // An individual made a company meets the company's name rule.
    duplicate(
        w.crm
            .update_record(
                &w.admin,
                Entity::Customer,
                one.id,
                one.version,
                fields(json!({"kind": "enterprise"})),
            )
            .await,
        "张伟",
    );
    // A company made an individual frees its name.
    let company = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            company.id,
            company.version,
            fields(json!({"kind": "individual"})),
        )
        .await
        .expect("company to individual");
    let one = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            one.id,
            one.version,
            fields(json!({"kind": "enterprise"})),
        )
        .await
        .expect("the name is free now");
    let one = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            one.id,
            one.version,
            fields(json!({"kind": "individual"})),
        )
        .await
        .expect("back to an individual");
    // Phones still find the duplicate individuals.
    let three = w
        .customer(
            &w.admin,
            "张伟",
            json!({"kind": "individual", "phone": "13800138002"}),
        )
        .await;
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    let fields_of = |r: &crate::dedupe::DuplicateReport| {
        r.groups
            .iter()
            .map(|g| g.field.clone())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(fields_of(&report), set(&["phone"]), "{report:#?}");

    // Keys written before: every individual's name key is the company
    // key, and the rebuild of the duplicate keys finds them shared.
    for r in [&one, &two, &three, &company] {
        let row = w
            .crm
            .store()
            .get(Table::Customers, r.id.0)
            .await
            .expect("get")
            .expect("row");
        assert!(
            row.get("name_key")
                .as_text()
                .is_some_and(|k| k.starts_with('~')),
            "{:?}",
            row.get("name_key")
        );
        w.crm
            .store()
            .apply(&ChangeSet {
                ops: vec![Op::Update {
                    table: Table::Customers,
                    id: r.id.0,
                    expected_version: row.version(),
                    values: vec![("name_key", Value::Text("张伟".into()))],
                }],
                ..ChangeSet::default()
            })
            .await
            .expect("old key");
    }
    w.crm
        .rebuild_duplicate_keys(&w.admin)
        .await
        .expect("rebuild duplicate keys");
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    assert_eq!(fields_of(&report), set(&["name", "phone"]), "{report:#?}");
    let stats = w
        .crm
        .rebuild_search_keys(&w.admin)
        .await
        .expect("rebuild search keys");
    assert!(stats.updated >= 4, "{stats:?}");
    let report = w
        .crm
        .duplicate_report(&w.admin, &DuplicateQuery::default())
        .await
        .expect("report");
    assert_eq!(fields_of(&report), set(&["phone"]), "{report:#?}");
    // Up to date now: a second run rewrites nothing.
    let again = w
        .crm
        .rebuild_search_keys(&w.admin)
        .await
        .expect("rebuild search keys");
    assert_eq!(again.updated, 0);

    // An import names an individual by name.
    w.customer(&w.admin, "李娜", json!({"kind": "individual"}))
        .await;
    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(Entity::Contact),
            &["所属客户".to_string(), "姓名".to_string()],
        )
        .await
        .expect("begin import");
    s.push(&[
        SheetRow {
            number: 2,
            cells: vec![Cell::Text("李娜".into()), Cell::Text("李娜本人".into())],
        },
        // Several customers are called 张伟: the name names no one.
        SheetRow {
            number: 3,
            cells: vec![Cell::Text("张伟".into()), Cell::Text("张伟家属".into())],
        },
        SheetRow {
            number: 4,
            cells: vec![
                Cell::Text(two.code.clone().expect("code")),
                Cell::Text("张伟本人".into()),
            ],
        },
    ])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.rejected), (2, 1), "{:#?}", r.issues);
    assert!(
        r.issues.iter().any(|i| i.row == 3
            && i.message_en
                .contains("'张伟' is the name of several customers; give the code")),
        "{:#?}",
        r.issues
    );
}

/// A credit code of one character repeated (`000000000000000000`, typed
/// for an unknown code) is refused, so that it never makes the next
/// customer given it a duplicate.
pub async fn a_placeholder_credit_code_is_refused(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for code in ["000000000000000000", "１１１１１１１１１１１１１１１１１１"] {
        let r = w
            .crm
            .create_record(
                &w.admin,
                Entity::Customer,
                fields(json!({"name": "占位公司", "uscc": code})),
            )
            .await;
        invalid(&r, "not a real code; leave it empty if unknown");
    }
    w.customer(&w.admin, "占位公司", json!({})).await;
    w.customer(&w.admin, "另一家公司", json!({})).await;
}

/// Creating or editing a record guards the option list of each built-in
/// choice field it gives a value as it read it: an option removed between
/// the record's checks and its write refuses the write ("were changed
/// meanwhile"), so no record keeps an option its list no longer has; the
/// list's removal saw no record holding it, and the record saved again
/// meets the new list. Removed before the record's last read of the list,
/// the value is refused as not one of the options.
pub async fn record_writes_guard_the_built_in_option_lists_they_read(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    let remove = |field: &'static str, option: &'static str| {
        let (crm, admin) = (other.clone(), w.admin.clone());
        async move {
            let list = crm
                .picklist_with_version(&admin, Entity::Customer, field)
                .await
                .expect("list");
            let kept: Vec<String> = list.options.into_iter().filter(|o| o != option).collect();
            crm.set_picklist(&admin, Entity::Customer, field, list.version, &kept)
                .await
                .expect("option removed meanwhile");
        }
    };
    let options = |field: &'static str| {
        let w = &w;
        async move {
            w.crm
                .picklist(&w.admin, Entity::Customer, field)
                .await
                .expect("list")
        }
    };
    // A create, the default list (no list set yet).
    hooked.before_customer_write(remove("level", "D"));
    let made = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "选项甲有限公司", "level": "D"})),
        )
        .await;
    match &made {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("the options of customer.level (客户级别) were changed meanwhile"),
            "{m}"
        ),
        other => panic!("expected the create refused, got {other:?}"),
    }
    assert!(!options("level").await.contains(&"D".to_string()));
    // An update, a list set before.
    let c = w
        .customer(&w.zhangsan, "选项乙有限公司", json!({"category": "普通"}))
        .await;
    hooked.before_customer_write(remove("category", "VIP"));
    let edited = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version,
            fields(json!({"category": "VIP"})),
        )
        .await;
    match &edited {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("the options of customer.category (客户分类) were changed meanwhile"),
            "{m}"
        ),
        other => panic!("expected the update refused, got {other:?}"),
    }
    let stored = w
        .crm
        .get_record(&w.admin, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(stored.text("category"), Some("普通"));
    // An update leaving the value as stored needs no guard of its list.
    hooked.before_customer_write(remove("category", "代理"));
    let edited = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            stored.version,
            fields(json!({"category": "普通", "notes": "照旧"})),
        )
        .await
        .expect("an unchanged option is kept");
    assert_eq!(edited.text("category"), Some("普通"));
    // Removed before the write read the list: refused as no option.
    hooked.after_select(Table::Picklists, remove("source", "展会"));
    let made = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Customer,
            fields(json!({"name": "选项丙有限公司", "source": "展会"})),
        )
        .await;
    assert!(matches!(made, Err(Error::Validation(_))), "{made:?}");
    // With the lists unchanged, the writes pass.
    let ok = w
        .crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            edited.version,
            fields(json!({"category": "合作", "level": "A"})),
        )
        .await
        .expect("options of the lists");
    assert_eq!(ok.text("category"), Some("合作"));
}

/// A deactivated user is refused as a new pool administrator or member, on
/// creating a pool and on changing one, as groups refuse them; one already
/// administering or in the pool is kept on an edit (as a group keeps a
/// member deactivated since), and becoming an administrator from a member
/// counts as new.
pub async fn pools_take_no_deactivated_admins_or_members(store: Arc<dyn Store>) {
    use crate::pool::PoolSpec;
    let w = World::new(store).await;
    let deactivate = |id: UserId| {
        let w = &w;
        async move {
            let u = w.crm.user(&w.admin, id).await.expect("user");
            w.crm
                .update_user(
                    &w.admin,
                    id,
                    u.version,
                    UserPatch {
                        active: Some(false),
                        ..UserPatch::default()
                    },
                )
                .await
                .expect("deactivated")
        }
    };
    let pool = |admins: Vec<UserId>, members: Vec<UserId>| PoolSpec {
        name: "停用公海".into(),
        admins,
        member_users: members,
        ..PoolSpec::default()
    };
    deactivate(w.wangwu.user_id).await;
    let made = w
        .crm
        .create_pool(&w.admin, pool(vec![w.wangwu.user_id], Vec::new()))
        .await;
    invalid(&made, "王五 (wangwu) is deactivated (已停用)");
    invalid(&made, "cannot administer a pool");
    let made = w
        .crm
        .create_pool(
            &w.admin,
            pool(vec![w.admin.user_id], vec![w.wangwu.user_id]),
        )
        .await;
    invalid(&made, "a deactivated user cannot join a pool");
    // Active users pass; deactivated later, they stay on an edit.
    let p = w
        .crm
        .create_pool(
            &w.admin,
            pool(
                vec![w.admin.user_id, w.zhaoliu.user_id],
                vec![w.zhangsan.user_id],
            ),
        )
        .await
        .expect("pool of active users");
    deactivate(w.zhaoliu.user_id).await;
    deactivate(w.zhangsan.user_id).await;
    let kept = w
        .crm
        .update_pool(
            &w.admin,
            p.id,
            p.version,
            pool(
                vec![w.admin.user_id, w.zhaoliu.user_id],
                vec![w.zhangsan.user_id],
            ),
        )
        .await
        .expect("those already in the pool are kept");
    assert_eq!(kept.admins, vec![w.admin.user_id, w.zhaoliu.user_id]);
    assert_eq!(kept.member_users, vec![w.zhangsan.user_id]);
    // New ones are not: a deactivated admin or member, nor a member made
    // administrator.
    for (admins, members, says) in [
        (
            vec![w.wangwu.user_id],
            Vec::new(),
            "cannot administer a pool",
        ),
        (
            vec![w.admin.user_id],
            vec![w.zhangsan.user_id, w.wangwu.user_id],
            "王五 (wangwu) is deactivated",
        ),
        (
            vec![w.admin.user_id, w.zhangsan.user_id],
            Vec::new(),
            "张三 (zhangsan) is deactivated",
        ),
    ] {
        let edited = w
            .crm
            .update_pool(&w.admin, p.id, kept.version, pool(admins, members))
            .await;
        invalid(&edited, says);
    }
    let stored = w.crm.pool(&w.admin, p.id).await.expect("pool");
    assert_eq!(stored.version, kept.version);
}

/// Grants on users other than `user:manage` (every user reads the
/// directory; only `user:manage` manages users) are refused on creating or
/// changing a role, saying why; a role stored with one by an older build
/// still loads and stays editable with it kept.
pub async fn grants_on_users_other_than_manage_are_refused(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for p in ["user:read:own", "user:create:all", "user:update:department"] {
        let made = w
            .crm
            .create_role(&w.admin, spec("用户读者", false, &[p], &[]))
            .await;
        invalid(&made, p);
        invalid(&made, "only user:manage");
    }
    let r = w
        .crm
        .create_role(
            &w.admin,
            spec(
                "用户管理",
                false,
                &["user:manage:department_tree", "customer:read:own"],
                &[],
            ),
        )
        .await
        .expect("user:manage is a grant");
    let edited = w
        .crm
        .update_role(
            &w.admin,
            r.id,
            r.version,
            spec("用户管理", false, &["user:delete:all"], &[]),
        )
        .await;
    invalid(&edited, "user:delete:all");
    // Stored before such grants were refused: loads, and an edit keeping it
    // passes.
    let old = grants(&["customer:read:own", "user:read:all"]);
    w.crm
        .store()
        .apply(&crate::store::ChangeSet {
            ops: vec![crate::store::Op::Update {
                table: Table::Roles,
                id: r.id.0,
                expected_version: r.version,
                values: vec![(
                    "permissions",
                    crate::value::Value::Json(serde_json::to_value(&old).expect("json")),
                )],
            }],
            ..crate::store::ChangeSet::default()
        })
        .await
        .expect("stored");
    let loaded = w
        .crm
        .resolve_role(&w.admin, "用户管理")
        .await
        .expect("loads");
    assert_eq!(loaded.permissions, old);
    let renamed = w
        .crm
        .update_role(
            &w.admin,
            r.id,
            loaded.version,
            RoleSpec {
                name: "用户管理二".into(),
                is_admin: false,
                permissions: old.clone(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("an edit keeping the old grant");
    assert_eq!(renamed.permissions, old);
}

/// An administrator role's grants and field rules are not changed (an
/// administrator may do and see everything whatever they are): such an
/// edit is refused, saying why, and nothing is written; renaming it
/// passes.
pub async fn an_administrator_roles_rights_are_not_edited(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin = admin_role(&w).await;
    let edited = w
        .crm
        .update_role(
            &w.admin,
            admin.id,
            admin.version,
            spec(&admin.name, true, &["customer:read:own"], &[]),
        )
        .await;
    invalid(&edited, "is an administrator role");
    invalid(&edited, "permissions cannot be changed");
    let edited = w
        .crm
        .update_role(
            &w.admin,
            admin.id,
            admin.version,
            spec(&admin.name, true, &[], &["customer.phone=hidden"]),
        )
        .await;
    invalid(&edited, "field rules cannot be changed");
    let stored = admin_role(&w).await;
    assert_eq!(stored.version, admin.version);
    assert!(stored.permissions.is_empty() && stored.field_rules.is_empty());
    let renamed = w
        .crm
        .update_role(
            &w.admin,
            admin.id,
            admin.version,
            spec("超级管理员", true, &[], &[]),
        )
        .await
        .expect("renamed");
    assert_eq!(renamed.name, "超级管理员");
}

/// A user edit that changes nothing (the same name, activating an active
/// user, the same roles) writes nothing: no new version, no `user.updated`
/// event, no audit entry. One that changes something still does all three.
pub async fn a_user_edit_changing_nothing_writes_nothing(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let last_seq = |w: &World| {
        let crm = w.crm.clone();
        async move {
            crm.pending_events("user-mirror", 100_000)
                .await
                .expect("events")
                .last()
                .map_or(0, |e| e.seq)
        }
    };
    let user_events = |w: &World, after: i64| {
        let crm = w.crm.clone();
        async move {
            crm.pending_events("user-mirror", 100_000)
                .await
                .expect("events")
                .into_iter()
                .filter(|e| e.seq > after && e.event.event_type == "user.updated")
                .count()
        }
    };
    let history = |w: &World| {
        let (crm, admin, id) = (w.crm.clone(), w.admin.clone(), w.zhangsan.user_id);
        async move {
            crm.history(&admin, Entity::User, id.0)
                .await
                .expect("history")
                .len()
        }
    };
    let before = w
        .crm
        .user(&w.admin, w.zhangsan.user_id)
        .await
        .expect("user");
    let seen = last_seq(&w).await;
    let audited = history(&w).await;
    for patch in [
        UserPatch {
            display_name: Some("张三".into()),
            ..UserPatch::default()
        },
        UserPatch {
            active: Some(true),
            ..UserPatch::default()
        },
        UserPatch {
            role_ids: Some(before.role_ids.clone()),
            department_id: Some(before.department_id),
            superior_id: Some(before.superior_id),
            email: Some(None),
            mobile: Some(None),
            ..UserPatch::default()
        },
    ] {
        let u = w
            .crm
            .update_user(&w.admin, before.id, before.version, patch)
            .await
            .expect("an edit changing nothing");
        assert_eq!(u.version, before.version);
    }
    let stored = w.crm.user(&w.admin, before.id).await.expect("user");
    assert_eq!(stored.version, before.version);
    assert_eq!(user_events(&w, seen).await, 0);
    assert_eq!(history(&w).await, audited);
    let changed = w
        .crm
        .update_user(
            &w.admin,
            before.id,
            before.version,
            UserPatch {
                display_name: Some("张叁".into()),
                ..UserPatch::default()
            },
        )
        .await
        .expect("a change");
    assert_eq!(changed.version, before.version + 1);
    assert_eq!(user_events(&w, seen).await, 1);
    assert_eq!(history(&w).await, audited + 1);
}
