//! Import and export scenarios: header mapping, validation of every kind of
//! bad value with Chinese messages, duplicate policies (also against records
//! the actor cannot see, and by the record code an export writes), dry runs, undo, resume of batched imports, import
//! into an owner or department, contacts, users and products, and exports limited by
//! scope and field rules — run through [`Crm`](crate::crm::Crm) against each backend.
//!
//! The rows are built in memory as `crm-io` hands them over after reading a
//! workbook; the workbook side (limits, hostile files, formula injection) is
//! tested in `crm-io`.

/// Lists the import/export scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! import_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::import_suite::import_racing_an_edit_names_the_row_changed_meanwhile,
            io_import_racing_an_edit_names_the_row_changed_meanwhile,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_purge_events_carry_the_code,
            io_import_undo_purge_events_carry_the_code,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_keeps_a_deactivated_user_a_record_holds,
            io_import_keeps_a_deactivated_user_a_record_holds,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_contacts_of_an_archived_customer_read_back,
            io_import_contacts_of_an_archived_customer_read_back,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_contact_row_naming_two_customers_is_refused,
            io_import_contact_row_naming_two_customers_is_refused,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_matches_contact_names_spelling_aside,
            io_import_matches_contact_names_spelling_aside,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_users_default_their_department_and_name_earlier_rows,
            io_import_users_default_their_department_and_name_earlier_rows,
            $make
        );
        $each!(
            $crate::testing::import_suite::english_templates_head_custom_fields_with_their_labels,
            io_english_templates_head_custom_fields_with_their_labels,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_mask_renderings_back_as_unchanged,
            io_import_reads_mask_renderings_back_as_unchanged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_a_masked_product_cost_back_as_unchanged,
            io_import_reads_a_masked_product_cost_back_as_unchanged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_by_phone_does_not_rename_a_customer,
            io_import_update_by_phone_does_not_rename_a_customer,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_keeps_a_blank_required_cell,
            io_import_update_keeps_a_blank_required_cell,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_checks_number_fields_as_the_api_does,
            io_import_checks_number_fields_as_the_api_does,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_names_users_as_the_single_record_commands_do,
            io_import_names_users_as_the_single_record_commands_do,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_group_matching_an_archived_contact_refuses_its_row,
            io_import_group_matching_an_archived_contact_refuses_its_row,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_group_codes_of_binned_or_other_customers_contacts_refuse_the_row,
            io_import_group_codes_of_binned_or_other_customers_contacts_refuse_the_row,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_matches_usernames_letter_case_aside,
            io_import_matches_usernames_letter_case_aside,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_masked_contact_group_cells_back_as_unchanged,
            io_import_reads_masked_contact_group_cells_back_as_unchanged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_all_or_nothing_is_bounded,
            io_import_all_or_nothing_is_bounded,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_contacts_name_customers_by_code_when_names_are_not_shown,
            io_import_contacts_name_customers_by_code_when_names_are_not_shown,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_refuses_to_give_back_a_value_taken_since,
            io_import_undo_refuses_to_give_back_a_value_taken_since,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_refusal_names_only_records_the_actor_sees,
            io_import_undo_refusal_names_only_records_the_actor_sees,
            $make
        );
        $each!(
            $crate::testing::import_suite::upcoming_birthdays_keep_the_soonest_thousand,
            crm_import_upcoming_birthdays_keep_the_soonest_thousand,
            $make
        );
        $each!(
            $crate::testing::import_suite::customer_rows_check_their_contacts_unique_values,
            crm_import_customer_rows_check_their_contacts_unique_values,
            $make
        );
        $each!(
            $crate::testing::import_suite::imports_compare_unique_custom_text_by_its_key,
            crm_import_imports_compare_unique_custom_text_by_its_key,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_maps_headers_and_creates_customers_with_contacts,
            io_import_maps_headers_and_creates_customers_with_contacts,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_prepared_ahead_keeps_shared_keys_flagged,
            io_import_prepared_ahead_keeps_shared_keys_flagged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_that_rekeys_a_record_frees_its_old_key,
            io_import_update_that_rekeys_a_record_frees_its_old_key,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_and_a_concurrent_create_do_not_both_pass,
            io_import_and_a_concurrent_create_do_not_both_pass,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_rejects_every_bad_value_in_both_languages,
            io_import_rejects_every_bad_value_in_both_languages,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_duplicate_policies_skip_update_fail,
            io_import_duplicate_policies_skip_update_fail,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_finds_duplicates_the_actor_cannot_see,
            io_import_finds_duplicates_the_actor_cannot_see,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_dry_run_changes_nothing,
            io_import_dry_run_changes_nothing,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_removes_and_restores,
            io_import_undo_removes_and_restores,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_in_batches_resumes_without_duplicates,
            io_import_in_batches_resumes_without_duplicates,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_into_owner_department_and_pool_is_checked,
            io_import_into_owner_department_and_pool_is_checked,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_contacts_and_users,
            io_import_contacts_and_users,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_products_with_categories_duplicates_and_undo,
            io_import_products_with_categories_duplicates_and_undo,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_needs_permission_and_required_columns,
            io_import_needs_permission_and_required_columns,
            $make
        );
        $each!(
            $crate::testing::import_suite::export_applies_scope_field_rules_and_picks,
            io_export_applies_scope_field_rules_and_picks,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_keeps_stored_kind_and_checks_merged_record,
            io_import_update_keeps_stored_kind_and_checks_merged_record,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_users_match_existing_users_by_username_only,
            io_import_users_match_existing_users_by_username_only,
            $make
        );
        $each!(
            $crate::testing::import_suite::user_imports_name_departments_and_roles_letter_case_aside,
            io_user_imports_name_departments_and_roles_letter_case_aside,
            $make
        );
        $each!(
            $crate::testing::import_suite::an_undo_needs_the_rights_held_now,
            io_an_undo_needs_the_rights_held_now,
            $make
        );
        $each!(
            $crate::testing::import_suite::an_imported_approver_is_not_undone,
            io_an_imported_approver_is_not_undone,
            $make
        );
        $each!(
            $crate::testing::import_suite::a_user_import_moves_the_approvals_it_touches,
            io_a_user_import_moves_the_approvals_it_touches,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_refused_while_later_records_refer_to_it,
            io_import_undo_refused_while_later_records_refer_to_it,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_resumed_updates_a_record_once_and_counts_contacts_apart,
            io_import_resumed_updates_a_record_once_and_counts_contacts_apart,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_rejects_numbers_longer_than_a_spreadsheet_keeps,
            io_import_rejects_numbers_longer_than_a_spreadsheet_keeps,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_checks_required_custom_fields_of_row_contacts,
            io_import_checks_required_custom_fields_of_row_contacts,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_maps_the_english_owner_header,
            io_import_maps_the_english_owner_header,
            $make
        );
        $each!(
            $crate::testing::import_suite::template_gives_multi_select_fields_no_dropdown,
            io_template_gives_multi_select_fields_no_dropdown,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_resumes_only_the_same_sheet_with_the_same_options,
            io_import_resumes_only_the_same_sheet_with_the_same_options,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_dry_run_of_an_interrupted_import_checks_after_its_checkpoint,
            io_import_dry_run_of_an_interrupted_import_checks_after_its_checkpoint,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_that_fails_counts_only_what_stays_written,
            io_import_that_fails_counts_only_what_stays_written,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_resumed_reports_every_row_of_the_import,
            io_import_resumed_reports_every_row_of_the_import,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_money_computed_by_formulas_as_shown,
            io_import_reads_money_computed_by_formulas_as_shown,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_folds_full_width_and_spaced_headers,
            io_import_folds_full_width_and_spaced_headers,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_explains_impossible_dates_and_bad_amounts_in_both_languages,
            io_import_explains_impossible_dates_and_bad_amounts_in_both_languages,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_fail_policy_reports_every_duplicate_row,
            io_import_fail_policy_reports_every_duplicate_row,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_into_a_pool_refuses_rows_naming_an_owner,
            io_import_into_a_pool_refuses_rows_naming_an_owner,
            $make
        );
        $each!(
            $crate::testing::import_suite::export_gives_flags_and_counts_as_booleans_and_numbers,
            io_export_gives_flags_and_counts_as_booleans_and_numbers,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_matches_exported_contacts_by_code,
            io_import_matches_exported_contacts_by_code,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_matches_customer_codes_and_keeps_codes_the_engines,
            io_import_matches_customer_codes_and_keeps_codes_the_engines,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_maps_code_headers,
            io_import_maps_code_headers,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_list_counts_as_the_report_does,
            io_import_list_counts_as_the_report_does,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_resumed_counts_unchanged_rows_apart,
            io_import_resumed_counts_unchanged_rows_apart,
            $make
        );
        $each!(
            $crate::testing::import_suite::export_names_the_pool_and_the_customer_not_their_ids,
            io_export_names_the_pool_and_the_customer_not_their_ids,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_changes_the_contacts_its_groups_name,
            io_import_update_changes_the_contacts_its_groups_name,
            $make
        );
        $each!(
            $crate::testing::import_suite::contact_export_names_the_customer_by_code_for_reimport,
            io_contact_export_names_the_customer_by_code_for_reimport,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_masked_cells_back_as_unchanged,
            io_import_reads_masked_cells_back_as_unchanged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_keeps_contact_customers_the_exporter_could_not_see,
            io_import_keeps_contact_customers_the_exporter_could_not_see,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_dry_run_meets_the_pool_caps_the_write_meets,
            io_import_dry_run_meets_the_pool_caps_the_write_meets,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_refuses_rows_exported_before_the_records_latest_change,
            io_import_refuses_rows_exported_before_the_records_latest_change,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_users_keep_an_active_administrator,
            io_import_users_keep_an_active_administrator,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_adds_no_contacts_to_customers_only_shared,
            io_import_adds_no_contacts_to_customers_only_shared,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_does_not_move_contacts_to_another_customer,
            io_import_update_does_not_move_contacts_to_another_customer,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_into_a_department_outside_the_create_scope_is_refused,
            io_import_into_a_department_outside_the_create_scope_is_refused,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_reads_read_only_cells_back_as_unchanged,
            io_import_reads_read_only_cells_back_as_unchanged,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_refuses_products_used_since,
            io_import_undo_refuses_products_used_since,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_needs_a_later_required_field_only_for_new_records,
            io_import_update_needs_a_later_required_field_only_for_new_records,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_tells_of_the_possible_duplicates_it_creates,
            io_import_tells_of_the_possible_duplicates_it_creates,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_update_clears_blank_cells_when_asked,
            io_import_update_clears_blank_cells_when_asked,
            $make
        );
        $each!(
            $crate::testing::import_suite::a_user_import_moves_the_records_of_the_users_it_moves,
            io_a_user_import_moves_the_records_of_the_users_it_moves,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_keeps_an_active_administrator,
            io_import_undo_keeps_an_active_administrator,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_undo_giving_back_roles_keeps_an_active_administrator,
            io_import_undo_giving_back_roles_keeps_an_active_administrator,
            $make
        );
        $each!(
            $crate::testing::import_suite::a_user_import_and_a_concurrent_demotion_keep_an_administrator,
            io_a_user_import_and_a_concurrent_demotion_keep_an_administrator,
            $make
        );
        $each!(
            $crate::testing::import_suite::money_custom_fields_hold_to_the_amount_cap,
            io_money_custom_fields_hold_to_the_amount_cap,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_guards_the_built_in_option_lists_it_read,
            io_import_guards_the_built_in_option_lists_it_read,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_finds_contacts_without_a_mobile_by_name,
            io_import_finds_contacts_without_a_mobile_by_name,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_contact_rows_without_a_mobile_name_one_contact,
            io_import_contact_rows_without_a_mobile_name_one_contact,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_finds_an_individual_by_name_and_phone,
            io_import_finds_an_individual_by_name_and_phone,
            $make
        );
        $each!(
            $crate::testing::import_suite::import_resumed_finds_contacts_without_a_mobile_by_name,
            io_import_resumed_finds_contacts_without_a_mobile_by_name,
            $make
        );
    };
}

use crate::auth::{Action, Actor, DataScope, FieldAccess, FieldRule, Permission};
use crate::entity::Entity;
use crate::error::Error;
use crate::import::{
    Cell, CommitMode, DuplicatePolicy, ExportValue, ImportOptions, ImportReport, ImportStatus,
    IssueKind, RowIssue, RowOutcome, SheetRow,
};
use crate::org::{NewUser, RoleSpec};
use crate::query::{Cond, ListQuery, PageRequest};
use crate::records::Record;
use crate::schema::Table;
use crate::store::{Select, Store};
use crate::testing::service_suite::World;
use serde_json::json;
use std::sync::Arc;

fn t(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s.to_string())
    }
}

fn headers(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| s.to_string()).collect()
}

/// Rows numbered from 2 (row 1 is the header).
fn rows(cells: Vec<Vec<Cell>>) -> Vec<SheetRow> {
    cells
        .into_iter()
        .enumerate()
        .map(|(i, cells)| SheetRow {
            number: i as u32 + 2,
            cells,
        })
        .collect()
}

/// A valid unified social credit code numbered `n`.
pub fn uscc(n: u32) -> String {
    let first = format!("91440300{n:09}");
    let check = crate::validate::uscc_check_char(&first).unwrap_or('0');
    format!("{first}{check}")
}

async fn run(
    w: &World,
    actor: &Actor,
    opts: ImportOptions,
    h: &[&str],
    data: Vec<Vec<Cell>>,
) -> ImportReport {
    let mut s = w
        .crm
        .begin_import(actor, opts, &headers(h))
        .await
        .unwrap_or_else(|e| panic!("begin import: {e}"));
    for chunk in rows(data).chunks(2) {
        s.push(chunk).await.unwrap_or_else(|e| panic!("push: {e}"));
    }
    s.finish().await.unwrap_or_else(|e| panic!("finish: {e}"))
}

fn opts(entity: Entity) -> ImportOptions {
    ImportOptions::new(entity)
}

async fn customers(w: &World, actor: &Actor) -> Vec<Record> {
    w.crm
        .list_records(
            actor,
            Entity::Customer,
            &ListQuery::default().page(PageRequest::Offset {
                page: 1,
                per_page: 1000,
            }),
        )
        .await
        .expect("list")
        .items
}

/// The payloads of the `created` events of the records `matching` picks.
async fn created_payloads(
    w: &World,
    matching: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    w.crm
        .pending_events("import-suite", 100_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.event.event_type.ends_with(".created"))
        .map(|e| e.event.payload.to_value())
        .filter(|p| matching(p))
        .collect()
}

async fn find(w: &World, name: &str) -> Option<Record> {
    customers(w, &w.admin)
        .await
        .into_iter()
        .find(|r| r.text("name") == Some(name))
}

async fn count(store: &Arc<dyn Store>, w: &World, table: Table) -> usize {
    store
        .select(&Select::all(table, w.admin.company_id.0, w.crm.now()))
        .await
        .expect("select")
        .rows
        .len()
}

fn issue(report: &ImportReport, row: u32) -> &RowIssue {
    report
        .issues
        .iter()
        .find(|i| i.row == row)
        .unwrap_or_else(|| panic!("no issue for row {row}: {:#?}", report.issues))
}

fn role_perms(actions: &[Action], scope: DataScope) -> Vec<Permission> {
    let mut out = Vec::new();
    for entity in Entity::RECORDS {
        for action in actions {
            out.push(Permission {
                entity,
                action: *action,
                scope,
            });
        }
    }
    out
}

async fn user_with_role(
    w: &World,
    username: &str,
    perms: Vec<Permission>,
    rules: Vec<FieldRule>,
) -> Actor {
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: format!("{username}-role"),
                is_admin: false,
                permissions: perms,
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
                display_name: format!("{username}用户"),
                department_id: Some(w.group1),
                role_ids: vec![role.id],
                ..NewUser::default()
            },
        )
        .await
        .expect("user");
    w.crm.actor(u.id).await.expect("actor")
}

/// Headers in either language, in any order, with extra columns and
/// required marks; numbers typed as numbers, Excel serial dates and date
/// cells; customers get their contact groups, consecutive codes, an audit
/// entry naming the import and `created` events.
pub async fn import_maps_headers_and_creates_customers_with_contacts(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = [
        "备注",
        "客户名称*",
        "Level",
        "电话",
        "统一社会信用代码",
        "下次跟进日期",
        "无关的列",
        "联系人1姓名",
        "联系人1手机",
        "Contact 2 Name",
        "Contact 2 Mobile",
    ];
    let report = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &h,
        vec![
            vec![
                t("首批"),
                t("华为技术有限公司"),
                t("A"),
                t("0755-28780808"),
                t(&uscc(1)),
                Cell::Number(46357.0),
                t("忽略"),
                t("张伟"),
                Cell::Number(13812345678.0),
                t("李娜"),
                t("139 1234 5678"),
            ],
            vec![
                Cell::Empty,
                t("腾讯科技（深圳）有限公司"),
                t("b"),
                Cell::Empty,
                Cell::Empty,
                Cell::Date(chrono::NaiveDate::from_ymd_opt(2026, 12, 24).expect("date")),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ],
            vec![Cell::Empty; 11],
            vec![
                t(""),
                t("阿里巴巴（中国）有限公司"),
                t("C"),
                t(""),
                t(""),
                t("2026年12月31日"),
                t(""),
                t("王芳"),
                t(""),
                t(""),
                t(""),
            ],
        ],
    )
    .await;
    assert!(report.issues.is_empty(), "{:#?}", report.issues);
    assert_eq!(report.status, ImportStatus::Done);
    assert_eq!(
        (report.rows, report.created, report.contacts_created),
        (3, 3, 3)
    );
    assert_eq!(report.ignored_columns, vec!["无关的列".to_string()]);
    let hw = find(&w, "华为技术有限公司").await.expect("imported");
    assert_eq!(hw.code.as_deref(), Some("KH-20261127-0001"));
    assert_eq!(hw.owner_id, Some(w.zhangsan.user_id));
    assert_eq!(hw.department_id, Some(w.group1));
    assert_eq!(hw.text("level"), Some("A"));
    assert_eq!(hw.text("uscc"), Some(uscc(1).as_str()));
    assert_eq!(hw.text("next_follow_up"), Some("2026-12-01"));
    assert_eq!(hw.text("notes"), Some("首批"));
    let tx = find(&w, "腾讯科技（深圳）有限公司")
        .await
        .expect("imported");
    assert_eq!(tx.text("level"), Some("B"));
    assert_eq!(tx.text("next_follow_up"), Some("2026-12-24"));
    let ali = find(&w, "阿里巴巴（中国）有限公司")
        .await
        .expect("imported");
    assert_eq!(ali.text("next_follow_up"), Some("2026-12-31"));
    let contacts = w
        .crm
        .list_records(
            &w.zhangsan,
            Entity::Contact,
            &ListQuery::default()
                .filter(Cond::Eq("customer_id".into(), json!(hw.id.to_string())))
                .page(PageRequest::Offset {
                    page: 1,
                    per_page: 100,
                }),
        )
        .await
        .expect("contacts");
    let mut mobiles: Vec<_> = contacts
        .items
        .iter()
        .map(|c| c.text("mobile").unwrap_or_default().to_string())
        .collect();
    mobiles.sort();
    assert_eq!(mobiles, vec!["13812345678", "13912345678"]);
    assert!(
        contacts
            .items
            .iter()
            .all(|c| c.owner_id == Some(w.zhangsan.user_id))
    );
    // Searchable by pinyin like any other customer.
    let found = w
        .crm
        .list_records(
            &w.zhangsan,
            Entity::Customer,
            &ListQuery::default().search("hwjs"),
        )
        .await
        .expect("search");
    assert_eq!(found.items.len(), 1);
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Customer, hw.id.0)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    let import_id = report.import_id.expect("id").to_string();
    assert!(
        history[0]
            .changes
            .iter()
            .any(|c| c.field == "import" && c.after == json!(import_id))
    );
    let events = w.crm.pending_events("test", 100).await.expect("events");
    let created = events
        .iter()
        .filter(|e| e.event.event_type == "customer.created")
        .count();
    assert_eq!(created, 3);
    // Imported customers are found by their duplicate keys like any other.
    let matches = w
        .crm
        .find_duplicates(
            &w.admin,
            &crate::testing::service_suite::fields(json!({"name": "华为技术有限公司"})),
        )
        .await
        .expect("duplicates");
    assert!(
        matches
            .iter()
            .any(|m| m.field == "name" && m.code.is_some()),
        "{matches:?}"
    );
    let imports = w.crm.list_imports(&w.zhangsan).await.expect("imports");
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].created, 6);
    assert_eq!(imports[0].status, ImportStatus::Done);
}

/// Every kind of bad value rejects its row (and only its row) with all of
/// the row's problems, in English and Chinese.
pub async fn import_rejects_every_bad_value_in_both_languages(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = [
        "客户名称",
        "客户类型",
        "客户级别",
        "电话",
        "邮箱",
        "网址",
        "统一社会信用代码",
        "下次跟进日期",
        "简称",
        "负责人",
        "联系人1姓名",
        "联系人1手机",
        "联系人2姓名",
        "联系人2手机",
    ];
    let good = |name: &str| -> Vec<Cell> {
        let mut r = vec![Cell::Empty; 14];
        r[0] = t(name);
        r
    };
    let with = |name: &str, i: usize, v: Cell| {
        let mut r = good(name);
        r[i] = v;
        r
    };
    let mut data = vec![
        good("正常有限公司"),                                      // 2
        with("", 2, t("A")),                                       // 3 name missing
        with("坏信用代码有限公司", 6, t("91350100M000100Y40")),    // 4
        with("坏电话有限公司", 3, t("1234")),                      // 5
        with("坏邮箱有限公司", 4, t("not-an-email")),              // 6
        with("坏网址有限公司", 5, t("ftp://x")),                   // 7
        with("坏级别有限公司", 2, t("Z")),                         // 8
        with("坏日期有限公司", 7, t("下周一")),                    // 9
        with("过长简称有限公司", 8, t(&"长".repeat(65))),          // 10
        with("无此负责人有限公司", 9, t("nobody")),                // 11
        with("错误单元格有限公司", 2, Cell::Error("#N/A".into())), // 12
        with("联系人无姓名有限公司", 11, t("13812345678")),        // 13
        with("联系人坏手机有限公司", 10, t("赵六")),               // 14
    ];
    data[12][11] = t("1381234");
    // 15: individual customer with a credit code (cross-field rule).
    let mut r = with("个人客户张三", 1, t("个人客户"));
    r[6] = t(&uscc(7));
    data.push(r);
    // 16: two contacts with one mobile.
    let mut r = good("联系人重复手机有限公司");
    r[10] = t("甲");
    r[11] = t("13812345678");
    r[12] = t("乙");
    r[13] = t("13812345678");
    data.push(r);
    // 17: several problems at once.
    let mut r = with("多处错误有限公司", 3, t("1234"));
    r[4] = t("bad@");
    data.push(r);
    let report = run(&w, &w.admin, opts(Entity::Customer), &h, data).await;
    assert_eq!(report.created, 1, "{:#?}", report.issues);
    assert_eq!(report.rejected, 15);
    let expect = [
        (3, "客户名称：必填", "Name: is required"),
        (4, "校验码", "check character"),
        (5, "电话", "Phone"),
        (6, "邮箱", "Email"),
        (7, "网址", "Website"),
        (8, "「Z」不是可选值之一", "'Z' is not one of"),
        (9, "「下周一」不是日期", "is not a date"),
        (10, "超过 64 个字符", "longer than 64"),
        (11, "找不到用户「nobody」", "no user 'nobody'"),
        (12, "错误值 #N/A", "#N/A"),
        (13, "联系人1姓名：必填", "contact 1 Name: is required"),
        (14, "联系人1手机", "contact 1 Mobile"),
        (
            15,
            "个人客户不能填写统一社会信用代码",
            "only enterprise customers",
        ),
        (16, "手机号相同", "the mobile"),
    ];
    for (row, zh, en) in expect {
        let i = issue(&report, row);
        assert_eq!(i.outcome, RowOutcome::Rejected, "row {row}");
        assert_eq!(
            i.kind,
            if row == 16 {
                IssueKind::DuplicateInFile
            } else {
                IssueKind::Invalid
            },
            "row {row}"
        );
        assert!(i.message_zh.contains(zh), "row {row}: {}", i.message_zh);
        assert!(i.message_en.contains(en), "row {row}: {}", i.message_en);
    }
    let many = issue(&report, 17);
    assert!(
        many.message_zh.contains("电话") && many.message_zh.contains("邮箱"),
        "{}",
        many.message_zh
    );
    assert_eq!(customers(&w, &w.admin).await.len(), 1);
}

/// Skip leaves the existing record alone; update changes it (non-empty
/// cells only) and adds new contacts; fail writes nothing; a row repeating
/// an earlier row is never imported twice.
pub async fn import_duplicate_policies_skip_update_fail(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let old = w
        .customer(
            &w.zhangsan,
            "华为技术有限公司",
            json!({"uscc": uscc(1), "level": "C", "city": "深圳市"}),
        )
        .await;
    let h = [
        "客户名称",
        "统一社会信用代码",
        "客户级别",
        "城市",
        "联系人1姓名",
        "联系人1手机",
    ];
    let data = || {
        vec![
            // Same credit code, another spelling of the name.
            vec![
                t("华为技术有限公司 "),
                t(&uscc(1)),
                t("A"),
                t(""),
                t("张伟"),
                t("13812345678"),
            ],
            vec![
                t("新客户有限公司"),
                t(""),
                t("B"),
                t("北京市"),
                t(""),
                t(""),
            ],
            // Repeats row 3 by name.
            vec![t("新客户有限公司"), t(""), t("C"), t(""), t(""), t("")],
        ]
    };
    // Skip.
    let r = run(&w, &w.zhangsan, opts(Entity::Customer), &h, data()).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (1, 2, 0),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 2);
    assert_eq!(
        (i.outcome, i.kind),
        (RowOutcome::Skipped, IssueKind::Duplicate)
    );
    assert!(
        i.message_zh.contains("已跳过")
            && i.message_zh.contains(old.code.as_deref().unwrap_or("?")),
        "{}",
        i.message_zh
    );
    assert!(
        i.message_en.contains(&format!(
            "unified social credit code {} already belongs to",
            uscc(1)
        )),
        "{}",
        i.message_en
    );
    let i = issue(&r, 4);
    assert_eq!(i.kind, IssueKind::DuplicateInFile);
    assert!(i.message_zh.contains("第 3 行"), "{}", i.message_zh);
    assert!(
        i.message_en
            .contains("name 新客户有限公司 repeats row 3 of this file"),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh
            .contains("客户名称 新客户有限公司 与本文件第 3 行重复"),
        "{}",
        i.message_zh
    );
    assert_eq!(
        find(&w, "华为技术有限公司")
            .await
            .expect("kept")
            .text("level"),
        Some("C")
    );
    // Update.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data()).await;
    assert_eq!((r.updated, r.unchanged), (1, 1), "{:#?}", r.issues);
    assert_eq!(r.contacts_created, 1);
    assert_eq!(r.rejected, 1, "a repeated row is not applied twice");
    let hw = find(&w, "华为技术有限公司").await.expect("updated");
    assert_eq!(hw.text("level"), Some("A"));
    assert_eq!(hw.text("city"), Some("深圳市"), "empty cells do not clear");
    assert_eq!(hw.version, 2);
    let n = find(&w, "新客户有限公司").await.expect("kept");
    assert_eq!(n.text("city"), Some("北京市"));
    // Fail: nothing written, the duplicates named.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    let before = count(&store, &w, Table::Customers).await;
    let mut data = data();
    data.push(vec![t("全新有限公司"), t(""), t("B"), t(""), t(""), t("")]);
    let r = run(&w, &w.zhangsan, o, &h, data).await;
    assert_eq!(r.status, ImportStatus::Failed);
    assert_eq!(r.import_id, None);
    assert!(r.rejected >= 2);
    assert_eq!(count(&store, &w, Table::Customers).await, before);
    assert!(find(&w, "全新有限公司").await.is_none());
}

/// A record the actor cannot see is still found as a duplicate; the message
/// does not reveal it, and updating it is refused.
pub async fn import_finds_duplicates_the_actor_cannot_see(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.wangwu, "隐藏客户有限公司", json!({"uscc": uscc(9)}))
        .await;
    let h = ["客户名称", "统一社会信用代码"];
    let data = || vec![vec![t("另一个名字有限公司"), t(&uscc(9))]];
    let r = run(&w, &w.zhangsan, opts(Entity::Customer), &h, data()).await;
    assert_eq!((r.created, r.skipped), (0, 1));
    let i = issue(&r, 2);
    assert!(i.message_zh.contains("另一个客户"), "{}", i.message_zh);
    assert!(!i.message_zh.contains("隐藏客户") && !i.message_en.contains("王五"));
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data()).await;
    assert_eq!((r.updated, r.rejected), (0, 1));
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
    assert_eq!(count(&store, &w, Table::Customers).await, 1);
}

/// A dry run reports what would happen and writes nothing: no records, no
/// import record, no codes used.
pub async fn import_dry_run_changes_nothing(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "已存在有限公司", json!({})).await;
    let h = ["客户名称", "电话"];
    let data = || {
        vec![
            vec![t("新一有限公司"), t("010-62345678")],
            vec![t("已存在有限公司"), t("")],
            vec![t("坏电话有限公司"), t("1")],
        ]
    };
    let mut o = opts(Entity::Customer);
    o.dry_run = true;
    let events_before = w
        .crm
        .pending_events("dry", 1000)
        .await
        .expect("events")
        .len();
    let r = run(&w, &w.admin, o, &h, data()).await;
    assert!(r.dry_run);
    assert_eq!(r.import_id, None);
    assert_eq!((r.created, r.skipped, r.rejected), (1, 1, 1));
    assert_eq!(count(&store, &w, Table::Customers).await, 1);
    assert_eq!(count(&store, &w, Table::Imports).await, 0);
    assert_eq!(
        w.crm
            .pending_events("dry", 1000)
            .await
            .expect("events")
            .len(),
        events_before
    );
    // The same import for real reports the same and uses the next code.
    let r = run(&w, &w.admin, opts(Entity::Customer), &h, data()).await;
    assert_eq!((r.created, r.skipped, r.rejected), (1, 1, 1));
    let n = find(&w, "新一有限公司").await.expect("created");
    assert_eq!(n.code.as_deref(), Some("KH-20261127-0002"));
}

/// A record an import updates that someone else changes between the
/// import's read and its write fails the write with a message naming the
/// row and the record and saying what was not written (a batch, or the
/// whole all-or-nothing import); an undo racing an edit fails as a
/// conflict naming the record, nothing undone.
pub async fn import_racing_an_edit_names_the_row_changed_meanwhile(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Arc::new(crate::crm::Crm::new(store.clone(), w.clock.clone()));
    let x = w
        .customer(&w.admin, "并发甲有限公司", json!({"level": "C"}))
        .await;
    let code = x.code.clone().expect("code");
    let h = ["客户名称", "客户级别"];
    let data = vec![
        vec![t("并发甲有限公司"), t("A")],
        vec![t("并发乙有限公司"), t("B")],
    ];
    let edit_x = |level: &'static str| {
        let (other, admin) = (other.clone(), w.admin.clone());
        let id = x.id;
        async move {
            let r = other
                .get_record(&admin, Entity::Customer, id)
                .await
                .expect("read");
            let mut f = crate::records::Fields::new();
            f.insert("level".into(), json!(level));
            other
                .update_record(&admin, Entity::Customer, id, r.version, f)
                .await
                .expect("edited meanwhile");
        }
    };
    for commit in [CommitMode::Batches, CommitMode::Atomic] {
        let level = if commit == CommitMode::Batches {
            "B"
        } else {
            "D"
        };
        let mut o = opts(Entity::Customer);
        o.policy = DuplicatePolicy::Update;
        o.commit = commit;
        let mut s = w
            .crm
            .begin_import(&w.admin, o, &headers(&h))
            .await
            .expect("begin");
        hooked.before_write(Table::Customers, edit_x(level));
        let pushed = s.push(&rows(data.clone())).await;
        let m = match (commit, pushed) {
            (CommitMode::Batches, Err(Error::InvalidState(m))) => m,
            (CommitMode::Atomic, Ok(_)) => match s.finish().await {
                Err(Error::InvalidState(m)) => m,
                other => panic!("expected a refusal, got {other:?}"),
            },
            (_, other) => panic!("{commit:?}: expected a refusal, got {other:?}"),
        };
        assert!(
            m.contains(&format!(
                "row 2: customer {code} was changed by someone else meanwhile"
            )) && m.contains(if commit == CommitMode::Batches {
                "nothing of rows 2–3 was written"
            } else {
                "nothing of the import was written"
            }),
            "{commit:?}: {m}"
        );
        let now = find(&w, "并发甲有限公司").await.expect("kept");
        assert_eq!(now.text("level"), Some(level), "{commit:?}");
        assert!(find(&w, "并发乙有限公司").await.is_none(), "{commit:?}");
    }
    // An undo racing an edit.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.admin, o, &h, vec![vec![t("并发甲有限公司"), t("A")]]).await;
    assert_eq!(r.updated, 1, "{:#?}", r.issues);
    let id = r.import_id.expect("id");
    hooked.before_write(Table::Customers, edit_x("C"));
    // It fails as a conflict naming the record (the CLI says that nothing
    // was undone): nothing is given back.
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::Conflict { entity, id, .. }) => {
            assert_eq!((entity.as_str(), id.as_str()), ("customer", code.as_str()))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let now = find(&w, "并发甲有限公司").await.expect("kept");
    assert_eq!(now.text("level"), Some("C"));
    let imports = w.crm.list_imports(&w.admin).await.expect("imports");
    let undone = imports.iter().find(|i| i.id == id).expect("listed");
    assert_eq!(undone.status, ImportStatus::Done);
}

/// The purge events an import undo writes name each record by its code, as
/// every other purge event does, besides the import they undo.
pub async fn import_undo_purge_events_carry_the_code(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = ["客户名称", "客户级别", "联系人1姓名", "联系人1手机"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![vec![
            t("撤销事件有限公司"),
            t("B"),
            t("王芳"),
            t("13812345679"),
        ]],
    )
    .await;
    assert_eq!((r.created, r.contacts_created), (1, 1), "{:#?}", r.issues);
    let c = find(&w, "撤销事件有限公司").await.expect("created");
    let code = c.code.clone().expect("code");
    let before = w
        .crm
        .pending_events("undo-events", 100_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    w.crm.ack_events("undo-events", before).await.expect("ack");
    let id = r.import_id.expect("import id");
    w.crm.undo_import(&w.admin, id).await.expect("undo");
    let events = w
        .crm
        .pending_events("undo-events", 100)
        .await
        .expect("events");
    for kind in ["customer.purged", "contact.purged"] {
        let e = events
            .iter()
            .find(|e| e.event.event_type == kind)
            .unwrap_or_else(|| panic!("{kind} in {events:#?}"));
        let payload = e.event.payload.to_value();
        assert_eq!(payload["import_id"], json!(id), "{kind}: {payload}");
        assert!(
            payload["code"].as_str().is_some_and(|s| !s.is_empty()),
            "{kind}: {payload}"
        );
        if kind == "customer.purged" {
            assert_eq!(payload["code"], json!(code), "{payload}");
        }
    }
}

/// Undo removes what the import created (contacts with their customers)
/// and restores what it updated; it is refused once a record changed since.
pub async fn import_undo_removes_and_restores(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let old = w
        .customer(
            &w.admin,
            "老客户有限公司",
            json!({"level": "C", "email": "Old@x.cn"}),
        )
        .await;
    let h = ["客户名称", "客户级别", "联系人1姓名", "联系人1手机", "邮箱"];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![
            vec![t("老客户有限公司"), t("A"), t(""), t(""), t("New@x.cn")],
            vec![
                t("新客户有限公司"),
                t("B"),
                t("张伟"),
                t("13812345678"),
                t(""),
            ],
        ],
    )
    .await;
    assert_eq!((r.created, r.updated, r.contacts_created), (1, 1, 1));
    let id = r.import_id.expect("import id");
    let undo = w.crm.undo_import(&w.admin, id).await.expect("undo");
    assert_eq!((undo.removed, undo.restored), (2, 1));
    assert!(find(&w, "新客户有限公司").await.is_none());
    assert_eq!(count(&store, &w, Table::Contacts).await, 0);
    let back = find(&w, "老客户有限公司").await.expect("kept");
    assert_eq!(back.text("level"), Some("C"));
    assert_eq!(back.id, old.id);
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, old.id.0)
        .await
        .expect("history");
    // The undo puts the derived e-mail key back too, and audits the fields
    // a user knows, not the derived columns.
    assert_eq!(back.text("email"), Some("Old@x.cn"));
    let stored = store
        .get(Table::Customers, old.id.0)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(stored.get("email_key").as_text(), Some("old@x.cn"));
    let undone = history
        .iter()
        .find(|a| a.action == "import_undo")
        .expect("the undo is audited");
    let fields: Vec<&str> = undone.changes.iter().map(|c| c.field.as_str()).collect();
    assert!(fields.contains(&"email"), "{fields:?}");
    assert!(!fields.iter().any(|f| f.ends_with("_key")), "{fields:?}");
    assert!(matches!(
        w.crm.undo_import(&w.admin, id).await,
        Err(Error::InvalidState(_))
    ));
    // A record changed after the import blocks its undo.
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![vec![t("再导入有限公司"), t("B"), t(""), t("")]],
    )
    .await;
    let c = find(&w, "再导入有限公司").await.expect("created");
    let mut f = crate::records::Fields::new();
    f.insert("level".into(), json!("A"));
    w.crm
        .update_record(&w.admin, Entity::Customer, c.id, c.version, f)
        .await
        .expect("edit");
    match w.crm.undo_import(&w.admin, r.import_id.expect("id")).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("changed since"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(find(&w, "再导入有限公司").await.is_some());
    // Only the importing user or an administrator may undo.
    assert!(matches!(
        w.crm
            .undo_import(&w.zhangsan, r.import_id.expect("id"))
            .await,
        Err(Error::Forbidden(_))
    ));
}

/// A batched import commits batch by batch; when it is interrupted, running
/// the same file again continues after the last committed batch without
/// creating anything twice.
pub async fn import_in_batches_resumes_without_duplicates(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = headers(&["客户名称", "客户级别"]);
    let data: Vec<Vec<Cell>> = (0..7)
        .map(|i| vec![t(&format!("批量客户{i}有限公司")), t("A")])
        .collect();
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 3;
    o.file_name = "customers.xlsx".into();
    o.file_hash = "sha256:abc".into();
    {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        assert_eq!(s.resume_after(), None);
        let all = rows(data.clone());
        s.push(&all[0..3]).await.expect("batch 1");
        s.push(&all[3..6]).await.expect("batch 2");
        // Interrupted: dropped without finish.
    }
    assert_eq!(count(&store, &w, Table::Customers).await, 6);
    let imports = w.crm.list_imports(&w.admin).await.expect("imports");
    assert_eq!(imports[0].status, ImportStatus::Running);
    assert_eq!(imports[0].rows_done, 7);
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &h)
        .await
        .expect("again");
    assert_eq!(s.resume_after(), Some(7));
    let all = rows(data.clone());
    for chunk in all.chunks(3) {
        s.push(chunk).await.expect("push");
    }
    let r = s.finish().await.expect("finish");
    assert_eq!(r.status, ImportStatus::Done);
    assert_eq!(r.resumed_after, Some(7));
    assert_eq!(r.rows, 7, "the whole file counts, as if uninterrupted");
    assert_eq!(r.created, 7, "counts carry over");
    assert_eq!(count(&store, &w, Table::Customers).await, 7);
    assert_eq!(r.import_id, Some(imports[0].id));
    // A finished import is not resumed: the same file again finds duplicates.
    let r = run(&w, &w.admin, o, &["客户名称", "客户级别"], data).await;
    assert_eq!((r.created, r.skipped), (0, 7));
    // Undo covers every batch.
    let undo = w
        .crm
        .undo_import(&w.admin, imports[0].id)
        .await
        .expect("undo");
    assert_eq!(undo.removed, 7);
    assert_eq!(count(&store, &w, Table::Customers).await, 0);
}

/// An all-or-nothing import holds all it writes until its end: a file of
/// more rows than `atomic_max_rows` is refused, naming checkpointed
/// batches, and nothing is written; its dry run, and batches, are not held.
pub async fn import_all_or_nothing_is_bounded(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let data = || {
        (0..3)
            .map(|i| vec![t(&format!("有界{i}有限公司"))])
            .collect::<Vec<_>>()
    };
    let mut o = opts(Entity::Customer);
    o.atomic_max_rows = 2;
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &headers(&["客户名称"]))
        .await
        .expect("begin");
    s.push(&rows(data())[..2]).await.expect("two rows are held");
    match s.push(&rows(data())[2..]).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains("at most 2 rows") && m.contains("--batches"),
                "{m}"
            )
        }
        other => panic!("expected the third row refused, got {other:?}"),
    }
    drop(s);
    assert!(customers(&w, &w.admin).await.is_empty());
    let mut dry = o.clone();
    dry.dry_run = true;
    let r = run(&w, &w.admin, dry, &["客户名称"], data()).await;
    assert_eq!(r.created, 3);
    let mut batches = o;
    batches.commit = CommitMode::Batches;
    let r = run(&w, &w.admin, batches.clone(), &["客户名称"], data()).await;
    assert_eq!(r.created, 3, "{:#?}", r.issues);
    assert_eq!(customers(&w, &w.admin).await.len(), 3);
    // A batch is one transaction: at most MAX_BATCH_SIZE rows.
    let mut big = batches;
    big.batch_size = crate::import::MAX_BATCH_SIZE + 1;
    match w
        .crm
        .begin_import(&w.admin, big.clone(), &headers(&["客户名称"]))
        .await
    {
        Err(Error::Validation(v)) => assert!(format!("{v:?}").contains("10000"), "{v:?}"),
        other => panic!("expected the batch size refused, got {other:?}"),
    }
    big.batch_size = crate::import::MAX_BATCH_SIZE;
    big.file_hash = "sha256:too-many-at-once".into();
    let mut s = w
        .crm
        .begin_import(&w.admin, big, &headers(&["客户名称"]))
        .await
        .expect("begin");
    let many: Vec<Vec<Cell>> = (0..=crate::import::MAX_BATCH_SIZE)
        .map(|i| vec![t(&format!("过多{i}有限公司"))])
        .collect();
    assert!(matches!(
        s.push(&rows(many)).await,
        Err(Error::Validation(_))
    ));
    drop(s);
    assert_eq!(customers(&w, &w.admin).await.len(), 3);
}

/// Imports into another owner or department need the transfer permission;
/// owners named in the file too; importing into a pool is refused until
/// pools exist.
pub async fn import_into_owner_department_and_pool_is_checked(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = ["客户名称", "负责人"];
    let mut o = opts(Entity::Customer);
    o.owner = Some("wangwu".into());
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![vec![t("王五的客户有限公司"), t("")]],
    )
    .await;
    assert_eq!(r.created, 1);
    let c = find(&w, "王五的客户有限公司").await.expect("created");
    assert_eq!(c.owner_id, Some(w.wangwu.user_id));
    assert_eq!(c.department_id, Some(w.group2));
    // The `created` event carries the code taken at commit and the owner.
    let id = c.id.to_string();
    let payloads = created_payloads(&w, |p| p["id"] == json!(id)).await;
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    assert!(c.code.is_some());
    assert_eq!(payloads[0]["code"], json!(c.code));
    assert_eq!(payloads[0]["owner_id"], json!(w.wangwu.user_id.to_string()));
    assert_eq!(payloads[0]["name"], json!("王五的客户有限公司"));
    let mut o = opts(Entity::Customer);
    o.department = Some("销售部".into());
    run(
        &w,
        &w.admin,
        o,
        &h,
        vec![vec![t("部门客户有限公司"), t("")]],
    )
    .await;
    let c = find(&w, "部门客户有限公司").await.expect("created");
    assert_eq!(c.department_id, Some(w.sales));
    assert_eq!(c.owner_id, Some(w.admin.user_id));
    // A user without transfer may import only for themselves.
    let plain = user_with_role(
        &w,
        "plain",
        role_perms(
            &[Action::Read, Action::Create, Action::Import],
            DataScope::Own,
        ),
        Vec::new(),
    )
    .await;
    let mut o = opts(Entity::Customer);
    o.owner = Some("zhangsan".into());
    assert!(matches!(
        w.crm.begin_import(&plain, o, &headers(&h)).await,
        Err(Error::Forbidden(_))
    ));
    let mut o = opts(Entity::Customer);
    o.department = Some("销售二组".into());
    assert!(matches!(
        w.crm.begin_import(&plain, o, &headers(&h)).await,
        Err(Error::Forbidden(_))
    ));
    let r = run(
        &w,
        &plain,
        opts(Entity::Customer),
        &h,
        vec![
            vec![t("自己的客户有限公司"), t("")],
            vec![t("别人的客户有限公司"), t("zhangsan")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1));
    assert_eq!(issue(&r, 3).kind, IssueKind::Forbidden);
    // An exported sheet updated back: its owner column names the owners
    // as they are, which a user without transfer may import to update
    // colleagues' customers; another owner is not changed by an import.
    let manager = user_with_role(
        &w,
        "manager",
        role_perms(
            &[Action::Read, Action::Update, Action::Create, Action::Import],
            DataScope::All,
        ),
        Vec::new(),
    )
    .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &manager,
        o,
        &["客户名称", "负责人", "客户级别"],
        vec![
            vec![t("王五的客户有限公司"), t("wangwu"), t("A")],
            vec![t("部门客户有限公司"), t("zhangsan"), t("A")],
        ],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 1), "{:#?}", r.issues);
    let i = issue(&r, 3);
    assert_eq!(i.kind, IssueKind::Invalid);
    assert!(i.message_en.contains("does not change the owner"), "{i:?}");
    assert!(i.message_zh.contains("不更改负责人"), "{i:?}");
    let c = find(&w, "王五的客户有限公司").await.expect("kept");
    assert_eq!(
        (c.owner_id, c.text("level")),
        (Some(w.wangwu.user_id), Some("A"))
    );
    assert_eq!(
        find(&w, "部门客户有限公司").await.expect("kept").owner_id,
        Some(w.admin.user_id)
    );
    // Into a customer pool's public area: no owner; pool admins only.
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.sales],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let mut o = opts(Entity::Customer);
    o.pool = Some("公海".into());
    assert!(matches!(
        w.crm.begin_import(&plain, o.clone(), &headers(&h)).await,
        Err(Error::Forbidden(_) | Error::NotFound { .. })
    ));
    let r = run(
        &w,
        &w.lisi,
        o.clone(),
        &["客户名称", "联系人1姓名"],
        vec![vec![t("公海客户有限公司"), t("孙经理")]],
    )
    .await;
    assert_eq!((r.created, r.contacts_created), (1, 1), "{:#?}", r.issues);
    let public = w
        .crm
        .pool_customers(
            &w.lisi,
            pool.id,
            crate::pool::Place::Public,
            &ListQuery::default(),
        )
        .await
        .expect("pool list");
    assert_eq!(public.items.len(), 1);
    assert_eq!(public.items[0].owner_id, None);
    // Its event and its contact's say so too, with the codes taken.
    let id = public.items[0].id.to_string();
    let payloads = created_payloads(&w, |p| p["id"] == json!(id)).await;
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    assert_eq!(payloads[0]["owner_id"], json!(null));
    assert_eq!(payloads[0]["place"], json!("public"));
    assert_eq!(payloads[0]["pool_id"], json!(pool.id.to_string()));
    assert_eq!(payloads[0]["code"], json!(public.items[0].code));
    let contacts = created_payloads(&w, |p| p["customer_id"] == json!(id)).await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["owner_id"], json!(null));
    assert_eq!(contacts[0]["name"], json!("孙经理"));
    assert!(
        contacts[0]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("LXR-")),
        "{contacts:?}"
    );
    o.owner = Some("lisi".into());
    assert!(matches!(
        w.crm.begin_import(&w.lisi, o, &headers(&h)).await,
        Err(Error::Validation(_))
    ));
}

/// Contacts refer to their customer by code or name (unknown ones are
/// rejected, duplicates by mobile found); users get departments and roles by
/// name, duplicate usernames found.
pub async fn import_contacts_and_users(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    w.customer(&w.zhangsan, "腾讯科技有限公司", json!({})).await;
    w.customer(&w.wangwu, "王五私有有限公司", json!({})).await;
    let h = ["所属客户", "姓名", "手机", "职务", "生日"];
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &h,
        vec![
            vec![
                t(hw.code.as_deref().unwrap_or("?")),
                t("张伟"),
                t("13812345678"),
                t("经理"),
                Cell::Number(31000.0),
            ],
            vec![
                t("腾讯科技有限公司"),
                t("李娜"),
                t("13912345678"),
                t(""),
                t(""),
            ],
            vec![t("没有这个客户"), t("王芳"), t(""), t(""), t("")],
            vec![t("王五私有有限公司"), t("赵强"), t(""), t(""), t("")],
            vec![
                t("华为技术有限公司"),
                t("张伟二"),
                t("138-1234-5678"),
                t(""),
                t(""),
            ],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.rejected, r.skipped),
        (2, 2, 1),
        "{:#?}",
        r.issues
    );
    assert!(
        issue(&r, 4).message_zh.contains("找不到"),
        "{}",
        issue(&r, 4).message_zh
    );
    assert!(
        issue(&r, 5).message_zh.contains("找不到"),
        "invisible customers are not found"
    );
    assert_eq!(issue(&r, 6).kind, IssueKind::DuplicateInFile);
    assert!(
        issue(&r, 6)
            .message_en
            .contains("mobile 13812345678 for the same customer repeats row 2"),
        "{}",
        issue(&r, 6).message_en
    );
    assert!(
        issue(&r, 6)
            .message_zh
            .contains("同一客户的手机号 13812345678 与本文件第 2 行重复"),
        "{}",
        issue(&r, 6).message_zh
    );
    let contacts = w
        .crm
        .list_records(&w.zhangsan, Entity::Contact, &ListQuery::default())
        .await
        .expect("contacts");
    let zw = contacts
        .items
        .iter()
        .find(|c| c.text("name") == Some("张伟"))
        .expect("张伟");
    assert_eq!(zw.text("birthday"), Some("1984-11-14"));
    assert_eq!(zw.owner_id, Some(w.zhangsan.user_id));
    // Users.
    let h = ["用户名", "姓名", "部门", "角色", "手机", "上级"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &h,
        vec![
            vec![
                t("xiaoming"),
                t("小明"),
                t("销售一组"),
                t("销售"),
                t("13700000001"),
                t("lisi"),
            ],
            vec![t("zhangsan"), t("张三"), t(""), t(""), t(""), t("")],
            vec![
                t("xiaohong"),
                t("小红"),
                t("不存在的部门"),
                t(""),
                t(""),
                t(""),
            ],
            vec![t("xiaoming"), t("小明二"), t(""), t(""), t(""), t("")],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (1, 2, 1),
        "{:#?}",
        r.issues
    );
    assert!(issue(&r, 4).message_zh.contains("部门"));
    let xm = w
        .crm
        .user_by_username(&w.admin, "xiaoming")
        .await
        .expect("imported user");
    assert_eq!(xm.department_id, Some(w.group1));
    assert_eq!(xm.role_ids.len(), 1);
    assert_eq!(xm.superior_id, Some(w.lisi.user_id));
    assert!(matches!(
        w.crm
            .begin_import(&w.zhangsan, opts(Entity::User), &headers(&h))
            .await,
        Err(Error::Forbidden(_))
    ));
}

/// Products: categories by path or name, prices in yuan exact to the fen,
/// the price list exported with the import's headers,
/// tax rates as typed, automatic codes, duplicates by code (or by name and
/// specification) within the file and against the catalogue, updates that
/// undo restores, created products put in the recycle bin by undo, the
/// template's columns, and the create permission.
pub async fn import_products_with_categories_duplicates_and_undo(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let office = w
        .crm
        .create_product_category(&w.admin, "办公设备", None)
        .await
        .expect("category");
    let printers = w
        .crm
        .create_product_category(&w.admin, "打印机", Some(office.id))
        .await
        .expect("sub-category");
    let old = w
        .crm
        .create_product(
            &w.admin,
            crate::sales::product::ProductInput {
                code: Some("CP-EXIST".into()),
                name: Some("旧打印机".into()),
                list_price: Some(crate::money::Money::parse("100").expect("money")),
                ..Default::default()
            },
        )
        .await
        .expect("product");
    let cols = w
        .crm
        .template_columns(&w.admin, Entity::Product, 0)
        .await
        .expect("template");
    let col = |k: &str| cols.iter().find(|c| c.key == k).expect(k).clone();
    assert!(col("name").required && !col("code").required);
    assert_eq!(col("list_price").kind, crate::import::ValueKind::Money);
    assert!(
        col("category_id")
            .options
            .contains(&"办公设备/打印机".to_string())
    );
    assert_eq!(col("status").options, vec!["在售", "停售"]);
    let h = [
        "产品编号",
        "Name",
        "类别",
        "单位",
        "单价",
        "税率",
        "规格",
        "状态",
        "无关列",
    ];
    let row = |c: &[&str]| c.iter().map(|s| t(s)).collect::<Vec<_>>();
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &h,
        vec![
            row(&[
                "CP-1",
                "激光打印机",
                "办公设备/打印机",
                "台",
                "¥2,999.00",
                "13%",
                "A4",
                "在售",
                "x",
            ]),
            vec![
                t(""),
                t("墨盒"),
                t("打印机"),
                t("个"),
                Cell::Number(99.5),
                Cell::Number(0.13),
                t("黑色"),
                t(""),
                t(""),
            ],
            row(&["CP-EXIST", "新名字", "", "", "150", "9", "", "", ""]),
            row(&["CP-1", "重复", "", "", "1", "", "", "", ""]),
            row(&["CP-3", "坏价格", "", "", "abc", "15%", "", "停产", ""]),
            row(&["CP-4", "无类别", "不存在", "", "10", "", "", "", ""]),
            row(&["", " 墨盒 ", "", "", "98", "", "黑 色", "", ""]),
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (2, 3, 2),
        "{:#?}",
        r.issues
    );
    assert_eq!(r.ignored_columns, vec!["无关列".to_string()]);
    assert_eq!(issue(&r, 4).kind, IssueKind::Duplicate);
    assert!(
        issue(&r, 4).message_zh.contains("已存在"),
        "{}",
        issue(&r, 4).message_zh
    );
    assert_eq!(issue(&r, 5).kind, IssueKind::DuplicateInFile);
    assert_eq!(issue(&r, 8).kind, IssueKind::DuplicateInFile);
    let bad = issue(&r, 6);
    assert_eq!(bad.kind, IssueKind::Invalid);
    for part in ["不是金额", "不是 13%、9%、6%、5%、3%、1%、0% 之一", "停产"] {
        assert!(bad.message_zh.contains(part), "{}", bad.message_zh);
    }
    assert!(
        bad.message_en.contains("'abc' is not an amount"),
        "{}",
        bad.message_en
    );
    assert!(
        issue(&r, 7).message_zh.contains("找不到"),
        "{}",
        issue(&r, 7).message_zh
    );
    let p1 = w.crm.product_by_code(&w.admin, "CP-1").await.expect("CP-1");
    assert_eq!(p1.list_price.minor, 299_900);
    assert_eq!((p1.tax_rate, p1.category_id), (1300, Some(printers.id)));
    assert_eq!((p1.unit.as_str(), p1.spec.as_deref()), ("台", Some("A4")));
    let page = w
        .crm
        .list_products(
            &w.admin,
            &crate::sales::product::ProductQuery {
                search: Some("墨盒".into()),
                ..Default::default()
            },
        )
        .await
        .expect("search");
    assert_eq!(page.items.len(), 1);
    let ink = &page.items[0];
    assert!(ink.code.starts_with("CP-2"), "automatic code: {}", ink.code);
    assert_eq!((ink.list_price.minor, ink.tax_rate), (9_950, 1300));
    // The price list exports with the import's headers and values.
    let cols = w
        .crm
        .export_columns(&w.admin, Entity::Product, &[])
        .await
        .expect("export columns");
    assert_eq!(cols[0].header_zh, "产品编号");
    let (rows, more) = w
        .crm
        .product_export_page(
            &w.admin,
            &cols,
            &crate::sales::product::ProductQuery {
                search: Some("激光".into()),
                page: 1,
                per_page: 10,
                ..Default::default()
            },
        )
        .await
        .expect("export page");
    assert!(!more);
    assert_eq!(
        rows,
        vec![vec![
            ExportValue::Text("CP-1".into()),
            ExportValue::Text("激光打印机".into()),
            ExportValue::Text("办公设备/打印机".into()),
            ExportValue::Text("台".into()),
            ExportValue::Money(299_900),
            ExportValue::Empty,
            ExportValue::Text("13%".into()),
            ExportValue::Text("A4".into()),
            ExportValue::Empty,
            ExportValue::Text("在售".into()),
            ExportValue::Number(1.0),
        ]]
    );
    assert_eq!(cols.last().map(|c| c.header_zh.as_str()), Some("版本"));
    let picked = w
        .crm
        .export_columns(&w.admin, Entity::Product, &["Code".into(), "标准价".into()])
        .await
        .expect("picked columns");
    assert_eq!(picked.len(), 2);
    assert!(matches!(
        w.crm
            .export_columns(&w.admin, Entity::Product, &["库存".into()])
            .await,
        Err(Error::Validation(_))
    ));
    // Update by code; undo restores the old price.
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Update;
    let u = run(
        &w,
        &w.admin,
        o.clone(),
        &["产品编号", "标准价", "版本"],
        vec![row(&["CP-EXIST", "150", "1"])],
    )
    .await;
    assert_eq!(
        (u.updated, u.created, u.rejected),
        (1, 0, 0),
        "{:#?}",
        u.issues
    );
    let now = w.crm.product(&w.admin, old.id).await.expect("product");
    assert_eq!(
        (now.list_price.minor, now.name.as_str()),
        (15_000, "旧打印机")
    );
    w.crm
        .undo_import(&w.admin, u.import_id.expect("import id"))
        .await
        .expect("undo update");
    let back = w.crm.product(&w.admin, old.id).await.expect("product");
    assert_eq!(back.list_price.minor, 10_000);
    // The row of version 1 again: the product changed since (updated,
    // then undone), so it is refused rather than undoing that; unchanged
    // values change nothing and pass.
    assert!(back.version > 1);
    let stale = run(
        &w,
        &w.admin,
        o.clone(),
        &["产品编号", "标准价", "版本"],
        vec![row(&["CP-EXIST", "150", "1"])],
    )
    .await;
    assert_eq!(
        (stale.updated, stale.rejected),
        (0, 1),
        "{:#?}",
        stale.issues
    );
    let same = run(
        &w,
        &w.admin,
        o.clone(),
        &["产品编号", "标准价", "版本"],
        vec![row(&["CP-EXIST", "100", "1"])],
    )
    .await;
    assert_eq!(
        (same.updated, same.rejected, same.unchanged),
        (0, 0, 1),
        "{:#?}",
        same.issues
    );
    // A version the product never had is no export of it.
    let future = run(
        &w,
        &w.admin,
        o.clone(),
        &["产品编号", "标准价", "版本"],
        vec![row(&["CP-EXIST", "150", "99"])],
    )
    .await;
    assert_eq!(
        (future.updated, future.rejected),
        (0, 1),
        "{:#?}",
        future.issues
    );
    assert!(
        issue(&future, 2).message_en.contains("no version 99"),
        "{:#?}",
        future.issues
    );
    let i = issue(&stale, 2);
    assert!(
        i.message_en.contains("CP-EXIST") && i.message_en.contains("changed since"),
        "{i:#?}"
    );
    assert!(i.message_zh.contains("导出后已被修改"), "{i:#?}");
    assert_eq!(
        w.crm
            .product(&w.admin, old.id)
            .await
            .expect("p")
            .list_price
            .minor,
        10_000
    );
    w.crm
        .undo_import(&w.admin, r.import_id.expect("import id"))
        .await
        .expect("undo create");
    assert!(
        w.crm
            .product(&w.admin, p1.id)
            .await
            .expect("binned")
            .deleted
    );
    assert!(w.crm.product_by_code(&w.admin, "CP-1").await.is_err());
    // The binned product keeps its code: a row giving it to a new product
    // is rejected, naming the product to restore.
    let taken = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &["产品编号", "产品名称", "标准价"],
        vec![row(&["CP-1", "另一台打印机", "100"])],
    )
    .await;
    assert_eq!(
        (taken.created, taken.rejected),
        (0, 1),
        "{:#?}",
        taken.issues
    );
    let i = &taken.issues[0];
    assert!(
        i.message_en.contains("CP-1") && i.message_en.contains("recycle bin"),
        "{}",
        i.message_en
    );
    // Re-importing an unchanged row changes nothing, even where the stored
    // search keys were made by an older rule.
    let current = w.crm.product(&w.admin, old.id).await.expect("product");
    store
        .apply(&crate::store::ChangeSet {
            ops: vec![crate::store::Op::Update {
                table: Table::Products,
                id: old.id,
                expected_version: current.version,
                values: vec![("pinyin_keys", crate::value::Value::from("stale keys"))],
            }],
            ..Default::default()
        })
        .await
        .expect("stale keys");
    let h3 = ["产品编号", "产品名称", "标准价"];
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Update;
    let again = run(
        &w,
        &w.admin,
        o,
        &h3,
        vec![row(&["CP-EXIST", "旧打印机", "100"])],
    )
    .await;
    assert_eq!(
        (again.updated, again.unchanged),
        (0, 1),
        "{:#?}",
        again.issues
    );
    // One product updated by two rows of a file: the second is refused.
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Update;
    let twice = run(
        &w,
        &w.admin,
        o,
        &h3,
        vec![
            row(&["CP-EXIST", "旧打印机二代", "120"]),
            row(&["", "旧打印机", "130"]),
        ],
    )
    .await;
    assert_eq!(
        (twice.updated, twice.rejected),
        (1, 1),
        "{:#?}",
        twice.issues
    );
    assert_eq!(issue(&twice, 3).kind, IssueKind::DuplicateInFile);
    let renamed = w.crm.product(&w.admin, old.id).await.expect("product");
    assert_eq!(
        (renamed.name.as_str(), renamed.list_price.minor),
        ("旧打印机二代", 12_000)
    );
    // A row without a code naming a product an earlier coded row creates is
    // a repeat, not a second product.
    let rep = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &h3,
        vec![row(&["NEW-1", "订书机", "20"]), row(&["", "订书机", "20"])],
    )
    .await;
    assert_eq!((rep.created, rep.skipped), (1, 1), "{:#?}", rep.issues);
    assert_eq!(issue(&rep, 3).kind, IssueKind::DuplicateInFile);
    // Importing products needs the create permission too.
    let importer = user_with_role(
        &w,
        "pimporter",
        vec![Permission {
            entity: Entity::Product,
            action: Action::Import,
            scope: DataScope::All,
        }],
        Vec::new(),
    )
    .await;
    assert!(matches!(
        w.crm
            .begin_import(&importer, opts(Entity::Product), &headers(&h))
            .await,
        Err(Error::Forbidden(_))
    ));
    // A price-list keeper (import and update, no create) may run a price
    // list; its rows naming unknown products are refused one by one.
    let keeper = user_with_role(
        &w,
        "pricekeeper",
        vec![
            Permission {
                entity: Entity::Product,
                action: Action::Import,
                scope: DataScope::All,
            },
            Permission {
                entity: Entity::Product,
                action: Action::Update,
                scope: DataScope::All,
            },
        ],
        Vec::new(),
    )
    .await;
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Update;
    let prices = run(
        &w,
        &keeper,
        o,
        &h3,
        vec![
            row(&["CP-EXIST", "旧打印机二代", "125"]),
            row(&["NO-SUCH", "新产品", "1"]),
        ],
    )
    .await;
    assert_eq!(
        (prices.updated, prices.rejected),
        (1, 1),
        "{:#?}",
        prices.issues
    );
    assert_eq!(issue(&prices, 3).kind, IssueKind::Forbidden);
    let mut o = opts(Entity::Product);
    o.owner = Some("zhangsan".into());
    assert!(matches!(
        w.crm.begin_import(&w.admin, o, &headers(&h)).await,
        Err(Error::Validation(_))
    ));
}

/// Importing needs the import permission; a header without a required
/// column, with a field twice, or with a field the actor may not set is
/// refused before any row is read (a read-only column is read back, and
/// refuses only the rows giving it a value).
pub async fn import_needs_permission_and_required_columns(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let reader = user_with_role(
        &w,
        "reader",
        role_perms(&[Action::Read, Action::Create], DataScope::Own),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "level".into(),
            access: FieldAccess::ReadOnly,
        }],
    )
    .await;
    assert!(matches!(
        w.crm
            .begin_import(&reader, opts(Entity::Customer), &headers(&["客户名称"]))
            .await,
        Err(Error::Forbidden(_))
    ));
    let frozen = user_with_role(
        &w,
        "frozen",
        role_perms(
            &[Action::Read, Action::Create, Action::Import],
            DataScope::Own,
        ),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "level".into(),
            access: FieldAccess::ReadOnly,
        }],
    )
    .await;
    // A read-only column is read back (as an export writes it), never
    // written: a row giving it a value is refused, an empty cell is not.
    let r = run(
        &w,
        &frozen,
        opts(Entity::Customer),
        &["客户名称", "客户级别"],
        vec![
            vec![t("冻结级别有限公司"), t("A")],
            vec![t("冻结空级别有限公司"), t("")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
    assert!(
        issue(&r, 2).message_en.contains("read-only"),
        "{}",
        issue(&r, 2).message_en
    );
    match w
        .crm
        .begin_import(
            &w.admin,
            opts(Entity::Customer),
            &headers(&["电话", "Level"]),
        )
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("客户名称"), "{v}"),
        other => panic!("expected a missing column, got {other:?}"),
    }
    match w
        .crm
        .begin_import(
            &w.admin,
            opts(Entity::Customer),
            &headers(&["客户名称", "Name"]),
        )
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("列重复"), "{v}"),
        other => panic!("expected a repeated column, got {other:?}"),
    }
    match w
        .crm
        .begin_import(
            &w.admin,
            opts(Entity::Customer),
            &headers(&["客户名称", "联系人2手机"]),
        )
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("联系人2"), "{v}"),
        other => panic!("expected a contact group without name, got {other:?}"),
    }
    assert!(
        w.crm
            .begin_import(&w.admin, opts(Entity::FollowUp), &headers(&["跟进内容"]))
            .await
            .is_err()
    );
}

/// Exports contain only what the actor sees: their scope, masked fields
/// masked, hidden fields absent (and refused when picked); picked columns in
/// the order picked; dates typed; every page read.
pub async fn export_applies_scope_field_rules_and_picks(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    for i in 0..5 {
        w.customer(
            &w.zhangsan,
            &format!("张三客户{i}有限公司"),
            json!({"phone": "13812345678", "next_follow_up": "2026-12-01", "level": "A"}),
        )
        .await;
    }
    w.customer(&w.wangwu, "王五客户有限公司", json!({})).await;
    let cols = w
        .crm
        .export_columns(&w.zhangsan, Entity::Customer, &[])
        .await
        .expect("columns");
    let mut cur = w
        .crm
        .export_cursor(
            &w.zhangsan,
            Entity::Customer,
            ListQuery::default(),
            cols.clone(),
            2,
        )
        .await
        .expect("cursor");
    let mut n = 0;
    let name_at = cols.iter().position(|c| c.key == "name").expect("name");
    let date_at = cols
        .iter()
        .position(|c| c.key == "next_follow_up")
        .expect("date");
    while let Some(page) = cur.next_page().await.expect("page") {
        for row in page {
            n += 1;
            match &row[name_at] {
                ExportValue::Text(s) => assert!(s.starts_with("张三客户"), "{s}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                row[date_at],
                ExportValue::Date(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("d"))
            );
        }
    }
    assert_eq!(n, 5, "only the actor's own customers");
    // Field rules.
    let masked = user_with_role(
        &w,
        "masked",
        role_perms(&[Action::Read, Action::Export], DataScope::All),
        vec![
            FieldRule {
                entity: Entity::Customer,
                field: "phone".into(),
                access: FieldAccess::Masked,
            },
            FieldRule {
                entity: Entity::Customer,
                field: "level".into(),
                access: FieldAccess::Hidden,
            },
        ],
    )
    .await;
    let cols = w
        .crm
        .export_columns(&masked, Entity::Customer, &[])
        .await
        .expect("columns");
    assert!(cols.iter().all(|c| c.key != "level"));
    assert!(matches!(
        w.crm
            .export_columns(&masked, Entity::Customer, &["客户级别".to_string()])
            .await,
        Err(Error::Forbidden(_))
    ));
    let picked = w
        .crm
        .export_columns(
            &masked,
            Entity::Customer,
            &["电话".to_string(), "name".to_string(), "负责人".to_string()],
        )
        .await
        .expect("picked");
    assert_eq!(
        picked.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        vec!["phone", "name", "owner_id"]
    );
    let q = ListQuery::default().filter(Cond::StartsWith("name".into(), "张三客户0".into()));
    let mut cur = w
        .crm
        .export_cursor(&masked, Entity::Customer, q, picked, 100)
        .await
        .expect("cursor");
    let page = cur.next_page().await.expect("page").expect("one page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0][0], ExportValue::Text("138****5678".into()));
    assert_eq!(page[0][2], ExportValue::Text("张三".into()));
    assert!(cur.next_page().await.expect("end").is_none());
    // No export permission, no export.
    let reader = user_with_role(
        &w,
        "noexport",
        role_perms(&[Action::Read], DataScope::All),
        Vec::new(),
    )
    .await;
    assert!(matches!(
        w.crm.export_columns(&reader, Entity::Customer, &[]).await,
        Err(Error::Forbidden(_))
    ));
}

/// A batch prepared while the one before is not yet written (what crm-io
/// does) still sees the keys that batch writes: customers of two batches
/// sharing a reported phone number end up flagged as duplicates of each
/// other, and codes follow the rows.
pub async fn import_prepared_ahead_keeps_shared_keys_flagged(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::{company_report, group_of};
    let w = World::new(store).await;
    let h = headers(&["客户名称", "电话"]);
    let all = rows(vec![
        vec![t("先行一有限公司"), t("010-62340001")],
        vec![t("先行二有限公司"), t("010-62340002")],
        // Shares batch 1's first phone (reported, not refused).
        vec![t("先行三有限公司"), t("010-62340001")],
        vec![t("先行四有限公司"), t("010-62340004")],
    ]);
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let first = s.prepare(&all[0..2], None).await.expect("prepare 1");
    // Batch 2 is prepared before batch 1 is written.
    let second = s.prepare(&all[2..4], None).await.expect("prepare 2");
    // Not a third: it could miss what batch 1 writes.
    match s.prepare(&[], None).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("commit the older"), "{m}"),
        other => panic!("expected InvalidState, got {other:?}"),
    }
    first.write.commit().await.expect("commit 1");
    second.write.commit().await.expect("commit 2");
    let r = s.finish().await.expect("finish");
    assert_eq!(r.created, 4, "{:?}", r.issues);
    let list = customers(&w, &w.admin).await;
    let id_of = |name: &str| {
        list.iter()
            .find(|c| c.text("name") == Some(name))
            .unwrap_or_else(|| panic!("{name} imported"))
    };
    let report = company_report(&w).await;
    let phone = group_of(&report, "phone");
    let mut expected = vec![id_of("先行一有限公司").id, id_of("先行三有限公司").id];
    expected.sort_by_key(|i| i.0);
    let mut got = phone.clone();
    got.sort_by_key(|i| i.0);
    assert_eq!(got, expected, "{report:?}");
    let mut codes: Vec<(String, String)> = list
        .iter()
        .map(|c| {
            (
                c.code.clone().unwrap_or_default(),
                c.text("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    codes.sort();
    let names: Vec<&str> = codes.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "先行一有限公司",
            "先行二有限公司",
            "先行三有限公司",
            "先行四有限公司"
        ]
    );
}

/// Under the update policy a row that gives a record a new credit code frees
/// the old one: a later row carrying the old code creates a customer, in
/// the same batch or in the next one prepared before the update is written.
pub async fn import_update_that_rekeys_a_record_frees_its_old_key(store: Arc<dyn Store>) {
    use crate::ids::RecordId;
    use crate::testing::pool_suite::{company_report, group_of};
    let w = World::new(store).await;
    let x = w
        .customer(&w.admin, "换码甲有限公司", json!({"uscc": uscc(1)}))
        .await;
    let z = w
        .customer(&w.admin, "换码乙有限公司", json!({"uscc": uscc(3)}))
        .await;
    let h = headers(&["客户名称", "统一社会信用代码"]);
    let (c1, c2, c3, c4) = (uscc(1), uscc(2), uscc(3), uscc(4));
    let all = rows(vec![
        vec![t("换码甲有限公司"), t(&c2)],
        vec![t("换码乙有限公司"), t(&c4)],
        // Same batch: the old code of the record updated just above.
        vec![t("接码丙有限公司"), t(&c3)],
        // Next batch: the old code of the record updated in batch 1.
        vec![t("接码丁有限公司"), t(&c1)],
    ]);
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.commit = CommitMode::Batches;
    o.batch_size = 3;
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &h)
        .await
        .expect("begin");
    let first = s.prepare(&all[0..3], None).await.expect("prepare 1");
    let second = s.prepare(&all[3..4], None).await.expect("prepare 2");
    first.write.commit().await.expect("commit 1");
    second.write.commit().await.expect("commit 2");
    let r = s.finish().await.expect("finish");
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (2, 2, 0),
        "{:?}",
        r.issues
    );
    // Names only reported: two customers share one. A row renames the first
    // (found by its code); a later row with that name updates the second,
    // the one still holding it, instead of creating a third.
    w.crm
        .set_dedupe_rule(&w.admin, "name", crate::dedupe::DedupeMode::Warn)
        .await
        .expect("names reported");
    let y1 = w
        .customer(&w.admin, "同名有限公司", json!({"uscc": uscc(11)}))
        .await;
    // Ids follow the clock: the renamed one comes first in id order.
    w.clock.advance(chrono::Duration::seconds(1));
    let y2 = w
        .customer(&w.admin, "同名有限公司", json!({"uscc": uscc(12)}))
        .await;
    let (c11, c13) = (uscc(11), uscc(13));
    let again = rows(vec![
        vec![t("改名集团有限公司"), t(&c11)],
        vec![t("同名有限公司"), t(&c13)],
    ]);
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let only = s.prepare(&again, None).await.expect("prepare");
    only.write.commit().await.expect("commit");
    let r = s.finish().await.expect("finish");
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (0, 2, 0),
        "{:?}",
        r.issues
    );
    let list = customers(&w, &w.admin).await;
    let of = |id: RecordId| list.iter().find(|c| c.id == id).expect("customer");
    assert_eq!(of(y1.id).text("name"), Some("改名集团有限公司"));
    assert_eq!(of(y2.id).text("uscc"), Some(c13.as_str()));
    let list = customers(&w, &w.admin).await;
    let code_of = |name: &str| {
        list.iter()
            .find(|c| c.text("name") == Some(name))
            .and_then(|c| c.text("uscc"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(code_of("换码甲有限公司"), c2);
    assert_eq!(code_of("换码乙有限公司"), c4);
    assert_eq!(code_of("接码丙有限公司"), c3);
    assert_eq!(code_of("接码丁有限公司"), c1);
    assert!(list.iter().any(|c| c.id == x.id) && list.iter().any(|c| c.id == z.id));
    let report = company_report(&w).await;
    assert!(group_of(&report, "uscc").is_empty(), "{report:?}");

    // All or nothing: nothing is written until the end, so the record a row
    // moves away from its code still holds it when the import is written;
    // a later row taking that code is not refused by its own import.
    let a = w
        .customer(&w.admin, "原子甲有限公司", json!({"uscc": uscc(21)}))
        .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.batch_size = 1;
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "统一社会信用代码"],
        // Pushed two rows at a time: the code is taken in the next push.
        vec![
            vec![t("原子丙有限公司"), t(&uscc(23))],
            vec![t("原子甲有限公司"), t(&uscc(22))],
            vec![t("原子乙有限公司"), t(&uscc(21))],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (2, 1, 0),
        "{:?}",
        r.issues
    );
    let list = customers(&w, &w.admin).await;
    let holder = list
        .iter()
        .find(|c| c.text("uscc") == Some(uscc(21).as_str()))
        .expect("the old code taken");
    assert_eq!(holder.text("name"), Some("原子乙有限公司"));
    assert!(
        list.iter()
            .any(|c| c.id == a.id && c.text("uscc") == Some(uscc(22).as_str()))
    );

    // A row whose code names one record and whose (refusing) name another
    // updates neither: it would give the first the second's name. (Names
    // only reported, as above, it updates the first.)
    w.crm
        .set_dedupe_rule(&w.admin, "name", crate::dedupe::DedupeMode::Block)
        .await
        .expect("names refused");
    let p = w
        .customer(&w.admin, "甲方有限公司", json!({"uscc": uscc(51)}))
        .await;
    w.customer(&w.admin, "乙方有限公司", json!({"uscc": uscc(52)}))
        .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "统一社会信用代码"],
        vec![vec![t("乙方有限公司"), t(&uscc(51))]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:?}", r.issues);
    let why = issue(&r, 2);
    assert!(why.message_en.contains("matches two records"), "{why:?}");
    assert!(why.message_zh.contains("两条记录"), "{why:?}");
    let list = customers(&w, &w.admin).await;
    let kept = list.iter().find(|c| c.id == p.id).expect("record");
    assert_eq!(kept.text("name"), Some("甲方有限公司"));
}

/// Whether `create` and `batch` guard a common key: on PostgreSQL the two
/// change sets then wait for each other (see `Guard`).
fn guarded_alike(create: &[String], batch: &[String]) -> bool {
    create.iter().any(|k| batch.contains(k))
}

fn refused_as_taken(result: Result<(), Error>, what: &str, rows: &str) {
    match result {
        Err(Error::Duplicate { message, .. }) => {
            assert!(
                message.contains("another user saved")
                    && message.contains(what)
                    && message.contains(rows),
                "{message}"
            );
        }
        other => panic!("expected the batch to be refused as a duplicate, got {other:?}"),
    }
}

/// A record created by another user between an import's duplicate probes
/// and the write of its batch fails that batch (checkpointed imports) or
/// the whole import (all or nothing) instead of being silently duplicated:
/// the batch's change set repeats its probes inside the write transaction,
/// under the same keys a single create guards. Nothing of the refused batch
/// is written, and importing the file again resumes and reports the row as
/// a duplicate. Names and credit codes, refusing phone keys and a contact's
/// mobile within its customer are covered, a name an update gives a
/// record, and a product's code; a record the import moves away from a key does not count (see
/// the rekeying scenario).
pub async fn import_and_a_concurrent_create_do_not_both_pass(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let last_keys = || hooked.guard_keys().last().cloned().unwrap_or_default();

    // Checkpointed batches: names and credit codes.
    let h = headers(&["客户名称", "统一社会信用代码"]);
    let all = rows(vec![
        vec![t("并发甲有限公司"), t(&uscc(31))],
        vec![t("并发乙有限公司"), t(&uscc(32))],
    ]);
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 10;
    o.file_name = "race.xlsx".into();
    o.file_hash = "sha256:race".into();
    {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        let batch = s.prepare(&all, None).await.expect("prepare");
        assert!(batch.issues.is_empty(), "{:?}", batch.issues);
        // Another user, meanwhile: same name, spelled differently.
        w.customer(&w.zhangsan, "并发甲有限公司 ", json!({})).await;
        let create = last_keys();
        refused_as_taken(batch.write.commit().await, "name", "rows 2–3");
        assert!(
            guarded_alike(&create, &last_keys()),
            "{create:?} not among the batch's keys"
        );
    }
    let names: Vec<String> = customers(&w, &w.admin)
        .await
        .iter()
        .filter_map(|c| c.text("name").map(str::to_string))
        .collect();
    assert_eq!(names, ["并发甲有限公司"], "nothing of the batch is written");
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "统一社会信用代码"],
        vec![
            vec![t("并发甲有限公司"), t(&uscc(31))],
            vec![t("并发乙有限公司"), t(&uscc(32))],
        ],
    )
    .await;
    assert_eq!((r.created, r.skipped), (1, 1), "{:?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Duplicate);

    // A credit code taken under another name.
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let batch = s
        .prepare(&rows(vec![vec![t("代码丙有限公司"), t(&uscc(33))]]), None)
        .await
        .expect("prepare");
    w.customer(&w.zhangsan, "别名丙有限公司", json!({"uscc": uscc(33)}))
        .await;
    let create = last_keys();
    refused_as_taken(
        batch.write.commit().await,
        "unified social credit code",
        "rows 2–2",
    );
    assert!(guarded_alike(&create, &last_keys()));
    drop(s);
    assert!(find(&w, "代码丙有限公司").await.is_none());

    // All or nothing, with phones refused (found through the customers'
    // phone column).
    w.crm
        .set_dedupe_rule(&w.admin, "phone", crate::dedupe::DedupeMode::Block)
        .await
        .expect("phones refused");
    let h = headers(&["客户名称", "电话"]);
    let mut s = w
        .crm
        .begin_import(&w.admin, opts(Entity::Customer), &h)
        .await
        .expect("begin");
    let batch = s
        .prepare(
            &rows(vec![
                vec![t("电话甲有限公司"), t("010-62350001")],
                vec![t("电话乙有限公司"), t("010-62350002")],
            ]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    batch.write.commit().await.expect("waits for finish");
    w.customer(
        &w.zhangsan,
        "电话别家有限公司",
        json!({"phone": "010 6235 0002"}),
    )
    .await;
    let create = last_keys();
    refused_as_taken(s.finish().await.map(|_| ()), "phone", "rows 2–3");
    assert!(guarded_alike(&create, &last_keys()));
    assert!(find(&w, "电话甲有限公司").await.is_none(), "all or nothing");

    // An update that gives a record a name another user takes meanwhile.
    let r = w
        .customer(&w.admin, "更新前有限公司", json!({"uscc": uscc(41)}))
        .await;
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.policy = DuplicatePolicy::Update;
    let mut s = w
        .crm
        .begin_import(&w.admin, o, &headers(&["客户名称", "统一社会信用代码"]))
        .await
        .expect("begin");
    let batch = s
        .prepare(&rows(vec![vec![t("更新后有限公司"), t(&uscc(41))]]), None)
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.customer(&w.zhangsan, "更新后有限公司", json!({})).await;
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "name", "rows 2–2");
    assert!(guarded_alike(&create, &last_keys()));
    drop(s);
    let list = customers(&w, &w.admin).await;
    let kept = list.iter().find(|c| c.id == r.id).expect("record");
    assert_eq!(kept.text("name"), Some("更新前有限公司"), "not renamed");

    // E-mails refused: through the key rows.
    w.crm
        .set_dedupe_rule(&w.admin, "email", crate::dedupe::DedupeMode::Block)
        .await
        .expect("e-mails refused");
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    let mut s = w
        .crm
        .begin_import(&w.admin, o, &headers(&["客户名称", "邮箱"]))
        .await
        .expect("begin");
    let batch = s
        .prepare(
            &rows(vec![vec![t("邮箱甲有限公司"), t("sales@race.cn")]]),
            None,
        )
        .await
        .expect("prepare");
    w.customer(
        &w.zhangsan,
        "邮箱别家有限公司",
        json!({"email": "Sales@Race.cn"}),
    )
    .await;
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "e-mail", "rows 2–2");
    assert!(guarded_alike(&create, &last_keys()));
    drop(s);
    assert!(find(&w, "邮箱甲有限公司").await.is_none());

    // Contacts: a mobile within its customer.
    let host = find(&w, "并发甲有限公司").await.expect("customer");
    let code = host.code.clone().expect("code");
    let h = headers(&["所属客户", "姓名", "手机"]);
    let mut o = opts(Entity::Contact);
    o.commit = CommitMode::Batches;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let batch = s
        .prepare(
            &rows(vec![
                vec![t(&code), t("赵一"), t("13800138001")],
                vec![t(&code), t("钱二"), t("13800138002")],
            ]),
            None,
        )
        .await
        .expect("prepare");
    w.crm
        .create_record(
            &w.admin,
            Entity::Contact,
            crate::testing::service_suite::fields(json!({
                "customer_id": host.id.to_string(),
                "name": "孙三",
                "mobile": "138-0013-8002",
            })),
        )
        .await
        .expect("contact");
    let create = last_keys();
    refused_as_taken(
        batch.write.commit().await,
        "mobile for the same customer",
        "rows 2–3",
    );
    assert!(guarded_alike(&create, &last_keys()));
    drop(s);
    assert_eq!(count(&store, &w, Table::Contacts).await, 1);

    // Contacts for a customer that changes hands meanwhile: the batch
    // writes nothing rather than contacts left with the old owner.
    let mut o = opts(Entity::Contact);
    o.commit = CommitMode::Batches;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let batch = s
        .prepare(
            &rows(vec![vec![t(&code), t("周五"), t("13800138005")]]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    let moved = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[host.id], w.lisi.user_id)
        .await
        .expect("transfer");
    assert_eq!(moved.done, [host.id], "{:?}", moved.refused);
    match batch.write.commit().await {
        Err(Error::InvalidState(m)) => assert!(m.contains("changed hands meanwhile"), "{m}"),
        other => panic!("expected the batch refused, got {other:?}"),
    }
    drop(s);

    // Contacts for a customer deleted (or merged away) meanwhile: the
    // batch writes nothing rather than contacts of a binned customer.
    let mut o = opts(Entity::Contact);
    o.commit = CommitMode::Batches;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let batch = s
        .prepare(
            &rows(vec![vec![t(&code), t("李四"), t("13800138004")]]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    let deleted = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[host.id])
        .await;
    assert!(deleted.refused.is_empty(), "{:?}", deleted.refused);
    assert_eq!(deleted.done, [host.id]);
    match batch.write.commit().await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("deleted or merged into another meanwhile"),
            "{m}"
        ),
        other => panic!("expected the batch refused, got {other:?}"),
    }
    drop(s);
    let mut sel = Select::all(Table::Contacts, w.admin.company_id.0, w.crm.now());
    sel.lifecycle = crate::store::Lifecycle::Any;
    let names: Vec<String> = store
        .select(&sel)
        .await
        .expect("contacts")
        .rows
        .iter()
        .filter_map(|r| r.get("name").as_text().map(str::to_string))
        .collect();
    assert!(!names.contains(&"李四".to_string()), "{names:?}");

    // Users given a role, or put into a department, deleted meanwhile.
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "临时导入角色".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    let dept = w
        .crm
        .create_department(&w.admin, "临时导入部", Some(w.sales))
        .await
        .expect("department");
    let h = headers(&["用户名", "姓名", "部门", "角色"]);
    for (what, deleted) in [("role '临时导入角色'", true), ("department", false)] {
        let mut o = opts(Entity::User);
        o.commit = CommitMode::Batches;
        let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
        let batch = s
            .prepare(
                &rows(vec![vec![
                    t("linshi_daoru"),
                    t("临时导入"),
                    t(if deleted { "" } else { "临时导入部" }),
                    t(if deleted { "临时导入角色" } else { "" }),
                ]]),
                None,
            )
            .await
            .expect("prepare");
        assert!(batch.issues.is_empty(), "{:?}", batch.issues);
        if deleted {
            w.crm
                .delete_role(&w.admin, role.id, role.version)
                .await
                .expect("role deleted meanwhile");
        } else {
            w.crm
                .delete_department(&w.admin, dept.id)
                .await
                .expect("department deleted meanwhile");
        }
        match batch.write.commit().await {
            Err(Error::InvalidState(m)) => {
                assert!(m.contains(what) && m.contains("deleted meanwhile"), "{m}")
            }
            other => panic!("expected the batch refused, got {other:?}"),
        }
        drop(s);
        assert!(
            w.crm
                .user_by_username(&w.admin, "linshi_daoru")
                .await
                .is_err()
        );
    }

    // Products: a code another user gives a product meanwhile fails the
    // batch by name (the single create's lock key), not by the index.
    let h = headers(&["产品编号", "产品名称", "标准价"]);
    let mut o = opts(Entity::Product);
    o.commit = CommitMode::Batches;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("begin");
    let batch = s
        .prepare(
            &rows(vec![
                vec![t("CP-RACE-1"), t("并发打印机"), t("100")],
                vec![t("CP-RACE-2"), t("并发扫描仪"), t("200")],
            ]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.crm
        .create_product(
            &w.admin,
            crate::sales::product::ProductInput {
                code: Some("CP-RACE-2".into()),
                name: Some("别人的扫描仪".into()),
                list_price: Some(crate::money::Money::parse("300").expect("money")),
                ..Default::default()
            },
        )
        .await
        .expect("product");
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "product code", "rows 2–3");
    assert!(guarded_alike(&create, &last_keys()));
    drop(s);
    let listed = w
        .crm
        .list_products(&w.admin, &crate::sales::product::ProductQuery::default())
        .await
        .expect("products");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.code.as_str())
            .collect::<Vec<_>>(),
        ["CP-RACE-2"],
        "nothing of the batch is written"
    );
}

/// The update policy merges only what a row sets: a file without a kind
/// column (or with an empty kind cell) leaves an individual customer
/// (named by its code: its name is no duplicate key) individual, and a row whose values, merged with the stored record,
/// break a rule spanning fields (an individual customer with a credit
/// code) is rejected in both languages instead of written.
pub async fn import_update_keeps_stored_kind_and_checks_merged_record(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    // An individual's name is no duplicate key: the rows name it by code.
    let person = w
        .customer(
            &w.admin,
            "个人客户张三",
            json!({"kind": "individual", "level": "C"}),
        )
        .await;
    let code = person.code.clone().expect("code");
    let firm = w
        .customer(
            &w.admin,
            "企业客户有限公司",
            json!({"uscc": uscc(3), "level": "C"}),
        )
        .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    // No kind column.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户编号", "客户名称", "客户级别"],
        vec![vec![t(&code), t("个人客户张三"), t("A")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let p = find(&w, "个人客户张三").await.expect("kept");
    assert_eq!(p.text("level"), Some("A"));
    assert_eq!(p.text("kind"), Some("individual"), "the kind is not reset");
    // An empty kind cell.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户编号", "客户名称", "客户类型", "客户级别"],
        vec![vec![t(&code), t("个人客户张三"), t(""), t("B")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let p = find(&w, "个人客户张三").await.expect("kept");
    assert_eq!(p.text("level"), Some("B"));
    assert_eq!(p.text("kind"), Some("individual"));
    // 个人客户 for an enterprise customer with a credit code.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户编号", "客户名称", "客户类型", "客户级别"],
        vec![vec![
            t(firm.code.as_deref().expect("code")),
            t("企业客户有限公司"),
            t("个人客户"),
            t("A"),
        ]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(
        (i.outcome, i.kind),
        (RowOutcome::Rejected, IssueKind::Invalid)
    );
    assert!(
        i.message_en.contains("this row cannot update it")
            && i.message_en
                .contains("only enterprise customers have a unified social credit code"),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh.contains("该行不能更新该记录")
            && i.message_zh.contains("个人客户不能填写统一社会信用代码"),
        "{}",
        i.message_zh
    );
    let kept = find(&w, "企业客户有限公司").await.expect("kept");
    assert_eq!(kept.text("kind"), Some("enterprise"));
    assert_eq!(kept.text("level"), Some("C"));
    assert_eq!(kept.text("uscc"), Some(uscc(3).as_str()));
    assert_eq!(kept.version, firm.version, "nothing written");
    // A credit code for an individual customer, without a kind column.
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户编号", "客户名称", "统一社会信用代码"],
        vec![vec![t(&code), t("个人客户张三"), t(&uscc(4))]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    assert!(
        issue(&r, 2)
            .message_zh
            .contains("个人客户不能填写统一社会信用代码"),
        "{}",
        issue(&r, 2).message_zh
    );
    let p = find(&w, "个人客户张三").await.expect("kept");
    assert_eq!(p.text("kind"), Some("individual"));
    assert_eq!(p.text("uscc"), None);
}

/// A user import finds existing users by username only: a username that is
/// another user's display name or id is a new user, under the skip policy
/// and under the update policy (which must not update that other user,
/// nor twice in one batch).
pub async fn import_users_match_existing_users_by_username_only(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = ["用户名", "姓名"];
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    // wangwu's display name is 王五.
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![
            vec![t("wangwu"), t("王五（新）")],
            vec![t("王五"), t("另一个王五")],
        ],
    )
    .await;
    assert_eq!(
        (r.updated, r.created, r.skipped, r.rejected),
        (1, 1, 0, 0),
        "{:#?}",
        r.issues
    );
    let ww = w
        .crm
        .user_by_username(&w.admin, "wangwu")
        .await
        .expect("wangwu");
    assert_eq!(ww.id, w.wangwu.user_id);
    assert_eq!(ww.display_name, "王五（新）");
    let new = w
        .crm
        .user_by_username(&w.admin, "王五")
        .await
        .expect("a new user");
    assert_ne!(new.id, w.wangwu.user_id);
    assert_eq!(new.display_name, "另一个王五");
    // Skip: display names and ids are not usernames; usernames are.
    let lisi_id = w.lisi.user_id.to_string();
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &h,
        vec![
            vec![t("李四"), t("李四二号")],
            vec![t(&lisi_id), t("编号用户")],
            vec![t("王五"), t("重复的王五")],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (2, 1, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(issue(&r, 4).kind, IssueKind::Duplicate);
    let lisi = w
        .crm
        .user_by_username(&w.admin, "lisi")
        .await
        .expect("lisi");
    assert_eq!(lisi.display_name, "李四");
    assert_eq!(
        w.crm
            .user_by_username(&w.admin, "李四")
            .await
            .expect("created")
            .display_name,
        "李四二号"
    );
}

/// A user import names departments and roles as the resolvers find them:
/// as spelled, else letter case aside; names equal but for case are
/// ambiguous.
pub async fn user_imports_name_departments_and_roles_letter_case_aside(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let emea = w
        .crm
        .create_department(&w.admin, "Sales EMEA", None)
        .await
        .expect("department");
    let role = w
        .crm
        .create_role(
            &w.admin,
            RoleSpec {
                name: "Key Account".into(),
                is_admin: false,
                permissions: Vec::new(),
                field_rules: Vec::new(),
            },
        )
        .await
        .expect("role");
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名", "部门", "角色"],
        vec![vec![t("y1"), t("Y1"), t("sales emea"), t("KEY account")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
    let y1 = w.crm.user_by_username(&w.admin, "y1").await.expect("y1");
    assert_eq!(
        (y1.department_id, y1.role_ids),
        (Some(emea.id), vec![role.id])
    );
    w.crm
        .create_department(&w.admin, "sales emea", Some(emea.id))
        .await
        .expect("a sub-department spelled otherwise");
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名", "部门"],
        vec![vec![t("y2"), t("Y2"), t("SALES EMEA")]],
    )
    .await;
    assert_eq!(r.rejected, 1, "{:#?}", r.issues);
    assert!(
        issue(&r, 2).message_en.contains("several departments"),
        "{:#?}",
        r.issues
    );
}

/// Undoing an import needs the rights the import needed, as its runner
/// holds them now: an administrator demoted since undoes nothing.
pub async fn an_undo_needs_the_rights_held_now(store: Arc<dyn Store>) {
    use crate::org::{NewUser, UserPatch};
    let w = World::new(store).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名"],
        vec![vec![t("bob"), t("鲍勃")]],
    )
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    let id = r.import_id.expect("an import id");
    let roles = w.crm.list_roles(&w.admin).await.expect("roles");
    let admin_role = roles.iter().find(|r| r.is_admin).expect("admin role").id;
    let plain = roles.iter().find(|r| !r.is_admin).expect("a plain role").id;
    let other = w
        .crm
        .create_user(
            &w.admin,
            NewUser {
                username: "admin2".into(),
                display_name: "管理员二".into(),
                role_ids: vec![admin_role],
                ..NewUser::default()
            },
        )
        .await
        .expect("second admin");
    let other = w.crm.actor(other.id).await.expect("actor");
    let me = w.crm.user(&w.admin, w.admin.user_id).await.expect("me");
    w.crm
        .update_user(
            &other,
            w.admin.user_id,
            me.version,
            UserPatch {
                role_ids: Some(vec![plain]),
                ..UserPatch::default()
            },
        )
        .await
        .expect("demoted");
    let demoted = w.crm.actor(w.admin.user_id).await.expect("actor");
    match w.crm.undo_import(&demoted, id).await {
        Err(Error::Forbidden(m)) => {
            assert!(m.contains("may no longer import user records"), "{m}")
        }
        other => panic!("a demoted administrator's undo: {other:?}"),
    }
    assert!(
        w.crm
            .user_by_username(&other, "bob")
            .await
            .expect("bob")
            .active
    );
}

/// A user an import created who has since decided an approval is not
/// removed by undoing the import: the decision stays on record under their
/// name, and the refusal says why.
pub async fn an_imported_approver_is_not_undone(store: Arc<dyn Store>) {
    use crate::approval::{
        ApproverRule, Facts, Fallback, FlowDef, Restart, SignMode, StepDef, SubmitRequest,
    };
    let w = World::new(store).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名"],
        vec![vec![t("caiwu7"), t("七财务")]],
    )
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    let id = r.import_id.expect("an import id");
    let caiwu = w
        .crm
        .user_by_username(&w.admin, "caiwu7")
        .await
        .expect("imported");
    w.crm
        .define_approval_flow(
            &w.admin,
            "purchase_order",
            "财务审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "财务".into(),
                    conditions: Vec::new(),
                    approvers: ApproverRule::Users {
                        users: vec![caiwu.id.0],
                    },
                    mode: SignMode::Any,
                    fallback: Fallback::AutoPass,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let a = w
        .crm
        .submit_for_approval(
            &w.zhangsan,
            SubmitRequest {
                doc_type: "purchase_order".into(),
                document_id: uuid::Uuid::from_u128(0xCA1),
                document_code: Some("CG-7".into()),
                title: None,
                facts: Facts::default(),
                picked: Vec::new(),
                comment: None,
            },
        )
        .await
        .expect("submit");
    let approver = w.crm.actor(caiwu.id).await.expect("actor");
    w.crm
        .approve(&approver, a.id, Some("同意"))
        .await
        .expect("approved");
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains("caiwu7") && m.contains("acted on approvals"),
                "{m}"
            )
        }
        other => panic!("undoing an approver's import: {other:?}"),
    }
    let still = w
        .crm
        .user_by_username(&w.admin, "caiwu7")
        .await
        .expect("kept");
    assert!(still.active);
}

/// A user import that gives someone a new superior moves that person's
/// pending superior step to the new superior at once, as editing the user
/// does; undoing the import moves it back.
pub async fn a_user_import_moves_the_approvals_it_touches(store: Arc<dyn Store>) {
    use crate::approval::{
        ApproverRule, Facts, Fallback, FlowDef, Restart, SignMode, StepDef, SubmitRequest,
    };
    let w = World::new(store).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "purchase_order",
            "上级审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "直属上级".into(),
                    conditions: Vec::new(),
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::AutoPass,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let a = w
        .crm
        .submit_for_approval(
            &w.zhangsan,
            SubmitRequest {
                doc_type: "purchase_order".into(),
                document_id: uuid::Uuid::from_u128(0x1A9),
                document_code: Some("CG-1".into()),
                title: Some("采购".into()),
                facts: Facts {
                    amount_minor: Some(10_000),
                    kind: None,
                    discount_bp: None,
                },
                picked: Vec::new(),
                comment: None,
            },
        )
        .await
        .expect("submit");
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    let pending = |u: &Actor| {
        let crm = w.crm.clone();
        let u = u.clone();
        async move {
            crm.pending_approvals(&u)
                .await
                .expect("pending")
                .into_iter()
                .map(|x| x.id)
                .collect::<Vec<_>>()
        }
    };
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["用户名", "姓名", "上级"],
        vec![vec![t("zhangsan"), t("张三"), t("zhaoliu")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    assert_eq!(pending(&w.zhaoliu).await, vec![a.id]);
    assert!(pending(&w.lisi).await.is_empty());
    let id = r.import_id.expect("an import id");
    w.crm.undo_import(&w.admin, id).await.expect("undo");
    assert_eq!(pending(&w.lisi).await, vec![a.id]);
    assert!(pending(&w.zhaoliu).await.is_empty());
}

/// Undo is refused while a record saved after the import refers to one it
/// created — a contact added to an imported customer (also from the
/// recycle bin), a customer given to an imported user — naming both, and
/// nothing is removed; records the import created together (a customer's
/// contacts) do not count. Once the reference is gone, undo works.
pub async fn import_undo_refused_while_later_records_refer_to_it(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "联系人1姓名", "联系人1手机"],
        vec![
            vec![t("甲客户有限公司"), t("张伟"), t("13812345678")],
            vec![t("乙客户有限公司"), t(""), t("")],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.contacts_created),
        (1 + 1, 1),
        "{:#?}",
        r.issues
    );
    let id = r.import_id.expect("import id");
    let jia = find(&w, "甲客户有限公司").await.expect("created");
    let jia_code = jia.code.clone().expect("code");
    let later = w
        .crm
        .create_record(
            &w.admin,
            Entity::Contact,
            crate::testing::service_suite::fields(
                json!({"customer_id": jia.id.to_string(), "name": "后加联系人"}),
            ),
        )
        .await
        .expect("contact");
    let later_code = later.code.clone().expect("code");
    let refused = |m: &str| {
        m.contains(&format!("customer {jia_code} has contact {later_code}"))
            && m.contains("added after the import")
            && m.contains("nothing was undone")
    };
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(refused(&m), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(find(&w, "甲客户有限公司").await.is_some());
    assert!(find(&w, "乙客户有限公司").await.is_some());
    assert_eq!(count(&store, &w, Table::Contacts).await, 2);
    let imports = w.crm.list_imports(&w.admin).await.expect("imports");
    assert_eq!(imports[0].status, ImportStatus::Done);
    // In the recycle bin it could come back: still refused.
    let gone = w
        .crm
        .delete_records(&w.admin, Entity::Contact, &[later.id])
        .await;
    assert!(gone.refused.is_empty(), "{:?}", gone.refused);
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => {
            assert!(refused(&m) && m.contains("recycle bin"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(count(&store, &w, Table::Customers).await, 2);
    let purged = w
        .crm
        .purge_records(&w.admin, Entity::Contact, &[later.id])
        .await;
    assert!(purged.refused.is_empty(), "{:?}", purged.refused);
    let undo = w.crm.undo_import(&w.admin, id).await.expect("undo");
    assert_eq!(undo.removed, 3);
    assert_eq!(count(&store, &w, Table::Customers).await, 0);
    assert_eq!(count(&store, &w, Table::Contacts).await, 0);
    // Imported users who were given records since.
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名"],
        vec![
            vec![t("xiaoqiang"), t("小强")],
            vec![t("xiaoli"), t("小丽")],
        ],
    )
    .await;
    assert_eq!(r.created, 2, "{:#?}", r.issues);
    let id = r.import_id.expect("import id");
    let c = w
        .customer(
            &w.admin,
            "小强的客户有限公司",
            json!({"owner_id": "xiaoqiang"}),
        )
        .await;
    let code = c.code.clone().expect("code");
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&format!("user xiaoqiang owns customer {code}")),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let xq = w
        .crm
        .user_by_username(&w.admin, "xiaoqiang")
        .await
        .expect("kept");
    assert!(xq.active);
    let moved = w
        .crm
        .transfer_records(&w.admin, Entity::Customer, &[c.id], w.admin.user_id)
        .await
        .expect("transfer");
    assert!(moved.refused.is_empty(), "{:?}", moved.refused);
    let undo = w.crm.undo_import(&w.admin, id).await.expect("undo");
    assert_eq!(undo.removed, 2);
    assert!(w.crm.user_by_username(&w.admin, "xiaoqiang").await.is_err());

    // A quote saved for an imported customer while the undo is written:
    // the undo's guard, under the key the quote's create takes, refuses it.
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称"],
        vec![vec![t("丙客户有限公司")]],
    )
    .await;
    let id = r.import_id.expect("import id");
    let bing = find(&w, "丙客户有限公司").await.expect("created");
    let other = crate::crm::Crm::new(hooked.clone(), w.clock.clone());
    let admin = w.admin.clone();
    hooked.before_customer_write(async move {
        let quote = crate::sales::NewQuote {
            title: "并发报价".into(),
            customer_id: bing.id.0,
            lines: vec![crate::sales::LineInput {
                product_id: None,
                name: "维保服务".into(),
                unit: None,
                quantity: 1,
                unit_price: Some(crate::money::Money::cny(100_000)),
                discount_bp: 0,
                tax_rate: None,
            }],
            ..Default::default()
        };
        other
            .create_quote(&admin, quote)
            .await
            .expect("quote meanwhile");
    });
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("while the undo ran") && m.contains("quote"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let keys = hooked.guard_keys();
    let [.., quote_keys, undo_keys] = keys.as_slice() else {
        panic!("two guarded writes expected: {keys:?}");
    };
    assert!(guarded_alike(quote_keys, undo_keys), "{keys:?}");
    assert!(find(&w, "丙客户有限公司").await.is_some());
}

/// A resumed import knows which records the batches before its checkpoint
/// updated: a later row reaching one of them through another key is
/// rejected as in an uninterrupted run (so the import can still be
/// undone), and the report counts the earlier contacts as contacts.
pub async fn import_resumed_updates_a_record_once_and_counts_contacts_apart(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let old = w
        .customer(
            &w.admin,
            "甲老客户有限公司",
            json!({"uscc": uscc(21), "level": "C"}),
        )
        .await;
    let h = headers(&["客户名称", "统一社会信用代码", "客户级别", "联系人1姓名"]);
    let data = rows(vec![
        // Updates the old customer by name.
        vec![t("甲老客户有限公司"), t(""), t("B"), t("")],
        vec![t("新客户有限公司"), t(""), t("A"), t("张伟")],
        // The same customer by its credit code.
        vec![t("甲老客户更名有限公司"), t(&uscc(21)), t("A"), t("")],
        vec![t("另一新客户有限公司"), t(""), t(""), t("")],
    ]);
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.commit = CommitMode::Batches;
    o.file_name = "update.xlsx".into();
    o.file_hash = "sha256:resume-update".into();
    {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        s.push(&data[0..2]).await.expect("batch 1");
        // Interrupted.
    }
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &h)
        .await
        .expect("again");
    assert_eq!(s.resume_after(), Some(3));
    for chunk in data.chunks(2) {
        s.push(chunk).await.expect("push");
    }
    let r = s.finish().await.expect("finish");
    assert_eq!(
        (r.updated, r.rejected),
        (1, 1),
        "the record is updated once: {:#?}",
        r.issues
    );
    let i = issue(&r, 4);
    assert_eq!(i.kind, IssueKind::DuplicateInFile);
    assert!(
        i.message_en
            .contains("row 2 of this file already updates it"),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh.contains("本文件第 2 行已更新该记录"),
        "{}",
        i.message_zh
    );
    assert_eq!(
        (r.created, r.contacts_created),
        (2, 1),
        "records and contacts counted apart, as in one run"
    );
    let a = find(&w, "甲老客户有限公司").await.expect("not renamed");
    assert_eq!(a.text("level"), Some("B"));
    assert_eq!(a.version, old.version + 1);
    // The import can be undone.
    let undo = w
        .crm
        .undo_import(&w.admin, r.import_id.expect("id"))
        .await
        .expect("undo");
    assert_eq!((undo.removed, undo.restored), (3, 1));
    let a = find(&w, "甲老客户有限公司").await.expect("kept");
    assert_eq!(a.text("level"), Some("C"));
    assert_eq!(count(&store, &w, Table::Customers).await, 1);
}

fn new_custom(
    entity: Entity,
    key: &str,
    label: &str,
    label_en: &str,
    field_type: crate::custom::CustomFieldType,
    options: &[&str],
    required: bool,
) -> crate::custom::NewCustomField {
    crate::custom::NewCustomField {
        entity,
        key: key.into(),
        label: label.into(),
        label_en: Some(label_en.into()),
        field_type,
        options: options.iter().map(|s| s.to_string()).collect(),
        required,
        unique: false,
    }
}

/// A number cell of 16 or more digits (a bank card or ID number Excel
/// has already rounded to 15 significant digits) going into a text field
/// rejects its row in both languages; 15 digits still import as text, and
/// number fields take large numbers.
pub async fn import_rejects_numbers_longer_than_a_spreadsheet_keeps(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "card_no",
                "银行卡号",
                "Card number",
                crate::custom::CustomFieldType::Text,
                &[],
                false,
            ),
        )
        .await
        .expect("text field");
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "capital",
                "注册资本",
                "Capital",
                crate::custom::CustomFieldType::Number,
                &[],
                false,
            ),
        )
        .await
        .expect("number field");
    let h = [
        "客户名称",
        "备注",
        "银行卡号",
        "统一社会信用代码",
        "注册资本",
    ];
    let report = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![
            vec![
                t("甲公司"),
                Cell::Empty,
                Cell::Number(6222021234567890.0),
                Cell::Empty,
                Cell::Empty,
            ],
            vec![
                t("乙公司"),
                Cell::Empty,
                Cell::Empty,
                Cell::Number(9.144030000000001e17),
                Cell::Empty,
            ],
            vec![
                t("丙公司"),
                Cell::Number(-1e15),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ],
            vec![
                t("丁公司"),
                Cell::Number(123456789012345.0),
                Cell::Empty,
                Cell::Empty,
                Cell::Number(1e16),
            ],
        ],
    )
    .await;
    for row in [2, 3, 4] {
        let i = issue(&report, row);
        assert_eq!(i.outcome, RowOutcome::Rejected, "{i:#?}");
        assert!(
            i.message_en.contains(
                "the number has more digits than a spreadsheet keeps (15); store the cell as text"
            ),
            "{i:#?}"
        );
        assert!(
            i.message_zh
                .contains("数字超过表格可保存的 15 位有效数字，请将该单元格设为文本格式"),
            "{i:#?}"
        );
    }
    assert_eq!(report.issues.len(), 3, "{:#?}", report.issues);
    assert_eq!(report.created, 1);
    assert!(find(&w, "甲公司").await.is_none());
    let d = find(&w, "丁公司").await.expect("15 digits import");
    assert_eq!(d.text("notes"), Some("123456789012345"));
}

/// Contacts of a customer row get the checks of a contact import: a
/// required contact custom field left empty rejects the row, naming the
/// contact's column.
pub async fn import_checks_required_custom_fields_of_row_contacts(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Contact,
                "wx_id",
                "微信账号",
                "WeChat ID",
                crate::custom::CustomFieldType::Text,
                &[],
                true,
            ),
        )
        .await
        .expect("contact field");
    let h = [
        "客户名称",
        "联系人1姓名",
        "联系人1微信账号",
        "Contact 2 Name",
        "Contact 2 WeChat ID",
    ];
    let report = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![
            vec![
                t("甲公司"),
                t("张伟"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ],
            vec![t("乙公司"), t("李娜"), t("lina"), t("王芳"), t("")],
            vec![t("丙公司"), t("赵强"), t("zq"), Cell::Empty, Cell::Empty],
            vec![
                t("丁公司"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ],
        ],
    )
    .await;
    let i = issue(&report, 2);
    assert_eq!(i.outcome, RowOutcome::Rejected, "{i:#?}");
    assert!(i.message_en.contains("contact 1 WeChat ID"), "{i:#?}");
    assert!(i.message_zh.contains("联系人1微信账号"), "{i:#?}");
    let i = issue(&report, 3);
    assert_eq!(i.outcome, RowOutcome::Rejected, "{i:#?}");
    assert!(i.message_en.contains("contact 2 WeChat ID"), "{i:#?}");
    assert!(i.message_zh.contains("联系人2微信账号"), "{i:#?}");
    assert_eq!(report.issues.len(), 2, "{:#?}", report.issues);
    assert_eq!((report.created, report.contacts_created), (2, 1));
    assert!(find(&w, "甲公司").await.is_none());
    assert!(find(&w, "丙公司").await.is_some());
}

/// The English template's and export's `Owner` header names the owner,
/// in any case.
pub async fn import_maps_the_english_owner_header(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    for (header, name) in [
        ("Owner", "甲公司"),
        ("OWNER", "乙公司"),
        ("Owner_Id", "丙公司"),
    ] {
        let report = run(
            &w,
            &w.admin,
            opts(Entity::Customer),
            &["Name", header],
            vec![vec![t(name), t("lisi")]],
        )
        .await;
        assert!(report.issues.is_empty(), "{header}: {:#?}", report.issues);
        assert_eq!(report.created, 1, "{header}");
        let c = find(&w, name).await.expect(name);
        assert_eq!(c.owner_id, Some(w.lisi.user_id), "{header}");
    }
}

/// A multi-select custom field gets no list validation in the template
/// (a dropdown would take one option only); its options are in the hint.
/// A single select keeps its list.
pub async fn template_gives_multi_select_fields_no_dropdown(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    for (entity, key, label, t, required) in [
        (
            Entity::Customer,
            "industries",
            "行业细分",
            crate::custom::CustomFieldType::MultiSelect,
            false,
        ),
        (
            Entity::Customer,
            "scale",
            "规模",
            crate::custom::CustomFieldType::Select,
            false,
        ),
        (
            Entity::Contact,
            "hobbies",
            "爱好",
            crate::custom::CustomFieldType::MultiSelect,
            false,
        ),
    ] {
        w.crm
            .define_custom_field(
                &w.admin,
                new_custom(entity, key, label, key, t, &["甲", "乙"], required),
            )
            .await
            .expect(key);
    }
    let cols = w
        .crm
        .template_columns(&w.admin, Entity::Customer, 1)
        .await
        .expect("template");
    let col = |k: &str| {
        cols.iter()
            .find(|c| c.key.ends_with(k))
            .unwrap_or_else(|| panic!("{k}: {cols:#?}"))
            .clone()
    };
    for k in ["custom.industries", "custom.hobbies"] {
        let c = col(k);
        assert!(c.options.is_empty(), "{c:#?}");
        assert!(c.hint_zh.contains("甲、乙"), "{c:#?}");
        assert!(c.hint_en.contains("甲, 乙"), "{c:#?}");
    }
    assert_eq!(col("custom.scale").options, vec!["甲", "乙"]);
}

/// The unique custom values of contacts that customer rows carry are
/// checked like a contact's own: against every live contact of the company
/// (the holder not named), within the file (two contacts of one row
/// included), and — for a contact saved while the import runs — by the
/// batch's guard under the lock keys a contact's create takes.
pub async fn customer_rows_check_their_contacts_unique_values(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let last_keys = || hooked.guard_keys().last().cloned().unwrap_or_default();
    let mut badge = new_custom(
        Entity::Contact,
        "badge",
        "工牌号",
        "Badge",
        crate::custom::CustomFieldType::Text,
        &[],
        false,
    );
    badge.unique = true;
    w.crm
        .define_custom_field(&w.admin, badge)
        .await
        .expect("unique contact field");
    let holder = w.customer(&w.wangwu, "王五的客户有限公司", json!({})).await;
    w.crm
        .create_record(
            &w.wangwu,
            Entity::Contact,
            crate::testing::service_suite::fields(json!({
                "name": "老联系人",
                "customer_id": holder.id.0.to_string(),
                "custom.badge": "wx-1",
            })),
        )
        .await
        .expect("contact");
    let h = [
        "客户名称",
        "联系人1姓名",
        "联系人1工牌号",
        "联系人2姓名",
        "联系人2工牌号",
    ];
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &h,
        vec![
            vec![t("甲有限公司"), t("张甲"), t("wx-1"), t(""), t("")],
            vec![t("乙有限公司"), t("李乙"), t("wx-2"), t(""), t("")],
            vec![t("丙有限公司"), t("王丙"), t("wx-2"), t(""), t("")],
            vec![t("丁有限公司"), t("赵丁"), t("wx-3"), t("钱丁"), t("wx-3")],
            vec![t("戊有限公司"), t("孙戊"), t("wx-4"), t("周戊"), t("wx-5")],
        ],
    )
    .await;
    assert_eq!((r.created, r.skipped), (2, 3), "{:#?}", r.issues);
    let store_dup = issue(&r, 2);
    assert_eq!(store_dup.kind, IssueKind::Duplicate);
    assert!(
        store_dup
            .message_en
            .contains("contact 1 工牌号 wx-1 already belongs to another contact")
            && store_dup
                .message_zh
                .contains("联系人1的工牌号 wx-1 已被其他联系人使用")
            && !store_dup.message_zh.contains("老联系人"),
        "{store_dup:?}"
    );
    let in_file = issue(&r, 4);
    assert_eq!(in_file.kind, IssueKind::DuplicateInFile);
    assert!(
        in_file
            .message_en
            .contains("wx-2 repeats row 3 of this file"),
        "{in_file:?}"
    );
    let in_row = issue(&r, 5);
    assert!(
        in_row
            .message_zh
            .contains("联系人2的工牌号 wx-3 与同一行的另一联系人重复"),
        "{in_row:?}"
    );
    assert!(find(&w, "乙有限公司").await.is_some());
    assert!(find(&w, "戊有限公司").await.is_some());
    assert!(find(&w, "甲有限公司").await.is_none());
    // Imported again to update: a contact the customer already has is not
    // added again, so its value is no conflict; a new contact's is checked.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![
            vec![t("乙有限公司"), t("李乙"), t("wx-2"), t("吴乙"), t("wx-7")],
            vec![t("戊有限公司"), t("孙戊"), t("wx-4"), t("新人"), t("wx-1")],
        ],
    )
    .await;
    assert_eq!(
        (r.updated + r.unchanged, r.contacts_created, r.rejected),
        (1, 1, 1),
        "{:#?}",
        r.issues
    );
    assert!(
        issue(&r, 3)
            .message_en
            .contains("contact 2 工牌号 wx-1 already belongs"),
        "{:?}",
        issue(&r, 3)
    );
    // The fail policy fails the import on such a row.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h[..3],
        vec![vec![t("己有限公司"), t("吴己"), t("wx-5")]],
    )
    .await;
    assert_eq!(r.status, ImportStatus::Failed, "{:#?}", r.issues);
    assert!(find(&w, "己有限公司").await.is_none());

    // A contact saved between the probe and the write fails the batch.
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    let mut s = w
        .crm
        .begin_import(&w.admin, o, &headers(&h[..3]))
        .await
        .expect("begin");
    let batch = s
        .prepare(
            &rows(vec![vec![t("庚有限公司"), t("郑庚"), t("wx-9")]]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.crm
        .create_record(
            &w.wangwu,
            Entity::Contact,
            crate::testing::service_suite::fields(json!({
                "name": "抢先联系人",
                "customer_id": holder.id.0.to_string(),
                "custom.badge": "wx-9",
            })),
        )
        .await
        .expect("contact meanwhile");
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "工牌号", "rows 2–2");
    assert!(
        guarded_alike(&create, &last_keys()),
        "{create:?} not among the batch's keys"
    );
    drop(s);
    assert!(find(&w, "庚有限公司").await.is_none());
}

/// Imports compare unique custom text values as a single create does, by
/// their [`text_key`](crate::validate::text_key) (letter case, full-width
/// letters and digits, runs of spaces aside, in any mix): a row holding a
/// stored value in another spelling is skipped as a duplicate naming the
/// field, a row repeating an earlier row's value in another spelling is
/// reported as repeating it — for a customer's field, a contact's in a
/// contact import, and a contact's in a customer row's contact group — and
/// a record saved in another spelling while the import runs fails the
/// batch under the lock keys its create takes.
pub async fn imports_compare_unique_custom_text_by_its_key(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    use crate::testing::service_suite::fields;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let last_keys = || hooked.guard_keys().last().cloned().unwrap_or_default();
    for (entity, key, label, en) in [
        (Entity::Customer, "erp_code", "ERP编码", "ERP code"),
        (Entity::Contact, "badge", "工牌号", "Badge"),
    ] {
        let mut def = new_custom(
            entity,
            key,
            label,
            en,
            crate::custom::CustomFieldType::Text,
            &[],
            false,
        );
        def.unique = true;
        w.crm
            .define_custom_field(&w.admin, def)
            .await
            .expect("unique field");
    }
    w.customer(&w.wangwu, "存量甲有限公司", json!({"erp_code": "ERP-001"}))
        .await;
    let holder = w
        .customer(
            &w.wangwu,
            "存量乙有限公司",
            json!({"erp_code": "ＥＲＰ-002"}),
        )
        .await;
    let contact = |name: &str, badge: &str| {
        fields(json!({
            "name": name,
            "customer_id": holder.id.0.to_string(),
            "custom.badge": badge,
        }))
    };
    w.crm
        .create_record(&w.wangwu, Entity::Contact, contact("老联系人", "WX-1"))
        .await
        .expect("contact");

    // Customers.
    let h = ["客户名称", "ERP编码"];
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &h,
        vec![
            vec![t("导入甲有限公司"), t("erp-001")],
            vec![t("导入乙有限公司"), t("ERP-002")],
            vec![t("导入丙有限公司"), t("NEW-1")],
            vec![t("导入丁有限公司"), t("new-1")],
            vec![t("导入戊有限公司"), t("ＮＥＷ-2")],
            vec![t("导入己有限公司"), t("new－２")],
        ],
    )
    .await;
    assert_eq!((r.created, r.skipped), (2, 4), "{:#?}", r.issues);
    for (row, typed) in [(2, "erp-001"), (3, "ERP-002")] {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::Duplicate, "{i:?}");
        assert!(
            i.message_en
                .contains(&format!("ERP编码 {typed} already belongs to")),
            "{i:?}"
        );
    }
    for (row, typed, first) in [(5, "new-1", 4), (7, "new－２", 6)] {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::DuplicateInFile, "{i:?}");
        assert!(
            i.message_en
                .contains(&format!("ERP编码 {typed} repeats row {first} of this file")),
            "{i:?}"
        );
    }
    assert!(find(&w, "导入丙有限公司").await.is_some());
    assert!(find(&w, "导入戊有限公司").await.is_some());
    assert!(find(&w, "导入甲有限公司").await.is_none());

    // Contacts, in a contact import.
    let code = holder.code.clone().expect("code");
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Contact),
        &["所属客户", "姓名", "工牌号"],
        vec![
            vec![t(&code), t("联系甲"), t("ｗｘ-1")],
            vec![t(&code), t("联系乙"), t("WX-2")],
            vec![t(&code), t("联系丙"), t("wx－２")],
        ],
    )
    .await;
    assert_eq!((r.created, r.skipped), (1, 2), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(i.kind, IssueKind::Duplicate, "{i:?}");
    assert!(i.message_en.contains("工牌号 ｗｘ-1"), "{i:?}");
    let i = issue(&r, 4);
    assert_eq!(i.kind, IssueKind::DuplicateInFile, "{i:?}");
    assert!(
        i.message_en.contains("工牌号 wx－２ repeats row 3"),
        "{i:?}"
    );

    // Contacts, in customer rows' contact groups.
    let groups = ["客户名称", "联系人1姓名", "联系人1工牌号"];
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &groups,
        vec![
            vec![t("组甲有限公司"), t("张组"), t("Wx-1")],
            vec![t("组乙有限公司"), t("李组"), t("WX-3")],
            vec![t("组丙有限公司"), t("王组"), t("ｗｘ－３")],
        ],
    )
    .await;
    assert_eq!((r.created, r.skipped), (1, 2), "{:#?}", r.issues);
    assert!(
        issue(&r, 2)
            .message_en
            .contains("contact 1 工牌号 Wx-1 already belongs to another contact"),
        "{:?}",
        issue(&r, 2)
    );
    assert!(
        issue(&r, 4)
            .message_en
            .contains("contact 1 工牌号 ｗｘ－３ repeats row 3 of this file"),
        "{:?}",
        issue(&r, 4)
    );

    // Saved meanwhile in another spelling: the batch is refused.
    let batched = |entity: Entity| {
        let mut o = opts(entity);
        o.commit = CommitMode::Batches;
        o
    };
    let mut s = w
        .crm
        .begin_import(&w.admin, batched(Entity::Customer), &headers(&h))
        .await
        .expect("begin");
    let batch = s
        .prepare(&rows(vec![vec![t("并发甲有限公司"), t("P-9")]]), None)
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.crm
        .create_record(
            &w.wangwu,
            Entity::Customer,
            fields(json!({"name": "抢先甲有限公司", "erp_code": "ｐ-9"})),
        )
        .await
        .expect("customer meanwhile");
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "ERP编码", "rows 2–2");
    assert!(guarded_alike(&create, &last_keys()), "{create:?}");
    drop(s);
    assert!(find(&w, "并发甲有限公司").await.is_none());

    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            batched(Entity::Contact),
            &headers(&["所属客户", "姓名", "工牌号"]),
        )
        .await
        .expect("begin");
    let batch = s
        .prepare(&rows(vec![vec![t(&code), t("并发联系"), t("wx-8")]]), None)
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.crm
        .create_record(&w.wangwu, Entity::Contact, contact("抢先联系", "ＷＸ－８"))
        .await
        .expect("contact meanwhile");
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "工牌号", "rows 2–2");
    assert!(guarded_alike(&create, &last_keys()), "{create:?}");
    drop(s);

    let mut s = w
        .crm
        .begin_import(&w.admin, batched(Entity::Customer), &headers(&groups))
        .await
        .expect("begin");
    let batch = s
        .prepare(
            &rows(vec![vec![t("并发乙有限公司"), t("赵并"), t("wx-9")]]),
            None,
        )
        .await
        .expect("prepare");
    assert!(batch.issues.is_empty(), "{:?}", batch.issues);
    w.crm
        .create_record(&w.wangwu, Entity::Contact, contact("抢先联系二", "ＷＸ-9"))
        .await
        .expect("contact meanwhile");
    let create = last_keys();
    refused_as_taken(batch.write.commit().await, "工牌号", "rows 2–2");
    assert!(guarded_alike(&create, &last_keys()), "{create:?}");
    drop(s);
    assert!(find(&w, "并发乙有限公司").await.is_none());
}

/// Upcoming birthdays read every match, page by page, and keep the soonest
/// thousand: 2 100 contacts (imported), seven a day over 300 days, the
/// soonest spread through the file; the list holds every birthday of the
/// first 142 days and six of the 143rd, soonest first.
pub async fn upcoming_birthdays_keep_the_soonest_thousand(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let host = w.customer(&w.zhangsan, "生日测试有限公司", json!({})).await;
    let code = host.code.clone().expect("code");
    let today = w.crm.today();
    let data: Vec<Vec<Cell>> = (0..2100)
        .map(|i| {
            let next = today + chrono::Duration::days(299 - i64::from(i % 300));
            let born = chrono::NaiveDate::from_ymd_opt(
                1990,
                chrono::Datelike::month(&next),
                chrono::Datelike::day(&next),
            )
            .expect("a date of 1990");
            vec![t(&code), t(&format!("联系人{i}")), Cell::Date(born)]
        })
        .collect();
    let mut s = w
        .crm
        .begin_import(
            &w.zhangsan,
            opts(Entity::Contact),
            &headers(&["所属客户", "姓名", "生日"]),
        )
        .await
        .expect("begin");
    s.push(&rows(data)).await.expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!(r.created, 2100, "{:#?}", r.issues);
    let b = w
        .crm
        .upcoming_birthdays(&w.zhangsan, 366)
        .await
        .expect("birthdays");
    assert_eq!(b.len(), 1000);
    assert!(
        b.windows(2).all(|p| p[0].in_days <= p[1].in_days),
        "soonest first"
    );
    assert_eq!(b[0].in_days, 0);
    assert_eq!(b.iter().filter(|x| x.in_days <= 141).count(), 142 * 7);
    assert_eq!(b[999].in_days, 142);
}

/// Who may not read customers' names in full (masked or hidden) names a
/// contact's customer by its code or id only, as the API does: a right
/// guess of a name fails exactly as a wrong one (saying why, in both
/// languages), so a dry run confirms no guess. Who reads the names (even
/// read-only) still names customers by name.
pub async fn import_contacts_name_customers_by_code_when_names_are_not_shown(
    store: Arc<dyn Store>,
) {
    let w = World::new(store).await;
    let secret = w.customer(&w.admin, "秘密甲有限公司", json!({})).await;
    let code = secret.code.clone().expect("code");
    let h = ["所属客户", "姓名"];
    let perms = || {
        role_perms(
            &[Action::Read, Action::Create, Action::Import],
            DataScope::All,
        )
    };
    let name_rule = |access| {
        vec![FieldRule {
            entity: Entity::Customer,
            field: "name".into(),
            access,
        }]
    };
    for (username, access) in [
        ("masker", FieldAccess::Masked),
        ("hider", FieldAccess::Hidden),
    ] {
        let actor = user_with_role(&w, username, perms(), name_rule(access)).await;
        let mut o = opts(Entity::Contact);
        o.dry_run = true;
        let r = run(
            &w,
            &actor,
            o,
            &h,
            vec![
                vec![t("秘密甲有限公司"), t("张伟")],
                vec![t("猜错乙有限公司"), t("李娜")],
                vec![t(&code), t("王芳")],
                vec![t(&secret.id.to_string()), t("赵强")],
                // The code typed in full width and lower case.
                vec![
                    t(&code
                        .to_lowercase()
                        .chars()
                        .map(crate::validate::fullwidth)
                        .collect::<String>()),
                    t("孙丽"),
                ],
            ],
        )
        .await;
        assert_eq!((r.created, r.rejected), (3, 2), "{:#?}", r.issues);
        let (right, wrong) = (issue(&r, 2), issue(&r, 3));
        for i in [right, wrong] {
            assert!(
                i.message_en.contains("not found")
                    && i.message_en.contains("give the customer's code or id"),
                "{i:?}"
            );
            assert!(
                i.message_zh.contains("找不到") && i.message_zh.contains("请填写客户编号或 ID"),
                "{i:?}"
            );
        }
        // Nothing but the name given tells the two apart.
        assert_eq!(
            right.message_en.replace("秘密甲有限公司", "?"),
            wrong.message_en.replace("猜错乙有限公司", "?")
        );
        assert_eq!(
            right.message_zh.replace("秘密甲有限公司", "?"),
            wrong.message_zh.replace("猜错乙有限公司", "?")
        );
    }
    let reader = user_with_role(&w, "reader", perms(), name_rule(FieldAccess::ReadOnly)).await;
    let mut o = opts(Entity::Contact);
    o.dry_run = true;
    let r = run(
        &w,
        &reader,
        o,
        &h,
        vec![
            vec![t("秘密甲有限公司"), t("张伟")],
            vec![t("猜错乙有限公司"), t("李娜")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let wrong = issue(&r, 3);
    assert!(
        wrong.message_en.contains("not found") && !wrong.message_en.contains("code or id"),
        "{wrong:?}"
    );
}

/// An undo gives an updated record its earlier values back only when no
/// record saved since holds one of them under a refusing duplicate rule:
/// it is refused, naming the record and the value, with nothing written —
/// also when the other record is saved while the undo is written. Records
/// the import itself created with a value it moved away from another (and
/// which the undo removes) do not count.
pub async fn import_undo_refuses_to_give_back_a_value_taken_since(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = crate::crm::Crm::new(store.clone(), w.clock.clone());
    let x = w
        .customer(&w.admin, "回退甲有限公司", json!({"uscc": uscc(61)}))
        .await;
    let x_code = x.code.clone().expect("code");
    let h = ["客户名称", "统一社会信用代码"];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let update_x = |to: String| {
        let (w, o) = (&w, o.clone());
        async move {
            let r = run(w, &w.admin, o, &h, vec![vec![t("回退甲有限公司"), t(&to)]]).await;
            assert_eq!(r.updated, 1, "{:#?}", r.issues);
            r.import_id.expect("import id")
        }
    };
    let uscc_of = |id| {
        let w = &w;
        async move {
            customers(w, &w.admin)
                .await
                .into_iter()
                .find(|c| c.id == id)
                .and_then(|c| c.text("uscc").map(str::to_string))
                .unwrap_or_default()
        }
    };
    let id = update_x(uscc(62)).await;
    let y = w
        .customer(&w.admin, "占用乙有限公司", json!({"uscc": uscc(61)}))
        .await;
    let y_code = y.code.clone().expect("code");
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&format!(
                "customer {x_code} would get its earlier values back"
            )) && m.contains(&uscc(61))
                && m.contains(&y_code)
                && m.contains("nothing was undone"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(uscc_of(x.id).await, uscc(62));
    let imports = w.crm.list_imports(&w.admin).await.expect("imports");
    assert_eq!(imports[0].status, ImportStatus::Done);
    // Once the value is free again, the undo goes through.
    let mut f = crate::records::Fields::new();
    f.insert("uscc".into(), json!(uscc(63)));
    w.crm
        .update_record(&w.admin, Entity::Customer, y.id, y.version, f)
        .await
        .expect("free the code");
    let undo = w.crm.undo_import(&w.admin, id).await.expect("undo");
    assert_eq!(undo.restored, 1);
    assert_eq!(uscc_of(x.id).await, uscc(61));

    // The value taken while the undo is written.
    let id = update_x(uscc(64)).await;
    let admin = w.admin.clone();
    hooked.before_write(Table::Customers, async move {
        other
            .create_record(
                &admin,
                Entity::Customer,
                crate::testing::service_suite::fields(
                    json!({"name": "抢占丙有限公司", "uscc": uscc(61)}),
                ),
            )
            .await
            .expect("created meanwhile");
    });
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&uscc(61)) && m.contains("nothing was undone"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(uscc_of(x.id).await, uscc(64));
    assert!(find(&w, "抢占丙有限公司").await.is_some());
    let holders = customers(&w, &w.admin)
        .await
        .into_iter()
        .filter(|c| c.text("uscc") == Some(uscc(61).as_str()))
        .count();
    assert_eq!(holders, 1);

    // An import that moved a record off a code and gave the code to a
    // record it created is undone: the created one goes, the code returns.
    let z = w
        .customer(&w.admin, "换码丁有限公司", json!({"uscc": uscc(71)}))
        .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![
            vec![t("换码丁有限公司"), t(&uscc(72))],
            vec![t("接码戊有限公司"), t(&uscc(71))],
        ],
    )
    .await;
    assert_eq!((r.created, r.updated), (1, 1), "{:#?}", r.issues);
    let undo = w
        .crm
        .undo_import(&w.admin, r.import_id.expect("id"))
        .await
        .expect("undo");
    assert_eq!((undo.removed, undo.restored), (1, 1));
    assert_eq!(uscc_of(z.id).await, uscc(71));
    assert!(find(&w, "接码戊有限公司").await.is_none());
    // … or to a record it updated, which the undo gives its own code back.
    let a = w
        .customer(&w.admin, "让码己有限公司", json!({"uscc": uscc(81)}))
        .await;
    let b = w
        .customer(&w.admin, "接码庚有限公司", json!({"uscc": uscc(83)}))
        .await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![
            vec![t("让码己有限公司"), t(&uscc(82))],
            vec![t("接码庚有限公司"), t(&uscc(81))],
        ],
    )
    .await;
    assert_eq!(r.updated, 2, "{:#?}", r.issues);
    assert_eq!(uscc_of(b.id).await, uscc(81));
    let undo = w
        .crm
        .undo_import(&w.admin, r.import_id.expect("id"))
        .await
        .expect("undo");
    assert_eq!(undo.restored, 2);
    assert_eq!(uscc_of(a.id).await, uscc(81));
    assert_eq!(uscc_of(b.id).await, uscc(83));
}

/// An undo refused for records saved since that refer to what the import
/// created names only those the actor may read; the others are counted.
pub async fn import_undo_refusal_names_only_records_the_actor_sees(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &["客户名称"],
        vec![vec![t("张三导入有限公司")]],
    )
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    let id = r.import_id.expect("import id");
    let c = find(&w, "张三导入有限公司").await.expect("created");
    let contact = |name: &str, owner: &str| {
        let (w, customer) = (&w, c.id.to_string());
        let f = crate::testing::service_suite::fields(
            json!({"customer_id": customer, "name": name, "owner_id": owner}),
        );
        async move {
            w.crm
                .create_record(&w.admin, Entity::Contact, f)
                .await
                .expect("contact")
        }
    };
    let mine = contact("张三的联系人", "zhangsan").await;
    let hidden = contact("王五的联系人", "wangwu").await;
    let (mine_code, hidden_code) = (
        mine.code.clone().expect("code"),
        hidden.code.clone().expect("code"),
    );
    match w.crm.undo_import(&w.zhangsan, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&mine_code)
                && !m.contains(&hidden_code)
                && m.contains("1 record you cannot see"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The administrator sees both.
    match w.crm.undo_import(&w.admin, id).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&mine_code) && m.contains(&hidden_code) && !m.contains("cannot see"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Only the hidden one left, in the recycle bin: its state is not told.
    for report in [
        w.crm
            .delete_records(&w.admin, Entity::Contact, &[mine.id])
            .await,
        w.crm
            .purge_records(&w.admin, Entity::Contact, &[mine.id])
            .await,
        w.crm
            .delete_records(&w.admin, Entity::Contact, &[hidden.id])
            .await,
    ] {
        assert!(report.refused.is_empty(), "{:?}", report.refused);
    }
    match w.crm.undo_import(&w.zhangsan, id).await {
        Err(Error::InvalidState(m)) => assert!(
            !m.contains(&hidden_code)
                && !m.contains("recycle bin)")
                && m.contains("1 record you cannot see refers to a record it created")
                && m.contains("nothing was undone"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(find(&w, "张三导入有限公司").await.is_some());
}

/// Customer rows `批次客户{i}有限公司` for `range`, one name cell each.
fn named(range: std::ops::Range<u32>) -> Vec<Vec<Cell>> {
    range
        .map(|i| vec![t(&format!("批次客户{i}有限公司"))])
        .collect()
}

/// A batched customer import of `file_hash` pushed `data` up to (not
/// including) `upto`, then dropped unfinished, as an interrupted run
/// leaves it. Returns the import's id.
async fn interrupted(
    w: &World,
    o: &ImportOptions,
    data: Vec<Vec<Cell>>,
    upto: usize,
) -> uuid::Uuid {
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &headers(&["客户名称"]))
        .await
        .expect("begin");
    assert_eq!(s.resume_after(), None);
    let id = s.import_id();
    s.push(&rows(data)[..upto]).await.expect("first batch");
    id
}

/// An interrupted batched import is resumed only by a run reading the same
/// sheet of the same file with the options that change what a row writes
/// (policy, owner, department, pool): another sheet, or other options, is
/// a new import whose rows are all imported, and the report says it is not
/// resumed.
pub async fn import_resumes_only_the_same_sheet_with_the_same_options(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.file_name = "regions.xlsx".into();
    o.file_hash = "sha256:regions".into();
    o.sheet = Some("华北".into());
    let first = interrupted(&w, &o, named(0..6), 3).await;
    assert_eq!(count(&store, &w, Table::Customers).await, 3);
    // Another sheet of the same file: its rows 2–4 are not skipped.
    let mut south = o.clone();
    south.sheet = Some("华南".into());
    let r = run(&w, &w.admin, south, &["客户名称"], named(10..16)).await;
    assert_eq!(r.resumed_after, None);
    assert_ne!(r.import_id, Some(first));
    assert_eq!((r.rows, r.created), (6, 6), "{:#?}", r.issues);
    // Other options: a new import each (begun, then left).
    let others: Vec<ImportOptions> = vec![
        ImportOptions {
            policy: DuplicatePolicy::Update,
            ..o.clone()
        },
        ImportOptions {
            owner: Some("zhangsan".into()),
            ..o.clone()
        },
        ImportOptions {
            department: Some(w.group1.to_string()),
            ..o.clone()
        },
    ];
    for other in others {
        let s = w
            .crm
            .begin_import(&w.admin, other.clone(), &headers(&["客户名称"]))
            .await
            .expect("begin");
        assert_eq!(s.resume_after(), None, "{other:?}");
        assert_ne!(s.import_id(), first, "{other:?}");
    }
    // The same sheet and options: resumed after row 4.
    let r = run(&w, &w.admin, o, &["客户名称"], named(0..6)).await;
    assert_eq!(r.resumed_after, Some(4));
    assert_eq!(r.import_id, Some(first));
    assert_eq!((r.rows, r.created), (6, 6), "{:#?}", r.issues);
    assert_eq!(count(&store, &w, Table::Customers).await, 12);
}

/// A dry run of a file whose batched import was interrupted checks it as
/// running it again would: the rows up to the checkpoint (committed by the
/// earlier run) are not duplicates, so a fail-policy import — whose dry
/// run goes first in crm-io — can be resumed; the dry run names the
/// interrupted import.
pub async fn import_dry_run_of_an_interrupted_import_checks_after_its_checkpoint(
    store: Arc<dyn Store>,
) {
    let w = World::new(store.clone()).await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    o.commit = CommitMode::Batches;
    o.file_hash = "sha256:fail-resume".into();
    o.sheet = Some("Sheet1".into());
    let id = interrupted(&w, &o, named(0..5), 2).await;
    let dry = ImportOptions {
        dry_run: true,
        ..o.clone()
    };
    let r = run(&w, &w.admin, dry, &["客户名称"], named(0..5)).await;
    assert_eq!(r.status, ImportStatus::Done, "{:#?}", r.issues);
    assert!(r.issues.is_empty(), "{:#?}", r.issues);
    assert_eq!(r.resumed_after, Some(3));
    assert_eq!(r.import_id, Some(id));
    assert_eq!((r.rows, r.created), (5, 5));
    assert_eq!(count(&store, &w, Table::Customers).await, 2, "a dry run");
    let r = run(&w, &w.admin, o, &["客户名称"], named(0..5)).await;
    assert_eq!(r.status, ImportStatus::Done, "{:#?}", r.issues);
    assert_eq!((r.resumed_after, r.created), (Some(3), 5));
    assert_eq!(count(&store, &w, Table::Customers).await, 5);
}

/// A failed import (policy fail) reports what stays written: nothing for
/// an all-or-nothing import or a dry run — not the rows before the
/// duplicate — and a batched import's committed batches, not the rows of
/// the batch that failed.
pub async fn import_that_fails_counts_only_what_stays_written(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "批次客户4有限公司", json!({})).await;
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    for dry_run in [false, true] {
        let r = run(
            &w,
            &w.admin,
            ImportOptions {
                dry_run,
                ..o.clone()
            },
            &["客户名称"],
            named(0..6),
        )
        .await;
        assert_eq!(r.status, ImportStatus::Failed);
        assert_eq!(
            (r.created, r.updated, r.rejected),
            (0, 0, 1),
            "dry run {dry_run}: {:#?}",
            r.issues
        );
        assert_eq!(r.import_id, None);
    }
    assert_eq!(count(&store, &w, Table::Customers).await, 1);
    // Batches: rows 2–3 and 4–5 are committed, row 6 (a duplicate) fails
    // the third batch and row 7 of it is not written.
    o.commit = CommitMode::Batches;
    let r = run(&w, &w.admin, o, &["客户名称"], named(0..6)).await;
    assert_eq!(r.status, ImportStatus::Failed);
    assert_eq!((r.created, r.rejected), (4, 1), "{:#?}", r.issues);
    assert_eq!(count(&store, &w, Table::Customers).await, 5);
    // Users count alike (their batch counts as it goes).
    let h = ["用户名", "姓名"];
    let user = |u: &str| vec![t(u), t(&format!("{u}用户"))];
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Fail;
    o.commit = CommitMode::Batches;
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![user("newa"), user("newb"), user("newc"), user("zhangsan")],
    )
    .await;
    assert_eq!(r.status, ImportStatus::Failed);
    assert_eq!((r.created, r.rejected), (2, 1), "{:#?}", r.issues);
}

/// Rewrites the stored options of the import of a file digest, as an
/// older build or another actor's rights would have left them.
async fn rewrite_import_options(
    store: &Arc<dyn Store>,
    w: &World,
    file_hash: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let mut sel = Select::all(Table::Imports, w.admin.company_id.0, w.crm.now());
    sel.filter = crate::store::Filter::Cmp(
        crate::store::Col::Column("file_hash"),
        crate::store::CmpOp::Eq,
        file_hash.into(),
    );
    let stored = store.select(&sel).await.expect("import").rows.remove(0);
    let mut options = stored.get("options").as_json().cloned().expect("options");
    change(&mut options);
    store
        .apply(&crate::store::ChangeSet {
            ops: vec![crate::store::Op::Update {
                table: Table::Imports,
                id: stored.id(),
                expected_version: stored.version(),
                values: vec![("options", crate::value::Value::Json(options))],
            }],
            ..Default::default()
        })
        .await
        .expect("rewritten options");
}

/// A resumed import reports as if it had run uninterrupted: the rows that
/// the committed batches of the interrupted run rejected or skipped come
/// back with this run's — handed out with the replayed batch that holds
/// them (so crm-io's error workbook gets their cells), with the reasons
/// first given, in sheet order — and the counts match the issues listed.
/// An import whose batches were committed by a build that kept no issues
/// (its record does not say it does) reports this run's rows only.
pub async fn import_resumed_reports_every_row_of_the_import(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "已有甲有限公司", json!({})).await;
    w.customer(&w.admin, "已有乙有限公司", json!({})).await;
    let data = |p: &str| {
        vec![
            vec![t(&format!("{p}甲有限公司")), t("Z")],
            vec![t("已有甲有限公司"), t("")],
            vec![t(&format!("{p}乙有限公司")), t("A")],
            vec![t(&format!("{p}丙有限公司")), t("Z")],
            vec![t("已有乙有限公司"), t("")],
            vec![t(&format!("{p}丁有限公司")), t("B")],
        ]
    };
    let h = headers(&["客户名称", "客户级别"]);
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.file_hash = "sha256:resume-issues".into();
    let first = {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        let issues = s.push(&rows(data("续"))[..3]).await.expect("batch 1");
        assert_eq!(issues.len(), 2, "{issues:#?}");
        issues
    };
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &h)
        .await
        .expect("again");
    let mut handed = Vec::new();
    for chunk in rows(data("续")).chunks(3) {
        handed.push(s.push(chunk).await.expect("push"));
    }
    assert_eq!(
        handed[0], first,
        "the replayed batch hands out its rows' issues"
    );
    let r = s.finish().await.expect("finish");
    assert_eq!(r.resumed_after, Some(4));
    let listed: Vec<(u32, RowOutcome)> = r.issues.iter().map(|i| (i.row, i.outcome)).collect();
    assert_eq!(
        listed,
        [
            (2, RowOutcome::Rejected),
            (3, RowOutcome::Skipped),
            (5, RowOutcome::Rejected),
            (6, RowOutcome::Skipped)
        ],
        "{:#?}",
        r.issues
    );
    assert_eq!(r.issues[..2], first[..]);
    assert!(r.issues[1].message_zh.contains("已跳过"), "{:#?}", r.issues);
    assert_eq!((r.rejected, r.skipped), (2, 2));
    assert_eq!((r.rows, r.created), (6, 2));
    let info = &w.crm.list_imports(&w.admin).await.expect("imports")[0];
    assert_eq!((info.created, info.skipped, info.rejected), (2, 2, 2));

    // The interrupted run of an older build: its import record does not
    // say that its batches keep their issues.
    o.file_hash = "sha256:resume-issues-older".into();
    {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        s.push(&rows(data("旧"))[..3]).await.expect("batch 1");
    }
    rewrite_import_options(&store, &w, "sha256:resume-issues-older", |o| {
        o.as_object_mut()
            .expect("object")
            .remove("items_keep_issues")
            .expect("the flag is stored");
    })
    .await;
    let mut s = w
        .crm
        .begin_import(&w.admin, o.clone(), &h)
        .await
        .expect("again");
    for chunk in rows(data("旧")).chunks(3) {
        s.push(chunk).await.expect("push");
    }
    let r = s.finish().await.expect("finish");
    assert_eq!(r.resumed_after, Some(4));
    let listed: Vec<(u32, RowOutcome)> = r.issues.iter().map(|i| (i.row, i.outcome)).collect();
    assert_eq!(
        listed,
        [(5, RowOutcome::Rejected), (6, RowOutcome::Skipped)],
        "{:#?}",
        r.issues
    );
    assert_eq!((r.rejected, r.skipped, r.rows, r.created), (1, 1, 3, 2));

    // Rights changed between the runs: what an earlier run's duplicate
    // message told of the record found is not shown again.
    o.file_hash = "sha256:resume-issues-rights".into();
    let first = {
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("begin");
        s.push(&rows(data("权"))[..3]).await.expect("batch 1")
    };
    assert!(first[1].message_zh.contains("已有甲有限公司"), "{first:#?}");
    rewrite_import_options(&store, &w, "sha256:resume-issues-rights", |o| {
        o["rights"] = json!("0000000000000000");
    })
    .await;
    let mut s = w.crm.begin_import(&w.admin, o, &h).await.expect("again");
    for chunk in rows(data("权")).chunks(3) {
        s.push(chunk).await.expect("push");
    }
    let r = s.finish().await.expect("finish");
    assert_eq!(r.issues.len(), 4, "{:#?}", r.issues);
    assert_eq!(r.issues[0], first[0], "a row's own problems are told again");
    let i = &r.issues[1];
    assert_eq!((i.row, i.outcome), (3, RowOutcome::Skipped));
    assert!(
        i.message_en.contains("access has changed") && !i.message_zh.contains("已有甲"),
        "{i:#?}"
    );
    assert!(
        r.issues[3].message_zh.contains("已有乙有限公司"),
        "this run's own duplicates are described: {:#?}",
        r.issues
    );
}

/// A money cell a formula computed (`=B2*1.13` is 112.99999999999999 in
/// binary) reads as the spreadsheet shows it, to 15 significant digits, and
/// then must be whole 分: 113.00 is taken, for product prices and custom
/// money fields alike; 1.005 typed as a number still has more decimals
/// than 元 have and is refused, naming the value.
pub async fn import_reads_money_computed_by_formulas_as_shown(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = ["产品编号", "产品名称", "标准价", "成本"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &h,
        vec![
            vec![
                t("FX-1"),
                t("公式价"),
                Cell::Number(100.0 * 1.13),
                Cell::Number(0.1 + 0.2),
            ],
            vec![t("FX-2"), t("三位小数"), Cell::Number(1.005), t("")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let p = w
        .crm
        .product_by_code(&w.admin, "FX-1")
        .await
        .expect("product");
    assert_eq!(p.list_price.minor, 11_300);
    assert_eq!(p.cost.map(|c| c.minor), Some(30));
    let i = issue(&r, 3);
    assert!(i.message_en.contains("'1.005'"), "{}", i.message_en);
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "budget",
                "预算",
                "Budget",
                crate::custom::CustomFieldType::Money,
                &[],
                false,
            ),
        )
        .await
        .expect("money field");
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "预算"],
        vec![
            vec![t("公式预算有限公司"), Cell::Number(1234.56 * 3.0)],
            vec![t("三位小数有限公司"), Cell::Number(2.675)],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let c = find(&w, "公式预算有限公司").await.expect("created");
    assert_eq!(c.custom.get("budget"), Some(&json!(370_368)));
    let i = issue(&r, 3);
    assert!(i.message_en.contains("2.675"), "{}", i.message_en);
}

/// Headers typed with full-width letters and digits (`Ｅｍａｉｌ`,
/// `联系人１姓名`) or doubled spaces (`Short  name`) map like their
/// plain spellings instead of being ignored.
pub async fn import_folds_full_width_and_spaced_headers(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = [
        "Ｎａｍｅ",
        "Short \t name",
        "联系人１姓名",
        "联系人１ 手机",
        "联系人２\u{3000}姓名",
        "Ｅｍａｉｌ",
    ];
    let map = w
        .crm
        .map_headers(&w.admin, Entity::Customer, &headers(&h))
        .await
        .expect("map");
    assert!(map.ignored.is_empty(), "{:?}", map.ignored);
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![vec![
            t("全角表头有限公司"),
            t("全角"),
            t("张伟"),
            t("13812345678"),
            t("李娜"),
            t("info@example.com"),
        ]],
    )
    .await;
    assert_eq!((r.created, r.contacts_created), (1, 2), "{:#?}", r.issues);
    assert!(r.ignored_columns.is_empty(), "{:?}", r.ignored_columns);
    let c = find(&w, "全角表头有限公司").await.expect("created");
    assert_eq!(c.text("short_name"), Some("全角"));
    assert_eq!(c.text("email"), Some("info@example.com"));
}

/// A date that does not exist (30 February, month 13) and an amount with
/// more decimals than 分 are explained in Chinese as in English, and a
/// filled amount that does not parse is not also called missing.
pub async fn import_explains_impossible_dates_and_bad_amounts_in_both_languages(
    store: Arc<dyn Store>,
) {
    let w = World::new(store.clone()).await;
    let h = ["客户名称", "下次跟进日期"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![
            vec![t("二月三十日有限公司"), t("2026-02-30")],
            vec![t("十三月有限公司"), t("2026-13-01")],
        ],
    )
    .await;
    assert_eq!(r.rejected, 2, "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_zh
            .contains("下次跟进日期：「2026-02-30」：2026 年 2 月没有 30 日"),
        "{}",
        i.message_zh
    );
    assert!(
        !i.message_zh.contains("there is no day"),
        "{}",
        i.message_zh
    );
    assert!(
        i.message_en.contains("no day 30 in month 2"),
        "{}",
        i.message_en
    );
    let i = issue(&r, 3);
    assert!(
        i.message_zh.contains("「2026-13-01」：没有 13 月"),
        "{}",
        i.message_zh
    );
    // Products: too many decimals, an amount that is no number, none.
    let h = ["产品编号", "产品名称", "标准价", "成本"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &h,
        vec![
            vec![t("CP-A"), t("三位小数"), t("1280.555"), t("")],
            vec![t("CP-B"), t("坏成本"), t("10"), t("abc")],
            vec![t("CP-C"), t("无价格"), t(""), t("")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (0, 3), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_zh.contains("标准价：「1280.555」不是金额") && i.message_zh.contains("3 位小数"),
        "{}",
        i.message_zh
    );
    assert!(!i.message_zh.contains("必填"), "{}", i.message_zh);
    assert!(
        i.message_en.contains("'1280.555' is not an amount")
            && i.message_en.contains("3 decimal places"),
        "{}",
        i.message_en
    );
    assert!(!i.message_en.contains("required"), "{}", i.message_en);
    let i = issue(&r, 3);
    assert!(
        i.message_zh.contains("成本：「abc」不是金额"),
        "{}",
        i.message_zh
    );
    // An empty required amount is still missing.
    let i = issue(&r, 4);
    assert!(i.message_zh.contains("标准价：必填"), "{}", i.message_zh);
}

/// Under the fail policy every duplicate row comes back — those repeating a
/// row of the file and those repeating a stored record — so that one pass
/// fixes them all; nothing is written.
pub async fn import_fail_policy_reports_every_duplicate_row(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "已有客户有限公司", json!({})).await;
    let before = count(&store, &w, Table::Customers).await;
    let h = ["客户名称", "备注"];
    let data = vec![
        vec![t("文件内重复公司"), t("a")],
        vec![t("文件内重复公司"), t("b")],
        vec![t("已有客户有限公司"), t("existing")],
        vec![t("全新有限公司"), t("")],
        vec![t("已有客户有限公司"), t("again")],
    ];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    let r = run(&w, &w.admin, o, &h, data).await;
    assert_eq!(r.status, ImportStatus::Failed);
    let rows: Vec<(u32, IssueKind)> = r.issues.iter().map(|i| (i.row, i.kind)).collect();
    assert_eq!(
        rows,
        vec![
            (3, IssueKind::DuplicateInFile),
            (4, IssueKind::Duplicate),
            (6, IssueKind::DuplicateInFile),
        ],
        "{:#?}",
        r.issues
    );
    assert_eq!((r.created, r.rejected), (0, 3));
    assert_eq!(count(&store, &w, Table::Customers).await, before);
    // Products too: a repeat within the file does not hide one of the
    // catalogue.
    w.crm
        .create_product(
            &w.admin,
            crate::sales::product::ProductInput {
                code: Some("CP-OLD".into()),
                name: Some("旧产品".into()),
                list_price: Some(crate::money::Money::parse("1").expect("money")),
                ..Default::default()
            },
        )
        .await
        .expect("product");
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Fail;
    let r = run(
        &w,
        &w.admin,
        o,
        &["产品编号", "产品名称", "标准价"],
        vec![
            vec![t("CP-N"), t("新"), t("1")],
            vec![t("CP-N"), t("新"), t("1")],
            vec![t("CP-OLD"), t("旧产品"), t("1")],
        ],
    )
    .await;
    let rows: Vec<u32> = r.issues.iter().map(|i| i.row).collect();
    assert_eq!(rows, vec![3, 4], "{:#?}", r.issues);
    assert!(w.crm.product_by_code(&w.admin, "CP-N").await.is_err());
}

/// A customer imported into a pool has no owner: a row naming one is
/// refused with the reason, not imported with the owner silently dropped.
pub async fn import_into_a_pool_refuses_rows_naming_an_owner(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "华东公海".into(),
                admins: vec![w.admin.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.sales],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let mut o = opts(Entity::Customer);
    o.pool = Some("华东公海".into());
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "负责人"],
        vec![
            vec![t("有负责人有限公司"), t("zhangsan")],
            vec![t("无负责人有限公司"), t("")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(i.kind, IssueKind::Invalid);
    assert!(
        i.message_zh.contains("负责人") && i.message_zh.contains("华东公海"),
        "{}",
        i.message_zh
    );
    assert!(i.message_en.contains("have no owner"), "{}", i.message_en);
    assert!(find(&w, "有负责人有限公司").await.is_none());
    let public = w
        .crm
        .pool_customers(
            &w.admin,
            pool.id,
            crate::pool::Place::Public,
            &ListQuery::default(),
        )
        .await
        .expect("pool list");
    assert_eq!(public.items.len(), 1);
    assert_eq!(public.items[0].text("name"), Some("无负责人有限公司"));
}

/// Export gives the customer's lock flag as a boolean and its count of
/// open opportunities as a number, not as the texts `false` and `0`.
pub async fn export_gives_flags_and_counts_as_booleans_and_numbers(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "导出类型有限公司", json!({})).await;
    let picks = ["locked".to_string(), "open_opportunities".to_string()];
    let cols = w
        .crm
        .export_columns(&w.admin, Entity::Customer, &picks)
        .await
        .expect("columns");
    let at = |k: &str| cols.iter().position(|c| c.key == k).expect(k);
    let (locked, open) = (at("locked"), at("open_opportunities"));
    assert_eq!(cols[locked].kind, crate::import::ValueKind::Bool);
    assert_eq!(cols[open].kind, crate::import::ValueKind::Number);
    let mut cur = w
        .crm
        .export_cursor(
            &w.admin,
            Entity::Customer,
            ListQuery::default(),
            cols.clone(),
            10,
        )
        .await
        .expect("cursor");
    let page = cur.next_page().await.expect("page").expect("a row");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0][locked], ExportValue::Bool(false));
    assert_eq!(page[0][open], ExportValue::Number(0.0));
}

/// What an export of `entity` as `actor` writes, as an import reads the
/// workbook back: the headers (Chinese, or English with `english`) and the
/// rows of cells.
async fn exported_sheet(
    w: &World,
    actor: &Actor,
    entity: Entity,
    english: bool,
) -> (Vec<String>, Vec<Vec<Cell>>) {
    // (Every column: in English too, a contact's department (部门,
    // `Department`) and the record's (所属部门, `Owning department`) are
    // told apart.)
    let cols = w
        .crm
        .export_columns(actor, entity, &[])
        .await
        .expect("columns");
    let headers = cols
        .iter()
        .map(|c| {
            if english {
                c.header_en.clone()
            } else {
                c.header_zh.clone()
            }
        })
        .collect();
    let mut cur = w
        .crm
        .export_cursor(actor, entity, ListQuery::default(), cols, 100)
        .await
        .expect("cursor");
    let mut out = Vec::new();
    while let Some(page) = cur.next_page().await.expect("page") {
        for row in page {
            out.push(
                row.into_iter()
                    .map(|v| match v {
                        ExportValue::Empty => Cell::Empty,
                        ExportValue::Text(s) => t(&s),
                        ExportValue::Number(n) => Cell::Number(n),
                        ExportValue::Money(m) => Cell::Number(m as f64 / 100.0),
                        ExportValue::Date(d) => Cell::Date(d),
                        ExportValue::DateTime(d) => Cell::DateTime(d),
                        ExportValue::Bool(b) => Cell::Bool(b),
                    })
                    .collect(),
            );
        }
    }
    (headers, out)
}

async fn contacts_of(w: &World) -> Vec<Record> {
    w.crm
        .list_records(
            &w.admin,
            Entity::Contact,
            &ListQuery::default().page(PageRequest::Offset {
                page: 1,
                per_page: 1000,
            }),
        )
        .await
        .expect("contacts")
        .items
}

/// Re-importing an exported contact sheet finds the contacts by their code
/// (编号 / Code), also contacts without a mobile (their only other key):
/// skip reports each as a duplicate by code and creates nothing, a dry run
/// says the same, update changes what the sheet changed and leaves the
/// rest unchanged, fail fails. Nothing is created twice.
pub async fn import_matches_exported_contacts_by_code(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    for name in ["张伟", "李娜", "王芳"] {
        w.crm
            .create_record(
                &w.zhangsan,
                Entity::Contact,
                crate::testing::service_suite::fields(
                    json!({"customer_id": hw.id.to_string(), "name": name, "title": "经理"}),
                ),
            )
            .await
            .expect("contact");
    }
    let before = contacts_of(&w).await;
    let code_of = |name: &str| {
        before
            .iter()
            .find(|r| r.text("name") == Some(name))
            .and_then(|r| r.code.clone())
            .expect("code")
    };
    for english in [false, true] {
        let (h, data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, english).await;
        assert!(
            h.iter().any(|c| c == if english { "Code" } else { "编号" }),
            "{h:?}"
        );
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let name_at = h
            .iter()
            .position(|c| *c == if english { "Name" } else { "姓名" })
            .expect("name column");
        for dry_run in [false, true] {
            let mut o = opts(Entity::Contact);
            o.dry_run = dry_run;
            let r = run(&w, &w.zhangsan, o, &h, data.clone()).await;
            assert_eq!(
                (r.created, r.skipped, r.rejected),
                (0, 3, 0),
                "english {english}, dry run {dry_run}: {:#?}",
                r.issues
            );
            for (i, row) in data.iter().enumerate() {
                let Cell::Text(name) = &row[name_at] else {
                    panic!("name {:?}", row[name_at]);
                };
                let code = code_of(name);
                let i = issue(&r, i as u32 + 2);
                assert_eq!(
                    (i.outcome, i.kind),
                    (RowOutcome::Skipped, IssueKind::Duplicate)
                );
                assert!(
                    i.message_en
                        .contains(&format!("code {code} already belongs to {name}")),
                    "{}",
                    i.message_en
                );
                assert!(
                    i.message_zh.contains(&format!("编号 {code} 已存在")),
                    "{}",
                    i.message_zh
                );
            }
        }
    }
    assert_eq!(contacts_of(&w).await.len(), 3, "nothing created twice");
    // Update: the changed title lands, the other rows are unchanged, the
    // records keep their codes.
    let (h, mut data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let at = |name: &str| h.iter().position(|c| *c == name).expect(name);
    let changed = data
        .iter_mut()
        .find(|r| r[at("姓名")] == t("李娜"))
        .expect("李娜");
    changed[at("职务")] = t("总监");
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data.clone()).await;
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.rejected),
        (0, 1, 2, 0),
        "{:#?}",
        r.issues
    );
    let after = contacts_of(&w).await;
    assert_eq!(after.len(), 3);
    let li = after
        .iter()
        .find(|r| r.text("name") == Some("李娜"))
        .expect("李娜");
    assert_eq!(li.text("title"), Some("总监"));
    assert_eq!(li.code, Some(code_of("李娜")), "the code is kept");
    // Fail: the duplicates by code fail the import.
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Fail;
    let r = run(&w, &w.zhangsan, o, &h, data).await;
    assert_eq!(
        (r.status, r.created, r.rejected),
        (ImportStatus::Failed, 0, 3)
    );
    assert_eq!(contacts_of(&w).await.len(), 3);
}

/// A customer row's code (编号) meets the live record holding it, whoever
/// may see it: a code no record holds is a sheet's own numbering (the row
/// is created with a code of the engine's), two rows with one code are
/// duplicates in the file, a code of a record the actor cannot see is a
/// duplicate told without the record's details, and a code of a record in
/// the recycle bin rejects its row (restore that record, or clear the code
/// for a new one) rather than making a second record beside it. A row
/// whose code names one record and whose name another updates neither.
pub async fn import_matches_customer_codes_and_keeps_codes_the_engines(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let jia = w.customer(&w.zhangsan, "甲有限公司", json!({})).await;
    let yi = w.customer(&w.zhangsan, "乙有限公司", json!({})).await;
    let hidden = w.customer(&w.wangwu, "隐藏有限公司", json!({})).await;
    let gone = w.customer(&w.zhangsan, "删除有限公司", json!({})).await;
    let report = w
        .crm
        .delete_records(&w.admin, Entity::Customer, &[gone.id])
        .await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let code = |r: &Record| r.code.clone().expect("code");
    let (jia_code, hidden_code, gone_code) = (code(&jia), code(&hidden), code(&gone));
    let h = ["编号", "客户名称", "客户级别"];
    let data = vec![
        // A sheet's own numbering.
        vec![t("LEGACY-001"), t("新客户一有限公司"), t("A")],
        vec![t(&jia_code), t("甲改名有限公司"), t("B")],
        vec![t(&jia_code), t("又一个新有限公司"), t("B")],
        vec![t(&hidden_code), t("看不见有限公司"), t("B")],
        vec![t(&gone_code), t("删除有限公司"), t("B")],
    ];
    let r = run(&w, &w.zhangsan, opts(Entity::Customer), &h, data).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (1, 3, 1),
        "{:#?}",
        r.issues
    );
    let legacy = find(&w, "新客户一有限公司").await.expect("created");
    let legacy_code = code(&legacy);
    assert!(
        legacy_code != "LEGACY-001" && legacy_code.starts_with("KH-"),
        "{legacy_code}"
    );
    assert!(find(&w, "删除有限公司").await.is_none(), "not made again");
    let i = issue(&r, 6);
    assert_eq!(i.kind, IssueKind::Invalid);
    assert!(
        i.message_en.contains(&gone_code)
            && i.message_en.contains("recycle bin")
            && i.message_zh.contains("回收站"),
        "{} / {}",
        i.message_en,
        i.message_zh
    );
    let i = issue(&r, 3);
    assert_eq!(i.kind, IssueKind::Duplicate);
    assert!(
        i.message_en
            .contains(&format!("code {jia_code} already belongs to 甲有限公司")),
        "{}",
        i.message_en
    );
    let i = issue(&r, 4);
    assert_eq!(i.kind, IssueKind::DuplicateInFile);
    assert!(
        i.message_en
            .contains(&format!("code {jia_code} repeats row 3 of this file")),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh
            .contains(&format!("编号 {jia_code} 与本文件第 3 行重复")),
        "{}",
        i.message_zh
    );
    let i = issue(&r, 5);
    assert_eq!(i.kind, IssueKind::Duplicate);
    assert!(
        i.message_en.contains(&format!(
            "code {hidden_code} already belongs to another customer"
        )) && i.message_zh.contains("另一个客户"),
        "{} / {}",
        i.message_en,
        i.message_zh
    );
    assert!(
        !i.message_zh.contains("隐藏") && !i.message_en.contains("王五"),
        "{}",
        i.message_zh
    );
    assert!(find(&w, "甲改名有限公司").await.is_none());
    assert!(find(&w, "看不见有限公司").await.is_none());
    // Update: the hidden record is not updated; a row naming 甲 by code and
    // 乙 by name updates neither; 甲 by its code takes the new level.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let data = vec![
        vec![t(&hidden_code), t("看不见有限公司"), t("A")],
        vec![t(&jia_code), t("乙有限公司"), t("A")],
    ];
    let r = run(&w, &w.zhangsan, o.clone(), &h, data).await;
    assert_eq!((r.updated, r.rejected), (0, 2), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
    let i = issue(&r, 3);
    assert!(
        i.message_en
            .contains("the row matches two records and updates neither"),
        "{}",
        i.message_en
    );
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![t(&jia_code), t("甲改名有限公司"), t("A")]],
    )
    .await;
    assert_eq!((r.created, r.updated), (0, 1), "{:#?}", r.issues);
    let renamed = find(&w, "甲改名有限公司").await.expect("renamed");
    assert_eq!((renamed.id, code(&renamed)), (jia.id, jia_code.clone()));
    assert_eq!(renamed.text("level"), Some("A"));
    assert_eq!(find(&w, "乙有限公司").await.map(|r| r.id), Some(yi.id));
    // A row updating 乙 by its name gives it no other code: a later row
    // naming 乙's code still meets 乙 (already updated by the row before).
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![
            vec![t("LEGACY-009"), t("乙有限公司"), t("B")],
            vec![t(&code(&yi)), t("乙新名有限公司"), t("C")],
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (0, 1, 1),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 3);
    assert_eq!(i.kind, IssueKind::DuplicateInFile);
    assert!(
        i.message_en
            .contains("row 2 of this file already updates it"),
        "{}",
        i.message_en
    );
    let yi_now = find(&w, "乙有限公司").await.expect("乙");
    assert_eq!(
        (yi_now.code.clone(), yi_now.text("level")),
        (yi.code.clone(), Some("B"))
    );
    assert!(find(&w, "乙新名有限公司").await.is_none());
    // Fail: a code of a hidden record fails the import too.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Fail;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![t(&hidden_code), t("看不见有限公司"), t("A")]],
    )
    .await;
    assert_eq!(r.status, ImportStatus::Failed);
    assert!(find(&w, "看不见有限公司").await.is_none());
    // A row naming the very code its record is then given (a sheet's own
    // numbering may look like the engine's) is created with it: the code
    // only finds records, it guards nothing.
    let probe = w.customer(&w.zhangsan, "编号探测有限公司", json!({})).await;
    let mut last = code(&probe);
    for commit in [CommitMode::Atomic, CommitMode::Batches] {
        let (prefix, n) = last.rsplit_once('-').expect("numbered code");
        let n: u32 = n.parse().expect("number");
        let next = format!(
            "{prefix}-{:0width$}",
            n + 1,
            width = last.len() - prefix.len() - 1
        );
        let name = format!("预先编号{commit:?}有限公司");
        let mut o = opts(Entity::Customer);
        o.commit = commit;
        o.file_hash = format!("next-{commit:?}");
        let r = run(
            &w,
            &w.zhangsan,
            o,
            &h,
            vec![vec![t(&next), t(&name), t("")]],
        )
        .await;
        assert_eq!(
            (r.status, r.created, r.rejected),
            (ImportStatus::Done, 1, 0),
            "{commit:?}: {:#?}",
            r.issues
        );
        last = code(&find(&w, &name).await.expect("created"));
        assert_eq!(last, next, "{commit:?}");
    }
    // So also when the code is taken by a record of the batch before,
    // written after this batch's probe (as crm-io prepares ahead): the
    // row's code named no record when it was read, and the row is created.
    let (prefix, n) = last.rsplit_once('-').expect("numbered code");
    let n: u32 = n.parse().expect("number");
    let next = format!(
        "{prefix}-{:0width$}",
        n + 1,
        width = last.len() - prefix.len() - 1
    );
    let all = rows(vec![
        vec![t(""), t("先到有限公司"), t("")],
        vec![t(&next), t("后到有限公司"), t("")],
    ]);
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 1;
    let mut s = w
        .crm
        .begin_import(&w.zhangsan, o, &headers(&h))
        .await
        .expect("begin");
    let first = s.prepare(&all[0..1], None).await.expect("prepare 1");
    let second = s.prepare(&all[1..2], None).await.expect("prepare 2");
    first.write.commit().await.expect("commit 1");
    second.write.commit().await.expect("commit 2");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.rejected), (2, 0), "{:#?}", r.issues);
    assert_eq!(
        find(&w, "先到有限公司").await.and_then(|r| r.code),
        Some(next)
    );
    // An archived record is not updated by an import (unarchive it first);
    // a binned record the actor may not read is told of no more than a
    // code nobody has: the row makes a new customer.
    let shelved = w.customer(&w.zhangsan, "归档有限公司", json!({})).await;
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[shelved.id])
        .await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let theirs = w.customer(&w.wangwu, "王五删除有限公司", json!({})).await;
    let r = w
        .crm
        .delete_records(&w.wangwu, Entity::Customer, &[theirs.id])
        .await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.file_hash = "archived-and-hidden".into();
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![
            vec![t(&code(&shelved)), t("归档改名有限公司"), t("A")],
            vec![t(&code(&theirs)), t("新开有限公司"), t("A")],
        ],
    )
    .await;
    assert_eq!(
        (r.updated, r.created, r.rejected),
        (0, 1, 1),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 2);
    assert!(i.message_en.contains("archived"), "{}", i.message_en);
    assert!(find(&w, "归档改名有限公司").await.is_none());
    // A row leaving the archived record as it is (an exported sheet read
    // back) changes nothing: unchanged, not refused.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    o.file_hash = "archived-unchanged".into();
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![t(&code(&shelved)), t("归档有限公司"), t("")]],
    )
    .await;
    assert_eq!(
        (r.updated, r.unchanged, r.rejected),
        (0, 1, 0),
        "{:#?}",
        r.issues
    );
    assert!(find(&w, "新开有限公司").await.is_some());
}

/// The code column is recognised by its names (the entity's own ones
/// too) and read, never written; a custom field labelled 编号 keeps its
/// column; products keep their writable code field.
pub async fn import_maps_code_headers(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    use crate::import::ColumnRole;
    for (entity, h) in [
        (Entity::Customer, "编号"),
        (Entity::Customer, "CODE"),
        (Entity::Customer, "客户编号"),
        (Entity::Customer, "Customer Code"),
        (Entity::Customer, "＊编号（选填）"),
        (Entity::Contact, "code"),
        (Entity::Contact, "联系人编号"),
    ] {
        let others: &[&str] = if entity == Entity::Customer {
            &["客户名称"]
        } else {
            &["所属客户", "姓名"]
        };
        let mut hs = headers(others);
        hs.push(h.to_string());
        let map = w
            .crm
            .map_headers(&w.admin, entity, &hs)
            .await
            .unwrap_or_else(|e| panic!("{entity} {h}: {e}"));
        assert_eq!(map.roles.last(), Some(&ColumnRole::Code), "{entity} {h}");
        assert!(map.ignored.is_empty(), "{entity} {h}: {:?}", map.ignored);
    }
    // A contact import's customer column still names the customer.
    let map = w
        .crm
        .map_headers(
            &w.admin,
            Entity::Contact,
            &headers(&["客户", "姓名", "编号"]),
        )
        .await
        .expect("contact headers");
    assert_eq!(
        map.roles,
        vec![
            ColumnRole::Field("customer_id".into()),
            ColumnRole::Field("name".into()),
            ColumnRole::Code
        ]
    );
    // Another entity's code name is not this one's.
    let map = w
        .crm
        .map_headers(
            &w.admin,
            Entity::Customer,
            &headers(&["客户名称", "联系人编号"]),
        )
        .await
        .expect("customer headers");
    assert_eq!(map.roles[1], ColumnRole::Ignored);
    // Two code columns are refused as any repeated column is.
    let e = w
        .crm
        .map_headers(
            &w.admin,
            Entity::Customer,
            &headers(&["客户名称", "编号", "Code"]),
        )
        .await
        .expect_err("two code columns");
    assert!(e.to_string().contains("列重复"), "{e}");
    // Products: the code is a field.
    let map = w
        .crm
        .map_headers(
            &w.admin,
            Entity::Product,
            &headers(&["产品名称", "编号", "标准价"]),
        )
        .await
        .expect("product headers");
    assert_eq!(map.roles[1], ColumnRole::Field("code".into()));
    // No custom field can be labelled 编号: the column is the code's.
    let e = w
        .crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "legacy_no",
                "编号",
                "Legacy number",
                crate::custom::CustomFieldType::Text,
                &[],
                false,
            ),
        )
        .await
        .expect_err("a custom field labelled 编号");
    assert!(
        matches!(&e, Error::Validation(_)) && e.to_string().contains("编号"),
        "{e}"
    );
}

/// The stored import lists the counts its report gives: created, updated,
/// unchanged, skipped and rejected apart (unchanged rows are not skipped
/// ones), for an all-or-nothing import and a batched one.
pub async fn import_list_counts_as_the_report_does(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "甲有限公司", json!({"level": "A"}))
        .await;
    w.customer(&w.admin, "乙有限公司", json!({"level": "A"}))
        .await;
    let h = ["客户名称", "客户级别"];
    let checks = [
        // Update: created, updated, unchanged, rejected.
        (
            DuplicatePolicy::Update,
            CommitMode::Atomic,
            vec![
                vec![t("甲有限公司"), t("B")],
                vec![t("乙有限公司"), t("A")],
                vec![t("丙有限公司"), t("C")],
                vec![t("丁有限公司"), t("不存在的级别")],
            ],
            (1, 1, 1, 0, 1),
        ),
        // Skip, in batches: created, skipped, rejected.
        (
            DuplicatePolicy::Skip,
            CommitMode::Batches,
            vec![
                vec![t("甲有限公司"), t("A")],
                vec![t("乙有限公司"), t("A")],
                vec![t("戊有限公司"), t("C")],
                vec![t("己有限公司"), t("不存在的级别")],
                vec![t("庚有限公司"), t("")],
            ],
            (2, 0, 0, 2, 1),
        ),
    ];
    for (policy, commit, data, want) in checks {
        let mut o = opts(Entity::Customer);
        o.policy = policy;
        o.commit = commit;
        o.batch_size = 2;
        o.file_name = format!("{policy:?}.xlsx");
        o.file_hash = format!("hash-{policy:?}");
        let r = run(&w, &w.admin, o, &h, data).await;
        assert_eq!(
            (r.created, r.updated, r.unchanged, r.skipped, r.rejected),
            want,
            "{policy:?}: {:#?}",
            r.issues
        );
        let list = w.crm.list_imports(&w.admin).await.expect("list");
        let info = list
            .iter()
            .find(|i| Some(i.id) == r.import_id)
            .expect("listed");
        assert_eq!(
            (
                info.created as u64,
                info.updated as u64,
                info.unchanged as u64,
                info.skipped as u64,
                info.rejected as u64
            ),
            (
                r.created + r.contacts_created,
                r.updated,
                r.unchanged,
                r.skipped,
                r.rejected
            ),
            "{policy:?}"
        );
        assert_eq!(info.status, ImportStatus::Done);
        assert_eq!(info.rows_done, r.rows as i64 + 1, "the last sheet row");
    }
}

/// A resumed import counts the unchanged rows of its earlier runs apart
/// from the skipped ones, in its report and in its stored counts — also
/// when it was interrupted by a build that stored them among the skipped
/// rows (its batches kept their issues: the skipped rows are those).
pub async fn import_resumed_counts_unchanged_rows_apart(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "已有甲有限公司", json!({"level": "A"}))
        .await;
    w.customer(&w.admin, "已有乙有限公司", json!({"level": "A"}))
        .await;
    let h = headers(&["客户名称", "客户级别"]);
    for older in [false, true] {
        let p = if older { "旧" } else { "新" };
        let data = vec![
            vec![t("已有甲有限公司"), t("A")],
            vec![t(&format!("{p}甲有限公司")), t("B")],
            vec![t("已有乙有限公司"), t(if older { "C" } else { "B" })],
            vec![t(&format!("{p}乙有限公司")), t("不存在的级别")],
        ];
        let mut o = opts(Entity::Customer);
        o.commit = CommitMode::Batches;
        o.policy = DuplicatePolicy::Update;
        o.file_hash = format!("sha256:unchanged-{older}");
        {
            let mut s = w
                .crm
                .begin_import(&w.admin, o.clone(), &h)
                .await
                .expect("begin");
            s.push(&rows(data.clone())[..2]).await.expect("batch 1");
        }
        let mut sel = Select::all(Table::Imports, w.admin.company_id.0, w.crm.now());
        sel.filter = crate::store::Filter::Cmp(
            crate::store::Col::Column("file_hash"),
            crate::store::CmpOp::Eq,
            o.file_hash.clone().into(),
        );
        let stored = store.select(&sel).await.expect("import").rows.remove(0);
        assert_eq!(
            (
                stored.get("unchanged").as_int(),
                stored.get("skipped").as_int()
            ),
            (Some(1), Some(0))
        );
        if older {
            // As the build before stored it: the unchanged row among the
            // skipped ones.
            store
                .apply(&crate::store::ChangeSet {
                    ops: vec![crate::store::Op::Update {
                        table: Table::Imports,
                        id: stored.id(),
                        expected_version: stored.version(),
                        values: vec![
                            ("skipped", crate::value::Value::Int(1)),
                            ("unchanged", crate::value::Value::Int(0)),
                        ],
                    }],
                    ..Default::default()
                })
                .await
                .expect("rewritten counts");
        }
        let mut s = w
            .crm
            .begin_import(&w.admin, o.clone(), &h)
            .await
            .expect("again");
        for chunk in rows(data).chunks(2) {
            s.push(chunk).await.expect("push");
        }
        let r = s.finish().await.expect("finish");
        assert_eq!(r.resumed_after, Some(3));
        assert_eq!(
            (r.created, r.updated, r.unchanged, r.skipped, r.rejected),
            (1, 1, 1, 0, 1),
            "older {older}: {:#?}",
            r.issues
        );
        let list = w.crm.list_imports(&w.admin).await.expect("list");
        let info = list
            .iter()
            .find(|i| Some(i.id) == r.import_id)
            .expect("listed");
        assert_eq!(
            (
                info.created,
                info.updated,
                info.unchanged,
                info.skipped,
                info.rejected
            ),
            (1, 1, 1, 0, 1),
            "older {older}"
        );
    }
}

/// An export names a customer's pool (所属公海) by the pool's name, as an
/// import into a pool names it, not by the pool's id — read straight from
/// the store and through a search alike — and a contact's customer by the
/// customer's name, which the contact import reads back.
pub async fn export_names_the_pool_and_the_customer_not_their_ids(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "华南公海".into(),
                admins: vec![w.admin.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.sales],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let c = w.customer(&w.admin, "公海导出有限公司", json!({})).await;
    let r = w
        .crm
        .release(&w.admin, &[c.id], "无意向", Some(pool.id))
        .await
        .expect("release");
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let picks = ["code".to_string(), "所属公海".to_string()];
    let cols = w
        .crm
        .export_columns(&w.admin, Entity::Customer, &picks)
        .await
        .expect("columns");
    assert_eq!(cols[1].key, "pool_id");
    for search in [None, Some("公海导出")] {
        let q = ListQuery {
            search: search.map(str::to_string),
            ..ListQuery::default()
        };
        let mut cur = w
            .crm
            .export_cursor(&w.admin, Entity::Customer, q, cols.clone(), 10)
            .await
            .expect("cursor");
        let page = cur.next_page().await.expect("page").expect("a row");
        assert_eq!(page.len(), 1, "search {search:?}");
        assert_eq!(
            page[0],
            vec![
                ExportValue::Text(c.code.clone().expect("code")),
                ExportValue::Text("华南公海".into()),
            ],
            "search {search:?}"
        );
    }
    // A masked pool is masked whichever way its rows are read.
    let masked = user_with_role(
        &w,
        "poolmask",
        role_perms(&[Action::Read, Action::Export], DataScope::All),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "pool_id".into(),
            access: FieldAccess::Masked,
        }],
    )
    .await;
    for search in [None, Some("公海导出")] {
        let q = ListQuery {
            search: search.map(str::to_string),
            ..ListQuery::default()
        };
        let mut cur = w
            .crm
            .export_cursor(&masked, Entity::Customer, q, cols.clone(), 10)
            .await
            .expect("cursor");
        let page = cur.next_page().await.expect("page").expect("a row");
        assert_eq!(
            page[0][1],
            ExportValue::Text("***".into()),
            "search {search:?}"
        );
    }
    // The whole sheet holds no id of the pool.
    let (headers, rows) = exported_sheet(&w, &w.admin, Entity::Customer, false).await;
    let at = headers
        .iter()
        .position(|h| h == "所属公海")
        .expect("pool column");
    assert_eq!(rows[0][at], t("华南公海"));
    let pool_id = pool.id.to_string();
    assert!(
        !rows[0]
            .iter()
            .any(|c| matches!(c, Cell::Text(s) if s.contains(&pool_id))),
        "{:?}",
        rows[0]
    );
    // A contact's customer is named as the contact import reads it.
    let owned = w.customer(&w.admin, "联系人导出有限公司", json!({})).await;
    let mut f = crate::records::Fields::new();
    f.insert("customer_id".into(), json!(owned.id.to_string()));
    f.insert("name".into(), json!("李四"));
    w.crm
        .create_record(&w.admin, Entity::Contact, f)
        .await
        .expect("contact");
    let (headers, rows) = exported_sheet(&w, &w.admin, Entity::Contact, false).await;
    let at = headers
        .iter()
        .position(|h| h == "所属客户")
        .expect("customer column");
    assert_eq!(rows[0][at], t("联系人导出有限公司"));
}

async fn contact_named(w: &World, name: &str) -> Record {
    contacts_of(w)
        .await
        .into_iter()
        .find(|r| r.text("name") == Some(name))
        .unwrap_or_else(|| panic!("no contact {name}"))
}

async fn new_contact(w: &World, customer: &Record, f: serde_json::Value) -> Record {
    let mut f = crate::testing::service_suite::fields(f);
    f.insert("customer_id".into(), json!(customer.id.to_string()));
    w.crm
        .create_record(&w.admin, Entity::Contact, f)
        .await
        .expect("contact")
}

/// Under the update policy, a customer row's contact groups update the
/// contacts of the customer they name — by the group's code column
/// (联系人3编号), else by mobile, else by name — with a `contact.updated`
/// event each, counted apart; the other groups add contacts. The same
/// sheet again changes nothing (no write, no event), the undo gives the
/// contacts their values back, and a group naming two contacts by name,
/// or taking another contact's mobile, refuses its row.
pub async fn import_update_changes_the_contacts_its_groups_name(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let jia = w.customer(&w.admin, "甲组联系人有限公司", json!({})).await;
    new_contact(
        &w,
        &jia,
        json!({"name": "张伟", "mobile": "13800000001", "title": "经理"}),
    )
    .await;
    new_contact(&w, &jia, json!({"name": "李娜", "title": "专员"})).await;
    let wang = new_contact(
        &w,
        &jia,
        json!({"name": "王芳", "mobile": "13800000003", "title": "经理"}),
    )
    .await;
    let wang_code = wang.code.clone().expect("code");
    let h = [
        "客户名称",
        "联系人1姓名",
        "联系人1手机",
        "联系人1职务",
        "联系人2姓名",
        "联系人2职务",
        "联系人3姓名",
        "联系人3编号",
        "联系人3手机",
        "联系人3职务",
        "联系人4姓名",
        "联系人4职务",
    ];
    let row = vec![
        t("甲组联系人有限公司"),
        t("张伟"),
        t("13800000001"),
        t("总监"),
        t("李娜"),
        t("主管"),
        t("王芳"),
        t(&wang_code),
        t("13900000003"),
        t("经理"),
        t("赵六"),
        t("顾问"),
    ];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.admin, o.clone(), &h, vec![row.clone()]).await;
    assert_eq!(
        (
            r.updated,
            r.unchanged,
            r.contacts_updated,
            r.contacts_created,
            r.rejected
        ),
        (0, 1, 3, 1, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(contacts_of(&w).await.len(), 4);
    assert_eq!(contact_named(&w, "张伟").await.text("title"), Some("总监"));
    assert_eq!(contact_named(&w, "李娜").await.text("title"), Some("主管"));
    let wang_after = contact_named(&w, "王芳").await;
    assert_eq!(wang_after.text("mobile"), Some("13900000003"));
    assert_eq!(wang_after.code, Some(wang_code.clone()), "the code is kept");
    assert_eq!(contact_named(&w, "赵六").await.text("title"), Some("顾问"));
    let events = w
        .crm
        .pending_events("import-suite", 100_000)
        .await
        .expect("events");
    let seen = events.last().map(|e| e.seq).unwrap_or_default();
    w.crm.ack_events("import-suite", seen).await.expect("ack");
    let updated: Vec<_> = events
        .into_iter()
        .filter(|e| e.event.event_type == "contact.updated")
        .map(|e| e.event.payload.to_value())
        .collect();
    assert_eq!(updated.len(), 3, "{updated:?}");
    assert!(
        updated
            .iter()
            .all(|p| p["import_id"] == json!(r.import_id.expect("id").to_string())),
        "{updated:?}"
    );
    // The same sheet again: nothing changes, nothing is announced.
    let again = run(&w, &w.admin, o.clone(), &h, vec![row]).await;
    assert_eq!(
        (
            again.contacts_updated,
            again.contacts_created,
            again.unchanged
        ),
        (0, 0, 1),
        "{:#?}",
        again.issues
    );
    let events = w
        .crm
        .pending_events("import-suite", 100_000)
        .await
        .expect("events");
    assert!(
        !events
            .iter()
            .any(|e| e.event.event_type == "contact.updated"),
        "unchanged contacts are not written"
    );
    // The first import's undo gives the contacts their values back.
    let undo = w
        .crm
        .undo_import(&w.admin, r.import_id.expect("id"))
        .await
        .expect("undo");
    assert_eq!((undo.removed, undo.restored), (1, 3));
    assert_eq!(contact_named(&w, "张伟").await.text("title"), Some("经理"));
    assert_eq!(
        contact_named(&w, "王芳").await.text("mobile"),
        Some("13800000003")
    );
    // Two contacts of one name, no mobile: the row cannot tell which.
    let yi = w.customer(&w.admin, "乙组联系人有限公司", json!({})).await;
    for title in ["经理", "专员"] {
        new_contact(&w, &yi, json!({"name": "陈静", "title": title})).await;
    }
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户名称", "联系人1姓名", "联系人1职务"],
        vec![vec![t("乙组联系人有限公司"), t("陈静"), t("总监")]],
    )
    .await;
    assert_eq!((r.rejected, r.contacts_updated), (1, 0), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en.contains("matches 2 contacts"),
        "{}",
        i.message_en
    );
    assert!(i.message_zh.contains("联系人1编号"), "{}", i.message_zh);
    // A group taking another contact's mobile of the customer is refused.
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "联系人1姓名", "联系人1编号", "联系人1手机"],
        vec![vec![
            t("甲组联系人有限公司"),
            t("王芳"),
            t(&wang_code),
            t("13800000001"),
        ]],
    )
    .await;
    assert_eq!(
        (r.rejected, r.contacts_updated, r.contacts_created),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(issue(&r, 2).kind, IssueKind::Duplicate);
    assert!(
        issue(&r, 2).message_en.contains("13800000001"),
        "{}",
        issue(&r, 2).message_en
    );
    assert_eq!(
        contact_named(&w, "王芳").await.text("mobile"),
        Some("13800000003")
    );
}

/// A contact export names each contact's customer by name and by code
/// (客户编号 / `Customer code`, beside 所属客户, no header taken twice in
/// either language) to whoever may read customers; re-importing it after
/// the customer was renamed finds the customer by the code. A sheet may
/// name customers by code alone; an unknown code refuses its row.
pub async fn contact_export_names_the_customer_by_code_for_reimport(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let c = w.customer(&w.zhangsan, "旧名有限公司", json!({})).await;
    let code = c.code.clone().expect("code");
    let mut f = crate::records::Fields::new();
    f.insert("customer_id".into(), json!(c.id.to_string()));
    f.insert("name".into(), json!("李四"));
    f.insert("title".into(), json!("经理"));
    w.crm
        .create_record(&w.zhangsan, Entity::Contact, f)
        .await
        .expect("contact");
    for english in [false, true] {
        let (h, data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, english).await;
        let (customer, by_code) = if english {
            ("Customer", "Customer code")
        } else {
            ("所属客户", "客户编号")
        };
        let at = h.iter().position(|c| c == by_code).expect("code column");
        assert_eq!(h[at - 1], customer, "{h:?}");
        assert_eq!(data[0][at], t(&code));
        let mut distinct = h.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), h.len(), "a header twice: {h:?}");
        let hs: Vec<String> = h.clone();
        let map = w
            .crm
            .map_headers(&w.zhangsan, Entity::Contact, &hs)
            .await
            .expect("map");
        assert_eq!(map.roles[at], crate::import::ColumnRole::CustomerCode);
    }
    // Renamed: the sheet's name no longer finds it, its code does.
    w.crm
        .update_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            c.version,
            crate::testing::service_suite::fields(json!({"name": "新名有限公司"})),
        )
        .await
        .expect("rename");
    let (h, mut data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let col = |n: &str| h.iter().position(|c| *c == n).expect(n);
    // (Exported before the rename: its name is the old one.)
    data[0][col("所属客户")] = t("旧名有限公司");
    data[0][col("职务")] = t("总监");
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    assert_eq!(contact_named(&w, "李四").await.text("title"), Some("总监"));
    // By code alone; an unknown code names its column.
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &["客户编号", "姓名"],
        vec![
            vec![t(&code), t("王五")],
            vec![t("KH-19990101-0001"), t("赵六")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let wang = contact_named(&w, "王五").await;
    assert_eq!(wang.text("customer_id"), Some(c.id.to_string().as_str()));
    let i = issue(&r, 3);
    assert!(i.message_en.contains("Customer code"), "{}", i.message_en);
    assert!(i.message_zh.contains("客户编号"), "{}", i.message_zh);
    // Who may not read customers gets no code column.
    let perms = [Action::Read, Action::Export]
        .into_iter()
        .map(|action| Permission {
            entity: Entity::Contact,
            action,
            scope: DataScope::All,
        })
        .collect();
    let blind = user_with_role(&w, "nocustomers", perms, Vec::new()).await;
    let cols = w
        .crm
        .export_columns(&blind, Entity::Contact, &[])
        .await
        .expect("columns");
    assert!(!cols.iter().any(|c| c.key == "customer_code"), "{cols:?}");
}

/// An export writes a field masked for the actor (电话 as 0755****5678);
/// importing the same sheet back under the update policy reads a masked
/// cell equal to what the actor is shown as unchanged — the row updates
/// what else it changes and the stored phone stays — while another value
/// in that column, or one for a new record, refuses its row.
pub async fn import_reads_masked_cells_back_as_unchanged(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let masked = user_with_role(
        &w,
        "phonemask",
        role_perms(
            &[
                Action::Read,
                Action::Create,
                Action::Update,
                Action::Export,
                Action::Import,
            ],
            DataScope::All,
        ),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "phone".into(),
            access: FieldAccess::Masked,
        }],
    )
    .await;
    w.customer(
        &w.admin,
        "脱敏导入有限公司",
        json!({"phone": "0755-22345678", "notes": "旧备注"}),
    )
    .await;
    let (h, mut data) = exported_sheet(&w, &masked, Entity::Customer, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let col = |n: &str| h.iter().position(|c| *c == n).expect(n);
    let Cell::Text(shown) = data[0][col("电话")].clone() else {
        panic!("phone {:?}", data[0][col("电话")]);
    };
    assert!(shown.contains('*') && shown != "0755-22345678", "{shown}");
    data[0][col("备注")] = t("新备注");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &masked, o.clone(), &h, data.clone()).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let stored = find(&w, "脱敏导入有限公司").await.expect("customer");
    assert_eq!(stored.text("phone"), Some("0755-22345678"));
    assert_eq!(stored.text("notes"), Some("新备注"));
    // The same sheet again: unchanged.
    let r = run(&w, &masked, o.clone(), &h, data.clone()).await;
    assert_eq!((r.unchanged, r.rejected), (1, 0), "{:#?}", r.issues);
    // Another value in the masked column: refused, nothing written.
    let mut tampered = data.clone();
    tampered[0][col("电话")] = t("0755****0000");
    tampered[0][col("备注")] = t("再改");
    let r = run(&w, &masked, o.clone(), &h, tampered).await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(i.kind, IssueKind::Forbidden);
    assert!(i.message_en.contains("masked"), "{}", i.message_en);
    assert!(i.message_zh.contains("脱敏"), "{}", i.message_zh);
    let stored = find(&w, "脱敏导入有限公司").await.expect("customer");
    assert_eq!(stored.text("notes"), Some("新备注"));
    // A new record cannot take a value in it.
    let r = run(
        &w,
        &masked,
        o,
        &["客户名称", "电话"],
        vec![
            vec![t("脱敏新建有限公司"), t("0755-27654321")],
            vec![t("脱敏空白有限公司"), Cell::Empty],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
}

/// Under the update policy a contact group matching an archived contact of
/// its customer (by mobile, by code, or by name when no live contact has
/// it) refuses its row — the contact is unarchived first — rather than
/// adding a second contact with that mobile beside it.
pub async fn import_group_matching_an_archived_contact_refuses_its_row(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let jia = w.customer(&w.admin, "归档联系人有限公司", json!({})).await;
    let jia_code = jia.code.clone().expect("code");
    let zw = new_contact(&w, &jia, json!({"name": "张伟", "mobile": "13800000011"})).await;
    let ln = new_contact(&w, &jia, json!({"name": "李娜", "title": "专员"})).await;
    let gone = w
        .crm
        .archive_records(&w.admin, Entity::Contact, &[zw.id, ln.id])
        .await;
    assert!(gone.refused.is_empty(), "{:?}", gone.refused);
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let zw_code = zw.code.clone().expect("code");
    for (h, cells) in [
        (
            vec!["编号", "客户名称", "联系人1姓名", "联系人1手机"],
            vec![
                t(&jia_code),
                t("归档联系人有限公司"),
                t("张伟"),
                t("13800000011"),
            ],
        ),
        (
            vec!["编号", "客户名称", "联系人1姓名", "联系人1编号"],
            vec![
                t(&jia_code),
                t("归档联系人有限公司"),
                t("张伟新"),
                t(&zw_code),
            ],
        ),
        (
            vec!["编号", "客户名称", "联系人1姓名", "联系人1职务"],
            vec![t(&jia_code), t("归档联系人有限公司"), t("李娜"), t("经理")],
        ),
    ] {
        let r = run(&w, &w.admin, o.clone(), &h, vec![cells]).await;
        assert_eq!(
            (r.rejected, r.contacts_created, r.contacts_updated),
            (1, 0, 0),
            "{h:?}: {:#?}",
            r.issues
        );
        let i = issue(&r, 2);
        assert!(i.message_en.contains("archived"), "{}", i.message_en);
        assert!(i.message_zh.contains("归档"), "{}", i.message_zh);
    }
    // Unarchived, the one contact holds the mobile; the sheet updates it.
    let back = w
        .crm
        .unarchive_records(&w.admin, Entity::Contact, &[zw.id])
        .await;
    assert!(back.refused.is_empty(), "{:?}", back.refused);
    let same: Vec<Record> = contacts_of(&w)
        .await
        .into_iter()
        .filter(|c| c.text("mobile") == Some("13800000011"))
        .collect();
    assert_eq!(same.len(), 1, "{same:?}");
    let r = run(
        &w,
        &w.admin,
        o,
        &[
            "编号",
            "客户名称",
            "联系人1姓名",
            "联系人1手机",
            "联系人1职务",
        ],
        vec![vec![
            t(&jia_code),
            t("归档联系人有限公司"),
            t("张伟"),
            t("13800000011"),
            t("总监"),
        ]],
    )
    .await;
    assert_eq!(
        (r.rejected, r.contacts_created, r.contacts_updated),
        (0, 0, 1),
        "{:#?}",
        r.issues
    );
}

/// A contact group's code column (联系人1编号) naming a contact in the
/// recycle bin, or a contact of another customer, refuses its row (an
/// update's or a new customer's): restore it or clear the code, or the
/// code is another customer's contact — told only of a contact the actor
/// may read; to another actor it is no contact of this customer.
pub async fn import_group_codes_of_binned_or_other_customers_contacts_refuse_the_row(
    store: Arc<dyn Store>,
) {
    let w = World::new(store.clone()).await;
    let jia = w.customer(&w.admin, "甲编号有限公司", json!({})).await;
    let jia_code = jia.code.clone().expect("code");
    let yi = w.customer(&w.admin, "乙编号有限公司", json!({})).await;
    let wang = new_contact(&w, &yi, json!({"name": "王芳", "mobile": "13800000021"})).await;
    let wang_code = wang.code.clone().expect("code");
    let chen = new_contact(&w, &jia, json!({"name": "陈静", "title": "专员"})).await;
    let chen_code = chen.code.clone().expect("code");
    let gone = w
        .crm
        .delete_records(&w.admin, Entity::Contact, &[chen.id])
        .await;
    assert!(gone.refused.is_empty(), "{:?}", gone.refused);
    let before = contacts_of(&w).await.len();
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let h = ["编号", "客户名称", "联系人1姓名", "联系人1编号"];
    for (cells, code, en, zh) in [
        (
            vec![t(&jia_code), t("甲编号有限公司"), t("王芳"), t(&wang_code)],
            &wang_code,
            "another customer",
            "其他客户",
        ),
        (
            vec![t(&jia_code), t("甲编号有限公司"), t("陈静"), t(&chen_code)],
            &chen_code,
            "recycle bin",
            "回收站",
        ),
        (
            vec![t(""), t("丙编号有限公司"), t("王芳"), t(&wang_code)],
            &wang_code,
            "another customer",
            "其他客户",
        ),
    ] {
        let r = run(&w, &w.admin, o.clone(), &h, vec![cells]).await;
        assert_eq!(
            (
                r.rejected,
                r.created,
                r.contacts_created,
                r.contacts_updated
            ),
            (1, 0, 0, 0),
            "{:#?}",
            r.issues
        );
        let i = issue(&r, 2);
        assert_eq!(i.kind, IssueKind::Invalid);
        assert!(
            i.message_en.contains(code.as_str()) && i.message_en.contains(en),
            "{}",
            i.message_en
        );
        assert!(i.message_zh.contains(zh), "{}", i.message_zh);
    }
    assert_eq!(contacts_of(&w).await.len(), before);
    // Someone who may not read 乙's contact learns nothing of it.
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Customer),
        &h,
        vec![vec![t(""), t("丁编号有限公司"), t("王芳"), t(&wang_code)]],
    )
    .await;
    assert_eq!((r.rejected, r.created), (1, 0), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en
            .contains(&format!("no contact {wang_code} of this customer"))
            && !i.message_en.contains("王芳"),
        "{}",
        i.message_en
    );
    // A code naming no contact is the sheet's own numbering.
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![vec![
            t(&jia_code),
            t("甲编号有限公司"),
            t("赵六"),
            t("LXR-NONE-1"),
        ]],
    )
    .await;
    assert_eq!((r.rejected, r.contacts_created), (0, 1), "{:#?}", r.issues);
}

/// Imports match usernames letter case aside, as everything else does: an
/// owner column (负责人), the import's owner option, and a user import's
/// superior (上级); display names still only as written.
pub async fn import_matches_usernames_letter_case_aside(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "负责人"],
        vec![vec![t("大写负责人有限公司"), t("ZHANGSAN")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
    let mut o = opts(Entity::Customer);
    o.owner = Some("ZhangSan".into());
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称"],
        vec![vec![t("大写选项有限公司")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
    let mine: Vec<Record> = customers(&w, &w.admin)
        .await
        .into_iter()
        .filter(|c| c.text("name").is_some_and(|n| n.starts_with("大写")))
        .collect();
    assert_eq!(mine.len(), 2);
    assert!(
        mine.iter().all(|c| c.owner_id == Some(w.zhangsan.user_id)),
        "{mine:?}"
    );
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名", "上级"],
        vec![vec![t("xiaoqiang"), t("小强"), t("LISI")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
    let xq = w
        .crm
        .user_by_username(&w.admin, "xiaoqiang")
        .await
        .expect("imported user");
    assert_eq!(xq.superior_id, Some(w.lisi.user_id));
}

/// A user who sees contacts' mobiles masked may import customers with a
/// contact group's mobile column (联系人1手机): the masked value as they
/// were shown it of the contact the group names is no change; another
/// value, or any value for a contact the group adds, refuses the row as
/// forbidden, in both languages.
pub async fn import_reads_masked_contact_group_cells_back_as_unchanged(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let masked = user_with_role(
        &w,
        "contactmask",
        role_perms(
            &[
                Action::Read,
                Action::Create,
                Action::Update,
                Action::Export,
                Action::Import,
            ],
            DataScope::All,
        ),
        vec![FieldRule {
            entity: Entity::Contact,
            field: "mobile".into(),
            access: FieldAccess::Masked,
        }],
    )
    .await;
    let jia = w.customer(&w.admin, "脱敏联系人有限公司", json!({})).await;
    let jia_code = jia.code.clone().expect("code");
    let zw = new_contact(
        &w,
        &jia,
        json!({"name": "张伟", "mobile": "13812345678", "title": "经理"}),
    )
    .await;
    let zw_code = zw.code.clone().expect("code");
    let (ch, cdata) = exported_sheet(&w, &masked, Entity::Contact, false).await;
    let at = ch.iter().position(|c| c == "手机").expect("mobile column");
    let Cell::Text(shown) = cdata[0][at].clone() else {
        panic!("mobile {:?}", cdata[0][at]);
    };
    assert!(shown.contains('*') && shown != "13812345678", "{shown}");
    let h = [
        "编号",
        "客户名称",
        "联系人1姓名",
        "联系人1编号",
        "联系人1手机",
        "联系人1职务",
    ];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let row = |mobile: &str, title: &str| {
        vec![
            t(&jia_code),
            t("脱敏联系人有限公司"),
            t("张伟"),
            t(&zw_code),
            t(mobile),
            t(title),
        ]
    };
    let r = run(&w, &masked, o.clone(), &h, vec![row(&shown, "总监")]).await;
    assert_eq!(
        (r.rejected, r.contacts_updated, r.contacts_created),
        (0, 1, 0),
        "{:#?}",
        r.issues
    );
    let stored = contact_named(&w, "张伟").await;
    assert_eq!(stored.text("mobile"), Some("13812345678"));
    assert_eq!(stored.text("title"), Some("总监"));
    // Another value: refused, nothing written.
    let r = run(&w, &masked, o.clone(), &h, vec![row("138****0000", "顾问")]).await;
    assert_eq!((r.rejected, r.contacts_updated), (1, 0), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(i.kind, IssueKind::Forbidden);
    assert!(i.message_en.contains("masked"), "{}", i.message_en);
    assert!(i.message_zh.contains("脱敏"), "{}", i.message_zh);
    assert_eq!(contact_named(&w, "张伟").await.text("title"), Some("总监"));
    // A contact the group adds cannot take a value in it, to an existing
    // customer or a new one; without one it is added.
    let h = ["编号", "客户名称", "联系人1姓名", "联系人1手机"];
    for cells in [
        vec![
            t(&jia_code),
            t("脱敏联系人有限公司"),
            t("新人"),
            t("13900000000"),
        ],
        vec![t(""), t("脱敏新客户有限公司"), t("新人"), t("13900000000")],
    ] {
        let r = run(&w, &masked, o.clone(), &h, vec![cells]).await;
        assert_eq!(
            (r.rejected, r.created, r.contacts_created),
            (1, 0, 0),
            "{:#?}",
            r.issues
        );
        let i = issue(&r, 2);
        assert_eq!(i.kind, IssueKind::Forbidden);
        assert!(i.message_zh.contains("脱敏"), "{}", i.message_zh);
    }
    let r = run(
        &w,
        &masked,
        o,
        &h,
        vec![vec![
            t(&jia_code),
            t("脱敏联系人有限公司"),
            t("新人"),
            Cell::Empty,
        ]],
    )
    .await;
    assert_eq!((r.rejected, r.contacts_created), (0, 1), "{:#?}", r.issues);
}

/// A contact export by someone who reads a contact but not its customer —
/// the contact shared with them, or customers' names hidden from them —
/// writes the customer as `***` ([`crate::export::NOT_SHOWN`]), neither its
/// name nor its id, read straight from the store or through a search
/// alike. Re-importing the sheet keeps each contact's customer: under the
/// update policy unchanged rows are unchanged and a changed title lands,
/// under skip the rows are duplicates. A `***` row naming no live contact
/// by its code (none, an unknown one, one in the recycle bin the actor
/// cannot see) is refused and creates nothing.
pub async fn import_keeps_contact_customers_the_exporter_could_not_see(store: Arc<dyn Store>) {
    use crate::export::NOT_SHOWN;
    let w = World::new(store.clone()).await;
    let hidden = w.customer(&w.wangwu, "看不见有限公司", json!({})).await;
    let hidden_id = hidden.id.to_string();
    let contact = |name: &str| {
        crate::testing::service_suite::fields(json!({
            "customer_id": hidden_id,
            "name": name,
            "title": "经理",
            "mobile": "13700000001",
        }))
    };
    let zhou = w
        .crm
        .create_record(&w.wangwu, Entity::Contact, contact("周敏"))
        .await
        .expect("contact");
    let mut binned = contact("吴昊");
    binned.remove("mobile");
    let binned = w
        .crm
        .create_record(&w.wangwu, Entity::Contact, binned)
        .await
        .expect("contact");
    let r = w
        .crm
        .delete_records(&w.wangwu, Entity::Contact, &[binned.id])
        .await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Contact,
            zhou.id,
            w.zhangsan.user_id,
            crate::records::ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    let (h, data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let col = |n: &str| h.iter().position(|c| *c == n).expect(n);
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0][col("所属客户")], t(NOT_SHOWN));
    assert_eq!(data[0][col("客户编号")], Cell::Empty);
    assert!(
        !data[0]
            .iter()
            .any(|c| matches!(c, Cell::Text(s) if s.contains(&hidden_id))),
        "the customer's id is written: {:?}",
        data[0]
    );
    // Through a search, the same cell.
    let cols = w
        .crm
        .export_columns(&w.zhangsan, Entity::Contact, &[])
        .await
        .expect("columns");
    let q = ListQuery {
        search: Some("周敏".into()),
        ..ListQuery::default()
    };
    let mut cur = w
        .crm
        .export_cursor(&w.zhangsan, Entity::Contact, q, cols, 10)
        .await
        .expect("cursor");
    let page = cur.next_page().await.expect("page").expect("a row");
    assert_eq!(
        page[0][col("所属客户")],
        ExportValue::Text(NOT_SHOWN.into())
    );
    // Re-imported unchanged, then with a changed title.
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o.clone(), &h, data.clone()).await;
    assert_eq!(
        (r.unchanged, r.updated, r.created, r.rejected),
        (1, 0, 0, 0),
        "{:#?}",
        r.issues
    );
    let mut changed = data.clone();
    changed[0][col("职务")] = t("总监");
    let r = run(&w, &w.zhangsan, o.clone(), &h, changed).await;
    assert_eq!(
        (r.updated, r.created, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    let after = contact_named(&w, "周敏").await;
    assert_eq!(after.text("title"), Some("总监"));
    assert_eq!(after.text("customer_id"), Some(hidden_id.as_str()));
    let r = run(&w, &w.zhangsan, opts(Entity::Contact), &h, data.clone()).await;
    assert_eq!(
        (r.skipped, r.created, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    // `***` names no customer of a new contact: without a code, with a
    // code nobody has, with the code of a contact in the recycle bin.
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &["编号", "所属客户", "姓名"],
        vec![
            vec![Cell::Empty, t(NOT_SHOWN), t("新人甲")],
            vec![t("LXR-19990101-0001"), t(NOT_SHOWN), t("新人乙")],
            vec![
                t(&binned.code.clone().expect("code")),
                t(NOT_SHOWN),
                t("新人丙"),
            ],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (0, 3), "{:#?}", r.issues);
    for row in 2..=4 {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::Invalid);
        assert!(i.message_en.contains("'***'"), "{}", i.message_en);
        assert!(i.message_zh.contains("所属客户"), "{}", i.message_zh);
    }
    assert_eq!(contacts_of(&w).await.len(), 1, "nothing created");
    // Nor does it open a contact the actor may not update.
    let mut sun = contact("孙立");
    sun.remove("mobile");
    let sun = w
        .crm
        .create_record(&w.wangwu, Entity::Contact, sun)
        .await
        .expect("contact");
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &["编号", "所属客户", "姓名", "职务"],
        vec![vec![
            t(&sun.code.clone().expect("code")),
            t(NOT_SHOWN),
            t("孙立"),
            t("总监"),
        ]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
    assert_eq!(contact_named(&w, "孙立").await.text("title"), Some("经理"));
    // Customers' names hidden by a field rule: `***` beside the code, and
    // a sheet without the code column reads back as well.
    let blind = user_with_role(
        &w,
        "custnames",
        role_perms(
            &[Action::Read, Action::Update, Action::Export, Action::Import],
            DataScope::All,
        ),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "name".into(),
            access: FieldAccess::Hidden,
        }],
    )
    .await;
    let (h, data) = exported_sheet(&w, &blind, Entity::Contact, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let col = |n: &str| h.iter().position(|c| *c == n).expect(n);
    assert_eq!(data.len(), 2);
    for row in &data {
        assert_eq!(row[col("所属客户")], t(NOT_SHOWN));
        assert_eq!(row[col("客户编号")], t(&hidden.code.clone().expect("code")));
    }
    let r = run(&w, &blind, o.clone(), &h, data.clone()).await;
    assert_eq!((r.unchanged, r.rejected), (2, 0), "{:#?}", r.issues);
    let picks: Vec<String> = ["编号", "姓名", "所属客户", "职务"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let cols = w
        .crm
        .export_columns(&blind, Entity::Contact, &picks)
        .await
        .expect("columns");
    let mut cur = w
        .crm
        .export_cursor(&blind, Entity::Contact, ListQuery::default(), cols, 10)
        .await
        .expect("cursor");
    let page = cur.next_page().await.expect("page").expect("a row");
    let row: Vec<Cell> = page[0]
        .iter()
        .map(|v| match v {
            ExportValue::Text(s) => t(s),
            _ => Cell::Empty,
        })
        .collect();
    assert_eq!(row[2], t(NOT_SHOWN));
    let r = run(
        &w,
        &blind,
        o,
        &["编号", "姓名", "所属客户", "职务"],
        vec![row],
    )
    .await;
    assert_eq!((r.unchanged, r.rejected), (1, 0), "{:#?}", r.issues);
    assert_eq!(
        contact_named(&w, "周敏").await.text("customer_id"),
        Some(hidden_id.as_str())
    );
}

/// Runs an import pushing `per_push` rows at a time, and gives the error
/// of the push or the finish that fails, if one does.
async fn attempt(
    w: &World,
    actor: &Actor,
    opts: ImportOptions,
    h: &[&str],
    data: Vec<Vec<Cell>>,
    per_push: usize,
) -> Result<ImportReport, Error> {
    let mut s = w.crm.begin_import(actor, opts, &headers(h)).await?;
    for chunk in rows(data).chunks(per_push) {
        s.push(chunk).await?;
    }
    s.finish().await
}

/// A pool's cap on the customers an owner holds binds an import's dry run
/// as it binds the import's write: a dry run of a file that would take
/// the owner past the cap is refused as the write is — all or nothing: at
/// its end, in the very words of the write's refusal; in batches: at the
/// batch whose write would be refused — and neither writes anything (an
/// all-or-nothing import not even the rows within the cap). The refusal
/// names the owner, the pool, the cap and the numbers, and tells what was
/// (not) written.
pub async fn import_dry_run_meets_the_pool_caps_the_write_meets(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "每人三个".into(),
                admins: vec![w.admin.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crate::pool::PoolLimits {
                    max_owned_per_user: Some(3),
                    ..crate::pool::PoolLimits::default()
                },
            },
        )
        .await
        .expect("pool");
    w.customer(&w.zhangsan, "已有客户有限公司", json!({})).await;
    let owned = |w: &World| {
        let store = store.clone();
        let company = w.admin.company_id.0;
        let now = w.crm.now();
        let owner = w.zhangsan.user_id.0;
        async move {
            let mut sel = Select::all(Table::Customers, company, now);
            sel.filter = crate::store::Filter::Cmp(
                crate::store::Col::Column("owner_id"),
                crate::store::CmpOp::Eq,
                crate::value::Value::Id(owner),
            );
            store.select(&sel).await.expect("select").rows.len()
        }
    };
    let sheet: Vec<Vec<Cell>> = (0..3)
        .map(|i| vec![t(&format!("超限导入{i}有限公司"))])
        .collect();
    let forbidden = |r: Result<ImportReport, Error>, what: &str| match r {
        Err(Error::Forbidden(m)) => m,
        other => panic!("{what}: expected the cap, got {other:?}"),
    };
    // All or nothing: 1 held and 3 more pass the cap of 3.
    let mut o = opts(Entity::Customer);
    o.dry_run = true;
    let dry = forbidden(
        attempt(&w, &w.zhangsan, o.clone(), &["客户名称"], sheet.clone(), 2).await,
        "dry run",
    );
    assert_eq!(owned(&w).await, 1);
    o.dry_run = false;
    let wet = forbidden(
        attempt(&w, &w.zhangsan, o, &["客户名称"], sheet.clone(), 2).await,
        "import",
    );
    assert_eq!(dry, wet, "the dry run says what the write says");
    for part in [
        "张三 already holds 1 customers, the limit of pool 每人三个 is 3 (3 more would pass it)",
        "nothing of the import was written",
        "负责人",
    ] {
        assert!(wet.contains(part), "{wet}");
    }
    assert_eq!(owned(&w).await, 1, "nothing written");
    assert!(
        w.crm
            .list_imports(&w.zhangsan)
            .await
            .expect("imports")
            .is_empty(),
        "no import recorded"
    );
    // Within the cap, the dry run passes as the import would.
    let mut o = opts(Entity::Customer);
    o.dry_run = true;
    let r = attempt(&w, &w.zhangsan, o, &["客户名称"], sheet[..2].to_vec(), 2)
        .await
        .expect("within the cap");
    assert_eq!(r.created, 2);
    assert_eq!(owned(&w).await, 1);
    // In batches of two rows: the first batch fits (1 + 2), the second
    // would not — its dry run is refused there too, writing nothing.
    let mut o = opts(Entity::Customer);
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    o.dry_run = true;
    let dry = forbidden(
        attempt(&w, &w.zhangsan, o.clone(), &["客户名称"], sheet.clone(), 2).await,
        "dry run in batches",
    );
    assert!(
        dry.starts_with("nothing of rows 2–4 was written")
            && dry.contains("张三 already holds 1 customers, the limit of pool 每人三个 is 3"),
        "{dry}"
    );
    assert_eq!(owned(&w).await, 1);
    o.dry_run = false;
    let wet = forbidden(
        attempt(&w, &w.zhangsan, o, &["客户名称"], sheet, 2).await,
        "import in batches",
    );
    for part in [
        "nothing of row 4 was written (earlier rows stay written)",
        "an owner past a pool's cap — 张三 already holds 3 customers, the limit of pool 每人三个 \
         is 3;",
    ] {
        assert!(wet.contains(part), "{wet}");
    }
    assert_eq!(owned(&w).await, 3, "the first batch stays written");
}

/// An export writes each record's version (版本 / Version); importing it
/// under the update policy refuses a row exported before the record's
/// latest change (which the row would otherwise undo), in both languages,
/// and leaves that change alone; a fresh export updates; a row without a
/// version updates as before. The version is never written to the record,
/// and a contact export carries it too.
pub async fn import_refuses_rows_exported_before_the_records_latest_change(store: Arc<dyn Store>) {
    use crate::import::ColumnRole;
    let w = World::new(store.clone()).await;
    let c = w
        .customer(&w.zhangsan, "版本有限公司", json!({"address": "旧地址"}))
        .await;
    let code = c.code.clone().expect("code");
    for (english, version_header, remark_header) in
        [(false, "版本", "详细地址"), (true, "Version", "Address")]
    {
        let (h, data) = exported_sheet(&w, &w.zhangsan, Entity::Customer, english).await;
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let at = |name: &str| h.iter().position(|c| *c == name).expect(name);
        let stored = find(&w, "版本有限公司").await.expect("customer");
        assert_eq!(
            data[0][at(version_header)],
            Cell::Number(stored.version as f64),
            "{h:?}"
        );
        let map = w
            .crm
            .map_headers(&w.zhangsan, Entity::Customer, &headers(&h))
            .await
            .expect("map");
        assert_eq!(map.roles[at(version_header)], ColumnRole::Version);
        // Someone changes the record after the export.
        let later = format!("后来的地址{english}");
        w.crm
            .update_record(
                &w.admin,
                Entity::Customer,
                stored.id,
                stored.version,
                crate::testing::service_suite::fields(json!({"address": later})),
            )
            .await
            .expect("later change");
        let now = stored.version + 1;
        // The untouched sheet, and one changing another column: refused.
        let mut edited = data.clone();
        edited[0][at(if english { "Industry" } else { "所属行业" })] = t("制造业");
        for sheet in [data.clone(), edited] {
            let mut o = opts(Entity::Customer);
            o.policy = DuplicatePolicy::Update;
            let r = run(&w, &w.zhangsan, o, &h, sheet).await;
            assert_eq!(
                (r.updated, r.unchanged, r.rejected),
                (0, 0, 1),
                "{:#?}",
                r.issues
            );
            let i = issue(&r, 2);
            assert_eq!(i.outcome, RowOutcome::Rejected);
            assert!(
                i.message_en.contains(&format!(
                    "{code} was changed since this file was exported (version {}, now {now}): \
                     export it again and redo the change",
                    stored.version
                )),
                "{}",
                i.message_en
            );
            assert!(
                i.message_zh.contains(&format!(
                    "{code} 在导出后已被修改（导出时版本 {}，现为 {now}）",
                    stored.version
                )),
                "{}",
                i.message_zh
            );
            let kept = find(&w, "版本有限公司").await.expect("customer");
            assert_eq!(
                kept.text("address"),
                Some(later.as_str()),
                "the later change stays"
            );
            assert_eq!(kept.version, now);
        }
        // Without the version cell the row updates as before.
        let mut bare = data.clone();
        bare[0][at(version_header)] = Cell::Empty;
        bare[0][at(remark_header)] = t("无版本的修改");
        let mut o = opts(Entity::Customer);
        o.policy = DuplicatePolicy::Update;
        let r = run(&w, &w.zhangsan, o, &h, bare).await;
        assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
        // A fresh export updates.
        let (h, mut data) = exported_sheet(&w, &w.zhangsan, Entity::Customer, english).await;
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let at = |name: &str| h.iter().position(|c| *c == name).expect(name);
        data[0][at(remark_header)] = t(&format!("新导出的修改{english}"));
        let mut o = opts(Entity::Customer);
        o.policy = DuplicatePolicy::Update;
        let r = run(&w, &w.zhangsan, o.clone(), &h, data.clone()).await;
        assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
        // The same sheet again changes nothing, so undoes nothing.
        let r = run(&w, &w.zhangsan, o, &h, data).await;
        assert_eq!((r.unchanged, r.rejected), (1, 0), "{:#?}", r.issues);
        let after = find(&w, "版本有限公司").await.expect("customer");
        assert_eq!(
            after.text("address"),
            Some(format!("新导出的修改{english}").as_str())
        );
        assert!(!after.fields.contains_key("版本") && !after.custom.contains_key("version"));
    }
    // A version that is no whole number refuses its row.
    let (h, mut data) = exported_sheet(&w, &w.zhangsan, Entity::Customer, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let at = h.iter().position(|c| *c == "版本").expect("版本");
    data[0][at] = t("三");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data).await;
    assert_eq!(r.rejected, 1, "{:#?}", r.issues);
    assert!(issue(&r, 2).message_zh.contains("版本"), "{:?}", r.issues);
    // Contacts: the same.
    let p = new_contact(&w, &c, json!({"name": "版本联系人", "title": "经理"})).await;
    let (h, data) = exported_sheet(&w, &w.zhangsan, Entity::Contact, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    assert!(h.contains(&"版本"), "{h:?}");
    w.crm
        .update_record(
            &w.admin,
            Entity::Contact,
            p.id,
            p.version,
            crate::testing::service_suite::fields(json!({"title": "总监"})),
        )
        .await
        .expect("later change");
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.zhangsan, o, &h, data).await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    assert_eq!(
        contact_named(&w, "版本联系人").await.text("title"),
        Some("总监")
    );
}

/// A user import under the update policy does not take the administrator
/// role from the last active administrator (as `update_user` refuses it),
/// counting what earlier rows of the file did: a row making another user
/// an administrator first lets a later row demote the first one.
pub async fn import_users_keep_an_active_administrator(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let admin_role = w
        .crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.is_admin)
        .expect("an administrator role");
    let admin_name = w
        .crm
        .user_by_username(&w.admin, "admin")
        .await
        .expect("admin")
        .display_name;
    let h = ["用户名", "姓名", "角色"];
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![vec![t("admin"), t(&admin_name), t("销售")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en
            .contains("would leave the company without an active administrator"),
        "{}",
        i.message_en
    );
    assert!(i.message_zh.contains("管理员"), "{}", i.message_zh);
    let admin = w
        .crm
        .user_by_username(&w.admin, "admin")
        .await
        .expect("admin");
    assert!(
        admin.role_ids.contains(&admin_role.id),
        "still an administrator"
    );
    // Another administrator first (row 2), then the demotion (row 3).
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![
            vec![t("lisi"), t("李四"), t(&admin_role.name)],
            vec![t("admin"), t(&admin_name), t("销售")],
        ],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (2, 0), "{:#?}", r.issues);
    // Now lisi is the last one.
    let lisi = w
        .crm
        .actor(w.lisi.user_id)
        .await
        .expect("lisi as an administrator");
    let r = run(
        &w,
        &lisi,
        o,
        &h,
        vec![vec![t("lisi"), t("李四"), t("经理")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let lisi = w
        .crm
        .user_by_username(&w.admin, "lisi")
        .await
        .expect("lisi");
    assert_eq!(lisi.role_ids, vec![admin_role.id]);
}

/// A contact is its customer's owner's: a contact import does not add one
/// to a customer only shared with the importer (read or write), nor does a
/// customer row's contact group under the update policy — as adding the
/// contact through the API is refused. The importer's own customers take
/// their contacts.
pub async fn import_adds_no_contacts_to_customers_only_shared(store: Arc<dyn Store>) {
    use crate::records::ShareAccess;
    let w = World::new(store.clone()).await;
    let read = w.customer(&w.wangwu, "只读共享有限公司", json!({})).await;
    let write = w.customer(&w.wangwu, "可写共享有限公司", json!({})).await;
    w.customer(&w.zhangsan, "张三自己有限公司", json!({})).await;
    for (c, access) in [(&read, ShareAccess::Read), (&write, ShareAccess::Write)] {
        w.crm
            .share_record(
                &w.wangwu,
                Entity::Customer,
                c.id,
                w.zhangsan.user_id,
                access,
                None,
            )
            .await
            .expect("share");
    }
    let before = contacts_of(&w).await.len();
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &["所属客户", "姓名"],
        vec![
            vec![t("只读共享有限公司"), t("读共享联系人")],
            vec![t("可写共享有限公司"), t("写共享联系人")],
            vec![t("张三自己有限公司"), t("自己的联系人")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 2), "{:#?}", r.issues);
    for (row, code) in [(2, &read.code), (3, &write.code)] {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::Forbidden);
        let code = code.clone().expect("code");
        assert!(
            i.message_en.contains(&format!(
                "may not add contacts to customer {code}: it is only shared with them"
            )),
            "{}",
            i.message_en
        );
        assert!(i.message_zh.contains("仅共享给你"), "{}", i.message_zh);
    }
    assert_eq!(contacts_of(&w).await.len(), before + 1);
    // A customer row updating the write-shared customer with a contact
    // group: refused, nothing added.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &["客户名称", "详细地址", "联系人1姓名"],
        vec![vec![t("可写共享有限公司"), t("新地址"), t("组里的联系人")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
    assert!(
        issue(&r, 2).message_en.contains("only shared with them"),
        "{}",
        issue(&r, 2).message_en
    );
    assert_eq!(contacts_of(&w).await.len(), before + 1);
}

/// A contact import under the update policy does not move a contact to
/// another customer (its customer cannot be changed after creation, as
/// through the API): the row naming the contact by code and another
/// customer is refused, the contact stays where it is.
pub async fn import_update_does_not_move_contacts_to_another_customer(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let a = w.customer(&w.zhangsan, "甲方有限公司", json!({})).await;
    w.customer(&w.zhangsan, "乙方有限公司", json!({})).await;
    let p = new_contact(&w, &a, json!({"name": "不搬家", "title": "经理"})).await;
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let h = ["编号", "所属客户", "姓名", "职务"];
    let code = p.code.clone().expect("code");
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &h,
        vec![vec![t(&code), t("乙方有限公司"), t("不搬家"), t("总监")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en.contains("cannot be changed after creation"),
        "{}",
        i.message_en
    );
    assert!(i.message_zh.contains("创建后不能更改"), "{}", i.message_zh);
    let kept = contact_named(&w, "不搬家").await;
    assert_eq!(kept.fields["customer_id"], json!(a.id.to_string()));
    assert_eq!(kept.text("title"), Some("经理"));
    // Its own customer: updated.
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![t(&code), t("甲方有限公司"), t("不搬家"), t("总监")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
}

/// An import into a department (`--department`) needs the department
/// within the importer's create scope, as an owner does: a salesman of
/// scope "own" imports into his own department only, a manager into the
/// departments under him.
pub async fn import_into_a_department_outside_the_create_scope_is_refused(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = headers(&["客户名称"]);
    let mut o = opts(Entity::Customer);
    o.department = Some("销售二组".into());
    match w.crm.begin_import(&w.zhangsan, o.clone(), &h).await {
        Err(Error::Forbidden(m)) => {
            assert!(m.contains("into department 销售二组"), "{m}");
            assert!(m.contains("超出新建范围"), "{m}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let r = run(
        &w,
        &w.lisi,
        o,
        &["客户名称"],
        vec![vec![t("二组的客户有限公司")]],
    )
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
    let c = find(&w, "二组的客户有限公司").await.expect("created");
    assert_eq!(c.department_id, Some(w.group2));
    let mut o = opts(Entity::Customer);
    o.department = Some("销售一组".into());
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &["客户名称"],
        vec![vec![t("一组的客户有限公司")]],
    )
    .await;
    assert_eq!(r.created, 1, "{:#?}", r.issues);
}

/// A column read-only for the importer (a `read_only` field rule) reads
/// back like a masked one: an untouched export updates its other columns
/// (the read-only value equal to the stored one is no change), a different
/// value refuses its row, and a new record cannot take one.
pub async fn import_reads_read_only_cells_back_as_unchanged(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let ro = user_with_role(
        &w,
        "levelro",
        role_perms(
            &[
                Action::Read,
                Action::Create,
                Action::Update,
                Action::Export,
                Action::Import,
            ],
            DataScope::All,
        ),
        vec![FieldRule {
            entity: Entity::Customer,
            field: "level".into(),
            access: FieldAccess::ReadOnly,
        }],
    )
    .await;
    w.customer(&w.admin, "只读级别有限公司", json!({"level": "A"}))
        .await;
    let (h, data) = exported_sheet(&w, &ro, Entity::Customer, false).await;
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let col = |n: &str| h.iter().position(|c| *c == n).expect(n);
    assert_eq!(data[0][col("客户级别")], t("A"));
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &ro, o.clone(), &h, data.clone()).await;
    assert_eq!((r.unchanged, r.rejected), (1, 0), "{:#?}", r.issues);
    let mut edited = data.clone();
    edited[0][col("详细地址")] = t("只读以外的修改");
    let r = run(&w, &ro, o.clone(), &h, edited.clone()).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let stored = find(&w, "只读级别有限公司").await.expect("customer");
    assert_eq!(stored.text("address"), Some("只读以外的修改"));
    assert_eq!(stored.text("level"), Some("A"));
    // A real change of the read-only column: refused.
    let mut changed = edited.clone();
    changed[0][col("客户级别")] = t("B");
    changed[0][col("详细地址")] = t("再改");
    let r = run(&w, &ro, o.clone(), &h, changed).await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert_eq!(i.kind, IssueKind::Forbidden);
    assert!(i.message_en.contains("read-only"), "{}", i.message_en);
    assert!(i.message_zh.contains("只读"), "{}", i.message_zh);
    let stored = find(&w, "只读级别有限公司").await.expect("customer");
    assert_eq!(
        (stored.text("level"), stored.text("address")),
        (Some("A"), Some("只读以外的修改"))
    );
    // A new record cannot take a value in it.
    let r = run(
        &w,
        &ro,
        o,
        &["客户名称", "客户级别"],
        vec![vec![t("只读新建有限公司"), t("A")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (0, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
}

/// Undoing a product import that quotes or opportunities now use is
/// refused (as a customer or user import's undo is when later records
/// depend on them), naming the products and what uses them; nothing is
/// undone.
pub async fn import_undo_refuses_products_used_since(store: Arc<dyn Store>) {
    use crate::sales::lines::LineInput;
    use crate::sales::quote::NewQuote;
    let w = World::new(store.clone()).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Product),
        &["产品编号", "产品名称", "标准价"],
        vec![
            vec![t("UNDO-1"), t("撤销服务器"), t("100")],
            vec![t("UNDO-2"), t("撤销打印机"), t("50")],
        ],
    )
    .await;
    assert_eq!(r.created, 2, "{:#?}", r.issues);
    let products = store
        .select(&Select::all(
            Table::Products,
            w.admin.company_id.0,
            w.crm.now(),
        ))
        .await
        .expect("products")
        .rows;
    let id_of = |code: &str| {
        products
            .iter()
            .find(|p| p.get("code").as_text() == Some(code))
            .map(|p| p.id())
            .expect(code)
    };
    let customer = w.customer(&w.zhangsan, "用产品有限公司", json!({})).await;
    let q = w
        .crm
        .create_quote(
            &w.admin,
            NewQuote {
                title: "用导入产品的报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: Some(id_of("UNDO-1")),
                    name: String::new(),
                    unit: None,
                    quantity: 1,
                    unit_price: None,
                    discount_bp: 0,
                    tax_rate: None,
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let live = count(&store, &w, Table::Products).await;
    match w.crm.undo_import(&w.admin, r.import_id.expect("id")).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains(&format!("product UNDO-1 is used by quote {}", q.code)),
                "{m}"
            );
            assert!(!m.contains("UNDO-2"), "{m}");
            assert!(m.contains("nothing was undone"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        count(&store, &w, Table::Products).await,
        live,
        "nothing undone"
    );
}

/// A user named in a sheet by a display name two users share is refused as
/// ambiguous (not as unknown), in both languages; a new user's username
/// holds no space, as `create_user` refuses.
pub async fn import_names_users_as_the_single_record_commands_do(store: Arc<dyn Store>) {
    use crate::org::NewUser;
    let w = World::new(store).await;
    for username in ["zhangwei1", "zhangwei2"] {
        w.crm
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
    }
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "负责人"],
        vec![
            vec![t("同名负责人有限公司"), t("张伟")],
            vec![t("用户名负责人有限公司"), t("zhangwei2")],
            vec![t("无此人有限公司"), t("王大锤")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 2), "{:#?}", r.issues);
    let shared = issue(&r, 2);
    assert!(
        shared
            .message_en
            .contains("'张伟' is the name of several users; give the username"),
        "{shared:?}"
    );
    assert!(
        shared
            .message_zh
            .contains("「张伟」是多个用户的姓名，请填写用户名"),
        "{shared:?}"
    );
    let unknown = issue(&r, 4);
    assert!(
        unknown.message_en.contains("no user '王大锤'"),
        "{unknown:?}"
    );
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名"],
        vec![vec![t("u 6"), t("空格")], vec![t("u7"), t("无空格")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    assert!(
        issue(&r, 2).message_en.contains("holds a space"),
        "{:?}",
        issue(&r, 2)
    );
    assert!(
        w.crm.user_by_username(&w.admin, "u 6").await.is_err(),
        "not created"
    );
}

/// A custom field made required after customers were exported leaves an
/// update import of that export updating the customers it matches (the
/// column missing, or its cell blank); only a row that would create a
/// customer needs it. Other policies still need the column.
pub async fn import_update_needs_a_later_required_field_only_for_new_records(
    store: Arc<dyn Store>,
) {
    let w = World::new(store.clone()).await;
    w.customer(&w.admin, "甲公司", json!({"level": "C"})).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "industry_code",
                "行业代码",
                "Industry code",
                crate::custom::CustomFieldType::Text,
                &[],
                true,
            ),
        )
        .await
        .expect("field");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户名称", "客户级别"],
        vec![vec![t("甲公司"), t("A")], vec![t("新公司"), t("B")]],
    )
    .await;
    assert_eq!(
        (r.updated, r.created, r.rejected),
        (1, 0, 1),
        "{:#?}",
        r.issues
    );
    assert_eq!(
        find(&w, "甲公司").await.expect("kept").text("level"),
        Some("A")
    );
    let i = issue(&r, 3);
    assert_eq!(i.outcome, RowOutcome::Rejected, "{i:#?}");
    assert!(
        i.message_en.contains("Industry code") && i.message_en.contains("required"),
        "{i:#?}"
    );
    assert!(i.message_zh.contains("行业代码"), "{i:#?}");
    assert!(find(&w, "新公司").await.is_none());
    // With the column: a blank cell leaves the matched customer as it is,
    // a given one creates.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &["客户名称", "客户级别", "行业代码"],
        vec![
            vec![t("甲公司"), t("B"), t("")],
            vec![t("新公司"), t("B"), t("I65")],
            vec![t("另一家公司"), t("B"), t("")],
        ],
    )
    .await;
    assert_eq!(
        (r.updated, r.created, r.rejected),
        (1, 1, 1),
        "{:#?}",
        r.issues
    );
    assert_eq!(issue(&r, 4).outcome, RowOutcome::Rejected);
    let made = find(&w, "新公司").await.expect("created");
    assert_eq!(made.custom.get("industry_code"), Some(&json!("I65")));
    // Skipping duplicates creates every other row: the column is needed.
    match w
        .crm
        .begin_import(
            &w.admin,
            opts(Entity::Customer),
            &headers(&["客户名称", "客户级别"]),
        )
        .await
    {
        Err(e) => assert!(e.to_string().contains("行业代码"), "{e}"),
        Ok(_) => panic!("a header without a required column"),
    }
}

/// Customers an import creates that share a phone or e-mail (keys the
/// duplicate settings only warn of, by default) with a stored customer or
/// an earlier row are created, and listed as warnings — not silently, and
/// not as rows of the error workbook; a holder the importer may not see is
/// not named. A dry run tells the same.
pub async fn import_tells_of_the_possible_duplicates_it_creates(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let seen = w
        .customer(&w.zhangsan, "甲公司", json!({"phone": "010-62345678"}))
        .await;
    w.customer(
        &w.wangwu,
        "王五的客户",
        json!({"email": "Sales@Example.com"}),
    )
    .await;
    let h = ["客户名称", "电话", "邮箱"];
    let data = || {
        vec![
            vec![t("乙公司"), t("(010) 6234-5678"), t("")],
            vec![t("丙公司"), t("13812345678"), t("")],
            vec![t("丁公司"), t("138-1234-5678"), t("")],
            vec![t("戊公司"), t(""), t("sales@example.com")],
            vec![t("己公司"), t("13900001111"), t("own@example.com")],
        ]
    };
    let mut dry = opts(Entity::Customer);
    dry.dry_run = true;
    let preview = run(&w, &w.zhangsan, dry, &h, data()).await;
    let r = run(&w, &w.zhangsan, opts(Entity::Customer), &h, data()).await;
    for r in [&preview, &r] {
        assert_eq!(r.created, 5, "{r:#?}");
        assert!(r.issues.is_empty(), "{:#?}", r.issues);
        let rows: Vec<u32> = r.warnings.iter().map(|i| i.row).collect();
        assert_eq!(rows, vec![2, 4, 5], "{:#?}", r.warnings);
        assert!(
            r.warnings
                .iter()
                .all(|i| i.outcome == RowOutcome::Warned && i.kind == IssueKind::PossibleDuplicate)
        );
        let msg = |row: u32| {
            r.warnings
                .iter()
                .find(|i| i.row == row)
                .map(|i| (i.message_en.clone(), i.message_zh.clone()))
                .expect("warning")
        };
        let (en, zh) = msg(2);
        assert!(
            en.contains("possible duplicate") && en.contains(seen.code.as_deref().expect("code")),
            "{en}"
        );
        assert!(zh.contains("疑似重复"), "{zh}");
        assert!(msg(4).0.contains("row 3 of this file"), "{:?}", msg(4));
        // 王五's customer is not 张三's to see: not named.
        let (en, _) = msg(5);
        assert!(
            en.contains("possible duplicate") && !en.contains("王五"),
            "{en}"
        );
    }
}

/// Under the update policy a blank cell leaves the stored value; asked to
/// (`blanks_clear`), it clears it — not a required field, and undo gives
/// the values back. Other policies refuse the option.
pub async fn import_update_clears_blank_cells_when_asked(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "region",
                "片区",
                "Region",
                crate::custom::CustomFieldType::Text,
                &[],
                false,
            ),
        )
        .await
        .expect("field");
    w.customer(
        &w.admin,
        "清空测试有限公司",
        json!({"phone": "010-62345678", "level": "A", "custom.region": "华北", "tags": ["重点"]}),
    )
    .await;
    let h = ["客户名称", "电话", "客户级别", "片区", "标签"];
    let blank_row = || vec![vec![t("清空测试有限公司"), t(""), t(""), t(""), t("")]];
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let kept = run(&w, &w.admin, o.clone(), &h, blank_row()).await;
    assert_eq!((kept.updated, kept.unchanged), (0, 1), "{:#?}", kept.issues);
    let before = find(&w, "清空测试有限公司").await.expect("customer");
    assert_eq!(
        before.fields.get("tags"),
        Some(&json!(["重点"])),
        "{before:#?}"
    );
    o.blanks_clear = true;
    let cleared = run(&w, &w.admin, o.clone(), &h, blank_row()).await;
    assert_eq!(
        (cleared.updated, cleared.rejected),
        (1, 0),
        "{:#?}",
        cleared.issues
    );
    let c = find(&w, "清空测试有限公司").await.expect("customer");
    assert_eq!(c.text("phone"), None, "{c:#?}");
    assert_eq!(c.text("level"), None, "{c:#?}");
    assert!(c.custom.get("region").is_none_or(|v| v.is_null()), "{c:#?}");
    assert!(
        c.fields
            .get("tags")
            .is_none_or(|v| v.is_null() || v == &json!([])),
        "{c:#?}"
    );
    w.crm
        .undo_import(&w.admin, cleared.import_id.expect("id"))
        .await
        .expect("undo");
    let c = find(&w, "清空测试有限公司").await.expect("customer");
    assert_eq!(c.text("level"), Some("A"));
    assert_eq!(c.custom.get("region"), Some(&json!("华北")));
    let mut skip = opts(Entity::Customer);
    skip.blanks_clear = true;
    assert!(matches!(
        w.crm.begin_import(&w.admin, skip, &headers(&h)).await,
        Err(Error::Validation(_))
    ));
}

/// What a masked export shows of a stored value (`北***号` for an address,
/// `010*****5678` for a phone, `***` for a number) read back by anyone —
/// here an administrator who sees the values in full — under the update
/// policy changes nothing: the customer's built-in and custom fields and
/// its contact's keep their values while a real change on the row lands.
/// A cell with a `*` that is another value is a value: a valid one is
/// written, one that is no valid value (a phone) refuses its row, as it
/// does on a row creating a customer.
pub async fn import_reads_mask_renderings_back_as_unchanged(store: Arc<dyn Store>) {
    use crate::auth::mask;
    use crate::entity::MaskStyle;
    let w = World::new(store.clone()).await;
    for (key, label, ty) in [
        ("secret", "机密备注", crate::custom::CustomFieldType::Text),
        ("score", "评分", crate::custom::CustomFieldType::Number),
    ] {
        w.crm
            .define_custom_field(
                &w.admin,
                new_custom(Entity::Customer, key, label, key, ty, &[], false),
            )
            .await
            .expect("custom field");
    }
    let masked = user_with_role(
        &w,
        "maskexport",
        role_perms(&[Action::Read, Action::Export], DataScope::All),
        ["address", "phone", "custom.secret", "custom.score"]
            .into_iter()
            .map(|f| FieldRule {
                entity: Entity::Customer,
                field: f.into(),
                access: FieldAccess::Masked,
            })
            .chain(std::iter::once(FieldRule {
                entity: Entity::Contact,
                field: "wechat".into(),
                access: FieldAccess::Masked,
            }))
            .collect(),
    )
    .await;
    let address = "北京市海淀区中关村大街1号";
    let jia = w
        .customer(
            &w.admin,
            "脱敏回读有限公司",
            json!({
                "address": address,
                "phone": "010-62345678",
                "custom.secret": "只给管理员看",
                "custom.score": 87.5,
            }),
        )
        .await;
    let code = jia.code.clone().expect("code");
    let zw = new_contact(
        &w,
        &jia,
        json!({"name": "张伟", "mobile": "13812345678", "wechat": "zhangwei_wx"}),
    )
    .await;
    let zw_code = zw.code.clone().expect("code");
    // The masked colleague's export, read back by the administrator.
    let (h, data) = exported_sheet(&w, &masked, Entity::Customer, false).await;
    let at = |name: &str| h.iter().position(|c| c == name).expect(name);
    let row = data
        .iter()
        .find(|r| r[at("编号")] == t(&code))
        .expect("exported row")
        .clone();
    assert_eq!(row[at("详细地址")], t(&mask(MaskStyle::Text, address)));
    assert_eq!(row[at("评分")], t("***"));
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(&w, &w.admin, o.clone(), &hs, vec![row.clone()]).await;
    assert_eq!(
        (r.rejected, r.updated, r.unchanged),
        (0, 0, 1),
        "{:#?}",
        r.issues
    );
    let stored = find(&w, "脱敏回读有限公司").await.expect("customer");
    assert_eq!(stored.text("address"), Some(address));
    assert_eq!(stored.text("phone"), Some("010-62345678"));
    assert_eq!(stored.custom.get("secret"), Some(&json!("只给管理员看")));
    assert_eq!(
        stored
            .custom
            .get("score")
            .and_then(serde_json::Value::as_f64),
        Some(87.5)
    );
    // A contact group's masked cells too, beside a real change.
    let h = [
        "编号",
        "客户名称",
        "详细地址",
        "联系人1编号",
        "联系人1姓名",
        "联系人1手机",
        "联系人1微信",
        "联系人1职务",
    ];
    let group = |addr: &str, mobile: &str, title: &str| {
        vec![
            t(&code),
            t("脱敏回读有限公司"),
            t(addr),
            t(&zw_code),
            t("张伟"),
            t(mobile),
            t(&mask(MaskStyle::Text, "zhangwei_wx")),
            t(title),
        ]
    };
    let shown_address = mask(MaskStyle::Text, address);
    let shown_mobile = mask(MaskStyle::Phone, "13812345678");
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![group(&shown_address, &shown_mobile, "总监")],
    )
    .await;
    assert_eq!((r.rejected, r.contacts_updated), (0, 1), "{:#?}", r.issues);
    let c = contact_named(&w, "张伟").await;
    assert_eq!(c.text("wechat"), Some("zhangwei_wx"));
    assert_eq!(c.text("mobile"), Some("13812345678"));
    assert_eq!(c.text("title"), Some("总监"));
    assert_eq!(
        find(&w, "脱敏回读有限公司")
            .await
            .expect("customer")
            .text("address"),
        Some(address)
    );
    // A masked-looking phone that is not the stored one's mask: refused,
    // nothing written.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![group(&shown_address, "138****0000", "顾问")],
    )
    .await;
    assert_eq!((r.rejected, r.contacts_updated), (1, 0), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Invalid);
    assert_eq!(contact_named(&w, "张伟").await.text("title"), Some("总监"));
    // A valid value with a star is a value.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![group("北*号", &shown_mobile, "总监")],
    )
    .await;
    assert_eq!((r.rejected, r.updated), (0, 1), "{:#?}", r.issues);
    assert_eq!(
        find(&w, "脱敏回读有限公司")
            .await
            .expect("customer")
            .text("address"),
        Some("北*号")
    );
    // A new customer cannot take a mask for a phone.
    let r = run(
        &w,
        &w.admin,
        o,
        &["客户名称", "电话"],
        vec![vec![t("脱敏新建有限公司"), t("010*****5678")]],
    )
    .await;
    assert_eq!((r.rejected, r.created), (1, 0), "{:#?}", r.issues);
}

/// A user whose role masks products' cost exports it as `***`; their own
/// export imported back under the update policy (a dry run too) reads the
/// masked column back as unchanged, while a row giving another cost, or a
/// cost for a new product, is refused by itself, naming the column.
pub async fn import_reads_a_masked_product_cost_back_as_unchanged(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::ProductInput;
    let w = World::new(store.clone()).await;
    let perms = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Export,
        Action::Import,
    ]
    .into_iter()
    .map(|action| Permission {
        entity: Entity::Product,
        action,
        scope: DataScope::All,
    })
    .collect();
    let masked = user_with_role(
        &w,
        "costmask",
        perms,
        vec![FieldRule {
            entity: Entity::Product,
            field: "cost".into(),
            access: FieldAccess::Masked,
        }],
    )
    .await;
    for (code, name) in [("MC-1", "脱敏成本甲"), ("MC-2", "脱敏成本乙")] {
        w.crm
            .create_product(
                &w.admin,
                ProductInput {
                    code: Some(code.into()),
                    name: Some(name.into()),
                    list_price: Some(Money::cny(100)),
                    cost: Some(Money::cny(60)),
                    ..ProductInput::default()
                },
            )
            .await
            .expect("product");
    }
    let cols = w
        .crm
        .export_columns(
            &masked,
            Entity::Product,
            &["产品编号", "产品名称", "标准价", "成本"].map(String::from),
        )
        .await
        .expect("export columns");
    let (page, _) = w
        .crm
        .product_export_page(
            &masked,
            &cols,
            &crate::sales::product::ProductQuery {
                page: 1,
                per_page: 10,
                ..Default::default()
            },
        )
        .await
        .expect("export page");
    let h: Vec<String> = cols.iter().map(|c| c.header_zh.clone()).collect();
    let mut data: Vec<Vec<Cell>> = page
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    ExportValue::Empty => Cell::Empty,
                    ExportValue::Text(s) => t(&s),
                    ExportValue::Number(n) => Cell::Number(n),
                    ExportValue::Money(m) => Cell::Number(m as f64 / 100.0),
                    ExportValue::Date(d) => Cell::Date(d),
                    ExportValue::DateTime(d) => Cell::DateTime(d),
                    ExportValue::Bool(b) => Cell::Bool(b),
                })
                .collect()
        })
        .collect();
    let code_at = h.iter().position(|c| c == "产品编号").expect("code column");
    data.sort_by_key(|r| format!("{:?}", r[code_at]));
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    let cost_at = h.iter().position(|c| c == "成本").expect("cost column");
    let price_at = h.iter().position(|c| c == "标准价").expect("price column");
    assert!(data.iter().all(|r| r[cost_at] == t("***")), "{data:?}");
    let mut o = opts(Entity::Product);
    o.policy = DuplicatePolicy::Update;
    for dry_run in [true, false] {
        let mut o = o.clone();
        o.dry_run = dry_run;
        let r = run(&w, &masked, o, &hs, data.clone()).await;
        assert_eq!(
            (r.rejected, r.updated, r.unchanged),
            (0, 0, 2),
            "{:#?}",
            r.issues
        );
    }
    // A price change beside the masked cost lands; another cost is
    // refused on its row only.
    let mut rows = data.clone();
    rows[0][price_at] = Cell::Number(120.0);
    rows[1][price_at] = Cell::Number(130.0);
    rows[1][cost_at] = t("50");
    let r = run(&w, &masked, o.clone(), &hs, rows).await;
    assert_eq!((r.rejected, r.updated), (1, 1), "{:#?}", r.issues);
    let i = issue(&r, 3);
    assert_eq!(i.kind, IssueKind::Forbidden);
    assert!(i.message_zh.contains("成本"), "{}", i.message_zh);
    for (code, price) in [("MC-1", 12_000), ("MC-2", 100)] {
        let p = w
            .crm
            .product_by_code(&w.admin, code)
            .await
            .expect("product");
        assert_eq!(p.list_price.minor, price, "{code}");
        assert_eq!(p.cost.map(|c| c.minor), Some(60), "{code}");
    }
    // A new product cannot take a cost from them.
    let r = run(
        &w,
        &masked,
        o,
        &["产品编号", "产品名称", "标准价", "成本"],
        vec![
            vec![t("MC-3"), t("脱敏成本丙"), t("10"), t("5")],
            vec![t("MC-4"), t("脱敏成本丁"), t("10"), Cell::Empty],
        ],
    )
    .await;
    assert_eq!((r.rejected, r.created), (1, 1), "{:#?}", r.issues);
    assert_eq!(issue(&r, 2).kind, IssueKind::Forbidden);
}

/// Under the update policy a customer row found only by a phone (refused
/// as a duplicate) whose name is another customer's name does not rename
/// the customer it found: the row is refused, naming the row's name, the
/// customer and the key, and how to update it on purpose. The code, or
/// the customer's own name, still update it; with names only warned of, a
/// row whose phone is one customer's and whose name is another's renames
/// neither.
pub async fn import_update_by_phone_does_not_rename_a_customer(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .set_dedupe_rule(&w.admin, "phone", crate::dedupe::DedupeMode::Block)
        .await
        .expect("phones refused");
    let hx = w
        .customer(
            &w.admin,
            "北京华信智联科技有限公司",
            json!({"phone": "010-62340001"}),
        )
        .await;
    let code = hx.code.clone().expect("code");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let h = ["编号", "客户名称", "电话", "备注"];
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![vec![t(""), t("新客户ABC"), t("010-62340001"), t("改名")]],
    )
    .await;
    assert_eq!((r.rejected, r.updated), (1, 0), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en.contains("新客户ABC")
            && i.message_en.contains(&code)
            && i.message_en.contains("phone"),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh.contains("新客户ABC") && i.message_zh.contains("编号"),
        "{}",
        i.message_zh
    );
    assert!(find(&w, "北京华信智联科技有限公司").await.is_some());
    // Its own name, or its code, update it on purpose.
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![vec![
            t(""),
            t("北京华信智联科技有限公司"),
            t("010-62340001"),
            t("同名"),
        ]],
    )
    .await;
    assert_eq!((r.rejected, r.updated), (0, 1), "{:#?}", r.issues);
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![vec![
            t(&code),
            t("华信新名有限公司"),
            t("010-62340001"),
            t("改名"),
        ]],
    )
    .await;
    assert_eq!((r.rejected, r.updated), (0, 1), "{:#?}", r.issues);
    assert!(find(&w, "华信新名有限公司").await.is_some());
    // Names only warned of: the phone finds one, the name another.
    w.crm
        .set_dedupe_rule(&w.admin, "name", crate::dedupe::DedupeMode::Warn)
        .await
        .expect("names warned of");
    w.customer(&w.admin, "另一家有限公司", json!({})).await;
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![vec![t(""), t("另一家有限公司"), t("010-62340001"), t("")]],
    )
    .await;
    assert_eq!((r.rejected, r.updated), (1, 0), "{:#?}", r.issues);
    assert!(find(&w, "华信新名有限公司").await.is_some());
    assert!(find(&w, "另一家有限公司").await.is_some());
}

/// Under the update policy a row updating a customer by its code with the
/// required name left blank keeps the stored name, as any blank cell keeps
/// its value; a row that would create a customer still needs it.
pub async fn import_update_keeps_a_blank_required_cell(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let jia = w.customer(&w.admin, "必填留空有限公司", json!({})).await;
    let code = jia.code.clone().expect("code");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let h = ["编号", "客户名称", "备注"];
    let r = run(
        &w,
        &w.admin,
        o.clone(),
        &h,
        vec![
            vec![t(&code), Cell::Empty, t("名称留空")],
            vec![t(""), Cell::Empty, t("新建缺名称")],
        ],
    )
    .await;
    assert_eq!(
        (r.rejected, r.updated, r.created),
        (1, 1, 0),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 3);
    assert!(i.message_zh.contains("客户名称"), "{}", i.message_zh);
    let stored = find(&w, "必填留空有限公司").await.expect("name kept");
    assert_eq!(stored.text("notes"), Some("名称留空"));
    // Under another policy the name is required of every row.
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![vec![t(&code), Cell::Empty, t("")]],
    )
    .await;
    assert_eq!(r.rejected, 1, "{:#?}", r.issues);
    // A contact row naming its customer: its blank name is kept too.
    let zw = new_contact(&w, &jia, json!({"name": "留空联系人", "title": "经理"})).await;
    let zw_code = zw.code.clone().expect("code");
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["编号", "所属客户", "姓名", "职务"],
        vec![
            vec![t(&zw_code), t("必填留空有限公司"), Cell::Empty, t("总监")],
            vec![t(""), t("必填留空有限公司"), Cell::Empty, t("顾问")],
        ],
    )
    .await;
    assert_eq!(
        (r.rejected, r.updated, r.created),
        (1, 1, 0),
        "{:#?}",
        r.issues
    );
    assert!(issue(&r, 3).message_zh.contains("姓名"), "{:#?}", r.issues);
    let c = contact_named(&w, "留空联系人").await;
    assert_eq!(c.text("title"), Some("总监"));
}

/// Number custom fields take from an import what they take through the
/// API: a number cell holding more significant digits than the field
/// keeps, or a whole number from 2^53 on, and typed text such numbers, are
/// refused with the API's reason; an export read back is unchanged on
/// every store.
pub async fn import_checks_number_fields_as_the_api_does(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "cnt",
                "数量",
                "Count",
                crate::custom::CustomFieldType::Number,
                &[],
                false,
            ),
        )
        .await
        .expect("number field");
    let api = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            crate::testing::service_suite::fields(
                json!({"name": "数字甲有限公司", "custom.cnt": "12345678901234567"}),
            ),
        )
        .await
        .expect_err("the API refuses it");
    let reason = "has more significant digits than a number field keeps exactly";
    assert!(api.to_string().contains(reason), "{api}");
    let h = ["客户名称", "数量"];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &h,
        vec![
            vec![t("数字甲有限公司"), Cell::Number(12_345_678_901_234_567.0)],
            vec![t("数字乙有限公司"), Cell::Number(9_007_199_254_740_993.0)],
            vec![t("数字丙有限公司"), Cell::Number(1.234_567_890_123_456_7)],
            vec![t("数字丁有限公司"), t("9007199254740993")],
            vec![t("数字戊有限公司"), Cell::Number(1e16)],
            vec![t("数字己有限公司"), Cell::Number(123_456_789.125)],
        ],
    )
    .await;
    assert_eq!((r.rejected, r.created), (4, 2), "{:#?}", r.issues);
    for row in 2..=5 {
        let i = issue(&r, row);
        assert!(i.message_en.contains(reason), "{i:#?}");
        assert!(i.message_zh.contains("数量"), "{i:#?}");
    }
    // Read back from an export: nothing changes, on either store.
    let (h, data) = exported_sheet(&w, &w.admin, Entity::Customer, false).await;
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    for _ in 0..2 {
        let r = run(&w, &w.admin, o.clone(), &hs, data.clone()).await;
        assert_eq!((r.rejected, r.updated), (0, 0), "{:#?}", r.issues);
    }
}

/// The administrator roles of the world's company.
async fn admin_role(w: &World) -> crate::auth::Role {
    w.crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.is_admin)
        .expect("an administrator role")
}

/// Who of the company is an active user holding an administrator role.
async fn active_admins(w: &World) -> Vec<String> {
    let admin_roles: Vec<crate::ids::RoleId> = w
        .crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .filter(|r| r.is_admin)
        .map(|r| r.id)
        .collect();
    let mut out: Vec<String> = w
        .crm
        .list_users(&w.admin, None)
        .await
        .expect("users")
        .into_iter()
        .filter(|u| u.active && u.role_ids.iter().any(|r| admin_roles.contains(r)))
        .map(|u| u.username)
        .collect();
    out.sort();
    out
}

/// A user import that moves a user to another department moves the records
/// they own with them (live, archived or in the recycle bin), each audited,
/// as editing the user does; undoing the import moves them back.
pub async fn a_user_import_moves_the_records_of_the_users_it_moves(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let kept = w.customer(&w.zhangsan, "随人甲有限公司", json!({})).await;
    let binned = w.customer(&w.zhangsan, "随人乙有限公司", json!({})).await;
    let gone = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[binned.id])
        .await;
    assert_eq!(gone.done, vec![binned.id], "{:?}", gone.refused);
    let contact = w
        .crm
        .create_record(
            &w.zhangsan,
            Entity::Contact,
            crate::testing::service_suite::fields(
                json!({"customer_id": kept.id.to_string(), "name": "随人联系"}),
            ),
        )
        .await
        .expect("contact");
    let others = w.customer(&w.wangwu, "不动有限公司", json!({})).await;
    let department_of = |entity: Entity, id: crate::ids::RecordId| {
        let w = &w;
        async move {
            w.crm
                .store()
                .get(entity.table(), id.0)
                .await
                .expect("get")
                .expect("row")
                .get("department_id")
                .as_id()
        }
    };
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["用户名", "姓名", "部门"],
        vec![vec![t("zhangsan"), t("张三"), t("销售二组")]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let group2 = Some(w.group2.0);
    assert_eq!(department_of(Entity::Customer, kept.id).await, group2);
    assert_eq!(department_of(Entity::Customer, binned.id).await, group2);
    assert_eq!(department_of(Entity::Contact, contact.id).await, group2);
    assert_eq!(
        department_of(Entity::Customer, others.id).await,
        Some(w.group2.0)
    );
    // The move is on the record's history, as a transfer's is.
    let history = w
        .crm
        .history(&w.admin, Entity::Customer, kept.id.0)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.changes.iter().any(|c| c.field == "department_id")),
        "{history:#?}"
    );
    // zhaoliu leads group one: the customer left his scope with its owner.
    let seen = w
        .crm
        .get_record(&w.zhaoliu, Entity::Customer, kept.id)
        .await;
    assert!(matches!(seen, Err(Error::NotFound { .. })), "{seen:?}");
    let id = r.import_id.expect("an import id");
    w.crm.undo_import(&w.admin, id).await.expect("undo");
    let group1 = Some(w.group1.0);
    assert_eq!(
        w.crm
            .user(&w.admin, w.zhangsan.user_id)
            .await
            .expect("zhangsan")
            .department_id,
        Some(w.group1)
    );
    assert_eq!(department_of(Entity::Customer, kept.id).await, group1);
    assert_eq!(department_of(Entity::Customer, binned.id).await, group1);
    assert_eq!(department_of(Entity::Contact, contact.id).await, group1);
    assert_eq!(
        department_of(Entity::Customer, others.id).await,
        Some(w.group2.0)
    );
    w.crm
        .get_record(&w.zhaoliu, Entity::Customer, kept.id)
        .await
        .expect("back in zhaoliu's department");
}

/// The undo of a user import keeps an active administrator: an import that
/// created an administrator, whose importer then gave up their own
/// administrator role (and with it the right to undo it), is not undone
/// while that would deactivate the only active administrator left
/// ("nothing was undone"); once another user is an administrator, it is.
pub async fn import_undo_keeps_an_active_administrator(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin_role = admin_role(&w).await;
    let r = run(
        &w,
        &w.admin,
        opts(Entity::User),
        &["用户名", "姓名", "部门", "角色"],
        vec![vec![
            t("newadmin"),
            t("新管理员"),
            t("销售部"),
            t(&admin_role.name),
        ]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
    let import = r.import_id.expect("an import id");
    let seller = w
        .crm
        .list_roles(&w.admin)
        .await
        .expect("roles")
        .into_iter()
        .find(|r| r.name == "销售")
        .expect("seller role");
    let me = w
        .crm
        .user(&w.admin, w.admin.user_id)
        .await
        .expect("admin user");
    w.crm
        .update_user(
            &w.admin,
            me.id,
            me.version,
            crate::org::UserPatch {
                role_ids: Some(vec![seller.id]),
                ..Default::default()
            },
        )
        .await
        .expect("the importer gives up their administrator role");
    assert_eq!(active_admins(&w).await, vec!["newadmin".to_string()]);
    let importer = w.crm.actor(w.admin.user_id).await.expect("actor");
    // Demoted, the importer may not undo it at all.
    match w.crm.undo_import(&importer, import).await {
        Err(Error::Forbidden(m)) => {
            assert!(m.contains("may no longer import user records"), "{m}")
        }
        other => panic!("a demoted importer's undo: {other:?}"),
    }
    // The new administrator may undo anyone's import, but not this one
    // while it would deactivate them, the only active administrator.
    let newadmin = w
        .crm
        .user_by_username(&importer, "newadmin")
        .await
        .expect("newadmin");
    let newadmin = w.crm.actor(newadmin.id).await.expect("actor");
    match w.crm.undo_import(&newadmin, import).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains(&format!("cannot undo import {import}"))
                    && m.contains("without an active administrator")
                    && m.contains("newadmin")
                    && m.ends_with("nothing was undone"),
                "{m}"
            );
        }
        other => panic!("expected the undo refused, got {other:?}"),
    }
    assert_eq!(active_admins(&w).await, vec!["newadmin".to_string()]);
    // Another administrator (made by the new one): the undo goes through.
    let lisi = w.crm.user(&newadmin, w.lisi.user_id).await.expect("lisi");
    w.crm
        .update_user(
            &newadmin,
            lisi.id,
            lisi.version,
            crate::org::UserPatch {
                role_ids: Some(vec![admin_role.id]),
                ..Default::default()
            },
        )
        .await
        .expect("lisi made an administrator");
    w.crm
        .undo_import(&newadmin, import)
        .await
        .expect("undo once another administrator remains");
    assert_eq!(active_admins(&w).await, vec!["lisi".to_string()]);
}

/// The undo of a user import that gave a user back an administrator role
/// is refused when restoring their earlier roles would leave no active
/// administrator.
pub async fn import_undo_giving_back_roles_keeps_an_active_administrator(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let admin_role = admin_role(&w).await;
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["用户名", "姓名", "角色"],
        vec![vec![t("lisi"), t("李四"), t(&admin_role.name)]],
    )
    .await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let import = r.import_id.expect("an import id");
    let lisi = w.crm.actor(w.lisi.user_id).await.expect("actor");
    let me = w
        .crm
        .user(&lisi, w.admin.user_id)
        .await
        .expect("admin user");
    w.crm
        .update_user(
            &lisi,
            me.id,
            me.version,
            crate::org::UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("lisi deactivates the first administrator");
    match w.crm.undo_import(&lisi, import).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("without an active administrator")
                && m.contains("lisi")
                && m.ends_with("nothing was undone"),
            "{m}"
        ),
        other => panic!("expected the undo refused, got {other:?}"),
    }
    assert_eq!(active_admins(&w).await, vec!["lisi".to_string()]);
}

/// A user import demoting one administrator and an edit through the API
/// demoting the other at the same moment do not both pass: each checked
/// that the other administrator remains, and both bump the administrator
/// roles, so the later write conflicts. The company keeps an active
/// administrator.
pub async fn a_user_import_and_a_concurrent_demotion_keep_an_administrator(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let admin_role = admin_role(&w).await;
    let lisi = w.crm.user(&w.admin, w.lisi.user_id).await.expect("lisi");
    w.crm
        .update_user(
            &w.admin,
            lisi.id,
            lisi.version,
            crate::org::UserPatch {
                role_ids: Some(vec![admin_role.id]),
                ..Default::default()
            },
        )
        .await
        .expect("lisi made an administrator");
    let lisi = w.crm.actor(w.lisi.user_id).await.expect("actor");
    for commit in [CommitMode::Atomic, CommitMode::Batches] {
        // lisi demotes the first administrator while admin's import of a
        // sheet demoting lisi is being written.
        let me = other
            .user(&lisi, w.admin.user_id)
            .await
            .expect("admin user");
        let seller = w
            .crm
            .list_roles(&w.admin)
            .await
            .expect("roles")
            .into_iter()
            .find(|r| r.name == "销售")
            .expect("seller role");
        let (by, demote) = (lisi.clone(), seller.id);
        let other2 = other.clone();
        hooked.before_write(Table::Users, async move {
            other2
                .update_user(
                    &by,
                    me.id,
                    me.version,
                    crate::org::UserPatch {
                        role_ids: Some(vec![demote]),
                        ..Default::default()
                    },
                )
                .await
                .expect("the concurrent demotion");
        });
        let mut o = opts(Entity::User);
        o.policy = DuplicatePolicy::Update;
        o.commit = commit;
        let mut s = w
            .crm
            .begin_import(&w.admin, o, &headers(&["用户名", "姓名", "角色"]))
            .await
            .expect("begin");
        let pushed = s
            .push(&rows(vec![vec![t("lisi"), t("李四"), t("销售")]]))
            .await;
        let done = match pushed {
            Ok(_) => s.finish().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(
            matches!(done, Err(Error::Conflict { .. })),
            "{commit:?}: {done:?}"
        );
        assert_eq!(
            active_admins(&w).await,
            vec!["lisi".to_string()],
            "{commit:?}"
        );
        // Make admin an administrator again for the next round.
        let me = w
            .crm
            .user(&lisi, w.admin.user_id)
            .await
            .expect("admin user");
        w.crm
            .update_user(
                &lisi,
                me.id,
                me.version,
                crate::org::UserPatch {
                    role_ids: Some(vec![admin_role.id]),
                    ..Default::default()
                },
            )
            .await
            .expect("admin an administrator again");
    }
}

/// Money custom fields hold to the cap of the built-in amounts (10万亿元),
/// through the API and imports alike, in the same words: a larger amount
/// would sort imprecisely and not survive an export and import.
pub async fn money_custom_fields_hold_to_the_amount_cap(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "annual_revenue",
                "年营收",
                "Annual revenue",
                crate::custom::CustomFieldType::Money,
                &[],
                false,
            ),
        )
        .await
        .expect("money field");
    let too_much = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            crate::testing::service_suite::fields(
                json!({"name": "巨款有限公司", "annual_revenue": "92233720368547758.07"}),
            ),
        )
        .await;
    match &too_much {
        Err(e @ Error::Validation(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("(10万亿元), the most an amount may be"),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let ok = w
        .crm
        .create_record(
            &w.admin,
            Entity::Customer,
            crate::testing::service_suite::fields(
                json!({"name": "大款有限公司", "annual_revenue": "10000000000000"}),
            ),
        )
        .await
        .expect("at the cap");
    assert_eq!(
        ok.custom.get("annual_revenue"),
        Some(&json!(crate::sales::MAX_SALES_AMOUNT_MINOR))
    );
    let big = w
        .crm
        .update_record(
            &w.admin,
            Entity::Customer,
            ok.id,
            ok.version,
            crate::testing::service_suite::fields(json!({"annual_revenue": "-10000000000000.01"})),
        )
        .await;
    assert!(matches!(big, Err(Error::Validation(_))), "{big:?}");
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "年营收"],
        vec![
            vec![t("导入巨款有限公司"), t("92233720368547758.07")],
            vec![t("导入正常有限公司"), t("1234.56")],
        ],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en
            .contains("(10万亿元), the most an amount may be"),
        "{i:#?}"
    );
    assert!(find(&w, "导入巨款有限公司").await.is_none());
}

/// An import guards the option lists of the built-in choice fields its
/// columns write as it read them when it began: an option removed before
/// the import's write (here: between its checks and its write) fails the
/// write instead of leaving records holding the removed option.
pub async fn import_guards_the_built_in_option_lists_it_read(store: Arc<dyn Store>) {
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    for (n, commit) in [CommitMode::Atomic, CommitMode::Batches]
        .into_iter()
        .enumerate()
    {
        let list = w
            .crm
            .picklist_with_version(&w.admin, Entity::Customer, "level")
            .await
            .expect("list");
        assert!(list.options.iter().any(|o| o == "D"), "{list:?}");
        let (crm, admin, version) = (other.clone(), w.admin.clone(), list.version);
        let kept: Vec<String> = list.options.iter().filter(|o| *o != "D").cloned().collect();
        hooked.before_customer_write(async move {
            crm.set_picklist(&admin, Entity::Customer, "level", version, &kept)
                .await
                .expect("option D removed meanwhile");
        });
        let mut o = opts(Entity::Customer);
        o.commit = commit;
        let name = format!("级别D{n}有限公司");
        let mut s = w
            .crm
            .begin_import(&w.admin, o, &headers(&["客户名称", "客户级别"]))
            .await
            .expect("begin");
        let pushed = s.push(&rows(vec![vec![t(&name), t("D")]])).await;
        let done = match pushed {
            Ok(_) => s.finish().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match done {
            Err(Error::InvalidState(m)) => assert!(
                m.contains("the options of customer.level (客户级别) were changed meanwhile"),
                "{commit:?}: {m}"
            ),
            other => panic!("{commit:?}: expected the write refused, got {other:?}"),
        }
        assert!(find(&w, &name).await.is_none(), "{commit:?}");
        // Put D back for the next round.
        let list = w
            .crm
            .picklist_with_version(&w.admin, Entity::Customer, "level")
            .await
            .expect("list");
        let mut back = list.options.clone();
        back.push("D".into());
        w.crm
            .set_picklist(&w.admin, Entity::Customer, "level", list.version, &back)
            .await
            .expect("D again");
    }
    // With the list unchanged, the same import goes through.
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Customer),
        &["客户名称", "客户级别"],
        vec![vec![t("级别D有限公司"), t("D")]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:#?}", r.issues);
}

/// The contacts of the customer `customer`, archived ones too.
async fn contacts_of_customer(w: &World, customer: &Record) -> Vec<Record> {
    let id = customer.id.to_string();
    contacts_of(w)
        .await
        .into_iter()
        .filter(|r| r.text("customer_id") == Some(id.as_str()))
        .collect()
}

/// The customers named `name`.
async fn people(w: &World, name: &str) -> Vec<Record> {
    customers(w, &w.admin)
        .await
        .into_iter()
        .filter(|r| r.text("name") == Some(name))
        .collect()
}

/// What a report says of each row, for comparing two runs.
fn said(r: &ImportReport) -> Vec<(u32, RowOutcome, IssueKind, String, String)> {
    r.issues
        .iter()
        .map(|i| {
            (
                i.row,
                i.outcome,
                i.kind,
                i.message_en.clone(),
                i.message_zh.clone(),
            )
        })
        .collect()
}

/// A contact row without a mobile names its customer's contact of that
/// name, as a customer row's contact group does (a contact without a
/// mobile has no other key): the same sheet imported again skips each row
/// as a duplicate naming the contact — a dry run reports the same —,
/// updates the contact under `update` (given back by the undo), and fails
/// under `fail`; a second row of a file naming the same customer and name
/// is a duplicate within the file. Nothing is created twice; a namesake of
/// another customer is another contact.
pub async fn import_finds_contacts_without_a_mobile_by_name(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let tx = w.customer(&w.zhangsan, "腾讯科技有限公司", json!({})).await;
    let h = ["所属客户", "姓名", "手机", "职务"];
    let row = |customer: &str, name: &str, title: &str| vec![t(customer), t(name), t(""), t(title)];
    let data = vec![
        row("华为技术有限公司", "张伟", "经理"), // 2
        row("华为技术有限公司", "李娜", ""),     // 3
        row("华为技术有限公司", "张伟", "总监"), // 4: repeats row 2
        row("腾讯科技有限公司", "张伟", ""),     // 5: another customer's
    ];
    let r = run(&w, &w.zhangsan, opts(Entity::Contact), &h, data.clone()).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (3, 1, 0),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 4);
    assert_eq!(
        (i.outcome, i.kind),
        (RowOutcome::Skipped, IssueKind::DuplicateInFile)
    );
    assert!(
        i.message_en
            .contains("name 张伟 for the same customer repeats row 2"),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh
            .contains("同一客户的联系人姓名 张伟 与本文件第 2 行重复"),
        "{}",
        i.message_zh
    );
    assert_eq!(contacts_of_customer(&w, &hw).await.len(), 2);
    assert_eq!(contacts_of_customer(&w, &tx).await.len(), 1);
    let zw = contacts_of_customer(&w, &hw)
        .await
        .into_iter()
        .find(|c| c.text("name") == Some("张伟"))
        .expect("张伟");
    let code = zw.code.clone().expect("code");
    assert_eq!(zw.text("title"), Some("经理"));
    // The same sheet again: every row a duplicate, in a dry run alike.
    let mut reports = Vec::new();
    for dry_run in [true, false] {
        let mut o = opts(Entity::Contact);
        o.dry_run = dry_run;
        let r = run(&w, &w.zhangsan, o, &h, data.clone()).await;
        assert_eq!(
            (r.created, r.skipped, r.rejected),
            (0, 4, 0),
            "dry run {dry_run}: {:#?}",
            r.issues
        );
        let i = issue(&r, 2);
        assert_eq!(
            (i.outcome, i.kind),
            (RowOutcome::Skipped, IssueKind::Duplicate)
        );
        assert!(
            i.message_en.contains(&format!(
                "name 张伟 for the same customer already belongs to 张伟 ({code})"
            )),
            "{}",
            i.message_en
        );
        assert!(
            i.message_zh
                .contains(&format!("同一客户的联系人姓名 张伟 已存在：张伟（{code}）")),
            "{}",
            i.message_zh
        );
        assert_eq!(issue(&r, 4).kind, IssueKind::DuplicateInFile);
        reports.push(said(&r));
    }
    assert_eq!(
        reports[0], reports[1],
        "a dry run reports what the run does"
    );
    assert_eq!(contacts_of(&w).await.len(), 3, "nothing created twice");
    // Update: the contact named is updated, the undo gives its title back.
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &h,
        vec![
            row("华为技术有限公司", "张伟", "总监"),
            row("华为技术有限公司", "李娜", ""),
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.rejected),
        (0, 1, 1, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(contacts_of(&w).await.len(), 3);
    let zw = contact_named(&w, "张伟").await;
    let zw = if zw.text("customer_id") == Some(hw.id.to_string().as_str()) {
        zw
    } else {
        contacts_of_customer(&w, &hw)
            .await
            .into_iter()
            .find(|c| c.text("name") == Some("张伟"))
            .expect("张伟")
    };
    assert_eq!(zw.text("title"), Some("总监"));
    assert_eq!(zw.code.as_deref(), Some(code.as_str()), "the same contact");
    w.crm
        .undo_import(&w.zhangsan, r.import_id.expect("id"))
        .await
        .expect("undo");
    let zw = contacts_of_customer(&w, &hw)
        .await
        .into_iter()
        .find(|c| c.text("name") == Some("张伟"))
        .expect("张伟");
    assert_eq!(zw.text("title"), Some("经理"), "the undo gives it back");
    assert_eq!(contacts_of(&w).await.len(), 3);
    // Fail: the duplicate fails the import, naming the contact.
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Fail;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![
            row("华为技术有限公司", "王芳", ""),
            row("华为技术有限公司", "张伟", ""),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.created, r.rejected),
        (ImportStatus::Failed, 0, 1),
        "{:#?}",
        r.issues
    );
    let i = issue(&r, 3);
    assert_eq!(
        (i.outcome, i.kind),
        (RowOutcome::Rejected, IssueKind::Duplicate)
    );
    assert!(
        i.message_en
            .contains(&format!("already belongs to 张伟 ({code})")),
        "{}",
        i.message_en
    );
    assert_eq!(contacts_of(&w).await.len(), 3, "nothing written");
}

/// A sheet naming a colleague who has left (deactivated) — as owner or in
/// a user-type custom field — reads back: a row updating a record that
/// holds that user there already keeps them; a row giving them to a new
/// record, or to a record that does not hold them, is refused naming the
/// user, as saving through the API is.
pub async fn import_keeps_a_deactivated_user_a_record_holds(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "am",
                "客户经理",
                "Account manager",
                crate::custom::CustomFieldType::User,
                &[],
                false,
            ),
        )
        .await
        .expect("user field");
    let kept = w
        .customer(&w.wangwu, "王五老客户有限公司", json!({"am": "wangwu"}))
        .await;
    let other = w.customer(&w.zhangsan, "张三客户有限公司", json!({})).await;
    let ww = w
        .crm
        .user(&w.admin, w.wangwu.user_id)
        .await
        .expect("wangwu");
    w.crm
        .update_user(
            &w.admin,
            ww.id,
            ww.version,
            crate::org::UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("wangwu leaves");
    let h = ["编号", "客户名称", "负责人", "客户经理"];
    let code = |r: &Record| r.code.clone().expect("code");
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &h,
        vec![
            // As exported: kept.
            vec![
                t(&code(&kept)),
                t("王五老客户有限公司"),
                t("wangwu"),
                t("wangwu"),
            ],
            // The leaver given to a record that does not hold them.
            vec![t(&code(&other)), t("张三客户有限公司"), t(""), t("wangwu")],
            // Or to a new one, as owner.
            vec![t(""), t("新客户有限公司"), t("wangwu"), t("")],
        ],
    )
    .await;
    assert_eq!(
        (r.unchanged, r.updated, r.created, r.rejected),
        (1, 0, 0, 2),
        "{:#?}",
        r.issues
    );
    for row in [3, 4] {
        let i = issue(&r, row);
        assert!(
            i.message_en.contains("wangwu is deactivated") && i.message_zh.contains("已停用"),
            "{i:?}"
        );
    }
    assert!(find(&w, "新客户有限公司").await.is_none());
}

/// The contacts of an archived customer (which stay in the contact lists)
/// read back as an export writes them: skipped as duplicates, unchanged
/// under the update policy and updated as through the API — naming the
/// customer by code or by name —; only a row adding a contact to the
/// archived customer is refused, saying so in both languages.
pub async fn import_contacts_of_an_archived_customer_read_back(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    new_contact(
        &w,
        &hw,
        json!({"name": "张伟", "mobile": "13800000001", "title": "经理"}),
    )
    .await;
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[hw.id])
        .await;
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let hw_code = hw.code.clone().expect("code");
    let h = ["所属客户", "客户编号", "姓名", "手机", "职务"];
    let row = |title: &str| {
        vec![
            t("华为技术有限公司"),
            t(&hw_code),
            t("张伟"),
            t("13800000001"),
            t(title),
        ]
    };
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &h,
        vec![row("经理")],
    )
    .await;
    assert_eq!(
        (r.skipped, r.created, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    o.file_hash = "same".into();
    let r = run(&w, &w.zhangsan, o, &h, vec![row("经理")]).await;
    assert_eq!(
        (r.unchanged, r.updated, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    o.file_hash = "title".into();
    let r = run(&w, &w.zhangsan, o, &h, vec![row("总监")]).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:#?}", r.issues);
    let titles: Vec<Option<String>> = contacts_of_customer(&w, &hw)
        .await
        .iter()
        .map(|c| c.text("title").map(str::to_string))
        .collect();
    assert_eq!(titles, vec![Some("总监".to_string())]);
    // A new contact is not added to the archived customer.
    let mut o = opts(Entity::Contact);
    o.file_hash = "new".into();
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![
            t("华为技术有限公司"),
            t(&hw_code),
            t("李娜"),
            t("13800000002"),
            t(""),
        ]],
    )
    .await;
    assert_eq!((r.created, r.rejected), (0, 1), "{:#?}", r.issues);
    let i = issue(&r, 2);
    assert!(
        i.message_en.contains("archived") && i.message_en.contains(&hw_code),
        "{}",
        i.message_en
    );
    assert!(
        i.message_zh.contains("已归档") && !i.message_zh.contains("archived"),
        "{}",
        i.message_zh
    );
    assert!(!i.message_zh.contains("找不到"), "{}", i.message_zh);
    assert_eq!(contacts_of_customer(&w, &hw).await.len(), 1);
}

/// A contact row with a mobile keeps its own key: a mobile no contact of
/// the customer has creates a contact beside a namesake without one. A
/// row without a mobile naming a name two contacts of the customer share
/// is refused, asking for the contact's code or mobile to tell which —
/// under every policy, in a dry run alike — and one naming a name only an
/// archived contact has meets that contact (live ones first).
pub async fn import_contact_rows_without_a_mobile_name_one_contact(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    new_contact(&w, &hw, json!({"name": "张伟", "title": "经理"})).await;
    let h = ["所属客户", "姓名", "手机", "职务"];
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &h,
        vec![vec![
            t("华为技术有限公司"),
            t("张伟"),
            t("13800000001"),
            t("工程师"),
        ]],
    )
    .await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (1, 0, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(
        contacts_of_customer(&w, &hw).await.len(),
        2,
        "a namesake created"
    );
    for policy in [
        DuplicatePolicy::Skip,
        DuplicatePolicy::Update,
        DuplicatePolicy::Fail,
    ] {
        for dry_run in [true, false] {
            let mut o = opts(Entity::Contact);
            o.policy = policy;
            o.dry_run = dry_run;
            let r = run(
                &w,
                &w.zhangsan,
                o,
                &h,
                vec![vec![t("华为技术有限公司"), t("张伟"), t(""), t("总监")]],
            )
            .await;
            assert_eq!(
                (r.created, r.updated, r.skipped, r.rejected),
                (0, 0, 0, 1),
                "{policy:?}, dry run {dry_run}: {:#?}",
                r.issues
            );
            let i = issue(&r, 2);
            assert_eq!(
                (i.outcome, i.kind),
                (RowOutcome::Rejected, IssueKind::Invalid)
            );
            assert!(
                i.message_en.contains(
                    "contact 张伟 matches 2 contacts of the customer: give its code (编号) or \
                     mobile to tell which"
                ),
                "{}",
                i.message_en
            );
            assert!(
                i.message_zh
                    .contains("联系人 张伟 对应该客户的 2 个联系人，请填写联系人编号或手机以区分"),
                "{}",
                i.message_zh
            );
        }
    }
    let titles: Vec<Option<String>> = contacts_of_customer(&w, &hw)
        .await
        .iter()
        .map(|c| c.text("title").map(str::to_string))
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(!titles.contains(&Some("总监".to_string())), "{titles:?}");
    // A name only an archived contact has names that contact: skipped as
    // its duplicate, refused under update until it is unarchived.
    let old = new_contact(&w, &hw, json!({"name": "老王"})).await;
    let report = w
        .crm
        .archive_records(&w.admin, Entity::Contact, &[old.id])
        .await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let r = run(
        &w,
        &w.zhangsan,
        opts(Entity::Contact),
        &h,
        vec![vec![t("华为技术有限公司"), t("老王"), t(""), t("")]],
    )
    .await;
    assert_eq!((r.created, r.skipped), (0, 1), "{:#?}", r.issues);
    let mut o = opts(Entity::Contact);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![vec![t("华为技术有限公司"), t("老王"), t(""), t("顾问")]],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (0, 0, 1),
        "{:#?}",
        r.issues
    );
    assert!(
        issue(&r, 2).message_en.contains("it is archived"),
        "{}",
        issue(&r, 2).message_en
    );
}

/// An individual customer (个人客户) whose name and phone — or name and
/// e-mail — are those of one individual customer of the company is that
/// customer's duplicate: the same sheet imported again skips it (a dry
/// run says the same) or, under `update`, updates it; nothing is created
/// twice. Two people sharing a name with different phones are two
/// customers, and a row whose name and phone two stored individuals share
/// is refused as ambiguous.
pub async fn import_finds_an_individual_by_name_and_phone(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let h = ["客户名称", "客户类型", "电话", "邮箱", "客户级别"];
    let person = |name: &str, phone: &str, email: &str, level: &str| {
        vec![t(name), t("个人客户"), t(phone), t(email), t(level)]
    };
    let data = vec![
        person("张伟", "13800000001", "", "C"),      // 2
        person("张伟", "13800000002", "", "C"),      // 3: another 张伟
        person("李娜", "", "lina@example.com", "C"), // 4
    ];
    let r = run(&w, &w.zhangsan, opts(Entity::Customer), &h, data.clone()).await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (3, 0, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(people(&w, "张伟").await.len(), 2, "two people of one name");
    let first = people(&w, "张伟")
        .await
        .into_iter()
        .find(|r| r.text("phone") == Some("13800000001"))
        .expect("张伟 13800000001");
    let code = first.code.clone().expect("code");
    // Again: skipped, in a dry run alike.
    let mut reports = Vec::new();
    for dry_run in [true, false] {
        let mut o = opts(Entity::Customer);
        o.dry_run = dry_run;
        let r = run(&w, &w.zhangsan, o, &h, data.clone()).await;
        assert_eq!(
            (r.created, r.skipped, r.rejected),
            (0, 3, 0),
            "dry run {dry_run}: {:#?}",
            r.issues
        );
        let i = issue(&r, 2);
        assert_eq!(
            (i.outcome, i.kind),
            (RowOutcome::Skipped, IssueKind::Duplicate)
        );
        assert!(
            i.message_en.contains(&format!(
                "name and phone 张伟, 13800000001 already belongs to 张伟 ({code})"
            )),
            "{}",
            i.message_en
        );
        assert!(
            i.message_zh.contains(&format!(
                "姓名及电话 张伟, 13800000001 已存在：张伟（{code}）"
            )),
            "{}",
            i.message_zh
        );
        assert!(
            issue(&r, 4).message_en.contains("name and e-mail 李娜"),
            "{}",
            issue(&r, 4).message_en
        );
        reports.push(said(&r));
    }
    assert_eq!(
        reports[0], reports[1],
        "a dry run reports what the run does"
    );
    assert_eq!(
        customers(&w, &w.admin).await.len(),
        3,
        "nothing created twice"
    );
    // Update: each row updates its own person.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &h,
        vec![
            person("张伟", "13800000001", "", "A"),
            person("张伟", "13800000002", "", "C"),
            person("李娜", "", "lina@example.com", "B"),
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.rejected),
        (0, 2, 1, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(
        customers(&w, &w.admin).await.len(),
        3,
        "nothing created twice"
    );
    let levels: Vec<(Option<String>, Option<String>)> = people(&w, "张伟")
        .await
        .iter()
        .map(|r| {
            (
                r.text("phone").map(str::to_string),
                r.text("level").map(str::to_string),
            )
        })
        .collect();
    assert!(
        levels.contains(&(Some("13800000001".into()), Some("A".into())))
            && levels.contains(&(Some("13800000002".into()), Some("C".into()))),
        "{levels:?}"
    );
    assert_eq!(people(&w, "李娜").await[0].text("level"), Some("B"));
    // The same name with a new phone is a new person (the shared name is
    // no duplicate); the phone of another person is a possible duplicate
    // only, as before.
    let r = run(
        &w,
        &w.zhangsan,
        o.clone(),
        &h,
        vec![
            person("张伟", "13800000003", "", "C"),
            person("王芳", "13800000001", "", "C"),
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (2, 0, 0),
        "{:#?}",
        r.issues
    );
    assert_eq!(people(&w, "张伟").await.len(), 3);
    // Two stored people with one name and one phone: the row cannot tell
    // which it names.
    w.customer(
        &w.zhangsan,
        "赵强",
        json!({"kind": "individual", "phone": "13900000009"}),
    )
    .await;
    w.customer(
        &w.zhangsan,
        "赵强",
        json!({"kind": "individual", "phone": "13900000009"}),
    )
    .await;
    let r = run(
        &w,
        &w.zhangsan,
        o,
        &h,
        vec![person("赵强", "13900000009", "", "A")],
    )
    .await;
    assert_eq!(
        (r.created, r.updated, r.rejected),
        (0, 0, 1),
        "{:#?}",
        r.issues
    );
    assert!(
        issue(&r, 2).message_en.contains(
            "name and phone 赵强, 13900000009 matches 2 individual customers: give the \
             customer's code (编号) to tell which"
        ),
        "{}",
        issue(&r, 2).message_en
    );
}

/// A batched contact import without mobiles, interrupted and run again,
/// continues after its last committed batch: a row naming a contact a
/// committed row created (same customer, same name) is a duplicate within
/// the file, as it was the first time; nobody is created twice.
pub async fn import_resumed_finds_contacts_without_a_mobile_by_name(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let hw = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let h = headers(&["所属客户", "姓名", "手机"]);
    let row = |name: &str| vec![t("华为技术有限公司"), t(name), t("")];
    let data = vec![
        row("张伟"), // 2
        row("李娜"), // 3
        row("张伟"), // 4: repeats row 2
        row("王芳"), // 5
        row("李娜"), // 6: repeats row 3
    ];
    let mut o = opts(Entity::Contact);
    o.commit = CommitMode::Batches;
    o.batch_size = 2;
    o.file_name = "contacts.xlsx".into();
    o.file_hash = "sha256:contacts".into();
    {
        let mut s = w
            .crm
            .begin_import(&w.zhangsan, o.clone(), &h)
            .await
            .expect("begin");
        let all = rows(data.clone());
        s.push(&all[0..2]).await.expect("batch 1");
        // Interrupted: dropped without finish.
    }
    assert_eq!(contacts_of_customer(&w, &hw).await.len(), 2);
    let mut s = w.crm.begin_import(&w.zhangsan, o, &h).await.expect("again");
    assert_eq!(s.resume_after(), Some(3));
    for chunk in rows(data).chunks(2) {
        s.push(chunk).await.expect("push");
    }
    let r = s.finish().await.expect("finish");
    assert_eq!(r.status, ImportStatus::Done);
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (3, 2, 0),
        "{:#?}",
        r.issues
    );
    for (row, first) in [(4, 2), (6, 3)] {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::DuplicateInFile);
        assert!(
            i.message_en.contains(&format!("repeats row {first}")),
            "{}",
            i.message_en
        );
    }
    let mut names: Vec<String> = contacts_of_customer(&w, &hw)
        .await
        .iter()
        .filter_map(|c| c.text("name").map(str::to_string))
        .collect();
    names.sort();
    let mut want = vec!["张伟".to_string(), "李娜".into(), "王芳".into()];
    want.sort();
    assert_eq!(names, want, "nobody created twice");
}

/// A contact row whose customer column names one customer and whose
/// customer code column another (customers and contacts exported from one
/// database into another, where the codes were given anew) names two
/// customers: it is refused, saying so, rather than attached to the code's
/// customer. A name no customer has (the code's customer renamed since)
/// gives way to the code; a name several customers share names the code's
/// customer when it is one of them, in both spellings of the headers.
pub async fn import_contact_row_naming_two_customers_is_refused(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let muller = w
        .customer(&w.zhangsan, "Müller & Söhne GmbH", json!({}))
        .await;
    let acme = w.customer(&w.zhangsan, "Acme Corp.", json!({})).await;
    let muller_code = muller.code.clone().expect("code");
    let acme_code = acme.code.clone().expect("code");
    // Two individual customers sharing a name.
    let zw1 = w
        .customer(&w.zhangsan, "张伟", json!({"kind": "individual"}))
        .await;
    let zw2 = w
        .customer(&w.zhangsan, "张伟", json!({"kind": "individual"}))
        .await;
    let zw2_code = zw2.code.clone().expect("code");
    for english in [false, true] {
        let h = if english {
            ["Customer", "Customer code", "Name", "Mobile"]
        } else {
            ["所属客户", "客户编号", "姓名", "手机"]
        };
        let suffix = if english { "en" } else { "zh" };
        let r = run(
            &w,
            &w.zhangsan,
            opts(Entity::Contact),
            &h,
            vec![
                // 2: Acme by name, Müller by code: refused.
                vec![
                    t("Acme Corp."),
                    t(&muller_code),
                    t(&format!("Wrong Place {suffix}")),
                    t(if english {
                        "+1 646 555 0177"
                    } else {
                        "+1 646 555 0178"
                    }),
                ],
                // 3: a name no customer has: the code's customer.
                vec![
                    t("Müller und Söhne (alt)"),
                    t(&muller_code),
                    t(&format!("Renamed {suffix}")),
                    t(""),
                ],
                // 4: the same customer both ways, the name spelled otherwise.
                vec![
                    t("ACME CORP"),
                    t(&acme_code),
                    t(&format!("Right Place {suffix}")),
                    t(""),
                ],
                // 5: a shared name, the code one of its customers.
                vec![
                    t("张伟"),
                    t(&zw2_code),
                    t(&format!("张伟的助理 {suffix}")),
                    t(""),
                ],
                // 6: a shared name, the code another customer's.
                vec![
                    t("张伟"),
                    t(&acme_code),
                    t(&format!("Nobody {suffix}")),
                    t(""),
                ],
                // 7: a shared name alone names no one.
                vec![
                    t("张伟"),
                    t(""),
                    t(&format!("Nobody either {suffix}")),
                    t(""),
                ],
            ],
        )
        .await;
        assert_eq!(
            (r.created, r.rejected),
            (3, 3),
            "english {english}: {:#?}",
            r.issues
        );
        for row in [2, 6] {
            let i = issue(&r, row);
            assert_eq!(
                (i.outcome, i.kind),
                (RowOutcome::Rejected, IssueKind::Invalid)
            );
            assert!(
                i.message_en
                    .contains("is not the customer of Customer code")
                    && i.message_en.contains("names two customers"),
                "{}",
                i.message_en
            );
            assert!(i.message_zh.contains("不是同一个客户"), "{}", i.message_zh);
        }
        // Each language its own words.
        let i = issue(&r, 7);
        assert!(
            i.message_en
                .contains("'张伟' is the name of several customers; give the code")
                && !i.message_en.contains("多条记录同名"),
            "{}",
            i.message_en
        );
        assert!(
            i.message_zh
                .contains("「张伟」是多个客户的名称，请填写编号"),
            "{}",
            i.message_zh
        );
        let under = |c: &Record, name: String| {
            let c = c.clone();
            let w = &w;
            async move {
                contacts_of_customer(w, &c)
                    .await
                    .iter()
                    .any(|r| r.text("name") == Some(name.as_str()))
            }
        };
        assert!(under(&muller, format!("Renamed {suffix}")).await);
        assert!(under(&acme, format!("Right Place {suffix}")).await);
        assert!(under(&zw2, format!("张伟的助理 {suffix}")).await);
        assert!(!under(&zw1, format!("张伟的助理 {suffix}")).await);
        assert!(
            !contacts_of(&w)
                .await
                .iter()
                .any(|r| r.text("name") == Some(format!("Wrong Place {suffix}").as_str())),
            "nothing attached to the code's customer"
        );
    }
}

/// A contact without a mobile is named by its name spelling aside, as
/// customers' names are: letter case, accents and `ß`, decomposed accents,
/// full-width letters and the kind of apostrophe do not make another
/// contact — neither against the store (a contact import skips such rows
/// as duplicates, a customer import's contact group updates the stored
/// contact under `update`) nor between two rows of one file; a name with
/// other words (`Ann A Lee` beside `Anna Lee`) is another contact.
pub async fn import_matches_contact_names_spelling_aside(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let c = w.customer(&w.admin, "Weiß Handels GmbH", json!({})).await;
    let code = c.code.clone().expect("code");
    new_contact(&w, &c, json!({"name": "Jürgen Weiß", "title": "CEO"})).await;
    new_contact(&w, &c, json!({"name": "Bob O'Neil"})).await;
    new_contact(&w, &c, json!({"name": "Anna Lee"})).await;
    let h = ["所属客户", "姓名", "手机"];
    let row = |name: &str| vec![t("Weiß Handels GmbH"), t(name), t("")];
    let r = run(
        &w,
        &w.admin,
        opts(Entity::Contact),
        &h,
        vec![
            row("JÜRGEN WEISS"),        // 2: stored
            row("jürgen weiß"),         // 3: stored
            row("Ju\u{308}rgen Weiss"), // 4: stored (decomposed)
            row("Bob O’Neil"),          // 5: stored
            row("ＢＯＢ Ｏ'ＮＥＩＬ"),  // 6: stored (full width)
            row("Ann A Lee"),           // 7: new
            row("Clara Schön"),         // 8: new
            row("CLARA SCHON"),         // 9: repeats row 8
        ],
    )
    .await;
    assert_eq!(
        (r.created, r.skipped, r.rejected),
        (2, 6, 0),
        "{:#?}",
        r.issues
    );
    for row in [2, 5] {
        assert_eq!(issue(&r, row).kind, IssueKind::Duplicate, "row {row}");
    }
    for (row, first) in [(3, 2), (4, 2), (6, 5), (9, 8)] {
        let i = issue(&r, row);
        assert_eq!(i.kind, IssueKind::DuplicateInFile, "row {row}");
        assert!(
            i.message_en.contains(&format!("repeats row {first}")),
            "{}",
            i.message_en
        );
    }
    assert_eq!(contacts_of_customer(&w, &c).await.len(), 5);
    // A customer import's contact groups, under update.
    let mut o = opts(Entity::Customer);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &[
            "编号",
            "客户名称",
            "联系人1姓名",
            "联系人1职务",
            "联系人2姓名",
            "联系人2职务",
        ],
        vec![vec![
            t(&code),
            t("Weiß Handels GmbH"),
            t("Ju\u{308}rgen WEISS"),
            t("CTO"),
            t("BOB O’NEIL"),
            t("Buyer"),
        ]],
    )
    .await;
    assert_eq!(
        (r.rejected, r.contacts_created, r.contacts_updated),
        (0, 0, 2),
        "{:#?}",
        r.issues
    );
    let all = contacts_of_customer(&w, &c).await;
    assert_eq!(all.len(), 5, "nobody added twice");
    assert!(
        all.iter().any(|r| r.text("title") == Some("CTO")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|r| r.text("title") == Some("Buyer")),
        "{all:?}"
    );
}

/// A user row without a department puts the new user in the importer's
/// department, as `user add` without `--dept` does (the administrator's:
/// the root), never in none — their customers would drop out of every
/// department-scoped view —; an updated user keeps theirs. A row may name
/// as superior a user an earlier row of the file creates, by username in
/// any letter case or by display name, in the same batch or a later one,
/// in a dry run alike; a later row's user is not known yet. The undo
/// removes them all.
pub async fn import_users_default_their_department_and_name_earlier_rows(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let root = w.admin.department_id;
    assert!(root.is_some());
    let h = ["用户名", "姓名", "上级"];
    let data = vec![
        vec![t("mschmidt"), t("Maria Schmidt"), t("")], // 2
        vec![t("jdoe"), t("John Doe"), t("mschmidt")],  // 3: same batch
        vec![t("akim"), t("Anna Kim"), t("MSCHMIDT")],  // 4: next batch
        vec![t("bpark"), t("Bo Park"), t("John Doe")],  // 5: by display name
        vec![t("clee"), t("Chris Lee"), t("zlater")],   // 6: a later row's
        vec![t("zlater"), t("Zed Later"), t("")],       // 7
    ];
    for commit in [CommitMode::Atomic, CommitMode::Batches] {
        let mut o = opts(Entity::User);
        o.dry_run = true;
        o.commit = commit;
        let dry = run(&w, &w.admin, o.clone(), &h, data.clone()).await;
        o.dry_run = false;
        let r = run(&w, &w.admin, o, &h, data.clone()).await;
        assert_eq!(said(&dry), said(&r), "a dry run reports what the run does");
        assert_eq!(
            (r.created, r.rejected),
            (5, 1),
            "{commit:?}: {:#?}",
            r.issues
        );
        let i = issue(&r, 6);
        assert!(
            i.message_en.contains("no user 'zlater'"),
            "{}",
            i.message_en
        );
        let user = |name: &'static str| {
            let w = &w;
            async move {
                w.crm
                    .user_by_username(&w.admin, name)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            }
        };
        let ms = user("mschmidt").await;
        assert_eq!(ms.department_id, root, "the importer's department");
        let jd = user("jdoe").await;
        assert_eq!(jd.superior_id, Some(ms.id));
        assert_eq!(user("akim").await.superior_id, Some(ms.id));
        assert_eq!(user("bpark").await.superior_id, Some(jd.id));
        assert_eq!(user("zlater").await.department_id, root);
        w.crm
            .undo_import(&w.admin, r.import_id.expect("id"))
            .await
            .expect("undo");
        for name in ["mschmidt", "jdoe", "akim", "bpark", "zlater"] {
            assert!(
                w.crm.user_by_username(&w.admin, name).await.is_err(),
                "{name} undone"
            );
        }
    }
    // An update without a department column leaves the department alone.
    let mut o = opts(Entity::User);
    o.policy = DuplicatePolicy::Update;
    let r = run(
        &w,
        &w.admin,
        o,
        &["用户名", "姓名"],
        vec![vec![t("zhangsan"), t("张三丰")]],
    )
    .await;
    assert_eq!(r.updated, 1, "{:#?}", r.issues);
    let zs = w
        .crm
        .user_by_username(&w.admin, "zhangsan")
        .await
        .expect("zhangsan");
    assert_eq!(zs.department_id, Some(w.group1));
}

/// A custom field without an English label heads its English template
/// column with its label (which the import reads back), never with its
/// internal key; with one, with that.
pub async fn english_templates_head_custom_fields_with_their_labels(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let mut plain = new_custom(
        Entity::Customer,
        "cf_region_x",
        "大区",
        "",
        crate::custom::CustomFieldType::Text,
        &[],
        false,
    );
    plain.label_en = None;
    w.crm
        .define_custom_field(&w.admin, plain)
        .await
        .expect("field");
    w.crm
        .define_custom_field(
            &w.admin,
            new_custom(
                Entity::Customer,
                "cf_capital",
                "注册资本",
                "Capital",
                crate::custom::CustomFieldType::Number,
                &[],
                false,
            ),
        )
        .await
        .expect("field");
    let cols = w
        .crm
        .template_columns(&w.admin, Entity::Customer, 0)
        .await
        .expect("columns");
    let col = |key: &str| {
        cols.iter()
            .find(|c| c.key == key)
            .unwrap_or_else(|| panic!("no {key}: {cols:?}"))
    };
    assert_eq!(col("custom.cf_region_x").header_en, "大区");
    assert_eq!(col("custom.cf_capital").header_en, "Capital");
    // The English header reads back as the field.
    let h = vec![
        "Name".to_string(),
        col("custom.cf_region_x").header_en.clone(),
    ];
    let map = w
        .crm
        .map_headers(&w.admin, Entity::Customer, &h)
        .await
        .expect("map");
    assert_eq!(
        map.roles[1],
        crate::import::ColumnRole::Field("custom.cf_region_x".into())
    );
}
