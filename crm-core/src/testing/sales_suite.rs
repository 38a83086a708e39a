//! Sales scenarios: approval flows (and the documents built on them), run
//! through [`Crm`](crate::crm::Crm) against each backend.

/// Lists the sales scenarios for [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! sales_scenarios {
    ($each:path; $make:expr) => {
        $each!(
            $crate::testing::sales_suite::quote_export_tells_the_discount_off_list,
            crm_quote_export_tells_the_discount_off_list,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_events_hold_their_facts_and_no_empty_changes,
            crm_sales_events_hold_their_facts_and_no_empty_changes,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_activity_announces_the_customer,
            crm_sales_activity_announces_the_customer,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payment_approvals_of_one_contract_approved_at_once,
            crm_sales_payment_approvals_of_one_contract_approved_at_once,
            $make
        );
        $each!(
            $crate::testing::sales_suite::deliveries_recorded_at_once_are_each_saved,
            crm_sales_deliveries_recorded_at_once_are_each_saved,
            $make
        );
        $each!(
            $crate::testing::sales_suite::free_lines_named_as_products_count_their_discount,
            crm_sales_free_lines_named_as_products_count_their_discount,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_read_share_adds_no_sales_documents,
            crm_sales_a_read_share_adds_no_sales_documents,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_customer_awaiting_approval_is_not_recycled,
            crm_sales_a_customer_awaiting_approval_is_not_recycled,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_customer_transferred_with_its_documents,
            crm_sales_a_customer_transferred_with_its_documents,
            $make
        );
        $each!(
            $crate::testing::sales_suite::contract_end_date_is_not_before_its_signing_date,
            crm_sales_contract_end_date_is_not_before_its_signing_date,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payment_states_show_withdrawal_and_void_reason,
            crm_sales_payment_states_show_withdrawal_and_void_reason,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_customer_with_an_executing_contract_stays,
            crm_sales_a_customer_with_an_executing_contract_stays,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_payment_approval_is_withdrawn_by_the_contracts_owner,
            crm_sales_a_payment_approval_is_withdrawn_by_the_contracts_owner,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_signed_opportunity_is_not_lost,
            crm_sales_a_signed_opportunity_is_not_lost,
            $make
        );
        $each!(
            $crate::testing::sales_suite::contract_changes_and_plans_reach_the_host,
            crm_sales_contract_changes_and_plans_reach_the_host,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_superior_step_follows_a_new_superior,
            crm_sales_a_superior_step_follows_a_new_superior,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_contract_keeps_its_dates_deal_and_customer_in_line,
            crm_sales_a_contract_keeps_its_dates_deal_and_customer_in_line,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_converted_quote_stays_its_owners_deal,
            crm_sales_a_converted_quote_stays_its_owners_deal,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_of_a_customer_out_of_reach_is_not_converted,
            crm_sales_quote_of_a_customer_out_of_reach_is_not_converted,
            $make
        );
        $each!(
            $crate::testing::sales_suite::opportunity_close_date_is_cleared_unless_its_stage_requires_it,
            crm_sales_opportunity_close_date_is_cleared_unless_its_stage_requires_it,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_discount_counts_prices_below_list_price,
            crm_sales_quote_discount_counts_prices_below_list_price,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_opportunity_is_the_customers_and_readable,
            crm_sales_quote_opportunity_is_the_customers_and_readable,
            $make
        );
        $each!(
            $crate::testing::sales_suite::opportunity_win_needs_every_stage_and_closed_ones_keep_their_amount,
            crm_sales_opportunity_win_needs_every_stage_and_closed_ones_keep_their_amount,
            $make
        );
        $each!(
            $crate::testing::sales_suite::product_names_codes_and_line_prices_are_checked,
            crm_sales_product_names_codes_and_line_prices_are_checked,
            $make
        );
        $each!(
            $crate::testing::sales_suite::texts_holding_nul_are_cleaned_or_refused,
            crm_sales_texts_holding_nul_are_cleaned_or_refused,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_amounts_are_cny_and_quantities_do_not_wrap,
            crm_sales_amounts_are_cny_and_quantities_do_not_wrap,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_multi_step_countersign_and_events,
            crm_sales_approval_multi_step_countersign_and_events,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_reject_return_withdraw_and_resubmit,
            crm_sales_approval_reject_return_withdraw_and_resubmit,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_flow_versions_and_permissions,
            crm_sales_approval_flow_versions_and_permissions,
            $make
        );
        $each!(
            $crate::testing::sales_suite::products_categories_search_and_paging,
            crm_sales_products_categories_search_and_paging,
            $make
        );
        $each!(
            $crate::testing::sales_suite::opportunity_stages_scope_transfer_and_forecast,
            crm_sales_opportunity_stages_scope_transfer_and_forecast,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_discount_approval_versions_and_contract,
            crm_sales_quote_discount_approval_versions_and_contract,
            $make
        );
        $each!(
            $crate::testing::sales_suite::contract_approval_payments_invoices_and_receivables,
            crm_sales_contract_approval_payments_invoices_and_receivables,
            $make
        );
        $each!(
            $crate::testing::sales_suite::department_pipelines_and_deliveries,
            crm_sales_department_pipelines_and_deliveries,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_generic_submit_refuses_sales_documents,
            crm_sales_approval_generic_submit_refuses_sales_documents,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_does_not_move_closed_contracts,
            crm_sales_approval_does_not_move_closed_contracts,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payment_plan_writes_are_serialised,
            crm_sales_payment_plan_writes_are_serialised,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_documents_follow_the_opportunity_and_its_stage,
            crm_sales_documents_follow_the_opportunity_and_its_stage,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_versions_follow_read_rights,
            crm_sales_quote_versions_follow_read_rights,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_applicant_never_approves_own_submission,
            crm_sales_approval_applicant_never_approves_own_submission,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_flows_name_only_active_people_of_the_company,
            crm_sales_approval_flows_name_only_active_people_of_the_company,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_exports_hold_to_read_and_export_scope,
            crm_sales_sales_exports_hold_to_read_and_export_scope,
            $make
        );
        $each!(
            $crate::testing::sales_suite::open_opportunity_counts_hold_against_concurrent_writes,
            crm_sales_open_opportunity_counts_hold_against_concurrent_writes,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_concurrent_first_submissions_make_one_instance,
            crm_sales_approval_concurrent_first_submissions_make_one_instance,
            $make
        );
        $each!(
            $crate::testing::sales_suite::pipelines_defined_concurrently_leave_one_active,
            crm_sales_pipelines_defined_concurrently_leave_one_active,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_restart_from_rejecting_step_approves_steps_that_now_apply,
            crm_sales_approval_restart_from_rejecting_step_approves_steps_that_now_apply,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_resubmitted_by_new_owner_or_after_applicant_left,
            crm_sales_approval_resubmitted_by_new_owner_or_after_applicant_left,
            $make
        );
        $each!(
            $crate::testing::sales_suite::terminating_a_contract_withdraws_its_pending_approval,
            crm_sales_terminating_a_contract_withdraws_its_pending_approval,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payments_awaiting_approval_hold_the_contract_open,
            crm_sales_payments_awaiting_approval_hold_the_contract_open,
            $make
        );
        $each!(
            $crate::testing::sales_suite::finishing_needs_a_fully_collected_contract,
            crm_sales_finishing_needs_a_fully_collected_contract,
            $make
        );
        $each!(
            $crate::testing::sales_suite::invoices_and_plans_are_checked_like_payments,
            crm_sales_invoices_and_plans_are_checked_like_payments,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_superior_chain_passes_over_inactive_managers,
            crm_sales_approval_superior_chain_passes_over_inactive_managers,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_of_a_document_in_the_recycle_bin_cannot_be_decided,
            crm_sales_approval_of_a_document_in_the_recycle_bin_cannot_be_decided,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_resubmission_runs_on_the_active_flow_version,
            crm_sales_approval_resubmission_runs_on_the_active_flow_version,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_inactive_approvers_are_not_waited_for,
            crm_sales_approval_inactive_approvers_are_not_waited_for,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approval_of_a_sales_document_is_withdrawn_by_its_owner,
            crm_sales_approval_of_a_sales_document_is_withdrawn_by_its_owner,
            $make
        );
        $each!(
            $crate::testing::sales_suite::contracts_owed_money_stay_in_the_working_set,
            crm_sales_contracts_owed_money_stay_in_the_working_set,
            $make
        );
        $each!(
            $crate::testing::sales_suite::merged_away_customer_is_not_restored,
            crm_sales_merged_away_customer_is_not_restored,
            $make
        );
        $each!(
            $crate::testing::sales_suite::merge_refuses_a_quote_added_meanwhile,
            crm_sales_merge_refuses_a_quote_added_meanwhile,
            $make
        );
        $each!(
            $crate::testing::sales_suite::merge_refuses_a_contract_added_meanwhile,
            crm_sales_merge_refuses_a_contract_added_meanwhile,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_lists_take_any_window_and_page,
            crm_sales_sales_lists_take_any_window_and_page,
            $make
        );
        $each!(
            $crate::testing::sales_suite::finished_contracts_still_take_their_deliveries,
            crm_sales_finished_contracts_still_take_their_deliveries,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_amounts_have_a_ceiling_and_sums_stay_exact,
            crm_sales_amounts_have_a_ceiling_and_sums_stay_exact,
            $make
        );
        $each!(
            $crate::testing::sales_suite::contract_takes_lines_or_an_amount,
            crm_sales_contract_takes_lines_or_an_amount,
            $make
        );
        $each!(
            $crate::testing::sales_suite::expired_quote_does_not_become_a_contract,
            crm_sales_expired_quote_does_not_become_a_contract,
            $make
        );
        $each!(
            $crate::testing::sales_suite::expired_quote_pending_approval_is_not_approved,
            crm_sales_expired_quote_pending_approval_is_not_approved,
            $make
        );
        $each!(
            $crate::testing::sales_suite::documents_pending_approval_stay_until_decided,
            crm_sales_documents_pending_approval_stay_until_decided,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approvers_read_what_they_decide,
            crm_sales_approvers_read_what_they_decide,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_payment_recorded_by_mistake_is_voided,
            crm_sales_a_payment_recorded_by_mistake_is_voided,
            $make
        );
        $each!(
            $crate::testing::sales_suite::an_issued_invoice_recorded_by_mistake_is_voided,
            crm_sales_an_issued_invoice_recorded_by_mistake_is_voided,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_facts_are_dated_at_most_today,
            crm_sales_sales_facts_are_dated_at_most_today,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_validity_dates_have_not_passed,
            crm_sales_quote_validity_dates_have_not_passed,
            $make
        );
        $each!(
            $crate::testing::sales_suite::approved_contract_keeps_what_was_approved,
            crm_sales_approved_contract_keeps_what_was_approved,
            $make
        );
        $each!(
            $crate::testing::sales_suite::lost_opportunity_is_reopened_for_its_documents,
            crm_sales_lost_opportunity_is_reopened_for_its_documents,
            $make
        );
        $each!(
            $crate::testing::sales_suite::quote_refusals_name_the_state_and_what_to_do,
            crm_sales_quote_refusals_name_the_state_and_what_to_do,
            $make
        );
        $each!(
            $crate::testing::sales_suite::rates_read_as_percentages_and_refused_quotes_take_no_number,
            crm_sales_rates_read_as_percentages_and_refused_quotes_take_no_number,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sibling_product_categories_have_distinct_names,
            crm_sales_sibling_product_categories_have_distinct_names,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_binned_products_code_stays_taken,
            crm_sales_a_binned_products_code_stays_taken,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payments_and_invoices_are_not_dated_before_the_contract,
            crm_sales_payments_and_invoices_are_not_dated_before_the_contract,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_terminated_contracts_invoices_and_payments_are_still_voided,
            crm_sales_a_terminated_contracts_invoices_and_payments_are_still_voided,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payment_plan_keeps_instalments_already_paid,
            crm_sales_payment_plan_keeps_instalments_already_paid,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_texts_are_held_to_their_lengths,
            crm_sales_sales_texts_are_held_to_their_lengths,
            $make
        );
        $each!(
            $crate::testing::sales_suite::overdue_money_is_not_put_off_by_new_terms,
            crm_sales_overdue_money_is_not_put_off_by_new_terms,
            $make
        );
        $each!(
            $crate::testing::sales_suite::discontinued_products_stay_on_the_lines_that_hold_them,
            crm_sales_discontinued_products_stay_on_the_lines_that_hold_them,
            $make
        );
        $each!(
            $crate::testing::sales_suite::invoice_numbers_stored_as_typed_still_count,
            crm_sales_invoice_numbers_stored_as_typed_still_count,
            $make
        );
        $each!(
            $crate::testing::sales_suite::receipt_numbers_are_one_whatever_their_spelling,
            crm_sales_receipt_numbers_are_one_whatever_their_spelling,
            $make
        );
        $each!(
            $crate::testing::sales_suite::product_prices_stay_under_the_sales_ceiling,
            crm_sales_product_prices_stay_under_the_sales_ceiling,
            $make
        );
        $each!(
            $crate::testing::sales_suite::refusals_name_the_field_and_say_it_once,
            crm_sales_refusals_name_the_field_and_say_it_once,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_submission_routes_on_the_contract_it_read,
            crm_sales_a_submission_routes_on_the_contract_it_read,
            $make
        );
        $each!(
            $crate::testing::sales_suite::a_resubmission_keeps_what_its_steps_read,
            crm_sales_a_resubmission_keeps_what_its_steps_read,
            $make
        );
        $each!(
            $crate::testing::sales_suite::sales_flow_conditions_name_what_documents_hold,
            crm_sales_sales_flow_conditions_name_what_documents_hold,
            $make
        );
        $each!(
            $crate::testing::sales_suite::opportunity_and_contract_lines_stay_under_the_ceiling,
            crm_sales_opportunity_and_contract_lines_stay_under_the_ceiling,
            $make
        );
        $each!(
            $crate::testing::sales_suite::issued_invoices_fulfil_the_open_invoice_plans,
            crm_sales_issued_invoices_fulfil_the_open_invoice_plans,
            $make
        );
        $each!(
            $crate::testing::sales_suite::payments_and_invoices_recorded_at_once_are_retried,
            crm_sales_payments_and_invoices_recorded_at_once_are_retried,
            $make
        );
    };
}

use crate::approval::{
    ApproverRule, Condition, Facts, Fallback, FlowDef, RejectTo, Restart, SignMode, Status,
    StepDef, SubmitRequest,
};
use crate::error::Error;
use crate::store::Store;
use crate::testing::service_suite::World;
use std::sync::Arc;
use uuid::Uuid;

fn step(name: &str, approvers: ApproverRule, mode: SignMode) -> StepDef {
    StepDef {
        name: name.into(),
        conditions: Vec::new(),
        approvers,
        mode,
        fallback: Fallback::AutoPass,
    }
}

/// 直属上级 → (≥ ¥1,000,000) 总经理会签 (admin and 赵六).
fn contract_flow(w: &World, restart: Restart) -> FlowDef {
    let mut big = step(
        "总经理会签",
        ApproverRule::Users {
            users: vec![w.admin.user_id.0, w.zhaoliu.user_id.0],
        },
        SignMode::All,
    );
    big.conditions = vec![Condition::AmountAtLeast { minor: 100_000_000 }];
    FlowDef {
        steps: vec![
            step(
                "直属上级",
                ApproverRule::Superior { level: 1 },
                SignMode::Any,
            ),
            big,
        ],
        restart,
    }
}

/// A document type without sales effects, submitted through the generic
/// `submit_for_approval` in the engine scenarios.
const GENERIC_DOC: &str = "purchase_order";

fn request(doc: Uuid, minor: i64) -> SubmitRequest {
    SubmitRequest {
        doc_type: GENERIC_DOC.into(),
        document_id: doc,
        // A code names one document (one approval) of its type.
        document_code: Some(format!("CG-{:X}", doc.as_u128())),
        title: Some("华为服务器采购合同".into()),
        facts: Facts {
            amount_minor: Some(minor),
            kind: Some("sales".into()),
            discount_bp: None,
        },
        picked: Vec::new(),
        comment: Some("请审批".into()),
    }
}

async fn ack_all(w: &World) {
    let all = w.crm.pending_events("erp", 10_000).await.expect("pending");
    if let Some(last) = all.last() {
        w.crm.ack_events("erp", last.seq).await.expect("ack");
    }
}

async fn event_types(w: &World) -> Vec<String> {
    w.crm
        .pending_events("erp", 10_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.event.event_type)
        .collect()
}

/// A big purchase order goes to the applicant's superior, then to a 会签 step
/// where both must approve; outsiders cannot act, pending lists follow the
/// flow, every action is recorded and the host gets `purchase_order.approved`.
pub async fn approval_multi_step_countersign_and_events(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let flow = w
        .crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "合同审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("define");
    assert_eq!(flow.flow_version, 1);
    ack_all(&w).await;
    let doc = Uuid::from_u128(0xD0C1);
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 150_000_000))
        .await
        .expect("submit");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.current_step.as_deref(), Some("直属上级"));
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    // Submitting again while pending is refused.
    assert!(matches!(
        w.crm
            .submit_for_approval(&w.zhangsan, request(doc, 150_000_000))
            .await,
        Err(Error::InvalidState(_))
    ));
    // Outsiders cannot act; one who is not involved cannot even see it.
    match w.crm.approve(&w.wangwu, a.id, None).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("wangwu approving: {other:?}"),
    }
    match w.crm.approve(&w.admin, a.id, None).await {
        Err(Error::Forbidden(_)) => {}
        other => panic!("admin approving step one: {other:?}"),
    }
    let mine = w.crm.pending_approvals(&w.lisi).await.expect("pending");
    assert_eq!(mine.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a.id]);
    assert!(
        w.crm
            .pending_approvals(&w.admin)
            .await
            .expect("pending")
            .is_empty()
    );
    let a = w
        .crm
        .approve(&w.lisi, a.id, Some("同意"))
        .await
        .expect("lisi");
    assert_eq!(a.current_step.as_deref(), Some("总经理会签"));
    assert!(
        w.crm
            .pending_approvals(&w.lisi)
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(
        w.crm.pending_approvals(&w.zhaoliu).await.expect("p").len(),
        1
    );
    let a = w.crm.approve(&w.admin, a.id, None).await.expect("admin");
    assert_eq!(a.status, Status::Pending, "会签 waits for everyone");
    assert_eq!(a.pending_with, vec![w.zhaoliu.user_id.0]);
    assert!(w.crm.approve(&w.admin, a.id, None).await.is_err());
    let a = w
        .crm
        .approve(&w.zhaoliu, a.id, Some("可以签"))
        .await
        .expect("zhaoliu");
    assert_eq!(a.status, Status::Approved);
    assert!(a.pending_with.is_empty());
    assert!(matches!(
        w.crm
            .reject(&w.zhaoliu, a.id, RejectTo::Applicant, None)
            .await,
        Err(Error::InvalidState(_))
    ));
    // Stored state equals what the calls returned.
    let stored = w.crm.approval(&w.zhangsan, a.id).await.expect("get");
    assert_eq!(stored, a);
    let of = w
        .crm
        .approval_of(&w.zhangsan, GENERIC_DOC, doc)
        .await
        .expect("of");
    assert_eq!(of.map(|x| x.id), Some(a.id));
    let actions = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions");
    let kinds: Vec<(&str, Option<Uuid>)> = actions
        .iter()
        .map(|x| (x.action.as_str(), x.actor_id))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("submit", Some(w.zhangsan.user_id.0)),
            ("approve", Some(w.lisi.user_id.0)),
            ("approve", Some(w.admin.user_id.0)),
            ("approve", Some(w.zhaoliu.user_id.0)),
        ]
    );
    assert_eq!(actions[1].comment.as_deref(), Some("同意"));
    assert_eq!(actions[3].step_name.as_deref(), Some("总经理会签"));
    assert_eq!(
        event_types(&w).await,
        vec![
            "approval.submitted",
            "approval.step_approved",
            "approval.step_approved",
            "approval.approved",
            "purchase_order.approved",
        ]
    );
    // A small contract skips the 会签 step.
    let small = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0xD0C2), 99_999_999))
        .await
        .expect("small");
    let small = w.crm.approve(&w.lisi, small.id, None).await.expect("lisi");
    assert_eq!(small.status, Status::Approved);
    // lisi has no superior: the step auto-passes and so does the whole flow.
    let own = w
        .crm
        .submit_for_approval(&w.lisi, request(Uuid::from_u128(0xD0C3), 1))
        .await
        .expect("lisi submits");
    assert_eq!(own.status, Status::Approved);
    let actions = w
        .crm
        .approval_actions(&w.lisi, own.id)
        .await
        .expect("actions");
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[1].action, "auto_pass");
}

/// Returning to an earlier step, rejecting to the applicant, resubmitting
/// from the rejecting step, withdrawing and resubmitting from the start.
pub async fn approval_reject_return_withdraw_and_resubmit(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "合同审批",
            contract_flow(&w, Restart::FromRejectingStep),
        )
        .await
        .expect("define");
    let doc = Uuid::from_u128(0xD0C1);
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("submit");
    let a = w.crm.approve(&w.lisi, a.id, None).await.expect("lisi");
    // 赵六 sends it back to step one.
    let a = w
        .crm
        .reject(&w.zhaoliu, a.id, RejectTo::Step(0), Some("请经理再核"))
        .await
        .expect("return");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    let a = w.crm.approve(&w.lisi, a.id, None).await.expect("again");
    // The admin rejects to the applicant.
    let a = w
        .crm
        .reject(&w.admin, a.id, RejectTo::Applicant, Some("价格过低"))
        .await
        .expect("reject");
    assert_eq!(a.status, Status::Rejected);
    assert!(
        w.crm
            .pending_approvals(&w.zhaoliu)
            .await
            .expect("p")
            .is_empty()
    );
    // Only the applicant may resubmit; with the amount unchanged it
    // restarts at the rejecting step.
    assert!(matches!(
        w.crm
            .submit_for_approval(&w.lisi, request(doc, 200_000_000))
            .await,
        Err(Error::Forbidden(_))
    ));
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("resubmit");
    assert_eq!(a.current_step.as_deref(), Some("总经理会签"));
    assert_eq!(a.state.round, 2);
    // Withdrawal, then a resubmission starts from the first step.
    assert!(matches!(
        w.crm.withdraw(&w.lisi, a.id, None).await,
        Err(Error::Forbidden(_))
    ));
    let a = w
        .crm
        .withdraw(&w.zhangsan, a.id, Some("改价"))
        .await
        .expect("withdraw");
    assert_eq!(a.status, Status::Withdrawn);
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 210_000_000))
        .await
        .expect("resubmit");
    assert_eq!(a.current_step.as_deref(), Some("直属上级"));
    let kinds: Vec<String> = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions")
        .into_iter()
        .map(|x| x.action)
        .collect();
    assert_eq!(
        kinds,
        vec![
            "submit", "approve", "return", "approve", "reject", "submit", "withdraw", "submit"
        ]
    );
    // Two approvers acting on the same stale state: the second conflicts.
    let a1 = w.crm.approval(&w.lisi, a.id).await.expect("get");
    let t1 = w
        .crm
        .decision(&w.lisi, a1.id, crate::approval::Decision::Approve, None)
        .await
        .expect("t1");
    let t2 = w
        .crm
        .decision(
            &w.lisi,
            a1.id,
            crate::approval::Decision::Reject(RejectTo::Applicant),
            None,
        )
        .await
        .expect("t2");
    w.crm.store().apply(&t1.changes).await.expect("first wins");
    assert!(
        w.crm.store().apply(&t2.changes).await.is_err(),
        "stale decision refused"
    );
    let a = w.crm.approval(&w.lisi, a.id).await.expect("get");
    assert_eq!(a.current_step.as_deref(), Some("总经理会签"));
}

/// Only flow managers define flows; a redefinition is a new version and
/// running approvals keep the version they started with.
pub async fn approval_flow_versions_and_permissions(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let flow = contract_flow(&w, Restart::FromFirst);
    assert!(matches!(
        w.crm
            .define_approval_flow(&w.lisi, GENERIC_DOC, "合同审批", flow.clone())
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        w.crm
            .define_approval_flow(
                &w.admin,
                GENERIC_DOC,
                "合同审批",
                FlowDef {
                    steps: vec![],
                    restart: Restart::FromFirst
                }
            )
            .await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        w.crm
            .define_approval_flow(&w.admin, "Bad Type", "x", flow.clone())
            .await,
        Err(Error::Validation(_))
    ));
    // No flow yet: submission is refused with a clear message.
    match w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(1), 1))
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains(GENERIC_DOC), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
    w.crm
        .define_approval_flow(&w.admin, GENERIC_DOC, "合同审批", flow)
        .await
        .expect("v1");
    let first = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(1), 1))
        .await
        .expect("submit on v1");
    // v2: the role 经理's members, then the applicant's pick.
    let manager_role = w
        .lisi
        .roles
        .first()
        .map(|r| r.id.0)
        .expect("lisi has a role");
    let v2 = w
        .crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "合同审批（新）",
            FlowDef {
                steps: vec![
                    step(
                        "经理",
                        ApproverRule::Role {
                            role_id: manager_role,
                        },
                        SignMode::Any,
                    ),
                    step("自选", ApproverRule::ApplicantPicks, SignMode::Any),
                ],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("v2");
    assert_eq!(v2.flow_version, 2);
    let active = w
        .crm
        .approval_flow(&w.zhangsan, GENERIC_DOC)
        .await
        .expect("active")
        .expect("some");
    assert_eq!((active.flow_version, active.active), (2, true));
    let first = w.crm.approval(&w.zhangsan, first.id).await.expect("first");
    assert_eq!(
        first.flow_version, 1,
        "a running approval keeps its version"
    );
    let mut req = request(Uuid::from_u128(2), 1);
    req.picked = vec![w.wangwu.user_id.0];
    let second = w
        .crm
        .submit_for_approval(&w.zhangsan, req)
        .await
        .expect("submit on v2");
    assert_eq!(second.flow_version, 2);
    let second = w.crm.approve(&w.lisi, second.id, None).await.expect("role");
    assert_eq!(second.pending_with, vec![w.wangwu.user_id.0]);
    let second = w
        .crm
        .approve(&w.wangwu, second.id, None)
        .await
        .expect("pick");
    assert_eq!(second.status, Status::Approved);
    // History of the approval is audited.
    let history = w
        .crm
        .store()
        .history(crate::schema::Table::ApprovalInstances, second.id)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| h.action.as_str())
            .collect::<Vec<_>>(),
        vec!["submit", "approve", "approve"]
    );
}

/// Grants the World's roles the sales permissions with their data scope
/// (销售 own, 经理 department tree, 组长 department) and rebuilds the actors.
pub async fn with_sales_rights(mut w: World) -> World {
    use crate::auth::{Action, Permission};
    use crate::entity::Entity;
    let mut seen = Vec::new();
    for actor in [&w.zhangsan, &w.lisi, &w.zhaoliu] {
        for role in &actor.roles {
            if seen.contains(&role.id) {
                continue;
            }
            seen.push(role.id);
            let scope = role
                .permissions
                .first()
                .map(|p| p.scope)
                .unwrap_or(crate::auth::DataScope::Own);
            let mut permissions = role.permissions.clone();
            for entity in SALES_ENTITIES {
                for action in [
                    Action::Read,
                    Action::Create,
                    Action::Update,
                    Action::Delete,
                    Action::Transfer,
                    Action::Share,
                ] {
                    permissions.push(Permission {
                        entity,
                        action,
                        scope,
                    });
                }
            }
            let _: &[Entity] = &SALES_ENTITIES;
            regrant(&w, role, permissions).await;
        }
    }
    w.zhangsan = w.crm.actor(w.zhangsan.user_id).await.expect("actor");
    w.wangwu = w.crm.actor(w.wangwu.user_id).await.expect("actor");
    w.lisi = w.crm.actor(w.lisi.user_id).await.expect("actor");
    w.zhaoliu = w.crm.actor(w.zhaoliu.user_id).await.expect("actor");
    w
}

/// The record entities of the sales module.
pub const SALES_ENTITIES: [crate::entity::Entity; 3] = [
    crate::entity::Entity::Opportunity,
    crate::entity::Entity::Quote,
    crate::entity::Entity::Contract,
];

/// Categories get generated two-level codes; products are created only by
/// those allowed, read by everyone, found by code, name and pinyin, by
/// category (including sub-categories) and status, paged with totals, and
/// go to the recycle bin and back; stale edits conflict.
pub async fn products_categories_search_and_paging(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ProductInput, ProductQuery, ProductStatus};
    let w = World::new(store).await;
    let servers = w
        .crm
        .create_product_category(&w.admin, "服务器", None)
        .await
        .expect("cat");
    let rack = w
        .crm
        .create_product_category(&w.admin, "机架式", Some(servers.id))
        .await
        .expect("sub");
    let software = w
        .crm
        .create_product_category(&w.admin, "软件", None)
        .await
        .expect("cat");
    assert_eq!(
        (
            servers.code.as_str(),
            rack.code.as_str(),
            software.code.as_str()
        ),
        ("01", "0101", "02")
    );
    assert!(matches!(
        w.crm
            .create_product_category(&w.admin, "第三级", Some(rack.id))
            .await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        w.crm
            .create_product_category(&w.zhangsan, "无权", None)
            .await,
        Err(Error::Forbidden(_))
    ));
    let product = |code: &str, name: &str, cat: Uuid, fen: i64| ProductInput {
        code: Some(code.into()),
        name: Some(name.into()),
        category_id: Some(cat),
        unit: Some("台".into()),
        list_price: Some(Money::cny(fen)),
        cost: Some(Money::cny(fen / 2)),
        tax_rate: Some(1300),
        ..ProductInput::default()
    };
    let p1 = w
        .crm
        .create_product(
            &w.admin,
            product("SV-2288", "华为机架式服务器2288H", rack.id, 3_500_000),
        )
        .await
        .expect("p1");
    w.crm
        .create_product(
            &w.admin,
            product("SV-1288", "华为机架服务器1288H", rack.id, 2_500_000),
        )
        .await
        .expect("p2");
    w.crm
        .create_product(
            &w.admin,
            product("SW-ERP", "企业资源计划软件", software.id, 9_900_000),
        )
        .await
        .expect("p3");
    let generated = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                name: Some("实施服务".into()),
                list_price: Some(Money::cny(100_000)),
                tax_rate: Some(600),
                ..ProductInput::default()
            },
        )
        .await
        .expect("generated code");
    assert_eq!(generated.code, "CP-20261127-0001");
    assert_eq!(generated.unit, "个");
    match w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                name: Some("错误税率".into()),
                list_price: Some(Money::cny(-1)),
                tax_rate: Some(1700),
                ..ProductInput::default()
            },
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let text = v.to_string();
            assert!(
                text.contains("tax_rate") && text.contains("list_price"),
                "{text}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        w.crm
            .create_product(&w.admin, product("SV-2288", "重复编号", rack.id, 1))
            .await,
        Err(Error::Duplicate { .. })
    ));
    assert!(matches!(
        w.crm
            .create_product(&w.zhangsan, product("X", "无权", rack.id, 1))
            .await,
        Err(Error::Forbidden(_))
    ));
    let codes = |page: crate::query::Page<crate::sales::Product>| {
        page.items.into_iter().map(|p| p.code).collect::<Vec<_>>()
    };
    let q = |search: &str| ProductQuery {
        search: Some(search.into()),
        ..ProductQuery::default()
    };
    // Everyone reads the catalogue; pinyin initials, name and code match.
    assert_eq!(
        codes(
            w.crm
                .list_products(&w.zhangsan, &q("fwq"))
                .await
                .expect("py")
        ),
        vec!["SV-1288", "SV-2288"]
    );
    assert_eq!(
        codes(
            w.crm
                .list_products(&w.zhangsan, &q("机架式"))
                .await
                .expect("name")
        ),
        vec!["SV-2288"]
    );
    assert_eq!(
        codes(
            w.crm
                .list_products(&w.zhangsan, &q("sw-"))
                .await
                .expect("code")
        ),
        vec!["SW-ERP"]
    );
    let by_cat = w
        .crm
        .list_products(
            &w.zhangsan,
            &ProductQuery {
                category_id: Some(servers.id),
                ..ProductQuery::default()
            },
        )
        .await
        .expect("category");
    assert_eq!(by_cat.total, Some(2), "sub-categories are included");
    let page2 = w
        .crm
        .list_products(
            &w.zhangsan,
            &ProductQuery {
                page: 2,
                per_page: 3,
                ..ProductQuery::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(
        (page2.items.len(), page2.total, page2.has_more),
        (1, Some(4), false)
    );
    // Discontinue, with a stale second edit refused.
    let stopped = w
        .crm
        .update_product(
            &w.admin,
            p1.id,
            p1.version,
            ProductInput {
                status: Some(ProductStatus::Discontinued),
                ..ProductInput::default()
            },
        )
        .await
        .expect("discontinue");
    assert_eq!(stopped.status, ProductStatus::Discontinued);
    assert!(matches!(
        w.crm
            .update_product(
                &w.admin,
                p1.id,
                p1.version,
                ProductInput {
                    name: Some("过期".into()),
                    ..ProductInput::default()
                },
            )
            .await,
        Err(Error::Conflict { .. })
    ));
    let on_sale = w
        .crm
        .list_products(
            &w.zhangsan,
            &ProductQuery {
                status: Some(ProductStatus::OnSale),
                ..ProductQuery::default()
            },
        )
        .await
        .expect("on sale");
    assert_eq!(on_sale.total, Some(3));
    w.crm
        .set_product_deleted(&w.admin, p1.id, true)
        .await
        .expect("delete");
    assert_eq!(
        w.crm
            .list_products(&w.zhangsan, &ProductQuery::default())
            .await
            .expect("list")
            .total,
        Some(3)
    );
    let bin = w
        .crm
        .list_products(
            &w.admin,
            &ProductQuery {
                deleted: true,
                ..ProductQuery::default()
            },
        )
        .await
        .expect("bin");
    assert_eq!(codes(bin), vec!["SV-2288"]);
    w.crm
        .set_product_deleted(&w.admin, p1.id, false)
        .await
        .expect("restore");
    let history = w
        .crm
        .store()
        .history(crate::schema::Table::Products, p1.id)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| h.action.as_str())
            .collect::<Vec<_>>(),
        vec!["create", "update", "delete", "restore"]
    );
}

/// Opportunities follow data scopes, move through the standard pipeline
/// with required fields, keep their stage history, can be transferred and
/// shared like customers, and the weighted forecast adds up to the fen.
pub async fn opportunity_stages_scope_transfer_and_forecast(store: Arc<dyn Store>) {
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::records::ShareAccess;
    use crate::sales::{
        Competitor, NewOpportunity, OppLine, OppStatus, OpportunityPatch, OpportunityQuery,
        StageCommand,
    };
    use chrono::NaiveDate;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let other = w
        .customer(&w.wangwu, "中兴通讯股份有限公司", json!({}))
        .await;
    // A customer one cannot see cannot get opportunities.
    assert!(matches!(
        w.crm
            .create_opportunity(
                &w.zhangsan,
                NewOpportunity {
                    name: "越权".into(),
                    customer_id: other.id.0,
                    ..NewOpportunity::default()
                },
            )
            .await,
        Err(Error::Validation(_))
    ));
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "华为数据中心扩容".into(),
                customer_id: customer.id.0,
                products: vec![OppLine {
                    product_id: None,
                    name: "服务器".into(),
                    quantity: 3,
                    unit_price: Money::cny(3_333_333),
                }],
                competitors: vec![Competitor {
                    name: "浪潮".into(),
                    offer: Some(Money::cny(9_000_000)),
                    notes: None,
                    counter_plan: Some("强调服务".into()),
                }],
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(o.code, "JH-20261127-0001");
    assert_eq!(
        o.amount,
        Money::cny(9_999_999),
        "amount is the sum of the lines"
    );
    assert_eq!((o.stage_name.as_str(), o.probability), ("初期沟通", 10));
    assert_eq!(
        o.weighted,
        Money::cny(1_000_000),
        "999,999.9 fen rounds half up"
    );
    // Scopes: wangwu (own) cannot see it, lisi (department tree) can.
    assert!(matches!(
        w.crm.opportunity(&w.wangwu, o.id).await,
        Err(Error::NotFound { .. })
    ));
    w.crm
        .opportunity(&w.lisi, o.id)
        .await
        .expect("manager sees");
    // 立项评估 requires an amount (present); 需求分析 an expected close date.
    w.clock.advance(chrono::Duration::hours(2));
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("assessment".into()),
        )
        .await
        .expect("assessment");
    match w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("needs".into()),
        )
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("expected_close"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        w.crm
            .change_opportunity_stage(
                &w.zhangsan,
                o.id,
                o.version,
                StageCommand::MoveTo("signing".into())
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    let o = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            o.id,
            o.version,
            OpportunityPatch {
                expected_close: NaiveDate::from_ymd_opt(2027, 1, 15),
                ..OpportunityPatch::default()
            },
        )
        .await
        .expect("close date");
    w.clock.advance(chrono::Duration::hours(3));
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("needs".into()),
        )
        .await
        .expect("needs");
    assert_eq!((o.stage_name.as_str(), o.probability), ("需求分析", 30));
    assert_eq!(
        o.time_per_stage,
        vec![
            ("initial".to_string(), 7200),
            ("assessment".to_string(), 10800),
            ("needs".to_string(), 0)
        ]
    );
    // Stale versions conflict.
    assert!(matches!(
        w.crm
            .change_opportunity_stage(&w.zhangsan, o.id, o.version - 1, StageCommand::Hold)
            .await,
        Err(Error::Conflict { .. })
    ));
    // A second opportunity, lost with a reason; a third won.
    let lost = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "华为办公软件".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(500_000)),
                expected_close: NaiveDate::from_ymd_opt(2027, 1, 31),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("second");
    assert!(matches!(
        w.crm
            .change_opportunity_stage(
                &w.zhangsan,
                lost.id,
                lost.version,
                StageCommand::Lose(String::new())
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    let lost = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            lost.id,
            lost.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lost");
    assert_eq!((lost.status, lost.probability), (OppStatus::Lost, 0));
    assert_eq!(lost.lost_reason.as_deref(), Some("价格"));
    let third = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "华为维保".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(333)),
                expected_close: NaiveDate::from_ymd_opt(2027, 2, 1),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("third");
    // Forecast: open opportunities only, by owner, department and month.
    let f = w
        .crm
        .opportunity_forecast(&w.lisi, None, None)
        .await
        .expect("forecast");
    let got: Vec<(String, u64, i64, i64)> = f
        .iter()
        .map(|r| (r.month.clone(), r.count, r.amount.minor, r.weighted.minor))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2027-01".to_string(), 1, 9_999_999, 3_000_000),
            ("2027-02".to_string(), 1, 333, 33),
        ]
    );
    assert!(f.iter().all(|r| r.owner_id == Some(w.zhangsan.user_id.0)));
    assert!(
        w.crm
            .opportunity_forecast(&w.wangwu, None, None)
            .await
            .expect("empty")
            .is_empty()
    );
    // A period ending before it begins is refused, not an empty report.
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
    match w
        .crm
        .opportunity_forecast(&w.lisi, Some(day(2028, 3, 1)), Some(day(2028, 2, 29)))
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("2028-03-01"), "{v}"),
        other => panic!("a period backwards: {other:?}"),
    }
    let list = w
        .crm
        .list_opportunities(
            &w.lisi,
            &OpportunityQuery {
                search: Some("hwwb".into()),
                ..OpportunityQuery::default()
            },
        )
        .await
        .expect("search");
    assert_eq!(
        list.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![third.id]
    );
    // Share for reading with wangwu, then transfer to him.
    w.crm
        .share_record(
            &w.zhangsan,
            crate::entity::Entity::Opportunity,
            RecordId(third.id),
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    w.crm
        .opportunity(&w.wangwu, third.id)
        .await
        .expect("shared");
    assert!(matches!(
        w.crm
            .change_opportunity_stage(&w.wangwu, third.id, third.version, StageCommand::Win)
            .await,
        Err(Error::Forbidden(_))
    ));
    let report = w
        .crm
        .transfer_records(
            &w.zhangsan,
            crate::entity::Entity::Opportunity,
            &[RecordId(o.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert_eq!(report.done.len(), 1, "{report:?}");
    let moved = w.crm.opportunity(&w.wangwu, o.id).await.expect("new owner");
    assert_eq!(moved.owner_id, Some(w.wangwu.user_id.0));
    assert!(matches!(
        w.crm.opportunity(&w.zhangsan, o.id).await,
        Err(Error::NotFound { .. })
    ));
    let won = w
        .crm
        .change_opportunity_stage(&w.wangwu, o.id, moved.version, StageCommand::Win)
        .await
        .expect("win");
    assert_eq!(
        (won.status, won.stage_name.as_str(), won.probability),
        (OppStatus::Won, "合同签约", 100)
    );
    let types: Vec<String> = w
        .crm
        .pending_events("erp", 10_000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event.event_type)
        .filter(|t| t.starts_with("opportunity."))
        .collect();
    assert!(types.contains(&"opportunity.won".to_string()), "{types:?}");
    assert!(types.contains(&"opportunity.lost".to_string()), "{types:?}");
    assert!(
        types.contains(&"opportunity.transferred".to_string()),
        "{types:?}"
    );
    // The customer pools learn about the sales: open opportunities and the deal.
    let row = w
        .crm
        .store()
        .get(crate::schema::Table::Customers, customer.id.0)
        .await
        .expect("get")
        .expect("customer");
    assert_eq!(row.get("open_opportunities").as_int(), Some(1));
    assert!(!row.get("last_opportunity_at").is_null());
    assert!(!row.get("closed_at").is_null());
}

/// Quotes total exactly; a discount above the flow's threshold needs
/// approval while a small one passes at once; a revision is a new version;
/// an approved quote becomes a draft contract with the same lines.
pub async fn quote_discount_approval_versions_and_contract(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewQuote, ProductInput, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let server = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("SV-2288".into()),
                name: Some("机架式服务器".into()),
                unit: Some("台".into()),
                list_price: Some(Money::cny(3_500_000)),
                tax_rate: Some(1300),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = |discount_bp: i64| LineInput {
        product_id: Some(server.id),
        name: String::new(),
        unit: None,
        quantity: 3,
        unit_price: None,
        discount_bp,
        tax_rate: None,
    };
    let service = LineInput {
        product_id: None,
        name: "实施服务".into(),
        unit: Some("项".into()),
        quantity: 1,
        unit_price: Some(Money::cny(1_000_001)),
        discount_bp: 0,
        tax_rate: Some(600),
    };
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为服务器报价".into(),
                customer_id: customer.id.0,
                lines: vec![line(1500), service.clone()],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    assert_eq!(q.code, "BJ-20261127-0001");
    assert_eq!(q.quote_version, 1);
    // 3 × ¥35,000 − 15 % = ¥89,250.00 (13 %: tax ¥10,267.70);
    // ¥10,000.01 at 6 %: tax ¥566.04.
    assert_eq!(q.lines[0].amount, Money::cny(8_925_000));
    assert_eq!(q.lines[0].tax, Money::cny(1_026_770));
    assert_eq!(q.lines[1].tax, Money::cny(56_604));
    assert_eq!(q.totals.amount, Money::cny(9_925_001));
    assert_eq!(q.totals.tax, Money::cny(1_083_374));
    assert_eq!(
        q.totals.net.minor + q.totals.tax.minor,
        q.totals.amount.minor
    );
    assert_eq!(q.totals.max_discount_bp, 1500);
    assert_eq!(q.amount_capital, "玖万玖仟贰佰伍拾元零壹分");
    // Lines are validated all at once.
    match w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "错误".into(),
                customer_id: customer.id.0,
                lines: vec![
                    LineInput {
                        quantity: 0,
                        ..line(0)
                    },
                    LineInput {
                        tax_rate: Some(1700),
                        ..service.clone()
                    },
                ],
                ..NewQuote::default()
            },
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let t = v.to_string();
            assert!(
                t.contains("lines[1].quantity") && t.contains("lines[2].tax_rate"),
                "{t}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // 15 % is above the 10 % threshold: the manager must approve.
    let (q, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    let approval = approval.expect("needs approval");
    assert!(matches!(
        w.crm
            .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
            .await,
        Err(Error::InvalidState(_))
    ));
    w.crm
        .reject(&w.lisi, approval.id, RejectTo::Applicant, Some("折扣太大"))
        .await
        .expect("reject");
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::Rejected
    );
    // Revise with 10 %: a new version, the old one superseded; no approval needed.
    let q2 = w
        .crm
        .revise_quote(&w.zhangsan, q.id, vec![line(1000), service.clone()], None)
        .await
        .expect("revise");
    assert_eq!(
        (q2.code.as_str(), q2.quote_version),
        ("BJ-20261127-0001", 2)
    );
    let versions = w
        .crm
        .quote_versions(&w.zhangsan, q2.id)
        .await
        .expect("versions");
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.quote_version, v.status))
            .collect::<Vec<_>>(),
        vec![(1, QuoteStatus::Superseded), (2, QuoteStatus::Draft)]
    );
    let listed = w
        .crm
        .list_quotes(&w.lisi, Some(customer.id.0), 1, 10)
        .await
        .expect("list");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|q| q.quote_version)
            .collect::<Vec<_>>(),
        vec![2],
        "superseded versions are left out"
    );
    assert_eq!(
        w.crm
            .list_quotes(&w.wangwu, None, 1, 10)
            .await
            .expect("list")
            .total,
        Some(0)
    );
    let (q2, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q2.id, None)
        .await
        .expect("submit v2");
    assert_eq!(q2.status, QuoteStatus::Approved);
    assert_eq!(approval.map(|a| a.status), Some(Status::Approved));
    let c = w
        .crm
        .quote_to_contract(
            &w.zhangsan,
            q2.id,
            NewContract {
                signed_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 27),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    assert_eq!(c.code, "HT-20261127-0001");
    assert_eq!(c.title, "华为服务器报价");
    assert_eq!(c.amount, q2.totals.amount);
    assert_eq!(c.lines, q2.lines);
    assert_eq!(c.quote_id, Some(q2.id));
    let q2 = w.crm.quote(&w.zhangsan, q2.id).await.expect("q2");
    assert_eq!(
        (q2.status, q2.contract_id),
        (QuoteStatus::Converted, Some(c.id))
    );
    assert!(matches!(
        w.crm
            .quote_to_contract(&w.zhangsan, q2.id, NewContract::default())
            .await,
        Err(Error::InvalidState(_))
    ));
}

/// A contract is approved through its flow (the host gets
/// `contract.approved`), then collected in instalments: overpayment is
/// refused with a clear message, payments needing approval count only once
/// approved, received/outstanding/overdue reconcile with the records to the
/// fen, invoices cannot exceed the contract, receivables age by days past
/// due, and end-date lists find contracts ending soon and expired.
pub async fn contract_approval_payments_invoices_and_receivables(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        ContractQuery, ContractStatus, InvoiceType, NewContract, PaymentInput, PlanInput,
    };
    use chrono::NaiveDate;
    use serde_json::json;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("flow");
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
                signed_on: Some(d(8, 1)),
                start_on: Some(d(8, 1)),
                end_on: Some(d(12, 15)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    assert_eq!(c.status, ContractStatus::Draft);
    assert_eq!(c.amount_capital, "壹万元整");
    assert!(matches!(
        w.crm
            .record_payment(
                &w.zhangsan,
                c.id,
                PaymentInput {
                    amount: Money::cny(1),
                    received_on: d(11, 27),
                    method: None,
                    receipt_no: None,
                    notes: None
                }
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    ack_all(&w).await;
    let (c, approval) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), Some("请批"))
        .await
        .expect("submit");
    assert_eq!(c.status, ContractStatus::PendingApproval);
    let approval = approval.expect("approval");
    let c_approved = w
        .crm
        .approve(&w.lisi, approval.id, None)
        .await
        .expect("approve");
    assert_eq!(c_approved.status, Status::Approved);
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(c.status, ContractStatus::Executing);
    let types = event_types(&w).await;
    assert!(
        types.contains(&"contract.approved".to_string()),
        "{types:?}"
    );
    // Plans: three instalments, due 9-01, 10-15 and 12-31.
    assert!(matches!(
        w.crm
            .set_payment_plan(
                &w.zhangsan,
                c.id,
                vec![PlanInput {
                    due_on: d(9, 1),
                    amount: Money::cny(1_000_001),
                    notes: None
                }]
            )
            .await,
        Err(Error::Validation(_))
    ));
    let plan = |m, day, fen| PlanInput {
        due_on: d(m, day),
        amount: Money::cny(fen),
        notes: None,
    };
    // No instalment falls due before the contract was signed (8-01).
    match w
        .crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![plan(9, 1, 500_000), plan(7, 31, 500_000)],
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(
                v.0.len() == 1
                    && m.contains("plans[2].due_on")
                    && m.contains("2026-07-31")
                    && m.contains("signed on 2026-08-01"),
                "{m}"
            )
        }
        other => panic!("an instalment due before the signing date: {other:?}"),
    }
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![
                plan(12, 31, 333_334),
                plan(9, 1, 333_333),
                plan(10, 15, 333_333),
            ],
        )
        .await
        .expect("plan");
    let pay = |fen, m, day| PaymentInput {
        amount: Money::cny(fen),
        received_on: d(m, day),
        method: Some("银行转账".into()),
        receipt_no: None,
        notes: None,
    };
    w.crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                receipt_no: Some("R-001".into()),
                ..pay(300_000, 9, 5)
            },
        )
        .await
        .expect("first payment");
    // The same bank receipt entered again is refused, not counted twice.
    assert!(matches!(
        w.crm
            .record_payment(
                &w.zhangsan,
                c.id,
                PaymentInput {
                    receipt_no: Some(" R-001 ".into()),
                    ..pay(1_000, 9, 6)
                },
            )
            .await,
        Err(Error::Duplicate { .. })
    ));
    // Today is 2026-11-27: instalment 1 has ¥33.33 open for 87 days,
    // instalment 2 all of ¥3,333.33 for 43 days; the third is not due.
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert_eq!(col.received, Money::cny(300_000));
    assert_eq!(col.outstanding, Money::cny(700_000));
    assert_eq!(col.overdue, Money::cny(33_333 + 333_333));
    assert_eq!(
        col.plans
            .iter()
            .map(|p| (p.instalment, p.received.minor, p.days_overdue))
            .collect::<Vec<_>>(),
        vec![(1, 300_000, 87), (2, 0, 43), (3, 0, 0)]
    );
    let rec = w.crm.receivables(&w.lisi).await.expect("receivables");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].outstanding, Money::cny(700_000));
    assert_eq!(rec[0].overdue, Money::cny(366_666));
    assert_eq!(rec[0].current, Money::cny(333_334));
    assert_eq!(
        rec[0].aging.map(|m| m.minor),
        [0, 333_333, 33_333, 0],
        "31–60 and 61–90 days"
    );
    assert!(w.crm.receivables(&w.wangwu).await.expect("none").is_empty());
    // Overpayment is refused, naming what is outstanding.
    match w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(700_001, 11, 27))
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("¥7,000.00") && m.contains("overpayment"), "{m}")
        }
        other => panic!("unexpected {other:?}"),
    }
    // With a payment flow, receipts wait for the finance approver (admin).
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let (p, a) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(600_000, 11, 27))
        .await
        .expect("pending payment");
    assert_eq!(p.status, "pending_approval");
    let c_now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(
        c_now.received,
        Money::cny(300_000),
        "not received before approval"
    );
    // The pending receipt counts against overpayment.
    assert!(matches!(
        w.crm
            .record_payment(&w.zhangsan, c.id, pay(100_001, 11, 27))
            .await,
        Err(Error::InvalidState(_))
    ));
    // Not confirmed on a contract in the recycle bin.
    let a = a.expect("approval");
    // Whoever reads the contract (赵六, his group's) reads the payment's
    // approval too; who does not (王五) finds none.
    let seen = w
        .crm
        .approval_of(&w.zhaoliu, "payment", p.id)
        .await
        .expect("a reader of the contract")
        .expect("the payment's approval");
    assert_eq!(seen.id, a.id);
    assert!(w.crm.approval(&w.wangwu, a.id).await.is_err());
    force_row(
        &w,
        crate::schema::Table::Contracts,
        c.id,
        vec![("deleted_at", crate::value::Value::Timestamp(w.crm.now()))],
    )
    .await;
    match w.crm.approve(&w.admin, a.id, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("recycle bin") && m.contains(&c.code), "{m}")
        }
        other => panic!("confirming on a deleted contract: {other:?}"),
    }
    force_row(
        &w,
        crate::schema::Table::Contracts,
        c.id,
        vec![("deleted_at", crate::value::Value::Null)],
    )
    .await;
    w.crm.approve(&w.admin, a.id, None).await.expect("confirm");
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert_eq!(col.received, Money::cny(900_000));
    assert_eq!(col.pending, Money::cny(0));
    let confirmed: i64 = col
        .payments
        .iter()
        .filter(|p| p.status == "confirmed")
        .map(|p| p.amount.minor)
        .sum();
    assert_eq!(confirmed, col.received.minor, "received equals the records");
    assert_eq!(
        col.plans.iter().map(|p| p.received.minor).sum::<i64>(),
        col.received.minor
    );
    assert_eq!(col.overdue, Money::cny(0));
    // Invoices: a plan, then issued invoices up to the contract amount.
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(500_000),
            None,
            Some(d(12, 1)),
        )
        .await
        .expect("plan");
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(900_000),
            Some("04400123".into()),
            Some(d(11, 27)),
        )
        .await
        .expect("issued");
    assert!(matches!(
        w.crm
            .add_invoice(
                &w.zhangsan,
                c.id,
                InvoiceType::VatNormal,
                Money::cny(100_001),
                Some("04400124".into()),
                None,
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    // A blank number is a mistake, not an invoice plan.
    assert!(matches!(
        w.crm
            .add_invoice(
                &w.zhangsan,
                c.id,
                InvoiceType::VatNormal,
                Money::cny(1_000),
                Some("  ".into()),
                None,
            )
            .await,
        Err(Error::Validation(_))
    ));
    let c_now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(
        (c_now.invoiced.minor, c_now.not_invoiced.minor),
        (900_000, 100_000)
    );
    // A plan is for what remains to invoice: ¥1,000.00 is left, not more.
    match w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatNormal,
            Money::cny(100_001),
            None,
            Some(d(12, 15)),
        )
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("not yet invoiced") && m.contains(&c.code) && m.contains("1,000.00"),
            "{m}"
        ),
        other => panic!("a plan beyond what is not invoiced: {other:?}"),
    }
    assert_eq!(
        w.crm.invoices(&w.zhangsan, c.id).await.expect("inv").len(),
        2
    );
    // End-date views: this one ends within 30 days, not within 10.
    let q = |within: Option<u32>, expired: bool| ContractQuery {
        ending_within_days: within,
        expired,
        ..ContractQuery::default()
    };
    assert_eq!(
        w.crm
            .list_contracts(&w.zhangsan, &q(Some(30), false))
            .await
            .expect("l")
            .total,
        Some(1)
    );
    assert_eq!(
        w.crm
            .list_contracts(&w.zhangsan, &q(Some(10), false))
            .await
            .expect("l")
            .total,
        Some(0)
    );
    assert_eq!(
        w.crm
            .list_contracts(&w.zhangsan, &q(None, true))
            .await
            .expect("l")
            .total,
        Some(0)
    );
    w.clock.advance(chrono::Duration::days(30));
    assert_eq!(
        w.crm
            .list_contracts(&w.zhangsan, &q(None, true))
            .await
            .expect("l")
            .total,
        Some(1)
    );
    let open = ContractQuery {
        not_fully_received: true,
        ..ContractQuery::default()
    };
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(1)
    );
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(100_000, 12, 27))
        .await
        .expect("last");
    let a = w
        .crm
        .pending_approvals(&w.admin)
        .await
        .expect("p")
        .into_iter()
        .next()
        .expect("one pending");
    w.crm.approve(&w.admin, a.id, None).await.expect("confirm");
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(0)
    );
    let done = w
        .crm
        .close_contract(&w.zhangsan, c.id, None)
        .await
        .expect("finish");
    assert_eq!(
        (done.status, done.outstanding.minor),
        (ContractStatus::Finished, 0)
    );
}

/// A department's own pipeline applies to its members' new opportunities
/// (others keep the standard one); deliveries never exceed what the
/// contract ordered.
pub async fn department_pipelines_and_deliveries(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        DeliveryLine, LineInput, NewContract, NewOpportunity, PipelineDef, StageCommand, StageDef,
    };
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let stage = |key: &str, name: &str, p: u8, next: &[&str]| StageDef {
        key: key.into(),
        name: name.into(),
        probability: p,
        required: Vec::new(),
        next: next.iter().map(|s| s.to_string()).collect(),
    };
    assert!(matches!(
        w.crm
            .define_pipeline(&w.zhangsan, "x", None, PipelineDef::standard())
            .await,
        Err(Error::Forbidden(_))
    ));
    w.crm
        .define_pipeline(
            &w.admin,
            "一组快速流程",
            Some(w.group1.0),
            PipelineDef {
                stages: vec![
                    stage("lead", "线索", 5, &["deal"]),
                    stage("deal", "成交", 95, &[]),
                ],
            },
        )
        .await
        .expect("pipeline");
    let c1 = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c2 = w
        .customer(&w.wangwu, "中兴通讯股份有限公司", json!({}))
        .await;
    let new = |name: &str, customer: Uuid| NewOpportunity {
        name: name.into(),
        customer_id: customer,
        amount: Some(Money::cny(100)),
        ..NewOpportunity::default()
    };
    let o1 = w
        .crm
        .create_opportunity(&w.zhangsan, new("一组机会", c1.id.0))
        .await
        .expect("group one");
    assert_eq!((o1.stage_name.as_str(), o1.probability), ("线索", 5));
    let o1 = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o1.id,
            o1.version,
            StageCommand::MoveTo("deal".into()),
        )
        .await
        .expect("move");
    assert_eq!(o1.probability, 95);
    let o2 = w
        .crm
        .create_opportunity(&w.wangwu, new("二组机会", c2.id.0))
        .await
        .expect("group two");
    assert_eq!(o2.stage_name, "初期沟通");
    // Deliveries of a two-line contract (no contract flow: approved at once).
    let line = |name: &str, q| LineInput {
        product_id: None,
        name: name.into(),
        unit: Some("台".into()),
        quantity: q,
        unit_price: Some(Money::cny(10_000)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "设备销售合同".into(),
                customer_id: c1.id.0,
                lines: vec![line("服务器", 3), line("交换机", 2)],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    assert_eq!(c.amount, Money::cny(50_000));
    // A draft's lines can change (the amount follows); stale edits conflict.
    let edited = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            crate::sales::ContractPatch {
                lines: Some(vec![
                    line("服务器", 3),
                    line("交换机", 2),
                    line("光模块", 1),
                ]),
                ..crate::sales::ContractPatch::default()
            },
        )
        .await
        .expect("edit draft");
    assert_eq!(edited.amount, Money::cny(60_000));
    assert_eq!(edited.outstanding, Money::cny(60_000));
    assert!(matches!(
        w.crm
            .update_contract(
                &w.zhangsan,
                c.id,
                c.version,
                crate::sales::ContractPatch {
                    notes: Some("过期".into()),
                    ..crate::sales::ContractPatch::default()
                },
            )
            .await,
        Err(Error::Conflict { .. })
    ));
    let c = edited;
    let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    assert!(matches!(
        w.crm
            .record_delivery(
                &w.zhangsan,
                c.id,
                d,
                vec![DeliveryLine {
                    line: 1,
                    quantity: 1
                }],
                None
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    let (c, approval) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    assert!(approval.is_none());
    assert_eq!(c.status, crate::sales::ContractStatus::Executing);
    // Not dated before the contract began (no signing date: the day it
    // was made), as its payments and invoices are not.
    let made = w.crm.today();
    match w
        .crm
        .record_delivery(
            &w.zhangsan,
            c.id,
            made.pred_opt().expect("date"),
            vec![DeliveryLine {
                line: 1,
                quantity: 1,
            }],
            None,
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(m.contains("before contract") && m.contains(&c.code), "{m}")
        }
        other => panic!("a delivery before the contract began: {other:?}"),
    }
    let p = w
        .crm
        .record_delivery(
            &w.zhangsan,
            c.id,
            d,
            vec![
                DeliveryLine {
                    line: 1,
                    quantity: 2,
                },
                DeliveryLine {
                    line: 2,
                    quantity: 2,
                },
            ],
            Some("顺丰 SF123".into()),
        )
        .await
        .expect("deliver");
    assert_eq!(
        p.iter()
            .map(|l| (l.delivered, l.remaining))
            .collect::<Vec<_>>(),
        vec![(2, 1), (2, 0), (0, 1)]
    );
    match w
        .crm
        .record_delivery(
            &w.zhangsan,
            c.id,
            d,
            vec![
                DeliveryLine {
                    line: 1,
                    quantity: 1,
                },
                DeliveryLine {
                    line: 2,
                    quantity: 1,
                },
                DeliveryLine {
                    line: 4,
                    quantity: 1,
                },
            ],
            None,
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let t = v.to_string();
            assert!(
                t.contains("lines[2]") && t.contains("lines[3]") && !t.contains("lines[1]"),
                "{t}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Executing: dates may change, the amount not.
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert!(matches!(
        w.crm
            .update_contract(
                &w.zhangsan,
                c.id,
                c.version,
                crate::sales::ContractPatch {
                    amount: Some(Money::cny(1)),
                    ..crate::sales::ContractPatch::default()
                },
            )
            .await,
        Err(Error::InvalidState(_))
    ));
    let extended = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            crate::sales::ContractPatch {
                end_on: chrono::NaiveDate::from_ymd_opt(2027, 12, 31),
                ..crate::sales::ContractPatch::default()
            },
        )
        .await
        .expect("extend");
    assert_eq!(
        extended.end_on,
        chrono::NaiveDate::from_ymd_opt(2027, 12, 31)
    );
    let (ds, p) = w.crm.deliveries(&w.lisi, c.id).await.expect("deliveries");
    assert_eq!(ds.len(), 1);
    assert_eq!(p[0].remaining, 1);
}

/// A single-step flow approved by the applicant's superior.
fn superior_flow() -> FlowDef {
    FlowDef {
        steps: vec![step(
            "直属上级",
            ApproverRule::Superior { level: 1 },
            SignMode::Any,
        )],
        restart: Restart::FromFirst,
    }
}

/// Contracts, quotes and payments change with their approvals, so the
/// generic `submit_for_approval` refuses them, naming the operation to use:
/// nobody (another user, the owner with made-up facts, another company's
/// administrator) can push such a document through approval that way, and
/// an already confirmed payment is not counted twice.
pub async fn approval_generic_submit_refuses_sales_documents(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract, NewQuote, PaymentInput, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store.clone()).await).await;
    let other = World::with_code(store, "BBB").await;
    for (ww, doc_type) in [
        (&w, "contract"),
        (&w, "quote"),
        (&w, "payment"),
        (&other, "contract"),
    ] {
        ww.crm
            .define_approval_flow(&ww.admin, doc_type, "审批", superior_flow())
            .await
            .expect("flow");
    }
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为服务器报价".into(),
                customer_id: customer.id.0,
                lines: vec![crate::sales::LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: Some("台".into()),
                    quantity: 1,
                    unit_price: Some(Money::cny(100_000)),
                    discount_bp: 5000,
                    tax_rate: Some(1300),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let forged = |doc_type: &str, id: Uuid| SubmitRequest {
        doc_type: doc_type.into(),
        document_id: id,
        document_code: None,
        title: Some("随便批".into()),
        facts: Facts {
            amount_minor: Some(1),
            kind: None,
            discount_bp: Some(0),
        },
        picked: Vec::new(),
        comment: None,
    };
    let refused = |r: crate::error::Result<crate::approval::ApprovalInfo>, op: &str| match r {
        Err(Error::Validation(v)) => {
            let t = v.to_string();
            assert!(t.contains(op), "the error names {op}: {t}");
        }
        other => panic!("a forged submission must be refused, got {other:?}"),
    };
    // Another sales person, who cannot even see the contract.
    refused(
        w.crm
            .submit_for_approval(&w.wangwu, forged("contract", c.id))
            .await,
        "submit_contract",
    );
    // The owner, with made-up facts.
    refused(
        w.crm
            .submit_for_approval(&w.zhangsan, forged("contract", c.id))
            .await,
        "submit_contract",
    );
    refused(
        w.crm
            .submit_for_approval(&w.zhangsan, forged("quote", q.id))
            .await,
        "submit_quote",
    );
    // Another company's administrator (whose flow would auto-pass).
    refused(
        other
            .crm
            .submit_for_approval(&other.admin, forged("contract", c.id))
            .await,
        "submit_contract",
    );
    assert!(matches!(
        w.crm
            .submission(&w.zhangsan, &forged("contract", c.id))
            .await,
        Err(Error::Validation(_))
    ));
    let c_now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(c_now.status, ContractStatus::Draft);
    assert_eq!(c_now.version, c.version, "the contract is untouched");
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::Draft
    );
    assert!(
        w.crm
            .approval_of(&w.zhangsan, "contract", c.id)
            .await
            .expect("of")
            .is_none()
    );
    let customer_row = w
        .crm
        .store()
        .get(crate::schema::Table::Customers, customer.id.0)
        .await
        .expect("get")
        .expect("customer");
    assert!(customer_row.get("closed_at").is_null(), "no deal closed");
    // The real operations still work: the quote's 50 % discount and the
    // contract go to the superior.
    let (q, qa) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit quote");
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    assert_eq!(
        qa.expect("quote approval").state.facts.discount_bp,
        Some(5000)
    );
    let (c, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit contract");
    assert_eq!(c.status, ContractStatus::PendingApproval);
    w.crm
        .approve(&w.lisi, a.expect("approval").id, None)
        .await
        .expect("approve");
    // A payment confirmed through its approval cannot be submitted again.
    let (p, pa) = w
        .crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(400_000),
                received_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date"),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("payment");
    w.crm
        .approve(&w.lisi, pa.expect("payment approval").id, None)
        .await
        .expect("confirm");
    refused(
        w.crm
            .submit_for_approval(&w.zhangsan, forged("payment", p.id))
            .await,
        "record_payment",
    );
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.received, Money::cny(400_000));
    assert_eq!(col.pending, Money::cny(0));
    assert_eq!(
        col.payments
            .iter()
            .map(|p| p.status.as_str())
            .collect::<Vec<_>>(),
        vec!["confirmed"]
    );
}

/// A contract terminated while its approval is pending stays terminated:
/// the approval can no longer put it into execution, and rejecting it does
/// not bring it back to a draft.
pub async fn approval_does_not_move_closed_contracts(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let new = |title: &str| NewContract {
        title: title.into(),
        customer_id: customer.id.0,
        amount: Some(Money::cny(1_000_000)),
        ..NewContract::default()
    };
    let c = w
        .crm
        .create_contract(&w.zhangsan, new("终止的合同"))
        .await
        .expect("contract");
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let a = a.expect("approval");
    let c = w
        .crm
        .close_contract(&w.zhangsan, c.id, Some("客户取消"))
        .await
        .expect("terminate");
    assert_eq!(c.status, ContractStatus::Terminated);
    // Terminating withdrew the approval: it can no longer be approved.
    match w.crm.approve(&w.lisi, a.id, None).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("withdrawn"), "{m}"),
        other => panic!("approving a terminated contract: {other:?}"),
    }
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(c.status, ContractStatus::Terminated);
    let customer_row = w
        .crm
        .store()
        .get(crate::schema::Table::Customers, customer.id.0)
        .await
        .expect("get")
        .expect("customer");
    assert!(customer_row.get("closed_at").is_null(), "no deal closed");
    assert!(matches!(
        w.crm.reject(&w.lisi, a.id, RejectTo::Applicant, None).await,
        Err(Error::InvalidState(_))
    ));
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").status,
        ContractStatus::Terminated
    );
}

/// Plan writes bump the contract: two plans built on the same read, or a
/// plan checked against an amount changed meanwhile, cannot both land; and
/// the amount cannot drop below the plan.
pub async fn payment_plan_writes_are_serialised(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, NewContract, PlanInput};
    use crate::store::StoreError;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "分期合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let d = |m: u32| chrono::NaiveDate::from_ymd_opt(2027, m, 1).expect("date");
    let plan = |fen: i64| {
        vec![
            PlanInput {
                due_on: d(12),
                amount: Money::cny(fen),
                notes: None,
            },
            PlanInput {
                due_on: d(11),
                amount: Money::cny(fen),
                notes: None,
            },
        ]
    };
    // Two writers on the same read: the second conflicts, the plan is not doubled.
    let first = w
        .crm
        .payment_plan_changes(&w.zhangsan, c.id, plan(300_000))
        .await
        .expect("first");
    let second = w
        .crm
        .payment_plan_changes(&w.zhangsan, c.id, plan(300_000))
        .await
        .expect("second");
    w.crm.store().apply(&first).await.expect("first wins");
    assert!(
        matches!(
            w.crm.store().apply(&second).await,
            Err(StoreError::Conflict { .. })
        ),
        "a plan built on a stale read is refused"
    );
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(
        col.plans
            .iter()
            .map(|p| (p.instalment, p.amount.minor))
            .collect::<Vec<_>>(),
        vec![(1, 300_000), (2, 300_000)]
    );
    // A plan checked against the amount, which then drops: refused.
    let full = w
        .crm
        .payment_plan_changes(&w.zhangsan, c.id, plan(500_000))
        .await
        .expect("full plan");
    let c_now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    w.crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c_now.version,
            ContractPatch {
                amount: Some(Money::cny(600_000)),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("lower the amount");
    assert!(
        matches!(
            w.crm.store().apply(&full).await,
            Err(StoreError::Conflict { .. })
        ),
        "a plan checked against an old amount is refused"
    );
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(
        col.plans.iter().map(|p| p.amount.minor).sum::<i64>(),
        600_000
    );
    // Lowering the amount below the plan is refused, naming the plan.
    let c_now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    match w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c_now.version,
            ContractPatch {
                amount: Some(Money::cny(599_999)),
                ..ContractPatch::default()
            },
        )
        .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("plan"), "{v}"),
        other => panic!("amount below the plan: {other:?}"),
    }
}

/// Sales documents follow their opportunity and an open opportunity keeps
/// its stage's requirements: no quote or contract (nor a quote's
/// conversion) for a lost opportunity until it is reopened; an edit does
/// not empty what the stage required; product lines and competitors'
/// offers are in 元 and not negative; a quote's total is positive; a quote
/// in the recycle bin is not read, by id or by code; a product update
/// stores its texts as a create does.
pub async fn sales_documents_follow_the_opportunity_and_its_stage(store: Arc<dyn Store>) {
    use crate::money::{Currency, Money};
    use crate::sales::opportunity::{Competitor, OppLine, OpportunityPatch};
    use crate::sales::{
        LineInput, NewContract, NewOpportunity, NewQuote, ProductInput, StageCommand,
    };
    use chrono::NaiveDate;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "机会规则有限公司", json!({})).await;
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "规则机会".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(500_000)),
                expected_close: NaiveDate::from_ymd_opt(2027, 1, 31),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("assessment".into()),
        )
        .await
        .expect("assessment needs the amount");
    let patch = |p: OpportunityPatch| {
        let (crm, actor) = (w.crm.clone(), w.zhangsan.clone());
        async move { crm.update_opportunity(&actor, o.id, o.version, p).await }
    };
    match patch(OpportunityPatch {
        amount: Some(Money::cny(0)),
        ..OpportunityPatch::default()
    })
    .await
    {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("立项评估"), "{v}"),
        other => panic!("the stage's amount emptied: {other:?}"),
    }
    match patch(OpportunityPatch {
        products: Some(vec![OppLine {
            product_id: None,
            name: "进口服务器".into(),
            quantity: 1,
            unit_price: Money::new(10_000, Currency::USD),
        }]),
        competitors: Some(vec![Competitor {
            name: "对手".into(),
            offer: Some(Money::cny(-1)),
            ..Competitor::default()
        }]),
        ..OpportunityPatch::default()
    })
    .await
    {
        Err(Error::Validation(v)) => {
            let text = v.to_string();
            assert!(
                text.contains("products[1].unit_price") && text.contains("competitors[1].offer"),
                "{text}"
            );
        }
        other => panic!("a USD line and a negative offer: {other:?}"),
    }
    let line = |fen: i64| LineInput {
        product_id: None,
        name: "服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(fen)),
        discount_bp: 0,
        tax_rate: Some(600),
    };
    let new_quote = |fen: i64| NewQuote {
        title: "规则报价".into(),
        customer_id: customer.id.0,
        opportunity_id: Some(o.id),
        lines: vec![line(fen)],
        ..NewQuote::default()
    };
    match w.crm.create_quote(&w.zhangsan, new_quote(0)).await {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("positive"), "{v}"),
        other => panic!("a quote of ¥0.00: {other:?}"),
    }
    let q = w
        .crm
        .create_quote(&w.zhangsan, new_quote(100_000))
        .await
        .expect("quote");
    let (q, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("approved without a flow");
    // An approved quote's custom fields are not edited: it is revised.
    w.crm
        .define_custom_field(
            &w.admin,
            crate::custom::NewCustomField {
                entity: crate::entity::Entity::Quote,
                key: "terms".into(),
                label: "条款".into(),
                label_en: None,
                field_type: crate::custom::CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("custom field");
    let mut f = crate::records::Fields::new();
    f.insert("custom.terms".into(), json!("预付三成"));
    match w
        .crm
        .update_record(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            crate::ids::RecordId(q.id),
            q.version,
            f,
        )
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("revise"), "{m}"),
        other => panic!("an approved quote's field edited: {other:?}"),
    }
    let o = w.crm.opportunity(&w.zhangsan, o.id).await.expect("read");
    w.crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lost");
    for refused in [
        w.crm
            .create_quote(&w.zhangsan, new_quote(100_000))
            .await
            .map(|_| ()),
        w.crm
            .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
            .await
            .map(|_| ()),
        w.crm
            .revise_quote(&w.zhangsan, q.id, vec![line(90_000)], None)
            .await
            .map(|_| ()),
    ] {
        match refused {
            Err(Error::InvalidState(m)) => assert!(m.contains("reopen"), "{m}"),
            other => panic!("a document for a lost opportunity: {other:?}"),
        }
    }
    let r = w
        .crm
        .delete_records(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            &[crate::ids::RecordId(q.id)],
        )
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    assert!(matches!(
        w.crm.quote(&w.zhangsan, q.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        w.crm.quote_by_code(&w.zhangsan, &q.code).await,
        Err(Error::NotFound { .. })
    ));
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                name: Some("规则产品".into()),
                list_price: Some(Money::cny(100)),
                spec: Some("大号".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    let p = w
        .crm
        .update_product(
            &w.admin,
            p.id,
            p.version,
            ProductInput {
                unit: Some("  ".into()),
                spec: Some(" ".into()),
                description: Some("  说明  ".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (p.unit.as_str(), p.spec.as_deref(), p.description.as_deref()),
        ("个", None, Some("说明"))
    );
    // A quote whose contract is purged is approved again, and converts.
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                opportunity_id: None,
                ..new_quote(50_000)
            },
        )
        .await
        .expect("quote");
    let (q, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("approved");
    let c = w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
        .expect("contract");
    let ids = [crate::ids::RecordId(c.id)];
    let r = w
        .crm
        .delete_records(&w.zhangsan, crate::entity::Entity::Contract, &ids)
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    let r = w
        .crm
        .purge_records(&w.admin, crate::entity::Entity::Contract, &ids)
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    let q = w.crm.quote(&w.zhangsan, q.id).await.expect("quote");
    assert_eq!(
        (q.status, q.contract_id),
        (crate::sales::QuoteStatus::Approved, None)
    );
    w.crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
        .expect("converted again");
    // A colleague with a write share of a quote (not of its opportunity)
    // revises it.
    let o2 = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "共享机会".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let q2 = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                opportunity_id: Some(o2.id),
                ..new_quote(80_000)
            },
        )
        .await
        .expect("quote");
    w.crm
        .share_record(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            crate::ids::RecordId(q2.id),
            w.wangwu.user_id,
            crate::records::ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    assert!(w.crm.opportunity(&w.wangwu, o2.id).await.is_err());
    let v2 = w
        .crm
        .revise_quote(&w.wangwu, q2.id, vec![line(70_000)], None)
        .await
        .expect("revised by the colleague");
    assert_eq!(v2.opportunity_id, Some(o2.id));
    // A terminated contract will not be paid: nothing of it is overdue.
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "终止后不逾期".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                signed_on: Some(NaiveDate::from_ymd_opt(2026, 8, 1).expect("date")),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing without a flow");
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![crate::sales::PlanInput {
                due_on: NaiveDate::from_ymd_opt(2026, 9, 1).expect("date"),
                amount: Money::cny(100_000),
                notes: None,
            }],
        )
        .await
        .expect("plan");
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.overdue, Money::cny(100_000));
    w.crm
        .close_contract(&w.zhangsan, c.id, Some("客户取消"))
        .await
        .expect("terminated");
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.overdue, Money::cny(0));
    assert!(col.plans.iter().all(|p| p.days_overdue == 0), "{col:?}");
    assert_eq!(col.outstanding, Money::cny(100_000));
    // What no instalment schedules is due on the end date: ¥1,000.00 in
    // three instalments of ¥333.33, all paid, leaves 1 分 that is overdue
    // once the contract has ended; without plans, all that is outstanding.
    let ended = NaiveDate::from_ymd_opt(2026, 10, 31).expect("date");
    let contract = |title: &str| NewContract {
        title: title.into(),
        customer_id: customer.id.0,
        amount: Some(Money::cny(100_000)),
        signed_on: Some(NaiveDate::from_ymd_opt(2026, 6, 15).expect("date")),
        end_on: Some(ended),
        ..NewContract::default()
    };
    let c = w
        .crm
        .create_contract(&w.zhangsan, contract("余款到期"))
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing");
    let plan = |m: u32| crate::sales::PlanInput {
        due_on: NaiveDate::from_ymd_opt(2026, m, 1).expect("date"),
        amount: Money::cny(33_333),
        notes: None,
    };
    w.crm
        .set_payment_plan(&w.zhangsan, c.id, vec![plan(7), plan(8), plan(9)])
        .await
        .expect("plans");
    w.crm
        .record_payment(
            &w.zhangsan,
            c.id,
            crate::sales::PaymentInput {
                amount: Money::cny(99_999),
                received_on: NaiveDate::from_ymd_opt(2026, 9, 1).expect("date"),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("paid");
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(
        (col.unplanned, col.unplanned_days_overdue, col.overdue),
        (Money::cny(1), 27, Money::cny(1))
    );
    let unplanned = w
        .crm
        .create_contract(&w.zhangsan, contract("无计划"))
        .await
        .expect("contract");
    // A draft is owed nothing yet: nothing of it is overdue, though its
    // end date has passed (the receivables leave it out too).
    let col = w
        .crm
        .collection(&w.zhangsan, unplanned.id)
        .await
        .expect("col");
    assert_eq!(
        (col.overdue, col.unplanned_days_overdue, col.outstanding),
        (Money::cny(0), 0, Money::cny(100_000))
    );
    w.crm
        .submit_contract(&w.zhangsan, unplanned.id, Vec::new(), None)
        .await
        .expect("executing");
    let col = w
        .crm
        .collection(&w.zhangsan, unplanned.id)
        .await
        .expect("col");
    assert_eq!(col.overdue, Money::cny(100_000));
    let rows = w.crm.receivables(&w.zhangsan).await.expect("receivables");
    let aged: i64 = rows.iter().map(|r| r.aging[0].minor).sum();
    assert!(aged >= 100_001, "{rows:?}");
}

/// The versions of a quote list those the actor may read: a share of the
/// quote holds for its revisions. A revision stays the quote owner's,
/// whoever makes it, and keeps its custom fields.
pub async fn quote_versions_follow_read_rights(store: Arc<dyn Store>) {
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::records::ShareAccess;
    use crate::sales::{LineInput, NewQuote};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = |fen: i64| LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: Some("台".into()),
        quantity: 1,
        unit_price: Some(Money::cny(fen)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let v1 = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为服务器报价".into(),
                customer_id: customer.id.0,
                lines: vec![line(100_000)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("v1");
    w.crm
        .share_record(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            RecordId(v1.id),
            w.wangwu.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share v1");
    let v2 = w
        .crm
        .revise_quote(&w.zhangsan, v1.id, vec![line(90_000)], None)
        .await
        .expect("v2");
    // A custom field's value on v2 goes on with the next version.
    w.crm
        .define_custom_field(
            &w.admin,
            crate::custom::NewCustomField {
                entity: crate::entity::Entity::Quote,
                key: "pay_terms".into(),
                label: "付款方式".into(),
                label_en: Some("Payment terms".into()),
                field_type: crate::custom::CustomFieldType::Text,
                options: Vec::new(),
                required: false,
                unique: false,
            },
        )
        .await
        .expect("custom field");
    let mut f = crate::records::Fields::new();
    f.insert("custom.pay_terms".into(), json!("月结30天"));
    w.crm
        .update_record(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            RecordId(v2.id),
            v2.version,
            f,
        )
        .await
        .expect("pay terms");
    // The manager revises: v3 stays the sales person's quote, with its
    // custom fields; the manager is its creator.
    let v3 = w
        .crm
        .revise_quote(&w.lisi, v2.id, vec![line(80_000)], None)
        .await
        .expect("v3");
    assert_eq!(v3.owner_id, Some(w.zhangsan.user_id.0));
    let v3_row = w
        .crm
        .store
        .get(crate::schema::Table::Quotes, v3.id)
        .await
        .expect("read")
        .expect("v3 row");
    assert_eq!(v3_row.get("created_by").as_id(), Some(w.lisi.user_id.0));
    assert_eq!(
        v3_row.get("custom").as_json(),
        Some(&json!({"pay_terms": "月结30天"}))
    );
    let ids = |vs: Vec<crate::sales::Quote>| vs.into_iter().map(|v| v.id).collect::<Vec<_>>();
    assert_eq!(
        ids(w
            .crm
            .quote_versions(&w.wangwu, v1.id)
            .await
            .expect("wangwu")),
        vec![v1.id, v2.id, v3.id],
        "a share of the quote holds for its revisions"
    );
    assert_eq!(
        ids(w
            .crm
            .quote_versions(&w.zhangsan, v1.id)
            .await
            .expect("zhangsan")),
        vec![v1.id, v2.id, v3.id],
        "the manager's revision is still the sales person's quote"
    );
    assert_eq!(
        ids(w.crm.quote_versions(&w.lisi, v3.id).await.expect("lisi")),
        vec![v1.id, v2.id, v3.id]
    );
    // A colleague with a write share revises it, and still has it.
    w.crm
        .share_record(
            &w.zhangsan,
            crate::entity::Entity::Quote,
            RecordId(v3.id),
            w.wangwu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("write share");
    let v4 = w
        .crm
        .revise_quote(&w.wangwu, v3.id, vec![line(70_000)], None)
        .await
        .expect("revised by the colleague");
    assert_eq!(v4.owner_id, Some(w.zhangsan.user_id.0));
}

/// The message of a validation error, or a panic naming what came instead.
fn invalid_message<T: std::fmt::Debug>(got: crate::error::Result<T>) -> String {
    match got {
        Err(Error::Validation(v)) => v.to_string(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Deactivates a user (as the administrator).
async fn deactivate(w: &World, user: crate::ids::UserId) {
    let u = w.crm.user(&w.admin, user).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            user,
            u.version,
            crate::org::UserPatch {
                active: Some(false),
                ..crate::org::UserPatch::default()
            },
        )
        .await
        .expect("deactivate");
}

/// The applicant never approves their own submission: picking oneself, or
/// nobody for a step of picks (which would pass it by its fallback), or a
/// deactivated user or another company's is refused — for a contract too,
/// which stays a draft; named users and roles that include the applicant
/// resolve to the others, and a step left with only the applicant passes
/// by its fallback, recorded as such.
pub async fn approval_applicant_never_approves_own_submission(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract};
    use serde_json::json;
    let w = with_sales_rights(World::new(store.clone()).await).await;
    let other = World::with_code(store, "BBB").await;
    let picks = FlowDef {
        steps: vec![step(
            "自选审批人",
            ApproverRule::ApplicantPicks,
            SignMode::Any,
        )],
        restart: Restart::FromFirst,
    };
    for doc_type in [GENERIC_DOC, "contract"] {
        w.crm
            .define_approval_flow(&w.admin, doc_type, "自选审批", picks.clone())
            .await
            .expect("flow");
    }
    deactivate(&w, w.wangwu.user_id).await;
    let doc = Uuid::from_u128(0xD0C5);
    let submit = |picked: Vec<Uuid>| {
        let w = &w;
        async move {
            let mut req = request(doc, 1);
            req.picked = picked;
            w.crm.submit_for_approval(&w.zhangsan, req).await
        }
    };
    let me = w.zhangsan.user_id.0;
    let m = invalid_message(submit(vec![me]).await);
    assert!(m.contains("cannot pick themselves"), "{m}");
    let m = invalid_message(submit(vec![w.lisi.user_id.0, me]).await);
    assert!(m.contains("cannot pick themselves"), "{m}");
    let m = invalid_message(submit(Vec::new()).await);
    assert!(
        m.contains("自选审批人") && m.contains("pick at least one"),
        "{m}"
    );
    // A deactivated colleague is named; another company's user is not.
    let m = invalid_message(submit(vec![w.wangwu.user_id.0]).await);
    assert!(
        m.contains("(wangwu)") && m.contains("not an active user"),
        "{m}"
    );
    let stranger = other.lisi.user_id.0;
    let m = invalid_message(submit(vec![stranger]).await);
    assert!(
        m.contains(&stranger.to_string())
            && m.contains("not an active user")
            && !m.contains("(lisi)"),
        "{m}"
    );
    assert!(
        w.crm
            .approval_of(&w.zhangsan, GENERIC_DOC, doc)
            .await
            .expect("of")
            .is_none(),
        "nothing was stored"
    );
    let a = submit(vec![w.zhaoliu.user_id.0])
        .await
        .expect("a colleague");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.pending_with, vec![w.zhaoliu.user_id.0]);
    assert!(matches!(
        w.crm.approve(&w.zhangsan, a.id, None).await,
        Err(Error::Forbidden(_))
    ));

    // A contract: picking oneself or nobody leaves it a draft.
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    for picked in [vec![me], Vec::new()] {
        invalid_message(w.crm.submit_contract(&w.zhangsan, c.id, picked, None).await);
        let now = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
        assert_eq!(now.status, ContractStatus::Draft);
    }
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, vec![w.lisi.user_id.0], None)
        .await
        .expect("submit");
    let a = a.expect("approval");
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    w.crm.approve(&w.lisi, a.id, None).await.expect("lisi");
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(now.status, ContractStatus::Executing);

    // Named users and a role including the applicant: the others approve;
    // a step of nobody else passes by its fallback.
    let manager_role = w.lisi.roles.first().map(|r| r.id.0).expect("role");
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "会签",
            FlowDef {
                steps: vec![
                    step(
                        "经理",
                        ApproverRule::Role {
                            role_id: manager_role,
                        },
                        SignMode::Any,
                    ),
                    step(
                        "会签",
                        ApproverRule::Users {
                            users: vec![w.lisi.user_id.0, w.zhaoliu.user_id.0],
                        },
                        SignMode::All,
                    ),
                ],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let a = w
        .crm
        .submit_for_approval(&w.lisi, request(Uuid::from_u128(0xD0C6), 1))
        .await
        .expect("lisi submits");
    assert_eq!(a.current_step.as_deref(), Some("会签"));
    assert_eq!(a.pending_with, vec![w.zhaoliu.user_id.0]);
    assert!(matches!(
        w.crm.approve(&w.lisi, a.id, None).await,
        Err(Error::Forbidden(_))
    ));
    let a = w
        .crm
        .approve(&w.zhaoliu, a.id, None)
        .await
        .expect("zhaoliu");
    assert_eq!(a.status, Status::Approved);
    let actions = w
        .crm
        .approval_actions(&w.lisi, a.id)
        .await
        .expect("actions");
    let kinds: Vec<(&str, Option<&str>)> = actions
        .iter()
        .map(|x| (x.action.as_str(), x.step_name.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("submit", None),
            ("auto_pass", Some("经理")),
            ("approve", Some("会签")),
        ]
    );
    assert!(
        actions[1]
            .comment
            .as_deref()
            .is_some_and(|c| c.contains("applicant")),
        "{:?}",
        actions[1]
    );
}

/// A flow names only active users of the company and roles of the company
/// with an active member, each refusal naming the step and the problem; a
/// named user deactivated after the definition is unresolved at
/// submission, and the step's fallback decides.
pub async fn approval_flows_name_only_active_people_of_the_company(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let other = World::with_code(store, "BBB").await;
    let define = |approvers: ApproverRule| {
        let w = &w;
        async move {
            w.crm
                .define_approval_flow(
                    &w.admin,
                    GENERIC_DOC,
                    "采购审批",
                    FlowDef {
                        steps: vec![
                            step(
                                "直属上级",
                                ApproverRule::Superior { level: 1 },
                                SignMode::Any,
                            ),
                            step("复核", approvers, SignMode::Any),
                        ],
                        restart: Restart::FromFirst,
                    },
                )
                .await
        }
    };
    let users = |ids: &[crate::ids::UserId]| ApproverRule::Users {
        users: ids.iter().map(|u| u.0).collect(),
    };
    // Another company's user, and a deactivated one.
    let foreign = other.zhaoliu.user_id;
    let m = invalid_message(define(users(&[w.zhaoliu.user_id, foreign])).await);
    assert!(
        m.contains("step 2 (复核)")
            && m.contains(&foreign.0.to_string())
            && m.contains("not an active user of this company"),
        "{m}"
    );
    deactivate(&w, w.wangwu.user_id).await;
    // A user of the company is named by username and name, not by id.
    let m = invalid_message(define(users(&[w.wangwu.user_id])).await);
    assert!(
        m.contains("wangwu (王五)") && !m.contains(&w.wangwu.user_id.0.to_string()),
        "{m}"
    );
    // Another company's role, an unknown one, one with no active member.
    let foreign_role = other.lisi.roles.first().map(|r| r.id.0).expect("role");
    for role_id in [foreign_role, Uuid::from_u128(0xBAD)] {
        let m = invalid_message(define(ApproverRule::Role { role_id }).await);
        assert!(m.contains("not a role of this company"), "{m}");
    }
    let empty = w
        .crm
        .create_role(
            &w.admin,
            crate::org::RoleSpec {
                name: "财务".into(),
                ..crate::org::RoleSpec::default()
            },
        )
        .await
        .expect("role");
    let m = invalid_message(
        define(ApproverRule::Role {
            role_id: empty.id.0,
        })
        .await,
    );
    assert!(m.contains("财务") && m.contains("no active member"), "{m}");
    assert!(
        w.crm
            .approval_flow(&w.admin, GENERIC_DOC)
            .await
            .expect("flow")
            .is_none(),
        "nothing was defined"
    );

    // Defined with active people; one of them leaves afterwards: at
    // submission they are not waited for.
    define(users(&[w.zhaoliu.user_id, w.admin.user_id]))
        .await
        .expect("flow");
    deactivate(&w, w.zhaoliu.user_id).await;
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0xD0C7), 1))
        .await
        .expect("submit");
    let a = w.crm.approve(&w.lisi, a.id, None).await.expect("lisi");
    assert_eq!(a.current_step.as_deref(), Some("复核"));
    assert_eq!(a.pending_with, vec![w.admin.user_id.0]);
    // Nobody active left: the step's fallback (auto-pass) decides.
    define(users(&[w.zhaoliu.user_id, w.admin.user_id]))
        .await
        .map(|_| ())
        .expect_err("zhaoliu is no longer active");
    define(users(&[w.lisi.user_id])).await.expect("flow");
    deactivate(&w, w.lisi.user_id).await;
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0xD0C8), 1))
        .await
        .expect("submit");
    assert_eq!(a.status, Status::Approved, "{a:?}");
    let kinds: Vec<String> = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions")
        .into_iter()
        .map(|x| x.action)
        .collect();
    assert_eq!(kinds, vec!["submit", "auto_pass", "auto_pass"]);
}

/// Sales amounts are kept as 分 of CNY: a contract, an opportunity, a
/// payment plan or an invoice in another currency is refused (its minor
/// units would be read back as 分); delivery quantities near the largest
/// integer do not wrap around the "not more than ordered" check.
pub async fn sales_amounts_are_cny_and_quantities_do_not_wrap(store: Arc<dyn Store>) {
    use crate::money::{Currency, Money};
    use crate::sales::{DeliveryLine, LineInput, NewContract, PlanInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "币种测试有限公司", json!({})).await;
    let yen = Money {
        minor: 100_000,
        currency: Currency::new("JPY").expect("JPY"),
    };
    let err = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "日元合同".into(),
                customer_id: customer.id.0,
                amount: Some(yen),
                ..NewContract::default()
            },
        )
        .await
        .expect_err("a contract in yen");
    assert!(err.to_string().contains("CNY"), "{err}");
    let line = LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: Some("台".into()),
        quantity: 10,
        unit_price: Some(Money::cny(10_000)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "设备合同".into(),
                customer_id: customer.id.0,
                lines: vec![line],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let err = w
        .crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![PlanInput {
                due_on: d,
                amount: yen,
                notes: None,
            }],
        )
        .await
        .expect_err("a plan in yen");
    assert!(err.to_string().contains("CNY"), "{err}");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let huge = DeliveryLine {
        line: 1,
        quantity: i64::MAX,
    };
    let err = w
        .crm
        .record_delivery(&w.zhangsan, c.id, d, vec![huge, huge], None)
        .await
        .expect_err("twice the largest quantity is more than ordered");
    assert!(matches!(err, Error::Validation(_)), "{err}");
    let err = w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            crate::sales::InvoiceType::VatNormal,
            yen,
            None,
            None,
        )
        .await
        .expect_err("an invoice in yen");
    assert!(err.to_string().contains("CNY"), "{err}");
    // A small-scale taxpayer's 3 % and 1 % lines; 15 % is no VAT rate.
    let small = |rate: i64| LineInput {
        product_id: None,
        name: "咨询服务".into(),
        unit: Some("次".into()),
        quantity: 1,
        unit_price: Some(Money::cny(10_300)),
        discount_bp: 0,
        tax_rate: Some(rate),
    };
    let contract = |rate: i64| NewContract {
        title: format!("小规模合同{rate}"),
        customer_id: customer.id.0,
        lines: vec![small(rate)],
        ..NewContract::default()
    };
    let c3 = w
        .crm
        .create_contract(&w.zhangsan, contract(300))
        .await
        .expect("3 %");
    assert_eq!(
        c3.lines[0].tax.minor, 300,
        "103.00 at 3 % holds 3.00 of tax"
    );
    w.crm
        .create_contract(&w.zhangsan, contract(100))
        .await
        .expect("1 %");
    let err = w
        .crm
        .create_contract(&w.zhangsan, contract(1500))
        .await
        .expect_err("15 %");
    assert!(err.to_string().contains("3%"), "{err}");
    // Quotes and payments are submitted without picks: no pick step for them.
    for doc in ["quote", "payment"] {
        let err = w
            .crm
            .define_approval_flow(
                &w.admin,
                doc,
                "自选审批",
                FlowDef {
                    steps: vec![step("自选", ApproverRule::ApplicantPicks, SignMode::Any)],
                    restart: Restart::FromFirst,
                },
            )
            .await
            .expect_err("a pick step nobody can fill");
        assert!(err.to_string().contains("without picking"), "{doc}: {err}");
    }
}

/// A typed unit price below the product's list price counts as discount
/// for approval, combined with the line's discount and rounded against the
/// seller (10.001 % is above 10 %); a free-text line keeps its own
/// discount.
pub async fn quote_discount_counts_prices_below_list_price(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, ProductInput, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let product = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("SV-1000".into()),
                name: Some("交换机".into()),
                list_price: Some(Money::cny(100_000)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "折扣测试有限公司", json!({})).await;
    let line = |product_id: Option<Uuid>, price: Option<i64>, discount_bp: i64| LineInput {
        product_id,
        name: if product_id.is_some() {
            String::new()
        } else {
            "安装服务".into()
        },
        unit: None,
        quantity: 2,
        unit_price: price.map(Money::cny),
        discount_bp,
        tax_rate: None,
    };
    let p = Some(product.id);
    // (line, effective discount, status after submitting)
    let cases = [
        (line(p, Some(10_000), 0), 9000, QuoteStatus::PendingApproval),
        (line(p, Some(89_999), 0), 1001, QuoteStatus::PendingApproval),
        (
            line(p, Some(95_000), 600),
            1070,
            QuoteStatus::PendingApproval,
        ),
        (line(p, Some(90_000), 0), 1000, QuoteStatus::Approved),
        (line(p, None, 1000), 1000, QuoteStatus::Approved),
        (line(p, Some(120_000), 1000), 0, QuoteStatus::Approved),
        (line(None, Some(10_000), 0), 0, QuoteStatus::Approved),
        (
            line(None, Some(10_000), 1001),
            1001,
            QuoteStatus::PendingApproval,
        ),
    ];
    let mut approved = None;
    for (i, (l, effective, status)) in cases.into_iter().enumerate() {
        let q = w
            .crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: format!("折扣报价{i}"),
                    customer_id: customer.id.0,
                    lines: vec![l],
                    ..NewQuote::default()
                },
            )
            .await
            .expect("quote");
        assert_eq!(q.totals.max_discount_bp, effective, "case {i}");
        let (q, _) = w
            .crm
            .submit_quote(&w.zhangsan, q.id, None)
            .await
            .expect("submit");
        assert_eq!(q.status, status, "case {i}");
        if status == QuoteStatus::Approved && approved.is_none() {
            approved = Some(q);
        }
    }
    // A revision typing ¥100 for the ¥1,000 product needs approval too.
    let approved = approved.expect("an approved quote");
    let q = w
        .crm
        .revise_quote(
            &w.zhangsan,
            approved.id,
            vec![line(p, Some(10_000), 0)],
            None,
        )
        .await
        .expect("revise");
    assert_eq!(q.totals.max_discount_bp, 9000);
    let (q, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit revision");
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    assert!(approval.is_some_and(|a| a.status == Status::Pending));
    // A contract's approval looks at its lines' discount the same way.
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("contract flow");
    for (price, pending) in [(10_000, true), (95_000, false)] {
        let c = w
            .crm
            .create_contract(
                &w.zhangsan,
                crate::sales::NewContract {
                    title: format!("折扣合同{price}"),
                    customer_id: customer.id.0,
                    contract_type: None,
                    opportunity_id: None,
                    lines: vec![line(p, Some(price), 0)],
                    amount: None,
                    signed_on: None,
                    start_on: None,
                    end_on: None,
                    notes: None,
                },
            )
            .await
            .expect("contract");
        let (_, approval) = w
            .crm
            .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
            .await
            .expect("submit contract");
        assert_eq!(
            approval.is_some_and(|a| a.status == Status::Pending),
            pending,
            "contract at ¥{price}"
        );
    }
}

/// A quote prices only an opportunity of its own customer that the actor
/// can read in the company; anything else is refused when the quote is
/// created, naming the field.
pub async fn quote_opportunity_is_the_customers_and_readable(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewOpportunity, NewQuote};
    use serde_json::json;
    let w = with_sales_rights(World::new(store.clone()).await).await;
    let other = World::with_code(store, "BBB").await;
    let customer = w.customer(&w.zhangsan, "机会测试有限公司", json!({})).await;
    let second = w.customer(&w.zhangsan, "另一客户有限公司", json!({})).await;
    let opportunity = |w: &World, actor: &crate::auth::Actor, customer: Uuid, name: &str| {
        let (crm, actor, name) = (w.crm.clone(), actor.clone(), name.to_string());
        async move {
            crm.create_opportunity(
                &actor,
                NewOpportunity {
                    name,
                    customer_id: customer,
                    ..NewOpportunity::default()
                },
            )
            .await
            .expect("opportunity")
        }
    };
    let own = opportunity(&w, &w.zhangsan, customer.id.0, "本客户机会").await;
    let seconds = opportunity(&w, &w.zhangsan, second.id.0, "另一客户机会").await;
    let admins = opportunity(&w, &w.admin, customer.id.0, "管理员机会").await;
    let foreign_customer = other.customer(&other.admin, "外司客户", json!({})).await;
    let foreign = opportunity(&other, &other.admin, foreign_customer.id.0, "外司机会").await;
    let quote = |opportunity: Uuid| NewQuote {
        title: "机会报价".into(),
        customer_id: customer.id.0,
        opportunity_id: Some(opportunity),
        lines: vec![LineInput {
            product_id: None,
            name: "服务".into(),
            unit: None,
            quantity: 1,
            unit_price: Some(Money::cny(10_000)),
            discount_bp: 0,
            tax_rate: None,
        }],
        ..NewQuote::default()
    };
    let m = invalid_message(w.crm.create_quote(&w.zhangsan, quote(seconds.id)).await);
    assert!(
        m.contains("opportunity_id") && m.contains(&seconds.code) && m.contains("another customer"),
        "{m}"
    );
    for (what, id) in [
        ("unreadable", admins.id),
        ("another company's", foreign.id),
        (
            "unknown",
            Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001),
        ),
    ] {
        let m = invalid_message(w.crm.create_quote(&w.zhangsan, quote(id)).await);
        assert!(
            m.contains("opportunity_id") && m.contains(&format!("no opportunity {id}")),
            "{what}: {m}"
        );
    }
    let q = w
        .crm
        .create_quote(&w.zhangsan, quote(own.id))
        .await
        .expect("the customer's own opportunity");
    assert_eq!(q.opportunity_id, Some(own.id));
    // A contract, made directly, holds to the same.
    let contract = |opportunity: Uuid| crate::sales::NewContract {
        title: "机会合同".into(),
        customer_id: customer.id.0,
        opportunity_id: Some(opportunity),
        amount: Some(Money::cny(10_000)),
        ..crate::sales::NewContract::default()
    };
    let m = invalid_message(
        w.crm
            .create_contract(&w.zhangsan, contract(seconds.id))
            .await,
    );
    assert!(
        m.contains(&seconds.code) && m.contains("not the contract's"),
        "{m}"
    );
    w.crm
        .create_contract(&w.zhangsan, contract(own.id))
        .await
        .expect("a contract of the customer's own opportunity");
}

/// Winning an opportunity needs every field its pipeline requires on the
/// way to the last stage, named when missing; a won or lost opportunity
/// keeps its amount, product lines and expected close date, while its
/// notes may still change.
pub async fn opportunity_win_needs_every_stage_and_closed_ones_keep_their_amount(
    store: Arc<dyn Store>,
) {
    use crate::money::Money;
    use crate::sales::{NewOpportunity, OppLine, OppStatus, OpportunityPatch, StageCommand};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "赢单测试有限公司", json!({})).await;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: customer.id.0,
        ..NewOpportunity::default()
    };
    let o = w
        .crm
        .create_opportunity(&w.zhangsan, new("空机会"))
        .await
        .expect("opportunity");
    assert_eq!(o.stage_name, "初期沟通");
    let err = w
        .crm
        .change_opportunity_stage(&w.zhangsan, o.id, o.version, StageCommand::Win)
        .await
        .expect_err("won with nothing filled in");
    let m = err.to_string();
    assert!(
        matches!(err, Error::InvalidState(_))
            && m.contains("amount")
            && m.contains("expected_close")
            && m.contains("products"),
        "{m}"
    );
    let line = |price: i64| OppLine {
        product_id: None,
        name: "服务器".into(),
        quantity: 2,
        unit_price: Money::cny(price),
    };
    let o = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            o.id,
            o.version,
            OpportunityPatch {
                products: Some(vec![line(50_000)]),
                expected_close: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
                ..OpportunityPatch::default()
            },
        )
        .await
        .expect("fill in");
    let won = w
        .crm
        .change_opportunity_stage(&w.zhangsan, o.id, o.version, StageCommand::Win)
        .await
        .expect("win");
    assert_eq!(
        (won.status, won.amount),
        (OppStatus::Won, Money::cny(100_000))
    );
    let frozen = [
        OpportunityPatch {
            amount: Some(Money::cny(1)),
            ..OpportunityPatch::default()
        },
        OpportunityPatch {
            products: Some(vec![line(1)]),
            ..OpportunityPatch::default()
        },
        OpportunityPatch {
            expected_close: chrono::NaiveDate::from_ymd_opt(2028, 1, 1),
            ..OpportunityPatch::default()
        },
    ];
    for patch in frozen.clone() {
        let err = w
            .crm
            .update_opportunity(&w.zhangsan, won.id, won.version, patch)
            .await
            .expect_err("a won opportunity's deal changed");
        assert!(
            matches!(&err, Error::InvalidState(m) if m.contains("won") && m.contains("can no longer change")),
            "{err}"
        );
    }
    // Unchanged values and the notes are fine.
    let noted = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            won.id,
            won.version,
            OpportunityPatch {
                amount: Some(Money::cny(100_000)),
                notes: Some("已签约".into()),
                ..OpportunityPatch::default()
            },
        )
        .await
        .expect("notes after winning");
    assert_eq!(
        (noted.notes.as_deref(), noted.amount),
        (Some("已签约"), Money::cny(100_000))
    );
    let lost = w
        .crm
        .create_opportunity(&w.zhangsan, new("丢单机会"))
        .await
        .expect("second");
    let lost = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            lost.id,
            lost.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lose");
    for patch in frozen {
        let err = w
            .crm
            .update_opportunity(&w.zhangsan, lost.id, lost.version, patch)
            .await
            .expect_err("a lost opportunity's deal changed");
        assert!(
            matches!(&err, Error::InvalidState(m) if m.contains("lost") && m.contains("reopen")),
            "{err}"
        );
    }
}

/// No store keeps a NUL character (PostgreSQL refuses one): names and
/// titles of products, quotes and other sales records drop it, as record
/// fields do, while approval comments and titles and organisation names
/// are refused naming the field — the same on every backend.
pub async fn texts_holding_nul_are_cleaned_or_refused(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::ProductInput;
    let w = with_sales_rights(World::new(store).await).await;
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("SW-1".into()),
                name: Some("交换\0机".into()),
                list_price: Some(Money::cny(10_000)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    assert_eq!(p.name, "交换机");
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![step(
                    "经理",
                    ApproverRule::Users {
                        users: vec![w.lisi.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("define");
    let mut req = request(Uuid::from_u128(0x0A11), 100_000);
    req.comment = Some("请\0审批".into());
    let m = invalid_message(w.crm.submit_for_approval(&w.zhangsan, req).await);
    assert!(m.contains("comment") && m.contains("NUL"), "{m}");
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0x0A11), 100_000))
        .await
        .expect("submitted");
    let m = invalid_message(w.crm.approve(&w.lisi, a.id, Some("同\0意")).await);
    assert!(m.contains("comment") && m.contains("NUL"), "{m}");
    w.crm
        .approve(&w.lisi, a.id, Some("同意"))
        .await
        .expect("approved");
    let m = invalid_message(w.crm.create_department(&w.admin, "华北\0大区", None).await);
    assert!(m.contains("name") && m.contains("NUL"), "{m}");
}

/// A product's name cannot be blanked; a product code taken by a live
/// product is refused by name on create, recode and restore, and between
/// two concurrent creations; a line's unit price must be CNY, and the
/// refusal names the line.
pub async fn product_names_codes_and_line_prices_are_checked(store: Arc<dyn Store>) {
    use crate::money::{Currency, Money};
    use crate::sales::{LineInput, NewQuote, ProductInput};
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store.clone(), w.clock.clone());
    let product = |code: &str, name: &str| ProductInput {
        code: Some(code.into()),
        name: Some(name.into()),
        list_price: Some(Money::cny(10_000)),
        ..ProductInput::default()
    };
    let a = w
        .crm
        .create_product(&w.admin, product("SV-1", "服务器"))
        .await
        .expect("product");
    let m = invalid_message(
        w.crm
            .update_product(
                &w.admin,
                a.id,
                a.version,
                ProductInput {
                    name: Some("  ".into()),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(m.contains("name") && m.contains("is required"), "{m}");
    let duplicate = |got: crate::error::Result<crate::sales::Product>| match got {
        Err(Error::Duplicate { message, .. }) => message,
        other => panic!("expected a duplicate, got {other:?}"),
    };
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product(" SV-1 ", "另一台服务器"))
            .await,
    );
    assert!(m.contains("SV-1") && m.contains("服务器"), "{m}");
    let b = w
        .crm
        .create_product(&w.admin, product("SV-2", "存储"))
        .await
        .expect("second product");
    let m = duplicate(
        w.crm
            .update_product(
                &w.admin,
                b.id,
                b.version,
                ProductInput {
                    code: Some("SV-1".into()),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(m.contains("SV-1") && m.contains("服务器"), "{m}");
    // Its own code is no conflict.
    w.crm
        .update_product(
            &w.admin,
            b.id,
            b.version,
            ProductInput {
                code: Some("SV-2".into()),
                name: Some("存储阵列".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("own code");
    // A code in the recycle bin stays its product's (see
    // `a_binned_products_code_stays_taken` for more).
    w.crm
        .set_product_deleted(&w.admin, a.id, true)
        .await
        .expect("delete");
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product("SV-1", "新服务器"))
            .await,
    );
    assert!(
        m.contains("SV-1") && m.contains("服务器") && m.contains("recycle bin"),
        "{m}"
    );
    w.crm
        .set_product_deleted(&w.admin, a.id, false)
        .await
        .expect("restored under its code");
    // Another session creates SV-9 just before this one writes its SV-9:
    // refused by name, not by the store's index.
    let admin = w.admin.clone();
    hooked.before_write(crate::schema::Table::Products, async move {
        other
            .create_product(&admin, product("SV-9", "先到的产品"))
            .await
            .expect("created meanwhile");
    });
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product("SV-9", "后到的产品"))
            .await,
    );
    assert!(m.contains("SV-9") && m.contains("another product"), "{m}");
    assert_eq!(
        w.crm
            .product_by_code(&w.admin, "SV-9")
            .await
            .expect("SV-9")
            .name,
        "先到的产品"
    );
    // The same, the other session typing the code in another letter case
    // (the guard inside the write compares codes as the check does).
    let admin = w.admin.clone();
    let other = crate::crm::Crm::new(store, w.clock.clone());
    hooked.before_write(crate::schema::Table::Products, async move {
        other
            .create_product(&admin, product("sv-10", "小写先到"))
            .await
            .expect("created meanwhile");
    });
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product("Sv-10", "大小写后到"))
            .await,
    );
    assert!(m.contains("Sv-10") && m.contains("another product"), "{m}");
    // A code typed in full-width letters is kept in half-width ones, and
    // taken for any spelling of it, whichever came first.
    let full = w
        .crm
        .create_product(&w.admin, product("ＸＹＺ-7", "全角编号"))
        .await
        .expect("full-width code");
    assert_eq!(full.code, "XYZ-7");
    for typed in ["xyz-7", "XＹZ-7", "ｘｙｚ－７"] {
        let m = duplicate(
            w.crm
                .create_product(&w.admin, product(typed, "同编号"))
                .await,
        );
        assert!(m.contains("全角编号"), "{typed}: {m}");
    }
    // A line priced in dollars is refused by its number.
    let customer = w.customer(&w.zhangsan, "币种报价有限公司", json!({})).await;
    let line = |price: Money| LineInput {
        product_id: None,
        name: "服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(price),
        discount_bp: 0,
        tax_rate: None,
    };
    let usd = Money {
        minor: 10_000,
        currency: Currency::new("USD").expect("USD"),
    };
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: "美元报价".into(),
                    customer_id: customer.id.0,
                    lines: vec![line(Money::cny(10_000)), line(usd)],
                    ..NewQuote::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("lines[2].unit_price") && m.contains("CNY") && !m.contains("lines[1]"),
        "{m}"
    );
}

/// Gives `role` these permissions, its name and field rules kept.
async fn regrant(w: &World, role: &crate::auth::Role, permissions: Vec<crate::auth::Permission>) {
    w.crm
        .update_role(
            &w.admin,
            role.id,
            role.version,
            crate::org::RoleSpec {
                name: role.name.clone(),
                is_admin: role.is_admin,
                permissions,
                field_rules: role.field_rules.clone(),
            },
        )
        .await
        .expect("grant");
}

/// Adds export grants to the (first) role of `actor`.
async fn grant_exports(
    w: &World,
    actor: &crate::auth::Actor,
    grants: &[(crate::entity::Entity, crate::auth::DataScope)],
) {
    use crate::auth::{Action, Permission};
    let role = actor.roles.first().expect("a role");
    let mut permissions = role.permissions.clone();
    for (entity, scope) in grants {
        permissions.push(Permission {
            entity: *entity,
            action: Action::Export,
            scope: *scope,
        });
    }
    regrant(w, role, permissions).await;
}

/// All pages of a sales export.
async fn sales_exported(
    w: &World,
    actor: &crate::auth::Actor,
    list: crate::sales::SalesList,
    picks: &[&str],
    english: bool,
    page_size: u64,
) -> crate::error::Result<(Vec<String>, Vec<Vec<crate::export::ExportValue>>)> {
    let picks: Vec<String> = picks.iter().map(|p| p.to_string()).collect();
    let columns = w.crm.export_columns(actor, list.entity(), &picks).await?;
    let mut cursor = w
        .crm
        .sales_export_cursor(actor, list, columns, english, page_size)
        .await?;
    let headers = cursor
        .columns()
        .iter()
        .map(|c| c.header_zh.clone())
        .collect();
    let mut rows = Vec::new();
    while let Some(page) = cursor.next_page().await? {
        assert!(
            page.len() as u64 <= page_size,
            "a page holds at most its size"
        );
        rows.extend(page);
    }
    Ok((headers, rows))
}

/// A quote's export tells what approval looks at: beside the gross before
/// the lines' own discounts (折前金额) and those discounts, the lines at list
/// price (标价合计), how far the quote comes below it (低于标价) — a price
/// typed below the list price counts, as it does for approval — and the
/// greatest discount of a line (最高折扣率).
pub async fn quote_export_tells_the_discount_off_list(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::export::ExportValue as V;
    use crate::money::Money;
    use crate::sales::{NewQuote, ProductInput, SalesList, lines::LineInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let pen = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("PEN".into()),
                name: Some("签字笔".into()),
                list_price: Some(Money::cny(300)),
                tax_rate: Some(1300),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = |product_id: Option<Uuid>, name: &str, quantity: i64, fen: i64, bp: i64| LineInput {
        product_id,
        name: name.into(),
        unit: None,
        quantity,
        unit_price: Some(Money::cny(fen)),
        discount_bp: bp,
        tax_rate: Some(1300),
    };
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "办公用品".into(),
                customer_id: customer.id.0,
                lines: vec![
                    // ¥2.50 against a list price of ¥3.00: 16.67 % off.
                    line(Some(pen.id), "签字笔", 1, 250, 0),
                    // A line of its own, 10 % off ¥10.00 × 2.
                    line(None, "装订", 2, 1_000, 1_000),
                ],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let (headers, rows) = sales_exported(
        &w,
        &w.admin,
        SalesList::Quotes {
            customer_id: None,
            search: None,
        },
        &[
            "code",
            "gross",
            "discount",
            "amount",
            "list_total",
            "below_list",
            "max_discount",
        ],
        false,
        100,
    )
    .await
    .expect("export");
    assert_eq!(
        headers,
        vec![
            "报价单号",
            "折前金额",
            "折扣金额",
            "报价金额",
            "标价合计",
            "低于标价",
            "最高折扣率%"
        ]
    );
    assert_eq!(
        rows,
        vec![vec![
            V::Text(q.code.clone()),
            // 2.50 + 20.00 before the lines' discounts; 2.00 off the second.
            V::Money(2_250),
            V::Money(200),
            V::Money(2_050),
            // 3.00 + 20.00 at list price: 2.50 below it in all.
            V::Money(2_300),
            V::Money(250),
            V::Number(16.67),
        ]]
    );
    // English headers.
    let columns = w
        .crm
        .export_columns(
            &w.admin,
            Entity::Quote,
            &["List total".into(), "Below list".into()],
        )
        .await
        .expect("english picks");
    assert_eq!(columns.len(), 2);
}

/// Opportunities, quotes and contracts export as their lists find them,
/// newest first, with the columns picked in the order picked: money as
/// money, dates as dates, statuses and types as words of the export's
/// language. An export holds to the read scope and the export grant's
/// scope, names a customer only for who may read it, and is refused without
/// the export permission or with an unknown column; keyset pages neither
/// repeat nor skip a row.
pub async fn sales_exports_hold_to_read_and_export_scope(store: Arc<dyn Store>) {
    use crate::auth::DataScope;
    use crate::entity::Entity;
    use crate::export::ExportValue as V;
    use crate::money::Money;
    use crate::records::ShareAccess;
    use crate::sales::{
        ContractQuery, ContractType, NewContract, NewOpportunity, NewQuote, OpportunityQuery,
        SalesList, lines::LineInput,
    };
    use chrono::NaiveDate;
    use serde_json::json;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let mut w = with_sales_rights(World::new(store).await).await;
    // Sellers (zhangsan, wangwu) export their own; the manager (lisi) reads
    // the whole department tree but exports only their own contracts, and
    // the tree's opportunities.
    grant_exports(
        &w,
        &w.zhangsan,
        &[
            (Entity::Opportunity, DataScope::Own),
            (Entity::Quote, DataScope::Own),
            (Entity::Contract, DataScope::Own),
        ],
    )
    .await;
    grant_exports(
        &w,
        &w.lisi,
        &[
            (Entity::Contract, DataScope::Own),
            (Entity::Opportunity, DataScope::DepartmentTree),
        ],
    )
    .await;
    for a in [&mut w.zhangsan, &mut w.wangwu, &mut w.lisi, &mut w.zhaoliu] {
        *a = w.crm.actor(a.user_id).await.expect("actor");
    }
    let huawei = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let other = w
        .customer(&w.wangwu, "中兴通讯股份有限公司", json!({}))
        .await;
    let contract = |title: &str, customer: Uuid, amount: i64| NewContract {
        title: title.into(),
        customer_id: customer,
        contract_type: Some(ContractType::Service),
        amount: Some(Money::cny(amount)),
        signed_on: Some(d(8, 1)),
        start_on: Some(d(8, 1)),
        end_on: Some(d(12, 15)),
        ..NewContract::default()
    };
    let c1 = w
        .crm
        .create_contract(
            &w.zhangsan,
            contract("华为年度服务合同", huawei.id.0, 1_000_001),
        )
        .await
        .expect("c1");
    w.clock.advance(chrono::Duration::seconds(1));
    let c2 = w
        .crm
        .create_contract(&w.wangwu, contract("中兴维保合同", other.id.0, 250_000))
        .await
        .expect("c2");
    w.clock.advance(chrono::Duration::seconds(1));
    let c3 = w
        .crm
        .create_contract(&w.zhangsan, contract("华为二期", huawei.id.0, 99))
        .await
        .expect("c3");
    let contracts = || SalesList::Contracts(ContractQuery::default());

    // The administrator: every contract, newest first, every column.
    let (headers, rows) = sales_exported(&w, &w.admin, contracts(), &[], false, 1000)
        .await
        .expect("admin export");
    assert_eq!(headers[0], "合同编号");
    assert!(headers.contains(&"未回款".to_string()), "{headers:?}");
    assert_eq!(rows.len(), 3);
    let codes: Vec<&V> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        codes,
        vec![
            &V::Text(c3.code.clone()),
            &V::Text(c2.code.clone()),
            &V::Text(c1.code.clone())
        ]
    );
    let at = |h: &str| headers.iter().position(|x| x == h).expect(h);
    let first = &rows[2];
    assert_eq!(first[at("合同名称")], V::Text("华为年度服务合同".into()));
    assert_eq!(first[at("客户")], V::Text("华为技术有限公司".into()));
    assert_eq!(first[at("合同类型")], V::Text("服务合同".into()));
    assert_eq!(first[at("状态")], V::Text("草稿".into()));
    assert_eq!(first[at("合同金额")], V::Money(1_000_001));
    assert_eq!(first[at("未回款")], V::Money(1_000_001));
    assert_eq!(first[at("已回款")], V::Money(0));
    assert_eq!(first[at("结束日期")], V::Date(d(12, 15)));
    assert_eq!(first[at("负责人")], V::Text("张三".into()));
    assert_eq!(first[at("所属部门")], V::Text("销售一组".into()));
    assert!(matches!(first[at("创建时间")], V::DateTime(_)));
    assert_eq!(first[at("中止原因")], V::Empty);

    // Picked columns in the order picked, by API name, Chinese or English
    // header; words in English for an English export; one row per page.
    let (headers, rows) = sales_exported(
        &w,
        &w.admin,
        contracts(),
        &["outstanding", "合同编号", "Type", "status"],
        true,
        1,
    )
    .await
    .expect("picked");
    assert_eq!(headers, vec!["未回款", "合同编号", "合同类型", "状态"]);
    assert_eq!(
        rows,
        vec![
            vec![
                V::Money(99),
                V::Text(c3.code.clone()),
                V::Text("service".into()),
                V::Text("draft".into())
            ],
            vec![
                V::Money(250_000),
                V::Text(c2.code.clone()),
                V::Text("service".into()),
                V::Text("draft".into())
            ],
            vec![
                V::Money(1_000_001),
                V::Text(c1.code.clone()),
                V::Text("service".into()),
                V::Text("draft".into())
            ],
        ],
        "keyset pages of one row neither repeat nor skip"
    );
    let err = sales_exported(&w, &w.admin, contracts(), &["利润"], false, 10)
        .await
        .expect_err("unknown column");
    assert!(
        matches!(&err, Error::Validation(_)) && err.to_string().contains("利润"),
        "{err}"
    );

    // The list's own search.
    let (_, rows) = sales_exported(
        &w,
        &w.admin,
        SalesList::Contracts(ContractQuery {
            search: Some("hwnd".into()),
            ..ContractQuery::default()
        }),
        &["code"],
        false,
        10,
    )
    .await
    .expect("search");
    assert_eq!(rows, vec![vec![V::Text(c1.code.clone())]]);

    // A seller exports their own, and what is shared with them, but names
    // the customer only when they may read it (else as the lists show a
    // hidden customer).
    w.crm
        .share_record(
            &w.wangwu,
            Entity::Contract,
            crate::ids::RecordId(c2.id),
            w.zhangsan.user_id,
            ShareAccess::Read,
            None,
        )
        .await
        .expect("share");
    let (_, rows) = sales_exported(
        &w,
        &w.zhangsan,
        contracts(),
        &["code", "customer_id"],
        false,
        1000,
    )
    .await
    .expect("seller");
    assert_eq!(
        rows,
        vec![
            vec![V::Text(c3.code.clone()), V::Text("华为技术有限公司".into())],
            vec![
                V::Text(c2.code.clone()),
                V::Text(crate::export::hidden_record(Entity::Customer))
            ],
            vec![V::Text(c1.code.clone()), V::Text("华为技术有限公司".into())],
        ]
    );
    // The manager reads all three but exports only their own contracts.
    let (_, rows) = sales_exported(&w, &w.lisi, contracts(), &["code"], false, 1000)
        .await
        .expect("manager");
    assert!(rows.is_empty(), "{rows:?}");
    // Without the export permission: refused, before and at the cursor.
    let err = w
        .crm
        .export_columns(&w.zhaoliu, Entity::Contract, &[])
        .await
        .expect_err("no export right");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    let columns = w
        .crm
        .export_columns(&w.admin, Entity::Contract, &[])
        .await
        .expect("columns");
    let err = w
        .crm
        .sales_export_cursor(&w.zhaoliu, contracts(), columns, false, 10)
        .await
        .expect_err("no export right");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");

    // Opportunities: stage, probability, weighted amount; the manager
    // exports the department tree's.
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "华为数据中心扩容".into(),
                customer_id: huawei.id.0,
                amount: Some(Money::cny(1_000_000)),
                expected_close: NaiveDate::from_ymd_opt(2027, 1, 31),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let (headers, rows) = sales_exported(
        &w,
        &w.lisi,
        SalesList::Opportunities(OpportunityQuery::default()),
        &[],
        false,
        1000,
    )
    .await
    .expect("opportunities");
    assert_eq!(rows.len(), 1);
    let at = |h: &str| headers.iter().position(|x| x == h).expect(h);
    let r = &rows[0];
    assert_eq!(r[at("编号")], V::Text(o.code.clone()));
    assert_eq!(r[at("阶段")], V::Text(o.stage_name.clone()));
    assert_eq!(r[at("状态")], V::Text("跟踪".into()));
    assert_eq!(r[at("赢率(%)")], V::Number(f64::from(o.probability)));
    assert_eq!(r[at("预计金额")], V::Money(1_000_000));
    assert_eq!(r[at("加权金额")], V::Money(o.weighted.minor));
    assert_eq!(
        r[at("预计成交日期")],
        V::Date(NaiveDate::from_ymd_opt(2027, 1, 31).expect("date"))
    );
    assert_eq!(r[at("客户")], V::Text("华为技术有限公司".into()));

    // Quotes: the current versions, with their opportunity by name.
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为服务器报价".into(),
                customer_id: huawei.id.0,
                opportunity_id: Some(o.id),
                lines: vec![LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: None,
                    quantity: 2,
                    unit_price: Some(Money::cny(1_130_000)),
                    discount_bp: 0,
                    tax_rate: Some(1300),
                }],
                valid_until: Some(d(12, 31)),
                notes: None,
            },
        )
        .await
        .expect("quote");
    let (_, rows) = sales_exported(
        &w,
        &w.zhangsan,
        SalesList::Quotes {
            customer_id: Some(huawei.id.0),
            search: None,
        },
        &[
            "code",
            "opportunity_id",
            "amount",
            "tax",
            "valid_until",
            "quote_version",
        ],
        false,
        1000,
    )
    .await
    .expect("quotes");
    assert_eq!(
        rows,
        vec![vec![
            V::Text(q.code.clone()),
            V::Text("华为数据中心扩容".into()),
            V::Money(q.totals.amount.minor),
            V::Money(q.totals.tax.minor),
            V::Date(d(12, 31)),
            V::Number(1.0),
        ]]
    );
    // A quote revised while an export runs keeps its place: the export
    // holds each quote once, as its current version.
    w.clock.advance(chrono::Duration::seconds(1));
    let newer = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "华为存储报价".into(),
                customer_id: huawei.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "存储".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(500_000)),
                    discount_bp: 0,
                    tax_rate: Some(1300),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("newer quote");
    let columns = w
        .crm
        .export_columns(
            &w.zhangsan,
            Entity::Quote,
            &["code".into(), "version".into()],
        )
        .await
        .expect("columns");
    let mut cursor = w
        .crm
        .sales_export_cursor(
            &w.zhangsan,
            SalesList::Quotes {
                customer_id: None,
                search: None,
            },
            columns,
            false,
            1,
        )
        .await
        .expect("cursor");
    let mut seen = cursor.next_page().await.expect("page").expect("a page");
    w.clock.advance(chrono::Duration::seconds(1));
    w.crm
        .revise_quote(
            &w.zhangsan,
            q.id,
            vec![LineInput {
                product_id: None,
                name: "服务器".into(),
                unit: None,
                quantity: 3,
                unit_price: Some(Money::cny(1_130_000)),
                discount_bp: 0,
                tax_rate: Some(1300),
            }],
            None,
        )
        .await
        .expect("revise meanwhile");
    while let Some(page) = cursor.next_page().await.expect("page") {
        seen.extend(page);
    }
    assert_eq!(
        seen,
        vec![
            vec![V::Text(newer.code.clone()), V::Number(1.0)],
            vec![V::Text(q.code.clone()), V::Number(2.0)],
        ]
    );
    // Another seller sees none of them.
    let (_, rows) = sales_exported(
        &w,
        &w.wangwu,
        SalesList::Quotes {
            customer_id: None,
            search: None,
        },
        &["code"],
        false,
        1000,
    )
    .await
    .expect("quotes of another seller");
    assert!(rows.is_empty(), "{rows:?}");
}

/// The customer's count of open opportunities (what the pools' "open
/// deals" exemption reads).
async fn open_count(w: &World, customer: Uuid) -> i64 {
    w.crm
        .store()
        .get(crate::schema::Table::Customers, customer)
        .await
        .expect("get")
        .expect("customer")
        .get("open_opportunities")
        .as_int()
        .unwrap_or(-1)
}

/// The customer's count of open opportunities cannot miss a concurrent
/// change: an opportunity created, or closed, between the count and the
/// write makes the write fail as a conflict (the customer row is read
/// before the count, and its version checked), and the count stays right.
pub async fn open_opportunity_counts_hold_against_concurrent_writes(store: Arc<dyn Store>) {
    use crate::crm::Crm;
    use crate::sales::{NewOpportunity, StageCommand};
    use crate::schema::Table;
    use crate::testing::pool_suite::Interleave;
    use serde_json::json;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = customer.id.0;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c,
        ..NewOpportunity::default()
    };
    // Another opportunity is created just after this one counted.
    let (o, actor, meanwhile) = (other.clone(), w.zhangsan.clone(), new("同时创建"));
    hooked.after_select(Table::Opportunities, async move {
        o.create_opportunity(&actor, meanwhile)
            .await
            .expect("created meanwhile");
    });
    let late = w.crm.create_opportunity(&w.zhangsan, new("数据中心")).await;
    assert!(matches!(late, Err(Error::Conflict { .. })), "{late:?}");
    assert_eq!(
        open_count(&w, c).await,
        1,
        "the refused write left no trace"
    );
    let first = w
        .crm
        .create_opportunity(&w.zhangsan, new("数据中心"))
        .await
        .expect("again");
    assert_eq!(open_count(&w, c).await, 2);
    let second = w
        .crm
        .list_opportunities(&w.zhangsan, &crate::sales::OpportunityQuery::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|x| x.id != first.id)
        .expect("the other opportunity");
    // Another opportunity is lost just after this one counted.
    let (o, actor, id, v) = (other.clone(), w.zhangsan.clone(), second.id, second.version);
    hooked.after_select(Table::Opportunities, async move {
        o.change_opportunity_stage(&actor, id, v, StageCommand::Lose("价格".into()))
            .await
            .expect("lost meanwhile");
    });
    let late = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            first.id,
            first.version,
            StageCommand::Lose("预算".into()),
        )
        .await;
    assert!(matches!(late, Err(Error::Conflict { .. })), "{late:?}");
    assert_eq!(open_count(&w, c).await, 1);
    w.crm
        .change_opportunity_stage(
            &w.zhangsan,
            first.id,
            first.version,
            StageCommand::Lose("预算".into()),
        )
        .await
        .expect("lose again");
    assert_eq!(open_count(&w, c).await, 0);
}

/// Two first submissions of the same document at once make one approval:
/// the later is refused, saying the document was submitted meanwhile.
pub async fn approval_concurrent_first_submissions_make_one_instance(store: Arc<dyn Store>) {
    use crate::clock::Clock;
    use crate::crm::Crm;
    use crate::schema::Table;
    use crate::store::{Filter, Select};
    use crate::testing::pool_suite::Interleave;
    use crate::value::Value;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = World::new(hooked.clone()).await;
    let other = Crm::new(store, w.clock.clone());
    w.crm
        .define_approval_flow(&w.admin, GENERIC_DOC, "采购审批", superior_flow())
        .await
        .expect("define");
    let doc = Uuid::from_u128(0xD0C7);
    let (o, actor) = (other.clone(), w.zhangsan.clone());
    hooked.before_write(Table::ApprovalInstances, async move {
        o.submit_for_approval(&actor, request(doc, 100))
            .await
            .expect("submitted meanwhile");
    });
    match w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 100))
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("submitted for approval meanwhile"), "{m}")
        }
        other => panic!("a second instance of one document: {other:?}"),
    }
    let mut sel = Select::all(
        Table::ApprovalInstances,
        w.admin.company_id.0,
        w.clock.now(),
    );
    sel.filter = Filter::Cmp(
        crate::store::Col::Column("document_id"),
        crate::store::CmpOp::Eq,
        Value::Id(doc),
    );
    let rows = w.crm.store().select(&sel).await.expect("select").rows;
    assert_eq!(rows.len(), 1, "one approval per document");
}

/// Two pipelines defined at once for the same scope leave one active: the
/// later definition is refused. A department's pipeline defined meanwhile
/// does not stop the company's.
pub async fn pipelines_defined_concurrently_leave_one_active(store: Arc<dyn Store>) {
    use crate::clock::Clock;
    use crate::crm::Crm;
    use crate::sales::PipelineDef;
    use crate::schema::Table;
    use crate::store::{CmpOp, Col, Filter, Select};
    use crate::testing::pool_suite::Interleave;
    use crate::value::Value;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let active = |w: &World| {
        let crm = w.crm.clone();
        let company = w.admin.company_id.0;
        let now = w.clock.now();
        async move {
            let mut sel = Select::all(Table::Pipelines, company, now);
            sel.filter = Filter::And(vec![
                Filter::Cmp(Col::Column("active"), CmpOp::Eq, Value::Bool(true)),
                Filter::IsNull(Col::Column("department_id")),
            ]);
            crm.store()
                .select(&sel)
                .await
                .expect("select")
                .rows
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
        }
    };
    for round in ["none before", "one before"] {
        let (o, admin) = (other.clone(), w.admin.clone());
        hooked.before_write(Table::Pipelines, async move {
            o.define_pipeline(&admin, "同时定义", None, PipelineDef::standard())
                .await
                .expect("defined meanwhile");
        });
        let late = w
            .crm
            .define_pipeline(&w.admin, "公司流程", None, PipelineDef::standard())
            .await;
        assert!(
            matches!(&late, Err(Error::InvalidState(m)) if m.contains("defined for the company meanwhile")),
            "{round}: {late:?}"
        );
        let now_active = active(&w).await;
        assert_eq!(now_active.len(), 1, "{round}: one active pipeline");
        let (picked, _) = w.crm.pipeline_for(&w.admin, None).await.expect("pipeline");
        assert_eq!(picked, Some(now_active[0]), "{round}");
    }
    let (o, admin, group) = (other.clone(), w.admin.clone(), w.group1.0);
    hooked.before_write(Table::Pipelines, async move {
        o.define_pipeline(&admin, "一组流程", Some(group), PipelineDef::standard())
            .await
            .expect("department pipeline meanwhile");
    });
    let id = w
        .crm
        .define_pipeline(&w.admin, "公司流程", None, PipelineDef::standard())
        .await
        .expect("the company's pipeline beside a department's");
    assert_eq!(active(&w).await, vec![id]);
}

/// An executing contract of `minor` 分 owned by `actor` (no contract flow
/// may be defined: it is approved at once).
async fn new_executing_contract(
    w: &World,
    actor: &crate::auth::Actor,
    customer: Uuid,
    title: &str,
    minor: i64,
) -> crate::sales::Contract {
    let c = w
        .crm
        .create_contract(
            actor,
            crate::sales::NewContract {
                title: title.into(),
                customer_id: customer,
                amount: Some(crate::money::Money::cny(minor)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, a) = w
        .crm
        .submit_contract(actor, c.id, Vec::new(), None)
        .await
        .expect("submit");
    assert!(a.is_none(), "no contract flow");
    assert_eq!(c.status, crate::sales::ContractStatus::Executing);
    c
}

/// Sets a contract's status directly in the store, as data written before
/// a rule existed may hold it.
async fn force_contract_status(w: &World, id: Uuid, status: crate::sales::ContractStatus) {
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    let row = w
        .crm
        .store()
        .get(crate::schema::Table::Contracts, id)
        .await
        .expect("get")
        .expect("contract");
    let cs = ChangeSet {
        ops: vec![Op::Update {
            table: crate::schema::Table::Contracts,
            id,
            expected_version: row.version(),
            values: vec![("status", Value::Text(status.name().into()))],
        }],
        ..ChangeSet::default()
    };
    w.crm.store().apply(&cs).await.expect("force status");
}

/// Resubmitting from the rejecting step keeps only the steps approved in
/// the earlier round: a step before the rejecting one that applies now (the
/// amount was raised over its threshold) must be approved, and a raised
/// amount restarts from the first step (the earlier approvals were given
/// for less); an unchanged one keeps the approved steps passed. Returning
/// from the first step says there is no earlier step.
pub async fn approval_restart_from_rejecting_step_approves_steps_that_now_apply(
    store: Arc<dyn Store>,
) {
    let w = World::new(store).await;
    let mut gm = step(
        "总经理",
        ApproverRule::Users {
            users: vec![w.admin.user_id.0],
        },
        SignMode::Any,
    );
    gm.conditions = vec![Condition::AmountAtLeast { minor: 100_000_000 }];
    let finance = step(
        "财务",
        ApproverRule::Users {
            users: vec![w.zhaoliu.user_id.0],
        },
        SignMode::Any,
    );
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![gm, finance],
                restart: Restart::FromRejectingStep,
            },
        )
        .await
        .expect("define");
    // ¥500,000: only 财务 applies.
    let doc = Uuid::from_u128(0xD0E1);
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 50_000_000))
        .await
        .expect("submit");
    assert_eq!(a.current_step.as_deref(), Some("财务"));
    match w
        .crm
        .reject(&w.zhaoliu, a.id, RejectTo::Step(0), None)
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("no earlier step") && !m.contains("1..0"), "{m}")
        }
        other => panic!("returning from the first step: {other:?}"),
    }
    w.crm
        .reject(&w.zhaoliu, a.id, RejectTo::Applicant, Some("金额不对"))
        .await
        .expect("reject");
    // Raised to ¥2,000,000: 总经理 applies now and was never approved.
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("resubmit");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.current_step.as_deref(), Some("总经理"));
    assert_eq!(a.pending_with, vec![w.admin.user_id.0]);
    let a = w.crm.approve(&w.admin, a.id, None).await.expect("总经理");
    assert_eq!(a.current_step.as_deref(), Some("财务"));
    let a = w.crm.approve(&w.zhaoliu, a.id, None).await.expect("财务");
    assert_eq!(a.status, Status::Approved);
    // A step approved in the earlier round stays passed.
    let doc = Uuid::from_u128(0xD0E2);
    let b = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("submit");
    let b = w.crm.approve(&w.admin, b.id, None).await.expect("总经理");
    w.crm
        .reject(&w.zhaoliu, b.id, RejectTo::Applicant, None)
        .await
        .expect("reject");
    let b = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("resubmit");
    assert_eq!(b.current_step.as_deref(), Some("财务"));
    // A raised amount is not covered by the earlier approvals, however
    // little it went up: it restarts from the first step.
    let doc = Uuid::from_u128(0xD0E3);
    let c = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000_000))
        .await
        .expect("submit");
    let c = w.crm.approve(&w.admin, c.id, None).await.expect("总经理");
    w.crm
        .reject(&w.zhaoliu, c.id, RejectTo::Applicant, None)
        .await
        .expect("reject");
    let c = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 210_000_000))
        .await
        .expect("resubmit");
    assert_eq!(c.current_step.as_deref(), Some("总经理"));
    assert_eq!(c.pending_with, vec![w.admin.user_id.0]);
}

/// A rejected contract transferred to another sales person is resubmitted
/// by its new owner, who becomes the applicant of a fresh round; a generic
/// document whose applicant left is resubmitted by somebody else, and
/// while the applicant is active the refusal names them.
pub async fn approval_resubmitted_by_new_owner_or_after_applicant_left(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::sales::ContractStatus;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "转移的合同".into(),
                customer_id: customer.id.0,
                amount: Some(crate::money::Money::cny(1_000_000)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let a = a.expect("approval");
    w.crm
        .reject(&w.lisi, a.id, RejectTo::Applicant, Some("补充附件"))
        .await
        .expect("reject");
    let report = w
        .crm
        .transfer_records(
            &w.zhangsan,
            Entity::Contract,
            &[RecordId(c.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let (c, a) = w
        .crm
        .submit_contract(&w.wangwu, c.id, Vec::new(), Some("已补充"))
        .await
        .expect("the new owner resubmits");
    let a = a.expect("approval");
    assert_eq!(c.status, ContractStatus::PendingApproval);
    assert_eq!((a.status, a.state.round), (Status::Pending, 2));
    assert_eq!(a.applicant_id, w.wangwu.user_id.0);
    assert_eq!(a.state.applicant, w.wangwu.user_id.0);
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    let mine = w.crm.my_approvals(&w.wangwu).await.expect("mine");
    assert_eq!(mine.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a.id]);
    // A generic document: only its active applicant resubmits, and the
    // refusal says who that is.
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![step(
                    "财务",
                    ApproverRule::Users {
                        users: vec![w.zhaoliu.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("define");
    let doc = Uuid::from_u128(0xD0E3);
    let g = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 1_000))
        .await
        .expect("submit");
    w.crm
        .reject(&w.zhaoliu, g.id, RejectTo::Applicant, None)
        .await
        .expect("reject");
    match w
        .crm
        .submit_for_approval(&w.wangwu, request(doc, 1_000))
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains("张三 (zhangsan)"), "{m}"),
        other => panic!("another user resubmitting: {other:?}"),
    }
    deactivate(&w, w.zhangsan.user_id).await;
    let g = w
        .crm
        .submit_for_approval(&w.wangwu, request(doc, 1_000))
        .await
        .expect("resubmitted after the applicant left");
    assert_eq!(
        (g.status, g.applicant_id),
        (Status::Pending, w.wangwu.user_id.0)
    );
    assert_eq!(g.pending_with, vec![w.zhaoliu.user_id.0]);
}

/// Terminating a contract pending approval withdraws its approval in the
/// same change: it leaves the approver's list, records the withdrawal with
/// the reason, and can no longer be approved.
pub async fn terminating_a_contract_withdraws_its_pending_approval(store: Arc<dyn Store>) {
    use crate::sales::ContractStatus;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "中止的合同".into(),
                customer_id: customer.id.0,
                amount: Some(crate::money::Money::cny(1_000_000)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let a = a.expect("approval");
    assert_eq!(w.crm.pending_approvals(&w.lisi).await.expect("p").len(), 1);
    let c = w
        .crm
        .close_contract(&w.zhangsan, c.id, Some("客户取消"))
        .await
        .expect("terminate");
    assert_eq!(c.status, ContractStatus::Terminated);
    assert!(
        w.crm
            .pending_approvals(&w.lisi)
            .await
            .expect("p")
            .is_empty()
    );
    let a = w.crm.approval(&w.zhangsan, a.id).await.expect("approval");
    assert_eq!(a.status, Status::Withdrawn);
    let last = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions")
        .pop()
        .expect("actions");
    assert_eq!(
        (last.action.as_str(), last.actor_id),
        ("withdraw", Some(w.zhangsan.user_id.0))
    );
    assert!(
        last.comment
            .as_deref()
            .is_some_and(|m| m.contains("客户取消")),
        "{last:?}"
    );
    assert!(matches!(
        w.crm.approve(&w.lisi, a.id, None).await,
        Err(Error::InvalidState(_))
    ));
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").status,
        ContractStatus::Terminated
    );
}

/// A payment awaiting approval holds its contract open: terminating or
/// finishing is refused, naming it; and a payment still awaiting approval
/// on a contract closed anyway (data from before the rule) cannot be
/// confirmed, only rejected.
pub async fn payments_awaiting_approval_hold_the_contract_open(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "回款合同", 1_000_000).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let (p, a) = w
        .crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(300_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("payment");
    assert_eq!(p.status, "pending_approval");
    let a = a.expect("approval");
    for reason in [Some("客户破产"), None] {
        match w.crm.close_contract(&w.zhangsan, c.id, reason).await {
            Err(Error::InvalidState(m)) => {
                assert!(
                    m.contains("¥3,000.00") && m.contains("awaiting approval"),
                    "{m}"
                )
            }
            other => panic!("closing with a payment awaiting approval: {other:?}"),
        }
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").status,
        ContractStatus::Executing
    );
    force_contract_status(&w, c.id, ContractStatus::Terminated).await;
    match w.crm.approve(&w.admin, a.id, None).await {
        Err(Error::InvalidState(m)) => assert!(m.contains(&c.code), "{m}"),
        other => panic!("confirming a payment of a terminated contract: {other:?}"),
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").received,
        Money::cny(0)
    );
    w.crm
        .reject(&w.admin, a.id, RejectTo::Applicant, Some("合同已中止"))
        .await
        .expect("rejecting it still works");
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.payments[0].status, "rejected");
    assert_eq!((col.received, col.pending), (Money::cny(0), Money::cny(0)));
}

/// Finishing needs the contract fully collected (the refusal names what is
/// outstanding); one that will not be paid is terminated instead, and
/// neither terminated nor finished contracts are listed as receivable.
pub async fn finishing_needs_a_fully_collected_contract(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractQuery, ContractStatus, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let pay = |fen: i64| PaymentInput {
        amount: Money::cny(fen),
        received_on: w.crm.today(),
        method: None,
        receipt_no: None,
        notes: None,
    };
    let open = ContractQuery {
        not_fully_received: true,
        ..ContractQuery::default()
    };
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "欠款合同", 1_000_000).await;
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(300_000))
        .await
        .expect("payment");
    // A colleague it is shared with for writing works on it, but does not
    // end it: finishing or terminating is for whom the role covers it.
    w.crm
        .share_record(
            &w.zhangsan,
            crate::entity::Entity::Contract,
            crate::ids::RecordId(c.id),
            w.wangwu.user_id,
            crate::records::ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    for reason in [Some("客户破产"), None] {
        match w.crm.close_contract(&w.wangwu, c.id, reason).await {
            Err(Error::Forbidden(m)) => {
                assert!(m.contains(&c.code) && m.contains("shared with them"), "{m}")
            }
            other => panic!("a write sharee ending a contract: {other:?}"),
        }
    }
    match w.crm.close_contract(&w.zhangsan, c.id, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("¥7,000.00") && m.contains("terminate"), "{m}")
        }
        other => panic!("finishing with money owed: {other:?}"),
    }
    assert_eq!(w.crm.receivables(&w.lisi).await.expect("r").len(), 1);
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(1)
    );
    let c = w
        .crm
        .close_contract(&w.zhangsan, c.id, Some("客户破产"))
        .await
        .expect("terminate");
    assert_eq!(c.status, ContractStatus::Terminated);
    assert!(w.crm.receivables(&w.lisi).await.expect("r").is_empty());
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(0)
    );
    // A contract an older build finished with money owed is still listed,
    // and still collected, until it is paid.
    let old = new_executing_contract(&w, &w.zhangsan, customer.id.0, "旧合同", 500_000).await;
    force_contract_status(&w, old.id, ContractStatus::Finished).await;
    assert_eq!(w.crm.receivables(&w.lisi).await.expect("r").len(), 1);
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(1)
    );
    w.crm
        .record_payment(&w.zhangsan, old.id, pay(500_000))
        .await
        .expect("the debt of a finished contract collected");
    assert!(w.crm.receivables(&w.lisi).await.expect("r").is_empty());
    assert_eq!(
        w.crm.list_contracts(&w.lisi, &open).await.expect("l").total,
        Some(0)
    );
    let more = w.crm.record_payment(&w.zhangsan, old.id, pay(100)).await;
    assert!(
        matches!(&more, Err(Error::InvalidState(m)) if m.contains("executing")),
        "{more:?}"
    );
    // A fully collected contract finishes.
    let paid = new_executing_contract(&w, &w.zhangsan, customer.id.0, "付清合同", 200_000).await;
    w.crm
        .record_payment(&w.zhangsan, paid.id, pay(200_000))
        .await
        .expect("payment");
    let paid = w
        .crm
        .close_contract(&w.zhangsan, paid.id, None)
        .await
        .expect("finish");
    assert_eq!(
        (paid.status, paid.outstanding.minor),
        (ContractStatus::Finished, 0)
    );
    // Finished, it may go to the recycle bin, but not be purged with its
    // payment: finance records are kept. A contract holding none is.
    let contract = crate::entity::Entity::Contract;
    let r = w
        .crm
        .delete_records(&w.zhangsan, contract, &[crate::ids::RecordId(paid.id)])
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    for actor in [&w.zhangsan, &w.admin] {
        let r = w
            .crm
            .purge_records(actor, contract, &[crate::ids::RecordId(paid.id)])
            .await;
        assert!(r.done.is_empty(), "{r:?}");
        let m = &r.refused[0].1;
        assert!(
            m.contains(&paid.code) && m.contains("1 payment (回款)") && m.contains("recycle bin"),
            "{m}"
        );
    }
    assert!(
        w.crm
            .store()
            .get(crate::schema::Table::Contracts, paid.id)
            .await
            .expect("get")
            .is_some(),
        "kept"
    );
    let draft = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "草稿合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let ids = [crate::ids::RecordId(draft.id)];
    assert_eq!(
        w.crm
            .delete_records(&w.zhangsan, contract, &ids)
            .await
            .done
            .len(),
        1
    );
    let r = w.crm.purge_records(&w.zhangsan, contract, &ids).await;
    assert_eq!(r.done.len(), 1, "{r:?}");
}

/// Invoice plans add up to at most the contract amount, are audited and
/// bump the contract; an invoice number is recorded once per company, also
/// when two are recorded at once; a terminated contract takes no invoice
/// and no payment plan; a payment plan's history shows the plan it replaced.
pub async fn invoices_and_plans_are_checked_like_payments(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{InvoiceType, PlanInput};
    use crate::schema::Table;
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c1 = new_executing_contract(&w, &w.zhangsan, customer.id.0, "一号合同", 1_000_000).await;
    let c2 = new_executing_contract(&w, &w.zhangsan, customer.id.0, "二号合同", 1_000_000).await;
    let d = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    // Invoice plans.
    w.crm
        .add_invoice(
            &w.zhangsan,
            c1.id,
            InvoiceType::VatSpecial,
            Money::cny(600_000),
            None,
            Some(d),
        )
        .await
        .expect("plan");
    let now = w.crm.contract(&w.zhangsan, c1.id).await.expect("c");
    assert!(now.version > c1.version, "a plan bumps the contract");
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Contract, c1.id)
        .await
        .expect("history");
    assert!(
        history.iter().any(|e| e.action == "invoice_plan"),
        "{history:?}"
    );
    match w
        .crm
        .add_invoice(
            &w.zhangsan,
            c1.id,
            InvoiceType::VatSpecial,
            Money::cny(400_001),
            None,
            Some(d),
        )
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("¥10,000.00"), "{m}"),
        other => panic!("plans over the amount: {other:?}"),
    }
    // Invoice numbers are unique in the company.
    w.crm
        .add_invoice(
            &w.zhangsan,
            c1.id,
            InvoiceType::VatNormal,
            Money::cny(100_000),
            Some(" 04400123 ".into()),
            Some(w.crm.today()),
        )
        .await
        .expect("issued");
    match w
        .crm
        .add_invoice(
            &w.zhangsan,
            c2.id,
            InvoiceType::VatNormal,
            Money::cny(100_000),
            Some("04400123".into()),
            Some(w.crm.today()),
        )
        .await
    {
        Err(Error::Duplicate { message, .. }) => assert!(message.contains("04400123"), "{message}"),
        other => panic!("the same number twice: {other:?}"),
    }
    let (o, zs, c2_id) = (other.clone(), w.zhangsan.clone(), c2.id);
    hooked.before_write(Table::Invoices, async move {
        o.add_invoice(
            &zs,
            c2_id,
            InvoiceType::VatNormal,
            Money::cny(100_000),
            Some("04400999".into()),
            None,
        )
        .await
        .expect("the same number meanwhile");
    });
    match w
        .crm
        .add_invoice(
            &w.zhangsan,
            c1.id,
            InvoiceType::VatNormal,
            Money::cny(100_000),
            Some("04400999".into()),
            None,
        )
        .await
    {
        Err(Error::Duplicate { message, .. }) => assert!(message.contains("04400999"), "{message}"),
        other => panic!("the same number at once: {other:?}"),
    }
    let c1_now = w.crm.contract(&w.zhangsan, c1.id).await.expect("c");
    assert_eq!(c1_now.invoiced, Money::cny(100_000));
    // A payment plan's history shows the plan it replaced.
    let plan = |fen: i64| {
        vec![PlanInput {
            due_on: d,
            amount: Money::cny(fen),
            notes: None,
        }]
    };
    w.crm
        .set_payment_plan(&w.zhangsan, c1.id, plan(500_000))
        .await
        .expect("plan");
    w.crm
        .set_payment_plan(&w.zhangsan, c1.id, plan(400_000))
        .await
        .expect("new plan");
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Contract, c1.id)
        .await
        .expect("history");
    let last = history
        .iter()
        .rev()
        .flat_map(|e| e.changes.iter())
        .find(|ch| ch.field == "payment_plan")
        .expect("plan change");
    assert!(
        last.before.to_string().contains("500000"),
        "the replaced plan: {last:?}"
    );
    // A terminated contract takes no invoice and no payment plan.
    w.crm
        .close_contract(&w.zhangsan, c1.id, Some("客户取消"))
        .await
        .expect("terminate");
    for number in [None, Some("04400555".to_string())] {
        assert!(matches!(
            w.crm
                .add_invoice(
                    &w.zhangsan,
                    c1.id,
                    InvoiceType::VatNormal,
                    Money::cny(1_000),
                    number,
                    Some(d),
                )
                .await,
            Err(Error::InvalidState(_))
        ));
    }
    assert!(matches!(
        w.crm
            .set_payment_plan(&w.zhangsan, c1.id, plan(100_000))
            .await,
        Err(Error::InvalidState(_))
    ));
}

/// Sets a user's superior (as the administrator).
async fn set_superior(w: &World, user: crate::ids::UserId, superior: crate::ids::UserId) {
    let u = w.crm.user(&w.admin, user).await.expect("user");
    w.crm
        .update_user(
            &w.admin,
            user,
            u.version,
            crate::org::UserPatch {
                superior_id: Some(Some(superior)),
                ..crate::org::UserPatch::default()
            },
        )
        .await
        .expect("set superior");
}

/// Writes a row's columns directly in the store, as data written before a
/// rule existed (or by a concurrent operation) may hold them.
async fn force_row(
    w: &World,
    table: crate::schema::Table,
    id: Uuid,
    values: Vec<(&'static str, crate::value::Value)>,
) {
    use crate::store::{ChangeSet, Op};
    let row = w
        .crm
        .store()
        .get(table, id)
        .await
        .expect("get")
        .expect("row");
    let cs = ChangeSet {
        ops: vec![Op::Update {
            table,
            id,
            expected_version: row.version(),
            values,
        }],
        ..ChangeSet::default()
    };
    w.crm.store().apply(&cs).await.expect("force row");
}

/// A contract pending approval owned by zhangsan (the contract flow must
/// be defined), with its approval.
async fn pending_contract(
    w: &World,
    customer: Uuid,
    title: &str,
) -> (crate::sales::Contract, crate::approval::ApprovalInfo) {
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: title.into(),
                customer_id: customer,
                amount: Some(crate::money::Money::cny(1_000_000)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    (c, a.expect("approval"))
}

/// An inactive manager does not cut the superior chain. With 张三 → 李四 →
/// 王五 → 管理员 and 李四 deactivated, "superiors up to 3 levels" asks 王五
/// and then the administrator — an inactive superior is passed over and
/// does not count as a level, so the active superiors above approve — and
/// "the second superior" is the administrator.
pub async fn approval_superior_chain_passes_over_inactive_managers(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    set_superior(&w, w.wangwu.user_id, w.admin.user_id).await;
    set_superior(&w, w.lisi.user_id, w.wangwu.user_id).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "逐级审批",
            FlowDef {
                steps: vec![step(
                    "逐级上级",
                    ApproverRule::SuperiorsUpTo { levels: 3 },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("define");
    w.crm
        .define_approval_flow(
            &w.admin,
            "expense_claim",
            "报销审批",
            FlowDef {
                steps: vec![step(
                    "二级上级",
                    ApproverRule::Superior { level: 2 },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("define");
    deactivate(&w, w.lisi.user_id).await;
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0xD1A1), 1_000_000))
        .await
        .expect("submit");
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.pending_with, vec![w.wangwu.user_id.0]);
    let a = w.crm.approve(&w.wangwu, a.id, None).await.expect("wangwu");
    assert_eq!(a.pending_with, vec![w.admin.user_id.0]);
    let a = w.crm.approve(&w.admin, a.id, None).await.expect("admin");
    assert_eq!(a.status, Status::Approved);
    let kinds: Vec<String> = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions")
        .into_iter()
        .map(|x| x.action)
        .collect();
    assert_eq!(kinds, vec!["submit", "approve", "approve"]);
    let b = w
        .crm
        .submit_for_approval(
            &w.zhangsan,
            SubmitRequest {
                doc_type: "expense_claim".into(),
                ..request(Uuid::from_u128(0xD1A2), 1_000_000)
            },
        )
        .await
        .expect("submit");
    assert_eq!(b.pending_with, vec![w.admin.user_id.0]);
}

/// The approval of a contract in the recycle bin (or gone) cannot be
/// approved or rejected: the contract would go into execution (or back to
/// draft) and fire events while nobody should work on it. The refusal
/// names the contract; the applicant may still withdraw.
pub async fn approval_of_a_document_in_the_recycle_bin_cannot_be_decided(store: Arc<dyn Store>) {
    use crate::schema::Table;
    use crate::value::Value;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let (c, a) = pending_contract(&w, customer.id.0, "回收站里的合同").await;
    force_row(
        &w,
        Table::Contracts,
        c.id,
        vec![("deleted_at", Value::Timestamp(w.crm.now()))],
    )
    .await;
    ack_all(&w).await;
    for got in [
        w.crm.approve(&w.lisi, a.id, None).await,
        w.crm.reject(&w.lisi, a.id, RejectTo::Applicant, None).await,
    ] {
        match got {
            Err(Error::InvalidState(m)) => {
                assert!(m.contains("recycle bin") && m.contains(&c.code), "{m}")
            }
            other => panic!("deciding on a deleted contract: {other:?}"),
        }
    }
    let row = w
        .crm
        .store()
        .get(Table::Contracts, c.id)
        .await
        .expect("get")
        .expect("contract");
    assert_eq!(row.get("status").as_text(), Some("pending_approval"));
    assert!(event_types(&w).await.is_empty());
    let a = w.crm.approval(&w.zhangsan, a.id).await.expect("approval");
    assert_eq!(a.status, Status::Pending);
    w.crm
        .withdraw(&w.zhangsan, a.id, None)
        .await
        .expect("the applicant withdraws");
    // A contract purged for good.
    let (c, a) = pending_contract(&w, customer.id.0, "清除的合同").await;
    let purge = crate::store::ChangeSet {
        ops: vec![crate::store::Op::Delete {
            table: Table::Contracts,
            id: c.id,
        }],
        ..crate::store::ChangeSet::default()
    };
    w.crm.store().apply(&purge).await.expect("purge");
    match w.crm.approve(&w.lisi, a.id, None).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("no longer exists"), "{m}"),
        other => panic!("approving a purged contract: {other:?}"),
    }
}

/// A rejected or withdrawn approval is resubmitted on the flow version
/// active now, from its first step (positions of steps in an older version
/// mean nothing), and the approval records the version; a pending one
/// keeps its version.
pub async fn approval_resubmission_runs_on_the_active_flow_version(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let users = |name: &str, who: &crate::auth::Actor| {
        step(
            name,
            ApproverRule::Users {
                users: vec![who.user_id.0],
            },
            SignMode::Any,
        )
    };
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![users("经理", &w.lisi), users("财务", &w.zhaoliu)],
                restart: Restart::FromRejectingStep,
            },
        )
        .await
        .expect("v1");
    let doc = Uuid::from_u128(0xD1B1);
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 1_000_000))
        .await
        .expect("submit");
    assert_eq!(a.flow_version, 1);
    w.crm.approve(&w.lisi, a.id, None).await.expect("经理");
    w.crm
        .reject(&w.zhaoliu, a.id, RejectTo::Applicant, None)
        .await
        .expect("财务 rejects");
    // A new rule: the general manager approves between the two.
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![
                    users("经理", &w.lisi),
                    users("总经理", &w.admin),
                    users("财务", &w.zhaoliu),
                ],
                restart: Restart::FromRejectingStep,
            },
        )
        .await
        .expect("v2");
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 1_000_000))
        .await
        .expect("resubmit");
    assert_eq!(a.flow_version, 2);
    assert_eq!(a.current_step.as_deref(), Some("经理"));
    let names: Vec<&str> = a.state.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["经理", "总经理", "财务"]);
    let a = w.crm.approval(&w.zhangsan, a.id).await.expect("stored");
    assert_eq!(a.flow_version, 2);
    // A pending approval keeps its version.
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![users("财务", &w.zhaoliu)],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("v3");
    let a = w.crm.approve(&w.lisi, a.id, None).await.expect("经理");
    assert_eq!(
        (a.flow_version, a.current_step.as_deref()),
        (2, Some("总经理"))
    );
    // Withdrawn and resubmitted: the active version.
    w.crm
        .withdraw(&w.zhangsan, a.id, None)
        .await
        .expect("withdraw");
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 1_000_000))
        .await
        .expect("resubmit");
    assert_eq!(
        (a.flow_version, a.current_step.as_deref()),
        (3, Some("财务"))
    );
}

/// Approvers who were deactivated are not waited for: a 会签 step passes
/// once its active approvers approved, an approval whose remaining
/// approvers all left moves on when refreshed (deactivating a user through
/// the engine refreshes those waiting for them at once), and a step with
/// nobody active left falls back (to the administrators here) as at a
/// submission.
pub async fn approval_inactive_approvers_are_not_waited_for(store: Arc<dyn Store>) {
    let raw = store.clone();
    let w = World::new(store).await;
    let mut countersign = step(
        "会签",
        ApproverRule::Users {
            users: vec![w.lisi.user_id.0, w.zhaoliu.user_id.0],
        },
        SignMode::All,
    );
    countersign.fallback = Fallback::Admins;
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![
                    countersign,
                    step(
                        "财务",
                        ApproverRule::Users {
                            users: vec![w.wangwu.user_id.0],
                        },
                        SignMode::Any,
                    ),
                ],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("define");
    let submit = |n: u128| {
        w.crm
            .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(n), 1_000_000))
    };
    let a = submit(0xD1C1).await.expect("a");
    let b = submit(0xD1C2).await.expect("b");
    let c = submit(0xD1C3).await.expect("c");
    let b = w.crm.approve(&w.lisi, b.id, None).await.expect("lisi on b");
    assert_eq!(b.pending_with, vec![w.zhaoliu.user_id.0]);
    // 赵六 deactivated outside the engine (an older build, the store
    // directly): nothing refreshed the approvals waiting for him.
    let row = raw
        .get(crate::schema::Table::Users, w.zhaoliu.user_id.0)
        .await
        .expect("get")
        .expect("zhaoliu");
    raw.apply(&crate::store::ChangeSet {
        ops: vec![crate::store::Op::Update {
            table: crate::schema::Table::Users,
            id: row.id(),
            expected_version: row.version(),
            values: vec![("active", crate::value::Value::Bool(false))],
        }],
        ..Default::default()
    })
    .await
    .expect("deactivated in the store");
    // The last active approver's approval passes the step.
    let a = w.crm.approve(&w.lisi, a.id, None).await.expect("lisi on a");
    assert_eq!(a.current_step.as_deref(), Some("财务"));
    assert_eq!(a.pending_with, vec![w.wangwu.user_id.0]);
    // Only the deactivated approver was left: a refresh moves it on,
    // recorded as an automatic pass.
    assert!(matches!(
        w.crm.approve(&w.lisi, b.id, None).await,
        Err(Error::InvalidState(_) | Error::Forbidden(_))
    ));
    let b = w
        .crm
        .refresh_approval(&w.zhangsan, b.id)
        .await
        .expect("refresh");
    assert_eq!(b.current_step.as_deref(), Some("财务"));
    let last = w
        .crm
        .approval_actions(&w.zhangsan, b.id)
        .await
        .expect("actions")
        .pop()
        .expect("actions");
    assert_eq!((last.action.as_str(), last.actor_id), ("auto_pass", None));
    let pending: Vec<Uuid> = w
        .crm
        .pending_approvals(&w.wangwu)
        .await
        .expect("pending")
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert!(
        pending.contains(&a.id) && pending.contains(&b.id),
        "{pending:?}"
    );
    // Nobody active left and nobody approved: the administrators approve,
    // the step being in their pending lists as soon as the last approver
    // is deactivated.
    deactivate(&w, w.lisi.user_id).await;
    let admins: Vec<Uuid> = w
        .crm
        .pending_approvals(&w.admin)
        .await
        .expect("pending")
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert!(admins.contains(&c.id), "{admins:?}");
    let c = w
        .crm
        .refresh_approval(&w.zhangsan, c.id)
        .await
        .expect("refresh");
    assert_eq!(c.pending_with, vec![w.admin.user_id.0]);
    let c = w.crm.approve(&w.admin, c.id, None).await.expect("admin");
    assert_eq!(c.current_step.as_deref(), Some("财务"));
}

/// The owner of a contract answers for it: after a transfer, the new owner
/// may withdraw its pending approval (e.g. when its approvers left), which
/// puts the contract back to draft; anybody else still may not.
pub async fn approval_of_a_sales_document_is_withdrawn_by_its_owner(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::sales::ContractStatus;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let (c, a) = pending_contract(&w, customer.id.0, "转给王五的合同").await;
    let report = w
        .crm
        .transfer_records(
            &w.zhangsan,
            Entity::Contract,
            &[RecordId(c.id)],
            w.wangwu.user_id,
        )
        .await
        .expect("transfer");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    match w.crm.withdraw(&w.zhaoliu, a.id, None).await {
        Err(Error::Forbidden(m)) => assert!(m.contains("owner"), "{m}"),
        Err(Error::NotFound { .. }) => {}
        other => panic!("a stranger withdraws: {other:?}"),
    }
    let a = w
        .crm
        .withdraw(&w.wangwu, a.id, Some("审批人已离职"))
        .await
        .expect("the owner withdraws");
    assert_eq!(a.status, Status::Withdrawn);
    let last = w
        .crm
        .approval_actions(&w.zhangsan, a.id)
        .await
        .expect("actions")
        .pop()
        .expect("actions");
    assert_eq!(
        (last.action.as_str(), last.actor_id),
        ("withdraw", Some(w.wangwu.user_id.0))
    );
    assert_eq!(
        w.crm.contract(&w.wangwu, c.id).await.expect("c").status,
        ContractStatus::Draft
    );
    // Announced for the contract too, as an approval or a rejection is.
    let withdrawn: Vec<_> = w
        .crm
        .pending_events("erp", 10_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.event.event_type == "contract.withdrawn")
        .collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
}

/// Applies one lifecycle step to one contract: `Ok` when done, else the
/// reason it was refused.
async fn contract_step(w: &World, step: &str, id: Uuid) -> std::result::Result<(), String> {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    let ids = [RecordId(id)];
    let actor = &w.zhangsan;
    let r = match step {
        "delete" => w.crm.delete_records(actor, Entity::Contract, &ids).await,
        "archive" => w.crm.archive_records(actor, Entity::Contract, &ids).await,
        "unarchive" => w.crm.unarchive_records(actor, Entity::Contract, &ids).await,
        other => panic!("no step {other}"),
    };
    match r.refused.into_iter().next() {
        Some((_, m)) => Err(m),
        None => Ok(()),
    }
}

/// A contract still owed money, or with payments awaiting approval, is
/// neither deleted nor archived (the refusal names the contract and what
/// is outstanding), so it stays among the receivables; a draft or a
/// terminated one is, and a fully collected one is archived (deleted only
/// once finished or terminated). An archived contract takes no
/// payment, invoice, payment plan or delivery until it is unarchived.
pub async fn contracts_owed_money_stay_in_the_working_set(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        DeliveryLine, InvoiceType, LineInput, NewContract, PaymentInput, PlanInput,
    };
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let pay = |fen: i64| PaymentInput {
        amount: Money::cny(fen),
        received_on: day,
        method: None,
        receipt_no: None,
        notes: None,
    };
    // Owed money: neither deleted nor archived.
    let owed = new_executing_contract(&w, &w.zhangsan, customer.id.0, "欠款合同", 1_000_000).await;
    w.crm
        .record_payment(&w.zhangsan, owed.id, pay(300_000))
        .await
        .expect("payment");
    for step in ["delete", "archive"] {
        let m = contract_step(&w, step, owed.id)
            .await
            .expect_err("a contract owed money stays");
        assert!(
            m.contains(&owed.code) && m.contains("¥7,000.00") && m.contains("terminate"),
            "{m}"
        );
    }
    assert_eq!(w.crm.receivables(&w.lisi).await.expect("r").len(), 1);
    let c = w
        .crm
        .contract(&w.zhangsan, owed.id)
        .await
        .expect("still live");
    assert_eq!(c.outstanding, Money::cny(700_000));
    // Terminated, it is no longer receivable: it may go.
    w.crm
        .close_contract(&w.zhangsan, owed.id, Some("客户破产"))
        .await
        .expect("terminate");
    contract_step(&w, "delete", owed.id)
        .await
        .expect("a terminated contract is deleted");
    // A draft is deleted.
    let draft = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "草稿合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(500_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("draft");
    contract_step(&w, "delete", draft.id)
        .await
        .expect("a draft is deleted");
    // Payments awaiting approval hold the contract too.
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let held = new_executing_contract(&w, &w.zhangsan, customer.id.0, "待确认合同", 200_000).await;
    let (_, a) = w
        .crm
        .record_payment(&w.zhangsan, held.id, pay(200_000))
        .await
        .expect("payment awaiting approval");
    for step in ["delete", "archive"] {
        let m = contract_step(&w, step, held.id)
            .await
            .expect_err("a payment awaiting approval holds the contract");
        assert!(
            m.contains(&held.code) && m.contains("awaiting approval") && m.contains("¥2,000.00"),
            "{m}"
        );
    }
    // Archived by an older build, its payment is not confirmed until it is
    // unarchived.
    let a = a.expect("approval");
    force_row(
        &w,
        crate::schema::Table::Contracts,
        held.id,
        vec![("archived_at", crate::value::Value::Timestamp(w.crm.now()))],
    )
    .await;
    match w.crm.approve(&w.admin, a.id, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains(&held.code) && m.contains("unarchive"), "{m}")
        }
        other => panic!("confirming a payment on an archived contract: {other:?}"),
    }
    contract_step(&w, "unarchive", held.id)
        .await
        .expect("unarchive");
    w.crm.approve(&w.admin, a.id, None).await.expect("confirm");
    assert_eq!(
        w.crm
            .contract(&w.zhangsan, held.id)
            .await
            .expect("c")
            .outstanding,
        Money::cny(0)
    );
    // Collected but still executing, it is not deleted (it is finished or
    // terminated first); it is archived.
    let m = contract_step(&w, "delete", held.id)
        .await
        .expect_err("an executing contract stays out of the recycle bin");
    assert!(
        m.contains(&held.code) && m.contains("executing") && m.contains("terminate"),
        "{m}"
    );
    contract_step(&w, "archive", held.id)
        .await
        .expect("a collected contract is archived");
    // Fully collected (though still executing, with goods to deliver),
    // it is archived — and then takes nothing until unarchived.
    let line = LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: Some("台".into()),
        quantity: 2,
        unit_price: Some(Money::cny(50_000)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let goods = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "设备合同".into(),
                customer_id: customer.id.0,
                lines: vec![line],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    w.crm
        .submit_contract(&w.zhangsan, goods.id, Vec::new(), None)
        .await
        .expect("submit");
    let collected = w.crm.contract(&w.zhangsan, goods.id).await.expect("c");
    force_row(
        &w,
        crate::schema::Table::Contracts,
        goods.id,
        vec![
            ("received", crate::value::Value::Int(collected.amount.minor)),
            ("outstanding", crate::value::Value::Int(0)),
        ],
    )
    .await;
    contract_step(&w, "archive", goods.id)
        .await
        .expect("a fully collected contract is archived");
    let unarchive = |r: std::result::Result<(), Error>, what: &str| match r {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains(&goods.code) && m.contains("unarchive"),
                "{what}: {m}"
            )
        }
        other => panic!("{what} on an archived contract: {other:?}"),
    };
    unarchive(
        w.crm
            .record_delivery(
                &w.zhangsan,
                goods.id,
                day,
                vec![DeliveryLine {
                    line: 1,
                    quantity: 1,
                }],
                None,
            )
            .await
            .map(|_| ()),
        "delivery",
    );
    unarchive(
        w.crm
            .add_invoice(
                &w.zhangsan,
                goods.id,
                InvoiceType::VatSpecial,
                Money::cny(10_000),
                None,
                None,
            )
            .await
            .map(|_| ()),
        "invoice",
    );
    unarchive(
        w.crm
            .set_payment_plan(
                &w.zhangsan,
                goods.id,
                vec![PlanInput {
                    due_on: day,
                    amount: Money::cny(10_000),
                    notes: None,
                }],
            )
            .await
            .map(|_| ()),
        "payment plan",
    );
    // A contract an older build archived while money was owed takes no
    // payment either.
    force_row(
        &w,
        crate::schema::Table::Contracts,
        goods.id,
        vec![
            ("received", crate::value::Value::Int(0)),
            (
                "outstanding",
                crate::value::Value::Int(collected.amount.minor),
            ),
        ],
    )
    .await;
    unarchive(
        w.crm
            .record_payment(&w.zhangsan, goods.id, pay(10_000))
            .await
            .map(|_| ()),
        "payment",
    );
    // Unarchived, it takes them again.
    contract_step(&w, "unarchive", goods.id)
        .await
        .expect("unarchive");
    w.crm
        .record_delivery(
            &w.zhangsan,
            goods.id,
            day,
            vec![DeliveryLine {
                line: 1,
                quantity: 1,
            }],
            None,
        )
        .await
        .expect("delivery");
}

/// A customer merged into another is not restored: it would come back an
/// empty duplicate of the survivor (its records belong to the survivor
/// now). The refusal names both customers to who may read them.
pub async fn merged_away_customer_is_not_restored(store: Arc<dyn Store>) {
    use crate::dedupe::MergeSpec;
    use crate::entity::Entity;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let s = w.customer(&w.zhangsan, "幸存客户有限公司", json!({})).await;
    let d = w.customer(&w.zhangsan, "并入客户有限公司", json!({})).await;
    w.crm
        .merge_customers(
            &w.zhangsan,
            &MergeSpec {
                survivor: s.id,
                others: vec![d.id],
                take: Default::default(),
            },
        )
        .await
        .expect("merge");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[d.id])
        .await;
    assert!(r.done.is_empty(), "{r:?}");
    let m = &r.refused.first().expect("refused").1;
    let (dcode, scode) = (d.code.clone().expect("code"), s.code.clone().expect("code"));
    assert!(
        m.contains(&format!("customer {dcode} was merged into {scode}"))
            && m.contains("cannot be restored"),
        "{m}"
    );
    let row = w
        .crm
        .store()
        .get(crate::schema::Table::Customers, d.id.0)
        .await
        .expect("get")
        .expect("row");
    assert!(!row.get("deleted_at").is_null(), "still in the recycle bin");
    // Whoever may not read the survivor is not told its code.
    let hidden = w.customer(&w.wangwu, "王五客户有限公司", json!({})).await;
    w.crm
        .merge_customers(
            &w.admin,
            &MergeSpec {
                survivor: s.id,
                others: vec![hidden.id],
                take: Default::default(),
            },
        )
        .await
        .expect("merge");
    assert!(
        w.crm
            .get_record(&w.wangwu, Entity::Customer, s.id)
            .await
            .is_err(),
        "wangwu does not read the survivor"
    );
    let r = w
        .crm
        .restore_records(&w.wangwu, Entity::Customer, &[hidden.id])
        .await;
    let m = &r.refused.first().expect("refused").1;
    assert!(
        m.contains("was merged into another customer") && !m.contains(&scode),
        "{m}"
    );
    // A customer merely deleted still comes back.
    let e = w.customer(&w.zhangsan, "删除客户有限公司", json!({})).await;
    w.crm
        .delete_records(&w.zhangsan, Entity::Customer, &[e.id])
        .await;
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[e.id])
        .await;
    assert_eq!(r.done, vec![e.id], "{r:?}");
}

/// Which sales document a merge scenario adds while the merge runs.
#[derive(Clone, Copy, Debug)]
enum AddedDocument {
    Quote,
    Contract,
}

/// A quote (or contract) created for a customer while it is being merged
/// away — between the merge's reading of the customer's records and its
/// write — is not left behind on the merged-away customer (in the recycle
/// bin, merged, so never restored nor purged, and missing from the
/// survivor): the merge is refused, naming what was added, and nothing is
/// merged; merged again, both documents end up on the survivor.
async fn merge_with_document_added_meanwhile(store: Arc<dyn Store>, added: AddedDocument) {
    use crate::crm::Crm;
    use crate::dedupe::MergeSpec;
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewQuote};
    use crate::schema::Table;
    use crate::store::{CmpOp, Col, Filter, Lifecycle, Select};
    use crate::testing::pool_suite::Interleave;
    use crate::value::Value;
    use serde_json::json;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = Crm::new(store, w.clock.clone());
    let s = w.customer(&w.zhangsan, "幸存客户有限公司", json!({})).await;
    let d = w.customer(&w.zhangsan, "并入客户有限公司", json!({})).await;
    let (scode, dcode) = (s.code.clone().expect("code"), d.code.clone().expect("code"));
    let table = match added {
        AddedDocument::Quote => Table::Quotes,
        AddedDocument::Contract => Table::Contracts,
    };
    // Creates a document of `customer` through `crm`; its id.
    async fn add(
        crm: &Crm,
        actor: &crate::auth::Actor,
        customer: Uuid,
        added: AddedDocument,
    ) -> Uuid {
        match added {
            AddedDocument::Quote => {
                crm.create_quote(
                    actor,
                    NewQuote {
                        title: "实施报价".into(),
                        customer_id: customer,
                        lines: vec![LineInput {
                            product_id: None,
                            name: "实施服务".into(),
                            unit: Some("项".into()),
                            quantity: 1,
                            unit_price: Some(Money::cny(100_000)),
                            discount_bp: 0,
                            tax_rate: Some(600),
                        }],
                        ..NewQuote::default()
                    },
                )
                .await
                .expect("quote")
                .id
            }
            AddedDocument::Contract => {
                crm.create_contract(
                    actor,
                    NewContract {
                        title: "年度服务合同".into(),
                        customer_id: customer,
                        amount: Some(Money::cny(1_000_000)),
                        ..NewContract::default()
                    },
                )
                .await
                .expect("contract")
                .id
            }
        }
    }
    // The ids of the documents (live or in the recycle bin) of `customer`.
    let company = w.zhangsan.company_id.0;
    let of = |customer: Uuid| {
        let crm = w.crm.clone();
        async move {
            let mut sel = Select::all(table, company, crm.now());
            sel.lifecycle = Lifecycle::Any;
            sel.filter = Filter::Cmp(Col::Column("customer_id"), CmpOp::Eq, Value::Id(customer));
            let mut ids: Vec<Uuid> = crm
                .store()
                .select(&sel)
                .await
                .expect("select")
                .rows
                .iter()
                .map(|r| r.id())
                .collect();
            ids.sort();
            ids
        }
    };
    // One document before the merge, one while it runs.
    let before = add(&w.crm, &w.zhangsan, d.id.0, added).await;
    let (o, actor, customer) = (other.clone(), w.zhangsan.clone(), d.id.0);
    let (tx, rx) = std::sync::mpsc::channel();
    hooked.before_customer_write(async move {
        tx.send(add(&o, &actor, customer, added).await)
            .expect("send");
    });
    let spec = MergeSpec {
        survivor: s.id,
        others: vec![d.id],
        take: Default::default(),
    };
    let what = match added {
        AddedDocument::Quote => "a quote",
        AddedDocument::Contract => "a contract",
    };
    match w.crm.merge_customers(&w.zhangsan, &spec).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&format!("{what} was added to customer {dcode} meanwhile"))
                && m.contains("try the merge again"),
            "{m}"
        ),
        other => panic!("merging while {what} is added: {other:?}"),
    }
    let meanwhile = rx
        .try_recv()
        .expect("the document was added during the merge");
    // Nothing was merged: both documents stay with the live customer.
    let mut both = vec![before, meanwhile];
    both.sort();
    assert_eq!(of(d.id.0).await, both, "{what}s stay with {dcode}");
    assert!(of(s.id.0).await.is_empty(), "nothing moved to {scode}");
    let row = w
        .crm
        .store()
        .get(Table::Customers, d.id.0)
        .await
        .expect("get")
        .expect("row");
    assert!(
        row.get("deleted_at").is_null() && row.get("merged_into").is_null(),
        "{dcode} is not merged away: {row:?}"
    );
    // Merged again, everything goes to the survivor: nothing is left on
    // the merged-away customer.
    w.crm
        .merge_customers(&w.zhangsan, &spec)
        .await
        .expect("merge again");
    assert_eq!(of(s.id.0).await, both, "{what}s moved to {scode}");
    assert!(of(d.id.0).await.is_empty(), "nothing left on {dcode}");
}

/// A quote created for a customer while it is merged away does not stay
/// behind: the merge is refused, and merged again both go to the survivor.
pub async fn merge_refuses_a_quote_added_meanwhile(store: Arc<dyn Store>) {
    merge_with_document_added_meanwhile(store, AddedDocument::Quote).await;
}

/// A contract created for a customer while it is merged away does not
/// stay behind: the merge is refused, and merged again both go to the
/// survivor.
pub async fn merge_refuses_a_contract_added_meanwhile(store: Arc<dyn Store>) {
    merge_with_document_added_meanwhile(store, AddedDocument::Contract).await;
}

/// Lists take any window and any page: an `ending_within_days` as large as
/// it goes finds the contracts ending within it rather than overflowing the
/// calendar, and a page far past the end is empty rather than an overflow.
pub async fn sales_lists_take_any_window_and_page(store: Arc<dyn Store>) {
    use crate::sales::{ContractPatch, ContractQuery, OpportunityQuery, ProductQuery};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "长期合同", 100_000).await;
    w.crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                end_on: chrono::NaiveDate::from_ymd_opt(2030, 6, 30),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("end date");
    for (days, found) in [(30, 0), (3_000_000, 1), (u32::MAX, 1)] {
        let got = w
            .crm
            .list_contracts(
                &w.zhangsan,
                &ContractQuery {
                    ending_within_days: Some(days),
                    ..ContractQuery::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(got.items.len(), found, "ending within {days} days");
    }
    let far = ContractQuery {
        page: u64::MAX,
        per_page: 1000,
        ..ContractQuery::default()
    };
    let got = w.crm.list_contracts(&w.zhangsan, &far).await.expect("list");
    assert!(got.items.is_empty() && !got.has_more, "{got:?}");
    assert_eq!(got.total, Some(1));
    let got = w
        .crm
        .list_quotes(&w.zhangsan, None, u64::MAX, 1000)
        .await
        .expect("quotes");
    assert!(got.items.is_empty());
    let got = w
        .crm
        .list_opportunities(
            &w.zhangsan,
            &OpportunityQuery {
                page: u64::MAX,
                per_page: 1000,
                ..OpportunityQuery::default()
            },
        )
        .await
        .expect("opportunities");
    assert!(got.items.is_empty());
    let got = w
        .crm
        .list_products(
            &w.zhangsan,
            &ProductQuery {
                page: u64::MAX,
                per_page: 1000,
                ..ProductQuery::default()
            },
        )
        .await
        .expect("products");
    assert!(got.items.is_empty());
}

/// A contract finishes on its money: goods still owed are delivered after
/// it is finished (never beyond what was ordered), while a terminated
/// contract takes no delivery. (A service contract's lines need no
/// deliveries to finish.)
pub async fn finished_contracts_still_take_their_deliveries(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, DeliveryLine, LineInput, NewContract, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let line = |name: &str, q| LineInput {
        product_id: None,
        name: name.into(),
        unit: Some("台".into()),
        quantity: q,
        unit_price: Some(Money::cny(10_000)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let goods = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "设备合同".into(),
                customer_id: customer.id.0,
                lines: vec![line("服务器", 3), line("交换机", 2)],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (goods, _) = w
        .crm
        .submit_contract(&w.zhangsan, goods.id, Vec::new(), None)
        .await
        .expect("submit");
    w.crm
        .record_payment(
            &w.zhangsan,
            goods.id,
            PaymentInput {
                amount: goods.amount,
                received_on: day,
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("paid in full");
    let deliver = |line: usize, quantity: i64| {
        w.crm.record_delivery(
            &w.zhangsan,
            goods.id,
            day,
            vec![DeliveryLine { line, quantity }],
            None,
        )
    };
    deliver(1, 3).await.expect("delivery");
    deliver(2, 1).await.expect("delivery");
    let done = w
        .crm
        .close_contract(&w.zhangsan, goods.id, None)
        .await
        .expect("finished on its money");
    assert_eq!(done.status, ContractStatus::Finished);
    deliver(2, 1).await.expect("the rest is delivered after");
    match deliver(2, 1).await {
        Err(Error::Validation(_) | Error::InvalidState(_)) => {}
        other => panic!("delivering beyond the order: {other:?}"),
    }
    // Without lines, the money alone decides.
    let plain = new_executing_contract(&w, &w.zhangsan, customer.id.0, "服务合同", 50_000).await;
    w.crm
        .record_payment(
            &w.zhangsan,
            plain.id,
            PaymentInput {
                amount: Money::cny(50_000),
                received_on: day,
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("paid");
    assert_eq!(
        w.crm
            .close_contract(&w.zhangsan, plain.id, None)
            .await
            .expect("finish")
            .status,
        ContractStatus::Finished
    );
    // A terminated contract takes no delivery.
    let ended = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "中止的设备合同".into(),
                customer_id: customer.id.0,
                lines: vec![line("服务器", 1)],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (ended, _) = w
        .crm
        .submit_contract(&w.zhangsan, ended.id, Vec::new(), None)
        .await
        .expect("submit");
    w.crm
        .close_contract(&w.zhangsan, ended.id, Some("客户取消"))
        .await
        .expect("terminate");
    match w
        .crm
        .record_delivery(
            &w.zhangsan,
            ended.id,
            day,
            vec![DeliveryLine {
                line: 1,
                quantity: 1,
            }],
            None,
        )
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("terminated"), "{m}"),
        other => panic!("delivering on a terminated contract: {other:?}"),
    }
}

/// A sales amount is at most 10万亿元 (`MAX_SALES_AMOUNT_MINOR`): one above
/// is refused, naming the limit, on an opportunity and a contract alike,
/// so that a company's sums (the forecast, the receivables) stay exact;
/// two at the limit add up exactly in the forecast.
pub async fn sales_amounts_have_a_ceiling_and_sums_stay_exact(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{MAX_SALES_AMOUNT_MINOR, NewContract, NewOpportunity};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let opportunity = |name: &str, minor: i64| NewOpportunity {
        name: name.into(),
        customer_id: customer.id.0,
        amount: Some(Money::cny(minor)),
        expected_close: chrono::NaiveDate::from_ymd_opt(2027, 1, 15),
        ..NewOpportunity::default()
    };
    let m = invalid_message(
        w.crm
            .create_opportunity(&w.zhangsan, opportunity("超大单", i64::MAX - 1))
            .await,
    );
    assert!(m.contains("10万亿元"), "{m}");
    let m = invalid_message(
        w.crm
            .create_contract(
                &w.zhangsan,
                NewContract {
                    title: "超大合同".into(),
                    customer_id: customer.id.0,
                    amount: Some(Money::cny(92_233_720_368_547_758)),
                    ..NewContract::default()
                },
            )
            .await,
    );
    assert!(m.contains("10万亿元"), "{m}");
    for name in ["大单一", "大单二"] {
        w.crm
            .create_opportunity(&w.zhangsan, opportunity(name, MAX_SALES_AMOUNT_MINOR))
            .await
            .expect("opportunity at the limit");
    }
    let f = w
        .crm
        .opportunity_forecast(&w.zhangsan, None, None)
        .await
        .expect("forecast");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].count, f[0].amount.minor),
        (2, 2 * MAX_SALES_AMOUNT_MINOR)
    );
}

/// A contract takes lines or an amount, not both (the amount of one with
/// lines is their sum): both together are refused, naming both, on create
/// and on update; lines adding up to ¥0 are refused as a zero amount is.
pub async fn contract_takes_lines_or_an_amount(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, LineInput, NewContract};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = |fen: i64| LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: Some("台".into()),
        quantity: 2,
        unit_price: Some(Money::cny(fen)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    let new = |lines: Vec<LineInput>, amount: Option<i64>| NewContract {
        title: "设备合同".into(),
        customer_id: customer.id.0,
        lines,
        amount: amount.map(Money::cny),
        ..NewContract::default()
    };
    let m = invalid_message(
        w.crm
            .create_contract(&w.zhangsan, new(vec![line(10_000)], Some(1)))
            .await,
    );
    assert!(m.contains("amount") && m.contains("lines"), "{m}");
    let m = invalid_message(
        w.crm
            .create_contract(&w.zhangsan, new(vec![line(0)], None))
            .await,
    );
    assert!(m.contains("lines") && m.contains("¥0.00"), "{m}");
    let c = w
        .crm
        .create_contract(&w.zhangsan, new(vec![line(10_000)], None))
        .await
        .expect("lines alone");
    assert_eq!(c.amount, Money::cny(20_000));
    let patch = |lines: Option<Vec<LineInput>>, amount: Option<i64>| ContractPatch {
        lines,
        amount: amount.map(Money::cny),
        ..ContractPatch::default()
    };
    let m = invalid_message(
        w.crm
            .update_contract(
                &w.zhangsan,
                c.id,
                c.version,
                patch(Some(vec![line(30_000)]), Some(5)),
            )
            .await,
    );
    assert!(m.contains("amount") && m.contains("lines"), "{m}");
    let m = invalid_message(
        w.crm
            .update_contract(
                &w.zhangsan,
                c.id,
                c.version,
                patch(Some(vec![line(0)]), None),
            )
            .await,
    );
    assert!(m.contains("lines") && m.contains("¥0.00"), "{m}");
    let c2 = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!((c2.amount, c2.version), (Money::cny(20_000), c.version));
    let c2 = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            patch(Some(vec![line(30_000)]), None),
        )
        .await
        .expect("new lines alone");
    assert_eq!(c2.amount, Money::cny(60_000));
}

/// An approved quote past its validity date does not become a contract:
/// the refusal names the date; revised with a new date (and approved
/// again), it converts.
pub async fn expired_quote_does_not_become_a_contract(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = LineInput {
        product_id: None,
        name: "实施服务".into(),
        unit: Some("项".into()),
        quantity: 1,
        unit_price: Some(Money::cny(100_000)),
        discount_bp: 0,
        tax_rate: Some(600),
    };
    let until = w.crm.today() + chrono::Duration::days(1);
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "实施报价".into(),
                customer_id: customer.id.0,
                lines: vec![line.clone()],
                valid_until: Some(until),
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let (q, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(q.status, QuoteStatus::Approved);
    // On its last valid day it still holds.
    w.clock.advance(chrono::Duration::days(1));
    assert_eq!(w.crm.today(), until);
    w.clock.advance(chrono::Duration::days(1));
    match w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&q.code) && m.contains(&until.to_string()) && m.contains("revise"),
            "{m}"
        ),
        other => panic!("converting an expired quote: {other:?}"),
    }
    assert_eq!(
        w.crm
            .list_contracts(&w.zhangsan, &crate::sales::ContractQuery::default())
            .await
            .expect("contracts")
            .total,
        Some(0)
    );
    let later = w.crm.today() + chrono::Duration::days(30);
    let r = w
        .crm
        .revise_quote(&w.zhangsan, q.id, vec![line], Some(later))
        .await
        .expect("revise");
    let (r, _) = w
        .crm
        .submit_quote(&w.zhangsan, r.id, None)
        .await
        .expect("submit");
    let c = w
        .crm
        .quote_to_contract(&w.zhangsan, r.id, NewContract::default())
        .await
        .expect("the revised quote converts");
    assert_eq!(c.amount, Money::cny(100_000));
}

/// A quote whose validity date passes while it waits for approval is not
/// approved: the approver's decision is refused naming the date and what
/// to do, nothing changes, and a rejection (then a revision with a new
/// date) goes through.
pub async fn expired_quote_pending_approval_is_not_approved(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = LineInput {
        product_id: None,
        name: "实施服务".into(),
        unit: Some("项".into()),
        quantity: 1,
        unit_price: Some(Money::cny(100_000)),
        discount_bp: 1500,
        tax_rate: Some(600),
    };
    let until = w.crm.today() + chrono::Duration::days(1);
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "实施报价".into(),
                customer_id: customer.id.0,
                lines: vec![line.clone()],
                valid_until: Some(until),
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let (q, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    let approval = approval.expect("a 15 % discount needs approval");
    // On its last valid day it is still approved; the day after, not.
    w.clock.advance(chrono::Duration::days(2));
    match w.crm.approve(&w.lisi, approval.id, Some("同意")).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&q.code)
                && m.contains(&format!("valid until {until}"))
                && m.contains("reject")
                && m.contains("revise"),
            "{m}"
        ),
        other => panic!("approving an expired quote: {other:?}"),
    }
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::PendingApproval
    );
    assert_eq!(
        w.crm
            .approval(&w.lisi, approval.id)
            .await
            .expect("approval")
            .status,
        Status::Pending
    );
    w.crm
        .reject(&w.lisi, approval.id, RejectTo::Applicant, Some("已过期"))
        .await
        .expect("an expired quote is rejected");
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::Rejected
    );
    let later = w.crm.today() + chrono::Duration::days(30);
    let r = w
        .crm
        .revise_quote(&w.zhangsan, q.id, vec![line], Some(later))
        .await
        .expect("revised with a new date");
    let (_, approval) = w
        .crm
        .submit_quote(&w.zhangsan, r.id, None)
        .await
        .expect("submit the revision");
    w.crm
        .approve(&w.lisi, approval.expect("approval").id, None)
        .await
        .expect("the revision is approved");
    assert_eq!(
        w.crm.quote(&w.zhangsan, r.id).await.expect("r").status,
        QuoteStatus::Approved
    );
}

/// A quote or contract waiting for approval stays until it is decided or
/// withdrawn: it is neither deleted nor archived, nor is its customer; a
/// document of a customer in the recycle bin is not submitted. Nothing
/// refused is written.
pub async fn documents_pending_approval_stay_until_decided(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::sales::{ContractStatus, LineInput, NewContract, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (_, approval) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let approval = approval.expect("approval");
    let refused = |r: &crate::BatchReport, what: &str| {
        assert!(r.done.is_empty(), "{what}: {r:?}");
        r.refused
            .first()
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{what}: nothing refused"))
    };
    for r in [
        w.crm
            .delete_records(&w.zhangsan, Entity::Contract, &[RecordId(c.id)])
            .await,
        w.crm
            .archive_records(&w.zhangsan, Entity::Contract, &[RecordId(c.id)])
            .await,
    ] {
        let m = refused(&r, "the pending contract");
        assert!(
            m.contains(&c.code) && m.contains("pending approval") && m.contains("withdraw"),
            "{m}"
        );
    }
    let m = refused(
        &w.crm
            .delete_records(&w.zhangsan, Entity::Customer, &[customer.id])
            .await,
        "the customer of a pending contract",
    );
    assert!(
        m.contains(&format!("contract {} is pending approval", c.code)),
        "{m}"
    );
    // Nor is it released into a pool: approved, its contract would be
    // owed money by a customer nobody holds.
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "审批中测试公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    let m = refused(
        &w.crm
            .release(&w.zhangsan, &[customer.id], "不再跟进", Some(pool.id))
            .await
            .expect("release"),
        "releasing the customer of a pending contract",
    );
    assert!(
        m.contains("cannot go into a pool")
            && m.contains(&c.code)
            && m.contains("pending approval"),
        "{m}"
    );
    // Whoever reads the contract reads how it is being approved (赵六 reads
    // his group's contracts, and is no approver); who may not read it
    // finds no approval.
    let seen = w
        .crm
        .approval_of(&w.zhaoliu, "contract", c.id)
        .await
        .expect("a reader of the contract")
        .expect("its approval");
    assert_eq!(seen.id, approval.id);
    w.crm
        .approval_actions(&w.zhaoliu, approval.id)
        .await
        .expect("its log");
    // Reading is not deciding: told so, not told it is not there.
    match w.crm.withdraw(&w.zhaoliu, approval.id, None).await {
        Err(Error::Forbidden(m)) => assert!(m.contains("may not withdraw"), "{m}"),
        other => panic!("a reader withdraws: {other:?}"),
    }
    assert!(matches!(
        w.crm.approval(&w.wangwu, approval.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        w.crm
            .approval_actions(&w.wangwu, approval.id)
            .await
            .is_err()
    );
    // Someone the step does not wait for is told so by name, with the
    // document and who it waits for.
    match w.crm.approve(&w.admin, approval.id, None).await {
        Err(Error::Forbidden(m)) => assert!(
            m.contains(&w.admin.display_name)
                && m.contains("not an approver")
                && m.contains(&c.code)
                && m.contains(&w.lisi.display_name),
            "{m}"
        ),
        other => panic!("a decision by a non-approver: {other:?}"),
    }
    // A document the actor may not read is not found by its code, as a
    // code nobody has: no id is told.
    match w.crm.contract_by_code(&w.wangwu, &c.code).await {
        Err(e @ Error::NotFound { .. }) => {
            let m = e.to_string();
            assert!(m == format!("contract {} not found", c.code), "{m}");
        }
        other => panic!("another's contract by code: {other:?}"),
    }
    // Nothing moved: the approval is still the approver's to decide.
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").status,
        ContractStatus::PendingApproval
    );
    // Withdrawn, the draft may go with its customer, and is then not
    // submitted again while the customer is in the recycle bin.
    w.crm
        .withdraw(&w.zhangsan, approval.id, None)
        .await
        .expect("withdraw");
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "实施报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "实施服务".into(),
                    unit: Some("项".into()),
                    quantity: 1,
                    unit_price: Some(Money::cny(100_000)),
                    discount_bp: 0,
                    tax_rate: Some(600),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[customer.id])
        .await;
    assert_eq!(r.done, vec![customer.id], "{r:?}");
    match w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&c.code) && m.contains("recycle bin") && m.contains("restore"),
            "{m}"
        ),
        other => panic!("submitting a contract of a deleted customer: {other:?}"),
    }
    match w.crm.submit_quote(&w.zhangsan, q.id, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains(&q.code) && m.contains("recycle bin"), "{m}")
        }
        other => panic!("submitting a quote of a deleted customer: {other:?}"),
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").status,
        ContractStatus::Draft
    );
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::Draft
    );
}

/// An approver whose scope does not reach a quote still reads the quote
/// its approval asks them to decide (by id and by code, its lines and
/// discount) while it waits for them, not approving it blind; their other
/// quotes stay out of reach, and so does this one once decided.
pub async fn approvers_read_what_they_decide(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "财务审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Users {
                        users: vec![w.wangwu.user_id.0],
                    },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "实施报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "实施服务".into(),
                    unit: Some("项".into()),
                    quantity: 1,
                    unit_price: Some(Money::cny(100_000)),
                    discount_bp: 2000,
                    tax_rate: Some(600),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    // Before it is submitted, 王五 may not read it.
    assert!(matches!(
        w.crm.quote(&w.wangwu, q.id).await,
        Err(Error::NotFound { .. })
    ));
    let (_, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    let seen = w
        .crm
        .quote(&w.wangwu, q.id)
        .await
        .expect("the approver reads it");
    assert_eq!(seen.lines[0].discount_bp, 2000);
    assert_eq!(
        w.crm
            .quote_by_code(&w.wangwu, &q.code)
            .await
            .expect("by code")
            .id,
        q.id
    );
    // Only what the approval decides: another quote of 张三's stays out
    // of 王五's reach.
    let other = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "另一报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "培训".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(5_000)),
                    discount_bp: 0,
                    tax_rate: Some(600),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("another quote");
    assert!(matches!(
        w.crm.quote(&w.wangwu, other.id).await,
        Err(Error::NotFound { .. })
    ));
    w.crm
        .approve(&w.wangwu, approval.expect("approval").id, None)
        .await
        .expect("approve");
    // Decided, the quote is read by its own rules again: not by 王五.
    assert_eq!(
        w.crm.quote(&w.zhangsan, q.id).await.expect("q").status,
        QuoteStatus::Approved
    );
    assert!(matches!(
        w.crm.quote(&w.wangwu, q.id).await,
        Err(Error::NotFound { .. })
    ));
}

/// A confirmed payment recorded by mistake is voided with a reason: it
/// stays, marked voided, no longer counts as received (the contract's
/// received and outstanding amounts follow), its receipt number may be
/// recorded again, and the reason is in its history and its event. Voiding
/// twice, without a reason, or by someone who may not change the contract
/// is refused and changes nothing.
pub async fn a_payment_recorded_by_mistake_is_voided(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewContract, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "华为年度服务合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    w.crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing (no flow)");
    let pay = |amount: i64, receipt: &str| PaymentInput {
        amount: Money::cny(amount),
        received_on: w.crm.today(),
        method: None,
        receipt_no: Some(receipt.into()),
        notes: None,
    };
    let (wrong, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(300_000, "R-001"))
        .await
        .expect("payment");
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(200_000, "R-002"))
        .await
        .expect("payment");
    ack_all(&w).await;
    for (who, why, bad) in [
        (&w.zhangsan, "  ", "a blank reason"),
        (&w.wangwu, "录错", "someone who may not change the contract"),
    ] {
        assert!(
            w.crm.void_payment(who, wrong.id, why).await.is_err(),
            "{bad}"
        );
    }
    let voided = w
        .crm
        .void_payment(&w.zhangsan, wrong.id, "录错合同")
        .await
        .expect("void");
    assert_eq!(voided.status, "voided");
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert_eq!(col.received, Money::cny(200_000));
    assert_eq!(col.outstanding, Money::cny(800_000));
    assert_eq!(col.payments.len(), 2, "a voided payment stays, marked");
    let contract = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(contract.received, Money::cny(200_000));
    match w.crm.void_payment(&w.zhangsan, wrong.id, "再次").await {
        Err(Error::InvalidState(m)) => assert!(m.contains("only a confirmed payment"), "{m}"),
        other => panic!("voiding twice: {other:?}"),
    }
    assert!(
        event_types(&w)
            .await
            .contains(&"payment.voided".to_string())
    );
    let history = w
        .crm
        .history(&w.zhangsan, crate::entity::Entity::Contract, c.id)
        .await
        .expect("history");
    assert!(
        history.iter().any(|e| e.action == "payment_voided"
            && e.changes.iter().any(|ch| ch.after == json!("录错合同"))),
        "{history:?}"
    );
    // Its receipt number is free again (e.g. for the right contract).
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(300_000, "R-001"))
        .await
        .expect("the receipt recorded again");
    assert_eq!(
        w.crm
            .collection(&w.zhangsan, c.id)
            .await
            .expect("collection")
            .received,
        Money::cny(500_000)
    );
    // Collected and finished, a payment voided afterwards (a bounced
    // transfer) makes the contract owed money again: it executes again.
    let (last, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(500_000, "R-003"))
        .await
        .expect("the rest");
    let done = w
        .crm
        .close_contract(&w.zhangsan, c.id, None)
        .await
        .expect("finished");
    assert_eq!(done.status, crate::sales::ContractStatus::Finished);
    w.crm
        .void_payment(&w.zhangsan, last.id, "退票")
        .await
        .expect("void after finishing");
    let again = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(again.status, crate::sales::ContractStatus::Executing);
    assert_eq!(again.outstanding, Money::cny(500_000));
    // The host hears that the contract runs again.
    let events = w
        .crm
        .pending_events("reopen-check", 10_000)
        .await
        .expect("events");
    let reopened = events
        .iter()
        .find(|e| e.event.record_id == c.id && e.event.event_type == "contract.reopened")
        .map(|e| e.event.payload.to_value())
        .expect("contract.reopened");
    assert_eq!(reopened["status"], serde_json::json!("executing"));
    assert_eq!(
        reopened["outstanding"],
        serde_json::json!(again.outstanding.minor)
    );
}

/// An issued invoice recorded by mistake is voided (发票作废) with a reason:
/// it stays, marked voided with why, when and by whom, no longer counts as
/// invoiced (so a corrected invoice is issued for the amount), and its
/// number is never issued again. Voiding a plan, voiding twice, without a
/// reason, or by someone who may not change the contract is refused and
/// changes nothing; the contract's history and the `invoice.voided` event
/// carry the reason. Two voids of one invoice, or a void and an invoice
/// issued at once, cannot both pass; a finished or terminated contract's
/// invoice is voided too, the contract keeping its status.
pub async fn an_issued_invoice_recorded_by_mistake_is_voided(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{ContractStatus, InvoiceType, PaymentInput};
    use crate::schema::Table;
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "开票合同", 1_000_000).await;
    let issue = |contract: Uuid, fen: i64, number: &str| {
        w.crm.add_invoice(
            &w.zhangsan,
            contract,
            InvoiceType::VatSpecial,
            Money::cny(fen),
            Some(number.to_string()),
            None,
        )
    };
    let plan = w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(100_000),
            None,
            Some(w.crm.today()),
        )
        .await
        .expect("plan");
    assert_eq!(plan.status, "planned");
    let wrong = issue(c.id, 1_000_000, "04400001").await.expect("issued");
    assert_eq!(wrong.status, "issued");
    assert!(
        matches!(
            issue(c.id, 100, "04400002").await,
            Err(Error::InvalidState(_))
        ),
        "fully invoiced"
    );
    ack_all(&w).await;
    for (who, why, bad) in [
        (&w.zhangsan, "  ", "a blank reason"),
        (&w.zhangsan, "录\0错", "a reason holding NUL"),
        (&w.wangwu, "录错", "someone who may not change the contract"),
    ] {
        assert!(
            w.crm.void_invoice(who, wrong.id, why).await.is_err(),
            "{bad}"
        );
    }
    match w.crm.void_invoice(&w.zhangsan, plan.id, "不开了").await {
        Err(Error::InvalidState(m)) => assert!(m.contains("plan"), "{m}"),
        other => panic!("voiding a plan: {other:?}"),
    }
    let essay = "开错".repeat(251);
    match w.crm.void_invoice(&w.zhangsan, wrong.id, &essay).await {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("500"), "{v}"),
        other => panic!("a 502-character reason: {other:?}"),
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(1_000_000),
        "nothing refused is written"
    );
    assert!(event_types(&w).await.is_empty());
    let voided = w
        .crm
        .void_invoice(&w.zhangsan, wrong.id, " 金额开错 ")
        .await
        .expect("void");
    assert_eq!(voided.status, "voided");
    assert_eq!(voided.void_reason.as_deref(), Some("金额开错"));
    assert_eq!(voided.voided_by, Some(w.zhangsan.user_id.0));
    assert_eq!(voided.voided_at, Some(w.crm.now()));
    assert_eq!(voided.number.as_deref(), Some("04400001"));
    let contract = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(contract.invoiced, Money::cny(0));
    assert_eq!(contract.not_invoiced, Money::cny(1_000_000));
    let listed = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    assert_eq!(listed.len(), 2, "a voided invoice stays, marked");
    assert!(listed.iter().any(|i| i.id == wrong.id && i.is_voided()));
    match w.crm.void_invoice(&w.zhangsan, wrong.id, "再次").await {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("already") && m.contains("04400001"), "{m}")
        }
        other => panic!("voiding twice: {other:?}"),
    }
    // The voided paper keeps its number.
    match issue(c.id, 1_000_000, "04400001").await {
        Err(Error::Duplicate { message, .. }) => assert!(
            message.contains("04400001") && message.contains("voided") && message.contains(&c.code),
            "{message}"
        ),
        other => panic!("a voided invoice's number again: {other:?}"),
    }
    // Typed with full-width digits it is the same number; one with a space
    // inside is none.
    assert!(matches!(
        issue(c.id, 1_000_000, "０４４００００１").await,
        Err(Error::Duplicate { .. })
    ));
    match issue(c.id, 1_000_000, "0440 0009").await {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("space"), "{v}"),
        other => panic!("a number with a space: {other:?}"),
    }
    // Someone who may not read the contract is not told its code.
    let theirs = w
        .customer(&w.wangwu, "二组开票客户有限公司", json!({}))
        .await;
    let second = new_executing_contract(&w, &w.wangwu, theirs.id.0, "二组合同", 1_000_000).await;
    match w
        .crm
        .add_invoice(
            &w.wangwu,
            second.id,
            InvoiceType::VatSpecial,
            Money::cny(100),
            Some("04400001".into()),
            None,
        )
        .await
    {
        Err(Error::Duplicate { message, .. }) => assert!(
            message.contains("voided") && !message.contains(&c.code),
            "{message}"
        ),
        other => panic!("another's voided number: {other:?}"),
    }
    // The corrected invoice, for the whole amount again.
    let right = issue(c.id, 1_000_000, "04400003")
        .await
        .expect("the corrected invoice");
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(1_000_000)
    );
    let events = w.crm.pending_events("erp", 10_000).await.expect("pending");
    let e = events
        .iter()
        .find(|e| e.event.event_type == "invoice.voided")
        .expect("invoice.voided");
    let payload = e.event.payload.to_value();
    assert_eq!(payload["contract_code"], json!(c.code), "{payload}");
    assert_eq!(payload["number"], json!("04400001"), "{payload}");
    assert_eq!(payload["amount"], json!(1_000_000), "{payload}");
    assert_eq!(payload["reason"], json!("金额开错"), "{payload}");
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Contract, c.id)
        .await
        .expect("history");
    assert!(
        history.iter().any(|e| e.action == "invoice_voided"
            && e.changes.iter().any(|ch| ch.after == json!("金额开错"))
            && e.changes.iter().any(|ch| ch.after == json!("04400001"))),
        "{history:?}"
    );
    // Two voids of one invoice at once: one passes, the invoice counts off
    // once.
    let (o, zs, id) = (other.clone(), w.zhangsan.clone(), right.id);
    hooked.before_write(Table::Invoices, async move {
        o.void_invoice(&zs, id, "并发作废")
            .await
            .expect("the void meanwhile");
    });
    match w.crm.void_invoice(&w.zhangsan, right.id, "同时作废").await {
        Err(Error::Conflict { .. }) => {}
        other => panic!("two voids at once: {other:?}"),
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(0)
    );
    // A void while an invoice is issued: the void read the invoiced amount
    // before the new invoice; it fails, and passes once read again.
    let first = issue(c.id, 600_000, "04400004").await.expect("issued");
    let (o, zs, cid) = (other.clone(), w.zhangsan.clone(), c.id);
    hooked.before_write(Table::Invoices, async move {
        o.add_invoice(
            &zs,
            cid,
            InvoiceType::VatNormal,
            Money::cny(400_000),
            Some("04400005".into()),
            None,
        )
        .await
        .expect("the invoice meanwhile");
    });
    match w.crm.void_invoice(&w.zhangsan, first.id, "开错").await {
        Err(Error::Conflict { .. }) => {}
        other => panic!("a void while an invoice is issued: {other:?}"),
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(1_000_000)
    );
    w.crm
        .void_invoice(&w.zhangsan, first.id, "开错")
        .await
        .expect("void read again");
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(400_000)
    );
    // A finished contract's invoice is voided (and the contract stays
    // finished); a terminated contract's is not.
    let done = new_executing_contract(&w, &w.zhangsan, customer.id.0, "已完成合同", 200_000).await;
    w.crm
        .record_payment(
            &w.zhangsan,
            done.id,
            PaymentInput {
                amount: Money::cny(200_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("paid");
    let inv = issue(done.id, 200_000, "04400006").await.expect("issued");
    let finished = w
        .crm
        .close_contract(&w.zhangsan, done.id, None)
        .await
        .expect("finished");
    assert_eq!(finished.status, ContractStatus::Finished);
    w.crm
        .void_invoice(&w.zhangsan, inv.id, "抬头错误")
        .await
        .expect("void on a finished contract");
    let after = w.crm.contract(&w.zhangsan, done.id).await.expect("c");
    assert_eq!(
        (after.status, after.invoiced),
        (ContractStatus::Finished, Money::cny(0))
    );
    let ended = new_executing_contract(&w, &w.zhangsan, customer.id.0, "终止合同", 200_000).await;
    let inv = issue(ended.id, 100_000, "04400007").await.expect("issued");
    w.crm
        .close_contract(&w.zhangsan, ended.id, Some("客户取消"))
        .await
        .expect("terminated");
    // Voiding corrects a mistake: a terminated contract's invoice is voided
    // too, and the contract stays terminated.
    w.crm
        .void_invoice(&w.zhangsan, inv.id, "取消")
        .await
        .expect("void on a terminated contract");
    let after = w.crm.contract(&w.zhangsan, ended.id).await.expect("c");
    assert_eq!(
        (after.status, after.invoiced),
        (ContractStatus::Terminated, Money::cny(0))
    );
}

/// The message of a validation error (panics on anything else).
fn validation_message<T: std::fmt::Debug>(got: crate::error::Result<T>, what: &str) -> String {
    match got {
        Err(e @ Error::Validation(_)) => e.to_string(),
        other => panic!("{what}: expected a validation error, got {other:?}"),
    }
}

/// What has already happened — a payment received, an invoice issued, a
/// delivery — is dated at most today, the company's local date (a plan may
/// lie ahead), and nothing of a refused record is written. An issued
/// invoice given no date is dated today.
pub async fn sales_facts_are_dated_at_most_today(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        DeliveryLine, InvoiceType, LineInput, NewContract, PaymentInput, PlanInput,
    };
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "设备合同".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: Some("台".into()),
                    quantity: 5,
                    unit_price: Some(Money::cny(100_000)),
                    discount_bp: 0,
                    tax_rate: Some(1300),
                }],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let today = w.crm.today();
    let tomorrow = today.succ_opt().expect("date");
    let pay = |on| PaymentInput {
        amount: Money::cny(10_000),
        received_on: on,
        method: None,
        receipt_no: None,
        notes: None,
    };
    let deliver = |on| {
        w.crm.record_delivery(
            &w.zhangsan,
            c.id,
            on,
            vec![DeliveryLine {
                line: 1,
                quantity: 1,
            }],
            None,
        )
    };
    let issue = |number: &str, on| {
        w.crm.add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(10_000),
            Some(number.into()),
            on,
        )
    };
    // Dated tomorrow, each is refused naming its date field and the date.
    let m = validation_message(
        w.crm.record_payment(&w.zhangsan, c.id, pay(tomorrow)).await,
        "a payment received tomorrow",
    );
    assert!(
        m.contains("received_on") && m.contains(&tomorrow.to_string()) && m.contains("future"),
        "{m}"
    );
    let m = validation_message(deliver(tomorrow).await, "a delivery made tomorrow");
    assert!(
        m.contains("delivered_on") && m.contains(&tomorrow.to_string()) && m.contains("future"),
        "{m}"
    );
    let m = validation_message(
        issue("04400001", Some(tomorrow)).await,
        "an invoice issued tomorrow",
    );
    assert!(
        m.contains("invoice_date") && m.contains(&tomorrow.to_string()) && m.contains("future"),
        "{m}"
    );
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert!(col.payments.is_empty(), "{:?}", col.payments);
    assert_eq!(col.received, Money::cny(0));
    assert!(
        w.crm
            .invoices(&w.zhangsan, c.id)
            .await
            .expect("invoices")
            .is_empty()
    );
    let (ds, _) = w
        .crm
        .deliveries(&w.zhangsan, c.id)
        .await
        .expect("deliveries");
    assert!(ds.is_empty(), "{ds:?}");
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(now.invoiced, Money::cny(0));
    // Plans lie ahead: instalments and invoice plans, with or without a date.
    let ahead = today + chrono::Duration::days(60);
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![PlanInput {
                due_on: ahead,
                amount: Money::cny(100_000),
                notes: None,
            }],
        )
        .await
        .expect("a plan due ahead");
    let planned = w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(100_000),
            None,
            Some(ahead),
        )
        .await
        .expect("an invoice plan ahead");
    assert_eq!(planned.kind, "plan");
    assert_eq!(planned.invoice_date, Some(ahead));
    let open = w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(100_000),
            None,
            None,
        )
        .await
        .expect("an invoice plan without a date");
    assert_eq!(open.invoice_date, None, "a plan's date stays open");
    // Today's facts are taken; an issued invoice without a date is today's.
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(today))
        .await
        .expect("a payment received today");
    deliver(today).await.expect("a delivery made today");
    let inv = issue("04400002", None).await.expect("an invoice issued");
    assert_eq!(inv.kind, "issued");
    assert_eq!(
        inv.invoice_date,
        Some(today),
        "an issued invoice is dated today"
    );
    let stored = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    assert!(
        stored
            .iter()
            .any(|i| i.number.as_deref() == Some("04400002") && i.invoice_date == Some(today)),
        "{stored:?}"
    );
    // Today is the company's local date: at 01:00 in Beijing (still the
    // day before in UTC) the new day's facts are taken, the next day's not.
    w.clock.advance(chrono::Duration::hours(15));
    let local = w.crm.today();
    assert_eq!(local, tomorrow);
    assert_eq!(
        w.crm.now().date_naive(),
        today,
        "UTC is still on the day before"
    );
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(local))
        .await
        .expect("a payment received on the local day");
    let inv = issue("04400003", None).await.expect("an invoice issued");
    assert_eq!(inv.invoice_date, Some(local), "dated on the local day");
    let after = local.succ_opt().expect("date");
    let m = validation_message(
        w.crm.record_payment(&w.zhangsan, c.id, pay(after)).await,
        "a payment received the day after",
    );
    assert!(m.contains(&after.to_string()), "{m}");
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert_eq!(col.received, Money::cny(20_000));
}

/// A quote's validity date (`valid_until`, the last day it holds) has not
/// passed when the quote is made or revised, nor when a draft is
/// submitted: a draft left past its date is revised with a new one first.
pub async fn quote_validity_dates_have_not_passed(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = LineInput {
        product_id: None,
        name: "实施服务".into(),
        unit: Some("项".into()),
        quantity: 1,
        unit_price: Some(Money::cny(100_000)),
        discount_bp: 0,
        tax_rate: Some(600),
    };
    let today = w.crm.today();
    let yesterday = today.pred_opt().expect("date");
    let new_quote = |until| NewQuote {
        title: "实施报价".into(),
        customer_id: customer.id.0,
        lines: vec![line.clone()],
        valid_until: until,
        ..NewQuote::default()
    };
    // Made with a date already passed: refused, and nothing is written.
    let m = validation_message(
        w.crm
            .create_quote(&w.zhangsan, new_quote(Some(yesterday)))
            .await,
        "a quote valid until yesterday",
    );
    assert!(
        m.contains("valid_until")
            && m.contains(&yesterday.to_string())
            && m.contains("has passed")
            && m.contains("set a new date"),
        "{m}"
    );
    let listed = w
        .crm
        .list_quotes(&w.zhangsan, None, 1, 10)
        .await
        .expect("quotes");
    assert_eq!(listed.total, Some(0), "{:?}", listed.items);
    // Its last day is today: it still holds, and is approved.
    let last_day = w
        .crm
        .create_quote(&w.zhangsan, new_quote(Some(today)))
        .await
        .expect("a quote valid until today");
    let (last_day, _) = w
        .crm
        .submit_quote(&w.zhangsan, last_day.id, None)
        .await
        .expect("submitted on its last day");
    assert_eq!(last_day.status, QuoteStatus::Approved);
    // Revised with a date already passed: refused, no new version.
    let tomorrow = today.succ_opt().expect("date");
    let q = w
        .crm
        .create_quote(&w.zhangsan, new_quote(Some(tomorrow)))
        .await
        .expect("quote");
    let m = validation_message(
        w.crm
            .revise_quote(&w.zhangsan, q.id, vec![line.clone()], Some(yesterday))
            .await,
        "a revision valid until yesterday",
    );
    assert!(
        m.contains("valid_until") && m.contains(&yesterday.to_string()),
        "{m}"
    );
    assert_eq!(
        w.crm
            .quote_versions(&w.zhangsan, q.id)
            .await
            .expect("versions")
            .len(),
        1
    );
    // Left in draft past its date, it is not submitted (nor approved).
    w.clock.advance(chrono::Duration::days(2));
    let today = w.crm.today();
    match w.crm.submit_quote(&w.zhangsan, q.id, None).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&q.code)
                && m.contains(&format!("valid until {tomorrow} has passed"))
                && m.contains("set a new date"),
            "{m}"
        ),
        other => panic!("submitting a quote past its date: {other:?}"),
    }
    let still = w.crm.quote(&w.zhangsan, q.id).await.expect("quote");
    assert_eq!(still.status, QuoteStatus::Draft);
    // A revision keeping the passed date is refused too; one with a new
    // date is submitted.
    let m = validation_message(
        w.crm
            .revise_quote(&w.zhangsan, q.id, vec![line.clone()], None)
            .await,
        "a revision keeping a passed date",
    );
    assert!(
        m.contains(&q.code) && m.contains(&tomorrow.to_string()) && m.contains("set a new date"),
        "{m}"
    );
    let later = today + chrono::Duration::days(30);
    let r = w
        .crm
        .revise_quote(&w.zhangsan, q.id, vec![line], Some(later))
        .await
        .expect("revised with a new date");
    assert_eq!(r.valid_until, Some(later));
    let (r, _) = w
        .crm
        .submit_quote(&w.zhangsan, r.id, None)
        .await
        .expect("submit");
    assert_eq!(r.status, QuoteStatus::Approved);
}

/// An approved (executing) contract is what its approval approved: its
/// signing date, title, lines and amount are refused, naming the contract,
/// its state in both languages and what to do (a new contract); its start
/// and end dates and notes still change. A draft changes its signing date;
/// a contract pending approval is changed after withdrawing its approval.
pub async fn approved_contract_keeps_what_was_approved(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, ContractStatus, LineInput, NewContract};
    use chrono::NaiveDate;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    // A draft's signing date changes.
    let draft = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "草稿合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                signed_on: Some(day(11, 1)),
                ..NewContract::default()
            },
        )
        .await
        .expect("draft");
    let draft = w
        .crm
        .update_contract(
            &w.zhangsan,
            draft.id,
            draft.version,
            ContractPatch {
                signed_on: Some(day(11, 2)),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("a draft's signing date");
    assert_eq!(draft.signed_on, Some(day(11, 2)));
    // Approved (no flow: executing at once).
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, draft.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(c.status, ContractStatus::Executing);
    let line = LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(200_000)),
        discount_bp: 0,
        tax_rate: Some(1300),
    };
    for (patch, field) in [
        (
            ContractPatch {
                signed_on: Some(day(12, 1)),
                ..ContractPatch::default()
            },
            "signing date",
        ),
        (
            ContractPatch {
                title: Some("改名合同".into()),
                ..ContractPatch::default()
            },
            "title",
        ),
        (
            ContractPatch {
                amount: Some(Money::cny(90_000)),
                ..ContractPatch::default()
            },
            "amount",
        ),
        (
            ContractPatch {
                lines: Some(vec![line.clone()]),
                ..ContractPatch::default()
            },
            "lines",
        ),
    ] {
        match w
            .crm
            .update_contract(&w.zhangsan, c.id, c.version, patch)
            .await
        {
            Err(Error::InvalidState(m)) => assert!(
                m.contains(&c.code)
                    && m.contains("executing (执行中)")
                    && m.contains(field)
                    && m.contains("approved")
                    && m.contains("new contract")
                    && !m.contains("pending_approval"),
                "{field}: {m}"
            ),
            other => panic!("an executing contract's {field} changed: {other:?}"),
        }
    }
    let still = w.crm.contract(&w.zhangsan, c.id).await.expect("read");
    assert_eq!(
        (
            still.signed_on,
            still.title.as_str(),
            still.amount,
            still.version
        ),
        (Some(day(11, 2)), "草稿合同", Money::cny(100_000), c.version)
    );
    // The same values again are no change; the term and notes change.
    let c = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                title: Some("草稿合同".into()),
                signed_on: Some(day(11, 2)),
                start_on: Some(day(12, 1)),
                end_on: NaiveDate::from_ymd_opt(2027, 12, 31),
                notes: Some("延期一年".into()),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("term and notes");
    assert_eq!(c.end_on, NaiveDate::from_ymd_opt(2027, 12, 31));
    assert_eq!(c.notes.as_deref(), Some("延期一年"));
    // Pending approval: nothing changes until the approval is withdrawn.
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("flow");
    let p = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "待审合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (p, approval) = w
        .crm
        .submit_contract(&w.zhangsan, p.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(p.status, ContractStatus::PendingApproval);
    let notes = ContractPatch {
        notes: Some("补充".into()),
        ..ContractPatch::default()
    };
    match w
        .crm
        .update_contract(&w.zhangsan, p.id, p.version, notes.clone())
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains(&p.code)
                && m.contains("pending approval (审批中)")
                && m.contains("withdraw"),
            "{m}"
        ),
        other => panic!("a pending contract changed: {other:?}"),
    }
    match w
        .crm
        .submit_contract(&w.zhangsan, p.id, Vec::new(), None)
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("pending approval (审批中)") && m.contains("withdraw"),
            "{m}"
        ),
        other => panic!("a pending contract submitted again: {other:?}"),
    }
    w.crm
        .withdraw(&w.zhangsan, approval.expect("approval").id, None)
        .await
        .expect("withdraw");
    let p = w.crm.contract(&w.zhangsan, p.id).await.expect("read");
    assert_eq!(p.status, ContractStatus::Draft);
    let p = w
        .crm
        .update_contract(&w.zhangsan, p.id, p.version, notes)
        .await
        .expect("a withdrawn contract is a draft again");
    assert_eq!(p.notes.as_deref(), Some("补充"));
}

/// A lost opportunity is reopened (by who may edit it) into the stage it
/// was lost in, tracking again, its reason cleared and the change audited;
/// until then its quote does not become a contract, and resuming or moving
/// it is refused with a message that says to reopen it. Losing an
/// opportunity with an approved quote is allowed: the quote waits.
pub async fn lost_opportunity_is_reopened_for_its_documents(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{
        LineInput, NewContract, NewOpportunity, NewQuote, OppStatus, QuoteStatus, StageCommand,
    };
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "扩容项目".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(500_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("assessment".into()),
        )
        .await
        .expect("assessment");
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "扩容报价".into(),
                customer_id: customer.id.0,
                opportunity_id: Some(o.id),
                lines: vec![LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(500_000)),
                    discount_bp: 0,
                    tax_rate: Some(1300),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let (q, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("approved without a flow");
    assert_eq!(q.status, QuoteStatus::Approved);
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::Lose("价格高".into()),
        )
        .await
        .expect("lost with an approved quote");
    assert_eq!((o.status, o.probability), (OppStatus::Lost, 0));
    match w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains("reopen"), "{m}"),
        other => panic!("a contract for a lost opportunity: {other:?}"),
    }
    for command in [
        StageCommand::Resume,
        StageCommand::Hold,
        StageCommand::MoveTo("needs".into()),
    ] {
        match w
            .crm
            .change_opportunity_stage(&w.zhangsan, o.id, o.version, command.clone())
            .await
        {
            Err(Error::InvalidState(m)) => assert!(
                m.contains("lost (失败)") && m.contains("reopen it first"),
                "{command:?}: {m}"
            ),
            other => panic!("{command:?} on a lost opportunity: {other:?}"),
        }
    }
    // Who may not edit it does not reopen it.
    assert!(
        w.crm
            .change_opportunity_stage(&w.wangwu, o.id, o.version, StageCommand::Reopen)
            .await
            .is_err()
    );
    let reopened = w
        .crm
        .change_opportunity_stage(&w.zhangsan, o.id, o.version, StageCommand::Reopen)
        .await
        .expect("reopen");
    assert_eq!(reopened.status, OppStatus::Tracking);
    assert_eq!(reopened.stage, "assessment", "back where it was lost");
    assert_eq!(reopened.probability, 20);
    assert_eq!(reopened.lost_reason, None);
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Opportunity, o.id)
        .await
        .expect("history");
    let last = history.last().expect("an audit entry");
    assert_eq!(last.actor_id, Some(w.zhangsan.user_id.0));
    assert!(
        last.changes.iter().any(|c| c.field == "status"
            && c.before == json!("lost")
            && c.after == json!("tracking")),
        "{last:?}"
    );
    // Reopening an open one says what reopening is for.
    match w
        .crm
        .change_opportunity_stage(&w.zhangsan, o.id, reopened.version, StageCommand::Reopen)
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(m.contains("only a lost or expired opportunity"), "{m}")
        }
        other => panic!("reopening an open opportunity: {other:?}"),
    }
    let c = w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
        .expect("the quote becomes a contract once reopened");
    assert_eq!(c.opportunity_id, Some(o.id));
}

/// Refused quote actions name the quote's state as people read it (no
/// `pending_approval`), in both languages, and what to do: withdraw the
/// approval to revise a quote pending approval; a converted quote names
/// the contract it became.
pub async fn quote_refusals_name_the_state_and_what_to_do(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = LineInput {
        product_id: None,
        name: "实施服务".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(100_000)),
        discount_bp: 0,
        tax_rate: Some(600),
    };
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "实施报价".into(),
                customer_id: customer.id.0,
                lines: vec![line.clone()],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    match w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
    {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("is a draft (草稿)") && m.contains("submit it for approval first"),
            "{m}"
        ),
        other => panic!("a draft quote converted: {other:?}"),
    }
    let (q, approval) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(q.status, QuoteStatus::PendingApproval);
    let pending = |m: &str| {
        m.contains(&format!("quote {} v1 is pending approval (审批中)", q.code))
            && !m.contains("pending_approval")
    };
    for (what, got) in [
        (
            "revised",
            w.crm
                .revise_quote(&w.zhangsan, q.id, vec![line.clone()], None)
                .await
                .map(|_| ()),
        ),
        (
            "submitted",
            w.crm
                .submit_quote(&w.zhangsan, q.id, None)
                .await
                .map(|_| ()),
        ),
    ] {
        match got {
            Err(Error::InvalidState(m)) => {
                assert!(
                    pending(&m) && m.contains("withdraw the approval"),
                    "{what}: {m}"
                )
            }
            other => panic!("a pending quote {what}: {other:?}"),
        }
    }
    match w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
    {
        Err(Error::InvalidState(m)) => {
            assert!(pending(&m) && m.contains("wait for its approval"), "{m}")
        }
        other => panic!("a pending quote converted: {other:?}"),
    }
    w.crm
        .approve(&w.lisi, approval.expect("approval").id, None)
        .await
        .expect("approve");
    let c = w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
        .expect("contract");
    for (what, got) in [
        (
            "revised",
            w.crm
                .revise_quote(&w.zhangsan, q.id, vec![line.clone()], None)
                .await
                .map(|_| ()),
        ),
        (
            "submitted",
            w.crm
                .submit_quote(&w.zhangsan, q.id, None)
                .await
                .map(|_| ()),
        ),
        (
            "converted again",
            w.crm
                .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
                .await
                .map(|_| ()),
        ),
    ] {
        match got {
            Err(Error::InvalidState(m)) => assert!(
                m.contains(&format!("converted into contract {} (已转合同)", c.code))
                    && !m.contains("is converted;"),
                "{what}: {m}"
            ),
            other => panic!("a converted quote {what}: {other:?}"),
        }
    }
}

/// Rates are named as percentages, never in basis points: a VAT rate typed
/// as 17 % on a line or a product, a discount over 100 %. A quote refused
/// for its lines takes no number: the next one gets the next number.
pub async fn rates_read_as_percentages_and_refused_quotes_take_no_number(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, ProductInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let line = |fen: i64, discount_bp: i64, tax_rate: i64| LineInput {
        product_id: None,
        name: "服务器".into(),
        unit: None,
        quantity: 1,
        unit_price: Some(Money::cny(fen)),
        discount_bp,
        tax_rate: Some(tax_rate),
    };
    let quote = |lines: Vec<LineInput>| NewQuote {
        title: "服务器报价".into(),
        customer_id: customer.id.0,
        lines,
        ..NewQuote::default()
    };
    let first = w
        .crm
        .create_quote(&w.zhangsan, quote(vec![line(100_000, 0, 1300)]))
        .await
        .expect("quote");
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                quote(vec![line(100_000, 0, 1700), line(100_000, 10_001, 1300)]),
            )
            .await,
    );
    assert!(
        m.contains("lines[1].tax_rate")
            && m.contains("17% is not one of the allowed rates: 13%, 9%, 6%")
            && m.contains("lines[2].discount")
            && m.contains("100.01% off is not between 0% and 100%")
            && !m.contains("basis")
            && !m.contains("1700")
            && !m.contains("discount_bp"),
        "{m}"
    );
    let m = invalid_message(
        w.crm
            .create_product(
                &w.admin,
                ProductInput {
                    name: Some("交换机".into()),
                    list_price: Some(Money::cny(10_000)),
                    tax_rate: Some(1700),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("17% is not one of 13%, 9%, 6%") && !m.contains("basis"),
        "{m}"
    );
    // A quote adding up to ¥0 is refused before it takes a number.
    let m = invalid_message(
        w.crm
            .create_quote(&w.zhangsan, quote(vec![line(0, 0, 1300)]))
            .await,
    );
    assert!(m.contains("positive"), "{m}");
    let next = w
        .crm
        .create_quote(&w.zhangsan, quote(vec![line(100_000, 0, 1300)]))
        .await
        .expect("quote");
    let number = |code: &str| -> u32 {
        code.rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a numbered code: {code}"))
    };
    assert_eq!(
        number(&next.code),
        number(&first.code) + 1,
        "{} after {}: no number used up by the refused quotes",
        next.code,
        first.code
    );
}

/// A product category's name is refused where a sibling (same parent, or
/// another top-level category) has it, trimmed and any case aside, so
/// that imports and exports naming categories by name and `parent/child`
/// path cannot confuse them; the same name under another parent is
/// another category. Two siblings created at once under one name: the
/// later one is refused by name, not left beside the first.
pub async fn sibling_product_categories_have_distinct_names(store: Arc<dyn Store>) {
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let duplicate = |got: crate::error::Result<crate::sales::product::Category>| match got {
        Err(Error::Duplicate { message, .. }) => message,
        other => panic!("expected a duplicate, got {other:?}"),
    };
    let office = w
        .crm
        .create_product_category(&w.admin, "办公设备", None)
        .await
        .expect("top level");
    let m = duplicate(
        w.crm
            .create_product_category(&w.admin, " 办公设备 ", None)
            .await,
    );
    assert!(
        m.contains("办公设备") && m.contains("top level") && m.contains(&office.code),
        "{m}"
    );
    let soft = w
        .crm
        .create_product_category(&w.admin, "Software", Some(office.id))
        .await
        .expect("child");
    let m = duplicate(
        w.crm
            .create_product_category(&w.admin, "software", Some(office.id))
            .await,
    );
    assert!(
        m.contains("Software") && m.contains(&soft.code) && m.contains("办公设备"),
        "{m}"
    );
    // The same name at another level, or under another parent, is fine.
    let it = w
        .crm
        .create_product_category(&w.admin, "Software", None)
        .await
        .expect("a top-level namesake of a child");
    w.crm
        .create_product_category(&w.admin, "Software", Some(it.id))
        .await
        .expect("under another parent");
    // Another session creates 耗材 just before this one writes its own.
    let admin = w.admin.clone();
    let parent = office.id;
    hooked.before_write(crate::schema::Table::ProductCategories, async move {
        other
            .create_product_category(&admin, "耗材", Some(parent))
            .await
            .expect("created meanwhile");
    });
    let m = duplicate(
        w.crm
            .create_product_category(&w.admin, "耗材", Some(office.id))
            .await,
    );
    assert!(m.contains("耗材") && m.contains("another user"), "{m}");
    let names: Vec<String> = w
        .crm
        .list_product_categories(&w.admin)
        .await
        .expect("categories")
        .into_iter()
        .filter(|c| c.parent_id == Some(office.id))
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["Software", "耗材"]);
}

/// A product in the recycle bin keeps its code (products are not purged):
/// a new product, or another product recoded, may not take it — the
/// refusal names the binned product and says to restore it — and the
/// binned product is restored under it. Once restored and recoded, its
/// old code is free.
pub async fn a_binned_products_code_stays_taken(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::ProductInput;
    let w = with_sales_rights(World::new(store).await).await;
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
    let a = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: None,
                ..product("", "打印机")
            },
        )
        .await
        .expect("generated code");
    let b = w
        .crm
        .create_product(&w.admin, product("PR-2", "扫描仪"))
        .await
        .expect("second");
    w.crm
        .set_product_deleted(&w.admin, a.id, true)
        .await
        .expect("delete");
    let m = duplicate(
        w.crm
            .create_product(&w.admin, product(&a.code, "新打印机"))
            .await,
    );
    assert!(
        m.contains(&a.code)
            && m.contains("打印机")
            && m.contains("recycle bin")
            && m.contains("restore"),
        "{m}"
    );
    let m = duplicate(
        w.crm
            .update_product(
                &w.admin,
                b.id,
                b.version,
                ProductInput {
                    code: Some(a.code.clone()),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(m.contains(&a.code) && m.contains("recycle bin"), "{m}");
    let back = w
        .crm
        .set_product_deleted(&w.admin, a.id, false)
        .await
        .expect("restored under its code");
    assert_eq!((back.code.as_str(), back.deleted), (a.code.as_str(), false));
    assert_eq!(
        w.crm
            .product_by_code(&w.admin, &a.code)
            .await
            .expect("by code")
            .id,
        a.id
    );
    // Recoded, it frees its old code for a new product.
    w.crm
        .update_product(
            &w.admin,
            a.id,
            back.version,
            ProductInput {
                code: Some("PR-1".into()),
                ..ProductInput::default()
            },
        )
        .await
        .expect("recode");
    w.crm
        .create_product(&w.admin, product(&a.code, "新打印机"))
        .await
        .expect("the old code is free");
}

/// Nothing is recorded on a contract before it began: a payment received
/// or an invoice issued (or planned) dated before the contract's signing
/// date is refused, naming both dates, and so is one dated before the
/// day a contract without a signing date was created (that day taken in
/// the company's local time); the contract's first day itself is taken.
/// Nothing of a refused record is written.
pub async fn payments_and_invoices_are_not_dated_before_the_contract(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{InvoiceType, NewContract, PaymentInput};
    use chrono::NaiveDate;
    use serde_json::json;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let executing = |title: &'static str, signed_on: Option<NaiveDate>| {
        let w = &w;
        async move {
            let c = w
                .crm
                .create_contract(
                    &w.zhangsan,
                    NewContract {
                        title: title.into(),
                        customer_id: customer.id.0,
                        amount: Some(Money::cny(1_000_000)),
                        signed_on,
                        ..NewContract::default()
                    },
                )
                .await
                .expect("contract");
            let (c, _) = w
                .crm
                .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
                .await
                .expect("executing (no flow)");
            c
        }
    };
    let pay = |on: NaiveDate| PaymentInput {
        amount: Money::cny(10_000),
        received_on: on,
        method: None,
        receipt_no: None,
        notes: None,
    };
    let invoice = |c: Uuid, number: Option<&str>, on: NaiveDate| {
        w.crm.add_invoice(
            &w.zhangsan,
            c,
            InvoiceType::VatSpecial,
            Money::cny(10_000),
            number.map(str::to_string),
            Some(on),
        )
    };
    // Signed on 11-01: the day before is refused, naming both dates.
    let signed = executing("已签约合同", Some(d(11, 1))).await;
    let m = validation_message(
        w.crm
            .record_payment(&w.zhangsan, signed.id, pay(d(10, 31)))
            .await,
        "a payment before the signing date",
    );
    assert!(
        m.contains("received_on")
            && m.contains("2026-10-31")
            && m.contains("2026-11-01")
            && m.contains("signed")
            && m.contains(&signed.code),
        "{m}"
    );
    let m = validation_message(
        invoice(signed.id, Some("04400101"), d(10, 31)).await,
        "an invoice before the signing date",
    );
    assert!(
        m.contains("invoice_date") && m.contains("2026-10-31") && m.contains("2026-11-01"),
        "{m}"
    );
    let m = validation_message(
        invoice(signed.id, None, d(10, 15)).await,
        "an invoice plan before the signing date",
    );
    assert!(m.contains("2026-10-15") && m.contains("2026-11-01"), "{m}");
    let c = w.crm.contract(&w.zhangsan, signed.id).await.expect("c");
    assert_eq!((c.received, c.invoiced), (Money::cny(0), Money::cny(0)));
    assert!(
        w.crm
            .collection(&w.zhangsan, signed.id)
            .await
            .expect("collection")
            .payments
            .is_empty()
    );
    assert!(
        w.crm
            .invoices(&w.zhangsan, signed.id)
            .await
            .expect("invoices")
            .is_empty()
    );
    // The signing day itself is taken.
    w.crm
        .record_payment(&w.zhangsan, signed.id, pay(d(11, 1)))
        .await
        .expect("a payment on the signing day");
    invoice(signed.id, Some("04400101"), d(11, 1))
        .await
        .expect("an invoice on the signing day");
    invoice(signed.id, None, d(11, 1))
        .await
        .expect("an invoice plan on the signing day");
    // Without a signing date the contract began the day it was created, in
    // the company's local time: created at 01:00 on 11-28 in Beijing (still
    // 11-27 in UTC), 11-27 is before it.
    w.clock.advance(chrono::Duration::hours(15));
    assert_eq!(w.crm.today(), d(11, 28));
    assert_eq!(w.crm.now().date_naive(), d(11, 27));
    let unsigned = executing("未填签约日期合同", None).await;
    let m = validation_message(
        w.crm
            .record_payment(&w.zhangsan, unsigned.id, pay(d(11, 27)))
            .await,
        "a payment before the creation day",
    );
    assert!(
        m.contains("2026-11-27") && m.contains("2026-11-28") && m.contains("no signing date"),
        "{m}"
    );
    let m = validation_message(
        invoice(unsigned.id, Some("04400102"), d(11, 27)).await,
        "an invoice before the creation day",
    );
    assert!(m.contains("2026-11-27") && m.contains("2026-11-28"), "{m}");
    w.crm
        .record_payment(&w.zhangsan, unsigned.id, pay(d(11, 28)))
        .await
        .expect("a payment on the creation day");
    let issued = w
        .crm
        .add_invoice(
            &w.zhangsan,
            unsigned.id,
            InvoiceType::VatNormal,
            Money::cny(10_000),
            Some("04400102".into()),
            None,
        )
        .await
        .expect("an invoice dated today");
    assert_eq!(issued.invoice_date, Some(d(11, 28)));
    let c = w.crm.contract(&w.zhangsan, unsigned.id).await.expect("c");
    assert_eq!(
        (c.received, c.invoiced),
        (Money::cny(10_000), Money::cny(10_000))
    );
}

/// Voiding corrects a mistake, so it stays possible after a contract was
/// terminated (意外中止): an issued invoice and a confirmed payment of a
/// terminated contract are voided, the contract's invoiced, received and
/// outstanding amounts follow in the same write, and the contract stays
/// terminated — not executing again, not among the receivables or the
/// contracts not fully collected, and taking no new payment or invoice.
pub async fn a_terminated_contracts_invoices_and_payments_are_still_voided(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractQuery, ContractStatus, InvoiceType, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "中止合同", 1_000_000).await;
    let pay = |fen: i64| PaymentInput {
        amount: Money::cny(fen),
        received_on: w.crm.today(),
        method: None,
        receipt_no: None,
        notes: None,
    };
    let (kept, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(100_000))
        .await
        .expect("payment");
    let (wrong, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(300_000))
        .await
        .expect("payment");
    let inv = w
        .crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(400_000),
            Some("04400201".into()),
            None,
        )
        .await
        .expect("invoice");
    let ended = w
        .crm
        .close_contract(&w.zhangsan, c.id, Some("客户取消项目"))
        .await
        .expect("terminated");
    assert_eq!(ended.status, ContractStatus::Terminated);
    ack_all(&w).await;
    let voided = w
        .crm
        .void_invoice(&w.zhangsan, inv.id, "发票抬头错误")
        .await
        .expect("an invoice of a terminated contract is voided");
    assert!(voided.is_voided());
    let after = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(after.status, ContractStatus::Terminated);
    assert_eq!(after.invoiced, Money::cny(0));
    assert_eq!(after.terminated_reason.as_deref(), Some("客户取消项目"));
    let p = w
        .crm
        .void_payment(&w.zhangsan, wrong.id, "退票")
        .await
        .expect("a payment of a terminated contract is voided");
    assert_eq!(p.status, "voided");
    let after = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(after.status, ContractStatus::Terminated, "not reopened");
    assert_eq!(
        (after.received, after.outstanding),
        (Money::cny(100_000), Money::cny(900_000))
    );
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.received, Money::cny(100_000));
    assert_eq!(
        col.overdue,
        Money::cny(0),
        "a terminated contract owes nothing overdue"
    );
    assert!(
        col.payments
            .iter()
            .any(|p| p.id == kept.id && p.status == "confirmed")
    );
    let types = event_types(&w).await;
    assert!(
        types.contains(&"invoice.voided".to_string())
            && types.contains(&"payment.voided".to_string()),
        "{types:?}"
    );
    // Still closed: not among what is owed, and taking nothing new.
    assert!(
        w.crm
            .receivables(&w.zhangsan)
            .await
            .expect("receivables")
            .is_empty()
    );
    let open = w
        .crm
        .list_contracts(
            &w.zhangsan,
            &ContractQuery {
                not_fully_received: true,
                ..ContractQuery::default()
            },
        )
        .await
        .expect("list");
    assert!(open.items.iter().all(|x| x.id != c.id), "{:?}", open.items);
    assert!(matches!(
        w.crm.record_payment(&w.zhangsan, c.id, pay(100)).await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        w.crm
            .add_invoice(
                &w.zhangsan,
                c.id,
                InvoiceType::VatSpecial,
                Money::cny(100),
                Some("04400202".into()),
                None,
            )
            .await,
        Err(Error::InvalidState(_))
    ));
}

/// Replacing a payment plan keeps what was paid: payments fill the
/// instalments oldest due first, and an instalment with money received
/// against it is neither dropped, nor made smaller than what was received,
/// nor robbed of it by a new instalment due earlier — each refused naming
/// the instalment, its due date and what was received, and writing
/// nothing. Instalments nothing was received against change freely, a
/// paid one may grow, and once its payment is voided it may go.
pub async fn payment_plan_keeps_instalments_already_paid(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewContract, PaymentInput, PlanInput};
    use chrono::NaiveDate;
    use serde_json::json;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "分期合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000_000)),
                signed_on: Some(d(8, 1)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    w.crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing (no flow)");
    let plan = |due: NaiveDate, fen: i64| PlanInput {
        due_on: due,
        amount: Money::cny(fen),
        notes: None,
    };
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![
                plan(d(9, 1), 300_000),
                plan(d(10, 1), 300_000),
                plan(d(11, 1), 400_000),
            ],
        )
        .await
        .expect("plan");
    // ¥4,500: instalment 1 paid, ¥1,500 of instalment 2, nothing of 3.
    let (paid, _) = w
        .crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(450_000),
                received_on: d(10, 10),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("payment");
    let shape = |col: crate::sales::Collection| {
        col.plans
            .iter()
            .map(|p| (p.due_on, p.amount.minor, p.received.minor))
            .collect::<Vec<_>>()
    };
    let before = shape(w.crm.collection(&w.zhangsan, c.id).await.expect("col"));
    assert_eq!(
        before,
        vec![
            (d(9, 1), 300_000, 300_000),
            (d(10, 1), 300_000, 150_000),
            (d(11, 1), 400_000, 0)
        ]
    );
    ack_all(&w).await;
    // Dropping the paid instalment 1.
    let m = validation_message(
        w.crm
            .set_payment_plan(
                &w.zhangsan,
                c.id,
                vec![plan(d(10, 1), 600_000), plan(d(11, 1), 400_000)],
            )
            .await,
        "a plan dropping a paid instalment",
    );
    assert!(
        m.contains("instalment 1")
            && m.contains("2026-09-01")
            && m.contains("¥3,000.00")
            && m.contains("drops"),
        "{m}"
    );
    // Making instalment 2 smaller than the ¥1,500 received against it.
    let m = validation_message(
        w.crm
            .set_payment_plan(
                &w.zhangsan,
                c.id,
                vec![
                    plan(d(9, 1), 300_000),
                    plan(d(10, 1), 100_000),
                    plan(d(12, 1), 600_000),
                ],
            )
            .await,
        "a plan shrinking a paid instalment",
    );
    assert!(
        m.contains("instalment 2")
            && m.contains("2026-10-01")
            && m.contains("¥1,500.00")
            && m.contains("¥1,000.00")
            && !m.contains("instalment 1"),
        "{m}"
    );
    // A new instalment due earlier would take the money instalment 2 got.
    let m = validation_message(
        w.crm
            .set_payment_plan(
                &w.zhangsan,
                c.id,
                vec![
                    plan(d(8, 15), 100_000),
                    plan(d(9, 1), 300_000),
                    plan(d(10, 1), 300_000),
                    plan(d(11, 1), 300_000),
                ],
            )
            .await,
        "a plan moving received money to a new instalment",
    );
    assert!(
        m.contains("instalment 2") && m.contains("2026-10-01") && m.contains("does not move"),
        "{m}"
    );
    assert_eq!(
        shape(w.crm.collection(&w.zhangsan, c.id).await.expect("col")),
        before,
        "nothing refused is written"
    );
    assert!(event_types(&w).await.is_empty());
    // The unpaid rest is planned anew, and a paid instalment may grow (by
    // an administrator: it puts off money overdue today).
    let col = w
        .crm
        .set_payment_plan(
            &w.admin,
            c.id,
            vec![
                plan(d(9, 1), 300_000),
                plan(d(10, 1), 350_000),
                plan(d(12, 1), 200_000),
                plan(d(12, 31), 150_000),
            ],
        )
        .await
        .expect("the unpaid rest planned anew");
    assert_eq!(
        shape(col),
        vec![
            (d(9, 1), 300_000, 300_000),
            (d(10, 1), 350_000, 150_000),
            (d(12, 1), 200_000, 0),
            (d(12, 31), 150_000, 0)
        ]
    );
    // The payment voided, nothing is received against any instalment.
    w.crm
        .void_payment(&w.zhangsan, paid.id, "录错合同")
        .await
        .expect("void");
    let col = w
        .crm
        .set_payment_plan(&w.admin, c.id, vec![plan(d(12, 31), 1_000_000)])
        .await
        .expect("nothing paid, the plan is free (of what was paid)");
    assert_eq!(shape(col), vec![(d(12, 31), 1_000_000, 0)]);
}

/// A product discontinued (停售) is kept for old documents: a quote whose
/// lines hold it is revised keeping those lines (on as many lines as
/// before) and converted into a contract with them, and a draft contract's
/// lines are changed keeping it; a new line adding a discontinued product
/// — to a new quote, a revision or a contract — is refused, naming the
/// line and the product.
pub async fn discontinued_products_stay_on_the_lines_that_hold_them(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        ContractPatch, ContractStatus, LineInput, NewContract, NewQuote, ProductInput,
        ProductStatus, QuoteStatus,
    };
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let product = |code: &str, name: &str| ProductInput {
        code: Some(code.into()),
        name: Some(name.into()),
        list_price: Some(Money::cny(100_000)),
        ..ProductInput::default()
    };
    let old = w
        .crm
        .create_product(&w.admin, product("SV-OLD", "旧款服务器"))
        .await
        .expect("product");
    let other = w
        .crm
        .create_product(&w.admin, product("SV-GONE", "另一款旧服务器"))
        .await
        .expect("product");
    let new = w
        .crm
        .create_product(&w.admin, product("SV-NEW", "新款服务器"))
        .await
        .expect("product");
    let line = |p: Uuid, quantity: i64| LineInput {
        product_id: Some(p),
        name: String::new(),
        unit: None,
        quantity,
        unit_price: None,
        discount_bp: 0,
        tax_rate: None,
    };
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "服务器报价".into(),
                customer_id: customer.id.0,
                lines: vec![line(old.id, 2), line(new.id, 1)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let contract = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "服务器合同".into(),
                customer_id: customer.id.0,
                lines: vec![line(old.id, 1)],
                ..NewContract::default()
            },
        )
        .await
        .expect("draft contract");
    let opp_line = |p: &crate::sales::Product, quantity: i64| crate::sales::OppLine {
        product_id: Some(p.id),
        name: p.name.clone(),
        quantity,
        unit_price: p.list_price,
    };
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            crate::sales::NewOpportunity {
                name: "服务器商机".into(),
                customer_id: customer.id.0,
                products: vec![opp_line(&old, 1)],
                ..crate::sales::NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    for p in [&old, &other] {
        w.crm
            .update_product(
                &w.admin,
                p.id,
                p.version,
                ProductInput {
                    status: Some(ProductStatus::Discontinued),
                    ..ProductInput::default()
                },
            )
            .await
            .expect("discontinued");
    }
    // A new quote does not offer it.
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: "新报价".into(),
                    customer_id: customer.id.0,
                    lines: vec![line(old.id, 1)],
                    ..NewQuote::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("lines[1]") && m.contains("SV-OLD") && m.contains("discontinued"),
        "{m}"
    );
    // Nor does a new opportunity; one holding it keeps it, and adds no
    // other discontinued product.
    let m = invalid_message(
        w.crm
            .create_opportunity(
                &w.zhangsan,
                crate::sales::NewOpportunity {
                    name: "新商机".into(),
                    customer_id: customer.id.0,
                    products: vec![opp_line(&old, 1)],
                    ..crate::sales::NewOpportunity::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("products[1]") && m.contains("SV-OLD") && m.contains("discontinued"),
        "{m}"
    );
    let opp = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            opp.id,
            opp.version,
            crate::sales::OpportunityPatch {
                products: Some(vec![opp_line(&new, 1), opp_line(&old, 5)]),
                ..crate::sales::OpportunityPatch::default()
            },
        )
        .await
        .expect("the line keeps its discontinued product");
    let m = invalid_message(
        w.crm
            .update_opportunity(
                &w.zhangsan,
                opp.id,
                opp.version,
                crate::sales::OpportunityPatch {
                    products: Some(vec![opp_line(&old, 5), opp_line(&other, 1)]),
                    ..crate::sales::OpportunityPatch::default()
                },
            )
            .await,
    );
    assert!(m.contains("products[2]") && m.contains("SV-GONE"), "{m}");
    // A revision keeps the line holding it (its quantity changed too).
    let v2 = w
        .crm
        .revise_quote(
            &w.zhangsan,
            q.id,
            vec![line(new.id, 2), line(old.id, 3)],
            None,
        )
        .await
        .expect("a revision keeping the discontinued product");
    assert_eq!(v2.quote_version, 2);
    let held = v2
        .lines
        .iter()
        .find(|l| l.product_id == Some(old.id))
        .expect("the line keeps its product");
    assert_eq!((held.name.as_str(), held.quantity), ("旧款服务器", 3));
    // A second line of it, or a line of another discontinued product, is new.
    let m = invalid_message(
        w.crm
            .revise_quote(
                &w.zhangsan,
                v2.id,
                vec![line(old.id, 1), line(new.id, 1), line(old.id, 1)],
                None,
            )
            .await,
    );
    assert!(
        m.contains("lines[3]") && m.contains("SV-OLD") && !m.contains("lines[1]"),
        "{m}"
    );
    let m = invalid_message(
        w.crm
            .revise_quote(
                &w.zhangsan,
                v2.id,
                vec![line(old.id, 1), line(other.id, 1)],
                None,
            )
            .await,
    );
    assert!(m.contains("lines[2]") && m.contains("SV-GONE"), "{m}");
    let current = w.crm.quote(&w.zhangsan, v2.id).await.expect("quote");
    assert_eq!(
        (current.quote_version, current.status),
        (2, QuoteStatus::Draft),
        "nothing refused is written"
    );
    // Approved (no flow) and converted, the contract holds the line.
    let (approved, _) = w
        .crm
        .submit_quote(&w.zhangsan, v2.id, None)
        .await
        .expect("submit");
    assert_eq!(approved.status, QuoteStatus::Approved);
    let made = w
        .crm
        .quote_to_contract(&w.zhangsan, v2.id, NewContract::default())
        .await
        .expect("converted with the discontinued product");
    assert_eq!(made.status, ContractStatus::Draft);
    assert!(made.lines.iter().any(|l| l.product_id == Some(old.id)));
    assert_eq!(made.amount, approved.totals.amount);
    // A draft contract's lines change keeping it, and take no new one.
    let changed = w
        .crm
        .update_contract(
            &w.zhangsan,
            contract.id,
            contract.version,
            ContractPatch {
                lines: Some(vec![line(old.id, 4), line(new.id, 1)]),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("lines kept");
    assert_eq!(changed.amount, Money::cny(500_000));
    let m = invalid_message(
        w.crm
            .update_contract(
                &w.zhangsan,
                contract.id,
                changed.version,
                ContractPatch {
                    lines: Some(vec![line(old.id, 4), line(other.id, 1)]),
                    ..ContractPatch::default()
                },
            )
            .await,
    );
    assert!(m.contains("lines[2]") && m.contains("SV-GONE"), "{m}");
}

/// Invoice numbers recorded before they were kept normalised are stored
/// as typed (lower case, full-width digits, a space inside); a number typed
/// now meets them all the same: the uniqueness of issued numbers and the
/// rule that a voided invoice's number is never issued again compare both
/// sides normalised, and the refusal shows how the old number was stored.
/// A number that only contains an old one is another number.
pub async fn invoice_numbers_stored_as_typed_still_count(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::InvoiceType;
    use crate::schema::Table;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "开票合同", 1_000_000).await;
    // Rows as an older build wrote them: the number as typed, trimmed.
    let now = w.crm.now();
    let mut cs = ChangeSet::default();
    for (number, status) in [
        ("r4-x", "issued"),
        ("０４４０ ０１２３", "voided"),
        ("ab１２", "issued"),
    ] {
        cs.ops.push(Op::Insert {
            table: Table::Invoices,
            values: vec![
                ("id", Value::Id(w.crm.new_id())),
                ("company_id", Value::Id(w.zhangsan.company_id.0)),
                ("version", Value::Int(1)),
                ("created_at", Value::Timestamp(now)),
                ("updated_at", Value::Timestamp(now)),
                ("contract_id", Value::Id(c.id)),
                ("customer_id", Value::Id(customer.id.0)),
                ("kind", Value::Text("issued".into())),
                ("invoice_type", Value::Text("vat_special".into())),
                ("amount", Value::Int(100)),
                ("number", Value::Text(number.into())),
                ("invoice_date", Value::Date(w.crm.today())),
                ("status", Value::Text(status.into())),
            ],
        });
    }
    w.crm.store().apply(&cs).await.expect("legacy rows");
    let issue = |number: &str| {
        w.crm.add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(10_000),
            Some(number.to_string()),
            None,
        )
    };
    let duplicate = |got: crate::error::Result<crate::sales::Invoice>, what: &str| match got {
        Err(Error::Duplicate { message, .. }) => message,
        other => panic!("{what}: expected a duplicate, got {other:?}"),
    };
    let m = duplicate(issue("R4-X").await, "an issued number stored in lower case");
    assert!(
        m.contains("R4-X") && m.contains("already recorded") && m.contains("'r4-x'"),
        "{m}"
    );
    let m = duplicate(issue("ｒ４－ｘ").await, "typed full-width");
    assert!(m.contains("R4-X"), "{m}");
    let m = duplicate(issue("AB12").await, "stored with a full-width digit");
    assert!(m.contains("'ab１２'"), "{m}");
    let m = duplicate(
        issue("04400123").await,
        "a voided number stored full-width with a space",
    );
    assert!(
        m.contains("04400123") && m.contains("voided") && m.contains("'０４４０ ０１２３'"),
        "{m}"
    );
    // Numbers that merely contain an old one are other numbers.
    for number in ["4-X", "R4-X9", "0123"] {
        let i = issue(number)
            .await
            .unwrap_or_else(|e| panic!("{number}: {e:?}"));
        assert_eq!(i.number.as_deref(), Some(number));
    }
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").invoiced,
        Money::cny(30_000)
    );
}

/// A free-text line named as a catalogue product or its code (letter case,
/// full-width letters and spacing aside) is measured against that
/// product's list price: typing the product's name instead of its code at
/// half price is a
/// 50 % discount, which the discount approval weighs; a free-text line
/// named as no product keeps its own discount.
pub async fn free_lines_named_as_products_count_their_discount(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewQuote, ProductInput, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    for (code, name, price) in [("P1", "服务器", 1_000_000), ("SX", "Server  X", 200_000)] {
        w.crm
            .create_product(
                &w.admin,
                ProductInput {
                    code: Some(code.into()),
                    name: Some(name.into()),
                    list_price: Some(Money::cny(price)),
                    ..ProductInput::default()
                },
            )
            .await
            .expect("product");
    }
    w.crm
        .define_approval_flow(
            &w.admin,
            "quote",
            "报价折扣审批",
            FlowDef {
                steps: vec![StepDef {
                    name: "经理审批".into(),
                    conditions: vec![Condition::DiscountAbove { bp: 1000 }],
                    approvers: ApproverRule::Superior { level: 1 },
                    mode: SignMode::Any,
                    fallback: Fallback::Admins,
                }],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "同名产品有限公司", json!({})).await;
    let free = |name: &str, price: i64, discount_bp: i64| LineInput {
        product_id: None,
        name: name.into(),
        unit: None,
        quantity: 2,
        unit_price: Some(Money::cny(price)),
        discount_bp,
        tax_rate: None,
    };
    // (line, effective discount, list price it is measured against, status)
    let cases = [
        (
            free("服务器", 500_000, 0),
            5000,
            Some(1_000_000),
            QuoteStatus::PendingApproval,
        ),
        (
            free(" ｓｅｒｖｅｒ x ", 100_000, 0),
            5000,
            Some(200_000),
            QuoteStatus::PendingApproval,
        ),
        (
            free("SERVER X", 190_000, 0),
            500,
            Some(200_000),
            QuoteStatus::Approved,
        ),
        (
            free("服务器", 1_000_000, 0),
            0,
            Some(1_000_000),
            QuoteStatus::Approved,
        ),
        (free("服务器安装", 500, 0), 0, None, QuoteStatus::Approved),
        (free("P11", 500, 0), 0, None, QuoteStatus::Approved),
        // Named as a product's code, in full-width letters or not.
        (
            free("Ｐ１", 500_000, 0),
            5000,
            Some(1_000_000),
            QuoteStatus::PendingApproval,
        ),
        (
            free("sx", 100_000, 0),
            5000,
            Some(200_000),
            QuoteStatus::PendingApproval,
        ),
    ];
    for (i, (l, effective, list, status)) in cases.into_iter().enumerate() {
        let q = w
            .crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: format!("同名报价{i}"),
                    customer_id: customer.id.0,
                    lines: vec![l],
                    ..NewQuote::default()
                },
            )
            .await
            .expect("quote");
        assert_eq!(q.totals.max_discount_bp, effective, "case {i}");
        assert_eq!(q.lines[0].list_price, list.map(Money::cny), "case {i}");
        assert_eq!(
            q.lines[0].product_id, None,
            "case {i}: still a free-text line"
        );
        let (q, _) = w
            .crm
            .submit_quote(&w.zhangsan, q.id, None)
            .await
            .expect("submit");
        assert_eq!(q.status, status, "case {i}");
    }
    // A code typed in full-width letters, in either case, finds it.
    for typed in ["Ｐ１", "ｐ１", " p1 "] {
        let p = w.crm.product_by_code(&w.admin, typed).await.expect(typed);
        assert_eq!(p.code, "P1", "{typed}");
    }
    // A product in the recycle bin is no reference.
    let p1 = w.crm.product_by_code(&w.admin, "P1").await.expect("P1");
    w.crm
        .set_product_deleted(&w.admin, p1.id, true)
        .await
        .expect("delete P1");
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "删除后".into(),
                customer_id: customer.id.0,
                lines: vec![free("服务器", 500_000, 0)],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    assert_eq!(q.totals.max_discount_bp, 0);
}

/// A contract does not end before it is signed: an end date before the
/// signing date is refused on creation and on an edit (of a draft or of an
/// executing contract), naming both dates; a contract stored so still takes
/// edits that leave its dates alone.
pub async fn contract_end_date_is_not_before_its_signing_date(store: Arc<dyn Store>) {
    use crate::sales::{ContractPatch, NewContract};
    use chrono::NaiveDate;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "日期测试有限公司", json!({})).await;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let refused = |e: Error, end: NaiveDate, signed: NaiveDate| {
        let m = e.to_string();
        assert!(
            matches!(e, Error::Validation(_))
                && m.contains("end_on")
                && m.contains(&end.to_string())
                && m.contains(&signed.to_string())
                && m.contains("signing date"),
            "{m}"
        );
    };
    let new = |signed: NaiveDate, end: NaiveDate| NewContract {
        title: "日期合同".into(),
        customer_id: customer.id.0,
        amount: Some(crate::money::Money::cny(100_000)),
        signed_on: Some(signed),
        end_on: Some(end),
        ..NewContract::default()
    };
    let e = w
        .crm
        .create_contract(&w.zhangsan, new(d(11, 7), d(1, 1)))
        .await
        .expect_err("ends before it is signed");
    refused(e, d(1, 1), d(11, 7));
    // Ending on the signing day is fine.
    let c = w
        .crm
        .create_contract(&w.zhangsan, new(d(11, 7), d(11, 7)))
        .await
        .expect("ends on the signing day");
    // A draft: moving the signing date after the end date is refused too.
    let e = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                signed_on: Some(d(11, 8)),
                ..ContractPatch::default()
            },
        )
        .await
        .expect_err("signed after its end");
    refused(e, d(11, 7), d(11, 8));
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(c.status, crate::sales::ContractStatus::Executing);
    let e = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                end_on: Some(d(1, 1)),
                ..ContractPatch::default()
            },
        )
        .await
        .expect_err("an executing contract ending before it was signed");
    refused(e, d(1, 1), d(11, 7));
    // (Extended by an administrator: what its end date made due is
    // overdue today, and put off.)
    let c = w
        .crm
        .update_contract(
            &w.admin,
            c.id,
            c.version,
            ContractPatch {
                end_on: Some(d(12, 31)),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("extended");
    assert_eq!(c.end_on, Some(d(12, 31)));
    // Stored with its dates out of order, it still takes a note.
    force_row(
        &w,
        crate::schema::Table::Contracts,
        c.id,
        vec![("end_on", crate::value::Value::Date(d(1, 1)))],
    )
    .await;
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    let c = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                notes: Some("备注".into()),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("a note");
    assert_eq!(c.notes.as_deref(), Some("备注"));
    // A signing date lies on or before today (2026-11-27): one ahead would
    // keep payments and invoices out until then.
    let ahead = |e: Error| {
        let m = e.to_string();
        assert!(
            matches!(e, Error::Validation(_))
                && m.contains("signed_on")
                && m.contains("2026-11-28")
                && m.contains("in the future"),
            "{m}"
        );
    };
    ahead(
        w.crm
            .create_contract(&w.zhangsan, new(d(11, 28), d(12, 31)))
            .await
            .expect_err("signed tomorrow"),
    );
    let draft = w
        .crm
        .create_contract(&w.zhangsan, new(d(11, 27), d(12, 31)))
        .await
        .expect("signed today");
    ahead(
        w.crm
            .update_contract(
                &w.zhangsan,
                draft.id,
                draft.version,
                ContractPatch {
                    signed_on: Some(d(11, 28)),
                    ..ContractPatch::default()
                },
            )
            .await
            .expect_err("moved to tomorrow"),
    );
}

/// A payment whose approval is withdrawn is withdrawn (已撤回), not
/// rejected, and its receipt number may be entered again; a voided payment
/// shows why it was voided in the contract's collection.
pub async fn payment_states_show_withdrawal_and_void_reason(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::PaymentInput;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "回款状态有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "回款合同", 1_000_000).await;
    let pay = |fen: i64, receipt: &str| PaymentInput {
        amount: Money::cny(fen),
        received_on: w.crm.today(),
        method: None,
        receipt_no: Some(receipt.into()),
        notes: None,
    };
    // Voided with a reason: the collection shows it.
    let (p, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(100_000, "R-1"))
        .await
        .expect("pay");
    assert_eq!(p.void_reason, None);
    let v = w
        .crm
        .void_payment(&w.zhangsan, p.id, "金额录错")
        .await
        .expect("void");
    assert_eq!(v.void_reason.as_deref(), Some("金额录错"));
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    let shown = col.payments.iter().find(|x| x.id == p.id).expect("listed");
    assert_eq!(shown.status, crate::sales::payment::VOIDED);
    assert_eq!(shown.void_reason.as_deref(), Some("金额录错"));
    let json = serde_json::to_value(shown).expect("json");
    assert_eq!(json["void_reason"], "金额录错");
    // With a payment flow, a withdrawn approval leaves the payment withdrawn.
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let (p, a) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(200_000, "R-2"))
        .await
        .expect("pending payment");
    assert_eq!(p.status, "pending_approval");
    let a = w
        .crm
        .withdraw(&w.zhangsan, a.expect("approval").id, None)
        .await
        .expect("withdraw");
    assert_eq!(a.status, Status::Withdrawn);
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    let shown = col.payments.iter().find(|x| x.id == p.id).expect("listed");
    assert_eq!(shown.status, "withdrawn");
    assert_eq!(shown.status_label(), "withdrawn (已撤回)");
    assert_eq!(shown.void_reason, None);
    assert_eq!(col.received, Money::cny(0));
    // Its receipt is entered again.
    let (again, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(200_000, "R-2"))
        .await
        .expect("the receipt of a withdrawn payment again");
    assert_eq!(again.status, "pending_approval");
    // A rejected one is still rejected.
    let pending = w.crm.collection(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(pending.pending, Money::cny(200_000));
}

/// Converting a quote whose customer the quote's owner no longer sees is
/// refused saying so, without the customer's id.
pub async fn quote_of_a_customer_out_of_reach_is_not_converted(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{LineInput, NewContract, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w
        .customer(&w.zhangsan, "转走的客户有限公司", json!({}))
        .await;
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "转走前的报价".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "实施服务".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(100_000)),
                    discount_bp: 0,
                    tax_rate: None,
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let (q, _) = w
        .crm
        .submit_quote(&w.zhangsan, q.id, None)
        .await
        .expect("submit");
    assert_eq!(q.status, QuoteStatus::Approved);
    w.crm
        .transfer_records(&w.admin, Entity::Customer, &[customer.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    let e = w
        .crm
        .quote_to_contract(&w.zhangsan, q.id, NewContract::default())
        .await
        .expect_err("a customer out of reach");
    let m = e.to_string();
    assert!(
        matches!(e, Error::Forbidden(_))
            && m.contains(&q.code)
            && m.contains("no longer sees")
            && !m.contains(&customer.id.0.to_string()),
        "{m}"
    );
    let q = w.crm.quote(&w.zhangsan, q.id).await.expect("quote");
    assert_eq!(q.status, QuoteStatus::Approved, "nothing changed");
}

/// An opportunity's expected close date is cleared, except where its
/// stage requires it.
pub async fn opportunity_close_date_is_cleared_unless_its_stage_requires_it(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewOpportunity, OpportunityPatch, StageCommand};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "成交日期有限公司", json!({})).await;
    let date = chrono::NaiveDate::from_ymd_opt(2027, 3, 1);
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "清空日期".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                expected_close: date,
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let clear = OpportunityPatch {
        clear_expected_close: true,
        ..OpportunityPatch::default()
    };
    let e = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            o.id,
            o.version,
            OpportunityPatch {
                expected_close: date,
                ..clear.clone()
            },
        )
        .await
        .expect_err("both");
    assert!(e.to_string().contains("not both"), "{e}");
    let o = w
        .crm
        .update_opportunity(&w.zhangsan, o.id, o.version, clear.clone())
        .await
        .expect("cleared");
    assert_eq!(o.expected_close, None);
    let o = w
        .crm
        .update_opportunity(
            &w.zhangsan,
            o.id,
            o.version,
            OpportunityPatch {
                expected_close: date,
                ..OpportunityPatch::default()
            },
        )
        .await
        .expect("set again");
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("assessment".into()),
        )
        .await
        .expect("assessment");
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::MoveTo("needs".into()),
        )
        .await
        .expect("needs");
    let e = w
        .crm
        .update_opportunity(&w.zhangsan, o.id, o.version, clear)
        .await
        .expect_err("the stage requires it");
    assert!(
        e.to_string().contains("expected_close") && e.to_string().contains("需求分析"),
        "{e}"
    );
    let o = w.crm.opportunity(&w.zhangsan, o.id).await.expect("o");
    assert_eq!(o.expected_close, date);
}

/// A customer shared to read is read, not worked on: its sharee adds no
/// opportunity, quote or contract to it (each would change the owner's
/// customer: its open opportunities, its deal); a write share lets them.
pub async fn a_read_share_adds_no_sales_documents(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::records::ShareAccess;
    use crate::sales::{LineInput, NewContract, NewOpportunity, NewQuote};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "只读共享有限公司", json!({})).await;
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
    let opportunity = || NewOpportunity {
        name: "共享商机".into(),
        customer_id: c.id.0,
        amount: Some(Money::cny(1_000)),
        ..NewOpportunity::default()
    };
    let quote = || NewQuote {
        title: "共享报价".into(),
        customer_id: c.id.0,
        lines: vec![LineInput {
            product_id: None,
            name: "实施服务".into(),
            unit: Some("项".into()),
            quantity: 1,
            unit_price: Some(Money::cny(1_000)),
            discount_bp: 0,
            tax_rate: Some(600),
        }],
        ..NewQuote::default()
    };
    let contract = || NewContract {
        title: "共享合同".into(),
        customer_id: c.id.0,
        amount: Some(Money::cny(1_000)),
        ..NewContract::default()
    };
    let refusals = [
        w.crm
            .create_opportunity(&w.wangwu, opportunity())
            .await
            .map(drop),
        w.crm.create_quote(&w.wangwu, quote()).await.map(drop),
        w.crm.create_contract(&w.wangwu, contract()).await.map(drop),
    ];
    for r in refusals {
        match r {
            Err(Error::Forbidden(m)) => {
                assert!(m.contains("read only") && m.contains("KH-"), "{m}")
            }
            other => panic!("a document through a read share: {other:?}"),
        }
    }
    let customer = w
        .crm
        .get_record(&w.zhangsan, Entity::Customer, c.id)
        .await
        .expect("customer");
    assert_eq!(customer.fields.get("open_opportunities"), Some(&json!(0)));
    // A follow-up is still logged through a read share.
    w.crm
        .create_record(
            &w.wangwu,
            Entity::FollowUp,
            crate::testing::service_suite::fields(
                json!({"customer_id": c.id.to_string(), "channel": "call", "content": "回访"}),
            ),
        )
        .await
        .expect("a follow-up through a read share");
    // Through a write share the sharee works on it.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.wangwu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    w.crm
        .create_opportunity(&w.wangwu, opportunity())
        .await
        .expect("an opportunity through a write share");
    w.crm
        .create_quote(&w.wangwu, quote())
        .await
        .expect("a quote through a write share");
    w.crm
        .create_contract(&w.wangwu, contract())
        .await
        .expect("a contract through a write share");
}

/// A customer transferred with its documents takes along the opportunities,
/// quotes (every version) and contracts its former owner held on it: the
/// new owner sees them in the customer's 360° view and collects the
/// contract; a colleague's document on it stays the colleague's.
pub async fn a_customer_transferred_with_its_documents(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::records::ShareAccess;
    use crate::sales::{LineInput, NewContract, NewOpportunity, NewQuote};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let c = w.customer(&w.zhangsan, "整体转移有限公司", json!({})).await;
    let opp = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "转移商机".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(50_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let quote = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "转移报价".into(),
                customer_id: c.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "实施服务".into(),
                    unit: Some("项".into()),
                    quantity: 1,
                    unit_price: Some(Money::cny(50_000)),
                    discount_bp: 0,
                    tax_rate: Some(600),
                }],
                ..NewQuote::default()
            },
        )
        .await
        .expect("quote");
    let contract = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "转移合同".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(50_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    // 赵六 (with a write share) has an opportunity of his own on it.
    w.crm
        .share_record(
            &w.zhangsan,
            Entity::Customer,
            c.id,
            w.zhaoliu.user_id,
            ShareAccess::Write,
            None,
        )
        .await
        .expect("share");
    let his = w
        .crm
        .create_opportunity(
            &w.zhaoliu,
            NewOpportunity {
                name: "同事商机".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(1_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("a colleague's opportunity");
    // One of 张三's opportunities is in the recycle bin: it stays there.
    let binned = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "已删商机".into(),
                customer_id: c.id.0,
                amount: Some(Money::cny(10_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Opportunity, &[RecordId(binned.id)])
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    let (customers, documents) = w
        .crm
        .transfer_customers_with_documents(&w.admin, &[c.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert_eq!(customers.done, vec![c.id], "{customers:?}");
    assert!(
        documents.iter().all(|d| d.refused.is_none()),
        "{documents:?}"
    );
    assert!(
        documents
            .iter()
            .any(|d| d.code.as_deref() == Some(contract.code.as_str()))
    );
    let mut moved: Vec<RecordId> = documents.iter().map(|d| d.id).collect();
    moved.sort();
    let mut expected = vec![RecordId(opp.id), RecordId(quote.id), RecordId(contract.id)];
    expected.sort();
    assert_eq!(moved, expected);
    let me = Some(w.wangwu.user_id.0);
    assert_eq!(
        w.crm
            .opportunity(&w.wangwu, opp.id)
            .await
            .expect("opp")
            .owner_id,
        me
    );
    assert_eq!(
        w.crm
            .quote(&w.wangwu, quote.id)
            .await
            .expect("quote")
            .owner_id,
        me
    );
    assert_eq!(
        w.crm
            .contract(&w.wangwu, contract.id)
            .await
            .expect("contract")
            .owner_id,
        me
    );
    assert_eq!(
        w.crm
            .opportunity(&w.admin, his.id)
            .await
            .expect("his")
            .owner_id,
        Some(w.zhaoliu.user_id.0)
    );
    let view = w.crm.customer_view(&w.wangwu, c.id).await.expect("view");
    assert_eq!(view.sections["contracts"].total, 1);
    assert_eq!(view.sections["quotes"].total, 1);
    // The former owner no longer reads them, nor brings back his binned
    // opportunity to work on the customer he lost.
    assert!(w.crm.contract(&w.zhangsan, contract.id).await.is_err());
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Opportunity, &[RecordId(binned.id)])
        .await;
    assert!(r.done.is_empty(), "{r:?}");
    assert!(r.refused[0].1.contains("no longer"), "{r:?}");
}

/// A bank receipt number (回款单号) is one receipt whatever its letter
/// case, width, spaces or invisible characters: `sj-001`, `ＳＪ-001` are
/// refused after `SJ-001` (kept in that form), and so is a number meeting
/// a receipt stored as typed before; another number is not.
pub async fn receipt_numbers_are_one_whatever_their_spelling(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::PaymentInput;
    use crate::schema::Table;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "回款合同", 1_000_000).await;
    let pay = |receipt: &str| PaymentInput {
        amount: Money::cny(1_000),
        received_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date"),
        method: None,
        receipt_no: Some(receipt.into()),
        notes: None,
    };
    let (first, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay(" sj-001 "))
        .await
        .expect("first receipt");
    assert_eq!(first.receipt_no.as_deref(), Some("SJ-001"));
    for again in [
        "SJ-001",
        "sj-001",
        "ＳＪ-001",
        "ｓｊ－００１",
        "SJ -001",
        "SJ\u{200B}-001",
    ] {
        match w.crm.record_payment(&w.zhangsan, c.id, pay(again)).await {
            Err(Error::Duplicate { message, .. }) => {
                assert!(
                    message.contains("receipt number SJ-001"),
                    "{again}: {message}"
                )
            }
            other => panic!("{again}: expected a duplicate, got {other:?}"),
        }
    }
    let (other, _) = w
        .crm
        .record_payment(&w.zhangsan, c.id, pay("SJ-0012"))
        .await
        .expect("another receipt");
    // A receipt stored as typed before numbers were kept by their key.
    let row = w
        .crm
        .store()
        .get(Table::Payments, other.id)
        .await
        .expect("get")
        .expect("row");
    w.crm
        .store()
        .apply(&ChangeSet {
            ops: vec![Op::Update {
                table: Table::Payments,
                id: other.id,
                expected_version: row.version(),
                values: vec![("receipt_no", Value::Text("ｓｊ-9 9".into()))],
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("legacy receipt");
    match w.crm.record_payment(&w.zhangsan, c.id, pay("SJ-99")).await {
        Err(Error::Duplicate { message, .. }) => {
            assert!(
                message.contains("receipt number SJ-99") && message.contains("'ｓｊ-9 9'"),
                "{message}"
            )
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

/// A product's list price or cost above what any sales document may hold
/// (10万亿元) is refused, naming the field and the limit, on create, on
/// update and in an import; at the limit it is taken.
pub async fn product_prices_stay_under_the_sales_ceiling(store: Arc<dyn Store>) {
    use crate::import::{Cell, ImportOptions, SheetRow};
    use crate::money::Money;
    use crate::sales::MAX_SALES_AMOUNT_MINOR;
    use crate::sales::product::ProductInput;
    let w = World::new(store).await;
    let product = |price: &str, cost: Option<&str>| ProductInput {
        name: Some("天价产品".into()),
        list_price: Some(Money::parse(price).expect("money")),
        cost: cost.map(|c| Money::parse(c).expect("money")),
        ..ProductInput::default()
    };
    for price in [
        "92233720368547758.07",
        "1000000000000000",
        "10000000000000.01",
    ] {
        let m = invalid_message(w.crm.create_product(&w.admin, product(price, None)).await);
        assert!(
            m.contains("list_price (标准价)")
                && m.contains("is more than ¥10,000,000,000,000.00 (10万亿元)"),
            "{price}: {m}"
        );
    }
    let m = invalid_message(
        w.crm
            .create_product(&w.admin, product("1", Some("1000000000000000")))
            .await,
    );
    assert!(m.contains("cost (成本)") && m.contains("10万亿元"), "{m}");
    let p = w
        .crm
        .create_product(&w.admin, product("10000000000000", Some("10000000000000")))
        .await
        .expect("at the limit");
    assert_eq!(p.list_price, Money::cny(MAX_SALES_AMOUNT_MINOR));
    let m = invalid_message(
        w.crm
            .update_product(
                &w.admin,
                p.id,
                p.version,
                ProductInput {
                    list_price: Some(Money::parse("1000000000000000").expect("money")),
                    ..ProductInput::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("list_price (标准价)") && m.contains("10万亿元"),
        "{m}"
    );
    // An import the same.
    let mut s = w
        .crm
        .begin_import(
            &w.admin,
            ImportOptions::new(crate::entity::Entity::Product),
            &["产品名称".to_string(), "标准价".to_string()],
        )
        .await
        .expect("begin import");
    s.push(&[
        SheetRow {
            number: 2,
            cells: vec![
                Cell::Text("导入天价".into()),
                Cell::Text("1000000000000000".into()),
            ],
        },
        SheetRow {
            number: 3,
            cells: vec![Cell::Text("导入平价".into()), Cell::Text("99".into())],
        },
    ])
    .await
    .expect("push");
    let r = s.finish().await.expect("finish");
    assert_eq!((r.created, r.rejected), (1, 1), "{:#?}", r.issues);
    assert!(
        r.issues
            .iter()
            .any(|i| i.row == 2 && i.message_en.contains("10万亿元")),
        "{:#?}",
        r.issues
    );
}

/// Refusals name the field at fault and say so once: a date before the
/// year 1000 is out of range (naming the range); an opportunity's amount
/// over the ceiling is named once; a quote line taking a product's list
/// price over the ceiling (stored before prices were capped) blames that
/// price, not the quantity, and a line whose quantity makes it too much
/// blames the quantity.
pub async fn refusals_name_the_field_and_say_it_once(store: Arc<dyn Store>) {
    use crate::entity::Entity as E;
    use crate::money::Money;
    use crate::sales::product::ProductInput;
    use crate::sales::{LineInput, NewOpportunity, NewQuote};
    use crate::schema::Table;
    use crate::store::{ChangeSet, Op};
    use crate::value::Value;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let e = w
        .crm
        .update_record(
            &w.zhangsan,
            E::Customer,
            customer.id,
            customer.version,
            crate::testing::service_suite::fields(json!({"next_follow_up": "0001-01-01"})),
        )
        .await
        .expect_err("year 1");
    let m = e.to_string();
    assert!(
        m.contains("the year 1 is out of range (years 1000 to 9999 are accepted)"),
        "{m}"
    );
    let e = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "超大单".into(),
                customer_id: customer.id.0,
                amount: Some(Money::parse("100000000000000").expect("money")),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect_err("over the ceiling");
    let m = e.to_string();
    assert_eq!(m.matches("invalid input").count(), 1, "{m}");
    assert_eq!(m.matches("amount").count(), 2, "{m}");
    assert!(
        m.contains("amount (预计金额): ¥100,000,000,000,000.00 is more than"),
        "{m}"
    );
    // A product priced before prices were capped.
    let p = w
        .crm
        .create_product(
            &w.admin,
            ProductInput {
                code: Some("Z-21801".into()),
                name: Some("旧天价".into()),
                list_price: Some(Money::cny(100)),
                ..ProductInput::default()
            },
        )
        .await
        .expect("product");
    let row = w
        .crm
        .store()
        .get(Table::Products, p.id)
        .await
        .expect("get")
        .expect("row");
    w.crm
        .store()
        .apply(&ChangeSet {
            ops: vec![Op::Update {
                table: Table::Products,
                id: p.id,
                expected_version: row.version(),
                values: vec![("list_price", Value::Int(i64::MAX))],
            }],
            ..ChangeSet::default()
        })
        .await
        .expect("old price");
    let quote = |line: LineInput| NewQuote {
        title: "报价".into(),
        customer_id: customer.id.0,
        lines: vec![line],
        ..NewQuote::default()
    };
    let line = LineInput {
        product_id: Some(p.id),
        name: String::new(),
        unit: None,
        quantity: 1,
        unit_price: None,
        discount_bp: 100,
        tax_rate: None,
    };
    let m = invalid_message(w.crm.create_quote(&w.zhangsan, quote(line.clone())).await);
    assert!(
        m.contains("lines[1].unit_price: the product's list price ¥92,233,720,368,547,758.07")
            && !m.contains("quantity"),
        "{m}"
    );
    // Its own price, within the ceiling, is taken.
    w.crm
        .create_quote(
            &w.zhangsan,
            quote(LineInput {
                unit_price: Some(Money::cny(100)),
                ..line.clone()
            }),
        )
        .await
        .expect("a unit price of its own");
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                quote(LineInput {
                    quantity: 2,
                    unit_price: Some(Money::parse("6000000000000").expect("money")),
                    ..line
                }),
            )
            .await,
    );
    assert!(
        m.contains(
            "lines[1].quantity: 2 × ¥6,000,000,000,000.00: ¥12,000,000,000,000.00 is more than"
        ),
        "{m}"
    );
}

/// A customer whose contract awaits approval stays with its owner when a
/// recycling rule comes due, as a release refuses it: approved, the
/// contract would be owed money by a customer nobody holds. The sweep lists
/// it as refused, saying why; it is not about to be recycled, and its
/// explanation says so.
pub async fn a_customer_awaiting_approval_is_not_recycled(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractStatus, NewContract};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "合同审批",
            contract_flow(&w, Restart::FromFirst),
        )
        .await
        .expect("flow");
    let customer = w.customer(&w.zhangsan, "待审客户有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "待审合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(10_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    assert_eq!(c.status, ContractStatus::PendingApproval);
    let pool = w
        .crm
        .create_pool(
            &w.admin,
            crate::pool::PoolSpec {
                name: "待审公海".into(),
                admins: vec![w.lisi.user_id],
                member_users: Vec::new(),
                member_departments: vec![w.group1],
                limits: crate::pool::PoolLimits::default(),
            },
        )
        .await
        .expect("pool");
    w.crm
        .add_recycle_rule(
            &w.admin,
            pool.id,
            crate::pool::RuleSpec::new(crate::pool::RuleKind::NoFollowUp, 30),
        )
        .await
        .expect("rule");
    w.clock.advance(chrono::Duration::days(31));
    let sweep = w
        .crm
        .sweep(&w.admin, &crate::pool::SweepOptions::default())
        .await
        .expect("sweep");
    assert!(sweep.recycled.is_empty(), "{sweep:#?}");
    assert!(
        sweep
            .refused
            .iter()
            .any(|(id, why)| *id == customer.id && why.contains("awaiting approval")),
        "{sweep:#?}"
    );
    assert!(
        w.crm
            .about_to_be_recycled(&w.zhangsan, 30)
            .await
            .expect("upcoming")
            .is_empty()
    );
    let explained = w
        .crm
        .explain_recycling(&w.zhangsan, customer.id, None)
        .await
        .expect("explain");
    assert!(
        explained.summary.contains("awaits approval"),
        "{explained:#?}"
    );
    let row = w
        .crm
        .get_record(&w.zhangsan, crate::entity::Entity::Customer, customer.id)
        .await
        .expect("still his");
    assert_eq!(row.owner_id, Some(w.zhangsan.user_id));
}

/// An approved quote converted by its owner's manager becomes a contract
/// owned by the quote's owner, in their department (the manager is its
/// creator): the deal stays the salesperson's. A deactivated owner's quote
/// becomes the converter's contract.
pub async fn a_converted_quote_stays_its_owners_deal(store: Arc<dyn Store>) {
    use crate::sales::{LineInput, NewContract, NewQuote, QuoteStatus};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let approved = |title: &'static str, customer: uuid::Uuid| {
        let w = &w;
        async move {
            let q = w
                .crm
                .create_quote(
                    &w.zhangsan,
                    NewQuote {
                        title: title.into(),
                        customer_id: customer,
                        lines: vec![LineInput {
                            product_id: None,
                            name: "实施服务".into(),
                            unit: None,
                            quantity: 2,
                            unit_price: Some(crate::money::Money::cny(50_000)),
                            discount_bp: 0,
                            tax_rate: None,
                        }],
                        ..NewQuote::default()
                    },
                )
                .await
                .expect("quote");
            let (q, _) = w
                .crm
                .submit_quote(&w.zhangsan, q.id, None)
                .await
                .expect("submit");
            assert_eq!(q.status, QuoteStatus::Approved);
            q
        }
    };
    let customer = w.customer(&w.zhangsan, "经理代转有限公司", json!({})).await;
    let q = approved("张三的报价", customer.id.0).await;
    let c = w
        .crm
        .quote_to_contract(&w.lisi, q.id, NewContract::default())
        .await
        .expect("the manager converts");
    assert_eq!(c.owner_id, Some(w.zhangsan.user_id.0), "{c:#?}");
    assert_eq!(c.department_id, Some(w.group1.0), "{c:#?}");
    let mine = w
        .crm
        .contract(&w.zhangsan, c.id)
        .await
        .expect("the salesperson reads the contract of their quote");
    assert_eq!(mine.code, c.code);
    assert_eq!(mine.quote_id, Some(q.id));
    // The quote purged for good: the contract keeps its amount and no
    // longer points at it.
    let quote = crate::entity::Entity::Quote;
    let gone = w
        .crm
        .delete_records(&w.zhangsan, quote, &[crate::ids::RecordId(q.id)])
        .await;
    assert_eq!(gone.done.len(), 1, "{gone:?}");
    let gone = w
        .crm
        .purge_records(&w.admin, quote, &[crate::ids::RecordId(q.id)])
        .await;
    assert_eq!(gone.done.len(), 1, "{gone:?}");
    let kept = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!((kept.quote_id, kept.amount), (None, c.amount));
    // Once the salesperson is gone, the converter owns what they convert.
    let q2 = approved("离职前的报价", customer.id.0).await;
    deactivate(&w, w.zhangsan.user_id).await;
    let c2 = w
        .crm
        .quote_to_contract(&w.lisi, q2.id, NewContract::default())
        .await
        .expect("the manager converts");
    assert_eq!(c2.owner_id, Some(w.lisi.user_id.0), "{c2:#?}");
    assert_eq!(c2.department_id, w.lisi.department_id.map(|d| d.0));
}

/// A customer whose contract is still executing stays out of the recycle
/// bin even when nothing is owed on it any more; once the contract is
/// finished the customer may go, and nothing more is recorded on the
/// contract of a customer in the recycle bin (a voided payment would make
/// the deleted customer owe money again).
pub async fn a_customer_with_an_executing_contract_stays(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{ContractStatus, PaymentInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "全款未结有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "已付清合同", 50_000).await;
    let (p, _) = w
        .crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(50_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: None,
                notes: None,
            },
        )
        .await
        .expect("paid in full");
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(
        (c.status, c.outstanding.minor),
        (ContractStatus::Executing, 0)
    );
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[customer.id])
        .await;
    let why = &report.refused.first().expect("refused").1;
    assert!(
        report.done.is_empty() && why.contains(&c.code) && why.contains("executing"),
        "{report:?}"
    );
    w.crm
        .close_contract(&w.zhangsan, c.id, None)
        .await
        .expect("finished");
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::Customer, &[customer.id])
        .await;
    assert_eq!(report.done, vec![customer.id], "{report:?}");
    match w.crm.void_payment(&w.zhangsan, p.id, "退款").await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("recycle bin") && m.contains(&c.code) && m.contains("restore"),
            "{m}"
        ),
        other => panic!("a payment voided for a deleted customer: {other:?}"),
    }
    let c = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(
        (c.status, c.received.minor),
        (ContractStatus::Finished, 50_000)
    );
    // Restored, the customer's contract takes corrections again.
    let report = w
        .crm
        .restore_records(&w.zhangsan, Entity::Customer, &[customer.id])
        .await;
    assert_eq!(report.done.len(), 1, "{report:?}");
    w.crm
        .void_payment(&w.zhangsan, p.id, "退款")
        .await
        .expect("voided once restored");
}

/// A payment awaiting approval is answered for by its contract's owner:
/// once the customer went to another owner with its documents, the new
/// owner withdraws the payment's approval, and the former owner, who no
/// longer reads the contract, may not.
pub async fn a_payment_approval_is_withdrawn_by_the_contracts_owner(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::PaymentInput;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let customer = w.customer(&w.zhangsan, "回款转交有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "转交合同", 100_000).await;
    let (_, approval) = w
        .crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(40_000),
                received_on: w.crm.today(),
                method: None,
                receipt_no: Some("ZJ-1".into()),
                notes: None,
            },
        )
        .await
        .expect("pending payment");
    let approval = approval.expect("awaits approval");
    w.crm
        .transfer_customers_with_documents(&w.admin, &[customer.id], w.wangwu.user_id)
        .await
        .expect("transfer");
    assert!(
        w.crm.contract(&w.zhangsan, c.id).await.is_err(),
        "the former owner no longer reads the contract"
    );
    let e = w
        .crm
        .withdraw(&w.zhangsan, approval.id, None)
        .await
        .expect_err("the former owner");
    assert!(
        matches!(e, Error::NotFound { .. } | Error::Forbidden(_)),
        "{e:?}"
    );
    let done = w
        .crm
        .withdraw(&w.wangwu, approval.id, Some("转交后撤回"))
        .await
        .expect("the contract's new owner withdraws");
    assert_eq!(done.status, Status::Withdrawn);
}

/// An opportunity whose contract awaits approval, executes or is finished
/// is not marked lost or expired (a signed deal is won); once the contract
/// is terminated, it may be.
pub async fn a_signed_opportunity_is_not_lost(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{NewContract, NewOpportunity, OppStatus, StageCommand};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "已签商机有限公司", json!({})).await;
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "签了的单".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(80_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "签约合同".into(),
                customer_id: customer.id.0,
                opportunity_id: Some(o.id),
                amount: Some(Money::cny(80_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing");
    for command in [StageCommand::Lose("价格".into()), StageCommand::Expire] {
        let o = w.crm.opportunity(&w.zhangsan, o.id).await.expect("o");
        match w
            .crm
            .change_opportunity_stage(&w.zhangsan, o.id, o.version, command)
            .await
        {
            Err(Error::InvalidState(m)) => assert!(
                m.contains(&c.code) && m.contains(&o.code) && m.contains("won"),
                "{m}"
            ),
            other => panic!("a signed opportunity closed unwon: {other:?}"),
        }
    }
    w.crm
        .close_contract(&w.zhangsan, c.id, Some("客户取消"))
        .await
        .expect("terminated");
    let o = w.crm.opportunity(&w.zhangsan, o.id).await.expect("o");
    let o = w
        .crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::Lose("取消".into()),
        )
        .await
        .expect("lost once the contract is terminated");
    assert_eq!(o.status, OppStatus::Lost);
}

/// The host hears what changed on a contract: `contract.updated` names the
/// fields, and a payment plan or an invoice plan is announced with its
/// amounts.
pub async fn contract_changes_and_plans_reach_the_host(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, InvoiceType, PlanInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "事件通知有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "通知合同", 100_000).await;
    ack_all(&w).await;
    let end = w.crm.today() + chrono::Duration::days(90);
    w.crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                end_on: Some(end),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("extended");
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![PlanInput {
                due_on: end,
                amount: Money::cny(100_000),
                notes: None,
            }],
        )
        .await
        .expect("plan");
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatNormal,
            Money::cny(60_000),
            None,
            Some(end),
        )
        .await
        .expect("invoice plan");
    let events: Vec<(String, serde_json::Value)> = w
        .crm
        .pending_events("erp", 10_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| {
            (
                e.event.event_type,
                serde_json::from_str(e.event.payload.as_str()).expect("json"),
            )
        })
        .collect();
    let of = |t: &str| {
        let found: Vec<&serde_json::Value> = events
            .iter()
            .filter(|(e, _)| e == t)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(found.len(), 1, "{t} once: {events:#?}");
        found[0].clone()
    };
    assert_eq!(of("contract.updated")["fields"], json!(["end_on"]));
    let plan = of("contract.payment_plan_set");
    assert_eq!(plan["code"], json!(c.code));
    assert_eq!(plan["plans"][0]["amount"], json!(100_000));
    assert_eq!(plan["plans"][0]["due_on"], json!(end));
    let planned = of("contract.invoice_planned");
    assert_eq!(planned["amount"], json!(60_000));
    assert_eq!(planned["invoice_type"], json!("vat_normal"));
}

/// A superior's step goes to whoever is the applicant's superior now: when
/// the applicant's superior changes, the pending approval moves to the new
/// superior's list at once, and the former superior no longer approves.
pub async fn a_superior_step_follows_a_new_superior(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "上级审批",
            FlowDef {
                steps: vec![step(
                    "直属上级",
                    ApproverRule::Superior { level: 1 },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(Uuid::from_u128(0xD0C5), 10_000))
        .await
        .expect("submit");
    assert_eq!(a.pending_with, vec![w.lisi.user_id.0]);
    let me = w
        .crm
        .user(&w.admin, w.zhangsan.user_id)
        .await
        .expect("user");
    w.crm
        .update_user(
            &w.admin,
            w.zhangsan.user_id,
            me.version,
            crate::org::UserPatch {
                superior_id: Some(Some(w.zhaoliu.user_id)),
                ..crate::org::UserPatch::default()
            },
        )
        .await
        .expect("a new superior");
    let theirs = w.crm.pending_approvals(&w.zhaoliu).await.expect("pending");
    assert_eq!(theirs.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a.id]);
    assert!(
        w.crm
            .pending_approvals(&w.lisi)
            .await
            .expect("pending")
            .is_empty()
    );
    assert!(w.crm.approve(&w.lisi, a.id, None).await.is_err());
    let done = w
        .crm
        .approve(&w.zhaoliu, a.id, None)
        .await
        .expect("the superior now");
    assert_eq!(done.status, Status::Approved);
}

/// A contract of a lost opportunity is not submitted until the
/// opportunity is reopened; a signing date does not move past a plan's
/// instalment; an archived customer takes no deal mark and no lock, and
/// says why.
pub async fn a_contract_keeps_its_dates_deal_and_customer_in_line(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::{ContractPatch, NewContract, NewOpportunity, PlanInput, StageCommand};
    use chrono::NaiveDate;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "合同一致有限公司", json!({})).await;
    // A lost opportunity's draft contract waits for it to be reopened.
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            NewOpportunity {
                name: "丢了的单".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(5_000)),
                ..NewOpportunity::default()
            },
        )
        .await
        .expect("opportunity");
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
    let draft = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "丢单合同".into(),
                customer_id: customer.id.0,
                opportunity_id: Some(o.id),
                amount: Some(Money::cny(5_000)),
                signed_on: Some(d(11, 1)),
                ..NewContract::default()
            },
        )
        .await
        .expect("draft");
    w.crm
        .change_opportunity_stage(
            &w.zhangsan,
            o.id,
            o.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lost");
    match w
        .crm
        .submit_contract(&w.zhangsan, draft.id, Vec::new(), None)
        .await
    {
        Err(Error::InvalidState(m)) => assert!(m.contains(&o.code) && m.contains("reopen"), "{m}"),
        other => panic!("a lost opportunity's contract submitted: {other:?}"),
    }
    // An instalment due 11-10 keeps the signing date from moving past it.
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            draft.id,
            vec![PlanInput {
                due_on: d(11, 10),
                amount: Money::cny(5_000),
                notes: None,
            }],
        )
        .await
        .expect("plan");
    let now = w.crm.contract(&w.zhangsan, draft.id).await.expect("c");
    match w
        .crm
        .update_contract(
            &w.zhangsan,
            draft.id,
            now.version,
            ContractPatch {
                signed_on: Some(d(11, 15)),
                ..ContractPatch::default()
            },
        )
        .await
    {
        Err(Error::Validation(v)) => {
            let m = v.to_string();
            assert!(m.contains("instalment due 2026-11-10"), "{m}")
        }
        other => panic!("signed after an instalment: {other:?}"),
    }
    // An archived customer is named as such, and takes back no contract
    // from the recycle bin.
    let other = w.customer(&w.zhangsan, "归档成交有限公司", json!({})).await;
    let binned = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "回收站合同".into(),
                customer_id: other.id.0,
                amount: Some(Money::cny(1_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("draft");
    let binned_id = [crate::ids::RecordId(binned.id)];
    let r = w
        .crm
        .delete_records(&w.zhangsan, Entity::Contract, &binned_id)
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    let r = w
        .crm
        .archive_records(&w.zhangsan, Entity::Customer, &[other.id])
        .await;
    assert_eq!(r.done.len(), 1, "{r:?}");
    let r = w
        .crm
        .restore_records(&w.zhangsan, Entity::Contract, &binned_id)
        .await;
    let why = &r.refused.first().expect("refused").1;
    assert!(
        why.contains("archived") && why.contains("unarchive"),
        "{why}"
    );
    match w.crm.mark_deal(&w.zhangsan, other.id, None).await {
        Err(e) => assert!(e.to_string().contains("archived"), "{e}"),
        Ok(()) => panic!("a deal marked on an archived customer"),
    }
    let r = w.crm.set_locked(&w.lisi, &[other.id], true).await;
    let why = &r.refused.first().expect("refused").1;
    assert!(why.contains("archived"), "{why}");
}

/// An opportunity's product lines are a sales amount as a quote's and a
/// contract's lines are: a line, or the lines together, beyond the ceiling
/// (10万亿元) are refused in the same words, on create and on edit, while
/// lines at the ceiling are taken. The forecast sums exactly: amounts an
/// older build let past the ceiling make it fail naming the problem, never
/// clamp to the largest amount.
pub async fn opportunity_and_contract_lines_stay_under_the_ceiling(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{
        LineInput, MAX_SALES_AMOUNT_MINOR, NewContract, NewOpportunity, NewQuote, OppLine,
        OpportunityPatch,
    };
    use crate::schema::Table;
    use crate::value::Value;
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let over = "the lines add up to more than ¥10,000,000,000,000.00 (10万亿元), the most a \
                sales amount may be";
    let opp_line = |quantity: i64, fen: i64| OppLine {
        product_id: None,
        name: "服务".into(),
        quantity,
        unit_price: Money::cny(fen),
    };
    let doc_line = |quantity: i64, fen: i64| LineInput {
        product_id: None,
        name: "服务".into(),
        unit: None,
        quantity,
        unit_price: Some(Money::cny(fen)),
        discount_bp: 0,
        tax_rate: None,
    };
    let opportunity = |products: Vec<OppLine>| NewOpportunity {
        name: "超大机会".into(),
        customer_id: customer.id.0,
        products,
        ..NewOpportunity::default()
    };
    // One line beyond the ceiling (¥99,999,999.99 × 1,000,000).
    let m = invalid_message(
        w.crm
            .create_opportunity(
                &w.zhangsan,
                opportunity(vec![opp_line(1_000_000, 9_999_999_999)]),
            )
            .await,
    );
    assert!(
        m.contains("products[1].quantity")
            && m.contains("¥99,999,999,990,000.00 is more than ¥10,000,000,000,000.00 (10万亿元)"),
        "{m}"
    );
    // Lines each within it, together beyond it: as a quote's and a
    // contract's lines are refused, in the same words.
    let half = MAX_SALES_AMOUNT_MINOR / 2;
    let m = invalid_message(
        w.crm
            .create_opportunity(
                &w.zhangsan,
                opportunity(vec![opp_line(1, half), opp_line(1, half + 1)]),
            )
            .await,
    );
    assert!(m.contains("products") && m.contains(over), "{m}");
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: "超大报价".into(),
                    customer_id: customer.id.0,
                    lines: vec![doc_line(1, half), doc_line(1, half + 1)],
                    ..NewQuote::default()
                },
            )
            .await,
    );
    assert!(m.contains(over), "{m}");
    let m = invalid_message(
        w.crm
            .create_contract(
                &w.zhangsan,
                NewContract {
                    title: "超大合同".into(),
                    customer_id: customer.id.0,
                    lines: vec![doc_line(1, half), doc_line(1, half + 1)],
                    ..NewContract::default()
                },
            )
            .await,
    );
    assert!(m.contains(over), "{m}");
    // At the ceiling, taken; edited beyond it, refused and unchanged.
    let o = w
        .crm
        .create_opportunity(
            &w.zhangsan,
            opportunity(vec![opp_line(1, half), opp_line(1, half)]),
        )
        .await
        .expect("lines at the ceiling");
    assert_eq!(o.amount.minor, MAX_SALES_AMOUNT_MINOR);
    let m = invalid_message(
        w.crm
            .update_opportunity(
                &w.zhangsan,
                o.id,
                o.version,
                OpportunityPatch {
                    products: Some(vec![opp_line(2, half), opp_line(1, 1)]),
                    ..OpportunityPatch::default()
                },
            )
            .await,
    );
    assert!(m.contains(over), "{m}");
    let m = invalid_message(
        w.crm
            .update_opportunity(
                &w.zhangsan,
                o.id,
                o.version,
                OpportunityPatch {
                    products: Some(vec![opp_line(1_000_000, 9_999_999_999)]),
                    ..OpportunityPatch::default()
                },
            )
            .await,
    );
    assert!(m.contains("10万亿元"), "{m}");
    let now = w.crm.opportunity(&w.zhangsan, o.id).await.expect("o");
    assert_eq!(now.amount.minor, MAX_SALES_AMOUNT_MINOR);
    // Amounts an older build let past the ceiling: the forecast's sum is
    // beyond what an amount holds, and it says so rather than clamp.
    let o2 = w
        .crm
        .create_opportunity(&w.zhangsan, opportunity(vec![opp_line(1, 1)]))
        .await
        .expect("o2");
    for id in [o.id, o2.id] {
        force_row(
            &w,
            Table::Opportunities,
            id,
            vec![("amount", Value::Int(i64::MAX - 1))],
        )
        .await;
    }
    match w.crm.opportunity_forecast(&w.zhangsan, None, None).await {
        Err(Error::InvalidState(m)) => {
            assert!(
                m.contains("forecast") && m.contains("more than an amount holds"),
                "{m}"
            )
        }
        other => panic!("a forecast beyond what an amount holds: {other:?}"),
    }
}

/// Invoice plans and issued invoices together stay within the contract
/// amount: a plan beyond what is left to plan is refused naming it; an
/// issued invoice fulfils the open plans earliest date first (undated
/// last), reducing the one it covers in part, so nothing is left planned
/// once all is invoiced; voiding an invoice leaves the plans it fulfilled
/// fulfilled and frees its amount to plan or invoice again.
pub async fn issued_invoices_fulfil_the_open_invoice_plans(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::money::Money;
    use crate::sales::payment::{INVOICE_PLAN_FULFILLED, INVOICE_PLANNED};
    use crate::sales::{Invoice, InvoiceType};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let d = |m: u32, day: u32| chrono::NaiveDate::from_ymd_opt(2027, m, day);
    let add = |c: Uuid, fen: i64, number: Option<&str>, on: Option<chrono::NaiveDate>| {
        w.crm.add_invoice(
            &w.zhangsan,
            c,
            InvoiceType::VatNormal,
            Money::cny(fen),
            number.map(str::to_string),
            on,
        )
    };
    let open = |list: &[Invoice]| -> Vec<i64> {
        list.iter()
            .filter(|i| i.kind == "plan" && i.status == INVOICE_PLANNED)
            .map(|i| i.amount.minor)
            .collect()
    };
    // The tester's case: ¥100, ¥60 issued, ¥40 planned; another ¥40 plan
    // is refused, and issuing the last ¥40 leaves no plan open.
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "一号合同", 10_000).await;
    add(c.id, 6_000, Some("INV-1"), None).await.expect("INV-1");
    add(c.id, 4_000, None, d(1, 15)).await.expect("plan");
    match add(c.id, 4_000, None, d(2, 15)).await {
        Err(Error::InvalidState(m)) => assert!(
            m.contains("left to plan on contract")
                && m.contains(&c.code)
                && m.contains(": ¥0.00")
                && m.contains("open invoice plans ¥40.00"),
            "{m}"
        ),
        other => panic!("a plan beyond what is left to plan: {other:?}"),
    }
    add(c.id, 4_000, Some("INV-2"), None).await.expect("INV-2");
    let list = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    assert!(open(&list).is_empty(), "{list:?}");
    assert!(
        list.iter().any(|i| i.kind == "plan"
            && i.status == INVOICE_PLAN_FULFILLED
            && i.amount.minor == 4_000),
        "{list:?}"
    );
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(now.invoiced.minor, 10_000);
    // Plans fulfilled in turn: the earliest first, the undated last, the
    // one covered in part reduced to what is left of it.
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "二号合同", 10_000).await;
    add(c.id, 2_000, None, None).await.expect("undated plan");
    add(c.id, 3_000, None, d(2, 1))
        .await
        .expect("February plan");
    add(c.id, 5_000, None, d(1, 1)).await.expect("January plan");
    assert!(matches!(
        add(c.id, 1, None, d(3, 1)).await,
        Err(Error::InvalidState(_))
    ));
    let inv = add(c.id, 6_000, Some("INV-3"), None).await.expect("INV-3");
    let list = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    let plan_on = |on: Option<chrono::NaiveDate>| {
        list.iter()
            .find(|i| i.kind == "plan" && i.invoice_date == on)
            .map(|i| (i.amount.minor, i.status.clone()))
            .expect("plan")
    };
    assert_eq!(
        plan_on(d(1, 1)),
        (5_000, INVOICE_PLAN_FULFILLED.to_string())
    );
    assert_eq!(plan_on(d(2, 1)), (2_000, INVOICE_PLANNED.to_string()));
    assert_eq!(plan_on(None), (2_000, INVOICE_PLANNED.to_string()));
    assert_eq!(
        open(&list).iter().sum::<i64>(),
        4_000,
        "what is not invoiced"
    );
    let history = w
        .crm
        .history(&w.zhangsan, Entity::Contract, c.id)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|e| e.action == "invoice" && e.changes.iter().any(|f| f.field == "invoice_plans")),
        "{history:?}"
    );
    assert!(matches!(
        add(c.id, 1, None, d(3, 1)).await,
        Err(Error::InvalidState(_))
    ));
    // Voided, the invoice frees its amount; the plans it fulfilled stay so.
    w.crm
        .void_invoice(&w.zhangsan, inv.id, "开错抬头")
        .await
        .expect("void");
    let list = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    assert_eq!(open(&list).iter().sum::<i64>(), 4_000, "{list:?}");
    match add(c.id, 6_001, None, d(3, 1)).await {
        Err(Error::InvalidState(m)) => assert!(m.contains(": ¥60.00"), "{m}"),
        other => panic!("a plan beyond what is left to plan: {other:?}"),
    }
    add(c.id, 6_000, None, d(3, 1)).await.expect("plan again");
    // Everything invoiced at once: no plan is left open.
    add(c.id, 10_000, Some("INV-4"), None).await.expect("INV-4");
    let list = w.crm.invoices(&w.zhangsan, c.id).await.expect("invoices");
    assert!(open(&list).is_empty(), "{list:?}");
}

/// Payments and invoices given no version are read again and checked
/// again when the contract changed meanwhile (another clerk's payment or
/// invoice), on every backend alike: a payment that still fits is saved, one
/// that no longer does is refused as overpayment, never reported as a
/// conflict.
pub async fn payments_and_invoices_recorded_at_once_are_retried(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{InvoiceType, PaymentInput};
    use crate::schema::Table;
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "一号合同", 10_000).await;
    let pay = |fen: i64| PaymentInput {
        amount: Money::cny(fen),
        received_on: w.crm.today(),
        method: None,
        receipt_no: None,
        notes: None,
    };
    let meanwhile = |fen: i64| {
        let (o, zs, id, p) = (other.clone(), w.zhangsan.clone(), c.id, pay(fen));
        async move {
            o.record_payment(&zs, id, p)
                .await
                .expect("the other payment");
        }
    };
    // Another ¥30 lands between this one's read and its write: it is
    // read again, and still fits.
    hooked.before_write(Table::Payments, meanwhile(3_000));
    w.crm
        .record_payment(&w.zhangsan, c.id, pay(3_000))
        .await
        .expect("saved after another payment");
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(now.received.minor, 6_000);
    // Another ¥30 lands: ¥10 is left, so this ¥30 is overpayment.
    hooked.before_write(Table::Payments, meanwhile(3_000));
    match w.crm.record_payment(&w.zhangsan, c.id, pay(3_000)).await {
        Err(Error::InvalidState(m)) => assert!(m.contains("overpayment"), "{m}"),
        other => panic!("a payment no longer fitting: {other:?}"),
    }
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!((now.received.minor, now.outstanding.minor), (9_000, 1_000));
    // An invoice issued while a plan is added: the plan is checked again
    // against what is left to plan, and saved.
    let (o, zs, id) = (other.clone(), w.zhangsan.clone(), c.id);
    hooked.before_write(Table::Invoices, async move {
        o.add_invoice(
            &zs,
            id,
            InvoiceType::VatNormal,
            Money::cny(6_000),
            Some("INV-9".into()),
            None,
        )
        .await
        .expect("the other invoice");
    });
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatNormal,
            Money::cny(4_000),
            None,
            chrono::NaiveDate::from_ymd_opt(2027, 1, 15),
        )
        .await
        .expect("plan saved after the other invoice");
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!(now.invoiced.minor, 6_000);
    // Ten clerks record ¥30 on a ¥100 contract at once: three are saved,
    // seven refused as overpayment, none reported as a conflict (each
    // clerk's write conflicts at most once per payment saved meanwhile).
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "二号合同", 10_000).await;
    let clerks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>> = (0..10)
        .map(|_| {
            let (o, zs, id, p) = (other.clone(), w.zhangsan.clone(), c.id, pay(3_000));
            Box::pin(async move { o.record_payment(&zs, id, p).await.map(|_| ()) }) as _
        })
        .collect();
    let (mut saved, mut refused) = (0, 0);
    for done in all_at_once(clerks).await {
        match done {
            Ok(()) => saved += 1,
            Err(Error::InvalidState(m)) if m.contains("overpayment") => refused += 1,
            Err(e) => panic!("a payment recorded at once: {e:?}"),
        }
    }
    assert_eq!((saved, refused), (3, 7));
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("c");
    assert_eq!((now.received.minor, now.outstanding.minor), (9_000, 1_000));
}

/// Runs `work` concurrently (interleaved at their awaits, on whatever
/// runtime runs the test) and returns their outputs in order.
async fn all_at_once<T>(
    mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>>,
) -> Vec<T> {
    let mut out: Vec<Option<T>> = work.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (f, done) in work.iter_mut().zip(out.iter_mut()) {
            if done.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *done = Some(v),
                    std::task::Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("finished")).collect()
}

/// A generic document resubmitted naming only the document keeps the
/// amount, kind and title it was submitted with: the step its amount
/// brings in is not skipped.
pub async fn a_resubmission_keeps_what_its_steps_read(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut big = step(
        "大额",
        ApproverRule::Users {
            users: vec![w.admin.user_id.0],
        },
        SignMode::Any,
    );
    big.conditions = vec![Condition::AmountAtLeast { minor: 100_000 }];
    w.crm
        .define_approval_flow(
            &w.admin,
            GENERIC_DOC,
            "采购审批",
            FlowDef {
                steps: vec![
                    step(
                        "直属上级",
                        ApproverRule::Superior { level: 1 },
                        SignMode::Any,
                    ),
                    big,
                ],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let doc = Uuid::from_u128(0xFAC7);
    let mut blank = request(doc, 200_000);
    blank.document_code = Some("  ".into());
    assert!(matches!(
        w.crm.submit_for_approval(&w.zhangsan, blank).await,
        Err(Error::Validation(_))
    ));
    let a = w
        .crm
        .submit_for_approval(&w.zhangsan, request(doc, 200_000))
        .await
        .expect("submit");
    w.crm
        .reject(&w.lisi, a.id, RejectTo::Applicant, Some("改日期"))
        .await
        .expect("rejected");
    let again = w
        .crm
        .submit_for_approval(
            &w.zhangsan,
            SubmitRequest {
                doc_type: GENERIC_DOC.into(),
                document_id: doc,
                ..SubmitRequest::default()
            },
        )
        .await
        .expect("resubmitted");
    assert_eq!(again.state.facts.amount_minor, Some(200_000));
    assert_eq!(again.title.as_deref(), Some("华为服务器采购合同"));
    let after = w.crm.approve(&w.lisi, a.id, None).await.expect("superior");
    assert_eq!(after.status, Status::Pending, "{after:?}");
    assert_eq!(after.pending_with, vec![w.admin.user_id.0]);
    // The approvers the applicant picked are kept too.
    w.crm
        .define_approval_flow(
            &w.admin,
            "leave",
            "请假",
            FlowDef {
                steps: vec![step("自选", ApproverRule::ApplicantPicks, SignMode::Any)],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("leave flow");
    let leave = Uuid::from_u128(0x1EAF);
    let mut first = request(leave, 1);
    first.doc_type = "leave".into();
    first.picked = vec![w.zhaoliu.user_id.0];
    let l = w
        .crm
        .submit_for_approval(&w.zhangsan, first)
        .await
        .expect("leave");
    w.crm
        .reject(&w.zhaoliu, l.id, RejectTo::Applicant, None)
        .await
        .expect("rejected");
    let again = w
        .crm
        .submit_for_approval(
            &w.zhangsan,
            SubmitRequest {
                doc_type: "leave".into(),
                document_id: leave,
                ..SubmitRequest::default()
            },
        )
        .await
        .expect("resubmitted with the same picks");
    assert_eq!(again.pending_with, vec![w.zhaoliu.user_id.0]);
}

/// A contract flow's type condition names contract types — the Chinese
/// label is taken and applies — and an unknown type is refused naming the
/// types; quotes and payments take no type condition, payments no
/// discount condition: no step is defined that silently never applies. A
/// reader of the contract not on its step is told who it waits for.
pub async fn sales_flow_conditions_name_what_documents_hold(store: Arc<dyn Store>) {
    let w = with_sales_rights(World::new(store).await).await;
    let typed = |t: &str| {
        let mut s = step(
            "法务",
            ApproverRule::Users {
                users: vec![w.admin.user_id.0],
            },
            SignMode::Any,
        );
        s.conditions = vec![Condition::TypeIn {
            types: vec![t.to_string()],
        }];
        FlowDef {
            steps: vec![s],
            restart: Restart::FromFirst,
        }
    };
    let f = w
        .crm
        .define_approval_flow(&w.admin, "contract", "法务审批", typed("销售合同"))
        .await
        .expect("a label");
    assert_eq!(
        f.definition.steps[0].conditions,
        vec![Condition::TypeIn {
            types: vec!["sales".into()]
        }]
    );
    let customer = w
        .customer(&w.zhangsan, "类型条件有限公司", serde_json::json!({}))
        .await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "销售类".into(),
                customer_id: customer.id.0,
                amount: Some(crate::money::Money::cny(5_000)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submit");
    let a = a.expect("the step applies to a sales contract");
    assert_eq!(c.status, crate::sales::ContractStatus::PendingApproval);
    match w.crm.approve(&w.lisi, a.id, None).await {
        Err(Error::Forbidden(m)) => assert!(m.contains("it waits for"), "{m}"),
        other => panic!("a reader not on the step: {other:?}"),
    }
    let refusal = |doc: &str, def: FlowDef| {
        let w = &w;
        let doc = doc.to_string();
        async move {
            match w.crm.define_approval_flow(&w.admin, &doc, "x", def).await {
                Err(Error::Validation(e)) => e.to_string(),
                other => panic!("{doc}: {other:?}"),
            }
        }
    };
    let m = refusal("contract", typed("销售")).await;
    assert!(
        m.contains("'销售' is no contract type") && m.contains("sales (销售合同)"),
        "{m}"
    );
    let m = refusal("quote", typed("sales")).await;
    assert!(m.contains("quotes have no type"), "{m}");
    let mut disc = typed("sales");
    disc.steps[0].conditions = vec![Condition::DiscountAbove { bp: 500 }];
    let m = refusal("payment", disc).await;
    assert!(m.contains("payments have no discount"), "{m}");
}

/// A contract edited (a new amount) while it is being submitted fails the
/// submission instead of running an approval routed on the amount read
/// before: submitted again, it takes the step its new amount brings in,
/// and is not given to one of its approvers while pending. A contract added for a customer
/// transferred meanwhile is refused, not left with who no longer holds the
/// customer.
pub async fn a_submission_routes_on_the_contract_it_read(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, ContractStatus, NewContract};
    use crate::schema::Table;
    use crate::testing::pool_suite::Interleave;
    let hooked = Arc::new(Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let mut big = step(
        "总经理",
        ApproverRule::Users {
            users: vec![w.admin.user_id.0],
        },
        SignMode::Any,
    );
    big.conditions = vec![Condition::AmountAtLeast { minor: 5_000_000 }];
    w.crm
        .define_approval_flow(
            &w.admin,
            "contract",
            "大额合同",
            FlowDef {
                steps: vec![
                    step(
                        "直属上级",
                        ApproverRule::Superior { level: 1 },
                        SignMode::Any,
                    ),
                    big,
                ],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("flow");
    let customer = w
        .customer(&w.zhangsan, "提交竞速有限公司", serde_json::json!({}))
        .await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "小单".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(100_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let edit = {
        let (other, actor, id, v) = (other.clone(), w.zhangsan.clone(), c.id, c.version);
        async move {
            other
                .update_contract(
                    &actor,
                    id,
                    v,
                    ContractPatch {
                        amount: Some(Money::cny(9_999_900)),
                        ..ContractPatch::default()
                    },
                )
                .await
                .expect("edited meanwhile");
        }
    };
    // The flow is read after the contract, before the approval is built.
    hooked.after_select(Table::ApprovalFlows, edit);
    match w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
    {
        Err(Error::Conflict { .. }) => {}
        other => panic!("a submission over an edit made meanwhile: {other:?}"),
    }
    let now = w.crm.contract(&w.zhangsan, c.id).await.expect("contract");
    assert_eq!(
        (now.status, now.amount),
        (ContractStatus::Draft, Money::cny(9_999_900))
    );
    let (_, a) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("submitted again");
    let a = a.expect("approval");
    assert_eq!(a.state.facts.amount_minor, Some(9_999_900));
    let after = w.crm.approve(&w.lisi, a.id, None).await.expect("superior");
    assert_eq!(after.pending_with, vec![w.admin.user_id.0], "{after:?}");
    // Pending, it is not given to one of its approvers.
    let r = w
        .crm
        .transfer_records(
            &w.admin,
            crate::entity::Entity::Contract,
            &[crate::ids::RecordId(c.id)],
            w.lisi.user_id,
        )
        .await
        .expect("transfer");
    assert!(
        r.done.is_empty() && r.refused[0].1.contains("approves it"),
        "{r:?}"
    );

    // The customer transferred while a contract is added for it.
    let transfer = {
        let (other, admin, id, to) = (
            other.clone(),
            w.admin.clone(),
            customer.id,
            w.wangwu.user_id,
        );
        async move {
            let r = other
                .transfer_records(&admin, crate::entity::Entity::Customer, &[id], to)
                .await
                .expect("transfer");
            assert_eq!(r.done.len(), 1, "{r:?}");
        }
    };
    hooked.before_write(Table::Contracts, transfer);
    let m = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "转走后".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(1_000)),
                ..NewContract::default()
            },
        )
        .await
        .expect_err("the customer changed hands")
        .to_string();
    assert!(m.contains("changed hands"), "{m}");
}

/// What is overdue stays due: a salesperson may not clear a contract's
/// aging by moving its instalments, or its end date (what no instalment
/// schedules falls due on it), later; what is not yet due may move, and
/// an administrator may reschedule anything.
pub async fn overdue_money_is_not_put_off_by_new_terms(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{ContractPatch, PlanInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let today = w.crm.today();
    let day = |n: i64| today + chrono::Duration::days(n);
    let plan = |due, fen| PlanInput {
        due_on: due,
        amount: Money::cny(fen),
        notes: None,
    };
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "分期合同", 300_000).await;
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![plan(day(10), 100_000), plan(day(40), 200_000)],
        )
        .await
        .expect("plan");
    w.clock.advance(chrono::Duration::days(20));
    let col = w.crm.collection(&w.zhangsan, c.id).await.expect("col");
    assert_eq!(col.overdue, Money::cny(100_000));
    // The overdue instalment moved later: refused, naming what it puts off.
    match w
        .crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![plan(day(50), 100_000), plan(day(60), 200_000)],
        )
        .await
    {
        Err(Error::Forbidden(m)) => assert!(
            m.contains(&c.code) && m.contains("¥1,000.00 overdue") && m.contains("administrator"),
            "{m}"
        ),
        other => panic!("putting off overdue money: {other:?}"),
    }
    // What is not due yet moves; what is overdue stays.
    w.crm
        .set_payment_plan(
            &w.zhangsan,
            c.id,
            vec![plan(day(10), 100_000), plan(day(70), 200_000)],
        )
        .await
        .expect("the instalment not yet due moves");
    // An administrator reschedules.
    let col = w
        .crm
        .set_payment_plan(
            &w.admin,
            c.id,
            vec![plan(day(50), 100_000), plan(day(70), 200_000)],
        )
        .await
        .expect("an administrator reschedules");
    assert_eq!(col.overdue, Money::cny(0));
    // Without a plan, the end date is when it all falls due.
    let c2 = w
        .crm
        .create_contract(
            &w.zhangsan,
            crate::sales::NewContract {
                title: "一次付清合同".into(),
                customer_id: customer.id.0,
                amount: Some(Money::cny(50_000)),
                end_on: Some(w.crm.today() + chrono::Duration::days(5)),
                ..crate::sales::NewContract::default()
            },
        )
        .await
        .expect("contract");
    w.crm
        .submit_contract(&w.zhangsan, c2.id, Vec::new(), None)
        .await
        .expect("executing");
    w.clock.advance(chrono::Duration::days(10));
    let c2 = w.crm.contract(&w.zhangsan, c2.id).await.expect("c2");
    let later = ContractPatch {
        end_on: Some(w.crm.today() + chrono::Duration::days(60)),
        ..ContractPatch::default()
    };
    match w
        .crm
        .update_contract(&w.zhangsan, c2.id, c2.version, later.clone())
        .await
    {
        Err(Error::Forbidden(m)) => assert!(m.contains("¥500.00 overdue"), "{m}"),
        other => panic!("putting off the end date: {other:?}"),
    }
    let c2 = w
        .crm
        .update_contract(&w.admin, c2.id, c2.version, later)
        .await
        .expect("an administrator moves it");
    let col = w.crm.collection(&w.zhangsan, c2.id).await.expect("col");
    assert_eq!(col.overdue, Money::cny(0));
}

/// A product's unit, specification and description, an opportunity's
/// name, source and notes (and its lines' names), and a quote's free-text
/// line names are held to their lengths, as the import template holds
/// them: a 40 000-character value is refused, naming the field, rather
/// than stored to break every export of the list.
pub async fn sales_texts_are_held_to_their_lengths(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{LineInput, NewOpportunity, NewQuote, OppLine, ProductInput};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let long = "长".repeat(40_000);
    let product = |f: &dyn Fn(&mut ProductInput)| {
        let mut p = ProductInput {
            name: Some("服务器".into()),
            list_price: Some(Money::cny(100)),
            ..ProductInput::default()
        };
        f(&mut p);
        p
    };
    for (field, input) in [
        ("unit", product(&|p| p.unit = Some("台".repeat(17)))),
        ("spec", product(&|p| p.spec = Some("规".repeat(201)))),
        (
            "description",
            product(&|p| p.description = Some(long.clone())),
        ),
    ] {
        let m = invalid_message(w.crm.create_product(&w.admin, input).await);
        assert!(
            m.contains(field) && m.contains("longer than"),
            "{field}: {m}"
        );
    }
    w.crm
        .create_product(&w.admin, product(&|p| p.unit = Some("台".repeat(16))))
        .await
        .expect("a unit of 16 characters");
    let opp = |f: &dyn Fn(&mut NewOpportunity)| {
        let mut o = NewOpportunity {
            name: "商机".into(),
            customer_id: customer.id.0,
            ..NewOpportunity::default()
        };
        f(&mut o);
        o
    };
    for (field, input) in [
        ("name", opp(&|o| o.name = long.clone())),
        ("source", opp(&|o| o.source = Some("源".repeat(65)))),
        ("notes", opp(&|o| o.notes = Some(long.clone()))),
        (
            "products[1].name",
            opp(&|o| {
                o.products = vec![OppLine {
                    product_id: None,
                    name: long.clone(),
                    quantity: 1,
                    unit_price: Money::cny(100),
                }]
            }),
        ),
    ] {
        let m = invalid_message(w.crm.create_opportunity(&w.zhangsan, input).await);
        assert!(
            m.contains(field) && m.contains("longer than"),
            "{field}: {m}"
        );
    }
    let m = invalid_message(
        w.crm
            .create_quote(
                &w.zhangsan,
                NewQuote {
                    title: "长行".into(),
                    customer_id: customer.id.0,
                    lines: vec![LineInput {
                        product_id: None,
                        name: long.clone(),
                        unit: None,
                        quantity: 1,
                        unit_price: Some(Money::cny(100)),
                        discount_bp: 0,
                        tax_rate: None,
                    }],
                    ..NewQuote::default()
                },
            )
            .await,
    );
    assert!(
        m.contains("lines[1].name") && m.contains("longer than 128"),
        "{m}"
    );
}

/// What a sale changes on its customer (open opportunities, last
/// opportunity, a deal moving it to the closed-deal customers) is
/// announced on the customer: an opportunity created, lost, deleted or
/// won and a contract approved each give the customer an event
/// (`customer.sales_activity`, `customer.deal_closed` for a deal) with the
/// changes and the version the customer has now.
pub async fn sales_activity_announces_the_customer(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::pool::Place;
    use crate::sales::{NewOpportunity, OppLine, StageCommand};
    use crate::schema::Table;
    use crate::testing::service_suite::{announced_at_version, changed_fields};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let c = customer.id.0;
    let new = |name: &str| NewOpportunity {
        name: name.into(),
        customer_id: c,
        products: vec![OppLine {
            product_id: None,
            name: "服务器".into(),
            quantity: 2,
            unit_price: Money::cny(50_000),
        }],
        expected_close: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
        ..NewOpportunity::default()
    };
    let first = w
        .crm
        .create_opportunity(&w.zhangsan, new("数据中心"))
        .await
        .expect("opportunity");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c).await;
    assert_eq!(kind, "customer.sales_activity");
    assert!(
        changed_fields(&payload).contains("open_opportunities")
            && changed_fields(&payload).contains("last_opportunity_at"),
        "{payload}"
    );
    let second = w
        .crm
        .create_opportunity(&w.zhangsan, new("园区网络"))
        .await
        .expect("opportunity");
    announced_at_version(&w, Table::Customers, c).await;
    w.crm
        .change_opportunity_stage(
            &w.zhangsan,
            second.id,
            second.version,
            StageCommand::Lose("价格".into()),
        )
        .await
        .expect("lost");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c).await;
    assert_eq!(kind, "customer.sales_activity");
    assert!(
        changed_fields(&payload).contains("open_opportunities"),
        "{payload}"
    );
    let report = w
        .crm
        .delete_records(&w.zhangsan, Entity::Opportunity, &[RecordId(second.id)])
        .await;
    assert!(report.refused.is_empty(), "{report:?}");
    announced_at_version(&w, Table::Customers, c).await;
    w.crm
        .change_opportunity_stage(&w.zhangsan, first.id, first.version, StageCommand::Win)
        .await
        .expect("won");
    let (kind, payload) = announced_at_version(&w, Table::Customers, c).await;
    assert_eq!(kind, "customer.deal_closed", "{payload}");
    assert!(changed_fields(&payload).contains("closed_at"), "{payload}");
    // A contract approved closes a deal of another customer.
    let other = w
        .customer(&w.zhangsan, "中兴通讯股份有限公司", json!({}))
        .await;
    w.crm
        .define_approval_flow(&w.admin, "contract", "合同审批", superior_flow())
        .await
        .expect("flow");
    let (_, a) = pending_contract(&w, other.id.0, "服务器采购合同").await;
    w.crm.approve(&w.lisi, a.id, None).await.expect("approve");
    let (kind, payload) = announced_at_version(&w, Table::Customers, other.id.0).await;
    assert_eq!(kind, "customer.deal_closed", "{payload}");
    assert!(
        changed_fields(&payload).contains("closed_at")
            && changed_fields(&payload).contains("place"),
        "{payload}"
    );
    let row = w
        .crm
        .store()
        .get(Table::Customers, other.id.0)
        .await
        .expect("get")
        .expect("customer");
    assert_eq!(Place::of_row(&row), Place::Deal);
}

/// Sales events carry what a host needs to mirror them — a quote's
/// customer, owner and opportunity; a payment's receipt number, date and
/// method; an invoice's date and the plan amounts it fulfilled; a quote
/// version's number when transferred — and an edit or a payment plan that
/// changes nothing writes and announces nothing.
pub async fn sales_events_hold_their_facts_and_no_empty_changes(store: Arc<dyn Store>) {
    use crate::entity::Entity;
    use crate::ids::RecordId;
    use crate::money::Money;
    use crate::sales::{ContractPatch, InvoiceType, LineInput, NewQuote, PaymentInput, PlanInput};
    use crate::testing::service_suite::{newest_event, outbox_len};
    use serde_json::json;
    let w = with_sales_rights(World::new(store).await).await;
    let customer = w.customer(&w.zhangsan, "华为技术有限公司", json!({})).await;
    let day = |m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let c =
        new_executing_contract(&w, &w.zhangsan, customer.id.0, "服务器采购合同", 1_000_000).await;
    // Notes as they are: nothing written.
    let c = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                notes: Some("n1".into()),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("notes");
    let events = outbox_len(&w).await;
    let same = w
        .crm
        .update_contract(
            &w.zhangsan,
            c.id,
            c.version,
            ContractPatch {
                notes: Some("n1".into()),
                ..ContractPatch::default()
            },
        )
        .await
        .expect("the same notes");
    assert_eq!(same.version, c.version);
    assert_eq!(outbox_len(&w).await, events);
    // The same payment plan again: nothing written.
    let plan = vec![PlanInput {
        due_on: day(12, 31),
        amount: Money::cny(400_000),
        notes: None,
    }];
    w.crm
        .set_payment_plan(&w.zhangsan, c.id, plan.clone())
        .await
        .expect("plan");
    let events = outbox_len(&w).await;
    let version = w.crm.contract(&w.zhangsan, c.id).await.expect("c").version;
    w.crm
        .set_payment_plan(&w.zhangsan, c.id, plan)
        .await
        .expect("the same plan");
    assert_eq!(
        w.crm.contract(&w.zhangsan, c.id).await.expect("c").version,
        version
    );
    assert_eq!(outbox_len(&w).await, events);
    // A payment's facts.
    w.crm
        .record_payment(
            &w.zhangsan,
            c.id,
            PaymentInput {
                amount: Money::cny(100_000),
                received_on: day(11, 27),
                method: Some("bank".into()),
                receipt_no: Some("HD-0001".into()),
                notes: None,
            },
        )
        .await
        .expect("payment");
    let paid = newest_event(&w, "contract.payment_received").await;
    assert_eq!(paid["receipt_no"], json!("HD-0001"), "{paid}");
    assert_eq!(paid["received_on"], json!("2026-11-27"), "{paid}");
    assert!(paid["method"].is_string(), "{paid}");
    // An invoice fulfilling a plan: its date, and the plan's amount.
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(300_000),
            None,
            Some(day(12, 1)),
        )
        .await
        .expect("invoice plan");
    w.crm
        .add_invoice(
            &w.zhangsan,
            c.id,
            InvoiceType::VatSpecial,
            Money::cny(300_000),
            Some("04400123".into()),
            Some(day(11, 27)),
        )
        .await
        .expect("issued");
    let invoiced = newest_event(&w, "contract.invoiced").await;
    assert_eq!(invoiced["invoice_date"], json!("2026-11-27"), "{invoiced}");
    assert_eq!(
        invoiced["plans_fulfilled"][0]["status"],
        json!("fulfilled"),
        "{invoiced}"
    );
    assert_eq!(
        invoiced["plans_fulfilled"][0]["amount"],
        json!(300_000),
        "{invoiced}"
    );
    // A quote's customer, owner and opportunity; its version when transferred.
    let q = w
        .crm
        .create_quote(
            &w.zhangsan,
            NewQuote {
                title: "服务器报价".into(),
                customer_id: customer.id.0,
                opportunity_id: None,
                lines: vec![LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: None,
                    quantity: 1,
                    unit_price: Some(Money::cny(50_000)),
                    discount_bp: 0,
                    tax_rate: None,
                }],
                valid_until: None,
                notes: None,
            },
        )
        .await
        .expect("quote");
    let created = newest_event(&w, "quote.created").await;
    assert_eq!(
        created["customer_id"],
        json!(customer.id.0.to_string()),
        "{created}"
    );
    assert_eq!(
        created["owner_id"],
        json!(w.zhangsan.user_id.0.to_string()),
        "{created}"
    );
    assert!(created.get("opportunity_id").is_some(), "{created}");
    let report = w
        .crm
        .transfer_records(
            &w.zhangsan,
            Entity::Quote,
            &[RecordId(q.id)],
            w.zhaoliu.user_id,
        )
        .await
        .expect("transfer");
    assert_eq!(report.done.len(), 1, "{report:?}");
    let moved = newest_event(&w, "quote.transferred").await;
    assert_eq!(moved["quote_version"], json!(q.quote_version), "{moved}");
}

/// Deliveries recorded at once on one contract (the caller gives no
/// version) are each saved or refused on the merits: one written just
/// before another's write makes that one read the contract again, not fail
/// as a conflict; past what remains of the line, the later is refused.
pub async fn deliveries_recorded_at_once_are_each_saved(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::{DeliveryLine, LineInput, NewContract};
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "同时发货有限公司", json!({})).await;
    let c = w
        .crm
        .create_contract(
            &w.zhangsan,
            NewContract {
                title: "同时发货合同".into(),
                customer_id: customer.id.0,
                lines: vec![LineInput {
                    product_id: None,
                    name: "服务器".into(),
                    unit: Some("台".into()),
                    quantity: 3,
                    unit_price: Some(Money::cny(10_000)),
                    discount_bp: 0,
                    tax_rate: None,
                }],
                ..NewContract::default()
            },
        )
        .await
        .expect("contract");
    let (c, _) = w
        .crm
        .submit_contract(&w.zhangsan, c.id, Vec::new(), None)
        .await
        .expect("executing");
    let today = w.crm.today();
    let one = |quantity| vec![DeliveryLine { line: 1, quantity }];
    for (meanwhile, mine, delivered) in [(1, 1, 2), (1, 1, 3)] {
        let (o, actor, id) = (other.clone(), w.zhangsan.clone(), c.id);
        hooked.before_write(crate::schema::Table::Deliveries, async move {
            o.record_delivery(&actor, id, today, one(meanwhile), None)
                .await
                .expect("delivered meanwhile");
        });
        let got = w
            .crm
            .record_delivery(&w.zhangsan, c.id, today, one(mine), None)
            .await;
        if delivered <= 2 {
            let progress = got.expect("saved on the contract as it is now");
            assert_eq!(progress[0].delivered, delivered, "{progress:?}");
        } else {
            // Two went first: one more than remains is refused by name.
            let e = got.expect_err("more than remains");
            assert!(!matches!(e, Error::Conflict { .. }), "{e}");
        }
    }
}

/// Two payments of one contract confirmed at once by their approver: the
/// one whose write meets the contract just changed by the other's
/// confirmation is decided again on the contract as it is now, not refused
/// as a conflict; both count as received.
pub async fn payment_approvals_of_one_contract_approved_at_once(store: Arc<dyn Store>) {
    use crate::money::Money;
    use crate::sales::PaymentInput;
    use serde_json::json;
    let hooked = Arc::new(crate::testing::pool_suite::Interleave::new(store.clone()));
    let w = with_sales_rights(World::new(hooked.clone()).await).await;
    let other = crate::crm::Crm::new(store, w.clock.clone());
    let customer = w.customer(&w.zhangsan, "同时确认有限公司", json!({})).await;
    let c = new_executing_contract(&w, &w.zhangsan, customer.id.0, "确认合同", 1_000_000).await;
    w.crm
        .define_approval_flow(
            &w.admin,
            "payment",
            "回款确认",
            FlowDef {
                steps: vec![step(
                    "财务确认",
                    ApproverRule::Users {
                        users: vec![w.admin.user_id.0],
                    },
                    SignMode::Any,
                )],
                restart: Restart::FromFirst,
            },
        )
        .await
        .expect("payment flow");
    let mut approvals = Vec::new();
    for fen in [300_000, 200_000] {
        let (_, a) = w
            .crm
            .record_payment(
                &w.zhangsan,
                c.id,
                PaymentInput {
                    amount: Money::cny(fen),
                    received_on: w.crm.today(),
                    method: None,
                    receipt_no: None,
                    notes: None,
                },
            )
            .await
            .expect("payment");
        approvals.push(a.expect("awaits approval").id);
    }
    let (o, admin, first) = (other.clone(), w.admin.clone(), approvals[0]);
    hooked.before_write(crate::schema::Table::ApprovalInstances, async move {
        o.approve(&admin, first, None)
            .await
            .expect("confirmed meanwhile");
    });
    w.crm
        .approve(&w.admin, approvals[1], None)
        .await
        .expect("decided again on the contract as it is now");
    let col = w
        .crm
        .collection(&w.zhangsan, c.id)
        .await
        .expect("collection");
    assert_eq!(
        (col.received, col.pending),
        (Money::cny(500_000), Money::cny(0))
    );
}
